"""Purchase-order costs and COGS reconciliation (R7, R16).

Policies:
- A `PurchaseOrderUpdated` sets the PO line's ordered and purchased quantities (a field left out
  keeps its value); accrued inventory is received − purchased.
- An actual unit cost is final only when the PO is closed. Closing with an actual cost different
  from the one last applied (none, at first) is a *closing*: every usage of the PO's purchase
  lots gets a reconciliation entry bringing what is booked for it (its usage record's cost and
  the reconciliations before) to quantity × actual, and later usage of those lots is booked at
  the actual cost (the repository sets it on the lots). So a lot's usage records and
  reconciliations always add up to its used value (used quantity × the lot's unit cost).
- A return to vendor is usage but no cost of goods sold (it books no COGS `usage` entry, see
  `recording`): its reconciliation is a `vendor_return_reconciliation`, not a
  `reconciliation`, so COGS totals leave it out as they leave the return (`CogsKind`).
- A reconciliation entry is dated the later of the close's date (its `occurred_at`) and its
  usage's date: a backdated close never dates a correction before the usage it corrects; and a
  lot's `cost_change` records the later of the close's date and the lot's receipt.
- The same close delivered again (any message id) finds the PO closed at that cost and writes
  nothing. A later close with another actual cost is a correction: a new closing whose entries
  bring every usage from what is booked to the new cost. Reconciliation entries are keyed by
  (po, lic, closing number, usage) so a closing is written exactly once.
- A closing changes the cost of the PO's lots, and every change to a lot or serial is a
  transaction record (R15): each lot whose unit cost changes gets `cost_change` records of the
  units still in it (no stock change) at the difference, so their cost is what the stock on
  hand gained or lost (the used units' difference is the reconciliation's). The records are
  split as the lot's other records are: one per serial still in it (1 unit: serial records
  carry the cost of their unit), one per manufacturer lot for its units not in those serials,
  and one of the lot for the units in neither (or of the whole lot when none is tracked, or
  nothing is left). Each unit is in exactly one record, so the lot's records (its trace) still
  add up to its value, and a serial's or manufacturer lot's trace shows its own change. The
  lot's serials take the actual cost. Records are keyed by (po, lic, closing number, lot, and
  serial or manufacturer lot) like the entries.
- `closed: false` opens the PO, a closed one too (it was reopened, say to correct its cost): the
  actual cost it names is kept, but not final. Its lots keep the cost last applied (their usage
  meanwhile is booked at it, and valued at it) until the PO closes again; that close is a
  closing if the PO's actual cost then differs from the one last applied. `closed` left out
  keeps the PO open or closed as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, localcontext
from typing import NamedTuple

from services.ledger.domain.model import (
    COGS_ACTIONS,
    EXACT,
    ZERO,
    Action,
    CogsKind,
    CogsRow,
    TransactionRow,
)

PoKey = tuple[str, str]
"""(po, lic)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class PurchaseOrder:
    """One PO line as the ledger knows it. `act_unit_cost`: the actual cost last named;
    `applied_unit_cost`: the one the last closing applied to the lots and COGS (they differ
    while a reopened PO names a corrected cost); `closings`: how many closings were applied;
    `closed_on`: the date of the last close."""

    po: str
    lic: str
    ordered_qty: Decimal | None = None
    purchased_qty: Decimal | None = None
    act_unit_cost: Decimal | None = None
    applied_unit_cost: Decimal | None = None
    closed: bool = False
    closings: int = 0
    closed_on: date | None = None

    @property
    def key(self) -> PoKey:
        return (self.po, self.lic)


@dataclass(frozen=True, slots=True, kw_only=True)
class PoUpdate:
    """A `PurchaseOrderUpdated` as the ledger reads it. `closed`: None when the message left
    it out (the PO stays as it was)."""

    event_id: str
    po: str
    lic: str
    on: date
    ordered_qty: Decimal | None = None
    purchased_qty: Decimal | None = None
    act_unit_cost: Decimal | None = None
    closed: bool | None = None

    @property
    def key(self) -> PoKey:
        return (self.po, self.lic)


