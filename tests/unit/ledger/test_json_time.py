"""One writer of a time as the read API's JSON writes it (`queries.json_time`, UTC as "Z"): the
recall sheet's "Recorded at" and a 404's latest answer both go through it, each with its own
precision."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from services.ledger import api, queries
from services.ledger.schemas import TraceBalance, TraceEvent, TraceOut

AT = datetime(2026, 11, 23, 8, 30, 0, 123456, tzinfo=UTC)


def test_a_time_is_written_as_the_json_writes_it_utc_as_z() -> None:
    assert queries.json_time(AT) == "2026-11-23T08:30:00.123456Z"
    assert queries.json_time(AT, "seconds") == "2026-11-23T08:30:00Z"
    assert queries.json_time(AT.replace(microsecond=0)) == "2026-11-23T08:30:00Z"
    # Another offset is kept as it is: only UTC is "Z".
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    assert queries.json_time(plus_two, "seconds") == "2026-11-23T10:30:00+02:00"


def _answer(at: datetime) -> dict[str, Any]:
    return {
        "status": "ReceiptRejected",
        "occurred_at": at,
        "reason_code": "UNKNOWN_ITEM",
        "reason": "item X is not known",
    }


def _sheet_row(recorded_at: datetime | None) -> list[str]:
    zero = Decimal(0)
    event = TraceEvent.model_construct(
        date=date(2026, 11, 23),
        event_type="receipt",
        lic="X",
        lot_id="L1",
        mfr_lot="M1",
        serial=None,
        expires_on=None,
        quantity=Decimal(1),
        stock_change=Decimal(1),
        unit_cost=zero,
        cost=zero,
        office="AI",
        document="IN-1",
        line_no=1,
        counterparty=None,
        reference=None,
        lot_kind="purchase",
        reason="",
        vendor=None,
        recorded_seq=7,
        recorded_at=recorded_at,
    )
    found = TraceOut.model_construct(
        lic="X",
        description="x",
        uom="EA",
        mfr_lot="M1",
        serial=None,
        lot_id=None,
        origins=[],
        customers=[],
        recipients=[],
        accounted=TraceBalance.model_construct(),  # type: ignore[call-arg]  # a row reads none
        events=[event],
    )
    return api._csv_row(found, event)


def test_the_sheet_and_a_404_keep_their_own_precision() -> None:
    assert _sheet_row(AT)[-1] == "2026-11-23T08:30:00.123456Z"  # as the JSON's recorded_at
    assert _sheet_row(None)[-1] == ""
    assert queries._latest_answer(_answer(AT)) == (  # type: ignore[arg-type]
        "ReceiptRejected at 2026-11-23T08:30:00Z, UNKNOWN_ITEM: item X is not known"
    )


def test_both_write_their_times_through_json_time(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[datetime, str]] = []

    def json_time(at: datetime, timespec: str = "auto") -> str:
        asked.append((at, timespec))
        return "WHEN"

    monkeypatch.setattr(queries, "json_time", json_time)

    assert _sheet_row(AT)[-1] == "WHEN"
    assert queries._latest_answer(_answer(AT)).startswith("ReceiptRejected at WHEN")  # type: ignore[arg-type]
    assert asked == [(AT, "auto"), (AT, "seconds")]
    assert not hasattr(api, "_timestamp")  # no second copy left
