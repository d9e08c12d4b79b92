/**
 * The scrolling frame around the lineage drawing: it reports its size to the viewport, turns
 * the wheel into zoom about the pointer and a drag into a pan, and scrolls where the viewport
 * says. The zoom buttons shown in the section's title bar are here too.
 */
import { ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React, { useEffect, useLayoutEffect, useRef } from 'react';

import type { ILaidOutGraph } from '../graph';
import { ZOOM_STEP, type GraphViewport } from '../viewport';
import { GraphView } from './GraphView';
import { useSignals } from './useSignal';

/** A press that moves less than this (px) is a click, not a drag. */
const DRAG_THRESHOLD = 4;
/** Wheel pixels to zoom: one notch of a mouse wheel (100 px) zooms by about 18%. */
const WHEEL_ZOOM_RATE = 0.002;

export interface IGraphPanelProps {
  layout: ILaidOutGraph;
  viewport: GraphViewport;
  selected: string | null;
  onSelect(nodeId: string | null): void;
}

interface IPress {
  pointerId: number;
  x: number;
  y: number;
  left: number;
  top: number;
  dragging: boolean;
}

export function GraphPanel(props: IGraphPanelProps): JSX.Element {
  const { layout, viewport, selected, onSelect } = props;
  const view = useSignals([viewport.changed], () => viewport.view);
  const frame = useRef<HTMLDivElement>(null);
  const press = useRef<IPress | null>(null);
  const pointerDown = useRef(false);
  const dragged = useRef(false);

  useResize(frame, viewport);
  useWheelZoom(frame, viewport);
  // A scrollbar let go of outside the frame still ends the press.
  useEffect(() => {
    const release = (): void => {
      pointerDown.current = false;
    };
    window.addEventListener('pointerup', release, true);
    window.addEventListener('pointercancel', release, true);
    return () => {
      window.removeEventListener('pointerup', release, true);
      window.removeEventListener('pointercancel', release, true);
    };
  }, []);

  // After each render: scroll to where the view is (a fit, a zoom, a drag).
  useLayoutEffect(() => {
    const element = frame.current;
    if (element === null || view === null) {
      return;
    }
    if (Math.abs(element.scrollLeft - view.left) >= 1) {
      element.scrollLeft = view.left;
    }
    if (Math.abs(element.scrollTop - view.top) >= 1) {
      element.scrollTop = view.top;
    }
  });

  const onPointerDown = (event: React.PointerEvent<HTMLDivElement>): void => {
    pointerDown.current = true;
    // On the frame itself is on a scrollbar (the drawing covers the rest): the browser's own.
    if (event.button !== 0 || event.target === event.currentTarget) {
      return;
    }
    const element = event.currentTarget;
    press.current = {
      pointerId: event.pointerId,
      x: event.clientX,
      y: event.clientY,
      left: element.scrollLeft,
      top: element.scrollTop,
      dragging: false
    };
  };

  const onPointerMove = (event: React.PointerEvent<HTMLDivElement>): void => {
    const p = press.current;
    if (p === null || p.pointerId !== event.pointerId) {
      return;
    }
    const dx = event.clientX - p.x;
    const dy = event.clientY - p.y;
    if (!p.dragging && Math.hypot(dx, dy) >= DRAG_THRESHOLD) {
      p.dragging = true;
      // Captured only once it is a drag: a capture at the press would retarget the click.
      event.currentTarget.setPointerCapture(event.pointerId);
      event.currentTarget.classList.add('nbops-mod-dragging');
    }
    if (p.dragging) {
      viewport.panTo(p.left - dx, p.top - dy);
    }
  };

  const onPointerEnd = (event: React.PointerEvent<HTMLDivElement>): void => {
    pointerDown.current = false;
    const p = press.current;
    press.current = null;
    if (p?.dragging) {
      event.currentTarget.classList.remove('nbops-mod-dragging');
      // The click that follows this release (if any) ends a drag: no node is selected.
      dragged.current = true;
      setTimeout(() => (dragged.current = false), 0);
    }
  };

  return (
    <div
      className="nbops-Lineage-graph"
      data-testid="nbops-graph-frame"
      data-scale={view?.scale.toFixed(3) ?? ''}
      data-fitted={viewport.fitted}
      data-min-scale={viewport.minScale}
      ref={frame}
      onPointerDown={onPointerDown}
      onPointerMove={onPointerMove}
      onPointerUp={onPointerEnd}
      onPointerCancel={onPointerEnd}
      onClickCapture={event => {
        if (dragged.current) {
          dragged.current = false;
          event.stopPropagation();
          event.preventDefault();
        }
      }}
      onScroll={event => {
        const { scrollLeft, scrollTop } = event.currentTarget;
        if (press.current?.dragging) {
          return; // the drag moves the view; this reports a step it already passed
        }
        if (pointerDown.current) {
          viewport.panTo(scrollLeft, scrollTop);
        } else {
          viewport.scrolled(scrollLeft, scrollTop);
        }
      }}
    >
      {view && (
        <GraphView
          layout={layout}
          selected={selected}
          placement={view}
          onSelect={onSelect}
        />
      )}
    </div>
  );
}

/** Tells the viewport the frame's inner size, now and whenever the panel is resized. */
function useResize(
  frame: React.RefObject<HTMLDivElement>,
  viewport: GraphViewport
): void {
  useEffect(() => {
    const element = frame.current;
    if (element === null) {
      return;
    }
    const report = (): void =>
      viewport.setPanel({
        width: element.clientWidth,
        height: element.clientHeight
      });
    const observer = new ResizeObserver(report);
    observer.observe(element);
    report();
    return () => observer.disconnect();
  }, [viewport]);
}

/** The wheel zooms about the pointer (a listener of our own: React's wheel is passive). */
function useWheelZoom(
  frame: React.RefObject<HTMLDivElement>,
  viewport: GraphViewport
): void {
  useEffect(() => {
    const element = frame.current;
    if (element === null) {
      return;
    }
    const onWheel = (event: WheelEvent): void => {
      event.preventDefault();
      const unit =
        event.deltaMode === WheelEvent.DOM_DELTA_LINE
          ? 16
          : event.deltaMode === WheelEvent.DOM_DELTA_PAGE
            ? element.clientHeight
            : 1;
      const delta = Math.max(-300, Math.min(300, event.deltaY * unit));
      const box = element.getBoundingClientRect();
      viewport.zoom(Math.exp(-delta * WHEEL_ZOOM_RATE), {
        x: event.clientX - box.left - element.clientLeft,
        y: event.clientY - box.top - element.clientTop
      });
    };
    element.addEventListener('wheel', onWheel, { passive: false });
    return () => element.removeEventListener('wheel', onWheel);
  }, [viewport]);
}

/** −, + and fit, for the Lineage section's title bar. */
export function ZoomButtons({
  viewport
}: {
  viewport: GraphViewport;
}): JSX.Element | null {
  const view = useSignals([viewport.changed], () => viewport.view);
  if (view === null) {
    return null;
  }
  return (
    <div className="nbops-ZoomButtons" data-testid="nbops-zoom">
      <ToolbarButtonComponent
        label="−"
        tooltip="Zoom out"
        dataset={{ testid: 'nbops-zoom-out' }}
        enabled={viewport.canZoomOut}
        onClick={() => viewport.zoom(1 / ZOOM_STEP)}
      />
      <ToolbarButtonComponent
        label="+"
        tooltip="Zoom in"
        dataset={{ testid: 'nbops-zoom-in' }}
        enabled={viewport.canZoomIn}
        onClick={() => viewport.zoom(ZOOM_STEP)}
      />
      <ToolbarButtonComponent
        label="fit"
        tooltip={
          viewport.fitted
            ? 'The graph follows the panel'
            : 'Fit the graph to the panel'
        }
        dataset={{ testid: 'nbops-fit' }}
        pressed={viewport.fitted}
        onClick={() => viewport.fit()}
      />
    </div>
  );
}
