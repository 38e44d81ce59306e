"""Refusals naming a serial say where it is now and what will do what was asked (R6, R11,
R13): a count cannot put back a serial shipped to a customer (a customer return does), a
second return of a serial already back says it is in stock, and serials taken from the Next
Serial that are in stock already say where they came from, since the line typed none."""

from __future__ import annotations

from services.allocation.domain.errors import ReasonCode
from tests.unit.allocation.builders import (
    Book,
    adjust,
    allocate,
    give_back,
    item,
    receive,
    ship,
)

ST_MARY = "St Mary Hospital"


def shipped_book() -> Book:
    """SN-0004 shipped to St Mary Hospital on SO-7001; SN-0005 returned to its vendor on
    RTV-1; SN-0006 in stock; all at office MAIN."""
    return Book(
        item(serialized=True),
        receive("PO-1/1", 3, office="MAIN", serials=["SN-0004", "SN-0005", "SN-0006"]),
        allocate("SO-7001", 1, office="MAIN", to=ST_MARY, serials=["SN-0004"]),
        ship("SO-7001"),
        allocate("RTV-1", 1, office="MAIN", kind="vendor_return", to="Acme", serials=["SN-0005"]),
        ship("RTV-1"),
    )


# -- a count adding a serial (R11) ----------------------------------------------------------------


