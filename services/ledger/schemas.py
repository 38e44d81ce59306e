"""Response models of the ledger's read API (DESIGN.md §4). Quantities and money are decimal
strings in JSON, dates `YYYY-MM-DD`, exactly as on the wire."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, localcontext
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    computed_field,
    field_validator,
)

from services.ledger.domain.model import EXACT


def plain(value: Decimal) -> str:
    """Fixed-point text: "1000000", never "1.00E+6" as the database may hand it over, and a
    zero unsigned: a negative quantity at cost 0 is worth −0 in decimal arithmetic, which a
    reader comparing text would take for another value than 0."""
    return format(value.copy_abs() if value.is_zero() else value, "f")


Num = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]
"""A decimal as `plain` text in JSON."""


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorOut(Out):
    detail: str = Field(description="what was not found or not understood, naming the value")


def _stock_value(where: str) -> str:
    """The description of the value of an item's stock in its open lots `where`."""
    return (
        f"the value of the stock in its open lots {where}: each lot's current quantity at the"
        " lot's unit cost (actual once its PO closed, else estimated), exactly the lots'"
        " `valuation.current.value` (`GET /lots/{lot_id}`) added up; unallocated stock (R12),"
        " in on_hand, is not in it: it is in no lot (`unallocated_value`: value +"
        " unallocated_value is the whole stock's)"
    )


def _unallocated_value(where: str) -> str:
    return (
        f"what the unallocated stock (R12) {where} cost: what each count beyond any lot brought"
        " it in at, less what removals took out at its average cost (its lot-less usage"
        " records); 0 when there is none"
    )


class OfficeStock(Out):
    office: str
    on_hand: Num = Field(
        description="physically at the office: in every open lot, plus unallocated stock"
    )
    allocated: Num = Field(description="held for shipments not yet shipped")
    available: Num = Field(
        description=(
            "what a sale can still be allocated: in the office's open lots − allocated − stock"
            " in quarantine not allocated (unallocated stock is not counted: allocation takes"
            " stock from lots only). Stock of expired manufacturer lots is counted: R9 judges"
            " expiry by each sale's ship date; `expired` says how much of it no sale shipping"
            " today takes"
        )
    )
    expired: Num = Field(
        default=Decimal(0),
        description=(
            "of available, the units no sale shipping today takes (R9) because their"
            " manufacturer lot expired: expires_on before today, the UTC date of the read (one"
            " expiring today still ships today), of a perishable item (a lot of another item"
            " ships whatever its expiry). Exactly each such lot's received − used − allocated"
            " at the office, leaving out a lot a quarantine holds (not in available, counted in"
            " quarantined), so available − expired is what a sale shipping today can get,"
            " before any minimum shelf life a customer requires. The dashboard's expired stock"
            " (`/ops/summary` `ledger.expired`, same day by default) counts more: the whole stock"
            " on hand of each expired lot, allocated or held, of every item"
        ),
    )
    quarantined: Num = Field(
        default=Decimal(0),
        description=(
            "of the lots' stock on hand, what a quarantine in force holds, allocated or not"
            " (as the dashboard's stock in quarantine counts it); not in available"
        ),
    )
    unallocated: Num = Field(
        description=(
            "on hand but in no inventory lot (R12: a plain item adjusted up beyond what its"
            " lots can take); counted in on_hand, not in available"
        )
    )
    value: Num = Field(description=_stock_value("at the office"))
    unallocated_value: Num = Field(
        default=Decimal(0), description=_unallocated_value("at the office")
    )


_GTIN = "the GTIN its last ItemUpserted carried (null: none)"
_NEXT_SERIAL = (
    "R6: the serial a receipt without serials starts from, as allocation's last ItemUpserted"
    " or StockReceived of the item says it (null: none, or none recorded since an upgrade)"
)


class ItemOut(Out):
    lic: str
    description: str
    uom: str
    track_mfr_lot: bool
    serialized: bool
    perishable: bool
    gtin: str | None = Field(default=None, description=_GTIN)
    next_serial: str | None = Field(default=None, description=_NEXT_SERIAL)
    est_unit_cost: Num
    value: Num = Field(description=_stock_value("at every office"))
    unallocated_value: Num = Field(
        default=Decimal(0), description=_unallocated_value("at every office")
    )
    stock: list[OfficeStock]


class ItemSummary(Out):
    """An item in `GET /items`: its flags and its stock on hand at every office."""

    lic: str
    description: str
    uom: str
    track_mfr_lot: bool
    serialized: bool
    perishable: bool
    gtin: str | None = Field(description=_GTIN)
    next_serial: str | None = Field(description=_NEXT_SERIAL)
    est_unit_cost: Num
    on_hand: Num = Field(
        description="at every office: in open lots, plus unallocated stock (as `GET /items/{lic}`"
        " counts it per office)"
    )
    value: Num = Field(
        description=_stock_value("at every office") + " (as `GET /items/{lic}` values it)"
    )
    unallocated_value: Num = Field(
        default=Decimal(0), description=_unallocated_value("at every office")
    )


class Figure(Out):
    quantity: Num
    value: Num


class QuarantineOut(Out):
    """A quarantine (QA or recall hold) in force on some of a lot's stock: nothing of it is
    allocated or shipped to a customer until it is released."""

    quarantine_id: str
    mfr_lot: str | None = Field(description="the manufacturer lot held; None: the whole lot")
    lot_id: str | None = Field(description="the inventory lot it names; None: every lot")
    office: str | None = Field(description="None: every office")
    reason: str
    since: dt.date = Field(description="the date the quarantine took effect")


