/**
 * The shapes the nbops REST API answers with (see README.md: "The lineage JSON" and "JupyterLab"),
 * and the ids of the sidebar's plugin, command and widget.
 */

export const PLUGIN_ID = 'nbops:plugin';
export const SIDEBAR_ID = 'nbops-sidebar';

export namespace CommandIDs {
  export const show = 'nbops:show-sidebar';
  export const deploy = 'nbops:deploy';
  export const refresh = 'nbops:refresh-lineage';
}

/** The settings of schema/plugin.json. */
export interface ISettings {
  /** Milliseconds of quiet after an edit or a tag change before the lineage is asked for. */
  debounceMs: number;
  /** The stable port of a new deployment; null lets nbops choose (8000, or as before). */
  deploymentPort: number | null;
  /** Milliseconds between two looks at the deployments (for deploys made from the CLI). */
  pollMs: number;
  /** The artifact store of the last Kubeflow export (remembered for the next one). */
  exportStore: string;
}

export const DEFAULT_SETTINGS: ISettings = {
  debounceMs: 200,
  deploymentPort: null,
  pollMs: 3000,
  exportStore: ''
};

// The lineage JSON (`nbops lineage NB --format json`; schema_version 1).

export interface ICellRef {
  index: number;
  id: string;
}

export interface IParameter {
  name: string;
  default: unknown;
  type: string;
  help: string;
}

export interface IStep {
  name: string;
  /** The name as the notebook writes it (`data-loading`); `name` is its Python form. */
  title?: string;
  cells: ICellRef[];
  reads: string[];
  writes: string[];
  inputs: string[];
  outputs: string[];
  parameters: string[];
  after: string[];
  files_written: string[];
  /** Data files the step reads (absent from servers older than data-aware caching). */
  files?: IStepFile[];
}

/** A data file a step reads: seen in its code (`static`) or named by a `reads=` tag (a glob). */
export interface IStepFile {
  path: string;
  found: 'static' | 'reads' | string;
}

export interface IEdge {
  source: string;
  target: string;
  artifacts: string[];
  kind: 'data' | 'after';
}

export interface IArtifact {
  name: string;
  producer: string;
  consumers: string[];
}

export interface IEndpointArgument {
  name: string;
  annotation: string | null;
  default: string | null;
  kind: string;
}

export interface IEndpoint {
  name: string;
  route: string;
  cells: ICellRef[];
  artifacts: string[];
  producers: Record<string, string | null>;
  signature: string;
  arguments: IEndpointArgument[];
  returns: string | null;
  docstring: string;
  /** Whether the function takes a list of requests' inputs (`serve batch`). */
  batch?: boolean;
}

export interface ITest {
  step: string | null;
  cells: ICellRef[];
  /** Which step made each value the test reads, when the server says (added later). */
  producers?: Record<string, string | null>;
}

export interface IMetrics {
  names: string[];
  cells: ICellRef[];
  /** Which step made each value the metrics read, when the server says (added later). */
  producers?: Record<string, string | null>;
}

export type Severity = 'error' | 'warning' | 'info';

export interface IDiagnostic {
  severity: Severity;
  cell_index: number | null;
  cell_id: string | null;
  line: number | null;
  message: string;
  fix: string | null;
}

export interface ILineage {
  schema_version: number;
  nbops_version: string;
  notebook: { path: string; name: string; sha256: string };
  parameters: IParameter[];
  setup: { cells: ICellRef[] };
  steps: IStep[];
  edges: IEdge[];
  artifacts: IArtifact[];
  endpoints: IEndpoint[];
  tests: ITest[];
  metrics: IMetrics;
  diagnostics: IDiagnostic[];
  summary: { steps: number; errors: number; warnings: number };
}

// Deployments (`GET /nbops/api/deployments`, like `nbops status --format json`).

