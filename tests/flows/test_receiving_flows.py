"""Receiving against a real PostgreSQL, with the real allocation service deciding.

`Bus` wires the services' handlers topic to topic in process: every delivery runs one handler
in its own transaction with an `Outbox`, exactly as the transactional consumer runs it, and the
outbox rows it wrote are delivered next (encoded and decoded through the wire contract). What
Kafka adds (partitions, offsets, redelivery) is the consumer's and is tested there; here the
documents, commands, answers and statuses are real and so is every SQL statement.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
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
from services.receiving import domain as receiving_domain
from services.receiving.service import ReceivingService
from services.shipping import app as shipping_app
from services.shipping.service import ShippingService
from shared import db
from shared.config import Settings
from shared.consumer import Handler, Inbound, UnitOfWork
from shared.contracts.codec import decode, encode
from shared.contracts.commands import Command
from shared.contracts.events import InventoryEvent, ItemUpserted
from shared.contracts.upstream import ItemMessage, ReceiptMessage, ShipmentMessage, UpsertItem
from shared.offload import HEAVY, SCAN_WEIGHT
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
        receiving = self.receiving = ReceivingService(settings)
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
        await self.redeliver([OutboxRow(topic, (key or "k").encode(), encode(m)) for m in messages])

    async def redeliver(self, rows: list[OutboxRow]) -> None:
        """Deliver `rows` (again, when they were published before) as ONE batch, and what
        follows from them."""
        self.published.extend(rows)
        await self._flow(deque([rows]))

    @asynccontextmanager
    async def unit(self, schema: str) -> AsyncIterator[UnitOfWork]:
        """A transaction of `schema` the test holds open, as the consumer or a periodic job
        runs one; committed on exit, then what it emitted is delivered."""
        outbox = Outbox()
        async with self.pools[schema].acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            yield UnitOfWork(conn, outbox)
            await write_outbox(conn, outbox.rows, channel_for(schema))
        self.published.extend(outbox.rows)
        await self._flow(deque([row] for row in outbox.rows))

    async def settle_expired(self) -> None:
        """One round of receiving's periodic job."""
        async with self.unit("receiving") as uow:
            await self.receiving.settle_expired(uow)

    async def _flow(self, queue: deque[list[OutboxRow]]) -> None:
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

    async def held(self) -> list[tuple[str, str, list[str]]]:
        """Receiving's held documents: (shipment, status, awaited LICs)."""
        rows = await self.fetch(
            "receiving", "SELECT shipment_id, status, awaited FROM held_receipts ORDER BY 1"
        )
        return [(r["shipment_id"], r["status"], list(r["awaited"])) for r in rows]

    async def lock_waited_for(self, within: float = 10.0) -> None:
        """Until a transaction of this database waits for a lock another one holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not await self.fetch(
            "allocation",
            "SELECT 1 FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ):
            assert loop.time() < deadline, "no transaction ever waited for the lock"
            await asyncio.sleep(0.02)

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
async def open_bus(
    lotline_env: Callable[..., LotlineEnv], **env_overrides: str
) -> AsyncIterator[Bus]:
    """A fresh database with allocation's, receiving's and shipping's schemas migrated."""
    env = lotline_env(topics=False, **env_overrides)
    pools: dict[str, asyncpg.Pool] = {}
    try:
        for app in (allocation_app, receiving_app, shipping_app):
            await db.migrate(env.dsn, app.SCHEMA, db.migration_files(app.MIGRATIONS))
            # Three: the race tests hold two transactions of one schema open at once.
            pools[app.SCHEMA] = await db.create_pool(env.dsn, app.SCHEMA, size=3)
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
    # Several lines: each is held by allocation, then all are confirmed together.
    assert all(c["hold"] for c in commands)
    confirms = bus.on(bus.topics.commands, lambda v: v["type"] == "ConfirmHeld")
    assert [c["command_id"] for c in confirms] == [c["message_id"] for c in commands]
    (status,) = bus.statuses("PO-1")
    assert status["type"] == "ReceiptPosted"
    assert status["answers"] == ["msg-PO-1"]
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
    assert status["answers"] == ["msg-PO-2"]
    assert [(p["line_no"], p["reason_code"], p["offending"]) for p in status["problems"]] == [
        (2, "EXPIRY_REQUIRED", "A1"),
        (3, "SERIAL_COUNT_MISMATCH", "1 != 2"),
        (4, "INVALID_SERIAL_SPAN", "S9...S1"),
    ]
    assert status["posted_lines"] == []
    assert await bus.fetch("receiving", "SELECT * FROM receipt_lines") == []
    assert await bus.fetch("allocation", "SELECT * FROM inventory_lots") == []


