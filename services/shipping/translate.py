"""Wire ↔ domain at shipping's edge: upstream shipment messages and allocation's events in,
per-LIC commands and shipment statuses out."""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatch
from typing import Any

import structlog
from pydantic_core import ErrorDetails

from services.shipping import model
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import invalid
from shared.contracts import status as s
from shared.contracts import upstream as u
from shared.contracts.codec import MAX_EVENT_BYTES, encode
from shared.contracts.invalid import safe_text
from shared.contracts.trusted import movement, trusted
from shared.ids import derived_id
from shared.movements import moved

log = structlog.get_logger(__name__)

_LINE_COMMANDS = ("AllocateLine", "ReleaseLine", "ShipLine")


# --- in ---------------------------------------------------------------------------------------


def upstream(m: Any) -> model.Upstream:
    match m:
        case u.ShipmentRequested():
            return model.Request(
                message_id=m.message_id,
                shipment_id=m.shipment_id,
                office=m.office,
                kind=m.kind,
                ship_on=m.ship_on,
                counterparty=m.vendor if m.kind == "vendor_return" else m.customer,
                reference=m.reference,
                lines=tuple(
                    model.RequestLine(
                        line_no=x.line_no,
                        lic=x.lic,
                        quantity=x.quantity,
                        entry=_entry(x.lots, x.serials, x.scans),
                        min_shelf_life_days=x.min_shelf_life_days,
                    )
                    for x in m.lines
                ),
                min_shelf_life_days=m.min_shelf_life_days or 0,
            )
        case u.ShipmentPicksUpdated():
            return model.PicksUpdate(
                message_id=m.message_id,
                shipment_id=m.shipment_id,
                line_no=m.line_no,
                entry=_entry(m.lots, m.serials, m.scans),
            )
        case u.ShipmentShipRequested():
            return model.ShipRequest(message_id=m.message_id, shipment_id=m.shipment_id)
        case u.ShipmentCancelled():
            return model.Cancel(message_id=m.message_id, shipment_id=m.shipment_id)
    raise TypeError(f"not a shipment message: {type(m).__name__}")


def _entry(lots: list[u.LotPick], serials: str | list[str] | None, scans: list[str]) -> model.Entry:
    return model.Entry(
        lots=tuple(model.LotPick(mfr_lot=x.mfr_lot, quantity=x.quantity) for x in lots),
        serials=serials if isinstance(serials, str | None) else tuple(serials),
        scans=tuple(scans),
    )


def item(m: e.ItemUpserted) -> model.Item:
    return model.Item(
        lic=m.lic,
        track_mfr_lot=m.track_mfr_lot,
        serialized=m.serialized,
        perishable=m.perishable,
        gtin=m.gtin,
    )


def answer(event: e.Event) -> model.Answer | None:
    """The answer an event gives to a shipment line command, if it is one."""
    match event:
        case e.LineAllocated():
            return model.Allocated(
                command_id=event.command_id,
                lic=event.lic,
                complete=event.complete,
                movements=moved(event.movements),
            )
        case e.LineReleased():
            return model.Released(
                command_id=event.command_id,
                lic=event.lic,
                reallocated=event.reallocated,
                movements=moved(event.movements),
            )
        case e.LineShipped():
            return model.Shipped(
                command_id=event.command_id, lic=event.lic, movements=moved(event.movements)
            )
        case e.CommandRejected() if event.command_type in (
            "AllocateLine",
            "ReleaseLine",
            "ShipLine",
        ):
            return model.Rejected(
                command_id=event.command_id,
                lic=event.lic,
                reason_code=event.reason_code,
                reason=event.reason,
                offending=event.offending,
            )
    return None


# --- out: commands ----------------------------------------------------------------------------


@singledispatch
def command(cmd: Any) -> c.AllocateLine | c.ReleaseLine | c.ShipLine:
    raise TypeError(f"no wire command for {type(cmd).__name__}")


