import {
  IDLE,
  canCancel,
  deployReducer,
  isBusy,
  runningHeadline,
  runningSteps,
  stageLabel,
  type DeployAction,
  type IDeployState
} from '../status';
import type { IJob } from '../tokens';

function job(overrides: Partial<IJob> = {}): IJob {
  return {
    job_id: 'j1',
    kind: 'deploy',
    state: 'running',
    stages: [],
    step: null,
    log: [],
    result: null,
    error: null,
    ...overrides
  };
}

function run(actions: DeployAction[], from: IDeployState = IDLE): IDeployState {
  return actions.reduce(deployReducer, from);
}

const started: DeployAction[] = [
  { type: 'submitted', kind: 'deploy', name: 'churn' },
  { type: 'accepted', jobId: 'j1' }
];

describe('deployReducer', () => {
  it('goes from idle to submitting to running', () => {
    const submitting = run(started.slice(0, 1));
    expect(submitting.phase).toBe('submitting');
    expect(submitting.name).toBe('churn');
    expect(isBusy(submitting)).toBe(true);
    const running = run(started);
    expect(running.phase).toBe('running');
    expect(running.jobId).toBe('j1');
  });

  it('shows which step runs while the pipeline runs', () => {
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({
          stages: [
            {
              name: 'analysing',
              state: 'succeeded',
              message: null,
              started_at: 10,
              ended_at: 10.25
            },
            {
              name: 'running',
              state: 'running',
              message: null,
              started_at: 10.25,
              ended_at: null
            }
          ],
          step: { index: 2, total: 5, name: 'features' }
        })
      }
    ]);
    expect(state.phase).toBe('running');
    expect(state.headline).toBe('running step 2 of 5: features');
    expect(state.stages.map(s => [s.label, s.state, s.seconds])).toEqual([
      ['analysing', 'succeeded', 0.3],
      ['running', 'running', null]
    ]);
  });

  it('says building once the last step has run and the build goes on', () => {
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({
          stages: [
            {
              name: 'building',
              state: 'running',
              message: 'running and building churn.ipynb',
              started_at: 1,
              ended_at: null
            }
          ],
          step: { index: 5, total: 5, name: 'report', state: 'ran' }
        })
      }
    ]);
    expect(state.headline).toBe('building');
  });

  it('names the running stage once the steps are done', () => {
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({
          stages: [
            {
              name: 'building',
              state: 'succeeded',
              message: null,
              started_at: 1,
              ended_at: 2
            },
            {
              name: 'starting',
              state: 'running',
              message: 'port 40001',
              started_at: 2,
              ended_at: null
            }
          ],
          step: { index: 5, total: 5, name: 'report' }
        })
      }
    ]);
    expect(state.headline).toBe('starting');
  });

  it('ends healthy with the version the job made', () => {
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({
          state: 'succeeded',
          result: {
            name: 'churn',
            version: 3,
            status: 'healthy',
            url: 'http://127.0.0.1:8000'
          }
        })
      }
    ]);
    expect(state.phase).toBe('healthy');
    expect(state.headline).toBe('healthy: churn v3');
    expect(isBusy(state)).toBe(false);
  });

  it('ends refused, with the reason naming both figures, when the gates refuse it', () => {
    const reason =
      'refused: test_accuracy 0.79 against 0.821 of v3 (serving), higher is better, tolerance 0: worse (it was not started)';
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({
          state: 'failed',
          error: reason,
          stages: [
            {
              name: 'metrics',
              state: 'failed',
              message: reason,
              started_at: 1,
              ended_at: 2
            }
          ],
          result: { name: 'churn', version: 4, status: 'refused', reason }
        })
      }
    ]);
    expect(state.phase).toBe('refused');
    expect(state.headline).toBe(reason);
    expect(state.stages[0].label).toBe('metric gates');
    expect(isBusy(state)).toBe(false);
  });

  it('fails with the reason when the new version never got healthy', () => {
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({
          state: 'succeeded',
          result: {
            name: 'churn',
            version: 4,
            status: 'failed',
            reason: '/readyz answered 503'
          }
        })
      }
    ]);
    expect(state.phase).toBe('failed');
    expect(state.reason).toBe('/readyz answered 503');
    expect(state.headline).toBe('failed: /readyz answered 503');
  });

  it('fails with the job error, else the failed stage', () => {
    const withError = run([
      ...started,
      {
        type: 'progress',
        job: job({ state: 'failed', error: 'step train failed', log: ['boom'] })
      }
    ]);
    expect(withError.reason).toBe('step train failed');
    expect(withError.log).toEqual(['boom']);
    const fromStage = run([
      ...started,
      {
        type: 'progress',
        job: job({
          state: 'failed',
          stages: [
            {
              name: 'testing',
              state: 'failed',
              message: '1 test failed',
              started_at: 1,
              ended_at: 2
            }
          ]
        })
      }
    ]);
    expect(fromStage.reason).toBe('1 test failed');
  });

  it('ignores answers about another job', () => {
    const state = run(started);
    expect(
      deployReducer(state, {
        type: 'progress',
        job: job({ job_id: 'other', state: 'failed' })
      })
    ).toBe(state);
    expect(deployReducer(IDLE, { type: 'progress', job: job() })).toBe(IDLE);
  });

  it('fails when the request is refused', () => {
    const state = run([
      started[0],
      { type: 'rejected', reason: 'port 8000 is taken' }
    ]);
    expect(state.phase).toBe('failed');
    expect(state.headline).toBe('failed: port 8000 is taken');
    expect(deployReducer(IDLE, { type: 'rejected', reason: 'x' })).toBe(IDLE);
  });

  it('runs one job at a time and resets only when done', () => {
    const running = run(started);
    expect(
      deployReducer(running, {
        type: 'submitted',
        kind: 'rollback',
        name: 'churn'
      })
    ).toBe(running);
    expect(deployReducer(running, { type: 'reset' })).toBe(running);
    const done = run(
      [
        {
          type: 'progress',
          job: job({ state: 'succeeded', result: { status: 'healthy' } })
        }
      ],
      running
    );
    expect(deployReducer(done, { type: 'reset' })).toEqual(IDLE);
    const again = deployReducer(done, {
      type: 'submitted',
      kind: 'rollback',
      name: 'churn'
    });
    expect(again.phase).toBe('submitting');
    expect(again.kind).toBe('rollback');
    expect(again.stages).toEqual([]);
  });
});

