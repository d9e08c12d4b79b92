"""A cheap digest of a value in memory, to tell whether a step changed one of its inputs in
place: arrays and frames are hashed by their contents, anything else by the store's bytes."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from nbops.run.store import serialise

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
    try:
        data, _ = serialise(value)
    except Exception:  # the value's own pickling failed: nothing to compare
        return None
    return hashlib.sha256(data).hexdigest()


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