@command.register
def _(cmd: model.Allocate) -> c.AllocateLine:
    return c.AllocateLine(
        message_id=cmd.command_id,
        lic=cmd.lic,
        shipment_id=cmd.shipment_id,
        line_no=cmd.line_no,
        office=cmd.office,
        kind=cmd.kind,
        counterparty=cmd.counterparty,
        ship_on=cmd.ship_on,
        quantity=cmd.quantity,
        lots=[u.LotPick(mfr_lot=x.mfr_lot, quantity=x.quantity) for x in cmd.picks.lots],
        serials=list(cmd.picks.serials),
        serial_lots=dict(cmd.picks.serial_lots),
        refusal=None if cmd.refusal is None else _refusal(cmd.refusal),
        min_shelf_life_days=cmd.min_shelf_life_days,
        reference=cmd.reference,
    )


def _refusal(p: model.Problem) -> c.LineRefusal:
    """The problem as the status would carry it (`problem`), so allocation's answer, echoing
    it, gives the status the same problem."""
    shown = problem(p)
    return c.LineRefusal(
        reason_code=shown.reason_code, reason=shown.reason, offending=shown.offending
    )


@command.register
def _(cmd: model.Release) -> c.ReleaseLine:
    return c.ReleaseLine(
        message_id=cmd.command_id, lic=cmd.lic, shipment_id=cmd.shipment_id, line_no=cmd.line_no
    )


@command.register
def _(cmd: model.Ship) -> c.ShipLine:
    return c.ShipLine(
        message_id=cmd.command_id, lic=cmd.lic, shipment_id=cmd.shipment_id, line_no=cmd.line_no
    )


# --- out: statuses ----------------------------------------------------------------------------


# A status answers in one message, at most this big (as receiving holds a receipt's answer to
# it, with room to spare under what the broker takes).
MAX_STATUS_BYTES = MAX_EVENT_BYTES * 3 // 4
# Below this many units moved a status is far below MAX_STATUS_BYTES (a movement's JSON is at
# most about 450 bytes): not measured.
MEASURED_FROM = 50_000


def status(
    st: model.Status, max_bytes: int = MAX_STATUS_BYTES, measured_from: int = MEASURED_FROM
) -> Any:
    """The wire status. One listing more units than a message can carry (a sale of hundreds
    of thousands of serials) goes without its lines' movements (`movements_omitted`): it
    still answers its documents, where the broker would refuse it whole and it would be
    parked, unanswered."""
    wire = _status(st, listed=True)
    units = sum(len(line.movements) for line in _listed_lines(st))
    if units >= measured_from and len(encode(wire)) > max_bytes:
        log.warning(
            "shipping.status_movements_omitted",
            shipment_id=st.shipment_id,
            type=wire.type,
            units=units,
            max_bytes=max_bytes,
        )
        return _status(st, listed=False)
    return wire


def _listed_lines(st: model.Status) -> tuple[model.LineView, ...]:
    match st:
        case model.AllocatedStatus() | model.ShippedStatus():
            return st.lines
        case model.AllocationFailedStatus():
            return st.allocated_lines
        case model.CancelledStatus():
            return st.released_lines
        case model.ShipRefusedStatus():
            return st.lines
    return ()


def _status(st: model.Status, *, listed: bool) -> Any:
    """The wire status, its lines' movements `listed` or left out (saying so)."""
    omitted = not listed
    match st:
        case model.AllocatedStatus():
            return s.ShipmentAllocated(
                message_id=st.message_id,
                shipment_id=st.shipment_id,
                answers=list(st.answers),
                lines=_results(st.lines, listed),
                movements_omitted=omitted,
            )
        case model.AllocationFailedStatus():
            return s.ShipmentAllocationFailed(
                message_id=st.message_id,
                shipment_id=st.shipment_id,
                answers=list(st.answers),
                problems=[problem(p) for p in st.problems],
                allocated_lines=_results(st.allocated_lines, listed),
                movements_omitted=omitted,
            )
        case model.ShippedStatus():
            return s.ShipmentShipped(
                message_id=st.message_id,
                shipment_id=st.shipment_id,
                answers=list(st.answers),
                lines=_results(st.lines, listed),
                movements_omitted=omitted,
            )
        case model.ShipRefusedStatus():
            problems = [problem(p) for p in st.problems]
            return s.ShipmentShipRefused(
                message_id=st.message_id,
                shipment_id=st.shipment_id,
                answers=list(st.answers),
                reason_code=st.reason_code,
                reason=safe_text(st.reason) or st.reason_code.value,
                offending=problems[0].offending if problems else None,
                problems=problems,
                lines=_results(st.lines, listed),
                movements_omitted=omitted,
            )
        case model.CancelledStatus():
            return s.ShipmentCancelledStatus(
                message_id=st.message_id,
                shipment_id=st.shipment_id,
                answers=list(st.answers),
                released_lines=_results(st.released_lines, listed),
                refused=None if st.refused is None else problem(st.refused),
                movements_omitted=omitted,
            )
    raise TypeError(f"no wire status for {type(st).__name__}")


