"""A count or loss refused says what to do (R11): how much of a lot's usage a count can put
back and the seed's remedy with its numbers (`LOT_QTY_EXCEEDS_USED`), which shipment lines hold
the stock a removal asked for (`INSUFFICIENT_STOCK`), and where a lot named at the wrong office
or with the wrong expiry is (`LOT_NOT_FOUND`). Codes and `offending` values are unchanged."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.adjusting import EXCEEDS_USED
from services.allocation.domain.errors import ReasonCode
from tests.unit.allocation.builders import (
    Book,
    adjust,
    allocate,
    item,
    lot,
    pick,
    receive,
    ship,
)

LATE = date(2024, 6, 1)


def says(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, (part, message)


# -- LOT_QTY_EXCEEDS_USED -----------------------------------------------------------------------


def test_a_count_adding_to_an_unused_lot_says_none_can_go_back_and_to_add_a_beginning_balance() -> (
    None
):
    book = Book(
        item("SAL-500", track=True),
        receive("PO-1/1", 10, lic="SAL-500", office="MAIN", lots=[lot("LC", 10, LATE)]),
        lic="SAL-500",
    )
    rejection = book.refused(
        adjust("ADJ-1", "count", 2, lic="SAL-500", office="MAIN", lots=[lot("LC", 2)]),
        ReasonCode.LOT_QTY_EXCEEDS_USED,
    )
    assert rejection.offending == "2 > 0"
    assert rejection.reason.startswith(EXCEEDS_USED)
    says(
        rejection.reason,
        "manufacturer lot LC of SAL-500 at office MAIN",
        "none of its units has been used",
        "this count adds 2",
        f"beginning balance of 2 naming lot LC expiring on {LATE}",
    )
    assert "(used)" not in rejection.reason


def test_the_seeds_count_says_how_much_goes_back_and_the_remedy_with_its_numbers_works() -> None:
    """The seed: a lot of 10, 1 sold, 2 found. Put back 1, a beginning balance for the other."""
    book = Book(
        item(track=True),
        receive("PO-1/1", 10, lots=[lot("MFR-1", 10, LATE)]),
        allocate("S-1", 1),
        ship("S-1"),
    )
    rejection = book.refused(
        adjust("ADJ-1", "loss", 2, lots=[lot("MFR-1", 2)]), ReasonCode.LOT_QTY_EXCEEDS_USED
    )
    assert rejection.offending == "2 > 1"
    says(
        rejection.reason,
        "1 of its units has been used",
        "a loss can put back at most 1",
        "this loss adds 2",
        "put back 1 with this loss naming lot MFR-1 for 1",
        f"the other 1 with a beginning balance of 1 naming lot MFR-1 expiring on {LATE}",
    )
    book.ok(adjust("ADJ-1", "loss", 1, lots=[lot("MFR-1", 1)]))
    book.ok(adjust("ADJ-2", "beginning_balance", 1, lots=[lot("MFR-1", 1, LATE)], cost="1"))
    assert sum(r.on_hand for r in book.state.mfr_lots.values()) == 11


# -- INSUFFICIENT_STOCK: who holds it -----------------------------------------------------------


def test_a_loss_of_allocated_lot_stock_names_the_office_and_the_shipment_lines_holding_it() -> None:
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, office="MAIN", lots=[lot("LB", 5, LATE)]),
        allocate("SO-4", 2, office="MAIN", lots=[pick("LB", 2)]),
    )
    rejection = book.refused(
        adjust("ADJ-1", "loss", -5, office="MAIN", lots=[lot("LB", 5)]),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    assert rejection.offending == "5 > 3"
    says(
        rejection.reason,
        "manufacturer lot LB of L at office MAIN: requested 5, available 3",
        "2 more on hand there are allocated to shipment SO-4 line 1 (2)",
        "ShipmentCancelled",
        "remove at most 3",
    )


def test_many_shipment_lines_holding_the_stock_are_named_first_few_then_counted() -> None:
    book = Book(item(track=True), receive("PO-1/1", 8, lots=[lot("LB", 8, LATE)]))
    for n in range(7):
        book.ok(allocate(f"SO-{n}", 1, lots=[pick("LB", 1)]))
    rejection = book.refused(
        adjust("ADJ-1", "loss", -2, lots=[lot("LB", 2)]), ReasonCode.INSUFFICIENT_STOCK
    )
    says(
        rejection.reason,
        "7 more on hand there are allocated to shipment SO-0 line 1 (1), shipment SO-1 line 1 (1)",
        "shipment SO-4 line 1 (1) and 2 more shipment lines",
    )
    assert "SO-5" not in rejection.reason


def test_the_refusal_names_the_first_lot_that_is_short_after_the_ones_before_it() -> None:
    book = Book(
        item(track=True),
        receive("PO-1/1", 6, lots=[lot("A", 3, LATE), lot("B", 3, LATE)]),
        allocate("SO-1", 2, lots=[pick("B", 2)]),
    )
    rejection = book.refused(
        adjust("ADJ-1", "loss", -5, lots=[lot("A", 3), lot("B", 2)]),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    says(rejection.reason, "manufacturer lot B of L at office AI: requested 2, available 1")
    assert rejection.offending == "2 > 1"


def test_a_loss_of_allocated_plain_stock_names_the_shipment_lines_holding_it() -> None:
    book = Book(item("P"), receive("PO-1/1", 5, lic="P"), allocate("SO-1", 4, lic="P"), lic="P")
    rejection = book.refused(adjust("ADJ-1", "loss", -3, lic="P"), ReasonCode.INSUFFICIENT_STOCK)
    says(
        rejection.reason,
        "item P at office AI: requested 3, available 1",
        "4 more on hand there are allocated to shipment SO-1 line 1 (4)",
    )


def test_a_loss_short_of_stock_none_holds_says_no_more() -> None:
    book = Book(item(track=True), receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]))
    rejection = book.refused(
        adjust("ADJ-1", "loss", -3, lots=[lot("A", 3)]), ReasonCode.INSUFFICIENT_STOCK
    )
    assert rejection.reason == "manufacturer lot A of L at office AI: requested 3, available 2"


# -- LOT_NOT_FOUND: where it is -----------------------------------------------------------------


def two_offices() -> Book:
    return Book(
        item(track=True),
        receive("PO-1/1", 5, office="MAIN", lots=[lot("LB", 5, LATE)]),
        receive("PO-2/1", 2, office="WEST", lots=[lot("LB", 2, LATE)]),
        allocate("SO-1", 1, office="MAIN", lots=[pick("LB", 1)]),
        ship("SO-1"),
    )


def test_a_loss_at_an_office_without_the_lot_names_the_offices_that_have_it() -> None:
    rejection = two_offices().refused(
        adjust("ADJ-1", "loss", -1, office="EAST", lots=[lot("LB", 1)]), ReasonCode.LOT_NOT_FOUND
    )
    assert rejection.offending == "LB"
    says(
        rejection.reason,
        "manufacturer lot LB of L is not at office EAST",
        "on hand at offices MAIN (4 on hand), WEST (2 on hand)",
    )


def test_a_loss_naming_a_wrong_expiry_says_the_expiry_the_office_holds() -> None:
    rejection = two_offices().refused(
        adjust("ADJ-1", "loss", -1, office="MAIN", lots=[lot("LB", 1, date(2024, 7, 1))]),
        ReasonCode.LOT_NOT_FOUND,
    )
    says(
        rejection.reason,
        "manufacturer lot LB expiring on 2024-07-01 of L is not at office MAIN",
        f"office MAIN holds manufacturer lot LB expiring on {LATE}",
    )


def test_a_count_putting_back_at_an_office_that_never_had_the_lot_names_where_it_was() -> None:
    rejection = two_offices().refused(
        adjust("ADJ-1", "count", 1, office="EAST", lots=[lot("LB", 1)]), ReasonCode.LOT_NOT_FOUND
    )
    says(
        rejection.reason,
        "manufacturer lot LB of L was never at office EAST",
        "received at offices MAIN, WEST",
        "beginning balance",
    )


def test_a_count_putting_back_a_wrong_expiry_says_the_one_the_office_had() -> None:
    rejection = two_offices().refused(
        adjust("ADJ-1", "count", 1, office="MAIN", lots=[lot("LB", 1, date(2030, 1, 1))]),
        ReasonCode.LOT_NOT_FOUND,
    )
    says(rejection.reason, f"office MAIN has had manufacturer lot LB expiring on {LATE}")


def test_a_lot_named_beside_serials_at_the_wrong_office_names_where_it_is() -> None:
    book = Book(
        item(track=True, serialized=True),
        receive("PO-1/1", 1, office="MAIN", lots=[lot("LB", 1, LATE)], serials=["S1"]),
        receive("PO-2/1", 1, office="EAST", lots=[lot("LC", 1, LATE)], serials=["S2"]),
    )
    rejection = book.refused(
        adjust("ADJ-1", "loss", -1, office="EAST", serials=["S2"], lots=[lot("LB", 1)]),
        ReasonCode.LOT_NOT_FOUND,
    )
    says(
        rejection.reason,
        "manufacturer lot LB of L is not at office EAST",
        "office MAIN (1 on hand)",
    )
