"""The errors nbops raises for user mistakes: each one says where, which rule, and the fix."""

from __future__ import annotations


class NbopsError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits with code 2."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str = "", where: str = "") -> None:
        self.message = message
        self.fix = fix
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} {self.fix}".strip() if self.fix else text


class NotebookError(NbopsError):
    """The file cannot be read as a notebook nbops understands."""


class NotebookNotFound(NotebookError):
    """The path does not name a readable file."""


class NotebookTooLarge(NotebookError):
    """The file is larger than nbops reads (NBOPS_MAX_NOTEBOOK_MB)."""


class NotebookInvalid(NotebookError):
    """The file is not JSON, not a notebook, or fails nbformat's schema."""


class UnsupportedKernel(NotebookError):
    """The notebook's kernel is not Python, so its cells cannot be analysed as Python."""


class HeadlessRunError(NbopsError):
    """`nbops test` cannot start the run it was asked for; nothing was executed."""


class GateError(HeadlessRunError):
    """A `--require` metric gate that cannot be checked."""


class MalformedGate(GateError):
    """The gate is not `<metric><operator><number>`."""


class UnknownMetric(GateError):
    """The gate names a value the notebook's metrics cells do not record."""


class KernelNotFound(HeadlessRunError):
    """No Jupyter kernel of the requested name is installed."""


class OutputPathError(HeadlessRunError):
    """An output file (-o, --junit, --report) would overwrite the notebook or cannot be written."""


class NotebookChanged(HeadlessRunError):
    """The notebook file changed between being analysed and being copied for the run."""


class ParameterError(NbopsError):
    """A `-p name=value` that names no parameter or has the wrong type."""


class AmbiguousRun(NbopsError):
    """A run id prefix that more than one run's id begins with."""

    def __init__(self, prefix: str, run_ids: list[str]) -> None:
        more = len(run_ids) - 5
        shown = ", ".join(run_ids[:5]) + (f" and {more} more" if more > 0 else "")
        super().__init__(
            f"{prefix!r} begins the ids of {len(run_ids)} runs ({shown}).",
            fix="Give more of the id; `nbops runs` lists them.",
        )


class PipelineError(NbopsError):
    """The notebook's pipeline cannot run: analysis found errors, or a step name is unknown."""


class StepFailed(NbopsError):
    """A step raised while running; carries the notebook cell and line, and the traceback."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str = "", where: str = "", details: str = "") -> None:
        self.details = details
        super().__init__(message, fix=fix, where=where)


class ServeError(NbopsError):
    """`nbops serve` was not given a build with a service: no nbops.json, or no service/."""


class CiConfigError(NbopsError):
    """`nbops ci init` cannot write a workflow: a gate or setting in pyproject.toml's
    `[tool.nbops]` or a notebook's `metadata.nbops` is wrong, or there is no notebook to test."""


class WorkflowExists(NbopsError):
    """A CI workflow that differs from the one `nbops ci init` writes is already there."""

    exit_code = 1