async def test_allocation_refusing_a_checked_line_posts_nothing_of_the_document(bus: Bus) -> None:
    """R4: a serial already in stock is caught by allocation, the one writer per LIC. The
    document's other line was only held: it is cancelled, and nothing of the document posts."""
    await stocked(bus)
    await bus.receive("PO-3", {"lic": "CAM", "quantity": 1, "serials": ["S1"]})
    await bus.receive(
        "PO-4",
        {"lic": "PLAIN", "quantity": 2},
        {"lic": "CAM", "quantity": 1, "serials": ["S1"]},
    )

    assert [(c["type"], c.get("hold")) for c in bus.commands("PO-4")] == [
        ("ReceiveStock", True),
        ("ReceiveStock", True),
    ]
    (status,) = bus.statuses("PO-4")
    assert status["type"] == "ReceiptRejected"
    assert status["answers"] == ["msg-PO-4"]
    (problem,) = status["problems"]
    assert (problem["line_no"], problem["reason_code"], problem["offending"]) == (
        2,
        "DUPLICATE_SERIAL",
        "S1",
    )
    assert status["posted_lines"] == []
    (cancel,) = bus.on(bus.topics.commands, lambda v: v["type"] == "CancelHeld")
    assert cancel["command_id"] == "receipt:msg-PO-4/1"
    assert bus.on(bus.topics.commands, lambda v: v["type"] == "ConfirmHeld") == []
    answers = bus.on(bus.topics.events, lambda v: v.get("shipment_id") == "PO-4")
    assert sorted(v["type"] for v in answers) == ["CommandRejected", "LineHeld"]  # none posted
    assert (
        await bus.fetch("allocation", "SELECT 1 FROM inventory_lots WHERE lot_id = 'PO-4/1'") == []
    )
    rows = await bus.fetch("receiving", "SELECT status FROM receipts WHERE shipment_id = 'PO-4'")
    assert [r["status"] for r in rows] == ["rejected"]


async def test_allocation_answers_delivered_again_change_nothing(bus: Bus) -> None:
    """Past the inbox: LineHeld, CommandRejected and StockReceived published again by
    allocation's relay neither hold, confirm, cancel nor settle a document a second time."""
    await stocked(bus)
    await bus.receive("PO-9", {"lic": "PLAIN", "quantity": 1}, {"lic": "PLAIN", "quantity": 2})
    await bus.receive("PO-3", {"lic": "CAM", "quantity": 1, "serials": ["S1"]})
    await bus.receive(
        "PO-4", {"lic": "PLAIN", "quantity": 2}, {"lic": "CAM", "quantity": 1, "serials": ["S1"]}
    )
    kinds = ("ConfirmHeld", "CancelHeld", "ReceiveStock")
    sent = [v["type"] for v in bus.on(bus.topics.commands, lambda v: v["type"] in kinds)]
    assert [s["type"] for s in bus.statuses("PO-9") + bus.statuses("PO-4")] == [
        "ReceiptPosted",
        "ReceiptRejected",
    ]

    answers = [
        row
        for row in bus.published
        if row.topic == bus.topics.events and (b'"PO-9"' in row.payload or b'"PO-4"' in row.payload)
    ]
    assert {orjson.loads(row.payload)["type"] for row in answers} == {
        "LineHeld",
        "StockReceived",
        "CommandRejected",
    }
    await bus.redeliver(answers)

    assert [v["type"] for v in bus.on(bus.topics.commands, lambda v: v["type"] in kinds)] == sent
    assert len(bus.statuses("PO-9") + bus.statuses("PO-4")) == 2
    rows = await bus.fetch("receiving", "SELECT shipment_id, status FROM receipts ORDER BY 1")
    assert [(r["shipment_id"], r["status"]) for r in rows] == [
        ("PO-3", "posted"),
        ("PO-4", "rejected"),
        ("PO-9", "posted"),
    ]


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