class LotSummary(Out):
    lot_id: str
    lic: str
    office: str
    kind: str = Field(description="purchase, production or adjustment")
    reference: str | None = Field(description="parent order: PO, production order, adjustment")
    vendor: str | None = Field(default=None, description="who sold it (purchase lots)")
    bin: str | None = Field(default=None, description="where its receipt line put it away")
    document: str = Field(description="the receiving document or adjustment that created it")
    received_on: dt.date
    status: str = Field(description="open while stock remains, closed when all used (R7)")
    received_qty: Num
    used_qty: Num
    allocated_qty: Num
    current_qty: Num
    unit_cost: Num = Field(description="actual once the PO closed, else estimated (R16)")
    current_value: Num = Field(
        description="current_qty × unit_cost: its `GET /lots/{lot_id}` `valuation.current.value`"
    )
    quarantined: bool = Field(
        default=False, description="some of its stock is in quarantine (see `quarantines`)"
    )
    quarantines: list[QuarantineOut] = Field(
        default_factory=list, description="the quarantines holding any of its stock"
    )


class PoLineSummary(Out):
    """A PO line (one LIC of a PO) as the ledger's `PurchaseOrderUpdated`s left it (R16)."""

    po: str
    lic: str
    ordered_qty: Num | None = Field(description="null until an update names it")
    purchased_qty: Num | None = Field(description="null until an update names it")
    act_unit_cost: Num | None = Field(description="the actual unit cost last named")
    applied_unit_cost: Num | None = Field(
        description="the actual unit cost its last closing applied to its lots and COGS (it"
        " differs from act_unit_cost while a reopened PO names a corrected cost); null: none yet"
    )
    closed: bool
    cost_is_final: bool = Field(
        description="closed with an actual unit cost applied: its lots' `cost_is_final`"
    )
    closed_on: dt.date | None = Field(description="the date of its last close")
    closings: int = Field(description="closings applied (each a new actual cost, R16)")
    updated_at: dt.datetime = Field(description="when the ledger recorded its last update")


class PoLotOut(Out):
    """A purchase lot a PO line prices: a purchase receipt line of its LIC naming the PO."""

    lot_id: str
    document: str = Field(description="the receiving document")
    office: str
    received_on: dt.date
    received_qty: Num
    returned_to_vendor_qty: Num = Field(description="what returns to vendor took from it (R14)")


# The figure a returns clerk matches a vendor's credit memo against (R16).
_CREDIT_VALUE = (
    "at the cost the vendor credits (what it billed: the PO's actual cost, not the estimate"
    " a return before the close was booked at): each return's usage records at the cost they"
    " were booked at plus the `vendor_return_reconciliation` entries the PO's closings wrote"
    " for them (R16). So once the PO closed, at the actual unit cost its last closing applied"
    " (`applied_unit_cost`), whether the return went before or after the close; before any"
    " close, at the estimated cost they were booked at (not final: `cost_is_final` false)."
    " `GET /usage` lists the records at their booked cost, `GET /lots/{lot_id}`'s `cogs` the"
    " reconciliations"
)


class PoVendorReturnOut(Out):
    """A return to vendor (R14) of a PO line's lots: what one shipment document of kind
    `vendor_return` took from them on one date, to match with the vendor's credit memo."""

    document: str = Field(description="the return's shipment id")
    returned_on: dt.date = Field(description="its ship date")
    vendor: str | None = Field(description="the vendor it went back to, as the return named it")
    quantity: Num = Field(description="units of the line's lots it took")
    value: Num = Field(description=f"their value, {_CREDIT_VALUE}")


class PoLineOut(PoLineSummary):
    received_qty: Num = Field(description="what its lots received, in all")
    returned_to_vendor_qty: Num = Field(
        description="what returns to vendor took from its lots, in all (R14); received_qty"
        " still counts it",
    )
    returned_to_vendor_value: Num = Field(
        description=f"the value of returned_to_vendor_qty, {_CREDIT_VALUE}"
    )
    returns_to_vendor: list[PoVendorReturnOut] = Field(
        description="the returns to vendor that took from its lots, one per document and date,"
        " oldest first (then by document): the first 100, `returns_to_vendor_count` says how"
        " many there are",
    )
    returns_to_vendor_count: int = Field(
        description="how many returns to vendor took from its lots"
    )
    lots: list[PoLotOut] = Field(
        description="the lots it prices, in receipt order; none: no receipt named the PO for"
        " this LIC (a misspelled PO, or a receipt still to come)"
    )


class PurchaseOrderOut(Out):
    po: str
    lines: list[PoLineOut] = Field(description="one per LIC, by LIC")


