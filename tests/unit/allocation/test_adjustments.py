"""Adjustments: R11 (beginning balance, count, loss) and R12 (unallocated usage)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.adjusting import EXCEEDS_USED
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    COST_STEP,
    InventoryAdjusted,
    LineRefusal,
    UnallocatedStock,
)
from tests.unit.allocation.builders import Book, D, adjust, allocate, item, lot, receive, ship

LATE = date(2024, 6, 1)


def adjusted(events: tuple[object, ...]) -> InventoryAdjusted:
    (event,) = events
    assert isinstance(event, InventoryAdjusted)
    return event


def test_beginning_balance_creates_a_new_adjustment_lot() -> None:
    """R11: a beginning balance always creates a new adjustment lot."""
    book = Book(item(cost="5.00"))
    event = adjusted(book.ok(adjust("ADJ-1", "beginning_balance", 4)))
    row = book.state.lots["ADJ-1/L/BB"]
    assert (row.kind, row.reference, row.on_hand, row.unit_cost) == ("adjustment", "ADJ-1", 4, 5)
    assert event.lot_id == "ADJ-1/L/BB" and event.movements[0].quantity == 4


def test_one_adjustment_gives_each_item_and_each_line_its_own_lot() -> None:
    """R11: one adjustment document covers many items (and may add to one item twice); lot
    ids are unique across items, so each beginning balance names a lot of its own."""
    first, second = Book(item("A"), lic="A"), Book(item("B"), lic="B")
    assert adjusted(first.ok(adjust("ADJ-1", "beginning_balance", 1, lic="A"))).lot_id == (
        "ADJ-1/A/BB"
    )
    assert adjusted(second.ok(adjust("ADJ-1", "beginning_balance", 1, lic="B"))).lot_id == (
        "ADJ-1/B/BB"
    )
    again = adjusted(first.ok(adjust("ADJ-1", "beginning_balance", 2, lic="A", office="NY")))
    assert again.lot_id == "ADJ-1/A/BB2"
    on_hand = {k: v.on_hand for k, v in first.state.lots.items()}
    assert on_hand == {"ADJ-1/A/BB": 1, "ADJ-1/A/BB2": 2}


def test_beginning_balance_must_add() -> None:
    """R11: beginning_balance adds; a negative one is INVALID_QUANTITY."""
    Book(item()).refused(adjust("ADJ-1", "beginning_balance", -1), ReasonCode.INVALID_QUANTITY)


def test_zero_adjustment_is_refused() -> None:
    """DESIGN §4: an adjustment's signed quantity is never zero."""
    Book(item()).refused(adjust("ADJ-1", "count", 0), ReasonCode.INVALID_QUANTITY)


def test_beginning_balance_of_a_lot_tracked_item_names_its_lots() -> None:
    """R11: lot-tracked adjustments must name their lots: LOT_REQUIRED."""
    Book(item(track=True)).refused(adjust("ADJ-1", "beginning_balance", 1), ReasonCode.LOT_REQUIRED)


def test_beginning_balance_may_reuse_a_manufacturer_lot_number() -> None:
    """R11: a manufacturer lot number seen before is allowed."""
    book = Book(item(track=True), receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]))
    book.ok(adjust("ADJ-1", "beginning_balance", 1, lots=[lot("A", 1, LATE)]))
    assert book.mfr("ADJ-1/L/BB", "A") == (1, 0, 0)


