"""Allocation's decisions on `inventory.events` (key = LIC).

Events carry everything the ledger and dashboards need (inventory lot ids, manufacturer lots,
serials, quantities, unit costs), so no consumer ever has to ask allocation anything.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from shared.contracts.base import Message, Model
from shared.contracts.reasons import ReasonCode
from shared.contracts.types import Amount, Identifier, LineNo, Money, OwnDate, Text


class Movement(Model):
    """Units of one inventory lot (and manufacturer lot or serial) that a decision moved.

    `lot_id` is None only for unallocated usage (R12). `quantity` is positive; the event says
    which way the units went (for `InventoryAdjusted`, the sign says it: + into stock, − out).
    """

    lot_id: Identifier | None
    mfr_lot: Identifier | None = None
    expires_on: OwnDate | None = None
    serial: Identifier | None = None
    quantity: Amount
    unit_cost: Money


class Event(Message):
    lic: Identifier
    command_id: Identifier = Field(description="message_id of the command this decides")


class ItemUpserted(Event):
    type: Literal["ItemUpserted"] = "ItemUpserted"
    description: Text = ""
    uom: Identifier = "Each"
    track_mfr_lot: bool
    serialized: bool
    perishable: bool
    next_serial: Identifier | None = None
    est_unit_cost: Money
    gtin: Identifier | None = None


class QuarantineRule(Model):
    """A quarantine in force, as its `QuarantineStock` named it (null: any): a release names
    the same `mfr_lot`, `lot_id` and `office`."""

    quarantine_id: Identifier
    reason: Text = ""
    mfr_lot: Identifier | None = None
    lot_id: Identifier | None = None
    office: Identifier | None = Field(default=None, description="None: every office")


class HeldOnArrival(Model):
    """Units a receipt or customer return line put in stock that a quarantine in force holds
    (one recalled `before_receipt`, say): on hand, but no sale takes them until released."""

    lot_id: Identifier = Field(description="the inventory lot the units are in")
    mfr_lot: Identifier | None = Field(
        default=None, description="their manufacturer lot (None: a lot without one)"
    )
    quantity: Amount
    quarantine: QuarantineRule = Field(description="the quarantine holding them")


_QUARANTINED = (
    "the line's units a quarantine in force holds as they arrive, per inventory lot,"
    " manufacturer lot and quarantine (every quarantine holding them: each must be released"
    " before they ship); empty: none"
)


class StockReceived(Event):
    type: Literal["StockReceived"] = "StockReceived"
    shipment_id: Identifier
    line_no: LineNo
    lot_id: Identifier
    office: Identifier
    kind: Literal["purchase", "production", "adjustment"] = "purchase"
    reference: Identifier | None = None
    vendor: Identifier | None = Field(
        default=None, description="the vendor of a purchase receipt, as the receipt named it"
    )
    received_on: OwnDate
    quantity: Amount
    unit_cost: Money
    movements: list[Movement] = Field(default_factory=list)
    generated_serials: list[Identifier] = Field(default_factory=list)
    next_serial: Identifier | None = None
    bin: Identifier | None = Field(
        default=None, description="where the stock was put away, as the receipt line named it"
    )
    quarantined: list[HeldOnArrival] = Field(default_factory=list, description=_QUARANTINED)


class LineAllocated(Event):
    type: Literal["LineAllocated"] = "LineAllocated"
    shipment_id: Identifier
    line_no: LineNo
    office: Identifier
    kind: Literal["sale", "vendor_return"] = "sale"
    counterparty: Identifier | None = None
    ship_on: OwnDate
    quantity: Amount
    complete: bool = True
    movements: list[Movement] = Field(default_factory=list)


class LineReleased(Event):
    type: Literal["LineReleased"] = "LineReleased"
    shipment_id: Identifier
    line_no: LineNo
    office: Identifier
    released_on: OwnDate | None = Field(
        default=None,
        description=(
            "the release's business date: the ship_on of the allocation it gives back"
            " (absent from events published before it was added)"
        ),
    )
    reallocated: bool = Field(default=False, description="released to be allocated anew")
    counterparty: Identifier | None = Field(
        default=None,
        description=(
            "the customer or vendor of the allocation given back, as its LineAllocated named"
            " (absent from events published before it was added)"
        ),
    )
    movements: list[Movement] = Field(default_factory=list)


class LineShipped(Event):
    type: Literal["LineShipped"] = "LineShipped"
    shipment_id: Identifier
    line_no: LineNo
    office: Identifier
    kind: Literal["sale", "vendor_return"] = "sale"
    counterparty: Identifier | None = None
    ship_on: OwnDate
    quantity: Amount
    movements: list[Movement] = Field(default_factory=list)


class AdjustmentWarning(Model):
    """Something about an accepted adjustment its clerk should hear at once: the stock went
    in (or out) all the same, but likely not as meant. `serial`, `mfr_lot`, `expires_on`,
    `lot_id` and `office`: what it concerns, where they apply (else null)."""

    code: Literal[
        "SERIAL_WAS_SHIPPED",
        "STOCK_IN_NO_LOT",
        "LOT_EXPIRED_ON_ADJUSTMENT",
        "ESTIMATED_COST",
        "UNIT_COST_NOT_USED",
    ] = Field(
        description="SERIAL_WAS_SHIPPED: a beginning balance names a serial last shipped to a"
        " customer (or returned to a vendor); it is in stock again, but the sale's usage stands"
        " (a customer return is what reverses it, R13). STOCK_IN_NO_LOT: a count or loss added"
        " more of a plain item than its lots at the office could take back: the rest is"
        " unallocated stock (R12), which no sale takes (at an office holding none of the item:"
        " likely a mistyped office). LOT_EXPIRED_ON_ADJUSTMENT: a beginning balance of a"
        " perishable manufacturer lot expiring before adjusted_on (one expiring that very day"
        " is not expired). ESTIMATED_COST: a beginning balance without unit_cost, costed at"
        " the item's estimated unit cost. UNIT_COST_NOT_USED: a count or loss put units back"
        " into an existing inventory lot (reversing their usage, R11) at the lot's cost, not"
        " the unit_cost it named (a beginning_balance is what adds stock at a cost named)",
    )
    message: Text = Field(
        description="a sentence saying what happened, with the numbers, and what can be done"
    )
    serial: Identifier | None = None
    mfr_lot: Identifier | None = None
    expires_on: OwnDate | None = None
    lot_id: Identifier | None = Field(
        default=None, description="the inventory lot the warning concerns"
    )
    office: Identifier | None = None


class InventoryAdjusted(Event):
    type: Literal["InventoryAdjusted"] = "InventoryAdjusted"
    adjustment_id: Identifier
    office: Identifier
    kind: Literal["beginning_balance", "count", "loss"]
    quantity: Amount
    lot_id: Identifier | None = Field(
        default=None, description="the new adjustment lot of a beginning balance"
    )
    adjusted_on: OwnDate
    reason: Text = ""
    unallocated: Amount = Field(
        default=Decimal(0), description="units added beyond any lot (R12: negative usage)"
    )
    movements: list[Movement] = Field(default_factory=list)
    warnings: list[AdjustmentWarning] = Field(
        default_factory=list,
        description="what the clerk should hear at once about an adjustment accepted all the"
        " same (at most 100, the last saying how many more); empty: nothing",
    )


class StockReturned(Event):
    type: Literal["StockReturned"] = "StockReturned"
    shipment_id: Identifier
    line_no: LineNo
    office: Identifier
    customer: Identifier | None = None
    received_on: OwnDate
    quantity: Amount
    movements: list[Movement] = Field(default_factory=list)
    quarantined: list[HeldOnArrival] = Field(default_factory=list, description=_QUARANTINED)


class QuarantinedStock(Model):
    """Stock a quarantine covers: one inventory lot (and manufacturer lot), as it is now."""

    lot_id: Identifier
    office: Identifier
    mfr_lot: Identifier | None = None
    on_hand: Amount
    allocated: Amount = Field(
        default=Decimal(0),
        description="of on_hand, allocated to shipment lines: a sale's cannot ship until "
        "released (SHIPMENT_INCOMPLETE)",
    )


class StockQuarantined(Event):
    """A `QuarantineStock` decided: the rule is in force (`quarantined` true) or lifted.
    `stock`: what it covers now (each inventory lot and manufacturer lot with stock on hand);
    a manufacturer lot received later is covered too."""

    type: Literal["StockQuarantined"] = "StockQuarantined"
    quarantine_id: Identifier
    quarantined: bool
    reason: Text = ""
    office: Identifier | None = Field(default=None, description="None: every office")
    mfr_lot: Identifier | None = None
    lot_id: Identifier | None = None
    quarantined_on: OwnDate
    stock: list[QuarantinedStock] = Field(default_factory=list)
    released_quarantine_id: Identifier | None = Field(
        default=None,
        description="A release: the quarantine_id of the quarantine it lifted (quarantine_id is"
        " the release's own id). None when putting stock in quarantine.",
    )


class LineHeld(Event):
    """A receipt line sent with `hold` passed every check; its decision waits for
    `ConfirmHeld` (then its `StockReceived` / `StockReturned` follows) or `CancelHeld`."""

    type: Literal["LineHeld"] = "LineHeld"
    shipment_id: Identifier
    line_no: LineNo


class CommandRejected(Event):
    type: Literal["CommandRejected"] = "CommandRejected"
    command_type: str
    shipment_id: Identifier | None = None
    line_no: LineNo | None = None
    adjustment_id: Identifier | None = None
    quarantine_id: Identifier | None = None
    reason_code: ReasonCode
    reason: Text
    offending: Text | None = None


InventoryEvent = Annotated[
    ItemUpserted
    | StockReceived
    | LineAllocated
    | LineReleased
    | LineShipped
    | InventoryAdjusted
    | StockReturned
    | LineHeld
    | StockQuarantined
    | CommandRejected,
    Field(discriminator="type"),
]

__all__ = [
    "AdjustmentWarning",
    "Amount",
    "CommandRejected",
    "Event",
    "HeldOnArrival",
    "InventoryAdjusted",
    "InventoryEvent",
    "ItemUpserted",
    "LineAllocated",
    "LineHeld",
    "LineReleased",
    "LineShipped",
    "Movement",
    "QuarantineRule",
    "QuarantinedStock",
    "StockQuarantined",
    "StockReceived",
    "StockReturned",
]
