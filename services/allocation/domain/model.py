"""Allocation domain model: rows, commands, events and decisions. Pure stdlib.

Everything is a frozen, keyword-only dataclass shaped like a table row, so the Postgres
repository can load a `LicState` from its tables and write back what changed. Quantities and
money are `Decimal`, dates are `date`; nothing here reads a clock.

Row keys inside one `LicState` (the LIC is implicit):

- `lots`: `lot_id`
- `mfr_lots`: `(lot_id, mfr_lot)`
- `units`: `(serial, lot_id)`. A serial may have several rows over time (received, shipped,
  received again into a new lot); it is unique only among rows that are AVAILABLE, ALLOCATED or
  HELD (`Unit.in_stock`). That is the partial unique index the repository should carry.
- `allocations`: `(shipment_id, line_no)`
- `shipments`: `(lot_id, mfr_lot, customer)`: what was shipped to each customer from each lot
  (and manufacturer lot), and how much of it came back (R13).
- `unallocated`: office -> `UnallocatedStock`: stock on hand that no inventory lot holds (R12's
  negative usage), with what it cost.
- `holds`: `command_id` of a held receipt line (one line of a document with several).
- `quarantines`: `(mfr_lot, lot_id, office)`, "" for any: a QA or recall hold (`Quarantine`).
- `waiting`: `message_id` of a sale line waiting for held lines to settle (`WaitingLine`).

Event movement sign conventions (`LotMovement.quantity`):

- `StockReceived`, `LineAllocated`, `LineReleased`, `LineShipped`, `StockReturned`: positive,
  the quantity received / allocated / released / used / returned.
- `InventoryAdjusted`: signed change of stock on hand (+ added, − removed). A positive movement
  into an existing lot reverses usage; one with `lot_id=None` is unallocated stock (R12: the
  ledger writes a negative usage record of that size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Context, Decimal, localcontext
from enum import Enum
from typing import Any, Literal

from services.allocation.domain.errors import IllegalTransition, ReasonCode

ZERO = Decimal(0)

LotKind = Literal["purchase", "production", "adjustment"]
LotStatus = Literal["open", "closed"]
ShipmentKind = Literal["sale", "vendor_return"]
AllocationStatus = Literal["allocated", "shipped", "released"]
AdjustmentKind = Literal["beginning_balance", "count", "loss"]


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """An LIC and its tracking flags. `locked`: some record refers to it (R2)."""

    lic: str
    description: str
    uom: str
    track_mfr_lot: bool
    serialized: bool
    perishable: bool
    next_serial: str | None
    est_unit_cost: Decimal
    gtin: str | None = None
    locked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryLot:
    """One receipt line's stock at an office (R7). Invariant: on_hand = received_qty − used.
    `held`: stock on hand that a held receipt line brought and nothing may use yet."""

    lot_id: str
    lic: str
    office: str
    kind: LotKind
    reference: str
    received_on: date
    unit_cost: Decimal
    received_qty: Decimal
    seq: int
    on_hand: Decimal
    allocated: Decimal = ZERO
    used: Decimal = ZERO
    status: LotStatus = "open"
    held: Decimal = ZERO

    @property
    def free(self) -> Decimal:
        return self.on_hand - self.allocated - self.held

    @property
    def arrival(self) -> tuple[date, int]:
        """The one "first in" order of inventory lots (R9, DESIGN §6): the date the receipt
        carried, then `seq` (the order allocation decided receipts in, unique per LIC) among
        lots received the same day. Not `seq` alone: receipts of one LIC from different
        documents come through different partitions, so the order they are decided in is
        arbitrary. FIFO and FEFO's tie-break take the least first; usage put back by a count or
        a return fills the greatest (newest) first."""
        return (self.received_on, self.seq)

    def moved(
        self, on_hand: Decimal, allocated: Decimal, used: Decimal, held: Decimal = ZERO
    ) -> InventoryLot:
        """The lot after a change of quantities by these deltas: Closed when nothing is on
        hand, Open otherwise (R7). (Spelled out rather than `replace()`: this is the hot path.)"""
        now = self.on_hand + on_hand
        return InventoryLot(
            lot_id=self.lot_id,
            lic=self.lic,
            office=self.office,
            kind=self.kind,
            reference=self.reference,
            received_on=self.received_on,
            unit_cost=self.unit_cost,
            received_qty=self.received_qty,
            seq=self.seq,
            on_hand=now,
            allocated=self.allocated + allocated,
            used=self.used + used,
            status="open" if now else "closed",
            held=self.held + held,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MfrLot:
    """A manufacturer lot inside an inventory lot. Invariant: on_hand = initial_qty − used.
    `held`: as for the inventory lot."""

    lot_id: str
    mfr_lot: str
    expires_on: date | None
    initial_qty: Decimal
    on_hand: Decimal
    allocated: Decimal = ZERO
    used: Decimal = ZERO
    held: Decimal = ZERO

    @property
    def free(self) -> Decimal:
        return self.on_hand - self.allocated - self.held

    def moved(
        self, on_hand: Decimal, allocated: Decimal, used: Decimal, held: Decimal = ZERO
    ) -> MfrLot:
        """The mfr lot after a change of quantities by these deltas."""
        return MfrLot(
            lot_id=self.lot_id,
            mfr_lot=self.mfr_lot,
            expires_on=self.expires_on,
            initial_qty=self.initial_qty,
            on_hand=self.on_hand + on_hand,
            allocated=self.allocated + allocated,
            used=self.used + used,
            held=self.held + held,
        )

    def expired_on(self, day: date) -> bool:
        """Expired for a shipment on `day`: it expires before that day (R9)."""
        return self.expires_on is not None and self.expires_on < day


class SerialStatus(Enum):
    AVAILABLE = "available"
    ALLOCATED = "allocated"
    SHIPPED = "shipped"
    RETURNED_TO_VENDOR = "returned_to_vendor"
    REMOVED = "removed"
    HELD = "held"
    """Back from a customer through a held return line: its serial is taken (in stock), but
    nothing may use it yet. (A held receipt's units are AVAILABLE in a lot held whole.)"""


SERIAL_TRANSITIONS: dict[SerialStatus, frozenset[SerialStatus]] = {
    # allocate; count/loss removal
    SerialStatus.AVAILABLE: frozenset({SerialStatus.ALLOCATED, SerialStatus.REMOVED}),
    # release; ship a sale; ship a vendor return
    SerialStatus.ALLOCATED: frozenset(
        {SerialStatus.AVAILABLE, SerialStatus.SHIPPED, SerialStatus.RETURNED_TO_VENDOR}
    ),
    # customer return (R13); held as one line of a document with several
    SerialStatus.SHIPPED: frozenset({SerialStatus.AVAILABLE, SerialStatus.HELD}),
    # the held line confirmed; a held return cancelled
    SerialStatus.HELD: frozenset({SerialStatus.AVAILABLE, SerialStatus.SHIPPED}),
    # count/loss that finds a removed unit again (reverses its usage)
    SerialStatus.REMOVED: frozenset({SerialStatus.AVAILABLE}),
    # final: the same serial coming back is a new receipt into a new lot
    SerialStatus.RETURNED_TO_VENDOR: frozenset(),
}

IN_STOCK = (SerialStatus.AVAILABLE, SerialStatus.ALLOCATED, SerialStatus.HELD)
"""Statuses that hold the serial: another unit of the LIC may not take it (R4)."""

# The same table keyed by member name: hashing an Enum member calls its Python `__hash__`, and a
# unit moves once per serial per decision; `in` on a tuple compares members by identity.
_NEXT_STATUS: dict[str, tuple[SerialStatus, ...]] = {
    status._name_: tuple(targets) for status, targets in SERIAL_TRANSITIONS.items()
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """One serialized unit. `position`: order received within its lot (FIFO tie-break)."""

    lic: str
    serial: str
    lot_id: str
    mfr_lot: str | None
    position: int
    status: SerialStatus = SerialStatus.AVAILABLE
    shipment_id: str | None = None
    line_no: int | None = None
    customer: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.serial, self.lot_id)

    @property
    def in_stock(self) -> bool:
        return self.status in IN_STOCK

    def moved_to(
        self,
        target: SerialStatus,
        *,
        shipment_id: str | None = None,
        line_no: int | None = None,
        customer: str | None = None,
    ) -> Unit:
        """The unit in `target`; raises `IllegalTransition` off the transition table."""
        if target not in _NEXT_STATUS[self.status._name_]:
            raise IllegalTransition(self.serial, self.status.value, target.value)
        return Unit(
            lic=self.lic,
            serial=self.serial,
            lot_id=self.lot_id,
            mfr_lot=self.mfr_lot,
            position=self.position,
            status=target,
            shipment_id=shipment_id,
            line_no=line_no,
            customer=customer,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pick:
    """What one allocation takes from one inventory lot (and mfr lot, and serial)."""

    lot_id: str
    mfr_lot: str | None
    serial: str | None
    quantity: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """One shipment line's decision (R9). `complete`: ready to ship (R8)."""

    shipment_id: str
    line_no: int
    lic: str
    office: str
    kind: ShipmentKind
    counterparty: str | None
    ship_on: date
    quantity: Decimal
    picks: tuple[Pick, ...]
    status: AllocationStatus = "allocated"
    explicit: bool = False
    complete: bool = True
    movements: tuple[LotMovement, ...] | None = field(default=None, compare=False, repr=False)
    """Derived, not a column: `picks` as event movements (each with its lot's unit cost and
    expiry, which never change), kept by the allocating decision so that releasing and shipping
    do not build them again. None when loaded (the core builds them then) and once released or
    shipped (so a long history holds no copies)."""

    @property
    def key(self) -> tuple[str, int]:
        return (self.shipment_id, self.line_no)

    def with_status(self, status: AllocationStatus) -> Allocation:
        """The allocation released or shipped (spelled out: `replace()` is slow on a hot path).
        It keeps no movements: nothing moves a released or shipped line's picks again."""
        return Allocation(
            shipment_id=self.shipment_id,
            line_no=self.line_no,
            lic=self.lic,
            office=self.office,
            kind=self.kind,
            counterparty=self.counterparty,
            ship_on=self.ship_on,
            quantity=self.quantity,
            picks=self.picks,
            status=status,
            explicit=self.explicit,
            complete=self.complete,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerShipment:
    """Shipped to `customer` from one lot / mfr lot, and returned from it so far (R13).
    A sale without a named customer is recorded under customer ""."""

    lot_id: str
    mfr_lot: str | None
    customer: str
    shipped: Decimal
    returned: Decimal = ZERO

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.lot_id, self.mfr_lot, self.customer)

    @property
    def returnable(self) -> Decimal:
        return self.shipped - self.returned

    def shipped_more(self, quantity: Decimal) -> CustomerShipment:
        """The row after shipping `quantity` more (spelled out: `replace()` is slow)."""
        return CustomerShipment(
            lot_id=self.lot_id,
            mfr_lot=self.mfr_lot,
            customer=self.customer,
            shipped=self.shipped + quantity,
            returned=self.returned,
        )

    def returned_more(self, quantity: Decimal) -> CustomerShipment:
        """The row after `quantity` more came back."""
        return CustomerShipment(
            lot_id=self.lot_id,
            mfr_lot=self.mfr_lot,
            customer=self.customer,
            shipped=self.shipped,
            returned=self.returned + quantity,
        )


HeldKind = Literal["receipt", "return"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldLine:
    """A receipt line decided but held until the rest of its document is (`ConfirmHeld`,
    `CancelHeld`). `picks`: the stock it put on hand, held in its lots and mfr lots: a receipt's
    new lot whole, per mfr lot; a return's per unit (its serials HELD). A return's `returned`:
    the customer shipment rows it counted back."""

    command_id: str
    shipment_id: str
    line_no: int
    picks: tuple[Pick, ...]
    lot_id: str | None = None
    """A receipt's new inventory lot."""
    returned: tuple[tuple[tuple[str, str | None, str], Decimal], ...] = ()

    @property
    def kind(self) -> HeldKind:
        """A receipt holds its new lot; a return holds stock in the lots it went back to."""
        return "receipt" if self.lot_id is not None else "return"


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingLine:
    """A sale line short of free stock only while held receipt or return lines at its office
    hold some: decided once every hold it `awaits` (their command ids) is settled (`waiting.py`).
    `seq`: its place among the LIC's waiting lines, which are decided in arrival order."""

    command: AllocateLine
    awaits: tuple[str, ...]
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Quarantine:
    """A QA or recall hold on stock, kept until released: the stock it `covers` stays on hand
    but no sale takes it (`quarantine.py`). A rule, not a quantity, so a manufacturer lot
    received after its recall is held too. "" in `mfr_lot`, `lot_id` or `office`: any."""

    mfr_lot: str
    lot_id: str
    office: str
    quarantine_id: str
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.mfr_lot, self.lot_id, self.office)

    def covers(self, lot_id: str, office: str, mfr_lot: str | None) -> bool:
        """Whether stock of inventory lot `lot_id` (at `office`, manufacturer lot `mfr_lot`,
        None for a plain lot) is held by this rule."""
        return (
            (not self.mfr_lot or self.mfr_lot == mfr_lot)
            and (not self.lot_id or self.lot_id == lot_id)
            and (not self.office or self.office == office)
        )


COST_STEP = Decimal("0.000001")
"""The finest unit cost a movement can carry: the wire contract allows 6 decimal places."""

EXACT = Context(prec=60)
"""For stock values that must stay exact: a quantity (< 1e9) times a unit cost (< 1e12), six
places each, needs up to 33 digits, more than the default context's 28, and a sum of such
products a few more."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnallocatedStock:
    """Stock on hand at `office` that no inventory lot holds (R12) and its `value`: what it came
    in at (each count's quantity × unit cost), less what removals took out. Removals are costed
    at its average unit cost, the last of it at exactly the value left, so stock that comes and
    goes without a lot leaves no cost behind (R10). A row exists only while `quantity` > 0."""

    office: str
    quantity: Decimal
    value: Decimal

    def average(self) -> Decimal:
        """The average unit cost, rounded down to a cost a movement can carry (`COST_STEP`)."""
        with localcontext(EXACT):
            average = (self.value / self.quantity).quantize(COST_STEP, rounding=ROUND_FLOOR)
            if self.quantity * average > self.value:  # the division itself rounded up
                average -= COST_STEP
            return average


@dataclass(frozen=True, slots=True, kw_only=True)
class StockIndex:
    """Lookups derived from a `LicState`'s rows, so a decision costs what is in stock rather
    than the LIC's whole history. Never persisted; never mutated once built."""

    in_stock: dict[str, tuple[str, str]]
    """serial -> key of its unit that is in stock: AVAILABLE, ALLOCATED or HELD."""
    stocked: dict[str, str]
    """lot_id -> office, for inventory lots with stock on hand that is not all held (a held
    receipt's new lot is not stocked: nothing may pick from it or adjust it yet)."""
    mfr_names: dict[str, tuple[str, ...]]
    """lot_id -> its manufacturer lot numbers."""
    last_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LicState:
    """Everything the allocation core knows about one LIC: what the repository loads."""

    lic: str
    item: Item | None = None
    lots: dict[str, InventoryLot] = field(default_factory=dict)
    mfr_lots: dict[tuple[str, str], MfrLot] = field(default_factory=dict)
    units: dict[tuple[str, str], Unit] = field(default_factory=dict)
    allocations: dict[tuple[str, int], Allocation] = field(default_factory=dict)
    shipments: dict[tuple[str, str | None, str], CustomerShipment] = field(default_factory=dict)
    unallocated: dict[str, UnallocatedStock] = field(default_factory=dict)
    holds: dict[str, HeldLine] = field(default_factory=dict)
    """Held receipt lines by their command's message_id."""
    quarantines: dict[tuple[str, str, str], Quarantine] = field(default_factory=dict)
    """Quarantine rules in force, by `Quarantine.key` (almost always none)."""
    waiting: dict[str, WaitingLine] = field(default_factory=dict)
    """Sale lines waiting for held lines to settle, by their command's message_id (almost
    always none: `waiting.py`)."""
    index: StockIndex | None = field(default=None, compare=False, repr=False)
    """Derived, not rows: leave it None when loading; the core builds it on first use and
    carries it forward from decision to decision."""

    @classmethod
    def empty(cls, lic: str) -> LicState:
        return cls(lic=lic)


# ---------------------------------------------------------------------------------------------
# Commands (every one carries the sender's `message_id` and the `lic` it is keyed by)


@dataclass(frozen=True, slots=True, kw_only=True)
class LotEntry:
    """A manufacturer lot on a receipt or adjustment line. `lot_id` narrows a count/loss to
    one inventory lot (optional)."""

    mfr_lot: str
    quantity: Decimal
    expires_on: date | None = None
    lot_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LotPick:
    """A manufacturer lot named on a shipment or return line, or a count or loss; `lot_id`
    and (an adjustment's) `expires_on` optionally narrow it to the stock they describe."""

    mfr_lot: str
    quantity: Decimal
    lot_id: str | None = None
    expires_on: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertItem:
    """Create or update an item. A field left None was not given: the item keeps its current
    value, a new item takes the default (`items.upsert_item` decides both; R1 for
    `perishable`)."""

    message_id: str
    lic: str
    description: str | None = None
    uom: str | None = None
    track_mfr_lot: bool | None = None
    serialized: bool | None = None
    est_unit_cost: Decimal | None = None
    perishable: bool | None = None
    next_serial: str | None = None
    gtin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiveStock:
    """One receipt line into a new inventory lot `lot_id` (R3, R4, R6, R7).

    Serialized lines take `serials`; with none and `generate_serials`, the core hands out
    `quantity` serials from the item's Next Serial. `unit_cost=None`: the item's est cost;
    `reference=None`: the lot's reference is `shipment_id`. `hold`: see `HeldLine`.
    """

    message_id: str
    lic: str
    lot_id: str
    office: str
    kind: LotKind
    received_on: date
    quantity: Decimal
    shipment_id: str
    line_no: int
    reference: str | None = None
    unit_cost: Decimal | None = None
    mfr_lots: tuple[LotEntry, ...] = ()
    serials: tuple[str, ...] = ()
    generate_serials: bool = False
    hold: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LineRefusal:
    """A problem the sender already found with a shipment line (its picks as typed, R5; a
    vendor return naming nothing, R14) or an adjustment (its serials as typed): the refusal
    its `AllocateLine` or `AdjustStock` is answered with."""

    reason_code: ReasonCode
    reason: str
    offending: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocateLine:
    """Allocate (or re-allocate with new picks) one shipment line (R9, R14).

    No `lots` and no `serials`: automatic. Picks must cover `quantity`. `serial_lots`: each
    serial scanned with its manufacturer lot, as (serial, mfr lot) pairs: that unit must be in
    that lot. With `refusal`, the sender refused the line: nothing is decided, the answer is
    that refusal (and R2 locks the item, as for any refused line). `min_shelf_life_days`: a
    sale of a perishable item takes only lots expiring at least that many days after
    `ship_on` (R9; 0: today's rule, a lot expiring on the ship date still ships).
    `reference`: a vendor return's PO: without picks, it takes only the inventory lots whose
    `reference` is that (R14); None (and on a sale): any lot.
    """

    message_id: str
    lic: str
    shipment_id: str
    line_no: int
    office: str
    kind: ShipmentKind
    counterparty: str | None
    ship_on: date
    quantity: Decimal
    lots: tuple[LotPick, ...] = ()
    serials: tuple[str, ...] = ()
    serial_lots: tuple[tuple[str, str], ...] = ()
    refusal: LineRefusal | None = None
    min_shelf_life_days: int = 0
    reference: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseLine:
    """Cancel a line's allocation."""

    message_id: str
    lic: str
    shipment_id: str
    line_no: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipLine:
    """Mark an allocated line shipped (R8, R10, R14) on the line's `ship_on`."""

    message_id: str
    lic: str
    shipment_id: str
    line_no: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustStock:
    """An inventory adjustment (R11, R12). `quantity` is signed (+ adds, − removes).

    A beginning balance creates the inventory lot `lot_id` (default: `adjustment_lot_id`).
    """

    message_id: str
    lic: str
    adjustment_id: str
    office: str
    kind: AdjustmentKind
    quantity: Decimal
    adjusted_on: date
    unit_cost: Decimal | None = None
    lots: tuple[LotEntry, ...] = ()
    serials: tuple[str, ...] = ()
    reason: str = ""
    lot_id: str | None = None
    refusal: LineRefusal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnFromCustomer:
    """A customer return line (R13): `shipment_id`/`line_no` are the incoming document's.

    `serial_lots`: each serial scanned with its manufacturer lot, as (serial, mfr lot) pairs:
    the unit coming back must be of that lot (R5, R15).
    """

    message_id: str
    lic: str
    shipment_id: str
    line_no: int
    office: str
    received_on: date
    quantity: Decimal
    customer: str | None = None
    lots: tuple[LotPick, ...] = ()
    serials: tuple[str, ...] = ()
    serial_lots: tuple[tuple[str, str], ...] = ()
    hold: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmHeld:
    """Make a held line's stock usable and publish its decision (`command_id`: the line's)."""

    message_id: str
    lic: str
    command_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelHeld:
    """Undo a held line: a receipt's lot goes, a return's units go back to the customer."""

    message_id: str
    lic: str
    command_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineStock:
    """Put stock in quarantine (`quarantined`) or release the rule with the same `mfr_lot`,
    `lot_id` and `office` (None: any; at least one of `mfr_lot` and `lot_id` is given).
    `before_receipt`: `mfr_lot` may be one the item never received yet."""

    message_id: str
    lic: str
    quarantine_id: str
    quarantined: bool
    quarantined_on: date
    reason: str = ""
    mfr_lot: str | None = None
    lot_id: str | None = None
    office: str | None = None
    before_receipt: bool = False


Command = (
    UpsertItem
    | ReceiveStock
    | AllocateLine
    | ReleaseLine
    | ShipLine
    | AdjustStock
    | ReturnFromCustomer
    | ConfirmHeld
    | CancelHeld
    | QuarantineStock
)


# ---------------------------------------------------------------------------------------------
# Events (`command_id` is the message_id of the command they answer)


@dataclass(frozen=True, slots=True, kw_only=True)
class LotMovement:
    """Stock moved in one inventory lot (and mfr lot, and serial), with the lot's unit cost."""

    lot_id: str | None
    mfr_lot: str | None
    expires_on: date | None
    serial: str | None
    quantity: Decimal
    unit_cost: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemUpserted:
    command_id: str
    lic: str
    description: str
    uom: str
    track_mfr_lot: bool
    serialized: bool
    perishable: bool
    next_serial: str | None
    est_unit_cost: Decimal
    gtin: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldOnArrival:
    """Units a receipt or customer return line put in stock that a quarantine in force holds
    (`receiving.held_on_arrival`): of one inventory lot and manufacturer lot (None: a lot
    without), held by `quarantine`. On hand, but no sale takes them until it is released."""

    lot_id: str
    mfr_lot: str | None
    quantity: Decimal
    quarantine: Quarantine


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReceived:
    """`quarantined`: its units a quarantine in force holds on arrival (a recall sent
    `before_receipt`, say), for receiving to warn the dock of."""

    command_id: str
    lic: str
    lot_id: str
    office: str
    kind: LotKind
    reference: str
    shipment_id: str
    line_no: int
    received_on: date
    quantity: Decimal
    unit_cost: Decimal
    movements: tuple[LotMovement, ...]
    generated_serials: tuple[str, ...] = ()
    next_serial: str | None = None
    quarantined: tuple[HeldOnArrival, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LineAllocated:
    command_id: str
    lic: str
    shipment_id: str
    line_no: int
    office: str
    kind: ShipmentKind
    counterparty: str | None
    ship_on: date
    quantity: Decimal
    movements: tuple[LotMovement, ...]
    explicit: bool
    complete: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LineReleased:
    """A line's allocation given back: on cancel, or before a re-allocation. `released_on`:
    its business date, the `ship_on` of the allocation given back (§6: never a clock)."""

    command_id: str
    lic: str
    shipment_id: str
    line_no: int
    office: str
    released_on: date
    movements: tuple[LotMovement, ...]
    reallocated: bool = False
    counterparty: str | None = None  # the allocation's customer or vendor


@dataclass(frozen=True, slots=True, kw_only=True)
class LineShipped:
    command_id: str
    lic: str
    shipment_id: str
    line_no: int
    office: str
    kind: ShipmentKind
    counterparty: str | None
    ship_on: date
    quantity: Decimal
    movements: tuple[LotMovement, ...]
    total_cost: Decimal
    closed_lots: tuple[str, ...] = ()


AdjustmentWarningCode = Literal[
    "SERIAL_WAS_SHIPPED",
    "STOCK_IN_NO_LOT",
    "LOT_EXPIRED_ON_ADJUSTMENT",
    "ESTIMATED_COST",
    "UNIT_COST_NOT_USED",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustmentWarning:
    """Something the clerk of an accepted adjustment should hear at once: its code, what it
    concerns (each where it applies) and a sentence saying what happened and what to do
    (`adjustment_warnings`)."""

    code: AdjustmentWarningCode
    message: str
    serial: str | None = None
    mfr_lot: str | None = None
    expires_on: date | None = None
    lot_id: str | None = None
    office: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryAdjusted:
    """`lot_id`: the new adjustment lot of a beginning balance, else None. `warnings`: what
    its clerk should hear about an adjustment accepted all the same."""

    command_id: str
    lic: str
    adjustment_id: str
    office: str
    kind: AdjustmentKind
    quantity: Decimal
    adjusted_on: date
    reason: str
    movements: tuple[LotMovement, ...]
    lot_id: str | None = None
    unallocated: Decimal = ZERO
    closed_lots: tuple[str, ...] = ()
    reopened_lots: tuple[str, ...] = ()
    warnings: tuple[AdjustmentWarning, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReturned:
    """`quarantined`: its units back in lots a quarantine in force holds (as for
    `StockReceived`)."""

    command_id: str
    lic: str
    shipment_id: str
    line_no: int
    office: str
    customer: str | None
    received_on: date
    quantity: Decimal
    movements: tuple[LotMovement, ...]
    reopened_lots: tuple[str, ...] = ()
    quarantined: tuple[HeldOnArrival, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LineHeld:
    """A held receipt line passed every check. `decided`: its event, published on confirm."""

    command_id: str
    lic: str
    shipment_id: str
    line_no: int
    decided: StockReceived | StockReturned = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LineWaiting:
    """A sale line not decided yet: it waits for the held lines `awaits` (command ids; those
    still held: `held`, as (shipment_id, line_no)) to settle. Not published: its one decision
    comes when they do (`waiting.py`)."""

    command_id: str
    lic: str
    shipment_id: str
    line_no: int
    awaits: tuple[str, ...]
    held: tuple[tuple[str, int], ...]
    behind: tuple[tuple[str, int], ...] = ()
    """Earlier sale lines waiting at its office, as (shipment_id, line_no): it is decided
    after them, free stock or not."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldSettled:
    """A held line confirmed (its `LineHeld.decided` event is due now) or cancelled.
    Not published: receiving asked for it and already knows."""

    command_id: str
    lic: str
    held_command_id: str
    confirmed: bool
    next_serial: str | None = None
    """A confirmed receipt of a serialized item: the item's Next Serial now, which the kept
    event must carry (other receipts may have moved it on since the line was held)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantinedStock:
    """Stock a quarantine covers, as it is now: one inventory lot (and manufacturer lot)."""

    lot_id: str
    office: str
    mfr_lot: str | None
    on_hand: Decimal
    allocated: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class StockQuarantined:
    """A quarantine put in force (`quarantined`) or released, with the stock it covers now."""

    command_id: str
    lic: str
    quarantine_id: str
    quarantined: bool
    reason: str
    mfr_lot: str | None
    lot_id: str | None
    office: str | None
    quarantined_on: date
    stock: tuple[QuarantinedStock, ...]
    released_quarantine_id: str | None = None
    """A release: the id of the quarantine it lifted (`quarantine_id` is the release's own)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRejected:
    """A refusal: `command_type` is the command's class name; ids are those it carried."""

    command_id: str
    lic: str
    command_type: str
    reason_code: ReasonCode
    reason: str
    offending: str = ""
    shipment_id: str | None = None
    line_no: int | None = None
    adjustment_id: str | None = None
    lot_id: str | None = None
    quarantine_id: str | None = None


Event = (
    ItemUpserted
    | StockReceived
    | LineAllocated
    | LineReleased
    | LineShipped
    | InventoryAdjusted
    | StockReturned
    | LineHeld
    | LineWaiting
    | HeldSettled
    | StockQuarantined
    | CommandRejected
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The new state and the events that explain it. A refusal leaves `state` unchanged and
    carries one `CommandRejected`."""

    state: LicState
    events: tuple[Event, ...]

    @property
    def rejected(self) -> CommandRejected | None:
        first = self.events[0] if self.events else None
        return first if isinstance(first, CommandRejected) else None


Touched = dict[str, tuple[Any, ...]]
"""LicState row-table field name ("lots", "mfr_lots", "units", "allocations", "shipments",
"unallocated", "holds", "quarantines", "waiting") -> the keys a batch wrote or deleted there,
first write first. The item is not listed: it is one row, compared whole."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchDecision:
    """`decide_batch`'s answer: the final state, every event, and which rows the batch touched
    relative to the state it started from (refused commands' writes rolled back, not listed).
    Lets the repository write what the batch changed without walking the LIC's history."""

    state: LicState
    events: list[Event]
    touched: Touched
