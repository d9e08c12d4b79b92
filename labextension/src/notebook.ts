/**
 * The binding between the active notebook and the model: edits and tag changes schedule the
 * lineage, the selected node's cells are highlighted, a clicked node or diagnostic scrolls to
 * its cell, and the tag bar's role is written to the active cell's `metadata.tags`.
 */
import type { Cell, ICellModel } from '@jupyterlab/cells';
import type {
  INotebookModel,
  INotebookTracker,
  NotebookPanel
} from '@jupyterlab/notebook';
import type { IObservableList } from '@jupyterlab/observables';

import type { IGraphNode } from './graph';
import type { ICellJump, INotebookSource, NbopsModel } from './model';
import {
  freeStepName,
  optionLineTags,
  roleOf,
  withRole,
  type Role
} from './tags';
import type { ICellRef } from './tokens';

export const SELECTED_CLASS = 'nbops-mod-selected';

interface ISharedChange {
  sourceChange?: unknown;
  metadataChange?: unknown;
}

export class NotebookBinding {
  private _panel: NotebookPanel | null = null;
  private _cells = new Set<ICellModel>();
  private _activeCell: Cell | null = null;

  constructor(
    private readonly _tracker: INotebookTracker,
    private readonly _model: NbopsModel
  ) {
    _tracker.currentChanged.connect(this._onCurrentChanged, this);
    _tracker.activeCellChanged.connect(this._onActiveCellChanged, this);
    _model.selectionChanged.connect(this._highlight, this);
    _model.lineageChanged.connect(() => this._highlight(), this);
    _model.cellRequested.connect((_, jump) => void this._show(jump), this);
    this._onCurrentChanged();
  }

  /** Gives the active cell a role (null removes its role tags). */
  setRole(role: Role | null, name: string | null = null): void {
    const cell = this._activeCell;
    if (cell === null || cell.model.type !== 'code') {
      return;
    }
    const next = withRole(metadataTags(cell.model), role, name);
    if (next.length === 0) {
      cell.model.deleteMetadata('tags');
    } else {
      cell.model.setMetadata('tags', next);
    }
    this._publishActiveCell();
  }

  private _onCurrentChanged(): void {
    const panel = this._tracker.currentWidget;
    if (panel === this._panel) {
      return;
    }
    this._detach();
    this._panel = panel;
    if (panel === null) {
      this._model.setNotebook(null);
      return;
    }
    void panel.context.ready.then(() => {
      if (this._panel !== panel || panel.model === null) {
        return;
      }
      this._attach(panel, panel.model);
    });
  }

  private _attach(panel: NotebookPanel, notebook: INotebookModel): void {
    notebook.cells.changed.connect(this._onCellsChanged, this);
    for (const cell of notebook.cells) {
      this._watchCell(cell);
    }
    panel.context.pathChanged.connect(this._onPathChanged, this);
    panel.disposed.connect(this._onCurrentChanged, this);
    this._model.setNotebook(sourceOf(panel));
    this._onActiveCellChanged();
  }

  private _detach(): void {
    const panel = this._panel;
    if (panel === null) {
      return;
    }
    panel.model?.cells.changed.disconnect(this._onCellsChanged, this);
    panel.context.pathChanged.disconnect(this._onPathChanged, this);
    panel.disposed.disconnect(this._onCurrentChanged, this);
    for (const cell of this._cells) {
      cell.sharedModel.changed.disconnect(this._onCellChanged, this);
    }
    this._cells.clear();
    for (const cell of panel.content.widgets) {
      cell.removeClass(SELECTED_CLASS);
    }
    this._panel = null;
  }

  private _onPathChanged(): void {
    if (this._panel !== null) {
      this._model.setNotebook(sourceOf(this._panel));
    }
  }

  private _watchCell(cell: ICellModel): void {
    if (!this._cells.has(cell)) {
      this._cells.add(cell);
      cell.sharedModel.changed.connect(this._onCellChanged, this);
    }
  }

  private _onCellsChanged(
    _: unknown,
    change: IObservableList.IChangedArgs<ICellModel>
  ): void {
    for (const cell of change.newValues) {
      this._watchCell(cell);
    }
    if (change.type === 'remove' || change.type === 'clear') {
      const present = new Set(this._panel?.model?.cells ?? []);
      for (const cell of [...this._cells]) {
        if (!present.has(cell)) {
          cell.sharedModel.changed.disconnect(this._onCellChanged, this);
          this._cells.delete(cell);
        }
      }
    }
    this._model.scheduleLineage();
  }

  private _onCellChanged(_: unknown, change: ISharedChange): void {
    if (change.sourceChange || change.metadataChange) {
      this._model.scheduleLineage();
      if (
        this._activeCell !== null &&
        this._activeCell.model.sharedModel === _
      ) {
        this._publishActiveCell();
      }
    }
  }

