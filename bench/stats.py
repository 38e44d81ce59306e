"""Small statistics helpers: percentiles and rates."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """p50/p95/p99/max of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": _round(percentile(ms, 50)),
        "p95_ms": _round(percentile(ms, 95)),
        "p99_ms": _round(percentile(ms, 99)),
        "max_ms": _round(max(ms) if ms else None),
    }


def rate(count: int, seconds: float) -> float | None:
    """Events per second, None when the interval is empty."""
    if count <= 0 or seconds <= 0:
        return None
    return count / seconds


def span_rate(times: Sequence[float]) -> float | None:
    """Sustained rate of events at `times`: the events after the first instant over
    first→last. Events stamped in batches share an instant: the first batch was produced
    before the span began, so it is not counted (for distinct instants: n - 1 intervals)."""
    if len(times) < 2:
        return None
    ordered = sorted(times)
    return rate(sum(1 for t in ordered if t > ordered[0]), ordered[-1] - ordered[0])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
