/**
 * The sidebar's state, with a signal per part: the active notebook's lineage and its laid-out
 * graph, the selected node, the active cell's role, the deploy in progress and the deployments,
 * the exporters and the export in progress.
 * Widgets render it; the notebook binding feeds it; request.ts does its HTTP.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  EXPORT_IDLE,
  exportReducer,
  isExporting,
  type ExportAction,
  type IExportState
} from './export';
import {
  buildGraph,
  graphKey,
  layoutGraph,
  type IGraphNode,
  type ILaidOutGraph,
  type ILineageGraph
} from './graph';
import { rollbacksToAnnounce, type IRollbackNews } from './monitor';
import {
  cancelJob,
  getDeployments,
  getChallenger,
  getExporters,
  getJob,
  getJobs,
  getMonitoring,
  postLineage,
  startDeploy,
  startExport,
  startRollback
} from './request';
import {
  IDLE,
  canCancel,
  deployReducer,
  isBusy,
  type DeployAction,
  type IDeployState
} from './status';
import type { ICellRole } from './tags';
import {
  DEFAULT_SETTINGS,
  type ICellRef,
  type IChallengerView,
  type IDeployment,
  type IExporter,
  type IJob,
  type ILineage,
  type IMonitoringView,
  type ISettings
} from './tokens';

/** What the model needs from the notebook in the editor; the binding provides it. */
export interface INotebookSource {
  /** The path relative to the server's root. */
  readonly path: string;
  /** The notebook as nbformat JSON, as the editor has it now. */
  content(): unknown;
  parameterCells(): ICellRef[];
  /** Writes unsaved edits to disk (a deploy builds the file). */
  save(): Promise<void>;
}

export interface IActiveCell {
  id: string;
  index: number;
  cellType: string;
  role: ICellRole | null;
  /** The role comes from a `#| nbops:` line of the source, which the tag buttons leave alone. */
  roleInSource: boolean;
  /** A step name for the cell, from the heading above it. */
  suggestedName: string;
}

const JOB_POLL_MS = 400;
const BUSY_POLL_MS = 1000;

export class NbopsModel {
  private _settings: ISettings = { ...DEFAULT_SETTINGS };
  private _source: INotebookSource | null = null;
  private _lineage: ILineage | null = null;
  private _graph: ILineageGraph | null = null;
  private _layout: ILaidOutGraph | null = null;
  private _layoutKey = '';
  private _lineageError: Error | null = null;
  private _loading = false;
  private _selected: string | null = null;
  private _activeCell: IActiveCell | null = null;
  private _deploy: IDeployState = IDLE;
  private _deployments: IDeployment[] = [];
  private _deploymentsError: Error | null = null;
  private _exporters: IExporter[] | null = null;
  private _exportersError: string | null = null;
  private _export: IExportState = EXPORT_IDLE;
  private _monitoring: IMonitoringView | null = null;
  private _monitoringError: Error | null = null;
  private _challenger: IChallengerView | null = null;
  private _challengerError: Error | null = null;
  private readonly _announced = new Set<string>();
  private _debounce: ReturnType<typeof setTimeout> | null = null;
  private _poll: ReturnType<typeof setTimeout> | null = null;
  private _polling = false;
  private _sequence = 0;
  private _editedAt: number | null = null;
  private _latencyMs: number | null = null;
  private _revision = 0;
  private _timings: ILineageTimings = {
    serializeMs: 0,
    requestMs: 0,
    layoutMs: 0
  };
  private _disposed = false;

  readonly lineageChanged = new Signal<this, void>(this);
  readonly selectionChanged = new Signal<this, IGraphNode | null>(this);
  readonly activeCellChanged = new Signal<this, IActiveCell | null>(this);
  readonly deployChanged = new Signal<this, IDeployState>(this);
  readonly deploymentsChanged = new Signal<this, IDeployment[]>(this);
  /** The shown deployment's monitoring was fetched again (or could not be). */
  readonly monitoringChanged = new Signal<this, IMonitoringView | null>(this);
  /** The comparison before a deploy was fetched again (or could not be). */
  readonly challengerChanged = new Signal<this, IChallengerView | null>(this);
  /** A watch rolled a version back by itself: said once per rollback. */
  readonly rollbackAnnounced = new Signal<this, IRollbackNews>(this);
  /** The exporters were listed, or an export moved on. */
  readonly exportChanged = new Signal<this, IExportState>(this);
  /** A store URL was used for an export: the plugin keeps it in the settings. */
  readonly exportStoreUsed = new Signal<this, string>(this);
  private readonly _cellRequested = new Signal<this, ICellJump>(this);

