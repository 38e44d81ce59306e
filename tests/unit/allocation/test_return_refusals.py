"""A customer return refused says what a returns-desk clerk needs (R13): a manufacturer lot the
item never had is `LOT_NOT_FOUND`, naming the lots that were shipped, as a pick or a count
naming one is; `RETURN_EXCEEDS_SHIPPED` shows its arithmetic (shipped, returned, what can come
back) and, for a named customer, how returns that named no customer were counted against them;
no reason says "only 0 was shipped". What is allowed does not change."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.returning import UNNAMED_RETURNS
from tests.unit.allocation.builders import (
    Book,
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
FLOUR = "FLOUR"


def flour(*lots: str, office: str = "MAIN") -> Book:
    """FLOUR with 30 of each of `lots` received at `office`."""
    return Book(
        item(FLOUR, track=True),
        receive(
            "PO-1/1",
            30 * len(lots),
            lic=FLOUR,
            office=office,
            lots=[lot(n, 30, LATE) for n in lots],
        ),
        lic=FLOUR,
    )


def sell(book: Book, shipment_id: str, to: str | None, *picks: tuple[str, int]) -> None:
    quantity = sum(q for _, q in picks)
    book.ok(
        allocate(
            shipment_id,
            quantity,
            lic=FLOUR,
            office="MAIN",
            to=to,
            lots=[pick(name, q) for name, q in picks],
        )
    )
    book.ok(ship(shipment_id, lic=FLOUR))


def back(
    doc: str, quantity: int, name: str, *, customer: str | None = "CUST-A", office: str = "MAIN"
) -> object:
    return give_back(
        doc, quantity, lic=FLOUR, customer=customer, office=office, lots=[pick(name, quantity)]
    )


# -- a manufacturer lot the item never had -------------------------------------------------------


def test_a_return_naming_a_lot_the_item_never_had_is_lot_not_found_naming_the_lots_shipped() -> (
    None
):
    """R13: the clerk's typo L-ZZ was "returning 2, but only 0 was shipped to CUST-A"."""
    book = flour("L-A", "L-B", "L-C")
    sell(book, "SO-1", "CUST-A", ("L-B", 2), ("L-A", 3))
    sell(book, "SO-2", "CUST-X", ("L-C", 1))
    rejection = book.refused(back("RMA-1", 2, "L-ZZ"), ReasonCode.LOT_NOT_FOUND)
    assert rejection.offending == "L-ZZ"
    assert rejection.reason == (
        "item FLOUR has no manufacturer lot L-ZZ; manufacturer lots shipped to CUST-A from "
        "office MAIN: L-A, L-B"
    )


def test_the_lots_shipped_are_named_first_few_then_counted() -> None:
    names = [f"L-{n}" for n in range(1, 8)]
    book = flour(*names)
    sell(book, "SO-1", "CUST-A", *((name, 1) for name in names))
    rejection = book.refused(back("RMA-1", 1, "L-ZZ"), ReasonCode.LOT_NOT_FOUND)
    assert rejection.reason.endswith(": L-1, L-2, L-3, L-4, L-5 and 2 more")


def test_a_lot_the_item_never_had_with_nothing_shipped_to_the_customer_says_so_alone() -> None:
    book = flour("L-A")
    sell(book, "SO-1", "CUST-X", ("L-A", 2))
    one = flour("L-A")
    sell(one, "SO-1", "CUST-A", ("L-A", 2))
    rejection = book.refused(back("RMA-1", 2, "L-ZZ"), ReasonCode.LOT_NOT_FOUND)
    assert rejection.reason == "item FLOUR has no manufacturer lot L-ZZ"
    single = one.refused(back("RMA-1", 2, "L-ZZ"), ReasonCode.LOT_NOT_FOUND)
    assert single.reason.endswith("; manufacturer lot shipped to CUST-A from office MAIN: L-A")


def test_a_return_naming_no_customer_names_the_lots_shipped_from_the_office() -> None:
    book = flour("L-A", "L-B")
    sell(book, "SO-1", "CUST-A", ("L-A", 1))
    sell(book, "SO-2", None, ("L-B", 1))
    rejection = book.refused(back("RMA-1", 1, "L-ZZ", customer=None), ReasonCode.LOT_NOT_FOUND)
    assert rejection.reason.endswith("; manufacturer lots shipped from office MAIN: L-A, L-B")


def test_the_unknown_lot_is_refused_even_after_a_good_entry_on_the_same_return() -> None:
    book = flour("L-A")
    sell(book, "SO-1", "CUST-A", ("L-A", 5))
    command = give_back(
        "RMA-1", 3, lic=FLOUR, customer="CUST-A", office="MAIN",
        lots=[pick("L-A", 1), pick("L-ZZ", 2)],
    )  # fmt: skip
    rejection = book.refused(command, ReasonCode.LOT_NOT_FOUND)
    assert rejection.offending == "L-ZZ"


def test_a_lot_the_item_has_but_never_shipped_to_the_customer_stays_exceeds_shipped() -> None:
    """R13: L-B is the item's, received and never shipped to CUST-A: none was shipped."""
    book = flour("L-A", "L-B")
    sell(book, "SO-1", "CUST-A", ("L-A", 2))
    rejection = book.refused(back("RMA-1", 2, "L-B"), ReasonCode.RETURN_EXCEEDS_SHIPPED)
    assert rejection.offending == "2 > 0"
    assert rejection.reason == (
        "manufacturer lot L-B: returning 2, but none was shipped to CUST-A from office MAIN"
    )


