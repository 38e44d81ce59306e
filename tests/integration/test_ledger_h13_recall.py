"""A recall as a food or pharma distributor runs it, on a real PostgreSQL (DESIGN.md §4): the
notice names a manufacturer lot alone, or a GTIN and a lot (GS1); the recall sheet's amounts
read as the JSON's, its customers summed without double counting; the items the ledger knows
listed and paged as the other lists are."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from services.ledger.api import CSV_COLUMNS, RECIPIENT_COLUMNS
from shared.contracts import events as e
from tests.integration.test_ledger import (
    FOOD,
    M42,
    Wire,
    api,
    get,
    mv,
    pool,
    recall_scenario,
    record,
)

__all__ = ["api", "pool"]
D = Decimal
OTHER = "OTHER"  # recall_scenario's other item with a manufacturer lot M-42
# FOOD's GTIN as a UPC-A (GTIN-12), OTHER's as an EAN-13: a notice writes the GTIN-14 form.
FOOD_GTIN, OTHER_GTIN = "012345678905", "4006381333931"


def _recall(w: Wire) -> list[e.Event | list[e.Event]]:
    """recall_scenario, and two units of OTHER's M-42 sold to Alpha Foods as well."""
    other = [mv("L-900", 2, "1", mfr_lot=M42)]
    return [
        *recall_scenario(w),
        w.sale(OTHER, "OUT-9", other, customer="Alpha Foods", on=date(2024, 2, 1)),
    ]


async def _give_gtins(pool: asyncpg.Pool) -> None:
    """The items' GTINs, as allocation answers an UpsertItem naming them (the item's whole
    master data, its GTIN with it)."""
    w = Wire()
    await record(
        pool,
        w.item(
            FOOD,
            description="Peanut butter 1kg",
            uom="Jar",
            track_mfr_lot=True,
            perishable=True,
            gtin=FOOD_GTIN,
        ),
        w.item(OTHER, track_mfr_lot=True, gtin=OTHER_GTIN),
    )


