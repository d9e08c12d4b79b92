/** The "Lineage" section: the step graph of the active notebook and its diagnostics. */
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import type { NbopsModel } from '../model';
import { ApiError } from '../request';
import type { IDiagnostic } from '../tokens';
import { GraphView } from './GraphView';
import { useSignals } from './useSignal';

export class LineageView extends ReactWidget {
  constructor(private readonly _model: NbopsModel) {
    super();
    this.addClass('nbops-LineageView');
    this.title.label = 'Lineage';
  }

  protected render(): JSX.Element {
    return <Lineage model={this._model} />;
  }
}

/** Below this, text in the graph is too small to read: the panel scrolls instead. */
const MIN_SCALE = 0.7;

/** The width of an element, kept up to date as the panel is resized. */
function useWidth(): [React.RefObject<HTMLDivElement>, number] {
  const ref = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const element = ref.current;
    if (element === null) {
      return;
    }
    const observer = new ResizeObserver(entries =>
      setWidth(entries[0].contentRect.width)
    );
    observer.observe(element);
    return () => observer.disconnect();
  });
  return [ref, width];
}

function Lineage({ model }: { model: NbopsModel }): JSX.Element {
  const [fit, setFit] = useState(true);
  const [graphBox, width] = useWidth();
  useSignals(
    [model.lineageChanged, model.selectionChanged],
    () => model.revision
  );
  const select = useCallback((id: string | null) => model.select(id), [model]);
  const { lineage, layout, lineageError: error } = model;
  const scale =
    fit && layout && width > 0
      ? Math.max(MIN_SCALE, Math.min(1, width / Math.max(1, layout.width)))
      : 1;
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
        {layout && layout.width > 0 && (
          <button
            className="nbops-linkButton"
            title={
              fit ? 'Show the graph at full size' : 'Fit the graph to the panel'
            }
            onClick={() => setFit(!fit)}
          >
            {fit ? '100%' : 'fit'}
          </button>
        )}
      </div>
      {error && <ErrorNote error={error} />}
      {lineage && lineage.steps.length === 0 && (
        <p className="nbops-empty">
          No steps yet: give a code cell the role <code>step</code> (above) to
          start a pipeline.
        </p>
      )}
      {layout && layout.nodes.length > 0 && (
        <div className="nbops-Lineage-graph" ref={graphBox}>
          <GraphView
            layout={layout}
            selected={model.selected?.id ?? null}
            scale={scale}
            onSelect={select}
          />
        </div>
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
