"""Receiving's pure core: which receipts wait for items receiving does not know yet.

A new item's `ItemUpserted` usually reaches receiving after the item's first receipt, so a
receipt refused only `UNKNOWN_ITEM` is held for those items (`awaited_items`); one whose known
lines already have problems is refused at once, since those problems stay whatever arrives.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.receiving.domain import (
    Item,
    Limits,
    ReceiptLine,
    awaited_items,
    check_receipt,
    received_before,
    superseded,
)
from shared.reasons import ReasonCode
from tests.unit.receiving.test_receipt_checks import ITEMS, line, receipt


def test_a_receipt_naming_only_unknown_items_waits_for_each_of_them_once() -> None:
    checked = check_receipt(
        receipt(line("NEW-B", 1), line("NEW-A", 2, no=2), line("NEW-B", 3, no=3)), ITEMS
    )
    assert awaited_items(checked) == ("NEW-A", "NEW-B")


def test_a_receipt_whose_known_lines_are_good_waits_for_its_unknown_items() -> None:
    checked = check_receipt(receipt(line("PLAIN", 1), line("NEW", 2, no=2)), ITEMS)
    assert awaited_items(checked) == ("NEW",)


def test_a_receipt_whose_known_lines_have_problems_does_not_wait() -> None:
    """R3: the known line's LOT_REQUIRED stays whatever arrives: refused at once, naming both."""
    checked = check_receipt(receipt(line("MILK", 5), line("NEW", 2, no=2)), ITEMS)
    assert awaited_items(checked) == ()
    assert [(p.line_no, p.reason_code) for p in checked.problems] == [
        (1, ReasonCode.LOT_REQUIRED),
        (2, ReasonCode.UNKNOWN_ITEM),
    ]


def test_accepted_and_otherwise_refused_receipts_do_not_wait() -> None:
    assert awaited_items(check_receipt(receipt(line("PLAIN", 1)), ITEMS)) == ()
    assert awaited_items(check_receipt(receipt(line("CAM", 2, serials="S1")), ITEMS)) == ()


def test_once_its_items_arrive_a_held_receipt_is_checked_on_their_flags() -> None:
    """R3: checked again in full; an arrived lot-tracked item needs the lots the line lacks."""
    doc = receipt(line("PLAIN", 1), line("NEW", 2, no=2))
    assert awaited_items(check_receipt(doc, ITEMS)) == ("NEW",)

    plain = check_receipt(doc, {**ITEMS, "NEW": Item(lic="NEW")})
    assert plain.accepted
    assert [c.lic for c in plain.commands] == ["PLAIN", "NEW"]

    lots = check_receipt(doc, {**ITEMS, "NEW": Item(lic="NEW", track_mfr_lot=True)})
    assert [(p.line_no, p.reason_code) for p in lots.problems] == [(2, ReasonCode.LOT_REQUIRED)]
    assert awaited_items(lots) == ()


# --- the policy's premise, over many receipts ---------------------------------------------------

UNKNOWN = ("NEW-1", "NEW-2")
LIMITS = Limits(max_serials_per_document=4, max_serials_per_line=3)

lines = st.builds(
    lambda lic, qty, serials: ReceiptLine(
        line_no=1, lic=lic, quantity=Decimal(qty), serials=serials
    ),
    st.sampled_from(("PLAIN", "MILK", "CAM", "CAM-NS", *UNKNOWN)),
    st.integers(1, 3),
    st.one_of(st.none(), st.lists(st.sampled_from("ABC"), max_size=3).map(tuple)),
)
flags = st.builds(
    Item,
    lic=st.just(""),
    track_mfr_lot=st.booleans(),
    serialized=st.booleans(),
    next_serial=st.one_of(st.none(), st.just("100")),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(lines, min_size=1, max_size=5), st.tuples(flags, flags))
def test_problems_of_known_lines_stay_whatever_items_arrive(
    drawn: list[ReceiptLine], arriving: tuple[Item, Item]
) -> None:
    """Refusing at once is right: a receipt that does not wait is refused just the same once
    its unknown items are known, whatever their flags; one that waits no longer does."""
    doc = receipt(*(replace(x, line_no=n) for n, x in enumerate(drawn, start=1)))
    before = check_receipt(doc, ITEMS, LIMITS)
    known = {
        **ITEMS,
        **{lic: replace(f, lic=lic) for lic, f in zip(UNKNOWN, arriving, strict=True)},
    }
    after = check_receipt(doc, known, LIMITS)

    assert awaited_items(after) == ()
    assert ReasonCode.UNKNOWN_ITEM not in {p.reason_code for p in after.problems}
    if not before.accepted and not awaited_items(before):
        assert not after.accepted
    if awaited_items(before):
        assert set(awaited_items(before)) == {x.lic for x in drawn} & set(UNKNOWN)


# --- versions of one document ------------------------------------------------------------------


def test_a_held_version_superseded_by_a_newer_one_is_refused_with_its_own_problems() -> None:
    """Answered when the newer version arrives: its own problem, saying it was superseded."""
    held = check_receipt(receipt(line("PLAIN", 1), line("NEWW", 2, no=2)), ITEMS)
    (problem,) = superseded(held, "v2").problems
    assert (problem.line_no, problem.reason_code, problem.offending) == (
        2,
        ReasonCode.UNKNOWN_ITEM,
        "NEWW",
    )
    assert problem.reason == (
        "item NEWW is not known; superseded by message v2 of the same shipment_id while it waited"
    )


def test_a_superseded_version_whose_items_arrived_meanwhile_is_refused_too() -> None:
    (problem,) = superseded(check_receipt(receipt(line("PLAIN", 1)), ITEMS), "v2").problems
    assert (problem.line_no, problem.reason_code, problem.offending) == (
        None,
        ReasonCode.INVALID_QUANTITY,
        "v2",
    )


def test_a_customer_return_received_before_is_refused_first_naming_the_earlier_message() -> None:
    """R13: sent again under a new message id, it would put the same units back twice."""
    doc = receipt(line("PLAIN", 1), source="customer_return")
    first, *others = received_before(doc, check_receipt(doc, ITEMS), "r1").problems
    assert (first.line_no, first.reason_code, first.offending) == (
        None,
        ReasonCode.INVALID_QUANTITY,
        doc.shipment_id,
    )
    assert "message r1" in first.reason
    assert others == []
