"""What `nbops ci init` reads from a repository (its notebooks, their gates and committed
builds, `[tool.nbops.ci]`) and writes back: the workflow file, only when it changes."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from nbops import __version__
from nbops.ci.gate_config import (
    PYPROJECT,
    DeclaredGates,
    notebook_tables,
    parse_pyproject,
    read_declared_gates,
    read_tool_table,
)
from nbops.ci.gates import check_metric_names
from nbops.ci.workflows import DEFAULT_PYTHON, DEFAULT_SCHEDULE, Install, NotebookJob, Workflow
from nbops.errors import CiConfigError, NbopsError, WorkflowExists

# Folders never searched for notebooks: builds, environments, caches (and every hidden folder,
# which covers .git, .nbops, .venv and .ipynb_checkpoints).
PRUNED = frozenset({"build", "node_modules", "__pycache__", "venv", "env", "site-packages"})
CI_KEYS = ("python", "install", "deploy", "runner", "nbops_home")
LOCK_PYTHON = re.compile(r"with Python (\d+\.\d+)")


def gate_root(notebook: Path, fallback: Path) -> Path:
    """Where the notebook's pyproject.toml entry is keyed from: the git work tree holding it
    (as `nbops ci init` reads it), else `fallback` (the folder Jupyter serves, or the one a
    command runs in) when it holds the notebook, else the notebook's folder."""
    top = repository_root(notebook.parent)
    if (top / ".git").exists():
        return top
    holds = notebook.resolve().is_relative_to(fallback.resolve())
    return fallback.resolve() if holds else notebook.parent.resolve()


def notebook_gates(
    notebook: Path, fallback: Path, metrics: Sequence[str], label: str
) -> DeclaredGates:
    """The gates the notebook declares, as a deploy applies them (from the sidebar or `nbops
    deploy`), each metric checked against its metrics cells (a typo fails before anything
    runs, as `nbops ci init` refuses it)."""
    gates = read_declared_gates(notebook, gate_root(notebook, fallback))
    check_declared_metrics(gates, metrics, label)
    return gates


