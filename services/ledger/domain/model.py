"""Ledger domain model: what the ledger reads (facts) and the rows it writes. Pure stdlib.

The ledger never decides anything about stock: allocation already did. It records. Every
inventory event becomes one `Fact` (an action on some lots, manufacturer lots and serials), and
`recording.record` folds a batch of facts into `Entries`, the rows and deltas the repository
writes with set-based SQL.

Sign conventions:

- `Move.quantity` is as the event carried it: positive (the quantity received, allocated,
  released, shipped or returned), except for counts and losses, whose moves are signed
  (+ into stock, − out). `recording.stock_change` turns it into the change of stock on hand.
- `UsageRow.quantity`: + units used (shipped, returned to vendor, lost, counted out),
  − usage reversed (customer return, positive count or loss) or stock added beyond any lot
  (R12's negative, unallocated usage).
- `TransactionRow.quantity` is always the positive size of the movement; `stock_change` says
  which way it went.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Context, Decimal
from typing import Literal, NamedTuple

from shared.movements import MovementValues

ZERO = Decimal(0)

EXACT = Context(prec=60)
"""The context of the ledger's money arithmetic. The default one keeps 28 significant digits,
but the contract allows quantities below 1e9 and unit costs below 1e12, both with 6 places:
their product needs up to 33 digits, and a sum of such amounts a few more. Money is computed
in this context (`cost_of`, or `localcontext(EXACT)` around a calculation) so it is exact."""


cost_of = EXACT.multiply
"""`cost_of(quantity, unit_cost)`: their product, exactly. The context's own method, called
directly: it runs for every usage, transaction and COGS row, and a Python wrapper would more
than double its cost."""


Action = Literal[
    "receipt",
    "beginning_balance",
    "allocation",
    "release",
    "shipment",
    "vendor_return",
    "count",
    "loss",
    "customer_return",
    "cost_change",
    "quarantine",
    "quarantine_release",
]
"""What happened, as the transaction records and the recall spreadsheet name it.
`cost_change`: a PO closing changed the lot's unit cost (R16). `quarantine`,
`quarantine_release`: stock put in a QA or recall hold, or released (stock change 0)."""

USAGE_ACTIONS: frozenset[Action] = frozenset(
    {"shipment", "vendor_return", "count", "loss", "customer_return"}
)
COGS_ACTIONS: frozenset[Action] = USAGE_ACTIONS - {"vendor_return"}
"""Usage that is a cost of goods sold (see `recording`'s policies). A `cogs` row counts in a
COGS total exactly when its `source` is one of these: a return to vendor's reconciliation
(`CogsKind`) does not."""
ADDING: frozenset[Action] = frozenset(
    {"receipt", "beginning_balance", "customer_return", "count", "loss"}
)
"""What may add stock to a lot (a count or loss reversal adds when positive)."""

LotKind = Literal["purchase", "production", "adjustment"]
SerialStatus = Literal["available", "allocated", "shipped", "returned_to_vendor", "removed"]
CogsKind = Literal["usage", "reconciliation", "vendor_return_reconciliation"]
"""`usage`: a COGS usage at its booked cost; `reconciliation`: a COGS usage brought to the
actual cost by a PO closing (R16); `vendor_return_reconciliation`: a return to vendor's usage
brought to the actual cost by a closing. A return to vendor is no cost of goods sold (it books
no `usage` entry) but its usage record was booked at the estimate too: its reconciliation
makes a lot's usage records and reconciliations add up to its used value, and COGS totals
leave it out as they leave the return (its source is `vendor_return`, not in `COGS_ACTIONS`)."""


# ---------------------------------------------------------------------------------------------
# Facts: the ledger's reading of `inventory.events`


# What recording reads of a move: `Move`, or the wire movement itself (an event may carry
# 100,000 of them; the ledger reads them where they are instead of copying each).
MoveView = MovementValues


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """Units of one inventory lot (and manufacturer lot, and serial) an action moved.

    `lot_id` is None only for stock no inventory lot holds (R12). `unit_cost` is the cost the
    allocation core knew (the lot's estimated cost).
    """

    lot_id: str | None
    mfr_lot: str | None
    expires_on: date | None
    serial: str | None
    quantity: Decimal
    unit_cost: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class NewLot:
    """An inventory lot created by a receipt line or a beginning balance (R7). `vendor`: who
    sold it (purchase receipts that name one), for the backward trace."""

    lot_id: str
    kind: LotKind
    office: str
    reference: str | None
    received_on: date
    quantity: Decimal
    unit_cost: Decimal
    vendor: str | None = None
    bin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fact:
    """One inventory event as the ledger reads it. `document` is the shipment or adjustment id
    that caused it; `counterparty` the customer or vendor."""

    event_id: str
    lic: str
    action: Action
    office: str
    document: str
    on: date
    moves: Sequence[MoveView]
    line_no: int | None = None
    counterparty: str | None = None
    new_lot: NewLot | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemFact:
    """An item's master data as allocation last accepted it."""

    event_id: str
    lic: str
    description: str
    uom: str
    track_mfr_lot: bool
    serialized: bool
    perishable: bool
    est_unit_cost: Decimal
    gtin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A quarantine in force (`quarantines`): its key ('' = any) and what its records say."""

    lic: str
    mfr_lot: str
    lot_id: str
    office: str
    quarantine_id: str
    reason: str
    since: date

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.lic, self.mfr_lot, self.lot_id, self.office)

    def covers(self, lot_id: str, mfr_lot: str | None, office: str) -> bool:
        """As the reads match stock (`quarantine.held_stock`): a rule naming a manufacturer
        lot covers only stock of it."""
        return (
            self.mfr_lot in ("", mfr_lot)
            and self.lot_id in ("", lot_id)
            and self.office in ("", office)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """A `StockQuarantined` as the batch's recording sees it, in its place among the facts:
    `rule` put in force, or lifted (`lifted`)."""

    rule: Rule
    lifted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """What the ledger already knows that a batch's costing (R16) and quarantine records
    depend on.

    `actual_costs`: lots whose PO closed with an actual unit cost. `po_costs`: (po, lic) of
    purchase orders a closing applied an actual unit cost to (reopened since or not), with that
    cost, for lots received after the close.
    """

    actual_costs: dict[str, Decimal] = field(default_factory=dict)
    po_costs: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    """The quarantines in force before the batch, of the LICs it adds stock to."""


# ---------------------------------------------------------------------------------------------
# Rows
#
# The row types written once per move (serials, usage, transactions, COGS) are named tuples:
# immutable like the dataclasses, several times cheaper to build, and a batch may hold 100,000
# of each. Their fields are in the table's column order, so they go to the database as they are.


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRow:
    lic: str
    description: str
    uom: str
    track_mfr_lot: bool
    serialized: bool
    perishable: bool
    est_unit_cost: Decimal
    gtin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LotRow:
    """A new inventory lot. `act_unit_cost` is set when its PO closed before it arrived;
    `vendor` is the purchase receipt's vendor, when it named one."""

    lot_id: str
    lic: str
    office: str
    kind: LotKind
    reference: str | None
    document: str
    line_no: int | None
    received_on: date
    est_unit_cost: Decimal
    act_unit_cost: Decimal | None
    received_qty: Decimal
    event_id: str
    vendor: str | None = None
    bin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MfrLotRow:
    """A manufacturer lot inside a new inventory lot, with the quantity received of it."""

    lot_id: str
    mfr_lot: str
    lic: str
    expires_on: date | None
    received_qty: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    """Change of an inventory lot's (or manufacturer lot's) used and allocated quantities."""

    used: Decimal = ZERO
    allocated: Decimal = ZERO

    def __add__(self, other: Delta) -> Delta:
        return Delta(used=self.used + other.used, allocated=self.allocated + other.allocated)


class SerialRow(NamedTuple):
    """A serial's state in one inventory lot after the batch (the last change wins).
    `last_txn_id`: the transaction record of that change; the order records were written in
    (not their business dates, which a later record may have earlier) tells which of the
    serial's lots it is in now. `received_on`: when it came into the lot (its receipt or
    beginning balance), None if not in this batch (the row keeps the date it has)."""

    lic: str
    serial: str
    lot_id: str
    mfr_lot: str | None
    expires_on: date | None
    status: SerialStatus
    document: str | None
    line_no: int | None
    counterparty: str | None
    unit_cost: Decimal
    changed_on: date
    last_txn_id: str
    received_on: date | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.lic, self.serial, self.lot_id)


class UsageRow(NamedTuple):
    """An inventory usage record (R10). `unit_cost`: the cost it was booked at (the actual cost
    once the lot's PO closed, else the estimate); `est_unit_cost`: the lot's estimate."""

    usage_id: str
    lic: str
    lot_id: str | None
    mfr_lot: str | None
    serial: str | None
    expires_on: date | None
    source: Action
    quantity: Decimal
    unit_cost: Decimal
    est_unit_cost: Decimal
    office: str
    document: str
    line_no: int | None
    counterparty: str | None
    used_on: date
    event_id: str

    @property
    def total_cost(self) -> Decimal:
        return cost_of(self.quantity, self.unit_cost)


class TransactionRow(NamedTuple):
    """A transaction record (R15): one change to one lot or serial. Serial records carry the
    transaction cost of their one unit; lot records the quantity and its cost."""

    txn_id: str
    lic: str
    lot_id: str | None
    mfr_lot: str | None
    serial: str | None
    expires_on: date | None
    event_type: Action
    quantity: Decimal
    stock_change: Decimal
    unit_cost: Decimal
    office: str
    document: str
    line_no: int | None
    counterparty: str | None
    reference: str | None
    occurred_on: date
    event_id: str
    reason: str = ""

    @property
    def record(self) -> Literal["lot", "serial"]:
        return "serial" if self.serial is not None else "lot"

    @property
    def cost(self) -> Decimal:
        return cost_of(self.quantity, self.unit_cost)


class CogsRow(NamedTuple):
    """A cost-of-goods-sold entry: a usage at its booked cost, or a reconciliation of a usage
    to the actual cost (R16); or a return to vendor's reconciliation, which is no COGS (`kind`
    says which: `CogsKind`). `entry_key` makes writing it idempotent."""

    entry_key: str
    lic: str
    lot_id: str | None
    usage_id: str
    kind: CogsKind
    source: Action
    quantity: Decimal
    unit_cost: Decimal
    amount: Decimal
    entered_on: date
    event_id: str
    po: str | None = None


@dataclass(slots=True)
class Entries:
    """Everything one batch of facts writes. Deltas are summed per key; serial rows keep only
    the last state of each (serial, lot) so one set-based upsert can write them. COGS entries
    are not kept: each is a function of its usage row (`cogs`, `iter_cogs`), and a sale of
    100,000 serials would hold 100,000 of them beside their usage."""

    items: dict[str, ItemRow] = field(default_factory=dict)
    lots: list[LotRow] = field(default_factory=list)
    mfr_lots: dict[tuple[str, str], MfrLotRow] = field(default_factory=dict)
    lot_deltas: dict[str, Delta] = field(default_factory=dict)
    mfr_deltas: dict[tuple[str, str], Delta] = field(default_factory=dict)
    unallocated: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    unallocated_value: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    """(lic, office) -> the change in what the unallocated stock (R12) cost: − each lot-less
    usage's total cost (a count in beyond any lot is negative usage: it adds)."""
    serials: dict[tuple[str, str, str], SerialRow] = field(default_factory=dict)
    usage: list[UsageRow] = field(default_factory=list)
    transactions: list[TransactionRow] = field(default_factory=list)

    @property
    def cogs(self) -> list[CogsRow]:
        """The COGS entry of every usage row that books one, in usage order."""
        return list(self.iter_cogs())

    def iter_cogs(self) -> Iterator[CogsRow]:
        """`cogs`, one entry at a time."""
        return (usage_cogs(u) for u in self.usage if u.source in COGS_ACTIONS)

    def count_cogs(self) -> int:
        """How many entries `iter_cogs` yields, without building them."""
        return sum(1 for u in self.usage if u.source in COGS_ACTIONS)

    def add_lot_delta(self, lot_id: str, mfr_lot: str | None, delta: Delta) -> None:
        self.lot_deltas[lot_id] = self.lot_deltas.get(lot_id, Delta()) + delta
        if mfr_lot is not None:
            key = (lot_id, mfr_lot)
            self.mfr_deltas[key] = self.mfr_deltas.get(key, Delta()) + delta

    def add_mfr_lot(self, row: MfrLotRow) -> None:
        key = (row.lot_id, row.mfr_lot)
        before = self.mfr_lots.get(key)
        if before is not None:
            row = replace(row, received_qty=before.received_qty + row.received_qty)
        self.mfr_lots[key] = row


def usage_cogs(usage: UsageRow) -> CogsRow:
    """The COGS entry of a usage record at the cost it was booked at (R10, R16)."""
    return CogsRow(
        entry_key=f"usage:{usage.usage_id}",
        lic=usage.lic,
        lot_id=usage.lot_id,
        usage_id=usage.usage_id,
        kind="usage",
        source=usage.source,
        quantity=usage.quantity,
        unit_cost=usage.unit_cost,
        amount=usage.total_cost,
        entered_on=usage.used_on,
        event_id=usage.event_id,
    )
