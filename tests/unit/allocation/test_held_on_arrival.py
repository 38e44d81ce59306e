"""Units arriving in stock that a quarantine in force holds are named by allocation's answer
(`StockReceived.quarantined`, `StockReturned.quarantined`), so receiving can tell the dock to
put them in quarantine storage: per inventory lot, manufacturer lot and quarantine, every
quarantine holding them. services/allocation/domain/receiving.py (`held_on_arrival`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.allocation import translate
from services.allocation.domain import model as d
from services.allocation.domain.model import (
    HeldOnArrival,
    LineHeld,
    Quarantine,
    StockReceived,
    StockReturned,
)
from shared.contracts import events as e
from shared.contracts.codec import encode
from tests.unit.allocation.builders import (
    Book,
    D,
    allocate,
    give_back,
    item,
    lot,
    pick,
    quarantine,
    receive,
    ship,
)

EXPIRES = date(2027, 6, 30)


def _recalled(*, office: str | None = None) -> Book:
    """A perishable lot-tracked item whose manufacturer lot LOTZ is recalled before it
    arrives."""
    return Book(
        item(track=True),
        quarantine(
            "Q-7", mfr_lot="LOTZ", office=office, reason="supplier recall", before_receipt=True
        ),
    )


def _received(book: Book, command: d.ReceiveStock) -> StockReceived:
    (event,) = book.ok(command)
    assert isinstance(event, StockReceived)
    return event


def test_a_receipt_of_a_recalled_lot_names_the_units_and_the_quarantine() -> None:
    book = _recalled()
    event = _received(book, receive("PO-1/1", 2, lots=[lot("LOTZ", 2, EXPIRES)]))
    rule = Quarantine(
        mfr_lot="LOTZ", lot_id="", office="", quarantine_id="Q-7", reason="supplier recall"
    )
    assert event.quarantined == (
        HeldOnArrival(lot_id="PO-1/1", mfr_lot="LOTZ", quantity=D(2), quarantine=rule),
    )


def test_only_the_held_lots_of_a_line_are_named() -> None:
    book = _recalled()
    event = _received(
        book, receive("PO-1/1", 5, lots=[lot("GOOD", 3, EXPIRES), lot("LOTZ", 2, EXPIRES)])
    )
    assert [(h.mfr_lot, h.quantity) for h in event.quarantined] == [("LOTZ", D(2))]


def test_nothing_is_named_without_a_quarantine_or_at_another_office() -> None:
    plain = Book(item(track=True))
    arrival = receive("PO-1/1", 2, lots=[lot("LOTZ", 2, EXPIRES)])
    assert _received(plain, arrival).quarantined == ()
    assert _received(_recalled(office="NORTH"), arrival).quarantined == ()
    event = _received(_recalled(office="AI"), arrival)
    assert [h.quarantine.office for h in event.quarantined] == ["AI"]


def test_serialized_units_are_counted_by_their_lot() -> None:
    book = Book(
        item(track=True, serialized=True),
        quarantine("Q-7", mfr_lot="LOTZ", before_receipt=True),
    )
    event = _received(
        book,
        receive(
            "PO-1/1",
            3,
            lots=[lot("LOTZ", 2, EXPIRES), lot("GOOD", 1, EXPIRES)],
            serials=["S1", "S2", "S3"],
        ),
    )
    assert [(h.lot_id, h.mfr_lot, h.quantity) for h in event.quarantined] == [
        ("PO-1/1", "LOTZ", D(2))
    ]


def test_a_held_line_keeps_them_in_its_kept_event() -> None:
    """A line of a document with several is held: its event, published on confirm, names
    them too."""
    book = _recalled()
    command = receive("PO-1/1", 2, lots=[lot("LOTZ", 2, EXPIRES)])
    (held,) = book.ok(d.ReceiveStock(**{**_fields(command), "hold": True}))
    assert isinstance(held, LineHeld)
    assert [h.quarantine.quarantine_id for h in held.decided.quarantined] == ["Q-7"]


def test_a_return_into_a_quarantined_lot_names_every_quarantine_holding_it() -> None:
    """Two quarantines hold the lot the unit goes back to: each must be released, so both
    are named (in key order: the one at every office first, whatever order they were put in
    force)."""
    book = Book(item(), receive("PO-1/1", 5))
    book.ok(allocate("S-1", 2))
    book.ok(ship("S-1"))
    book.ok(quarantine("Q-AI", lot_id="PO-1/1", office="AI", reason="audit"))
    book.ok(quarantine("Q-LOT", lot_id="PO-1/1", reason="failed QA"))
    (event,) = book.ok(give_back("RMA-1", 1))
    assert isinstance(event, StockReturned)
    assert [
        (h.lot_id, h.mfr_lot, h.quantity, h.quarantine.quarantine_id) for h in event.quarantined
    ] == [
        ("PO-1/1", None, D(1), "Q-LOT"),
        ("PO-1/1", None, D(1), "Q-AI"),
    ]


def test_a_return_of_a_lot_not_held_names_nothing() -> None:
    book = Book(
        item(track=True), receive("PO-1/1", 4, lots=[lot("A", 2, EXPIRES), lot("B", 2, EXPIRES)])
    )
    book.ok(allocate("S-1", 4))
    book.ok(ship("S-1"))
    book.ok(quarantine("Q-B", mfr_lot="B"))
    (event,) = book.ok(give_back("RMA-1", 1, lots=[pick("A", 1)]))
    assert isinstance(event, StockReturned) and event.quarantined == ()
    (event,) = book.ok(give_back("RMA-2", 1, lots=[pick("B", 1)]))
    assert isinstance(event, StockReturned)
    assert [(h.mfr_lot, h.quarantine.quarantine_id) for h in event.quarantined] == [("B", "Q-B")]


def test_the_wire_events_carry_them_as_the_validating_build_writes_them() -> None:
    book = _recalled()
    command = receive("PO-1/1", 2, lots=[lot("LOTZ", 2, EXPIRES)])
    event = _received(book, command)
    wire = translate.to_wire(event, "m-1", command)
    assert isinstance(wire, e.StockReceived)
    assert encode(wire) == encode(e.StockReceived.model_validate(wire.model_dump()))
    (held,) = wire.quarantined
    assert held.model_dump() == {
        "lot_id": "PO-1/1",
        "mfr_lot": "LOTZ",
        "quantity": D(2),
        "quarantine": {
            "quarantine_id": "Q-7",
            "reason": "supplier recall",
            "mfr_lot": "LOTZ",
            "lot_id": None,
            "office": None,
        },
    }


def _fields(command: Any) -> dict[str, Any]:
    return {name: getattr(command, name) for name in command.__dataclass_fields__}