describe('resuming', () => {
  it('follows a job found running, and only when idle', () => {
    const running = job({
      job_id: 'j9',
      kind: 'rollback',
      stages: [
        {
          name: 'starting',
          state: 'running',
          message: null,
          started_at: 1,
          ended_at: null
        }
      ]
    });
    const state = deployReducer(IDLE, {
      type: 'resumed',
      job: running,
      name: 'churn'
    });
    expect(state.phase).toBe('running');
    expect(state.jobId).toBe('j9');
    expect(state.kind).toBe('rollback');
    expect(state.headline).toBe('starting');
    const busy = run(started);
    expect(
      deployReducer(busy, { type: 'resumed', job: running, name: 'churn' })
    ).toBe(busy);
    const finished = job({ job_id: 'j9', state: 'succeeded' });
    expect(
      deployReducer(IDLE, { type: 'resumed', job: finished, name: 'churn' })
    ).toBe(IDLE);
  });
});

describe('cancel', () => {
  const spinning = job({
    stages: [
      {
        name: 'building',
        state: 'running',
        message: 'running and building spins.ipynb',
        started_at: 1,
        ended_at: null
      }
    ],
    step: { index: 2, total: 2, name: 'spin', state: 'running' }
  });

  it('is offered only while a job of ours runs, and asked for once', () => {
    expect(canCancel(IDLE)).toBe(false);
    expect(canCancel(run(started.slice(0, 1)))).toBe(false);
    const running = run([...started, { type: 'progress', job: spinning }]);
    expect(canCancel(running)).toBe(true);
    const cancelling = deployReducer(running, { type: 'cancelling' });
    expect(cancelling.phase).toBe('cancelling');
    expect(cancelling.headline).toBe('cancelling…');
    expect(isBusy(cancelling)).toBe(true);
    expect(canCancel(cancelling)).toBe(false);
    expect(deployReducer(cancelling, { type: 'cancelling' })).toBe(cancelling);
    expect(deployReducer(IDLE, { type: 'cancelling' })).toBe(IDLE);
  });

  it('stays cancelling while the job still runs, then ends cancelled', () => {
    const cancelling = run([
      ...started,
      { type: 'progress', job: spinning },
      { type: 'cancelling' },
      { type: 'progress', job: spinning }
    ]);
    expect(cancelling.phase).toBe('cancelling');
    const ended = deployReducer(cancelling, {
      type: 'progress',
      job: job({
        ...spinning,
        state: 'cancelled',
        error: "cancelled while step 'spin' ran."
      })
    });
    expect(ended.phase).toBe('cancelled');
    expect(ended.headline).toBe("cancelled while step 'spin' ran.");
    expect(ended.reason).toBe("cancelled while step 'spin' ran.");
    expect(isBusy(ended)).toBe(false);
    expect(deployReducer(ended, { type: 'reset' })).toBe(IDLE);
  });

  it('reports a job the server stopped during as failed, with its reason', () => {
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({
          state: 'interrupted',
          error: "the Jupyter server stopped while step 'fit' ran."
        })
      }
    ]);
    expect(state.phase).toBe('failed');
    expect(state.headline).toBe(
      "failed: the Jupyter server stopped while step 'fit' ran."
    );
  });
});

