"""Messages upstream systems publish (DESIGN.md §4). Field names are the public contract."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.contracts import topics
from shared.contracts.base import Model, UpstreamMessage
from shared.contracts.types import (
    Count,
    Date,
    Flag,
    Identifier,
    LineNo,
    OptionalIdentifier,
    OptionalMoney,
    Quantity,
    SignedQuantity,
    Text,
    whole_number,
)
from shared.reasons import shown
from shared.serials import BLANK_LOOKING, SerialEntryError, one_typed_serial

MAX_LINES = 10_000
MAX_LIST = 1_000_000
MAX_SHELF_LIFE_DAYS = 3650  # ten years: a longer requirement is a typo, not a customer's


def _one_serial(value: str | None) -> str | None:
    """R6: a Next Serial is one serial that typed entry (R5) reads back as itself; otherwise the
    units generated from it could never be named again (by a return, a vendor return or an
    adjustment)."""
    if value is None:
        return None
    try:
        return one_typed_serial(value)
    except SerialEntryError as exc:
        raise ValueError(
            f"next serial {shown(value)} is not one typed serial: {exc.reason}"
        ) from None


NextSerial = Annotated[OptionalIdentifier, AfterValidator(_one_serial)]


def _visible(value: str) -> str:
    """The serial parser (R5) refuses control, format, private-use and unassigned characters and
    splits on every space; invisible letters and marks it passes, but a serial is an identifier,
    which may not hold them: refused here, as the document's problem, not by a command later."""
    found = BLANK_LOOKING.search(value)
    if found is not None:
        raise ValueError(f"serials contain the invisible character U+{ord(found.group()):04X}")
    return value


# Serials as typed (one string, parsed by rule R5) or as a list of strings.
SerialEntry = (
    Annotated[str, Field(max_length=8 * 1024 * 1024), AfterValidator(_visible)]
    | list[Annotated[str, Field(max_length=256), AfterValidator(_visible)]]
)


def _whole_days(value: object) -> object:
    """A number of days is a JSON number (or its digits as text): not a boolean, not "1_0";
    blank, as many ERPs send a field they have no value for, is left out."""
    if isinstance(value, bool):
        raise ValueError(f"a number of days is a whole number, not {str(value).lower()}")
    whole_number(value, MAX_SHELF_LIFE_DAYS, "a number of days")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"a number of days is a whole number, not {shown(text)}")
    return value


# R9: the customer's minimum remaining shelf life, in days after the ship date.
ShelfLifeDays = Annotated[
    int | None, Field(ge=0, le=MAX_SHELF_LIFE_DAYS), BeforeValidator(_whole_days)
]
_SHELF_LIFE = (
    "Sales of perishable items only (ignored on a vendor return and for other items): a lot "
    "is allocated to the line only if its expires_on is at least this many days after "
    "ship_on (0: the lot may expire on the ship date itself). Whole days, 0 to "
    f"{MAX_SHELF_LIFE_DAYS}."
)


class LotQuantity(Model):
    """A manufacturer lot named on a line, with its quantity and (for perishables) expiry."""

    mfr_lot: Identifier
    expires_on: Date | None = None
    quantity: Quantity


class LotPick(Model):
    mfr_lot: Identifier
    quantity: Quantity


class UpsertItem(UpstreamMessage):
    """Create or update an item: upsert semantics. A field left out (or null) keeps the item's
    current value, so an ERP may send only what changed; a new item takes the default named in
    the field's description. `ItemUpserted` answers with the item's resulting values."""

    type: Literal["UpsertItem"] = "UpsertItem"
    lic: Identifier
    description: Text | None = Field(
        default=None, description='Left out: the item\'s current description ("" for a new item).'
    )
    uom: OptionalIdentifier = Field(
        default=None, description='Left out: the item\'s current unit ("Each" for a new item).'
    )
    track_mfr_lot: Flag | None = Field(
        default=None,
        description="Left out: the item's current flag (false for a new item). Changing it once "
        "records refer to the item is refused TRACKING_LOCKED (R2).",
    )
    serialized: Flag | None = Field(
        default=None,
        description="Left out: the item's current flag (false for a new item). Changing it once "
        "records refer to the item is refused TRACKING_LOCKED (R2).",
    )
    perishable: Flag | None = Field(
        default=None,
        description="Left out: true when this message marks lot tracking (a new item, or one "
        "whose track_mfr_lot was false), else the item's current flag (R1).",
    )
    next_serial: NextSerial = Field(
        default=None,
        description="Left out: the item's current Next Serial (none for a new item). One serial "
        "as typed entry (R5) reads it: at most 64 characters, no separator or span marker (R6).",
    )
    est_unit_cost: OptionalMoney = Field(
        default=None,
        description="Left out: the item's current estimated unit cost (0 for a new item).",
    )
    gtin: OptionalIdentifier = None