@dataclass(frozen=True, slots=True, kw_only=True)
class BookedUsage:
    """A usage record of one of the PO's purchase lots and what is booked for it so far: the
    record's cost plus the reconciliations written for it (for a COGS usage, its COGS).
    `used_on`: the usage's date (a reconciliation is dated no earlier; left out, the close's)."""

    usage_id: str
    lic: str
    lot_id: str
    source: Action
    quantity: Decimal
    booked: Decimal
    used_on: date = date.min


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialInLot:
    """A serial still in one of the PO's lots (available or allocated)."""

    serial: str
    mfr_lot: str | None = None
    expires_on: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MfrLotInLot:
    """A manufacturer lot in one of the PO's lots, with the units of it still there."""

    mfr_lot: str
    quantity: Decimal
    expires_on: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PoLot:
    """One of the PO's purchase lots: the units still in it and their unit cost now, with the
    serials and manufacturer lots those units are of."""

    lot_id: str
    lic: str
    office: str
    quantity: Decimal
    unit_cost: Decimal
    received_on: date | None = None
    serials: Sequence[SerialInLot] = ()
    mfr_lots: Sequence[MfrLotInLot] = ()


class StockPart(NamedTuple):
    """Units on hand of a lot one record is of: a serial, a manufacturer lot's units not in a
    serial, or the lot's units in neither (`key`: what tells it apart in the record's id)."""

    key: str
    mfr_lot: str | None
    serial: str | None
    expires_on: date | None
    quantity: Decimal


@dataclass(slots=True)
class CostEntries:
    """What a batch of PO updates writes: the POs' new state, the actual unit cost to set on
    each closed PO's lots and their serials, the lots' cost-change records and the
    reconciliation entries."""

    orders: dict[PoKey, PurchaseOrder] = field(default_factory=dict)
    actual_costs: dict[PoKey, Decimal] = field(default_factory=dict)
    transactions: list[TransactionRow] = field(default_factory=list)
    cogs: list[CogsRow] = field(default_factory=list)


def apply_updates(
    orders: dict[PoKey, PurchaseOrder],
    usage: dict[PoKey, list[BookedUsage]],
    updates: Iterable[PoUpdate],
    lots: Mapping[PoKey, Sequence[PoLot]] | None = None,
) -> CostEntries:
    """Fold PO updates (in partition order) over the known POs, their lots' usage and their
    lots (`usage` and `lots` are needed for the POs `may_close` names)."""
    entries = CostEntries()
    booked = {key: list(rows) for key, rows in usage.items()}
    stock = {key: list(rows) for key, rows in (lots or {}).items()}
    for update in updates:
        before = entries.orders.get(update.key) or orders.get(update.key)
        after, closing = update_order(before, update)
        entries.orders[update.key] = after
        if closing:
            assert after.applied_unit_cost is not None
            entries.actual_costs[update.key] = after.applied_unit_cost
            entries.transactions.extend(revalue(after, update, stock.get(update.key, [])))
            stock[update.key] = [
                replace(lot, unit_cost=after.applied_unit_cost) for lot in stock.get(update.key, [])
            ]
            cogs = reconcile(after, update, booked.get(update.key, []))
            entries.cogs.extend(cogs)
            booked[update.key] = rebooked(booked.get(update.key, []), cogs)
    return entries


def may_close(orders: dict[PoKey, PurchaseOrder], updates: Iterable[PoUpdate]) -> list[PoKey]:
    """The POs a batch of updates may close (whose lots' usage a closing reconciles): those an
    update closes, and closed ones an update leaves closed (it may name another cost)."""
    keys: dict[PoKey, None] = {}
    for update in updates:
        order = orders.get(update.key)
        if update.closed or (update.closed is None and order is not None and order.closed):
            keys[update.key] = None
    return list(keys)


def update_order(before: PurchaseOrder | None, update: PoUpdate) -> tuple[PurchaseOrder, bool]:
    """The PO after `update`, and whether the update is a closing (see the module policies)."""
    order = before or PurchaseOrder(po=update.po, lic=update.lic)
    order = replace(
        order,
        ordered_qty=_given(update.ordered_qty, order.ordered_qty),
        purchased_qty=_given(update.purchased_qty, order.purchased_qty),
        act_unit_cost=_given(update.act_unit_cost, order.act_unit_cost),
    )
    if not (order.closed if update.closed is None else update.closed):
        return replace(order, closed=False), False
    actual = order.act_unit_cost
    closing = actual is not None and actual != order.applied_unit_cost
    return (
        replace(
            order,
            applied_unit_cost=actual if closing else order.applied_unit_cost,
            closed=True,
            closings=order.closings + (1 if closing else 0),
            closed_on=update.on if closing or not order.closed else order.closed_on,
        ),
        closing,
    )