async def test_a_heavily_scanned_receipt_is_read_off_the_event_loop(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§6: reading scans costs about 100 µs each (200,000 took 20 s, past the consumer's session
    timeout), so a receipt of many is checked in a worker thread (`shared.offload`) while the
    loop goes on; a small one right away. Both are posted alike."""
    await stocked(bus)
    threads: list[int] = []
    check = receiving_domain.check_receipt

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return check(*args, **kwargs)

    monkeypatch.setattr(receiving_domain, "check_receipt", watched)
    many = HEAVY // SCAN_WEIGHT
    scans = [f"(01){GTIN}(17)271231(10)L7(21)H{n}" for n in range(many)]
    await bus.receive("PO-HEAVY", {"lic": "VAX", "quantity": many, "scans": scans})
    light_scan = f"(01){GTIN}(17)271231(10)L7(21)LIGHT1"
    await bus.receive("PO-LIGHT", {"lic": "VAX", "quantity": 1, "scans": [light_scan]})

    (heavy_status,) = bus.statuses("PO-HEAVY")
    assert heavy_status["type"] == "ReceiptPosted", heavy_status
    assert len(heavy_status["lines"][0]["movements"]) == many
    assert [s["type"] for s in bus.statuses("PO-LIGHT")] == ["ReceiptPosted"]
    heavy, light = threads
    assert heavy != threading.get_ident()
    assert light == threading.get_ident()


async def test_scanned_serials_are_filed_under_the_lots_their_scans_name(bus: Bus) -> None:
    """R3, R5, R15: lots typed A then B; the scans say U1 is of lot B and U2 of lot A."""
    await stocked(bus)
    await bus.receive(
        "PO-15",
        {
            "lic": "VAX",
            "quantity": 2,
            "lots": [
                {"mfr_lot": "A", "expires_on": "2027-12-31", "quantity": 1},
                {"mfr_lot": "B", "expires_on": "2027-12-31", "quantity": 1},
            ],
            "scans": [f"(01){GTIN}(10)B(21)U1", f"(01){GTIN}(10)A(21)U2"],
        },
    )

    (status,) = bus.statuses("PO-15")
    assert status["type"] == "ReceiptPosted", status
    moves = status["lines"][0]["movements"]
    assert sorted((m["serial"], m["mfr_lot"]) for m in moves) == [("U1", "B"), ("U2", "A")]
    rows = await bus.fetch("allocation", "SELECT serial, mfr_lot FROM units ORDER BY serial")
    assert [tuple(r) for r in rows] == [("U1", "B"), ("U2", "A")]


async def test_unreadable_scan_refuses_the_receipt_with_the_raw_text(bus: Bus) -> None:
    """R5: INVALID_BARCODE naming the scan; a GS in the offending text stays valid JSON."""
    await stocked(bus)
    await bus.receive("PO-6", {"lic": "VAX", "quantity": 1, "scans": ["(01)123\x1d(21)"]})

    (status,) = bus.statuses("PO-6")
    (problem,) = status["problems"]
    assert problem["reason_code"] == "INVALID_BARCODE"
    assert "123" in problem["offending"]


async def test_unknown_item_is_refused_once_its_wait_is_over(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    async with open_bus(lotline_env, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="1") as bus:
        await bus.receive("PO-7", {"lic": "NEVER", "quantity": 1})
        await bus.settle_expired()  # not due yet: nothing is said while it waits
        assert (bus.statuses("PO-7"), await bus.held()) == ([], [("PO-7", "held", ["NEVER"])])

        await asyncio.sleep(1.1)
        await bus.settle_expired()

        (status,) = bus.statuses("PO-7")
        assert [(p["reason_code"], p["offending"]) for p in status["problems"]] == [
            ("UNKNOWN_ITEM", "NEVER")
        ]
        assert await bus.held() == [("PO-7", "expired", ["NEVER"])]
        (row,) = await bus.fetch("receiving", "SELECT status FROM receipts")
        assert row["status"] == "rejected"


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


# --- receipts for items receiving does not know yet -------------------------------------------
# Upstream publishes a new item's UpsertItem just before its first receipt, but the item reaches
# receiving three hops later: such a receipt is held, saying nothing, until its items arrive.


async def test_a_return_of_serials_scanned_with_each_others_lots_is_refused(bus: Bus) -> None:
    """R5, R13, R15, unit by unit: V1 was shipped from lot A and V2 from lot B, but the
    returned V1's label says B and V2's says A. The per-lot counts agree (one unit of each),
    so only a check of each serial against the lot it was shipped from refuses the return;
    scanned with their own lots, the units come back, each into its lot."""
    await stocked(bus)
    await bus.receive(
        "PO-20",
        {
            "lic": "VAX",
            "quantity": 2,
            "lots": [
                {"mfr_lot": "A", "expires_on": "2027-12-31", "quantity": 1},
                {"mfr_lot": "B", "expires_on": "2027-12-31", "quantity": 1},
            ],
            "serials": "V1, V2",
        },
    )
    assert bus.statuses("PO-20")[-1]["type"] == "ReceiptPosted"
    shipments = TypeAdapter(ShipmentMessage)
    sale = {
        "type": "ShipmentRequested",
        "message_id": "req-S-20",
        "shipment_id": "S-20",
        "office": "AI",
        "kind": "sale",
        "customer": "Montboro",
        "ship_on": DAY.isoformat(),
        "lines": [{"line_no": 1, "lic": "VAX", "quantity": 2, "serials": ["V1", "V2"]}],
    }
    ship = {"type": "ShipmentShipRequested", "message_id": "ship-S-20", "shipment_id": "S-20"}
    for document in (sale, ship):
        await bus.publish(bus.topics.shipments, decode(shipments, orjson.dumps(document)))
    assert bus.statuses("S-20")[-1]["type"] == "ShipmentShipped", bus.statuses("S-20")

    async def units() -> list[tuple[str, str, str]]:
        rows = await bus.fetch(
            "allocation", "SELECT serial, mfr_lot, status FROM units ORDER BY serial"
        )
        return [(r["serial"], r["mfr_lot"], r["status"]) for r in rows]

    swapped = [f"(01){GTIN}(10)B(21)V1", f"(01){GTIN}(10)A(21)V2"]
    await bus.receive(
        "RMA-20",
        {"lic": "VAX", "quantity": 2, "scans": swapped},
        source="customer_return",
        customer="Montboro",
    )
    (command,) = bus.commands("RMA-20")
    assert command["type"] == "ReturnStock"
    assert command["serial_lots"] == {"V1": "B", "V2": "A"}
    (refused,) = bus.statuses("RMA-20")
    assert refused["type"] == "ReceiptRejected", refused
    (problem,) = refused["problems"]
    assert (problem["reason_code"], problem["offending"]) == ("INVALID_QUANTITY", "V1")
    assert "scanned with manufacturer lot B" in problem["reason"]
    assert "is in manufacturer lot A" in problem["reason"]
    assert await units() == [("V1", "A", "shipped"), ("V2", "B", "shipped")]

    own = [f"(01){GTIN}(10)A(21)V1", f"(01){GTIN}(10)B(21)V2"]
    await bus.receive(
        "RMA-21",
        {"lic": "VAX", "quantity": 2, "scans": own},
        source="customer_return",
        customer="Montboro",
    )
    (posted,) = bus.statuses("RMA-21")
    assert posted["type"] == "ReceiptPosted", posted
    moves = posted["lines"][0]["movements"]
    assert sorted((m["serial"], m["mfr_lot"]) for m in moves) == [("V1", "A"), ("V2", "B")]
    assert await units() == [("V1", "A", "available"), ("V2", "B", "available")]


async def test_a_receipt_for_items_on_their_way_is_posted_when_the_last_arrives(bus: Bus) -> None:
    await stocked(bus)
    await bus.receive(
        "PO-20",
        {"lic": "PLAIN", "quantity": 1},
        {"lic": "NEW-B", "quantity": 2},
        {"lic": "NEW-A", "quantity": 3},
    )
    assert (bus.statuses("PO-20"), bus.commands("PO-20")) == ([], [])
    assert await bus.held() == [("PO-20", "held", ["NEW-A", "NEW-B"])]

    await bus.item("NEW-A")
    assert (bus.statuses("PO-20"), bus.commands("PO-20")) == ([], [])

    await bus.item("NEW-B")
    (status,) = bus.statuses("PO-20")
    assert status["type"] == "ReceiptPosted", status
    assert [(line["lic"], line["lot_id"]) for line in status["lines"]] == [
        ("PLAIN", "PO-20/1"),
        ("NEW-B", "PO-20/2"),
        ("NEW-A", "PO-20/3"),
    ]
    assert await bus.held() == [("PO-20", "released", ["NEW-A", "NEW-B"])]
    (row,) = await bus.fetch("receiving", "SELECT status FROM receipts")
    assert row["status"] == "posted"


async def test_a_released_receipt_is_checked_in_full_on_the_arrived_items_flags(bus: Bus) -> None:
    """R3: the item arrives lot-tracked and the line names no lots: LOT_REQUIRED."""
    await bus.receive("PO-21", {"lic": "NEW-LOT", "quantity": 2})
    await bus.item("NEW-LOT", track_mfr_lot=True)

    (status,) = bus.statuses("PO-21")
    assert [(p["line_no"], p["reason_code"]) for p in status["problems"]] == [(1, "LOT_REQUIRED")]
    assert bus.commands("PO-21") == []
    assert await bus.held() == [("PO-21", "released", ["NEW-LOT"])]


async def test_a_receipt_whose_known_lines_have_problems_is_refused_at_once(bus: Bus) -> None:
    """R3: waiting for the unknown item could not save it; every problem is named now."""
    await stocked(bus)
    await bus.receive("PO-22", {"lic": "MILK", "quantity": 5}, {"lic": "NEW", "quantity": 1})

    (status,) = bus.statuses("PO-22")
    assert [(p["line_no"], p["reason_code"]) for p in status["problems"]] == [
        (1, "LOT_REQUIRED"),
        (2, "UNKNOWN_ITEM"),
    ]
    assert await bus.held() == []


async def test_a_redelivered_receipt_or_item_event_settles_a_held_receipt_once(bus: Bus) -> None:
    """Past the inbox (whose retention ran out, say): holding and releasing are idempotent."""
    await bus.receive("PO-23", {"lic": "TWICE", "quantity": 1})
    await bus.receive("PO-23", {"lic": "TWICE", "quantity": 1})  # the same message again
    assert await bus.held() == [("PO-23", "held", ["TWICE"])]

    await bus.item("TWICE")
    upserted = [
        row
        for row in bus.published
        if row.topic == bus.topics.events and b'"ItemUpserted"' in row.payload
    ]
    await bus.redeliver(upserted)  # allocation's relay publishes its event again
    await bus.item("TWICE", description="renamed")  # and a later change of the item
    await bus.fetch("receiving", "UPDATE held_receipts SET deadline = now() - interval '1 hour'")
    await bus.settle_expired()

    assert [s["type"] for s in bus.statuses("PO-23")] == ["ReceiptPosted"]
    assert len(bus.commands("PO-23")) == 1
    assert await bus.held() == [("PO-23", "released", ["TWICE"])]
    rows = await bus.fetch("receiving", "SELECT status FROM receipts")
    assert [r["status"] for r in rows] == ["posted"]


@asynccontextmanager
async def held_open(
    bus: Bus, picks: Callable[[list[Inbound[Any]]], bool]
) -> AsyncIterator[asyncio.Event]:
    """The first of receiving's event transactions that `picks` stays open after its handler
    ran, its locks held, until the block ends (whatever happens in it). Yields the event set
    once it is there."""
    inside, go_on = asyncio.Event(), asyncio.Event()
    (route, *others) = bus.routes[bus.topics.events]

    async def collect(uow: UnitOfWork, batch: list[Inbound[Any]]) -> None:
        await bus.receiving.collect_answers(uow, batch)
        if not inside.is_set() and picks(batch):
            inside.set()
            await go_on.wait()

    bus.routes[bus.topics.events] = [Route(route.schema, route.adapter, collect), *others]
    try:
        yield inside
    finally:
        go_on.set()
        bus.routes[bus.topics.events] = [route, *others]


def upserts(lic: str) -> Callable[[list[Inbound[Any]]], bool]:
    return lambda batch: any(
        isinstance(i.message, ItemUpserted) and i.message.lic == lic for i in batch
    )


async def blocked(bus: Bus, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """`work`, started and now waiting for a lock another transaction holds."""
    task = asyncio.create_task(work)
    waiting = asyncio.create_task(bus.lock_waited_for())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), "it should have waited for the lock"
    await waiting
    return task


async def test_an_item_arriving_while_the_deadline_settles_its_receipt_changes_nothing(
    bus: Bus,
) -> None:
    """The periodic job holds the document's row: the arrival waits, then finds it settled."""
    await bus.receive("PO-24", {"lic": "LATE", "quantity": 1})
    await bus.fetch("receiving", "UPDATE held_receipts SET deadline = now()")

    async with bus.unit("receiving") as expiring:
        await bus.receiving.settle_expired(expiring)
        arrival = await blocked(bus, bus.item("LATE"))
    await arrival

    (status,) = bus.statuses("PO-24")
    assert [(p["reason_code"], p["offending"]) for p in status["problems"]] == [
        ("UNKNOWN_ITEM", "LATE")
    ]
    assert bus.commands("PO-24") == []
    assert await bus.held() == [("PO-24", "expired", ["LATE"])]


async def test_the_deadline_passing_while_an_item_releases_its_receipt_changes_nothing(
    bus: Bus,
) -> None:
    """The arrival holds the document's row: the periodic job passes it over (SKIP LOCKED)."""
    await bus.receive("PO-25", {"lic": "SOON", "quantity": 1})
    await bus.fetch("receiving", "UPDATE held_receipts SET deadline = now()")

    arrival = asyncio.create_task(bus.item("SOON"))
    async with held_open(bus, upserts("SOON")) as inside:
        await asyncio.wait_for(inside.wait(), 10)  # released, not committed
        await asyncio.wait_for(bus.settle_expired(), 10)
        assert bus.statuses("PO-25") == []
    await arrival

    assert [s["type"] for s in bus.statuses("PO-25")] == ["ReceiptPosted"]
    assert await bus.held() == [("PO-25", "released", ["SOON"])]


async def test_a_receipt_checked_while_its_item_arrives_is_not_left_waiting(bus: Bus) -> None:
    """The receipt reads the item as unknown before the arrival commits; the arrival looked
    for held documents before the receipt's was committed. Locking the LIC, then reading again,
    makes the later of the two see the earlier: the receipt is posted at once."""
    arrival = asyncio.create_task(bus.item("RACE"))
    async with held_open(bus, upserts("RACE")) as inside:
        await asyncio.wait_for(inside.wait(), 10)  # stored, looked for held documents
        receipt = await blocked(bus, bus.receive("PO-26", {"lic": "RACE", "quantity": 1}))
    await arrival
    await receipt

    assert [s["type"] for s in bus.statuses("PO-26")] == ["ReceiptPosted"]
    assert await bus.held() == []


async def test_two_items_of_one_receipt_arriving_at_once_release_it(bus: Bus) -> None:
    """Each arrival (two partitions, two processes) stores its own item and finds the other
    missing, unless they take turns: the second locks the document after the first committed,
    then reads the first's item."""
    await bus.receive("PO-27", {"lic": "PAIR-A", "quantity": 1}, {"lic": "PAIR-B", "quantity": 1})

    first = asyncio.create_task(bus.item("PAIR-A"))
    async with held_open(bus, upserts("PAIR-A")) as inside:
        await asyncio.wait_for(inside.wait(), 10)  # stored PAIR-A, found PAIR-B missing
        second = await blocked(bus, bus.item("PAIR-B"))
    await first
    await second

    assert [s["type"] for s in bus.statuses("PO-27")] == ["ReceiptPosted"]
    assert await bus.held() == [("PO-27", "released", ["PAIR-A", "PAIR-B"])]


async def test_a_document_refused_by_allocation_is_posted_when_sent_again_corrected(
    bus: Bus,
) -> None:
    """R3, R4: the ERP fixes the line allocation refused and sends the document again under a
    new message_id: the line that was only held left nothing behind (no inventory lot
    `<shipment_id>/<line_no>`, no serial), so the corrected document posts whole."""
    await stocked(bus)
    await bus.receive("PO-50", {"lic": "CAM", "quantity": 1, "serials": ["S1"]})
    lines = ({"lic": "CAM", "quantity": 1, "serials": ["S7"]}, {"lic": "PLAIN", "quantity": 2})
    await bus.receive("PO-51", *lines, {"lic": "CAM", "quantity": 1, "serials": ["S1"]})
    (refused,) = bus.statuses("PO-51")
    assert refused["type"] == "ReceiptRejected"

    corrected = {"lic": "CAM", "quantity": 1, "serials": ["S2"]}
    await bus.publish(
        bus.topics.receipts, receipt("PO-51", *lines, corrected, message_id="msg-PO-51b")
    )
    posted = bus.statuses("PO-51")[1]
    assert (posted["type"], posted["answers"]) == ("ReceiptPosted", ["msg-PO-51b"])
    assert [line["lot_id"] for line in posted["lines"]] == ["PO-51/1", "PO-51/2", "PO-51/3"]
    assert [m["serial"] for m in posted["lines"][0]["movements"]] == ["S7"]
