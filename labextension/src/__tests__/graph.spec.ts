import {
  buildGraph,
  cellRange,
  clip,
  edgePath,
  fileNodeId,
  graphKey,
  layoutGraph,
  nodeOfCell,
  type ILineageGraph
} from '../graph';
import { MIN_FIT_SCALE, fitScale } from '../fit';
import type { ILineage } from '../tokens';

import churnJson from './churn.lineage.json';
import filesJson from './files.lineage.json';

const churn = churnJson as ILineage;
const withFiles = filesJson as ILineage;

function copy(lineage: ILineage): ILineage {
  return JSON.parse(JSON.stringify(lineage)) as ILineage;
}

function edge(graph: ILineageGraph, source: string, target: string) {
  return graph.edges.find(e => e.source === source && e.target === target);
}

describe('buildGraph', () => {
  const graph = buildGraph(churn, {
    parameterCells: [{ index: 2, id: 'churn-02' }]
  });

  it('has a node for the parameters, each step, test, the metrics and each endpoint', () => {
    expect(graph.nodes.map(n => n.id)).toEqual([
      'parameters',
      'step:load',
      'step:features',
      'step:train',
      'step:evaluate',
      'step:report',
      'test:0',
      'test:1',
      'test:2',
      'metrics',
      'endpoint:predict'
    ]);
    expect(graph.nodes.find(n => n.id === 'endpoint:predict')?.label).toBe(
      'POST /predict'
    );
  });

  it('labels each data edge with the artifacts that flow along it', () => {
    expect(edge(graph, 'step:load', 'step:features')?.label).toBe('customers');
    expect(edge(graph, 'step:features', 'step:train')?.label).toBe(
      'X_train, y_train'
    );
    expect(edge(graph, 'step:train', 'step:evaluate')?.kind).toBe('data');
    const dataEdges = graph.edges.filter(e => e.kind === 'data');
    expect(dataEdges).toHaveLength(6);
  });

  it('draws after: as its own kind of edge', () => {
    const after = edge(graph, 'step:evaluate', 'step:report');
    expect(after?.kind).toBe('after');
    expect(after?.label).toBe('after');
  });

  it('connects the endpoint to the steps that made what it serves with', () => {
    const model = edge(graph, 'step:train', 'endpoint:predict');
    const columns = edge(graph, 'step:features', 'endpoint:predict');
    expect([model?.title, columns?.title]).toEqual([
      'model',
      'feature_columns'
    ]);
    // In the tooltip only: a label on these edges widens the graph past a sidebar's width.
    expect([model?.label, columns?.label]).toEqual(['', '']);
  });

  it('connects tests to the step they check and parameters to the steps reading them', () => {
    expect(edge(graph, 'step:train', 'test:0')?.kind).toBe('test');
    expect(edge(graph, 'step:features', 'test:1')?.kind).toBe('test');
    const load = edge(graph, 'parameters', 'step:load');
    expect(load?.kind).toBe('parameter');
    expect(load?.title).toBe('n_rows, seed');
    expect(load?.label).toBe('');
    expect(edge(graph, 'parameters', 'step:evaluate')).toBeUndefined();
  });

  it('draws a long pipeline compact: no parameter edges, tests counted on their step', () => {
    const long = copy(churn);
    long.steps = Array.from({ length: 13 }, (_, i) => ({
      ...churn.steps[0],
      name: `s${i}`,
      cells: [{ index: i * 2 + 3, id: `c${i}` }]
    }));
    long.edges = [];
    long.tests = [
      { step: 's0', cells: [{ index: 4, id: 't0' }] },
      { step: 's0', cells: [{ index: 30, id: 't1' }] },
      { step: null, cells: [{ index: 2, id: 't2' }] }
    ];
    long.diagnostics = [
      {
        severity: 'error',
        cell_index: 30,
        cell_id: 't1',
        line: 1,
        message: 'm',
        fix: null
      }
    ];
    const built = buildGraph(long);
    expect(built.edges.filter(e => e.kind === 'parameter')).toEqual([]);
    const s0 = built.nodes.find(n => n.id === 'step:s0')!;
    expect(s0.detail).toBe('cell 3 · 2 tests');
    expect(s0.title).toBe(
      's0\ncell 3\nparameters: n_rows, seed\ntests: cells 4, 30'
    );
    expect(s0.severity).toBe('error');
    expect(built.nodes.filter(n => n.kind === 'test').map(n => n.id)).toEqual([
      'test:2'
    ]);

    long.steps = long.steps.slice(0, 12);
    const full = buildGraph(long);
    expect(full.edges.filter(e => e.kind === 'parameter')).toHaveLength(12);
    expect(full.nodes.filter(n => n.kind === 'test')).toHaveLength(3);
  });

  it('takes the metrics from the step above them unless the server names the producers', () => {
    expect(edge(graph, 'step:evaluate', 'metrics')?.label).toBe('');
    const named = copy(churn);
    named.metrics.producers = { accuracy: 'evaluate', model: 'train' };
    const withProducers = buildGraph(named);
    expect(edge(withProducers, 'step:evaluate', 'metrics')?.label).toBe(
      'accuracy'
    );
    expect(edge(withProducers, 'step:train', 'metrics')?.label).toBe('model');
  });

  it('gives nodes their cells, the parameters cell from the options', () => {
    const features = graph.nodes.find(n => n.id === 'step:features');
    expect(features?.cells.map(c => c.id)).toEqual(['churn-08', 'churn-09']);
    expect(features?.detail).toBe('cells 8–9');
    expect(graph.nodes[0].cells).toEqual([{ index: 2, id: 'churn-02' }]);
  });

  it('leaves out nodes for what the notebook lacks', () => {
    const bare = copy(churn);
    bare.parameters = [];
    bare.metrics = { names: [], cells: [] };
    bare.endpoints = [];
    bare.tests = [];
    const ids = buildGraph(bare).nodes.map(n => n.id);
    expect(ids).toEqual([
      'step:load',
      'step:features',
      'step:train',
      'step:evaluate',
      'step:report'
    ]);
    expect(
      buildGraph(bare).edges.every(e => e.source.startsWith('step:'))
    ).toBe(true);
  });

  it('marks a node with its worst diagnostic', () => {
    const broken = copy(churn);
    broken.diagnostics = [
      {
        severity: 'warning',
        cell_index: 9,
        cell_id: 'churn-09',
        line: null,
        message: 'w',
        fix: null
      },
      {
        severity: 'error',
        cell_index: 8,
        cell_id: 'churn-08',
        line: 2,
        message: 'e',
        fix: 'f'
      },
      {
        severity: 'warning',
        cell_index: 11,
        cell_id: 'churn-11',
        line: 1,
        message: 'w',
        fix: null
      }
    ];
    const marked = buildGraph(broken);
    expect(marked.nodes.find(n => n.id === 'step:features')?.severity).toBe(
      'error'
    );
    expect(marked.nodes.find(n => n.id === 'step:train')?.severity).toBe(
      'warning'
    );
    expect(marked.nodes.find(n => n.id === 'step:load')?.severity).toBeNull();
  });

  it('changes when a cell is retagged, and only then', () => {
    expect(graphKey(buildGraph(copy(churn)))).toBe(graphKey(buildGraph(churn)));
    const retagged = copy(churn);
    retagged.steps[1].name = 'prepare';
    retagged.edges = retagged.edges.map(e => ({
      ...e,
      source: e.source === 'features' ? 'prepare' : e.source,
      target: e.target === 'features' ? 'prepare' : e.target
    }));
    const graph2 = buildGraph(retagged);
    expect(graphKey(graph2)).not.toBe(graphKey(graph));
    expect(edge(graph2, 'step:prepare', 'step:train')?.label).toBe(
      'X_train, y_train'
    );
  });
});