def test_r11_a_count_of_a_shipped_serial_says_whom_it_went_to_and_to_receive_a_return() -> None:
    """R11, R13: a beginning balance would make it available while the customer still holds
    it in the ledger: the refusal sends the clerk to a customer return, which then works."""
    book = shipped_book()
    refused = book.refused(
        adjust("ADJ-1", "count", 1, office="MAIN", serials=["SN-0004"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert refused.reason == (
        "serial SN-0004 of L was shipped to St Mary Hospital on shipment SO-7001 line 1: "
        "receive it as a customer return"
    )
    assert refused.offending == "SN-0004"
    book.ok(give_back("RMA-1", 1, office="MAIN", customer=ST_MARY, serials=["SN-0004"]))
    assert book.status("SN-0004") == "available"


def test_r11_a_count_of_a_serial_returned_to_its_vendor_says_to_receive_it_again() -> None:
    refused = shipped_book().refused(
        adjust("ADJ-1", "count", 1, office="MAIN", serials=["SN-0005"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert refused.reason == (
        "serial SN-0005 of L was returned to vendor Acme on shipment RTV-1 line 1: receive it again"
    )


def test_r11_only_a_serial_never_received_is_sent_to_a_beginning_balance() -> None:
    refused = shipped_book().refused(
        adjust("ADJ-1", "count", 1, office="MAIN", serials=["SN-9999"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert (
        refused.reason == "serial SN-9999 of L was never received: add it with a beginning balance"
    )


def test_r11_a_count_at_another_office_names_the_office_that_removed_the_serial() -> None:
    """R11: a serial a loss removed at MAIN comes back by a count at MAIN, as before."""
    book = shipped_book()
    book.ok(adjust("ADJ-1", "loss", -1, office="MAIN", serials=["SN-0006"]))
    refused = book.refused(
        adjust("ADJ-2", "count", 1, office="EAST", serials=["SN-0006"]),
        ReasonCode.SERIAL_NOT_AVAILABLE,
    )
    assert refused.reason == (
        "serial SN-0006 of L was removed from stock at office MAIN, not at office EAST: count "
        "it back in at office MAIN, or add it at office EAST with a beginning balance"
    )
    book.ok(adjust("ADJ-3", "count", 1, office="MAIN", serials=["SN-0006"]))
    assert book.status("SN-0006") == "available"


# -- a second customer return (R13) -------------------------------------------------------------


def returned_book() -> Book:
    """ST0001 shipped to St Mary Hospital on SO-7001 and back on RMA-3005, at office MAIN."""
    return Book(
        item(serialized=True),
        receive("PO-1/1", 2, office="MAIN", serials=["ST0001", "ST0002"]),
        allocate("SO-7001", 1, office="MAIN", to=ST_MARY, serials=["ST0001"]),
        ship("SO-7001"),
        give_back("RMA-3005", 1, office="MAIN", customer=ST_MARY, serials=["ST0001"]),
    )


def test_r13_a_second_return_of_a_serial_says_it_is_back_in_stock_not_that_it_never_shipped() -> (
    None
):
    book = returned_book()
    for customer in (ST_MARY, None):
        refused = book.refused(
            give_back("RMA-3040", 1, office="MAIN", customer=customer, serials=["ST0001"]),
            ReasonCode.SERIAL_NOT_SHIPPED,
        )
        assert refused.reason == (
            "serial ST0001 of L is not with a customer: it is in stock at office MAIN"
        )
        assert refused.offending == "ST0001"


def test_r13_a_return_of_a_serial_allocated_again_names_its_shipment_line() -> None:
    book = returned_book()
    book.ok(allocate("SO-8000", 1, office="MAIN", to="Bay Clinic", serials=["ST0001"]))
    refused = book.refused(
        give_back("RMA-3040", 1, office="MAIN", customer=ST_MARY, serials=["ST0001"]),
        ReasonCode.SERIAL_NOT_SHIPPED,
    )
    assert refused.reason == (
        "serial ST0001 of L is not with a customer: it is allocated to shipment SO-8000 line 1 "
        "at office MAIN"
    )


def test_r13_a_return_naming_the_earlier_customer_names_the_one_who_holds_it() -> None:
    """R13: shipped on to Bay Clinic, the serial is theirs to return, not St Mary's."""
    book = returned_book()
    book.ok(allocate("SO-8000", 1, office="MAIN", to="Bay Clinic", serials=["ST0001"]))
    book.ok(ship("SO-8000"))
    refused = book.refused(
        give_back("RMA-3040", 1, office="MAIN", customer=ST_MARY, serials=["ST0001"]),
        ReasonCode.SERIAL_NOT_SHIPPED,
    )
    assert refused.reason == (
        "serial ST0001 of L was shipped to Bay Clinic on shipment SO-8000 line 1, not to "
        "St Mary Hospital"
    )
    book.ok(give_back("RMA-3041", 1, office="MAIN", customer="Bay Clinic", serials=["ST0001"]))


def test_r13_a_return_of_a_serial_that_left_stock_otherwise_says_how() -> None:
    book = shipped_book()
    book.ok(adjust("ADJ-1", "loss", -1, office="MAIN", serials=["SN-0006"]))
    reasons = {
        serial: book.refused(
            give_back("RMA-1", 1, office="MAIN", customer=None, serials=[serial]),
            ReasonCode.SERIAL_NOT_SHIPPED,
        ).reason
        for serial in ("SN-0005", "SN-0006", "SN-9999")
    }
    assert reasons == {
        "SN-0005": (
            "serial SN-0005 of L is not with a customer: it was returned to vendor Acme on "
            "shipment RTV-1 line 1"
        ),
        "SN-0006": (
            "serial SN-0006 of L is not with a customer: it was removed from stock at office "
            "MAIN by a count or loss"
        ),
        "SN-9999": "serial SN-9999 of L was never received",
    }


# -- serials taken from the Next Serial (R6) --------------------------------------------------


def next_serial_book() -> Book:
    """Next Serial 00010; 00011 and 00012 typed in on an earlier receipt."""
    return Book(
        item(serialized=True, next_serial="00010"),
        receive("PO-1/1", 2, serials=["00011", "00012"]),
    )


def test_r6_generated_serials_in_stock_say_they_came_from_the_next_serial() -> None:
    """R4, R6: the clerk typed no serials; the refusal says where they came from and the two
    ways out. Refused, the Next Serial does not move (`Book.refused`: the state is as before)."""
    refused = next_serial_book().refused(
        receive("PO-2/1", 3, generate=True), ReasonCode.DUPLICATE_SERIAL
    )
    assert refused.reason == (
        "the line names no serials, so they were taken from the Next Serial of item L (00010 to "
        "00012), but serials 00011, 00012 are already in stock: type the line's serials, or send "
        "the item's next_serial past those in stock"
    )
    assert refused.offending == "00011"


def test_r6_one_generated_serial_in_stock_is_named_alone() -> None:
    book = Book(item(serialized=True, next_serial="00011"), receive("PO-1/1", 1, serials=["00011"]))
    refused = book.refused(receive("PO-2/1", 1, generate=True), ReasonCode.DUPLICATE_SERIAL)
    assert refused.reason == (
        "the line names no serials, so they were taken from the Next Serial of item L (00011), "
        "but serial 00011 is already in stock: type the line's serials, or send the item's "
        "next_serial past those in stock"
    )


def test_r4_a_typed_serial_in_stock_is_refused_as_before() -> None:
    refused = next_serial_book().refused(
        receive("PO-2/1", 1, serials=["00012"]), ReasonCode.DUPLICATE_SERIAL
    )
    assert (
        refused.reason
        == "serial 00012 of L is already in stock at office AI, in inventory lot PO-1/1"
    )