def test_beginning_balance_refuses_a_serial_still_in_stock() -> None:
    """R11: a serial still in stock is not allowed: DUPLICATE_SERIAL."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["S1"]))
    book.refused(
        adjust("ADJ-1", "beginning_balance", 1, serials=["S1"]), ReasonCode.DUPLICATE_SERIAL
    )


def test_beginning_balance_accepts_a_serial_that_left_stock() -> None:
    """R11: a shipped serial may come back as new stock in a new lot."""
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1, serials=["S1"]),
        allocate("S-1", 1),
        ship("S-1"),
    )
    book.ok(adjust("ADJ-1", "beginning_balance", 1, serials=["S1"]))
    assert book.status("S1") == "available,shipped"


def test_beginning_balance_of_a_serialized_item_names_its_serials() -> None:
    """R11: serialized adjustments must name serials: SERIAL_REQUIRED."""
    Book(item(serialized=True)).refused(
        adjust("ADJ-1", "beginning_balance", 1), ReasonCode.SERIAL_REQUIRED
    )


def test_loss_removes_named_manufacturer_lot_stock() -> None:
    """R11: removing takes the named stock out of use."""
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]))
    event = adjusted(book.ok(adjust("ADJ-1", "loss", -2, lots=[lot("A", 2)])))
    assert [(m.mfr_lot, m.quantity) for m in event.movements] == [("A", -2)]
    assert book.mfr("PO-1/1", "A") == (3, 0, 2) and book.lot("PO-1/1") == (3, 0, 2)


def test_removal_of_a_lot_tracked_item_must_name_lots() -> None:
    """R11: LOT_REQUIRED when a lot-tracked count names no lots."""
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]))
    book.refused(adjust("ADJ-1", "count", -1), ReasonCode.LOT_REQUIRED)


def test_removal_of_an_unknown_lot_is_refused() -> None:
    """R11: LOT_NOT_FOUND when the named lot is not at the office."""
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]))
    book.refused(adjust("ADJ-1", "count", -1, lots=[lot("Z", 1)]), ReasonCode.LOT_NOT_FOUND)


def test_removal_cannot_take_allocated_stock() -> None:
    """R11: only free stock can be removed: INSUFFICIENT_STOCK."""
    book = Book(item(track=True), receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]))
    book.ok(allocate("S-1", 2))
    book.refused(adjust("ADJ-1", "loss", -1, lots=[lot("A", 1)]), ReasonCode.INSUFFICIENT_STOCK)


def test_removal_of_serials_marks_them_removed() -> None:
    """R11: the serials entered are removed from use."""
    book = Book(item(serialized=True), receive("PO-1/1", 2, serials=["1", "2"]))
    book.ok(adjust("ADJ-1", "loss", -1, serials=["2"]))
    assert book.status("2") == "removed" and book.lot("PO-1/1") == (1, 0, 1)


def test_removal_of_a_serialized_item_must_name_serials() -> None:
    """R11: SERIAL_REQUIRED."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["1"]))
    book.refused(adjust("ADJ-1", "count", -1), ReasonCode.SERIAL_REQUIRED)


def test_removal_of_a_serial_not_in_stock_is_refused() -> None:
    """R11: SERIAL_NOT_AVAILABLE."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["1"]))
    book.refused(adjust("ADJ-1", "count", -1, serials=["9"]), ReasonCode.SERIAL_NOT_AVAILABLE)


def test_plain_removal_goes_fifo_and_closes_emptied_lots() -> None:
    """R11: plain items lose their oldest free stock first."""
    book = Book(item(), receive("PO-1/1", 2), receive("PO-2/1", 2))
    event = adjusted(book.ok(adjust("ADJ-1", "count", -3)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-1/1", -2), ("PO-2/1", -1)]
    assert event.closed_lots == ("PO-1/1",)


def test_plain_removal_beyond_stock_is_refused() -> None:
    """R11: INSUFFICIENT_STOCK."""
    book = Book(item(), receive("PO-1/1", 2))
    book.refused(adjust("ADJ-1", "loss", -3), ReasonCode.INSUFFICIENT_STOCK)


def test_count_puts_back_at_most_what_was_used_from_the_lot() -> None:
    """R11: LOT_QTY_EXCEEDS_USED, 'adjusted quantity exceeds the previously used quantity'."""
    book = Book(item(track=True), receive("PO-1/1", 10, lots=[lot("A", 10, LATE)]))
    rejection = book.refused(
        adjust("ADJ-1", "count", 1, lots=[lot("A", 1)]), ReasonCode.LOT_QTY_EXCEEDS_USED
    )
    assert EXCEEDS_USED in rejection.reason and rejection.adjustment_id == "ADJ-1"


def test_count_that_adds_to_an_unknown_lot_is_refused() -> None:
    """R11: reversing usage needs an existing manufacturer lot: LOT_NOT_FOUND."""
    book = Book(item(track=True), receive("PO-1/1", 1, lots=[lot("A", 1, LATE)]))
    book.refused(adjust("ADJ-1", "count", 1, lots=[lot("B", 1)]), ReasonCode.LOT_NOT_FOUND)


def test_count_finds_a_removed_serial_again() -> None:
    """R11: a removed serial counted back is available again."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["1"]))
    book.ok(adjust("ADJ-1", "loss", -1, serials=["1"]))
    assert book.state.lots["PO-1/1"].status == "closed"
    event = adjusted(book.ok(adjust("ADJ-2", "count", 1, serials=["1"])))
    assert event.reopened_lots == ("PO-1/1",)
    assert book.status("1") == "available" and book.lot("PO-1/1") == (1, 0, 0)