describe('data files', () => {
  const graph = buildGraph(withFiles);

  it('draws one node per data file, however many steps read it', () => {
    const files = graph.nodes.filter(n => n.kind === 'file');
    expect(files.map(n => n.id)).toEqual([
      fileNodeId('data/customers.csv'),
      fileNodeId('extra/*.csv')
    ]);
    expect(files.map(n => [n.label, n.detail])).toEqual([
      ['customers.csv', 'data/'],
      ['*.csv', 'reads= tag']
    ]);
    expect(files[0].title).toBe(
      'data/customers.csv\ndata file, read in the code\nread by: load, features'
    );
    expect(files[1].title).toContain('named by a reads= tag');
    expect(files.every(n => n.cells.length === 0)).toBe(true);
  });

  it('draws an unlabelled edge from a file into each step that reads it', () => {
    const edges = graph.edges.filter(e => e.kind === 'file');
    expect(edges.map(e => [e.source, e.target, e.label])).toEqual([
      ['file:data/customers.csv', 'step:load', ''],
      ['file:data/customers.csv', 'step:features', ''],
      ['file:extra/*.csv', 'step:extras', '']
    ]);
  });

  it('places each file above the steps that read it', () => {
    const laid = layoutGraph(graph);
    const at = (id: string) => laid.nodes.find(n => n.id === id)!;
    for (const e of laid.edges.filter(e => e.kind === 'file')) {
      expect(at(e.source).y).toBeLessThan(at(e.target).y);
    }
    const boxes = laid.nodes;
    for (const a of boxes) {
      for (const b of boxes) {
        if (a.id < b.id) {
          const apart =
            Math.abs(a.x - b.x) >= (a.width + b.width) / 2 ||
            Math.abs(a.y - b.y) >= (a.height + b.height) / 2;
          expect(apart).toBe(true);
        }
      }
    }
  });

  it('draws no file node for a lineage without files (an older server)', () => {
    expect(buildGraph(churn).nodes.some(n => n.kind === 'file')).toBe(false);
    const older = copy(withFiles);
    older.steps.forEach(step => delete step.files);
    expect(buildGraph(older).nodes.some(n => n.kind === 'file')).toBe(false);
  });

  it('changes the drawing when a step starts reading another file', () => {
    const more = copy(withFiles);
    more.steps[2].files = [
      ...(more.steps[2].files ?? []),
      { path: 'data/prices.csv', found: 'static' }
    ];
    expect(graphKey(buildGraph(more))).not.toBe(graphKey(graph));
  });
});

