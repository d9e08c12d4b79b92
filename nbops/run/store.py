"""A content-addressed artifact store: values serialised by type, named by their sha256.

Every read checks the bytes against the sha256 they are named by before anything is
deserialised: a pickle is code, so an object someone swapped or damaged is refused, never
loaded. Writing an object again replaces a file whose content does not match.

The store is a local folder, or any fsspec URL (`open_store("s3://bucket/prefix")`), laid out
the same way: `<root>/<sha[:2]>/<sha>.<format>` for objects and `<root>/keys/<key[:2]>/<key>.json`
for the step-cache index, so a second working directory (or machine) sharing the store finds
the steps already computed. fsspec is imported only for a URL: the local folder never loads it.

A worker process opens a URL store from its URL and the environment alone. For S3 (s3fs, through
botocore) that is:

- `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), or `AWS_PROFILE`;
- `AWS_DEFAULT_REGION` when the bucket's region cannot be found out;
- `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for an S3-compatible server: MinIO, moto;
- any keyword argument of s3fs as `FSSPEC_S3_<NAME>` (fsspec's own configuration), e.g.
  `FSSPEC_S3_ENDPOINT_URL=http://127.0.0.1:9000`; other protocols take `FSSPEC_<PROTOCOL>_<NAME>`.

This module depends on nothing else in nbops: builds copy it next to the generated pipeline, so
`python -m pipeline` stores and hashes artifacts exactly as `nbops run` does.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import os
import pickle
import re
import sys
import tempfile
import uuid
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
    buffer = io.BytesIO()
    _canonical_pickler()(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


# The generated package defines a step's classes and functions inside the step's function, so
# their qualified names begin `<step>.<locals>.`; `nbops run` defines them at the top level.
STEP_MODULES = "pipeline.steps."
CODE_NAMESPACE = "__main__"  # the module every notebook-defined class and function is saved in


@functools.lru_cache(maxsize=1)
def _canonical_pickler() -> type:
    """cloudpickle's Pickler, saving the classes and functions a notebook defines (by value) the
    same way wherever they were defined: `nbops run` runs cells at the top level of a namespace,
    the generated package inside a step's function in a module. Without this their bytes would
    hold module names, qualified names, line numbers and a random class id, so the hash of a
    model of a notebook-defined class would differ between runs and between faces."""
    import types

    import cloudpickle
    from cloudpickle import cloudpickle as internals

    def code(value: types.CodeType, step: bool) -> types.CodeType:
        consts = tuple(
            code(c, step) if isinstance(c, types.CodeType) else c for c in value.co_consts
        )
        if consts and isinstance(consts[0], str) and value.co_name != "<lambda>":
            consts = (inspect.cleandoc(consts[0]), *consts[1:])  # the docstring, as indented
        flags = value.co_flags & ~inspect.CO_NESTED  # nested in a step's function, or not
        value = value.replace(co_consts=consts, co_flags=flags)
        if sys.version_info >= (3, 11):
            value = value.replace(
                co_qualname=_qualname(value.co_qualname, step),
                co_firstlineno=1,
                co_linetable=_all_on_line_one(len(value.co_code) // 2),
            )
        return value

    class CanonicalPickler(cloudpickle.Pickler):  # type: ignore[misc]
        def reducer_override(self, obj: Any) -> Any:
            reduced = super().reducer_override(obj)
            if not isinstance(reduced, tuple):
                return reduced
            if reduced[0] is internals._make_function:
                return _function(reduced, obj.__module__.startswith(STEP_MODULES))
            if reduced[0] in (internals._make_skeleton_class, internals._make_skeleton_enum):
                return _class(reduced, obj)
            return reduced

    def _function(reduced: tuple[Any, ...], step: bool) -> tuple[Any, ...]:
        make, (func_code, _, *rest), (state, slots), *tail = reduced
        slots = {
            **slots,
            "__module__": CODE_NAMESPACE,
            "__qualname__": _qualname(slots["__qualname__"], step),
            "__doc__": inspect.cleandoc(slots["__doc__"]) if slots["__doc__"] else None,
        }
        newargs = (code(func_code, step), {"__name__": CODE_NAMESPACE}, *rest)
        return (make, newargs, (state, slots), *tail)

    def _class(reduced: tuple[Any, ...], cls: type) -> tuple[Any, ...]:
        make, (kind, name, bases, kwargs, _, extra), (clsdict, slots), *tail = reduced
        step = cls.__module__.startswith(STEP_MODULES)
        clsdict = {
            **clsdict,
            "__module__": CODE_NAMESPACE,
            # A fresh string: an interned one would be saved as a reference to its first use.
            "__qualname__": "".join(_qualname(cls.__qualname__, step)),
            "__doc__": inspect.cleandoc(cls.__doc__) if cls.__doc__ else None,
        }
        kwargs = {**kwargs, "__module__": CODE_NAMESPACE} if "__module__" in kwargs else kwargs
        newargs = (kind, name, bases, kwargs, _class_id(clsdict), extra)
        return (make, newargs, (clsdict, slots), *tail)

    return CanonicalPickler


def _all_on_line_one(units: int) -> bytes:
    """A location table (Python 3.11+) putting each of `units` code units on line 1, without
    columns: where each face's lines and columns differ, none is kept (cloudpickle names the
    file `<dynamic-code>` already)."""
    no_columns = 13  # PY_CODE_LOCATION_INFO_NO_COLUMNS, then the line delta: 0
    return b"".join(
        bytes([0x80 | no_columns << 3 | (min(8, units - start) - 1), 0])
        for start in range(0, units, 8)
    )


def _qualname(qualname: str, step: bool) -> str:
    """The name as `nbops run` gives it: without the `<step>.<locals>.` of a generated step."""
    return qualname.split(".<locals>.", 1)[-1] if step else qualname


def _class_id(clsdict: dict[str, Any]) -> str:
    """cloudpickle's id of a class (a class loaded twice is one class): from what the class is,
    not a random one, so the bytes are the same each time."""
    digest = hashlib.sha256(clsdict["__qualname__"].encode())
    for name, value in sorted(clsdict.items()):
        function = getattr(value, "__func__", value)
        body = getattr(getattr(function, "__code__", None), "co_code", b"")
        digest.update(f"{name}:{type(value).__name__}:".encode() + body)
    return digest.hexdigest()


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
    return sys.modules.get(module)


class CorruptArtifact(Exception):
    """A stored object whose bytes do not match the sha256 it is named by."""

    def __init__(self, path: Path | str, found: str) -> None:
        self.path = path  # a Path in a local store, the object's URL in a store on fsspec
        self.location = str(path)
        self.found = found
        super().__init__(
            f"{path} does not match its sha256 (its content hashes to {found[:12]}...): it was "
            "changed or damaged after it was written, so it is not loaded."
        )


class NotLocal(Exception):
    """A local file was asked of a store that is not a local folder."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"{url} is not a local folder, so its objects have no path: read them with "
            "`read(sha256, format)`."
        )


