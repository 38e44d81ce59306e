"""A status lists every unit its lines moved; one that could not be carried in one message
(a sale of hundreds of thousands of serials) still answers its documents, without the lines'
movements and saying so, instead of being refused by the broker and parked unanswered."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import TypeAdapter

from services.shipping import model, translate
from shared.contracts import status as s
from shared.contracts.codec import MAX_EVENT_BYTES, decode, encode
from shared.movements import Moved


def _units(n: int) -> tuple[Moved, ...]:
    return tuple(
        Moved(lot_id="PO-1/1", serial=f"SN-{i:07d}", quantity=Decimal(1), unit_cost=Decimal("2.5"))
        for i in range(n)
    )


def _line(n: int) -> model.LineView:
    return model.LineView(line_no=1, lic="CAM", quantity=Decimal(n), movements=_units(n))


_STATUS: TypeAdapter[s.StatusMessage] = TypeAdapter(s.StatusMessage)

STATUSES = [
    model.AllocatedStatus(message_id="st", shipment_id="SO-1", lines=(_line(40),), answers=("m",)),
    model.ShippedStatus(message_id="st", shipment_id="SO-1", lines=(_line(40),), answers=("m",)),
    model.AllocationFailedStatus(
        message_id="st", shipment_id="SO-1", problems=(), allocated_lines=(_line(40),)
    ),
    model.CancelledStatus(message_id="st", shipment_id="SO-1", released_lines=(_line(40),)),
]


@pytest.mark.parametrize("st", STATUSES, ids=lambda st: type(st).__name__)
def test_a_status_too_big_to_carry_goes_without_movements_saying_so(st: model.Status) -> None:
    listed = encode(translate.status(st, max_bytes=10**6, measured_from=1))
    assert len(listed) > 2_000  # forty units listed

    wire = translate.status(st, max_bytes=2_000, measured_from=1)

    assert wire.movements_omitted is True
    results = getattr(wire, "lines", None) or getattr(wire, "allocated_lines", None)
    results = results or wire.released_lines
    assert [(r.line_no, r.lic, r.quantity, r.movements) for r in results] == [
        (1, "CAM", Decimal(40), [])
    ]
    assert len(encode(wire)) < 2_000
    again = decode(_STATUS, encode(wire), own=True)  # still a valid status, same answer
    assert (again.message_id, again.shipment_id, again.answers) == (
        "st",
        "SO-1",
        list(st.answers),
    )


@pytest.mark.parametrize("st", STATUSES, ids=lambda st: type(st).__name__)
def test_a_status_that_fits_lists_every_unit(st: model.Status) -> None:
    wire = translate.status(st, max_bytes=10**6, measured_from=1)
    results = getattr(wire, "lines", None) or getattr(wire, "allocated_lines", None)
    results = results or wire.released_lines
    assert wire.movements_omitted is False
    assert [m.serial for m in results[0].movements] == [f"SN-{i:07d}" for i in range(40)]


def test_by_default_only_statuses_of_many_units_are_measured() -> None:
    """A status of fewer units than `MEASURED_FROM` fits however long its ids: not measured."""
    assert translate.MAX_STATUS_BYTES == MAX_EVENT_BYTES * 3 // 4
    longest = 450  # bytes of a movement's JSON with every id at its longest
    assert translate.MEASURED_FROM * longest < translate.MAX_STATUS_BYTES
    st = STATUSES[0]
    assert translate.status(st, max_bytes=1).movements_omitted is False
