/** The laid-out lineage as SVG: nodes to click, edges labelled with what flows along them. */
import React from 'react';

import type { IPlacement } from '../fit';
import {
  edgePath,
  type ILaidOutGraph,
  type IPlacedEdge,
  type IPlacedNode
} from '../graph';

export interface IGraphViewProps {
  layout: ILaidOutGraph;
  selected: string | null;
  /** Where the drawing sits and at what scale; the SVG is as large as the scrolled content. */
  placement: IPlacement;
  onSelect(nodeId: string | null): void;
}

const ARROW_ID = 'nbops-arrow';

/** A zoom redraws the frame only; the nodes and edges when the layout or selection change. */
export function GraphView(props: IGraphViewProps): JSX.Element {
  const { layout, selected, placement, onSelect } = props;
  const { scale, x, y } = placement;
  return (
    <svg
      className="nbops-Graph"
      data-testid="nbops-graph"
      width={placement.width}
      height={placement.height}
      role="img"
      aria-label="pipeline lineage"
      onClick={event => {
        if (event.target === event.currentTarget) {
          onSelect(null);
        }
      }}
    >
      <defs>
        <marker
          id={ARROW_ID}
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto-start-reverse"
        >
          <path className="nbops-Graph-arrow" d="M0,0 L10,5 L0,10 z" />
        </marker>
      </defs>
      <g transform={`translate(${x},${y}) scale(${scale})`}>
        <Drawing layout={layout} selected={selected} onSelect={onSelect} />
      </g>
    </svg>
  );
}

interface IDrawingProps {
  layout: ILaidOutGraph;
  selected: string | null;
  onSelect(nodeId: string | null): void;
}

const Drawing = React.memo(function Drawing(props: IDrawingProps): JSX.Element {
  const { layout, selected, onSelect } = props;
  return (
    <>
      {layout.edges.map(edge => (
        <Edge key={edge.id} edge={edge} />
      ))}
      {layout.nodes.map(node => (
        <Node
          key={node.id}
          node={node}
          selected={node.id === selected}
          onSelect={onSelect}
        />
      ))}
    </>
  );
});

function Edge({ edge }: { edge: IPlacedEdge }): JSX.Element {
  return (
    <g
      className={`nbops-Edge nbops-Edge-${edge.kind}`}
      data-testid="nbops-edge"
      data-source={edge.source}
      data-target={edge.target}
      data-artifacts={
        ['after', 'parameter', 'file'].includes(edge.kind) ? '' : edge.title
      }
    >
      <title>{edge.title}</title>
      <path d={edgePath(edge.points)} markerEnd={`url(#${ARROW_ID})`} />
      {edge.label && (
        <g transform={`translate(${edge.labelX},${edge.labelY})`}>
          <rect
            className="nbops-Edge-labelBox"
            x={-edge.labelWidth / 2}
            y={-8}
            width={edge.labelWidth}
            height={16}
            rx={3}
          />
          <text
            className="nbops-Edge-label"
            textAnchor="middle"
            dominantBaseline="central"
          >
            {edge.label}
          </text>
        </g>
      )}
    </g>
  );
}

interface INodeProps {
  node: IPlacedNode;
  selected: boolean;
  onSelect(nodeId: string): void;
}

function Node({ node, selected, onSelect }: INodeProps): JSX.Element {
  const classes = [
    'nbops-Node',
    `nbops-Node-${node.kind}`,
    selected ? 'nbops-mod-selected' : '',
    node.severity ? `nbops-mod-${node.severity}` : ''
  ];
  const twoLines = node.detail !== '';
  return (
    <g
      className={classes.filter(Boolean).join(' ')}
      data-testid="nbops-node"
      data-node-id={node.id}
      data-kind={node.kind}
      transform={`translate(${node.x - node.width / 2},${node.y - node.height / 2})`}
      role="button"
      tabIndex={0}
      aria-pressed={selected}
      onClick={() => onSelect(node.id)}
      onKeyDown={event => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          onSelect(node.id);
        }
      }}
    >
      <title>{node.title}</title>
      {node.kind === 'file' ? (
        <FileShape width={node.width} height={node.height} />
      ) : (
        <rect width={node.width} height={node.height} rx={radius(node)} />
      )}
      <text
        className="nbops-Node-label"
        x={node.width / 2}
        y={twoLines ? 15 : node.height / 2}
        textAnchor="middle"
        dominantBaseline="central"
      >
        {node.label}
      </text>
      {twoLines && (
        <text
          className="nbops-Node-detail"
          x={node.width / 2}
          y={30}
          textAnchor="middle"
          dominantBaseline="central"
        >
          {node.detail}
        </text>
      )}
    </g>
  );
}

/** How far the corner of a file node is folded down, in px. */
const FOLD = 8;

/** A page with its top-right corner folded: a data file, not a step. */
function FileShape(props: { width: number; height: number }): JSX.Element {
  const { width: w, height: h } = props;
  return (
    <>
      <path
        className="nbops-Node-page"
        d={`M0,0 H${w - FOLD} L${w},${FOLD} V${h} H0 Z`}
      />
      <path className="nbops-Node-fold" d={`M${w - FOLD},0 V${FOLD} H${w} Z`} />
    </>
  );
}

function radius(node: IPlacedNode): number {
  switch (node.kind) {
    case 'endpoint':
    case 'test':
      return node.height / 2;
    case 'parameters':
      return 1;
    default:
      return 4;
  }
}
