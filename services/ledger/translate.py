"""Wire → ledger core: `inventory.events` and `inventory.costs` messages become facts;
`inventory.status` answers and `inventory.dlq` records become the dashboard's rows.

Every fact is dated by the business date its event carries (§6), a release by its
`released_on` (the ship_on of the allocation it gives back). Only a release published before
that field existed falls back to its `occurred_at`: allocation's clock, the one date it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Union, get_args

from aiokafka import ConsumerRecord
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.dataclasses import dataclass as pydantic_dataclass

from services.ledger.domain import operations as ops
from services.ledger.domain.costing import PoUpdate
from services.ledger.domain.model import Action, Fact, Hold, ItemFact, MoveView, NewLot, Rule
from shared.contracts import events as e
from shared.contracts.base import Model
from shared.contracts.types import Amount, Identifier, Money, OwnDate
from shared.contracts.upstream import PurchaseOrderUpdated

# The contract models' configuration, but `frozen`, which the dataclass itself sets.
_MOVE_CONFIG = ConfigDict(extra="ignore", str_max_length=Model.model_config.get("str_max_length"))


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=_MOVE_CONFIG)
class WireMove:
    """A wire `Movement` as the ledger reads it: the same fields, validated alike, as a slotted
    dataclass instead of a model. A model instance costs about 1.3 KB (its `__dict__` and set
    of fields set), this about 0.35 KB, and a sale of 100,000 serials carries 100,000 of them
    in each of its two events."""

    lot_id: Identifier | None
    mfr_lot: Identifier | None = None
    expires_on: OwnDate | None = None
    serial: Identifier | None = None
    quantity: Amount
    unit_cost: Money


def _reading(event: type[BaseModel]) -> type[BaseModel]:
    """`event`, its movements read as `WireMove`s (a subclass: `to_fact` matches it)."""
    if "movements" not in event.model_fields:
        return event
    return create_model(
        event.__name__,
        __base__=event,
        __module__=__name__,
        movements=(list[WireMove], Field(default_factory=list)),
    )


def _events_adapter() -> TypeAdapter[e.InventoryEvent]:
    members = tuple(_reading(m) for m in get_args(get_args(e.InventoryEvent)[0]))
    union: Any = Union.__getitem__(members)  # built at runtime from the contract's union
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


EVENTS = _events_adapter()
"""How the ledger's consumer reads `inventory.events`: every `InventoryEvent` member, with its
movements as `WireMove`s (the events are otherwise the contract's, subclassed)."""


def to_hold(event: e.StockQuarantined) -> Hold:
    """A quarantine or release as recording sees it (the rule's key as `quarantines` keeps it,
    '' = any)."""
    rule = Rule(
        lic=event.lic,
        mfr_lot=event.mfr_lot or "",
        lot_id=event.lot_id or "",
        office=event.office or "",
        quarantine_id=event.quarantine_id,
        reason=event.reason,
        since=event.quarantined_on,
    )
    return Hold(rule=rule, lifted=not event.quarantined)


def to_fact(event: e.Event) -> Fact | ItemFact | None:
    """The ledger's reading of one event; None for refusals, which change nothing."""
    match event:
        case e.ItemUpserted():
            return ItemFact(
                event_id=event.message_id,
                lic=event.lic,
                description=event.description,
                uom=event.uom,
                track_mfr_lot=event.track_mfr_lot,
                serialized=event.serialized,
                perishable=event.perishable,
                est_unit_cost=event.est_unit_cost,
                gtin=event.gtin,
            )
        case e.StockReceived():
            return _received(event)
        case e.LineAllocated():
            return _fact(
                event,
                "allocation",
                event.shipment_id,
                event.office,
                event.ship_on,
                event.movements,
                line_no=event.line_no,
                counterparty=event.counterparty,
            )
        case e.LineReleased():
            return _fact(
                event,
                "release",
                event.shipment_id,
                event.office,
                _released_on(event),
                event.movements,
                line_no=event.line_no,
                counterparty=event.counterparty,
            )
        case e.LineShipped():
            return _fact(
                event,
                "shipment" if event.kind == "sale" else "vendor_return",
                event.shipment_id,
                event.office,
                event.ship_on,
                event.movements,
                line_no=event.line_no,
                counterparty=event.counterparty,
            )
        case e.InventoryAdjusted():
            return _adjusted(event)
        case e.StockReturned():
            return _fact(
                event,
                "customer_return",
                event.shipment_id,
                event.office,
                event.received_on,
                event.movements,
                line_no=event.line_no,
                counterparty=event.customer,
            )
    return None


def to_po_update(message: PurchaseOrderUpdated) -> PoUpdate:
    """`closed: false` reopens a closed PO, so a message that leaves `closed` out (the model
    defaults it to false) keeps the PO as it was (`closed=None`)."""
    return PoUpdate(
        event_id=message.message_id,
        po=message.po,
        lic=message.lic,
        on=message.occurred_at.date(),
        ordered_qty=message.ordered_quantity,
        purchased_qty=message.purchased_quantity,
        act_unit_cost=message.act_unit_cost,
        closed=message.closed if "closed" in message.model_fields_set else None,
    )


def _released_on(event: e.LineReleased) -> date:
    if event.released_on is not None:
        return event.released_on
    return event.occurred_at.date()


def _received(event: e.StockReceived) -> Fact:
    lot = NewLot(
        lot_id=event.lot_id,
        kind=event.kind,
        office=event.office,
        reference=event.reference,
        received_on=event.received_on,
        quantity=event.quantity,
        unit_cost=event.unit_cost,
        vendor=event.vendor,
        bin=event.bin,
    )
    return _fact(
        event,
        "receipt",
        event.shipment_id,
        event.office,
        event.received_on,
        event.movements,
        line_no=event.line_no,
        new_lot=lot,
    )


def _adjusted(event: e.InventoryAdjusted) -> Fact:
    new_lot = None
    if event.kind == "beginning_balance" and event.lot_id is not None:
        new_lot = NewLot(
            lot_id=event.lot_id,
            kind="adjustment",
            office=event.office,
            reference=event.adjustment_id,
            received_on=event.adjusted_on,
            quantity=event.quantity,
            # A beginning balance is one lot: every move carries its unit cost.
            unit_cost=event.movements[0].unit_cost if event.movements else Decimal(0),
        )
    return _fact(
        event,
        event.kind,
        event.adjustment_id,
        event.office,
        event.adjusted_on,
        event.movements,
        new_lot=new_lot,
        reason=event.reason,
    )


def _fact(
    event: e.Event,
    action: Action,
    document: str,
    office: str,
    on: date,
    movements: Sequence[MoveView],
    *,
    line_no: int | None = None,
    counterparty: str | None = None,
    new_lot: NewLot | None = None,
    reason: str = "",
) -> Fact:
    return Fact(
        event_id=event.message_id,
        lic=event.lic,
        action=action,
        document=document,
        office=office,
        on=on,
        # The wire movements (`Movement` or `WireMove`) are read in place: no copy of each.
        moves=tuple(movements),
        line_no=line_no,
        counterparty=counterparty,
        new_lot=new_lot,
        reason=reason,
    )


# -- the operations dashboard's reading of answers and dead letters ---------------------------


class _Problem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    line_no: int | None = None
    lic: str | None = None
    reason_code: str
    reason: str = ""
    offending: str | None = None


class _Warning(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str
    message: str = ""


class StatusNotice(BaseModel):
    """The part of an `inventory.status` message the dashboard reads. Not the contract's
    `StatusMessage`: lines, lots and serials (a receipt of 100,000 serials is MBs) are passed
    over by the JSON parser instead of being built, and a status type added later is still
    recorded rather than dead-lettered."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str
    message_id: str
    occurred_at: datetime
    shipment_id: str
    reason_code: str | None = None
    reason: str | None = None
    offending: str | None = None
    problems: list[_Problem] = Field(default_factory=list)
    refused: _Problem | None = None
    warnings: list[_Warning] = Field(default_factory=list)  # a ReceiptPosted's


# Refused as naming no open shipment (a request, picks update or ship request for a shipment
# already shipped, or unknown): the answer changed nothing, so it is no new state.
CHANGED_NOTHING = "UNKNOWN_SHIPMENT"


def to_document_status(notice: StatusNotice) -> ops.DocumentStatus | None:
    """A document's new latest answer; None for an answer that left the shipment as it was: a
    refused cancellation, or a refusal naming no open shipment (a shipped sale asked again
    still shows shipped). Both are still refusals (`status_refusals`)."""
    first = notice.reason_code or next((p.reason_code for p in notice.problems), None)
    if notice.refused is not None or first == CHANGED_NOTHING:
        return None
    return ops.DocumentStatus(
        kind=ops.document_kind(notice.type),
        document=notice.shipment_id,
        status=notice.type,
        reason_code=notice.reason_code,
        message_id=notice.message_id,
        occurred_at=notice.occurred_at,
        warnings=ops.kept_warnings([(w.code, w.message) for w in notice.warnings]),
    )


def adjustment_status(event: e.InventoryAdjusted) -> ops.DocumentStatus:
    """An adjustment posted, as the dashboard lists documents: keyed by its adjustment id, so
    a corrected resend that posts supersedes the refusals of the versions before it."""
    return ops.DocumentStatus(
        kind="adjustment",
        document=event.adjustment_id,
        status=ops.ADJUSTED,
        reason_code=None,
        message_id=event.message_id,
        occurred_at=event.occurred_at,
        lic=event.lic,
        adjustment_kind=event.kind,
        quantity=event.quantity,
        warnings=ops.kept_warnings([(w.code, w.message) for w in event.warnings]),
    )


def status_refusals(notice: StatusNotice) -> list[ops.Refusal]:
    """A refusing answer's problems (none for an answer that refuses nothing)."""
    problems = [_problem(p) for p in notice.problems]
    if notice.refused is not None:
        problems.append(_problem(notice.refused))
    if not problems and notice.reason_code is not None:
        problems.append(
            ops.Problem(
                reason_code=notice.reason_code,
                reason=notice.reason or "",
                offending=notice.offending,
            )
        )
    return ops.refusals(
        message_id=notice.message_id,
        type=notice.type,
        document=notice.shipment_id,
        document_kind=ops.document_kind(notice.type),
        lic=None,
        occurred_at=notice.occurred_at,
        problems=problems,
    )


# The command each upstream document becomes. Allocation names the command it refuses
# (`AdjustStock`); its intake, refusing a document that fails the contract before any command
# exists, names the document (`AdjustInventory`). Shown as sent, one adjustment's refusals would
# be counted under two types on the dashboard.
_COMMAND_OF = {"AdjustInventory": "AdjustStock"}


def command_refusals(event: e.CommandRejected) -> list[ops.Refusal]:
    """An adjustment's or an item's refusal, typed by the command refused (`_COMMAND_OF`). A
    command of a receipt or shipment (it carries the shipment id) is answered to upstream on
    `inventory.status`, recorded from there: not counted twice."""
    if event.shipment_id is not None:
        return []
    problem = ops.Problem(
        reason_code=event.reason_code.value,
        reason=event.reason,
        offending=event.offending,
        line_no=event.line_no,
    )
    return ops.refusals(
        message_id=event.message_id,
        type=f"CommandRejected:{_COMMAND_OF.get(event.command_type, event.command_type)}",
        document=event.adjustment_id or event.quarantine_id or event.lic,
        document_kind=None if event.adjustment_id is None else "adjustment",
        lic=event.lic,
        occurred_at=event.occurred_at,
        problems=[problem],
    )


def read_dead_letter(record: ConsumerRecord) -> ops.DeadLetter:
    """A raw `inventory.dlq` record (not a message: never decoded)."""
    stamp = record.timestamp if record.timestamp and record.timestamp > 0 else 0
    return ops.dead_letter(
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(min(stamp, _LATEST_MS) / 1000, UTC),
        key=record.key,
        value=record.value,
        headers=list(record.headers or ()),
    )


_LATEST_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: any int64 is a legal timestamp


def _problem(p: _Problem) -> ops.Problem:
    return ops.Problem(
        reason_code=p.reason_code,
        reason=p.reason,
        offending=p.offending,
        line_no=p.line_no,
        lic=p.lic,
    )
