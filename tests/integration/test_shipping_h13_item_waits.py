"""Documents waiting for an item shipping has not read yet (R5: a scan is checked against its
item), against a real PostgreSQL, as shipping's consumer and periodic job run them.

- An item that arrives in the very consumer batch (one transaction) that holds a document, in
  either record order, within one topic or across the two shipping reads, decides it in that
  transaction, its scans read against the item as stored: never left to the periodic job.
- Each waiting document's wait is its own: LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS from when it was
  read, not from when the first of its shipment's began waiting; documents of one shipment are
  still decided in the order read.

A shorter wait configured for the process that reads the first document plays "read long ago":
its wait is over at once, the second's (read with the usual wait) is not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import TypeAdapter

from services.shipping import model, translate
from services.shipping.app import MIGRATIONS, SCHEMA
from services.shipping.app import create_runtime as shipping
from services.shipping.repository import PgShippingRepository
from services.shipping.service import ShippingService
from shared import db
from shared.config import Settings
from shared.consumer import Inbound, TransactionalConsumer, UnitOfWork
from shared.contracts import events as e
from shared.contracts import upstream as u
from shared.contracts.codec import encode
from shared.outbox import Outbox, OutboxRelay
from tests.fixtures.infra import LotlineEnv

GTIN = "09506000134352"
OTHER = "04012345000009"  # a valid GTIN of another product
WAIT = 600.0  # the usual wait: never over during a test
AT_ONCE = 0.001  # a wait over as soon as it starts: a document read long ago
_DOCUMENTS: TypeAdapter[u.ShipmentMessage] = TypeAdapter(u.ShipmentMessage)


class _NoRelay:
    def wake(self) -> None:
        pass


@pytest.fixture
async def env(lotline_env: Callable[..., LotlineEnv]) -> LotlineEnv:
    env = lotline_env(topics=False, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS=str(WAIT))
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    return env


@pytest.fixture
async def pool(env: LotlineEnv) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(env.dsn, SCHEMA, size=2)
    try:
        yield pool
    finally:
        await pool.close()


def sale(message_id: str, shipment_id: str, lic: str, *scans: str) -> dict[str, Any]:
    line = {"line_no": 1, "lic": lic, "quantity": max(1, len(scans)), "scans": list(scans)}
    return {
        "type": "ShipmentRequested",
        "message_id": message_id,
        "occurred_at": "2026-11-22T10:00:00Z",
        "shipment_id": shipment_id,
        "office": "AI",
        "kind": "sale",
        "customer": "Montboro",
        "ship_on": "2026-11-22",
        "lines": [line],
    }


def picks(message_id: str, shipment_id: str, **entry: Any) -> dict[str, Any]:
    return {
        "type": "ShipmentPicksUpdated",
        "message_id": message_id,
        "occurred_at": "2026-11-22T10:00:00Z",
        "shipment_id": shipment_id,
        "line_no": 1,
        **entry,
    }


def item(lic: str) -> e.ItemUpserted:
    """A serialized item whose labels carry GTIN."""
    return e.ItemUpserted(
        message_id=f"item-{lic}",
        command_id=f"upsert-{lic}",
        lic=lic,
        track_mfr_lot=False,
        serialized=True,
        perishable=False,
        est_unit_cost="300",
        gtin=GTIN,
    )


def document(body: dict[str, Any]) -> Inbound[Any]:
    return Inbound(_DOCUMENTS.validate_python(body), "shipments", 0, 0, None)


async def transaction(pool: asyncpg.Pool, work: Callable[[UnitOfWork], Awaitable[Any]]) -> Outbox:
    """`work` in one transaction, as the consumer runs a handler and the runtime a job."""
    outbox = Outbox()
    async with pool.acquire() as proxy, proxy.transaction():
        await work(UnitOfWork(cast(asyncpg.Connection, proxy), outbox))
    return outbox


def sent(outbox: Outbox) -> list[dict[str, Any]]:
    return [json.loads(row.payload) for row in outbox.rows]


def for_document(messages: list[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
    """The commands sent for a document: their ids derive from its message id."""
    return [m for m in messages if m["message_id"].startswith(f"shipment:{message_id}/")]


async def waiting(pool: asyncpg.Pool, shipment_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT awaited, awaited_until - now() AS left, queued IS NOT NULL AS queued"
        " FROM shipments WHERE shipment_id = $1",
        shipment_id,
    )
    assert row is not None
    return row


async def past(pool: asyncpg.Pool, shipment_id: str) -> None:
    """Wait until the shipment's first waiting document's wait is over (AT_ONCE after it)."""
    while not await pool.fetchval(
        "SELECT awaited_until < clock_timestamp() FROM shipments WHERE shipment_id = $1",
        shipment_id,
    ):
        pass


def services(env: LotlineEnv) -> tuple[ShippingService, ShippingService]:
    """The process that read the first document long ago, and the one running now."""
    settings: Settings = env.settings
    long_ago = settings.model_copy(update={"unknown_item_wait_seconds": AT_ONCE})
    return ShippingService(long_ago), ShippingService(settings)


async def test_a_document_read_behind_one_waiting_for_items_waits_its_own_time(
    env: LotlineEnv, pool: asyncpg.Pool
) -> None:
    """A sale scanned before its item is known waits; its corrected re-send, scanning another
    item nobody knows yet either, waits behind it. When the first one's wait is over it is
    decided (UNKNOWN_ITEM), and the re-send waits on for its own item, until its own wait is
    over (review: it was refused UNKNOWN_ITEM at once, its wait cut to what was left of the
    first's). Its item then arrives and it is read against it."""
    earlier, current = services(env)
    await transaction(
        pool,
        lambda uow: earlier.handle_documents(
            uow, [document(sale("r-1", "S-1", "CAM", f"(01){GTIN}(21)X1"))]
        ),
    )
    await transaction(
        pool,
        lambda uow: current.handle_documents(
            uow, [document(sale("r-2", "S-1", "BOLT", f"(01){GTIN}(21)B1"))]
        ),
    )
    await past(pool, "S-1")

    settled = sent(await transaction(pool, current.settle_waiting))
    (refused,) = for_document(settled, "r-1")
    assert (refused["type"], refused["refusal"]["reason_code"]) == ("AllocateLine", "UNKNOWN_ITEM")
    assert for_document(settled, "r-2") == []
    still = await waiting(pool, "S-1")
    assert still["awaited"] == ["BOLT"] and still["queued"]
    assert still["left"].total_seconds() > WAIT / 2  # its own wait, from when it was read

    arrived = sent(
        await transaction(
            pool,
            lambda uow: current.collect_answers(uow, [Inbound(item("BOLT"), "events", 0, 0, None)]),
        )
    )
    (allocate,) = for_document(arrived, "r-2")
    assert allocate.get("refusal") is None and allocate["serials"] == ["B1"]
    assert (await waiting(pool, "S-1"))["awaited"] == []


async def test_a_document_waiting_behind_another_is_aged_from_its_own_arrival(
    env: LotlineEnv, pool: asyncpg.Pool
) -> None:
    """The first waiting sale's item arrives: it is decided, and the re-send read behind it
    waits for its own item from then on with its own deadline, not the first's (review: it
    inherited the first's, here already over, and the oldest-waiting gauge kept counting
    from when the first began waiting)."""
    earlier, current = services(env)
    await transaction(
        pool,
        lambda uow: earlier.handle_documents(
            uow, [document(sale("r-1", "S-1", "CAM", f"(01){GTIN}(21)X1"))]
        ),
    )
    await transaction(
        pool,
        lambda uow: current.handle_documents(
            uow, [document(sale("r-2", "S-1", "BOLT", f"(01){GTIN}(21)B1"))]
        ),
    )
    arrived = sent(
        await transaction(
            pool,
            lambda uow: current.collect_answers(uow, [Inbound(item("CAM"), "events", 0, 0, None)]),
        )
    )
    (allocate,) = for_document(arrived, "r-1")
    assert allocate["serials"] == ["X1"]
    still = await waiting(pool, "S-1")
    assert still["awaited"] == ["BOLT"]
    assert still["left"].total_seconds() > WAIT / 2

    runtime = shipping(env.settings)
    runtime.pool = pool
    # The first was read "long ago" (its deadline less the wait is WAIT seconds back); the
    # one waiting now was read just now. The allocation the first sent is just as young.
    assert await runtime.measure_waiting() < WAIT / 2


def _record(topic: str, offset: int, value: bytes, kind: str) -> ConsumerRecord[bytes, bytes]:
    headers = [("type", kind.encode())]
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


class _Batches:
    """Shipping's consumer over both its topics, fed batches of records directly."""

    def __init__(self, env: LotlineEnv, pool: asyncpg.Pool) -> None:
        runtime = shipping(env.settings)
        self.topics = env.settings.topics
        self.consumer = TransactionalConsumer(
            name=SCHEMA,
            routes=runtime.routes,
            pool=pool,
            relay=cast(OutboxRelay, _NoRelay()),
            schema=SCHEMA,
            settings=env.settings,
            lock=runtime.lock,
        )
        self.pool = pool
        self.offsets: dict[str, int] = {}

    async def claim(self) -> None:
        await self.consumer.claim(
            [TopicPartition(self.topics.shipments, 0), TopicPartition(self.topics.events, 0)]
        )

    def document(self, body: dict[str, Any]) -> ConsumerRecord[bytes, bytes]:
        return self._next(self.topics.shipments, json.dumps(body).encode(), body["type"])

    def event(self, event: e.Event) -> ConsumerRecord[bytes, bytes]:
        return self._next(self.topics.events, encode(event), event.type)

    def _next(self, topic: str, value: bytes, kind: str) -> ConsumerRecord[bytes, bytes]:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return _record(topic, offset, value, kind)

    async def run(self, *records: ConsumerRecord[bytes, bytes]) -> list[dict[str, Any]]:
        """One batch, one transaction; returns the commands and statuses it wrote."""
        before = await self.pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        await self.consumer._process_resiliently(list(records))
        rows = await self.pool.fetch(
            "SELECT payload FROM outbox WHERE id > $1 AND topic <> $2 ORDER BY id",
            before,
            self.topics.dlq,
        )
        assert (
            await self.pool.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = $1", self.topics.dlq
            )
            == 0
        )
        return [json.loads(row["payload"]) for row in rows]


