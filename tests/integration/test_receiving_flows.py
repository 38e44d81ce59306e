"""Receiving against a real PostgreSQL, with the real allocation service deciding.

`Bus` wires the services' handlers topic to topic in process: every delivery runs one handler
in its own transaction with an `Outbox`, exactly as the transactional consumer runs it, and the
outbox rows it wrote are delivered next (encoded and decoded through the wire contract). What
Kafka adds (partitions, offsets, redelivery) is the consumer's and is tested there; here the
documents, commands, answers and statuses are real and so is every SQL statement.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, cast

import asyncpg
import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from services.allocation import app as allocation_app
from services.allocation.service import AllocationService
from services.receiving import app as receiving_app
from services.receiving.service import ReceivingService
from services.shipping import app as shipping_app
from services.shipping.service import ShippingService
from shared import db
from shared.config import Settings
from shared.consumer import Handler, Inbound, UnitOfWork
from shared.contracts.codec import decode, encode
from shared.contracts.commands import Command
from shared.contracts.events import InventoryEvent
from shared.contracts.upstream import ItemMessage, ReceiptMessage, ShipmentMessage, UpsertItem
from shared.outbox import Outbox, OutboxRow, channel_for, write_outbox
from tests.fixtures.infra import LotlineEnv

DAY = date(2026, 11, 2)
JAN = date(2027, 1, 31)
FEB = date(2027, 2, 28)
GTIN = "09506000134352"


@dataclass(frozen=True)
class Route:
    schema: str
    adapter: TypeAdapter[Any]
    handler: Handler[Any]


class Bus:
    """The four topics between upstream, receiving, shipping and allocation, in process."""

    def __init__(self, settings: Settings, pools: dict[str, asyncpg.Pool]) -> None:
        self.topics = settings.topics
        self.pools = pools
        receiving = ReceivingService(settings)
        shipping = ShippingService(settings)
        allocation = AllocationService(settings)
        events = TypeAdapter(InventoryEvent)
        self.routes: dict[str, list[Route]] = {
            self.topics.items: [
                Route("allocation", TypeAdapter(ItemMessage), allocation.rekey_items)
            ],
            self.topics.receipts: [
                Route("receiving", TypeAdapter(ReceiptMessage), receiving.receive_documents)
            ],
            self.topics.shipments: [
                Route("shipping", TypeAdapter(ShipmentMessage), shipping.handle_documents)
            ],
            self.topics.commands: [
                Route("allocation", TypeAdapter(Command), allocation.decide_batch)
            ],
            self.topics.events: [
                Route("receiving", events, receiving.collect_answers),
                Route("shipping", events, shipping.collect_answers),
            ],
        }
        self.published: list[OutboxRow] = []
        self._offset = 0

    async def publish(self, topic: str, *messages: BaseModel, key: str | None = None) -> None:
        """Deliver `messages` as ONE batch, then everything that follows from them."""
        rows = [OutboxRow(topic, (key or "k").encode(), encode(m)) for m in messages]
        self.published.extend(rows)
        queue: deque[list[OutboxRow]] = deque([rows])
        while queue:
            batch = queue.popleft()
            for route in self.routes.get(batch[0].topic, []):
                emitted = await self._deliver(route, batch)
                self.published.extend(emitted)
                for row in emitted:  # one delivery per row: the order a partition gives
                    queue.append([row])

    async def _deliver(self, route: Route, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        inbound = []
        for row in rows:
            self._offset += 1
            message = decode(route.adapter, row.payload)
            inbound.append(Inbound(message, row.topic, 0, self._offset, row.key))
        outbox = Outbox()
        async with self.pools[route.schema].acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            await route.handler(UnitOfWork(conn, outbox), inbound)
            await write_outbox(conn, outbox.rows, channel_for(route.schema))
        return outbox.rows

    # -- what was published ------------------------------------------------------------------

    def on(self, topic: str, where: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[Any]:
        values = [orjson.loads(r.payload) for r in self.published if r.topic == topic]
        return [v for v in values if where(v)]

    def statuses(self, document_id: str) -> list[dict[str, Any]]:
        return self.on(self.topics.status, lambda v: v.get("shipment_id") == document_id)

    def commands(self, document_id: str) -> list[dict[str, Any]]:
        return self.on(self.topics.commands, lambda v: v.get("shipment_id") == document_id)

    async def fetch(self, schema: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.pools[schema].acquire() as conn:
            return list(await conn.fetch(sql, *args))

    # -- upstream messages ---------------------------------------------------------------------

    async def item(self, lic: str, **flags: Any) -> None:
        await self.publish(
            self.topics.items,
            UpsertItem(message_id=f"item-{lic}", lic=lic, est_unit_cost=Decimal("2.50"), **flags),
            key=lic,
        )

    async def receive(self, shipment_id: str, *lines: dict[str, Any], **header: Any) -> None:
        await self.publish(self.topics.receipts, receipt(shipment_id, *lines, **header))


def receipt(shipment_id: str, *lines: dict[str, Any], **header: Any) -> BaseModel:
    document = {
        "type": "ShipmentReceived",
        "message_id": f"msg-{shipment_id}",
        "shipment_id": shipment_id,
        "office": "AI",
        "source": "purchase",
        "received_on": DAY.isoformat(),
        "lines": [{"line_no": n, **line} for n, line in enumerate(lines, start=1)],
        **header,
    }
    return decode(TypeAdapter(ReceiptMessage), orjson.dumps(document))


@asynccontextmanager
async def open_bus(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Bus]:
    """A fresh database with allocation's, receiving's and shipping's schemas migrated."""
    env = lotline_env(topics=False)
    pools: dict[str, asyncpg.Pool] = {}
    try:
        for app in (allocation_app, receiving_app, shipping_app):
            await db.migrate(env.dsn, app.SCHEMA, db.migration_files(app.MIGRATIONS))
            pools[app.SCHEMA] = await db.create_pool(env.dsn, app.SCHEMA, size=2)
        yield Bus(env.settings, pools)
    finally:
        for pool in pools.values():
            await pool.close()