class Valuation(Out):
    """The seed's Ordered / Purchased, Ordered / Received, Accrued and Current sections."""

    unit_cost: Num
    est_unit_cost: Num
    act_unit_cost: Num | None
    cost_is_final: bool = Field(description="the PO closed with an actual unit cost")
    ordered: Figure | None = Field(
        description=(
            "this lot's share of its PO line's ordered quantity (a line received in several"
            " lots is shared in receipt order, each lot up to what it received, the latest"
            " taking the rest, so the lots add up to the line); null until a PO update names it"
        )
    )
    purchased: Figure = Field(description="this lot's share of the PO line's purchased quantity")
    purchased_remaining: Figure | None = Field(description="ordered − purchased")
    received: Figure
    received_remaining: Figure | None = Field(description="ordered − received")
    accrued: Figure = Field(
        description=(
            "received − purchased: received and not yet billed; 0 for production and"
            " adjustment lots, which nothing was bought for"
        )
    )
    used: Figure
    current: Figure = Field(description="received − used")
    allocated: Figure
    available: Figure = Field(
        description="current − allocated − quarantined stock not allocated: what a sale can take"
    )
    quarantined: Figure = Field(
        description="its stock on hand a quarantine in force holds, allocated or not"
    )


class MfrLotOut(Out):
    mfr_lot: str
    expires_on: dt.date | None
    received_qty: Num
    used_qty: Num
    allocated_qty: Num
    current_qty: Num
    quarantined: bool = Field(default=False, description="held by a quarantine")
    quarantine_id: str | None = Field(default=None, description="the quarantine holding it")
    quarantine_reason: str | None = Field(default=None, description="and why")


class SerialRecord(Out):
    lic: str
    serial: str
    lot_id: str
    mfr_lot: str | None
    expires_on: dt.date | None
    status: str = Field(
        description="available, quarantined (in stock, not allocated, held by a quarantine:"
        " the current record of `GET /serials`, and `GET /lots/{lot_id}`), allocated, shipped,"
        " returned_to_vendor, removed"
    )
    document: str | None = Field(description="the shipment or adjustment that last moved it")
    line_no: int | None
    counterparty: str | None
    unit_cost: Num = Field(
        description="its lot's cost when it last moved, or the actual cost once the lot's PO closed"
    )
    received_on: dt.date
    changed_on: dt.date
    vendor: str | None = Field(default=None, description="the vendor of the lot it came in")
    quarantined: bool = Field(
        default=False,
        description="in stock and held by a quarantine (allocated or not): the current record"
        " of `GET /serials`, and `GET /lots/{lot_id}`",
    )


class CogsEntry(Out):
    entry_key: str
    kind: str = Field(
        description="usage (booked cost), reconciliation (to the actual cost), or"
        " vendor_return_reconciliation (a return to vendor's, to the actual cost: not COGS,"
        " left out of `cogs_total`)"
    )
    usage_id: str
    source: str = Field(description="what the usage was: shipment, vendor_return, loss, …")
    document: str | None = Field(description="transaction id: the usage's document")
    entered_on: dt.date
    po: str | None
    mfr_lot: str | None
    serial: str | None
    quantity: Num
    unit_cost: Num = Field(description="booked cost; for a reconciliation, the difference")
    est_unit_cost: Num = Field(description="the lot's estimated cost when it was used")
    amount: Num


class LotDetail(Out):
    lot_id: str
    lic: str
    description: str
    uom: str
    transaction_id: str = Field(description="the receiving document or adjustment")
    line_no: int | None
    date: dt.date
    office: str
    kind: str
    parent_order: str | None
    vendor: str | None = Field(default=None, description="who sold it (purchase lots)")
    bin: str | None = Field(default=None, description="where its receipt line put it away")
    serialized: bool
    track_mfr_lot: bool
    status: str
    valuation: Valuation
    quarantined: bool = Field(
        default=False, description="some of its stock is in quarantine (see `quarantines`)"
    )
    quarantines: list[QuarantineOut] = Field(
        default_factory=list, description="the quarantines holding any of its stock"
    )
    mfr_lots: list[MfrLotOut]
    serials: list[SerialRecord]
    cogs: list[CogsEntry]
    cogs_total: Num = Field(
        description="the COGS of its usage: `cogs` without returns to vendor, which are no cost"
        " of goods sold"
    )


class TraceEvent(Out):
    """One transaction record (R15): a receipt, allocation, shipment, adjustment or return,
    or a lot's cost change when its PO closed (R16)."""

    date: dt.date
    event_type: str = Field(
        description="receipt, beginning_balance, allocation, release, shipment, vendor_return,"
        " count, loss, customer_return, cost_change: a PO closing changed the lot's unit cost"
        " (quantity: the units of the serial, manufacturer lot or rest of the lot still in it"
        " then, each unit in one record; unit_cost and cost: the change), or quarantine /"
        " quarantine_release: a hold or its release of the stock on hand (stock change 0)"
    )
    lic: str
    lot_id: str | None
    mfr_lot: str | None
    serial: str | None
    expires_on: dt.date | None
    quantity: Num
    stock_change: Num = Field(description="+ into stock, − out, 0 for allocations and costs")
    unit_cost: Num
    cost: Num
    office: str
    document: str
    line_no: int | None
    counterparty: str | None = Field(description="customer or vendor")
    reference: str | None = Field(description="the lot's parent order (PO …)")
    lot_kind: str | None
    reason: str
    vendor: str | None = Field(default=None, description="the lot's vendor (purchase lots)")
    recorded_seq: int = Field(
        description="the order the ledger recorded it in, which is the order lotline decided"
        " it: `date` is the document's business date, which a back-dated or future-dated"
        " document sets apart from that order (records are listed by date, then this)"
    )
    recorded_at: dt.datetime | None = Field(
        description="when the ledger recorded it (null: recorded before the ledger kept it)"
    )


