"""The read API's query parameters as a client sends them, on a real PostgreSQL: a parameter that
takes one value given twice is refused (422 naming it and both values), never answered with the
last one; the operations dashboard read as of another day (`as_of`), a bad date refused alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from services.ledger.api import create_api
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
# A day that is not today (the page then says so), whatever the clock of the machine.
AS_OF = date(2030, 6, 15)


def _utc_today() -> str:
    return datetime.now(UTC).date().isoformat()


def _problems(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    problems: list[dict[str, Any]] = response.json()["detail"]
    return problems


def _repeated(problem: dict[str, Any], name: str, values: list[str]) -> None:
    """`problem` is the one a repeated `name` gets: its place, the values as sent, both named."""
    assert problem["loc"] == ["query", name], problem
    assert problem["input"] == values, problem
    assert problem["type"] == "value_error", problem
    assert name in problem["msg"] and all(v in problem["msg"] for v in values), problem
    assert "'" not in problem["msg"], problem  # values as sent, not as Python writes them


@pytest.mark.parametrize(
    ("url", "query", "name", "values"),
    [
        ("/trace", f"lic={FOOD}&mfr_lot={M42}&mfr_lot=M-43", "mfr_lot", [M42, "M-43"]),
        ("/trace", f"lic={FOOD}&lic=OTHER&mfr_lot={M42}", "lic", [FOOD, "OTHER"]),
        ("/trace", f"lic={FOOD}&mfr_lot={M42}&format=csv&format=json", "format", ["csv", "json"]),
        ("/usage", f"lic={FOOD}&lot_id=L-100&lot_id=L-101", "lot_id", ["L-100", "L-101"]),
        ("/usage", f"lic={FOOD}&lic=OTHER", "lic", [FOOD, "OTHER"]),
        ("/usage", f"lic={FOOD}&limit=1&limit=1000", "limit", ["1", "1000"]),
        ("/lots", f"lic={FOOD}&lic=OTHER", "lic", [FOOD, "OTHER"]),
        ("/lots", "status=open&status=closed", "status", ["open", "closed"]),
        ("/serials", "lic=CAM&serial=S-1&serial=S-2", "serial", ["S-1", "S-2"]),
        ("/ops/summary", "window_hours=1&window_hours=24", "window_hours", ["1", "24"]),
        ("/dashboard", "limit=5&limit=50", "limit", ["5", "50"]),
    ],
)
async def test_a_parameter_given_twice_is_422_naming_it_and_both_values(
    pool: asyncpg.Pool,
    api: httpx.AsyncClient,
    url: str,
    query: str,
    name: str,
    values: list[str],
) -> None:
    """Each of these was answered with its last value: `/trace?mfr_lot=M-42&mfr_lot=M-43` gave
    a recall coordinator M-43's customers as if they had asked for both lots."""
    await record(pool, *recall_scenario(Wire()))

    (problem,) = _problems(await api.get(f"{url}?{query}"))

    _repeated(problem, name, values)


