"""The cost of goods sold of a period (`GET /cogs`): the ledger's handlers on a real PostgreSQL,
read back through its API (R10, R12–R14, R16)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.ledger import queries
from services.ledger.domain.model import COGS_ACTIONS
from tests.integration.test_ledger import Wire, api, get, mv, pool, record, record_costs

__all__ = ["api", "pool"]
D = Decimal
OIL, GEL, SALT = "OIL", "GEL", "SALT"
NOVEMBER = {"from": "2024-11-01", "to": "2024-11-30"}
THE_YEAR = {"from": "2024-01-01", "to": "2024-12-31"}


def _on(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


async def _oil_and_gel(pool: asyncpg.Pool) -> None:
    """OIL: PO-1 received 100 at 10.00 in October; sold 5 on Oct 31, 8 on Nov 1, 4 on Dec 1;
    2 returned by the customer Nov 10, 1 lost Nov 30, 3 returned to the vendor Nov 15; PO-1
    closes at 12.00 on Nov 20, after all of that was recorded (the December sale too).
    GEL: PO-2 received 20 at 5.00; 10 sold Nov 25; PO-2 closes at 4.50 on Dec 10."""
    w = Wire()
    oil = [
        w.item(OIL, description="Olive oil 1l", uom="Bottle"),
        w.received(
            OIL, "L-1", 100, "10.00", [mv("L-1", 100, "10.00")], po="PO-1", on=date(2024, 10, 1)
        ),
        w.sale(OIL, "SO-OCT", [mv("L-1", 5, "10.00")], customer="ACME", on=date(2024, 10, 31)),
        w.sale(OIL, "SO-NOV", [mv("L-1", 8, "10.00")], customer="ACME", on=date(2024, 11, 1)),
        w.returned(OIL, "RMA-1", [mv("L-1", 2, "10.00")], customer="ACME", on=date(2024, 11, 10)),
        w.vendor_return(
            OIL, "RTV-1", [mv("L-1", 3, "10.00")], vendor="Acme Oil", on=date(2024, 11, 15)
        ),
        w.adjusted(OIL, "ADJ-1", "loss", [mv("L-1", -1, "10.00")], on=date(2024, 11, 30)),
        w.sale(OIL, "SO-DEC", [mv("L-1", 4, "10.00")], customer="ACME", on=date(2024, 12, 1)),
    ]
    gel = [
        w.item(GEL, description="Hair gel", uom="Tube"),
        w.received(
            GEL, "L-2", 20, "5.00", [mv("L-2", 20, "5.00")], po="PO-2", on=date(2024, 10, 2)
        ),
        w.sale(GEL, "SO-GEL", [mv("L-2", 10, "5.00")], customer="ACME", on=date(2024, 11, 25)),
    ]
    await record(pool, *oil, *gel)
    close = {"closed": True, "ordered_quantity": D(100), "purchased_quantity": D(100)}
    await record_costs(
        pool, w.po("PO-1", OIL, act_unit_cost=D(12), occurred_at=_on(date(2024, 11, 20)), **close)
    )
    await record_costs(
        pool,
        w.po("PO-2", GEL, act_unit_cost=D("4.50"), occurred_at=_on(date(2024, 12, 10)), **close),
    )


def _figures(f: dict[str, Any]) -> tuple[Decimal, ...]:
    """(quantity, usage, reconciliation, cogs) and the vendor returns' (quantity, usage,
    reconciliation, total)."""
    v = f["vendor_returns"]
    return tuple(
        D(x)
        for x in (
            f["quantity"],
            f["usage"],
            f["reconciliation"],
            f["cogs"],
            v["quantity"],
            v["usage"],
            v["reconciliation"],
            v["total"],
        )
    )


NO_RETURNS = (D(0),) * 4


async def test_a_months_cogs_is_its_usage_and_the_reconciliations_dated_in_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R10, R13, R16: November's OIL is the Nov 1 sale (8 × 10.00), less the return (2 × 10.00),
    plus the loss on Nov 30 (1 × 10.00): 7 units, 70.00 booked; and PO-1's close of Nov 20 at
    12.00 reconciles the October sale (+10.00), November's sale (+16.00), return (−4.00) and
    loss (+2.00) in November: 24.00, so 94.00. The December sale's entry is dated Dec 1 (the
    later of close and usage): not November's. The return to vendor (3 × 10.00, and its +6.00)
    is shown apart. GEL's Nov 25 sale (50.00) is reconciled by a close in December: not in
    November's 50.00."""
    await _oil_and_gel(pool)

    period = await get(api, "/cogs", **NOVEMBER)

    assert (period["from"], period["to"], period["lic"]) == ("2024-11-01", "2024-11-30", None)
    assert [(i["lic"], i["description"], i["uom"]) for i in period["items"]] == [
        (GEL, "Hair gel", "Tube"),
        (OIL, "Olive oil 1l", "Bottle"),
    ]
    gel, oil = period["items"]
    assert _figures(oil) == (7, 70, 24, 94, 3, 30, 6, 36)
    assert _figures(gel) == (10, 50, 0, 50, *NO_RETURNS)
    assert _figures(period["total"]) == (17, 120, 24, 144, 3, 30, 6, 36)
    # Every digit as the other answers write it.
    assert oil["cogs"] == "94.00" and oil["vendor_returns"]["total"] == "36.00"