def problem(p: model.Problem) -> s.LineProblem:
    return s.LineProblem(
        line_no=p.line_no,
        lic=p.lic,
        reason_code=p.reason_code,
        reason=safe_text(p.reason) or p.reason_code.value,
        offending=None if p.offending is None else safe_text(p.offending),
    )


# Line results are built "trusted", without running the contract's validators again: each value
# is one the contract already validated (line number, LIC and quantity from the shipment request,
# movements from allocation's events), kept unchanged through PostgreSQL (numeric and JSON text
# hold a Decimal's digits and a date exactly). Re-validating them took about a seventh of
# shipping's Python time. tests/unit/shipping/test_wire_status.py holds the bytes to the
# validating build. The status message around them is still validated (it takes the instances).
_LINE_RESULT_SET = frozenset({"line_no", "lic", "quantity", "movements", "complete"})


def _results(lines: tuple[model.LineView, ...], listed: bool = True) -> list[s.LineResult]:
    return [
        trusted(
            s.LineResult,
            {
                "line_no": line.line_no,
                "lic": line.lic,
                "quantity": line.quantity,
                "lot_id": None,
                "generated_serials": [],
                "movements": [movement(m) for m in line.movements] if listed else [],
                "complete": line.complete,
                "shipped": line.shipped,
            },
            _LINE_RESULT_SET,
        )
        for line in lines
    ]


# --- invalid documents ------------------------------------------------------------------------

_SHIPMENT_MESSAGES = frozenset(
    {"ShipmentRequested", "ShipmentPicksUpdated", "ShipmentShipRequested", "ShipmentCancelled"}
)


def invalid_shipment_message(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> Any | None:
    """The refusal of a shipment message that failed the contract's validation but names its
    ids, as the lifecycle refuses that kind of message (domain.py), every validation error a
    problem: a request or picks update → `ShipmentAllocationFailed` (its `allocated_lines` empty:
    the refused message changed nothing), a ship request → `ShipmentShipRefused`, a cancellation
    → `ShipmentCancelled` with `refused`. None when it cannot be answered (unknown type, ids
    missing or invalid). Its id is the one the lifecycle's answer to the message takes; it
    answers the message (`answers`)."""
    kind = raw.get("type")
    if kind not in _SHIPMENT_MESSAGES:
        return None
    ids = invalid.identifiers(raw, "message_id", "shipment_id")
    if ids is None:
        return None
    message_id, shipment_id = ids
    status_id = derived_id(message_id, "status")
    line_no = raw.get("line_no") if kind == "ShipmentPicksUpdated" else None
    found = invalid.problems(raw, errors, line_no=line_no)
    if kind in ("ShipmentRequested", "ShipmentPicksUpdated"):
        return s.ShipmentAllocationFailed(
            message_id=status_id,
            shipment_id=shipment_id,
            answers=[message_id],
            problems=[p.line_problem() for p in found],
        )
    first = invalid.summary(found)
    if kind == "ShipmentShipRequested":
        return s.ShipmentShipRefused(
            message_id=status_id,
            shipment_id=shipment_id,
            answers=[message_id],
            reason_code=first.reason_code,
            reason=first.reason,
            offending=first.offending,
            problems=[p.line_problem() for p in found],
        )
    return s.ShipmentCancelledStatus(
        message_id=status_id,
        shipment_id=shipment_id,
        answers=[message_id],
        refused=first.line_problem(),
    )


def refuse_shipment_messages(status_topic: str) -> invalid.Refuser:
    """The consumer's hook: an invalid shipment message's refusal on `status_topic`."""

    def refuse(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> list[invalid.Refusal] | None:
        refusal = invalid_shipment_message(raw, errors)
        return None if refusal is None else [(status_topic, refusal.shipment_id, refusal)]

    return refuse
