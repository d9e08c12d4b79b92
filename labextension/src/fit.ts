/**
 * Where the lineage drawing sits in its panel: the scale that fits it, zooming about a point,
 * and the scroll offsets the panel may take. Pure arithmetic on sizes, no DOM.
 */
import type { IPoint } from './graph';

export interface ISize {
  width: number;
  height: number;
}

/** The drawing at a scale, as the panel lays it out. */
export interface IPlacement {
  /** Screen pixels per layout pixel. */
  scale: number;
  /** The drawing's top-left corner in the scrolled content: centred across, at the top. */
  x: number;
  y: number;
  /** The scrolled content: the drawing, or the panel where the drawing is smaller. */
  width: number;
  height: number;
}

/** A placement and how far the panel is scrolled over it. */
export interface IView extends IPlacement {
  left: number;
  top: number;
}

export interface IZoomLimits {
  min: number;
  max: number;
}

/**
 * The smallest scale the fit goes to: node labels (12px) are drawn at about 7px there. Below
 * it the panel scrolls instead.
 */
export const MIN_FIT_SCALE = 0.55;
/** A small graph is drawn at its natural size, not enlarged to fill the panel. */
export const MAX_FIT_SCALE = 1;
/** How far the user may zoom, with the wheel or the buttons. */
export const ZOOM_LIMITS: IZoomLimits = { min: 0.25, max: 2.5 };

/** The drawing's size at `scale`, rounded so that an exact fit makes no scrollbar. */
function drawn(graph: ISize, scale: number): ISize {
  return {
    width: Math.ceil(graph.width * scale - 1e-6),
    height: Math.ceil(graph.height * scale - 1e-6)
  };
}

/** The largest scale in [minScale, maxScale] at which the whole drawing is inside the panel. */
export function fitScale(
  graph: ISize,
  panel: ISize,
  minScale = MIN_FIT_SCALE,
  maxScale = MAX_FIT_SCALE
): number {
  if (graph.width <= 0 || graph.height <= 0) {
    return maxScale;
  }
  const whole = Math.min(
    panel.width / graph.width,
    panel.height / graph.height
  );
  return clamp(whole, minScale, maxScale);
}

/** The drawing at `scale` in the panel: centred across when narrower, top-aligned. */
export function place(graph: ISize, panel: ISize, scale: number): IPlacement {
  const size = drawn(graph, scale);
  return {
    scale,
    x: Math.max(0, (panel.width - size.width) / 2),
    y: 0,
    width: Math.max(panel.width, size.width),
    height: Math.max(panel.height, size.height)
  };
}

/** Scroll offsets kept inside what the content allows. */
export function clampScroll(
  placement: IPlacement,
  panel: ISize,
  left: number,
  top: number
): IView {
  return {
    ...placement,
    left: clamp(left, 0, Math.max(0, placement.width - panel.width)),
    top: clamp(top, 0, Math.max(0, placement.height - panel.height))
  };
}

/**
 * The view that fits the drawing to the panel. When the minimum scale stops it, the panel
 * scrolls: to the middle across (dagre centres the graph) and to the top, where it starts.
 */
export function fitView(
  graph: ISize,
  panel: ISize,
  minScale = MIN_FIT_SCALE,
  maxScale = MAX_FIT_SCALE
): IView {
  const placement = place(
    graph,
    panel,
    fitScale(graph, panel, minScale, maxScale)
  );
  return clampScroll(placement, panel, (placement.width - panel.width) / 2, 0);
}

/**
 * The view zoomed by `factor` about `point` (panel coordinates): the part of the drawing
 * under the point stays under it, as far as the scroll range allows.
 */
export function zoomAt(
  view: IView,
  graph: ISize,
  panel: ISize,
  factor: number,
  point: IPoint,
  limits: IZoomLimits = ZOOM_LIMITS
): IView {
  const scale = clamp(view.scale * factor, limits.min, limits.max);
  const under = {
    x: (view.left + point.x - view.x) / view.scale,
    y: (view.top + point.y - view.y) / view.scale
  };
  const placement = place(graph, panel, scale);
  return clampScroll(
    placement,
    panel,
    placement.x + under.x * scale - point.x,
    placement.y + under.y * scale - point.y
  );
}

/** Whether the whole drawing is inside the panel, nothing scrolled out of sight. */
export function showsWhole(view: IPlacement, panel: ISize): boolean {
  return view.width <= panel.width && view.height <= panel.height;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