class ReceiptLine(Model):
    line_no: LineNo
    lic: Identifier
    quantity: Quantity
    unit_cost: OptionalMoney = None
    bin: OptionalIdentifier = None
    lots: list[LotQuantity] = Field(default_factory=list, max_length=10_000)
    serials: SerialEntry | None = None
    scans: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list, max_length=MAX_LIST
    )


class ShipmentReceived(UpstreamMessage):
    type: Literal["ShipmentReceived"] = "ShipmentReceived"
    shipment_id: Identifier
    office: Identifier
    source: Literal["purchase", "production", "customer_return"] = Field(
        description="Required: a customer return received as a purchase would make a new lot "
        "instead of reversing usage (R13)."
    )
    reference: OptionalIdentifier = None
    customer: OptionalIdentifier = None
    vendor: OptionalIdentifier = Field(
        default=None, description="the vendor of a purchase receipt (backward trace)"
    )
    received_on: Date
    lines: list[ReceiptLine] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _unique_line_numbers(self) -> ShipmentReceived:
        _check_unique_lines([line.line_no for line in self.lines])
        return self


class ShipmentLine(Model):
    line_no: LineNo
    lic: Identifier
    quantity: Quantity
    lots: list[LotPick] = Field(default_factory=list, max_length=10_000)
    serials: SerialEntry | None = None
    scans: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list, max_length=MAX_LIST
    )
    min_shelf_life_days: ShelfLifeDays = Field(
        default=None,
        description=f"Left out: the document's min_shelf_life_days. {_SHELF_LIFE}",
    )


class ShipmentRequested(UpstreamMessage):
    type: Literal["ShipmentRequested"] = "ShipmentRequested"
    shipment_id: Identifier
    office: Identifier
    kind: Literal["sale", "vendor_return"] = "sale"
    customer: OptionalIdentifier = None
    vendor: OptionalIdentifier = None
    reference: OptionalIdentifier = None
    ship_on: Date
    lines: list[ShipmentLine] = Field(min_length=1, max_length=MAX_LINES)
    min_shelf_life_days: ShelfLifeDays = Field(
        default=None,
        description="The customer's minimum remaining shelf life for every line that does not "
        f"name its own; left out: 0. {_SHELF_LIFE}",
    )

    @model_validator(mode="after")
    def _unique_line_numbers(self) -> ShipmentRequested:
        _check_unique_lines([line.line_no for line in self.lines])
        return self


class ShipmentPicksUpdated(UpstreamMessage):
    type: Literal["ShipmentPicksUpdated"] = "ShipmentPicksUpdated"
    shipment_id: Identifier
    line_no: LineNo
    lots: list[LotPick] = Field(default_factory=list, max_length=10_000)
    serials: SerialEntry | None = None
    scans: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=list, max_length=MAX_LIST
    )


class ShipmentShipRequested(UpstreamMessage):
    type: Literal["ShipmentShipRequested"] = "ShipmentShipRequested"
    shipment_id: Identifier


class ShipmentCancelled(UpstreamMessage):
    type: Literal["ShipmentCancelled"] = "ShipmentCancelled"
    shipment_id: Identifier


class AdjustInventory(UpstreamMessage):
    type: Literal["AdjustInventory"] = "AdjustInventory"
    adjustment_id: Identifier
    lic: Identifier
    office: Identifier
    kind: Literal["beginning_balance", "count", "loss"]
    quantity: SignedQuantity
    unit_cost: OptionalMoney = None
    lots: list[LotQuantity] = Field(default_factory=list, max_length=10_000)
    serials: SerialEntry | None = None
    reason: Text = ""
    adjusted_on: Date | None = None


class QuarantineStock(UpstreamMessage):
    """Put stock in quarantine (a QA or recall hold) or release it: a manufacturer lot (at
    every office, or one) or one inventory lot. Quarantined stock stays on hand but is never
    allocated to or shipped on a sale until released; a vendor return may name it. Answered
    `StockQuarantined` (or `CommandRejected`) on inventory.events."""

    type: Literal["QuarantineStock"] = "QuarantineStock"
    quarantine_id: Identifier
    lic: Identifier
    # lot_id before mfr_lot: the check that one of them is given runs on mfr_lot, so that its
    # refusal names that field (LOT_REQUIRED, docs/contract.md "Invalid documents").
    lot_id: OptionalIdentifier = Field(
        default=None,
        description="The inventory lot held (with mfr_lot: only that manufacturer lot in it).",
    )
    mfr_lot: OptionalIdentifier = Field(
        default=None,
        validate_default=True,
        description="The manufacturer lot held: every unit of it, now and received later. "
        "At least one of mfr_lot and lot_id (a plain item has only inventory lots).",
    )
    office: OptionalIdentifier = Field(
        default=None,
        description="Left out: every office. A release names the office its quarantine named.",
    )
    quarantined: Flag = Field(
        description="Required: true puts the stock in quarantine, false releases the "
        "quarantine sent with the same mfr_lot, lot_id and office."
    )
    reason: Text = ""
    quarantined_on: Date | None = Field(
        default=None,
        description="The business date of the quarantine or release, as the ledger records "
        "it; left out: the date of occurred_at.",
    )
    before_receipt: Flag = Field(
        default=False,
        description="true: hold mfr_lot even though the item never received it (a supplier's "
        "recall notice for a lot on its way), so it is held when it arrives. Left out: a "
        "manufacturer lot the item never had is refused LOT_NOT_FOUND, so that a typo does "
        "not hold nothing without a word.",
    )

    @field_validator("mfr_lot", mode="after")
    @classmethod
    def _names_stock(cls, value: str | None, info: ValidationInfo) -> str | None:
        # lot_id missing from the data failed its own check: that error is the one to show.
        if value is None and "lot_id" in info.data and info.data["lot_id"] is None:
            raise ValueError("a quarantine names a mfr_lot, a lot_id or both")
        return value