export type DeploymentStatus =
  | 'building'
  | 'starting'
  | 'healthy'
  | 'standby'
  | 'failed'
  | 'stopped'
  | 'rolled-back';

/** The watch of a promoted version (README, "The watch"); null when it is not watched. */
export type WatchState = 'watching' | 'stable' | 'degraded';

/** What the watch last judged of a version (for a rolled-back one, also why). */
export interface IWatchFigures {
  requests?: number;
  errors?: number;
  error_rate?: number | null;
  p99_ms?: number | null;
  drift?: number | null;
  drift_field?: string | null;
  at?: number;
  breach?: string;
  baseline?: IWatchFigures | null;
}

/** A version the watch rolled back by itself since the current one serves. */
export interface IRolledBack {
  version: number;
  reason: string;
  at: number;
}

/** One version of a deployment, as `nbops history NAME --format json` lists them. */
export interface IDeploymentVersion {
  name: string;
  version: number;
  status: DeploymentStatus | string;
  build_id: string;
  notebook_sha256: string;
  run_id: string | null;
  url: string | null;
  reason: string | null;
  started_by: string;
  created_at: number;
  updated_at: number;
  healthy_at: number | null;
  current: boolean;
  metrics?: Record<string, number> | null;
}

/** A name's current (else newest) version, checked now, with every version it had. */
export interface IDeployment extends IDeploymentVersion {
  pid: number | null;
  port: number | null;
  health: string;
  uptime_s: number | null;
  requests: number | null;
  notebook?: string | null;
  history: IDeploymentVersion[];
  /** The watch (absent from servers older than the watch). */
  watch?: WatchState | null;
  watch_until?: number | null;
  canary?: number | null;
  /** The watch's thresholds: max_error_rate (a fraction), max_p99_ratio, max_drift... */
  policy?: Record<string, unknown> | null;
  figures?: IWatchFigures | null;
  /** The version on standby while this one is watched. */
  standby?: number | null;
  /** "watching (25s left; v1 on standby)", "stable", "degraded: why", or "-". */
  watch_summary?: string;
  rolled_back?: IRolledBack | null;
}

// Metric-gated promotion (README, "Metric-gated promotion"): a gate against the new version's
// metrics, a duel against the serving version's.

export interface IGateResult {
  gate: string;
  value: number | null;
  /** null: the gate was not checked (no metrics were read). */
  passed: boolean | null;
  reason: string;
}

export interface IDuel {
  metric: string;
  higher_is_better: boolean;
  challenger: number | null;
  champion: number | null;
  passed: boolean;
  reason: string;
}

/** How a deploy's gatekeeper judged a build (a refused version's `figures`, plus the outcome). */
export interface IVerdict {
  gates: IGateResult[];
  must_beat: IDuel[];
  /** The serving version it was compared with, or null when nothing served. */
  champion: number | null;
  metrics: Record<string, number>;
  refused?: boolean;
  reason?: string;
}

/** `GET /nbops/api/deployments/<name>/challenger?notebook=P`: the comparison before a deploy. */
export interface IChallengerView {
  name: string;
  notebook: string;
  gated: boolean;
  gates: {
    require: string[];
    must_beat: string[];
    tolerance: number;
    sources: string[];
  };
  serving: {
    version: number;
    status: string;
    run_id: string | null;
    metrics: Record<string, number>;
  } | null;
  /** The notebook's last successful run: what a deploy would build now, if unedited. */
  challenger: {
    run_id: string;
    started_at: number;
    parameters: Record<string, unknown>;
    metrics: Record<string, number>;
    same_notebook: boolean;
  } | null;
  verdict: IVerdict | null;
}

// Monitoring (`GET /nbops/api/deployments/<name>/monitoring`).