def test_lots_named_beside_adjusted_serials_must_hold_them() -> None:
    """R11 with R9's rule for lots beside serials: a count or loss of a lot-tracked serialized
    item may name lots with its serials; they must hold those serials, never be dropped unread
    (serial 1 is in lot A: a loss naming B for it, or a lot never received, is refused)."""
    book = Book(
        item(track=True, serialized=True, perishable=False),
        receive("PO-1/1", 3, lots=[lot("A", 2), lot("B", 1)], serials=["1", "2", "3"]),
    )
    never = book.refused(
        adjust("ADJ-1", "loss", -1, lots=[lot("ZZZ", 1)], serials=["1"]), ReasonCode.LOT_NOT_FOUND
    )
    assert never.offending == "ZZZ"
    other = book.refused(
        adjust("ADJ-1", "loss", -1, lots=[lot("B", 1)], serials=["1"]), ReasonCode.INVALID_QUANTITY
    )
    assert other.offending == "B"
    event = adjusted(
        book.ok(adjust("ADJ-1", "loss", -2, lots=[lot("A", 1), lot("B", 1)], serials=["1", "3"]))
    )
    assert [(m.serial, m.mfr_lot) for m in event.movements] == [("1", "A"), ("3", "B")]
    # Counted back: the same check against the units the serials bring back.
    back = book.refused(
        adjust("ADJ-2", "count", 1, lots=[lot("A", 1)], serials=["3"]), ReasonCode.INVALID_QUANTITY
    )
    assert back.offending == "A"
    assert book.status("3") == "removed"
    event = adjusted(book.ok(adjust("ADJ-2", "count", 1, lots=[lot("B", 1)], serials=["3"])))
    assert [(m.serial, m.mfr_lot) for m in event.movements] == [("3", "B")]


def test_count_of_a_serial_that_was_never_removed_is_refused() -> None:
    """R11: only removed serials can be counted back: SERIAL_NOT_AVAILABLE."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["1"]))
    book.refused(adjust("ADJ-1", "count", 1, serials=["2"]), ReasonCode.SERIAL_NOT_AVAILABLE)
    book.refused(adjust("ADJ-1", "count", 1, serials=["1"]), ReasonCode.DUPLICATE_SERIAL)


def test_plain_count_up_beyond_what_lots_can_take_creates_unallocated_usage() -> None:
    """R12: the excess is unallocated stock: a movement without lot (negative usage)."""
    book = Book(item(cost="2.00"), receive("PO-1/1", 5), allocate("S-1", 2), ship("S-1"))
    event = adjusted(book.ok(adjust("ADJ-1", "count", 5)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-1/1", 2), (None, 3)]
    assert event.unallocated == 3 and book.state.unallocated == {
        "AI": UnallocatedStock(office="AI", quantity=D(3), value=D("6.00"))
    }
    assert book.lot("PO-1/1") == (5, 0, 0)


def test_plain_removal_takes_unallocated_stock_first() -> None:
    """R12: removing reverses unallocated usage before touching lots."""
    book = Book(item(), receive("PO-1/1", 1), adjust("ADJ-1", "count", 2))
    event = adjusted(book.ok(adjust("ADJ-2", "loss", -3)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [(None, -2), ("PO-1/1", -1)]
    assert book.state.unallocated == {}


def test_plain_removal_beyond_stock_names_the_whole_loss_and_all_stock_there() -> None:
    """R12 and the refusal contract: unallocated stock goes first, but a loss of 10 against 3
    in a lot and 2 unallocated is refused naming 10 and 5, not the 8 left after the
    unallocated stock and the lot's 3. Also when no lot is there at all."""
    book = Book(item(), receive("PO-1/1", 3), adjust("ADJ-1", "count", 2, cost="1.00"))
    rejection = book.refused(adjust("ADJ-2", "loss", -10), ReasonCode.INSUFFICIENT_STOCK)
    assert rejection.offending == "10 > 5" and "requested 10, available 5" in rejection.reason
    lotless = Book(item(), adjust("ADJ-1", "count", 2, cost="1.00"))
    rejection = lotless.refused(adjust("ADJ-2", "loss", -3), ReasonCode.INSUFFICIENT_STOCK)
    assert rejection.offending == "3 > 2"


