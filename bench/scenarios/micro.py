"""Scenario 6: the pure cores alone, in memory, in this process.

- the allocation domain core (`services.allocation.domain.bench_core.measure`): decisions/s of
  `decide()` over its mixed workload (plain, lot-tracked perishable, serialized), compared with
  the one-hop pipeline ceiling (how much of a partition's budget the decisions themselves take);
- the serial entry parser (`shared.serials.parse_serials`): serials/s for one span and for one
  comma-separated list of the same size, compared with COPY rows/s (each serial becomes a row).

Both also report CPU-time rates: on a shared machine wall-clock rates include other processes.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable
from typing import TypeVar

from bench.report import ScenarioResult
from bench.scenarios import Context
from bench.sizes import Sizes

T = TypeVar("T")


def steps(_sizes: Sizes) -> int:
    return 2


def _timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """What `work()` returned, and the wall and CPU (this thread) seconds it took."""
    wall, cpu = time.perf_counter(), time.thread_time()
    value = work()
    return value, time.perf_counter() - wall, time.thread_time() - cpu


async def run(ctx: Context, result: ScenarioResult) -> None:
    from services.allocation.domain import bench_core
    from shared.serials import parse_serials

    n = ctx.sizes.micro_decisions
    ctx.progress.step("micro: allocation core")
    wall_rate = await asyncio.to_thread(bench_core.measure, n)
    cpu_rate: float | None = None
    if "clock" in inspect.signature(bench_core.measure).parameters:
        cpu_rate = await asyncio.to_thread(
            functools.partial(bench_core.measure, n, clock=time.process_time)
        )
    note = f"{n:,} commands (bench_core.measure)"
    if cpu_rate is not None:
        note += f"; {cpu_rate:,.0f}/s of CPU time"
    result.figure(
        "allocation core decisions", wall_rate, "decisions/s", ceiling="pipeline_msgs_s", note=note
    )
    result.details["allocation_core"] = {
        "commands": n,
        "wall_rate": wall_rate,
        "cpu_rate": cpu_rate,
    }

    ctx.progress.step("micro: serial parser")
    count = ctx.sizes.micro_serials
    span = f"SN{1:07d}...SN{count:07d}"
    listed = ",".join(f"SN{i:07d}" for i in range(1, count + 1))
    for label, entry in (("span", span), ("list", listed)):
        parse = functools.partial(parse_serials, entry, max_span=count, max_serials=count)
        parsed, wall, cpu = await asyncio.to_thread(_timed, parse)
        if len(parsed) != count:
            raise RuntimeError(f"serial parser: {label} gave {len(parsed)} serials, not {count}")
        result.figure(
            f"serial parser ({label} of {count:,})",
            count / wall,
            "serials/s",
            ceiling="copy_rows_s",
            note=f"{count / cpu:,.0f}/s of CPU time",
        )
        result.details[f"parser_{label}"] = {"serials": count, "wall_s": wall, "cpu_s": cpu}
