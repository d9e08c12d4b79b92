import {
  MIN_FIT_SCALE,
  ZOOM_LIMITS,
  clampScroll,
  fitScale,
  fitView,
  place,
  showsWhole,
  zoomAt
} from '../fit';

const panel = { width: 250, height: 370 };

describe('fitScale', () => {
  it('shrinks a wide graph to the panel width', () => {
    expect(fitScale({ width: 440, height: 300 }, panel)).toBeCloseTo(250 / 440);
  });

  it('shrinks a tall graph to the panel height', () => {
    expect(fitScale({ width: 200, height: 600 }, panel)).toBeCloseTo(370 / 600);
  });

  it('never enlarges a small graph past its natural size', () => {
    expect(fitScale({ width: 100, height: 80 }, panel)).toBe(1);
  });

  it('stops at the minimum scale', () => {
    expect(fitScale({ width: 1000, height: 300 }, panel)).toBe(MIN_FIT_SCALE);
    expect(fitScale({ width: 1000, height: 300 }, panel, 0.3)).toBe(0.3);
  });

  it('draws an empty graph at natural size', () => {
    expect(fitScale({ width: 0, height: 0 }, panel)).toBe(1);
  });
});

describe('place', () => {
  it('centres a narrower drawing across, at the top, the content as large as the panel', () => {
    expect(place({ width: 100, height: 80 }, panel, 1)).toEqual({
      scale: 1,
      x: 75,
      y: 0,
      width: 250,
      height: 370
    });
  });

  it('makes the content as large as a drawing larger than the panel', () => {
    expect(place({ width: 1000, height: 1000 }, panel, 0.5)).toEqual({
      scale: 0.5,
      x: 0,
      y: 0,
      width: 500,
      height: 500
    });
  });

  it('rounds an exact fit so that no scrollbar appears', () => {
    const graph = { width: 441.5, height: 528 };
    const placed = place(graph, panel, fitScale(graph, panel));
    expect(placed.width).toBe(250);
    expect(showsWhole(placed, panel)).toBe(true);
  });
});

describe('fitView', () => {
  it('shows the whole graph, unscrolled, when the fit is above the minimum', () => {
    const view = fitView({ width: 440, height: 528 }, panel);
    expect(view.scale).toBeCloseTo(250 / 440);
    expect([view.left, view.top]).toEqual([0, 0]);
    expect(showsWhole(view, panel)).toBe(true);
  });

  it('scrolls to the middle across and to the top when the minimum stops the fit', () => {
    const view = fitView({ width: 1000, height: 400 }, panel);
    expect(view.scale).toBe(MIN_FIT_SCALE);
    expect(view.width).toBe(550);
    expect(view.left).toBe((550 - 250) / 2);
    expect(view.top).toBe(0);
    expect(showsWhole(view, panel)).toBe(false);
  });
});

describe('clampScroll', () => {
  it('keeps offsets within the scrollable range', () => {
    const placed = place({ width: 1000, height: 1000 }, panel, 0.5);
    expect(clampScroll(placed, panel, -20, 900)).toMatchObject({
      left: 0,
      top: 500 - 370
    });
    expect(clampScroll(placed, panel, 100, 50)).toMatchObject({
      left: 100,
      top: 50
    });
  });

  it('scrolls nowhere when the drawing is inside the panel', () => {
    const placed = place({ width: 100, height: 100 }, panel, 1);
    expect(clampScroll(placed, panel, 40, 40)).toMatchObject({
      left: 0,
      top: 0
    });
  });
});

describe('zoomAt', () => {
  const graph = { width: 1000, height: 800 };

  it('keeps the point under the pointer where it was', () => {
    const view = clampScroll(place(graph, panel, 1), panel, 300, 200);
    const pointer = { x: 120, y: 90 };
    const under = {
      x: (view.left + pointer.x - view.x) / view.scale,
      y: (view.top + pointer.y - view.y) / view.scale
    };
    const zoomed = zoomAt(view, graph, panel, 1.5, pointer);
    expect(zoomed.scale).toBe(1.5);
    expect(zoomed.x + under.x * zoomed.scale - zoomed.left).toBeCloseTo(
      pointer.x
    );
    expect(zoomed.y + under.y * zoomed.scale - zoomed.top).toBeCloseTo(
      pointer.y
    );
  });

  it('keeps the anchor when zooming out too, while the scroll range allows', () => {
    const view = clampScroll(place(graph, panel, 1), panel, 400, 300);
    const zoomed = zoomAt(view, graph, panel, 0.8, { x: 125, y: 185 });
    expect(zoomed.left).toBeCloseTo((400 + 125) * 0.8 - 125);
    expect(zoomed.top).toBeCloseTo((300 + 185) * 0.8 - 185);
  });

  it('stays within the zoom limits', () => {
    const view = fitView(graph, panel);
    expect(zoomAt(view, graph, panel, 100, { x: 0, y: 0 }).scale).toBe(
      ZOOM_LIMITS.max
    );
    expect(zoomAt(view, graph, panel, 0.001, { x: 0, y: 0 }).scale).toBe(
      ZOOM_LIMITS.min
    );
  });

  it('centres a drawing that becomes narrower than the panel', () => {
    const wide = { width: 600, height: 400 };
    const view = fitView(wide, panel); // 330px across at the minimum scale
    const zoomed = zoomAt(view, wide, panel, 0.5, { x: 10, y: 10 });
    expect(zoomed.x).toBeCloseTo((250 - 165) / 2);
    expect(zoomed.left).toBe(0);
  });
});
