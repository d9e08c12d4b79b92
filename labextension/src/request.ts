/**
 * HTTP to the nbops server extension: one typed `requestAPI<T>`, typed errors, and one small
 * function per route of the contract.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  IChallengerView,
  IDeployment,
  IExporter,
  IJob,
  IJobAccepted,
  ILineage,
  IMonitoringView
} from './tokens';

/** The server answered, with an error status. `fix` is nbops's suggestion, when it gave one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fix: string | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The server could not be reached, or did not answer with JSON. */
export class NetworkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetworkError';
  }
}

/** `GET/POST /nbops/api/<endPoint>`, with the token and XSRF headers JupyterLab adds. */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'nbops', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new NetworkError(`cannot reach the Jupyter server: ${String(error)}`);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      if (response.ok) {
        throw new NetworkError(`${url} did not answer with JSON`);
      }
    }
  }
  if (!response.ok) {
    throw errorFrom(response, data);
  }
  return data as T;
}

function errorFrom(response: Response, data: unknown): ApiError {
  if (response.status === 404 && data === null) {
    return new ApiError(
      404,
      'the nbops server extension is not running in this Jupyter server.',
      'pip install nbops in the environment that runs JupyterLab, then restart it.'
    );
  }
  const body = (data ?? {}) as Record<string, unknown>;
  const text = (key: string): string | null =>
    typeof body[key] === 'string' && body[key] !== ''
      ? (body[key] as string)
      : null;
  const message =
    text('message') ??
    text('error') ??
    text('reason') ??
    `${response.status} ${response.statusText}`;
  return new ApiError(response.status, message, text('fix'));
}

function post(body: unknown): RequestInit {
  return {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' }
  };
}

/** The lineage of the notebook as the editor has it now (unsaved edits included). */
export function postLineage(
  notebook: unknown,
  path: string
): Promise<ILineage> {
  return requestAPI<ILineage>('lineage', post({ notebook, path }));
}

export function getDeployments(): Promise<IDeployment[]> {
  return requestAPI<IDeployment[]>('deployments');
}

/** A deployment's watch, its serving version's drift, and what its proxy saw. */
export function getMonitoring(name: string): Promise<IMonitoringView> {
  return requestAPI<IMonitoringView>(
    `deployments/${encodeURIComponent(name)}/monitoring`
  );
}

/** What a deploy of the notebook as `name` would be judged on now: gates, serving, last run. */
export function getChallenger(
  name: string,
  path: string
): Promise<IChallengerView> {
  const query = new URLSearchParams({ notebook: path }).toString();
  return requestAPI<IChallengerView>(
    `deployments/${encodeURIComponent(name)}/challenger?${query}`
  );
}

export function startDeploy(
  path: string,
  name: string,
  port: number | null
): Promise<IJobAccepted> {
  const body: Record<string, unknown> = { path, name };
  if (port !== null) {
    body.port = port;
  }
  return requestAPI<IJobAccepted>('deployments', post(body));
}

export function startRollback(
  name: string,
  version: number | null
): Promise<IJobAccepted> {
  const body = version === null ? {} : { to: version };
  return requestAPI<IJobAccepted>(
    `deployments/${encodeURIComponent(name)}/rollback`,
    post(body)
  );
}

/** The jobs the server remembers, newest first. */
export function getJobs(): Promise<IJob[]> {
  return requestAPI<IJob[]>('jobs');
}

export function getJob(jobId: string): Promise<IJob> {
  return requestAPI<IJob>(`jobs/${encodeURIComponent(jobId)}`);
}

/** Asks the server to cancel a job: it answers the job as it is now (it ends shortly). */
export function cancelJob(jobId: string): Promise<IJob> {
  return requestAPI<IJob>(`jobs/${encodeURIComponent(jobId)}/cancel`, post({}));
}

/** The installed exporters, each with whether the server can use it. */
export function getExporters(): Promise<IExporter[]> {
  return requestAPI<IExporter[]>('exporters');
}

/** Exports the saved notebook next to itself (`nbops export`), as a job. */
export function startExport(
  path: string,
  to: string,
  store: string | null
): Promise<IJobAccepted> {
  const body: Record<string, unknown> = { path, to };
  if (store !== null && store !== '') {
    body.store = store;
  }
  return requestAPI<IJobAccepted>('exports', post(body));
}
