"""Shipment lines: R9 (allocation), R8 (complete before shipping), R10 (shipping), R14."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    LineAllocated,
    LineReleased,
    LineShipped,
    SerialStatus,
)
from tests.unit.allocation.builders import (
    Book,
    D,
    allocate,
    item,
    lot,
    pick,
    receive,
    release,
    ship,
)

SHIP = date(2024, 3, 1)
EARLY = date(2024, 2, 1)
LATE = date(2024, 6, 1)


def perishable_book() -> Book:
    """Lot A expires late (received first), lot B early, lot C expired before SHIP."""
    return Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]),
        receive("PO-2/1", 5, lots=[lot("B", 5, SHIP)]),
        receive("PO-3/1", 5, lots=[lot("C", 5, EARLY)]),
    )


def allocated(events: tuple[object, ...]) -> LineAllocated:
    event = events[-1]
    assert isinstance(event, LineAllocated)
    return event


def test_plain_items_are_allocated_first_in_first_out() -> None:
    """R9: other lots first-in-first-out."""
    book = Book(item(), receive("PO-1/1", 2), receive("PO-2/1", 5))
    event = allocated(book.ok(allocate("S-1", 3)))
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("PO-1/1", 2), ("PO-2/1", 1)]
    assert book.lot("PO-1/1") == (2, 2, 0) and book.lot("PO-2/1") == (5, 1, 0)


def test_ships_earliest_expiring_lot_first() -> None:
    """R9: perishable lots first-expired-first-out, not in receipt order."""
    book = perishable_book()
    event = allocated(book.ok(allocate("S-1", 6, ship_on=SHIP)))
    assert [(m.mfr_lot, m.quantity) for m in event.movements] == [("B", 5), ("A", 1)]


def test_automatic_allocation_never_takes_a_lot_expired_on_the_ship_date() -> None:
    """R9: a lot that expired before the ship date is skipped; 10 usable, 15 on hand."""
    book = perishable_book()
    rejection = book.refused(allocate("S-1", 11, ship_on=SHIP), ReasonCode.INSUFFICIENT_STOCK)
    assert "11" in rejection.reason and "10" in rejection.reason


def test_lot_expiring_on_the_ship_date_still_ships_that_day() -> None:
    """R9: expires_on == ship_on is usable; expires_on < ship_on is expired."""
    book = perishable_book()
    event = allocated(book.ok(allocate("S-1", 1, ship_on=SHIP, lots=[pick("B", 1)])))
    assert event.movements[0].mfr_lot == "B"


def test_named_expired_lot_is_refused() -> None:
    """R9: picks of a perishable lot expired on the ship date: LOT_EXPIRED."""
    book = perishable_book()
    rejection = book.refused(
        allocate("S-1", 1, ship_on=SHIP, lots=[pick("C", 1)]), ReasonCode.LOT_EXPIRED
    )
    assert rejection.offending == "C"


def test_named_lot_not_at_the_office_is_refused() -> None:
    """R9: picks must name stock that is there: LOT_NOT_FOUND."""
    book = Book(item(track=True), receive("PO-1/1", 5, office="EE", lots=[lot("A", 5, LATE)]))
    book.refused(allocate("S-1", 1, office="AI", lots=[pick("A", 1)]), ReasonCode.LOT_NOT_FOUND)


def test_named_lot_without_enough_free_stock_is_refused() -> None:
    """R9: picks must name stock that is free: INSUFFICIENT_STOCK."""
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]))
    book.ok(allocate("S-1", 4, lots=[pick("A", 4)]))
    book.refused(allocate("S-2", 2, lots=[pick("A", 2)]), ReasonCode.INSUFFICIENT_STOCK)


def test_named_lots_may_cover_part_of_the_line_which_then_cannot_ship() -> None:
    """R8: a shipment can be saved and allocated at any time: picks covering 2 of 3 hold those
    2 and leave the line incomplete, and marking it shipped is refused SHIPMENT_INCOMPLETE."""
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]))
    event = allocated(book.ok(allocate("S-1", 3, lots=[pick("A", 2)])))
    assert not event.complete and event.explicit
    assert [(m.mfr_lot, m.quantity) for m in event.movements] == [("A", 2)]
    assert book.mfr("PO-1/1", "A") == (5, 2, 0)
    book.refused(ship("S-1"), ReasonCode.SHIPMENT_INCOMPLETE)
    completed = allocated(book.ok(allocate("S-1", 3, lots=[pick("A", 3)])))
    assert completed.complete
    book.ok(ship("S-1"))


def test_named_lots_beyond_the_line_are_refused() -> None:
    """R9: picks never cover more than the line: INVALID_QUANTITY."""
    book = Book(item(track=True), receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]))
    book.refused(allocate("S-1", 3, lots=[pick("A", 4)]), ReasonCode.INVALID_QUANTITY)


def test_allocation_takes_stock_only_at_the_shipments_office() -> None:
    """R9: allocation takes stock at the shipment's office."""
    book = Book(item(), receive("PO-1/1", 5, office="EE"), receive("PO-2/1", 1, office="AI"))
    book.refused(allocate("S-1", 2, office="AI"), ReasonCode.INSUFFICIENT_STOCK)
    event = allocated(book.ok(allocate("S-1", 2, office="EE")))
    assert {m.lot_id for m in event.movements} == {"PO-1/1"}


