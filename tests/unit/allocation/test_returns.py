"""Customer returns (R13)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.decide import decide
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import LicState, StockReturned
from tests.unit.allocation.builders import (
    DAY,
    Book,
    D,
    adjust,
    allocate,
    give_back,
    item,
    lot,
    pick,
    receive,
    ship,
)

LATE = date(2024, 6, 1)


def serial_book() -> Book:
    return Book(
        item(serialized=True),
        receive("PO-1/1", 2, serials=["1", "2"], cost="7.00"),
        allocate("S-1", 1, to="Acme", serials=["1"]),
        ship("S-1"),
    )


def test_returned_serial_is_available_again_in_its_original_lot() -> None:
    """R13: the unit becomes available again and its usage is reversed, at its lot cost."""
    book = serial_book()
    (event,) = book.ok(give_back("R-1", 1, customer="Acme", serials=["1"]))
    assert isinstance(event, StockReturned)
    (move,) = event.movements
    assert (move.lot_id, move.serial, move.unit_cost) == ("PO-1/1", "1", D("7.00"))
    assert book.status("1") == "available" and book.lot("PO-1/1") == (2, 0, 0)


def test_return_needs_a_serial_that_was_shipped() -> None:
    """R13: SERIAL_NOT_SHIPPED for a serial still in stock."""
    book = serial_book()
    book.refused(give_back("R-1", 1, serials=["2"]), ReasonCode.SERIAL_NOT_SHIPPED)


def test_return_needs_a_serial_shipped_to_the_named_customer() -> None:
    """R13: shipped, to that customer when named."""
    book = serial_book()
    book.refused(
        give_back("R-1", 1, customer="Other", serials=["1"]), ReasonCode.SERIAL_NOT_SHIPPED
    )
    book.ok(give_back("R-1", 1, customer=None, serials=["1"]))


def test_a_serial_comes_back_only_once() -> None:
    """R13: after its return the serial is no longer shipped."""
    book = serial_book()
    book.ok(give_back("R-1", 1, customer="Acme", serials=["1"]))
    book.refused(give_back("R-2", 1, customer="Acme", serials=["1"]), ReasonCode.SERIAL_NOT_SHIPPED)


def test_serialized_return_must_name_serials() -> None:
    """R13: SERIAL_REQUIRED."""
    serial_book().refused(give_back("R-1", 1), ReasonCode.SERIAL_REQUIRED)


def lot_book() -> Book:
    return Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]),
        allocate("S-1", 3, to="Acme"),
        ship("S-1"),
    )


def test_lot_tracked_return_reverses_usage_of_its_lot_and_reopens_it() -> None:
    """R13/R7: a return into a closed lot reopens it."""
    book = Book(
        item(track=True),
        receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]),
        allocate("S-1", 2, to="Acme"),
        ship("S-1"),
    )
    assert book.state.lots["PO-1/1"].status == "closed"
    (event,) = book.ok(give_back("R-1", 1, customer="Acme", lots=[pick("A", 1)]))
    assert isinstance(event, StockReturned) and event.reopened_lots == ("PO-1/1",)
    assert book.mfr("PO-1/1", "A") == (1, 0, 1) and book.state.lots["PO-1/1"].status == "open"


def test_lot_tracked_return_cannot_exceed_what_was_shipped_from_the_lot() -> None:
    """R13: RETURN_EXCEEDS_SHIPPED naming the values."""
    book = lot_book()
    rejection = book.refused(
        give_back("R-1", 4, customer="Acme", lots=[pick("A", 4)]), ReasonCode.RETURN_EXCEEDS_SHIPPED
    )
    assert "4" in rejection.reason and "3" in rejection.reason


def test_lot_tracked_returns_add_up_against_what_was_shipped() -> None:
    """R13: what already came back counts."""
    book = lot_book()
    book.ok(give_back("R-1", 2, customer="Acme", lots=[pick("A", 2)]))
    book.refused(
        give_back("R-2", 2, customer="Acme", lots=[pick("A", 2)]), ReasonCode.RETURN_EXCEEDS_SHIPPED
    )
    book.ok(give_back("R-2", 1, customer="Acme", lots=[pick("A", 1)]))


def test_lot_tracked_return_counts_only_the_named_customers_shipments() -> None:
    """R13: shipped to that customer."""
    book = lot_book()
    book.refused(
        give_back("R-1", 1, customer="Other", lots=[pick("A", 1)]),
        ReasonCode.RETURN_EXCEEDS_SHIPPED,
    )


def test_lot_tracked_return_must_name_lots() -> None:
    """R13: a lot-tracked return names the manufacturer lot: LOT_REQUIRED."""
    lot_book().refused(give_back("R-1", 1), ReasonCode.LOT_REQUIRED)


def test_return_after_usage_was_counted_back_cannot_overfill_the_lot() -> None:
    """R11/R13: the initial quantity stays the ceiling."""
    book = lot_book()
    book.ok(adjust("ADJ-1", "count", 3, lots=[lot("A", 3)]))
    book.refused(
        give_back("R-1", 1, customer="Acme", lots=[pick("A", 1)]), ReasonCode.RETURN_EXCEEDS_SHIPPED
    )


def test_plain_return_goes_back_into_the_lot_it_shipped_from() -> None:
    """R13: plain items come back into their lots, within what was shipped."""
    book = Book(item(), receive("PO-1/1", 2), allocate("S-1", 2, to="Acme"), ship("S-1"))
    book.ok(give_back("R-1", 1, customer="Acme"))
    assert book.lot("PO-1/1") == (1, 0, 1)
    book.refused(give_back("R-2", 2, customer="Acme"), ReasonCode.RETURN_EXCEEDS_SHIPPED)


def test_a_return_is_received_at_the_office_that_shipped_it() -> None:
    """An inventory lot is at one office (R7): counting a return at office EE back into a lot
    at AI would show the stock where it is not. So a return names what was shipped from its
    own office (R13), and the refusal says where the stock was shipped from."""
    serials = Book(
        item(serialized=True),
        receive("PO-1/1", 1, serials=["1"], cost="7.00"),
        receive("PO-2/1", 1, office="EE", serials=["2"], cost="8.00"),
        allocate("S-1", 1, to="Acme", serials=["1"]),
        ship("S-1"),
        allocate("S-2", 1, office="EE", to="Acme", serials=["2"]),
        ship("S-2"),
    )
    refused = serials.refused(
        give_back("R-1", 1, customer="Acme", office="EE", serials=["1"]),
        ReasonCode.SERIAL_NOT_SHIPPED,
    )
    assert refused.offending == "1" and "from office AI, not EE" in refused.reason
    (back,) = serials.ok(give_back("R-2", 1, customer="Acme", office="EE", serials=["2"]))
    assert isinstance(back, StockReturned) and back.movements[0].lot_id == "PO-2/1"
    assert serials.status("2") == "available" and serials.status("1") == "shipped"

    lots = lot_book()
    refused = lots.refused(
        give_back("R-1", 1, customer="Acme", office="EE", lots=[pick("A", 1)]),
        ReasonCode.RETURN_EXCEEDS_SHIPPED,
    )
    assert refused.offending == "1 > 0" and "shipped from office AI" in refused.reason
    lots.ok(give_back("R-2", 1, customer="Acme", office="AI", lots=[pick("A", 1)]))


def test_a_lot_named_beside_a_returned_serial_must_hold_it() -> None:
    """R13: a lot-tracked return names the manufacturer lot; beside serials it must hold them
    (as on a shipment line, R9), never be dropped unread. The audit's case: serial 1 named
    with lot ZZZ-never-existed went back to its lot A without a word."""
    book = Book(
        item(track=True, serialized=True, perishable=False),
        receive("PO-1/1", 3, lots=[lot("A", 2), lot("B", 1)], serials=["1", "2", "3"]),
        receive("PO-2/1", 1, office="EE", lots=[lot("C", 1)], serials=["9"]),
        allocate("S-1", 3, to="Acme", serials=["1", "2", "3"]),
        ship("S-1"),
    )
    never = book.refused(
        give_back("R-1", 1, customer="Acme", lots=[pick("ZZZ-never-existed", 1)], serials=["1"]),
        ReasonCode.LOT_NOT_FOUND,
    )
    assert never.offending == "ZZZ-never-existed"
    elsewhere = book.refused(
        give_back("R-1", 1, customer="Acme", lots=[pick("C", 1)], serials=["1"]),
        ReasonCode.LOT_NOT_FOUND,
    )
    assert elsewhere.offending == "C"
    # B is at the office, but serial 1 is in A: the lot does not hold it.
    other = book.refused(
        give_back("R-1", 1, customer="Acme", lots=[pick("B", 1)], serials=["1"]),
        ReasonCode.INVALID_QUANTITY,
    )
    assert other.offending == "B"
    # Serials 1 and 2 are both in A: naming A for one of them is a contradiction too.
    short = book.refused(
        give_back("R-1", 2, customer="Acme", lots=[pick("A", 1), pick("B", 1)], serials=["1", "2"]),
        ReasonCode.INVALID_QUANTITY,
    )
    assert short.offending == "A"
    (event,) = book.ok(
        give_back("R-1", 2, customer="Acme", lots=[pick("A", 1), pick("B", 1)], serials=["1", "3"])
    )
    assert isinstance(event, StockReturned)
    assert [(m.serial, m.mfr_lot) for m in event.movements] == [("1", "A"), ("3", "B")]


def scanned_book() -> Book:
    """Serials 1 and 2 in manufacturer lot A, 3 in B (PO-1/1), all shipped to Acme."""
    return Book(
        item(track=True, serialized=True, perishable=False),
        receive("PO-1/1", 3, lots=[lot("A", 2), lot("B", 1)], serials=["1", "2", "3"]),
        allocate("S-1", 3, to="Acme", serials=["1", "2", "3"]),
        ship("S-1"),
    )


def test_a_serial_returned_with_another_lot_than_its_own_is_refused_naming_it() -> None:
    """R5, R13, R15, unit by unit: serial 1 was shipped from lot A and 3 from lot B, but their
    labels were scanned as 1/B and 3/A. The per-lot counts agree (one of each), so only the
    pairing tells: the first serial off its lot is refused, as on a shipment line, naming it,
    the lot it was scanned with and the lot it is in; nothing comes back."""
    book = scanned_book()
    swapped = (("1", "B"), ("3", "A"))
    for lots in ([pick("A", 1), pick("B", 1)], []):
        back = give_back("R-1", 2, customer="Acme", lots=lots, serials=["1", "3"])
        rejection = book.refused(replace(back, serial_lots=swapped), ReasonCode.INVALID_QUANTITY)
        assert rejection.offending == "1"
        assert "serial 1 of L is scanned with manufacturer lot B" in rejection.reason
        assert "it is in manufacturer lot A (inventory lot PO-1/1)" in rejection.reason
    assert book.status("1") == book.status("3") == "shipped"
    assert book.mfr("PO-1/1", "A") == (0, 0, 2) and book.mfr("PO-1/1", "B") == (0, 0, 1)


def test_serials_returned_with_their_own_lots_come_back_into_them() -> None:
    """R13, R15: the same return with each serial paired with the lot it was shipped from puts
    exactly those units back, each into its own lot, as the serials alone would."""
    paired = (("1", "A"), ("3", "B"))
    for lots in ([pick("A", 1), pick("B", 1)], []):
        book = scanned_book()
        (event,) = book.ok(
            give_back("R-1", 2, customer="Acme", lots=lots, serials=["1", "3"], serial_lots=paired)
        )
        assert isinstance(event, StockReturned)
        assert [(m.serial, m.mfr_lot) for m in event.movements] == [("1", "A"), ("3", "B")]
        assert book.status("1") == book.status("3") == "available"


def test_a_serial_paired_with_a_lot_on_a_return_must_be_one_the_return_names() -> None:
    """R13: a pairing is checked against the units the return names, never dropped unread;
    on an item not tracked by lot, a pairing is a lot it cannot have."""
    rejection = scanned_book().refused(
        give_back("R-1", 1, customer="Acme", serials=["1"], serial_lots=[("1", "A"), ("2", "A")]),
        ReasonCode.INVALID_QUANTITY,
    )
    assert rejection.offending == "2" and "does not name" in rejection.reason
    untracked = serial_book().refused(
        give_back("R-1", 1, customer="Acme", serials=["1"], serial_lots=[("1", "A")]),
        ReasonCode.INVALID_QUANTITY,
    )
    assert untracked.offending == "A" and "not tracked by manufacturer lot" in untracked.reason


def plain_sales(*customers: str) -> Book:
    """Lot PO-1/1 (5 units) shipped 1 unit to each customer in turn ("" an unnamed sale)."""
    book = Book(item(), receive("PO-1/1", 5))
    for n, customer in enumerate(customers):
        book.ok(allocate(f"S-{n}", 1, to=customer or None))
        book.ok(ship(f"S-{n}"))
    return book


def returned_from(state: LicState) -> dict[str, Decimal]:
    return {row.customer: row.returned for row in state.shipments.values() if row.returned}


def test_a_return_naming_no_customer_takes_the_unnamed_sale_first_then_by_customer() -> None:
    """R13, §6: within one lot a return naming no customer counts against the unnamed sale
    first, then customers by name: never the order the shipment rows happen to be listed in
    (first shipment in memory, heap order once reloaded from PostgreSQL), so the same state
    decides the same way however its rows are listed."""
    book = plain_sales("Zed", "Acme", "", "Bob")
    listed = list(book.state.shipments.items())
    for rows in (listed, listed[::-1], listed[1:] + listed[:1]):
        state = replace(book.state, shipments=dict(rows), index=None)
        assert state == book.state
        decision = decide(state, give_back("R-1", 2, customer=None))
        assert decision.rejected is None
        assert returned_from(decision.state) == {"": 1, "Acme": 1}


@settings(max_examples=150, deadline=None)
@given(
    track=st.booleans(),
    sales=st.lists(
        st.tuples(st.sampled_from(["", "Acme", "Bob", "Zed"]), st.integers(1, 3)),
        min_size=1,
        max_size=8,
    ),
    back=st.integers(1, 24),
    data=st.data(),
)
def test_equal_states_decide_a_return_alike_however_their_rows_are_listed(
    track: bool, sales: list[tuple[str, int]], back: int, data: st.DataObject
) -> None:
    """§6 "replays decide the same way", as a property: a return naming no customer, decided
    on a state and on the same state with its shipment rows listed in another order (as a
    reload lists them), gives the same events and the same rows, and so does a named
    return after it."""
    entries = [lot("A", 12)] if track else []
    book = Book(
        item(track=track, perishable=False),
        receive("PO-1/1", 12, lots=entries),
        receive("PO-2/1", 12, lots=entries, on=DAY + timedelta(days=1)),
    )
    for n, (customer, quantity) in enumerate(sales):
        book.ok(allocate(f"S-{n}", quantity, to=customer or None))
        book.ok(ship(f"S-{n}"))
    shipped = sum(quantity for _, quantity in sales)
    back = min(back, shipped)
    rows = data.draw(st.permutations(list(book.state.shipments.items())))
    relisted = replace(book.state, shipments=dict(rows), index=None)
    assert relisted == book.state
    anonymous = give_back("R-1", back, customer=None, lots=[pick("A", back)] if track else [])
    named = give_back("R-2", 1, customer=sales[0][0], lots=[pick("A", 1)] if track else [])
    first, again = decide(book.state, anonymous), decide(relisted, anonymous)
    assert first.rejected is None and first.events == again.events
    assert first.state == again.state
    assert decide(first.state, named).events == decide(again.state, named).events