async def test_the_same_value_given_twice_is_refused_too(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """One rule a client can rely on: a parameter is given once (a query built by appending
    its filters twice is a bug worth seeing, not one to guess around)."""
    await record(pool, *recall_scenario(Wire()))

    (problem,) = _problems(await api.get(f"/trace?lic={FOOD}&mfr_lot={M42}&mfr_lot={M42}"))

    _repeated(problem, "mfr_lot", [M42, M42])


async def test_every_repeated_parameter_is_named_in_the_order_sent(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await record(pool, *recall_scenario(Wire()))

    problems = _problems(
        await api.get(f"/usage?limit=1&lic={FOOD}&limit=2&serial=S&lic=OTHER&offset=0")
    )

    assert [p["loc"] for p in problems] == [["query", "limit"], ["query", "lic"]]
    _repeated(problems[0], "limit", ["1", "2"])
    _repeated(problems[1], "lic", [FOOD, "OTHER"])


def _two_values(schema: dict[str, Any]) -> list[str]:
    """Two values a parameter of this OpenAPI schema takes, so only the repeat is wrong."""
    for option in [schema, *schema.get("anyOf", [])]:
        if "enum" in option:
            return [str(v) for v in option["enum"][:2]]
        if option.get("type") == "integer":
            return ["1", "2"]
        if option.get("format") == "date":
            return ["2026-11-20", "2026-11-21"]
    return ["A", "B"]


async def test_every_query_parameter_of_the_read_api_refuses_a_second_value(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """Read from the OpenAPI document, so an endpoint or parameter added later is held to the
    rule too: each single-valued query parameter, given twice alone, is the one problem named
    (before any other, as a missing `lic`). None of the API's parameters is meant to repeat."""
    document = (await api.get("/openapi.json")).json()
    checked = []
    for path, operations in document["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] != "query":
                continue
            assert parameter["schema"].get("type") != "array", (path, parameter)
            name = parameter["name"]
            values = _two_values(parameter["schema"])
            response = await api.get(path, params=[(name, v) for v in values])
            (problem,) = _problems(response)
            _repeated(problem, name, values)
            checked.append(f"{path}?{name}")

    assert {"/trace?lot_id", "/usage?after", "/ops/summary?as_of", "/dashboard?as_of"} <= set(
        checked
    )


async def test_one_value_each_is_answered_as_before(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await record(pool, *recall_scenario(Wire()))

    trace = await get(api, "/trace", lic=FOOD, mfr_lot=M42, format="json")
    usage = await get(api, "/usage", lic=FOOD, lot_id="L-100", limit="1000")

    assert trace["mfr_lot"] == M42 and trace["events"]
    assert usage and {u["lot_id"] for u in usage} == {"L-100"}


# -- the dashboard as of a day ------------------------------------------------------------------


def _receipt(w: Wire, lot_id: str, mfr_lot: str, expires_on: date, quantity: int) -> Any:
    moves = [mv(lot_id, quantity, "2.00", mfr_lot=mfr_lot, expires_on=expires_on)]
    return w.received(FOOD, lot_id, quantity, "2.00", moves, po=f"PO-{lot_id}", on=date(2026, 1, 5))


async def _stock_around(pool: asyncpg.Pool, day: date) -> None:
    """M-PAST expired the day before `day`, M-SOON expires 3 days after it, one unit of M-SOON
    was sold on `day`."""
    w = Wire()
    soon = day + timedelta(days=3)
    events: list[e.Event | list[e.Event]] = [
        w.item(FOOD, track_mfr_lot=True, perishable=True),
        _receipt(w, "L-1", "M-PAST", day - timedelta(days=1), 2),
        _receipt(w, "L-2", "M-SOON", soon, 5),
        w.sale(
            FOOD,
            "S-1",
            [mv("L-2", 1, "2.00", mfr_lot="M-SOON", expires_on=soon)],
            customer="Montboro",
            on=day,
        ),
    ]
    await record(pool, *events)


async def test_the_summary_is_read_as_of_the_day_asked(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    """`as_of` moves "today": what had expired, what expires soon, and the usage of the day
    are those of the day asked; without it, of the UTC date of the read."""
    await _stock_around(pool, AS_OF)

    before = _utc_today()
    ledger = (await get(api, "/ops/summary", as_of=AS_OF.isoformat()))["ledger"]
    week_before = (await get(api, "/ops/summary", as_of="2030-06-08"))["ledger"]
    today = (await get(api, "/ops/summary"))["ledger"]

    assert ledger["as_of"] == "2030-06-15"
    assert [(x["mfr_lot"], x["days_expired"]) for x in ledger["expired"]] == [("M-PAST", 1)]
    assert [(x["mfr_lot"], x["days_left"]) for x in ledger["expiring"]] == [("M-SOON", 3)]
    assert (ledger["usage_records_today"], ledger["usage_cost_today"]) == (1, "2.00")
    assert week_before["as_of"] == "2030-06-08"
    assert week_before["expired"] == [] and week_before["usage_records_today"] == 0
    assert [(x["mfr_lot"], x["days_left"]) for x in week_before["expiring"]] == [
        ("M-PAST", 6),
        ("M-SOON", 10),
    ]
    assert today["as_of"] in {before, _utc_today()}  # the read may cross midnight


async def test_the_page_says_the_day_it_is_read_as_of_and_keeps_it_in_its_links(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    await _stock_around(pool, AS_OF)

    before = _utc_today()
    page = await api.get("/dashboard", params={"as_of": "2030-06-15", "limit": "7"})
    plain_page = await api.get("/dashboard")

    assert page.status_code == 200, page.text
    assert "as of <strong>2030-06-15</strong> (UTC; <span class=warn>today is" in page.text
    assert "Expired stock on hand (before 2030-06-15, UTC): 1 manufacturer lots" in page.text
    assert "Usage records on 2030-06-15 (UTC): 1 (cost 2.00)" in page.text
    assert '<a href="/ops/summary?limit=7&amp;as_of=2030-06-15">JSON</a>' in page.text
    assert any(
        f"as of <strong>{d}</strong> (UTC)" in plain_page.text for d in {before, _utc_today()}
    )
    assert 'href="/ops/summary?limit=20">JSON' in plain_page.text  # today's: no date pinned


@pytest.mark.parametrize("url", ["/ops/summary", "/dashboard"])
@pytest.mark.parametrize(
    "as_of",
    [
        "2026-02-30",  # no such day
        "2026-11-22T00:00:00Z",  # a time
        "20261122",
        "0",  # pydantic alone reads a number as a Unix time: 1970-01-01
        "22/11/2026",
        "",
        "２０２６-11-22",  # full-width digits
        "9999-12-31",  # the driver would send these two as infinity and -infinity
        "0001-01-01",
    ],
)
async def test_a_bad_as_of_is_422_naming_it(pool: asyncpg.Pool, url: str, as_of: str) -> None:
    app = create_api(lambda: pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ledger"
    ) as client:
        response = await client.get(url, params={"as_of": as_of})

    (problem,) = _problems(response)
    assert problem["loc"] == ["query", "as_of"], problem


@pytest.mark.parametrize(("as_of", "expired"), [("9999-12-30", 2), ("0001-01-02", 0)])
async def test_the_first_and_last_dates_the_database_takes_are_read_without_error(
    pool: asyncpg.Pool, api: httpx.AsyncClient, as_of: str, expired: int
) -> None:
    """The expiring window of the last date runs past what Python's dates hold; stock that
    expired millennia before it is counted in days all the same."""
    await _stock_around(pool, AS_OF)

    page = await api.get("/dashboard", params={"as_of": as_of})
    ledger = (await get(api, "/ops/summary", as_of=as_of))["ledger"]

    assert page.status_code == 200, page.text
    assert f"as of <strong>{as_of}</strong>" in page.text
    assert (ledger["as_of"], ledger["expired_lots"], ledger["expiring_lots"]) == (as_of, expired, 0)