def test_partial_availability_refuses_the_whole_line() -> None:
    """R9: no partial allocation; the refusal names requested and available."""
    book = Book(item(), receive("PO-1/1", 2))
    rejection = book.refused(allocate("S-1", 3), ReasonCode.INSUFFICIENT_STOCK)
    assert rejection.shipment_id == "S-1" and rejection.line_no == 1
    assert "requested 3" in rejection.reason and "available 2" in rejection.reason
    assert book.lot("PO-1/1") == (2, 0, 0)


def test_nothing_is_allocated_twice() -> None:
    """R9: stock allocated to one line is not free for another."""
    book = Book(item(), receive("PO-1/1", 3), allocate("S-1", 2))
    book.refused(allocate("S-2", 2), ReasonCode.INSUFFICIENT_STOCK)
    book.ok(allocate("S-2", 1))


def test_serials_are_allocated_fifo_by_lot_then_receipt_order() -> None:
    """R9: serials first-in-first-out."""
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 2, serials=["Z9", "A1"]),
        receive("PO-2/1", 1, serials=["B0"]),
    )
    event = allocated(book.ok(allocate("S-1", 3)))
    assert [m.serial for m in event.movements] == ["Z9", "A1", "B0"]
    assert book.status("Z9") == "allocated"


def test_named_serial_must_be_available() -> None:
    """R9: a serial already allocated is not free: SERIAL_NOT_AVAILABLE."""
    book = Book(item(serialized=True), receive("PO-1/1", 2, serials=["1", "2"]))
    book.ok(allocate("S-1", 1, serials=["1"]))
    rejection = book.refused(allocate("S-2", 1, serials=["1"]), ReasonCode.SERIAL_NOT_AVAILABLE)
    assert rejection.offending == "1"


def test_unknown_serial_is_not_available() -> None:
    """R9: a serial never received: SERIAL_NOT_AVAILABLE."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["1"]))
    book.refused(allocate("S-1", 1, serials=["nope"]), ReasonCode.SERIAL_NOT_AVAILABLE)


def test_fewer_named_serials_than_units_leave_the_line_incomplete() -> None:
    """R8: serials for 1 of 2 units allocate that unit; the line cannot ship until both are
    named (SHIPMENT_INCOMPLETE); more serials than units: SERIAL_COUNT_MISMATCH."""
    book = Book(item(serialized=True), receive("PO-1/1", 3, serials=["1", "2", "3"]))
    book.refused(allocate("S-1", 2, serials=["1", "2", "3"]), ReasonCode.SERIAL_COUNT_MISMATCH)
    event = allocated(book.ok(allocate("S-1", 2, serials=["1"])))
    assert not event.complete and [m.serial for m in event.movements] == ["1"]
    book.refused(ship("S-1"), ReasonCode.SHIPMENT_INCOMPLETE)


def test_named_serials_must_be_unique() -> None:
    """R4: a serial named twice on a line: DUPLICATE_SERIAL."""
    book = Book(item(serialized=True), receive("PO-1/1", 2, serials=["1", "2"]))
    book.refused(allocate("S-1", 2, serials=["1", "1"]), ReasonCode.DUPLICATE_SERIAL)


def test_serialized_lot_tracked_units_are_picked_from_the_named_lot() -> None:
    """R9: a named mfr lot of a serialized item picks its units."""
    book = Book(
        item(track=True, serialized=True),
        receive("PO-1/1", 3, lots=[lot("A", 1, LATE), lot("B", 2, LATE)], serials=["1", "2", "3"]),
    )
    event = allocated(book.ok(allocate("S-1", 2, lots=[pick("B", 2)])))
    assert [(m.mfr_lot, m.serial) for m in event.movements] == [("B", "2"), ("B", "3")]


def test_serialized_perishable_units_are_picked_fefo() -> None:
    """R9: FEFO also orders serialized units of perishable lots."""
    book = Book(
        item(track=True, serialized=True),
        receive("PO-1/1", 1, lots=[lot("A", 1, LATE)], serials=["late"]),
        receive("PO-2/1", 1, lots=[lot("B", 1, SHIP)], serials=["soon"]),
    )
    event = allocated(book.ok(allocate("S-1", 1, ship_on=SHIP)))
    assert event.movements[0].serial == "soon"


def test_reallocation_releases_the_old_picks_then_allocates_the_new() -> None:
    """R9: updated picks replace the line's allocation."""
    book = Book(item(track=True), receive("PO-1/1", 4, lots=[lot("A", 2, LATE), lot("B", 2, LATE)]))
    book.ok(allocate("S-1", 2, lots=[pick("A", 2)]))
    released, again = book.ok(allocate("S-1", 2, lots=[pick("B", 2)]))
    assert isinstance(released, LineReleased) and released.reallocated
    assert isinstance(again, LineAllocated) and again.movements[0].mfr_lot == "B"
    assert book.mfr("PO-1/1", "A") == (2, 0, 0) and book.mfr("PO-1/1", "B") == (2, 2, 0)