  get settings(): ISettings {
    return this._settings;
  }
  set settings(value: ISettings) {
    this._settings = { ...value };
  }

  get notebookPath(): string | null {
    return this._source?.path ?? null;
  }
  get lineage(): ILineage | null {
    return this._lineage;
  }
  get graph(): ILineageGraph | null {
    return this._graph;
  }
  get layout(): ILaidOutGraph | null {
    return this._layout;
  }
  get lineageError(): Error | null {
    return this._lineageError;
  }
  get loading(): boolean {
    return this._loading;
  }
  /** Increases each time a new lineage is shown. */
  get revision(): number {
    return this._revision;
  }
  /** Where the time of the last lineage went. */
  get timings(): ILineageTimings {
    return { ...this._timings };
  }
  /** Milliseconds from the last edit to the lineage being ready to draw. */
  get latencyMs(): number | null {
    return this._latencyMs;
  }
  get selected(): IGraphNode | null {
    return this._graph?.nodes.find(n => n.id === this._selected) ?? null;
  }
  get activeCell(): IActiveCell | null {
    return this._activeCell;
  }
  get deploy(): IDeployState {
    return this._deploy;
  }
  get deployments(): IDeployment[] {
    return this._deployments;
  }
  get deploymentsError(): Error | null {
    return this._deploymentsError;
  }
  /** The active notebook's deployment: its watch, drift and proxy figures, as last fetched. */
  get monitoring(): IMonitoringView | null {
    return this._monitoring;
  }
  get monitoringError(): Error | null {
    return this._monitoringError;
  }
  /** What a deploy of the active notebook would be judged on now, as last fetched. */
  get challenger(): IChallengerView | null {
    return this._challenger;
  }
  /** Why the comparison could not be had: a gate naming no metric, say. */
  get challengerError(): Error | null {
    return this._challengerError;
  }
  /** The installed exporters; null until the server has listed them. */
  get exporters(): IExporter[] | null {
    return this._exporters;
  }

  /** Why the exporters could not be listed, if they could not. */
  get exportersError(): string | null {
    return this._exportersError;
  }

  get export(): IExportState {
    return this._export;
  }

  /** The deployment name of the active notebook: its file name without `.ipynb`. */
  get deploymentName(): string | null {
    const path = this.notebookPath;
    return path === null ? null : nameOfPath(path);
  }
  /** Asks the binding to show a cell (a node or a diagnostic was clicked). */
  get cellRequested(): ISignal<this, ICellJump> {
    return this._cellRequested;
  }

  setNotebook(source: INotebookSource | null): void {
    if (source === this._source) {
      return;
    }
    this._source = source;
    this._lineage = null;
    this._graph = null;
    this._layout = null;
    this._layoutKey = '';
    this._lineageError = null;
    this._selected = null;
    this._sequence += 1;
    this._loading = source !== null;
    if (this._monitoring?.deployment.name !== this.deploymentName) {
      this._monitoring = null;
      this._monitoringError = null;
      this.monitoringChanged.emit(null);
      void this.refreshMonitoring();
    }
    this._challenger = null;
    this._challengerError = null;
    this.challengerChanged.emit(null);
    void this.refreshChallenger();
    this.lineageChanged.emit();
    this.selectionChanged.emit(null);
    if (source !== null) {
      void this.refreshLineage();
      void this._resumeJob(source.path);
    }
    if (!isExporting(this._export)) {
      this._dispatchExport({ type: 'reset' }); // its paths were another notebook's
    }
  }