class LotOrigin(Out):
    """Where traced units came from: the lot, its parent order, vendor and receipt."""

    lot_id: str
    kind: str
    reference: str | None
    vendor: str | None = Field(default=None, description="who sold it (purchase lots)")
    document: str
    office: str
    received_on: dt.date
    unit_cost: Num


class Recipient(Out):
    """Forward, for a recall: one customer shipped any of the traced stock, and how much."""

    customer: str
    shipments: int = Field(description="shipment documents that sent them any of it")
    shipped: Num = Field(description="units shipped to them")
    returned: Num = Field(description="units they returned (customer returns naming them)")
    held: Num = Field(
        description="what they may still hold: for an item without serials, shipped −"
        " returned (a return naming no customer is not taken off anyone's); for a serialized"
        " item, the units of `serials_held`, one per serial (so a unit back in stock by a"
        " record not naming them is not counted: shipped − returned − held of them came back"
        " so)"
    )
    serials_held: list[str] = Field(
        default_factory=list,
        description="the traced serials they hold now, sorted: each one whose latest shipment"
        " of the trace, as recorded (as /serials follows), shipped it to them, unless a later"
        " record of that serial of the item, traced or not, brought it back into stock (a"
        " customer return, even naming no customer, a beginning balance, a count or loss that"
        " adds, a receipt: R4, the unit is on our shelf); one shipped on again is the later"
        " customer's; empty for an item without serials",
    )
    first_shipped_on: dt.date
    last_shipped_on: dt.date


class OfficeOnHand(Out):
    office: str
    on_hand: Num


class TraceBalance(Out):
    """Where the traced units are, for a recall: every unit that came into stock is shipped,
    back, gone to the vendor, adjusted or on hand (received − shipped + returned_by_customers −
    returned_to_vendor + adjusted = on_hand), and the shipped ones the customers may still
    hold are `at_customers`."""

    received: Num = Field(description="units in by receipts and beginning balances")
    shipped: Num = Field(description="units shipped to customers")
    returned_by_customers: Num = Field(description="units back by customer returns")
    returned_to_vendor: Num = Field(description="units returned to their vendor")
    adjusted: Num = Field(description="units counts and losses added (+) or removed (−), net")
    on_hand: Num = Field(
        description="units still in our stock (quarantined or not): the sum of every record's"
        " stock change"
    )
    on_hand_by_office: list[OfficeOnHand] = Field(
        description="on_hand at each office holding any, by office: the shelves to clear"
    )
    at_customers: Num = Field(
        description="what the customers may still hold: the sum of `recipients`' held (a"
        " return naming no customer is taken off no one's, so this may exceed shipped −"
        " returned_by_customers)"
    )


class TraceOut(Out):
    lic: str
    description: str
    uom: str
    mfr_lot: str | None
    serial: str | None
    lot_id: str | None
    origins: list[LotOrigin] = Field(description="backward: the lots, receipts, orders and vendors")
    customers: list[str] = Field(description="forward: everyone shipped any of it")
    recipients: list[Recipient] = Field(
        description="forward, for a recall: each customer in `customers` with the quantities"
        " shipped to them and returned, and the serials they hold"
    )
    accounted: TraceBalance = Field(
        description="where the traced units are: shipped, back, returned to the vendor,"
        " adjusted, on hand (by office) and at customers"
    )
    events: list[TraceEvent]


class ItemTraces(Out):
    """A manufacturer lot traced in every item that has it (`GET /trace` naming no `lic`):
    each item's trace as `GET /trace?lic=&mfr_lot=` answers it, items by LIC."""

    mfr_lot: str
    gtin: str | None = Field(description="the GTIN asked, if any: only items with it")
    items: list[TraceOut]


class SerialOut(Out):
    lic: str
    serial: str
    status: str = Field(
        description="the status of its most recent record; `quarantined` for a unit in stock,"
        " not allocated, that a quarantine holds (no sale may take it)"
    )
    quarantined: bool = Field(
        default=False,
        description="in stock (available or allocated) and held by a quarantine in force",
    )
    quarantine_id: str | None = Field(default=None, description="the quarantine holding it")
    quarantine_reason: str | None = Field(default=None, description="and why")
    vendor: str | None = Field(
        default=None, description="the vendor of the lot of its most recent record"
    )
    current: SerialRecord
    records: list[SerialRecord] = Field(description="one per lot it was ever received into")
    history: list[TraceEvent]


# A usage record's cost once its PO's closings reconciled it (R16): what a credit memo or an
# invoice is priced from (`unit_cost` and `total_cost` stay what it was booked at).
_RECONCILED_COST = (
    "its booked total_cost plus every reconciliation entry its PO's closings wrote for it"
    " (`reconciliation`, and a return to vendor's `vendor_return_reconciliation`: `GET"
    " /lots/{lot_id}`'s `cogs`): what a credit memo or an invoice is priced from; total_cost"
    " until a closing reconciles it"
)
_RECONCILED_UNIT_COST = (
    "reconciled_cost / quantity, exact as the ledger divides a reconciliation's unit cost (60"
    " significant digits); null when quantity is 0"
)
_COST_FINAL = (
    "its lot's cost is final: the lot's PO closed with an actual cost applied (`GET"
    " /purchase-orders`' `cost_is_final`), so reconciled_cost will not change; false for a"
    " lot of no PO, or while its PO is open or reopened"
)


