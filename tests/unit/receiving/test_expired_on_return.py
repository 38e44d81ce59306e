"""A customer return that puts back a perishable manufacturer lot already expired (R9, R13).

A return's units go back into the inventory lots they were shipped from, whose expiry the
document need not carry: allocation's answer (`StockReturned.movements`, passed through as the
posted line's `movements`) tells it. The return is posted as before, and its `ReceiptPosted`
says so: one `LOT_EXPIRED_ON_RETURN` per line, manufacturer lot and inventory lot whose
`expires_on` is before the return's `received_on`, naming the units, both dates, the inventory
lot and what to do. A lot expiring on the return day itself is not expired, as for a receipt.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson
from pydantic import TypeAdapter

from services.receiving import translate
from services.receiving.domain import (
    Item,
    Posting,
    ReceiptWarning,
    Source,
    posting_warnings,
)
from shared.contracts import events, status
from shared.contracts.codec import encode
from shared.send import describe

RETURNED_ON = date(2026, 12, 5)
EXPIRED = date(2026, 12, 1)
FRESH = date(2027, 6, 30)
ITEMS = {
    i.lic: i
    for i in (
        Item(lic="FISH", track_mfr_lot=True, perishable=True),
        Item(lic="BOLT", track_mfr_lot=True, perishable=False),
        Item(lic="VAX", track_mfr_lot=True, perishable=True, serialized=True),
    )
}


def moved(
    mfr_lot: str,
    expires_on: date | None,
    quantity: int = 1,
    *,
    lot_id: str = "PO-1/1",
    serial: str | None = None,
) -> events.Movement:
    return events.Movement(
        lot_id=lot_id,
        mfr_lot=mfr_lot,
        expires_on=expires_on,
        serial=serial,
        quantity=Decimal(quantity),
        unit_cost=Decimal("3"),
    )


def posted(lic: str, *movements: events.Movement, no: int = 1) -> status.LineResult:
    """A posted line as receiving holds it: allocation's answer, passed through."""
    quantity = sum((m.quantity for m in movements), Decimal(0))
    return status.LineResult(line_no=no, lic=lic, quantity=quantity, movements=list(movements))


def warned(
    *lines: status.LineResult,
    source: Source = "customer_return",
    stored: tuple[ReceiptWarning, ...] = (),
    limit: int = 100,
) -> tuple[ReceiptWarning, ...]:
    posting = Posting(source=source, received_on=RETURNED_ON, lines=lines, stored=stored)
    return posting_warnings(posting, ITEMS, limit)


def test_a_return_of_an_expired_lot_is_warned_of_naming_lot_units_dates_and_remedies() -> None:
    """R9, R13 (RMA-11): 5 units of lot L-X, expired 2026-12-01, returned on 2026-12-05 into
    inventory lot PO-1/1: one warning saying what it is and what to do."""
    (warning,) = warned(posted("FISH", moved("L-X", EXPIRED, 5), moved("L-Y", FRESH, 2)))
    assert (warning.line_no, warning.lic, warning.code, warning.mfr_lot, warning.expires_on) == (
        1,
        "FISH",
        "LOT_EXPIRED_ON_RETURN",
        "L-X",
        EXPIRED,
    )
    text = warning.message
    for said in ("L-X", "5 units", "2026-12-01", "2026-12-05", "4 days", "PO-1/1"):
        assert said in text, (said, text)
    assert "QuarantineStock with lic FISH, mfr_lot L-X, lot_id PO-1/1" in text
    assert "AdjustInventory of kind loss naming lot L-X" in text
    assert "vendor" not in text


def test_a_lot_expiring_on_the_return_day_is_not_warned_of() -> None:
    """R9: a lot is good through its expiry date; the day before, it is expired."""
    assert warned(posted("FISH", moved("TODAY", RETURNED_ON, 3))) == ()
    (warning,) = warned(posted("FISH", moved("GONE", date(2026, 12, 4))))
    assert "1 day before" in warning.message and "1 unit)" in warning.message


def test_serialized_units_of_an_expired_lot_count_by_their_lot() -> None:
    """One movement per serial: the units of one lot make one warning, counted."""
    line = posted(
        "VAX",
        moved("L-X", EXPIRED, serial="V1"),
        moved("L-Y", FRESH, serial="V2"),
        moved("L-X", EXPIRED, serial="V3"),
        moved("L-X", EXPIRED, serial="V4"),
    )
    (warning,) = warned(line)
    assert (warning.mfr_lot, warning.code) == ("L-X", "LOT_EXPIRED_ON_RETURN")
    assert "3 units" in warning.message


