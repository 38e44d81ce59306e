"""Reading the ledger by document (§4 `GET /documents/{document}`, `GET /usage?document=`): what a
shipment shipped, which lots and serials, at what cost and to whom, across its items, with
the usage each record wrote and a summary; through the ledger's handlers and read API on a
real PostgreSQL, as the other ledger API tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from services.ledger import queries
from shared.contracts import events as e
from tests.integration.test_dashboard_adjustments import _answered, _at, _notice
from tests.integration.test_ledger import (  # noqa: F401
    CAM,
    FOOD,
    Wire,
    api,
    get,
    mv,
    pool,
    record,
)

D = Decimal
SHIP_ON = date(2024, 3, 5)


def _line(event: e.Event, line_no: int) -> e.Event:
    return event.model_copy(update={"line_no": line_no})


async def _shipment_scenario(pool: asyncpg.Pool, w: Wire) -> None:  # noqa: F811
    """FOOD (lot-tracked) and CAM (serialized) received on IN-1; SO-7001 ships ACME 4 of
    M-1 and 2 of M-2 (line 1) and serials S-1, S-2 (line 2); SO-7002 ships Bravo one more
    serial; SO/7003 is only allocated."""
    food = [mv("L1", 4, "2.50", mfr_lot="M-1"), mv("L1", 2, "2.50", mfr_lot="M-2")]
    cams = [mv("L2", 1, "100", serial="S-1"), mv("L2", 1, "100", serial="S-2")]
    await record(
        pool,
        w.item(FOOD, description="Food", track_mfr_lot=True),
        w.item(CAM, description="Camera", uom="Box", serialized=True),
        w.received(
            FOOD,
            "L1",
            10,
            "2.50",
            [mv("L1", 6, "2.50", mfr_lot="M-1"), mv("L1", 4, "2.50", mfr_lot="M-2")],
            po="PO-1",
            shipment="IN-1",
            on=date(2024, 3, 1),
        ),
        w.received(
            CAM,
            "L2",
            3,
            "100",
            [mv("L2", 1, "100", serial=f"S-{n}") for n in (1, 2, 3)],
            po="PO-1",
            shipment="IN-1",
            line_no=2,
            on=date(2024, 3, 1),
        ),
    )
    await record(
        pool,
        w.sale(FOOD, "SO-7001", food, customer="ACME", on=SHIP_ON),
        [_line(ev, 2) for ev in w.sale(CAM, "SO-7001", cams, customer="ACME", on=SHIP_ON)],
        w.sale(CAM, "SO-7002", [mv("L2", 1, "100", serial="S-3")], customer="Bravo", on=SHIP_ON),
        w.allocated(
            FOOD, "SO/7003", [mv("L1", 1, "2.50", mfr_lot="M-1")], customer="C", on=SHIP_ON
        ),
    )


def _record(r: dict[str, Any]) -> tuple[Any, ...]:
    usage = r["usage"]
    return (
        r["lic"],
        r["event_type"],
        r["line_no"],
        r["lot_id"],
        r["mfr_lot"],
        r["serial"],
        r["quantity"],
        r["stock_change"],
        r["unit_cost"],
        r["cost"],
        r["counterparty"],
        None if usage is None else (usage["source"], usage["quantity"], usage["total_cost"]),
    )


async def test_a_shipment_reads_back_its_lots_serials_costs_and_customer_across_items(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """§4 `/documents/SO-7001`: every record of the shipment, both items, oldest first as
    `/trace` lists them (each item's allocation, then its shipment, as recorded), each with
    its lot, manufacturer lot or serial, cost, customer, line and the usage record it wrote
    (an allocation none); the summary sums the units and cost that left, by item."""
    await _shipment_scenario(pool, Wire())

    found = await get(api, "/documents/SO-7001")

    assert [_record(r) for r in found["records"]] == [
        (FOOD, "allocation", 1, "L1", "M-1", None, "4", "0", "2.50", "10.00", "ACME", None),
        (FOOD, "allocation", 1, "L1", "M-2", None, "2", "0", "2.50", "5.00", "ACME", None),
        (FOOD, "shipment", 1, "L1", "M-1", None, "4", "-4", "2.50", "10.00", "ACME",
         ("shipment", "4", "10.00")),
        (FOOD, "shipment", 1, "L1", "M-2", None, "2", "-2", "2.50", "5.00", "ACME",
         ("shipment", "2", "5.00")),
        (CAM, "allocation", 2, "L2", None, "S-1", "1", "0", "100", "100", "ACME", None),
        (CAM, "allocation", 2, "L2", None, "S-2", "1", "0", "100", "100", "ACME", None),
        (CAM, "shipment", 2, "L2", None, "S-1", "1", "-1", "100", "100", "ACME",
         ("shipment", "1", "100")),
        (CAM, "shipment", 2, "L2", None, "S-2", "1", "-1", "100", "100", "ACME",
         ("shipment", "1", "100")),
    ]  # fmt: skip
    assert {r["document"] for r in found["records"]} == {"SO-7001"}
    assert {r["date"] for r in found["records"]} == {SHIP_ON.isoformat()}
    usage = found["records"][2]["usage"]
    assert (usage["unit_cost"], usage["est_unit_cost"], usage["used_on"]) == (
        "2.50",
        "2.50",
        SHIP_ON.isoformat(),
    )
    summary = {k: v for k, v in found.items() if k not in ("items", "records")}
    assert summary == {
        "document": "SO-7001",
        "record_count": 8,
        "first_date": SHIP_ON.isoformat(),
        "last_date": SHIP_ON.isoformat(),
        "event_types": ["allocation", "shipment"],
        "counterparties": ["ACME"],
        "quantity_in": "0",
        "quantity_out": "8",
        "cost_in": "0",
        "cost_out": "215.00",
        "usage_cost": "215.00",
        "usage_cost_reconciled": "215.00",
        "revaluation": "0",  # no PO: no closing's revaluation nor reconciliation
        "reconciliation": "0",
        "warnings": None,  # the dashboard's tables hold no answer of it (none was recorded)
    }
    assert found["items"] == [
        {
            "lic": CAM,
            "description": "Camera",
            "uom": "Box",
            "record_count": 4,
            "quantity_in": "0",
            "quantity_out": "2",
            "cost_in": "0",
            "cost_out": "200",
            "usage_cost": "200",
            "usage_cost_reconciled": "200",
            "revaluation": "0",
            "reconciliation": "0",
        },
        {
            "lic": FOOD,
            "description": "Food",
            "uom": "Each",
            "record_count": 4,
            "quantity_in": "0",
            "quantity_out": "6",
            "cost_in": "0",
            "cost_out": "15.00",
            "usage_cost": "15.00",
            "usage_cost_reconciled": "15.00",
            "revaluation": "0",
            "reconciliation": "0",
        },
    ]
    # The same records as each item's trace lists of this shipment, in the same order.
    for lic, lot in ((FOOD, "L1"), (CAM, "L2")):
        trace = await get(api, "/trace", lic=lic, lot_id=lot)
        of_shipment = [t for t in trace["events"] if t["document"] == "SO-7001"]
        listed = [
            {k: v for k, v in r.items() if k != "usage"}
            for r in found["records"]
            if r["lic"] == lic
        ]
        assert listed == of_shipment


async def test_a_receipt_and_an_id_holding_a_slash_are_read_by_document(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """A receipt's records are units into stock, no usage; a document id holding a `/` is put
    in the path as it is (and percent-encoded, the same); a document only allocated moved no
    stock."""
    await _shipment_scenario(pool, Wire())

    receipt = await get(api, "/documents/IN-1")
    allocated = await get(api, "/documents/SO/7003")
    encoded = await get(api, "/documents/SO%2F7003")

    assert (receipt["quantity_in"], receipt["cost_in"], receipt["quantity_out"]) == (
        "13",
        "325.00",
        "0",
    )
    assert receipt["event_types"] == ["receipt"] and receipt["counterparties"] == []
    assert [(i["lic"], i["quantity_in"], i["record_count"]) for i in receipt["items"]] == [
        (CAM, "3", 3),
        (FOOD, "10", 2),
    ]
    assert {r["usage"] is None for r in receipt["records"]} == {True}
    assert allocated == encoded
    assert allocated["document"] == "SO/7003" and allocated["record_count"] == 1
    assert (allocated["quantity_out"], allocated["cost_out"]) == ("0", "0")
    assert [(r["event_type"], r["mfr_lot"], r["counterparty"]) for r in allocated["records"]] == [
        ("allocation", "M-1", "C")
    ]


async def test_a_documents_records_are_listed_by_business_date_then_as_recorded(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """§4: oldest first as `/trace` lists them: an adjustment's count of one item dated before
    the loss of another recorded earlier comes first; a count in reverses usage (−)."""
    w = Wire()
    await _shipment_scenario(pool, w)
    await record(
        pool,
        w.adjusted(
            FOOD, "ADJ-9", "loss", [mv("L1", -1, "2.50", mfr_lot="M-2")], on=date(2024, 3, 9)
        ),
    )
    await record(
        pool,
        w.adjusted(CAM, "ADJ-9", "count", [mv("L2", 1, "100", serial="S-9")], on=date(2024, 3, 8)),
    )

    found = await get(api, "/documents/ADJ-9")

    assert [
        (r["date"], r["lic"], r["event_type"], r["stock_change"]) for r in found["records"]
    ] == [
        ("2024-03-08", CAM, "count", "1"),
        ("2024-03-09", FOOD, "loss", "-1"),
    ]
    assert [r["usage"]["quantity"] for r in found["records"]] == ["-1", "1"]
    assert (found["quantity_in"], found["quantity_out"]) == ("1", "1")
    assert (found["cost_in"], found["cost_out"], found["usage_cost"]) == ("100", "2.50", "-97.50")
    assert (found["first_date"], found["last_date"]) == ("2024-03-08", "2024-03-09")


async def test_a_long_document_pages_by_cursor_with_its_summary_on_every_page(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """A document's records page as `/usage` does: a full page names the next in
    `X-Next-After` and `Link`, which continue where it ended; `offset` counts from the first
    record; the summary is the whole document's on every page."""
    await _shipment_scenario(pool, Wire())
    whole = await get(api, "/documents/SO-7001")

    pages: list[list[dict[str, Any]]] = []
    params = {"limit": "3"}
    while True:
        response = await api.get("/documents/SO-7001", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert {k: v for k, v in page.items() if k != "records"} == {
            k: v for k, v in whole.items() if k != "records"
        }
        pages.append(page["records"])
        after = response.headers.get("X-Next-After")
        if after is None:
            break
        assert (
            response.headers["Link"].endswith('rel="next"')
            and f"after={after}" in (response.headers["Link"])
        )
        params = {"limit": "3", "after": after}
    offset = await get(api, "/documents/SO-7001", limit="2", offset="6")

    assert [len(p) for p in pages] == [3, 3, 2]
    assert [r for p in pages for r in p] == whole["records"]
    assert offset["records"] == whole["records"][6:]
    bad = await api.get("/documents/SO-7001", params={"after": "nonsense"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "after"]


async def test_a_document_the_ledger_has_no_record_of_is_404_naming_it(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """§4: 404 with a message naming the id, on every page; `/usage?document=` alike."""
    await _shipment_scenario(pool, Wire())

    for url, params in [
        ("/documents/SO-9999", {}),
        ("/documents/SO-9999", {"offset": "5"}),
        ("/usage", {"document": "SO-9999"}),
        ("/usage", {"document": "SO-9999", "lic": FOOD}),
    ]:
        response = await api.get(url, params=params)
        assert response.status_code == 404, (url, params, response.text)
        assert "SO-9999" in response.json()["detail"]
    # A known document: a page past its end is an empty page, not a 404.
    assert (await get(api, "/documents/SO-7001", offset="100"))["records"] == []


async def test_a_refused_document_is_404_saying_its_refusal(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """§4: a refused document writes no transaction record; its 404 says the latest answer the
    dashboard keeps of it (type, time, reason code, the first problem's reason), so a clerk
    looking a document up learns it was refused and why, not only that the ledger has no
    record of it."""
    refusal = {
        "problems": [
            {
                "line_no": 1,
                "lic": "GHOST-1",
                "reason_code": "UNKNOWN_ITEM",
                "reason": "item GHOST-1 is not known",
                "offending": "GHOST-1",
            }
        ],
    }
    await _answered(pool, _notice("ReceiptRejected", "IN-404", 5, **refusal))

    response = await api.get("/documents/IN-404")

    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith("document IN-404 is not known to the ledger: no transaction record")
    at = _at(5).isoformat().replace("+00:00", "Z")
    assert detail.endswith(
        f"its latest answer, as the dashboard (/ops/summary) keeps it: ReceiptRejected at {at},"
        " UNKNOWN_ITEM: item GHOST-1 is not known"
    ), detail
    # A document the dashboard keeps nothing of: the id alone, as before.
    unknown = (await api.get("/documents/IN-405")).json()["detail"]
    assert unknown == "document IN-405 is not known to the ledger: no transaction record names it"


async def test_usage_filters_by_document_with_or_without_its_item(
    pool: asyncpg.Pool,  # noqa: F811
    api: httpx.AsyncClient,  # noqa: F811
) -> None:
    """§4 `/usage?document=`: the usage records a document wrote, every item's, oldest first
    (with `lic`, that item's only); `lic` may then be left out, but naming neither is 422
    naming `lic`; a document that wrote no usage lists none."""
    await _shipment_scenario(pool, Wire())

    both = await get(api, "/usage", document="SO-7001")
    cam = await get(api, "/usage", document="SO-7001", lic=CAM)
    only_allocated = await get(api, "/usage", document="SO/7003")
    of_food = await get(api, "/usage", lic=FOOD)
    neither = await api.get("/usage")
    paged = await api.get("/usage", params={"document": "SO-7001", "limit": "2"})
    rest = await get(api, "/usage", document="SO-7001", after=paged.headers["X-Next-After"])

    assert [
        (u["lic"], u["mfr_lot"], u["serial"], u["quantity"], u["total_cost"]) for u in both
    ] == [
        (FOOD, "M-1", None, "4", "10.00"),
        (FOOD, "M-2", None, "2", "5.00"),
        (CAM, None, "S-1", "1", "100"),
        (CAM, None, "S-2", "1", "100"),
    ]
    assert {(u["document"], u["counterparty"]) for u in both} == {("SO-7001", "ACME")}
    assert cam == both[2:]
    assert only_allocated == []
    assert [u["document"] for u in of_food] == ["SO-7001", "SO-7001"]  # M-1, M-2
    assert neither.status_code == 422
    assert neither.json()["detail"][0]["loc"] == ["query", "lic"]
    assert paged.json() + rest == both


async def test_document_reads_come_off_the_document_indexes_in_their_order(
    pool: asyncpg.Pool,  # noqa: F811
) -> None:
    """A document's records (and its usage) are read off (document, date, seq) indexes in
    the order listed, from a cursor on: no sort of a 100,000-serial shipment for each page,
    no scan of the tables; the summary reads the same indexes."""
    after = queries._token(date(2024, 3, 5), 7)
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_sort = off")
        plans: dict[str, str] = {}
        for name, (sql, args) in {
            "records": queries.document_records_query("X"),
            "records after": queries.document_records_query("X", after=after),
            "usage": queries.usage_query(
                None, lot_id=None, mfr_lot=None, serial=None, document="X"
            ),
            "usage after": queries.usage_query(
                None, lot_id=None, mfr_lot=None, serial=None, document="X", after=after
            ),
        }.items():
            rows = await conn.fetch(f"EXPLAIN {sql}", *args, 10, 0)
            plans[name] = "\n".join(r[0] for r in rows)
        summary = await conn.fetch(f"EXPLAIN {queries._DOCUMENT_ITEMS}", "X")
        plans["summary"] = "\n".join(r[0] for r in summary)

    for name in ("records", "records after"):
        assert "transactions_by_document" in plans[name], plans[name]
        assert "Sort" not in plans[name], plans[name]
    for name in ("usage", "usage after"):
        assert "usage_by_document" in plans[name] and "Sort" not in plans[name], plans[name]
    for name in ("records after", "usage after"):
        cond = next(line for line in plans[name].splitlines() if "Index Cond" in line)
        assert "seq) > " in cond, plans[name]  # the cursor bounds the index read
    assert "transactions_by_document" in plans["summary"], plans["summary"]
    assert "usage_by_document" in plans["summary"], plans["summary"]
    assert "Seq Scan" not in plans["summary"], plans["summary"]