def per_unit(cost: Decimal, quantity: Decimal) -> Decimal | None:
    """`cost` over `quantity`, exactly (`EXACT`, as a reconciliation's unit cost is divided);
    None for no quantity."""
    if not quantity:
        return None
    with localcontext(EXACT):
        return cost / quantity


class UsageOut(Out):
    usage_id: str
    lic: str
    lot_id: str | None
    mfr_lot: str | None
    serial: str | None
    expires_on: dt.date | None
    source: str
    quantity: Num = Field(description="+ used, − reversed or unallocated (R12)")
    unit_cost: Num
    est_unit_cost: Num
    total_cost: Num
    office: str
    document: str
    line_no: int | None
    counterparty: str | None
    used_on: dt.date
    reconciled_cost: Num = Field(description=_RECONCILED_COST)
    cost_final: bool = Field(description=_COST_FINAL)

    @computed_field(description=_RECONCILED_UNIT_COST)  # type: ignore[prop-decorator]
    @property
    def reconciled_unit_cost(self) -> Num | None:
        return per_unit(self.reconciled_cost, self.quantity)


class RecordUsage(Out):
    """The usage record (R10, R12, R13) a transaction record wrote, as `GET /usage` lists it:
    a shipment, return to vendor, loss or count out uses stock (+); a customer return or a
    count in reverses use (−). Records that move no stock (allocations, releases, quarantines,
    cost changes) and receipts write none."""

    usage_id: str
    source: str
    quantity: Num = Field(description="+ used, − reversed or unallocated (R12)")
    unit_cost: Num = Field(
        description="the cost it was booked at: the lot's actual cost once its PO closed, else"
        " the estimate (a later closing reconciles it in the lot's `cogs`: see"
        " `reconciled_cost`)"
    )
    est_unit_cost: Num
    total_cost: Num = Field(description="quantity × unit_cost")
    used_on: dt.date
    reconciled_cost: Num = Field(description=_RECONCILED_COST)
    cost_final: bool = Field(description=_COST_FINAL)

    @computed_field(description=_RECONCILED_UNIT_COST)  # type: ignore[prop-decorator]
    @property
    def reconciled_unit_cost(self) -> Num | None:
        return per_unit(self.reconciled_cost, self.quantity)


class DocumentRecord(TraceEvent):
    """One transaction record of a document (R15), as `/trace` lists it, with the usage
    record it wrote."""

    usage: RecordUsage | None = Field(
        description="the usage record this record wrote (null: it wrote none, as an"
        " allocation, a receipt or a quarantine)"
    )

    @field_validator("usage", mode="before")
    @classmethod
    def _usage_row(cls, value: object) -> object:
        # The database answers the usage row with its reconciliation as one JSON object, its
        # numbers as text (every digit kept): its fields by name, as a model is built from them.
        if isinstance(value, str | bytes):
            return json.loads(value)
        items = getattr(value, "items", None)
        if value is None or isinstance(value, dict | BaseModel) or items is None:
            return value
        return dict(items())


_IN = "into stock (the positive stock changes: received, returned by customers, counted in)"
_OUT = "out of stock (the negative stock changes: shipped, returned to vendor, written off)"


_REVALUATION = (
    "a PO's (the document id a PO): what its closings changed the value of its lots' stock on"
    " hand by (R16: each lot's units still in it × the cost difference)"
)
_RECONCILIATION = (
    "a PO's: the COGS reconciliation entries its closings wrote for the usage of its lots"
    " (`reconciliation` and `vendor_return_reconciliation`, dated as they were entered);"
    " revaluation + reconciliation is the closings' whole variance, the journal of closing"
    " the PO at its actual cost. 0 for a document that is no PO"
)


class DocumentItem(Out):
    """One item of a document: its records summed up. Records that move no stock
    (allocations, releases, quarantines, cost changes) count in neither way."""

    lic: str
    description: str
    uom: str
    record_count: int = Field(description="its transaction records naming the document")
    quantity_in: Num = Field(description=f"units {_IN}")
    quantity_out: Num = Field(description=f"units {_OUT}")
    cost_in: Num = Field(description=f"the cost of the units {_IN}, at each record's cost")
    cost_out: Num = Field(description=f"the cost of the units {_OUT}, at each record's cost")
    usage_cost: Num = Field(
        description="what its usage records booked: + used, − reversed (each `usage`'s"
        " total_cost added up; `GET /usage?document=` lists them)"
    )
    usage_cost_reconciled: Num = Field(
        description="its usage records at their reconciled cost (each `usage`'s"
        " reconciled_cost added up): usage_cost plus what its POs' closings reconciled (R16)"
    )
    revaluation: Num = Field(
        default=Decimal(0),
        description=f"{_REVALUATION}: the cost of its cost_change records added up",
    )
    reconciliation: Num = Field(default=Decimal(0), description=_RECONCILIATION)


class WarningOut(Out):
    """A warning a document's answer carried: it posted all the same, but its clerk has
    something to decide (`ReceiptPosted.warnings`, `InventoryAdjusted.warnings`)."""

    code: str = Field(description="e.g. LOT_EXPIRED_ON_RECEIPT, SERIAL_WAS_SHIPPED")
    message: str = Field(description="what happened and what can be done, as the answer said it")


_WARNINGS_KEPT = (
    "the warnings its latest answer carried (a ReceiptPosted's or InventoryAdjusted's: code and"
    " message), the first 100, the last saying how many more; empty: none"
)


