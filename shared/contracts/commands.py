"""Per-LIC commands on `inventory.commands` (key = LIC). Written only by lotline's own producers.

Receiving, shipping and allocation's intake translate upstream documents into these; allocation
decides them in partition order. Serials here are already parsed (rule R5) into plain lists.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.contracts.base import Message, Model
from shared.contracts.reasons import ReasonCode
from shared.contracts.types import (
    Identifier,
    LineNo,
    Money,
    OwnDate,
    Quantity,
    SignedQuantity,
    Text,
)
from shared.contracts.upstream import MAX_SHELF_LIFE_DAYS, LotPick, LotQuantity, UpsertItem

SerialList = list[Identifier]

HOLD = (
    "one line of a document with several: decide it and hold the result (answered `LineHeld`; "
    "the stock cannot be used yet) until `ConfirmHeld` publishes it or `CancelHeld` undoes it, "
    "so that a document is received whole or not at all"
)


class ReceiveStock(Message):
    """Receive one receipt line into a new inventory lot (R3, R4, R6, R7)."""

    type: Literal["ReceiveStock"] = "ReceiveStock"
    lic: Identifier
    shipment_id: Identifier
    line_no: LineNo
    lot_id: Identifier
    office: Identifier
    kind: Literal["purchase", "production"] = "purchase"
    reference: Identifier | None = None
    vendor: Identifier | None = None
    received_on: OwnDate
    quantity: Quantity
    unit_cost: Money | None = None
    lots: list[LotQuantity] = Field(default_factory=list)
    serials: SerialList = Field(default_factory=list)
    generate_serials: bool = False
    hold: bool = Field(default=False, description=HOLD)
    bin: Identifier | None = Field(default=None, description="where the stock was put away")


class ReturnStock(Message):
    """A customer return of shipped units (R13).

    `serial_lots` pairs each serial scanned with its manufacturer lot with that lot: the lots
    and serials alone only let allocation check how many of the serials each lot holds, not
    that each unit coming back is of the lot its label names.
    """

    type: Literal["ReturnStock"] = "ReturnStock"
    lic: Identifier
    shipment_id: Identifier
    line_no: LineNo
    office: Identifier
    customer: Identifier | None = None
    received_on: OwnDate
    quantity: Quantity
    lots: list[LotQuantity] = Field(default_factory=list)
    serials: SerialList = Field(default_factory=list)
    serial_lots: dict[Identifier, Identifier] = Field(
        default_factory=dict,
        description="serial → the manufacturer lot it was scanned with (GS1 AI 21 with AI 10), "
        "for each of `serials` whose label names its lot: the unit coming back must be in "
        "that lot (R5, R13, R15)",
    )
    hold: bool = Field(default=False, description=HOLD)


class ConfirmHeld(Message):
    """Publish a held line's decision and make its stock usable: every line was held."""

    type: Literal["ConfirmHeld"] = "ConfirmHeld"
    lic: Identifier
    command_id: Identifier = Field(description="message_id of the held line's command")


class CancelHeld(Message):
    """Undo a held line: another line of its document was refused. Publishes nothing."""

    type: Literal["CancelHeld"] = "CancelHeld"
    lic: Identifier
    command_id: Identifier = Field(description="message_id of the held line's command")


class LineRefusal(Model):
    """A problem the sender already found with a line: the refusal allocation answers it with."""

    reason_code: ReasonCode
    reason: Text
    offending: Text | None = None


