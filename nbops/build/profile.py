"""Reference profiles: what an endpoint's inputs and outputs look like on representative rows.

Pure: rows in, a JSON-ready profile out. The build stores one per endpoint tagged
`reference=`; the generated service holds a verbatim copy of this module (`service/profile.py`),
bins each request's values with `binner` and compares its window with the reference through
`psi`. So it imports only the standard library at the top: pandas and numpy are imported only
when a profile is made.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

BINS = 10
TOP_CATEGORIES = 20
OTHER = "__other__"
SAMPLE = 250  # rows the serve function is called on, at most: each call costs a model call
SEED = 0
EPSILON = 1e-4  # the share an empty bin counts as in the PSI, so its logarithm is finite
DIGITS = 6  # shares are rounded, so the same rows give the same bytes on every machine
NUMERIC = "numeric"
CATEGORICAL = "categorical"
NO_BIN = -1  # what `binner` gives for a value of a field with no bins


@dataclass(frozen=True)
class FieldProfile:
    """One field: numeric bins (`edges`, one more than `shares`) or categories (`categories`,
    `__other__` last), the reference's share of its present values per bin, and how many
    values were missing."""

    name: str
    kind: str
    count: int
    missing_rate: float
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (NUMERIC, CATEGORICAL):
            raise ValueError(f"field {self.name!r} has kind {self.kind!r}")
        bins = len(self.edges) - 1 if self.kind == NUMERIC else len(self.categories)
        if self.shares and len(self.shares) != bins:
            raise ValueError(f"field {self.name!r} has {len(self.shares)} shares for {bins} bins")

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "missing_rate": self.missing_rate,
            "shares": list(self.shares),
        }
        if self.kind == NUMERIC:
            found["edges"] = list(self.edges)
        else:
            found["categories"] = list(self.categories)
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldProfile:
        return cls(
            name=data["name"],
            kind=data["kind"],
            count=data["count"],
            missing_rate=data["missing_rate"],
            shares=tuple(data["shares"]),
            edges=tuple(data.get("edges", ())),
            categories=tuple(data.get("categories", ())),
        )


@dataclass(frozen=True)
class Profile:
    """An endpoint's reference profile: its input fields on `rows` reference rows, and its
    outputs on the `sampled` rows it was called on."""

    rows: int
    sampled: int
    inputs: tuple[FieldProfile, ...]
    outputs: tuple[FieldProfile, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "sampled": self.sampled,
            "inputs": [f.as_dict() for f in self.inputs],
            "outputs": [f.as_dict() for f in self.outputs],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"


def reference_profile(
    rows: Any,
    fields: Sequence[str] | None,
    call: Callable[[dict[str, Any]], Any] | None = None,
    *,
    calls: Callable[[list[dict[str, Any]]], list[Any]] | None = None,
    sample: int = SAMPLE,
    seed: int = SEED,
) -> Profile:
    """The profile of `fields` (all columns when None) of `rows` (a DataFrame, or a list or dict
    of records), and of what `call` returns for each of up to `sample` seeded rows (or `calls`
    for all of them at once, a batch function's way)."""
    frame = as_frame(rows)
    names = list(fields) if fields is not None else [str(c) for c in frame.columns]
    absent = [name for name in names if name not in frame.columns]
    if absent:
        have, missing = ", ".join(map(str, frame.columns)), ", ".join(absent)
        raise ValueError(f"the reference rows have no column {missing} (they have {have})")
    inputs = tuple(field_profile(name, frame[name]) for name in names)
    if calls is None and call is not None:
        calls = partial(_each, call)
    if calls is None:
        return Profile(len(frame), 0, inputs, ())
    picked = sample_rows(frame[names], sample, seed)
    outputs = output_frame(calls(picked.to_dict(orient="records")))
    profiles = tuple(field_profile(str(name), outputs[name]) for name in outputs.columns)
    return Profile(len(frame), len(picked), inputs, profiles)


def _each(call: Callable[[dict[str, Any]], Any], records: list[dict[str, Any]]) -> list[Any]:
    return [call(record) for record in records]


def as_frame(rows: Any) -> Any:
    """A DataFrame of `rows`: a DataFrame itself, records, or a dict of columns or records."""
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        return rows.reset_index(drop=True)
    if isinstance(rows, Mapping) and rows and all(isinstance(v, Mapping) for v in rows.values()):
        return pd.DataFrame(list(rows.values()))
    return pd.DataFrame(rows)


def sample_rows(frame: Any, size: int, seed: int) -> Any:
    """Up to `size` rows, picked by a seeded generator and kept in their order."""
    import numpy as np

    if len(frame) <= size:
        return frame
    picked = np.sort(np.random.default_rng(seed).choice(len(frame), size=size, replace=False))
    return frame.iloc[picked].reset_index(drop=True)


def output_frame(results: list[Any]) -> Any:
    """What the serve function returned, one row per call: a dict's scalar values by key, or
    the value itself as `output`."""
    import pandas as pd

    records = [
        {k: v for k, v in r.items() if _is_scalar(v)} if isinstance(r, Mapping) else {"output": r}
        for r in results
    ]
    frame = pd.DataFrame(records)
    return frame[[c for c in frame.columns if frame[c].map(_is_scalar).all()]]


def field_profile(name: str, values: Any) -> FieldProfile:
    """Quantile bins for a numeric column (not bool), category shares for any other."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    present = values.dropna()
    missing = _rounded((len(values) - len(present)) / len(values)) if len(values) else 0.0
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        edges = numeric_edges([float(v) for v in present])
        field = FieldProfile(name, NUMERIC, len(values), missing, (), edges=edges)
    else:
        counts = pd.Series([_label(v) for v in present], dtype=object).value_counts()
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        categories = (*(str(c) for c, _ in ranked[:TOP_CATEGORIES]), OTHER)
        field = FieldProfile(name, CATEGORICAL, len(values), missing, (), categories=categories)
    counts_, _ = bin_counts(field, present.tolist())
    total = sum(counts_)
    shares = tuple(_rounded(c / total) for c in counts_) if total else ()
    return FieldProfile(
        name, field.kind, field.count, missing, shares, field.edges, field.categories
    )


def numeric_edges(values: Sequence[float], bins: int = BINS) -> tuple[float, ...]:
    """The reference's quantiles at 0, 1/bins, ..., 1, each once."""
    import numpy as np

    if not values:
        return ()
    quantiles = np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, bins + 1))
    edges = tuple(dict.fromkeys(float(f"{q:.12g}") for q in quantiles))  # no 1.2000000000000002
    return edges if len(edges) > 1 else (edges[0], edges[0])


