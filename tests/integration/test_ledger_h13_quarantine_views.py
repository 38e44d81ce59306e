"""The read API on quarantined stock, on a real PostgreSQL (docs/contract.md "Quarantine",
"Read API"): `available` is what a sale can take, so stock a quarantine holds is not in it but
in `quarantined` beside it; a lot is shown held only while a quarantine holds some of its stock
on hand; a held serial is not `available`; a release's record names the quarantine it lifted.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg
import httpx

from shared.contracts import events as e
from tests.integration.test_ledger import CAM, FOOD, Wire, api, get, mv, pool, record
from tests.integration.test_ledger_h13_quarantine import ON, _quarantined, _stock

__all__ = ["api", "pool"]

D = Decimal
LATER = date(2026, 3, 9)


async def test_available_leaves_out_stock_in_quarantine(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """M-1 (5 in L-1, 1 of them allocated before the recall; 4 in L-2) is held: a sale can
    take only M-2's 3 units, which `available` says; `quarantined` is the held stock on hand,
    as the dashboard counts it (9)."""
    w = Wire()
    before = w.allocated(FOOD, "S-1", [mv("L-1", 1, "2.00", mfr_lot="M-1")], customer="C", on=ON)
    await record(
        pool,
        *_stock(w),
        before,
        _quarantined(w, [("L-1", "M-1", 5, 1), ("L-2", "M-1", 4, 0)]),
    )

    (office,) = (await get(api, f"/items/{FOOD}"))["stock"]
    assert (office["on_hand"], office["allocated"]) == ("12", "1")
    assert (office["available"], office["quarantined"]) == ("3", "9")

    valuation = (await get(api, "/lots/L-1"))["valuation"]
    assert valuation["available"] == {"quantity": "3", "value": "6.00"}  # M-2 only
    assert valuation["quarantined"] == {"quantity": "5", "value": "10.00"}
    valuation = (await get(api, "/lots/L-2"))["valuation"]
    assert valuation["available"]["quantity"] == "0"
    assert valuation["quarantined"] == {"quantity": "4", "value": "12.00"}

    await record(pool, _quarantined(w, [], quarantined=False))  # released: all of it free
    (office,) = (await get(api, f"/items/{FOOD}"))["stock"]
    assert (office["available"], office["quarantined"]) == ("11", "0")


async def test_a_plain_items_quarantined_lot_is_not_available(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    w = Wire()
    await record(
        pool,
        w.item("PLAIN"),
        w.received("PLAIN", "P-1", 3, "1.50", [mv("P-1", 3, "1.50")], po="PO-9", on=ON),
        w.received("PLAIN", "P-2", 2, "1.50", [mv("P-2", 2, "1.50")], po="PO-9", on=ON),
        _quarantined(w, [("P-1", None, 3, 0)], mfr_lot=None, lot_id="P-1", lic="PLAIN"),
    )
    (office,) = (await get(api, "/items/PLAIN"))["stock"]
    assert (office["on_hand"], office["available"], office["quarantined"]) == ("5", "2", "3")


async def test_a_lot_whose_held_stock_all_left_is_no_longer_shown_quarantined(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """The recall drill: L-1 held M-1 and M-2; M-1 was quarantined, then all of it returned
    to the vendor. Its M-2 units are free (and sold): nothing of the lot is held any more."""
    w = Wire()
    back = [mv("L-1", 5, "2.00", mfr_lot="M-1")]
    await record(pool, *_stock(w)[:2], _quarantined(w, [("L-1", "M-1", 5, 0)]))
    assert (await get(api, "/lots/L-1"))["quarantined"] is True
    await record(
        pool,
        *w.vendor_return(FOOD, "RTV-1", back, vendor="V", on=LATER),
        *w.sale(FOOD, "S-1", [mv("L-1", 2, "2.00", mfr_lot="M-2")], customer="C", on=LATER),
    )

    (listed,) = await get(api, "/lots", lic=FOOD)
    assert (listed["quarantined"], listed["quarantines"]) == (False, [])
    lot = await get(api, "/lots/L-1")
    assert (lot["quarantined"], lot["quarantines"]) == (False, [])
    assert [(m["mfr_lot"], m["quarantined"]) for m in lot["mfr_lots"]] == [
        ("M-1", False),
        ("M-2", False),
    ]
    # The rule is still in force: M-1 received later is held, and the lot is shown so.
    await record(pool, _stock(w)[2])
    (held,) = (await get(api, "/lots/L-2"))["quarantines"]
    assert held["quarantine_id"] == "Q-1"


def _serials(w: Wire) -> list[e.Event]:
    units = [mv("SL-1", 1, "300.00", serial=s) for s in ("SN-1", "SN-2", "SN-3")]
    return [
        w.item(CAM, serialized=True),
        w.received(CAM, "SL-1", 3, "300.00", units, po="PO-7", on=ON),
        w.allocated(CAM, "S-9", [units[1]], customer="C", on=ON),
    ]


async def test_a_held_serial_is_shown_quarantined_not_available(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    w = Wire()
    rule = _quarantined(
        w, [("SL-1", None, 3, 1)], mfr_lot=None, lot_id="SL-1", lic=CAM, reason="failed QA"
    )
    await record(pool, *_serials(w), rule)

    unit = await get(api, f"/serials/{CAM}/SN-1")
    assert (unit["status"], unit["current"]["status"]) == ("quarantined", "quarantined")
    assert (unit["quarantined"], unit["quarantine_id"], unit["quarantine_reason"]) == (
        True,
        "Q-1",
        "failed QA",
    )
    allocated = await get(api, f"/serials/{CAM}/SN-2")  # allocated before: it stays allocated
    assert (allocated["status"], allocated["quarantined"]) == ("allocated", True)

    await record(pool, rule.model_copy(update={"message_id": "lifted", "quarantined": False}))
    unit = await get(api, f"/serials/{CAM}/SN-1")
    assert (unit["status"], unit["quarantined"], unit["quarantine_id"]) == (
        "available",
        False,
        None,
    )


async def test_a_release_record_names_the_quarantine_it_lifted(pool: asyncpg.Pool) -> None:
    w = Wire()
    await record(pool, *_stock(w)[:2], _quarantined(w, [("L-1", "M-1", 5, 0)]))
    release = _quarantined(w, [("L-1", "M-1", 5, 0)], quarantined=False, reason="QA passed")
    await record(
        pool,
        release.model_copy(update={"quarantine_id": "REL-1", "released_quarantine_id": "Q-1"}),
    )
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT document, reason FROM transactions WHERE event_type = 'quarantine_release'"
        )
    assert row is not None
    assert (row["document"], row["reason"]) == ("REL-1", "releases quarantine Q-1: QA passed")
