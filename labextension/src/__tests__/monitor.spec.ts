import {
  RECENT_S,
  binLabels,
  chartGeometry,
  compact,
  fieldChart,
  milliseconds,
  percent,
  rollbackKey,
  rollbacksToAnnounce,
  routeCharts,
  routeFigures,
  watchView
} from '../monitor';
import type {
  IDeployment,
  IFieldMonitoring,
  IMonitoringView,
  IRouteMonitoring
} from '../tokens';

function deployment(overrides: Partial<IDeployment> = {}): IDeployment {
  return {
    name: 'churn',
    version: 2,
    status: 'healthy',
    build_id: 'b',
    notebook_sha256: 's',
    run_id: null,
    url: 'http://127.0.0.1:8000',
    reason: null,
    started_by: 'me via jupyter',
    created_at: 1000,
    updated_at: 1000,
    healthy_at: 1000,
    current: true,
    pid: 1,
    port: 40000,
    health: 'ok',
    uptime_s: 3,
    requests: 0,
    history: [],
    watch: null,
    watch_summary: '-',
    rolled_back: null,
    ...overrides
  };
}

const CHARGES: IFieldMonitoring = {
  name: 'monthly_charges',
  kind: 'numeric',
  psi: 3.1,
  p_value: 0,
  flagged: true,
  edges: [18, 41.5, 70.25, 120],
  reference_shares: [0.3, 0.4, 0.3],
  window_shares: [0, 0, 1],
  window_count: 250,
  reference_missing_rate: 0,
  window_missing_rate: 0
};

const CONTRACT: IFieldMonitoring = {
  name: 'contract',
  kind: 'categorical',
  psi: 0.01,
  p_value: 0.8,
  flagged: false,
  categories: ['monthly', 'annual', 'two_year', '__other__'],
  reference_shares: [0.55, 0.25, 0.2, 0],
  window_shares: [0.5, 0.3, 0.2, 0],
  window_count: 250,
  reference_missing_rate: 0,
  window_missing_rate: 0
};

const ROUTE: IRouteMonitoring = {
  route: 'predict',
  requests: 250,
  errors: 3,
  error_rate: 0.012,
  latency_ms: { p50: 1.2, p90: 2.0, p99: 4.1 },
  reference: 'load.customers',
  reason: null,
  drift: 3.1,
  output_drift: 0.4,
  flagged: ['monthly_charges', 'churn_probability'],
  inputs: [CHARGES, CONTRACT],
  outputs: [{ ...CHARGES, name: 'churn_probability', edges: [0, 0.5, 0.9, 1] }]
};

function view(route: IRouteMonitoring = ROUTE): IMonitoringView {
  return {
    deployment: deployment({ policy: { max_error_rate: 0.02 } }),
    monitoring: {
      enabled: true,
      window: { max_requests: 1000, max_seconds: 900, min_requests: 100 },
      max_drift: 0.25,
      computed_at: 1000,
      routes: [route]
    },
    monitoring_error: null,
    proxy: null
  };
}

describe('watchView', () => {
  it('is null for a version nobody watched', () => {
    expect(watchView(deployment())).toBeNull();
    expect(watchView({ ...deployment(), watch: undefined })).toBeNull();
  });

  it('says watching with the summary, canary included', () => {
    const summary = 'watching (25s left; canary 20%, v1 serves the rest)';
    expect(
      watchView(deployment({ watch: 'watching', watch_summary: summary }))
    ).toEqual({ state: 'watching', detail: summary });
  });

  it('says degraded with its reason, and stable', () => {
    const summary = 'degraded: error rate 5% > 2% (--max-error-rate)';
    expect(
      watchView(deployment({ watch: 'degraded', watch_summary: summary }))
    ).toEqual({ state: 'degraded', detail: summary });
    expect(
      watchView(deployment({ watch: 'stable', watch_summary: 'stable' }))?.state
    ).toBe('stable');
  });

  it('says rolled-back with the reason when the watch rolled one back', () => {
    const rolled = {
      version: 3,
      reason:
        'rolled back by its watch: error rate 17.9% > 2%; v2 serves again',
      at: 1010
    };
    expect(
      watchView(deployment({ watch: 'stable', rolled_back: rolled }))
    ).toEqual({
      state: 'rolled-back',
      detail:
        'churn v3 rolled back by its watch: error rate 17.9% > 2%; v2 serves again'
    });
    // A newer version being watched comes first.
    expect(
      watchView(
        deployment({
          watch: 'watching',
          watch_summary: 'watching (1s left)',
          rolled_back: rolled
        })
      )?.state
    ).toBe('watching');
  });
});

