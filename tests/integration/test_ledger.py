"""The ledger against a real PostgreSQL: its handlers in a real transaction, its read API over
the tables they wrote (R7, R10–R16, DESIGN.md §4)."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import AsyncIterator, Callable
from datetime import date
from decimal import Context, Decimal, localcontext
from typing import Any

import asyncpg
import httpx
import pytest

from services.ledger import api as api_module
from services.ledger import queries, service
from services.ledger.api import CSV_COLUMNS, create_api
from services.ledger.app import MIGRATIONS, SCHEMA
from shared import asyncapi, db
from shared.consumer import Inbound, UnitOfWork
from shared.contracts import events as e
from shared.contracts.upstream import PurchaseOrderUpdated
from shared.offload import HEAVY
from shared.outbox import Outbox
from tests.fixtures.infra import LotlineEnv
from tests.fixtures.locks import waits_for_a_lock

D = Decimal
FOOD = "FOOD-1"
CAM = "DC-IP3VO-4"


class Wire:
    """Events as allocation publishes them on `inventory.events`, with fresh message ids."""

    def __init__(self, first_id: int = 0) -> None:
        # Two Wires in one test must not reuse message ids: the ledger skips one it has seen.
        self._n = first_id

    def _id(self, what: str) -> str:
        self._n += 1
        return f"{what}-{self._n}"

    def item(self, lic: str, **flags: Any) -> e.ItemUpserted:
        values = {"track_mfr_lot": False, "serialized": False, "perishable": False} | flags
        return e.ItemUpserted(
            message_id=self._id("item"),
            command_id="c",
            lic=lic,
            est_unit_cost=values.pop("est_unit_cost", D(0)),
            **values,
        )

    def received(
        self,
        lic: str,
        lot_id: str,
        quantity: int,
        cost: str,
        moves: list[e.Movement],
        *,
        po: str,
        on: date,
        office: str = "AI",
        vendor: str | None = None,
        shipment: str | None = None,
        line_no: int = 1,
        bin: str | None = None,
    ) -> e.StockReceived:
        return e.StockReceived(
            message_id=self._id("received"),
            command_id="c",
            lic=lic,
            shipment_id=shipment or f"IN-{po}",
            line_no=line_no,
            lot_id=lot_id,
            office=office,
            kind="purchase",
            reference=po,
            vendor=vendor,
            received_on=on,
            quantity=D(quantity),
            unit_cost=D(cost),
            movements=moves,
            bin=bin,
        )

    def allocated(
        self, lic: str, shipment: str, moves: list[e.Movement], *, customer: str, on: date
    ) -> e.LineAllocated:
        return e.LineAllocated(
            message_id=self._id("allocated"),
            command_id="c",
            lic=lic,
            shipment_id=shipment,
            line_no=1,
            office="AI",
            counterparty=customer,
            ship_on=on,
            quantity=sum((m.quantity for m in moves), D(0)),
            movements=moves,
        )

    def shipped(
        self, lic: str, shipment: str, moves: list[e.Movement], *, customer: str, on: date
    ) -> e.LineShipped:
        return e.LineShipped(
            message_id=self._id("shipped"),
            command_id="c",
            lic=lic,
            shipment_id=shipment,
            line_no=1,
            office="AI",
            counterparty=customer,
            ship_on=on,
            quantity=sum((m.quantity for m in moves), D(0)),
            movements=moves,
        )

    def sale(
        self, lic: str, shipment: str, moves: list[e.Movement], *, customer: str, on: date
    ) -> list[e.Event]:
        return [
            self.allocated(lic, shipment, moves, customer=customer, on=on),
            self.shipped(lic, shipment, moves, customer=customer, on=on),
        ]

    def vendor_return(
        self, lic: str, document: str, moves: list[e.Movement], *, vendor: str, on: date
    ) -> list[e.Event]:
        """A return to vendor (R14): allocated, then shipped back with kind vendor_return."""
        allocated = self.allocated(lic, document, moves, customer=vendor, on=on)
        shipped = self.shipped(lic, document, moves, customer=vendor, on=on)
        return [
            allocated.model_copy(update={"kind": "vendor_return"}),
            shipped.model_copy(update={"kind": "vendor_return"}),
        ]

    def returned(
        self, lic: str, document: str, moves: list[e.Movement], *, customer: str, on: date
    ) -> e.StockReturned:
        return e.StockReturned(
            message_id=self._id("returned"),
            command_id="c",
            lic=lic,
            shipment_id=document,
            line_no=1,
            office="AI",
            customer=customer,
            received_on=on,
            quantity=sum((m.quantity for m in moves), D(0)),
            movements=moves,
        )

    def adjusted(
        self,
        lic: str,
        adjustment: str,
        kind: str,
        moves: list[e.Movement],
        *,
        on: date,
        office: str = "AI",
        reason: str = "",
    ) -> e.InventoryAdjusted:
        return e.InventoryAdjusted.model_validate(
            {
                "message_id": self._id("adjusted"),
                "command_id": "c",
                "lic": lic,
                "adjustment_id": adjustment,
                "office": office,
                "kind": kind,
                "quantity": sum((m.quantity for m in moves), D(0)),
                "adjusted_on": on,
                "reason": reason,
                "unallocated": sum((m.quantity for m in moves if m.lot_id is None), D(0)),
                "movements": moves,
            }
        )

    def po(self, po: str, lic: str, **fields: Any) -> PurchaseOrderUpdated:
        return PurchaseOrderUpdated(message_id=self._id("po"), po=po, lic=lic, **fields)


def mv(
    lot_id: str | None,
    quantity: int,
    cost: str,
    *,
    mfr_lot: str | None = None,
    serial: str | None = None,
    expires_on: date | None = None,
) -> e.Movement:
    return e.Movement(
        lot_id=lot_id,
        mfr_lot=mfr_lot,
        serial=serial,
        expires_on=expires_on,
        quantity=D(quantity),
        unit_cost=D(cost),
    )


async def record(pool: asyncpg.Pool, *events: e.Event | list[e.Event]) -> None:
    """One batch through the `inventory.events` handler, in one transaction (as the consumer
    runs it)."""
    flat: list[e.Event] = []
    for event in events:
        flat.extend(event if isinstance(event, list) else [event])
    batch = [
        Inbound(event, "inventory.events", 0, n, event.lic.encode()) for n, event in enumerate(flat)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await service.record_events(UnitOfWork(conn, Outbox()), batch)  # type: ignore[arg-type]


async def record_costs(pool: asyncpg.Pool, *updates: PurchaseOrderUpdated) -> None:
    batch = [Inbound(u, "inventory.costs", 0, n, u.po.encode()) for n, u in enumerate(updates)]
    async with pool.acquire() as conn, conn.transaction():
        await service.record_costs(UnitOfWork(conn, Outbox()), batch)  # type: ignore[arg-type]


@pytest.fixture
async def pool(lotline_env: Callable[..., LotlineEnv]) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database with the ledger's schema migrated, and a pool on it."""
    env = lotline_env(topics=False)
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    pool = await db.create_pool(env.dsn, SCHEMA)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api(lambda: pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        yield client


async def get(api: httpx.AsyncClient, url: str, **params: str) -> Any:
    response = await api.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- the recall scenario ----------------------------------------------------------------------

M42 = "M-42"
EXP = date(2024, 6, 30)


def recall_scenario(w: Wire) -> list[e.Event | list[e.Event]]:
    """PO-100 received 10 of mfr lot M-42 (and 5 of M-43) into lot L-100; M-42 split across
    three customers, one unit returned by Bravo, one lost. The loss is dated before the return
    but recorded after it. Another item also has a mfr lot M-42."""

    def m42(quantity: int, lot: str = "L-100") -> e.Movement:
        return mv(lot, quantity, "2.50", mfr_lot=M42, expires_on=EXP)

    m43 = mv("L-100", 1, "2.50", mfr_lot="M-43", expires_on=EXP)
    return [
        w.item(
            FOOD, description="Peanut butter 1kg", uom="Jar", track_mfr_lot=True, perishable=True
        ),
        w.item("OTHER", track_mfr_lot=True),
        w.received(
            FOOD,
            "L-100",
            15,
            "2.50",
            [m42(10), mv("L-100", 5, "2.50", mfr_lot="M-43", expires_on=EXP)],
            po="PO-100",
            on=date(2024, 1, 10),
        ),
        w.received(
            "OTHER",
            "L-900",
            4,
            "1",
            [mv("L-900", 4, "1", mfr_lot=M42)],
            po="PO-9",
            on=date(2024, 1, 11),
        ),
        w.sale(FOOD, "OUT-1", [m42(3)], customer="Alpha Foods", on=date(2024, 1, 12)),
        w.sale(FOOD, "OUT-2", [m42(2)], customer="Bravo Market", on=date(2024, 1, 15)),
        w.sale(FOOD, "OUT-3", [m42(3), m43], customer="Charlie Deli", on=date(2024, 1, 20)),
        w.returned(FOOD, "RMA-1", [m42(1)], customer="Bravo Market", on=date(2024, 1, 25)),
        w.adjusted(FOOD, "ADJ-1", "loss", [m42(-1)], on=date(2024, 1, 22), reason="dropped"),
    ]


EXPECTED_M42 = [
    ("2024-01-10", "receipt", "10", "IN-PO-100", None),
    ("2024-01-12", "allocation", "3", "OUT-1", "Alpha Foods"),
    ("2024-01-12", "shipment", "3", "OUT-1", "Alpha Foods"),
    ("2024-01-15", "allocation", "2", "OUT-2", "Bravo Market"),
    ("2024-01-15", "shipment", "2", "OUT-2", "Bravo Market"),
    ("2024-01-20", "allocation", "3", "OUT-3", "Charlie Deli"),
    ("2024-01-20", "shipment", "3", "OUT-3", "Charlie Deli"),
    ("2024-01-22", "loss", "1", "ADJ-1", None),
    ("2024-01-25", "customer_return", "1", "RMA-1", "Bravo Market"),
]


async def test_forward_trace_of_a_mfr_lot_lists_exactly_its_receipt_shipments_return_and_loss(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15, §4 trace: every receipt, allocation, shipment with its customer, adjustment and
    return touching the manufacturer lot, oldest first; nothing of other lots or items."""
    await record(pool, *recall_scenario(Wire()))

    trace = await get(api, "/trace", lic=FOOD, mfr_lot=M42)

    assert [
        (t["date"], t["event_type"], t["quantity"], t["document"], t["counterparty"])
        for t in trace["events"]
    ] == EXPECTED_M42
    assert trace["customers"] == ["Alpha Foods", "Bravo Market", "Charlie Deli"]
    assert [(o["lot_id"], o["reference"], o["kind"]) for o in trace["origins"]] == [
        ("L-100", "PO-100", "purchase")
    ]
    assert {t["reference"] for t in trace["events"]} == {"PO-100"}
    assert trace["events"][-2]["reason"] == "dropped"
    assert (trace["description"], trace["uom"]) == ("Peanut butter 1kg", "Jar")


REQUIRED_CSV_COLUMNS = [
    "LIC",
    "Description",
    "Manufacturer lot",
    "Serial",
    "Expiry",
    "Quantity",
    "Unit of measure",
    "Date",
    "Office",
    "Document",
    "Counterparty",
    "Event type",
]
"""The recall spreadsheet's key data elements, in the order sheets already rely on."""


async def test_trace_csv_is_a_sortable_recall_spreadsheet(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4: format=csv gives one row per event with LIC, description, manufacturer lot, serial,
    expiry, quantity, unit of measure, date, office, document, counterparty and event type;
    it parses, and sorting it by date keeps the trace's order."""
    await record(pool, *recall_scenario(Wire()))

    response = await api.get("/trace", params={"lic": FOOD, "mfr_lot": M42, "format": "csv"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert list(CSV_COLUMNS[:15]) == [*REQUIRED_CSV_COLUMNS, "Inventory lot", "Reference", "Vendor"]
    assert {r["Vendor"] for r in rows} == {""}  # PO-100's receipt named no vendor
    assert [
        (r["Date"], r["Event type"], r["Quantity"], r["Document"], r["Counterparty"] or None)
        for r in rows
    ] == EXPECTED_M42
    assert {
        (r["LIC"], r["Description"], r["Manufacturer lot"], r["Expiry"], r["Unit of measure"])
        for r in rows
    } == {(FOOD, "Peanut butter 1kg", M42, "2024-06-30", "Jar")}
    assert {r["Office"] for r in rows} == {"AI"} and {r["Serial"] for r in rows} == {""}
    by_date = sorted(rows, key=lambda r: r["Date"])
    assert [r["Date"] for r in by_date] == [r["Date"] for r in rows]
    customers = sorted({r["Counterparty"] for r in rows if r["Event type"] == "shipment"})
    assert customers == ["Alpha Foods", "Bravo Market", "Charlie Deli"]


async def test_the_recall_sheet_tells_stock_counted_in_from_stock_counted_out(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4, R11: a count or loss may add stock or remove it, with the same quantity. The recall
    sheet's columns appended after Vendor say which (Stock change, as in the JSON trace), why
    (Reason), and at what cost (Unit cost, Cost); the columns before keep their places."""
    w = Wire()

    def m(quantity: int) -> e.Movement:
        return mv("L1", quantity, "2.50", mfr_lot="M1", expires_on=date(2025, 1, 1))

    await record(
        pool,
        w.item("FOOD", track_mfr_lot=True, perishable=True),
        w.received("FOOD", "L1", 10, "2.50", [m(10)], po="PO-1", on=date(2024, 1, 10)),
        w.sale("FOOD", "OUT-1", [m(4)], customer="Alpha", on=date(2024, 1, 12)),
        w.adjusted("FOOD", "CNT-1", "count", [m(2)], on=date(2024, 1, 14), reason="found"),
        w.adjusted("FOOD", "CNT-2", "count", [m(-2)], on=date(2024, 1, 14), reason="-missing"),
    )

    response = await api.get("/trace", params={"lic": "FOOD", "mfr_lot": "M1", "format": "csv"})

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0])[15:19] == ["Stock change", "Reason", "Unit cost", "Cost"]
    assert [
        (r["Event type"], r["Quantity"], r["Stock change"], r["Reason"], r["Unit cost"], r["Cost"])
        for r in rows
    ] == [
        ("receipt", "10", "10", "", "2.50", "25.00"),
        ("allocation", "4", "0", "", "2.50", "10.00"),
        ("shipment", "4", "-4", "", "2.50", "10.00"),
        ("count", "2", "2", "found", "2.50", "5.00"),
        ("count", "2", "-2", "'-missing", "2.50", "5.00"),  # text, never a formula
    ]


async def test_a_back_dated_sale_is_listed_by_its_date_and_shows_it_was_recorded_later(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15: a sale dated before the receipt it took stock from (a document posted late) is
    listed by its business date, first; its `recorded_seq` and `recorded_at` (JSON, and the
    sheet's last two columns) say it was recorded after the receipt, so an auditor reading
    "shipped before received" can see what happened when."""
    w = Wire()

    def m(quantity: int) -> e.Movement:
        return mv("L1", quantity, "2.50", mfr_lot="M1", expires_on=date(2025, 1, 1))

    await record(
        pool,
        w.item("FOOD", track_mfr_lot=True, perishable=True),
        w.received("FOOD", "L1", 10, "2.50", [m(10)], po="PO-1", on=date(2024, 1, 10)),
    )
    await record(pool, w.sale("FOOD", "OUT-1", [m(4)], customer="Alpha", on=date(2024, 1, 2)))

    trace = (await api.get("/trace", params={"lic": "FOOD", "mfr_lot": "M1"})).json()
    sheet = await api.get("/trace", params={"lic": "FOOD", "mfr_lot": "M1", "format": "csv"})

    events = trace["events"]
    assert [(r["event_type"], r["date"]) for r in events] == [
        ("allocation", "2024-01-02"),
        ("shipment", "2024-01-02"),
        ("receipt", "2024-01-10"),
    ]
    allocation, shipment, receipt = events
    assert receipt["recorded_seq"] < allocation["recorded_seq"] < shipment["recorded_seq"]
    # Each batch is its own transaction: the sale's records were recorded after the receipt's.
    assert receipt["recorded_at"] < shipment["recorded_at"]
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert [(r["Event type"], r["Recorded order"], r["Recorded at"]) for r in rows] == [
        (r["event_type"], str(r["recorded_seq"]), r["recorded_at"]) for r in events
    ]


VENDOR = "Aperture Optics"


async def test_backward_trace_of_a_shipped_serial_reaches_its_purchase_order_and_vendor(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15, seed: serial 200937842 shipped to Montboro High School East traces back to its
    receipt on PO-60006 and the vendor it was bought from, and its status and full history
    are listed."""
    w = Wire()
    serials = [mv("60002", 1, "300.00", serial=s) for s in ("134593568", "200937842")]
    await record(
        pool,
        w.item(CAM, description="IP3VO Document Camera v4", serialized=True),
        w.received(
            CAM, "60002", 2, "300.00", serials, po="PO-60006", on=date(2023, 8, 1), vendor=VENDOR
        ),
        w.sale(
            CAM, "60007", [serials[1]], customer="Montboro High School East", on=date(2023, 8, 1)
        ),
    )

    trace = await get(api, "/trace", lic=CAM, serial="200937842")
    serial = await get(api, f"/serials/{CAM}/200937842")
    sheet = await api.get("/trace", params={"lic": CAM, "serial": "200937842", "format": "csv"})

    assert [
        (o["lot_id"], o["reference"], o["document"], o["vendor"]) for o in trace["origins"]
    ] == [("60002", "PO-60006", "IN-PO-60006", VENDOR)]
    assert [(t["event_type"], t["reference"], t["vendor"]) for t in trace["events"]] == [
        ("receipt", "PO-60006", VENDOR),
        ("allocation", "PO-60006", VENDOR),
        ("shipment", "PO-60006", VENDOR),
    ]
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert [(r["Event type"], r["Reference"], r["Vendor"]) for r in rows] == [
        ("receipt", "PO-60006", VENDOR),
        ("allocation", "PO-60006", VENDOR),
        ("shipment", "PO-60006", VENDOR),
    ]
    assert serial["vendor"] == serial["current"]["vendor"] == VENDOR
    assert {h["vendor"] for h in serial["history"]} == {VENDOR}
    assert trace["customers"] == ["Montboro High School East"]
    assert (serial["status"], serial["current"]["counterparty"], serial["current"]["document"]) == (
        "shipped",
        "Montboro High School East",
        "60007",
    )
    assert [h["event_type"] for h in serial["history"]] == ["receipt", "allocation", "shipment"]
    assert serial["history"][0]["cost"] == "300.00"


async def test_a_serial_is_where_its_last_recorded_change_put_it_whatever_its_date(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15, §4 `/serials`: the status is the one of the serial's last recorded change, though
    a later record may carry an earlier business date. SN-9, counted out on 03-10, is found
    again by a beginning balance dated 03-01 (the period's opening date, recorded after the
    count); SN-5, returned to the vendor on 01-20, comes back by a receipt dated 01-15."""
    w = Wire()
    sn9, sn5 = mv("IN-7/1", 1, "300", serial="SN-9"), mv("IN-5/1", 1, "300", serial="SN-5")
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "IN-7/1", 1, "300", [sn9], po="PO-7", on=date(2024, 2, 1)),
        w.received(CAM, "IN-5/1", 1, "300", [sn5], po="PO-5", on=date(2024, 1, 10)),
    )
    await record(
        pool,
        w.adjusted(
            CAM, "CNT-1", "count", [mv("IN-7/1", -1, "300", serial="SN-9")], on=date(2024, 3, 10)
        ),
    )
    found = w.adjusted(
        CAM,
        "BB-1",
        "beginning_balance",
        [mv("BB-1/BB", 1, "300", serial="SN-9")],
        on=date(2024, 3, 1),
    )
    await record(pool, found.model_copy(update={"lot_id": "BB-1/BB"}))
    await record(pool, w.vendor_return(CAM, "RTV-1", [sn5], vendor=VENDOR, on=date(2024, 1, 20)))
    await record(
        pool,
        w.received(
            CAM,
            "IN-6/1",
            1,
            "300",
            [mv("IN-6/1", 1, "300", serial="SN-5")],
            po="PO-6",
            on=date(2024, 1, 15),
        ),
    )

    sn9_now = await get(api, f"/serials/{CAM}/SN-9")
    sn5_now = await get(api, f"/serials/{CAM}/SN-5")

    assert (sn9_now["status"], sn9_now["current"]["lot_id"]) == ("available", "BB-1/BB")
    assert [(r["lot_id"], r["status"]) for r in sn9_now["records"]] == [
        ("BB-1/BB", "available"),
        ("IN-7/1", "removed"),
    ]
    assert (sn5_now["status"], sn5_now["current"]["lot_id"]) == ("available", "IN-6/1")
    assert [r["status"] for r in sn5_now["records"]] == ["available", "returned_to_vendor"]


async def test_a_serial_received_and_shipped_in_one_batch_keeps_its_receipt_date(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15: SN-1 received on 01-10 and shipped on 01-20, recorded in one consumer batch (the
    ledger catching up): it was received on 01-10, in `/serials` and in its lot's serials."""
    w = Wire()
    sn1 = mv("IN-1/1", 1, "300", serial="SN-1")
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "IN-1/1", 1, "300", [sn1], po="PO-1", on=date(2024, 1, 10)),
        w.sale(CAM, "OUT-1", [sn1], customer="Alpha", on=date(2024, 1, 20)),
    )

    serial = await get(api, f"/serials/{CAM}/SN-1")
    lot = await get(api, "/lots/IN-1/1")

    assert (serial["current"]["received_on"], serial["current"]["changed_on"]) == (
        "2024-01-10",
        "2024-01-20",
    )
    assert [(s["received_on"], s["status"]) for s in lot["serials"]] == [("2024-01-10", "shipped")]


async def test_a_big_event_is_booked_off_the_event_loop_and_a_small_one_at_once(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§6: booking costs about 10 µs a movement (a 100,000-serial shipment's events take
    seconds), so a batch of many movements is booked in a worker thread (`shared.offload`)
    while the loop, which the consumers' heartbeats and the read API share, goes on."""
    threads: list[int] = []
    booked = service.record

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return booked(*args, **kwargs)

    monkeypatch.setattr(service, "record", watched)
    many = HEAVY // service.MOVE_WEIGHT
    w = Wire()
    units = [mv("IN-1/1", 1, "300", serial=f"SN-{n}") for n in range(many)]
    await record(pool, w.item(CAM, serialized=True))
    await record(
        pool, w.received(CAM, "IN-1/1", many, "300", units, po="PO-1", on=date(2024, 1, 10))
    )
    await record(pool, w.sale(CAM, "OUT-1", units[:1], customer="Alpha", on=date(2024, 1, 20)))

    async with pool.acquire() as conn:
        counts = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'available') AS available,"
            " count(*) FILTER (WHERE status = 'shipped') AS shipped FROM serials WHERE lic = $1",
            CAM,
        )
    assert (counts["available"], counts["shipped"]) == (many - 1, 1)
    assert threads[-2] != threading.get_ident()  # the receipt of `many` serials
    assert threads[-1] == threading.get_ident()  # the sale of one


# -- valuation and costing --------------------------------------------------------------------


async def test_seed_lot_valuation_before_and_after_one_unit_ships(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R7, seed DC-IP3VO-4: ordered 2, received 2, purchased 0, accrued 2, used 0, current 2 at
    300.00 (600.00); after one unit ships: used 1 (300.00), current 1 (300.00)."""
    w = Wire()
    serials = [mv("60002", 1, "300.00", serial=s) for s in ("134593568", "200937842")]
    await record(
        pool,
        w.item(CAM, description="IP3VO Document Camera v4", serialized=True),
        w.received(
            CAM, "60002", 2, "300.00", serials, po="PO-60006", on=date(2023, 8, 1), vendor=VENDOR
        ),
    )
    await record_costs(pool, w.po("PO-60006", CAM, ordered_quantity=D(2), purchased_quantity=D(0)))

    lot = await get(api, "/lots/60002")
    v = lot["valuation"]
    assert (lot["transaction_id"], lot["parent_order"], lot["office"], lot["date"]) == (
        "IN-PO-60006",
        "PO-60006",
        "AI",
        "2023-08-01",
    )
    assert lot["serialized"] and not lot["track_mfr_lot"] and lot["status"] == "open"
    assert lot["vendor"] == VENDOR and {s["vendor"] for s in lot["serials"]} == {VENDOR}
    assert v["current"] == {"quantity": "2", "value": "600.00"}  # fixed-point text, never 6E+2
    assert _figures(v) == {
        "ordered": ("2", "600"),
        "purchased": ("0", "0"),
        "purchased_remaining": ("2", "600"),
        "received": ("2", "600"),
        "received_remaining": ("0", "0"),
        "accrued": ("2", "600"),
        "used": ("0", "0"),
        "current": ("2", "600"),
        "allocated": ("0", "0"),
        "available": ("2", "600"),
    }
    assert [(s["serial"], s["status"]) for s in lot["serials"]] == [
        ("134593568", "available"),
        ("200937842", "available"),
    ]

    await record(
        pool,
        w.sale(
            CAM, "60007", [serials[1]], customer="Montboro High School East", on=date(2023, 8, 2)
        ),
    )

    lot = await get(api, "/lots/60002")
    figures = _figures(lot["valuation"])
    assert figures["used"] == ("1", "300") and figures["current"] == ("1", "300")
    assert figures["accrued"] == ("2", "600")
    assert [
        (s["serial"], s["status"], s["document"], s["counterparty"]) for s in lot["serials"]
    ] == [
        ("134593568", "available", "IN-PO-60006", None),
        ("200937842", "shipped", "60007", "Montboro High School East"),
    ]
    assert [(c["kind"], D(c["amount"]), c["serial"]) for c in lot["cogs"]] == [
        ("usage", D(300), "200937842")
    ]


def _figures(valuation: dict[str, Any]) -> dict[str, tuple[str, str] | None]:
    names = (
        "ordered",
        "purchased",
        "purchased_remaining",
        "received",
        "received_remaining",
        "accrued",
        "used",
        "current",
        "allocated",
        "available",
    )

    def plain(text: str) -> str:
        return format(D(text).normalize(), "f")

    return {
        n: None
        if valuation[n] is None
        else (plain(valuation[n]["quantity"]), plain(valuation[n]["value"]))
        for n in names
    }


async def test_a_po_line_received_in_two_lots_is_shared_between_them(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R7: PO-8 ordered 10 and purchased 10, received 6 (IN-1) then 4 (IN-2): each lot shows
    its own share of the line, so ordered, purchased and accrued add up to the PO's (accrued 0
    each, not −4 and −6). Before the second receipt the one lot carries the whole line (4 still
    to be received). Another PO line's lot and another item's lot of PO-8 are not mixed in."""
    w = Wire()

    def receive(lot_id: str, qty: int, on: date, shipment: str, lic: str = "BOLT") -> e.Event:
        moves = [mv(lot_id, qty, "10")]
        return w.received(lic, lot_id, qty, "10", moves, po="PO-8", on=on, shipment=shipment)

    await record(
        pool,
        w.item("BOLT"),
        w.item("NUT"),
        receive("L-A", 6, date(2024, 3, 1), "IN-1"),
        receive("L-N", 5, date(2024, 3, 1), "IN-1", lic="NUT"),
        w.received("BOLT", "L-X", 2, "10", [mv("L-X", 2, "10")], po="PO-9", on=date(2024, 3, 1)),
    )
    await record_costs(
        pool,
        w.po("PO-8", "BOLT", ordered_quantity=D(10), purchased_quantity=D(10)),
        w.po("PO-8", "NUT", ordered_quantity=D(5), purchased_quantity=D(5)),
        w.po("PO-9", "BOLT", ordered_quantity=D(2), purchased_quantity=D(0)),
    )

    alone = _figures((await get(api, "/lots/L-A"))["valuation"])
    assert (alone["ordered"], alone["purchased"], alone["accrued"]) == (
        ("10", "100"),
        ("10", "100"),
        ("-4", "-40"),
    )
    assert alone["received_remaining"] == ("4", "40")

    await record(pool, receive("L-B", 4, date(2024, 3, 5), "IN-2"))

    lots = [_figures((await get(api, f"/lots/{lot}"))["valuation"]) for lot in ("L-A", "L-B")]
    assert [(v["ordered"], v["purchased"], v["received"], v["accrued"]) for v in lots] == [
        (("6", "60"), ("6", "60"), ("6", "60"), ("0", "0")),
        (("4", "40"), ("4", "40"), ("4", "40"), ("0", "0")),
    ]
    assert [v["received_remaining"] for v in lots] == [("0", "0"), ("0", "0")]
    other = _figures((await get(api, "/lots/L-X"))["valuation"])
    nut = _figures((await get(api, "/lots/L-N"))["valuation"])
    assert (other["ordered"], other["accrued"]) == (("2", "20"), ("2", "20"))
    assert (nut["ordered"], nut["accrued"]) == (("5", "50"), ("0", "0"))


async def test_lots_of_a_po_line_received_the_same_day_in_one_batch_share_it_in_arrival_order(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R7: PO-8 ordered 10; IN-9 received 6 into L-9, then IN-10 6 into L-10, the same day,
    recorded in one batch. The first to arrive takes its 6 of the line, the second what is
    left (4): not the first by name ("IN-10" < "IN-9", "L-10" < "L-9")."""
    w = Wire()

    def receive(lot_id: str, shipment: str) -> e.Event:
        moves = [mv(lot_id, 6, "10")]
        return w.received(
            "BOLT", lot_id, 6, "10", moves, po="PO-8", on=date(2024, 3, 1), shipment=shipment
        )

    await record(pool, w.item("BOLT"), receive("L-9", "IN-9"), receive("L-10", "IN-10"))
    await record_costs(pool, w.po("PO-8", "BOLT", ordered_quantity=D(10), purchased_quantity=D(10)))

    lots = [_figures((await get(api, f"/lots/{lot}"))["valuation"]) for lot in ("L-9", "L-10")]
    assert [(v["ordered"], v["received"], v["accrued"]) for v in lots] == [
        (("6", "60"), ("6", "60"), ("0", "0")),
        (("4", "40"), ("6", "60"), ("2", "20")),
    ]


async def test_po_close_reconciles_cogs_exactly_once_and_later_usage_costs_actual(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R16: usage is booked at the estimate; closing PO-1 (actual 12 > 10) and PO-2 (9 < 10)
    writes one reconciliation per usage of their lots (several lots, partial usage, a
    reversal); the close delivered again under a new message id changes nothing; later usage
    of those lots is booked at the actual cost."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT"),
        w.received("BOLT", "L1", 10, "10", [mv("L1", 10, "10")], po="PO-1", on=date(2024, 2, 1)),
        w.received("BOLT", "L2", 5, "10", [mv("L2", 5, "10")], po="PO-1", on=date(2024, 2, 2)),
        w.received("BOLT", "L9", 4, "10", [mv("L9", 4, "10")], po="PO-2", on=date(2024, 2, 3)),
        w.sale("BOLT", "OUT-1", [mv("L1", 3, "10")], customer="ACME", on=date(2024, 2, 5)),
        w.adjusted("BOLT", "ADJ-1", "loss", [mv("L2", -1, "10")], on=date(2024, 2, 6)),
        w.returned("BOLT", "RMA-1", [mv("L1", 1, "10")], customer="ACME", on=date(2024, 2, 7)),
        w.sale("BOLT", "OUT-2", [mv("L9", 2, "10")], customer="Bravo", on=date(2024, 2, 8)),
    )
    close_1 = w.po("PO-1", "BOLT", act_unit_cost=D(12), closed=True)
    close_2 = w.po("PO-2", "BOLT", act_unit_cost=D(9), closed=True)

    await record_costs(pool, close_1, close_2)
    await record_costs(pool, w.po("PO-1", "BOLT", act_unit_cost=D(12), closed=True))

    reconciliations = await _cogs(pool, "reconciliation")
    assert reconciliations == [
        ("L1", "shipment", D(3), D(6)),
        ("L2", "loss", D(1), D(2)),
        ("L1", "customer_return", D(-1), D(-2)),
        ("L9", "shipment", D(2), D(-2)),
    ]

    await record(
        pool, w.sale("BOLT", "OUT-3", [mv("L1", 2, "10")], customer="ACME", on=date(2024, 3, 1))
    )

    usage = await get(api, "/usage", lic="BOLT", lot_id="L1")
    assert [
        (u["source"], D(u["quantity"]), D(u["unit_cost"]), D(u["est_unit_cost"])) for u in usage
    ] == [
        ("shipment", 3, 10, 10),
        ("customer_return", -1, 10, 10),
        ("shipment", 2, 12, 10),
    ]
    lot = await get(api, "/lots/L1")
    assert D(lot["valuation"]["unit_cost"]) == 12 and lot["valuation"]["cost_is_final"]
    assert D(lot["cogs_total"]) == 4 * 12  # 3 − 1 + 2 units, all at the actual cost
    assert await _cogs(pool, "reconciliation") == reconciliations


async def test_a_return_to_vendor_is_usage_without_cogs_and_its_po_close_reconciles_it_apart(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R14, R15, R16: goods returned to the vendor leave the lot (usage record, used, trace)
    but are a credit against purchases, not COGS: closing the PO reconciles the sale (COGS)
    and the return with an entry of its own kind, which `cogs_total` leaves out."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT"),
        w.received("BOLT", "L5", 10, "10", [mv("L5", 10, "10")], po="PO-5", on=date(2024, 5, 1)),
        w.sale("BOLT", "OUT-1", [mv("L5", 3, "10")], customer="ACME", on=date(2024, 5, 2)),
        w.vendor_return(
            "BOLT", "RTV-1", [mv("L5", 4, "10")], vendor="Aperture", on=date(2024, 5, 3)
        ),
    )
    await record_costs(pool, w.po("PO-5", "BOLT", act_unit_cost=D(12), closed=True))

    usage = await get(api, "/usage", lic="BOLT")
    assert [(u["source"], D(u["quantity"]), u["counterparty"]) for u in usage] == [
        ("shipment", 3, "ACME"),
        ("vendor_return", 4, "Aperture"),
    ]
    lot = await get(api, "/lots/L5")
    assert [(c["kind"], c["source"], D(c["amount"])) for c in lot["cogs"]] == [
        ("usage", "shipment", 30),
        ("reconciliation", "shipment", 6),
        ("vendor_return_reconciliation", "vendor_return", 8),
    ]
    assert D(lot["cogs_total"]) == 3 * 12
    assert (
        D(lot["valuation"]["used"]["quantity"]),
        D(lot["valuation"]["current"]["quantity"]),
    ) == (
        7,
        3,
    )
    trace = await get(api, "/trace", lic="BOLT", lot_id="L5")
    assert [(t["event_type"], t["counterparty"]) for t in trace["events"]][-3:] == [
        ("allocation", "Aperture"),
        ("vendor_return", "Aperture"),
        ("cost_change", None),  # the close revalued the 3 units left (R15)
    ]
    assert (D(trace["events"][-1]["quantity"]), D(trace["events"][-1]["cost"])) == (3, 6)


async def test_migration_removes_cogs_booked_for_returns_to_vendor(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """R14: COGS entries an older ledger booked for returns to vendor are removed; usage and
    every other entry stay."""
    env = lotline_env(topics=False)
    files = db.migration_files(MIGRATIONS)
    # Every migration but the one under test: the rows below are written by today's code.
    before = [f for f in files if f.parent != MIGRATIONS or not f.name.startswith("003")]
    await db.migrate(env.dsn, SCHEMA, before)
    pool = await db.create_pool(env.dsn, SCHEMA)
    try:
        w = Wire()
        await record(
            pool,
            w.item("BOLT"),
            w.received("BOLT", "L5", 9, "10", [mv("L5", 9, "10")], po="PO-5", on=date(2024, 5, 1)),
            w.sale("BOLT", "OUT-1", [mv("L5", 3, "10")], customer="ACME", on=date(2024, 5, 2)),
            w.vendor_return("BOLT", "RTV-1", [mv("L5", 4, "10")], vendor="V", on=date(2024, 5, 3)),
        )
        # What the older ledger booked for the return.
        await pool.execute(
            "INSERT INTO cogs (entry_key, lic, lot_id, usage_id, kind, source, quantity,"
            " unit_cost, amount, entered_on, event_id)"
            " SELECT 'usage:' || usage_id, lic, lot_id, usage_id, 'usage', source, quantity,"
            " unit_cost, total_cost, used_on, event_id FROM usage WHERE source = 'vendor_return'"
            " ON CONFLICT DO NOTHING"
        )
        assert len(await _cogs(pool, "usage")) == 2

        await db.migrate(env.dsn, SCHEMA, files)

        assert await _cogs(pool, "usage") == [("L5", "shipment", D(3), D(30))]
        assert await pool.fetchval("SELECT count(*) FROM usage") == 2
    finally:
        await pool.close()


async def _cogs(pool: asyncpg.Pool, kind: str) -> list[tuple[str, str, Decimal, Decimal]]:
    rows = await pool.fetch(
        "SELECT lot_id, source, quantity, amount FROM cogs WHERE kind = $1 ORDER BY seq", kind
    )
    return [(r["lot_id"], r["source"], r["quantity"], r["amount"]) for r in rows]


async def test_a_lot_received_after_its_po_closed_is_valued_at_the_actual_cost(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R16: the actual cost is final once the PO closed, whenever the lot arrives."""
    w = Wire()
    await record_costs(pool, w.po("PO-7", "BOLT", act_unit_cost=D("11.5"), closed=True))
    await record(
        pool,
        w.item("BOLT"),
        w.received("BOLT", "L7", 2, "10", [mv("L7", 2, "10")], po="PO-7", on=date(2024, 4, 1)),
    )

    lot = await get(api, "/lots/L7")

    assert D(lot["valuation"]["current"]["value"]) == D(23)
    assert D(lot["valuation"]["est_unit_cost"]) == 10


async def test_a_po_close_revalues_its_lots_and_their_serials_with_a_record_in_their_history(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15, R16: closing PO-5 at 320 (serials A and B received at 300, A shipped) is a change
    to the lot and to the serial left in it: the lot's history and B's get B's cost change
    (1 × +20, a serial record like the lot's others, none of the lot beside it counting B
    twice), the shipped unit's COGS is reconciled (+20), and both serials now cost 320. The
    close again adds nothing."""
    w = Wire()
    a, b = (mv("IN-5/1", 1, "300", serial=s) for s in ("A", "B"))
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "IN-5/1", 2, "300", [a, b], po="PO-5", on=date(2024, 1, 10)),
        w.sale(CAM, "OUT-1", [a], customer="Alpha", on=date(2024, 1, 11)),
    )
    await record_costs(pool, w.po("PO-5", CAM, act_unit_cost=D(320), closed=True))
    await record_costs(pool, w.po("PO-5", CAM, act_unit_cost=D(320), closed=True))

    lot = await get(api, "/lots/IN-5/1")
    trace = await get(api, "/trace", lic=CAM, lot_id="IN-5/1")
    serials = [await get(api, f"/serials/{CAM}/{s}") for s in ("A", "B")]

    changes = [
        (t["serial"], D(t["quantity"]), D(t["stock_change"]), D(t["unit_cost"]), D(t["cost"]))
        for t in trace["events"]
        if t["event_type"] == "cost_change"
    ]
    assert changes == [("B", 1, 0, 20, 20)]
    assert trace["events"][-1]["document"] == "PO-5"
    assert [h["event_type"] for h in serials[1]["history"]] == ["receipt", "cost_change"]
    assert "cost_change" not in [h["event_type"] for h in serials[0]["history"]]
    assert [D(s["unit_cost"]) for s in lot["serials"]] == [320, 320]
    assert [D(s["current"]["unit_cost"]) for s in serials] == [320, 320]
    assert D(lot["valuation"]["current"]["value"]) == 320
    assert [(c["kind"], D(c["amount"])) for c in lot["cogs"]] == [
        ("usage", 300),
        ("reconciliation", 20),
    ]


async def test_a_reopened_po_closes_again_at_its_corrected_cost(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R16: PO-1 closed at 12 after 5 of lot L1's 10 units shipped at the estimate 10, then
    reopened with the corrected cost 14: the lot keeps 12, no longer final, and a unit shipped
    meanwhile is booked at it; closed again without naming a cost, every usage is reconciled
    to 14. A later update of its quantities alone leaves it closed."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT", est_unit_cost=D(10)),
        w.received("BOLT", "L1", 10, "10", [mv("L1", 10, "10")], po="PO-1", on=date(2024, 1, 10)),
        w.sale("BOLT", "OUT-1", [mv("L1", 5, "10")], customer="ACME", on=date(2024, 1, 11)),
    )
    await record_costs(pool, w.po("PO-1", "BOLT", act_unit_cost=D(12), closed=True))
    await record_costs(pool, w.po("PO-1", "BOLT", act_unit_cost=D(14), closed=False))

    reopened = (await get(api, "/lots/L1"))["valuation"]
    assert (D(reopened["unit_cost"]), reopened["cost_is_final"]) == (12, False)

    await record(
        pool, w.sale("BOLT", "OUT-2", [mv("L1", 1, "10")], customer="ACME", on=date(2024, 1, 12))
    )
    await record_costs(pool, w.po("PO-1", "BOLT", closed=True))
    await record_costs(pool, w.po("PO-1", "BOLT", purchased_quantity=D(10)))

    lot = await get(api, "/lots/L1")
    assert (D(lot["valuation"]["unit_cost"]), lot["valuation"]["cost_is_final"]) == (14, True)
    assert D(lot["cogs_total"]) == 6 * 14
    assert [(c["kind"], D(c["quantity"]), D(c["amount"])) for c in lot["cogs"]] == [
        ("usage", 5, 50),
        ("reconciliation", 5, 10),
        ("usage", 1, 12),
        ("reconciliation", 5, 10),
        ("reconciliation", 1, 2),
    ]


async def test_a_po_close_gives_each_serial_left_its_cost_change_in_its_history(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15: serials received at 300 whose PO closes at 320 now cost 320, and that change is a
    record of each serial: `/serials` and `/trace?serial=` list it (1 × +20), the lot's trace
    lists one per serial and no lot record besides (each unit once)."""
    w = Wire()
    a, b = (mv("IN-5/1", 1, "300", serial=s) for s in ("A", "B"))
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "IN-5/1", 2, "300", [a, b], po="PO-5", on=date(2024, 1, 10)),
    )
    await record_costs(pool, w.po("PO-5", CAM, act_unit_cost=D(320), closed=True))

    serial = await get(api, f"/serials/{CAM}/B")
    trace = await get(api, "/trace", lic=CAM, serial="B")
    lot_trace = await get(api, "/trace", lic=CAM, lot_id="IN-5/1")

    assert D(serial["current"]["unit_cost"]) == 320
    for history in (serial["history"], trace["events"]):
        assert [
            (h["event_type"], D(h["quantity"]), D(h["stock_change"]), D(h["unit_cost"]))
            for h in history
        ] == [("receipt", 1, 1, 300), ("cost_change", 1, 0, 20)]
    assert [
        (t["serial"], D(t["cost"])) for t in lot_trace["events"] if t["event_type"] == "cost_change"
    ] == [("A", 20), ("B", 20)]
    assert _traced_value(lot_trace) == 2 * 320


async def test_a_po_close_gives_each_mfr_lot_left_its_cost_change_and_the_lot_still_balances(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R15: lot L1 received 10 of M1 and 5 of M2 at 2.50; 4 of M1 shipped, 1 of M2 lost. PO-1
    closes at 3: `/trace?mfr_lot=M1` lists the cost change of its 6 units left (+3), M2's its 4
    (+2), and the lot's trace adds up to its value now (10 × 3). The close delivered again
    writes nothing more."""
    w = Wire()

    def m(mfr_lot: str, quantity: int) -> e.Movement:
        return mv("L1", quantity, "2.50", mfr_lot=mfr_lot, expires_on=EXP)

    await record(
        pool,
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        w.received(
            FOOD, "L1", 15, "2.50", [m("M1", 10), m("M2", 5)], po="PO-1", on=date(2024, 1, 10)
        ),
        w.sale(FOOD, "OUT-1", [m("M1", 4)], customer="Alpha", on=date(2024, 1, 12)),
        w.adjusted(FOOD, "LOSS-1", "loss", [m("M2", -1)], on=date(2024, 1, 13)),
    )
    await record_costs(pool, w.po("PO-1", FOOD, act_unit_cost=D(3), closed=True))
    await record_costs(pool, w.po("PO-1", FOOD, act_unit_cost=D(3), closed=True))

    changes = {
        mfr_lot: [
            (t["mfr_lot"], t["expires_on"], D(t["quantity"]), D(t["stock_change"]), D(t["cost"]))
            for t in (await get(api, "/trace", lic=FOOD, mfr_lot=mfr_lot))["events"]
            if t["event_type"] == "cost_change"
        ]
        for mfr_lot in ("M1", "M2")
    }
    lot_trace = await get(api, "/trace", lic=FOOD, lot_id="L1")
    lot = await get(api, "/lots/L1")

    assert changes == {
        "M1": [("M1", "2024-06-30", 6, 0, 3)],
        "M2": [("M2", "2024-06-30", 4, 0, 2)],
    }
    assert [t["mfr_lot"] for t in lot_trace["events"] if t["event_type"] == "cost_change"] == [
        "M1",
        "M2",
    ]
    assert _traced_value(lot_trace) == D(lot["valuation"]["current"]["value"]) == 10 * 3


def _traced_value(trace: dict[str, Any]) -> Decimal:
    """The value of stock on hand a trace's records add up to: each movement's stock change at
    its unit cost, plus each cost change."""
    return sum(
        (
            D(t["cost"])
            if t["event_type"] == "cost_change"
            else D(t["stock_change"]) * D(t["unit_cost"])
            for t in trace["events"]
        ),
        D(0),
    )


# -- stock, usage, lots -----------------------------------------------------------------------


async def test_item_stock_by_office_counts_lots_allocations_and_unallocated_stock(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 items: on hand, allocated and available by office. R12 unallocated stock counts on
    hand at its office and is reported on its own, but not as available: allocation takes
    stock from lots only, so a shipment could not get it (INSUFFICIENT_STOCK)."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT", description="Hex bolt", est_unit_cost=D(1)),
        w.received("BOLT", "L1", 10, "1", [mv("L1", 10, "1")], po="PO-1", on=date(2024, 1, 1)),
        w.received(
            "BOLT", "L2", 4, "1", [mv("L2", 4, "1")], po="PO-2", on=date(2024, 1, 1), office="EE"
        ),
        w.allocated("BOLT", "OUT-1", [mv("L1", 3, "1")], customer="ACME", on=date(2024, 1, 2)),
        w.sale("BOLT", "OUT-2", [mv("L1", 2, "1")], customer="ACME", on=date(2024, 1, 3)),
        w.adjusted("BOLT", "ADJ-1", "count", [mv(None, 5, "1")], on=date(2024, 1, 4), office="EE"),
        w.adjusted("BOLT", "ADJ-2", "count", [mv(None, 2, "1")], on=date(2024, 1, 5), office="ZZ"),
    )

    item = await get(api, "/items/BOLT")

    assert (item["description"], item["serialized"], item["track_mfr_lot"]) == (
        "Hex bolt",
        False,
        False,
    )
    assert [
        (
            s["office"],
            D(s["on_hand"]),
            D(s["allocated"]),
            D(s["available"]),
            D(s["unallocated"]),
        )
        for s in item["stock"]
    ] == [("AI", 8, 3, 5, 0), ("EE", 9, 0, 4, 5), ("ZZ", 2, 0, 0, 2)]
    usage = await get(api, "/usage", lic="BOLT")
    assert [(u["lot_id"], u["source"], D(u["quantity"])) for u in usage] == [
        ("L1", "shipment", 2),
        (None, "count", -5),
        (None, "count", -2),
    ]


async def test_lots_list_by_item_and_status(pool: asyncpg.Pool, api: httpx.AsyncClient) -> None:
    """R7: a lot is open while stock remains and closed when it is all used; lot ids may
    carry slashes (document/line)."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT"),
        w.received(
            "BOLT", "IN-1/1", 2, "1", [mv("IN-1/1", 2, "1")], po="PO-1", on=date(2024, 1, 1)
        ),
        w.received(
            "BOLT", "IN-1/2", 2, "1", [mv("IN-1/2", 2, "1")], po="PO-1", on=date(2024, 1, 2)
        ),
        w.sale("BOLT", "OUT-1", [mv("IN-1/1", 2, "1")], customer="ACME", on=date(2024, 1, 3)),
    )

    closed = await get(api, "/lots", lic="BOLT", status="closed")
    opened = await get(api, "/lots", lic="BOLT", status="open")
    everything = await get(api, "/lots", lic="BOLT")
    one = await get(api, "/lots/IN-1/1")

    assert [(lot["lot_id"], lot["current_qty"]) for lot in closed] == [("IN-1/1", "0")]
    assert [lot["lot_id"] for lot in opened] == ["IN-1/2"]
    assert [lot["lot_id"] for lot in everything] == ["IN-1/1", "IN-1/2"]
    assert (one["lot_id"], one["status"]) == ("IN-1/1", "closed")
    assert {lot["vendor"] for lot in everything} == {None} and one["vendor"] is None


async def test_usage_is_listed_oldest_first_like_the_trace_and_pages_stably(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 `/usage`: oldest first, by the date used, as `/trace` lists the same records: a loss
    dated before a shipment but recorded after it comes first. Records of one date keep their
    recording order, and pages of one record each list the same records in the same order."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT"),
        w.received("BOLT", "L1", 10, "1", [mv("L1", 10, "1")], po="PO-1", on=date(2024, 1, 10)),
        w.sale("BOLT", "OUT-1", [mv("L1", 4, "1")], customer="Alpha", on=date(2024, 1, 20)),
        w.sale("BOLT", "OUT-2", [mv("L1", 1, "1")], customer="Bravo", on=date(2024, 1, 20)),
    )
    await record(
        pool, w.adjusted("BOLT", "LOSS-1", "loss", [mv("L1", -1, "1")], on=date(2024, 1, 15))
    )

    usage = await get(api, "/usage", lic="BOLT")
    trace = await get(api, "/trace", lic="BOLT", lot_id="L1")
    pages = [await get(api, "/usage", lic="BOLT", limit="1", offset=str(n)) for n in range(4)]

    assert [(u["used_on"], u["document"]) for u in usage] == [
        ("2024-01-15", "LOSS-1"),
        ("2024-01-20", "OUT-1"),
        ("2024-01-20", "OUT-2"),
    ]
    assert [u["document"] for u in usage] == [
        t["document"] for t in trace["events"] if t["event_type"] in ("loss", "shipment")
    ]
    assert [page for page in pages if page] == [[u] for u in usage] and pages[3] == []
    assert await get(api, "/usage", lic="BOLT", lot_id="L1") == usage


async def test_usage_queries_read_their_index_in_the_order_they_list(pool: asyncpg.Pool) -> None:
    """`/usage` pages come straight off an index in (date used, recording) order, whatever the
    filter: no sort of an item's whole usage for each page."""
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_sort = off")
        for filters, index in (
            ({}, "usage_by_lic"),
            ({"lot_id": "L1"}, "usage_by_lot"),
            ({"mfr_lot": "M1"}, "usage_by_mfr_lot"),
            ({"serial": "S1"}, "usage_by_serial"),
        ):
            sql, args = queries.usage_query(
                "X",
                lot_id=filters.get("lot_id"),
                mfr_lot=filters.get("mfr_lot"),
                serial=filters.get("serial"),
            )
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args, 10, 0))
            assert "Sort" not in plan and "usage_by_" in plan, plan
            assert index in plan, plan


