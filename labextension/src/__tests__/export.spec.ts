import {
  EXPORT_IDLE,
  exportItems,
  exportReducer,
  isExporting,
  storeProblem,
  type ExportAction,
  type IExportState
} from '../export';
import type { IExporter, IJob } from '../tokens';

function job(overrides: Partial<IJob> = {}): IJob {
  return {
    job_id: 'e1',
    kind: 'export',
    state: 'running',
    stages: [],
    step: null,
    log: [],
    result: null,
    error: null,
    ...overrides
  };
}

function run(
  actions: ExportAction[],
  from: IExportState = EXPORT_IDLE
): IExportState {
  return actions.reduce(exportReducer, from);
}

const started: ExportAction[] = [
  { type: 'submitted', exporter: 'kfp' },
  { type: 'accepted', jobId: 'e1' }
];

const KFP: IExporter = {
  name: 'kfp',
  description: 'the Kubeflow Pipelines SDK (kfp 2.x)',
  extra: 'kfp',
  available: true,
  reason: null
};

describe('exportReducer', () => {
  it('goes from submitting to running to written, with the paths', () => {
    expect(run(started.slice(0, 1))).toMatchObject({
      phase: 'submitting',
      exporter: 'kfp',
      headline: 'exporting to Kubeflow Pipelines YAML'
    });
    const running = run(started);
    expect(running).toMatchObject({ phase: 'running', jobId: 'e1' });
    expect(isExporting(running)).toBe(true);

    const written = run([
      ...started,
      {
        type: 'progress',
        job: job({
          state: 'succeeded',
          result: {
            exporter: 'kfp',
            paths: ['sub/churn.kfp.yaml'],
            build: 'build/churn',
            image: '<registry>/churn:abc',
            image_placeholder: true
          }
        })
      }
    ]);
    expect(written).toMatchObject({
      phase: 'written',
      paths: ['sub/churn.kfp.yaml'],
      placeholderImage: '<registry>/churn:abc',
      headline: 'wrote sub/churn.kfp.yaml',
      reason: null
    });
    expect(isExporting(written)).toBe(false);
  });

  it('shows the running step while the notebook is built', () => {
    const building = run([
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
          running_steps: [
            {
              index: 1,
              total: 2,
              name: 'load',
              state: 'running',
              started_at: 1
            }
          ]
        })
      }
    ]);
    expect(building.headline).toBe('running step 1 of 2: load');
  });

  it('fails with the server refusal or the job error', () => {
    const refused = run([
      started[0],
      { type: 'rejected', reason: 'a Kubeflow pipeline needs --store' }
    ]);
    expect(refused).toMatchObject({
      phase: 'failed',
      reason: 'a Kubeflow pipeline needs --store',
      headline: 'failed: a Kubeflow pipeline needs --store'
    });
    const broken = run([
      ...started,
      {
        type: 'progress',
        job: job({ state: 'failed', error: 'nb.ipynb cell 1 [step:b]: boom' })
      }
    ]);
    expect(broken.reason).toBe('nb.ipynb cell 1 [step:b]: boom');
    const cut = run([
      ...started,
      { type: 'progress', job: job({ state: 'interrupted' }) }
    ]);
    expect(cut.reason).toBe('the export ended interrupted');
  });

  it('ignores other jobs, a second submit while busy, and a reset while busy', () => {
    const running = run(started);
    expect(
      exportReducer(running, {
        type: 'progress',
        job: job({ job_id: 'other', state: 'failed' })
      })
    ).toBe(running);
    expect(
      exportReducer(running, { type: 'submitted', exporter: 'airflow' })
    ).toBe(running);
    expect(exportReducer(running, { type: 'reset' })).toBe(running);
    const failed = exportReducer(running, { type: 'rejected', reason: 'x' });
    expect(exportReducer(failed, { type: 'reset' })).toBe(EXPORT_IDLE);
  });
});

describe('exportItems', () => {
  it('offers kfp and airflow, greying out one the server cannot use', () => {
    const items = exportItems([
      {
        name: 'airflow',
        description:
          "cannot be loaded (nbops.build.exporters.airflow:AirflowExporter: No module named 'x')",
        extra: null,
        available: false,
        reason:
          "cannot be loaded (nbops.build.exporters.airflow:AirflowExporter: No module named 'x')"
      },
      KFP
    ]);
    expect(items.map(i => [i.name, i.label, i.needsStore])).toEqual([
      ['kfp', 'Kubeflow Pipelines YAML', true],
      ['airflow', 'Airflow DAG', false]
    ]);
    expect(items[0].disabledReason).toBeNull();
    expect(items[1].disabledReason).toMatch(/^cannot be loaded/);
  });

  it('lists third-party exporters after, and says why one is missing', () => {
    const argo = { ...KFP, name: 'argo', description: 'Argo', extra: null };
    const items = exportItems([KFP, argo]);
    expect(items.map(i => i.label)).toEqual([
      'Kubeflow Pipelines YAML',
      'Airflow DAG',
      'argo'
    ]);
    expect(items[1].disabledReason).toBe('not installed in the Jupyter server');
    expect(items[2].disabledReason).toBeNull();
  });

  it('offers nothing before the server answers, and says why', () => {
    expect(exportItems(null).every(i => i.disabledReason !== null)).toBe(true);
    expect(
      exportItems(null, 'cannot reach the Jupyter server')[0].disabledReason
    ).toBe('cannot reach the Jupyter server');
  });
});

describe('storeProblem', () => {
  it('wants a bucket URL, as the kfp exporter does', () => {
    expect(storeProblem('s3://bucket/prefix')).toBeNull();
    expect(storeProblem(' gs://b ')).toBeNull();
    expect(storeProblem('')).toMatch(/^Give the artifact store/);
    expect(storeProblem('/tmp/store')).toMatch(/is a local folder/);
  });
});