def bin_counts(field: FieldProfile, values: Iterable[Any]) -> tuple[list[int], int]:
    """How many of `values` fall in each of the field's bins, and how many are missing. A
    number outside the reference's range counts in the first or last bin, an unseen category
    in `__other__`, a value that is no number in a numeric field as missing."""
    place = binner(field)
    counts = [0] * bin_total(field)
    missing = 0
    for value in values:
        index = place(value)
        if index is None:
            missing += 1
        elif index != NO_BIN:
            counts[index] += 1
    return counts, missing


def bin_total(field: FieldProfile) -> int:
    """How many bins the field has: one fewer than its edges, or one per category."""
    return max(len(field.edges) - 1, 0) if field.kind == NUMERIC else len(field.categories)


def binner(field: FieldProfile) -> Callable[[Any], int | None]:
    """The bin of one value of the field: its index, None when the value is missing, or
    `NO_BIN` for a numeric field the reference had no values of. The edges and the categories'
    index are worked out here, once, so a service can call it on every request: plain Python,
    well under a microsecond."""
    if field.kind == NUMERIC:
        inner, has_bins = field.edges[1:-1], len(field.edges) > 1

        def numeric(value: Any) -> int | None:
            if value is None:
                return None
            try:
                number = float(value)
            except (TypeError, ValueError):
                return None
            if math.isnan(number):
                return None
            return bisect.bisect_right(inner, number) if has_bins else NO_BIN

        return numeric
    index, other = {c: i for i, c in enumerate(field.categories)}, len(field.categories) - 1

    def categorical(value: Any) -> int | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return index.get(_label(value), other)

    return categorical


def psi(reference: Sequence[float], window: Sequence[float], epsilon: float = EPSILON) -> float:
    """The population stability index of `window` (shares or counts, normalised here) against
    `reference` shares: 0 for the same distribution, above 0.25 for a large shift."""
    if len(reference) != len(window):
        raise ValueError(f"{len(reference)} reference bins against {len(window)} window bins")
    total = sum(window)
    if not total:
        return 0.0
    score = 0.0
    for expected, seen in zip(reference, window, strict=True):
        e, w = max(expected, epsilon), max(seen / total, epsilon)
        score += (w - e) * math.log(w / e)
    return score


def _label(value: Any) -> str:
    return str(value.item() if hasattr(value, "item") else value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str)) or hasattr(value, "item")


def _rounded(share: float) -> float:
    return round(share, DIGITS)