  /** Called on every edit: the lineage is asked for once edits pause for `debounceMs`. */
  scheduleLineage(): void {
    this._editedAt = performance.now();
    if (this._debounce !== null) {
      clearTimeout(this._debounce);
    }
    this._debounce = setTimeout(() => {
      this._debounce = null;
      void this.refreshLineage();
    }, this._settings.debounceMs);
  }

  async refreshLineage(): Promise<void> {
    const source = this._source;
    if (source === null || this._disposed) {
      return;
    }
    const sequence = ++this._sequence;
    this._loading = true;
    let lineage: ILineage;
    const started = performance.now();
    try {
      const content = source.content();
      this._timings.serializeMs = Math.round(performance.now() - started);
      lineage = await postLineage(content, source.path);
      this._timings.requestMs =
        Math.round(performance.now() - started) - this._timings.serializeMs;
    } catch (error) {
      if (sequence === this._sequence) {
        this._loading = false;
        this._lineageError = error as Error;
        this.lineageChanged.emit();
      }
      return;
    }
    // A later request was sent meanwhile, or the notebook changed: this answer is stale.
    if (sequence !== this._sequence || source !== this._source) {
      return;
    }
    this._apply(lineage, source.parameterCells());
  }

  private _apply(lineage: ILineage, parameterCells: ICellRef[]): void {
    const started = performance.now();
    const graph = buildGraph(lineage, { parameterCells });
    const key = graphKey(graph);
    if (key !== this._layoutKey || this._layout === null) {
      this._layout = layoutGraph(graph);
      this._layoutKey = key;
    } else if (cellsKey(graph) !== cellsKey(this._graph)) {
      // Same drawing, but cells were added or moved: the nodes point at other cells.
      const byId = new Map(graph.nodes.map(n => [n.id, n]));
      this._layout = {
        ...this._layout,
        nodes: this._layout.nodes.map(n => ({ ...n, ...byId.get(n.id)! }))
      };
    }
    this._timings.layoutMs = Math.round(performance.now() - started);
    this._lineage = lineage;
    this._graph = graph;
    this._lineageError = null;
    this._loading = false;
    this._revision += 1;
    if (this._editedAt !== null) {
      this._latencyMs = Math.round(performance.now() - this._editedAt);
      this._editedAt = null;
    }
    const selectionGone = this._selected !== null && this.selected === null;
    if (selectionGone) {
      this._selected = null;
    }
    this.lineageChanged.emit();
    this.selectionChanged.emit(this.selected);
  }

  /** Selects a node (null clears) and asks for its cells to be shown. */
  select(nodeId: string | null): void {
    this._selected = nodeId;
    const node = this.selected;
    this.selectionChanged.emit(node);
    if (node !== null && node.cells.length > 0) {
      this._cellRequested.emit({ cellId: node.cells[0].id, line: null });
    }
  }

  /** Asks the binding to show a cell, at a line of it if known. */
  showCell(cellId: string, line: number | null = null): void {
    this._cellRequested.emit({ cellId, line });
  }

  setActiveCell(cell: IActiveCell | null): void {
    this._activeCell = cell;
    this.activeCellChanged.emit(cell);
  }

  // Deploys and rollbacks

  private _dispatch(action: DeployAction): void {
    const next = deployReducer(this._deploy, action);
    if (next !== this._deploy) {
      this._deploy = next;
      this.deployChanged.emit(next);
    }
  }

  async deployNotebook(): Promise<void> {
    const source = this._source;
    const name = this.deploymentName;
    if (source === null || name === null || isBusy(this._deploy)) {
      return;
    }
    this._dispatch({ type: 'submitted', kind: 'deploy', name });
    try {
      await source.save();
      const { job_id } = await startDeploy(
        source.path,
        name,
        this._settings.deploymentPort
      );
      this._dispatch({ type: 'accepted', jobId: job_id });
    } catch (error) {
      this._dispatch({ type: 'rejected', reason: (error as Error).message });
      return;
    }
    await this._followJob();
  }

