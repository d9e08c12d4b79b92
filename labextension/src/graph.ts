/**
 * The lineage as a graph to draw: nodes for parameters, data files, steps, tests, metrics and
 * endpoints, edges carrying the artifacts that flow, and a layered layout computed by dagre.
 * Pure: no DOM.
 */
import { graphlib, layout } from '@dagrejs/dagre';

import type {
  ICellRef,
  IDiagnostic,
  IEndpoint,
  ILineage,
  Severity
} from './tokens';

export type NodeKind =
  'parameters' | 'file' | 'step' | 'test' | 'metrics' | 'endpoint';
export type EdgeKind =
  'data' | 'after' | 'parameter' | 'file' | 'test' | 'metrics' | 'endpoint';

export interface IGraphNode {
  id: string;
  kind: NodeKind;
  label: string;
  detail: string;
  /** The full text for a tooltip. */
  title: string;
  cells: ICellRef[];
  /** The worst diagnostic on one of the node's cells. */
  severity: Severity | null;
}

export interface IGraphEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  /** What is drawn on the edge: the artifacts, clipped. */
  label: string;
  /** Everything that flows, for a tooltip. */
  title: string;
}

export interface ILineageGraph {
  nodes: IGraphNode[];
  edges: IGraphEdge[];
}

export interface IPoint {
  x: number;
  y: number;
}

export interface IPlacedNode extends IGraphNode {
  /** Centre of the node. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface IPlacedEdge extends IGraphEdge {
  points: IPoint[];
  labelX: number;
  labelY: number;
  labelWidth: number;
}

export interface ILaidOutGraph {
  width: number;
  height: number;
  nodes: IPlacedNode[];
  edges: IPlacedEdge[];
}

export interface IBuildOptions {
  /** The parameters cell(s), which the lineage JSON does not list. */
  parameterCells?: ICellRef[];
}

/**
 * Past this many steps the graph is compact: the parameters node is drawn without edges (each
 * step's tooltip names the parameters it reads) and tests are counted on their step's node
 * rather than drawn beside it. One node wired to every step crosses the whole drawing, a test
 * bubble beside each of forty steps is clutter, and both make the layout of a long pipeline
 * several times slower (about 40 ms instead of 15 ms for 40 steps, 600 ms with parameter edges).
 */
export const COMPACT_ABOVE_STEPS = 12;
/*
 * Text is clipped, and nodes spaced, so that the churn example fits a sidebar of JupyterLab's
 * default width (250px) without going below the fit's minimum scale (fit.ts): edge labels up to
 * 16 characters ("X_train, y_train"), details up to 18; tooltips hold the whole text.
 */
const EDGE_LABEL_CHARS = 16;
const DETAIL_CHARS = 18;

// Widths of one character, in px, of the fonts the stylesheet uses (12px code, 11px ui/code).
const LABEL_CHAR_PX = 7.3;
const DETAIL_CHAR_PX = 6.2;
const EDGE_CHAR_PX = 6.7;

export function stepNodeId(name: string): string {
  return `step:${name}`;
}

