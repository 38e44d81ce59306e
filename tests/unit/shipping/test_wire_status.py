"""Shipment statuses leave on the wire exactly as the validating contract models would write
them: `translate` builds their line results without re-validation, so each status must encode
to the same bytes as the same status validated, also after its movements went through the
repository's JSON (as lines loaded from PostgreSQL do)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.allocation.domain import model as allocation
from services.allocation.domain.decide import decide
from services.allocation.domain.model import LicState
from services.allocation.translate import to_domain, to_wire
from services.shipping import model, repository, translate
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import status as s
from shared.contracts.codec import decode, encode
from shared.contracts.upstream import ShipmentMessage
from shared.movements import Moved
from shared.reasons import ReasonCode

MOVEMENTS = (
    Moved(lot_id="L-1", quantity=Decimal("1.50"), unit_cost=Decimal("2.5")),
    Moved(
        lot_id="L-2",
        quantity=Decimal("10"),
        unit_cost=Decimal("0.000001"),
        mfr_lot="Lòt-ü 7",
        expires_on=date(2026, 1, 31),
    ),
    Moved(lot_id="L-3", quantity=Decimal("1"), unit_cost=Decimal("1E+1"), serial="SN-0001"),
    Moved(lot_id=None, quantity=Decimal("3.000"), unit_cost=Decimal("0")),
)
LINES = (
    model.LineView(line_no=1, lic="WIDGET", quantity=Decimal("2.500"), movements=MOVEMENTS),
    model.LineView(line_no=7, lic="Gadget-é", quantity=Decimal("1"), complete=False),
    model.LineView(line_no=3, lic="SERIAL", quantity=Decimal("1E+1"), movements=MOVEMENTS[2:3]),
)
_COMMANDS: TypeAdapter[c.Command] = TypeAdapter(c.Command)
_EVENTS: TypeAdapter[e.InventoryEvent] = TypeAdapter(e.InventoryEvent)
PROBLEM = model.Problem(
    line_no=7, lic="Gadget-é", reason_code=ReasonCode.SHIPMENT_INCOMPLETE, reason="line 7 is x"
)


def _validated(lines: tuple[model.LineView, ...]) -> list[s.LineResult]:
    """The line results as the contract's validators build them."""
    return [
        s.LineResult(
            line_no=line.line_no,
            lic=line.lic,
            quantity=line.quantity,
            complete=line.complete,
            movements=[
                e.Movement(
                    lot_id=m.lot_id,
                    mfr_lot=m.mfr_lot,
                    expires_on=m.expires_on,
                    serial=m.serial,
                    quantity=m.quantity,
                    unit_cost=m.unit_cost,
                )
                for m in line.movements
            ],
        )
        for line in lines
    ]


def _stored(lines: tuple[model.LineView, ...]) -> tuple[model.LineView, ...]:
    """The lines' movements after a trip through the repository's JSON columns."""
    adapter = repository._MOVEMENTS
    return tuple(
        model.LineView(
            line_no=line.line_no,
            lic=line.lic,
            quantity=line.quantity,
            complete=line.complete,
            movements=adapter.validate_json(adapter.dump_json(line.movements)),
        )
        for line in lines
    )


def _statuses(lines: tuple[model.LineView, ...]) -> list[model.Status]:
    answers = ("doc-1", "dòc-2")
    return [
        model.AllocatedStatus(message_id="m-1", shipment_id="S-1", lines=lines, answers=answers),
        model.ShippedStatus(message_id="m-2", shipment_id="S-1", lines=lines),
        model.AllocationFailedStatus(
            message_id="m-3",
            shipment_id="S-1",
            problems=(PROBLEM,),
            allocated_lines=lines,
            answers=answers[:1],
        ),
        model.CancelledStatus(
            message_id="m-4", shipment_id="S-1", released_lines=lines, answers=answers
        ),
        model.AllocatedStatus(message_id="m-5", shipment_id="S-1", lines=()),
    ]


def _same(fast: BaseModel, reference: BaseModel) -> None:
    assert encode(fast) == encode(reference)
    assert fast == reference


@pytest.mark.parametrize("stored", [False, True])
def test_statuses_encode_as_validated(stored: bool) -> None:
    lines = _stored(LINES) if stored else LINES
    for status in _statuses(lines):
        fast = translate.status(status)
        _same(fast, type(fast).model_validate(fast.model_dump()))
        assert fast.answers == list(status.answers)
        fields = ("lines", "allocated_lines", "released_lines")
        field = next(f for f in fields if f in type(fast).model_fields)
        built, views = getattr(fast, field), getattr(status, field)
        for got, want in zip(built, _validated(views), strict=True):
            _same(got, want)
            assert got.model_fields_set == want.model_fields_set
            for m_got, m_want in zip(got.movements, want.movements, strict=True):
                assert m_got.model_fields_set == m_want.model_fields_set