class DocumentRecords(Out):
    """Every transaction record the ledger holds naming one document (a shipment, a receipt,
    an adjustment, a customer return, a quarantine, a PO's cost changes), across its items:
    a summary of them all, and a page of the records, oldest first as `/trace` lists them."""

    document: str
    record_count: int = Field(description="its records, on every page")
    first_date: dt.date = Field(description="the business date of its first record")
    last_date: dt.date = Field(description="and of its last")
    event_types: list[str] = Field(description="the kinds of its records, sorted")
    counterparties: list[str] = Field(description="the customers and vendors its records name")
    quantity_in: Num = Field(description=f"units {_IN}, every item's")
    quantity_out: Num = Field(description=f"units {_OUT}, every item's")
    cost_in: Num = Field(description="the cost of the units into stock, every item's")
    cost_out: Num = Field(description="the cost of the units out of stock, every item's")
    usage_cost: Num = Field(description="what its usage records booked, every item's")
    usage_cost_reconciled: Num = Field(
        description="its usage records at their reconciled cost, every item's"
    )
    revaluation: Num = Field(default=Decimal(0), description=f"{_REVALUATION}, every item's")
    reconciliation: Num = Field(default=Decimal(0), description=f"{_RECONCILIATION}; every item's")
    warnings: list[WarningOut] | None = Field(
        default=None,
        description=f"{_WARNINGS_KEPT}, as the operations dashboard keeps its answer (a receipt's,"
        " shipment's or adjustment's; every kind's, when several have this id). null: the"
        " dashboard keeps no answer of it: a document of no such answer (a quarantine, a PO;"
        " a customer return is answered ReceiptPosted: its warnings), or one answered over 7"
        " days ago or before the latest 100,000 documents (the dashboard's retention); an"
        " answer recorded before warnings were kept shows []",
    )
    items: list[DocumentItem] = Field(description="each item it names, by LIC, summed up")
    records: list[DocumentRecord] = Field(
        description="a page of its records (`limit`, `offset`, `after`), oldest first: by"
        " business date, then in the order recorded"
    )


_IN_PERIOD = "dated in the period (`entered_on`, both dates included)"


class VendorReturnFigures(Out):
    """Returns to vendor of a period (R14): a credit against purchases, no cost of goods sold
    (not in `cogs`), shown beside it at the cost the vendor credits."""

    quantity: Num = Field(description="units returned to vendors by usage records dated in it")
    usage: Num = Field(description="their usage records' cost as booked (`GET /usage`)")
    reconciliation: Num = Field(
        description="the `vendor_return_reconciliation` entries of PO closings (R16) dated in"
        " it, whatever the date of the return they correct"
    )
    total: Num = Field(description="usage + reconciliation")


class CogsCause(Out):
    """The part of a period's COGS one cause made."""

    quantity: Num = Field(description="net units its usage entries used")
    usage: Num = Field(description="its `usage` entries: the cost as booked")
    reconciliation: Num = Field(description="PO closings' `reconciliation` entries of its usage")
    cogs: Num = Field(description="usage + reconciliation")


class CogsCauses(Out):
    """A period's COGS by what caused it; the three add up to `cogs`."""

    sales: CogsCause = Field(description="shipments to customers less customer returns")
    losses: CogsCause = Field(description="`loss` adjustments: waste, damage, expiry write-offs")
    counts: CogsCause = Field(description="`count` adjustments: stock counted out less counted in")


class CogsFigures(Out):
    """The cost of goods sold of a period, from the COGS entries dated in it (each lot's
    `cogs` of `GET /lots/{lot_id}`, and those of usage in no lot, R12)."""

    quantity: Num = Field(
        description="net units used by the usage entries dated in it: sold, lost, counted out,"
        " less returned by customers and counted in"
    )
    usage: Num = Field(
        description="the `usage` entries dated in it: their usage records' cost as booked (+"
        " used, − reversed)"
    )
    reconciliation: Num = Field(
        description="the `reconciliation` entries of PO closings (R16) dated in it (each the"
        " later of its close's date and its usage's), whatever the date of the usage they"
        " correct"
    )
    cogs: Num = Field(
        description="usage + reconciliation: the period's cost of goods sold, counted as"
        " `cogs_total` counts a lot's (returns to vendor left out)"
    )
    vendor_returns: VendorReturnFigures = Field(description="returns to vendor, not in cogs")
    causes: CogsCauses = Field(
        description="`cogs` by cause: sales, losses (write-offs) and counts (shrinkage found)"
    )


class CogsItem(CogsFigures):
    """One item's figures of the period."""

    lic: str
    description: str
    uom: str


class CogsPeriod(Out):
    """The cost of goods sold of a period (R10, R16): the COGS entries dated in it, summed by
    item and in all. The sum over every date of an item's entries in lots is its lots'
    `cogs_total` added up."""

    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date = Field(alias="from", description="the period's first day")
    to: dt.date = Field(description="its last day")
    lic: str | None = Field(description="the item asked for (null: every item)")
    total: CogsFigures = Field(description=f"every item's entries {_IN_PERIOD}")
    items: list[CogsItem] = Field(
        description=f"by LIC, each item with an entry or a return to vendor {_IN_PERIOD}"
    )


class Health(Out):
    status: str
    database: str


# -- the operations dashboard ---------------------------------------------------------------


