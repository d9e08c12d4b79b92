/**
 * The lineage panel's view of the drawing: fitted to the panel until the user zooms or pans,
 * theirs after that. The widget reports sizes and gestures; this decides the view (fit.ts does
 * the arithmetic) and signals each change.
 */
import { Signal } from '@lumino/signaling';

import {
  MIN_FIT_SCALE,
  ZOOM_LIMITS,
  clampScroll,
  fitView,
  place,
  showsWhole,
  zoomAt,
  type ISize,
  type IView
} from './fit';
import type { IPoint } from './graph';

/** The + and − buttons zoom by this factor, about the middle of the panel. */
export const ZOOM_STEP = 1.25;

export class GraphViewport {
  private _graph: ISize | null = null;
  private _panel: ISize | null = null;
  private _source: string | null = null;
  private _view: IView | null = null;
  private _fitted = true;

  readonly changed = new Signal<this, void>(this);

  constructor(readonly minScale = MIN_FIT_SCALE) {}

  /** Null until there is both a drawing and a panel with a size. */
  get view(): IView | null {
    return this._view;
  }
  /** True while the view follows the panel (re-fitted on each resize and relayout). */
  get fitted(): boolean {
    return this._fitted;
  }
  get canZoomIn(): boolean {
    return this._view !== null && this._view.scale < ZOOM_LIMITS.max;
  }
  get canZoomOut(): boolean {
    return this._view !== null && this._view.scale > ZOOM_LIMITS.min;
  }

  /** The panel's inner size (scrollbars excluded); a hidden panel (0×0) changes nothing. */
  setPanel(panel: ISize): void {
    if (panel.width <= 0 || panel.height <= 0 || same(panel, this._panel)) {
      return;
    }
    this._update(this._graph, panel);
  }

  /**
   * The size of the laid-out graph (null: nothing drawn) and what it was drawn from (the
   * notebook's path). Another notebook starts fitted, whatever was done to the last one.
   */
  setGraph(graph: ISize | null, source: string | null): void {
    if (source !== this._source) {
      this._source = source;
      this._fitted = true;
      this._view = null;
    }
    if (graph === null) {
      this._graph = null;
      if (this._view !== null) {
        this._view = null;
        this.changed.emit();
      }
      return;
    }
    if (!same(graph, this._graph) || this._view === null) {
      this._update(graph, this._panel);
    }
  }

  /** Back to following the panel (the "fit" button). */
  fit(): void {
    this._fitted = true;
    this._update(this._graph, this._panel);
  }

  /** Zooms by `factor` about `point` (panel coordinates; the middle when not given). */
  zoom(factor: number, point?: IPoint): void {
    const [view, graph, panel] = [this._view, this._graph, this._panel];
    if (view === null || graph === null || panel === null) {
      return;
    }
    const about = point ?? { x: panel.width / 2, y: panel.height / 2 };
    const next = zoomAt(view, graph, panel, factor, about);
    if (next.scale === view.scale) {
      return;
    }
    this._fitted = false;
    this._view = next;
    this.changed.emit();
  }

  /** The user moved the drawing (a drag, a scrollbar): the view is theirs from now on. */
  panTo(left: number, top: number): void {
    const view = this._view;
    if (view === null || this._panel === null) {
      return;
    }
    const next = clampScroll(view, this._panel, left, top);
    if (
      Math.abs(next.left - view.left) < 0.5 &&
      Math.abs(next.top - view.top) < 0.5
    ) {
      return;
    }
    this._fitted = false;
    this._view = next;
    this.changed.emit();
  }

  /** The panel scrolled by itself (the browser keeping offsets in range): noted, no signal. */
  scrolled(left: number, top: number): void {
    if (this._view !== null && this._panel !== null) {
      this._view = clampScroll(this._view, this._panel, left, top);
    }
  }

  dispose(): void {
    Signal.clearData(this);
  }

  private _update(graph: ISize | null, panel: ISize | null): void {
    const [before, panelBefore] = [this._view, this._panel];
    this._graph = graph;
    this._panel = panel;
    if (graph === null || panel === null) {
      this._view = null;
    } else if (this._fitted || before === null || panelBefore === null) {
      this._fitted = true;
      this._view = fitView(graph, panel, this.minScale);
    } else {
      this._view = this._keep(before, panelBefore, graph, panel);
    }
    this.changed.emit();
  }

  /**
   * The user's view after a relayout or a resize: their scale and scroll offsets, unless the
   * view showed the whole graph and would now cut part of it off. A view that showed it all
   * keeps showing it all (fitted afresh); one that showed a part keeps showing that part.
   */
  private _keep(
    before: IView,
    panelBefore: ISize,
    graph: ISize,
    panel: ISize
  ): IView {
    const kept = clampScroll(
      place(graph, panel, before.scale),
      panel,
      before.left,
      before.top
    );
    if (showsWhole(before, panelBefore) && !showsWhole(kept, panel)) {
      this._fitted = true;
      return fitView(graph, panel, this.minScale);
    }
    return kept;
  }
}

function same(a: ISize, b: ISize | null): boolean {
  return b !== null && a.width === b.width && a.height === b.height;
}
