"""Document status on `inventory.status` (key = document id), from receiving and shipping."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from shared.contracts.base import Message, Model
from shared.contracts.events import Movement
from shared.contracts.reasons import ReasonCode
from shared.contracts.types import Amount, Identifier, LineNo, OwnDate, Text


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
    shipped: bool = Field(
        default=False,
        description=(
            "the line has shipped (every line of ShipmentShipped): in a refusal's"
            " allocated_lines, a line whose units left with the shipment, held no more"
        ),
    )


# A shipment status lists each unit its lines moved; one of more units than a message can carry
# (hundreds of thousands of serials) goes without them, saying so: the ledger has every one.
MovementsOmitted = Annotated[
    bool,
    Field(
        description="true: the lines' `movements` are left out, too many units to list in one"
        " message; each unit is in the ledger (GET /usage?lic=, GET /trace)",
    ),
]


class _Status(Message):
    """Every status on `inventory.status`: which upstream documents it answers."""

    answers: list[Identifier] = Field(
        default_factory=list,
        description="the message_ids of the upstream documents this status answers",
    )


class ReceiptWarning(Model):
    """Something about a posted receipt its clerk should hear at once: the line was received
    all the same (the goods are there), but needs a decision."""

    line_no: LineNo
    lic: Identifier
    code: Literal[
        "LOT_EXPIRED_ON_RECEIPT",
        "LOT_EXPIRED_ON_RETURN",
        "LOT_QUARANTINED_ON_RECEIPT",
        "LOT_QUARANTINED_ON_RETURN",
    ] = Field(
        description="LOT_EXPIRED_ON_RECEIPT: a perishable manufacturer lot of a purchase or"
        " production receipt expires before the receipt's received_on (a lot expiring that"
        " very day is not expired: it may still ship that day). LOT_EXPIRED_ON_RETURN: a"
        " perishable manufacturer lot a customer return put back into the inventory lot it was"
        " shipped from (named in the message, with the units) expires before the return's"
        " received_on, as allocation's answer tells (same rule for that very day); quarantine"
        " it or write it off. LOT_QUARANTINED_ON_RECEIPT: units of a purchase or production"
        " receipt arrived in stock a quarantine in force holds (a manufacturer lot recalled"
        " before_receipt, say; the message names it and why): received, but no sale takes"
        " them; put them in quarantine storage. LOT_QUARANTINED_ON_RETURN: the same for units"
        " a customer return put back into a held lot. One per line, inventory lot,"
        " manufacturer lot and quarantine",
    )
    mfr_lot: Identifier | None = Field(
        description="the manufacturer lot; null only for a LOT_QUARANTINED_ON_RETURN of units"
        " in no manufacturer lot",
    )
    expires_on: OwnDate | None = Field(
        description="the manufacturer lot's expiry date; null only for a LOT_QUARANTINED_*"
        " warning of a lot without one",
    )
    lot_id: Identifier | None = Field(
        default=None,
        description="the inventory lot the units are in (the one a QuarantineStock of them names)",
    )
    quarantine_id: Identifier | None = Field(
        default=None,
        description="a LOT_QUARANTINED_* warning's quarantine holding the units (the one a"
        " release names); null for the others",
    )
    message: Text = Field(
        description="a sentence naming the lot, the dates and what can be done: quarantine it"
        " with QuarantineStock, or return it to the vendor (a production receipt's or a"
        " customer return's: write it off); for a LOT_QUARANTINED_* warning, the units, the"
        " quarantine and its reason, and the QuarantineStock that releases it",
    )


class ReceiptPosted(_Status):
    type: Literal["ReceiptPosted"] = "ReceiptPosted"
    shipment_id: Identifier
    lines: list[LineResult]
    warnings: list[ReceiptWarning] = Field(
        default_factory=list,
        description="what the receiving clerk should hear at once about lines posted all the"
        " same (a perishable lot already expired when received, units arriving in"
        " quarantine); empty: nothing",
    )


class _Refusal(_Status):
    """A document refused with one or more problems. `reason_code`, `reason` and `offending`
    repeat the first problem (DESIGN §4: a refusal carries its reason code and a reason naming
    the offending value), so a dashboard reads every refusal alike; `problems` has them all."""

    problems: list[LineProblem]
    reason_code: ReasonCode | None = Field(default=None, description="the first problem's code")
    reason: Text | None = Field(default=None, description="the first problem's reason")
    offending: Text | None = Field(default=None, description="the first problem's offending value")

    @model_validator(mode="before")
    @classmethod
    def _first_problem(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("reason_code") or not data.get("problems"):
            return data
        problems = data["problems"]
        first = problems[0]
        values = first if isinstance(first, dict) else vars(first)
        reason = values.get("reason")
        if reason is not None and len(problems) > 1:
            more = len(problems) - 1
            reason = f"{reason} (and {more} more problem{'s' if more > 1 else ''})"
        return {
            **data,
            "reason_code": values.get("reason_code"),
            "reason": reason,
            "offending": values.get("offending"),
        }


class ReceiptRejected(_Refusal):
    type: Literal["ReceiptRejected"] = "ReceiptRejected"
    shipment_id: Identifier
    posted_lines: list[LineResult] = Field(
        default_factory=list,
        description="lines allocation accepted before another line was refused",
    )


class ShipmentAllocated(_Status):
    type: Literal["ShipmentAllocated"] = "ShipmentAllocated"
    shipment_id: Identifier
    lines: list[LineResult]
    movements_omitted: MovementsOmitted = False


class ShipmentAllocationFailed(_Refusal):
    type: Literal["ShipmentAllocationFailed"] = "ShipmentAllocationFailed"
    shipment_id: Identifier
    allocated_lines: list[LineResult] = Field(default_factory=list)
    movements_omitted: MovementsOmitted = False


class ShipmentShipped(_Status):
    type: Literal["ShipmentShipped"] = "ShipmentShipped"
    shipment_id: Identifier
    lines: list[LineResult]
    movements_omitted: MovementsOmitted = False


class ShipmentShipRefused(_Status):
    type: Literal["ShipmentShipRefused"] = "ShipmentShipRefused"
    shipment_id: Identifier
    reason_code: ReasonCode
    reason: Text
    offending: Text | None = Field(default=None, description="the first problem's offending value")
    problems: list[LineProblem] = Field(default_factory=list)
    lines: list[LineResult] = Field(
        default_factory=list,
        description=(
            "once some lines shipped (allocation may refuse one line's ShipLine while others"
            " ship): every line, `shipped` true for each that left (post its goods issue),"
            " false for each still allocated or not; empty when no line shipped"
        ),
    )
    movements_omitted: MovementsOmitted = False


class ShipmentCancelledStatus(_Status):
    """Status `ShipmentCancelled`: every allocation of the shipment was released (of a partly
    shipped one, every line not shipped: the shipped lines stay shipped)."""

    type: Literal["ShipmentCancelled"] = "ShipmentCancelled"
    shipment_id: Identifier
    released_lines: list[LineResult] = Field(default_factory=list)
    refused: LineProblem | None = None
    movements_omitted: MovementsOmitted = False


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