class StatusCount(Out):
    kind: str = Field(description="receipt | shipment | adjustment")
    status: str = Field(description="the latest answer's message type, e.g. ShipmentAllocated")
    documents: int


class DocumentOut(Out):
    kind: str = Field(description="receipt | shipment | adjustment (one that posted)")
    document: str = Field(description="shipment id, or adjustment id")
    status: str = Field(
        description="the latest answer's message type (an adjustment's: InventoryAdjusted)"
    )
    reason_code: str | None
    occurred_at: dt.datetime = Field(description="when the answer was sent")
    lic: str | None = Field(default=None, description="an adjustment's item; else null")
    adjustment_kind: str | None = Field(
        default=None, description="an adjustment's kind: beginning_balance | count | loss"
    )
    quantity: Num | None = Field(
        default=None, description="an adjustment's quantity, signed: + added, − removed"
    )
    warnings: list[WarningOut] = Field(default_factory=list, description=_WARNINGS_KEPT)


class ReasonCount(Out):
    reason_code: str
    refusals: int = Field(description="refusing messages naming it (a document refused once)")
    problems: int = Field(
        description="their problems with this code (a refused document's first 20 are kept)"
    )


class RefusalOut(Out):
    type: str = Field(
        description="the refusing message type (`CommandRejected:<command>` for an adjustment"
        " or item: `AdjustStock` or `UpsertItem`, whether allocation's intake or its decision"
        " refused it)"
    )
    document: str | None = Field(description="shipment id, adjustment id, or the item's LIC")
    lic: str | None
    line_no: int | None
    reason_code: str
    offending: str | None
    reason: str
    occurred_at: dt.datetime
    superseded_by: str | None = Field(
        default=None,
        description="the answer that posted the refused document after this refusal"
        " (InventoryAdjusted: the same adjustment_id resent and posted; ReceiptPosted;"
        " ShipmentShipped), so the refusal is history, not an open problem; null: open",
    )
    superseded_at: dt.datetime | None = Field(
        default=None, description="when that answer was sent; null: open"
    )


class DeadLetterOut(Out):
    dlq_partition: int
    dlq_offset: int
    dead_at: dt.datetime = Field(description="the dead-letter record's timestamp")
    error: str | None
    source_topic: str | None
    source_partition: str | None
    source_offset: str | None
    consumer: str | None
    answered: str | None
    headers: dict[str, str] = Field(description="every header, each value clipped")
    key: str | None
    payload_bytes: int
    preview: str = Field(
        description="the first bytes as text, non-UTF-8 bytes and control or invisible"
        " characters escaped; `…` when there is more"
    )


class MfrLotStock(Out):
    """One manufacturer lot of an item at an office, whatever inventory lots hold it: a
    number received twice is one lot to the warehouse (one shelf, one recall, one write-off).
    A number carrying two expiry dates is two rows: the stock differs."""

    lic: str
    office: str
    mfr_lot: str
    expires_on: dt.date
    current_qty: Num = Field(description="on hand: received − used, over its inventory lots")
    allocated_qty: Num = Field(description="of it, allocated to shipments not yet shipped")
    current_value: Num = Field(
        description="on hand at each inventory lot's unit cost (actual once the PO closed)"
    )
    lot_id: str = Field(description="the first received of `lot_ids`")
    lot_ids: list[str] = Field(description="the inventory lots holding it, in receipt order")


class ExpiringLot(MfrLotStock):
    days_left: int = Field(description="expires_on − as_of: 0 expires on it, still shippable")


class ExpiredLot(MfrLotStock):
    days_expired: int = Field(description="as_of − expires_on: 1 or more")


class QuarantinedStock(Out):
    """Stock on hand in quarantine: one manufacturer lot of an item at an office, whatever
    inventory lots hold it (None: a plain item's lots there)."""

    lic: str
    office: str
    mfr_lot: str | None
    current_qty: Num = Field(description="on hand: received − used, over its inventory lots")
    allocated_qty: Num = Field(
        description="of it, allocated to shipment lines (a sale's cannot ship: SHIPMENT_INCOMPLETE)"
    )
    current_value: Num = Field(
        description="on hand at each inventory lot's unit cost (actual once the PO closed)"
    )
    lot_ids: list[str] = Field(description="the inventory lots holding it, in receipt order")
    quarantine_ids: list[str] = Field(description="the quarantines holding it")
    reason: str = Field(description="why (the first lot's quarantine)")