@pytest.mark.parametrize("url", ["/lots", "/usage"])
async def test_an_offset_beyond_what_the_database_counts_is_refused_not_a_500(
    pool: asyncpg.Pool, url: str
) -> None:
    """§4: `offset` past PostgreSQL's bigint is a 422 naming it (it was an unhandled 500); the
    largest one is a page past the end; `limit` is bounded the same way."""
    app = create_api(lambda: pool)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    params = {"lic": "BOLT"} if url == "/usage" else {}
    await record(pool, Wire().item("BOLT"))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        too_far = await client.get(url, params={**params, "offset": str(2**63)})
        farthest = await client.get(url, params={**params, "offset": str(2**63 - 1)})
        too_many = await client.get(url, params={**params, "limit": "100001"})

    assert too_far.status_code == 422 and too_far.json()["detail"][0]["loc"] == ["query", "offset"]
    assert (farthest.status_code, farthest.json()) == (200, [])
    assert too_many.status_code == 422
    parameters = app.openapi()["paths"][url]["get"]["parameters"]
    offset = next(p for p in parameters if p["name"] == "offset")["schema"]
    assert (offset["minimum"], offset["maximum"]) == (0, 2**63 - 1)


async def test_money_keeps_every_digit_of_the_biggest_quantities_and_costs(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """Quantities below 1e9 and unit costs below 1e12, with 6 places, are valid: their product
    has up to 33 digits, and COGS, usage, transaction costs and lot values keep all of them
    (the default decimal context rounds to 28), in the database and in the recall sheet."""
    w = Wire()
    q, c = "123456789.123457", "98765432.123457"
    with localcontext(Context(prec=80)):
        exact = D(q) * D(c)

    def big() -> e.Movement:
        return e.Movement(lot_id="L1", quantity=D(q), unit_cost=D(c))

    receipt = w.received("BULK", "L1", 1, c, [big()], po="PO-1", on=date(2024, 1, 10))
    await record(
        pool,
        w.item("BULK"),
        receipt.model_copy(update={"quantity": D(q)}),
        w.sale("BULK", "OUT-1", [big()], customer="A", on=date(2024, 1, 11)),
    )

    lot = await get(api, "/lots/L1")
    (usage,) = await get(api, "/usage", lic="BULK")
    trace = await get(api, "/trace", lic="BULK", lot_id="L1")
    sheet = await api.get("/trace", params={"lic": "BULK", "lot_id": "L1", "format": "csv"})

    assert D(lot["cogs"][0]["amount"]) == D(lot["cogs_total"]) == exact
    assert D(usage["total_cost"]) == exact
    assert {D(t["cost"]) for t in trace["events"]} == {exact}
    assert D(lot["valuation"]["received"]["value"]) == D(lot["valuation"]["used"]["value"]) == exact
    assert {D(r["Cost"]) for r in csv.DictReader(io.StringIO(sheet.text))} == {exact}
    assert (
        await pool.fetchval("SELECT count(*) FROM usage WHERE quantity * unit_cost <> total_cost")
        == 0
    )


async def test_openapi_documents_unallocated_stock_beside_on_hand_and_available() -> None:
    """§4: the item response's stock keeps its fields and adds unallocated (R12)."""
    schema = create_api(lambda: None).openapi()["components"]["schemas"]["OfficeStock"]

    assert {"office", "on_hand", "allocated", "available", "unallocated"} <= set(schema["required"])
    assert "not in available" in schema["properties"]["unallocated"]["description"]


async def test_a_lot_shows_the_bin_its_receipt_line_put_it_away_in(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 `lines[].bin`: the lot shows where its stock was put away, in its detail and in the
    lot list; a lot whose line named no bin shows none."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT", description="Bolt M6"),
        w.received(
            "BOLT",
            "IN-1/1",
            3,
            "1.00",
            [mv("IN-1/1", 3, "1.00")],
            po="PO-1",
            on=date(2024, 3, 1),
            bin="A-01-3",
        ),
        w.received(
            "BOLT", "IN-2/1", 1, "1.00", [mv("IN-2/1", 1, "1.00")], po="PO-2", on=date(2024, 3, 2)
        ),
    )
    assert (await get(api, "/lots/IN-1/1"))["bin"] == "A-01-3"
    listed = await get(api, "/lots", lic="BOLT")
    assert [(lot["lot_id"], lot["bin"]) for lot in listed] == [
        ("IN-1/1", "A-01-3"),
        ("IN-2/1", None),
    ]


