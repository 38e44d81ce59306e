"""Quarantine and stock arriving after the hold, on a real PostgreSQL (docs/contract.md
"Quarantine"): a receipt, a customer return or an adjustment that adds stock a quarantine in
force covers gets a `quarantine` record, so the lot's history shows it went into quarantine;
`/lots/{id}` shows a held unit `quarantined`, as `/serials` does.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg
import httpx

from tests.integration.test_ledger import CAM, FOOD, Wire, api, get, mv, pool, record
from tests.integration.test_ledger_h13_quarantine import ON, _quarantined, _stock
from tests.integration.test_ledger_h13_quarantine_views import _serials

__all__ = ["api", "pool"]

D = Decimal
LATER = date(2026, 3, 9)
EXP = date(2027, 1, 1)


async def _quarantine_records(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT lot_id, mfr_lot, quantity, stock_change, unit_cost, cost, document, reason,"
            " occurred_on FROM transactions WHERE event_type = 'quarantine' ORDER BY seq"
        )
    return [tuple(r.values()) for r in rows]


async def test_stock_arriving_into_a_held_lot_gets_a_quarantine_record(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """M-1 is held (5 in L-1, 4 in L-2). Later a receipt brings 4 more of M-1 (and 2 of M-3,
    not held), a customer returns 1 into L-1, a count finds 2 in L-2 and another loses 1:
    each arrival of M-1 is recorded as gone into quarantine, nothing else is."""
    w = Wire()
    await record(pool, *_stock(w), _quarantined(w, [("L-1", "M-1", 5, 0), ("L-2", "M-1", 4, 0)]))
    sold = [mv("L-1", 1, "2.00", mfr_lot="M-2", expires_on=EXP)]
    await record(
        pool,
        w.allocated(FOOD, "S-1", sold, customer="C", on=ON),
        w.shipped(FOOD, "S-1", sold, customer="C", on=ON),
    )
    before = len(await _quarantine_records(pool))

    await record(
        pool,
        w.received(
            FOOD,
            "L-3",
            6,
            "2.50",
            [
                mv("L-3", 4, "2.50", mfr_lot="M-1", expires_on=EXP),
                mv("L-3", 2, "2.50", mfr_lot="M-3", expires_on=EXP),
            ],
            po="PO-3",
            on=LATER,
        ),
        w.returned(FOOD, "RMA-1", [mv("L-1", 1, "2.00", mfr_lot="M-1")], customer="C", on=LATER),
        w.returned(FOOD, "RMA-2", sold, customer="C", on=LATER),  # M-2: not held
        w.adjusted(FOOD, "CNT-1", "count", [mv("L-2", 2, "3.00", mfr_lot="M-1")], on=LATER),
        w.adjusted(FOOD, "CNT-2", "count", [mv("L-2", -1, "3.00", mfr_lot="M-1")], on=LATER),
    )

    assert (await _quarantine_records(pool))[before:] == [
        ("L-3", "M-1", D(4), D(0), D("2.50"), D("10.00"), "Q-1", "recall notice 42", LATER),
        ("L-1", "M-1", D(1), D(0), D("2.00"), D("2.00"), "Q-1", "recall notice 42", LATER),
        ("L-2", "M-1", D(2), D(0), D("3.00"), D("6.00"), "Q-1", "recall notice 42", LATER),
    ]
    # The recall trace of M-1 lists the received units going into quarantine.
    trace = await get(api, "/trace", lic=FOOD, mfr_lot="M-1")
    assert "'document': 'Q-1'" in str(trace) and "L-3" in str(trace)


async def test_a_hold_or_release_in_the_same_batch_counts_in_its_place(
    pool: asyncpg.Pool,
) -> None:
    """A hold read before a receipt in one batch holds it; a release before another does not."""
    w = Wire()
    stock = _stock(w)
    m1 = [mv("L-3", 3, "2.50", mfr_lot="M-1", expires_on=EXP)]
    await record(
        pool,
        *stock,
        _quarantined(w, [("L-1", "M-1", 5, 0), ("L-2", "M-1", 4, 0)]),
        w.received(FOOD, "L-3", 3, "2.50", m1, po="PO-3", on=LATER),
    )
    held = await _quarantine_records(pool)
    # The receipt's record is written with the batch's rows, before the hold's.
    assert sorted((lot, qty) for lot, _, qty, *_ in held) == [("L-1", 5), ("L-2", 4), ("L-3", 3)]

    m1 = [mv("L-4", 2, "2.50", mfr_lot="M-1", expires_on=EXP)]
    await record(
        pool,
        _quarantined(w, [], quarantined=False),
        w.received(FOOD, "L-4", 2, "2.50", m1, po="PO-4", on=LATER),
    )
    assert await _quarantine_records(pool) == held


async def test_a_lots_held_serials_are_shown_quarantined(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """SL-1 is held: SN-1 and SN-3 are `quarantined`, SN-2 (allocated before) stays
    `allocated`, flagged; released, they are `available` again."""
    w = Wire()
    rule = _quarantined(
        w, [("SL-1", None, 3, 1)], mfr_lot=None, lot_id="SL-1", lic=CAM, reason="failed QA"
    )
    await record(pool, *_serials(w), rule)

    serials = (await get(api, "/lots/SL-1"))["serials"]
    assert [(s["serial"], s["status"], s["quarantined"]) for s in serials] == [
        ("SN-1", "quarantined", True),
        ("SN-2", "allocated", True),
        ("SN-3", "quarantined", True),
    ]

    await record(pool, rule.model_copy(update={"message_id": "lifted", "quarantined": False}))
    serials = (await get(api, "/lots/SL-1"))["serials"]
    assert [(s["serial"], s["status"], s["quarantined"]) for s in serials] == [
        ("SN-1", "available", False),
        ("SN-2", "allocated", False),
        ("SN-3", "available", False),
    ]