def _no_default(schema: dict[str, Any]) -> None:
    """JSON schema only: the field is optional and leaving it out is not the same as any value."""
    schema.pop("default", None)


class PurchaseOrderUpdated(UpstreamMessage):
    type: Literal["PurchaseOrderUpdated"] = "PurchaseOrderUpdated"
    po: Identifier
    lic: Identifier
    ordered_quantity: Count | None = None
    purchased_quantity: Count | None = None
    act_unit_cost: OptionalMoney = None
    # Left out means "as it was", not false (a false reopens a closed PO): the ledger tells the
    # two apart by `model_fields_set`, so the Python default stays False and only the schema
    # drops it (a schema default of false would tell integrators that leaving it out reopens).
    closed: Flag = Field(
        default=False,
        description="true closes the PO (usage of its lots is reconciled to its actual cost);"
        " false reopens a closed PO; left out, the PO stays open or closed as it was. Not"
        " nullable: null is refused.",
        json_schema_extra=_no_default,
    )


def _check_unique_lines(numbers: list[int]) -> None:
    seen: set[int] = set()
    for number in numbers:
        if number in seen:
            raise ValueError(f"line_no {number} appears twice")
        seen.add(number)


ReceiptMessage = Annotated[ShipmentReceived, Field(discriminator="type")]
ShipmentMessage = Annotated[
    ShipmentRequested | ShipmentPicksUpdated | ShipmentShipRequested | ShipmentCancelled,
    Field(discriminator="type"),
]
ItemMessage = Annotated[UpsertItem, Field(discriminator="type")]
AdjustmentMessage = Annotated[AdjustInventory | QuarantineStock, Field(discriminator="type")]
CostMessage = Annotated[PurchaseOrderUpdated, Field(discriminator="type")]

# Where an upstream system publishes each document (DESIGN §4): its topic, and the field whose
# value is the record's key.
TOPIC_MESSAGES: dict[str, Any] = {
    topics.RECEIPTS: ReceiptMessage,
    topics.SHIPMENTS: ShipmentMessage,
    topics.ITEMS: ItemMessage,
    topics.ADJUSTMENTS: AdjustmentMessage,
    topics.COSTS: CostMessage,
}
UPSTREAM_ROUTES: dict[str, tuple[str, str]] = {
    "ShipmentReceived": (topics.RECEIPTS, "shipment_id"),
    "ShipmentRequested": (topics.SHIPMENTS, "shipment_id"),
    "ShipmentPicksUpdated": (topics.SHIPMENTS, "shipment_id"),
    "ShipmentShipRequested": (topics.SHIPMENTS, "shipment_id"),
    "ShipmentCancelled": (topics.SHIPMENTS, "shipment_id"),
    "UpsertItem": (topics.ITEMS, "lic"),
    "AdjustInventory": (topics.ADJUSTMENTS, "adjustment_id"),
    "QuarantineStock": (topics.ADJUSTMENTS, "lic"),
    "PurchaseOrderUpdated": (topics.COSTS, "po"),
}


def document_key(message: object) -> str | None:
    """The record key the contract gives an upstream document (docs/contract.md "Topics",
    `UPSTREAM_ROUTES`): its document id, normalized as validation normalized it. None for a
    message that is not an upstream document (lotline's own, or a raw record)."""
    if not isinstance(message, UpstreamMessage) or message.type not in UPSTREAM_ROUTES:
        return None
    return str(getattr(message, UPSTREAM_ROUTES[message.type][1]))


def key_matches(key: bytes | None, expected: str) -> bool:
    """Whether a record's key is the document id `expected` (from `document_key`), read as the
    id itself is read: UTF-8, NFC, trimmed (so a producer keying by the id as written, spaces
    and all, matches, as `lotline send` does). A null key, or one that is not UTF-8, never does."""
    if key is None:
        return False
    try:
        text = bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return unicodedata.normalize("NFC", text).strip() == expected