@pytest.mark.parametrize("item_first", [False, True], ids=["sale first", "item first"])
async def test_a_sale_and_its_item_in_one_batch_are_decided_in_that_batch(
    env: LotlineEnv, pool: asyncpg.Pool, item_first: bool
) -> None:
    """The sale (inventory.shipments) and its item (inventory.events) in one consumer batch,
    in either record order: the sale is decided in that transaction, its scan read against
    the item (another product's barcode: INVALID_BARCODE), and nothing is left waiting for the
    periodic job."""
    batches = _Batches(env, pool)
    await batches.claim()
    sale_record = batches.document(sale("r-1", "S-1", "CAM", f"(01){OTHER}(21)X1"))
    item_record = batches.event(item("CAM"))
    records = (item_record, sale_record) if item_first else (sale_record, item_record)
    written = await batches.run(*records)
    (allocate,) = for_document(written, "r-1")
    assert allocate["refusal"]["reason_code"] == "INVALID_BARCODE"
    assert allocate["refusal"]["offending"] == f"(01){OTHER}(21)X1"
    left = await waiting(pool, "S-1")
    assert left["awaited"] == [] and left["left"] is None and not left["queued"]


@pytest.mark.parametrize("item_first", [False, True], ids=["answer first", "item first"])
async def test_an_item_arriving_with_an_answer_that_settles_nothing_decides_what_waits(
    env: LotlineEnv, pool: asyncpg.Pool, item_first: bool
) -> None:
    """A line being re-allocated when new picks scanning its item (unknown to shipping yet)
    come: they wait. The item arrives in the batch with the re-allocation's first answer, the
    release of the old picks (its LineAllocated falls in the next batch): the picks are read
    against the item in that batch (review: a shipment with an answer in the batch was left
    out, the picks waited for the periodic job)."""
    batches = _Batches(env, pool)
    await batches.claim()
    (allocate,) = await batches.run(
        batches.document(sale("r-1", "S-1", "CAM")),
    )
    line = {
        "lic": "CAM",
        "shipment_id": "S-1",
        "line_no": 1,
        "office": "AI",
    }
    movement = {"lot_id": "PO-1/1", "serial": "X9", "quantity": "1", "unit_cost": "300"}
    allocated = e.LineAllocated.model_validate(
        {
            **line,
            "message_id": "a-1",
            "command_id": allocate["message_id"],
            "ship_on": "2026-11-22",
            "quantity": "1",
            "movements": [movement],
        }
    )
    assert await batches.run(batches.event(allocated))  # allocated: its status
    (reallocate,) = await batches.run(batches.document(picks("p-1", "S-1", serials=["X8"])))
    assert (
        await batches.run(batches.document(picks("p-2", "S-1", scans=[f"(01){OTHER}(21)X1"]))) == []
    )
    assert (await waiting(pool, "S-1"))["awaited"] == ["CAM"]

    released = e.LineReleased.model_validate(
        {
            **line,
            "message_id": "a-2",
            "command_id": reallocate["message_id"],
            "reallocated": True,
            "movements": [movement],
        }
    )
    events = [batches.event(released), batches.event(item("CAM"))]
    written = await batches.run(*(reversed(events) if item_first else events))
    (repick,) = for_document(written, "p-2")
    assert repick["refusal"]["reason_code"] == "INVALID_BARCODE"
    assert (await waiting(pool, "S-1"))["awaited"] == []