def test_refused_reallocation_keeps_the_old_allocation() -> None:
    """R9: re-allocation is atomic: if the new picks fail, the old ones stand."""
    book = Book(item(), receive("PO-1/1", 3), allocate("S-1", 2))
    before = book.state
    book.refused(allocate("S-1", 4), ReasonCode.INSUFFICIENT_STOCK)
    assert book.state is before and book.lot("PO-1/1") == (3, 2, 0)


def test_reallocation_may_reuse_its_own_stock() -> None:
    """R9: the old picks are free again for the same line's new allocation."""
    book = Book(item(), receive("PO-1/1", 3), allocate("S-1", 2))
    book.ok(allocate("S-1", 3))
    assert book.lot("PO-1/1") == (3, 3, 0)


def test_cancel_releases_the_line() -> None:
    """R9: a cancelled line gives its stock back (LineReleased)."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["1"]), allocate("S-1", 1))
    (event,) = book.ok(release("S-1"))
    assert isinstance(event, LineReleased) and event.movements[0].serial == "1"
    assert book.status("1") == "available" and book.lot("PO-1/1") == (1, 0, 0)


def test_a_release_is_dated_by_the_ship_on_of_the_allocation_it_gives_back() -> None:
    """R15, §6: a release carries a business date, never a clock: the allocation's ship_on,
    on cancel and when a re-allocation with another ship_on replaces the line."""
    book = Book(item(), receive("PO-1/1", 3), allocate("S-1", 1, ship_on=date(2024, 1, 15)))
    released, _ = book.ok(allocate("S-1", 2, ship_on=date(2024, 1, 16)))
    assert isinstance(released, LineReleased) and released.released_on == date(2024, 1, 15)
    (cancelled,) = book.ok(release("S-1"))
    assert isinstance(cancelled, LineReleased) and cancelled.released_on == date(2024, 1, 16)


def test_release_of_an_unknown_line_is_refused() -> None:
    """UNKNOWN_SHIPMENT: nothing allocated for that line."""
    Book(item()).refused(release("S-404"), ReasonCode.UNKNOWN_SHIPMENT)


# -- R8 / R10 shipping --------------------------------------------------------------------------


def test_shipping_writes_usage_costed_at_each_lots_unit_cost() -> None:
    """R10: usage against the inventory lots, costed at the lot's unit cost."""
    book = Book(item(), receive("PO-1/1", 2, cost="3.00"), receive("PO-2/1", 5, cost="4.00"))
    book.ok(allocate("S-1", 3))
    (event,) = book.ok(ship("S-1"))
    assert isinstance(event, LineShipped)
    assert [(m.lot_id, m.quantity, m.unit_cost) for m in event.movements] == [
        ("PO-1/1", 2, D("3.00")),
        ("PO-2/1", 1, D("4.00")),
    ]
    assert event.total_cost == D("10.00")
    assert book.lot("PO-1/1") == (0, 0, 2) and book.lot("PO-2/1") == (4, 0, 1)


