"""Shipping and the ledger read two topics in one transaction, and each topic's handler locks
what it touches: shipping the shipments (rows), the ledger the LICs (advisory locks). Taken
topic by topic, two processes whose batches name the same two in opposite orders would each
hold one and wait for the other's (PostgreSQL ends one after a second: a deadlock). So each
route declares what its handler locks (`Route.locks`) and the service's `lock` takes both
topics' at once, before either handler runs (the consumer's side is tested in
test_consumer.py). Here: what the routes declare, taken by the service's `lock`, is exactly
what the handlers then wait for."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition

from services.ledger import repository as ledger_repository
from services.ledger.app import create_runtime as ledger
from services.receiving.app import MIGRATIONS as RECEIVING_MIGRATIONS
from services.receiving.app import SCHEMA as RECEIVING
from services.receiving.app import create_runtime as receiving
from services.receiving.repository import PgReceivingRepository, item_lock
from services.receiving.service import ReceivingService
from services.shipping.app import MIGRATIONS, SCHEMA
from services.shipping.app import create_runtime as shipping
from services.shipping.repository import PgShippingRepository
from shared import db
from shared.consumer import TransactionalConsumer
from shared.contracts import events as e
from shared.contracts import upstream as u
from shared.contracts.codec import encode
from shared.outbox import OutboxRelay
from shared.service import ServiceRuntime
from tests.fixtures.infra import LotlineEnv
from tests.fixtures.locks import waits_for_a_lock

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@asynccontextmanager
async def two_connections(dsn: str, schema: str) -> AsyncIterator[tuple[Any, Any]]:
    first = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    second = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def declared(runtime: ServiceRuntime, conn: Any, batches: dict[str, list[Any]]) -> list[str]:
    """What the runtime's routes declare for these messages, by topic."""
    names: list[str] = []
    for route in runtime.routes:
        if route.topic in batches:
            assert route.locks is not None, f"{route.topic} declares no locks"
            names += await route.locks(conn, batches[route.topic])
    return names


async def waits(conn: Any, take: Callable[[Any], Any]) -> None:
    """`take` (on `conn`, in a transaction of its own) waits for a lock held elsewhere."""
    async with conn.transaction():
        await conn.execute("SET LOCAL lock_timeout = '200ms'")
        with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
            await take(conn)


