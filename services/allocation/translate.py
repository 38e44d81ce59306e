"""Wire ↔ domain at allocation's edge: contract commands in, domain events out on the wire."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import singledispatch
from typing import Any, TypeVar, cast

from pydantic import BaseModel, TypeAdapter
from pydantic_core import ErrorDetails

from services.allocation.domain import model as d
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import invalid
from shared.contracts import upstream as u
from shared.contracts.trusted import movement, trusted
from shared.contracts.types import Identifier, Text
from shared.ids import derived_id, namespaced
from shared.reasons import ReasonCode


def to_domain(command: Any) -> d.Command:
    """The domain command for one wire command (the wire models are already validated)."""
    # The registered function by the command's exact class: a dict lookup, a third of a
    # microsecond less per command than dispatching through `singledispatch`, which still
    # takes (and refuses) anything else.
    convert = _TO_DOMAIN.get(type(command))
    return _to_domain(command) if convert is None else convert(command)


@singledispatch
def _to_domain(command: Any) -> d.Command:
    raise TypeError(f"no domain command for {type(command).__name__}")


@_to_domain.register
def _(m: u.UpsertItem) -> d.Command:
    return d.UpsertItem(
        message_id=m.message_id,
        lic=m.lic,
        description=m.description,
        uom=m.uom,
        track_mfr_lot=m.track_mfr_lot,
        serialized=m.serialized,
        est_unit_cost=m.est_unit_cost,
        perishable=m.perishable,
        next_serial=m.next_serial,
        gtin=m.gtin,
    )


def _lot_entries(lots: list[u.LotQuantity]) -> tuple[d.LotEntry, ...]:
    if not lots:  # most lines name none: no generator to build
        return ()
    return tuple(
        d.LotEntry(mfr_lot=x.mfr_lot, quantity=x.quantity, expires_on=x.expires_on) for x in lots
    )


def _lot_picks(lots: list[u.LotPick] | list[u.LotQuantity]) -> tuple[d.LotPick, ...]:
    if not lots:
        return ()
    return tuple(d.LotPick(mfr_lot=x.mfr_lot, quantity=x.quantity) for x in lots)


@_to_domain.register
def _(m: c.ReceiveStock) -> d.Command:
    return d.ReceiveStock(
        message_id=m.message_id,
        lic=m.lic,
        lot_id=m.lot_id,
        office=m.office,
        kind=m.kind,
        reference=m.reference,
        received_on=m.received_on,
        quantity=m.quantity,
        shipment_id=m.shipment_id,
        line_no=m.line_no,
        unit_cost=m.unit_cost,
        mfr_lots=_lot_entries(m.lots),
        serials=tuple(m.serials),
        generate_serials=m.generate_serials,
        hold=m.hold,
    )


@_to_domain.register
def _(m: c.ReturnStock) -> d.Command:
    return d.ReturnFromCustomer(
        message_id=m.message_id,
        lic=m.lic,
        shipment_id=m.shipment_id,
        line_no=m.line_no,
        office=m.office,
        received_on=m.received_on,
        quantity=m.quantity,
        customer=m.customer,
        lots=_lot_picks(m.lots),
        serials=tuple(m.serials),
        serial_lots=tuple(m.serial_lots.items()),
        hold=m.hold,
    )


@_to_domain.register
def _(m: c.ConfirmHeld) -> d.Command:
    return d.ConfirmHeld(message_id=m.message_id, lic=m.lic, command_id=m.command_id)


@_to_domain.register
def _(m: c.CancelHeld) -> d.Command:
    return d.CancelHeld(message_id=m.message_id, lic=m.lic, command_id=m.command_id)


@_to_domain.register
def _(m: c.AllocateLine) -> d.Command:
    return d.AllocateLine(
        message_id=m.message_id,
        lic=m.lic,
        shipment_id=m.shipment_id,
        line_no=m.line_no,
        office=m.office,
        kind=m.kind,
        counterparty=m.counterparty,
        ship_on=m.ship_on,
        quantity=m.quantity,
        lots=_lot_picks(m.lots),
        serials=tuple(m.serials),
        serial_lots=tuple(m.serial_lots.items()),
        refusal=None if m.refusal is None else _line_refusal(m.refusal),
        min_shelf_life_days=m.min_shelf_life_days,
        reference=m.reference,
    )


def _line_refusal(m: c.LineRefusal) -> d.LineRefusal:
    return d.LineRefusal(reason_code=m.reason_code, reason=m.reason, offending=m.offending or "")


@_to_domain.register
def _(m: c.ReleaseLine) -> d.Command:
    return d.ReleaseLine(
        message_id=m.message_id, lic=m.lic, shipment_id=m.shipment_id, line_no=m.line_no
    )


@_to_domain.register
def _(m: c.ShipLine) -> d.Command:
    return d.ShipLine(
        message_id=m.message_id, lic=m.lic, shipment_id=m.shipment_id, line_no=m.line_no
    )


@_to_domain.register
def _(m: c.AdjustStock) -> d.Command:
    return d.AdjustStock(
        message_id=m.message_id,
        lic=m.lic,
        adjustment_id=m.adjustment_id,
        office=m.office,
        kind=m.kind,
        quantity=m.quantity,
        adjusted_on=m.adjusted_on,
        unit_cost=m.unit_cost,
        lots=_lot_entries(m.lots),
        serials=tuple(m.serials),
        reason=m.reason,
        refusal=None if m.refusal is None else _line_refusal(m.refusal),
    )


@_to_domain.register
def _(m: c.QuarantineStock) -> d.Command:
    return d.QuarantineStock(
        message_id=m.message_id,
        lic=m.lic,
        quarantine_id=m.quarantine_id,
        quarantined=m.quarantined,
        quarantined_on=m.quarantined_on,
        reason=m.reason,
        mfr_lot=m.mfr_lot,
        lot_id=m.lot_id,
        office=m.office,
        before_receipt=m.before_receipt,
    )


_TO_DOMAIN: dict[type, Callable[[Any], d.Command]] = {
    cls: convert for cls, convert in _to_domain.registry.items() if cls is not object
}


# -- domain events out ----------------------------------------------------------------------
#
# Allocation made every value of its events itself, from commands the wire contract already
# validated, so running the contract's validators again on the way out only costs time (as much
# as deciding did). Events are built "trusted": the same `__dict__` (fields in declaration order,
# defaults filled as validation fills them), fields set and empty extra/private state that
# validating the same keyword arguments gives, so `codec.encode` writes the same bytes.
# tests/unit/allocation/test_wire_events.py holds that promise against the validating build.
# Two kinds of value are not copied verbatim from a validated command, so they still go through
# the contract's own types: free text the core composes (a refusal's reason and offending value,
# cut to length, which may leave a trailing space) and a Next Serial a receipt advanced (the
# core refuses a run past the serial length, so this check only backs that up).

_M = TypeVar("_M", bound=BaseModel)

_now = cast("Callable[[], datetime]", e.Event.model_fields["occurred_at"].default_factory)
_TEXT: TypeAdapter[str] = TypeAdapter(Text)
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)

# What the validating build was given explicitly (everything but `type` and `occurred_at`).
_EXPLICIT: dict[type[BaseModel], frozenset[str]] = {
    cls: frozenset(cls.model_fields) - {"type", "occurred_at"}
    for cls in (
        e.Movement,
        e.ItemUpserted,
        e.StockReceived,
        e.LineAllocated,
        e.LineReleased,
        e.LineShipped,
        e.InventoryAdjusted,
        e.StockReturned,
        e.LineHeld,
        e.CommandRejected,
    )
}


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    return trusted(cls, values, _EXPLICIT[cls])


def _movements(ms: tuple[d.LotMovement, ...]) -> list[e.Movement]:
    return [movement(m) for m in ms]


def _warning(w: d.AdjustmentWarning) -> e.AdjustmentWarning:
    """Rare, and its message is text the core composed: built with validation (cut to length,
    as a refusal's reason is)."""
    return e.AdjustmentWarning(
        code=w.code,
        message=w.message[:1900],
        serial=w.serial,
        mfr_lot=w.mfr_lot,
        expires_on=w.expires_on,
        lot_id=w.lot_id,
        office=w.office,
    )


def _held(held: tuple[d.HeldOnArrival, ...]) -> list[e.HeldOnArrival]:
    """Units a quarantine holds on arrival: rare, so built with validation."""
    return [
        e.HeldOnArrival(
            lot_id=h.lot_id,
            mfr_lot=h.mfr_lot,
            quantity=h.quantity,
            quarantine=e.QuarantineRule(
                quarantine_id=h.quarantine.quarantine_id,
                reason=h.quarantine.reason,
                mfr_lot=h.quarantine.mfr_lot or None,
                lot_id=h.quarantine.lot_id or None,
                office=h.quarantine.office or None,
            ),
        )
        for h in held
    ]


def to_wire(event: d.Event, message_id: str, command: Any) -> e.Event:
    """The contract event for one domain event; `message_id` is deterministic per decision."""
    match event:
        case d.ItemUpserted():
            return _trusted(
                e.ItemUpserted,
                {
                    "type": "ItemUpserted",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "description": event.description,
                    "uom": event.uom,
                    "track_mfr_lot": event.track_mfr_lot,
                    "serialized": event.serialized,
                    "perishable": event.perishable,
                    "next_serial": event.next_serial,
                    "est_unit_cost": event.est_unit_cost,
                    "gtin": event.gtin,
                },
            )
        case d.StockReceived():
            next_serial = event.next_serial
            if event.generated_serials and next_serial is not None:
                next_serial = _IDENTIFIER.validate_python(next_serial)
            return _trusted(
                e.StockReceived,
                {
                    "type": "StockReceived",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "shipment_id": event.shipment_id,
                    "line_no": event.line_no,
                    "lot_id": event.lot_id,
                    "office": event.office,
                    "kind": event.kind,
                    "reference": event.reference or None,
                    "vendor": getattr(command, "vendor", None),
                    "received_on": event.received_on,
                    "quantity": event.quantity,
                    "unit_cost": event.unit_cost,
                    "movements": _movements(event.movements),
                    "generated_serials": list(event.generated_serials),
                    "next_serial": next_serial,
                    "bin": getattr(command, "bin", None),
                    "quarantined": _held(event.quarantined),
                },
            )
        case d.LineAllocated():
            return _trusted(
                e.LineAllocated,
                {
                    "type": "LineAllocated",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "shipment_id": event.shipment_id,
                    "line_no": event.line_no,
                    "office": event.office,
                    "kind": event.kind,
                    "counterparty": event.counterparty or None,
                    "ship_on": event.ship_on,
                    "quantity": event.quantity,
                    "complete": event.complete,
                    "movements": _movements(event.movements),
                },
            )
        case d.LineReleased():
            return _trusted(
                e.LineReleased,
                {
                    "type": "LineReleased",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "shipment_id": event.shipment_id,
                    "line_no": event.line_no,
                    "office": event.office,
                    "released_on": event.released_on,
                    "reallocated": event.reallocated,
                    "counterparty": event.counterparty or None,
                    "movements": _movements(event.movements),
                },
            )
        case d.LineShipped():
            return _trusted(
                e.LineShipped,
                {
                    "type": "LineShipped",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "shipment_id": event.shipment_id,
                    "line_no": event.line_no,
                    "office": event.office,
                    "kind": event.kind,
                    "counterparty": event.counterparty or None,
                    "ship_on": event.ship_on,
                    "quantity": event.quantity,
                    "movements": _movements(event.movements),
                },
            )
        case d.InventoryAdjusted():
            return _trusted(
                e.InventoryAdjusted,
                {
                    "type": "InventoryAdjusted",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "adjustment_id": event.adjustment_id,
                    "office": event.office,
                    "kind": event.kind,
                    "quantity": event.quantity,
                    "lot_id": event.lot_id,
                    "adjusted_on": event.adjusted_on,
                    "reason": event.reason,
                    "unallocated": event.unallocated,
                    "movements": _movements(event.movements),
                    "warnings": [_warning(w) for w in event.warnings],
                },
            )
        case d.StockReturned():
            return _trusted(
                e.StockReturned,
                {
                    "type": "StockReturned",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "shipment_id": event.shipment_id,
                    "line_no": event.line_no,
                    "office": event.office,
                    "customer": event.customer,
                    "received_on": event.received_on,
                    "quantity": event.quantity,
                    "movements": _movements(event.movements),
                    "quarantined": _held(event.quarantined),
                },
            )
        case d.LineHeld():
            return _trusted(
                e.LineHeld,
                {
                    "type": "LineHeld",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "shipment_id": event.shipment_id,
                    "line_no": event.line_no,
                },
            )
        case d.CommandRejected():
            offending = (event.offending or None) and event.offending[:1900]
            return _trusted(
                e.CommandRejected,
                {
                    "type": "CommandRejected",
                    "message_id": message_id,
                    "occurred_at": _now(),
                    "lic": event.lic,
                    "command_id": event.command_id,
                    "command_type": getattr(command, "type", event.command_type),
                    "shipment_id": event.shipment_id,
                    "line_no": event.line_no,
                    "adjustment_id": event.adjustment_id,
                    "quarantine_id": event.quarantine_id,
                    "reason_code": ReasonCode(event.reason_code.value),
                    "reason": _TEXT.validate_python(event.reason[:1900]),
                    "offending": None if offending is None else _TEXT.validate_python(offending),
                },
            )
        case d.StockQuarantined():
            # Rare: built with validation, not trusted (its reason is the operator's text).
            return e.StockQuarantined(
                message_id=message_id,
                lic=event.lic,
                command_id=event.command_id,
                quarantine_id=event.quarantine_id,
                quarantined=event.quarantined,
                reason=event.reason,
                office=event.office,
                mfr_lot=event.mfr_lot,
                lot_id=event.lot_id,
                quarantined_on=event.quarantined_on,
                stock=[
                    e.QuarantinedStock(
                        lot_id=x.lot_id,
                        office=x.office,
                        mfr_lot=x.mfr_lot,
                        on_hand=x.on_hand,
                        allocated=x.allocated,
                    )
                    for x in event.stock
                ],
                released_quarantine_id=event.released_quarantine_id,
            )
    raise TypeError(f"no wire event for {type(event).__name__}")


# -- invalid upstream documents (the intake's refusals) --------------------------------------


def invalid_adjustment(
    raw: dict[str, Any], errors: Sequence[ErrorDetails]
) -> e.CommandRejected | None:
    """The refusal of an `AdjustInventory` (or `QuarantineStock`) that failed the contract's
    validation but names its ids: a `CommandRejected` with the ids the intake's other refusals
    carry (a bad serial span, service.py), the first validation error's reason code and
    offending value, its reason naming the others. None when it cannot be answered (ids
    missing or invalid)."""
    if raw.get("type") == "QuarantineStock":
        return _invalid_quarantine(raw, errors)
    if raw.get("type") != "AdjustInventory":
        return None
    ids = invalid.identifiers(raw, "message_id", "adjustment_id", "lic")
    if ids is None:
        return None
    message_id, adjustment_id, lic = ids
    return _rejected(namespaced("adjustment", message_id), raw, errors, lic, adjustment_id)


def _invalid_quarantine(
    raw: dict[str, Any], errors: Sequence[ErrorDetails]
) -> e.CommandRejected | None:
    ids = invalid.identifiers(raw, "message_id", "quarantine_id", "lic")
    if ids is None:
        return None
    message_id, quarantine_id, lic = ids
    rejected = _rejected(namespaced("quarantine", message_id), raw, errors, lic, None)
    return rejected.model_copy(update={"quarantine_id": quarantine_id})


def invalid_item(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> e.CommandRejected | None:
    """The refusal of an `UpsertItem` that failed the contract's validation but names its
    `lic`: as `invalid_adjustment`, with the command id its command would have had."""
    if raw.get("type") != "UpsertItem":
        return None
    ids = invalid.identifiers(raw, "message_id", "lic")
    if ids is None:
        return None
    message_id, lic = ids
    return _rejected(namespaced("item", message_id), raw, errors, lic, None)


def _rejected(
    command_id: str,
    raw: dict[str, Any],
    errors: Sequence[ErrorDetails],
    lic: str,
    adjustment_id: str | None,
) -> e.CommandRejected:
    first = invalid.summary(invalid.problems(raw, errors))
    return e.CommandRejected(
        message_id=derived_id(command_id, "rejected"),
        lic=lic,
        command_id=command_id,
        command_type=str(raw["type"]),
        adjustment_id=adjustment_id,
        reason_code=first.reason_code,
        reason=first.reason,
        offending=first.offending,
    )


def refuse_items(events_topic: str) -> invalid.Refuser:
    """The hook of the intake's `inventory.items` route: an invalid `UpsertItem`'s refusal on
    `events_topic`, key LIC. Any other type (an `AdjustInventory` sent to the items topic by
    mistake) is not this topic's document: it gets no answer here, only its dead letter, and its
    message_id stays out of this route's inbox, so the same document sent then to the right
    topic gets the one decision its command has (docs/contract.md, "Invalid documents")."""
    return _refuse_only(invalid_item, events_topic)


def refuse_adjustments(events_topic: str) -> invalid.Refuser:
    """The hook of the intake's `inventory.adjustments` route: as `refuse_items`, for an
    invalid `AdjustInventory` or `QuarantineStock` only (an `UpsertItem` there is
    dead-lettered unanswered)."""
    return _refuse_only(invalid_adjustment, events_topic)


def _refuse_only(
    build: Callable[[dict[str, Any], Sequence[ErrorDetails]], e.CommandRejected | None],
    events_topic: str,
) -> invalid.Refuser:
    def refuse(raw: dict[str, Any], errors: Sequence[ErrorDetails]) -> list[invalid.Refusal] | None:
        rejected = build(raw, errors)  # None for a document of another type
        return None if rejected is None else [(events_topic, rejected.lic, rejected)]

    return refuse
