/**
 * What the deployment panel shows of a deployment's watch and of its serving version's
 * monitoring, as pure functions of the server's JSON: the watch label and its reason, the
 * rollbacks to announce, and the bars of each field's chart (window against reference).
 */
import type {
  IDeployment,
  IFieldMonitoring,
  IMonitoringView,
  IRolledBack,
  IRouteMonitoring
} from './tokens';

export type WatchLabel = 'watching' | 'stable' | 'degraded' | 'rolled-back';

export interface IWatchView {
  state: WatchLabel;
  /** Why, in the server's words: the watch summary, or the rollback's reason. */
  detail: string;
}

/**
 * The watch as the panel labels it. A version being watched, or degraded, says so first; else a
 * rollback the watch made by itself since this version serves; else `stable`. Null when the
 * version was never watched (a deploy with `--watch 0`, or a server older than the watch).
 */
export function watchView(d: IDeployment): IWatchView | null {
  const summary = d.watch_summary ?? '-';
  if (d.watch === 'watching' || d.watch === 'degraded') {
    return { state: d.watch, detail: summary !== '-' ? summary : d.watch };
  }
  if (d.rolled_back) {
    return {
      state: 'rolled-back',
      detail: rollbackMessage(d.name, d.rolled_back)
    };
  }
  if (d.status === 'rolled-back') {
    return { state: 'rolled-back', detail: d.reason ?? 'rolled back' };
  }
  if (d.watch === 'stable') {
    return { state: 'stable', detail: 'stable: its watch saw no breach' };
  }
  return null;
}

/** "churn v2 rolled back by its watch: error rate 17.9% ... > 2% (--max-error-rate); v1 ..." */
export function rollbackMessage(name: string, rolled: IRolledBack): string {
  return `${name} v${rolled.version} ${rolled.reason}`;
}

export function rollbackKey(name: string, rolled: IRolledBack): string {
  return `${name}:v${rolled.version}:${rolled.at}`;
}

export interface IRollbackNews {
  key: string;
  name: string;
  version: number;
  message: string;
}

/** Rollbacks older than this when first seen are shown in the panel but not announced. */
export const RECENT_S = 600;

/**
 * The rollbacks a watch made by itself that were not announced yet (keys not in `seen`), each
 * once; one that happened long before the page looked (`now`, seconds) is left to the panel.
 */
export function rollbacksToAnnounce(
  deployments: readonly IDeployment[],
  seen: ReadonlySet<string>,
  now: number
): IRollbackNews[] {
  const news: IRollbackNews[] = [];
  for (const d of deployments) {
    const rolled = d.rolled_back;
    if (!rolled || seen.has(rollbackKey(d.name, rolled))) {
      continue;
    }
    if (now - rolled.at > RECENT_S) {
      continue;
    }
    news.push({
      key: rollbackKey(d.name, rolled),
      name: d.name,
      version: rolled.version,
      message: rollbackMessage(d.name, rolled)
    });
  }
  return news;
}

// The charts

export interface IBar {
  /** The bin's label: `18–41.5` for a numeric bin, the category for a categorical one. */
  label: string;
  reference: number;
  window: number;
}

export interface IFieldChart {
  name: string;
  /** An input field of the route, or one of its outputs. */
  role: 'input' | 'output';
  kind: string;
  psi: number | null;
  flagged: boolean;
  bars: IBar[];
  windowCount: number;
  referenceMissing: number;
  windowMissing: number;
}

export const OTHER = '__other__';

/** Each bin's label, in the order of the shares. */
export function binLabels(field: IFieldMonitoring): string[] {
  const size = field.reference_shares.length;
  if (field.edges && field.edges.length === size + 1) {
    return field.reference_shares.map(
      (_, i) => `${compact(field.edges![i])}–${compact(field.edges![i + 1])}`
    );
  }
  if (field.categories && field.categories.length === size) {
    return field.categories.map(c => (c === OTHER ? 'other' : c));
  }
  return field.reference_shares.map((_, i) => `bin ${i + 1}`);
}

