"""A shipment line naming a manufacturer lot short of free stock (a return to vendor, R14, or a
sale, R9) is refused `INSUFFICIENT_STOCK` naming the office and where the rest of the lot's
stock on hand is: the shipment lines it is allocated to (as a serial's refusal names the line
holding it), a held receipt, and for a sale the quarantine holding it. The words are a count's
or loss's (`not_free`, shared with `adjusting`). Codes and `offending` are unchanged."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from services.allocation.domain.errors import ReasonCode
from tests.unit.allocation.builders import (
    Book,
    allocate,
    give_back,
    item,
    lot,
    pick,
    quarantine,
    receive,
    ship,
)

LATE = date(2024, 6, 1)
RELEASE = (
    "a shipment line takes only free stock, so release it from those lines first "
    "(ShipmentCancelled, or ShipmentPicksUpdated naming other stock)"
)


def flour_held_by_a_sale() -> Book:
    """SO-6 holds all 20 of lot L-B at MAIN."""
    return Book(
        item("FLOUR", track=True),
        receive("PO-1/1", 20, lic="FLOUR", office="MAIN", lots=[lot("L-B", 20, LATE)]),
        allocate("SO-6", 20, lic="FLOUR", office="MAIN", lots=[pick("L-B", 20)]),
        lic="FLOUR",
    )


def test_a_return_to_vendor_of_allocated_stock_names_the_office_and_the_line_holding_it() -> None:
    """R14: the clerk saw 20 on hand and "manufacturer lot L-B: requested 5, available 0"."""
    rejection = flour_held_by_a_sale().refused(
        allocate(
            "RTV-1", 5, lic="FLOUR", office="MAIN", kind="vendor_return", to="VEND",
            lots=[pick("L-B", 5)],
        ),
        ReasonCode.INSUFFICIENT_STOCK,
    )  # fmt: skip
    assert rejection.offending == "5 > 0"
    assert rejection.reason == (
        "manufacturer lot L-B of FLOUR at office MAIN: requested 5, available 0; 20 more on "
        f"hand there are allocated to shipment SO-6 line 1 (20): {RELEASE}"
    )


def test_a_sale_naming_a_lot_partly_allocated_says_how_much_it_may_name() -> None:
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, office="MAIN", lots=[lot("LB", 5, LATE)]),
        allocate("SO-4", 2, office="MAIN", lots=[pick("LB", 2)]),
        allocate("SO-5", 1, office="MAIN", lots=[pick("LB", 1)], line_no=3),
    )
    rejection = book.refused(
        allocate("SO-9", 4, office="MAIN", lots=[pick("LB", 4)]), ReasonCode.INSUFFICIENT_STOCK
    )
    assert rejection.offending == "4 > 2"
    assert rejection.reason == (
        "manufacturer lot LB of L at office MAIN: requested 4, available 2; 3 more on hand "
        "there are allocated to shipment SO-4 line 1 (2), shipment SO-5 line 3 (1): "
        f"{RELEASE}, or name at most 2"
    )


def test_a_sale_naming_a_lot_short_with_no_other_holder_says_no_more() -> None:
    book = Book(item(track=True), receive("PO-1/1", 2, lots=[lot("A", 2, LATE)]))
    rejection = book.refused(allocate("S-1", 3, lots=[pick("A", 3)]), ReasonCode.INSUFFICIENT_STOCK)
    assert rejection.reason == "manufacturer lot A of L at office AI: requested 3, available 2"


def quarantined_half() -> Book:
    """Lot LB in two receipts at MAIN; the first in quarantine Q-1."""
    return Book(
        item(track=True),
        receive("PO-1/1", 4, office="MAIN", lots=[lot("LB", 4, LATE)]),
        receive("PO-2/1", 3, office="MAIN", lots=[lot("LB", 3, LATE)]),
        quarantine("Q-1", lot_id="PO-1/1", reason="recall"),
        allocate("SO-1", 1, office="MAIN", lots=[pick("LB", 1)]),
    )


def test_a_sale_naming_a_lot_partly_in_quarantine_names_the_quarantine_and_the_lines() -> None:
    rejection = quarantined_half().refused(
        allocate("SO-2", 5, office="MAIN", lots=[pick("LB", 5)]), ReasonCode.INSUFFICIENT_STOCK
    )
    assert rejection.offending == "5 > 2"
    assert rejection.reason == (
        "manufacturer lot LB of L at office MAIN: requested 5, available 2, and 4 more in "
        "quarantine (quarantine Q-1: recall), which a sale may not take; 1 more on hand there "
        f"is allocated to shipment SO-1 line 1 (1): {RELEASE}, or name at most 2"
    )


def test_a_return_to_vendor_takes_quarantined_stock_so_its_refusal_does_not_count_it_out() -> None:
    """R14: a vendor return may take quarantined stock it names: it is available to it."""
    rejection = quarantined_half().refused(
        allocate("RTV-1", 7, office="MAIN", kind="vendor_return", to="V", lots=[pick("LB", 7)]),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    assert rejection.offending == "7 > 6"
    assert "quarantine" not in rejection.reason
    assert "allocated to shipment SO-1 line 1 (1)" in rejection.reason


def test_stock_on_a_held_return_is_named_too() -> None:
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]),
        allocate("S-1", 5, to="Acme", lots=[pick("A", 5)]),
        ship("S-1"),
    )
    book.ok(replace(give_back("R-1", 2, customer="Acme", lots=[pick("A", 2)]), hold=True))
    rejection = book.refused(
        allocate("RTV-1", 1, kind="vendor_return", to="V", lots=[pick("A", 1)]),
        ReasonCode.INSUFFICIENT_STOCK,
    )
    assert rejection.reason == (
        "manufacturer lot A of L at office AI: requested 1, available 0; 2 more are on R-1"
        " line 1, held until every line of the document is accepted: a shipment line takes"
        " only free stock, so send this again once that document posts"
    )


def test_a_sale_naming_a_lot_of_serialized_units_names_the_lines_holding_them() -> None:
    book = Book(
        item(track=True, serialized=True, perishable=False),
        receive("PO-1/1", 2, office="MAIN", lots=[lot("LB", 2)], serials=["S1", "S2"]),
        allocate("SO-6", 2, office="MAIN", serials=["S1", "S2"]),
    )
    sale = book.refused(
        allocate("SO-7", 1, office="MAIN", lots=[pick("LB", 1)]), ReasonCode.INSUFFICIENT_STOCK
    )
    assert sale.offending == "1 > 0"
    assert sale.reason == (
        "manufacturer lot LB of L at office MAIN: requested 1, available 0; 2 more on hand "
        f"there are allocated to shipment SO-6 line 1 (2): {RELEASE}"
    )
