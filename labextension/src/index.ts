/**
 * The nbops JupyterLab plugin: a left-area sidebar for the active notebook (lineage graph,
 * cell roles, deploy), a command palette entry, and settings.
 */
import {
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { NbopsModel } from './model';
import { NotebookBinding } from './notebook';
import {
  CommandIDs,
  DEFAULT_SETTINGS,
  PLUGIN_ID,
  SIDEBAR_ID,
  type ISettings
} from './tokens';
import { Sidebar, nbopsIcon } from './widgets/Sidebar';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    "The nbops sidebar: a notebook's pipeline lineage, cell roles and deployments.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const model = new NbopsModel();
    const binding = new NotebookBinding(tracker, model);
    const sidebar = new Sidebar(model, (role, name) =>
      binding.setRole(role, name)
    );
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, SIDEBAR_ID);

    // A rollback the watch made by itself is news, wherever the user looks: once per rollback.
    model.rollbackAnnounced.connect((_, news) => {
      Notification.warning(news.message, {
        autoClose: false,
        actions: [
          {
            label: 'Show',
            caption: 'Show the deployment in the nbops sidebar',
            callback: () => app.shell.activateById(SIDEBAR_ID)
          }
        ]
      });
    });

    app.commands.addCommand(CommandIDs.show, {
      label: 'nbops: Show sidebar',
      caption:
        "Show the active notebook's pipeline lineage, cell roles and deployments",
      icon: nbopsIcon,
      execute: () => app.shell.activateById(SIDEBAR_ID)
    });
    app.commands.addCommand(CommandIDs.deploy, {
      label: 'nbops: Deploy the notebook',
      caption: 'Run, build and deploy the active notebook, health-gated',
      isEnabled: () => model.notebookPath !== null,
      execute: async () => {
        app.shell.activateById(SIDEBAR_ID);
        await model.deployNotebook();
      }
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'nbops: Refresh lineage',
      isEnabled: () => model.notebookPath !== null,
      execute: () => model.refreshLineage()
    });
    for (const command of [
      CommandIDs.show,
      CommandIDs.deploy,
      CommandIDs.refresh
    ]) {
      palette?.addItem({ command, category: 'nbops' });
    }

    if (settingRegistry !== null) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = (): void => {
            model.settings = {
              ...DEFAULT_SETTINGS,
              ...(settings.composite as Partial<ISettings>)
            };
          };
          apply();
          settings.changed.connect(apply);
          model.exportStoreUsed.connect((_, store) => {
            if (settings.composite.exportStore !== store) {
              void settings.set('exportStore', store);
            }
          });
        })
        .catch(reason =>
          console.warn(`nbops: settings not loaded (${reason})`)
        );
    }
  }
};

export default plugin;
