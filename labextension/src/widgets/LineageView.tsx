/** The "Lineage" section: the step graph of the active notebook and its diagnostics. */
import { ReactWidget, Toolbar } from '@jupyterlab/ui-components';
import React, { useCallback } from 'react';

import type { NbopsModel } from '../model';
import { ApiError } from '../request';
import type { IDiagnostic } from '../tokens';
import { GraphViewport } from '../viewport';
import { GraphPanel, ZoomButtons } from './GraphPanel';
import { useSignals } from './useSignal';

export class LineageView extends ReactWidget {
  /** Shown in the section's title bar by the sidebar's accordion. */
  readonly toolbar = new Toolbar();
  private readonly _viewport = new GraphViewport();

  constructor(private readonly _model: NbopsModel) {
    super();
    this.addClass('nbops-LineageView');
    this.title.label = 'Lineage';
    this.toolbar.addItem(
      'zoom',
      ReactWidget.create(<ZoomButtons viewport={this._viewport} />)
    );
    _model.lineageChanged.connect(this._onLineage, this);
    this._onLineage();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.lineageChanged.disconnect(this._onLineage, this);
    this._viewport.dispose();
    this.toolbar.dispose();
    super.dispose();
  }

  protected render(): JSX.Element {
    return <Lineage model={this._model} viewport={this._viewport} />;
  }

  private _onLineage(): void {
    const layout = this._model.layout;
    this._viewport.setGraph(
      layout && layout.nodes.length > 0
        ? { width: layout.width, height: layout.height }
        : null,
      this._model.notebookPath
    );
  }
}

interface ILineageProps {
  model: NbopsModel;
  viewport: GraphViewport;
}

function Lineage({ model, viewport }: ILineageProps): JSX.Element {
  useSignals(
    [model.lineageChanged, model.selectionChanged],
    () => model.revision
  );
  const select = useCallback((id: string | null) => model.select(id), [model]);
  const { lineage, layout, lineageError: error } = model;
  if (model.notebookPath === null) {
    return (
      <p className="nbops-empty" data-testid="nbops-no-notebook">
        Open a notebook to see its pipeline.
      </p>
    );
  }
  return (
    <div
      className="nbops-Lineage"
      data-testid="nbops-lineage"
      data-revision={model.revision}
      data-latency-ms={model.latencyMs ?? ''}
      data-timings={JSON.stringify(model.timings)}
      data-loading={model.loading}
    >
      <div className="nbops-Lineage-header">
        <span className="nbops-Lineage-summary" data-testid="nbops-summary">
          {lineage
            ? summary(lineage.summary)
            : model.loading
              ? 'analysing…'
              : ''}
        </span>
      </div>
      {error && <ErrorNote error={error} />}
      {lineage && lineage.steps.length === 0 && (
        <p className="nbops-empty">
          No steps yet: give a code cell the role <code>step</code> (above) to
          start a pipeline.
        </p>
      )}
      {layout && layout.nodes.length > 0 && (
        <GraphPanel
          layout={layout}
          viewport={viewport}
          selected={model.selected?.id ?? null}
          onSelect={select}
        />
      )}
      {lineage && (
        <Diagnostics
          diagnostics={lineage.diagnostics}
          onShow={d => d.cell_id && model.showCell(d.cell_id, d.line)}
        />
      )}
    </div>
  );
}

function summary(s: {
  steps: number;
  errors: number;
  warnings: number;
}): string {
  const plural = (n: number, word: string): string =>
    `${n} ${word}${n === 1 ? '' : 's'}`;
  return [
    plural(s.steps, 'step'),
    plural(s.errors, 'error'),
    plural(s.warnings, 'warning')
  ].join(' · ');
}

export function ErrorNote({ error }: { error: Error }): JSX.Element {
  return (
    <div className="nbops-error" role="alert" data-testid="nbops-error">
      <div>{error.message}</div>
      {error instanceof ApiError && error.fix && (
        <div className="nbops-fix">{error.fix}</div>
      )}
    </div>
  );
}

interface IDiagnosticsProps {
  diagnostics: IDiagnostic[];
  onShow(diagnostic: IDiagnostic): void;
}

function Diagnostics({
  diagnostics,
  onShow
}: IDiagnosticsProps): JSX.Element | null {
  if (diagnostics.length === 0) {
    return null;
  }
  return (
    <ul className="nbops-Diagnostics" data-testid="nbops-diagnostics">
      {diagnostics.map((d, i) => (
        <li key={i}>
          <button
            className={`nbops-Diagnostic nbops-mod-${d.severity}`}
            data-testid="nbops-diagnostic"
            data-cell-id={d.cell_id ?? ''}
            disabled={!d.cell_id}
            title={d.cell_id ? 'Show the cell' : undefined}
            onClick={() => onShow(d)}
          >
            <span className="nbops-Diagnostic-where">
              {d.severity}
              {d.cell_index !== null ? ` · cell ${d.cell_index}` : ''}
              {d.line !== null ? ` · line ${d.line}` : ''}
            </span>
            <span className="nbops-Diagnostic-message">{d.message}</span>
            {d.fix && <span className="nbops-fix">{d.fix}</span>}
          </button>
        </li>
      ))}
    </ul>
  );
}
