"""A cheap digest of a value in memory, to tell whether a step changed one of its inputs in
place: arrays and frames are hashed by their contents, anything else by its pickle, whose
large buffers (a model's arrays) are hashed where they lie rather than copied."""

from __future__ import annotations

import hashlib
import pickle
import sys
from collections.abc import Callable
from typing import Any

# Values of these types cannot change in place; checking them would only cost time.
IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, range, frozenset)


def can_change(value: Any) -> bool:
    """False for values no step can change in place (numbers, strings, tuples of those)."""
    if isinstance(value, tuple):
        return any(can_change(item) for item in value)
    return not isinstance(value, IMMUTABLE)


def fingerprint(value: Any) -> str | None:
    """The digest of what the value holds now; None when it cannot be taken (the value cannot
    be serialised), so no change can be seen."""
    digest = _array_digest(value) or _frame_digest(value)
    if digest is not None:
        return digest
    for dumps in (pickle.dumps, _cloudpickle_dumps):
        try:
            return _pickle_digest(value, dumps)
        except Exception:  # the value's own pickling failed; by value, or not at all
            continue
    return None


def _pickle_digest(value: Any, dumps: Callable[..., bytes]) -> str:
    buffers: list[pickle.PickleBuffer] = []
    digest = hashlib.sha256(dumps(value, protocol=5, buffer_callback=buffers.append))
    for buffer in buffers:
        digest.update(buffer.raw())
    return digest.hexdigest()


def _cloudpickle_dumps(value: Any, **options: Any) -> bytes:
    """Classes and functions the notebook defined pickle by value only."""
    import cloudpickle

    data: bytes = cloudpickle.dumps(value, **options)
    return data


def _array_digest(value: Any) -> str | None:
    np = sys.modules.get("numpy")
    if np is None or not isinstance(value, np.ndarray) or value.dtype.hasobject:
        return None
    header = f"{value.dtype.str}{value.shape}".encode()
    return hashlib.sha256(header + np.ascontiguousarray(value).tobytes()).hexdigest()


def _frame_digest(value: Any) -> str | None:
    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(value, (pd.DataFrame, pd.Series)):
        return None
    try:
        rows = pd.util.hash_pandas_object(value, index=True).to_numpy()
    except TypeError:  # cells pandas cannot hash (lists, dicts): serialise instead
        return None
    labels = list(value.columns) if isinstance(value, pd.DataFrame) else value.name
    shape = repr((labels, value.dtypes)).encode()
    return hashlib.sha256(shape + rows.tobytes()).hexdigest()
