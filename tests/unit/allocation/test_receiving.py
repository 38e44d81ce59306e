"""Receipts: R3 (mfr lots), R4 (serials), R6 (Next Serial), R7 (inventory lots), quantities."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import SerialStatus, StockReceived
from tests.unit.allocation.builders import DAY, Book, D, item, lot, receive

JAN = date(2024, 1, 31)
FEB = date(2024, 2, 29)


def test_receipt_line_creates_an_open_inventory_lot_at_its_office() -> None:
    """R7: each receipt line creates an open purchase lot, costed at the line's unit cost."""
    book = Book(item(), receive("PO-1/1", 5, office="EE", cost="2.50"))
    row = book.state.lots["PO-1/1"]
    assert (row.office, row.kind, row.status, row.unit_cost) == (
        "EE",
        "purchase",
        "open",
        D("2.50"),
    )
    assert (row.received_qty, row.on_hand, row.used) == (5, 5, 0)


def test_receipt_without_unit_cost_is_costed_at_the_items_estimate() -> None:
    """R7/R16: the est unit cost applies until the actual cost is known."""
    book = Book(item(cost="300.00"), receive("PO-1/1", 1))
    assert book.state.lots["PO-1/1"].unit_cost == D("300.00")


def test_lots_get_increasing_fifo_sequence_numbers() -> None:
    """R7/R9: lots are numbered in the order they are decided: FIFO's tie-break among lots
    received the same day (the receipt date comes first: test_fifo_by_receipt_date.py)."""
    book = Book(item(), receive("PO-1/1", 1), receive("PO-2/1", 1))
    assert book.state.lots["PO-1/1"].seq < book.state.lots["PO-2/1"].seq


def test_the_same_lot_id_cannot_be_received_twice() -> None:
    """R7: a lot id is one document line; receiving it again is refused."""
    book = Book(item(), receive("PO-1/1", 1))
    book.refused(receive("PO-1/1", 1), ReasonCode.INVALID_QUANTITY)


@pytest.mark.parametrize("quantity", ["0", "-1", "NaN", "Infinity"])
def test_receipt_quantity_must_be_positive_and_finite(quantity: str) -> None:
    """DESIGN §4: quantities are > 0."""
    Book(item()).refused(receive("PO-1/1", quantity), ReasonCode.INVALID_QUANTITY)


def test_lot_tracked_receipt_needs_manufacturer_lots() -> None:
    """R3: a lot-tracked line needs one or more manufacturer lots: LOT_REQUIRED."""
    Book(item(track=True)).refused(receive("PO-1/1", 5), ReasonCode.LOT_REQUIRED)


def test_manufacturer_lots_must_sum_to_the_line_quantity() -> None:
    """R3: the lots' quantities sum to the line quantity: INVALID_QUANTITY naming both."""
    book = Book(item(track=True))
    rejection = book.refused(
        receive("PO-1/1", 5, lots=[lot("A", 2, JAN), lot("B", 2, FEB)]),
        ReasonCode.INVALID_QUANTITY,
    )
    assert "4" in rejection.reason and "5" in rejection.reason


def test_perishable_manufacturer_lots_need_an_expiry_date() -> None:
    """R3: each lot of a perishable item carries an expiry date: EXPIRY_REQUIRED."""
    book = Book(item(track=True))
    rejection = book.refused(receive("PO-1/1", 2, lots=[lot("A", 2)]), ReasonCode.EXPIRY_REQUIRED)
    assert rejection.offending == "A"


def test_non_perishable_manufacturer_lots_need_no_expiry() -> None:
    """R1/R3: a lot-tracked item whose perishable flag was cleared takes lots without expiry."""
    book = Book(item(track=True, perishable=False), receive("PO-1/1", 2, lots=[lot("A", 2)]))
    assert book.mfr("PO-1/1", "A") == (2, 0, 0)


def test_one_line_may_carry_several_lots_with_different_expiries() -> None:
    """R3: several manufacturer lots, each with its own expiry."""
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("A", 2, JAN), lot("B", 3, FEB)]))
    assert book.state.mfr_lots[("PO-1/1", "A")].expires_on == JAN
    assert book.state.mfr_lots[("PO-1/1", "B")].initial_qty == 3


def test_the_same_lot_listed_twice_with_one_expiry_is_merged() -> None:
    """R3: one entry per scan of the same lot adds up."""
    book = Book(item(track=True), receive("PO-1/1", 2, lots=[lot("A", 1, JAN), lot("A", 1, JAN)]))
    assert book.mfr("PO-1/1", "A") == (2, 0, 0)


def test_the_same_lot_listed_with_two_expiries_is_refused() -> None:
    """R3: a manufacturer lot has one expiry date."""
    book = Book(item(track=True))
    book.refused(
        receive("PO-1/1", 2, lots=[lot("A", 1, JAN), lot("A", 1, FEB)]),
        ReasonCode.EXPIRY_REQUIRED,
    )


def test_lots_on_an_item_not_tracked_by_lot_are_refused() -> None:
    """R3: manufacturer lots only belong to lot-tracked items."""
    Book(item()).refused(receive("PO-1/1", 1, lots=[lot("A", 1)]), ReasonCode.INVALID_QUANTITY)


def test_receipt_event_lists_each_manufacturer_lot_with_cost_and_expiry() -> None:
    """R15: the event carries every lot movement the ledger records."""
    (event,) = Book(item(track=True)).ok(receive("PO-1/1", 3, lots=[lot("A", 3, JAN)], cost="4"))
    assert isinstance(event, StockReceived)
    (move,) = event.movements
    assert (move.lot_id, move.mfr_lot, move.expires_on, move.quantity, move.unit_cost) == (
        "PO-1/1",
        "A",
        JAN,
        3,
        4,
    )


