"""The dashboard page's expiry view: expired stock still on hand first, most overdue first,
with quantity and value, then what expires soon; every value escaped; the date it was read
against named as UTC."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from services.ledger import dashboard
from services.ledger.schemas import ExpiredLot, ExpiringLot, LedgerHealth, OpsSummary

AS_OF = date(2026, 11, 22)
HOSTILE = '<script>alert("x")</script>&'


def _lot(mfr_lot: str, expires_on: date, qty: str, value: str) -> dict[str, Any]:
    return {
        "lic": "FOOD-1",
        "office": "AI",
        "mfr_lot": mfr_lot,
        "expires_on": expires_on,
        "current_qty": Decimal(qty),
        "allocated_qty": Decimal(0),
        "current_value": Decimal(value),
        "lot_id": "L-1",
        "lot_ids": ["L-1", "L-2"],
    }


def _summary(expired: list[ExpiredLot], expiring: list[ExpiringLot]) -> OpsSummary:
    return OpsSummary(
        generated_at=datetime(2026, 11, 22, 23, 30, tzinfo=UTC),
        window_hours=24,
        documents_by_status=[],
        latest_documents=[],
        refusals_by_reason=[],
        latest_refusals=[],
        dead_letters_in_window=0,
        latest_dead_letters=[],
        ledger=LedgerHealth(
            last_event=None,
            as_of=AS_OF,
            usage_records_today=2,
            usage_cost_today=Decimal("4.00"),
            expired_lots=len(expired),
            expired_value=sum((x.current_value for x in expired), Decimal(0)),
            expired=expired,
            expiring_days=30,
            expiring_lots=len(expiring),
            expiring_value=sum((x.current_value for x in expiring), Decimal(0)),
            expiring=expiring,
        ),
    )


def _text(page: str) -> str:
    """The page's text without its tags, runs of blanks as one space."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_the_page_shows_expired_stock_before_expiring_stock_with_quantity_and_value() -> None:
    expired = [
        ExpiredLot(**_lot(HOSTILE, date(2026, 11, 1), "12", "29.00"), days_expired=21),
        ExpiredLot(**_lot("M-EDGE", date(2026, 11, 21), "2", "3.00"), days_expired=1),
    ]
    expiring = [ExpiringLot(**_lot("M-SOON", AS_OF, "4", "8.00"), days_left=0)]

    page = dashboard.render(_summary(expired, expiring))
    text = _text(page)

    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert "Expired stock on hand (before 2026-11-22, UTC): 2 manufacturer lots, value 32.00" in (
        text
    )
    assert text.index("Expired stock on hand") < text.index("expiring within 30 days")
    assert text.index("2026-11-01 21 FOOD-1") < text.index("2026-11-21 1 FOOD-1 M-EDGE")
    assert "2026-11-21 1 FOOD-1 M-EDGE AI 2 0 3.00 L-1, L-2" in text
    assert "2026-11-22 0 FOOD-1 M-SOON AI 4 0 8.00 L-1, L-2" in text
    assert "Usage records on 2026-11-22 (UTC): 2 (cost 4.00)" in text


def test_the_page_says_no_stock_has_expired_when_none_has() -> None:
    text = _text(dashboard.render(_summary([], [])))

    assert "Expired stock on hand (before 2026-11-22, UTC): none" in text


def test_the_page_says_when_it_shows_only_the_first_expired_lots() -> None:
    expired = [ExpiredLot(**_lot("M-OLD", date(2026, 11, 1), "1", "2.00"), days_expired=21)]
    summary = _summary(expired, [])
    ledger = summary.ledger.model_copy(update={"expired_lots": 5})

    text = _text(dashboard.render(summary.model_copy(update={"ledger": ledger})))

    assert "5 manufacturer lots, value 2.00 ; the first 1 shown" in text
