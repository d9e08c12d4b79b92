/** The "Cell role" section: buttons giving the active cell a role, written as `metadata.tags`. */
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import type { NbopsModel } from '../model';
import { stepNameProblem, type Role } from '../tags';
import { useSignals } from './useSignal';

/** Gives the active cell a role; the notebook binding does it. */
export type SetRole = (role: Role | null, name: string | null) => void;

const ROLE_HELP: Record<Exclude<Role, 'step'>, string> = {
  test: 'assertions about the step above',
  serve: 'the function defined here becomes an HTTP endpoint',
  metrics: "numbers assigned here are the run's metrics",
  parameters: 'literal assignments are pipeline parameters',
  setup: 'imports and helpers every step has',
  skip: 'left out of everything'
};

export class TagBar extends ReactWidget {
  constructor(
    private readonly _model: NbopsModel,
    private readonly _setRole: SetRole
  ) {
    super();
    this.addClass('nbops-TagBar');
    this.title.label = 'Cell role';
  }

  protected render(): JSX.Element {
    return <Roles model={this._model} setRole={this._setRole} />;
  }
}

function Roles({
  model,
  setRole
}: {
  model: NbopsModel;
  setRole: SetRole;
}): JSX.Element {
  const cell = useSignals([model.activeCellChanged], () => model.activeCell);
  const [name, setName] = useState('');
  const cellKey = cell ? `${cell.id}:${cell.role?.tag ?? ''}` : '';
  useEffect(() => {
    setName(
      cell?.role?.role === 'step' && cell.role.name
        ? cell.role.name
        : (cell?.suggestedName ?? '')
    );
  }, [cellKey]);

  if (cell === null) {
    return <p className="nbops-empty">Select a cell to give it a role.</p>;
  }
  if (cell.cellType !== 'code') {
    return (
      <p className="nbops-empty">
        Only code cells take a role; this is a {cell.cellType} cell.
      </p>
    );
  }
  if (cell.roleInSource) {
    return (
      <div className="nbops-Roles" data-testid="nbops-roles">
        <div className="nbops-Roles-cell" data-testid="nbops-active-cell">
          cell {cell.index}: <code>{cell.role?.tag}</code>
        </div>
        <p className="nbops-empty">
          This role is written in the cell's first line (
          <code>#| nbops: …</code>); edit that line to change it.
        </p>
      </div>
    );
  }
  const current = cell.role?.role ?? null;
  const problem = stepNameProblem(name.trim());
  const button = (role: Exclude<Role, 'step'>): JSX.Element => (
    <button
      key={role}
      className={`nbops-Role${current === role ? ' nbops-mod-active' : ''}`}
      data-testid={`nbops-role-${role}`}
      aria-pressed={current === role}
      title={ROLE_HELP[role]}
      onClick={() => setRole(role, null)}
    >
      {role}
    </button>
  );
  return (
    <div className="nbops-Roles" data-testid="nbops-roles">
      <div className="nbops-Roles-cell" data-testid="nbops-active-cell">
        cell {cell.index}:{' '}
        <code>{cell.role?.tag ?? 'no role (continues the section above)'}</code>
      </div>
      <form
        className="nbops-Roles-step"
        onSubmit={event => {
          event.preventDefault();
          if (problem === null) {
            setRole('step', name.trim());
          }
        }}
      >
        <button
          type="submit"
          className={`nbops-Role${current === 'step' ? ' nbops-mod-active' : ''}`}
          data-testid="nbops-role-step"
          aria-pressed={current === 'step'}
          disabled={problem !== null}
          title={problem ?? `starts the step '${name.trim()}'`}
        >
          step
        </button>
        <input
          className="jp-mod-styled nbops-Roles-name"
          data-testid="nbops-step-name"
          aria-label="step name"
          value={name}
          spellCheck={false}
          onChange={event => setName(event.target.value)}
        />
      </form>
      {problem !== null && name !== '' && (
        <div className="nbops-fix">{problem}</div>
      )}
      <div className="nbops-Roles-buttons">
        {(Object.keys(ROLE_HELP) as Array<Exclude<Role, 'step'>>).map(button)}
        <button
          className="nbops-Role nbops-Role-clear"
          data-testid="nbops-role-none"
          disabled={current === null}
          title="remove the role: the cell continues the section above"
          onClick={() => setRole(null, null)}
        >
          none
        </button>
      </div>
    </div>
  );
}