def test_a_lot_the_item_has_only_at_another_office_stays_exceeds_shipped() -> None:
    book = flour("L-A", office="WEST")
    rejection = book.refused(back("RMA-1", 1, "L-A"), ReasonCode.RETURN_EXCEEDS_SHIPPED)
    assert "only 0" not in rejection.reason
    assert rejection.reason.endswith("none was shipped to CUST-A from office MAIN")


def test_a_plain_item_nothing_was_shipped_of_says_none() -> None:
    book = Book(item("P"), receive("PO-1/1", 5, lic="P"), lic="P")
    rejection = book.refused(give_back("R-1", 1, lic="P"), ReasonCode.RETURN_EXCEEDS_SHIPPED)
    assert (
        rejection.reason == "item P: returning 1, but none was shipped to Customer from office AI"
    )


def test_usage_all_counted_back_says_none_can_come_back() -> None:
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]),
        allocate("S-1", 3, to="Acme", lots=[pick("A", 3)]),
        ship("S-1"),
        adjust("ADJ-1", "count", 3, lots=[lot("A", 3)]),
    )
    rejection = book.refused(
        give_back("R-1", 1, customer="Acme", lots=[pick("A", 1)]),
        ReasonCode.RETURN_EXCEEDS_SHIPPED,
    )
    assert rejection.reason == (
        "manufacturer lot A: returning 1, but none can come back: 3 was shipped to Acme from "
        "office AI and not returned, but counts have put back the usage of 3 of it (add the "
        "rest with a beginning balance)"
    )


# -- RETURN_EXCEEDS_SHIPPED shows its arithmetic ---------------------------------------------------


def clerks_lot() -> Book:
    """RMA-5 returned 3 of L-A at MAIN naming no customer; CUST-B had been shipped 20."""
    book = flour("L-A", "L-B", "L-C")
    sell(book, "SO-1", "CUST-B", ("L-A", 10), ("L-B", 10))
    sell(book, "SO-2", "CUST-B", ("L-A", 10))
    book.ok(back("RMA-5", 3, "L-A", customer=None))
    return book


def test_a_refusal_after_a_return_naming_no_customer_shows_shipped_returned_and_the_rule() -> None:
    """R13: "only 17 was shipped to CUST-B and not returned" left the clerk, whose recall
    sheet says CUST-B holds 20, unable to see where 3 went."""
    book = clerks_lot()
    rejection = book.refused(
        back("RMA-8", 18, "L-A", customer="CUST-B"), ReasonCode.RETURN_EXCEEDS_SHIPPED
    )
    assert rejection.offending == "18 > 17"
    assert rejection.reason == (
        "manufacturer lot L-A: returning 18, but 20 was shipped to CUST-B from office MAIN and "
        f"3 of it was returned, so only 17 can come back; {UNNAMED_RETURNS}"
    )
    assert "newest inventory lot first" in UNNAMED_RETURNS
    assert "the sale that named no customer first, then customers by name" in UNNAMED_RETURNS
    book.ok(back("RMA-8", 17, "L-A", customer="CUST-B"))  # what is allowed is unchanged


def test_a_return_naming_no_customer_refused_shows_the_arithmetic_without_the_rule() -> None:
    book = clerks_lot()
    rejection = book.refused(
        back("RMA-9", 18, "L-A", customer=None), ReasonCode.RETURN_EXCEEDS_SHIPPED
    )
    assert rejection.reason == (
        "manufacturer lot L-A: returning 18, but 20 was shipped from office MAIN and 3 of it "
        "was returned, so only 17 can come back"
    )


def test_everything_returned_says_none_can_come_back() -> None:
    book = flour("L-A")
    sell(book, "SO-1", "CUST-A", ("L-A", 2))
    book.ok(back("RMA-1", 2, "L-A"))
    rejection = book.refused(back("RMA-2", 1, "L-A"), ReasonCode.RETURN_EXCEEDS_SHIPPED)
    assert rejection.offending == "1 > 0"
    assert rejection.reason.startswith(
        "manufacturer lot L-A: returning 1, but 2 was shipped to CUST-A from office MAIN and 2 "
        "of it was returned, so none can come back; "
    )


def test_nothing_returned_yet_says_only_what_was_shipped() -> None:
    book = flour("L-A")
    sell(book, "SO-1", "CUST-A", ("L-A", 2))
    rejection = book.refused(back("RMA-1", 3, "L-A"), ReasonCode.RETURN_EXCEEDS_SHIPPED)
    assert rejection.reason == (
        "manufacturer lot L-A: returning 3, but only 2 was shipped to CUST-A from office MAIN"
    )


def test_returned_and_counted_back_shows_both() -> None:
    """R11, R13: 5 shipped, 2 returned, a count put back 2 of the 3 still out: 1 can come."""
    book = Book(
        item(track=True),
        receive("PO-1/1", 5, lots=[lot("A", 5, LATE)]),
        allocate("S-1", 5, to="Acme", lots=[pick("A", 5)]),
        ship("S-1"),
        give_back("R-1", 2, customer="Acme", lots=[pick("A", 2)]),
        adjust("ADJ-1", "count", 2, lots=[lot("A", 2)]),
    )
    rejection = book.refused(
        give_back("R-2", 2, customer="Acme", lots=[pick("A", 2)]),
        ReasonCode.RETURN_EXCEEDS_SHIPPED,
    )
    assert rejection.offending == "2 > 1"
    assert rejection.reason == (
        "manufacturer lot A: returning 2, but only 1 can come back: 5 was shipped to Acme from "
        "office AI and 2 of it was returned, leaving 3, but counts have put back the usage of 2 "
        f"of it (add the rest with a beginning balance); {UNNAMED_RETURNS}"
    )
