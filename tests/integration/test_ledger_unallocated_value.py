"""What stock in no lot (R12) cost, read back: `GET /items` and `/items/{lic}` show it as
`unallocated_value` beside the lots' `value`, kept as its counts and removals are recorded,
and filled from the lot-less usage records by the upgrade (migration 022); on a real
PostgreSQL, through the ledger's handlers and read API, as the other ledger API tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx

from services.ledger.app import MIGRATIONS
from tests.integration.test_ledger import Wire, api, get, mv, pool, record

__all__ = ["api", "pool"]

SALT = "SALT-R12"
ON = date(2026, 11, 3)


async def _story(pool: asyncpg.Pool) -> None:
    """SALT: 10 received into lot L-S at 0.50; counted 6 in beyond any lot at 0.60 at AI and
    3 at 0.70 at EAST; 2 of AI's taken out again at their average, 0.60."""
    w = Wire()
    await record(
        pool,
        w.item(SALT),
        w.received(SALT, "L-S", 10, "0.50", [mv("L-S", 10, "0.50")], po="PO-S", on=ON),
        w.adjusted(SALT, "CNT-1", "count", [mv(None, 6, "0.60")], on=ON),
        w.adjusted(SALT, "CNT-2", "count", [mv(None, 3, "0.70")], on=ON, office="EAST"),
    )
    await record(pool, w.adjusted(SALT, "CNT-3", "loss", [mv(None, -2, "0.60")], on=ON))


async def test_unallocated_stock_is_valued_beside_the_lots(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await _story(pool)

    item = await get(api, f"/items/{SALT}")
    (listed,) = [i for i in await get(api, "/items") if i["lic"] == SALT]

    stock = {s["office"]: (s["on_hand"], s["value"], s["unallocated_value"]) for s in item["stock"]}
    assert stock == {"AI": ("14", "5.00", "2.40"), "EAST": ("3", "0", "2.10")}
    assert (item["value"], item["unallocated_value"]) == ("5.00", "4.50")
    assert (listed["on_hand"], listed["value"], listed["unallocated_value"]) == (
        "17",
        "5.00",
        "4.50",
    )


async def test_the_upgrade_fills_it_from_the_lot_less_usage_records(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """Stock counted in before the upgrade has no value kept: migration 022 sums its lot-less
    usage records (− their cost) per item and office."""
    await _story(pool)
    sql = (Path(MIGRATIONS) / "022_unallocated_value.sql").read_text()
    fill = sql[sql.index("UPDATE unallocated") :]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE unallocated SET value = 0")
        await conn.execute(fill)
        values = dict(
            await conn.fetch("SELECT office, value FROM unallocated WHERE lic = $1", SALT)
        )

    assert values == {"AI": Decimal("2.40"), "EAST": Decimal("2.10")}
