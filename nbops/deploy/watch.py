"""The watch policy of a promoted version, and the judgement of its figures against it.

Pure: figures in (what the proxy saw of each version's requests, what the version's own
/monitoring says of drift), a verdict out. The supervisor (nbops.deploy.supervisor) applies it:
a breach while a version is `watching` rolls it back; after the bake period it is `stable`,
and a later breach only marks it `degraded`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from nbops.model.durations import parse_duration

WATCH_ENV = "NBOPS_WATCH"
WATCHING = "watching"
STABLE = "stable"
DEGRADED = "degraded"
DEFAULT_WATCH_S = 180.0
DEFAULT_MAX_ERROR_RATE = 0.02
DEFAULT_MAX_P99_RATIO = 2.0
DEFAULT_MAX_DRIFT = 0.25
# Requests a version must have answered in the window before its error rate or latency is
# judged: one failure in the first ten requests is not a 10% error rate.
MIN_REQUESTS = 50
# Latencies below this count as this much in the p99 ratio: a fast service's p99 over a few
# dozen requests is mostly its slowest first calls (a new process warming up: 37 ms against
# 6 ms was seen), which is not the slowdown the ratio is for.
P99_FLOOR_MS = 50.0


@dataclass(frozen=True)
class Policy:
    """How long a version is watched after its promotion, and what rolls it back."""

    watch_s: float = DEFAULT_WATCH_S
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    max_p99_ratio: float = DEFAULT_MAX_P99_RATIO
    max_drift: float = DEFAULT_MAX_DRIFT
    # Percent of requests sent to the new version during the watch; None: all of them.
    canary: int | None = None
    min_requests: int = MIN_REQUESTS

    @classmethod
    def default(cls) -> Policy:
        """The default policy, its bake period from NBOPS_WATCH when set (`0` turns it off)."""
        written = os.environ.get(WATCH_ENV, "").strip()
        return cls(watch_s=parse_watch(written)) if written else cls()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Policy:
        return cls(**json.loads(text)) if text else cls()

    def describe(self) -> str:
        parts = [
            f"error rate > {percent(self.max_error_rate)}",
            f"p99 > {self.max_p99_ratio:g}x the previous version's",
            f"drift > {self.max_drift:g}",
        ]
        return " or ".join(parts)


@dataclass(frozen=True)
class Figures:
    """What one version did in the recent window: from the proxy (requests, errors, p99) and
    from its own /monitoring (the largest input or output drift, and which field)."""

    requests: int = 0
    errors: int = 0
    p99_ms: float | None = None
    drift: float | None = None
    drift_field: str | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": self.error_rate}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Figures | None:
        if not data:
            return None
        known = {k: data.get(k) for k in ("requests", "errors", "p99_ms", "drift", "drift_field")}
        return cls(**{k: v for k, v in known.items() if v is not None})


@dataclass(frozen=True)
class Breach:
    """Why the figures cross the policy: which threshold, in words with both figures."""

    what: str  # error-rate | p99 | drift
    reason: str


def judge(policy: Policy, new: Figures, baseline: Figures | None) -> Breach | None:
    """The first threshold `new` crosses, or None. The p99 is compared with `baseline` (the
    previous version's figures: on the same traffic during a canary, else as last recorded);
    error rate and latency only once enough requests were answered."""
    rate = new.error_rate if new.requests >= policy.min_requests else None
    if rate is not None and rate > policy.max_error_rate:
        return Breach(
            "error-rate",
            f"error rate {percent(rate)} ({new.errors} of {new.requests} requests "
            f"answered 5xx) > {percent(policy.max_error_rate)} (--max-error-rate)",
        )
    ratio = p99_ratio(new, baseline, policy.min_requests)
    if ratio is not None and ratio > policy.max_p99_ratio:
        assert new.p99_ms is not None and baseline is not None and baseline.p99_ms is not None
        return Breach(
            "p99",
            f"p99 latency {new.p99_ms:.1f} ms is {ratio:.1f}x the previous version's "
            f"{baseline.p99_ms:.1f} ms > {policy.max_p99_ratio:g}x (--max-p99-ratio)",
        )
    if new.drift is not None and new.drift > policy.max_drift:
        field = f" of {new.drift_field}" if new.drift_field else ""
        return Breach(
            "drift",
            f"drift{field} {new.drift:.3f} (PSI against the build's reference) > "
            f"{policy.max_drift:g} (--max-drift)",
        )
    return None


def p99_ratio(new: Figures, baseline: Figures | None, min_requests: int) -> float | None:
    """new p99 / baseline p99 (each at least P99_FLOOR_MS), when both saw enough requests."""
    if baseline is None or new.p99_ms is None or baseline.p99_ms is None:
        return None
    if new.requests < min_requests or baseline.requests < min_requests:
        return None
    return max(new.p99_ms, P99_FLOOR_MS) / max(baseline.p99_ms, P99_FLOOR_MS)


def drift_of(monitoring: dict[str, Any] | None) -> tuple[float | None, str | None]:
    """The largest drift score a service's /monitoring reports over its routes' inputs and
    outputs, and the field it belongs to; (None, None) while it has too few requests."""
    worst: tuple[float | None, str | None] = (None, None)
    for route in (monitoring or {}).get("routes", []):
        for field in [*route.get("inputs", []), *route.get("outputs", [])]:
            score = field.get("psi")
            known = isinstance(score, (int, float)) and math.isfinite(score)
            if known and (worst[0] is None or score > worst[0]):
                worst = (float(score), str(field.get("name")))
    return worst


def percent(share: float) -> str:
    return f"{share * 100:.3g}%"


def parse_share(text: str) -> float:
    """A share as people write it: `2%`, or `0.02`; between 0 and 1."""
    written = text.strip()
    try:
        share = float(written[:-1]) / 100 if written.endswith("%") else float(written)
    except ValueError:
        raise ValueError(f"{text!r} is not a share (write 2% or 0.02)") from None
    if not 0 <= share <= 1:
        raise ValueError(f"{text!r} is not between 0% and 100%")
    return share


def parse_canary(text: str) -> int:
    """The canary's percent of requests, `10%` or `10`: a whole number from 1 to 99."""
    written = text.strip().removesuffix("%")
    if not written.isdigit() or not 1 <= int(written) <= 99:
        raise ValueError(f"{text!r} is not a canary share (a whole percent from 1% to 99%)")
    return int(written)


def parse_watch(text: str) -> float:
    """The bake period: a duration (`5m`, `90s`), or `0` for no watch."""
    return 0.0 if text.strip() in ("0", "0s", "off") else parse_duration(text)
