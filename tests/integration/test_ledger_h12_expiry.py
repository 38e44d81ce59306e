"""The operations dashboard's expiry view on a real PostgreSQL, as a food or medicine warehouse
reads it: stock past its expiry still on hand, then stock expiring soon, each manufacturer lot
listed once per item and office with its total on hand and value, against the UTC date whatever
the database server's time zone (R9's "expired": before the date; on it, still shippable)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx

from services.ledger import operations
from services.ledger.api import create_api
from services.ledger.schemas import LedgerHealth
from shared.contracts import events as e
from tests.integration.test_ledger import FOOD, Wire, mv, pool, record

__all__ = ["pool"]

D = Decimal
AS_OF = date(2026, 11, 22)
HOSTILE = '<script>alert("x")</script>&'


def _receipt(
    w: Wire,
    lot_id: str,
    mfr_lot: str,
    expires_on: date,
    quantity: int,
    cost: str,
    *,
    office: str = "AI",
) -> e.StockReceived:
    moves = [mv(lot_id, quantity, cost, mfr_lot=mfr_lot, expires_on=expires_on)]
    return w.received(
        FOOD, lot_id, quantity, cost, moves, po=f"PO-{lot_id}", on=date(2026, 1, 5), office=office
    )


async def _health(pool: asyncpg.Pool, as_of: date, expiring_days: int = 30) -> LedgerHealth:
    async with pool.acquire() as conn:
        found = await operations.summary(conn, as_of=as_of, expiring_days=expiring_days)
    return found.ledger


async def test_expired_stock_on_hand_is_listed_per_mfr_lot_most_overdue_first(
    pool: asyncpg.Pool,
) -> None:
    """M-OLD, expired 21 days ago, was received twice at AI (two inventory lots) and once at
    BO: one row per office with the office's total and its value at each lot's cost; M-EDGE
    expired yesterday comes after it, part of it allocated; a lot expired and sold out is not
    shown."""
    w = Wire()
    old, edge = AS_OF - timedelta(days=21), AS_OF - timedelta(days=1)
    await record(
        pool,
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        _receipt(w, "L-1", "M-OLD", old, 10, "2.00"),
        _receipt(w, "L-2", "M-OLD", old, 5, "3.00"),
        _receipt(w, "L-3", "M-OLD", old, 1, "2.00", office="BO"),
        _receipt(w, "L-4", "M-EDGE", edge, 2, "1.50"),
        _receipt(w, "L-5", "M-GONE", old, 4, "1.00"),
        w.sale(
            FOOD,
            "S-1",
            [
                mv("L-1", 3, "2.00", mfr_lot="M-OLD", expires_on=old),
                mv("L-5", 4, "1.00", mfr_lot="M-GONE", expires_on=old),
            ],
            customer="Montboro",
            on=old - timedelta(days=2),
        ),
        w.allocated(  # a vendor return waiting to ship: still on hand, shown allocated
            FOOD,
            "RTV-1",
            [mv("L-4", 1, "1.50", mfr_lot="M-EDGE", expires_on=edge)],
            customer="Acme Foods",
            on=AS_OF,
        ),
    )

    health = await _health(pool, as_of=AS_OF)

    assert health.as_of == AS_OF
    assert [
        (x.mfr_lot, x.office, x.expires_on, x.days_expired, x.current_qty, x.current_value)
        for x in health.expired
    ] == [
        ("M-OLD", "AI", old, 21, D(12), D("29.00")),
        ("M-OLD", "BO", old, 21, D(1), D("2.00")),
        ("M-EDGE", "AI", edge, 1, D(2), D("3.00")),
    ]
    assert health.expired[0].lot_ids == ["L-1", "L-2"]
    assert [x.allocated_qty for x in health.expired] == [0, 0, 1]
    assert (health.expired_lots, health.expired_value) == (3, D("34.00"))
    assert health.expiring == [] and health.expiring_lots == 0


async def test_a_lot_expiring_on_the_date_is_expiring_not_expired(pool: asyncpg.Pool) -> None:
    """R9: a lot expiring on the ship date still ships that day, so on the dashboard's date it
    is not yet expired: it is the first of the lots expiring soon."""
    w = Wire()
    await record(
        pool,
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        _receipt(w, "L-1", "M-TODAY", AS_OF, 4, "2.00"),
    )

    health = await _health(pool, as_of=AS_OF)

    assert health.expired == [] and health.expired_lots == 0
    assert [(x.mfr_lot, x.days_left, x.current_qty) for x in health.expiring] == [
        ("M-TODAY", 0, D(4))
    ]


async def test_a_mfr_lot_received_twice_is_listed_once_as_expiring_with_its_total(
    pool: asyncpg.Pool,
) -> None:
    """Two receipts of M-SOON (two inventory lots, one partly sold) are one manufacturer lot to
    the warehouse: one row, its total on hand and value, and both inventory lots named; the
    count is of manufacturer lots."""
    w = Wire()
    soon = AS_OF + timedelta(days=9)
    await record(
        pool,
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        _receipt(w, "L-6", "M-SOON", soon, 10, "2.00"),
        _receipt(w, "L-7", "M-SOON", soon, 5, "4.00"),
        w.sale(
            FOOD,
            "S-1",
            [mv("L-6", 3, "2.00", mfr_lot="M-SOON", expires_on=soon)],
            customer="Montboro",
            on=AS_OF,
        ),
    )

    health = await _health(pool, as_of=AS_OF, expiring_days=30)

    assert [
        (x.mfr_lot, x.office, x.days_left, x.current_qty, x.current_value, x.lot_ids)
        for x in health.expiring
    ] == [("M-SOON", "AI", 9, D(12), D("34.00"), ["L-6", "L-7"])]
    assert health.expiring[0].lot_id == "L-6"  # the field kept: the first inventory lot
    assert (health.expiring_lots, health.expiring_value) == (1, D("34.00"))


def _far_from_utc(now: datetime) -> str:
    """A time zone whose date differs from the UTC date at `now`: +14 h after noon UTC, −12 h
    before (Etc/GMT signs are inverted)."""
    return "Etc/GMT-14" if now.hour >= 12 else "Etc/GMT+12"


async def test_today_is_the_utc_date_whatever_the_database_time_zone(
    pool: asyncpg.Pool,
) -> None:
    """Usage records today, and which lots have expired, follow the UTC date even when the
    database's session runs in a time zone whose date is another."""
    w = Wire()
    today = datetime.now(UTC).date()
    await record(
        pool,
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        _receipt(w, "L-1", "M-TODAY", today, 4, "2.00"),
        _receipt(w, "L-2", "M-PAST", today - timedelta(days=1), 1, "2.00"),
        w.sale(
            FOOD,
            "S-1",
            [mv("L-1", 1, "2.00", mfr_lot="M-TODAY", expires_on=today)],
            customer="Montboro",
            on=today,
        ),
    )

    async with pool.acquire() as conn:
        await conn.execute(f"SET TIME ZONE '{_far_from_utc(datetime.now(UTC))}'")
        try:
            assert await conn.fetchval("SELECT current_date") != today  # the premise
            found = await operations.summary(conn)
        finally:
            await conn.execute("RESET TIME ZONE")

    health = found.ledger
    assert (health.usage_records_today, health.usage_cost_today) == (1, D("2.00"))
    assert health.as_of == today == found.generated_at.astimezone(UTC).date()
    assert [x.mfr_lot for x in health.expired] == ["M-PAST"]
    assert [x.mfr_lot for x in health.expiring] == ["M-TODAY"]


async def test_the_summary_and_the_page_show_expired_stock_escaped(pool: asyncpg.Pool) -> None:
    """`/ops/summary` carries the expired stock; `/dashboard` shows it first in the ledger's
    section, its hostile lot number escaped."""
    w = Wire()
    past = datetime.now(UTC).date() - timedelta(days=3)
    await record(
        pool,
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        _receipt(w, "L-1", HOSTILE, past, 2, "5.00"),
    )
    app = create_api(lambda: pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ledger"
    ) as api:
        summary = (await api.get("/ops/summary")).json()
        page = (await api.get("/dashboard")).text

    ledger = summary["ledger"]
    assert (ledger["expired_lots"], ledger["expired_value"]) == (1, "10.00")
    assert [
        (x["mfr_lot"], x["expires_on"], x["days_expired"], x["current_qty"], x["current_value"])
        for x in ledger["expired"]
    ] == [(HOSTILE, past.isoformat(), 3, "2", "10.00")]
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert page.index("Expired stock on hand") < page.index("expiring within")
