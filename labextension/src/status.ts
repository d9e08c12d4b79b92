/**
 * The live state of a deploy or rollback started from the sidebar, as a pure reducer over what
 * the job endpoint says, plus the words the panel shows for it.
 */
import type { IJob, IJobResult, IJobStage, IJobStep } from './tokens';

export type DeployPhase =
  | 'idle'
  | 'submitting'
  | 'running'
  | 'cancelling'
  | 'healthy'
  | 'failed'
  /** Its metrics failed the gates or the serving version's: never started. */
  | 'refused'
  | 'cancelled';
export type JobKind = 'deploy' | 'rollback';

export interface IStageView {
  name: string;
  label: string;
  state: string;
  message: string | null;
  seconds: number | null;
}

export interface IDeployState {
  phase: DeployPhase;
  kind: JobKind | null;
  /** The deployment's name. */
  name: string | null;
  jobId: string | null;
  /** One line: "running step 2 of 5: features", "healthy", "failed: ...". */
  headline: string;
  stages: IStageView[];
  step: IJobStep | null;
  result: IJobResult | null;
  reason: string | null;
  log: string[];
}

export type DeployAction =
  | { type: 'submitted'; kind: JobKind; name: string }
  | { type: 'accepted'; jobId: string }
  | { type: 'progress'; job: IJob }
  | { type: 'rejected'; reason: string }
  /** The user asked to cancel the running job; it ends `cancelled` once its process is gone. */
  | { type: 'cancelling' }
  /** A job already running when the sidebar opened (the page was reloaded, say). */
  | { type: 'resumed'; job: IJob; name: string }
  | { type: 'reset' };

export const IDLE: IDeployState = {
  phase: 'idle',
  kind: null,
  name: null,
  jobId: null,
  headline: '',
  stages: [],
  step: null,
  result: null,
  reason: null,
  log: []
};

/** Stage names the server and nbops.deploy use, in the words the panel shows. */
const STAGE_LABELS: Record<string, string> = {
  analyse: 'analysing',
  analysing: 'analysing',
  analyze: 'analysing',
  run: 'running',
  running: 'running',
  build: 'building',
  building: 'building',
  test: 'testing',
  testing: 'testing',
  snapshot: 'copying the build',
  start: 'starting',
  starting: 'starting',
  ready: 'waiting for /readyz',
  smoke: 'smoke request',
  metrics: 'metric gates',
  promote: 'switching traffic',
  promoting: 'switching traffic',
  rollback: 'rolling back',
  queued: 'queued',
  healthy: 'healthy',
  failed: 'failed'
};

export function stageLabel(name: string): string {
  return STAGE_LABELS[name] ?? name.replace(/[_-]+/g, ' ');
}

export function isBusy(state: IDeployState): boolean {
  return (
    state.phase === 'submitting' ||
    state.phase === 'running' ||
    state.phase === 'cancelling'
  );
}

/** Whether the panel offers Cancel: a job of ours runs, and no cancel was asked for yet. */
export function canCancel(state: IDeployState): boolean {
  return state.phase === 'running' && state.jobId !== null;
}