@pytest.fixture
async def bus(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[Bus]:
    async with open_bus(lotline_env) as opened:
        yield opened


async def stocked(bus: Bus) -> Bus:
    """The seed's items: plain, lot-tracked perishable, serialized, serialized with Next Serial."""
    await bus.item("PLAIN")
    await bus.item("MILK", track_mfr_lot=True)
    await bus.item("CAM", serialized=True)
    await bus.item("CAM-NS", serialized=True, next_serial="998")
    await bus.item("VAX", track_mfr_lot=True, serialized=True, gtin=GTIN)
    return bus


# --- tests ------------------------------------------------------------------------------------


async def test_mixed_receipt_is_posted_with_lot_ids_and_generated_serials(bus: Bus) -> None:
    """R3, R5, R6: plain, two lots with two expiry dates, a typed span, serials from Next Serial."""
    await stocked(bus)
    await bus.receive(
        "PO-1",
        {"lic": "PLAIN", "quantity": "5"},
        {
            "lic": "MILK",
            "quantity": 10,
            "lots": [
                {"mfr_lot": "A1", "expires_on": "2027-01-31", "quantity": 4},
                {"mfr_lot": "B2", "expires_on": "2027-02-28", "quantity": 6},
            ],
        },
        {"lic": "CAM", "quantity": 3, "serials": "SN-0098...SN-0100"},
        {"lic": "CAM-NS", "quantity": 3},
    )

    commands = bus.commands("PO-1")
    assert [(c["type"], c["message_id"], c["lot_id"]) for c in commands] == [
        ("ReceiveStock", "receipt:msg-PO-1/1", "PO-1/1"),
        ("ReceiveStock", "receipt:msg-PO-1/2", "PO-1/2"),
        ("ReceiveStock", "receipt:msg-PO-1/3", "PO-1/3"),
        ("ReceiveStock", "receipt:msg-PO-1/4", "PO-1/4"),
    ]
    assert commands[3]["generate_serials"] is True
    (status,) = bus.statuses("PO-1")
    assert status["type"] == "ReceiptPosted"
    lines = {line["line_no"]: line for line in status["lines"]}
    assert [lines[n]["lot_id"] for n in (1, 2, 3, 4)] == ["PO-1/1", "PO-1/2", "PO-1/3", "PO-1/4"]
    assert {(m["mfr_lot"], m["expires_on"]) for m in lines[2]["movements"]} == {
        ("A1", "2027-01-31"),
        ("B2", "2027-02-28"),
    }
    assert [m["serial"] for m in lines[3]["movements"]] == ["SN-0098", "SN-0099", "SN-0100"]
    assert lines[4]["generated_serials"] == ["00998", "00999", "01000"]
    (row,) = await bus.fetch("receiving", "SELECT status FROM receipts")
    assert row["status"] == "posted"


async def test_receipt_with_three_line_errors_is_refused_whole_and_posts_nothing(bus: Bus) -> None:
    """R3, R4, R5: one ReceiptRejected listing every failing line; not even the good line posts."""
    await stocked(bus)
    await bus.receive(
        "PO-2",
        {"lic": "PLAIN", "quantity": 1},
        {"lic": "MILK", "quantity": 5, "lots": [{"mfr_lot": "A1", "quantity": 5}]},
        {"lic": "CAM", "quantity": 2, "serials": "S1"},
        {"lic": "CAM", "quantity": 2, "serials": "S9...S1"},
    )

    assert bus.commands("PO-2") == []
    (status,) = bus.statuses("PO-2")
    assert status["type"] == "ReceiptRejected"
    assert [(p["line_no"], p["reason_code"], p["offending"]) for p in status["problems"]] == [
        (2, "EXPIRY_REQUIRED", "A1"),
        (3, "SERIAL_COUNT_MISMATCH", "1 != 2"),
        (4, "INVALID_SERIAL_SPAN", "S9...S1"),
    ]
    assert status["posted_lines"] == []
    assert await bus.fetch("receiving", "SELECT * FROM receipt_lines") == []
    assert await bus.fetch("allocation", "SELECT * FROM inventory_lots") == []


async def test_allocation_refusing_a_checked_line_names_it_and_the_posted_ones(bus: Bus) -> None:
    """R4: a serial already in stock is caught by allocation, the one writer per LIC."""
    await stocked(bus)
    await bus.receive("PO-3", {"lic": "CAM", "quantity": 1, "serials": ["S1"]})
    await bus.receive(
        "PO-4",
        {"lic": "PLAIN", "quantity": 2},
        {"lic": "CAM", "quantity": 1, "serials": ["S1"]},
    )

    (status,) = bus.statuses("PO-4")
    assert status["type"] == "ReceiptRejected"
    (problem,) = status["problems"]
    assert (problem["line_no"], problem["reason_code"], problem["offending"]) == (
        2,
        "DUPLICATE_SERIAL",
        "S1",
    )
    assert [line["line_no"] for line in status["posted_lines"]] == [1]
    rows = await bus.fetch("receiving", "SELECT status FROM receipts WHERE shipment_id = 'PO-4'")
    assert [r["status"] for r in rows] == ["rejected"]


async def test_scanned_units_are_received_with_lot_expiry_and_serial(bus: Bus) -> None:
    """R5: GS1 scans (with and without FNC1) give serial, lot and expiry; the GTIN is checked."""
    await stocked(bus)
    scans = [f"(01){GTIN}(17)271231(10)L7(21)U1", f"]d201{GTIN}1727123110L7\x1d21U2"]
    await bus.receive("PO-5", {"lic": "VAX", "quantity": 2, "scans": scans})

    (status,) = bus.statuses("PO-5")
    assert status["type"] == "ReceiptPosted", status
    moves = status["lines"][0]["movements"]
    assert [(m["serial"], m["mfr_lot"], m["expires_on"]) for m in moves] == [
        ("U1", "L7", "2027-12-31"),
        ("U2", "L7", "2027-12-31"),
    ]


async def test_unreadable_scan_refuses_the_receipt_with_the_raw_text(bus: Bus) -> None:
    """R5: INVALID_BARCODE naming the scan; a GS in the offending text stays valid JSON."""
    await stocked(bus)
    await bus.receive("PO-6", {"lic": "VAX", "quantity": 1, "scans": ["(01)123\x1d(21)"]})

    (status,) = bus.statuses("PO-6")
    (problem,) = status["problems"]
    assert problem["reason_code"] == "INVALID_BARCODE"
    assert "123" in problem["offending"]


async def test_unknown_item_is_refused(bus: Bus) -> None:
    await bus.receive("PO-7", {"lic": "NEVER", "quantity": 1})

    (status,) = bus.statuses("PO-7")
    assert [(p["reason_code"], p["offending"]) for p in status["problems"]] == [
        ("UNKNOWN_ITEM", "NEVER")
    ]


async def test_a_batch_of_documents_is_checked_and_recorded_together(bus: Bus) -> None:
    """Set-based writes: one handler call records every document of the batch."""
    await stocked(bus)
    await bus.publish(
        bus.topics.receipts,
        receipt("PO-10", {"lic": "PLAIN", "quantity": 1}),
        receipt("PO-11", {"lic": "MILK", "quantity": 1}),
        receipt("PO-12", {"lic": "CAM-NS", "quantity": 2}),
    )

    assert [bus.statuses(d)[0]["type"] for d in ("PO-10", "PO-11", "PO-12")] == [
        "ReceiptPosted",
        "ReceiptRejected",
        "ReceiptPosted",
    ]
    rows = await bus.fetch("receiving", "SELECT shipment_id, status FROM receipts ORDER BY 1")
    assert [(r["shipment_id"], r["status"]) for r in rows] == [
        ("PO-10", "posted"),
        ("PO-11", "rejected"),
        ("PO-12", "posted"),
    ]


async def test_customer_return_must_name_serials_and_goes_to_allocation(bus: Bus) -> None:
    """R13: a return names its serials; one that was never shipped is SERIAL_NOT_SHIPPED."""
    await stocked(bus)
    await bus.receive("PO-8", {"lic": "CAM", "quantity": 1, "serials": "S5"})
    await bus.receive(
        "RMA-1",
        {"lic": "CAM", "quantity": 1},
        source="customer_return",
        customer="Montboro",
    )
    (refused,) = bus.statuses("RMA-1")
    assert [p["reason_code"] for p in refused["problems"]] == ["SERIAL_REQUIRED"]
    assert bus.commands("RMA-1") == []

    await bus.receive(
        "RMA-2",
        {"lic": "CAM", "quantity": 1, "serials": "S5"},
        source="customer_return",
        customer="Montboro",
    )
    (command,) = bus.commands("RMA-2")
    assert (command["type"], command["serials"], command["customer"]) == (
        "ReturnStock",
        ["S5"],
        "Montboro",
    )
    (status,) = bus.statuses("RMA-2")
    assert [(p["reason_code"], p["offending"]) for p in status["problems"]] == [
        ("SERIAL_NOT_SHIPPED", "S5")
    ]