export function fieldChart(
  field: IFieldMonitoring,
  role: 'input' | 'output' = 'input'
): IFieldChart {
  const labels = binLabels(field);
  return {
    name: field.name,
    role,
    kind: field.kind,
    psi: field.psi,
    flagged: field.flagged,
    bars: labels.map((label, i) => ({
      label,
      reference: field.reference_shares[i] ?? 0,
      window: field.window_shares[i] ?? 0
    })),
    windowCount: field.window_count,
    referenceMissing: field.reference_missing_rate,
    windowMissing: field.window_missing_rate
  };
}

/** A route's charts: its input fields, then its outputs. */
export function routeCharts(route: IRouteMonitoring): IFieldChart[] {
  return [
    ...route.inputs.map(f => fieldChart(f, 'input')),
    ...route.outputs.map(f => fieldChart(f, 'output'))
  ];
}

export interface IRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface IChartGeometry {
  width: number;
  height: number;
  /** Per bin: the reference's bar, then the window's, side by side. */
  reference: IRect[];
  window: IRect[];
}

/**
 * Side-by-side bars in a `width` × `height` box: each bin a slot, the reference's bar on the
 * left of the window's, heights scaled to the largest share of either (empty bins stay flat).
 */
export function chartGeometry(
  bars: readonly IBar[],
  width = 240,
  height = 48
): IChartGeometry {
  const top = bars.reduce(
    (most, b) => Math.max(most, b.reference, b.window),
    0
  );
  const slot = bars.length > 0 ? width / bars.length : width;
  const gap = Math.min(2, slot * 0.15);
  const bar = Math.max(0.5, (slot - 2 * gap) / 2);
  const rect = (share: number, x: number): IRect => {
    const h = top > 0 ? round((share / top) * height) : 0;
    return { x: round(x), y: round(height - h), width: round(bar), height: h };
  };
  return {
    width,
    height,
    reference: bars.map((b, i) => rect(b.reference, i * slot + gap)),
    window: bars.map((b, i) => rect(b.window, i * slot + gap + bar))
  };
}

// The figures

export interface IFigure {
  label: string;
  value: string;
  /** Above the policy's threshold, where the panel knows it. */
  alarm: boolean;
}

/** The route's window size, error rate and p99, and its largest drift score. */
export function routeFigures(
  route: IRouteMonitoring,
  view: IMonitoringView
): IFigure[] {
  const m = view.monitoring!;
  const maxDrift = m.max_drift;
  const policy = view.deployment.policy;
  const maxErrors =
    typeof policy?.max_error_rate === 'number' ? policy.max_error_rate : null;
  return [
    {
      label: 'window',
      value: `${route.requests} of ${m.window.max_requests} requests`,
      alarm: false
    },
    {
      label: 'error rate',
      value: percent(route.error_rate),
      alarm:
        maxErrors !== null &&
        route.error_rate !== null &&
        route.error_rate > maxErrors
    },
    { label: 'p99', value: milliseconds(route.latency_ms.p99), alarm: false },
    {
      label: 'drift',
      value:
        route.drift === null
          ? `scored from ${m.window.min_requests} requests`
          : score(route.drift),
      alarm: route.drift !== null && route.drift > maxDrift
    }
  ];
}

export function percent(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) {
    return '–';
  }
  return `${round(rate * 100, 1)}%`;
}

export function milliseconds(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) {
    return '–';
  }
  return ms >= 100 ? `${Math.round(ms)} ms` : `${round(ms, 1)} ms`;
}

export function score(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : value.toFixed(2);
}

/** A bin edge in a few characters: 18, 41.5, 0.27, 1.2e+3. */
export function compact(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  const text = String(Number(value.toPrecision(3)));
  return text.length > 7 ? value.toPrecision(2) : text;
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
