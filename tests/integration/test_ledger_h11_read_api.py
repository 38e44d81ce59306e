"""The read API as an integrator and a recall coordinator use it (DESIGN.md §4): 404 for an
unknown item however a list is paged, who received a manufacturer lot and how much, values
written without a negative zero."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg
import httpx
import pytest

from services.ledger import queries, service
from services.ledger.translate import StatusNotice
from shared.consumer import Inbound, UnitOfWork
from shared.outbox import Outbox
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
    record_costs,
)

__all__ = ["api", "pool"]
D = Decimal


async def test_an_unknown_item_is_404_on_every_page_of_its_usage_and_lots(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 "an unknown item is answered 404": a LIC typed wrong is 404 on `/usage` whatever the
    offset (page 2 was an empty 200, as if the item had no more records), and on `/lots?lic=`
    too (an empty 200 there read as "this item has no lots"). A known item past its last page,
    or with no lots, is an empty list."""
    await record(pool, Wire().item("BOLT"))

    for url, params in [
        ("/usage", {"lic": "NOPE"}),
        ("/usage", {"lic": "NOPE", "offset": "1"}),
        ("/usage", {"lic": "NOPE", "offset": "1000", "limit": "1"}),
        ("/lots", {"lic": "NOPE"}),
        ("/lots", {"lic": "NOPE", "status": "open", "offset": "5"}),
    ]:
        response = await api.get(url, params=params)
        assert response.status_code == 404, (url, params, response.text)
        assert "NOPE" in response.json()["detail"]
    assert await get(api, "/usage", lic="BOLT", offset="1") == []
    assert await get(api, "/lots", lic="BOLT") == []
    assert await get(api, "/lots", lic="BOLT", status="closed", offset="3") == []


