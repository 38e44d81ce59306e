"""Allocation's in-memory state cache never decides on rows the database does not hold: a state
enters it only after its transaction committed, and a partition assignment empties it, so a
LIC another process decided meanwhile is loaded again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import TopicPartition
from pydantic import TypeAdapter

from services.allocation.app import MIGRATIONS, SCHEMA, create_runtime
from services.allocation.repository import PgStateRepository
from services.allocation.service import AllocationService
from shared import db
from shared.consumer import Inbound, TransactionalConsumer, UnitOfWork
from shared.contracts.commands import Command
from shared.outbox import Outbox, OutboxRelay
from tests.fixtures.infra import LotlineEnv

COMMAND: TypeAdapter[Any] = TypeAdapter(Command)


class CountingRepository(PgStateRepository):
    """The real repository, remembering which LICs it had to load from the database."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    async def load(self, conn: asyncpg.Connection, lics: Any) -> Any:
        self.loaded += list(lics)
        return await super().load(conn, lics)


@pytest.fixture
async def setup(lotline_env: Any) -> AsyncIterator[tuple[LotlineEnv, asyncpg.Pool]]:
    env: LotlineEnv = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    try:
        yield env, pool
    finally:
        await pool.close()


def _command(lic: str, kind: str, **fields: Any) -> Inbound[Any]:
    body = {
        "type": kind,
        "message_id": f"{kind}-{uuid.uuid4().hex[:8]}",
        "occurred_at": "2026-11-01T10:00:00Z",
        "lic": lic,
        **fields,
    }
    return Inbound(COMMAND.validate_python(body), "commands", 0, 0, lic.encode())


def _stock(lic: str, quantity: int) -> list[Inbound[Any]]:
    return [
        _command(lic, "UpsertItem", est_unit_cost="1.00"),
        _command(
            lic,
            "ReceiveStock",
            shipment_id=f"PO-{lic}",
            line_no=1,
            lot_id=f"PO-{lic}/1",
            office="AI",
            received_on="2026-11-01",
            quantity=quantity,
        ),
    ]


def _allocate(lic: str, quantity: int) -> Inbound[Any]:
    return _command(
        lic,
        "AllocateLine",
        shipment_id=f"SO-{uuid.uuid4().hex[:6]}",
        line_no=1,
        office="AI",
        ship_on="2026-11-02",
        quantity=quantity,
        counterparty="C1",
    )


async def _decide(
    pool: asyncpg.Pool, service: AllocationService, batch: list[Inbound[Any]], *, commit: bool
) -> list[bytes]:
    """One unit of work as the consumer runs it; `commit=False` rolls it back instead."""
    outbox = Outbox()
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        tx = conn.transaction()
        await tx.start()
        uow = UnitOfWork(conn, outbox)
        await service.decide_batch(uow, batch)
        if commit:
            await tx.commit()
            for callback in uow.committed:
                callback()
        else:
            await tx.rollback()
    return [row.payload for row in outbox.rows]


def _types(payloads: list[bytes]) -> list[str]:
    import json

    return [json.loads(p)["type"] for p in payloads]


