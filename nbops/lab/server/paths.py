"""Where things are as the server sees them: API paths inside its root, and the `.nbops` home."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nbops.errors import NbopsError, NotebookNotFound
from nbops.run.home import Home

ROOT_FIX = "Give the notebook's path relative to the folder Jupyter serves, as JupyterLab shows it."


class PathRefused(NbopsError):
    """An API path that points outside the server's root folder, or at a hidden file."""


@dataclass(frozen=True)
class ApiPath:
    """A path as the browser names it (`sub/churn.ipynb`) and the file it names on disk."""

    api_path: str
    os_path: Path


# Linux's PATH_MAX: no file can have a longer path, so a longer one is refused unread.
MAX_PATH_CHARACTERS = 4096


def resolve_api_path(root_dir: Path, api_path: str, *, allow_hidden: bool = False) -> ApiPath:
    """The file an API path names, checked to lie inside `root_dir` once symlinks are followed.

    Absolute paths are refused outright rather than mapped into the root: a client that sends
    one has misunderstood the API, and guessing would hide that.
    """
    if not api_path.strip() or "\0" in api_path:
        raise PathRefused(f"{api_path!r} is not a notebook path.", fix=ROOT_FIX)
    if len(api_path) > MAX_PATH_CHARACTERS:
        raise PathRefused(
            f"a path of {len(api_path):,} characters is longer than any file's "
            f"({MAX_PATH_CHARACTERS:,} at most).",
            fix=ROOT_FIX,
        )
    if PurePosixPath(api_path).is_absolute() or Path(api_path).is_absolute():
        raise PathRefused(f"{api_path}: absolute paths are refused.", fix=ROOT_FIX)
    root = root_dir.resolve()
    lexical = Path(os.path.normpath(root.joinpath(*PurePosixPath(api_path).parts)))
    if not lexical.is_relative_to(root):
        raise PathRefused(f"{api_path}: is outside the Jupyter root folder.", fix=ROOT_FIX)
    relative = lexical.relative_to(root)
    if not allow_hidden and any(part.startswith(".") for part in relative.parts):
        raise PathRefused(
            f"{api_path}: is hidden, and Jupyter is set not to serve hidden files.", fix=ROOT_FIX
        )
    try:
        real = lexical.resolve()
        real.is_file()
    except OSError as error:  # a loop of links, a name too long for the filesystem
        raise PathRefused(
            f"{api_path[:200]}: cannot be resolved ({error.strerror}).", fix=ROOT_FIX
        ) from None
    if not real.is_relative_to(root):
        raise PathRefused(
            f"{api_path}: leads outside the Jupyter root folder through a symbolic link.",
            fix=ROOT_FIX,
        )
    if not real.is_file():
        what = "is a folder, not a notebook." if real.is_dir() else "is not a notebook file."
        raise NotebookNotFound(
            "no such notebook file." if not real.exists() else what,
            where=relative.as_posix(),
            fix="Check the path; it is relative to the folder Jupyter serves.",
        )
    return ApiPath(relative.as_posix(), real)


def server_home(root_dir: Path) -> Home:
    """`<root_dir>/.nbops`, or NBOPS_HOME (a relative one taken from the root), so a sidebar and
    a terminal opened in the notebook folder share one state db."""
    configured = Path(os.environ.get("NBOPS_HOME", ".nbops")).expanduser()
    return Home((root_dir / configured).resolve())


def home_for_notebook(notebook: Path) -> Home:
    """The home a kernel should use: its Jupyter server's, when one serves this notebook (so the
    widgets and the sidebar agree), else the CLI's (`NBOPS_HOME` or `./.nbops`)."""
    root = running_server_root(notebook)
    return server_home(root) if root is not None else Home.default()


def running_server_root(notebook: Path) -> Path | None:
    """The root folder of the running Jupyter server that serves `notebook`, if any.

    Read from the server info files in Jupyter's runtime folder, as `jupyter server list` does,
    without importing jupyter_server into the kernel.
    """
    from jupyter_core.paths import jupyter_runtime_dir

    from nbops.run.pids import pid_alive

    target = notebook.resolve()
    roots: list[Path] = []
    for info in Path(jupyter_runtime_dir()).glob("jpserver-*.json"):
        try:
            data = json.loads(info.read_text())
        except (OSError, ValueError):
            continue  # a server writing or removing its file right now
        if not data.get("root_dir") or not pid_alive(data.get("pid")):
            continue  # a stale file left by a server that was killed
        root = Path(str(data["root_dir"])).expanduser().resolve()
        if target.is_relative_to(root):
            roots.append(root)
    return max(roots, key=lambda root: len(root.parts), default=None)
