/**
 * Metric-gated promotion in the Deploy section: the comparison before a deploy (the serving
 * version's metrics against this notebook's last run, per declared gate and duel) and a
 * finished deploy's verdict, refused with both figures or promoted.
 */
import React from 'react';

import {
  comparisonOf,
  declaredIn,
  formatValue,
  outcomeOf,
  type IComparisonRow
} from '../promotion';
import type { IChallengerView, IJobResult } from '../tokens';

export function Comparison({
  view,
  error
}: {
  view: IChallengerView | null;
  error: Error | null;
}): JSX.Element | null {
  if (error !== null) {
    return (
      <div
        className="nbops-Comparison nbops-error"
        data-testid="nbops-comparison-error"
      >
        metric gates: {error.message}
      </div>
    );
  }
  if (view === null) {
    return null;
  }
  const c = comparisonOf(view);
  const servingVersion = view.serving ? `v${view.serving.version}` : 'serving';
  return (
    <div
      className={`nbops-Comparison nbops-mod-${c.state}`}
      data-testid="nbops-comparison"
      data-state={c.state}
    >
      <h3 className="nbops-heading">Before deploying</h3>
      <div
        className="nbops-Comparison-headline"
        data-testid="nbops-comparison-headline"
      >
        {c.serving}; {c.headline}
      </div>
      {c.rows.length > 0 && (
        <RowsTable
          rows={c.rows}
          servingLabel={servingVersion}
          challengerLabel="last run"
        />
      )}
      <div className="nbops-Comparison-notes">
        {c.tolerance && (
          <span data-testid="nbops-tolerance">{c.tolerance}</span>
        )}
        {c.note && <span>{c.note}</span>}
        {c.sources.length > 0 && (
          <span title={c.sources.join('\n')}>
            gates from {declaredIn(c.sources)}
          </span>
        )}
      </div>
    </div>
  );
}

/** A finished deploy's verdict: refused (with both figures) or promoted. */
export function Outcome({
  result,
  tolerance
}: {
  result: IJobResult | null;
  tolerance: number;
}): JSX.Element | null {
  const outcome = outcomeOf(result, tolerance);
  if (outcome === null) {
    return null;
  }
  const champion = result?.verdict?.champion;
  return (
    <div
      className={`nbops-Outcome ${outcome.refused ? 'nbops-mod-refused' : 'nbops-mod-promoted'}`}
      data-testid="nbops-outcome"
      data-refused={outcome.refused}
    >
      <div
        className="nbops-Outcome-text"
        data-testid="nbops-outcome-text"
        title={outcome.text}
      >
        {outcome.summary}
      </div>
      {outcome.rows.length > 0 && (
        <RowsTable
          rows={outcome.rows}
          servingLabel={
            typeof champion === 'number' ? `v${champion}` : 'serving'
          }
          challengerLabel={
            typeof result?.version === 'number' ? `v${result.version}` : 'new'
          }
        />
      )}
    </div>
  );
}

function RowsTable({
  rows,
  servingLabel,
  challengerLabel
}: {
  rows: IComparisonRow[];
  servingLabel: string;
  challengerLabel: string;
}): JSX.Element {
  return (
    <table className="nbops-Gates" data-testid="nbops-gates">
      <thead>
        <tr>
          <th>metric</th>
          <th>{servingLabel}</th>
          <th>{challengerLabel}</th>
          <th>rule</th>
          <th aria-label="passed" />
        </tr>
      </thead>
      <tbody>
        {rows.map(row => (
          <tr
            key={row.key}
            className={`nbops-Gate nbops-mod-${mark(row.passed)}`}
            data-testid="nbops-gate"
            data-metric={row.metric}
            data-kind={row.kind}
            data-passed={String(row.passed)}
            title={row.reason}
          >
            <td>{row.metric}</td>
            <td data-testid="nbops-gate-serving">{formatValue(row.serving)}</td>
            <td data-testid="nbops-gate-challenger">
              {formatValue(row.challenger)}
            </td>
            <td>{row.rule}</td>
            <td className="nbops-Gate-mark">
              {row.passed === null ? '·' : row.passed ? '✓' : '✗'}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function mark(passed: boolean | null): string {
  return passed === null ? 'pending' : passed ? 'passed' : 'failed';
}
