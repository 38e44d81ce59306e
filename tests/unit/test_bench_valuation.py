"""Scenario 5 (trace at scale) also times GET /valuation as of days picked from the loaded
records, checks every answer against the stock the loaded blocks hold that day, and reports
the timings against the read API's floor; its loader builds the index by date the valuation
reads and lays the records down in date order."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from bench import ledger_loader as loader
from bench.report import ScenarioResult, markdown
from bench.scenarios.trace import (
    AsOf,
    Valued,
    items_problem,
    valuation_days,
    valuation_figures,
    valuation_problem,
)

DAY = timedelta(days=1)


def _answer(items: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A GET /valuation body: (on_hand, total_value) by LIC, as the read API writes them."""
    rows = [{"lic": lic, "on_hand": q, "total_value": v} for lic, (q, v) in items.items()]
    total_q = sum((Decimal(q) for q, _ in items.values()), Decimal(0))
    total_v = sum((Decimal(v) for _, v in items.values()), Decimal(0))
    return {"items": rows, "total": {"on_hand": str(total_q), "total_value": str(total_v)}}


def test_the_block_received_on_a_day_is_all_that_is_on_hand_at_its_end() -> None:
    day = loader.FIRST_DAY + timedelta(days=13)
    held = loader.on_hand_as_of(day, blocks=20, groups=10, lics_per_kind=2)
    assert held == {
        "LOT-3-00": 2 * loader.SHIPMENTS,
        "LOT-3-01": 2 * loader.SHIPMENTS,
        "SER-3-00": loader.SHIPMENTS,
        "SER-3-01": loader.SHIPMENTS,
    }


def test_nothing_is_on_hand_before_the_first_receipt_or_after_the_last_shipment() -> None:
    assert loader.on_hand_as_of(loader.FIRST_DAY - DAY, 20, 10, 2) == {}
    last_shipment = loader.FIRST_DAY + timedelta(days=20)
    assert loader.on_hand_as_of(last_shipment, 20, 10, 2) == {}


def _template() -> loader.Template:
    rows = [
        f"t1\t{loader.RECEIVED}\treceipt",
        f"t2\t{loader.SHIPPED}\tshipment",
        f"t3\t{loader.SHIPPED}\tshipment",
    ]
    return loader.Template(
        columns={"transactions": ["txn_id", "occurred_on", "event_type"]},
        data={"transactions": ("\n".join(rows) + "\n").encode()},
    )


def test_records_are_counted_by_the_day_each_block_dates_them() -> None:
    days = loader.records_by_day(_template(), blocks=3, groups=2)
    first = loader.FIRST_DAY
    assert days == {first: 1, first + DAY: 3, first + 2 * DAY: 3, first + 3 * DAY: 2}


def test_valuation_days_come_from_the_records_with_what_each_reads_back() -> None:
    first = date(2020, 1, 1)
    records = {first + timedelta(days=d): 10 for d in range(100)}
    last_day, month, before = valuation_days(records)
    assert (last_day.day, last_day.records) == (first + timedelta(days=99), 0)
    assert (month.day, month.records) == (first + timedelta(days=69), 300)
    assert (before.day, before.records) == (first - DAY, 1000)
    assert last_day.calls > month.calls > before.calls


def test_a_month_before_the_last_is_never_before_the_first_record() -> None:
    first = date(2020, 1, 1)
    _, month, _ = valuation_days({first: 5, first + timedelta(days=3): 5})
    assert month.day == first


def test_an_answer_holding_exactly_the_blocks_stock_is_right() -> None:
    answer = _answer({"LOT-1-00": ("200", "800.00"), "SER-1-00": ("100", "400")})
    assert valuation_problem(answer, {"LOT-1-00": 200, "SER-1-00": 100}) is None
    assert valuation_problem(_answer({}), {}) is None


def test_a_missing_extra_or_misvalued_item_is_wrong() -> None:
    held = {"LOT-1-00": 200, "SER-1-00": 100}
    missing = valuation_problem(_answer({"LOT-1-00": ("200", "800.00")}), held)
    assert missing is not None and "SER-1-00" in missing
    misvalued = _answer({"LOT-1-00": ("200", "799.99"), "SER-1-00": ("100", "400.00")})
    assert "LOT-1-00" in (valuation_problem(misvalued, held) or "")
    extra = valuation_problem(_answer({"LOT-2-00": ("1", "4.00")}), {})
    assert extra is not None and "LOT-2-00" in extra


