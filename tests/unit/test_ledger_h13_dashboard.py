"""The dashboard page read as of a day: it names the day, says when it is not today's, keeps the
day in its link to its own data, and draws the last date Python holds without failing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from services.ledger import dashboard
from services.ledger.schemas import LedgerHealth, OpsSummary

READ_AT = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)


def _summary(as_of: date, expiring_days: int = 30) -> OpsSummary:
    return OpsSummary(
        generated_at=READ_AT,
        window_hours=24,
        documents_by_status=[],
        latest_documents=[],
        refusals_by_reason=[],
        latest_refusals=[],
        dead_letters_in_window=0,
        latest_dead_letters=[],
        ledger=LedgerHealth(
            last_event=None,
            as_of=as_of,
            usage_records_today=0,
            usage_cost_today=Decimal(0),
            expiring_days=expiring_days,
            expiring_lots=0,
            expiring=[],
        ),
    )


def test_the_page_names_today_as_the_day_it_is_read_as_of() -> None:
    page = dashboard.render(_summary(date(2026, 11, 22)))

    assert "as of <strong>2026-11-22</strong> (UTC)" in page
    assert "today is" not in page
    assert '<a href="/ops/summary">JSON</a>' in page


def test_a_page_asked_for_another_day_names_it_and_today_and_keeps_it_in_its_json_link() -> None:
    page = dashboard.render(_summary(date(2026, 11, 15)), as_of=date(2026, 11, 15), limit=7)

    assert (
        "as of <strong>2026-11-15</strong> (UTC; <span class=warn>today is 2026-11-22</span>)"
        in page
    )
    assert '<a href="/ops/summary?limit=7&amp;as_of=2026-11-15">JSON</a>' in page


def test_the_expiring_window_of_the_last_date_ends_on_it() -> None:
    page = dashboard.render(_summary(date(9999, 12, 30), expiring_days=3660))

    assert "(9999-12-30 to 9999-12-31)" in page