# -- R4 serials -----------------------------------------------------------------------------


def test_serialized_receipt_needs_exactly_quantity_serials() -> None:
    """R4: exactly `quantity` serials: SERIAL_COUNT_MISMATCH."""
    book = Book(item(serialized=True))
    book.refused(receive("PO-1/1", 3, serials=["1", "2"]), ReasonCode.SERIAL_COUNT_MISMATCH)


def test_serialized_quantities_are_whole() -> None:
    """R4/DESIGN §4: serialized quantities are whole: INVALID_QUANTITY."""
    book = Book(item(serialized=True))
    book.refused(receive("PO-1/1", "1.5", serials=["1"]), ReasonCode.INVALID_QUANTITY)


def test_serials_must_be_unique_in_the_line() -> None:
    """R4: unique in the document: DUPLICATE_SERIAL."""
    book = Book(item(serialized=True))
    rejection = book.refused(receive("PO-1/1", 2, serials=["7", "7"]), ReasonCode.DUPLICATE_SERIAL)
    assert rejection.offending == "7"


def test_a_serial_still_in_stock_cannot_be_received_again() -> None:
    """R4: not held by any unit of that LIC still in stock: DUPLICATE_SERIAL naming it."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["X1"]))
    rejection = book.refused(receive("PO-2/1", 1, serials=["X1"]), ReasonCode.DUPLICATE_SERIAL)
    assert "X1" in rejection.reason


def test_serialized_receipt_without_serials_or_next_serial_is_refused() -> None:
    """R4/R6: no serials and nothing to generate them from: SERIAL_REQUIRED."""
    book = Book(item(serialized=True))
    book.refused(receive("PO-1/1", 2, generate=True), ReasonCode.SERIAL_REQUIRED)


def test_serials_on_an_item_that_is_not_serialized_are_refused() -> None:
    """R4: only serialized items take serials."""
    Book(item()).refused(receive("PO-1/1", 1, serials=["1"]), ReasonCode.SERIAL_COUNT_MISMATCH)


def test_received_serials_become_available_units_of_the_lot() -> None:
    """R4/R7: each serial is one AVAILABLE unit in the new lot."""
    book = Book(item(serialized=True), receive("PO-1/1", 2, serials=["A1", "A2"]))
    units = book.state.units
    assert {u.serial for u in units.values()} == {"A1", "A2"}
    assert all(u.status is SerialStatus.AVAILABLE and u.lot_id == "PO-1/1" for u in units.values())


def test_serials_of_a_lot_tracked_serialized_item_follow_their_lots_in_order() -> None:
    """R3/R4: an item both lot-tracked and serialized: serials fill the lots in listed order."""
    book = Book(
        item(track=True, serialized=True),
        receive("PO-1/1", 3, lots=[lot("A", 1, JAN), lot("B", 2, FEB)], serials=["1", "2", "3"]),
    )
    owners = {u.serial: u.mfr_lot for u in book.state.units.values()}
    assert owners == {"1": "A", "2": "B", "3": "B"}


# -- R6 Next Serial ---------------------------------------------------------------------------


def test_next_serial_hands_out_zero_padded_numeric_serials() -> None:
    """R6: numeric serials shorter than 5 digits get leading zeros; Next Serial moves on."""
    book = Book(item(serialized=True, next_serial="7"))
    (event,) = book.ok(receive("PO-1/1", 2, generate=True))
    assert isinstance(event, StockReceived)
    assert event.generated_serials == ("00007", "00008")
    assert event.next_serial == "00009"
    assert book.state.item is not None and book.state.item.next_serial == "00009"


def test_next_serial_keeps_prefix_and_width() -> None:
    """R6: an alphanumeric Next Serial keeps its prefix and digit width."""
    book = Book(item(serialized=True, next_serial="SN-0098"))
    (event,) = book.ok(receive("PO-1/1", 3, generate=True))
    assert isinstance(event, StockReceived)
    assert event.generated_serials == ("SN-0098", "SN-0099", "SN-0100")


def test_given_serials_do_not_advance_next_serial() -> None:
    """R6: Next Serial only moves when it was used."""
    book = Book(item(serialized=True, next_serial="100"))
    book.ok(receive("PO-1/1", 1, serials=["Z"], generate=True))
    assert book.state.item is not None and book.state.item.next_serial == "100"


def test_generated_serial_colliding_with_stock_is_refused() -> None:
    """R4/R6: a generated serial still in stock: DUPLICATE_SERIAL, Next Serial unchanged."""
    book = Book(item(serialized=True, next_serial="00001"), receive("PO-1/1", 1, serials=["00002"]))
    rejection = book.refused(receive("PO-2/1", 2, generate=True), ReasonCode.DUPLICATE_SERIAL)
    assert rejection.offending == "00002"
    assert book.state.item is not None and book.state.item.next_serial == "00001"


def test_next_serial_without_numeric_tail_cannot_generate() -> None:
    """R6: a Next Serial with no digits to count on: SERIAL_REQUIRED."""
    book = Book(item(serialized=True, next_serial="ABC"))
    book.refused(receive("PO-1/1", 1, generate=True), ReasonCode.SERIAL_REQUIRED)


def test_oversized_serialized_line_is_refused_not_generated() -> None:
    """R5: a sane upper size per line."""
    book = Book(item(serialized=True, next_serial="1"))
    book.refused(receive("PO-1/1", 10**7, generate=True), ReasonCode.INVALID_QUANTITY)


def test_quantity_decimal_is_kept_exactly() -> None:
    """Quantities are decimals: no float rounding."""
    book = Book(item(), receive("PO-1/1", "0.1"), receive("PO-2/1", "0.2"))
    assert sum(r.on_hand for r in book.state.lots.values()) == Decimal("0.3")
    assert DAY.year == 2023
