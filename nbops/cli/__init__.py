"""The `nbops` command line: one module per command group; each parses, calls the layers, prints.

May import: every layer but `lab` (the Jupyter face is its own). Heavy imports stay inside the
commands, so `nbops --help` and `nbops check` start fast.
"""

from __future__ import annotations

from nbops.cli import analyse, build, ci, db, deploy, export, run, workflows
from nbops.cli.app import cli

COMMAND_GROUPS = (
    analyse,
    run,
    ci,
    workflows,
    build,
    deploy,
    export,
    db,
)  # imported for the commands they register


def main() -> None:
    cli()