describe('nodeOfCell', () => {
  it('finds the step holding a cell, and null for a cell of no node', () => {
    const graph = buildGraph(churn);
    expect(nodeOfCell(graph, 'churn-09')?.id).toBe('step:features');
    expect(nodeOfCell(graph, 'churn-22')?.id).toBe('endpoint:predict');
    expect(nodeOfCell(graph, 'churn-00')).toBeNull();
  });
});

/** Whether a point lies on the rectangle of a node (where dagre ends its edges). */
function onBorder(
  p: { x: number; y: number },
  n: { x: number; y: number; width: number; height: number }
) {
  const dx = Math.abs(p.x - n.x) - n.width / 2;
  const dy = Math.abs(p.y - n.y) - n.height / 2;
  return (Math.abs(dx) < 1 && dy <= 1) || (Math.abs(dy) < 1 && dx <= 1);
}

describe('layoutGraph', () => {
  const laid = layoutGraph(buildGraph(churn));

  it('draws endpoints served with the same values as one node naming each route', () => {
    const [predict] = churn.endpoints;
    const batch = {
      ...predict,
      name: 'predict_many',
      route: 'predict_batch',
      signature: 'predict_many(features: list[dict]) -> list[dict]',
      cells: [{ index: 28, id: 'churn-28' }],
      batch: true
    };
    const other = {
      ...predict,
      name: 'explain',
      route: 'explain',
      producers: { model: 'train' }
    };
    const graph = buildGraph({
      ...churn,
      endpoints: [predict, batch, other]
    } as ILineage);
    const endpoints = graph.nodes.filter(n => n.kind === 'endpoint');
    expect(endpoints.map(n => [n.id, n.label, n.detail])).toEqual([
      ['endpoint:predict', 'POST /predict', '+ /predict_batch'],
      ['endpoint:explain', 'POST /explain', clip(predict.signature, 18)]
    ]);
    expect(endpoints[0].cells).toEqual([...predict.cells, ...batch.cells]);
    expect(endpoints[0].title).toContain(
      'POST /predict_batch\npredict_many(features'
    );
    expect(layoutGraph(graph).width).toBeLessThanOrEqual(
      layoutGraph(
        buildGraph({ ...churn, endpoints: [predict, other] } as ILineage)
      ).width
    );
  });

  it('places every node inside the drawing, none overlapping', () => {
    for (const n of laid.nodes) {
      expect(n.x - n.width / 2).toBeGreaterThanOrEqual(0);
      expect(n.y - n.height / 2).toBeGreaterThanOrEqual(0);
      expect(n.x + n.width / 2).toBeLessThanOrEqual(laid.width);
      expect(n.y + n.height / 2).toBeLessThanOrEqual(laid.height);
    }
    for (const a of laid.nodes) {
      for (const b of laid.nodes) {
        if (a.id < b.id) {
          const apart =
            Math.abs(a.x - b.x) >= (a.width + b.width) / 2 ||
            Math.abs(a.y - b.y) >= (a.height + b.height) / 2;
          expect(apart).toBe(true);
        }
      }
    }
  });

  it('draws the pipeline top to bottom, each edge from its source to its target', () => {
    const at = new Map(laid.nodes.map(n => [n.id, n]));
    for (const e of laid.edges) {
      const source = at.get(e.source)!;
      const target = at.get(e.target)!;
      expect(source.y).toBeLessThan(target.y);
      expect(e.points.length).toBeGreaterThanOrEqual(2);
      const first = e.points[0];
      const last = e.points[e.points.length - 1];
      expect(onBorder(first, source)).toBe(true);
      expect(onBorder(last, target)).toBe(true);
    }
  });

  it("fits JupyterLab's default sidebar (250px) without going below the fit's minimum scale", () => {
    expect(laid.width * MIN_FIT_SCALE).toBeLessThanOrEqual(250);
    expect(fitScale(laid, { width: 250, height: 370 })).toBeGreaterThan(
      MIN_FIT_SCALE
    );
  });

  it('sizes nodes to their text and reserves room for edge labels', () => {
    const endpoint = laid.nodes.find(n => n.id === 'endpoint:predict')!;
    const load = laid.nodes.find(n => n.id === 'step:load')!;
    expect(endpoint.width).toBeGreaterThan(load.width);
    const labelled = laid.edges.find(e => e.label === 'X_train, y_train')!;
    expect(labelled.labelWidth).toBeGreaterThan(50);
  });

  it('lays out a 40-step pipeline quickly', () => {
    const big = copy(churn);
    big.steps = Array.from({ length: 40 }, (_, i) => ({
      ...churn.steps[0],
      name: `s${i}`,
      cells: [{ index: i * 5 + 3, id: `c${i}` }],
      parameters: i % 3 === 0 ? ['seed'] : []
    }));
    big.edges = big.steps.slice(1).flatMap((s, i) => [
      {
        source: `s${i}`,
        target: s.name,
        artifacts: [`out_s${i}`],
        kind: 'data' as const
      },
      ...(i > 2
        ? [
            {
              source: `s${i - 3}`,
              target: s.name,
              artifacts: [`out_s${i - 3}`],
              kind: 'data' as const
            }
          ]
        : [])
    ]);
    big.tests = [];
    big.endpoints = [];
    const started = Date.now();
    const result = layoutGraph(buildGraph(big));
    expect(result.nodes).toHaveLength(41 + 1);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('text helpers', () => {
  it('names cell ranges', () => {
    expect(cellRange([])).toBe('');
    expect(cellRange([{ index: 6, id: 'a' }])).toBe('cell 6');
    expect(
      cellRange([
        { index: 9, id: 'b' },
        { index: 8, id: 'a' }
      ])
    ).toBe('cells 8–9');
    expect(
      cellRange([3, 7, 12].map(index => ({ index, id: `${index}` })))
    ).toBe('cells 3, 7, 12');
    expect(
      cellRange([3, 7, 12, 20].map(index => ({ index, id: `${index}` })))
    ).toBe('cells 3, 7, … (4)');
  });

  it('clips long labels with an ellipsis', () => {
    expect(clip('short', 10)).toBe('short');
    expect(clip('a_rather_long_artifact_name', 10)).toBe('a_rather_…');
  });

  it('draws straight and smoothed edge paths', () => {
    expect(edgePath([])).toBe('');
    expect(
      edgePath([
        { x: 0, y: 0 },
        { x: 0, y: 10 }
      ])
    ).toBe('M0.0,0.0 L0.0,10.0');
    expect(
      edgePath([
        { x: 0, y: 0 },
        { x: 10, y: 10 },
        { x: 20, y: 20 }
      ])
    ).toBe('M0.0,0.0 Q10.0,10.0 20.0,20.0');
  });
});