def test_a_lot_back_in_two_inventory_lots_is_warned_of_for_each() -> None:
    """Each inventory lot it went back into is quarantined on its own: one warning each, with
    its own units; every line is warned of, in line order."""
    first = posted(
        "FISH",
        moved("L-X", EXPIRED, 2, lot_id="PO-1/1"),
        moved("L-X", EXPIRED, 3, lot_id="PO-2/1"),
    )
    second = posted("FISH", moved("L-Z", EXPIRED, 1, lot_id="PO-3/1"), no=2)
    warnings = warned(first, second)
    assert [(w.line_no, w.mfr_lot) for w in warnings] == [(1, "L-X"), (1, "L-X"), (2, "L-Z")]
    assert "2 units" in warnings[0].message and "inventory lot PO-1/1" in warnings[0].message
    assert "3 units" in warnings[1].message and "inventory lot PO-2/1" in warnings[1].message


def test_lots_of_items_not_perishable_and_other_receipts_are_not_read() -> None:
    """Allocation ignores a lot's expiry when the item is not perishable (R9); a purchase's
    expired lots were warned of when it was checked (`LOT_EXPIRED_ON_RECEIPT`, stored), so
    its posted lines add nothing."""
    assert warned(posted("BOLT", moved("OLD", EXPIRED, 2))) == ()
    assert warned(posted("FISH", moved("L-X", EXPIRED, 2)), source="purchase") == ()
    stored = _stored("OLD")
    assert warned(posted("FISH", moved("OLD", EXPIRED)), source="purchase", stored=stored) == (
        stored
    )


def test_the_stored_warnings_come_first_and_the_list_is_bounded_in_all() -> None:
    lines = [posted("FISH", moved(f"L{n}", EXPIRED), no=n) for n in (1, 2, 3)]
    both = warned(*lines, stored=_stored("S1"))
    assert [(w.code, w.mfr_lot) for w in both] == [
        ("LOT_EXPIRED_ON_RECEIPT", "S1"),
        ("LOT_EXPIRED_ON_RETURN", "L1"),
        ("LOT_EXPIRED_ON_RETURN", "L2"),
        ("LOT_EXPIRED_ON_RETURN", "L3"),
    ]
    capped = warned(*lines, stored=_stored("S1"), limit=2)
    assert [w.mfr_lot for w in capped] == ["S1", "L1"]
    assert capped[-1].message.endswith("(2 more expired lots on this receipt not listed)")


def test_receipt_posted_carries_a_return_warning_on_the_wire_and_send_prints_it() -> None:
    """The contract: the new code is one of `ReceiptWarning.code`'s, read back by dashboards."""
    (warning,) = warned(posted("FISH", moved("L-X", EXPIRED, 5)))
    message = translate.posted("st-1", "RMA-11", [], answers="m-1", warnings=[warning])
    wire = orjson.loads(encode(message))
    assert wire["warnings"] == [
        {
            "line_no": 1,
            "lic": "FISH",
            "code": "LOT_EXPIRED_ON_RETURN",
            "mfr_lot": "L-X",
            "expires_on": "2026-12-01",
            "lot_id": warning.lot_id,
            "quarantine_id": None,
            "message": warning.message,
        }
    ]
    read = TypeAdapter(status.StatusMessage).validate_python(wire)
    assert isinstance(read, status.ReceiptPosted)
    assert [w.code for w in read.warnings] == ["LOT_EXPIRED_ON_RETURN"]
    printed = describe(wire).splitlines()
    assert printed[1] == f"      warning: line 1 FISH LOT_EXPIRED_ON_RETURN: {warning.message}"


def _stored(mfr_lot: str) -> tuple[ReceiptWarning, ...]:
    """A warning found when the document was checked."""
    return (
        ReceiptWarning(
            line_no=1,
            lic="FISH",
            code="LOT_EXPIRED_ON_RECEIPT",
            mfr_lot=mfr_lot,
            expires_on=EXPIRED,
            message=f"manufacturer lot {mfr_lot} is expired",
        ),
    )
