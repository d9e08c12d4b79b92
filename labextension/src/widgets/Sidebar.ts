/** The left-area panel: three collapsible sections (cell role, lineage, deploy) over one model. */
import { LabIcon, SidePanel } from '@jupyterlab/ui-components';
import type { AccordionPanel } from '@lumino/widgets';
import type { Message } from '@lumino/messaging';

import type { NbopsModel } from '../model';
import { SIDEBAR_ID } from '../tokens';
import { DeployView } from './DeployView';
import { LineageView } from './LineageView';
import { TagBar, type SetRole } from './TagBar';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="8" y="1.5" width="8" height="5" rx="1"/>
    <rect x="1.5" y="17.5" width="8" height="5" rx="1"/>
    <rect x="14.5" y="17.5" width="8" height="5" rx="1"/>
    <path d="M11.25 6.5h1.5v4.25h6.5v6.75h-1.5v-5.25h-11.5v5.25h-1.5v-6.75h6.5z"/>
  </g>
</svg>`;

export const nbopsIcon = new LabIcon({
  name: 'nbops:lineage',
  svgstr: ICON_SVG
});

export class Sidebar extends SidePanel {
  constructor(
    private readonly _model: NbopsModel,
    setRole: SetRole
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('nbops-Sidebar');
    this.title.icon = nbopsIcon;
    this.title.caption = 'nbops: pipeline lineage, cell roles and deployments';
    this.node.dataset.testid = 'nbops-sidebar';
    this.addWidget(new TagBar(_model, setRole));
    this.addWidget(new LineageView(_model));
    this.addWidget(new DeployView(_model));
    (this.content as AccordionPanel).setRelativeSizes([2, 6, 3]);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.startPolling();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.stopPolling();
  }
}
