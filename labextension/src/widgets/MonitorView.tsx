/**
 * The deployment's watch and its serving version's monitoring, inside the Deploy section: the
 * watch label with its reason, a notice when the watch rolled a version back by itself, the
 * window's figures, and per input field and output a small chart of window against reference.
 */
import React from 'react';

import {
  chartGeometry,
  routeCharts,
  routeFigures,
  score,
  percent,
  watchView,
  type IFieldChart
} from '../monitor';
import type { IDeployment, IMonitoringView } from '../tokens';

/** The watch's badge and reason; a rollback it made is the notice's to say. */
export function WatchLine({ deployment }: { deployment: IDeployment }) {
  const watch = watchView(deployment);
  if (
    watch === null ||
    (watch.state === 'rolled-back' && deployment.rolled_back)
  ) {
    return null;
  }
  return (
    <div
      className={`nbops-Watch nbops-mod-${watch.state}`}
      data-testid="nbops-watch"
      data-watch={watch.state}
    >
      <WatchBadge state={watch.state} />
      <span className="nbops-Watch-detail" data-testid="nbops-watch-detail">
        {watch.detail}
      </span>
    </div>
  );
}

function WatchBadge({ state }: { state: string }) {
  return <span className={`nbops-Badge nbops-mod-${state}`}>{state}</span>;
}

/**
 * A rollback the watch made by itself, said for as long as the version that came back serves;
 * it carries the watch's label then, unless a newer version is being watched.
 */
export function RollbackNotice({ deployment }: { deployment: IDeployment }) {
  const rolled = deployment.rolled_back;
  if (!rolled) {
    return null;
  }
  const watch = watchView(deployment);
  const labelled = watch?.state === 'rolled-back';
  const at = new Date(rolled.at * 1000).toLocaleTimeString();
  return (
    <div
      className="nbops-RollbackNotice"
      role="alert"
      data-testid="nbops-rollback-notice"
      data-version={rolled.version}
    >
      <div
        className="nbops-Watch"
        data-testid={labelled ? 'nbops-watch' : undefined}
        data-watch={labelled ? 'rolled-back' : undefined}
      >
        <WatchBadge state="rolled-back" />
        <b>
          v{rolled.version} stopped at {at}; v{deployment.version} serves again.
        </b>
      </div>
      <div
        className="nbops-RollbackNotice-reason"
        data-testid="nbops-rollback-reason"
      >
        {rolled.reason}
      </div>
    </div>
  );
}

interface IMonitoringProps {
  view: IMonitoringView | null;
  error: Error | null;
}

export function Monitoring({ view, error }: IMonitoringProps) {
  if (view === null) {
    return error ? (
      <div className="nbops-Monitoring nbops-empty">
        monitoring: {error.message}
      </div>
    ) : null;
  }
  const m = view.monitoring;
  if (m === null) {
    return (
      <div
        className="nbops-Monitoring nbops-empty"
        data-testid="nbops-monitoring-off"
      >
        {view.monitoring_error ?? 'no monitoring'}
      </div>
    );
  }
  return (
    <div className="nbops-Monitoring" data-testid="nbops-monitoring">
      <h3 className="nbops-heading">Monitoring</h3>
      <ChartLegend />
      {m.routes.map(route => (
        <div key={route.route} className="nbops-Route" data-route={route.route}>
          <dl className="nbops-Facts nbops-Figures">
            <dt>route</dt>
            <dd>POST /{route.route}</dd>
            {routeFigures(route, view).map(f => (
              <React.Fragment key={f.label}>
                <dt>{f.label}</dt>
                <dd
                  className={f.alarm ? 'nbops-mod-alarm' : ''}
                  data-figure={f.label}
                >
                  {f.value}
                </dd>
              </React.Fragment>
            ))}
          </dl>
          {route.reference === null ? (
            <div className="nbops-empty">
              No drift: {route.reason ?? 'the route has no reference profile.'}
            </div>
          ) : (
            <div className="nbops-Charts">
              {routeCharts(route).map(chart => (
                <FieldChart
                  key={`${chart.role}:${chart.name}`}
                  chart={chart}
                  maxDrift={m.max_drift}
                />
              ))}
            </div>
          )}
        </div>
      ))}
    </div>
  );
}

const WIDTH = 240;
const HEIGHT = 44;

function FieldChart({
  chart,
  maxDrift
}: {
  chart: IFieldChart;
  maxDrift: number;
}) {
  const geometry = chartGeometry(chart.bars, WIDTH, HEIGHT);
  const first = chart.bars[0]?.label ?? '';
  const last = chart.bars[chart.bars.length - 1]?.label ?? '';
  return (
    <figure
      className={`nbops-Chart${chart.flagged ? ' nbops-mod-drifted' : ''}`}
      data-testid="nbops-field"
      data-field={chart.name}
      data-role={chart.role}
      data-flagged={String(chart.flagged)}
    >
      <figcaption className="nbops-Chart-caption">
        <span className="nbops-Chart-name">
          {chart.name}
          {chart.role === 'output' && (
            <span className="nbops-Chart-role"> (output)</span>
          )}
        </span>
        <span
          className="nbops-Chart-psi"
          title={`Population stability index of the window against the reference; above ${maxDrift} counts as drift`}
        >
          PSI {score(chart.psi)}
        </span>
        {chart.flagged && (
          <span className="nbops-Drifted" data-testid="nbops-drifted">
            drifted
          </span>
        )}
      </figcaption>
      <svg
        className="nbops-Chart-bars"
        viewBox={`0 0 ${geometry.width} ${geometry.height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${chart.name}: window against reference`}
      >
        <line
          className="nbops-Chart-axis"
          x1={0}
          x2={geometry.width}
          y1={geometry.height - 0.5}
          y2={geometry.height - 0.5}
        />
        {chart.bars.map((bar, i) => (
          <g key={i}>
            <title>
              {`${bar.label}: reference ${percent(bar.reference)}, window ${percent(bar.window)}`}
            </title>
            <rect
              className="nbops-Chart-reference"
              {...geometry.reference[i]}
            />
            <rect className="nbops-Chart-window" {...geometry.window[i]} />
          </g>
        ))}
      </svg>
      <div className="nbops-Chart-range">
        {chart.bars.length <= 4 ? (
          chart.bars.map(b => <span key={b.label}>{b.label}</span>)
        ) : (
          <>
            <span>{first}</span>
            <span>{last}</span>
          </>
        )}
      </div>
      <div className="nbops-Chart-note">
        {chart.windowCount} in window
        {chart.windowMissing > 0 &&
          ` · ${percent(chart.windowMissing)} missing (reference ${percent(chart.referenceMissing)})`}
      </div>
    </figure>
  );
}

/** The legend once per panel: which bar is which. */
function ChartLegend() {
  return (
    <div className="nbops-Chart-legend">
      <span className="nbops-Chart-key nbops-Chart-reference" /> reference
      <span className="nbops-Chart-key nbops-Chart-window" /> window
    </div>
  );
}