async def test_a_serial_of_a_lic_with_a_slash_is_found_by_query(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 `/serials/{lic}/{serial}`: a path cannot tell where a LIC with a `/` ends, so the same
    answer is served at `/serials?lic=&serial=`."""
    w = Wire()
    kit = "KIT/2"
    units = [mv("70001", 1, "5.00", serial="A/1")]
    await record(
        pool,
        w.item(kit, description="Kit, two parts", serialized=True),
        w.received(kit, "70001", 1, "5.00", units, po="PO-7", on=date(2024, 2, 1)),
    )
    found = await get(api, "/serials", lic=kit, serial="A/1")
    assert (found["lic"], found["serial"], found["status"]) == (kit, "A/1", "available")
    assert [h["event_type"] for h in found["history"]] == ["receipt"]


async def test_identifiers_in_queries_are_normalized_as_the_events_were(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§6: identifiers are normalized (NFC, trimmed), so a query naming a LIC, lot, manufacturer
    lot or serial decomposed or with spaces around it finds what the events recorded; one
    holding a control character (a NUL) or nothing but spaces is refused 422, naming the
    parameter and the problem (PostgreSQL would refuse the NUL: a 500)."""
    w = Wire()
    lot_e, sn = "Lot-\u00e9", "SN-\u00e9"  # NFC, as the contract's Identifier makes them
    unit = mv("IN-\u00e9/1", 1, "2", mfr_lot=lot_e, serial=sn)
    await record(
        pool,
        w.item(FOOD, track_mfr_lot=True, serialized=True),
        w.received(FOOD, "IN-\u00e9/1", 1, "2", [unit], po="PO-1", on=date(2024, 1, 10)),
        w.sale(FOOD, "OUT-1", [unit], customer="Alpha", on=date(2024, 1, 11)),
    )
    decomposed = "e\u0301"

    for url, params in [
        ("/trace", {"lic": FOOD, "mfr_lot": f"Lot-{decomposed}"}),
        ("/trace", {"lic": f" {FOOD} ", "mfr_lot": f"{lot_e} "}),
        ("/trace", {"lic": FOOD, "serial": f"SN-{decomposed}"}),
        ("/trace", {"lic": FOOD, "lot_id": f"IN-{decomposed}/1 "}),
        ("/usage", {"lic": FOOD, "mfr_lot": f"Lot-{decomposed}", "serial": f" {sn}"}),
        ("/lots", {"lic": f"{FOOD} "}),
        (f"/items/{FOOD} ", {}),
        (f"/lots/IN-{decomposed}/1", {}),
        (f"/serials/{FOOD} /SN-{decomposed}", {}),
        ("/serials", {"lic": f"{FOOD} ", "serial": f"SN-{decomposed}"}),
    ]:
        response = await api.get(url, params=params)
        assert response.status_code == 200, (url, params, response.text)
        assert response.json(), (url, params)
    for url, params, name in [
        ("/trace", {"lic": FOOD, "mfr_lot": "A\x00"}, "mfr_lot"),
        ("/trace", {"lic": "A\x00", "serial": sn}, "lic"),
        ("/usage", {"lic": FOOD, "lot_id": "  "}, "lot_id"),
        ("/lots", {"lic": "\x00"}, "lic"),
        ("/items/A%00", {}, "lic"),
        ("/lots/L%00", {}, "lot_id"),
        (f"/serials/{FOOD}/S%00", {}, "serial"),
        ("/serials", {"lic": FOOD, "serial": "S\x00"}, "serial"),
    ]:
        response = await api.get(url, params=params)
        assert response.status_code == 422, (url, params, response.text)
        (error,) = response.json()["detail"]
        assert error["loc"][-1] == name and "identifier" in error["msg"], error


async def test_unknown_things_answer_404_naming_them(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4: 404 with a clear message for anything the ledger does not know."""
    for url, params, named in [
        ("/items/NOPE", {}, "NOPE"),
        ("/lots/L-404", {}, "L-404"),
        ("/serials/NOPE/S-1", {}, "S-1"),
        ("/serials", {"lic": "NOPE", "serial": "S-2"}, "S-2"),
        ("/trace", {"lic": "NOPE", "mfr_lot": "M-1"}, "M-1"),
        ("/usage", {"lic": "NOPE"}, "NOPE"),
    ]:
        response = await api.get(url, params=params)
        assert response.status_code == 404, url
        assert named in response.json()["detail"]
    response = await api.get("/trace", params={"lic": FOOD})
    assert response.status_code == 422


async def test_healthz_checks_the_database_and_metrics_are_prometheus_text(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    assert await get(api, "/healthz") == {"status": "ok", "database": "ok"}
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200 and "lotline_ledger_trace_seconds" in metrics.text
    docs = await api.get("/openapi.json")
    paths = set(docs.json()["paths"])
    assert {"/items/{lic}", "/lots", "/lots/{lot_id}", "/serials/{lic}/{serial}"} <= paths
    assert {"/trace", "/usage", "/healthz", "/metrics"} <= paths


async def test_the_asyncapi_document_is_served_as_the_code_generates_it() -> None:
    """§4: the ledger serves the Kafka contract (FastStream's AsyncAPI) beside its OpenAPI,
    built once, and the OpenAPI lists it under "docs"; no database is needed for it."""
    app = create_api(lambda: None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        first = await c.get("/asyncapi.json")
        again = await c.get("/asyncapi.json")
        openapi = (await c.get("/openapi.json")).json()

    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert first.json() == asyncapi.document()
    assert again.content == first.content
    assert api_module.asyncapi_json.cache_info().misses == 1
    received = first.json()["components"]["schemas"]["StockReceived"]["properties"]
    assert "vendor" in received
    assert openapi["paths"]["/asyncapi.json"]["get"]["tags"] == ["docs"]
    assert "/asyncapi.json" in openapi["info"]["description"]


async def test_healthz_is_503_when_the_database_is_gone() -> None:
    app = create_api(lambda: None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        response = await c.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


async def test_trace_queries_use_the_trace_indexes(pool: asyncpg.Pool) -> None:
    """Traces read through (lic, mfr_lot) and (lic, serial) indexes, not a table scan."""
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        for column, index in (
            ("mfr_lot", "transactions_by_mfr_lot"),
            ("serial", "transactions_by_serial"),
        ):
            rows = await conn.fetch(
                f"EXPLAIN SELECT * FROM transactions"
                f" WHERE lic = $1 AND {column} = $2 ORDER BY occurred_on, seq",
                "X",
                "Y",
            )
            assert index in "\n".join(r[0] for r in rows)


# -- the two consumers racing -----------------------------------------------------------------


async def _race(pool: asyncpg.Pool, first: str) -> None:
    """Run a shipment of lot L1 and the close of its PO in two concurrent transactions, `first`
    taking the per-LIC lock and committing only after the other one is waiting."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT"),
        w.received("BOLT", "L1", 10, "10", [mv("L1", 10, "10")], po="PO-1", on=date(2024, 2, 1)),
    )
    ship = Inbound(
        w.shipped("BOLT", "OUT-1", [mv("L1", 3, "10")], customer="ACME", on=date(2024, 2, 5)),
        "inventory.events",
        0,
        1,
        b"BOLT",
    )
    close = Inbound(
        w.po("PO-1", "BOLT", act_unit_cost=D(12), closed=True), "inventory.costs", 0, 1, b"PO-1"
    )

    async def run(which: str, holding: asyncio.Event | None, hold: asyncio.Event | None) -> None:
        async with pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, Outbox())
            if which == "ship":
                await service.record_events(uow, [ship])  # type: ignore[arg-type, list-item]
            else:
                await service.record_costs(uow, [close])  # type: ignore[arg-type, list-item]
            if holding is not None and hold is not None:
                holding.set()  # recorded: the LIC lock is taken until this transaction ends
                await hold.wait()

    holding, release = asyncio.Event(), asyncio.Event()
    leader = asyncio.create_task(run(first, holding, release))
    follower: asyncio.Task[None] | None = None
    try:
        await asyncio.wait_for(holding.wait(), 10)
        follower = asyncio.create_task(run("close" if first == "ship" else "ship", None, None))
        await waits_for_a_lock(pool)
        assert not follower.done(), "the second transaction must wait for the first's LIC lock"
        release.set()
        await asyncio.wait_for(asyncio.gather(leader, follower), 10)
    finally:
        release.set()
        for task in (leader, follower):
            if task is not None and not task.done():
                task.cancel()


