"""R9: a line of an item both lot-tracked and serialized may name serials and manufacturer lots
together. The serials decide which units go; each named lot must be at the office and name
exactly as many units as the named serials hold in it. A lot that contradicts the serials is
refused, never dropped without a word (§6)."""

from __future__ import annotations

from datetime import date

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import LineAllocated
from tests.unit.allocation.builders import Book, allocate, item, lot, pick, receive, ship

LATE = date(2030, 1, 1)


def book() -> Book:
    """S1 and S2 are in manufacturer lot L1, S3 in L2 (PO-1/1); S4 in L1 of PO-2/1; L9 is
    only at office EE."""
    return Book(
        item(track=True, serialized=True),
        receive(
            "PO-1/1",
            3,
            lots=[lot("L1", 2, LATE), lot("L2", 1, LATE)],
            serials=["S1", "S2", "S3"],
        ),
        receive("PO-2/1", 1, lots=[lot("L1", 1, LATE)], serials=["S4"]),
        receive("PO-3/1", 1, office="EE", lots=[lot("L9", 1, LATE)], serials=["S9"]),
    )


def allocated(events: tuple[object, ...]) -> LineAllocated:
    event = events[-1]
    assert isinstance(event, LineAllocated)
    return event


def test_a_lot_named_beside_serials_that_does_not_exist_is_refused() -> None:
    """R9: the audit's case: serial S1 with lot NOPE was allocated from S1's lot, NOPE dropped."""
    rejection = book().refused(
        allocate("S-1", 1, serials=["S1"], lots=[pick("NOPE", 1)]), ReasonCode.LOT_NOT_FOUND
    )
    assert rejection.offending == "NOPE" and "NOPE" in rejection.reason


def test_a_lot_named_beside_serials_must_be_at_the_shipments_office() -> None:
    """R9: L9 exists, but only at office EE."""
    rejection = book().refused(
        allocate("S-1", 2, serials=["S1"], lots=[pick("L1", 1), pick("L9", 1)]),
        ReasonCode.LOT_NOT_FOUND,
    )
    assert rejection.offending == "L9"


def test_a_lot_named_beside_serials_must_hold_those_serials() -> None:
    """R9: S1 is in L1, not in L2: the line names a lot its serials contradict."""
    rejection = book().refused(
        allocate("S-1", 1, serials=["S1"], lots=[pick("L2", 1)]), ReasonCode.INVALID_QUANTITY
    )
    assert rejection.offending == "L2"
    assert "L2" in rejection.reason and "0 of the named serials" in rejection.reason


def test_a_lot_named_beside_serials_must_name_as_many_units_as_they_hold_in_it() -> None:
    """R9: two serials of L1 named with L1 for 1, or for 3: the counts disagree either way."""
    b = book()
    for quantity in (1, 3):
        rejection = b.refused(
            allocate("S-1", 3, serials=["S1", "S2"], lots=[pick("L1", quantity)]),
            ReasonCode.INVALID_QUANTITY,
        )
        assert rejection.offending == "L1" and "2 of the named serials" in rejection.reason


def test_a_lot_named_twice_beside_serials_counts_both_entries() -> None:
    """R9: L1 for 1 and again for 1 names 2 units of L1, where the serials hold 1."""
    book().refused(
        allocate("S-1", 2, serials=["S1", "S3"], lots=[pick("L1", 1), pick("L1", 1)]),
        ReasonCode.INVALID_QUANTITY,
    )


def test_a_lot_narrowed_to_an_inventory_lot_must_hold_the_serials_there() -> None:
    """R9: L1 of PO-2/1 exists, but S1 is in L1 of PO-1/1."""
    b = book()
    rejection = b.refused(
        allocate("S-1", 1, serials=["S1"], lots=[pick("L1", 1, lot_id="PO-2/1")]),
        ReasonCode.INVALID_QUANTITY,
    )
    assert rejection.offending == "L1" and "PO-2/1" in rejection.reason
    b.refused(
        allocate("S-1", 1, serials=["S3"], lots=[pick("L2", 1, lot_id="PO-2/1")]),
        ReasonCode.LOT_NOT_FOUND,
    )
    event = allocated(b.ok(allocate("S-1", 1, serials=["S4"], lots=[pick("L1", 1, "PO-2/1")])))
    assert [(m.lot_id, m.mfr_lot, m.serial) for m in event.movements] == [("PO-2/1", "L1", "S4")]