async def test_a_recall_trace_names_each_customer_with_what_they_received_and_returned(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 trace, forward: for a recall, each customer who received the manufacturer lot, with
    the quantity shipped to them (over how many shipments, first and last date), what they
    sent back and what they still hold. Bravo returned one of two units; other lots and items
    sharing the lot number are not counted."""
    await record(pool, *recall_scenario(Wire()))

    trace = await get(api, "/trace", lic=FOOD, mfr_lot=M42)

    assert [
        (
            r["customer"],
            r["shipments"],
            r["shipped"],
            r["returned"],
            r["held"],
            r["first_shipped_on"],
            r["last_shipped_on"],
        )
        for r in trace["recipients"]
    ] == [
        ("Alpha Foods", 1, "3", "0", "3", "2024-01-12", "2024-01-12"),
        ("Bravo Market", 1, "2", "1", "1", "2024-01-15", "2024-01-15"),
        ("Charlie Deli", 1, "3", "0", "3", "2024-01-20", "2024-01-20"),
    ]
    assert [r["customer"] for r in trace["recipients"]] == trace["customers"]


async def test_a_serial_returned_and_shipped_again_lists_both_customers_in_order(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R13, R15: a serial shipped to Alpha, returned and shipped to Bravo the same day: its
    trace lists receipt, Alpha's allocation and shipment, the return, Bravo's allocation and
    shipment, in that order; Alpha holds none of it any more, Bravo holds the unit."""
    w = Wire()
    unit = [mv("L1", 1, "300", serial="S-1")]
    await record(
        pool,
        w.item("CAM", serialized=True),
        w.received("CAM", "L1", 1, "300", unit, po="PO-1", on=date(2024, 1, 1)),
        w.sale("CAM", "OUT-1", unit, customer="Alpha", on=date(2024, 1, 2)),
        w.returned("CAM", "RMA-1", unit, customer="Alpha", on=date(2024, 1, 3)),
        w.sale("CAM", "OUT-2", unit, customer="Bravo", on=date(2024, 1, 3)),
    )

    trace = await get(api, "/trace", lic="CAM", serial="S-1")
    serial = await get(api, "/serials/CAM/S-1")

    expected = [
        ("receipt", "IN-PO-1", None),
        ("allocation", "OUT-1", "Alpha"),
        ("shipment", "OUT-1", "Alpha"),
        ("customer_return", "RMA-1", "Alpha"),
        ("allocation", "OUT-2", "Bravo"),
        ("shipment", "OUT-2", "Bravo"),
    ]
    assert [(t["event_type"], t["document"], t["counterparty"]) for t in trace["events"]] == (
        expected
    )
    assert [(h["event_type"], h["document"], h["counterparty"]) for h in serial["history"]] == (
        expected
    )
    assert [
        (r["customer"], r["shipped"], r["returned"], r["held"]) for r in trace["recipients"]
    ] == [
        ("Alpha", "1", "1", "0"),
        ("Bravo", "1", "0", "1"),
    ]
    assert (serial["status"], serial["current"]["counterparty"]) == ("shipped", "Bravo")


async def test_an_over_received_lot_at_no_cost_shows_no_negative_zero(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """R7: ordered 1, received 3 at cost 0: ordered − received is −2 units worth 0, not "-0"
    (the value was −2 × 0, a negative zero in decimal arithmetic)."""
    w = Wire()
    await record(
        pool,
        w.item("FREE"),
        w.received("FREE", "L1", 3, "0", [mv("L1", 3, "0")], po="PO-1", on=date(2024, 1, 1)),
    )
    await record_costs(pool, w.po("PO-1", "FREE", ordered_quantity=D(1), purchased_quantity=D(1)))

    lot = await get(api, "/lots/L1")

    remaining = lot["valuation"]["received_remaining"]
    assert (remaining["quantity"], remaining["value"]) == ("-2", "0")
    assert not [
        (name, f)
        for name, f in lot["valuation"].items()
        if isinstance(f, dict) and "-0" in f.values()
    ]


def _next(response: httpx.Response) -> str | None:
    """The `after` token of the next page, as the `X-Next-After` header and `Link` give it."""
    assert response.status_code == 200, response.text
    token: str | None = response.headers.get("x-next-after")
    if token is None:
        assert "link" not in response.headers
        return None
    link = response.headers["link"]
    assert link.endswith('>; rel="next"') and f"after={token}" in link, link
    return token


async def _walk(
    api: httpx.AsyncClient,
    url: str,
    between: Callable[[], Awaitable[None]] | None = None,
    **params: str,
) -> list[Any]:
    """Every row of a list, one page after the other by `after`; `between()` runs after the
    first page (rows recorded while a client pages)."""
    rows: list[Any] = []
    after: str | None = None
    while True:
        response = await api.get(url, params={**params, **({"after": after} if after else {})})
        rows.extend(response.json())
        after = _next(response)
        if after is None:
            return rows
        if between is not None:
            await between()
            between = None


async def test_usage_paged_by_cursor_neither_repeats_nor_skips_when_a_backdated_record_arrives(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 `/usage` lists oldest first by the date used, so a loss dated last week and recorded
    while a client pages moves every later record down one place: with `offset` the next page
    repeats a record. Paged by the `after` token each page answers (header `X-Next-After` and
    `Link: <…>; rel="next"`), every record there when paging began comes exactly once, in
    order; the last page has no next."""
    w = Wire()
    await record(
        pool,
        w.item("BOLT"),
        w.received("BOLT", "L1", 50, "1", [mv("L1", 50, "1")], po="PO-1", on=date(2024, 1, 1)),
        *[
            w.sale("BOLT", f"OUT-{n}", [mv("L1", 1, "1")], customer="A", on=date(2024, 1, 20))
            for n in range(5)
        ],
    )
    before = [u["document"] for u in await get(api, "/usage", lic="BOLT")]

    async def backdated_loss() -> None:
        loss = w.adjusted("BOLT", "LOSS-1", "loss", [mv("L1", -1, "1")], on=date(2024, 1, 10))
        await record(pool, loss)

    paged = await _walk(api, "/usage", backdated_loss, lic="BOLT", limit="2")

    assert [u["document"] for u in paged] == before == [f"OUT-{n}" for n in range(5)]
    offset_page = await get(api, "/usage", lic="BOLT", limit="2", offset="2")
    assert offset_page[0]["document"] == "OUT-1"  # what `offset` repeats: the cursor did not


LOT_IDS = ["IN,1/1", "IN/1%2F/2", "IN-\u00e9/3", "IN 100%/4", "IN\u201c\u201d/5", "IN=1+2/6"]


async def test_lots_paged_by_cursor_keep_every_lot_once_whatever_characters_their_ids_hold(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 `/lots`: lots of one item received the same day share the sort key up to their id,
    and ids hold commas, slashes, `%`, spaces, quotes and accents; paged one lot at a time by
    `after` every lot comes once, in the order one page lists them, also when a lot sorting
    before the cursor is received meanwhile."""
    w = Wire()

    def lot(lot_id: str, on: date = date(2024, 1, 2)) -> Any:
        return w.received("BOLT", lot_id, 1, "1", [mv(lot_id, 1, "1")], po="PO-1", on=on)

    await record(pool, w.item("BOLT"), *[lot(lot_id) for lot_id in LOT_IDS])
    whole = [x["lot_id"] for x in await get(api, "/lots", lic="BOLT")]

    async def earlier_lot() -> None:
        await record(pool, lot("IN-0/1", date(2024, 1, 1)))  # received earlier: sorts first

    paged = await _walk(api, "/lots", earlier_lot, lic="BOLT", limit="1")
    everything = await _walk(api, "/lots", limit="4", status="open")

    assert sorted(whole) == sorted(LOT_IDS)
    assert [x["lot_id"] for x in paged] == whole
    assert [x["lot_id"] for x in everything] == [
        x["lot_id"] for x in await get(api, "/lots", status="open")
    ]
    assert len(everything) == len(LOT_IDS) + 1


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/usage", {"lic": "BOLT", "after": "not a cursor"}),
        ("/usage", {"lic": "BOLT", "after": "W10"}),  # base64 of []
        ("/usage", {"lic": "BOLT", "after": "x" * 5000}),
        ("/lots", {"after": "%%%"}),
        ("/lots", {"after": "WyIyMDI0LTAxLTIwIiwgMV0"}),  # a /usage cursor: ["2024-01-20", 1]
    ],
)
async def test_a_cursor_that_is_not_one_this_list_gave_is_422_naming_after(
    pool: asyncpg.Pool, api: httpx.AsyncClient, url: str, params: dict[str, str]
) -> None:
    await record(pool, Wire().item("BOLT"))

    response = await api.get(url, params=params)

    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "after"], error


