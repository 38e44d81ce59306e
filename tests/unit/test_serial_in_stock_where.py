"""R4: a serial in stock cannot come in again, and the DUPLICATE_SERIAL refusal says where
the unit in stock is: its office and inventory lot, and what holds it when it is not free
(services/allocation/domain/checks.py `in_stock`, given the draft)."""

from __future__ import annotations

from dataclasses import replace

from services.allocation.domain import checks
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import Item
from tests.unit.allocation.builders import (
    Book,
    adjust,
    allocate,
    give_back,
    item,
    receive,
    ship,
)


def back_in_west() -> Book:
    """SN-5 shipped from MAIN to Acme, then received again at office WEST (PO-2/1)."""
    return Book(
        item(serialized=True),
        receive("PO-1/1", 1, office="MAIN", serials=["SN-5"]),
        allocate("SO-1", 1, office="MAIN", to="Acme", serials=["SN-5"]),
        ship("SO-1"),
        receive("PO-2/1", 1, office="WEST", serials=["SN-5"]),
    )


def _item(book: Book) -> Item:
    assert book.state.item is not None
    return book.state.item


def test_r13_a_return_of_a_serial_in_stock_at_another_office_names_office_and_lot() -> None:
    refused = back_in_west().refused(
        give_back("RMA-1", 1, office="MAIN", customer="Acme", serials=["SN-5"]),
        ReasonCode.DUPLICATE_SERIAL,
    )
    assert (
        refused.reason
        == "serial SN-5 of L is already in stock at office WEST, in inventory lot PO-2/1"
    )
    assert refused.offending == "SN-5"


def test_r13_a_serial_in_stock_allocated_names_the_shipment_line() -> None:
    book = back_in_west()
    book.ok(allocate("SO-9", 1, office="WEST", line_no=2, serials=["SN-5"]))
    refused = book.refused(
        give_back("RMA-1", 1, office="MAIN", customer="Acme", serials=["SN-5"]),
        ReasonCode.DUPLICATE_SERIAL,
    )
    assert refused.reason == (
        "serial SN-5 of L is already in stock at office WEST, in inventory lot PO-2/1, "
        "allocated to shipment SO-9 line 2"
    )


def test_r11_a_count_of_a_serial_in_stock_names_office_and_lot() -> None:
    book = Book(item(serialized=True), receive("PO-1/1", 1, office="MAIN", serials=["SN-5"]))
    refused = book.refused(
        adjust("ADJ-1", "count", 1, office="WEST", serials=["SN-5"]), ReasonCode.DUPLICATE_SERIAL
    )
    assert (
        refused.reason
        == "serial SN-5 of L is already in stock at office MAIN, in inventory lot PO-1/1"
    )


def test_r4_a_unit_on_a_held_receipt_says_so() -> None:
    book = Book(item(serialized=True))
    book.ok(replace(receive("PO-1/1", 1, office="MAIN", serials=["SN-5"]), hold=True))
    refusal = checks.in_stock(_item(book), "SN-5", Draft(book.state))
    assert refusal.code is ReasonCode.DUPLICATE_SERIAL
    assert refusal.reason == (
        "serial SN-5 of L is already in stock at office MAIN, in inventory lot PO-1/1, on"
        " receipt PO-1 line 1, held until every line of the document is accepted"
    )


def test_r4_a_unit_on_a_held_return_says_so() -> None:
    book = Book(
        item(serialized=True),
        receive("PO-1/1", 1, office="MAIN", serials=["SN-5"]),
        allocate("SO-1", 1, office="MAIN", to="Acme", serials=["SN-5"]),
        ship("SO-1"),
    )
    book.ok(
        replace(give_back("RMA-1", 1, office="MAIN", customer="Acme", serials=["SN-5"]), hold=True)
    )
    refusal = checks.in_stock(_item(book), "SN-5", Draft(book.state))
    assert refusal.reason == (
        "serial SN-5 of L is already in stock at office MAIN, in inventory lot PO-1/1, coming"
        " back on customer return RMA-1 line 1, held until every line of the document is"
        " accepted"
    )


def test_r4_without_the_draft_the_reason_is_as_before() -> None:
    """What a caller not yet passing the draft (receiving, for now) still says."""
    book = Book(item(serialized=True), receive("PO-1/1", 1, office="MAIN", serials=["SN-5"]))
    assert checks.in_stock(_item(book), "SN-5").reason == "serial SN-5 of L is already in stock"
