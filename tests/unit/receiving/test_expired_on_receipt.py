"""A perishable manufacturer lot already expired on the day it is received (R3, R5, R9).

A purchase or production receipt of such a lot is posted as before (the goods are there: they
may be received to quarantine or to send back), and its `ReceiptPosted` says so at once:
`warnings[]`, one `LOT_EXPIRED_ON_RECEIPT` per expired lot, naming the lot, the dates and what
the clerk can do. "Expired" is allocation's rule (R9): `expires_on` before the date, so a lot
expiring on the receipt day itself is not warned of.
"""

from __future__ import annotations

from datetime import date, timedelta

import orjson
from pydantic import TypeAdapter

from services.receiving import translate
from services.receiving.domain import (
    Item,
    Limits,
    ReceiptLine,
    ReceiptWarning,
    Source,
    check_receipt,
)
from shared.contracts import status
from shared.contracts.codec import encode
from shared.send import describe
from tests.unit.receiving.test_receipt_checks import DAY, GTIN, ITEMS, line, lot, receipt

YESTERDAY = DAY - timedelta(days=1)
LAST_WEEK = DAY - timedelta(days=7)
NEXT_YEAR = date(2027, 11, 2)
# Perishable, lot-tracked, with the GTIN its scans carry.
FISH = Item(lic="FISH", track_mfr_lot=True, perishable=True, gtin=GTIN)
WITH_FISH = {**ITEMS, FISH.lic: FISH}


def warned(*lines: ReceiptLine, source: Source = "purchase") -> tuple[ReceiptWarning, ...]:
    checked = check_receipt(receipt(*lines, source=source), WITH_FISH)
    assert checked.accepted, checked.problems
    return checked.warnings


def test_an_expired_perishable_lot_is_received_with_a_warning_naming_lot_dates_and_remedies() -> (
    None
):
    """R3, R9: lot OLD of MILK expired a week before the receipt: the line is accepted as
    before (one command, its lots as typed), and one warning says what it is and what to do."""
    checked = check_receipt(
        receipt(line("MILK", 5, lots=[lot("OLD", 2, LAST_WEEK), lot("NEW", 3, NEXT_YEAR)])),
        WITH_FISH,
    )
    assert checked.accepted and len(checked.commands) == 1
    (warning,) = checked.warnings
    assert (warning.line_no, warning.lic, warning.code, warning.mfr_lot, warning.expires_on) == (
        1,
        "MILK",
        "LOT_EXPIRED_ON_RECEIPT",
        "OLD",
        LAST_WEEK,
    )
    text = warning.message
    for said in ("OLD", "2026-10-26", "2026-11-02", "7 days", "PO-60006/1", "QuarantineStock"):
        assert said in text, (said, text)
    assert "vendor_return" in text and "return it to the vendor" in text


def test_a_lot_expiring_on_the_receipt_day_is_not_warned_of() -> None:
    """R9: a lot is good through its expiry date (allocation still ships it that day), so a
    lot expiring on the receipt day is sellable stock, not expired; the day before is."""
    assert warned(line("MILK", 1, lots=[lot("TODAY", 1, DAY)])) == ()
    (warning,) = warned(line("MILK", 1, lots=[lot("GONE", 1, YESTERDAY)]))
    assert "1 day before" in warning.message and "1 unit)" in warning.message


def test_a_scanned_expiry_counts_as_a_typed_one() -> None:
    """R5: lots taken from GS1 scans (AI 10 lot, AI 17 expiry) are checked alike."""
    scans = [f"(01){GTIN}(17)261031(10)SCANNED", f"(01){GTIN}(17)271231(10)FRESH"]
    (warning,) = warned(line("FISH", 2, scans=scans))
    assert (warning.mfr_lot, warning.expires_on) == ("SCANNED", date(2026, 10, 31))


def test_lots_of_items_not_perishable_and_customer_returns_are_not_warned_of() -> None:
    """Only a perishable item's expiry makes stock unsellable (R9); a return's units go back
    into the lots they were shipped from, whose expiry is known already."""
    assert warned(line("BOLT", 1, lots=[lot("OLD", 1, LAST_WEEK)])) == ()
    rma = line("MILK", 1, lots=[lot("OLD", 1, LAST_WEEK)])
    assert warned(rma, source="customer_return") == ()


def test_a_production_receipt_is_told_to_write_the_lot_off_not_to_return_it() -> None:
    (warning,) = warned(line("MILK", 1, lots=[lot("OLD", 1, LAST_WEEK)]), source="production")
    assert "QuarantineStock" in warning.message and "loss" in warning.message
    assert "vendor" not in warning.message


def test_every_line_and_lot_is_warned_of_and_the_list_is_bounded() -> None:
    lines = [line("MILK", 1, no=n, lots=[lot(f"L{n}", 1, LAST_WEEK)]) for n in (1, 2, 3)]
    assert [(w.line_no, w.mfr_lot) for w in warned(*lines)] == [(1, "L1"), (2, "L2"), (3, "L3")]
    capped = check_receipt(receipt(*lines), WITH_FISH, Limits(max_warnings=2)).warnings
    assert [w.mfr_lot for w in capped] == ["L1", "L2"]
    assert capped[-1].message.endswith("(1 more expired lot on this receipt not listed)")


def test_a_refused_receipt_has_no_warnings() -> None:
    checked = check_receipt(
        receipt(
            line("MILK", 1, lots=[lot("OLD", 1, LAST_WEEK)]),
            line("MILK", 1, no=2, lots=[lot("UNDATED", 1)]),
        ),
        WITH_FISH,
    )
    assert not checked.accepted and checked.warnings == ()


def test_receipt_posted_carries_the_warnings_on_the_wire_and_send_prints_them() -> None:
    """The contract: `warnings[]` on `ReceiptPosted` (an added field, empty by default: a
    status published before it existed still reads), printed by `send` and `watch`."""
    (warning,) = warned(line("MILK", 1, lots=[lot("OLD", 1, LAST_WEEK)]))
    assert warning.lot_id is not None  # the lot a QuarantineStock of it names
    posted = translate.posted("st-1", "PO-60006", [], answers="m-1", warnings=[warning])
    wire = orjson.loads(encode(posted))
    assert wire["warnings"] == [
        {
            "line_no": 1,
            "lic": "MILK",
            "code": "LOT_EXPIRED_ON_RECEIPT",
            "mfr_lot": "OLD",
            "expires_on": "2026-10-26",
            "lot_id": warning.lot_id,
            "quarantine_id": None,
            "message": warning.message,
        }
    ]
    older = {k: v for k, v in wire.items() if k != "warnings"}
    read = TypeAdapter(status.StatusMessage).validate_python(older)
    assert isinstance(read, status.ReceiptPosted) and read.warnings == []

    printed = describe(wire).splitlines()
    assert printed[0] == "ReceiptPosted"
    assert printed[1] == f"      warning: line 1 MILK LOT_EXPIRED_ON_RECEIPT: {warning.message}"
    assert describe(older) == "ReceiptPosted"
