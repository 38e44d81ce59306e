"""`GET /items/{lic}` on expired stock, on a real PostgreSQL (docs/contract.md "Read API"):
`available` keeps counting stock of expired manufacturer lots (R9 judges expiry by each sale's
ship date), and `expired` says how much of it no sale shipping today takes: the free units of a
perishable item's lots expired before today, never stock a quarantine holds (out of
`available` already) nor allocated units.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import httpx

from shared.contracts import events as e
from tests.integration.test_ledger import Wire, api, get, mv, pool, record
from tests.integration.test_ledger_h13_quarantine import _quarantined

__all__ = ["api", "pool"]

D = Decimal
VAX = "VAX-2"


async def _today(pool: asyncpg.Pool) -> date:
    """The day the read judges expiry against: the UTC date of the read, as the dashboard's."""
    day: date = await pool.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date")
    return day


def _stock(w: Wire, today: date, lic: str = VAX, *, perishable: bool = True) -> list[e.Event]:
    """At AI: L-1 holds OLD (4, expired 10 days ago), PART (10, expired yesterday, 4 of it
    allocated), TODAY (5, expiring today) and GOOD (7, in 100 days); L-2 holds HELD (3,
    expired 3 days ago, 1 allocated, then quarantined). At BX: L-3 holds 2 of OLD. Lot ids
    are the LIC's own (`VAX-2/L-1`)."""
    old, part, held = today - timedelta(10), today - timedelta(1), today - timedelta(3)
    good = today + timedelta(100)
    received = today - timedelta(60)

    def lot(lot_id: str, name: str, qty: int, expires_on: date) -> e.Movement:
        return mv(f"{lic}/{lot_id}", qty, "2.00", mfr_lot=name, expires_on=expires_on)

    return [
        w.item(lic, track_mfr_lot=True, perishable=perishable),
        w.received(
            lic,
            f"{lic}/L-1",
            26,
            "2.00",
            [
                lot("L-1", "OLD", 4, old),
                lot("L-1", "PART", 10, part),
                lot("L-1", "TODAY", 5, today),
                lot("L-1", "GOOD", 7, good),
            ],
            po="PO-1",
            on=received,
        ),
        w.received(
            lic, f"{lic}/L-2", 3, "2.00", [lot("L-2", "HELD", 3, held)], po="PO-2", on=received
        ),
        w.received(
            lic,
            f"{lic}/L-3",
            2,
            "2.00",
            [lot("L-3", "OLD", 2, old)],
            po="PO-3",
            on=received,
            office="BX",
        ),
        # Allocated while still fresh (a sale's ship date before the expiry), not yet shipped.
        w.allocated(
            lic, "SO-1", [lot("L-1", "PART", 4, part)], customer="Clinic", on=part - timedelta(2)
        ),
        w.allocated(
            lic, "SO-2", [lot("L-2", "HELD", 1, held)], customer="Clinic", on=held - timedelta(2)
        ),
        _quarantined(w, [(f"{lic}/L-2", "HELD", 3, 1)], mfr_lot="HELD", lic=lic),
    ]


def _by_office(item: dict[str, list[dict[str, str]]]) -> dict[str, dict[str, str]]:
    return {s["office"]: s for s in item["stock"]}


async def test_expired_counts_the_free_units_of_lots_expired_before_today(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R9: OLD's 4 and PART's 6 free units at AI no sale shipping today takes; TODAY still
    ships today, GOOD is fresh, HELD is held (not in available: not counted twice) and PART's
    allocated 4 are not available. `available` is as it was: expired stock stays in it."""
    today = await _today(pool)
    await record(pool, *_stock(Wire(), today))

    stock = _by_office(await get(api, f"/items/{VAX}"))

    ai = stock["AI"]
    assert (ai["on_hand"], ai["allocated"], ai["quarantined"]) == ("29", "5", "3")
    assert ai["available"] == "22"  # 29 − 5 allocated − 2 held and not allocated
    assert ai["expired"] == "10"
    assert (stock["BX"]["available"], stock["BX"]["expired"]) == ("2", "2")


async def test_expired_is_none_once_the_expired_stock_left_or_for_a_non_perishable_item(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """An expired lot's stock that left (here: shipped by a sale dated before its expiry) is
    expired no more; a non-perishable item's lots ship whatever their expiry (R9)."""
    today = await _today(pool)
    w = Wire()
    await record(pool, *_stock(w, today), *_stock(w, today, "BOLT-2", perishable=False))
    old = mv(f"{VAX}/L-1", 4, "2.00", mfr_lot="OLD", expires_on=today - timedelta(10))
    await record(pool, w.sale(VAX, "SO-3", [old], customer="Clinic", on=today - timedelta(11)))

    vax, bolt = (
        _by_office(await get(api, f"/items/{VAX}")),
        _by_office(await get(api, "/items/BOLT-2")),
    )

    assert (vax["AI"]["available"], vax["AI"]["expired"]) == ("18", "6")
    assert (bolt["AI"]["available"], bolt["AI"]["expired"]) == ("22", "0")


async def test_the_dashboards_expired_stock_is_the_whole_stock_on_hand_of_the_same_lots(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """The dashboard's expired lots (same day) are the lots `expired` counts from, with all
    their stock on hand: `expired` leaves out their allocated units and the held lot."""
    today = await _today(pool)
    await record(pool, *_stock(Wire(), today))

    health = (await get(api, "/ops/summary"))["ledger"]
    office = _by_office(await get(api, f"/items/{VAX}"))["AI"]

    assert health["as_of"] == today.isoformat()
    rows = {(x["mfr_lot"], x["office"]): x for x in health["expired"] if x["lic"] == VAX}
    assert set(rows) == {("OLD", "AI"), ("PART", "AI"), ("HELD", "AI"), ("OLD", "BX")}
    at_ai = [x for (name, where), x in rows.items() if where == "AI" and name != "HELD"]
    free = sum(D(x["current_qty"]) - D(x["allocated_qty"]) for x in at_ai)
    assert D(office["expired"]) == free == 10