Outputs = dict[str, tuple[str, str]]  # output name -> (sha256, format)
CACHE_KEY = re.compile(r"[0-9A-Za-z_-]{2,200}")  # it names a file, so no `/` and no `..`


def open_store(location: str | Path) -> ArtifactStore:
    """The store at a folder (a path or `file://` URL), or at any other fsspec URL."""
    text = str(location)
    if isinstance(location, Path) or "://" not in text:
        return ArtifactStore(text)
    if text.startswith("file://"):
        return ArtifactStore(text.removeprefix("file://"))
    return FsspecStore(text)


class ArtifactStore:
    """Files under `root/<sha[:2]>/<sha>.<format>`; written to a temp file, then renamed.

    `FsspecStore` keeps the same layout under a URL by overriding only the methods that touch
    bytes or name them: `_where`, `_corrupt_path`, `_read_bytes`, `_sha256_of` and `_write`."""

    root: Path | str  # the folder; for a store on fsspec, its URL
    url: str  # what `open_store` reopens this store from, in any process

    def __init__(self, root: str | Path) -> None:
        self.root = self._folder = Path(root)
        self.url = str(self._folder.absolute())

    def path(self, digest: str, fmt: str) -> Path:
        return self._folder / object_name(digest, fmt)

    def location(self, digest: str, fmt: str) -> str:
        """The object's path or URL, for messages."""
        return self._where(object_name(digest, fmt))

    def put(self, value: Any) -> tuple[str, str]:
        """Store a value; returns its sha256 and format. Storing it again costs no write."""
        data, fmt = serialise(value)
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest, fmt):  # missing, or there but damaged: (re)write it
            self._write(object_name(digest, fmt), data)
        return digest, fmt

    def get(self, digest: str, fmt: str) -> Any:
        """The value, once its bytes match `digest`; CorruptArtifact otherwise."""
        return deserialise(self.read(digest, fmt), fmt)

    def read(self, digest: str, fmt: str) -> bytes:
        """The object's bytes, once they match `digest`; CorruptArtifact otherwise."""
        name = object_name(digest, fmt)
        data = self._read_bytes(name)
        found = hashlib.sha256(data).hexdigest()
        if found != digest:
            raise CorruptArtifact(self._corrupt_path(name), found)
        return data

    def has(self, digest: str, fmt: str) -> bool:
        """Whether the object is there and its bytes still match its name."""
        try:
            return self._sha256_of(object_name(digest, fmt)) == digest
        except OSError:
            return False

    def remember(self, cache_key: str, outputs: Outputs) -> None:
        """Record the outputs a step with this cache key made, in the store itself: another
        working directory sharing the store then finds them."""
        entry = {"outputs": {name: list(pair) for name, pair in sorted(outputs.items())}}
        self._write(key_name(cache_key), json.dumps(entry, sort_keys=True).encode())

    def recall(self, cache_key: str) -> Outputs | None:
        """The outputs remembered for this cache key; None when none are, or the entry is not
        one this store wrote (a step recomputed is the cost of a damaged index, never a
        wrong value: `get` checks each object anyway)."""
        try:
            entry = json.loads(self._read_bytes(key_name(cache_key)))
        except (OSError, ValueError):
            return None
        return outputs_in(entry)

    def _where(self, name: str) -> str:
        return str(self._folder / name)

    def _corrupt_path(self, name: str) -> Path | str:
        return self._folder / name

    def _read_bytes(self, name: str) -> bytes:
        return (self._folder / name).read_bytes()

    def _sha256_of(self, name: str) -> str:
        return file_sha256(self._folder / name)

    def _write(self, name: str, data: bytes) -> None:
        write_atomic(self._folder / name, data)