async def test_a_usage_page_after_a_cursor_starts_in_its_index_without_sorting(
    pool: asyncpg.Pool,
) -> None:
    """`/usage?after=` reads its filter's index from the cursor on (a row comparison on
    (used_on, seq)), as the first page does: no sort of the item's whole usage per page."""
    after = queries._token(date(2024, 1, 20), 7)
    async with pool.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_sort = off")
        for lot_id, index in ((None, "usage_by_lic"), ("L1", "usage_by_lot")):
            sql, args = queries.usage_query(
                "X", lot_id=lot_id, mfr_lot=None, serial=None, after=after
            )
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args, 10, 0))
            assert "Sort" not in plan and index in plan, plan
            cond = next(line for line in plan.splitlines() if "Index Cond" in line)
            assert "used_on, seq) > " in cond, plan  # the cursor bounds the index read


def _rejected(n: int, problems: int, at: datetime) -> Inbound[StatusNotice]:
    notice = StatusNotice.model_validate(
        {
            "type": "ReceiptRejected",
            "message_id": f"st-{n}",
            "occurred_at": at,
            "shipment_id": f"R-{n}",
            "problems": [
                {"line_no": line, "lic": FOOD, "reason_code": "LOT_REQUIRED", "reason": "no lot"}
                for line in range(1, problems + 1)
            ],
        }
    )
    return Inbound(notice, "inventory.status", 0, n, None)


async def test_refusals_by_reason_count_refused_documents_beside_their_problems(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """§4 dashboard "refusals by reason_code": one receipt refused for 3 lines without a lot
    and another for 1 are 2 refusals (the column said 4: it counted problems, of which only
    the first 20 of a document are kept), with 4 problems beside them."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(cast(asyncpg.Connection, conn), Outbox())
        await service.record_status(uow, [_rejected(1, 3, now), _rejected(2, 1, now)])

    summary = await get(api, "/ops/summary")
    page = (await api.get("/dashboard")).text

    assert summary["refusals_by_reason"] == [
        {"reason_code": "LOT_REQUIRED", "refusals": 2, "problems": 4}
    ]
    assert "<th>problems</th>" in page
    assert "<td>LOT_REQUIRED</td><td class=num>2</td><td class=num>4</td>" in page