def revalue(order: PurchaseOrder, update: PoUpdate, lots: list[PoLot]) -> list[TransactionRow]:
    """R15: the cost-change records of each lot whose unit cost the closing changes, one per
    part of its stock (`stock_parts`)."""
    actual = order.applied_unit_cost
    assert actual is not None
    return [
        TransactionRow(
            txn_id=f"cost:{order.po}:{order.lic}:{order.closings}:{lot.lot_id}{part.key}",
            lic=lot.lic,
            lot_id=lot.lot_id,
            mfr_lot=part.mfr_lot,
            serial=part.serial,
            expires_on=part.expires_on,
            event_type="cost_change",
            quantity=part.quantity,
            stock_change=ZERO,
            unit_cost=actual - lot.unit_cost,
            office=lot.office,
            document=order.po,
            line_no=None,
            counterparty=None,
            reference=order.po,
            occurred_on=_not_before(update.on, lot.received_on),
            event_id=update.event_id,
            reason=f"actual unit cost {actual} (was {lot.unit_cost})",
        )
        for lot in lots
        if lot.unit_cost != actual
        for part in stock_parts(lot)
    ]


def _not_before(on: date, received_on: date | None) -> date:
    """A cost change's date: the close's, but never before the lot was received (a backdated
    close would list the lot's revaluation before its receipt, and a value as of a date
    read off its trace would count a change to stock not there yet)."""
    return on if received_on is None else max(on, received_on)


def stock_parts(lot: PoLot) -> list[StockPart]:
    """The lot's units on hand as its records split them: each serial in it, each manufacturer
    lot's units not in those serials, then the units in neither (the whole lot when nothing is
    tracked or nothing is left). They add up to the lot's quantity: no unit is counted twice."""
    parts = [
        StockPart(f"/serial/{s.serial}", s.mfr_lot, s.serial, s.expires_on, Decimal(1))
        for s in lot.serials
    ]
    in_serials = Counter(s.mfr_lot for s in lot.serials if s.mfr_lot is not None)
    for m in lot.mfr_lots:
        left = m.quantity - in_serials[m.mfr_lot]
        if left > 0:
            parts.append(StockPart(f"/mfr_lot/{m.mfr_lot}", m.mfr_lot, None, m.expires_on, left))
    rest = lot.quantity - sum((p.quantity for p in parts), ZERO)
    if rest or not parts:
        # Keyed by the lot alone, as a closing's only record of a lot always was.
        parts.append(StockPart("", None, None, None, rest))
    return parts


def reconcile(order: PurchaseOrder, update: PoUpdate, usage: list[BookedUsage]) -> list[CogsRow]:
    """R16: one entry per usage whose booked cost differs from quantity × actual cost, a return
    to vendor's included (`reconciliation_kind`), dated no earlier than its usage."""
    actual = order.applied_unit_cost
    assert actual is not None
    entries = []
    for row in usage:
        with localcontext(EXACT):  # up to 33 digits: more than the default context keeps
            amount = row.quantity * actual - row.booked
            unit_cost = amount / row.quantity if row.quantity else ZERO
        if amount == 0:
            continue
        entries.append(
            CogsRow(
                entry_key=f"reconcile:{order.po}:{order.lic}:{order.closings}:{row.usage_id}",
                lic=row.lic,
                lot_id=row.lot_id,
                usage_id=row.usage_id,
                kind=reconciliation_kind(row.source),
                source=row.source,
                quantity=row.quantity,
                unit_cost=unit_cost,
                amount=amount,
                entered_on=max(update.on, row.used_on),
                event_id=update.event_id,
                po=order.po,
            )
        )
    return entries


def reconciliation_kind(source: Action) -> CogsKind:
    """What a closing's entry for a usage of `source` is: a COGS `reconciliation`, or a
    `vendor_return_reconciliation` (a return to vendor is no cost of goods sold)."""
    return "reconciliation" if source in COGS_ACTIONS else "vendor_return_reconciliation"


def rebooked(usage: list[BookedUsage], cogs: list[CogsRow]) -> list[BookedUsage]:
    """The usage with the new entries added to what is booked for each."""
    added: dict[str, Decimal] = {}
    with localcontext(EXACT):
        for entry in cogs:
            added[entry.usage_id] = added.get(entry.usage_id, ZERO) + entry.amount
        return [replace(row, booked=row.booked + added.get(row.usage_id, ZERO)) for row in usage]


def _given(value: Decimal | None, default: Decimal | None) -> Decimal | None:
    return default if value is None else value
