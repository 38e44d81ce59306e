"""Adjustments for items the allocation intake has not passed on yet, through the real broker and
PostgreSQL.

Upstream publishes item master data (`inventory.items`) and adjustments (`inventory.adjustments`)
on two topics, and Kafka does not order across topics: a new item's first adjustment may be read
before its `UpsertItem`. The intake holds such an adjustment, publishing nothing, until it passes
the item's UpsertItem (the held adjustments follow it on `inventory.commands`, in order) or
`LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS` pass (then it goes on and is refused `UNKNOWN_ITEM`). R11:
a new item's beginning balance is decided as an adjustment of a known item, whichever topic is
read first.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest

from services.allocation.app import MIGRATIONS, SCHEMA, create_runtime
from services.allocation.intake import PgIntakeRepository, item_lock
from services.allocation.service import AllocationService
from shared import db
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import upstream as u
from shared.outbox import Outbox
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until
from tests.fixtures.locks import waits_for_a_lock

FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}


@asynccontextmanager
async def running(
    lotline_env: Callable[..., LotlineEnv],
    *,
    wait: float,
    before: Callable[[LotlineEnv], Any] | None = None,
) -> AsyncIterator[tuple[LotlineEnv, ServiceRuntime]]:
    """Allocation (with its intake) running on a fresh deployment; `before`: a coroutine
    function run on the environment before the service starts."""
    env = lotline_env(**FAST_JOIN, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS=str(wait))
    if before is not None:
        await before(env)
    runtime = create_runtime(env.settings)
    try:
        await runtime.start()
        yield env, runtime
    finally:
        await runtime.stop()


def adjustment(run: str, name: str, lic: str, kind: str, quantity: int) -> dict[str, Any]:
    return {
        "type": "AdjustInventory",
        "message_id": f"{name}-{run}",
        "adjustment_id": f"ADJ-{name}-{run}",
        "lic": lic,
        "office": "AI",
        "kind": kind,
        "quantity": quantity,
        "unit_cost": "1",
        "adjusted_on": "2026-11-01",
    }


def upsert_item(lic: str) -> dict[str, Any]:
    return {"type": "UpsertItem", "message_id": f"item-{lic}", "lic": lic, "est_unit_cost": "1"}


async def publish(env: LotlineEnv, topic: str, key: str, document: dict[str, Any]) -> None:
    await kafka_publish(env.bootstrap, topic, key, json.dumps(document).encode())


async def answers(env: LotlineEnv, lic: str, count: int, within: float = 30) -> list[Any]:
    """The first `count` events about `lic`, in published order."""

    def mine(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("lic") == lic]

    records = await kafka_read_until(
        env.bootstrap, env.settings.topics.events, lambda rs: len(mine(rs)) >= count, timeout=within
    )
    return mine(records)


async def query(env: LotlineEnv, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(env.dsn, server_settings={"search_path": SCHEMA})
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def held(env: LotlineEnv, lic: str, until: int | None = None) -> list[str]:
    """The command ids held for `lic`, in the order held; with `until`, waits for that many."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        rows = await query(
            env, "SELECT command_id FROM held_adjustments WHERE lic = $1 ORDER BY id", lic
        )
        if until is None or len(rows) == until:
            return [row["command_id"] for row in rows]
        assert loop.time() < deadline, f"{len(rows)} adjustments held for {lic}, never {until}"
        await asyncio.sleep(0.05)


async def test_adjustments_read_before_their_item_follow_it_once_it_is_passed(
    lotline_env: Any,
) -> None:
    async with running(lotline_env, wait=60) as (env, runtime):
        topics, run = env.settings.topics, uuid.uuid4().hex[:6]
        lic = f"NEW-{run}"
        # One key, one partition: the intake reads them in this order.
        first = adjustment(run, "bb", lic, "beginning_balance", 5)
        then = adjustment(run, "loss", lic, "loss", -2)
        await publish(env, topics.adjustments, lic, first)
        await publish(env, topics.adjustments, lic, then)
        assert await held(env, lic, until=2) == [f"adjustment:bb-{run}", f"adjustment:loss-{run}"]
        assert await runtime.measure_waiting() > 0  # a held adjustment is waiting

        await publish(env, topics.items, lic, upsert_item(lic))

        # Well within the wait: released by the item, not expired.
        events = await answers(env, lic, 3)
        assert [(v["type"], v["command_id"]) for v in events] == [
            ("ItemUpserted", f"item:item-{lic}"),
            ("InventoryAdjusted", f"adjustment:bb-{run}"),
            ("InventoryAdjusted", f"adjustment:loss-{run}"),
        ]
        commands = await kafka_read_until(
            env.bootstrap,
            topics.commands,
            lambda rs: sum(r.key == lic.encode() for r in rs) >= 3,
        )
        assert [
            (json.loads(r.value)["type"], dict(r.headers)["type"])
            for r in commands
            if r.key == lic.encode()
        ] == [
            ("UpsertItem", b"UpsertItem"),
            ("AdjustStock", b"AdjustStock"),
            ("AdjustStock", b"AdjustStock"),
        ]
        assert await held(env, lic) == []
        assert await runtime.measure_waiting() == 0
        assert await query(env, "SELECT 1 FROM intake_items WHERE lic = $1", lic)


