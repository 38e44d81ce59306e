"""DESIGN §6 (sizes have limits): the documents a shipment holds waiting, for its ship or
cancel or for an item, are capped in number and in the picks they name. Before, the queue grew
without bound: it is one jsonb value rewritten whole as each document joins, so a flood of
documents cost quadratic writes and, past PostgreSQL's 255 MB per jsonb value, failed every
later document of the shipment (dead-lettered, never answered). A document past the cap is
refused at once, as its kind is refused, changing nothing; those already waiting are decided
as before."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from services.shipping import domain
from services.shipping.model import (
    Allocate,
    Allocated,
    AllocationFailedStatus,
    Cancel,
    CancelledStatus,
    Entry,
    Item,
    Limits,
    PicksUpdate,
    Request,
    RequestLine,
    Shipment,
    Shipped,
    ShippedStatus,
    ShipRefusedStatus,
    ShipRequest,
)
from shared.movements import Moved
from shared.reasons import ReasonCode

DAY = date(2026, 11, 22)
ITEMS: Mapping[str, Item] = {"PLAIN": Item(lic="PLAIN")}


def _moved(quantity: Decimal) -> Moved:
    return Moved(
        lot_id="PO-1/1",
        mfr_lot=None,
        expires_on=None,
        serial=None,
        quantity=quantity,
        unit_cost=Decimal(1),
    )


def _shipping(limits: Limits) -> Shipment:
    """S-1, one plain line allocated, its ship request sent and not answered yet."""
    request = Request(
        message_id="m-req",
        shipment_id="S-1",
        office="AI",
        kind="sale",
        ship_on=DAY,
        lines=(RequestLine(line_no=1, lic="PLAIN", quantity=Decimal(2)),),
    )
    first = domain.handle(None, request, ITEMS, limits)
    assert first.shipment is not None
    (allocate,) = first.commands
    assert isinstance(allocate, Allocate)
    answered = domain.answer(
        first.shipment,
        Allocated(
            command_id=allocate.command_id,
            lic="PLAIN",
            complete=True,
            movements=(_moved(Decimal(2)),),
        ),
        items=ITEMS,
        limits=limits,
    )
    assert answered.shipment is not None and answered.shipment.phase == "allocated"
    ship = domain.handle(
        answered.shipment, ShipRequest(message_id="m-ship", shipment_id="S-1"), ITEMS, limits
    )
    assert ship.shipment is not None and ship.shipment.phase == "shipping"
    return ship.shipment


def _picks(n: int, scans: tuple[str, ...] = ()) -> PicksUpdate:
    return PicksUpdate(
        message_id=f"m-picks-{n}", shipment_id="S-1", line_no=1, entry=Entry(scans=scans)
    )


def test_a_picks_update_past_the_waiting_cap_is_refused_at_once_changing_nothing() -> None:
    limits = Limits(max_waiting_documents=3)
    shipment = _shipping(limits)
    for n in range(3):
        decision = domain.handle(shipment, _picks(n), ITEMS, limits)
        assert decision.statuses == () and decision.shipment is not None
        shipment = decision.shipment
    assert len(shipment.queued) == 3
    refused = domain.handle(shipment, _picks(3), ITEMS, limits)
    assert refused.shipment is shipment and not refused.changed and refused.commands == ()
    (status,) = refused.statuses
    assert isinstance(status, AllocationFailedStatus)
    assert status.answers == ("m-picks-3",)
    (problem,) = status.problems
    assert problem.reason_code is ReasonCode.INVALID_QUANTITY
    assert (problem.line_no, problem.offending) == (1, "S-1")
    assert "3 documents waiting" in problem.reason
    # The allocation stands: the refusal lists it, as any refused picks update's does.
    assert [line.line_no for line in status.allocated_lines] == [1]


def test_a_ship_request_and_a_cancel_past_the_cap_are_refused_as_their_kinds_are() -> None:
    """A ship request asking for the ship under way counts as waiting too (it is owed a
    status); past the cap a cancel gets `refused`, a ship request `ShipmentShipRefused`."""
    limits = Limits(max_waiting_documents=2)
    shipment = _shipping(limits)
    asks = domain.handle(shipment, ShipRequest(message_id="m-s2", shipment_id="S-1"), ITEMS, limits)
    assert asks.shipment is not None and asks.shipment.waiting
    queued = domain.handle(asks.shipment, _picks(0), ITEMS, limits)
    assert queued.shipment is not None and len(queued.shipment.queued) == 1
    full = queued.shipment
    cancel = domain.handle(full, Cancel(message_id="m-c", shipment_id="S-1"), ITEMS, limits)
    (cancelled,) = cancel.statuses
    assert isinstance(cancelled, CancelledStatus) and cancelled.refused is not None
    assert cancelled.refused.reason_code is ReasonCode.INVALID_QUANTITY
    assert cancelled.answers == ("m-c",) and cancel.shipment is full
    ship = domain.handle(full, ShipRequest(message_id="m-s3", shipment_id="S-1"), ITEMS, limits)
    assert ship.shipment is full
    (ship_refused,) = ship.statuses
    assert isinstance(ship_refused, ShipRefusedStatus)
    assert ship_refused.reason_code is ReasonCode.INVALID_QUANTITY
    assert ship_refused.answers == ("m-s3",)


def test_the_waiting_documents_picks_are_capped_but_the_first_always_waits() -> None:
    """Counted at each scan's longest (512 characters): the first document waits whatever it
    names, the next that would take the queue past the characters cap is refused."""
    limits = Limits(max_waiting_characters=512 * 3)
    shipment = _shipping(limits)
    big = domain.handle(shipment, _picks(0, tuple(f"SCAN{n}" for n in range(5))), ITEMS, limits)
    assert big.shipment is not None and len(big.shipment.queued) == 1 and not big.statuses
    refused = domain.handle(big.shipment, _picks(1, ("X",)), ITEMS, limits)
    assert refused.shipment is big.shipment
    (status,) = refused.statuses
    assert isinstance(status, AllocationFailedStatus) and status.answers == ("m-picks-1",)
    assert status.problems[0].reason_code is ReasonCode.INVALID_QUANTITY


def test_documents_within_the_cap_are_decided_once_the_ship_is_answered() -> None:
    limits = Limits(max_waiting_documents=2)
    shipment = _shipping(limits)
    for n in range(2):
        step = domain.handle(shipment, _picks(n), ITEMS, limits)
        assert step.shipment is not None
        shipment = step.shipment
    (sent,) = shipment.pending
    shipped = domain.answer(
        shipment,
        Shipped(command_id=sent.command_id, lic="PLAIN", movements=(_moved(Decimal(2)),)),
        items=ITEMS,
        limits=limits,
    )
    kinds = [type(st) for st in shipped.statuses]
    assert kinds == [ShippedStatus, AllocationFailedStatus, AllocationFailedStatus]
    assert [st.answers for st in shipped.statuses] == [
        ("m-ship",),
        ("m-picks-0",),
        ("m-picks-1",),
    ]
