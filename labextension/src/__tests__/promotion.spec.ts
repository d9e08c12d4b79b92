import {
  comparisonOf,
  declaredIn,
  formatValue,
  outcomeOf,
  splitGate
} from '../promotion';
import type { IChallengerView, IJobResult, IVerdict } from '../tokens';

const DUEL_REASON =
  'accuracy 0.7 against 0.9 of v1 (serving), higher is better, tolerance 0.01: worse';

function verdict(overrides: Partial<IVerdict> = {}): IVerdict {
  return {
    gates: [
      {
        gate: 'accuracy>=0.5',
        value: 0.7,
        passed: true,
        reason: 'accuracy = 0.7'
      }
    ],
    must_beat: [
      {
        metric: 'accuracy',
        higher_is_better: true,
        challenger: 0.7,
        champion: 0.9,
        passed: false,
        reason: DUEL_REASON
      }
    ],
    champion: 1,
    metrics: { accuracy: 0.7 },
    refused: true,
    reason: `refused: ${DUEL_REASON} (it was not started)`,
    ...overrides
  };
}

function view(overrides: Partial<IChallengerView> = {}): IChallengerView {
  return {
    name: 'gated',
    notebook: 'gated.ipynb',
    gated: true,
    gates: {
      require: ['accuracy>=0.5'],
      must_beat: ['accuracy'],
      tolerance: 0.01,
      sources: [
        'gated.ipynb metadata.nbops.require',
        'gated.ipynb metadata.nbops.must_beat',
        'gated.ipynb metadata.nbops.tolerance'
      ]
    },
    serving: {
      version: 1,
      status: 'healthy',
      run_id: 'r1',
      metrics: { accuracy: 0.9 }
    },
    challenger: {
      run_id: 'r2',
      started_at: 1,
      parameters: { quality: 0.7 },
      metrics: { accuracy: 0.7 },
      same_notebook: true
    },
    verdict: verdict(),
    ...overrides
  };
}

describe('comparisonOf', () => {
  it('shows each gate and duel with the serving and last-run figures', () => {
    const c = comparisonOf(view());
    expect(c.state).toBe('refused');
    expect(c.serving).toBe('v1 serves');
    expect(c.headline).toBe(`its last run would be refused: ${DUEL_REASON}`);
    expect(c.tolerance).toBe('tolerance 0.01');
    expect(c.note).toBe('last run r2');
    expect(
      c.rows.map(r => [
        r.metric,
        r.kind,
        r.rule,
        r.serving,
        r.challenger,
        r.passed
      ])
    ).toEqual([
      ['accuracy', 'gate', '>= 0.5', 0.9, 0.7, true],
      ['accuracy', 'duel', '>= serving - 0.01', 0.9, 0.7, false]
    ]);
    expect(c.rows[1].reason).toBe(DUEL_REASON);
  });

  it('says a run that passes would be promoted', () => {
    const passing = verdict({
      refused: false,
      reason:
        'metrics pass: accuracy = 0.95; accuracy 0.95 against 0.9 of v1 (serving)'
    });
    passing.must_beat[0] = {
      ...passing.must_beat[0],
      challenger: 0.95,
      passed: true
    };
    const c = comparisonOf(view({ verdict: passing }));
    expect(c.state).toBe('promoted');
    expect(c.headline).toBe('its last run would be promoted');
  });

  it('lists the declared gates unjudged before any run, with the serving values', () => {
    const c = comparisonOf(view({ challenger: null, verdict: null }));
    expect(c.state).toBe('pending');
    expect(c.headline).toBe(
      'no successful run yet: Deploy runs the notebook, then judges it'
    );
    expect(
      c.rows.map(r => [r.metric, r.kind, r.serving, r.challenger, r.passed])
    ).toEqual([
      ['accuracy', 'gate', 0.9, null, null],
      ['accuracy', 'duel', 0.9, null, null]
    ]);
  });

  it('reads a lower-is-better rival and says when nothing serves', () => {
    const c = comparisonOf(
      view({
        serving: null,
        challenger: null,
        verdict: null,
        gates: { require: [], must_beat: ['-rmse'], tolerance: 0, sources: [] }
      })
    );
    expect(c.serving).toBe('nothing serves yet: there is no version to beat');
    expect(c.rows[0].rule).toBe('<= serving');
    expect(c.rows[0].metric).toBe('rmse');
    expect(c.tolerance).toBeNull();
  });

  it('says a notebook without gates is promoted on health alone', () => {
    const c = comparisonOf(
      view({
        gated: false,
        gates: { require: [], must_beat: [], tolerance: 0, sources: [] }
      })
    );
    expect(c.state).toBe('ungated');
    expect(c.rows).toEqual([]);
  });

  it('warns that an edited notebook is run again before it is judged', () => {
    const edited = view();
    edited.challenger!.same_notebook = false;
    expect(comparisonOf(edited).note).toBe(
      'last run r2; the notebook changed since, so Deploy runs it again and judges that run'
    );
  });
});

describe('outcomeOf', () => {
  it('gives a refusal its reason and both figures', () => {
    const result: IJobResult = {
      name: 'gated',
      version: 2,
      status: 'refused',
      reason: `refused: ${DUEL_REASON} (it was not started)`,
      verdict: verdict()
    };
    const outcome = outcomeOf(result, 0.01)!;
    expect(outcome.refused).toBe(true);
    expect(outcome.text).toBe(`refused: ${DUEL_REASON} (it was not started)`);
    expect(outcome.summary).toBe('v2 was not started; v1 still serves');
    expect(outcome.rows[1]).toMatchObject({
      metric: 'accuracy',
      serving: 0.9,
      challenger: 0.7,
      passed: false
    });
  });

  it('says promoted with the figures that passed', () => {
    const result: IJobResult = {
      name: 'gated',
      version: 1,
      status: 'healthy',
      verdict: verdict({
        must_beat: [],
        champion: null,
        refused: false,
        reason: 'metrics pass: accuracy = 0.9'
      })
    };
    expect(outcomeOf(result)!.text).toBe('promoted v1: accuracy = 0.9');
    expect(outcomeOf(result)!.summary).toBe('promoted v1: accuracy = 0.9');
  });

  it('does not call a version that passed its gates but failed later promoted', () => {
    const result: IJobResult = {
      version: 2,
      status: 'failed',
      verdict: verdict({
        refused: false,
        reason: 'metrics pass: accuracy = 0.9'
      })
    };
    expect(outcomeOf(result)!.text).toBe('metrics pass, but v2 ended failed');
  });

  it('is null for a deploy without gates', () => {
    expect(outcomeOf({ status: 'healthy', verdict: null })).toBeNull();
    expect(outcomeOf(null)).toBeNull();
  });
});

describe('words', () => {
  it('splits a gate, formats values and names where gates were declared', () => {
    expect(splitGate('test_accuracy>=0.8')).toEqual({
      metric: 'test_accuracy',
      rule: '>= 0.8'
    });
    expect(formatValue(0.821349)).toBe('0.8213');
    expect(formatValue(null)).toBe('–');
    expect(
      declaredIn([
        'pyproject.toml [tool.nbops.notebooks."churn.ipynb"] require',
        'churn.ipynb metadata.nbops.must_beat',
        'churn.ipynb metadata.nbops.tolerance'
      ])
    ).toBe('pyproject.toml, churn.ipynb metadata');
  });
});
