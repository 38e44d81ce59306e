"""Adjustments accepted all the same, with a word for their clerk (`InventoryAdjusted.warnings`):
a beginning balance of a serial that was shipped (R11, R13), a count adding stock no lot can take
back (R12), a beginning balance of an expired perishable lot, or costed at the estimate."""

from __future__ import annotations

from datetime import date, timedelta

from services.allocation.domain.adjustment_warnings import MAX_WARNINGS
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    AdjustmentWarning,
    InventoryAdjusted,
    ShipmentKind,
    StockReturned,
)
from tests.unit.allocation.builders import (
    DAY,
    Book,
    D,
    adjust,
    allocate,
    give_back,
    item,
    lot,
    receive,
    ship,
)

LATE = date(2024, 6, 1)


def warnings(events: tuple[object, ...]) -> tuple[AdjustmentWarning, ...]:
    (event,) = events
    assert isinstance(event, InventoryAdjusted)
    return event.warnings


def says(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, (part, message)


# -- SERIAL_WAS_SHIPPED -------------------------------------------------------------------------


def shipped_s1(kind: ShipmentKind = "sale", to: str = "St Mary") -> Book:
    return Book(
        item(serialized=True),
        receive("PO-1/1", 2, office="MAIN", serials=["S1", "S2"]),
        allocate("SO-7", 1, office="MAIN", serials=["S1"], kind=kind, to=to),
        ship("SO-7"),
    )


def test_a_beginning_balance_of_a_shipped_serial_warns_naming_customer_shipment_and_return() -> (
    None
):
    """R11 allows the serial; R13: only a customer return reverses the sale's usage."""
    book = shipped_s1()
    (warning,) = warnings(
        book.ok(
            adjust("ADJ-1", "beginning_balance", 2, office="AI", serials=["S1", "S3"], cost="5")
        )
    )
    assert (warning.code, warning.serial, warning.lot_id, warning.office) == (
        "SERIAL_WAS_SHIPPED",
        "S1",
        "ADJ-1/L/BB",
        "AI",
    )
    says(
        warning.message,
        "serial S1 of L was shipped to St Mary on shipment SO-7 line 1",
        "in stock again at office AI",
        "no customer holds it any more",
        "customer return",
        "R13",
        "office MAIN",
    )
    assert book.status("S1") == "available,shipped"


def test_the_shipped_serial_warnings_remedy_works_a_loss_then_the_customer_return() -> None:
    """R13: the warning's way: take the unit out again, then receive it as a return."""
    book = shipped_s1()
    book.ok(adjust("ADJ-1", "beginning_balance", 1, office="AI", serials=["S1"], cost="5"))
    book.refused(
        give_back("RMA-1", 1, office="MAIN", customer="St Mary", serials=["S1"]),
        ReasonCode.DUPLICATE_SERIAL,
    )
    book.ok(adjust("ADJ-2", "loss", -1, office="AI", serials=["S1"]))
    (returned,) = book.ok(give_back("RMA-1", 1, office="MAIN", customer="St Mary", serials=["S1"]))
    assert isinstance(returned, StockReturned)
    assert book.state.units[("S1", "PO-1/1")].status.value == "available"


def test_a_serial_returned_to_its_vendor_is_warned_of_naming_the_vendor() -> None:
    book = shipped_s1(kind="vendor_return", to="Acme")
    (warning,) = warnings(
        book.ok(adjust("ADJ-1", "beginning_balance", 1, serials=["S1"], cost="5"))
    )
    assert warning.code == "SERIAL_WAS_SHIPPED"
    says(warning.message, "returned to vendor Acme on shipment SO-7 line 1", "no vendor holds it")


def test_new_and_removed_serials_in_a_beginning_balance_are_not_warned_of() -> None:
    book = Book(item(serialized=True), receive("PO-1/1", 1, serials=["S1"]))
    book.ok(adjust("ADJ-1", "loss", -1, serials=["S1"]))
    assert (
        warnings(book.ok(adjust("ADJ-2", "beginning_balance", 2, serials=["S1", "S9"], cost="1")))
        == ()
    )


def test_a_serial_received_shipped_and_received_again_is_judged_by_its_latest_unit() -> None:
    """Shipped, back by a return, in stock: removed by a loss: no customer held it since."""
    book = shipped_s1()
    book.ok(give_back("RMA-1", 1, office="MAIN", customer="St Mary", serials=["S1"]))
    book.ok(adjust("ADJ-1", "loss", -1, office="MAIN", serials=["S1"]))
    assert (
        warnings(book.ok(adjust("ADJ-2", "beginning_balance", 1, serials=["S1"], cost="1"))) == ()
    )


def test_warnings_are_capped_the_last_saying_how_many_more() -> None:
    serials = [f"S{n:03}" for n in range(MAX_WARNINGS + 20)]
    book = Book(
        item(serialized=True),
        receive("PO-1/1", len(serials), serials=serials),
        allocate("SO-1", len(serials), serials=serials),
        ship("SO-1"),
    )
    listed = warnings(
        book.ok(adjust("ADJ-1", "beginning_balance", len(serials), serials=serials, cost="1"))
    )
    assert len(listed) == MAX_WARNINGS
    assert listed[-1].message.endswith("(20 more warnings on this adjustment not listed)")
    assert "not listed" not in listed[-2].message


# -- STOCK_IN_NO_LOT ----------------------------------------------------------------------------


def plain_sold(sold: int = 2) -> Book:
    return Book(
        item("P"),
        receive("PO-1/1", 5, lic="P", office="MAIN"),
        allocate("SO-1", sold, lic="P", office="MAIN"),
        ship("SO-1", lic="P"),
        lic="P",
    )


def test_a_count_adding_beyond_what_the_lots_used_warns_of_stock_in_no_lot() -> None:
    """R12: the 3 the lot cannot take back are unallocated stock; no sale takes it."""
    book = plain_sold()
    (warning,) = warnings(book.ok(adjust("ADJ-1", "count", 5, lic="P", office="MAIN")))
    assert (warning.code, warning.office, warning.lot_id) == ("STOCK_IN_NO_LOT", "MAIN", None)
    says(
        warning.message,
        "3 units of P went into no inventory lot at office MAIN",
        "could take back 2 of this count's 5",
        "no sale takes stock in no lot",
        "count or loss of -3 at office MAIN",
        "beginning balance of 3",
    )
    assert book.state.unallocated["MAIN"].quantity == 3


def test_the_stock_in_no_lot_remedy_makes_it_sellable() -> None:
    """R11, R12: a count removing the 3 (unallocated goes first), then a beginning balance."""
    book = plain_sold()
    book.ok(adjust("ADJ-1", "count", 5, lic="P", office="MAIN"))
    book.refused(allocate("SO-2", 6, lic="P", office="MAIN"), ReasonCode.INSUFFICIENT_STOCK)
    book.ok(adjust("ADJ-2", "count", -3, lic="P", office="MAIN"))
    assert "MAIN" not in book.state.unallocated
    assert (
        warnings(
            book.ok(adjust("ADJ-3", "beginning_balance", 3, lic="P", office="MAIN", cost="10"))
        )
        == ()
    )
    book.ok(allocate("SO-2", 8, lic="P", office="MAIN"))


def test_a_count_at_an_office_holding_none_of_the_item_names_the_offices_that_do() -> None:
    """ "Main" for "MAIN": no lot there ever, no stock there at all."""
    book = plain_sold()
    (warning,) = warnings(book.ok(adjust("ADJ-1", "count", 4, lic="P", office="Main")))
    says(
        warning.message,
        "4 units of P went into no inventory lot at office Main",
        "never had a lot of P and held none of it",
        "stock at office MAIN",
        "was office MAIN meant?",
        "count or loss of -4 at office Main",
        "send the count again",
    )


def test_a_second_count_at_an_office_with_only_unallocated_stock_is_not_called_mistyped() -> None:
    book = plain_sold()
    book.ok(adjust("ADJ-1", "count", 4, lic="P", office="WEST"))
    (warning,) = warnings(book.ok(adjust("ADJ-2", "count", 1, lic="P", office="WEST")))
    assert "meant" not in warning.message and "mistyped" not in warning.message
    says(warning.message, "1 unit of P", "never had a lot of the item", "remove it")


def test_a_count_the_lots_take_back_whole_has_no_warning() -> None:
    assert warnings(plain_sold().ok(adjust("ADJ-1", "count", 2, lic="P", office="MAIN"))) == ()


# -- LOT_EXPIRED_ON_ADJUSTMENT ------------------------------------------------------------------


def test_a_beginning_balance_of_an_expired_perishable_lot_warns() -> None:
    book = Book(item(track=True))
    gone, today = DAY - timedelta(days=3), DAY
    events = book.ok(
        adjust(
            "ADJ-1", "beginning_balance", 3, lots=[lot("A", 2, gone), lot("B", 1, today)], cost="1"
        )
    )
    (warning,) = warnings(events)
    assert (warning.code, warning.mfr_lot, warning.expires_on, warning.lot_id, warning.office) == (
        "LOT_EXPIRED_ON_ADJUSTMENT",
        "A",
        gone,
        "ADJ-1/L/BB",
        "AI",
    )
    says(
        warning.message,
        "manufacturer lot A of L (2 units) is expired",
        f"{gone}, is 3 days before the adjustment date, {DAY}",
        "QuarantineStock",
        "loss",
    )


def test_an_old_expiry_of_an_item_that_is_not_perishable_is_no_warning() -> None:
    book = Book(item(track=True, perishable=False))
    events = book.ok(
        adjust("ADJ-1", "beginning_balance", 1, lots=[lot("A", 1, date(2001, 1, 1))], cost="1")
    )
    assert warnings(events) == ()


# -- ESTIMATED_COST -----------------------------------------------------------------------------


def test_a_beginning_balance_without_unit_cost_says_the_estimated_cost_it_took() -> None:
    book = Book(item(cost="12.50"))
    (warning,) = warnings(book.ok(adjust("ADJ-1", "beginning_balance", 4)))
    assert (warning.code, warning.lot_id, warning.office) == ("ESTIMATED_COST", "ADJ-1/L/BB", "AI")
    says(warning.message, "4 units of L", "estimated unit cost, 12.5 each", "unit_cost")
    assert book.state.lots["ADJ-1/L/BB"].unit_cost == D("12.50")


def test_a_beginning_balance_with_unit_cost_has_no_warning() -> None:
    assert warnings(Book(item()).ok(adjust("ADJ-1", "beginning_balance", 4, cost="0"))) == ()