def _lotless(event: InventoryAdjusted) -> list[tuple[Decimal, Decimal]]:
    return [(m.quantity, m.unit_cost) for m in event.movements if m.lot_id is None]


def test_unallocated_stock_is_removed_at_the_cost_it_came_in_at() -> None:
    """R10, R12: 5 units counted in beyond any lot at 7.00 and lost again leave at 7.00, not
    at the item's estimate (which has changed meanwhile): they leave no cost behind."""
    book = Book(item(cost="10.00"), receive("PO-1/1", 10, cost="10.00"), allocate("S-1", 10))
    book.ok(ship("S-1"))
    counted = adjusted(book.ok(adjust("ADJ-1", "count", 15, cost="7.00")))
    assert _lotless(counted) == [(5, D("7.00"))]
    book.ok(item(cost="12.00"))
    lost = adjusted(book.ok(adjust("ADJ-2", "loss", -5)))
    assert _lotless(lost) == [(-5, D("7.00"))]
    assert sum(q * c for q, c in _lotless(counted) + _lotless(lost)) == 0
    assert book.state.unallocated == {}


def test_part_of_unallocated_stock_goes_at_its_average_cost_and_the_rest_keeps_it() -> None:
    """R10, R12: counts at 3.00 and 5.00 average 4.00; a partial removal goes at 4.00 and
    what is left is still worth 4.00 a unit."""
    book = Book(item(), adjust("ADJ-1", "count", 2, cost="3.00"))
    book.ok(adjust("ADJ-2", "count", 2, cost="5.00"))
    event = adjusted(book.ok(adjust("ADJ-3", "loss", -1)))
    assert _lotless(event) == [(-1, D("4.00"))]
    assert book.state.unallocated == {
        "AI": UnallocatedStock(office="AI", quantity=D(3), value=D("12.00"))
    }


def test_the_last_of_unallocated_stock_goes_at_exactly_the_value_left() -> None:
    """R10, R12: 1 at 3.00 and 2 at 3.50 are 3 units worth 10.00, an average no movement can
    carry (6 places): a part goes at 3.333333, then the last two at 3.333333 and 3.333334, so
    all of it goes out at exactly 10.00."""
    book = Book(item(), adjust("ADJ-1", "count", 1, cost="3.00"))
    book.ok(adjust("ADJ-2", "count", 2, cost="3.50"))
    first = adjusted(book.ok(adjust("ADJ-3", "loss", -1)))
    assert _lotless(first) == [(-1, D("3.333333"))]
    last = adjusted(book.ok(adjust("ADJ-4", "count", -2)))
    assert _lotless(last) == [(-1, D("3.333333")), (-1, D("3.333334"))]
    assert sum(q * c for q, c in _lotless(first) + _lotless(last)) == -10
    assert book.state.unallocated == {}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=D("-5"), max_value=D(5), places=3).filter(bool),
            st.decimals(min_value=D(0), max_value=D(20), places=2),
        ),
        max_size=12,
    )
)
def test_unallocated_stock_goes_out_at_what_it_came_in_at(
    steps: list[tuple[Decimal, Decimal]],
) -> None:
    """R10, R12 as a property: whatever counts go in and out, the value kept is what came in
    less what went out, every unit cost fits the wire (6 places), and once none is left the
    movements in and out net to exactly nothing."""
    book = Book(item(cost="9.99"))
    net = D(0)
    for n, (quantity, cost) in enumerate(steps):
        if quantity < 0:
            held = book.state.unallocated.get("AI")
            quantity = -min(-quantity, held.quantity if held else D(0))
            if not quantity:
                continue
        event = adjusted(book.ok(adjust(f"ADJ-{n}", "count", str(quantity), cost=str(cost))))
        assert all(c == c.quantize(COST_STEP) for _, c in _lotless(event))
        net += sum((q * c for q, c in _lotless(event)), D(0))
        row = book.state.unallocated.get("AI")
        assert (row.value if row else D(0)) == net and net >= 0
    if not book.state.unallocated:
        assert net == 0


