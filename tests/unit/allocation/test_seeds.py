"""The seed documents' own examples, end to end through decide()."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.adjusting import EXCEEDS_USED
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import LineShipped, SerialStatus
from tests.unit.allocation.builders import (
    Book,
    D,
    adjust,
    allocate,
    item,
    lot,
    receive,
    ship,
)

LIC = "DC-IP3VO-4"


def test_lot_of_ten_one_sold_two_found() -> None:
    """R11 (returns-and-adjustments seed): 10 in the lot, 1 sold, 2 found in storage.

    Adding both to the lot is refused; reversing one unit of usage with a count works and the
    other unit goes in with a beginning balance (a lot number seen before is allowed).
    """
    expiry = date(2025, 1, 1)
    book = Book(
        item(track=True),
        receive("PO-1/1", 10, lots=[lot("MFR-1", 10, expiry)]),
        allocate("S-1", 1, lots=[]),
        ship("S-1"),
    )
    rejection = book.refused(
        adjust("ADJ-1", "count", 2, lots=[lot("MFR-1", 2)]), ReasonCode.LOT_QTY_EXCEEDS_USED
    )
    assert rejection.reason.startswith(EXCEEDS_USED)
    book.ok(adjust("ADJ-1", "count", 1, lots=[lot("MFR-1", 1)]))
    assert book.mfr("PO-1/1", "MFR-1") == (10, 0, 0)
    book.ok(adjust("ADJ-2", "beginning_balance", 1, lots=[lot("MFR-1", 1, expiry)]))
    assert book.mfr("ADJ-2/L/BB", "MFR-1") == (1, 0, 0)
    on_hand = sum(row.on_hand for row in book.state.mfr_lots.values() if row.mfr_lot == "MFR-1")
    assert on_hand == 11


def test_document_camera_received_on_po_60006_one_shipped_to_montboro() -> None:
    """R4, R7, R9, R10 (serial-numbers seed): DC-IP3VO-4, est cost 300.00, PO-60006 at
    office AI with serials 134593568 and 200937842; 200937842 ships to Montboro High School
    East, 134593568 stays available."""
    book = Book(
        item(LIC, serialized=True, cost="300.00"),
        receive("PO-60006/1", 2, lic=LIC, office="AI", serials=["134593568", "200937842"]),
        lic=LIC,
    )
    lot_row = book.state.lots["PO-60006/1"]
    assert (lot_row.received_qty, lot_row.unit_cost, lot_row.office) == (2, D("300.00"), "AI")
    book.ok(
        allocate(
            "60007",
            1,
            lic=LIC,
            office="AI",
            to="Montboro High School East",
            serials=["200937842"],
        )
    )
    (event,) = book.ok(ship("60007", lic=LIC))
    assert isinstance(event, LineShipped) and event.total_cost == D("300.00")
    units = {u.serial: u for u in book.state.units.values()}
    assert units["200937842"].status is SerialStatus.SHIPPED
    assert units["200937842"].customer == "Montboro High School East"
    assert units["134593568"].status is SerialStatus.AVAILABLE
    assert book.lot("PO-60006/1") == (1, 0, 1)
