"""R14, R16: a return to vendor with a reference (its PO) that names no stock takes it only
from the inventory lots of that reference (a receipt's `reference`, else its shipment id), at
its office, first-in-first-out among them, so it is booked at that PO's cost and counted
against it. Short of them it is refused, saying it looked only there and how much more the
other lots hold. Without a reference, and on a sale, nothing changes; named lots are taken as
named."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import AllocateLine, LineAllocated, ShipmentKind
from tests.unit.allocation.builders import Book, D, allocate, item, lot, pick, quarantine, receive

SUGAR = "SUGAR"


def sugar(po_quantity: int = 8) -> Book:
    """The controller's case: 20 bought without a PO at 11.00 (RC-3/1, the oldest), then
    `po_quantity` on PO-100 at 9.00 (received as document RCV-7)."""
    book = Book(item(SUGAR), lic=SUGAR)
    book.ok(receive("RC-3/1", 20, lic=SUGAR, office="MAIN", cost="11.00"))
    on_po = receive("RCV-7/1", po_quantity, lic=SUGAR, office="MAIN", cost="9.00")
    book.ok(replace(on_po, reference="PO-100"))
    return book


def line(
    quantity: int,
    reference: str | None = "PO-100",
    *,
    kind: ShipmentKind = "vendor_return",
    office: str = "MAIN",
) -> AllocateLine:
    command = allocate("RTV-1", quantity, lic=SUGAR, office=office, kind=kind, to="SweetCo")
    return replace(command, reference=reference)


def taken(book: Book, command: AllocateLine) -> list[tuple[str, Decimal, Decimal]]:
    (event,) = book.ok(command)
    assert isinstance(event, LineAllocated)
    return [(m.lot_id, m.quantity, m.unit_cost) for m in event.movements]


def test_a_vendor_return_with_a_reference_takes_only_that_pos_lots() -> None:
    """R14: first-in-first-out would take the older RC-3/1 (another vendor's, at 11.00)."""
    assert taken(sugar(), line(5)) == [("RCV-7/1", 5, D("9.00"))]


def test_short_of_the_references_lots_it_is_refused_saying_it_looked_only_there() -> None:
    refusal = sugar(po_quantity=3).refused(line(5), ReasonCode.INSUFFICIENT_STOCK)
    assert refusal.reason == (
        "item SUGAR at office MAIN: requested 5, available 3 in the lots of PO-100 (the "
        "return's reference), and 20 more in other lots: leave reference out to return any"
    )
    assert refusal.offending == "5 > 3"


def test_a_lot_received_without_a_reference_is_the_receipts_own() -> None:
    """A receipt without `reference`: its lots' reference is its shipment id."""
    book = sugar()
    book.ok(replace(receive("RC-9/1", 4, lic=SUGAR, office="MAIN", cost="12.00"), reference=None))
    assert taken(book, line(4, "RC-9")) == [("RC-9/1", 4, D("12.00"))]


def test_first_in_first_out_among_the_references_lots() -> None:
    book = sugar(po_quantity=3)
    later = receive("RCV-8/1", 6, lic=SUGAR, office="MAIN", cost="9.50")
    book.ok(replace(later, reference="PO-100"))
    assert taken(book, line(5)) == [("RCV-7/1", 3, D("9.00")), ("RCV-8/1", 2, D("9.50"))]


def test_only_the_references_lots_at_the_returns_office() -> None:
    book = sugar()
    elsewhere = receive("RCV-9/1", 10, lic=SUGAR, office="EAST", cost="9.00")
    book.ok(replace(elsewhere, reference="PO-100"))
    refusal = book.refused(line(9), ReasonCode.INSUFFICIENT_STOCK)
    assert refusal.reason.startswith(
        "item SUGAR at office MAIN: requested 9, available 8 in the lots of PO-100"
    )


def test_a_reference_no_lot_has_is_refused_naming_it() -> None:
    refusal = sugar().refused(line(1, "PO-10O"), ReasonCode.INSUFFICIENT_STOCK)
    assert refusal.reason == (
        "item SUGAR at office MAIN: requested 1, available 0 in the lots of PO-10O (the "
        "return's reference), and 28 more in other lots: leave reference out to return any"
    )


def test_the_references_lots_in_quarantine_are_counted_apart_from_other_lots() -> None:
    """A vendor return naming nothing passes over held stock (as before): the reason names
    each part once, the other lots' stock first."""
    book = sugar()
    book.ok(quarantine("Q-1", lic=SUGAR, lot_id="RCV-7/1", reason="mould"))
    refusal = book.refused(line(5), ReasonCode.INSUFFICIENT_STOCK)
    assert refusal.reason == (
        "item SUGAR at office MAIN: requested 5, available 0 in the lots of PO-100 (the "
        "return's reference), and 20 more in other lots: leave reference out to return any, "
        "and 8 more in quarantine"
    )


def test_without_a_reference_a_vendor_return_takes_any_lot_as_before() -> None:
    assert taken(sugar(), line(5, None)) == [("RC-3/1", 5, D("11.00"))]


def test_a_sales_reference_is_the_customers_order_and_narrows_nothing() -> None:
    assert taken(sugar(), line(5, kind="sale")) == [("RC-3/1", 5, D("11.00"))]


def test_named_manufacturer_lots_are_taken_as_named_whatever_the_reference() -> None:
    """Named picks are the clerk's choice: a reference that is no PO (an RMA number) does not
    turn a named lot into LOT_NOT_FOUND. Not narrowed, so a mfr lot received on several
    receipts is taken first-in-first-out among them, as before."""
    book = Book(item("MILK", track=True, perishable=False), lic="MILK")
    book.ok(receive("RC-3/1", 4, lic="MILK", office="MAIN", lots=[lot("L1", 4)], cost="11.00"))
    on_po = receive("RCV-7/1", 4, lic="MILK", office="MAIN", lots=[lot("L1", 4)], cost="9.00")
    book.ok(replace(on_po, reference="PO-100"))
    command = allocate(
        "RTV-1", 2, lic="MILK", office="MAIN", kind="vendor_return", lots=[pick("L1", 2)]
    )
    (event,) = book.ok(replace(command, reference="RMA-7"))
    assert isinstance(event, LineAllocated)
    assert [(m.lot_id, m.quantity) for m in event.movements] == [("RC-3/1", 2)]
