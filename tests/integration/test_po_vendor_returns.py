"""What went back to the vendor from a PO line's lots, on the line (`GET /purchase-orders`): a
returns desk matches each return to a vendor's credit memo, at the cost the vendor credits
(R14, R16). The ledger's handlers on a real PostgreSQL, read back through its API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.ledger import queries
from tests.integration.test_ledger import (  # noqa: F401
    CAM,
    Wire,
    api,
    get,
    mv,
    pool,
    record,
    record_costs,
)

D = Decimal
BOLT, NUT = "BOLT", "NUT"
VENDOR = "VendorA"


def _received(w: Wire, lot_id: str, qty: int, on: date, po: str = "PO-100") -> Any:
    return w.received(BOLT, lot_id, qty, "2.50", [mv(lot_id, qty, "2.50")], po=po, on=on)


def _returns(line: dict[str, Any]) -> list[tuple[str, str, str | None, str, str]]:
    return [
        (r["document"], r["returned_on"], r["vendor"], r["quantity"], r["value"])
        for r in line["returns_to_vendor"]
    ]


def _returned(line: dict[str, Any]) -> tuple[Any, ...]:
    return (
        line["received_qty"],
        line["returned_to_vendor_qty"],
        line["returned_to_vendor_value"],
        line["returns_to_vendor_count"],
        {lot["lot_id"]: lot["returned_to_vendor_qty"] for lot in line["lots"]},
    )


async def test_a_po_line_shows_each_return_to_vendor_of_its_lots_at_the_cost_credited(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """R14, R16: PO-100's BOLT came in two lots (100 + 70); VR-1 (10 of L-A) and VR-8 (5 of L-A,
    3 of L-B) went back to VendorA before the close, booked at the estimate 2.50, VR-9 (5 of
    L-B) after the close at 2.75, booked at 2.75. The line still received 170; it shows the 23
    returned, per lot and return by return, at 2.75 once closed (what the vendor credits: the
    returns before the close brought to it by their reconciliations, not the 58.75 booked), and
    follows a corrected close. A sale, a return of another PO's lot and a line with no return
    add nothing."""
    w = Wire()
    await record(
        pool,
        w.item(BOLT),
        w.item(NUT),
        _received(w, "L-A", 100, date(2024, 3, 1)),
        _received(w, "L-B", 70, date(2024, 3, 2)),
        _received(w, "L-X", 9, date(2024, 3, 2), po="PO-200"),
        w.sale(BOLT, "SO-1", [mv("L-A", 20, "2.50")], customer="ACME", on=date(2024, 3, 3)),
        w.vendor_return(BOLT, "VR-1", [mv("L-A", 10, "2.50")], vendor=VENDOR, on=date(2024, 3, 4)),
        w.vendor_return(
            BOLT,
            "VR-8",
            [mv("L-A", 5, "2.50"), mv("L-B", 3, "2.50")],
            vendor=VENDOR,
            on=date(2024, 3, 5),
        ),
        w.vendor_return(BOLT, "VR-2", [mv("L-X", 4, "2.50")], vendor=VENDOR, on=date(2024, 3, 5)),
    )
    await record_costs(
        pool,
        w.po("PO-100", BOLT, ordered_quantity=D(170)),
        w.po("PO-100", NUT, ordered_quantity=D(5)),
        w.po("PO-200", BOLT, ordered_quantity=D(9)),
    )

    before = await get(api, "/purchase-orders/PO-100")
    bolt, nut = before["lines"]
    assert _returned(bolt) == ("170", "18", "45.00", 2, {"L-A": "15", "L-B": "3"})
    assert _returns(bolt) == [
        ("VR-1", "2024-03-04", VENDOR, "10", "25.00"),
        ("VR-8", "2024-03-05", VENDOR, "8", "20.00"),
    ]
    assert (bolt["cost_is_final"], nut["returns_to_vendor"]) == (False, [])
    assert _returned(nut) == ("0", "0", "0", 0, {})

    await record_costs(pool, w.po("PO-100", BOLT, act_unit_cost=D("2.75"), closed=True))
    await record(
        pool,
        w.vendor_return(BOLT, "VR-9", [mv("L-B", 5, "2.75")], vendor=VENDOR, on=date(2024, 3, 9)),
    )

    bolt = (await get(api, "/purchase-orders/PO-100"))["lines"][0]
    listed = await get(api, "/purchase-orders")
    booked = await get(api, "/usage", document="VR-8")
    assert _returned(bolt) == ("170", "23", "63.25", 3, {"L-A": "15", "L-B": "8"})
    assert _returns(bolt) == [
        ("VR-1", "2024-03-04", VENDOR, "10", "27.50"),
        ("VR-8", "2024-03-05", VENDOR, "8", "22.00"),
        ("VR-9", "2024-03-09", VENDOR, "5", "13.75"),
    ]
    assert {u["unit_cost"] for u in booked} == {"2.50"}  # the records keep their booked cost
    assert bolt in listed
    other = next(x for x in listed if x["po"] == "PO-200")
    assert _returned(other) == ("9", "4", "10.00", 1, {"L-X": "4"})

    await record_costs(pool, w.po("PO-100", BOLT, act_unit_cost=D(3), closed=False))
    reopened = (await get(api, "/purchase-orders/PO-100"))["lines"][0]
    await record_costs(pool, w.po("PO-100", BOLT, closed=True))
    corrected = (await get(api, "/purchase-orders/PO-100"))["lines"][0]
    assert reopened["returned_to_vendor_value"] == "63.25"  # the cost last applied
    assert (corrected["returned_to_vendor_value"], _returns(corrected)[2][4]) == ("69.00", "15.00")


async def test_serials_returned_on_one_document_are_one_return(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """R14: a return to vendor of three serials (a usage record each) is one return of 3 units
    on the PO line; the serial left in stock and the one sold are not in it."""
    w = Wire()
    serials = [mv("L-S", 1, "40", serial=f"S-{n}") for n in range(1, 6)]
    await record(
        pool,
        w.item(CAM, serialized=True),
        w.received(CAM, "L-S", 5, "40", serials, po="PO-CAM", on=date(2024, 4, 1)),
        w.sale(CAM, "SO-4", serials[:1], customer="ACME", on=date(2024, 4, 2)),
        w.vendor_return(CAM, "VR-4", serials[1:4], vendor=VENDOR, on=date(2024, 4, 3)),
    )
    await record_costs(pool, w.po("PO-CAM", CAM, ordered_quantity=D(5)))

    (line,) = (await get(api, "/purchase-orders/PO-CAM"))["lines"]

    assert _returned(line) == ("5", "3", "120", 1, {"L-S": "3"})
    assert _returns(line) == [("VR-4", "2024-04-03", VENDOR, "3", "120")]


async def test_a_line_lists_its_first_100_returns_oldest_first_and_counts_them_all(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """A line with 102 returns to vendor lists the 100 oldest (by date, then document) and
    says 102; its totals count every one."""
    w = Wire()
    returns = [
        w.vendor_return(
            BOLT, f"VR-{n:03}", [mv("L-A", 1, "2.50")], vendor=VENDOR, on=date(2024, 6, 1 + n % 28)
        )
        for n in range(102)
    ]
    await record(pool, w.item(BOLT), _received(w, "L-A", 200, date(2024, 5, 1)), *returns)
    await record_costs(pool, w.po("PO-100", BOLT, ordered_quantity=D(200)))

    (line,) = await get(api, "/purchase-orders")

    shown = [(r["returned_on"], r["document"]) for r in line["returns_to_vendor"]]
    every = sorted((date(2024, 6, 1 + n % 28).isoformat(), f"VR-{n:03}") for n in range(102))
    assert (line["returns_to_vendor_count"], len(shown)) == (102, 100)
    assert shown == every[:100]
    assert (line["returned_to_vendor_qty"], line["returned_to_vendor_value"]) == ("102", "255.00")


async def test_returns_to_vendor_are_read_through_their_own_index(
    pool: asyncpg.Pool,  # noqa: F811
) -> None:
    """A PO line's returns are found through the index of returns to vendor by lot
    (migration 018), not by reading every usage record of its lots nor the usage table, nor
    every return to vendor (the index by date, migration 021): with a year of returns of many
    lots on record, as the planner sees a ledger in use (on empty tables any index will do)."""
    args = (["L-A", "L-B"], ["PO-100", "PO-100"], [BOLT, BOLT])
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO usage (usage_id, lic, lot_id, source, quantity, unit_cost,"
            " est_unit_cost, total_cost, office, document, used_on, event_id)"
            " SELECT 'vr-' || n, 'OTHER', 'L-' || (n % 500), 'vendor_return', 1, 1, 1, 1, 'AI',"
            " 'VR-' || n, date '2024-01-01' + n % 365, 'e-' || n"
            " FROM generate_series(1, 20000) AS n"
        )
        await conn.execute("ANALYZE usage")
        await conn.execute("SET enable_seqscan = off")
        for sql, more in (
            (queries._RETURNED_BY_LOT, ()),
            (queries._RETURNS_BY_LINE, (queries.RETURNS_SHOWN,)),
        ):
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args, *more))
            assert "usage_vendor_returns_by_lot" in plan, plan
            assert "Seq Scan on usage" not in plan and "usage_by_lot" not in plan, plan