async def test_a_close_racing_a_shipment_waits_and_reconciles_it(pool: asyncpg.Pool) -> None:
    """R16 under concurrency: a PO close that starts while a shipment's transaction is open
    waits for it and reconciles its usage (no usage is left at the estimate)."""
    await _race(pool, first="ship")

    assert await _cogs(pool, "usage") == [("L1", "shipment", D(3), D(30))]
    assert await _cogs(pool, "reconciliation") == [("L1", "shipment", D(3), D(6))]


async def test_a_shipment_racing_a_close_waits_and_is_booked_at_actual_cost(
    pool: asyncpg.Pool,
) -> None:
    """R16 under concurrency: a shipment that starts while its PO's close is open waits for
    it and is booked at the actual cost."""
    await _race(pool, first="close")

    assert await _cogs(pool, "usage") == [("L1", "shipment", D(3), D(36))]
    assert await _cogs(pool, "reconciliation") == []


async def _tables(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the ledger wrote, without generated sequence numbers and timestamps."""
    queries = {
        "lots": "SELECT lot_id, lic, used_qty, allocated_qty, received_qty FROM lots",
        "serials": "SELECT lic, serial, lot_id, mfr_lot, expires_on, status, document, line_no,"
        " counterparty, unit_cost, received_on, changed_on, last_txn_id FROM serials",
        "usage": "SELECT usage_id, lic, lot_id, serial, source, quantity, unit_cost,"
        " est_unit_cost, total_cost, office, document, counterparty, used_on, event_id FROM usage",
        "transactions": "SELECT txn_id, lic, lot_id, mfr_lot, serial, expires_on, event_type,"
        " record, quantity, stock_change, unit_cost, cost, office, document, line_no,"
        " counterparty, reference, reason, occurred_on, event_id FROM transactions",
        "cogs": "SELECT entry_key, lic, lot_id, usage_id, kind, source, quantity, unit_cost,"
        " amount, po, entered_on, event_id FROM cogs",
    }
    async with pool.acquire() as conn:
        return {
            name: sorted(tuple(r) for r in await conn.fetch(sql)) for name, sql in queries.items()
        }


async def test_large_batches_written_by_copy_are_the_rows_unnest_writes(
    lotline_env: Callable[..., LotlineEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    """From `COPY_MIN_ROWS` rows a table is written by COPY through a scratch table: the same
    rows, the serial upsert included, and rows written twice are still written once."""
    from services.ledger import repository

    wire = Wire()
    serials = [f"SN{n:04d}" for n in range(30)]
    moves = [e.Movement(lot_id="L-CAM", serial=s, quantity=D(1), unit_cost=D(300)) for s in serials]
    history: list[list[e.Event]] = [
        [
            wire.item(CAM, serialized=True, est_unit_cost=D(300)),
            wire.received(CAM, "L-CAM", 30, "300", moves, po="PO-9", on=date(2026, 11, 2)),
        ],
        [
            *wire.sale(CAM, "SO-9", moves[:20], customer="ACME", on=date(2026, 11, 3)),
            wire.returned(CAM, "RMA-9", moves[:5], customer="ACME", on=date(2026, 11, 4)),
        ],
    ]
    written = []
    for copy_min_rows in (1_000_000, 1):
        monkeypatch.setattr(repository, "COPY_MIN_ROWS", copy_min_rows)
        env = lotline_env(topics=False)
        await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
        pool = await db.create_pool(env.dsn, SCHEMA)
        try:
            for batch in history:
                await record(pool, batch)
            # Again, past the inbox: rows with the same ids are skipped by ON CONFLICT.
            await record(pool, history[1])
            written.append(await _tables(pool))
        finally:
            await pool.close()
    by_unnest, by_copy = written
    assert len(by_copy["serials"]) == 30 and len(by_copy["usage"]) == 25
    assert by_copy == by_unnest
