/**
 * The state of an export started from the sidebar (`POST /nbops/api/exports`, then its job), as
 * a pure reducer, and the Export menu's items: what each exporter is called and why it is off.
 */
import { runningHeadline } from './status';
import type { IExporter, IExportResult, IJob } from './tokens';

export type ExportPhase =
  'idle' | 'submitting' | 'running' | 'written' | 'failed';

export interface IExportState {
  phase: ExportPhase;
  /** The exporter's name: kfp, airflow, ... */
  exporter: string | null;
  jobId: string | null;
  /** One line: "building: step 1 of 2: load", "wrote sub/churn.kfp.yaml", "failed: ...". */
  headline: string;
  /** What the export wrote, relative to the server's root. */
  paths: string[];
  /** The image the tasks run, when none was given (a placeholder to replace). */
  placeholderImage: string | null;
  reason: string | null;
}

export type ExportAction =
  | { type: 'submitted'; exporter: string }
  | { type: 'accepted'; jobId: string }
  | { type: 'progress'; job: IJob }
  | { type: 'rejected'; reason: string }
  | { type: 'reset' };

export const EXPORT_IDLE: IExportState = {
  phase: 'idle',
  exporter: null,
  jobId: null,
  headline: '',
  paths: [],
  placeholderImage: null,
  reason: null
};

export function isExporting(state: IExportState): boolean {
  return state.phase === 'submitting' || state.phase === 'running';
}

export function exportReducer(
  state: IExportState,
  action: ExportAction
): IExportState {
  switch (action.type) {
    case 'submitted':
      if (isExporting(state)) {
        return state;
      }
      return {
        ...EXPORT_IDLE,
        phase: 'submitting',
        exporter: action.exporter,
        headline: `exporting to ${exportLabel(action.exporter)}`
      };
    case 'accepted':
      if (state.phase !== 'submitting') {
        return state;
      }
      return {
        ...state,
        phase: 'running',
        jobId: action.jobId,
        headline: 'queued'
      };
    case 'progress':
      if (state.jobId === null || action.job.job_id !== state.jobId) {
        return state;
      }
      return fromJob(state, action.job);
    case 'rejected':
      if (!isExporting(state)) {
        return state;
      }
      return failed(state, action.reason);
    case 'reset':
      return isExporting(state) ? state : EXPORT_IDLE;
  }
}

function fromJob(state: IExportState, job: IJob): IExportState {
  if (job.state === 'running') {
    return { ...state, phase: 'running', headline: runningHeadline(job) };
  }
  const result = (job.result ?? {}) as Partial<IExportResult>;
  if (job.state !== 'succeeded' || !Array.isArray(result.paths)) {
    return failed(state, job.error ?? `the export ended ${job.state}`);
  }
  return {
    ...state,
    phase: 'written',
    paths: result.paths,
    placeholderImage: result.image_placeholder ? (result.image ?? null) : null,
    reason: null,
    headline: `wrote ${result.paths.join(', ')}`
  };
}

function failed(state: IExportState, reason: string): IExportState {
  return { ...state, phase: 'failed', reason, headline: `failed: ${reason}` };
}

/** The menu's words for the exporters nbops ships; a third party's shows its name. */
const LABELS: Record<string, string> = {
  kfp: 'Kubeflow Pipelines YAML',
  airflow: 'Airflow DAG'
};

/** The exporters the menu always offers, listed or not (an older server lists none). */
const OFFERED = ['kfp', 'airflow'];

export function exportLabel(name: string): string {
  return LABELS[name] ?? name;
}

export interface IExportItem {
  name: string;
  label: string;
  /** Why the item is off, or null when it can be chosen. */
  disabledReason: string | null;
  /** Whether the export needs a store URL first (kfp: its tasks share nothing else). */
  needsStore: boolean;
}

/**
 * The Export menu: kfp and airflow first, then any other installed exporter, each off (with the
 * reason) when the server cannot use it, or while the exporters are unknown.
 */
export function exportItems(
  exporters: readonly IExporter[] | null,
  loadError: string | null = null
): IExportItem[] {
  const byName = new Map((exporters ?? []).map(e => [e.name, e]));
  const names = [
    ...OFFERED,
    ...(exporters ?? []).map(e => e.name).filter(n => !OFFERED.includes(n))
  ];
  return names.map(name => {
    const found = byName.get(name);
    let reason: string | null = null;
    if (exporters === null) {
      reason = loadError ?? 'asking the server which exporters it has…';
    } else if (found === undefined) {
      reason = 'not installed in the Jupyter server';
    } else if (!found.available) {
      reason = found.reason ?? 'unavailable';
    }
    return {
      name,
      label: exportLabel(name),
      disabledReason: reason,
      needsStore: name === 'kfp'
    };
  });
}

/** Why a store URL cannot serve a Kubeflow export (the server says the same), or null. */
export function storeProblem(store: string): string | null {
  const url = store.trim();
  if (url === '') {
    return 'Give the artifact store every task shares, e.g. s3://bucket/prefix.';
  }
  if (!url.includes('://')) {
    return `${url} is a local folder, which the pods of a Kubeflow pipeline do not share; give a bucket, e.g. s3://bucket/prefix.`;
  }
  return null;
}