def repository_root(start: Path) -> Path:
    """The git work tree holding `start`, else `start` itself."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=start,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return start.resolve()
    top = found.stdout.strip()
    return Path(top).resolve() if found.returncode == 0 and top else start.resolve()


def notebook_files(root: Path) -> Iterator[Path]:
    """Every .ipynb under `root` outside hidden, build and environment folders, sorted."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".")
            and name not in PRUNED
            and not (Path(folder) / name / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if name.endswith(".ipynb"):
                yield Path(folder) / name


def is_pipeline_notebook(path: Path) -> bool:
    """True when nbops's analysis finds steps or serve cells in the notebook."""
    from nbops.model.analysis import analyse
    from nbops.model.notebook import load_notebook

    try:
        pipeline = analyse(load_notebook(path))
    except NbopsError:
        return False  # not a notebook nbops reads; `nbops check` says why when it is named
    return bool(pipeline.steps or pipeline.endpoints)


def find_notebooks(root: Path) -> list[Path]:
    """The tagged notebooks of the repository, in path order."""
    return [path for path in notebook_files(root) if is_pipeline_notebook(path)]


def is_committed(root: Path, relative: str) -> bool:
    """Whether git tracks `relative` (outside a git work tree: whether it exists)."""
    try:
        found = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", relative],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except OSError:  # no git here: what exists is what CI gets
        return (root / relative).is_file()
    if found.returncode == 0:
        return True
    return not (root / ".git").exists() and (root / relative).is_file()


def ci_settings(tool: Mapping[str, Any]) -> dict[str, str]:
    """`[tool.nbops.ci]`: each key a string, and only keys nbops reads."""
    table = tool.get("ci", {})
    where = f"{PYPROJECT} [tool.nbops.ci]"
    if not isinstance(table, dict):
        raise CiConfigError("must be a table.", where=where)
    for key, value in table.items():
        if key not in CI_KEYS:
            raise CiConfigError(
                f"{key} is not a key nbops reads.",
                where=where,
                fix=f"Its keys are: {', '.join(CI_KEYS)}.",
            )
        if not isinstance(value, str) or not value:
            raise CiConfigError(f"{key} must be a string, not {value!r}.", where=where)
    return table


def plan_workflow(
    root: Path, notebooks: Sequence[Path] = (), *, schedule: str = DEFAULT_SCHEDULE
) -> Workflow:
    """The workflow for `notebooks` (default: every tagged notebook under `root`)."""
    root = root.resolve()
    chosen = [Path(path) for path in notebooks] or find_notebooks(root)
    tool = read_tool_table(root)
    check_gate_paths(root, tool)
    jobs = tuple(notebook_job(root, path) for path in chosen)
    settings = ci_settings(tool)
    install = repository_install(root, jobs, settings.get("install"))
    return Workflow(
        notebooks=jobs,
        install=install,
        version=__version__,
        python=settings.get("python") or lock_python(root, install.locks) or DEFAULT_PYTHON,
        schedule=schedule,
        deploy=settings.get("deploy"),
        runner=settings.get("runner"),
        nbops_home=settings.get("nbops_home"),
    )


def notebook_job(root: Path, path: Path) -> NotebookJob:
    """One notebook: its path from the root, its gates (checked against its metrics) and its
    committed build."""
    from nbops.model.analysis import analyse
    from nbops.model.notebook import load_notebook

    relative = relative_path(root, path)
    pipeline = analyse(load_notebook(path))
    gates = read_declared_gates(path, root)
    check_declared_metrics(gates, pipeline.metrics.names, relative)
    build = f"build/{pipeline.notebook.name}"
    return NotebookJob(
        relative, gates, build if is_committed(root, f"{build}/nbops.json") else None
    )


def relative_path(root: Path, path: Path) -> str:
    """`path` from the root, with `/`; a notebook outside the repository is an error."""
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        raise CiConfigError(
            f"is outside the repository at {root}.",
            where=str(path),
            fix="Run nbops ci init inside the repository that holds the notebook.",
        ) from None


def check_declared_metrics(gates: DeclaredGates, metrics: Sequence[str], notebook: str) -> None:
    """Each declared gate names a metric the notebook records (a typo fails here, not in CI)."""
    where = {
        key: next((s for s in gates.sources if s.endswith(key)), notebook)
        for key in ("require", "must_beat")
    }
    wanted = [(g.metric, where["require"]) for g in gates.require]
    wanted += [(r.metric, where["must_beat"]) for r in gates.must_beat]
    check_metric_names(wanted, metrics, notebook)


def check_gate_paths(root: Path, tool: Mapping[str, Any]) -> None:
    """Each `[tool.nbops.notebooks."PATH"]` names a notebook file under the root."""
    for path in notebook_tables(tool):
        if (root / path).is_file():
            continue
        known = [relative_path(root, p) for p in notebook_files(root)]
        close = difflib.get_close_matches(path, known, n=1, cutoff=0.5)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise CiConfigError(
            "names no notebook.",
            where=f'{PYPROJECT} [tool.nbops.notebooks."{path}"]',
            fix=f"{hint}Paths are from the repository's root, with /.",
        )


def repository_install(root: Path, jobs: Sequence[NotebookJob], requirement: str | None) -> Install:
    """What the workflow pip-installs: nbops at this version (or `[tool.nbops.ci] install`),
    the committed builds' locks, requirements.txt, and the repository when it is a package."""
    locks = tuple(
        f"{job.build}/requirements.lock"
        for job in jobs
        if job.build and is_committed(root, f"{job.build}/requirements.lock")
    )
    pyproject = root / PYPROJECT
    project = pyproject.is_file() and "project" in parse_pyproject(
        pyproject.read_text(encoding="utf-8")
    )
    return Install(
        requirement=requirement or f"nbops=={__version__}",
        locks=locks,
        requirements=("requirements.txt",) if (root / "requirements.txt").is_file() else (),
        project=project,
        pyproject=pyproject.is_file(),
    )


def lock_python(root: Path, locks: Sequence[str]) -> str | None:
    """The Python (major.minor) the first committed lock was made with: its versions fit it."""
    for lock in locks:
        match = LOCK_PYTHON.search((root / lock).read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    return None


def write_workflow(root: Path, relative: str, text: str, *, force: bool = False) -> str:
    """Write the workflow at `relative` under the root: `written`, `unchanged` (the same bytes
    are there), or `replaced` (a different file, with `force`)."""
    path = root / relative
    if path.is_file():
        if path.read_bytes() == text.encode("utf-8"):
            return "unchanged"
        if not force:
            raise WorkflowExists(
                "exists and differs from the workflow nbops ci init writes.",
                where=relative,
                fix="Run it again with --force to replace it.",
            )
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return "replaced" if existed else "written"