async def test_an_adjustment_whose_item_never_comes_is_refused_after_the_wait(
    lotline_env: Any,
) -> None:
    async with running(lotline_env, wait=1) as (env, _):
        run = uuid.uuid4().hex[:6]
        lic = f"NEVER-{run}"
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await publish(
            env, env.settings.topics.adjustments, lic, adjustment(run, "bb", lic, "count", 3)
        )

        (refused,) = await answers(env, lic, 1)

        assert loop.time() - sent >= 1.0
        assert (refused["type"], refused["reason_code"], refused["offending"]) == (
            "CommandRejected",
            "UNKNOWN_ITEM",
            lic,
        )
        assert refused["command_id"] == f"adjustment:bb-{run}"
        assert await held(env, lic) == []


async def test_with_no_wait_an_adjustment_for_an_unknown_item_is_refused_at_once(
    lotline_env: Any,
) -> None:
    async with running(lotline_env, wait=0) as (env, _):
        run = uuid.uuid4().hex[:6]
        lic = f"NOWAIT-{run}"
        await publish(
            env, env.settings.topics.adjustments, lic, adjustment(run, "bb", lic, "count", 3)
        )

        (refused,) = await answers(env, lic, 1)

        assert (refused["type"], refused["reason_code"]) == ("CommandRejected", "UNKNOWN_ITEM")
        assert await query(env, "SELECT id FROM held_adjustments") == []  # never held


async def _an_item_from_before_the_upgrade(env: LotlineEnv) -> None:
    """Allocation's schema as it was before held adjustments, with one item in it."""
    files = [f for f in db.migration_files(MIGRATIONS) if f.name < "007_held_adjustments.sql"]
    await db.migrate(env.dsn, SCHEMA, files)
    await query(
        env,
        "INSERT INTO items (lic, description, uom, track_mfr_lot, serialized, perishable,"
        "   est_unit_cost) VALUES ('OLD', 'from before', 'EA', false, false, false, 1)",
    )


async def test_an_adjustment_for_a_known_item_is_not_held(lotline_env: Any) -> None:
    """Known: passed by the intake, or (after an upgrade) already in allocation's items."""
    async with running(lotline_env, wait=60, before=_an_item_from_before_the_upgrade) as (
        env,
        _,
    ):
        topics, run = env.settings.topics, uuid.uuid4().hex[:6]
        lic = f"KNOWN-{run}"
        await publish(env, topics.items, lic, upsert_item(lic))
        assert [v["type"] for v in await answers(env, lic, 1)] == ["ItemUpserted"]
        await publish(env, topics.adjustments, lic, adjustment(run, "bb", lic, "count", 3))
        await publish(env, topics.adjustments, "OLD", adjustment(run, "old", "OLD", "count", 4))

        # Answered well within the wait: never held.
        assert [v["type"] for v in await answers(env, lic, 2)] == [
            "ItemUpserted",
            "InventoryAdjusted",
        ]
        assert [v["type"] for v in await answers(env, "OLD", 1)] == ["InventoryAdjusted"]
        assert await query(env, "SELECT id FROM held_adjustments") == []


@pytest.fixture
async def pool(lotline_env: Any) -> AsyncIterator[tuple[LotlineEnv, asyncpg.Pool]]:
    env: LotlineEnv = lotline_env(topics=False, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="60")
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    try:
        yield env, pool
    finally:
        await pool.close()