/** One node per data file, however many steps read it. */
export function fileNodeId(path: string): string {
  return `file:${path}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** "cell 6", "cells 8–9", "cells 3, 7, 12", "cells 3, 7, … (9)". */
export function cellRange(cells: readonly ICellRef[]): string {
  if (cells.length === 0) {
    return '';
  }
  const indexes = cells.map(c => c.index).sort((a, b) => a - b);
  if (indexes.length === 1) {
    return `cell ${indexes[0]}`;
  }
  const contiguous = indexes.every(
    (v, i) => i === 0 || v === indexes[i - 1] + 1
  );
  if (contiguous) {
    return `cells ${indexes[0]}–${indexes[indexes.length - 1]}`;
  }
  if (indexes.length <= 3) {
    return `cells ${indexes.join(', ')}`;
  }
  return `cells ${indexes.slice(0, 2).join(', ')}, … (${indexes.length})`;
}

/** The graph of a lineage, without positions. */
export function buildGraph(
  lineage: ILineage,
  options: IBuildOptions = {}
): ILineageGraph {
  const nodes: IGraphNode[] = [];
  const edges: IGraphEdge[] = [];
  const node = (
    id: string,
    kind: NodeKind,
    label: string,
    detail: string,
    cells: ICellRef[],
    title = `${label}\n${detail}`
  ): void => {
    nodes.push({ id, kind, label, detail, title, cells, severity: null });
  };
  const edge = (
    source: string,
    target: string,
    kind: EdgeKind,
    names: readonly string[]
  ): void => {
    const text = names.join(', ');
    edges.push({
      id: `${kind}:${source}->${target}`,
      source,
      target,
      kind,
      // Which parameters a step reads, and what an endpoint loads, are in the tooltip: labels
      // on those edges crowd the graph (the endpoint's were its widest part in a sidebar).
      label:
        kind === 'parameter' || kind === 'endpoint' || kind === 'file'
          ? ''
          : clip(text, EDGE_LABEL_CHARS),
      title:
        kind === 'file'
          ? `${source.slice(5)} → ${target.slice(5)}`
          : text || kind
    });
  };

  if (lineage.parameters.length > 0) {
    const names = lineage.parameters.map(p => p.name);
    node(
      'parameters',
      'parameters',
      'parameters',
      clip(names.join(', '), DETAIL_CHARS),
      options.parameterCells ?? [],
      lineage.parameters
        .map(p => `${p.name} = ${JSON.stringify(p.default)}  ${p.help}`.trim())
        .join('\n')
    );
  }
  const compact = lineage.steps.length > COMPACT_ABOVE_STEPS;
  const testsOf = new Map<string, ICellRef[]>();
  for (const test of compact ? lineage.tests : []) {
    if (test.step !== null) {
      testsOf.set(test.step, [
        ...(testsOf.get(test.step) ?? []),
        ...test.cells
      ]);
    }
  }
  for (const step of lineage.steps) {
    const tests = testsOf.get(step.name) ?? [];
    const detail =
      cellRange(step.cells) +
      (tests.length > 0 ? ` · ${plural(tests.length, 'test')}` : '');
    const reads =
      step.parameters.length > 0
        ? `\nparameters: ${step.parameters.join(', ')}`
        : '';
    const checked = tests.length > 0 ? `\ntests: ${cellRange(tests)}` : '';
    node(
      stepNodeId(step.name),
      'step',
      step.title ?? step.name,
      detail,
      step.cells,
      `${step.title ?? step.name}\n${cellRange(step.cells)}${reads}${checked}`
    );
    if (
      !compact &&
      step.parameters.length > 0 &&
      lineage.parameters.length > 0
    ) {
      edge('parameters', stepNodeId(step.name), 'parameter', step.parameters);
    }
  }
  addFiles(lineage, node, edge);
  for (const e of lineage.edges) {
    edge(
      stepNodeId(e.source),
      stepNodeId(e.target),
      e.kind === 'after' ? 'after' : 'data',
      e.kind === 'after' ? ['after'] : e.artifacts
    );
  }
  lineage.tests.forEach((test, i) => {
    if (compact && test.step !== null) {
      return;
    }
    const id = `test:${i}`;
    node(id, 'test', 'test', cellRange(test.cells), test.cells);
    for (const [producer, names] of bySource(test.producers, test.step)) {
      edge(stepNodeId(producer), id, 'test', names);
    }
  });
  if (lineage.metrics.names.length > 0) {
    node(
      'metrics',
      'metrics',
      'metrics',
      clip(lineage.metrics.names.join(', '), DETAIL_CHARS),
      lineage.metrics.cells
    );
    const above = stepAbove(lineage, lineage.metrics.cells);
    for (const [producer, names] of bySource(
      lineage.metrics.producers,
      above
    )) {
      edge(stepNodeId(producer), 'metrics', 'metrics', names);
    }
  }
  for (const served of servedAlike(lineage.endpoints)) {
    const [first, ...others] = served;
    const id = `endpoint:${first.name}`;
    node(
      id,
      'endpoint',
      `POST /${first.route}`,
      others.length === 0
        ? clip(first.signature, DETAIL_CHARS)
        : clip(`+ ${others.map(e => `/${e.route}`).join(', ')}`, DETAIL_CHARS),
      ([] as ICellRef[]).concat(...served.map(e => e.cells)),
      served
        .map(e => `POST /${e.route}\n${e.signature}\n\n${e.docstring}`)
        .join('\n\n')
    );
    for (const [producer, names] of bySource(first.producers, null)) {
      edge(stepNodeId(producer), id, 'endpoint', names);
    }
  }
  const known = new Set(nodes.map(n => n.id));
  markDiagnostics(nodes, lineage.diagnostics, testsOf);
  return {
    nodes,
    edges: edges.filter(e => known.has(e.source) && known.has(e.target))
  };
}

type AddNode = (
  id: string,
  kind: NodeKind,
  label: string,
  detail: string,
  cells: ICellRef[],
  title?: string
) => void;
type AddEdge = (
  source: string,
  target: string,
  kind: EdgeKind,
  names: readonly string[]
) => void;

/**
 * A file node for each data file the steps read (in the order first read), with an edge into
 * each step that reads it. The node shows the file's name, and its folder or how it was found
 * (a `reads=` tag names a glob the code does not show); the tooltip has the path and readers.
 */
function addFiles(lineage: ILineage, node: AddNode, edge: AddEdge): void {
  const files = new Map<string, { found: Set<string>; readers: string[] }>();
  for (const step of lineage.steps) {
    for (const file of step.files ?? []) {
      const seen = files.get(file.path) ?? { found: new Set(), readers: [] };
      seen.found.add(file.found);
      if (!seen.readers.includes(step.name)) {
        seen.readers.push(step.name);
      }
      files.set(file.path, seen);
    }
  }
  for (const [path, { found, readers }] of files) {
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    const tagged = !found.has('static');
    const detail = tagged
      ? 'reads= tag'
      : slash > 0
        ? path.slice(0, slash + 1)
        : '';
    const how = tagged ? 'named by a reads= tag' : 'read in the code';
    node(
      fileNodeId(path),
      'file',
      clip(name, DETAIL_CHARS),
      clip(detail, DETAIL_CHARS),
      [],
      `${path}\ndata file, ${how}\nread by: ${readers.join(', ')}`
    );
    for (const reader of readers) {
      edge(fileNodeId(path), stepNodeId(reader), 'file', []);
    }
  }
}

/** Producers grouped by step, in the order first seen; `fallback` (no names) when none. */
/**
 * Endpoints grouped by what they are served with: one node each group, so that churn's
 * /predict and /predict_batch (the same model, one of them micro-batched) draw as one node
 * rather than two side by side, too wide for the sidebar.
 */
function servedAlike(endpoints: readonly IEndpoint[]): IEndpoint[][] {
  const groups = new Map<string, IEndpoint[]>();
  for (const endpoint of endpoints) {
    const key = JSON.stringify(bySource(endpoint.producers, null));
    groups.set(key, [...(groups.get(key) ?? []), endpoint]);
  }
  return [...groups.values()];
}

function bySource(
  producers: Record<string, string | null> | undefined,
  fallback: string | null
): Array<[string, string[]]> {
  const grouped = new Map<string, string[]>();
  for (const [name, producer] of Object.entries(producers ?? {})) {
    if (producer) {
      grouped.set(producer, [...(grouped.get(producer) ?? []), name]);
    }
  }
  if (grouped.size === 0 && fallback !== null) {
    grouped.set(fallback, []);
  }
  return [...grouped.entries()];
}

/** The step whose cells come last before `cells` (the "step above", as test cells use it). */
function stepAbove(
  lineage: ILineage,
  cells: readonly ICellRef[]
): string | null {
  if (cells.length === 0) {
    return null;
  }
  const first = Math.min(...cells.map(c => c.index));
  let best: { name: string; index: number } | null = null;
  for (const step of lineage.steps) {
    const before = step.cells.filter(c => c.index < first).map(c => c.index);
    if (before.length > 0) {
      const last = Math.max(...before);
      if (best === null || last > best.index) {
        best = { name: step.name, index: last };
      }
    }
  }
  return best?.name ?? null;
}

const SEVERITY_RANK: Record<Severity, number> = {
  info: 1,
  warning: 2,
  error: 3
};

function markDiagnostics(
  nodes: IGraphNode[],
  diagnostics: readonly IDiagnostic[],
  testsOf: Map<string, ICellRef[]>
): void {
  const byCell = new Map<string, IGraphNode>();
  for (const n of nodes) {
    const tests = n.kind === 'step' ? (testsOf.get(n.label) ?? []) : [];
    for (const cell of [...n.cells, ...tests]) {
      byCell.set(cell.id, n);
    }
  }
  for (const d of diagnostics) {
    const n = d.cell_id === null ? undefined : byCell.get(d.cell_id);
    if (
      n &&
      (n.severity === null ||
        SEVERITY_RANK[d.severity] > SEVERITY_RANK[n.severity])
    ) {
      n.severity = d.severity;
    }
  }
}

/** The node holding the cell, preferring steps (a step's cells are what gets highlighted). */
export function nodeOfCell(
  graph: ILineageGraph,
  cellId: string
): IGraphNode | null {
  let found: IGraphNode | null = null;
  for (const n of graph.nodes) {
    if (
      n.cells.some(c => c.id === cellId) &&
      (found === null || n.kind === 'step')
    ) {
      found = n;
    }
  }
  return found;
}

/** A string equal for two graphs exactly when they draw the same: a layout can be reused. */
export function graphKey(graph: ILineageGraph): string {
  return JSON.stringify([
    graph.nodes.map(n => [n.id, n.label, n.detail, n.severity]),
    graph.edges.map(e => [e.id, e.label])
  ]);
}

function nodeSize(n: IGraphNode): { width: number; height: number } {
  const text = Math.max(
    n.label.length * LABEL_CHAR_PX,
    n.detail.length * DETAIL_CHAR_PX
  );
  return {
    width: Math.max(48, Math.ceil(text) + 12),
    height: n.detail ? 40 : 26
  };
}

/** Positions from dagre: top to bottom, as notebook order reads. */
export function layoutGraph(graph: ILineageGraph): ILaidOutGraph {
  const g = new graphlib.Graph({ multigraph: true });
  g.setGraph({
    rankdir: 'TB',
    nodesep: 8,
    edgesep: 2,
    ranksep: 30,
    marginx: 6,
    marginy: 6
  });
  for (const n of graph.nodes) {
    g.setNode(n.id, nodeSize(n));
  }
  for (const e of graph.edges) {
    const labelWidth = e.label
      ? Math.ceil(e.label.length * EDGE_CHAR_PX) + 6
      : 0;
    g.setEdge(
      e.source,
      e.target,
      { width: labelWidth, height: e.label ? 14 : 0, labelpos: 'c', minlen: 1 },
      e.id
    );
  }
  layout(g);
  const size = g.graph();
  return {
    width: Math.ceil(size.width ?? 0),
    height: Math.ceil(size.height ?? 0),
    nodes: graph.nodes.map(n => {
      const placed = g.node(n.id);
      return {
        ...n,
        x: placed.x ?? 0,
        y: placed.y ?? 0,
        width: placed.width,
        height: placed.height
      };
    }),
    edges: graph.edges.map(e => {
      const placed = g.edge({ v: e.source, w: e.target, name: e.id });
      const points = (placed.points ?? []).map((p: IPoint) => ({
        x: p.x,
        y: p.y
      }));
      return {
        ...e,
        points,
        labelX: placed.x ?? points[Math.floor(points.length / 2)]?.x ?? 0,
        labelY: placed.y ?? points[Math.floor(points.length / 2)]?.y ?? 0,
        labelWidth: placed.width ?? 0
      };
    })
  };
}

/** An SVG path through the points, smoothed with quadratic curves between midpoints. */
export function edgePath(points: readonly IPoint[]): string {
  if (points.length === 0) {
    return '';
  }
  const f = (n: number): string => n.toFixed(1);
  let d = `M${f(points[0].x)},${f(points[0].y)}`;
  if (points.length === 2) {
    return `${d} L${f(points[1].x)},${f(points[1].y)}`;
  }
  for (let i = 1; i < points.length - 1; i++) {
    const mid = {
      x: (points[i].x + points[i + 1].x) / 2,
      y: (points[i].y + points[i + 1].y) / 2
    };
    const end = i === points.length - 2 ? points[i + 1] : mid;
    d += ` Q${f(points[i].x)},${f(points[i].y)} ${f(end.x)},${f(end.y)}`;
  }
  return d;
}