def test_lots_that_add_up_with_the_serials_allocate_the_serials() -> None:
    """R9: lots agreeing with the serials change nothing: the serials' units are allocated,
    the line is complete and ships (R8)."""
    b = book()
    serials_only = allocated(book().ok(allocate("S-1", 3, serials=["S1", "S3", "S4"])))
    event = allocated(
        b.ok(allocate("S-1", 3, serials=["S1", "S3", "S4"], lots=[pick("L2", 1), pick("L1", 2)]))
    )
    assert event.movements == serials_only.movements and event.complete
    assert [(m.lot_id, m.mfr_lot, m.serial) for m in event.movements] == [
        ("PO-1/1", "L1", "S1"),
        ("PO-1/1", "L2", "S3"),
        ("PO-2/1", "L1", "S4"),
    ]
    b.ok(ship("S-1"))
    assert b.status("S1") == b.status("S3") == b.status("S4") == "shipped"


def test_lots_need_not_cover_every_serial_named_beside_them() -> None:
    """R9: a lot left out names nothing to check; the serials still decide. Only each lot that
    is named must agree with them."""
    b = book()
    event = allocated(b.ok(allocate("S-1", 2, serials=["S1", "S3"], lots=[pick("L2", 1)])))
    assert [m.serial for m in event.movements] == ["S1", "S3"] and event.complete


def test_a_vendor_return_naming_serials_and_a_contradicting_lot_is_refused() -> None:
    """R9, R14: the same check holds for a return to vendor."""
    book().refused(
        allocate("RTV-1", 1, kind="vendor_return", serials=["S3"], lots=[pick("L1", 1)]),
        ReasonCode.INVALID_QUANTITY,
    )


def test_a_serial_scanned_with_another_lot_than_its_own_is_refused_naming_it() -> None:
    """R5, R9, R15, unit by unit: S1 is in L1 and S3 in L2, but their labels were scanned as
    S1/L2 and S3/L1. The per-lot counts agree (one of each), so only the pairing tells: the
    first serial off its lot is refused, naming it, the lot it was scanned with and the lot
    it is in; nothing is allocated."""
    b = book()
    swapped = (("S1", "L2"), ("S3", "L1"))
    for lots in ([pick("L1", 1), pick("L2", 1)], []):
        rejection = b.refused(
            allocate("S-1", 2, serials=["S1", "S3"], lots=lots, serial_lots=swapped),
            ReasonCode.INVALID_QUANTITY,
        )
        assert rejection.offending == "S1"
        assert "S1" in rejection.reason and "scanned with manufacturer lot L2" in rejection.reason
        assert "it is in manufacturer lot L1" in rejection.reason
    assert b.status("S1") == b.status("S3") == "available"


def test_serials_scanned_with_their_own_lots_are_allocated() -> None:
    """R9, R15: the same line with each serial paired with the lot it is in allocates exactly
    those units, complete, as the serials alone would."""
    paired = (("S1", "L1"), ("S3", "L2"))
    for lots in ([pick("L1", 1), pick("L2", 1)], []):
        event = allocated(
            book().ok(allocate("S-1", 2, serials=["S1", "S3"], lots=lots, serial_lots=paired))
        )
        assert [(m.lot_id, m.mfr_lot, m.serial) for m in event.movements] == [
            ("PO-1/1", "L1", "S1"),
            ("PO-1/1", "L2", "S3"),
        ]
        assert event.complete


def test_a_serial_paired_with_a_lot_must_be_one_the_line_names() -> None:
    """R9: a pairing is checked against the units the line takes, never dropped unread."""
    rejection = book().refused(
        allocate("S-1", 1, serials=["S1"], serial_lots=[("S1", "L1"), ("S3", "L2")]),
        ReasonCode.INVALID_QUANTITY,
    )
    assert rejection.offending == "S3" and "does not name" in rejection.reason