async def test_an_item_passed_while_its_adjustment_is_being_held_releases_it(
    pool: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """Two allocation processes: one holds an adjustment for an unknown item while the other
    passes that item. The item's transaction waits for the adjustment's LIC lock, then finds
    the adjustment held and sends it right after the item (without the lock it would read
    nothing held, and the adjustment would wait out its deadline)."""
    env, db_pool = pool
    service = AllocationService(env.settings)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    adjust = u.AdjustInventory.model_validate(
        {**adjustment("r", "bb", "RACE", "beginning_balance", 5), "occurred_at": now}
    )
    item = u.UpsertItem.model_validate({**upsert_item("RACE"), "occurred_at": now})
    holding, passing = Outbox(), Outbox()
    async with db_pool.acquire() as first, first.transaction():
        await service.rekey_adjustments(
            UnitOfWork(cast(asyncpg.Connection, first), holding),
            [Inbound(adjust, "adjustments", 0, 0, None)],
        )
        assert holding.rows == []  # held, not sent

        async def pass_item() -> None:
            async with db_pool.acquire() as second, second.transaction():
                await service.rekey_items(
                    UnitOfWork(cast(asyncpg.Connection, second), passing),
                    [Inbound(item, "items", 0, 0, None)],
                )

        passed = asyncio.create_task(pass_item())
        watcher = await asyncpg.connect(env.dsn)  # the pool's two connections are in use
        try:
            await waits_for_a_lock(watcher)  # the item's transaction waits for the LIC's lock
        finally:
            await watcher.close()
        assert not passed.done()
    await asyncio.wait_for(passed, 10)

    assert [(row.key, json.loads(row.payload)["type"]) for row in passing.rows] == [
        (b"RACE", "UpsertItem"),
        (b"RACE", "AdjustStock"),
    ]
    assert await db_pool.fetch("SELECT id FROM held_adjustments") == []


async def test_a_later_adjustment_never_overtakes_one_held_for_the_same_item(
    pool: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """An item can reach allocation without this intake passing it (an older process, during
    an upgrade): a later adjustment for it then waits behind the one held, in order, instead
    of being decided first (a loss before the opening balance it needs: review, r1)."""
    env, db_pool = pool
    service = AllocationService(env.settings)
    now = datetime(2026, 11, 1, tzinfo=UTC)

    async def rekey(name: str, kind: str, quantity: int) -> Outbox:
        outbox = Outbox()
        message = u.AdjustInventory.model_validate(
            {**adjustment("r", name, "LATE", kind, quantity), "occurred_at": now}
        )
        async with db_pool.acquire() as conn, conn.transaction():
            await service.rekey_adjustments(
                UnitOfWork(cast(asyncpg.Connection, conn), outbox),
                [Inbound(message, "adjustments", 0, 0, None)],
            )
        return outbox

    assert (await rekey("bb", "beginning_balance", 5)).rows == []  # held: the item is unknown
    await db_pool.execute(
        "INSERT INTO items (lic, description, uom, track_mfr_lot, serialized, perishable,"
        "   est_unit_cost) VALUES ('LATE', 'passed elsewhere', 'EA', false, false, false, 1)"
    )
    assert (await rekey("loss", "loss", -2)).rows == []  # behind the held one

    held = await db_pool.fetch("SELECT command_id FROM held_adjustments ORDER BY id")
    assert [row["command_id"] for row in held] == ["adjustment:bb-r", "adjustment:loss-r"]


async def test_the_locks_the_consumer_takes_for_the_intake_are_the_ones_it_locks_with(
    pool: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """The intake's routes declare the LIC locks their handlers may take (`Route.locks`): an
    item's, and an adjustment's when its item is unknown (a known one stays known: never
    locked). The consumer takes both topics' at once, before either handler runs; for that they
    must be the very locks the intake tries (`expire`) and waits for (`lock_items`)."""
    env, db_pool = pool
    routes = {route.topic: route for route in create_runtime(env.settings).routes}
    topics = env.settings.topics
    now = datetime(2026, 11, 1, tzinfo=UTC)
    item = u.UpsertItem.model_validate({**upsert_item("ITEM"), "occurred_at": now})
    adjustments = [
        u.AdjustInventory.model_validate(
            {**adjustment("r", name, lic, "beginning_balance", 5), "occurred_at": now}
        )
        for name, lic in (("bb", "ADJUSTED"), ("known", "KNOWN"))
    ]
    items_locks, adjustments_locks = (routes[t].locks for t in (topics.items, topics.adjustments))
    assert items_locks is not None and adjustments_locks is not None
    await db_pool.execute("INSERT INTO intake_items (lic) VALUES ('KNOWN')")
    await db_pool.execute(
        "INSERT INTO held_adjustments (command_id, lic, command, held_at)"
        " VALUES ('c', 'ADJUSTED', '{}', now() - interval '1 hour')"
    )
    intake = PgIntakeRepository()
    async with db_pool.acquire() as first, first.transaction():
        conn = cast(asyncpg.Connection, first)
        declared = [*await items_locks(conn, [item]), *await adjustments_locks(conn, adjustments)]
        assert declared == [item_lock("ITEM"), item_lock("ADJUSTED")]
        await db.lock_names(conn, declared)
        async with db_pool.acquire() as second, second.transaction():
            other = cast(asyncpg.Connection, second)
            assert await intake.expire(other, 0, 10) == []  # due, but its LIC is locked
            await other.execute("SET LOCAL lock_timeout = '200ms'")
            with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                await intake.lock_items(other, ["ITEM"])
    async with db_pool.acquire() as proxy, proxy.transaction():
        # Free again once the first transaction ended.
        expired = await intake.expire(cast(asyncpg.Connection, proxy), 0, 10)
    assert [h.command_id for h in expired] == ["c"]


async def test_an_adjustment_with_bad_serials_waits_behind_one_held_for_its_item(
    pool: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """R5, R11: an adjustment whose serials do not parse carries its refusal to allocation, in
    the LIC's order. Read while an earlier adjustment of the item is held, it is held behind
    it, and both follow the item, in order: its refusal never answers before the earlier one."""
    env, db_pool = pool
    service = AllocationService(env.settings)
    now = datetime(2026, 11, 1, tzinfo=UTC)

    async def rekey(name: str, kind: str, quantity: int, **fields: Any) -> Outbox:
        outbox = Outbox()
        message = u.AdjustInventory.model_validate(
            {**adjustment("r", name, "BAD", kind, quantity), **fields, "occurred_at": now}
        )
        async with db_pool.acquire() as conn, conn.transaction():
            await service.rekey_adjustments(
                UnitOfWork(cast(asyncpg.Connection, conn), outbox),
                [Inbound(message, "adjustments", 0, 0, None)],
            )
        return outbox

    assert (await rekey("bb", "beginning_balance", 2)).rows == []
    assert (await rekey("loss", "loss", -1, serials="10...8")).rows == []  # held behind
    passing = Outbox()
    item = u.UpsertItem.model_validate({**upsert_item("BAD"), "occurred_at": now})
    async with db_pool.acquire() as conn, conn.transaction():
        await service.rekey_items(
            UnitOfWork(cast(asyncpg.Connection, conn), passing),
            [Inbound(item, "items", 0, 0, None)],
        )
    sent = [json.loads(row.payload) for row in passing.rows]
    assert [(m["type"], m.get("adjustment_id")) for m in sent] == [
        ("UpsertItem", None),
        ("AdjustStock", "ADJ-bb-r"),
        ("AdjustStock", "ADJ-loss-r"),
    ]
    assert sent[1]["refusal"] is None
    assert (
        sent[2]["serials"],
        sent[2]["refusal"]["reason_code"],
        sent[2]["refusal"]["offending"],
    ) == (
        [],
        "INVALID_SERIAL_SPAN",
        "10...8",
    )


async def test_a_held_adjustment_due_first_never_expires_ahead_of_an_earlier_one(
    pool: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """R11: `held_at` is when the holding transaction began, so one that began first but
    took the item's lock second holds the later adjustment with the older time. When only
    that one is due, the earlier one goes with it, first: never the later alone (refused
    UNKNOWN_ITEM while the earlier one stayed held and then followed the item: review)."""
    env, db_pool = pool
    service = AllocationService(env.settings)
    now = datetime(2026, 11, 1, tzinfo=UTC)

    def message(name: str, kind: str, quantity: int) -> u.AdjustInventory:
        return u.AdjustInventory.model_validate(
            {**adjustment("r", name, "ORDER", kind, quantity), "occurred_at": now}
        )

    async with db_pool.acquire() as first, first.transaction():  # begins first ...
        await asyncio.sleep(1.0)
        async with db_pool.acquire() as second, second.transaction():  # ... holds second
            await service.rekey_adjustments(
                UnitOfWork(cast(asyncpg.Connection, second), Outbox()),
                [Inbound(message("bb", "beginning_balance", 5), "adjustments", 0, 0, None)],
            )
        await service.rekey_adjustments(
            UnitOfWork(cast(asyncpg.Connection, first), Outbox()),
            [Inbound(message("loss", "loss", -2), "adjustments", 0, 0, None)],
        )
    ages = await db_pool.fetch(
        "SELECT extract(epoch FROM now() - held_at)::float8 AS age FROM held_adjustments"
        " ORDER BY id"
    )
    assert ages[1]["age"] > ages[0]["age"] + 0.5  # the later row looks held longer
    wait = (ages[0]["age"] + ages[1]["age"]) / 2  # due: the later row only
    async with db_pool.acquire() as conn, conn.transaction():
        expired = await PgIntakeRepository().expire(cast(asyncpg.Connection, conn), wait, 100)
    assert [h.command_id for h in expired] == ["adjustment:bb-r", "adjustment:loss-r"]
    assert await held(env, "ORDER") == []