def test_a_ship_refusal_names_its_first_problems_offending_value_at_the_top() -> None:
    """Like every other refusal (docs/contract.md), `ShipmentShipRefused` carries the first
    problem's offending value beside its reason code and reason."""
    gap = model.Problem(
        line_no=2,
        lic="SERIAL",
        reason_code=ReasonCode.SERIAL_NOT_AVAILABLE,
        reason="serial S9 is allocated to another shipment",
        offending="S9",
    )
    refused = translate.status(
        model.ShipRefusedStatus(
            message_id="m-6",
            shipment_id="S-1",
            reason_code=gap.reason_code,
            reason="shipment S-1: 1 line(s) were not shipped",
            problems=(gap, PROBLEM),
            answers=("ship-1",),
        )
    )
    assert isinstance(refused, s.ShipmentShipRefused)
    assert refused.answers == ["ship-1"]
    assert (refused.reason_code, refused.offending) == (ReasonCode.SERIAL_NOT_AVAILABLE, "S9")
    assert [p.offending for p in refused.problems] == ["S9", None]


@pytest.mark.parametrize("offending", ["ab\x1dc \r", None])
def test_a_line_shipping_refused_comes_back_from_allocation_with_the_same_problem(
    offending: str | None,
) -> None:
    """R2: a line whose picks shipping refuses goes to allocation carrying the problem, and the
    refusal allocation answers with it, over the wire both ways, gives the status exactly the
    problem shipping found (scanner control characters, blanks, no offending value)."""
    found = model.Problem(
        line_no=1,
        lic="CAM",
        reason_code=ReasonCode.INVALID_BARCODE,
        reason="scan 'ab\\x1dc' is not a GS1 element string\t",
        offending=offending,
    )
    sent = translate.command(
        model.Allocate(
            command_id="shipment:m-1/allocate/1",
            shipment_id="S-1",
            line_no=1,
            lic="CAM",
            office="AI",
            kind="sale",
            counterparty=None,
            ship_on=date(2026, 11, 2),
            quantity=Decimal(1),
            picks=model.Picks(),
            refusal=found,
        )
    )
    read = decode(_COMMANDS, encode(sent), own=True)
    state = decide(LicState.empty("CAM"), allocation.UpsertItem(message_id="i", lic="CAM")).state
    decision = decide(state, to_domain(read))
    assert decision.state.item is not None and decision.state.item.locked
    (event,) = decision.events
    answered = decode(_EVENTS, encode(to_wire(event, "shipment:m-1/allocate/1#0", read)), own=True)
    reply = translate.answer(answered)
    assert isinstance(reply, model.Rejected)
    echoed = model.Problem(
        line_no=1,
        lic=reply.lic,
        reason_code=reply.reason_code,
        reason=reply.reason,
        offending=reply.offending,
    )
    assert translate.problem(echoed) == translate.problem(found)


@pytest.mark.parametrize(
    ("document", "answer"),
    [
        (
            {"type": "ShipmentRequested", "office": "AI", "ship_on": "2026-11-02", "lines": []},
            s.ShipmentAllocationFailed,
        ),
        ({"type": "ShipmentPicksUpdated", "line_no": 0}, s.ShipmentAllocationFailed),
        ({"type": "ShipmentShipRequested", "occurred_at": "then"}, s.ShipmentShipRefused),
        ({"type": "ShipmentCancelled", "occurred_at": "then"}, s.ShipmentCancelledStatus),
    ],
)
def test_an_invalid_document_answered_names_itself_in_answers(
    document: dict[str, object], answer: type[BaseModel]
) -> None:
    """A document that fails its schema but names its ids is answered with its kind's refusal,
    which lists the document's (normalized) message id in `answers`."""
    raw = {"message_id": " bad-1 ", "shipment_id": "S-1", **document}
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(ShipmentMessage).validate_python(raw)
    refusal = translate.invalid_shipment_message(raw, caught.value.errors(include_url=False))
    assert isinstance(refusal, answer)
    wire = refusal.model_dump()
    assert (wire["message_id"], wire["answers"]) == ("bad-1/status", ["bad-1"])
