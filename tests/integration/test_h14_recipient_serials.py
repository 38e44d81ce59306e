"""A recall of serialized units, on a real PostgreSQL (DESIGN.md §4, R13, R15): the trace's
customer list names, for each customer, the very units to send back (`serials_held`), and the
customer sheet writes them in its "Serials held" column."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import asyncpg
import httpx

from services.ledger import queries
from services.ledger.api import RECIPIENT_COLUMNS
from shared.contracts import events as e
from tests.integration.test_ledger import (
    FOOD,
    Wire,
    api,
    get,
    mv,
    pool,
    recall_scenario,
    record,
)

__all__ = ["api", "pool"]
CAM = "CAM"
VIAL = "VIAL"  # lot-tracked and serialized
M7 = "M-7"


def _unit(serial: str, lot: str = "L1") -> e.Movement:
    return mv(lot, 1, "300", serial=serial)


def _units(*serials: str) -> list[e.Movement]:
    return [_unit(s) for s in serials]


def _cameras(w: Wire) -> list[e.Event | list[e.Event]]:
    """Six cameras received into L1 and moved between customers:

    - S-1 to Alpha, returned by Alpha, shipped to Bravo: Bravo's now;
    - S-2 to Alpha: Alpha's;
    - S-3 to Bravo, returned by a return naming no customer: no one's;
    - S-4 and S-10 to Bravo: Bravo's (S-10 sorts before S-4 as text);
    - S-5 to Charlie and returned the same day, recorded after: no one's.
    """
    nameless = w.returned(CAM, "RMA-2", _units("S-3"), customer="-", on=date(2024, 1, 5))
    return [
        w.item(CAM, serialized=True),
        w.received(
            CAM,
            "L1",
            6,
            "300",
            _units("S-1", "S-2", "S-3", "S-4", "S-5", "S-10"),
            po="PO-1",
            on=date(2024, 1, 1),
        ),
        w.sale(CAM, "OUT-1", _units("S-1", "S-2"), customer="Alpha", on=date(2024, 1, 2)),
        w.sale(CAM, "OUT-2", _units("S-3"), customer="Bravo", on=date(2024, 1, 3)),
        w.returned(CAM, "RMA-1", _units("S-1"), customer="Alpha", on=date(2024, 1, 4)),
        nameless.model_copy(update={"customer": None}),
        w.sale(CAM, "OUT-3", _units("S-4", "S-10", "S-1"), customer="Bravo", on=date(2024, 1, 6)),
        w.sale(CAM, "OUT-4", _units("S-5"), customer="Charlie", on=date(2024, 1, 7)),
        w.returned(CAM, "RMA-3", _units("S-5"), customer="Charlie", on=date(2024, 1, 7)),
    ]


def _held(trace: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(r["customer"], r["held"], r["serials_held"]) for r in trace["recipients"]]


def _sheet(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_each_customer_is_named_the_serials_they_hold_now(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R13, R15: a unit returned is no longer its customer's, even by a return naming no
    customer (`held` counts the serials held, so it agrees); a unit shipped on again is the later
    customer's; a return recorded after its shipment the same day brings the unit back.
    Sorted by serial; a customer holding nothing has an empty list."""
    await record(pool, *_cameras(Wire()))

    trace = await get(api, "/trace", lic=CAM, lot_id="L1")

    assert _held(trace) == [
        ("Alpha", "1", ["S-2"]),
        ("Bravo", "3", ["S-1", "S-10", "S-4"]),  # S-3 came back on the nameless return
        ("Charlie", "0", []),
    ]