# Object stores where one upload appears whole or not at all (S3 and GCS PUTs, S3 multipart
# uploads): written in place. Elsewhere a write goes to a temp name, then is moved.
WHOLE_UPLOADS = frozenset({"s3", "s3a", "gs", "gcs"})


class FsspecStore(ArtifactStore):
    """The same layout under an fsspec URL (`s3://bucket/prefix`, `memory://name`, ...)."""

    def __init__(self, url: str) -> None:
        self.root = self.url = url.rstrip("/")
        self._pid = -1
        self._opened()  # now, so that a bad URL or a missing library fails here

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of this process."""
        return self._opened()[0]

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent to another process (a Dask worker) as its URL, opened there afresh."""
        return (open_store, (self.url,))

    def path(self, digest: str, fmt: str) -> Path:
        raise NotLocal(self.url)

    def _opened(self) -> tuple[Any, str]:
        """The filesystem and the root's path in it, made again in a forked child: s3fs
        refuses to be used by a process other than the one that made it."""
        if self._pid != os.getpid():
            # Only URL stores need fsspec: the folder store stays as fast as it was without it.
            from fsspec.core import url_to_fs

            fs, prefix = url_to_fs(self.url)
            self._filesystem: tuple[Any, str] = (fs, prefix.rstrip("/"))
            self._pid = os.getpid()
        return self._filesystem

    def _key(self, name: str) -> str:
        """The object's path as the filesystem names it: without the protocol."""
        return f"{self._opened()[1]}/{name}"

    def _where(self, name: str) -> str:
        return f"{self.url}/{name}"

    def _corrupt_path(self, name: str) -> Path | str:
        return self._where(name)

    def _read_bytes(self, name: str) -> bytes:
        data: bytes = self.fs.cat_file(self._key(name))
        return data

    def _sha256_of(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open(self._key(name), "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        return digest.hexdigest()

    def _write(self, name: str, data: bytes) -> None:
        fs, target = self.fs, self._key(name)
        if uploads_whole(fs):
            fs.pipe_file(target, data)
            return
        folder, _, base = target.rpartition("/")
        temp = f"{folder}/.{base}.{uuid.uuid4().hex}.tmp"
        fs.makedirs(folder, exist_ok=True)
        fs.pipe_file(temp, data)
        try:
            fs.mv(temp, target)
        finally:
            if fs.exists(temp):
                fs.rm_file(temp)


def uploads_whole(fs: Any) -> bool:
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & WHOLE_UPLOADS)


def object_name(digest: str, fmt: str) -> str:
    return f"{digest[:2]}/{digest}.{fmt}"


def key_name(cache_key: str) -> str:
    if not CACHE_KEY.fullmatch(cache_key):
        raise ValueError(f"{cache_key!r} is not a cache key: letters, digits, _ and - only")
    return f"keys/{cache_key[:2]}/{cache_key}.json"


def outputs_in(entry: Any) -> Outputs | None:
    """The outputs of an index entry, if it has the shape `remember` writes."""
    outputs = entry.get("outputs") if isinstance(entry, dict) else None
    if not isinstance(outputs, dict):
        return None
    if not all(
        isinstance(pair, list) and [type(p) for p in pair] == [str, str]
        for pair in outputs.values()
    ):
        return None
    return {name: (digest, fmt) for name, (digest, fmt) in outputs.items()}


def file_sha256(path: Path) -> str:
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
