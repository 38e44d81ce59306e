"""Stock and its value as of the end of a day (`GET /valuation`): the ledger's handlers on a real
PostgreSQL, read back through its API (R7, R12, R15, R16). Checked day by day against a plain
model of the same story, and against `GET /items` once every record is in the past."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import httpx

from tests.integration.test_ledger import Wire, api, get, mv, pool, record
from tests.integration.test_ledger_cogs_period import GEL, OIL, _oil_and_gel

__all__ = ["api", "pool"]
D = Decimal
SALT = "SALT"

# The story of `_oil_and_gel`, as a model: each item's stock changes by day, and its unit cost
# from the day its PO closed (the close is recorded after every sale: a backdated close).
CHANGES = {
    OIL: {
        date(2024, 10, 1): 100,
        date(2024, 10, 31): -5,
        date(2024, 11, 1): -8,
        date(2024, 11, 10): 2,
        date(2024, 11, 15): -3,
        date(2024, 11, 30): -1,
        date(2024, 12, 1): -4,
    },
    GEL: {date(2024, 10, 2): 20, date(2024, 11, 25): -10},
}
COSTS = {
    OIL: (D("10.00"), date(2024, 11, 20), D(12)),
    GEL: (D("5.00"), date(2024, 12, 10), D("4.50")),
}


def _expected(lic: str, day: date) -> tuple[Decimal, Decimal]:
    """(on hand, value) of `lic` at the end of `day`, by the model."""
    on_hand = D(sum(q for on, q in CHANGES[lic].items() if on <= day))
    estimate, closed_on, actual = COSTS[lic]
    return on_hand, on_hand * (actual if closed_on <= day else estimate)


async def _salt(pool: asyncpg.Pool) -> None:
    """SALT, stock in no lot (R12) beside a lot: 10 received into L-S at 0.50 on Nov 1; 6
    counted in beyond any lot at 0.60 on Nov 3 at AI, 3 at 0.70 on Nov 4 at EAST; 2 of AI's
    taken out at 0.60 on Nov 5."""
    w = Wire(first_id=1000)  # beside `_oil_and_gel`'s
    await record(
        pool,
        w.item(SALT),
        w.received(
            SALT, "L-S", 10, "0.50", [mv("L-S", 10, "0.50")], po="PO-S", on=date(2024, 11, 1)
        ),
        w.adjusted(SALT, "CNT-1", "count", [mv(None, 6, "0.60")], on=date(2024, 11, 3)),
        w.adjusted(
            SALT, "CNT-2", "count", [mv(None, 3, "0.70")], on=date(2024, 11, 4), office="EAST"
        ),
        w.adjusted(SALT, "CNT-3", "loss", [mv(None, -2, "0.60")], on=date(2024, 11, 5)),
    )


def _figures(f: dict[str, str]) -> tuple[Decimal, ...]:
    return tuple(
        D(f[k]) for k in ("on_hand", "value", "unallocated", "unallocated_value", "total_value")
    )


async def test_each_days_closing_stock_is_valued_at_the_cost_of_that_day(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R7, R16, day by day from before the first receipt to after the last close: the stock then
    at the estimate until the PO closed, then at the actual cost. OIL's close (Nov 20) is
    recorded after its Nov 30 loss and Dec 1 sale: the 86 units on hand from Nov 20 to 29 are
    worth 12.00 each (1,032.00), though the close's revaluation records cover only the 81 left
    when it was recorded (the other five's difference is COGS reconciliation)."""
    await _oil_and_gel(pool)

    day = date(2024, 9, 30)
    while day <= date(2024, 12, 31):
        answer = await get(api, "/valuation", as_of=day.isoformat())
        items = {i["lic"]: i for i in answer["items"]}
        for lic in (OIL, GEL):
            on_hand, value = _expected(lic, day)
            if not on_hand:
                assert lic not in items, (day, items)
                continue
            got = items[lic]
            assert _figures(got) == (on_hand, value, 0, 0, value), (day, lic, got)
            ((office),) = got["offices"]
            assert office["office"] == "AI" and _figures(office) == _figures(got)
        assert D(answer["total"]["value"]) == sum(D(i["value"]) for i in answer["items"])
        day += timedelta(days=1)

    late = await get(api, "/valuation", as_of="2024-11-25")
    (oil,) = [i for i in late["items"] if i["lic"] == OIL]
    assert (oil["on_hand"], oil["value"]) == ("86", "1032")
    assert (oil["description"], oil["uom"]) == ("Olive oil 1l", "Bottle")


