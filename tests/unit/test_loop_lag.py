"""`lotline_event_loop_lag_seconds`: how long work held a service's event loop (the consumers'
heartbeats, the relay and the read API wait as long)."""

from __future__ import annotations

import asyncio
import time

from shared.service import LOOP_LAG, watch_loop_lag


def _observed(service: str) -> tuple[float, float]:
    """(count, sum) of the service's observations so far."""
    values = {
        sample.name: sample.value
        for metric in LOOP_LAG.collect()
        for sample in metric.samples
        if sample.labels.get("service") == service and sample.name.endswith(("_count", "_sum"))
    }
    return values.get("lotline_event_loop_lag_seconds_count", 0.0), values.get(
        "lotline_event_loop_lag_seconds_sum", 0.0
    )


async def test_work_that_holds_the_loop_is_observed_as_lag() -> None:
    watcher = asyncio.create_task(watch_loop_lag("lag-test", every=0.02))
    try:
        await asyncio.sleep(0.1)  # an idle loop: timers run about on time
        count_idle, sum_idle = _observed("lag-test")
        time.sleep(0.3)  # noqa: ASYNC251 - the point: work that holds the loop
        await asyncio.sleep(0.1)
        count, total = _observed("lag-test")
    finally:
        watcher.cancel()
    assert count_idle >= 1
    assert count > count_idle
    assert total - sum_idle >= 0.25  # the timer due during the hold ran that much late