describe('words', () => {
  it('labels known stages and passes others through', () => {
    expect(stageLabel('ready')).toBe('waiting for /readyz');
    expect(stageLabel('promoting')).toBe('switching traffic');
    expect(stageLabel('warm_cache')).toBe('warm cache');
  });

  it('says starting before any stage runs', () => {
    expect(runningHeadline(job())).toBe('starting');
  });
});

describe('steps running side by side', () => {
  const building = {
    name: 'building',
    state: 'running',
    message: 'running and building churn.ipynb',
    started_at: 10,
    ended_at: null
  };
  const b1 = {
    index: 2,
    total: 6,
    name: 'b1',
    state: 'running',
    started_at: 11
  };
  const b2 = {
    index: 3,
    total: 6,
    name: 'b2',
    state: 'running',
    started_at: 11.5
  };

  it('names every running step, in the order they started', () => {
    const state = run([
      ...started,
      {
        type: 'progress',
        job: job({ stages: [building], step: b2, running_steps: [b1, b2] })
      }
    ]);
    expect(state.headline).toBe('running step 2 of 6: b1 · step 3 of 6: b2');
  });

  it('drops a step once it ended, while the other still runs', () => {
    const headline = runningHeadline(
      job({ stages: [building], step: b1, running_steps: [b1] })
    );
    expect(headline).toBe('running step 2 of 6: b1');
  });

  it('shows the stage between steps, when none runs', () => {
    const ended = { ...b2, state: 'ran' };
    const headline = runningHeadline(
      job({ stages: [building], step: ended, running_steps: [] })
    );
    expect(headline).toBe('building');
  });

  it("shows a run job's running steps, whose stages are its steps", () => {
    const stages = [b1, b2].map(s => ({
      name: s.name,
      state: 'running',
      message: 'running',
      started_at: s.started_at,
      ended_at: null
    }));
    const headline = runningHeadline(
      job({ kind: 'run', stages, step: b2, running_steps: [b1, b2] })
    );
    expect(headline).toBe('running step 2 of 6: b1 · step 3 of 6: b2');
  });

  it('falls back to `step` from a server without running_steps', () => {
    expect(runningSteps(job({ step: { ...b1, state: 'running' } }))).toEqual([
      { ...b1, state: 'running' }
    ]);
    expect(runningSteps(job({ step: { ...b1, state: 'ran' } }))).toEqual([]);
  });
});