def test_lot_closes_when_all_its_stock_is_used() -> None:
    """R7: a lot is Closed when it is all used."""
    book = Book(item(), receive("PO-1/1", 2), allocate("S-1", 2))
    (event,) = book.ok(ship("S-1"))
    assert isinstance(event, LineShipped) and event.closed_lots == ("PO-1/1",)
    assert book.state.lots["PO-1/1"].status == "closed"


def test_shipped_serials_leave_stock_with_their_customer() -> None:
    """R10: shipped serials leave stock."""
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1, serials=["1"]),
        allocate("S-1", 1, to="Acme"),
        ship("S-1"),
    )
    (unit,) = book.state.units.values()
    assert unit.status is SerialStatus.SHIPPED and unit.customer == "Acme"
    assert unit.shipment_id == "S-1"


def test_shipping_a_line_never_allocated_is_refused() -> None:
    """R10: only allocated lines ship: UNKNOWN_SHIPMENT."""
    Book(item()).refused(ship("S-1"), ReasonCode.UNKNOWN_SHIPMENT)


def test_a_line_ships_only_once() -> None:
    """R10: a shipped line is final (ship, allocate or cancel again: UNKNOWN_SHIPMENT)."""
    book = Book(item(), receive("PO-1/1", 5), allocate("S-1", 1), ship("S-1"))
    book.refused(ship("S-1"), ReasonCode.UNKNOWN_SHIPMENT)
    book.refused(allocate("S-1", 1), ReasonCode.UNKNOWN_SHIPMENT)
    book.refused(release("S-1"), ReasonCode.UNKNOWN_SHIPMENT)


def test_incomplete_allocation_cannot_be_marked_shipped() -> None:
    """R8: a line whose units lack mfr lots or serials cannot ship: SHIPMENT_INCOMPLETE."""
    from dataclasses import replace

    book = Book(
        item(track=True), receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]), allocate("S-1", 2)
    )
    line = book.state.allocations[("S-1", 1)]
    assert line.complete
    incomplete = replace(line, complete=False)
    book.state = replace(book.state, allocations={line.key: incomplete})
    book.refused(ship("S-1"), ReasonCode.SHIPMENT_INCOMPLETE)


def test_automatic_lot_tracked_allocation_names_concrete_lots() -> None:
    """R8: automatic allocation of a lot-tracked line is complete, so it can ship."""
    book = Book(item(track=True), receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]))
    event = allocated(book.ok(allocate("S-1", 2)))
    assert event.complete and not event.explicit and event.movements[0].mfr_lot == "A"
    book.ok(ship("S-1"))
    assert book.mfr("PO-1/1", "A") == (0, 0, 2)


# -- R14 vendor returns -------------------------------------------------------------------------


def test_vendor_return_must_name_lots() -> None:
    """R14: a return to vendor of a lot-tracked item names its lots: LOT_REQUIRED."""
    book = Book(item(track=True), receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]))
    book.refused(allocate("V-1", 1, kind="vendor_return", to="Vendor"), ReasonCode.LOT_REQUIRED)


def test_vendor_return_must_name_serials() -> None:
    """R14: a return to vendor of a serialized item names its serials: SERIAL_REQUIRED."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["1"]))
    book.refused(allocate("V-1", 1, kind="vendor_return", to="Vendor"), ReasonCode.SERIAL_REQUIRED)


def test_vendor_return_removes_named_serials_from_stock() -> None:
    """R14: the named serials are allocated, then removed: RETURNED_TO_VENDOR."""
    book = Book(item(serialized=True), receive("PO-1/1", 2, serials=["1", "2"]))
    book.ok(allocate("V-1", 1, kind="vendor_return", to="Vendor", serials=["2"]))
    (event,) = book.ok(ship("V-1"))
    assert isinstance(event, LineShipped) and event.kind == "vendor_return"
    assert book.status("2") == "returned_to_vendor" and book.lot("PO-1/1") == (1, 0, 1)


def test_vendor_return_may_take_an_expired_lot() -> None:
    """R14: expired stock can go back to its vendor (no LOT_EXPIRED)."""
    book = perishable_book()
    book.ok(allocate("V-1", 5, kind="vendor_return", ship_on=SHIP, lots=[pick("C", 5)]))
    book.ok(ship("V-1"))
    assert book.mfr("PO-3/1", "C") == (0, 0, 5)