class AllocateLine(Message):
    """Allocate (or re-allocate) one shipment line; no picks means automatic (R9, R14).

    `serial_lots` pairs each serial scanned with its manufacturer lot with that lot: the lots
    and serials alone only let allocation check how many of the serials each lot holds, not
    that each unit is in the lot its label names.

    With `refusal`, shipping has refused the line's picks itself (R5, R14): allocation decides
    nothing but answers `CommandRejected` with exactly that problem. The line is still a sales
    order naming the item, so, like a line allocation refuses, it locks the item's tracking
    flags (R2); an allocation the line holds stands.
    """

    type: Literal["AllocateLine"] = "AllocateLine"
    lic: Identifier
    shipment_id: Identifier
    line_no: LineNo
    office: Identifier
    kind: Literal["sale", "vendor_return"] = "sale"
    counterparty: Identifier | None = None
    ship_on: OwnDate
    quantity: Quantity
    lots: list[LotPick] = Field(default_factory=list)
    serials: SerialList = Field(default_factory=list)
    serial_lots: dict[Identifier, Identifier] = Field(
        default_factory=dict,
        description="serial → the manufacturer lot it was scanned with (GS1 AI 21 with AI 10), "
        "for each of `serials` whose label names its lot: that unit must be in that lot (R5, "
        "R9, R15)",
    )
    refusal: LineRefusal | None = Field(
        default=None,
        description="the sender refused the line itself: answer CommandRejected with this "
        "problem, decide nothing, lock the item's tracking flags (R2)",
    )
    min_shelf_life_days: int = Field(
        default=0,
        ge=0,
        le=MAX_SHELF_LIFE_DAYS,
        description="a sale of a perishable item takes only lots expiring at least this many "
        "days after ship_on (R9; 0: a lot expiring on ship_on still ships); ignored otherwise",
    )
    reference: Identifier | None = Field(
        default=None,
        description="a vendor return's reference (its PO): a line without picks takes stock "
        "only from the inventory lots of that reference (a receipt's `reference`, else its "
        "shipment_id) (R14); None: from any lot. Ignored on a sale",
    )


class ReleaseLine(Message):
    type: Literal["ReleaseLine"] = "ReleaseLine"
    lic: Identifier
    shipment_id: Identifier
    line_no: LineNo


class ShipLine(Message):
    type: Literal["ShipLine"] = "ShipLine"
    lic: Identifier
    shipment_id: Identifier
    line_no: LineNo


class AdjustStock(Message):
    """An inventory adjustment re-keyed from `AdjustInventory` (R11, R12).

    `refusal`: a problem the intake already found (serials as typed that do not parse, R5):
    allocation answers with it, in the LIC's order, as it answers `AllocateLine.refusal`."""

    type: Literal["AdjustStock"] = "AdjustStock"
    lic: Identifier
    adjustment_id: Identifier
    office: Identifier
    kind: Literal["beginning_balance", "count", "loss"]
    quantity: SignedQuantity
    unit_cost: Money | None = None
    lots: list[LotQuantity] = Field(default_factory=list)
    serials: SerialList = Field(default_factory=list)
    reason: Text = ""
    adjusted_on: OwnDate
    refusal: LineRefusal | None = None


class QuarantineStock(Message):
    """A quarantine (QA or recall hold) or its release, re-keyed from the upstream
    `QuarantineStock`: a rule on the LIC's stock (a manufacturer lot, optionally at one office;
    an inventory lot; or a manufacturer lot in one inventory lot) that allocation keeps until
    released. `office` None: every office."""

    type: Literal["QuarantineStock"] = "QuarantineStock"
    lic: Identifier
    quarantine_id: Identifier
    mfr_lot: Identifier | None = None
    lot_id: Identifier | None = None
    office: Identifier | None = None
    quarantined: bool
    reason: Text = ""
    quarantined_on: OwnDate
    before_receipt: bool = False  # hold mfr_lot though it was never received


class LotPicks(Model):
    lots: list[LotPick] = Field(default_factory=list)
    serials: SerialList = Field(default_factory=list)


Command = Annotated[
    UpsertItem
    | ReceiveStock
    | ReturnStock
    | ConfirmHeld
    | CancelHeld
    | AllocateLine
    | ReleaseLine
    | ShipLine
    | AdjustStock
    | QuarantineStock,
    Field(discriminator="type"),
]