def test_a_total_that_is_not_its_items_sum_is_wrong() -> None:
    answer = _answer({"LOT-1-00": ("200", "800.00")})
    answer["total"]["total_value"] = "0"
    assert "total" in (valuation_problem(answer, {"LOT-1-00": 200}) or "")


def test_as_of_the_last_day_the_answer_must_be_get_items_figures() -> None:
    items = [
        {"lic": "LOT-1-00", "on_hand": "200", "value": "800.00", "unallocated_value": "0"},
        {"lic": "SER-1-00", "on_hand": "0", "value": "0", "unallocated_value": "0"},
    ]
    assert items_problem(_answer({"LOT-1-00": ("200", "800.00")}), items) is None
    assert "LOT-1-00" in (items_problem(_answer({}), items) or "")


def test_each_day_and_scope_is_reported_against_the_read_api_floor() -> None:
    as_of = AsOf("the day before the first", date(2019, 12, 31), 3, 25_100_000)
    valued = [Valued(as_of, None, [0.5, 0.7], {}), Valued(as_of, "LOT-0-00", [0.2], {})]
    result = ScenarioResult("trace", "5. Trace at scale")
    valuation_figures(result, valued, 25_100_000)
    names = [f.name for f in result.figures]
    assert names == [
        "valuation of every item as of the day before the first p50",
        "valuation of every item as of the day before the first p99",
        "valuation of one LIC as of the day before the first p50",
        "valuation of one LIC as of the day before the first p99",
    ]
    assert [f.ceiling for f in result.figures[:2]] == ["http_floor_p50_ms", "http_floor_p99_ms"]
    assert result.figures[1].value == 700
    assert "25,100,000 of 25,100,000 records read back; 2 call(s)" in result.figures[0].note
    ceilings = {
        "http_floor_p50_ms": {"value": 2.0, "unit": "ms", "label": "floor p50"},
        "http_floor_p99_ms": {"value": 5.0, "unit": "ms", "label": "floor p99"},
    }
    body = result.as_dict(ceilings)
    assert body["figures"][0]["ratio"] == 250.0
    text = markdown(
        {
            "command": "lotline bench",
            "mode": "default",
            "started_at": "now",
            "seconds": 1,
            "machine": {},
            "ceilings": ceilings,
            "targets": [],
            "scenarios": {"trace": body},
        }
    )
    assert "| valuation of every item as of the day before the first p99 | 700 ms |" in text
    assert "140.00×" in text


def _ddl() -> dict[str, list[tuple[str, str]]]:
    return {
        "transactions": [
            (
                "transactions_by_date",
                "CREATE INDEX transactions_by_date ON ledger.transactions USING brin (occurred_on)",
            ),
            (
                "transactions_by_lot",
                "CREATE INDEX transactions_by_lot ON ledger.transactions USING btree (lot_id)",
            ),
        ],
        "lots": [
            ("lots_by_lic", "CREATE INDEX lots_by_lic ON ledger.lots USING btree (lic)"),
        ],
    }


def _loaded_template() -> loader.Template:
    return loader.Template(
        columns={"transactions": ["occurred_on"], "lots": ["lic"]},
        data={"transactions": b"x\n" * 100, "lots": b"x\n"},
    )


def test_the_loader_builds_the_index_by_date_and_an_items_lots_index_for_valuation() -> None:
    plan = loader._plan(_loaded_template(), blocks=10, groups=2, ddl=_ddl())
    tasks = {t.name: t for t in plan}
    assert "index transactions_by_date" in tasks
    assert "index lots_by_lic" in tasks
    assert "index transactions_by_lot" not in tasks  # no query of the scenario uses it
    by_date = tasks["index transactions_by_date"]
    assert by_date.after == {"copy transactions 1/2", "copy transactions 2/2"}
    assert by_date.cost < 1000 * loader.INDEX_SECONDS_PER_ROW  # a BRIN: one pass, no sort


def test_the_split_copy_writes_blocks_side_by_side_in_date_order() -> None:
    plan = loader._plan(_loaded_template(), blocks=10, groups=2, ddl=_ddl())
    shares = [t.blocks for t in plan if t.kind == "copy" and t.table == "transactions"]
    assert shares == [range(0, 10, 2), range(1, 10, 2)]
