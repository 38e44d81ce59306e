"""Quarantine (a QA or recall hold) in the ledger on a real PostgreSQL: each quarantine and
release is a transaction record per inventory lot it covers (R15: quantity on hand, stock
change 0); `/lots` and `/lots/{id}` say which lots and manufacturer lots are held and why; the
dashboard and `/ops/summary` list the stock in quarantine per manufacturer lot with its value.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg
import httpx

from services.ledger.api import create_api
from shared.contracts import events as e
from tests.integration.test_ledger import FOOD, Wire, api, get, mv, pool, record

__all__ = ["api", "pool"]

D = Decimal
ON = date(2026, 3, 2)
HOSTILE = '<b>"recall"</b>&'


def _quarantined(
    w: Wire,
    stock: list[tuple[str, str | None, int, int]],
    *,
    quarantined: bool = True,
    mfr_lot: str | None = "M-1",
    lot_id: str | None = None,
    reason: str = "recall notice 42",
    lic: str = FOOD,
) -> e.StockQuarantined:
    return e.StockQuarantined(
        message_id=w._id("quarantined"),
        command_id="c",
        lic=lic,
        quarantine_id="Q-1",
        quarantined=quarantined,
        reason=reason,
        mfr_lot=mfr_lot,
        lot_id=lot_id,
        quarantined_on=ON,
        stock=[
            e.QuarantinedStock(
                lot_id=lot, office="AI", mfr_lot=name, on_hand=D(on_hand), allocated=D(allocated)
            )
            for lot, name, on_hand, allocated in stock
        ],
    )


def _stock(w: Wire) -> list[e.Event]:
    """M-1 in two lots (L-1 at 2.00, L-2 at 3.00) and M-2 in L-1."""
    exp = date(2027, 1, 1)
    return [
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        w.received(
            FOOD,
            "L-1",
            8,
            "2.00",
            [
                mv("L-1", 5, "2.00", mfr_lot="M-1", expires_on=exp),
                mv("L-1", 3, "2.00", mfr_lot="M-2", expires_on=exp),
            ],
            po="PO-1",
            on=date(2026, 1, 5),
        ),
        w.received(
            FOOD,
            "L-2",
            4,
            "3.00",
            [mv("L-2", 4, "3.00", mfr_lot="M-1", expires_on=exp)],
            po="PO-2",
            on=date(2026, 1, 6),
        ),
    ]


async def test_quarantine_and_release_are_transaction_records_per_lot(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    w = Wire()
    held = _quarantined(w, [("L-1", "M-1", 5, 1), ("L-2", "M-1", 4, 0)])
    await record(pool, *_stock(w), held)  # one batch: the lots are written first
    released = _quarantined(w, [("L-1", "M-1", 5, 1), ("L-2", "M-1", 4, 0)], quarantined=False)
    await record(pool, released)

    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_type, lot_id, mfr_lot, quantity, stock_change, unit_cost, cost,"
            " document, reason, occurred_on, expires_on FROM transactions"
            " WHERE event_type LIKE 'quarantine%' ORDER BY seq"
        )
    assert [tuple(r.values()) for r in rows] == [
        ("quarantine", "L-1", "M-1", D(5), D(0), D("2.00"), D("10.00"), "Q-1",
         "recall notice 42", ON, date(2027, 1, 1)),
        ("quarantine", "L-2", "M-1", D(4), D(0), D("3.00"), D("12.00"), "Q-1",
         "recall notice 42", ON, date(2027, 1, 1)),
        ("quarantine_release", "L-1", "M-1", D(5), D(0), D("2.00"), D("10.00"), "Q-1",
         "recall notice 42", ON, date(2027, 1, 1)),
        ("quarantine_release", "L-2", "M-1", D(4), D(0), D("3.00"), D("12.00"), "Q-1",
         "recall notice 42", ON, date(2027, 1, 1)),
    ]  # fmt: skip
    # R15: the lot's whole history lists them; the recall trace of M-1 too.
    trace = await get(api, "/trace", lic=FOOD, mfr_lot="M-1")
    assert "quarantine" in str(trace)


async def test_lots_say_which_stock_is_quarantined_and_why(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    w = Wire()
    await record(pool, *_stock(w), _quarantined(w, [("L-1", "M-1", 5, 0), ("L-2", "M-1", 4, 0)]))

    lots = await get(api, "/lots", lic=FOOD)
    assert [(x["lot_id"], x["quarantined"]) for x in lots] == [("L-1", True), ("L-2", True)]
    (rule,) = lots[0]["quarantines"]
    assert (rule["quarantine_id"], rule["mfr_lot"], rule["office"], rule["reason"]) == (
        "Q-1",
        "M-1",
        None,
        "recall notice 42",
    )
    lot = await get(api, "/lots/L-1")
    assert lot["quarantined"] is True
    assert [
        (m["mfr_lot"], m["quarantined"], m["quarantine_id"], m["quarantine_reason"])
        for m in lot["mfr_lots"]
    ] == [("M-1", True, "Q-1", "recall notice 42"), ("M-2", False, None, None)]

    await record(pool, _quarantined(w, [], quarantined=False))
    lot = await get(api, "/lots/L-1")
    assert (lot["quarantined"], lot["quarantines"]) == (False, [])
    assert not any(m["quarantined"] for m in lot["mfr_lots"])


async def test_a_lot_received_after_the_recall_is_shown_held(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    w = Wire()
    await record(pool, *_stock(w)[:2], _quarantined(w, [("L-1", "M-1", 5, 0)]))
    await record(pool, _stock(w)[2])  # L-2: more of M-1, after its recall
    assert (await get(api, "/lots/L-2"))["mfr_lots"][0]["quarantined"] is True


async def test_the_dashboard_lists_stock_in_quarantine_with_its_value(pool: asyncpg.Pool) -> None:
    w = Wire()
    await record(
        pool,
        *_stock(w),
        _quarantined(w, [("L-1", "M-1", 5, 1), ("L-2", "M-1", 4, 0)], reason=HOSTILE),
    )
    app = create_api(lambda: pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ledger"
    ) as client:
        summary = (await client.get("/ops/summary")).json()
        page = (await client.get("/dashboard")).text

    ledger = summary["ledger"]
    assert (ledger["quarantined_lots"], ledger["quarantined_value"]) == (1, "22.00")
    ((held,),) = [ledger["quarantined"]]
    assert (held["lic"], held["mfr_lot"], held["office"]) == (FOOD, "M-1", "AI")
    assert (held["current_qty"], held["current_value"], held["lot_ids"]) == (
        "9",
        "22.00",
        ["L-1", "L-2"],
    )
    assert (held["quarantine_ids"], held["reason"]) == (["Q-1"], HOSTILE)
    assert "Stock in quarantine: 1 manufacturer lots" in page
    assert '<b>"recall"</b>' not in page and "&lt;b&gt;" in page
    assert page.index("Expired stock on hand") < page.index("Stock in quarantine")


async def test_a_plain_items_quarantined_lot_is_listed_without_a_manufacturer_lot(
    pool: asyncpg.Pool,
) -> None:
    w = Wire()
    await record(
        pool,
        w.item("PLAIN"),
        w.received("PLAIN", "P-1", 3, "1.50", [mv("P-1", 3, "1.50")], po="PO-9", on=ON),
        _quarantined(w, [("P-1", None, 3, 0)], mfr_lot=None, lot_id="P-1", lic="PLAIN"),
    )
    app = create_api(lambda: pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ledger"
    ) as client:
        ledger = (await client.get("/ops/summary")).json()["ledger"]
        lot = (await client.get("/lots/P-1")).json()
    assert [(x["lic"], x["mfr_lot"], x["current_value"]) for x in ledger["quarantined"]] == [
        ("PLAIN", None, "4.50")
    ]
    assert lot["quarantined"] is True and lot["quarantines"][0]["lot_id"] == "P-1"
