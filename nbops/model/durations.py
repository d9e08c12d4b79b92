"""Durations as people write them (`30s`, `1h30m`, `500ms`): parsed to seconds and back."""

from __future__ import annotations

import math
import re

# Milliseconds per unit, largest first: a duration gives each unit at most once, in this order.
UNITS: dict[str, int] = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
ACCEPTED = "30s, 2m, 1h, 1h30m, 500ms, 1.5h, or a bare number of seconds"

NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
BARE = re.compile(rf"^{NUMBER}$")
PART = re.compile(rf"({NUMBER})(ms|h|m|s)")


def parse_duration(text: str) -> float:
    """Seconds in `text`: `30s`, `2m`, `1h`, `1h30m`, `500ms`, `1.5h`; a bare number is seconds.

    Raises ValueError, naming the accepted forms, for anything else and for durations that
    are not positive.
    """
    written = text.strip()
    millis = float(written) * 1000 if BARE.match(written) else _unit_millis(written)
    if millis is None or not millis > 0 or not math.isfinite(millis):
        raise ValueError(f"{text!r} is not a positive duration (accepted forms: {ACCEPTED})")
    return millis / 1000


def _unit_millis(text: str) -> float | None:
    """Milliseconds in `1h30m`-style text, or None when it is not one."""
    total, rank, position = 0.0, -1, 0
    order = list(UNITS)
    for match in PART.finditer(text):
        unit = match[2]
        if match.start() != position or order.index(unit) <= rank:
            return None
        total += float(match[1]) * UNITS[unit]
        rank, position = order.index(unit), match.end()
    return total if position and position == len(text) else None


def format_duration(seconds: float) -> str:
    """The compact form of a duration (`90` -> `1m30s`), to the millisecond, at least `1ms`.

    parse_duration reads it back: to the same value for any whole number of milliseconds.
    """
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"a duration is a positive number of seconds, not {seconds!r}")
    left = max(1, round(seconds * 1000))
    parts: list[str] = []
    for unit, size in UNITS.items():
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