  async rollback(name: string, version: number | null): Promise<void> {
    if (isBusy(this._deploy)) {
      return;
    }
    this._dispatch({ type: 'submitted', kind: 'rollback', name });
    try {
      const { job_id } = await startRollback(name, version);
      this._dispatch({ type: 'accepted', jobId: job_id });
    } catch (error) {
      this._dispatch({ type: 'rejected', reason: (error as Error).message });
      return;
    }
    await this._followJob();
  }

  /** Follows a deploy of this notebook (or a rollback of its name) already running. */
  private async _resumeJob(path: string): Promise<void> {
    const name = nameOfPath(path);
    let jobs: IJob[];
    try {
      jobs = await getJobs();
    } catch {
      return; // the deployments list reports an unreachable server
    }
    const running = jobs.find(
      job =>
        job.state === 'running' &&
        ((job.kind === 'deploy' && job.target === path) ||
          (job.kind === 'rollback' && job.target === name))
    );
    if (
      running === undefined ||
      path !== this.notebookPath ||
      isBusy(this._deploy)
    ) {
      return;
    }
    this._dispatch({ type: 'resumed', job: running, name });
    await this._followJob();
  }

  /** Cancels the running deploy or rollback; the job's own end is followed as before. */
  async cancelDeploy(): Promise<void> {
    const jobId = this._deploy.jobId;
    if (!canCancel(this._deploy) || jobId === null) {
      return;
    }
    this._dispatch({ type: 'cancelling' });
    try {
      this._dispatch({ type: 'progress', job: await cancelJob(jobId) });
    } catch {
      // It ended meanwhile (409) or the server is away: the next poll says which.
    }
  }

  /** Clears a finished deploy's panel. */
  dismissDeploy(): void {
    this._dispatch({ type: 'reset' });
  }

  private async _followJob(): Promise<void> {
    let stages = -1;
    while (!this._disposed && isBusy(this._deploy) && this._deploy.jobId) {
      try {
        this._dispatch({
          type: 'progress',
          job: await getJob(this._deploy.jobId)
        });
      } catch (error) {
        this._dispatch({ type: 'rejected', reason: (error as Error).message });
      }
      // The deployments (health-checked by the server) are asked for as each stage begins.
      if (this._deploy.stages.length !== stages) {
        stages = this._deploy.stages.length;
        void this.refreshDeployments();
      }
      if (isBusy(this._deploy)) {
        await delay(JOB_POLL_MS);
      }
    }
    await this.refreshDeployments();
    await this.refreshChallenger();
  }

  // Exports

  async loadExporters(): Promise<void> {
    try {
      this._exporters = await getExporters();
      this._exportersError = null;
    } catch (error) {
      this._exportersError = (error as Error).message;
    }
    if (!this._disposed) {
      this.exportChanged.emit(this._export);
    }
  }

  private _dispatchExport(action: ExportAction): void {
    const next = exportReducer(this._export, action);
    if (next !== this._export) {
      this._export = next;
      this.exportChanged.emit(next);
    }
  }

  /** Saves the notebook and exports it next to itself with `to` (kfp needs a `store`). */
  async exportNotebook(to: string, store: string | null = null): Promise<void> {
    const source = this._source;
    if (source === null || isExporting(this._export)) {
      return;
    }
    this._dispatchExport({ type: 'submitted', exporter: to });
    if (store !== null && store !== '') {
      this._settings = { ...this._settings, exportStore: store };
      this.exportStoreUsed.emit(store);
    }
    try {
      await source.save();
      const { job_id } = await startExport(source.path, to, store);
      this._dispatchExport({ type: 'accepted', jobId: job_id });
    } catch (error) {
      this._dispatchExport({
        type: 'rejected',
        reason: (error as Error).message
      });
      return;
    }
    while (!this._disposed && isExporting(this._export) && this._export.jobId) {
      try {
        const job = await getJob(this._export.jobId);
        this._dispatchExport({ type: 'progress', job });
      } catch (error) {
        this._dispatchExport({
          type: 'rejected',
          reason: (error as Error).message
        });
      }
      if (isExporting(this._export)) {
        await delay(JOB_POLL_MS);
      }
    }
  }