async def test_over_every_date_an_items_cogs_is_its_lots_cogs_total(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R16: over a period holding every entry, each item's `cogs` is its lots' `cogs_total`
    (OIL: 16 units used at 12.00, 192.00; GEL: 10 at 4.50, 45.00), and the total theirs."""
    await _oil_and_gel(pool)

    period = await get(api, "/cogs", **THE_YEAR)

    lots = {
        lic: D((await get(api, f"/lots/{lot}"))["cogs_total"])
        for lic, lot in ((OIL, "L-1"), (GEL, "L-2"))
    }
    assert lots == {OIL: 192, GEL: D(45)}
    assert {i["lic"]: D(i["cogs"]) for i in period["items"]} == lots
    assert D(period["total"]["cogs"]) == sum(lots.values())
    gel, oil = period["items"]
    assert _figures(oil) == (16, 160, 32, 192, 3, 30, 6, 36)
    assert _figures(gel) == (10, 50, -5, 45, *NO_RETURNS)


async def test_one_item_is_read_alone_and_an_unknown_one_is_404(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`lic` sums that item's entries alone; a known item with none in the period has no row
    and zeros; an item the ledger does not know is 404 (a typo is not a quiet zero)."""
    await _oil_and_gel(pool)

    gel = await get(api, "/cogs", lic=GEL, **NOVEMBER)
    assert (gel["lic"], [i["lic"] for i in gel["items"]]) == (GEL, [GEL])
    assert _figures(gel["total"]) == (10, 50, 0, 50, *NO_RETURNS)
    quiet = await get(api, "/cogs", lic=GEL, **{"from": "2024-01-01", "to": "2024-01-31"})
    assert quiet["items"] == [] and _figures(quiet["total"]) == (0,) * 8

    unknown = await api.get("/cogs", params={"lic": "G E L", **NOVEMBER})
    assert unknown.status_code == 404 and "G E L" in unknown.json()["detail"]


async def test_stock_without_a_lot_counts_as_the_ledger_booked_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R12: 5 SALT counted in beyond any lot on Nov 3 at 2.00 is negative usage (−10.00) in
    November; taken out again on Dec 2 (+10.00), it leaves no COGS over both months."""
    w = Wire()
    await record(
        pool,
        w.item(SALT),
        w.adjusted(SALT, "CNT-1", "count", [mv(None, 5, "2.00")], on=date(2024, 11, 3)),
        w.adjusted(SALT, "CNT-2", "count", [mv(None, -5, "2.00")], on=date(2024, 12, 2)),
    )

    november = await get(api, "/cogs", **NOVEMBER)
    assert _figures(november["total"]) == (-5, -10, 0, -10, *NO_RETURNS)
    year = await get(api, "/cogs", **THE_YEAR)
    assert _figures(year["total"]) == (0, 0, 0, 0, *NO_RETURNS)


async def test_a_period_is_both_dates_forward_and_at_most_366_days(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A leap year is one period; a day more, a period running backwards, a missing or
    malformed date is 422 naming the parameter."""
    assert (await get(api, "/cogs", **{"from": "2024-01-01", "to": "2024-12-31"}))["items"] == []
    assert (await get(api, "/cogs", **{"from": "2024-11-30", "to": "2024-11-30"}))["items"] == []

    refused = {
        "to": [
            {"from": "2024-01-01", "to": "2025-01-01"},
            {"from": "2024-11-30", "to": "2024-11-01"},
            {"from": "2024-11-01"},
            {"from": "2024-11-01", "to": "2024-11-31"},
        ],
        "from": [{"to": "2024-11-30"}, {"from": "0", "to": "2024-11-30"}],
    }
    for name, cases in refused.items():
        for params in cases:
            response = await api.get("/cogs", params=params)
            assert response.status_code == 422, params
            assert [p["loc"] for p in response.json()["detail"]] == [["query", name]], params
    too_long = await api.get("/cogs", params={"from": "2024-01-01", "to": "2025-01-01"})
    assert "367 days" in too_long.json()["detail"][0]["msg"]


async def test_the_period_is_read_through_the_date_indexes(pool: asyncpg.Pool) -> None:
    """Migration 021: the period's entries and returns to vendor are found by date, from the
    indexes alone (the planner told to avoid reading whole tables, as on a large one)."""
    sql = queries._COGS_BY_ITEM.format(lic="")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                f"EXPLAIN {sql}", date(2024, 11, 1), date(2024, 11, 30), sorted(COGS_ACTIONS)
            )
        )
    assert "Index Only Scan using cogs_by_date" in plan, plan
    assert "Index Only Scan using usage_vendor_returns_by_date" in plan, plan


async def test_a_periods_cogs_is_split_by_cause_sales_losses_and_counts(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """November's OIL COGS (94.00) by cause: sales are the Nov 1 sale less the Nov 10 customer
    return (6 units, 60.00 booked) and the closing's reconciliations of the October sale, the
    November sale and the return (+10.00 +16.00 −4.00); losses the Nov 30 write-off (10.00) and
    its reconciliation (+2.00); no count. The causes add up to `cogs`, for an item and in all."""
    await _oil_and_gel(pool)

    period = await get(api, "/cogs", **NOVEMBER)

    gel, oil = period["items"]

    def cause(figures: dict[str, Any], name: str) -> tuple[Decimal, ...]:
        c = figures["causes"][name]
        return tuple(D(c[k]) for k in ("quantity", "usage", "reconciliation", "cogs"))

    assert cause(oil, "sales") == (6, 60, 22, 82)
    assert cause(oil, "losses") == (1, 10, 2, 12)
    assert cause(oil, "counts") == (0, 0, 0, 0)
    assert cause(gel, "sales") == (10, 50, 0, 50)
    for figures in (oil, gel, period["total"]):
        assert sum(cause(figures, c)[3] for c in ("sales", "losses", "counts")) == D(
            figures["cogs"]
        )
    assert cause(period["total"], "sales") == (16, 110, 22, 132)