  private _onActiveCellChanged(): void {
    const panel = this._panel;
    this._activeCell =
      panel !== null && this._tracker.currentWidget === panel
        ? panel.content.activeCell
        : null;
    this._publishActiveCell();
  }

  private _publishActiveCell(): void {
    const cell = this._activeCell;
    const panel = this._panel;
    if (cell === null || panel === null || cell.isDisposed) {
      this._model.setActiveCell(null);
      return;
    }
    const index = panel.content.widgets.indexOf(cell);
    const taken = this._model.lineage?.steps.map(s => s.name) ?? [];
    const tagged = roleOf(metadataTags(cell.model));
    const written = roleOf(optionLineTags(cell.model.sharedModel.getSource()));
    this._model.setActiveCell({
      id: cell.model.id,
      index,
      cellType: cell.model.type,
      role: tagged ?? written,
      roleInSource: tagged === null && written !== null,
      suggestedName: freeStepName(headingAbove(panel, index) ?? 'step', taken)
    });
  }

  private _highlight(): void {
    const panel = this._panel;
    if (panel === null) {
      return;
    }
    const node: IGraphNode | null = this._model.selected;
    const ids = new Set(node?.cells.map(c => c.id) ?? []);
    for (const cell of panel.content.widgets) {
      cell.toggleClass(SELECTED_CLASS, ids.has(cell.model.id));
    }
  }

  private async _show(jump: ICellJump): Promise<void> {
    const panel = this._panel;
    if (panel === null) {
      return;
    }
    const notebook = panel.content;
    const index = notebook.widgets.findIndex(c => c.model.id === jump.cellId);
    if (index < 0) {
      return;
    }
    const cell = notebook.widgets[index];
    notebook.activeCellIndex = index;
    await notebook.scrollToCell(cell, 'start');
    if (jump.line !== null && cell.editor !== null) {
      const line = Math.max(
        0,
        Math.min(jump.line - 1, cell.editor.lineCount - 1)
      );
      cell.editor.setCursorPosition({ line, column: 0 });
    }
  }

  dispose(): void {
    this._detach();
    this._tracker.currentChanged.disconnect(this._onCurrentChanged, this);
    this._tracker.activeCellChanged.disconnect(this._onActiveCellChanged, this);
  }
}

function metadataTags(cell: ICellModel): string[] {
  const tags = cell.getMetadata('tags');
  return Array.isArray(tags) ? (tags as string[]) : [];
}

/** Every tag nbops reads: `metadata.tags`, then the `#| nbops:` lines. */
function tagsOf(cell: ICellModel): string[] {
  return [
    ...metadataTags(cell),
    ...optionLineTags(cell.sharedModel.getSource())
  ];
}

/** The text of the nearest markdown heading above the cell. */
function headingAbove(panel: NotebookPanel, index: number): string | null {
  const cells = panel.content.widgets;
  for (let i = index - 1; i >= 0; i--) {
    const model = cells[i].model;
    if (model.type === 'markdown') {
      const heading = /^#{1,6}\s+(.+)$/m.exec(model.sharedModel.getSource());
      if (heading) {
        return heading[1].trim();
      }
    }
  }
  return null;
}

function sourceOf(panel: NotebookPanel): INotebookSource {
  return {
    path: panel.context.path,
    content: () => leanNotebook(panel.model?.toJSON()),
    parameterCells: () => parameterCells(panel),
    save: async () => {
      if (panel.model?.dirty) {
        await panel.context.save();
      }
    }
  };
}

function parameterCells(panel: NotebookPanel): ICellRef[] {
  const refs: ICellRef[] = [];
  panel.content.widgets.forEach((cell, index) => {
    if (roleOf(tagsOf(cell.model))?.role === 'parameters') {
      refs.push({ index, id: cell.model.id });
    }
  });
  return refs;
}

type NotebookJSON = {
  cells?: Array<Record<string, unknown>>;
  [key: string]: unknown;
};

/** The notebook without outputs and attachments: all the analysis reads, a fraction of the bytes. */
export function leanNotebook(content: unknown): unknown {
  const notebook = (content ?? {}) as NotebookJSON;
  return {
    ...notebook,
    cells: (notebook.cells ?? []).map(cell => {
      const lean: Record<string, unknown> = {
        cell_type: cell.cell_type,
        id: cell.id,
        metadata: cell.metadata ?? {},
        source: cell.source ?? ''
      };
      if (cell.cell_type === 'code') {
        lean.outputs = [];
        lean.execution_count = null;
      }
      return lean;
    })
  };
}