async def test_committed_state_is_reused_and_rolled_back_state_never_is(
    setup: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    env, pool = setup
    repository = CountingRepository()
    service = AllocationService(env.settings, repository)
    lic = f"CACHE-{uuid.uuid4().hex[:6]}"

    await _decide(pool, service, _stock(lic, 5), commit=True)
    assert repository.loaded == [lic]
    assert _types(await _decide(pool, service, [_allocate(lic, 1)], commit=True)) == [
        "LineAllocated"
    ]
    assert repository.loaded == [lic], "the committed state was taken from the cache"

    # Rolled back: the allocation of 3 never happened, so 4 are still free afterwards. The
    # state it was decided on left the cache with it (the consumer cannot always tell a
    # rollback from a commit whose answer was lost): the LIC is loaded once more.
    assert _types(await _decide(pool, service, [_allocate(lic, 3)], commit=False)) == [
        "LineAllocated"
    ]
    assert _types(await _decide(pool, service, [_allocate(lic, 4)], commit=True)) == [
        "LineAllocated"
    ]
    assert repository.loaded == [lic, lic]
    assert _types(await _decide(pool, service, [_allocate(lic, 1)], commit=True)) == [
        "CommandRejected"
    ]
    assert repository.loaded == [lic, lic], "the committed state was taken from the cache"


class _NoRelay:
    def wake(self) -> None:
        pass


def _allocation_process(env: LotlineEnv, pool: asyncpg.Pool) -> tuple[TransactionalConsumer, Any]:
    """Allocation as its composition root wires it (`create_runtime`): the consumer over the
    runtime's routes and the service behind its commands route."""
    runtime = create_runtime(env.settings)
    (commands,) = [r for r in runtime.routes if r.topic == env.settings.topics.commands]
    service = getattr(commands.handler, "__self__", None)
    assert isinstance(service, AllocationService)
    consumer = TransactionalConsumer(
        name=SCHEMA,
        routes=runtime.routes,
        pool=pool,
        relay=cast(OutboxRelay, _NoRelay()),
        schema=SCHEMA,
        settings=env.settings,
    )
    return consumer, service


async def test_assignment_forgets_states_another_process_changed(
    setup: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    env, pool = setup
    consumer, first = _allocation_process(env, pool)
    second = AllocationService(env.settings, CountingRepository())
    lic = f"MOVED-{uuid.uuid4().hex[:6]}"
    await _decide(pool, first, _stock(lic, 3), commit=True)
    assert len(first.cache) == 1, "the first process caches the LIC it decided"

    # The partition moves to the second process, which allocates everything.
    assert _types(await _decide(pool, second, [_allocate(lic, 3)], commit=True)) == [
        "LineAllocated"
    ]
    # It moves back: the consumer's claim of the assigned partition empties the first process's
    # cache, so the LIC is loaded with the second process's allocation and nothing is allocated
    # twice.
    await consumer.claim([TopicPartition(env.settings.topics.commands, 0)])
    assert len(first.cache) == 0
    assert _types(await _decide(pool, first, [_allocate(lic, 1)], commit=True)) == [
        "CommandRejected"
    ]
    async with pool.acquire() as conn:
        allocated = await conn.fetchval(
            "SELECT sum(allocated) FROM inventory_lots WHERE lic = $1", lic
        )
    assert allocated == 3


def test_cache_is_bounded_by_rows_least_recently_used_out() -> None:
    from services.allocation.cache import StateCache
    from services.allocation.domain.model import LicState

    cache = StateCache(max_rows=2)
    a, b, c = (LicState.empty(x) for x in "abc")
    cache.store({"a": a, "b": b})
    assert cache.take(["a"]) == ({"a": a}, [])
    assert cache.rows == 1, "a state taken to decide is out until its batch committed"
    cache.store({"a": a})  # committed: "a" is now the most recent
    cache.store({"c": c})
    found, missing = cache.take(["a", "b", "c"])
    assert found == {"a": a, "c": c} and missing == ["b"]
    assert cache.rows == 0


async def test_a_held_line_survives_a_rolled_back_confirm_and_a_restart(
    setup: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """The hold and its kept event are rows: a confirm that rolls back leaves both, and another
    process (an empty cache, as after a crash or a rebalance) confirms from the tables, publishing
    the very event the line was decided with."""
    env, pool = setup
    first = AllocationService(env.settings, CountingRepository())
    lic = f"HELD-{uuid.uuid4().hex[:6]}"
    held = _command(
        lic,
        "ReceiveStock",
        shipment_id=f"PO-{lic}",
        line_no=2,
        lot_id=f"PO-{lic}/2",
        office="AI",
        received_on="2026-11-01",
        quantity=4,
        hold=True,
    )
    item = _stock(lic, 1)[0]
    assert _types(await _decide(pool, first, [item, held], commit=True)) == [
        "ItemUpserted",
        "LineHeld",
    ]
    command_id = held.message.message_id
    confirm = _command(lic, "ConfirmHeld", command_id=command_id)
    (rolled_back,) = await _decide(pool, first, [confirm], commit=False)

    second = AllocationService(env.settings, CountingRepository())
    (published,) = await _decide(pool, second, [confirm], commit=True)
    assert published == rolled_back
    assert _types([published]) == ["StockReceived"]
    assert f'"message_id":"{command_id}#0"' in published.decode()
    assert _types(await _decide(pool, second, [_allocate(lic, 4)], commit=True)) == [
        "LineAllocated"
    ]
    again = _command(lic, "ConfirmHeld", command_id=command_id)
    assert _types(await _decide(pool, second, [again], commit=True)) == ["CommandRejected"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM held_events") == 0
        assert await conn.fetchval("SELECT count(*) FROM held_lines WHERE lic = $1", lic) == 0


async def test_a_confirmed_receipt_carries_the_next_serial_of_its_confirmation(
    setup: tuple[LotlineEnv, asyncpg.Pool],
) -> None:
    """Events go out in the LIC's order: a held line confirmed after another receipt handed out
    serials must not publish the Next Serial of before it (an upstream system following it
    would hand out taken serials again)."""
    import json

    env, pool = setup
    service = AllocationService(env.settings, CountingRepository())
    lic = f"GEN-{uuid.uuid4().hex[:6]}"

    def generated(shipment_id: str, hold: bool) -> Inbound[Any]:
        return _command(
            lic,
            "ReceiveStock",
            shipment_id=shipment_id,
            line_no=1,
            lot_id=f"{shipment_id}/1",
            office="AI",
            received_on="2026-11-01",
            quantity=2,
            generate_serials=True,
            hold=hold,
        )

    item = _command(lic, "UpsertItem", est_unit_cost="1", serialized=True, next_serial="SN-0001")
    held = generated(f"PO-A-{lic}", True)
    assert _types(await _decide(pool, service, [item, held], commit=True)) == [
        "ItemUpserted",
        "LineHeld",
    ]
    (other,) = await _decide(pool, service, [generated(f"PO-B-{lic}", False)], commit=True)
    assert json.loads(other)["next_serial"] == "SN-0005"
    confirm = _command(lic, "ConfirmHeld", command_id=held.message.message_id)
    (published,) = await _decide(pool, service, [confirm], commit=True)
    event = json.loads(published)
    assert event["generated_serials"] == ["SN-0001", "SN-0002"]
    assert event["next_serial"] == "SN-0005"
