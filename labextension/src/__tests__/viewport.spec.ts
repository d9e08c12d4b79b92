import { MIN_FIT_SCALE, fitView } from '../fit';
import { GraphViewport, ZOOM_STEP } from '../viewport';

const panel = { width: 250, height: 370 };
const churn = { width: 440, height: 528 };

function viewport(): { vp: GraphViewport; changes: () => number } {
  const vp = new GraphViewport();
  let n = 0;
  vp.changed.connect(() => (n += 1));
  return { vp, changes: () => n };
}

describe('GraphViewport', () => {
  it('has no view until it knows both the drawing and the panel', () => {
    const { vp } = viewport();
    vp.setGraph(churn, 'churn.ipynb');
    expect(vp.view).toBeNull();
    vp.setPanel(panel);
    expect(vp.view).toEqual(fitView(churn, panel));
    expect(vp.fitted).toBe(true);
  });

  it('fits again on each resize and relayout while fitted', () => {
    const { vp } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    vp.setPanel({ width: 400, height: 370 });
    expect(vp.view).toEqual(fitView(churn, { width: 400, height: 370 }));
    vp.setGraph({ width: 600, height: 528 }, 'churn.ipynb');
    expect(vp.view?.scale).toBeCloseTo(400 / 600);
  });

  it('ignores a hidden panel (0×0), keeping the view', () => {
    const { vp, changes } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    const [view, n] = [vp.view, changes()];
    vp.setPanel({ width: 0, height: 0 });
    expect(vp.view).toBe(view);
    expect(changes()).toBe(n);
  });

  it('zooms about a point and leaves the fit; fit() brings it back', () => {
    const { vp } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    const fitted = vp.view!;
    vp.zoom(ZOOM_STEP, { x: 10, y: 10 });
    expect(vp.fitted).toBe(false);
    expect(vp.view?.scale).toBeCloseTo(fitted.scale * ZOOM_STEP);
    vp.fit();
    expect(vp.fitted).toBe(true);
    expect(vp.view).toEqual(fitted);
  });

  it('counts a pan that moves the view as the user taking over, one that cannot move as nothing', () => {
    const { vp } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    vp.panTo(50, 50); // the whole graph is in sight: nothing to scroll
    expect(vp.fitted).toBe(true);
    vp.zoom(2);
    vp.fit();
    vp.setGraph({ width: 2000, height: 528 }, 'churn.ipynb'); // fit stops at the minimum
    expect(vp.view?.scale).toBe(MIN_FIT_SCALE);
    vp.panTo(0, 0);
    expect(vp.fitted).toBe(false);
    expect(vp.view?.left).toBe(0);
  });

  it("keeps the user's zoom and scroll through a relayout that still lets them see what they saw", () => {
    const { vp } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    vp.zoom(2, { x: 125, y: 100 }); // zoomed in on a part
    const zoomed = vp.view!;
    vp.setGraph({ width: 460, height: 560 }, 'churn.ipynb');
    expect(vp.fitted).toBe(false);
    expect(vp.view?.scale).toBe(zoomed.scale);
    expect([vp.view?.left, vp.view?.top]).toEqual([zoomed.left, zoomed.top]);
  });

  it('fits again when a view that showed the whole graph would cut the new one off', () => {
    const { vp } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    vp.zoom(1 / ZOOM_STEP); // smaller than the fit: the whole graph, with room around it
    expect(vp.fitted).toBe(false);
    vp.setGraph({ width: 460, height: 560 }, 'churn.ipynb'); // still in sight: kept
    expect(vp.fitted).toBe(false);
    vp.setGraph({ width: 900, height: 560 }, 'churn.ipynb'); // would be cut off: fitted
    expect(vp.fitted).toBe(true);
    expect(vp.view).toEqual(fitView({ width: 900, height: 560 }, panel));
  });

  it("keeps the user's view through a resize by the same rule", () => {
    const { vp } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    vp.zoom(ZOOM_STEP * ZOOM_STEP);
    const scale = vp.view!.scale;
    vp.setPanel({ width: 300, height: 370 });
    expect(vp.view?.scale).toBe(scale);
    expect(vp.fitted).toBe(false);
  });

  it('starts fitted for another notebook, and forgets the drawing when there is none', () => {
    const { vp } = viewport();
    vp.setPanel(panel);
    vp.setGraph(churn, 'churn.ipynb');
    vp.zoom(2);
    vp.setGraph(null, 'other.ipynb');
    expect(vp.view).toBeNull();
    vp.setGraph(churn, 'other.ipynb');
    expect(vp.fitted).toBe(true);
    expect(vp.view).toEqual(fitView(churn, panel));
  });

  it('records scrolling the browser did by itself without taking the view from the fit', () => {
    const { vp, changes } = viewport();
    vp.setPanel(panel);
    vp.setGraph({ width: 2000, height: 528 }, 'churn.ipynb');
    const n = changes();
    vp.scrolled(10, 0);
    expect(vp.view?.left).toBe(10);
    expect(vp.fitted).toBe(true);
    expect(changes()).toBe(n);
  });
});
