/**
 * The "Deploy" section: one button that runs, builds and deploys the active notebook, its
 * stages live, then the service (URL, docs, version, metrics) and every version with rollback;
 * beside it the Export menu.
 */
import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import type { NbopsModel } from '../model';
import {
  STEP_SEPARATOR,
  canCancel,
  isBusy,
  type IDeployState
} from '../status';
import type { IDeployment, IDeploymentVersion } from '../tokens';
import { Export } from './ExportView';
import { ErrorNote } from './LineageView';
import { Monitoring, RollbackNotice, WatchLine } from './MonitorView';
import { Comparison, Outcome } from './PromotionView';
import { useSignals } from './useSignal';

export class DeployView extends ReactWidget {
  constructor(private readonly _model: NbopsModel) {
    super();
    this.addClass('nbops-DeployView');
    this.title.label = 'Deploy';
  }

  protected render(): JSX.Element {
    return <Deploy model={this._model} />;
  }
}

function Deploy({ model }: { model: NbopsModel }): JSX.Element {
  useSignals(
    [
      model.deployChanged,
      model.deploymentsChanged,
      model.lineageChanged,
      model.monitoringChanged,
      model.challengerChanged
    ],
    () => model.deploy
  );
  const name = model.deploymentName;
  const state = model.deploy;
  const mine = model.deployments.find(d => d.name === name) ?? null;
  const others = model.deployments.filter(d => d.name !== name);
  const errors = model.lineage?.summary.errors ?? 0;
  const busy =
    isBusy(state) || ['building', 'starting'].includes(String(mine?.status));
  return (
    <div className="nbops-Deploy" data-testid="nbops-deploy-panel">
      {name === null ? (
        <p className="nbops-empty">Open a notebook to deploy it.</p>
      ) : (
        <div className="nbops-Deploy-actions">
          <button
            className="jp-Button jp-mod-styled jp-mod-accept nbops-Deploy-button"
            data-testid="nbops-deploy"
            disabled={busy || errors > 0}
            title={
              errors > 0
                ? `Fix the notebook's ${errors} error(s) first (see Lineage).`
                : 'Run the pipeline, build the service and deploy it, health-gated.'
            }
            onClick={() => void model.deployNotebook()}
          >
            {busy ? 'Deploying…' : `Deploy ${name}`}
          </button>
          <Export model={model} busy={busy} />
        </div>
      )}
      {name !== null && (
        <Comparison view={model.challenger} error={model.challengerError} />
      )}
      {state.phase !== 'idle' && (
        <Progress
          state={state}
          tolerance={model.challenger?.gates.tolerance ?? 0}
          onDismiss={() => model.dismissDeploy()}
          onCancel={() => void model.cancelDeploy()}
        />
      )}
      {mine && <Service deployment={mine} busy={busy} model={model} />}
      {model.deploymentsError && <ErrorNote error={model.deploymentsError} />}
      {others.length > 0 && (
        <div className="nbops-Deploy-others">
          <h3 className="nbops-heading">Other deployments</h3>
          <ul>
            {others.map(d => (
              <li key={d.name}>
                <StatusBadge status={String(d.status)} /> {d.name} v{d.version}{' '}
                {d.url && d.status === 'healthy' && (
                  <a href={d.url} target="_blank" rel="noopener noreferrer">
                    {d.url}
                  </a>
                )}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

function Progress({
  state,
  tolerance,
  onDismiss,
  onCancel
}: {
  state: IDeployState;
  /** The declared tolerance, to word the verdict's duels. */
  tolerance: number;
  onDismiss(): void;
  onCancel(): void;
}): JSX.Element {
  const step = state.step;
  return (
    <div
      className={`nbops-Progress nbops-mod-${state.phase}`}
      data-testid="nbops-progress"
    >
      <div className="nbops-Progress-headline">
        <span data-testid="nbops-deploy-status" data-phase={state.phase}>
          {state.headline.split(STEP_SEPARATOR).map((part, i) => (
            <React.Fragment key={i}>
              {i > 0 && STEP_SEPARATOR}
              <span className="nbops-Progress-part">{part}</span>
            </React.Fragment>
          ))}
        </span>
        {!isBusy(state) && (
          <button className="nbops-linkButton" onClick={onDismiss} title="Hide">
            ×
          </button>
        )}
      </div>
      {(state.phase === 'running' || state.phase === 'cancelling') && (
        <div className="nbops-Progress-actions">
          <button
            className="jp-Button jp-mod-styled jp-mod-warn"
            data-testid="nbops-cancel"
            disabled={!canCancel(state)}
            title="Stop the job: its process is ended, and the run and version it was making are recorded as cancelled."
            onClick={onCancel}
          >
            {state.phase === 'cancelling' ? 'Cancelling…' : 'Cancel'}
          </button>
        </div>
      )}
      {step && step.total > 0 && state.phase === 'running' && (
        <progress
          className="nbops-Progress-bar"
          max={step.total}
          value={Math.min(step.index ?? 0, step.total)}
        />
      )}
      {state.stages.length > 0 &&
        (isBusy(state) ? (
          <Stages state={state} />
        ) : (
          <details className="nbops-Progress-stages">
            <summary>
              {state.stages.length} stages, {totalSeconds(state)} s
            </summary>
            <Stages state={state} />
          </details>
        ))}
      {(state.phase === 'healthy' || state.phase === 'refused') && (
        <Outcome result={state.result} tolerance={tolerance} />
      )}
      {(state.phase === 'failed' || state.phase === 'cancelled') &&
        state.log.length > 0 && (
          <details className="nbops-Progress-log">
            <summary>log</summary>
            <pre>{state.log.slice(-40).join('\n')}</pre>
          </details>
        )}
    </div>
  );
}

function Stages({ state }: { state: IDeployState }): JSX.Element {
  return (
    <ol className="nbops-Stages">
      {state.stages.map((stage, i) => (
        <li
          key={i}
          className={`nbops-Stage nbops-mod-${stage.state}`}
          data-stage={stage.name}
        >
          <span className="nbops-Stage-mark" aria-hidden="true">
            {MARKS[stage.state] ?? '·'}
          </span>
          <span className="nbops-Stage-label">{stage.label}</span>
          {stage.seconds !== null && (
            <span className="nbops-Stage-time">{stage.seconds}s</span>
          )}
          {stage.message && (
            <div className="nbops-Stage-message">{stage.message}</div>
          )}
        </li>
      ))}
    </ol>
  );
}

function totalSeconds(state: IDeployState): number {
  const sum = state.stages.reduce(
    (total, stage) => total + (stage.seconds ?? 0),
    0
  );
  return Math.round(sum * 10) / 10;
}

const MARKS: Record<string, string> = {
  pending: '○',
  running: '◐',
  succeeded: '✓',
  failed: '✗',
  skipped: '–'
};

interface IServiceProps {
  deployment: IDeployment;
  busy: boolean;
  model: NbopsModel;
}

function Service({ deployment: d, busy, model }: IServiceProps): JSX.Element {
  const serving = d.status === 'healthy' && d.url;
  const monitoring = model.monitoring;
  const result = model.deploy.result;
  const metrics =
    d.metrics ?? (result?.name === d.name ? result?.metrics : null) ?? null;
  return (
    <div
      className="nbops-Service"
      data-testid="nbops-service"
      data-status={d.status}
    >
      <div className="nbops-Service-title">
        <StatusBadge status={String(d.status)} />
        <span>
          {d.name} <span data-testid="nbops-service-version">v{d.version}</span>
        </span>
      </div>
      <WatchLine deployment={d} />
      <RollbackNotice deployment={d} />
      {serving && (
        <dl className="nbops-Facts">
          <dt>URL</dt>
          <dd>
            <a
              href={d.url!}
              target="_blank"
              rel="noopener noreferrer"
              data-testid="nbops-service-url"
            >
              {d.url}
            </a>
          </dd>
          <dt>docs</dt>
          <dd>
            <a
              href={`${d.url}/docs`}
              target="_blank"
              rel="noopener noreferrer"
              data-testid="nbops-service-docs"
            >
              {d.url}/docs
            </a>
          </dd>
          <dt>health</dt>
          <dd>{d.health}</dd>
          {d.uptime_s !== null && (
            <>
              <dt>up</dt>
              <dd>{duration(d.uptime_s)}</dd>
            </>
          )}
          {d.requests !== null && (
            <>
              <dt>requests</dt>
              <dd>{d.requests}</dd>
            </>
          )}
        </dl>
      )}
      {!serving && d.reason && <div className="nbops-error">{d.reason}</div>}
      {serving && (
        <Monitoring
          view={monitoring?.deployment.name === d.name ? monitoring : null}
          error={model.monitoringError}
        />
      )}
      {metrics && Object.keys(metrics).length > 0 && (
        <dl className="nbops-Facts nbops-Metrics" data-testid="nbops-metrics">
          {Object.entries(metrics).map(([key, value]) => (
            <React.Fragment key={key}>
              <dt>{key}</dt>
              <dd>{formatMetric(value)}</dd>
            </React.Fragment>
          ))}
        </dl>
      )}
      <History
        deployment={d}
        busy={busy}
        onRollback={v => void model.rollback(d.name, v)}
      />
    </div>
  );
}

interface IHistoryProps {
  deployment: IDeployment;
  busy: boolean;
  onRollback(version: number): void;
}

function History({
  deployment,
  busy,
  onRollback
}: IHistoryProps): JSX.Element | null {
  const versions = [...(deployment.history ?? [])].sort(
    (a, b) => b.version - a.version
  );
  if (versions.length === 0) {
    return null;
  }
  const current = versions.find(v => v.current)?.version ?? null;
  return (
    <div className="nbops-History">
      <h3 className="nbops-heading">History</h3>
      <table data-testid="nbops-history">
        <tbody>
          {versions.map(v => (
            <tr
              key={v.version}
              className={v.current ? 'nbops-mod-current' : ''}
              data-version={v.version}
            >
              <td>v{v.version}</td>
              <td>
                <StatusBadge status={String(v.status)} />
              </td>
              <td
                title={`${v.started_by}\n${new Date(v.created_at * 1000).toLocaleString()}`}
              >
                {ago(v.created_at)}
              </td>
              <td>
                {canRollBack(v, current) && (
                  <button
                    className="nbops-linkButton"
                    data-testid="nbops-rollback"
                    disabled={busy}
                    title={`Serve v${v.version} again (health-gated, like a deploy)`}
                    onClick={() => onRollback(v.version)}
                  >
                    roll back
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function canRollBack(v: IDeploymentVersion, current: number | null): boolean {
  return v.healthy_at !== null && !v.current && v.version !== current;
}

function StatusBadge({ status }: { status: string }): JSX.Element {
  return <span className={`nbops-Badge nbops-mod-${status}`}>{status}</span>;
}

function formatMetric(value: unknown): string {
  return typeof value === 'number'
    ? String(Math.round(value * 10000) / 10000)
    : String(value);
}

function duration(seconds: number): string {
  if (seconds < 60) {
    return `${Math.round(seconds)} s`;
  }
  if (seconds < 3600) {
    return `${Math.round(seconds / 60)} min`;
  }
  return `${Math.round(seconds / 360) / 10} h`;
}

function ago(epochSeconds: number): string {
  return `${duration(Math.max(0, Date.now() / 1000 - epochSeconds))} ago`;
}
