/**
 * Metric-gated promotion in the panel's words: the comparison before a deploy (the serving
 * version against this notebook's last run, each declared gate and duel as the server judged
 * it) and a finished deploy's outcome (refused with both figures, or promoted). Pure: no DOM.
 */
import type {
  IChallengerView,
  IDuel,
  IGateResult,
  IJobResult,
  IVerdict
} from './tokens';

/** One line of the comparison table: a gate (`accuracy>=0.8`) or a duel (`must beat`). */
export interface IComparisonRow {
  /** Unique within the table. */
  key: string;
  metric: string;
  kind: 'gate' | 'duel';
  /** The rule: ">= 0.8" for a gate; ">= serving - 0.005" for a duel (higher is better). */
  rule: string;
  /** The serving version's recorded value; null when nothing serves or it recorded none. */
  serving: number | null;
  /** The challenger's value: the last run's before a deploy, the build's after. */
  challenger: number | null;
  /** null: not judged yet (no run to judge). */
  passed: boolean | null;
  /** The server's reason, e.g. "accuracy 0.7 against 0.9 of v1 (serving), ...: worse". */
  reason: string;
}

export interface IComparison {
  /** "v1 serves", "nothing serves yet". */
  serving: string;
  /** What a deploy of the last run would do: "would be promoted", "would be refused: ...". */
  headline: string;
  /** `refused` / `promoted` / `pending` (no run yet) / `ungated` (no gates declared). */
  state: 'refused' | 'promoted' | 'pending' | 'ungated';
  rows: IComparisonRow[];
  /** "tolerance 0.005" when a duel allows some, else null. */
  tolerance: string | null;
  /** Where the gates were declared: "churn.ipynb metadata.nbops.require", ... */
  sources: string[];
  /** A note on the challenger: which run, and whether the notebook changed since. */
  note: string;
}

/** A finished deploy's verdict, in the panel's words. */
export interface IOutcome {
  refused: boolean;
  /** "refused: test_accuracy 0.79 against 0.821 of v3 (serving), ..." or "promoted v4: ...". */
  text: string;
  /** Under the headline (which says `text` of a refusal): "v4 was not started; v3 still serves". */
  summary: string;
  rows: IComparisonRow[];
}

/** A metric value for people: up to four decimals, as the panel's metrics list shows them. */
export function formatValue(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '–';
  }
  return String(Math.round(value * 10000) / 10000);
}

const GATE = /^\s*([^\W\d]\w*)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$/u;

/** `accuracy>=0.8` → its metric and rule; what the server wrote, never judged here. */
export function splitGate(gate: string): { metric: string; rule: string } {
  const match = GATE.exec(gate);
  return match
    ? { metric: match[1], rule: `${match[2]} ${match[3]}` }
    : { metric: gate, rule: gate };
}

/** Not worse than the serving version by more than the tolerance, as a comparison. */
function duelRule(higherIsBetter: boolean, tolerance: number): string {
  const slack =
    tolerance > 0 ? ` ${higherIsBetter ? '-' : '+'} ${tolerance}` : '';
  return `${higherIsBetter ? '>=' : '<='} serving${slack}`;
}

/** The rows of a verdict: each gate, then each duel, with the serving version's values. */
export function verdictRows(
  verdict: IVerdict,
  serving: Record<string, number> | null,
  tolerance: number
): IComparisonRow[] {
  const gates = verdict.gates.map((g: IGateResult, i): IComparisonRow => {
    const { metric, rule } = splitGate(g.gate);
    return {
      key: `gate:${i}:${g.gate}`,
      metric,
      kind: 'gate',
      rule,
      serving: serving?.[metric] ?? null,
      challenger: g.value ?? verdict.metrics[metric] ?? null,
      passed: g.passed,
      reason: g.reason
    };
  });
  const duels = verdict.must_beat.map((d: IDuel, i): IComparisonRow => ({
    key: `duel:${i}:${d.metric}`,
    metric: d.metric,
    kind: 'duel',
    rule: duelRule(d.higher_is_better, tolerance),
    serving: d.champion ?? serving?.[d.metric] ?? null,
    challenger: d.challenger,
    passed: d.passed,
    reason: d.reason
  }));
  return [...gates, ...duels];
}