class LastEvent(Out):
    message_id: str
    event_type: str
    lic: str
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    lag_seconds: float = Field(description="recorded_at − occurred_at")
    idle_seconds: float = Field(description="now − recorded_at")


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class LedgerHealth(Out):
    last_event: LastEvent | None = Field(description="the last inventory event recorded")
    # Defaults below only for a summary built by hand; the read always sets them.
    as_of: dt.date = Field(
        default_factory=_utc_today,
        description="the date 'today', expired and expiring are read against: the `as_of`"
        " the request named, else the UTC date of `generated_at`, whatever the database"
        " server's time zone",
    )
    usage_records_today: int = Field(description="usage records dated `as_of`")
    usage_cost_today: Num
    expired_lots: int = Field(
        default=0,
        description="manufacturer lots (per item, office, lot and expiry) with stock on hand"
        " that expired before `as_of` (one expiring on it still ships that day: LOT_EXPIRED)",
    )
    expired_value: Num = Field(default=Decimal(0), description="their stock's value, all of it")
    expired: list[ExpiredLot] = Field(
        default_factory=list, description="the first of them, most overdue first"
    )
    expiring_days: int
    expiring_lots: int = Field(
        description="manufacturer lots (per item, office, lot and expiry) with stock on hand"
        " expiring from `as_of` to `expiring_days` later, both included"
    )
    expiring_value: Num = Field(default=Decimal(0), description="their stock's value, all of it")
    expiring: list[ExpiringLot] = Field(description="the first of them, soonest first")
    quarantined_lots: int = Field(
        default=0,
        description="manufacturer lots (per item and office; a plain item's lots there count"
        " as one) with stock on hand in quarantine",
    )
    quarantined_value: Num = Field(default=Decimal(0), description="their stock's value, all of it")
    quarantined: list[QuarantinedStock] = Field(
        default_factory=list, description="the first of them, by item, office and lot"
    )
    unmatched_po_lines: int = Field(
        default=0,
        description="PO lines that price no lot: no purchase receipt named their PO for their"
        " LIC (a misspelled PO reference, or a receipt still to come)",
    )
    unmatched_po: list[PoLineSummary] = Field(
        default_factory=list,
        description="the first of them, the longest since their last update first",
    )


class OpsSummary(Out):
    generated_at: dt.datetime
    window_hours: int = Field(description="the counts cover this many hours back")
    documents_by_status: list[StatusCount]
    latest_documents: list[DocumentOut]
    refusals_by_reason: list[ReasonCount]
    latest_refusals: list[RefusalOut]
    superseded_refusals_in_window: int = Field(
        default=0,
        description="of the refusals in the window (`refusals_by_reason`), those a later"
        " posting of their document superseded (`superseded_by`)",
    )
    documents_with_warnings_in_window: int = Field(
        default=0,
        description="documents whose latest answer in the window carried warnings",
    )
    dead_letters_in_window: int
    latest_dead_letters: list[DeadLetterOut]
    ledger: LedgerHealth


class StockValueFigures(Out):
    """Stock on hand and its value, as of the end of a day."""

    on_hand: Num = Field(description="units on hand then: in lots and in none (R12)")
    value: Num = Field(
        description="the stock in lots at each lot's unit cost then (the estimate until its PO"
        " closed, then the actual cost the closing applied)"
    )
    unallocated: Num = Field(description="of `on_hand`, the units in no lot then (R12)")
    unallocated_value: Num = Field(
        description="their cost: what counts beyond any lot brought them in at, less what"
        " removals took out at their average cost"
    )
    total_value: Num = Field(description="value + unallocated_value: the whole stock's")


class OfficeStockValue(StockValueFigures):
    office: str


class ItemStockValue(StockValueFigures):
    """One item's stock then, in all and by office (offices holding none then left out)."""

    lic: str
    description: str
    uom: str
    offices: list[OfficeStockValue]


class StockValuation(Out):
    """Stock on hand and its value as of the end of a day, by item and office and in all, read
    off the transaction records dated up to that day (R15): each record moves its units at its
    unit cost, and a PO closing's `cost_change` records revalue the units then on hand. As of
    today (or later) it is `GET /items`' `on_hand`, `value` and `unallocated_value`."""

    as_of: dt.date = Field(description="the day whose end the figures are as of")
    lic: str | None = Field(description="the item asked for (null: every item)")
    office: str | None = Field(description="the office asked for (null: every office)")
    total: StockValueFigures = Field(description="every item's, added up")
    items: list[ItemStockValue] = Field(
        description="by LIC, each item with stock or value then (at `office`, if asked)"
    )


class Movement(Out):
    """Stock that came in (+) or went out (−) in a period by one kind of record, at the cost
    each was booked at."""

    quantity: Num
    value: Num


class Movements(Out):
    """A period's stock movements by kind of record (R15), at booked cost."""

    receipts: Movement = Field(description="purchase and production receipts")
    beginning_balances: Movement
    shipments: Movement = Field(description="sales shipped (−)")
    customer_returns: Movement
    vendor_returns: Movement = Field(description="returns to vendor (−)")
    losses: Movement = Field(description="`loss` adjustments (−)")
    counts: Movement = Field(description="`count` adjustments, counted in less counted out")


class RollForward(Out):
    """Opening stock + movements + revaluation = closing stock, in value; the quantities add up
    the same way (a revaluation moves none)."""

    opening: StockValueFigures = Field(description="as of the end of the day before `from`")
    movements: Movements
    revaluation: Num = Field(
        description="what PO closings (R16) changed the value of the stock on hand by in the"
        " period: closing − opening − the movements' value"
    )
    closing: StockValueFigures = Field(description="as of the end of `to`")


class OfficeRollForward(RollForward):
    office: str


class ItemRollForward(RollForward):
    lic: str
    description: str
    uom: str
    offices: list[OfficeRollForward]


class StockRollForward(Out):
    """A period's stock roll-forward (a month's close): by item and office and in all."""

    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date = Field(alias="from", description="the period's first day")
    to: dt.date = Field(description="its last day")
    lic: str | None = Field(description="the item asked for (null: every item)")
    office: str | None = Field(description="the office asked for (null: every office)")
    total: RollForward
    items: list[ItemRollForward] = Field(
        description="by LIC, each item with stock at either end or a movement in the period"
    )