  /** Clears a finished export's note. */
  dismissExport(): void {
    this._dispatchExport({ type: 'reset' });
  }

  // Deployments, whoever started them (the CLI too)

  async refreshDeployments(): Promise<void> {
    try {
      const deployments = await getDeployments();
      this._deployments = deployments;
      this._deploymentsError = null;
    } catch (error) {
      this._deploymentsError = error as Error;
    }
    if (!this._disposed) {
      this.deploymentsChanged.emit(this._deployments);
      this._announceRollbacks();
    }
  }

  private _announceRollbacks(): void {
    const now = Date.now() / 1000;
    for (const news of rollbacksToAnnounce(
      this._deployments,
      this._announced,
      now
    )) {
      this._announced.add(news.key);
      this.rollbackAnnounced.emit(news);
    }
  }

  /** The monitoring of the active notebook's deployment, when it has one. */
  async refreshMonitoring(): Promise<void> {
    const name = this.deploymentName;
    const shown = this._deployments.some(d => d.name === name);
    if (name === null || !shown) {
      if (this._monitoring !== null || this._monitoringError !== null) {
        this._monitoring = null;
        this._monitoringError = null;
        this.monitoringChanged.emit(null);
      }
      return;
    }
    try {
      const view = await getMonitoring(name);
      if (name !== this.deploymentName) {
        return; // another notebook became active meanwhile
      }
      this._monitoring = view;
      this._monitoringError = null;
    } catch (error) {
      this._monitoringError = error as Error;
    }
    if (!this._disposed) {
      this.monitoringChanged.emit(this._monitoring);
    }
  }

  /** The comparison before a deploy of the active notebook: its gates, the serving version's
   * metrics and its last run's, judged by the server. */
  async refreshChallenger(): Promise<void> {
    const path = this.notebookPath;
    const name = this.deploymentName;
    if (path === null || name === null) {
      return;
    }
    try {
      const view = await getChallenger(name, path);
      if (path !== this.notebookPath) {
        return; // another notebook became active meanwhile
      }
      this._challenger = view;
      this._challengerError = null;
    } catch (error) {
      if (path !== this.notebookPath) {
        return;
      }
      this._challenger = null;
      this._challengerError = error as Error;
    }
    if (!this._disposed) {
      this.challengerChanged.emit(this._challenger);
    }
  }

  /** Looks at the deployments every `pollMs` (every second while one is on its way). */
  startPolling(): void {
    if (this._polling) {
      return;
    }
    this._polling = true;
    const tick = async (): Promise<void> => {
      await this.refreshDeployments();
      await this.refreshMonitoring();
      if (!isBusy(this._deploy)) {
        await this.refreshChallenger(); // a run or deploy from elsewhere changes it
      }
      if (!this._polling || this._disposed) {
        return;
      }
      const moving = this._deployments.some(d =>
        ['building', 'starting'].includes(String(d.status))
      );
      this._poll = setTimeout(
        tick,
        moving ? BUSY_POLL_MS : this._settings.pollMs
      );
    };
    void tick();
  }

  stopPolling(): void {
    this._polling = false;
    if (this._poll !== null) {
      clearTimeout(this._poll);
      this._poll = null;
    }
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.stopPolling();
    if (this._debounce !== null) {
      clearTimeout(this._debounce);
    }
    Signal.clearData(this);
  }
}

export interface ILineageTimings {
  /** Reading the notebook out of the editor. */
  serializeMs: number;
  /** The POST, the server's analysis included. */
  requestMs: number;
  /** Building the graph and laying it out (0 when the drawing is unchanged). */
  layoutMs: number;
}

export interface ICellJump {
  cellId: string;
  /** 1-based line within the cell, when a diagnostic gives one. */
  line: number | null;
}

function cellsKey(graph: ILineageGraph | null): string {
  return JSON.stringify(
    graph?.nodes.map(n => [n.id, n.title, n.cells]) ?? null
  );
}

export function nameOfPath(path: string): string {
  const file = path.split('/').pop() ?? path;
  return file.replace(/\.ipynb$/i, '');
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