async def test_shipping_takes_a_batchs_documents_and_answers_shipments_at_once(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """A batch with a picks update for S1 and an answer to S2's command: declared and taken
    together, both shipments are locked, as `load` (documents) and `load_awaiting` (answers)
    lock them."""
    env = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    runtime = shipping(env.settings)
    topics = env.settings.topics
    picks = u.ShipmentPicksUpdated.model_validate(
        {"message_id": "p", "shipment_id": "S1", "line_no": 1, "occurred_at": NOW}
    )
    answer = e.LineReleased.model_validate(
        {
            "message_id": "a",
            "command_id": "cmd-S2",
            "lic": "L",
            "shipment_id": "S2",
            "line_no": 1,
            "office": "AI",
        }
    )
    item = e.ItemUpserted.model_validate(
        {
            "message_id": "i",
            "command_id": "c",
            "lic": "L",
            "track_mfr_lot": False,
            "serialized": False,
            "perishable": False,
            "est_unit_cost": "1",
        }
    )
    repository = PgShippingRepository()
    async with two_connections(env.dsn, SCHEMA) as (first, second):
        for sid in ("S1", "S2"):
            await first.execute(
                "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase)"
                " VALUES ($1, 'AI', 'sale', $2, 'allocating')",
                sid,
                date(2026, 11, 2),
            )
            await first.execute(
                "INSERT INTO pending_commands (command_id, shipment_id, action, line_no, lic)"
                " VALUES ($1, $2, 'allocate', 1, 'L')",
                f"cmd-{sid}",
                sid,
            )
        async with first.transaction():
            names = await declared(
                runtime, first, {topics.shipments: [picks], topics.events: [answer, item]}
            )
            assert sorted(names) == ["S1", "S2"]
            await runtime.lock(first, names)
            await waits(second, lambda c: repository.load(c, ["S1"]))
            await waits(second, lambda c: repository.load_awaiting(c, ["cmd-S2"]))


async def test_the_ledger_takes_a_batchs_events_and_costs_lics_at_once(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """A batch with an event of LIC A and a cost update of LIC B: declared and taken together,
    both LICs are locked, as `record_events` and `record_costs` lock them; a refusal, which
    records nothing, declares nothing."""
    env = lotline_env(topics=False)
    runtime = ledger(env.settings)
    topics = env.settings.topics
    moved = e.LineReleased.model_validate(
        {
            "message_id": "a",
            "command_id": "c1",
            "lic": "A",
            "shipment_id": "S",
            "line_no": 1,
            "office": "AI",
        }
    )
    refused = e.CommandRejected.model_validate(
        {
            "message_id": "r",
            "command_id": "c2",
            "lic": "REFUSED",
            "command_type": "AllocateLine",
            "reason_code": "INSUFFICIENT_STOCK",
            "reason": "none left",
        }
    )
    cost = u.PurchaseOrderUpdated.model_validate(
        {
            "message_id": "po",
            "po": "PO-1",
            "lic": "B",
            "ordered_quantity": 1,
            "purchased_quantity": 1,
            "act_unit_cost": Decimal("1"),
            "closed": False,
            "occurred_at": NOW,
        }
    )
    async with two_connections(env.dsn, "public") as (first, second), first.transaction():
        names = await declared(
            runtime, first, {topics.events: [moved, refused], topics.costs: [cost]}
        )
        assert sorted(names) == ["A", "B"]
        await runtime.lock(first, names)
        for lic in ("A", "B"):
            await waits(second, lambda c, lic=lic: ledger_repository.lock_lics(c, [lic]))


def _receipt(message_id: str, doc: str, lines: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "type": "ShipmentReceived",
            "message_id": message_id,
            "shipment_id": doc,
            "office": "AI",
            "source": "purchase",
            "received_on": "2026-11-02",
            "lines": lines,
        }
    ).encode()


class _NoRelay:
    def wake(self) -> None:
        pass


def _receiving_consumer(env: LotlineEnv, pool: asyncpg.Pool) -> TransactionalConsumer:
    """A receiving process's consumer, as its runtime builds it, with no relay."""
    runtime = receiving(env.settings)
    return TransactionalConsumer(
        name="receiving",
        routes=runtime.routes,
        pool=pool,
        relay=cast(OutboxRelay, _NoRelay()),
        schema=RECEIVING,
        settings=env.settings,
        lock=runtime.lock,
    )


@pytest.mark.parametrize("refused_between", [False, True], ids=["one run", "two runs"])
async def test_receipts_split_by_a_refused_one_take_their_locks_at_once(
    lotline_env: Callable[..., LotlineEnv], monkeypatch: pytest.MonkeyPatch, refused_between: bool
) -> None:
    """Receiving answers an invalid receipt in record order (`on_refused`), so a batch
    [receipt of X, invalid receipt, receipt of Y] calls its handler twice, each locking its own
    unknown item. Two processes with [X, invalid, Y] and [Y, invalid, X] would each hold one
    and wait for the other's (review: DeadlockDetectedError): the consumer takes both at once
    when a declaring route's handler runs more than once."""
    env = lotline_env(topics=False, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="30")
    await db.migrate(env.dsn, RECEIVING, db.migration_files(RECEIVING_MIGRATIONS))
    pool = await db.create_pool(env.dsn, RECEIVING, size=4)
    topic = env.settings.topics.receipts
    # Each transaction's first lock waits (at most 2 s) for the other's first.
    firsts = [asyncio.Event(), asyncio.Event()]
    original = PgReceivingRepository.lock_items
    owner: dict[int, int] = {}

    async def lock_items(self: Any, conn: Any, lics: Any) -> None:
        await original(self, conn, lics)
        me = owner[id(asyncio.current_task())]
        if not firsts[me].is_set():
            firsts[me].set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(firsts[1 - me].wait(), 2.0)

    monkeypatch.setattr(PgReceivingRepository, "lock_items", lock_items)

    def batch(partition: int, first: str, second: str) -> list[ConsumerRecord[bytes, bytes]]:
        values = [_receipt(f"r{partition}a", f"D{partition}a", [_line(first)])]
        if refused_between:
            values.append(_receipt(f"r{partition}bad", f"D{partition}bad", []))
        values.append(_receipt(f"r{partition}b", f"D{partition}b", [_line(second)]))
        return [
            ConsumerRecord(topic, partition, n, 0, 0, b"k", v, None, 1, len(v), [])
            for n, v in enumerate(values)
        ]

    async def run(me: int, consumer: TransactionalConsumer, records: list[Any]) -> None:
        owner[id(asyncio.current_task())] = me
        await consumer._commit_unit(records, None)

    try:
        consumers = []
        for partition in (0, 1):
            consumer = _receiving_consumer(env, pool)
            await consumer.claim([TopicPartition(topic, partition)])
            consumers.append(consumer)
        await asyncio.wait_for(
            asyncio.gather(
                run(0, consumers[0], batch(0, "X", "Y")), run(1, consumers[1], batch(1, "Y", "X"))
            ),
            30,
        )
        held = await pool.fetchval("SELECT count(*) FROM held_receipts WHERE status = 'held'")
        assert held == 4  # every receipt naming an unknown item waits for it
    finally:
        await pool.close()


def _line(lic: str) -> dict[str, Any]:
    return {"line_no": 1, "lic": lic, "quantity": 2}


async def test_a_started_service_takes_its_routes_locks_with_its_own_lock(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """Shipping's routes declare shipments, which its `lock` locks as rows: the consumer the
    runtime starts must take them with that lock, not the default (advisory locks by name)."""
    env = lotline_env()
    runtime = shipping(env.settings)
    await runtime.start()
    try:
        assert runtime.consumer is not None
        assert runtime.consumer._lock == runtime.lock != db.lock_names
    finally:
        await runtime.stop()


async def test_a_refused_receipts_hook_and_an_arrival_take_their_locks_at_once(
    lotline_env: Callable[..., LotlineEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of an invalid newer version of a held receipt (its `on_refused` hook locks the
    held receipt's row) and the arrival of item X (its handler locks X's bucket), while another
    process's arrival of an item in X's bucket holds that bucket and waits for the held row:
    taken hook first, bucket second, each would wait for the other (review: deadlock). When a
    hook runs in the batch, the consumer takes the declared locks before it."""
    env = lotline_env(topics=False, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="30")
    await db.migrate(env.dsn, RECEIVING, db.migration_files(RECEIVING_MIGRATIONS))
    pool = await db.create_pool(env.dsn, RECEIVING, size=4)
    topics = env.settings.topics
    neighbour = next(f"Z{n}" for n in itertools.count() if item_lock(f"Z{n}") == item_lock("X"))
    hooked = asyncio.Event()
    original = ReceivingService.supersede_refused

    async def supersede_refused(self: Any, uow: Any, refused: Any) -> None:
        await original(self, uow, refused)
        hooked.set()
        await waits_for_a_lock(pool)  # the other process takes the bucket, waits for the row

    monkeypatch.setattr(ReceivingService, "supersede_refused", supersede_refused)

    def record(topic: str, partition: int, offset: int, value: bytes) -> Any:
        return ConsumerRecord(topic, partition, offset, 0, 0, b"k", value, None, 1, len(value), [])

    def arrival(lic: str) -> bytes:
        return encode(
            e.ItemUpserted.model_validate(
                {
                    "message_id": f"m-{lic}",
                    "lic": lic,
                    "command_id": f"c-{lic}",
                    "track_mfr_lot": False,
                    "serialized": False,
                    "perishable": False,
                    "est_unit_cost": "1",
                }
            )
        )

    try:
        first, second = _receiving_consumer(env, pool), _receiving_consumer(env, pool)
        await first.claim([TopicPartition(topics.receipts, 0), TopicPartition(topics.events, 0)])
        await second.claim([TopicPartition(topics.events, 1)])
        held = _receipt("v1", "S1", [_line("X"), {**_line(neighbour), "line_no": 2}])
        await first._commit_unit([record(topics.receipts, 0, 0, held)], None)

        async def other() -> None:
            await hooked.wait()
            await second._commit_unit([record(topics.events, 1, 0, arrival(neighbour))], None)

        await asyncio.wait_for(
            asyncio.gather(
                first._commit_unit(
                    [
                        record(topics.receipts, 0, 1, _receipt("v2", "S1", [])),
                        record(topics.events, 0, 0, arrival("X")),
                    ],
                    None,
                ),
                other(),
            ),
            30,
        )
        statuses = await pool.fetch("SELECT status FROM held_receipts ORDER BY held_at")
        assert [row["status"] for row in statuses] == ["superseded"]
    finally:
        await pool.close()
