"""A recall accounts for every unit (R15, §4 `GET /trace`): the trace's `accounted` says how many
came in, went to customers, came back, went to the vendor, were adjusted, and are on hand at
each office, and what the customers may still hold; on a real PostgreSQL, through the ledger's
handlers and read API, as the other ledger API tests."""

from __future__ import annotations

from datetime import date

import asyncpg
import httpx

from shared.contracts import events as e
from tests.integration.test_ledger import Wire, api, get, mv, pool, record

__all__ = ["api", "pool"]

VAX = "VAX-ACC"
ON = date(2026, 3, 2)


def m(lot_id: str, quantity: int, mfr_lot: str = "M1") -> e.Movement:
    return mv(lot_id, quantity, "3.00", mfr_lot=mfr_lot, expires_on=date(2027, 1, 1))


async def test_a_lot_trace_accounts_for_every_unit_by_where_it_is(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """M1: 10 received at AI and 5 at EAST; 6 shipped (4 to Alpha, 2 to Bravo), Alpha returned
    1; 2 went back to the vendor; EAST counted 1 out. On hand: 10 − 6 + 1 − 2 = 3 at AI, 4 at
    EAST; customers hold 5. Another lot (M2) of the same item counts in none of it."""
    w = Wire()
    await record(
        pool,
        w.item(VAX, track_mfr_lot=True, perishable=True),
        w.received(VAX, "L-AI", 10, "3.00", [m("L-AI", 10)], po="PO-1", on=ON),
        w.received(VAX, "L-EAST", 5, "3.00", [m("L-EAST", 5)], po="PO-1", on=ON, office="EAST"),
        w.received(VAX, "L-M2", 7, "3.00", [m("L-M2", 7, "M2")], po="PO-2", on=ON, shipment="IN-2"),
    )
    await record(
        pool,
        w.sale(VAX, "SO-1", [m("L-AI", 4)], customer="Alpha", on=ON),
        w.sale(VAX, "SO-2", [m("L-AI", 2)], customer="Bravo", on=ON),
        w.sale(VAX, "SO-3", [m("L-M2", 3, "M2")], customer="Alpha", on=ON),
        w.returned(VAX, "RMA-1", [m("L-AI", 1)], customer="Alpha", on=ON),
        w.vendor_return(VAX, "RTV-1", [m("L-AI", 2)], vendor="VaxCo", on=ON),
        w.adjusted(VAX, "CNT-1", "count", [m("L-EAST", -1)], on=ON, office="EAST"),
    )

    trace = await get(api, "/trace", lic=VAX, mfr_lot="M1")

    assert trace["accounted"] == {
        "received": "15",
        "shipped": "6",
        "returned_by_customers": "1",
        "returned_to_vendor": "2",
        "adjusted": "-1",
        "on_hand": "7",
        "on_hand_by_office": [
            {"office": "AI", "on_hand": "3"},
            {"office": "EAST", "on_hand": "4"},
        ],
        "at_customers": "5",
    }
    assert {r["customer"]: r["held"] for r in trace["recipients"]} == {"Alpha": "3", "Bravo": "2"}


async def test_a_serial_trace_accounts_for_its_one_unit(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A serial shipped and not back: nothing on hand, one unit at its customer; a lot whose
    units are all gone lists no office."""
    w = Wire()
    unit = mv("L-P", 1, "900", serial="P-1")
    await record(
        pool,
        w.item("PUMP-ACC", serialized=True),
        w.received("PUMP-ACC", "L-P", 1, "900", [unit], po="PO-P", on=ON),
    )
    await record(pool, w.sale("PUMP-ACC", "SO-P", [unit], customer="Clinic", on=ON))

    trace = await get(api, "/trace", lic="PUMP-ACC", serial="P-1")

    accounted = trace["accounted"]
    assert (accounted["received"], accounted["shipped"], accounted["on_hand"]) == ("1", "1", "0")
    assert accounted["on_hand_by_office"] == []
    assert accounted["at_customers"] == "1"
