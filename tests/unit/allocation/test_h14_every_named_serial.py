"""R9: a sale naming serials that cannot be taken is refused naming every one of them, not the
first alone, so the picks are fixed in one round (services/allocation/domain/picking.py
`named_serials`)."""

from __future__ import annotations

from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import LineAllocated
from tests.unit.allocation.builders import Book, allocate, item, receive


def _units(n: int) -> Book:
    return Book(
        item(serialized=True), receive("PO-1/1", n, serials=[f"S{i}" for i in range(1, n + 1)])
    )


def test_every_serial_that_cannot_be_taken_is_named() -> None:
    book = _units(3)
    book.ok(allocate("S-0", 1, serials=["S1"]))

    refusal = book.refused(
        allocate("S-1", 3, serials=["S1", "S2", "NOPE"]), ReasonCode.SERIAL_NOT_AVAILABLE
    )

    assert refusal.offending == "S1"  # the first one's
    assert "serial S1 of L is already allocated to shipment S-0 line 1" in refusal.reason
    assert "serial NOPE of L is not in stock" in refusal.reason
    assert "S2" not in refusal.reason  # it can be taken


def test_one_serial_that_cannot_be_taken_is_refused_as_before() -> None:
    book = _units(2)
    refusal = book.refused(
        allocate("S-1", 2, serials=["S1", "NOPE"]), ReasonCode.SERIAL_NOT_AVAILABLE
    )
    assert refusal.reason.startswith("serial NOPE of L is not in stock")
    assert ";" not in refusal.reason


def test_many_serials_are_listed_up_to_ten_then_counted() -> None:
    book = _units(1)
    wanted = [f"X{i}" for i in range(12)]
    refusal = book.refused(allocate("S-1", 12, serials=wanted), ReasonCode.SERIAL_NOT_AVAILABLE)
    assert refusal.reason.count("is not in stock") == 10
    assert refusal.reason.endswith("and 2 more serials named cannot be taken")


def test_serials_that_can_all_be_taken_are_allocated() -> None:
    events = _units(2).ok(allocate("S-1", 2, serials=["S2", "S1"]))
    (allocated,) = [e for e in events if isinstance(e, LineAllocated)]
    assert sorted(m.serial or "" for m in allocated.movements) == ["S1", "S2"]