async def test_documents_waiting_before_migration_011_keep_their_shipments_deadline(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """Documents stored waiting before migration 011 (or by a process of the version before)
    have no deadline of their own: they keep the shipment's, the bound they had; one read by
    this version behind them gets its own."""
    env = lotline_env(topics=False)
    files = db.migration_files(MIGRATIONS)
    await db.migrate(env.dsn, SCHEMA, [f for f in files if not f.name.startswith("011_")])

    def unread(message_id: str, lic: str) -> dict[str, Any]:
        """A request waiting, unread, for its item: as 010 stores one."""
        body = sale(message_id, "S", lic, f"(01){GTIN}(21)X1")
        request = translate.upstream(u.ShipmentRequested.model_validate(body))
        assert isinstance(request, model.Request)
        return {"unread": json.loads(TypeAdapter(model.Request).dump_json(request))}

    pool = await db.create_pool(env.dsn, SCHEMA, size=1)
    try:
        for sid, first, second, until in (
            ("S-1", "r-1", "r-2", "now() - interval '1 minute'"),
            ("S-2", "r-3", "r-4", "now() + interval '10 minutes'"),
        ):
            await pool.execute(
                "INSERT INTO shipments (shipment_id, office, kind, ship_on, phase, queued,"
                f" awaited, awaited_until) VALUES ($1, 'AI', 'sale', '2026-11-22', 'allocating',"
                f" $2::text::jsonb, '{{CAM}}', {until})",
                sid,
                json.dumps([unread(first, "CAM"), unread(second, "BOLT")]),
            )
        assert await db.migrate(env.dsn, SCHEMA, files) == ["011_shipping_document_deadlines.sql"]
        repository = PgShippingRepository()
        async with pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            loaded = await repository.load(conn, ["S-1", "S-2"])
            assert loaded.shipments["S-1"].overdue == {"r-1", "r-2"}
            assert loaded.shipments["S-2"].overdue == frozenset()
            waits = loaded.shipments["S-2"]
            behind = translate.upstream(_DOCUMENTS.validate_python(sale("r-5", "S-2", "NUT")))
            joined = replace(waits, queued=(*waits.queued, behind))
            await repository.save(conn, loaded.shipments, [joined], wait_seconds=WAIT)
        row = await pool.fetchrow(
            "SELECT awaited_until, (queued_until->>'r-3')::timestamptz AS r3,"
            " (queued_until->>'r-4')::timestamptz AS r4,"
            " (queued_until->>'r-5')::timestamptz - now() AS r5"
            " FROM shipments WHERE shipment_id = 'S-2'"
        )
    finally:
        await pool.close()
    assert row is not None
    assert row["r3"] == row["r4"] == row["awaited_until"]
    assert row["r5"].total_seconds() > WAIT / 2