async def test_a_serial_trace_names_only_its_last_customer(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """The serial traced alone: Alpha received it and sent it back, Bravo holds it, as
    `/serials` says; a serial back in stock is no one's."""
    await record(pool, *_cameras(Wire()))

    trace = await get(api, "/trace", lic=CAM, serial="S-1")
    serial = await get(api, f"/serials/{CAM}/S-1")
    back = await get(api, "/trace", lic=CAM, serial="S-3")

    assert _held(trace) == [("Alpha", "0", []), ("Bravo", "1", ["S-1"])]
    assert (serial["status"], serial["current"]["counterparty"]) == ("shipped", "Bravo")
    assert _held(back) == [("Bravo", "0", [])]


def _vials(w: Wire) -> list[e.Event | list[e.Event]]:
    """VIAL is lot-tracked and serialized: V-1..V-3 of M-7, V-9 of M-8, all to Alpha but V-2,
    which Bravo got and returned. FOOD (lot-tracked, no serials) has an M-7 too, sold to
    Alpha."""

    def vial(serial: str, mfr_lot: str = M7) -> e.Movement:
        return mv("LV", 1, "10", serial=serial, mfr_lot=mfr_lot, expires_on=date(2026, 1, 1))

    food = mv("LF", 5, "2", mfr_lot=M7, expires_on=date(2025, 1, 1))
    received = [vial("V-1"), vial("V-2"), vial("V-3"), vial("V-9", "M-8")]
    return [
        w.item(VIAL, track_mfr_lot=True, serialized=True, perishable=True),
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        w.received(VIAL, "LV", 4, "10", received, po="PO-V", on=date(2024, 3, 1)),
        w.received(FOOD, "LF", 5, "2", [food], po="PO-F", on=date(2024, 3, 1)),
        w.sale(VIAL, "OUT-V1", [vial("V-3"), vial("V-1")], customer="Alpha", on=date(2024, 3, 2)),
        w.sale(VIAL, "OUT-V2", [vial("V-9", "M-8")], customer="Alpha", on=date(2024, 3, 2)),
        w.sale(VIAL, "OUT-V3", [vial("V-2")], customer="Bravo", on=date(2024, 3, 3)),
        w.returned(VIAL, "RMA-V", [vial("V-2")], customer="Bravo", on=date(2024, 3, 4)),
        w.sale(FOOD, "OUT-F", [food], customer="Alpha", on=date(2024, 3, 2)),
    ]


async def test_a_lot_alone_names_the_serials_of_that_lot_in_each_item(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A recall notice naming lot M-7 alone: each item's recipients as its own trace has them;
    Alpha is named the units of M-7 only (not V-9, of M-8), the item without serials none."""
    await record(pool, *_vials(Wire()))

    traced = await get(api, "/trace", mfr_lot=M7)

    assert [(t["lic"], _held(t)) for t in traced["items"]] == [
        (FOOD, [("Alpha", "5", [])]),
        (VIAL, [("Alpha", "2", ["V-1", "V-3"]), ("Bravo", "0", [])]),
    ]
    assert traced["items"][1] == await get(api, "/trace", lic=VIAL, mfr_lot=M7)


async def test_the_customer_sheet_writes_the_serials_held_after_held(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`part=recipients`: "Serials held" right after "Held", the serials joined by a space (no
    serial holds one, R5), empty for an item without serials; the other columns as before."""
    await record(pool, *_vials(Wire()))

    response = await api.get(
        "/trace", params={"mfr_lot": M7, "format": "csv", "part": "recipients"}
    )
    rows = _sheet(response)

    assert (
        list(rows[0])
        == list(RECIPIENT_COLUMNS)
        == [
            "LIC",
            "Description",
            "Manufacturer lot",
            "Serial",
            "Inventory lot",
            "Customer",
            "Shipments",
            "Shipped",
            "Returned",
            "Held",
            "Serials held",
            "Unit of measure",
            "First shipped",
            "Last shipped",
        ]
    )
    assert [(r["LIC"], r["Customer"], r["Held"], r["Serials held"]) for r in rows] == [
        (FOOD, "Alpha", "5", ""),
        (VIAL, "Alpha", "2", "V-1 V-3"),
        (VIAL, "Bravo", "0", ""),
    ]
    assert [(r["Unit of measure"], r["First shipped"], r["Last shipped"]) for r in rows] == [
        ("Each", "2024-03-02", "2024-03-02"),
        ("Each", "2024-03-02", "2024-03-02"),
        ("Each", "2024-03-03", "2024-03-03"),
    ]


async def test_a_serials_held_cell_is_text_never_a_formula(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """Serials come from upstream: a cell starting with `-`, `+`, `=` or `@` is written as
    text, as every other cell of the sheets is."""
    w = Wire()
    units = _units("-1", "+2")
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "L1", 2, "300", units, po="PO-1", on=date(2024, 1, 1)),
        w.sale(CAM, "OUT-1", units, customer="Alpha", on=date(2024, 1, 2)),
    )

    rows = _sheet(
        await api.get(
            "/trace", params={"lic": CAM, "lot_id": "L1", "format": "csv", "part": "recipients"}
        )
    )

    assert [r["Serials held"] for r in rows] == ["'+2 -1"]


async def test_the_serials_held_are_read_through_the_trace_indexes(pool: asyncpg.Pool) -> None:
    """One query per traced item, whatever its customers, reading only the traced records
    through the trace's own index: a manufacturer lot's or inventory lot's, not every serialized
    record of the item. Planned on a table the database has statistics of (an empty table's
    plan says nothing: any index is as cheap as another there)."""
    async with pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO transactions (txn_id, lic, lot_id, mfr_lot, serial, event_type, record,
                quantity, stock_change, unit_cost, cost, office, document, counterparty,
                occurred_on, event_id)
            SELECT 't' || g, 'CAM', 'L' || g / 500, 'M' || g / 500, 'S' || g / 3,
                   (ARRAY['receipt', 'allocation', 'shipment', 'customer_return'])[1 + g % 4],
                   'r', 1, 0, 1, 1, 'AI', 'D' || g / 10, 'C' || g % 50,
                   date '2024-01-01' + g % 300, 'e'
            FROM generate_series(1, 30000) AS g
            """
        )
        await conn.execute("ANALYZE transactions")
        for where, value, index in (
            ("WHERE t.lic = $1 AND t.mfr_lot = $2", "M7", "transactions_by_mfr_lot"),
            ("WHERE t.lic = $1 AND t.serial = $2", "S77", "transactions_by_serial"),
            ("WHERE t.lic = $1 AND t.lot_id = $2", "L7", "transactions_by_lot"),
        ):
            sql = queries._SERIALS_HELD.format(where=where)
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", "CAM", value))
            assert index in plan, plan


async def test_a_recall_of_an_item_without_serials_names_none(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """The food recall as before: every customer's `serials_held` is empty."""
    await record(pool, *recall_scenario(Wire()))

    trace = await get(api, "/trace", lic=FOOD, mfr_lot="M-42")

    assert {tuple(r["serials_held"]) for r in trace["recipients"]} == {()}


async def test_a_sale_dated_before_an_earlier_recorded_return_still_holds_the_unit(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """Who holds a unit follows the order the decisions were made in, as `/serials` does: S-1
    came back from Alpha, then a sale to Bravo was recorded, backdated before that return."""
    w = Wire()
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "L1", 1, "300", _units("S-1"), po="PO-1", on=date(2024, 1, 1)),
        w.sale(CAM, "OUT-1", _units("S-1"), customer="Alpha", on=date(2024, 1, 2)),
        w.returned(CAM, "RMA-1", _units("S-1"), customer="Alpha", on=date(2024, 1, 9)),
        w.sale(CAM, "OUT-2", _units("S-1"), customer="Bravo", on=date(2024, 1, 5)),
    )

    trace = await get(api, "/trace", lic=CAM, serial="S-1")
    serial = await get(api, f"/serials/{CAM}/S-1")

    assert (serial["status"], serial["current"]["counterparty"]) == ("shipped", "Bravo")
    assert [(r["customer"], r["serials_held"]) for r in trace["recipients"]] == [
        ("Alpha", []),
        ("Bravo", ["S-1"]),
    ]
