"""A refused receipt's answer stays publishable and readable however many problems it has.

Every lot of a line is checked (R3), so a line of 10,000 lots without expiry dates (or
100,000 scans of a lot without AI 17) used to give one problem per lot, and a document within
the 8 MiB upstream limit a `ReceiptRejected` of about 300 MB: over what lotline publishes
(`MAX_EVENT_BYTES`), so the relay parked it and the document was never answered. Each line
lists its first problems, the document a bounded number beyond each failing line's first, and
the last problem listed says how many more there are.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.receiving import translate
from services.receiving.domain import (
    Item,
    Limits,
    LotEntry,
    Receipt,
    ReceiptLine,
    check_receipt,
)
from shared.contracts.codec import MAX_EVENT_BYTES, encode
from shared.reasons import ReasonCode

DAY = date(2026, 11, 2)
MILK = Item(lic="MILK", track_mfr_lot=True, perishable=True)


def _line(no: int, lic: str, lots: int) -> ReceiptLine:
    return ReceiptLine(
        line_no=no,
        lic=lic,
        quantity=Decimal(lots),
        lots=tuple(LotEntry(mfr_lot=f"L{n}", quantity=Decimal(1)) for n in range(lots)),
    )


def _receipt(*lines: ReceiptLine) -> Receipt:
    return Receipt(
        message_id="m-1",
        shipment_id="PO-1",
        office="AI",
        source="purchase",
        received_on=DAY,
        lines=lines,
    )


def test_a_line_lists_its_first_problems_and_says_how_many_more_there_are() -> None:
    limits = Limits()
    checked = check_receipt(_receipt(_line(1, "MILK", 10_000)), {"MILK": MILK}, limits)
    problems = checked.problems
    assert len(problems) == limits.max_problems_per_line
    assert all(p.reason_code is ReasonCode.EXPIRY_REQUIRED for p in problems)
    assert [p.offending for p in problems] == [f"L{n}" for n in range(len(problems))]
    hidden = 10_000 - limits.max_problems_per_line
    assert f"{hidden} more problems of line 1 not listed" in problems[-1].reason


def test_every_failing_line_is_listed_while_the_document_lists_a_bounded_number() -> None:
    limits = Limits(max_problems_per_line=10, max_problems=50)
    lines = [_line(n, "MILK", 20) for n in range(1, 101)]
    problems = check_receipt(_receipt(*lines), {"MILK": MILK}, limits).problems
    assert {p.line_no for p in problems} == set(range(1, 101))  # every failing line named
    assert len(problems) == 100 + 50  # each line's first, and 50 more
    first_lines = [p for p in problems if p.line_no == 1]
    assert len(first_lines) == 10
    last_lines = [p for p in problems if p.line_no == 100]
    assert len(last_lines) == 1
    assert "19 more problems of line 100 not listed" in last_lines[0].reason


def test_the_refusal_of_a_document_within_the_upstream_limit_can_be_published() -> None:
    """The worst case measured: 25 lines of 10,000 lots without expiry, each line naming an
    item of 128 four-byte characters (about 8 MB of JSON upstream)."""
    lic = "\U0001d538" * 128
    item = Item(lic=lic, track_mfr_lot=True, perishable=True)
    lines = [_line(n, lic, 10_000) for n in range(1, 26)]
    checked = check_receipt(_receipt(*lines), {lic: item})
    status = translate.rejected("m-1/rejected", "PO-1", checked.problems, answers="m-1")
    assert {p.line_no for p in status.problems} == set(range(1, 26))
    assert len(encode(status)) < MAX_EVENT_BYTES // 10