def _sheet(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert isinstance(problem, dict)
    return problem


# -- /trace?mfr_lot= without the item ----------------------------------------------------------


async def test_a_mfr_lot_alone_is_traced_in_every_item_that_has_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 trace, recall: a notice naming lot M-42 alone (it was a 422 "Field required") is
    answered with each item holding it, by LIC, each item's trace exactly as
    `?lic=&mfr_lot=` answers it (the one-item answer keeps its shape)."""
    await record(pool, *_recall(Wire()))

    traced = await get(api, "/trace", mfr_lot=M42)

    assert list(traced) == ["mfr_lot", "gtin", "items"]
    assert (traced["mfr_lot"], traced["gtin"]) == (M42, None)
    assert traced["items"] == [
        await get(api, "/trace", lic=FOOD, mfr_lot=M42),
        await get(api, "/trace", lic=OTHER, mfr_lot=M42),
    ]
    assert [t["customers"] for t in traced["items"]] == [
        ["Alpha Foods", "Bravo Market", "Charlie Deli"],
        ["Alpha Foods"],
    ]


async def test_a_gtin_and_mfr_lot_trace_only_the_items_with_that_gtin(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """GS1 (AI 01 + AI 10): a notice naming GTIN and lot traces the items with that GTIN, the
    GTIN compared in its 14-digit form whichever form the item was given (UPC-A here)."""
    await record(pool, *_recall(Wire()))
    await _give_gtins(pool)

    for gtin in ("00012345678905", FOOD_GTIN):
        traced = await get(api, "/trace", gtin=gtin, mfr_lot=M42)

        assert (traced["mfr_lot"], traced["gtin"]) == (M42, gtin)
        assert traced["items"] == [await get(api, "/trace", lic=FOOD, mfr_lot=M42)]
    other = await get(api, "/trace", gtin="0" + OTHER_GTIN, mfr_lot=M42)
    assert [t["lic"] for t in other["items"]] == [OTHER]
    assert (await get(api, "/items/" + FOOD))["gtin"] == FOOD_GTIN


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"mfr_lot": "NOPE"}, ["NOPE"]),
        ({"mfr_lot": "M-43", "gtin": OTHER_GTIN}, ["M-43", OTHER_GTIN]),  # FOOD's lot only
        ({"mfr_lot": M42, "gtin": "99999999"}, [M42, "99999999"]),
        ({"mfr_lot": "NOPE", "format": "csv"}, ["NOPE"]),
    ],
)
async def test_a_lot_no_item_has_is_404_naming_it(
    pool: asyncpg.Pool, api: httpx.AsyncClient, params: dict[str, str], named: list[str]
) -> None:
    await record(pool, *_recall(Wire()))
    await _give_gtins(pool)

    response = await api.get("/trace", params=params)

    assert response.status_code == 404, response.text
    assert all(name in response.json()["detail"] for name in named)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "mfr_lot"),
        ({"lic": FOOD}, "mfr_lot"),
        ({"gtin": FOOD_GTIN}, "mfr_lot"),
        ({"serial": "S-1"}, "lic"),
        ({"lot_id": "L-100", "mfr_lot": M42}, "lic"),
        ({"lic": FOOD, "gtin": FOOD_GTIN, "mfr_lot": M42}, "gtin"),
        ({"lic": FOOD, "mfr_lot": M42, "part": "recipients"}, "part"),
        ({"mfr_lot": M42, "format": "json", "part": "recipients"}, "part"),
    ],
)
async def test_a_trace_it_cannot_answer_is_422_naming_the_parameter(
    pool: asyncpg.Pool, api: httpx.AsyncClient, params: dict[str, str], name: str
) -> None:
    """Shaped as the API's other 422s (a list of problems with `loc`), saying what to name."""
    await record(pool, *_recall(Wire()))

    problem = _problem(await api.get("/trace", params=params))

    assert problem["loc"] == ["query", name], problem
    assert problem["type"] == "value_error" and problem["msg"], problem


async def test_the_lot_finds_its_items_through_indexes(pool: asyncpg.Pool) -> None:
    """The items of a manufacturer lot are read through (mfr_lot, lic), or the GTIN first,
    never by reading a table whole (each item's trace then reads (lic, mfr_lot) as before)."""
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        for sql, args, index in [
            (
                "SELECT DISTINCT lic FROM mfr_lots WHERE mfr_lot = $1 ORDER BY lic",
                ["M"],
                "mfr_lots_by_mfr_lot",
            ),
            ("SELECT lic FROM items WHERE gtin14 = $1", ["00012345678905"], "items_by_gtin"),
        ]:
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
            assert index in plan, plan


# -- the recall sheets -----------------------------------------------------------------------


async def test_the_recall_sheet_writes_amounts_as_the_json_does(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A shipment of 3 at 2.50 costs 7.50 in the JSON trace; the sheet wrote 7.5 and 2.5.
    Every amount of every row now reads as its record's in the JSON."""
    await record(pool, *_recall(Wire()))

    trace = await get(api, "/trace", lic=FOOD, mfr_lot=M42)
    rows = _sheet(await api.get("/trace", params={"lic": FOOD, "mfr_lot": M42, "format": "csv"}))

    amounts = ("quantity", "stock_change", "unit_cost", "cost")
    columns = ("Quantity", "Stock change", "Unit cost", "Cost")
    assert [tuple(r[c] for c in columns) for r in rows] == [
        tuple(t[a] for a in amounts) for t in trace["events"]
    ]
    assert ("3", "-3", "2.50", "7.50") in [tuple(r[c] for c in columns) for r in rows]


async def test_the_sheet_of_a_lot_alone_lists_each_items_records_in_turn(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """One sheet, the same columns: each item's rows as its own sheet lists them, by LIC."""
    await record(pool, *_recall(Wire()))

    response = await api.get("/trace", params={"mfr_lot": M42, "format": "csv"})
    rows = _sheet(response)

    assert list(rows[0]) == list(CSV_COLUMNS)
    one = [
        _sheet(await api.get("/trace", params={"lic": lic, "mfr_lot": M42, "format": "csv"}))
        for lic in (FOOD, OTHER)
    ]
    assert rows == one[0] + one[1]
    assert 'filename="trace-M-42.csv"' in response.headers["content-disposition"]


async def test_the_customer_sheet_sums_what_each_customer_received_once(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """The record sheet lists an allocation beside its shipment, each with Quantity 3: summed
    per customer it counts 6. The customer sheet (`part=recipients`) is the trace's
    `recipients`, one row per item and customer: shipped, returned and still held."""
    await record(pool, *_recall(Wire()))
    trace = await get(api, "/trace", lic=FOOD, mfr_lot=M42)

    response = await api.get(
        "/trace", params={"lic": FOOD, "mfr_lot": M42, "format": "csv", "part": "recipients"}
    )
    rows = _sheet(response)

    assert list(rows[0]) == list(RECIPIENT_COLUMNS)
    assert [
        (r["Customer"], r["Shipments"], r["Shipped"], r["Returned"], r["Held"]) for r in rows
    ] == [
        ("Alpha Foods", "1", "3", "0", "3"),
        ("Bravo Market", "1", "2", "1", "1"),
        ("Charlie Deli", "1", "3", "0", "3"),
    ]
    assert [
        (r["Customer"], r["Shipped"], r["Held"], r["First shipped"], r["Last shipped"])
        for r in rows
    ] == [
        (x["customer"], x["shipped"], x["held"], x["first_shipped_on"], x["last_shipped_on"])
        for x in trace["recipients"]
    ]
    assert {
        (r["LIC"], r["Manufacturer lot"], r["Unit of measure"], r["Serial"], r["Inventory lot"])
        for r in rows
    } == {(FOOD, M42, "Jar", "", "")}
    assert 'filename="trace-FOOD-1-M-42-recipients.csv"' in response.headers["content-disposition"]


async def test_the_customer_sheet_of_a_lot_alone_has_a_row_per_item_and_customer(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await record(pool, *_recall(Wire()))

    rows = _sheet(
        await api.get("/trace", params={"mfr_lot": M42, "format": "csv", "part": "recipients"})
    )

    assert [(r["LIC"], r["Customer"], r["Shipped"], r["Held"]) for r in rows] == [
        (FOOD, "Alpha Foods", "3", "3"),
        (FOOD, "Bravo Market", "2", "1"),
        (FOOD, "Charlie Deli", "3", "3"),
        (OTHER, "Alpha Foods", "2", "2"),
    ]


# -- GET /items ------------------------------------------------------------------------------


async def _items_scenario(pool: asyncpg.Pool) -> None:
    """FOOD and OTHER of the recall, and BOLT: a plain item with 10 in a lot and 5 counted in
    beyond any lot (R12: unallocated, on hand all the same)."""
    w = Wire()
    bolt = [mv("L-1", 10, "1")]
    await record(
        pool,
        *_recall(w),
        w.item("BOLT", description="Bolt M8", est_unit_cost=D("0.10")),
        w.received("BOLT", "L-1", 10, "1", bolt, po="PO-1", on=date(2024, 1, 10)),
        w.adjusted("BOLT", "CNT-1", "count", [mv(None, 5, "1")], on=date(2024, 1, 11)),
    )
    await _give_gtins(pool)


async def test_items_lists_every_item_with_its_flags_gtin_and_stock_on_hand(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4: `GET /items` was a 404. It lists the items by LIC; on hand is the sum over offices
    of what `GET /items/{lic}` shows per office, unallocated stock included."""
    await _items_scenario(pool)

    listed = await get(api, "/items")

    assert [
        (i["lic"], i["description"], i["track_mfr_lot"], i["serialized"], i["gtin"]) for i in listed
    ] == [
        ("BOLT", "Bolt M8", False, False, None),
        (FOOD, "Peanut butter 1kg", True, False, FOOD_GTIN),
        (OTHER, "", True, False, OTHER_GTIN),
    ]
    assert [i["on_hand"] for i in listed] == ["15", "6", "2"]
    for item in listed:
        one = await get(api, f"/items/{item['lic']}")
        assert sum(D(s["on_hand"]) for s in one["stock"]) == D(item["on_hand"])
        assert {k: v for k, v in one.items() if k != "stock"} == {
            k: v for k, v in item.items() if k != "on_hand"
        }
    assert listed[1]["perishable"] is True and listed[0]["est_unit_cost"] == "0.10"


async def test_items_page_by_cursor_as_lots_and_usage_do(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """A full page names the next in `X-Next-After` and `Link` (the same query, `after` the
    cursor, no offset); followed, every item comes once, in order; the last page names none.
    An item recorded meanwhile that sorts before the cursor does not shift the pages."""
    await _items_scenario(pool)

    first = await api.get("/items", params={"limit": "2", "offset": "0"})
    await record(pool, Wire().item("AAA"))  # sorts first: an offset would repeat BOLT
    link = first.headers["link"]
    token = first.headers["x-next-after"]
    assert link.endswith('>; rel="next"') and f"after={token}" in link and "offset" not in link
    second = await api.get(link[1 : link.index(">")])

    assert second.status_code == 200, second.text
    assert [i["lic"] for i in first.json() + second.json()] == ["BOLT", FOOD, OTHER]
    assert "x-next-after" not in second.headers and "link" not in second.headers
    assert [i["lic"] for i in await get(api, "/items", limit="1", offset="1")] == ["BOLT"]


async def test_items_by_gtin_and_an_unknown_gtin_or_cursor_are_refused(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`gtin` lists the items with it, in any GTIN form; a GTIN no item has is 404 (as a LIC
    no item has is on `/lots`), on every page; a cursor `/items` did not give is 422."""
    await _items_scenario(pool)

    assert [i["lic"] for i in await get(api, "/items", gtin="00012345678905")] == [FOOD]
    assert [i["lic"] for i in await get(api, "/items", gtin=OTHER_GTIN)] == [OTHER]
    for params in ({"gtin": "99999999"}, {"gtin": "99999999", "offset": "3"}):
        response = await api.get("/items", params=params)
        assert response.status_code == 404 and "99999999" in response.json()["detail"]
    lots_cursor = (await api.get("/lots", params={"limit": "1"})).headers["x-next-after"]
    assert _problem(await api.get("/items", params={"after": lots_cursor}))["loc"] == [
        "query",
        "after",
    ]
    assert _problem(await api.get("/items", params={"gtin": "A\x00"}))["loc"] == ["query", "gtin"]


async def test_the_ledger_keeps_the_gtin_each_item_event_carries(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`ItemUpserted` carries the item's GTIN (allocation's, the last one an UpsertItem named):
    the ledger keeps the latest, which `/items`, `/items/{lic}` and `?gtin=` read."""
    w = Wire()
    await record(pool, w.item("CAM", serialized=True, gtin="4006381333931"))
    await record(pool, w.item("CAM", serialized=True, gtin="12345670"))  # a GTIN-8 now
    await record(pool, w.item("BOLT"))

    assert (await get(api, "/items/CAM"))["gtin"] == "12345670"
    assert [(i["lic"], i["gtin"]) for i in await get(api, "/items")] == [
        ("BOLT", None),
        ("CAM", "12345670"),
    ]
    assert [i["lic"] for i in await get(api, "/items", gtin="00000012345670")] == ["CAM"]
    response = await api.get("/items", params={"gtin": "4006381333931"})
    assert response.status_code == 404
