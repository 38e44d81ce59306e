"""Document status on `inventory.status` (key = document id), from receiving and shipping."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.contracts.base import Message, Model
from shared.contracts.events import Movement
from shared.contracts.reasons import ReasonCode
from shared.contracts.types import Amount, Identifier, LineNo, Text


class LineProblem(Model):
    """One thing wrong with one line: what to fix, and the value that is wrong."""

    line_no: LineNo | None = None
    lic: Identifier | None = None
    reason_code: ReasonCode
    reason: Text
    offending: Text | None = None


class LineResult(Model):
    line_no: LineNo
    lic: Identifier
    quantity: Amount
    lot_id: Identifier | None = None
    generated_serials: list[Identifier] = Field(default_factory=list)
    movements: list[Movement] = Field(default_factory=list)
    complete: bool = True


class ReceiptPosted(Message):
    type: Literal["ReceiptPosted"] = "ReceiptPosted"
    shipment_id: Identifier
    lines: list[LineResult]


class ReceiptRejected(Message):
    type: Literal["ReceiptRejected"] = "ReceiptRejected"
    shipment_id: Identifier
    problems: list[LineProblem]
    posted_lines: list[LineResult] = Field(
        default_factory=list,
        description="lines allocation accepted before another line was refused",
    )


class ShipmentAllocated(Message):
    type: Literal["ShipmentAllocated"] = "ShipmentAllocated"
    shipment_id: Identifier
    lines: list[LineResult]


class ShipmentAllocationFailed(Message):
    type: Literal["ShipmentAllocationFailed"] = "ShipmentAllocationFailed"
    shipment_id: Identifier
    problems: list[LineProblem]
    allocated_lines: list[LineResult] = Field(default_factory=list)


class ShipmentShipped(Message):
    type: Literal["ShipmentShipped"] = "ShipmentShipped"
    shipment_id: Identifier
    lines: list[LineResult]


class ShipmentShipRefused(Message):
    type: Literal["ShipmentShipRefused"] = "ShipmentShipRefused"
    shipment_id: Identifier
    reason_code: ReasonCode
    reason: Text
    problems: list[LineProblem] = Field(default_factory=list)


class ShipmentCancelledStatus(Message):
    """Status `ShipmentCancelled`: every allocation of the shipment was released."""

    type: Literal["ShipmentCancelled"] = "ShipmentCancelled"
    shipment_id: Identifier
    released_lines: list[LineResult] = Field(default_factory=list)
    refused: LineProblem | None = None


StatusMessage = Annotated[
    ReceiptPosted
    | ReceiptRejected
    | ShipmentAllocated
    | ShipmentAllocationFailed
    | ShipmentShipped
    | ShipmentShipRefused
    | ShipmentCancelledStatus,
    Field(discriminator="type"),
]
