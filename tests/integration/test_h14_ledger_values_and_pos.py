"""Stock values and purchase-order lines through the ledger's read API (R7, R16, §4): an item's
value and each lot's current value agree to the last digit with the lots' own valuations, and
every PO line the ledger holds can be read, a line no receipt named (a typo'd PO reference, or
goods still to come) listed on the dashboard too."""

from __future__ import annotations

from datetime import date
from decimal import Context, Decimal, localcontext
from typing import Any

import asyncpg
import httpx

from shared.contracts import events as e
from tests.integration.test_ledger import (  # noqa: F401
    Wire,
    api,
    get,
    mv,
    pool,
    record,
    record_costs,
)

D = Decimal
# The biggest quantity and unit cost a movement may carry: their product has 33 digits, more
# than the default decimal context keeps.
BIG_QTY, BIG_COST = "123456789.123457", "98765432.123457"


def _exact_sum(values: list[str]) -> str:
    with localcontext(Context(prec=80)):
        return format(sum((D(v) for v in values), start=D(0)), "f")


async def test_an_items_value_is_its_open_lots_current_values_added_up_to_the_last_digit(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """R7, R16: `GET /items/{lic}` values the stock in the item's open lots, per office and in
    all, and `GET /items` the same: exactly the lots' `valuation.current.value` added up (every
    digit of a 33-digit value, and its scale), a lot whose PO closed at its actual cost. A lot
    all used adds nothing, nor does unallocated stock (R12), which is in no lot."""
    w = Wire()
    big = e.Movement(lot_id="L1", quantity=D(BIG_QTY), unit_cost=D(BIG_COST))
    bulk = w.received("BULK", "L1", 1, BIG_COST, [big], po="PO-1", on=date(2024, 1, 10))
    await record(
        pool,
        w.item("BULK"),
        bulk.model_copy(update={"quantity": D(BIG_QTY)}),
        w.received(
            "BULK", "L2", 10, "2.50", [mv("L2", 10, "2.50")], po="PO-2", on=date(2024, 1, 11)
        ).model_copy(update={"office": "ZZ"}),
        w.received("BULK", "L3", 3, "1", [mv("L3", 3, "1")], po="PO-3", on=date(2024, 1, 12)),
        w.sale("BULK", "OUT-1", [mv("L3", 3, "1")], customer="A", on=date(2024, 1, 13)),
        w.adjusted("BULK", "CNT-1", "count", [mv(None, 5, "7")], on=date(2024, 1, 14)),
    )
    await record_costs(pool, w.po("PO-2", "BULK", act_unit_cost=D("2.345678"), closed=True))
    await record(
        pool,
        w.sale("BULK", "OUT-2", [mv("L2", 4, "2.345678")], customer="A", on=date(2024, 1, 15)),
    )

    lots = {
        lot_id: (await get(api, f"/lots/{lot_id}"))["valuation"] for lot_id in ("L1", "L2", "L3")
    }
    item = await get(api, "/items/BULK")
    (listed,) = await get(api, "/items")
    in_list = await get(api, "/lots", lic="BULK")

    current = {lot_id: v["current"]["value"] for lot_id, v in lots.items()}
    assert lots["L2"]["unit_cost"] == "2.345678" and current["L2"] == "14.074068"
    assert current["L3"] == "0"  # all used: closed
    assert item["value"] == _exact_sum([current["L1"], current["L2"]])
    assert len(item["value"].replace(".", "")) > 28  # every digit kept
    assert {s["office"]: (s["value"], s["unallocated"]) for s in item["stock"]} == {
        "AI": (current["L1"], "5"),
        "ZZ": (current["L2"], "0"),
    }
    assert listed["value"] == item["value"]
    assert {lot["lot_id"]: lot["current_value"] for lot in in_list} == current


async def test_an_item_without_stock_in_lots_is_worth_nothing(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """An item never received, or with only unallocated stock (R12), has no stock in lots."""
    w = Wire()
    await record(
        pool,
        w.item("NONE"),
        w.item("LOOSE"),
        w.adjusted("LOOSE", "CNT-1", "count", [mv(None, 2, "3")], on=date(2024, 1, 4)),
    )

    listed = {i["lic"]: (i["on_hand"], i["value"]) for i in await get(api, "/items")}
    loose = await get(api, "/items/LOOSE")

    assert listed == {"LOOSE": ("2", "0"), "NONE": ("0", "0")}
    assert (await get(api, "/items/NONE"))["value"] == "0"
    assert (loose["value"], [s["value"] for s in loose["stock"]]) == ("0", ["0"])


def _line(line: dict[str, Any]) -> tuple[Any, ...]:
    return (
        line["ordered_qty"],
        line["purchased_qty"],
        line["received_qty"],
        line["act_unit_cost"],
        line["applied_unit_cost"],
        line["closed"],
        line["cost_is_final"],
        line["closings"],
    )


async def _po_scenario(pool: asyncpg.Pool, w: Wire) -> None:  # noqa: F811
    """PO-100 orders BOLT (received in two lots, closed at 2.75) and NUT (not received yet);
    PO-10O (a typo of PO-100) and PO/7 price nothing."""
    await record(
        pool,
        w.item("BOLT"),
        w.item("NUT"),
        w.received(
            "BOLT", "L-A", 6, "2.50", [mv("L-A", 6, "2.50")], po="PO-100", on=date(2024, 1, 10)
        ).model_copy(update={"shipment_id": "IN-1"}),
        w.received(
            "BOLT", "L-B", 4, "2.50", [mv("L-B", 4, "2.50")], po="PO-100", on=date(2024, 1, 12)
        ).model_copy(update={"shipment_id": "IN-2", "office": "ZZ"}),
    )
    await record_costs(
        pool,
        w.po(
            "PO-100",
            "BOLT",
            ordered_quantity=D(10),
            purchased_quantity=D(8),
            act_unit_cost=D("2.75"),
            closed=True,
        ),
        w.po("PO-100", "NUT", ordered_quantity=D(50)),
    )
    await record_costs(
        pool, w.po("PO-10O", "BOLT", ordered_quantity=D(3), act_unit_cost=D(9), closed=True)
    )
    await record_costs(pool, w.po("PO/7", "NUT", ordered_quantity=D(1)))


async def test_a_purchase_order_shows_each_lines_costs_and_the_lots_it_prices(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """R16: `GET /purchase-orders/{po}` answers every line of the PO, by LIC, as the ledger's
    PO table holds it, with the lots it prices in receipt order; its cost is final as its
    lots' is, and not once the PO is reopened. A PO the ledger does not know is 404."""
    w = Wire()
    await _po_scenario(pool, w)

    po = await get(api, "/purchase-orders/PO-100")
    bolt, nut = po["lines"]
    lot = await get(api, "/lots/L-A")
    slash = await get(api, "/purchase-orders/PO/7")
    missing = await api.get("/purchase-orders/PO-999")

    assert po["po"] == "PO-100"
    assert (bolt["lic"], nut["lic"]) == ("BOLT", "NUT")
    assert _line(bolt) == ("10", "8", "10", "2.75", "2.75", True, True, 1)
    assert bolt["closed_on"] is not None and bolt["updated_at"]
    assert [
        (x["lot_id"], x["document"], x["office"], x["received_on"], x["received_qty"])
        for x in bolt["lots"]
    ] == [("L-A", "IN-1", "AI", "2024-01-10", "6"), ("L-B", "IN-2", "ZZ", "2024-01-12", "4")]
    assert lot["valuation"]["cost_is_final"] is True and lot["valuation"]["unit_cost"] == "2.75"
    assert _line(nut) == ("50", None, "0", None, None, False, False, 0)
    assert (nut["closed_on"], nut["lots"]) == (None, [])
    assert [(x["po"], x["lic"]) for x in slash["lines"]] == [("PO/7", "NUT")]
    assert missing.status_code == 404 and "PO-999" in missing.json()["detail"]

    await record_costs(pool, w.po("PO-100", "BOLT", act_unit_cost=D("2.80"), closed=False))

    reopened = (await get(api, "/purchase-orders/PO-100"))["lines"][0]
    lot = await get(api, "/lots/L-A")
    assert _line(reopened) == ("10", "8", "10", "2.80", "2.75", False, False, 1)
    assert lot["valuation"]["cost_is_final"] is False


async def test_purchase_order_lines_are_listed_by_po_and_lic_page_by_page(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """`GET /purchase-orders` lists every PO line, each as the PO's own read shows it, by PO
    and LIC; a full page names the next (`after`), and `closed` picks the closed or open
    lines; a cursor the list did not give is 422."""
    await _po_scenario(pool, Wire())

    everything = await get(api, "/purchase-orders")
    pages: list[dict[str, Any]] = []
    params = {"limit": "1"}
    while True:
        response = await api.get("/purchase-orders", params=params)
        assert response.status_code == 200, response.text
        pages += response.json()
        if "X-Next-After" not in response.headers:
            break
        params = {"limit": "1", "after": response.headers["X-Next-After"]}
    closed = await get(api, "/purchase-orders", closed="true")
    still_open = await get(api, "/purchase-orders", closed="false")
    bad = await api.get("/purchase-orders", params={"after": "bm90IGEgY3Vyc29y"})

    keys = [(x["po"], x["lic"]) for x in everything]
    assert sorted(keys) == sorted(
        [("PO-100", "BOLT"), ("PO-100", "NUT"), ("PO-10O", "BOLT"), ("PO/7", "NUT")]
    )
    assert keys.index(("PO-100", "BOLT")) + 1 == keys.index(("PO-100", "NUT"))
    assert pages[: len(everything)] == everything and len(pages) == len(everything)
    assert (
        everything[keys.index(("PO-100", "BOLT"))]
        == (await get(api, "/purchase-orders/PO-100"))["lines"][0]
    )
    assert {(x["po"], x["lic"]) for x in closed} == {("PO-100", "BOLT"), ("PO-10O", "BOLT")}
    assert {(x["po"], x["lic"]) for x in still_open} == {("PO-100", "NUT"), ("PO/7", "NUT")}
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "after"]


async def test_the_dashboard_lists_the_po_lines_that_price_no_lot(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """A PO line no receipt named (a misspelled PO reference would price a later receipt
    naming it unseen) is on the dashboard: how many there are, and the first `limit`, the
    longest since their last update first, with how many more."""
    none_yet = (await get(api, "/ops/summary"))["ledger"]
    empty_page = (await api.get("/dashboard")).text
    await _po_scenario(pool, Wire())

    ledger = (await get(api, "/ops/summary", limit="2"))["ledger"]
    page = (await api.get("/dashboard", params={"limit": "2"})).text
    everything = (await get(api, "/ops/summary"))["ledger"]

    assert (none_yet["unmatched_po_lines"], none_yet["unmatched_po"]) == (0, [])
    assert "PO lines pricing no lot: none" in empty_page
    assert ledger["unmatched_po_lines"] == 3
    assert [(x["po"], x["lic"]) for x in ledger["unmatched_po"]] == [
        ("PO-100", "NUT"),
        ("PO-10O", "BOLT"),
    ]
    first = ledger["unmatched_po"][1]
    assert (first["ordered_qty"], first["act_unit_cost"], first["closed"]) == ("3", "9", True)
    assert [(x["po"], x["lic"]) for x in everything["unmatched_po"]][2] == ("PO/7", "NUT")
    assert "PO lines pricing no lot: 3</b>" in page and "1 more not shown" in page
    assert "<td>PO-10O</td>" in page and "PO/7" not in page
