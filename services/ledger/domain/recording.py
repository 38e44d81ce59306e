"""Recording: a batch of inventory facts becomes usage, transaction and COGS rows (R7, R10–R16).

Policies:
- Every move of every fact is one transaction record (R15), allocations and releases included,
  so the history of a lot or serial lists every receipt, allocation, shipment, adjustment and
  return that touched it.
- Shipments, vendor returns, losses and negative counts are usage (+); customer returns and
  positive counts or losses reverse usage (−); stock added beyond any lot is negative usage
  without a lot (R12), and taking that stock out again is usage without a lot.
- Every usage record except a return to vendor has one COGS entry at the cost it was booked
  at: the lot's actual unit cost once its PO closed, else the estimate the event carried (R10,
  R16). Goods returned to the vendor were not sold: the return is usage (the stock left and the
  history shows it, R14, R15) but a credit against purchases, so it books no COGS; a PO
  closing brings it to the actual cost with a `vendor_return_reconciliation`, not COGS.
- A lot received after its PO closed starts at the actual cost (the one last applied, while the
  PO is reopened).
- Stock that arrives (a receipt, a customer return, an adjustment that adds) while a quarantine
  in force covers it gets a `quarantine` record per inventory lot and manufacturer lot (per
  serial, 1 unit, for serialized units), as the hold's records: what arrived, stock change 0,
  the quarantine's id as document and its reason, so the lot's (and serial's) history shows it
  went into quarantine. Rules are those in force before the batch (`Known.rules`) as the
  batch's own holds and releases (`Hold`) change them, in order.
- Ids are deterministic (`<event message_id>/<move index>`, `<event message_id>/q<n>` for
  quarantine records) so writing a batch twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from services.ledger.domain.model import (
    EXACT,
    USAGE_ACTIONS,
    ZERO,
    Action,
    Delta,
    Entries,
    Fact,
    Hold,
    ItemFact,
    ItemRow,
    Known,
    LotRow,
    MfrLotRow,
    MoveView,
    Rule,
    SerialRow,
    SerialStatus,
    TransactionRow,
    UsageRow,
    cost_of,
)

_INTO_STOCK: frozenset[Action] = frozenset({"receipt", "beginning_balance", "customer_return"})
_NEW_SERIAL: frozenset[Action] = frozenset({"receipt", "beginning_balance"})
"""What brings a serial into a lot (a customer return puts it back into its own)."""
_OUT_OF_STOCK: frozenset[Action] = frozenset({"shipment", "vendor_return"})
_ALLOCATED_CHANGE: dict[Action, int] = {
    "allocation": 1,
    "release": -1,
    "shipment": -1,
    "vendor_return": -1,
}


def record(known: Known, facts: Iterable[Fact | ItemFact | Hold]) -> Entries:
    """Fold `facts` (in partition order) into the rows and deltas one batch writes."""
    book = _Book(known)
    for fact in facts:
        if isinstance(fact, ItemFact):
            book.entries.items[fact.lic] = _item_row(fact)
        elif isinstance(fact, Hold):
            book.hold(fact)
        else:
            book.record(fact)
    return book.entries


def stock_change(action: Action, quantity: Decimal) -> Decimal:
    """The change of stock on hand a move of `quantity` made (see the model's sign rules)."""
    if action in _INTO_STOCK:
        return quantity
    if action in _OUT_OF_STOCK:
        return -quantity
    if action in ("count", "loss"):
        return quantity
    return ZERO


def serial_status(action: Action, quantity: Decimal) -> SerialStatus:
    """Where a serial stands after `action` moved it."""
    match action:
        case "allocation":
            return "allocated"
        case "shipment":
            return "shipped"
        case "vendor_return":
            return "returned_to_vendor"
        case "count" | "loss" if quantity < 0:
            return "removed"
        case _:
            return "available"


class _Book:
    """The batch's working state: entries so far and the actual costs known so far."""

    def __init__(self, known: Known) -> None:
        self.entries = Entries()
        self._actual = dict(known.actual_costs)
        self._po_costs = known.po_costs
        self._rules: dict[str, dict[tuple[str, str, str, str], Rule]] = {}
        for rule in known.rules:
            self._rules.setdefault(rule.lic, {})[rule.key] = rule

    def hold(self, hold: Hold) -> None:
        """A quarantine put in force or lifted, for the stock arriving after it."""
        rules = self._rules.setdefault(hold.rule.lic, {})
        if hold.lifted:
            rules.pop(hold.rule.key, None)
        else:
            rules[hold.rule.key] = hold.rule

    def record(self, fact: Fact) -> None:
        if fact.new_lot is not None:
            self._open_lot(fact)
        for n, move in enumerate(fact.moves):
            self._record_move(fact, f"{fact.event_id}/{n}", move)
        if self._rules.get(fact.lic):
            self._quarantine_arrivals(fact)

    def _quarantine_arrivals(self, fact: Fact) -> None:
        """A `quarantine` record per inventory lot and manufacturer lot `fact` added stock to
        that a rule in force covers (the first by date and id, as the reads pick it): one per
        serial for serialized units, whose history then shows them held (R15)."""
        arrived: dict[tuple[str, str | None, str | None], tuple[Decimal, MoveView]] = {}
        for move in fact.moves:
            if move.lot_id is None or stock_change(fact.action, move.quantity) <= 0:
                continue
            key = (move.lot_id, move.mfr_lot, move.serial)
            before = arrived.get(key)
            quantity = move.quantity if before is None else before[0] + move.quantity
            arrived[key] = (quantity, move if before is None else before[1])
        rules = sorted(self._rules[fact.lic].values(), key=lambda r: (r.since, r.quarantine_id))
        n = 0
        for (lot_id, mfr_lot, _), (quantity, move) in arrived.items():
            rule = next((r for r in rules if r.covers(lot_id, mfr_lot, fact.office)), None)
            if rule is None:
                continue
            row = _transaction(fact, f"{fact.event_id}/q{n}", move, self.cost(move), ZERO)
            self.entries.transactions.append(
                row._replace(
                    event_type="quarantine",
                    quantity=quantity,
                    document=rule.quarantine_id,
                    line_no=None,
                    counterparty=None,
                    reason=rule.reason,
                )
            )
            n += 1

    def cost(self, move: MoveView) -> Decimal:
        if move.lot_id is None:
            return move.unit_cost
        return self._actual.get(move.lot_id, move.unit_cost)

    def _open_lot(self, fact: Fact) -> None:
        lot = fact.new_lot
        assert lot is not None
        actual = None
        if lot.kind == "purchase" and lot.reference is not None:
            actual = self._po_costs.get((lot.reference, fact.lic))
        if actual is not None:
            self._actual[lot.lot_id] = actual
        self.entries.lots.append(
            LotRow(
                lot_id=lot.lot_id,
                lic=fact.lic,
                office=lot.office,
                kind=lot.kind,
                reference=lot.reference,
                document=fact.document,
                line_no=fact.line_no,
                received_on=lot.received_on,
                est_unit_cost=lot.unit_cost,
                act_unit_cost=actual,
                received_qty=lot.quantity,
                event_id=fact.event_id,
                vendor=lot.vendor,
                bin=lot.bin,
            )
        )

    def _record_move(self, fact: Fact, row_id: str, move: MoveView) -> None:
        cost = self.cost(move)
        change = stock_change(fact.action, move.quantity)
        self.entries.transactions.append(_transaction(fact, row_id, move, cost, change))
        used = ZERO
        if fact.action in USAGE_ACTIONS:
            used = _used(fact.action, move.quantity, change)
            self._use(fact, row_id, move, cost, used)
        if move.lot_id is None:
            return
        if fact.action in ("receipt", "beginning_balance") and move.mfr_lot is not None:
            self.entries.add_mfr_lot(_mfr_lot_row(fact, move))
        allocated = _ALLOCATED_CHANGE.get(fact.action, 0) * move.quantity
        if allocated or used:
            self.entries.add_lot_delta(
                move.lot_id, move.mfr_lot, Delta(used=used, allocated=allocated)
            )
        if move.serial is not None:
            self._change_serial(_serial_row(fact, row_id, move, cost))

    def _change_serial(self, row: SerialRow) -> None:
        """Keep the serial's last state, with the date it was received if this batch did."""
        if row.received_on is None:
            before = self.entries.serials.get(row.key)
            if before is not None:
                row = row._replace(received_on=before.received_on)
        self.entries.serials[row.key] = row

    def _use(
        self, fact: Fact, usage_id: str, move: MoveView, cost: Decimal, quantity: Decimal
    ) -> None:
        """A usage row; its COGS entry, if it books one, is derived from it (`Entries.cogs`)."""
        if move.lot_id is None:
            key = (fact.lic, fact.office)
            entries = self.entries
            entries.unallocated[key] = entries.unallocated.get(key, ZERO) - quantity
            # What the stock in no lot cost moves with it, as its usage is costed (R12).
            before = entries.unallocated_value.get(key, ZERO)
            entries.unallocated_value[key] = EXACT.subtract(before, cost_of(quantity, cost))
        self.entries.usage.append(
            UsageRow(
                usage_id=usage_id,
                lic=fact.lic,
                lot_id=move.lot_id,
                mfr_lot=move.mfr_lot,
                serial=move.serial,
                expires_on=move.expires_on,
                source=fact.action,
                quantity=quantity,
                unit_cost=cost,
                est_unit_cost=move.unit_cost,
                office=fact.office,
                document=fact.document,
                line_no=fact.line_no,
                counterparty=fact.counterparty,
                used_on=fact.on,
                event_id=fact.event_id,
            )
        )


def _used(action: Action, quantity: Decimal, change: Decimal) -> Decimal:
    """The units a usage action used: −`change`. A shipment's is the move's own quantity,
    not a new Decimal equal to it (a batch may hold 100,000 of them)."""
    return quantity if action in _OUT_OF_STOCK else -change


def _magnitude(quantity: Decimal) -> Decimal:
    """abs(`quantity`), the same object when it is positive (as for `_used`)."""
    return quantity if quantity > 0 else abs(quantity)


def _transaction(
    fact: Fact, txn_id: str, move: MoveView, cost: Decimal, change: Decimal
) -> TransactionRow:
    lot = fact.new_lot
    return TransactionRow(
        txn_id=txn_id,
        lic=fact.lic,
        lot_id=move.lot_id,
        mfr_lot=move.mfr_lot,
        serial=move.serial,
        expires_on=move.expires_on,
        event_type=fact.action,
        quantity=_magnitude(move.quantity),
        stock_change=change,
        unit_cost=cost,
        office=fact.office,
        document=fact.document,
        line_no=fact.line_no,
        counterparty=fact.counterparty,
        reference=lot.reference if lot is not None else None,
        occurred_on=fact.on,
        event_id=fact.event_id,
        reason=fact.reason,
    )


def _mfr_lot_row(fact: Fact, move: MoveView) -> MfrLotRow:
    assert move.lot_id is not None and move.mfr_lot is not None
    return MfrLotRow(
        lot_id=move.lot_id,
        mfr_lot=move.mfr_lot,
        lic=fact.lic,
        expires_on=move.expires_on,
        received_qty=move.quantity,
    )


def _serial_row(fact: Fact, txn_id: str, move: MoveView, cost: Decimal) -> SerialRow:
    assert move.lot_id is not None and move.serial is not None
    return SerialRow(
        lic=fact.lic,
        serial=move.serial,
        lot_id=move.lot_id,
        mfr_lot=move.mfr_lot,
        expires_on=move.expires_on,
        status=serial_status(fact.action, move.quantity),
        document=fact.document,
        line_no=fact.line_no,
        counterparty=fact.counterparty,
        unit_cost=cost,
        changed_on=fact.on,
        last_txn_id=txn_id,
        received_on=fact.on if fact.action in _NEW_SERIAL else None,
    )


def _item_row(fact: ItemFact) -> ItemRow:
    return ItemRow(
        lic=fact.lic,
        description=fact.description,
        uom=fact.uom,
        track_mfr_lot=fact.track_mfr_lot,
        serialized=fact.serialized,
        perishable=fact.perishable,
        est_unit_cost=fact.est_unit_cost,
        gtin=fact.gtin,
    )
