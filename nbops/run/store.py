"""A content-addressed artifact store: values serialised by type, named by their sha256.

Every read checks the bytes against the sha256 they are named by before anything is
deserialised: a pickle is code, so an object someone swapped or damaged is refused, never
loaded. Writing an object again replaces a file whose content does not match.

This module depends on nothing else in nbops: builds copy it next to the generated pipeline, so
`python -m pipeline` stores and hashes artifacts exactly as `nbops run` does.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

FORMATS = ("npy", "parquet", "pickle", "joblib", "cloudpickle")


def serialise(value: Any) -> tuple[bytes, str]:
    """The value's bytes and format, the first that fits of: numpy arrays as .npy, frames as
    Parquet, plain Python data with pickle, objects (models) with joblib, and what joblib cannot
    pickle (lambdas, classes defined in a notebook) with cloudpickle."""
    for fmt in FORMATS:
        try:
            return _WRITERS[fmt](value), fmt
        except _Unsuitable:
            continue
    raise TypeError(f"cannot serialise a {type(value).__name__}")


def deserialise(data: bytes, fmt: str) -> Any:
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt == "parquet":
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(data))
        if frame.attrs.get("nbops_series"):
            return frame.iloc[:, 0].rename(frame.attrs.get("nbops_series_name"))
        return frame
    if fmt == "joblib":
        import joblib

        return joblib.load(io.BytesIO(data))
    if fmt == "cloudpickle":
        import cloudpickle

        return cloudpickle.loads(data)
    return pickle.loads(data)  # only files this module wrote: the store is ours


class _Unsuitable(Exception):
    """This format does not fit the value; try the next one."""


def _numpy(value: Any) -> bytes:
    np = _loaded("numpy")
    if np is None or not isinstance(value, np.ndarray) or value.dtype.hasobject:
        raise _Unsuitable
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def _parquet(value: Any) -> bytes:
    pd = _loaded("pandas")
    if pd is None or not isinstance(value, (pd.DataFrame, pd.Series)):
        raise _Unsuitable
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise _Unsuitable from None
    frame = value.to_frame() if isinstance(value, pd.Series) else value.copy(deep=False)
    if isinstance(value, pd.Series):
        frame.attrs = {"nbops_series": True, "nbops_series_name": value.name}
    if not all(isinstance(c, str) for c in frame.columns):
        raise _Unsuitable
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer)
    except Exception:  # a column type Parquet cannot hold: fall back to joblib
        raise _Unsuitable from None
    return buffer.getvalue()


def _joblib(value: Any) -> bytes:
    try:
        import joblib
    except ImportError:
        raise _Unsuitable from None
    buffer = io.BytesIO()
    try:
        joblib.dump(value, buffer)
    except (pickle.PicklingError, AttributeError, TypeError):
        raise _Unsuitable from None
    return buffer.getvalue()


def _pickle(value: Any) -> bytes:
    """Plain data only: it loads without importing anything, which keeps cached runs fast."""
    if not _is_plain(value):
        raise _Unsuitable
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _cloudpickle(value: Any) -> bytes:
    import cloudpickle

    data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return data


PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def _is_plain(value: Any, depth: int = 0) -> bool:
    if isinstance(value, PLAIN_SCALARS):
        return True
    if depth > 20 or type(value) not in (list, tuple, dict, set, frozenset):
        return False
    items = value.items() if isinstance(value, dict) else ((v, v) for v in value)
    return all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in items)


_WRITERS = {
    "npy": _numpy,
    "parquet": _parquet,
    "pickle": _pickle,
    "joblib": _joblib,
    "cloudpickle": _cloudpickle,
}


def _loaded(module: str) -> Any:
    """A library the value could come from, only if the user's code already imported it."""
    import sys

    return sys.modules.get(module)


class CorruptArtifact(Exception):
    """A stored object whose bytes do not match the sha256 it is named by."""

    def __init__(self, path: Path, found: str) -> None:
        self.path = path
        self.found = found
        super().__init__(
            f"{path} does not match its sha256 (its content hashes to {found[:12]}...): it was "
            "changed or damaged after it was written, so it is not loaded."
        )


class ArtifactStore:
    """Files under `root/<sha[:2]>/<sha>.<format>`; written to a temp file, then renamed."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, digest: str, fmt: str) -> Path:
        return self.root / digest[:2] / f"{digest}.{fmt}"

    def put(self, value: Any) -> tuple[str, str]:
        """Store a value; returns its sha256 and format. Storing it again costs no write."""
        data, fmt = serialise(value)
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest, fmt):  # missing, or there but damaged: (re)write it
            write_atomic(self.path(digest, fmt), data)
        return digest, fmt

    def get(self, digest: str, fmt: str) -> Any:
        """The value, once its bytes match `digest`; CorruptArtifact otherwise."""
        path = self.path(digest, fmt)
        data = path.read_bytes()
        found = hashlib.sha256(data).hexdigest()
        if found != digest:
            raise CorruptArtifact(path, found)
        return deserialise(data, fmt)

    def has(self, digest: str, fmt: str) -> bool:
        """Whether the object is there and its bytes still match its name."""
        path = self.path(digest, fmt)
        try:
            return _file_sha256(path) == digest
        except OSError:
            return False


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(target: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