export function deployReducer(
  state: IDeployState,
  action: DeployAction
): IDeployState {
  switch (action.type) {
    case 'submitted':
      if (isBusy(state)) {
        return state;
      }
      return {
        ...IDLE,
        phase: 'submitting',
        kind: action.kind,
        name: action.name,
        headline: action.kind === 'deploy' ? 'submitting' : 'rolling back'
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
      if (!isBusy(state)) {
        return state;
      }
      return {
        ...state,
        phase: 'failed',
        reason: action.reason,
        headline: `failed: ${action.reason}`
      };
    case 'cancelling':
      if (!canCancel(state)) {
        return state;
      }
      return { ...state, phase: 'cancelling', headline: 'cancelling…' };
    case 'resumed':
      if (isBusy(state) || action.job.state !== 'running') {
        return state;
      }
      return fromJob(
        {
          ...IDLE,
          kind: action.job.kind === 'rollback' ? 'rollback' : 'deploy',
          name: action.name,
          jobId: action.job.job_id
        },
        action.job
      );
    case 'reset':
      return isBusy(state) ? state : IDLE;
  }
}

function fromJob(state: IDeployState, job: IJob): IDeployState {
  const base: IDeployState = {
    ...state,
    kind: job.kind === 'rollback' ? 'rollback' : state.kind,
    stages: job.stages.map(stageView),
    step: job.step,
    result: job.result,
    log: job.log ?? []
  };
  if (job.state === 'running') {
    const cancelling = state.phase === 'cancelling';
    return {
      ...base,
      phase: cancelling ? 'cancelling' : 'running',
      reason: null,
      headline: cancelling ? 'cancelling…' : runningHeadline(job)
    };
  }
  if (job.state === 'cancelled') {
    const reason = job.error ?? 'cancelled';
    return {
      ...base,
      phase: 'cancelled',
      reason,
      headline: reason.startsWith('cancelled') ? reason : `cancelled: ${reason}`
    };
  }
  if (job.result?.status === 'refused') {
    const reason = job.result.reason ?? job.error ?? 'refused';
    return { ...base, phase: 'refused', reason, headline: reason };
  }
  const failure = failureOf(job);
  if (failure !== null) {
    return {
      ...base,
      phase: 'failed',
      reason: failure,
      headline: `failed: ${failure}`
    };
  }
  const r = job.result ?? {};
  const version = typeof r.version === 'number' ? ` v${r.version}` : '';
  return {
    ...base,
    phase: 'healthy',
    reason: null,
    headline: `healthy: ${r.name ?? state.name ?? ''}${version}`.trim()
  };
}

/** Why a finished job failed, or null if it made a healthy version. */
function failureOf(job: IJob): string | null {
  const status = job.result?.status;
  if (job.state === 'failed' || job.state === 'interrupted') {
    return (
      job.error ??
      job.result?.reason ??
      lastFailedStage(job.stages) ??
      'the job failed'
    );
  }
  if (status !== undefined && status !== 'healthy') {
    return job.result?.reason ?? `the new version is ${status}`;
  }
  return null;
}

function lastFailedStage(stages: readonly IJobStage[]): string | null {
  const failed = [...stages].reverse().find(s => s.state === 'failed');
  return failed ? (failed.message ?? stageLabel(failed.name)) : null;
}

function stageView(stage: IJobStage): IStageView {
  const end = stage.ended_at ?? null;
  return {
    name: stage.name,
    label: stageLabel(stage.name),
    state: stage.state,
    message: stage.message,
    seconds:
      stage.started_at !== null && end !== null
        ? Math.max(0, Math.round((end - stage.started_at) * 10) / 10)
        : null
  };
}

/** Between the running steps a headline names; the panel lets a line break only there. */
export const STEP_SEPARATOR = ' · ';

/**
 * "running step 2 of 5: features" while steps run ("running step 2 of 6: b1 · step 3 of 6: b2"
 * while several run side by side), else the running stage's words.
 */
export function runningHeadline(job: IJob): string {
  const current = [...job.stages].reverse().find(s => s.state === 'running');
  const label = current ? stageLabel(current.name) : 'starting';
  const stepping =
    current === undefined ||
    ['running', 'building'].includes(label) ||
    job.kind === 'run';
  const steps = runningSteps(job).filter(s => s.index !== null && s.total > 0);
  if (steps.length > 0 && stepping) {
    return `running ${steps.map(stepOfN).join(STEP_SEPARATOR)}`;
  }
  return label;
}

/** The steps running now: the job's `running_steps`, or its `step` from an older server. */
export function runningSteps(job: IJob): IJobStep[] {
  if (job.running_steps !== undefined) {
    return job.running_steps;
  }
  const step = job.step;
  return step !== null && (step.state ?? 'running') === 'running' ? [step] : [];
}

function stepOfN(step: IJobStep): string {
  const k = Math.min(step.index ?? 0, step.total);
  return `step ${k} of ${step.total}: ${step.name}`;
}