/** One input field or output of a route: its window's shares next to the reference's. */
export interface IFieldMonitoring {
  name: string;
  kind: 'numeric' | 'categorical' | string;
  /** Population stability index; null while the window is smaller than `min_requests`. */
  psi: number | null;
  p_value: number | null;
  flagged: boolean;
  /** Numeric: bin edges, one more than the shares. */
  edges?: number[] | null;
  /** Categorical: the categories, `__other__` last. */
  categories?: string[] | null;
  reference_shares: number[];
  window_shares: number[];
  window_count: number;
  reference_missing_rate: number;
  window_missing_rate: number;
}

export interface IRouteMonitoring {
  route: string;
  requests: number;
  errors: number;
  error_rate: number | null;
  latency_ms: { p50: number | null; p90: number | null; p99: number | null };
  /** The artifact the reference profile came from, or null: then `reason` says why. */
  reference: string | null;
  reason: string | null;
  drift: number | null;
  output_drift: number | null;
  flagged: string[];
  inputs: IFieldMonitoring[];
  outputs: IFieldMonitoring[];
}

/** A service's `GET /monitoring`. */
export interface IMonitoring {
  enabled: boolean;
  window: { max_requests: number; max_seconds: number; min_requests: number };
  max_drift: number;
  computed_at: number | null;
  routes: IRouteMonitoring[];
}

/** What the proxy on the stable port saw of each version over its last minute. */
export interface IProxyStats {
  name: string;
  version: number | null;
  canary: number | null;
  standby: number | null;
  window_s: number;
  versions: Record<
    string,
    {
      requests: number;
      errors: number;
      p50_ms: number | null;
      p99_ms: number | null;
    }
  >;
}

export interface IMonitoringView {
  deployment: IDeployment;
  monitoring: IMonitoring | null;
  /** Why `monitoring` is null: the version does not serve, or has no /monitoring. */
  monitoring_error?: string | null;
  proxy: IProxyStats | null;
}

// Jobs (`GET /nbops/api/jobs/<id>`): a deploy or a rollback running in the server.

/** `running` includes waiting its turn (a `queued` stage); `cancelled` by a user;
 * `interrupted` when the Jupyter server stopped while it ran. */
export type JobState =
  'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted';
export type StageState =
  'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface IJobStage {
  name: string;
  state: StageState | string;
  message: string | null;
  started_at: number | null;
  ended_at: number | null;
}

/** The step started last (1-based `index`), with its state (running, ran...). */
export interface IJobStep {
  index: number | null;
  total: number;
  name: string;
  state?: string;
}

/** A step running now: steps that do not depend on each other run side by side. */
export interface IRunningStep extends IJobStep {
  started_at: number;
}

/** What a finished deploy or rollback made: the deployment's version, as the state db has it. */
export interface IJobResult {
  name?: string;
  version?: number;
  status?: DeploymentStatus | string;
  url?: string | null;
  reason?: string | null;
  metrics?: Record<string, number> | null;
  /** A deploy's metric gates as judged (null when it had none, or failed before). */
  verdict?: IVerdict | null;
  [key: string]: unknown;
}

export interface IJob {
  job_id: string;
  kind: string;
  /** The notebook path of a deploy or run, the name of a rollback. */
  target?: string;
  state: JobState;
  stages: IJobStage[];
  step: IJobStep | null;
  /** Every step running now, in the order they started (absent from older servers). */
  running_steps?: IRunningStep[];
  log: string[];
  result: IJobResult | null;
  error: string | null;
}

export interface IJobAccepted {
  job_id: string;
}

// Exports (`GET /nbops/api/exporters`, `POST /nbops/api/exports`).

/** An installed exporter, and why it cannot be used here (null when it can). */
export interface IExporter {
  name: string;
  description: string;
  extra: string | null;
  available: boolean;
  reason: string | null;
}

/** A finished export job's result: what it wrote, relative to the server's root. */
export interface IExportResult {
  exporter: string;
  paths: string[];
  build: string;
  image: string;
  /** No image was given: the tasks run a placeholder to replace with the pushed build. */
  image_placeholder: boolean;
}
