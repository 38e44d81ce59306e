"""Held receipt lines (one line of a document with several): decided and applied, but nothing
may use their stock until the line is confirmed; cancelled, they leave no trace."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    CancelHeld,
    CommandRejected,
    ConfirmHeld,
    HeldSettled,
    LineAllocated,
    LineWaiting,
    StockReceived,
    StockReturned,
)
from tests.unit.allocation.builders import (
    Book,
    adjust,
    allocate,
    give_back,
    hold,
    item,
    lot,
    receive,
    settle,
    ship,
)


def test_a_held_serial_receipt_takes_its_serials_but_nothing_may_use_them() -> None:
    """R4: a held line's serials are in stock (a second receipt of one is refused); R9, R11:
    no allocation or removal may take them until the line is confirmed."""
    book = Book(item(serialized=True))
    held = hold(book, receive("PO-1/1", 2, serials=["A1", "A2"]))
    assert isinstance(held.decided, StockReceived)
    assert (held.shipment_id, held.line_no) == ("PO-1", 1)
    assert book.state.lots["PO-1/1"].held == 2

    # A sale of any unit waits for the line (`test_waiting.py`); one naming its serial is refused.
    (waiting,) = book.ok(allocate("SO-1", 1))
    assert isinstance(waiting, LineWaiting)
    assert book.state.lots["PO-1/1"].allocated == 0
    refused = book.refused(allocate("SO-2", 1, serials=["A2"]), ReasonCode.SERIAL_NOT_AVAILABLE)
    assert refused.reason == (
        "serial A2 of L is on receipt PO-1 line 1, held until every line of the document is"
        " accepted"
    )
    book.refused(adjust("ADJ-1", "loss", -1, serials=["A2"]), ReasonCode.SERIAL_NOT_AVAILABLE)
    book.refused(receive("PO-2/1", 1, serials=["A2"]), ReasonCode.DUPLICATE_SERIAL)
    book.refused(receive("PO-1/1", 2, serials=["B1", "B2"]), ReasonCode.INVALID_QUANTITY)

    settled, allocated = book.ok(settle(ConfirmHeld, held))
    assert settled == HeldSettled(
        command_id=f"{held.command_id}/settle",
        lic="L",
        held_command_id=held.command_id,
        confirmed=True,
    )
    assert isinstance(allocated, LineAllocated) and allocated.command_id == waiting.command_id
    assert [m.serial for m in allocated.movements] == ["A1"]
    assert book.state.lots["PO-1/1"].held == 0 and not book.state.holds
    book.ok(allocate("SO-2", 1, serials=["A2"]))


def test_a_cancelled_held_receipt_leaves_nothing_but_its_item_lock_and_next_serial() -> None:
    """R7: the cancelled line's inventory lot is gone; R2, R6: the item stays locked and its
    Next Serial moved on."""
    book = Book(item(serialized=True, next_serial="SN-0001"))
    before = book.state
    held = hold(book, receive("PO-1/1", 3, generate=True))
    assert isinstance(held.decided, StockReceived)
    assert held.decided.generated_serials == ("SN-0001", "SN-0002", "SN-0003")
    book.ok(settle(CancelHeld, held))
    state = book.state
    assert (state.lots, state.mfr_lots, state.units, state.holds) == ({}, {}, {}, {})
    assert state.item is not None and before.item is not None
    # Locked (R2) and numbering moved on: a gap, never a serial handed out twice.
    assert state.item.locked and state.item.next_serial == "SN-0004"
    book.ok(receive("PO-1/1", 1, serials=["SN-0001"]))  # the same line, corrected: welcome
    book.refused(settle(ConfirmHeld, held), ReasonCode.UNKNOWN_SHIPMENT)


def test_a_held_lot_tracked_receipt_is_not_picked_by_fefo_until_confirmed() -> None:
    """R9: FEFO skips a held lot, however soon it expires, until it is confirmed."""
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("LATE", 5, expires_on=date(2030, 1, 1))]),
    )
    held = hold(book, receive("PO-2/1", 5, lots=[lot("SOON", 5, expires_on=date(2029, 1, 1))]))
    (allocated,) = book.ok(allocate("SO-1", 2))
    assert {m.mfr_lot for m in allocated.movements} == {"LATE"}  # FEFO would take SOON
    book.ok(settle(ConfirmHeld, held))
    (allocated,) = book.ok(allocate("SO-2", 2))
    assert {m.mfr_lot for m in allocated.movements} == {"SOON"}


def test_a_held_return_cannot_come_back_twice_and_cancelled_is_shipped_again() -> None:
    """R13: a held return's unit is no longer SHIPPED (it cannot come back twice) but not
    AVAILABLE either; cancelled, it is shipped to its customer again, as it was."""
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 2, serials=["A1", "A2"]),
        allocate("SO-1", 2, to="Acme"),
        ship("SO-1"),
    )
    shipped = dict(book.state.shipments)
    held = hold(book, give_back("RMA-1", 1, customer="Acme", serials=["A1"]))
    assert isinstance(held.decided, StockReturned)
    assert book.status("A1") == "held"
    twice = book.refused(
        give_back("RMA-2", 1, customer="Acme", serials=["A1"]), ReasonCode.SERIAL_NOT_SHIPPED
    )
    assert "already coming back on a return held" in twice.reason
    (waiting,) = book.ok(allocate("SO-2", 1))  # waits for the return (`test_waiting.py`)
    assert isinstance(waiting, LineWaiting)

    _, refused = book.ok(settle(CancelHeld, held))
    assert isinstance(refused, CommandRejected) and refused.command_id == waiting.command_id
    (unit,) = [u for u in book.state.units.values() if u.serial == "A1"]
    assert (unit.status.value, unit.customer, unit.shipment_id) == ("shipped", "Acme", "SO-1")
    assert book.state.shipments == shipped
    assert book.lot("PO-1/1") == (0, 0, 2)
    (back,) = book.ok(give_back("RMA-3", 1, customer="Acme", serials=["A1"]))
    assert isinstance(back, StockReturned)


def test_a_line_short_of_stock_on_held_lines_is_told_to_send_again_once_posted() -> None:
    """A line that does not wait for held lines (`test_waiting.py`: here a re-allocation,
    refused at once so its allocation stands) names the held lines at the office and says
    the stock is free once the document posts, not a bare "available 0", which reads as
    stock gone missing. Held lines at another office are not named."""
    book = Book(item())
    book.ok(receive("PO-0/1", 2))
    book.ok(allocate("SO-1", 1))
    hold(book, receive("PO-7/1", 150))
    hold(book, receive("PO-7/2", 30))
    hold(book, receive("PO-8/1", 5, office="EAST"))

    refused = book.refused(allocate("SO-1", 6), ReasonCode.INSUFFICIENT_STOCK)

    assert refused.reason == (
        "item L at office AI: requested 6, available 2, and 180 more on PO-7 lines 1 and 2,"
        " held until every line of the document is accepted: the stock is free once that"
        " document posts, so send this again then"
    )
