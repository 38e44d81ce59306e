"""`shared.offload.compute`: heavy pure work runs in a worker thread while the event loop goes
on (the consumers' heartbeats, the relay, the read API); light work runs right away."""

from __future__ import annotations

import asyncio
import threading

from shared.offload import HEAVY, compute


async def test_light_work_runs_at_once_on_the_loops_thread() -> None:
    ran_on: list[int] = []
    result = await compute(lambda: ran_on.append(threading.get_ident()) or 7, weight=HEAVY - 1)
    assert result == 7
    assert ran_on == [threading.get_ident()]


async def test_heavy_work_runs_in_a_thread_while_the_loop_goes_on() -> None:
    """The work waits for something only another task of the loop does: on the loop's own
    thread it would wait for ever (here: until its timeout, and fail)."""
    loop_ran = threading.Event()
    ran_on: list[int] = []

    def work() -> bool:
        ran_on.append(threading.get_ident())
        return loop_ran.wait(timeout=10)

    async def other_task() -> None:
        await asyncio.sleep(0.01)
        loop_ran.set()

    task = asyncio.create_task(other_task())
    assert await compute(work, weight=HEAVY) is True
    await task
    assert ran_on and ran_on != [threading.get_ident()]
