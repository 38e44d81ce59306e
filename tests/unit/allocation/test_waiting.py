"""Sale lines short of stock only while held receipt or return lines hold some at their office
wait for those lines to settle, then are decided once (`domain/waiting.py`). In a backlog, a
sale queued behind a receipt of several lines is decided before receiving confirms them: it
must get the stock, not a refusal of stock that is on hand."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from services.allocation.domain.decide import decide, decide_all
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    AllocateLine,
    CancelHeld,
    CommandRejected,
    ConfirmHeld,
    HeldSettled,
    LineAllocated,
    LineHeld,
    LineWaiting,
    LotPick,
)
from tests.unit.allocation.builders import (
    Book,
    allocate,
    give_back,
    hold,
    item,
    lot,
    receive,
    settle,
    ship,
)


def _confirm(held: LineHeld) -> ConfirmHeld | CancelHeld:
    return settle(ConfirmHeld, held)


def _cancel(held: LineHeld) -> ConfirmHeld | CancelHeld:
    return settle(CancelHeld, held)


def _waits(book: Book, line: AllocateLine) -> LineWaiting:
    (event,) = book.ok(line)
    assert isinstance(event, LineWaiting), event
    return event


def test_a_sale_short_while_a_receipt_is_held_waits_and_is_allocated_on_confirm() -> None:
    book = Book(item())
    book.ok(receive("PO-0/1", 2))
    first = hold(book, receive("PO-7/1", 150))
    second = hold(book, receive("PO-7/2", 30))
    sale = allocate("SO-1", 6)

    waiting = _waits(book, sale)

    assert waiting.awaits == (first.command_id, second.command_id)
    assert waiting.held == (("PO-7", 1), ("PO-7", 2))
    assert book.lot("PO-0/1") == (2, 0, 0)  # it took nothing meanwhile
    assert not book.state.allocations
    assert book.state.item is not None and book.state.item.locked  # R2: it names the item

    # One of its holds settled: it waits on for the other.
    (settled,) = book.ok(_confirm(first))
    assert isinstance(settled, HeldSettled)
    assert list(book.state.waiting) == [sale.message_id]

    settled, allocated = book.ok(_confirm(second))

    assert isinstance(settled, HeldSettled) and settled.confirmed
    assert isinstance(allocated, LineAllocated)
    assert allocated.command_id == sale.message_id
    assert (allocated.shipment_id, allocated.line_no, allocated.quantity) == ("SO-1", 1, 6)
    # FIFO (R9), as if it had come now: the old lot first, then the first confirmed one.
    assert [(m.lot_id, m.quantity) for m in allocated.movements] == [
        ("PO-0/1", 2),
        ("PO-7/1", 4),
    ]
    assert not book.state.waiting
    book.ok(ship("SO-1"))


def test_a_waiting_sale_whose_receipt_is_cancelled_is_refused_short_of_stock() -> None:
    book = Book(item())
    book.ok(receive("PO-0/1", 2))
    held = hold(book, receive("PO-7/1", 150))
    sale = allocate("SO-1", 6)
    _waits(book, sale)

    settled, refused = book.ok(_cancel(held))

    assert isinstance(settled, HeldSettled) and not settled.confirmed
    assert isinstance(refused, CommandRejected)
    assert (refused.command_id, refused.reason_code) == (
        sale.message_id,
        ReasonCode.INSUFFICIENT_STOCK,
    )
    assert (refused.shipment_id, refused.line_no) == ("SO-1", 1)
    assert refused.reason == "item L at office AI: requested 6, available 2"
    assert not book.state.waiting and not book.state.allocations
    assert book.lot("PO-0/1") == (2, 0, 0)


def test_a_sale_waits_for_a_held_customer_return_too() -> None:
    book = Book(item())
    book.ok(receive("PO-0/1", 3))
    book.ok(allocate("SO-0", 3))
    book.ok(ship("SO-0"))
    held = hold(book, give_back("RMA-1", 2))
    sale = allocate("SO-1", 2)
    _waits(book, sale)

    _, allocated = book.ok(_confirm(held))

    assert isinstance(allocated, LineAllocated) and allocated.command_id == sale.message_id
    assert [(m.lot_id, m.quantity) for m in allocated.movements] == [("PO-0/1", 2)]


def test_held_lines_at_another_office_do_not_make_a_sale_wait() -> None:
    book = Book(item())
    book.ok(receive("PO-0/1", 2))
    hold(book, receive("PO-8/1", 50, office="EAST"))

    refused = book.refused(allocate("SO-1", 6), ReasonCode.INSUFFICIENT_STOCK)

    assert "PO-8" not in refused.reason
    assert not book.state.waiting


def test_only_a_plain_new_sale_waits() -> None:
    """A return to vendor names its stock, a named lot is refused as it says, and a
    re-allocation is refused at once so the allocation it would replace stands."""
    book = Book(item(track=True, perishable=False))
    book.ok(receive("PO-0/1", 2, lots=[lot("M0", 2)]))
    book.ok(allocate("SO-9", 1))
    hold(book, receive("PO-7/1", 50, lots=[lot("M7", 50)]))

    book.refused(
        allocate(
            "RTV-1",
            5,
            kind="vendor_return",
            to="Vendor",
            lots=[LotPick(mfr_lot="M0", quantity=Decimal(5))],
        ),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    book.refused(
        allocate("SO-1", 5, lots=[LotPick(mfr_lot="M0", quantity=Decimal(5))]),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    refused = book.refused(allocate("SO-9", 6), ReasonCode.INSUFFICIENT_STOCK)

    assert "held until every line of the document is accepted" in refused.reason
    assert book.state.allocations[("SO-9", 1)].quantity == 1  # the allocation stands
    assert not book.state.waiting


def test_waiting_sales_are_decided_in_the_order_they_came() -> None:
    book = Book(item())
    held = hold(book, receive("PO-7/1", 10))
    first, second, third = allocate("SO-1", 6), allocate("SO-2", 6), allocate("SO-3", 4)
    for sale in (first, second, third):
        _waits(book, sale)

    _, *answers = book.ok(_confirm(held))

    assert [(type(a).__name__, a.command_id) for a in answers] == [
        ("LineAllocated", first.message_id),
        ("CommandRejected", second.message_id),
        ("LineAllocated", third.message_id),
    ]
    rejected = answers[1]
    assert isinstance(rejected, CommandRejected)
    assert rejected.reason == "item L at office AI: requested 6, available 4"


def test_a_waiting_sale_is_decided_once_its_own_holds_settle_whatever_came_after() -> None:
    """It never waits twice: a stream of new held receipts cannot keep it waiting."""
    book = Book(item())
    earlier = hold(book, receive("PO-7/1", 2))
    sale = allocate("SO-1", 6)
    _waits(book, sale)
    later = hold(book, receive("PO-8/1", 50))
    assert book.state.waiting[sale.message_id].awaits == (earlier.command_id,)

    _, refused = book.ok(_confirm(earlier))

    assert isinstance(refused, CommandRejected) and refused.command_id == sale.message_id
    assert "50 more on PO-8 line 1, held until" in refused.reason
    book.ok(_confirm(later))
    book.ok(allocate("SO-2", 52))


def test_a_sale_behind_a_waiting_one_waits_too_so_the_earlier_order_is_served_first() -> None:
    """20 free, two deliveries of 30 held: an order of 80 waits for them; a later order of 10,
    which the free stock would cover, waits behind it. Once both deliveries are confirmed, the
    order of 80 gets all of it and the later one is refused, as without the backlog. A sale at
    another office is not held up."""
    book = Book(item())
    book.ok(receive("PO-0/1", 20))
    book.ok(receive("PO-E/1", 5, office="EAST"))
    first = hold(book, receive("GRN-1/1", 30))
    second = hold(book, receive("GRN-1/2", 30))
    big, small = allocate("SO-1", 80), allocate("SO-2", 10)
    _waits(book, big)

    queued = _waits(book, small)

    assert queued.behind == (("SO-1", 1),)
    assert queued.awaits == (first.command_id, second.command_id)
    assert book.lot("PO-0/1") == (20, 0, 0)
    (elsewhere,) = book.ok(allocate("SO-3", 5, office="EAST"))
    assert isinstance(elsewhere, LineAllocated)
    book.ok(_confirm(first))
    assert set(book.state.waiting) == {big.message_id, small.message_id}

    _, allocated, refused = book.ok(_confirm(second))

    assert isinstance(allocated, LineAllocated) and allocated.command_id == big.message_id
    assert allocated.quantity == 80
    assert isinstance(refused, CommandRejected) and refused.command_id == small.message_id
    assert refused.reason == "item L at office AI: requested 10, available 0"


def test_a_batch_decides_waiting_lines_as_one_command_at_a_time_does() -> None:
    book = Book(item())
    book.ok(receive("PO-0/1", 2))
    commands = [
        replace(receive("PO-7/1", 5), hold=True),
        replace(receive("PO-7/2", 5), hold=True),
        allocate("SO-1", 6),
        allocate("SO-2", 1),
    ]
    commands += [
        ConfirmHeld(message_id="c1", lic="L", command_id=commands[0].message_id),
        CancelHeld(message_id="c2", lic="L", command_id=commands[1].message_id),
    ]
    state, events = decide_all(book.state, commands)

    one_by_one = []
    for command in commands:
        decision = decide(book.state, command)
        book.state = decision.state
        one_by_one.extend(decision.events)
    assert events == one_by_one
    assert state.allocations == book.state.allocations and not state.waiting
    assert [type(e).__name__ for e in events] == [
        "LineHeld",
        "LineHeld",
        "LineWaiting",
        "LineWaiting",  # SO-2, behind SO-1
        "HeldSettled",
        "HeldSettled",
        "LineAllocated",
        "LineAllocated",
    ]
