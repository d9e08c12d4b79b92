/**
 * The Deploy section's Export menu: the notebook as a Kubeflow Pipelines YAML or an Airflow DAG,
 * written next to it by the server; an exporter it cannot use is greyed out with the reason.
 */
import React, { useEffect, useState } from 'react';

import {
  exportItems,
  isExporting,
  storeProblem,
  type IExportItem,
  type IExportState
} from '../export';
import type { NbopsModel } from '../model';
import { useSignals } from './useSignal';

export function Export({
  model,
  busy
}: {
  model: NbopsModel;
  /** A deploy is on its way: the export would wait for it, so it is not offered meanwhile. */
  busy: boolean;
}): JSX.Element {
  const state = useSignals([model.exportChanged], () => model.export);
  const [open, setOpen] = useState(false);
  const [asking, setAsking] = useState<IExportItem | null>(null);
  const [store, setStore] = useState(model.settings.exportStore);
  useEffect(() => void model.loadExporters(), []);
  const items = exportItems(model.exporters, model.exportersError);
  const exporting = isExporting(state);

  const choose = (item: IExportItem): void => {
    setOpen(false);
    if (item.needsStore) {
      setStore(store || model.settings.exportStore);
      setAsking(item);
      return;
    }
    void model.exportNotebook(item.name);
  };
  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    if (asking !== null && storeProblem(store) === null) {
      setAsking(null);
      void model.exportNotebook(asking.name, store.trim());
    }
  };
  const problem = asking ? storeProblem(store) : null;
  return (
    <div className="nbops-Export" data-testid="nbops-export">
      <button
        className="jp-Button jp-mod-styled nbops-Export-toggle"
        data-testid="nbops-export-menu"
        aria-haspopup="menu"
        aria-expanded={open}
        disabled={busy || exporting}
        title="Write the pipeline for another engine, next to the notebook"
        onClick={() => {
          setOpen(!open);
          if (!open) {
            void model.loadExporters();
          }
        }}
      >
        {exporting ? 'Exporting…' : 'Export ▾'}
      </button>
      {open && (
        <ul className="nbops-Export-menu" role="menu">
          {items.map(item => (
            <li key={item.name} role="none">
              <button
                role="menuitem"
                className="nbops-Export-item"
                data-testid={`nbops-export-${item.name}`}
                disabled={item.disabledReason !== null}
                title={item.disabledReason ?? undefined}
                onClick={() => choose(item)}
              >
                {item.label}
                {item.needsStore && '…'}
              </button>
              {item.disabledReason !== null && (
                <span className="nbops-fix">{item.disabledReason}</span>
              )}
            </li>
          ))}
        </ul>
      )}
      {asking !== null && (
        <form className="nbops-Export-store" onSubmit={submit}>
          <label>
            Artifact store of every task
            <input
              className="jp-mod-styled"
              data-testid="nbops-export-store"
              placeholder="s3://bucket/prefix"
              value={store}
              autoFocus
              onChange={event => setStore(event.target.value)}
            />
          </label>
          {problem !== null && store !== '' && (
            <span className="nbops-fix">{problem}</span>
          )}
          <div className="nbops-Export-buttons">
            <button
              type="submit"
              className="jp-Button jp-mod-styled jp-mod-accept"
              data-testid="nbops-export-go"
              disabled={problem !== null || busy}
            >
              Export {asking.label}
            </button>
            <button
              type="button"
              className="nbops-linkButton"
              onClick={() => setAsking(null)}
            >
              cancel
            </button>
          </div>
        </form>
      )}
      {state.phase !== 'idle' && (
        <ExportNote state={state} onDismiss={() => model.dismissExport()} />
      )}
    </div>
  );
}

function ExportNote({
  state,
  onDismiss
}: {
  state: IExportState;
  onDismiss(): void;
}): JSX.Element {
  return (
    <div
      className={`nbops-Progress nbops-mod-${state.phase === 'written' ? 'healthy' : state.phase}`}
      data-testid="nbops-export-status"
      data-phase={state.phase}
    >
      <div className="nbops-Progress-headline">
        <span>
          {state.phase === 'written' ? 'wrote' : state.headline}
          {state.phase === 'written' && (
            <ul className="nbops-Export-paths">
              {state.paths.map(path => (
                <li key={path}>
                  <code>{path}</code>
                </li>
              ))}
            </ul>
          )}
        </span>
        {!isExporting(state) && (
          <button className="nbops-linkButton" onClick={onDismiss} title="Hide">
            ×
          </button>
        )}
      </div>
      {state.placeholderImage !== null && (
        <span className="nbops-fix">
          Its tasks run {state.placeholderImage}: build the image from the build
          folder's Dockerfile, push it, and export with the CLI's --image.
        </span>
      )}
    </div>
  );
}