async def test_as_of_today_it_is_the_items_stock_and_value(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """Once every record is dated on or before the day, the figures are `GET /items`' (lots at
    their unit cost now, R12 stock at its value), every digit, office by office."""
    await _oil_and_gel(pool)
    await _salt(pool)

    answer = await get(api, "/valuation", as_of="2030-01-01")

    for item in answer["items"]:
        now = await get(api, f"/items/{item['lic']}")
        assert (item["value"], item["unallocated_value"]) == (
            now["value"],
            now["unallocated_value"],
        )
        stock = {s["office"]: s for s in now["stock"]}
        for office in item["offices"]:
            there = stock[office["office"]]
            assert (office["on_hand"], office["value"], office["unallocated_value"]) == (
                there["on_hand"],
                there["value"],
                there["unallocated_value"],
            )
    assert [i["lic"] for i in answer["items"]] == [GEL, OIL, SALT]


async def test_stock_in_no_lot_is_valued_as_it_came_and_went(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R12: SALT's stock in no lot at AI and EAST, as of each day of its counts."""
    await _salt(pool)

    async def salt(day: str, **more: str) -> dict[str, tuple[Decimal, ...]]:
        answer = await get(api, "/valuation", as_of=day, lic=SALT, **more)
        (item,) = answer["items"]
        return {o["office"]: _figures(o) for o in item["offices"]} | {"": _figures(item)}

    assert await salt("2024-11-02") == {"AI": (10, 5, 0, 0, 5), "": (10, 5, 0, 0, 5)}
    assert await salt("2024-11-03") == {
        "AI": (16, 5, 6, D("3.60"), D("8.60")),
        "": (16, 5, 6, D("3.60"), D("8.60")),
    }
    assert await salt("2024-11-05") == {
        "AI": (14, 5, 4, D("2.40"), D("7.40")),
        "EAST": (3, 0, 3, D("2.10"), D("2.10")),
        "": (17, 5, 7, D("4.50"), D("9.50")),
    }
    east = await get(api, "/valuation", as_of="2024-11-05", office="EAST")
    assert (east["office"], [i["lic"] for i in east["items"]]) == ("EAST", [SALT])
    assert _figures(east["total"]) == (3, 0, 3, D("2.10"), D("2.10"))


async def test_an_unknown_item_is_404_and_a_known_one_without_stock_is_empty(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await _salt(pool)

    before = await get(api, "/valuation", as_of="2024-10-01", lic=SALT)
    assert (before["items"], _figures(before["total"])) == ([], (0, 0, 0, 0, 0))
    missing = await api.get("/valuation", params={"as_of": "2024-10-01", "lic": "NOPE"})
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    bad = await api.get("/valuation", params={"as_of": "2024-13-01"})
    assert bad.status_code == 422 and "as_of" in bad.text
    assert (await api.get("/valuation")).status_code == 422


async def test_a_months_roll_forward_ties_opening_movements_and_revaluation_to_closing(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """November for OIL: 95 at 10.00 on Oct 31 (950.00); sold 8, 2 back from the customer, 3
    returned to the vendor, 1 lost, each at the 10.00 booked (−100.00 in all); PO-1's close of
    Nov 20 at 12.00 revalues what is left; 85 at 12.00 on Nov 30 (1,020.00): the revaluation is
    the rest, 170.00 (85 × 2.00). GEL: 100.00, one sale of 10 (−50.00), closed in December:
    no revaluation. Quantities tie the same way, per office, item and in all."""
    await _oil_and_gel(pool)
    await _salt(pool)

    rolled = await get(api, "/roll-forward", **{"from": "2024-11-01", "to": "2024-11-30"})

    items = {i["lic"]: i for i in rolled["items"]}
    oil = items[OIL]
    assert (oil["opening"]["on_hand"], oil["opening"]["total_value"]) == ("95", "950.00")
    assert {k: (D(m["quantity"]), D(m["value"])) for k, m in oil["movements"].items()} == {
        "receipts": (0, 0),
        "beginning_balances": (0, 0),
        "shipments": (-8, -80),
        "customer_returns": (2, 20),
        "vendor_returns": (-3, -30),
        "losses": (-1, -10),
        "counts": (0, 0),
    }
    assert D(oil["revaluation"]) == 170
    assert (oil["closing"]["on_hand"], D(oil["closing"]["total_value"])) == ("85", 1020)
    assert D(items[GEL]["revaluation"]) == 0
    salt = items[SALT]  # received and counted in November: opening nothing
    assert D(salt["opening"]["on_hand"]) == 0 and D(salt["closing"]["on_hand"]) == 17
    moved = {k: (D(m["quantity"]), D(m["value"])) for k, m in salt["movements"].items()}
    assert (moved["receipts"], moved["counts"], moved["losses"]) == (
        (10, 5),
        (9, D("5.70")),
        (-2, D("-1.20")),
    )
    for part in [
        rolled["total"],
        *rolled["items"],
        *(o for i in rolled["items"] for o in i["offices"]),
    ]:
        moved = [m for m in part["movements"].values()]
        for figure, end in (("quantity", "on_hand"), ("value", "total_value")):
            change = sum(D(m[figure]) for m in moved)
            if figure == "value":
                change += D(part["revaluation"])
            assert D(part["opening"][end]) + change == D(part["closing"][end]), (part, figure)
    assert D(rolled["total"]["revaluation"]) == 170
    missing = await api.get("/valuation", params={"as_of": "2024-11-30", "office": "ai"})
    assert missing.status_code == 404 and "office" in missing.json()["detail"]
