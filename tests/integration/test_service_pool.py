"""The service runtime (shared/service.py) against the real broker and PostgreSQL: a runtime as
a service builds it, messages published as an upstream would, its periodic jobs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from pydantic import TypeAdapter

from shared.consumer import Inbound, UnitOfWork
from shared.contracts.upstream import ItemMessage, UpsertItem
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv, kafka_publish

SCHEMA = "runtime_test"


def _runtime(env: LotlineEnv, migrations: Path) -> ServiceRuntime:
    """A service that records each item's LIC and emits an event for it (an outbox row)."""
    events = env.settings.topics.events

    async def _record_lics(uow: UnitOfWork, batch: list[Inbound[UpsertItem]]) -> None:
        for inbound in batch:
            await uow.conn.execute("INSERT INTO seen (lic) VALUES ($1)", inbound.message.lic)
            uow.outbox.emit(events, inbound.message.lic, inbound.message)

    (migrations / "001_seen.sql").write_text("CREATE TABLE seen (lic text NOT NULL);")
    runtime = ServiceRuntime(env.settings, schema=SCHEMA, migrations=migrations)
    runtime.consume(
        name="items",
        topic=env.settings.topics.items,
        adapter=TypeAdapter(ItemMessage),
        handler=_record_lics,
    )
    return runtime


@contextlib.asynccontextmanager
async def _running(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    await asyncio.wait_for(runtime.start(), 60)
    try:
        yield runtime
    finally:
        try:
            await asyncio.wait_for(runtime.stop(), 30)
        except TimeoutError:
            # A runtime that cannot stop (its consumer stuck): end it, so the test fails
            # instead of hanging the session.
            if runtime.relay is not None and runtime.relay._task is not None:
                runtime.relay._task.cancel()
            if runtime.pool is not None:
                runtime.pool.terminate()
            raise


async def _seen(env: LotlineEnv, lics: list[str], timeout: float) -> list[str]:
    """The LICs the service recorded, read on a connection of the test's own."""
    conn = await asyncpg.connect(
        env.settings.require_database(), server_settings={"search_path": SCHEMA}
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = [r["lic"] for r in await conn.fetch("SELECT lic FROM seen ORDER BY lic")]
            if seen == lics or loop.time() > deadline:
                return seen
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


@pytest.mark.parametrize("pool_size", ["1", "2"])
async def test_a_service_with_the_smallest_pool_the_settings_allow_still_consumes(
    lotline_env: Callable[..., LotlineEnv], tmp_path: Path, pool_size: str
) -> None:
    """DB_POOL_SIZE=1 is a documented, accepted setting ("at least 1"). The outbox relay holds
    a connection for as long as it leads (its lease is a session-level lock), or waits for
    the lease: it must not take the one connection the consumer needs, or nothing is read."""
    env = lotline_env(DB_POOL_SIZE=pool_size)
    runtime = _runtime(env, tmp_path)
    async with _running(runtime):
        body = {"type": "UpsertItem", "message_id": "m1", "lic": "A"}
        await kafka_publish(
            env.settings.require_bootstrap(),
            env.settings.topics.items,
            "A",
            json.dumps(body).encode(),
        )
        assert await _seen(env, ["A"], timeout=20) == ["A"]


async def test_a_periodic_job_whose_round_was_full_runs_again_at_once(
    lotline_env: Callable[..., LotlineEnv], tmp_path: Path
) -> None:
    """`ServiceRuntime.every`: a round that returns True (it took its most, more is due: held
    documents past their wait) is followed at once by the next, not an interval later; one
    that returns nothing waits the interval."""
    env = lotline_env()
    runtime = _runtime(env, tmp_path)
    rounds: list[float] = []
    interval = 3.0

    async def backlog(uow: UnitOfWork) -> bool:
        rounds.append(asyncio.get_running_loop().time())
        await uow.conn.execute("SELECT 1")
        return len(rounds) < 4  # three full rounds, then the backlog is gone

    runtime.every(interval, backlog)
    async with _running(runtime):
        await asyncio.sleep(interval + 1.5)
        assert len(rounds) == 4, rounds  # an interval per round would have run one
        assert rounds[-1] - rounds[0] < interval
