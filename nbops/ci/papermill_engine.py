"""nbops' papermill engine: papermill's nbclient engine, plus a per-cell hook and cell-level
reports of timeouts and kernel deaths. Imported only when a notebook is about to run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager

# nbclient logs a timeout or a dead kernel as an error; nbops reports those itself, on the cell.
QUIET = logging.getLogger("nbops.kernel")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False
KERNEL_LOG_LINES = 20


class _Manager(NotebookExecutionManager):  # type: ignore[misc]
    """papermill's bookkeeping, remembering the running cell and announcing each code cell."""

    def __init__(self, nb: Any, on_cell: Callable[[Any], None] | None) -> None:
        super().__init__(nb, output_path=None, progress_bar=False)
        self.on_cell = on_cell
        self.running: Any = None

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self.running = cell
        if self.on_cell is not None and cell.get("cell_type") == "code":
            self.on_cell(cell)
        super().cell_start(cell, cell_index, **kwargs)


class NbopsEngine(NBClientEngine):  # type: ignore[misc]
    """Runs like papermill's default engine. A timeout or a dead kernel becomes an error output
    on the cell that was running, so papermill marks that cell as it marks any failure."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        *,
        on_cell: Callable[[Any], None] | None = None,
        kernel_log: Path | None = None,
        execution_timeout: int | None = None,
        start_timeout: int = 60,
        **_papermill_options: Any,  # output and logging options: nbops writes once, at the end
    ) -> Any:
        manager = _Manager(nb, on_cell)
        manager.notebook_start()
        try:
            client = PapermillNotebookClient(
                manager,
                kernel_name=kernel_name,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                log=QUIET,
            )
            _execute(client, manager, execution_timeout, kernel_log)
        finally:
            manager.notebook_complete()
        return manager.nb


def _execute(client: Any, manager: _Manager, timeout: int | None, kernel_log: Path | None) -> None:
    # The kernel process's own stdout and stderr (not the cells' output, which comes over
    # Jupyter's messages) go to a log: ipykernel's start-up warnings are noise in a CI log,
    # but its last words explain a kernel that died.
    if kernel_log is None:
        return _run(client, manager, timeout, None)
    with kernel_log.open("w") as log:
        _run(client, manager, timeout, log)
    if manager.running is not None and _died(manager.running):
        manager.running.outputs[-1]["traceback"].extend(_tail(kernel_log))
    return None


def _run(client: Any, manager: _Manager, timeout: int | None, log: Any) -> None:
    launch = {"stdout": log, "stderr": log} if log is not None else {}
    try:
        client.execute(**launch)
    except CellTimeoutError:
        _record(
            manager, "TimeoutError", f"the cell was still running after {timeout} s (--timeout)"
        )
    except DeadKernelError:
        _record(manager, "DeadKernelError", "the kernel died while running this cell")


def _record(manager: _Manager, ename: str, evalue: str) -> None:
    """An error output for a stop nbclient raises rather than records, on the running cell."""
    cell = manager.running
    if cell is None:
        return
    # Shutting the kernel down interrupts the cell; its KeyboardInterrupt traceback shows where
    # the cell was, so it is kept, but inside the timeout's error, which papermill then reports.
    interrupted = [o for o in cell.outputs if o.get("ename") == "KeyboardInterrupt"]
    cell.outputs = [o for o in cell.outputs if o not in interrupted]
    traceback = [line for o in interrupted for line in o.get("traceback", [])]
    error = new_output(
        "error", ename=ename, evalue=evalue, traceback=[*traceback, f"{ename}: {evalue}"]
    )  # type: ignore[no-untyped-call]
    cell.outputs.append(error)
    manager.cell_exception(cell)


def _died(cell: Any) -> bool:
    outputs = cell.get("outputs") or []
    return bool(outputs) and outputs[-1].get("ename") == "DeadKernelError"


def _tail(kernel_log: Path) -> list[str]:
    lines = kernel_log.read_text(errors="replace").splitlines()[-KERNEL_LOG_LINES:]
    return ["", "The kernel's last output:", *lines] if lines else []