describe('rollbacksToAnnounce', () => {
  const rolled = {
    version: 3,
    reason: 'rolled back by its watch: x',
    at: 5000
  };

  it('announces a recent rollback once', () => {
    const d = deployment({ rolled_back: rolled });
    const first = rollbacksToAnnounce([d], new Set(), 5001);
    expect(first).toEqual([
      {
        key: 'churn:v3:5000',
        name: 'churn',
        version: 3,
        message: 'churn v3 rolled back by its watch: x'
      }
    ]);
    expect(
      rollbacksToAnnounce([d], new Set([rollbackKey('churn', rolled)]), 5002)
    ).toEqual([]);
  });

  it('leaves old rollbacks and deployments without one to the panel', () => {
    const old = deployment({ rolled_back: rolled });
    expect(rollbacksToAnnounce([old], new Set(), 5000 + RECENT_S + 1)).toEqual(
      []
    );
    expect(rollbacksToAnnounce([deployment()], new Set(), 0)).toEqual([]);
  });
});

describe('charts', () => {
  it('labels numeric bins by their edges and categories by name', () => {
    expect(binLabels(CHARGES)).toEqual(['18–41.5', '41.5–70.3', '70.3–120']);
    expect(binLabels(CONTRACT)).toEqual([
      'monthly',
      'annual',
      'two_year',
      'other'
    ]);
    expect(binLabels({ ...CHARGES, edges: null })).toEqual([
      'bin 1',
      'bin 2',
      'bin 3'
    ]);
  });

  it('pairs window shares with reference shares per bin', () => {
    const chart = fieldChart(CHARGES);
    expect(chart.bars).toEqual([
      { label: '18–41.5', reference: 0.3, window: 0 },
      { label: '41.5–70.3', reference: 0.4, window: 0 },
      { label: '70.3–120', reference: 0.3, window: 1 }
    ]);
    expect([chart.flagged, chart.psi, chart.windowCount]).toEqual([
      true,
      3.1,
      250
    ]);
  });

  it('draws inputs then outputs', () => {
    expect(routeCharts(ROUTE).map(c => [c.name, c.role, c.flagged])).toEqual([
      ['monthly_charges', 'input', true],
      ['contract', 'input', false],
      ['churn_probability', 'output', true]
    ]);
  });

  it('scales side-by-side bars to the largest share', () => {
    const g = chartGeometry(fieldChart(CHARGES).bars, 120, 40);
    expect(g.reference.map(r => r.height)).toEqual([12, 16, 12]);
    expect(g.window.map(r => r.height)).toEqual([0, 0, 40]);
    expect(g.window[2].y).toBe(0);
    // In each bin's slot, the reference's bar sits left of the window's.
    g.reference.forEach((r, i) => {
      expect(g.window[i].x).toBeCloseTo(r.x + r.width, 1);
      expect(r.x).toBeGreaterThanOrEqual(i * 40);
      expect(g.window[i].x + g.window[i].width).toBeLessThanOrEqual(
        (i + 1) * 40
      );
    });
  });

  it('keeps empty windows flat', () => {
    const g = chartGeometry([{ label: 'a', reference: 0, window: 0 }]);
    expect(g.reference[0].height).toBe(0);
    expect(chartGeometry([]).window).toEqual([]);
  });
});

describe('figures', () => {
  it('shows the window size, error rate, p99 and drift with their alarms', () => {
    expect(routeFigures(ROUTE, view())).toEqual([
      { label: 'window', value: '250 of 1000 requests', alarm: false },
      { label: 'error rate', value: '1.2%', alarm: false },
      { label: 'p99', value: '4.1 ms', alarm: false },
      { label: 'drift', value: '3.10', alarm: true }
    ]);
    const failing = { ...ROUTE, error_rate: 0.2, drift: null };
    const figures = routeFigures(failing, view(failing));
    expect(figures[1]).toEqual({
      label: 'error rate',
      value: '20%',
      alarm: true
    });
    expect(figures[3]).toEqual({
      label: 'drift',
      value: 'scored from 100 requests',
      alarm: false
    });
  });

  it('formats numbers compactly', () => {
    expect([percent(null), percent(0.1234), milliseconds(123.4)]).toEqual([
      '–',
      '12.3%',
      '123 ms'
    ]);
    expect([
      compact(18),
      compact(70.25),
      compact(0.123456),
      compact(1e9)
    ]).toEqual(['18', '70.3', '0.123', '1.0e+9']);
  });
});