/** The declared gates before any run: the serving values, nothing judged. */
function pendingRows(view: IChallengerView): IComparisonRow[] {
  const serving = view.serving?.metrics ?? null;
  const gates = view.gates.require.map((gate, i): IComparisonRow => {
    const { metric, rule } = splitGate(gate);
    return {
      key: `gate:${i}:${gate}`,
      metric,
      kind: 'gate',
      rule,
      serving: serving?.[metric] ?? null,
      challenger: null,
      passed: null,
      reason: 'not judged: this notebook has no successful run yet'
    };
  });
  const duels = view.gates.must_beat.map((rival, i): IComparisonRow => {
    const metric = rival.replace(/^-/, '');
    return {
      key: `duel:${i}:${metric}`,
      metric,
      kind: 'duel',
      rule: duelRule(!rival.startsWith('-'), view.gates.tolerance),
      serving: serving?.[metric] ?? null,
      challenger: null,
      passed: null,
      reason: 'not judged: this notebook has no successful run yet'
    };
  });
  return [...gates, ...duels];
}

/** The comparison the panel shows before Deploy is clicked. */
export function comparisonOf(view: IChallengerView): IComparison {
  const serving =
    view.serving === null
      ? 'nothing serves yet: there is no version to beat'
      : `v${view.serving.version} serves`;
  const tolerance =
    view.gates.must_beat.length > 0 && view.gates.tolerance > 0
      ? `tolerance ${view.gates.tolerance}`
      : null;
  const base = { serving, tolerance, sources: view.gates.sources };
  if (!view.gated) {
    return {
      ...base,
      state: 'ungated',
      headline:
        'no metric gates declared: any version that proves healthy is promoted',
      rows: [],
      note: ''
    };
  }
  if (view.verdict === null || view.challenger === null) {
    return {
      ...base,
      state: 'pending',
      headline:
        'no successful run yet: Deploy runs the notebook, then judges it',
      rows: pendingRows(view),
      note: ''
    };
  }
  const refused = view.verdict.refused ?? false;
  const reason = view.verdict.reason ?? '';
  const note =
    `last run ${view.challenger.run_id}` +
    (view.challenger.same_notebook
      ? ''
      : '; the notebook changed since, so Deploy runs it again and judges that run');
  return {
    ...base,
    state: refused ? 'refused' : 'promoted',
    headline: refused
      ? `its last run would be ${reason.replace(/ \(it was not started\)$/, '')}`
      : 'its last run would be promoted',
    rows: verdictRows(
      view.verdict,
      view.serving?.metrics ?? null,
      view.gates.tolerance
    ),
    note
  };
}

/** The verdict of a finished deploy's result; null when it was not gated. */
export function outcomeOf(
  result: IJobResult | null,
  tolerance = 0
): IOutcome | null {
  const verdict = result?.verdict ?? null;
  if (result === null || verdict === null) {
    return null;
  }
  const refused = verdict.refused ?? result.status === 'refused';
  const version =
    typeof result.version === 'number' ? ` v${result.version}` : '';
  const passed = (verdict.reason ?? '').replace(/^metrics pass: /, '');
  let text = `promoted${version}` + (passed ? `: ${passed}` : '');
  if (refused) {
    text = result.reason ?? verdict.reason ?? 'refused';
  } else if (result.status !== 'healthy') {
    text = `metrics pass, but${version} ended ${String(result.status)}`;
  }
  const champion = verdict.champion;
  const kept =
    champion === null ? 'nothing serves' : `v${champion} still serves`;
  const notStarted = version
    ? `${version.trim()} was not started`
    : 'not started';
  return {
    refused,
    text,
    summary: refused ? `${notStarted}; ${kept}` : text,
    rows: verdictRows(verdict, championValues(verdict), tolerance)
  };
}

/** The serving version's values as the duels recorded them. */
function championValues(verdict: IVerdict): Record<string, number> {
  const values: Record<string, number> = {};
  for (const d of verdict.must_beat) {
    if (d.champion !== null) {
      values[d.metric] = d.champion;
    }
  }
  return values;
}

/** "pyproject.toml, churn.ipynb metadata": where the gates were declared, each file once. */
export function declaredIn(sources: readonly string[]): string {
  const files = sources.map(s =>
    s.startsWith('pyproject.toml')
      ? 'pyproject.toml'
      : `${s.split(' ')[0]} metadata`
  );
  return [...new Set(files)].join(', ');
}