def test_adjustment_locks_the_tracking_flags() -> None:
    """R2: an adjustment refers to the LIC."""
    book = Book(item(), adjust("ADJ-1", "beginning_balance", 1))
    book.refused(item(serialized=True), ReasonCode.TRACKING_LOCKED)


def test_beginning_balance_lots_never_share_a_name_with_another_items_lot() -> None:
    """Lot ids are unique across items, but each LIC decides alone: an adjustment `1001` for
    LIC `1` must not name the lot receipt `1001` line 1 made (`1001/1`), and `/` in ids or
    names too long to carry must not make two items' lots one."""
    receipt_lot = "1001/1"
    names = {
        adjusted(Book(item(lic), lic=lic).ok(adjust(adj, "beginning_balance", 1, lic=lic))).lot_id
        for adj, lic in [
            ("1001", "1"),
            ("A/B", "C"),
            ("A", "B/C"),
            ("A%2FB", "C"),
            ("X" * 90, "L" * 60 + "1"),
            ("X" * 90, "L" * 60 + "2"),
        ]
    }
    assert len(names) == 6 and receipt_lot not in names
    assert all(len(name) <= 100 for name in names)


def test_unallocated_value_stays_exact_at_the_largest_quantities_and_costs() -> None:
    """R10, R12: a quantity just under 1e9 times a unit cost just under 1e12, six places each,
    needs 33 digits, more than Decimal's default 28. Rounded, a removal of the rest carried a
    lot-less movement that booked stock in, or broke the draft's invariant (a count answered by
    a dead letter); exact, the stock nets to nothing and every removal takes stock out."""
    counts = [
        ("781641332.649807", "889273429737.104042"),
        ("585949399.714412", "782825346176.112132"),
        ("219413497.274409", "691776523482.598963"),
        ("565193472.67217", "936640011527.076348"),
    ]
    book = Book(item(cost="1.00"))
    put_in = Decimal(0)
    for n, (quantity, cost) in enumerate(counts):
        book.ok(adjust(f"IN-{n}", "count", quantity, cost=cost))
        with localcontext(prec=60):
            put_in += Decimal(quantity) * Decimal(cost)
    row = book.state.unallocated["AI"]
    assert row.value == put_in  # every digit kept
    part = (row.quantity / 3).quantize(COST_STEP)
    taken_out = []
    for name, quantity in (("OUT-1", part), ("OUT-2", row.quantity - part)):
        event = book.ok(adjust(name, "count", -quantity))[0]
        assert isinstance(event, InventoryAdjusted)
        moves = [(m.quantity, m.unit_cost) for m in event.movements if m.lot_id is None]
        assert all(q < 0 for q, _ in moves), moves
        taken_out += moves
    assert "AI" not in book.state.unallocated
    with localcontext(prec=60):
        assert sum((-q * cost for q, cost in taken_out), Decimal(0)) == put_in


def test_an_adjustment_the_intake_refused_is_answered_with_its_problem_and_changes_nothing() -> (
    None
):
    """R5, R11: serials typed so that they do not parse reach allocation as the intake's
    refusal, answered in the LIC's order: before any rule (an unknown item too), nothing
    moves, and the next adjustment is decided on the unchanged stock."""
    span = LineRefusal(
        reason_code=ReasonCode.INVALID_SERIAL_SPAN,
        reason="span '10...8' runs backwards",
        offending="10...8",
    )
    book = Book(item(serialized=True), adjust("BB", "beginning_balance", 2, serials=["1", "2"]))
    before = book.state
    rejection = book.refused(
        replace(adjust("LOSS", "loss", -1), refusal=span), ReasonCode.INVALID_SERIAL_SPAN
    )
    assert (rejection.offending, rejection.adjustment_id) == ("10...8", "LOSS")
    assert book.state == before
    book.ok(adjust("LOSS2", "loss", -1, serials=["2"]))
    Book().refused(
        replace(adjust("BB", "beginning_balance", 2), refusal=span),
        ReasonCode.INVALID_SERIAL_SPAN,
    )
