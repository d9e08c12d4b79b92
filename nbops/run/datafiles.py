"""The content hashes of the data files a step reads, for its cache key, kept incrementally: a
file whose size and mtime are those last seen keeps its hash; any other is read again."""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

# What a file that does not exist contributes: the step fails on its own, saying which.
MISSING = "missing"
# A file changed within this many seconds of being hashed may change again within the same
# mtime tick (a coarse filesystem clock), so its size and mtime alone are not trusted.
RACY_S = 2.0
CHUNK = 1 << 20
GLOB_CHARS = frozenset("*?[")


class FileIndex(Protocol):
    """Where hashes are kept between runs (the state db's `file_hashes` table)."""

    def known_file(self, path: str) -> tuple[int, int, str, float] | None:
        """(size, mtime_ns, sha256, hashed_at) last seen for the absolute path, or None."""

    def remember_file(self, path: str, size: int, mtime_ns: int, sha256: str) -> None: ...


def data_file_hashes(paths: Iterable[str], folder: Path, index: FileIndex) -> dict[str, str]:
    """{path: sha256} of each file, as the notebook names it (relative to its folder, or
    absolute), sorted: a glob gives each file it matches (none when it matches nothing), a
    folder each file in it, a missing file MISSING."""
    found: dict[str, str] = {}
    for path in paths:
        for name, absolute in _expand(path, folder):
            found[name] = file_sha256(absolute, index)
    return dict(sorted(found.items()))


def file_sha256(path: Path, index: FileIndex) -> str:
    """The file's sha256, from the index when its size and mtime are unchanged since it was
    hashed (and that was not within RACY_S of the change); else from its bytes."""
    try:
        stat = path.stat()
    except OSError:
        return MISSING
    known = index.known_file(str(path))
    if known is not None:
        size, mtime_ns, sha256, hashed_at = known
        settled = hashed_at - stat.st_mtime_ns / 1e9 > RACY_S
        if (size, mtime_ns) == (stat.st_size, stat.st_mtime_ns) and settled:
            return sha256
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    index.remember_file(str(path), stat.st_size, stat.st_mtime_ns, digest.hexdigest())
    return digest.hexdigest()


def _expand(path: str, folder: Path) -> list[tuple[str, Path]]:
    """(name, absolute path) of each file `path` stands for."""
    absolute = Path(os.path.normpath(folder / path))
    if GLOB_CHARS & set(path):
        matches = glob.glob(str(absolute), recursive=True)
        return [
            (_name(Path(m), path, folder), Path(m)) for m in sorted(matches) if Path(m).is_file()
        ]
    if absolute.is_dir():
        inside = sorted(p for p in absolute.rglob("*") if p.is_file())
        return [(_name(p, path, folder), p) for p in inside]
    return [(path, absolute)]


def _name(found: Path, pattern: str, folder: Path) -> str:
    """A matched file named as the pattern names files: relative, or absolute."""
    return str(found) if Path(pattern).is_absolute() else os.path.relpath(found, folder)
