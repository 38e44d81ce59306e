"""Property (R14, R16): whatever happens to a PO's lots and in whatever order its updates come
(closes with and without a cost, corrections, reopenings, closes dated before the usage), a
lot's usage records and reconciliation entries add up to its used value, its COGS to the
used value of what is not a return to vendor, and no entry is dated before its usage.

The ledger's core (`recording.record`, `costing.apply_updates`) runs batch by batch over an
in-memory store that reads back what the repository reads: the lots' actual costs, the POs,
and each usage's booked cost as its record's cost plus its reconciliations."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain.costing import (
    BookedUsage,
    PoKey,
    PoUpdate,
    PurchaseOrder,
    apply_updates,
)
from services.ledger.domain.model import (
    COGS_ACTIONS,
    EXACT,
    Action,
    CogsRow,
    Fact,
    Known,
    Move,
    NewLot,
    UsageRow,
    cost_of,
)
from services.ledger.domain.recording import record
from services.ledger.domain.valuation import LotFigures, value

LIC = "OIL"
POS = ("PO-1", "PO-2")
START = date(2024, 1, 1)
ZERO = Decimal(0)

money = st.integers(0, 10**8).map(lambda n: Decimal(n).scaleb(-6))
"""Unit costs with up to 6 places (0 … 100), as the contract allows them."""


@dataclass
class Lot:
    lot_id: str
    po: str
    est: Decimal
    act: Decimal | None = None
    received: Decimal = ZERO
    used: Decimal = ZERO
    in_stock: list[str] = field(default_factory=list)
    """Serials on hand (a serialized item)."""
    shipped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    sold: Decimal = ZERO
    """Shipped and not returned (a plain item)."""
    lost: Decimal = ZERO
    """Counted or lost out and not put back (a plain item)."""

    @property
    def on_hand(self) -> Decimal:
        return self.received - self.used


@dataclass
class Store:
    """What the ledger's tables hold, as its reads give it back."""

    serialized: bool
    lots: dict[str, Lot] = field(default_factory=dict)
    orders: dict[PoKey, PurchaseOrder] = field(default_factory=dict)
    usage: list[UsageRow] = field(default_factory=list)
    cogs: list[CogsRow] = field(default_factory=list)
    n: int = 0

    def next_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def known(self) -> Known:
        return Known(
            actual_costs={i: lot.act for i, lot in self.lots.items() if lot.act is not None},
            po_costs={
                k: o.applied_unit_cost
                for k, o in self.orders.items()
                if o.applied_unit_cost is not None
            },
        )

    def booked(self, key: PoKey) -> list[BookedUsage]:
        """`repository.load_booked_usage`: the record's cost plus its reconciliations."""
        reconciled: dict[str, Decimal] = defaultdict(Decimal)
        with localcontext(EXACT):
            for c in self.cogs:
                if c.kind != "usage":
                    reconciled[c.usage_id] += c.amount
            return [
                BookedUsage(
                    usage_id=u.usage_id,
                    lic=u.lic,
                    lot_id=u.lot_id or "",
                    source=u.source,
                    quantity=u.quantity,
                    booked=u.total_cost + reconciled[u.usage_id],
                    used_on=u.used_on,
                )
                for u in self.usage
                if u.lot_id is not None and self.lots[u.lot_id].po == key[0]
            ]


# -- what happens --------------------------------------------------------------------------


@dataclass(frozen=True)
class Receive:
    po: str
    quantity: int
    est: Decimal
    day: int


@dataclass(frozen=True)
class Use:
    action: Action
    sign: int
    """+1 out of stock, −1 back in (a customer return, a count or loss putting back)."""
    lot: int
    quantity: int
    day: int


@dataclass(frozen=True)
class Update:
    po: str
    actual: Decimal | None
    closed: bool | None
    day: int


days = st.integers(0, 20)
steps = st.one_of(
    st.builds(Receive, st.sampled_from(POS), st.integers(1, 6), money, days),
    st.builds(
        Use,
        st.sampled_from(["shipment", "vendor_return", "loss", "count"]),
        st.just(1),
        st.integers(0, 5),
        st.integers(1, 4),
        days,
    ),
    st.builds(
        Use,
        st.sampled_from(["customer_return", "loss", "count"]),
        st.just(-1),
        st.integers(0, 5),
        st.integers(1, 4),
        days,
    ),
    st.builds(
        Update,
        st.sampled_from(POS),
        st.none() | money,
        st.sampled_from([True, True, False, None]),
        days,
    ),
)


def _fact(store: Store, step: Receive | Use) -> Fact | None:
    """The event allocation would publish for `step`, applied to the store's stock; None when
    there is nothing for it to move."""
    on = START + timedelta(days=step.day)
    if isinstance(step, Receive):
        lot = Lot(lot_id=store.next_id("L"), po=step.po, est=step.est)
        serials = [f"{lot.lot_id}/S{n}" for n in range(step.quantity)]
        quantity = Decimal(step.quantity)
        lot.received = quantity
        lot.in_stock = serials if store.serialized else []
        store.lots[lot.lot_id] = lot
        moves = _moves(store, lot, serials, quantity)
        new = NewLot(
            lot_id=lot.lot_id,
            kind="purchase",
            office="AI",
            reference=step.po,
            received_on=on,
            quantity=quantity,
            unit_cost=step.est,
        )
        return _event(store, "receipt", moves, on, new)
    if not store.lots:
        return None
    lot = list(store.lots.values())[step.lot % len(store.lots)]
    taken = _take(store, lot, step)
    if not taken:
        return None
    serials, quantity = taken
    moves = _moves(store, lot, serials, quantity)
    if step.action in ("count", "loss"):
        moves = [replace(m, quantity=-step.sign * m.quantity) for m in moves]
    return _event(store, step.action, moves, on)


def _take(store: Store, lot: Lot, step: Use) -> tuple[list[str], Decimal] | None:
    """The serials (or quantity) `step` moves, taken from where they are."""
    if store.serialized:
        source, target = _serial_places(lot, step)
        serials = source[: step.quantity]
        if not serials:
            return None
        del source[: len(serials)]
        target.extend(serials)
        quantity = Decimal(len(serials))
    else:
        serials = []
        if step.sign > 0:
            room = lot.on_hand
        else:
            room = lot.sold if step.action == "customer_return" else lot.lost
        quantity = min(Decimal(step.quantity), room)
        if quantity <= 0:
            return None
        if step.action == "shipment":
            lot.sold += quantity
        elif step.action == "customer_return":
            lot.sold -= quantity
        elif step.action in ("count", "loss"):
            lot.lost += step.sign * quantity
    lot.used += step.sign * quantity
    return serials, quantity


def _serial_places(lot: Lot, step: Use) -> tuple[list[str], list[str]]:
    """Where `step`'s serials come from and go to."""
    if step.action == "customer_return":
        return lot.shipped, lot.in_stock
    if step.sign < 0:  # a count or loss putting back what it took out
        return lot.removed, lot.in_stock
    if step.action == "shipment":
        return lot.in_stock, lot.shipped
    if step.action == "vendor_return":
        return lot.in_stock, []  # gone to the vendor for good
    return lot.in_stock, lot.removed


def _moves(store: Store, lot: Lot, serials: list[str], quantity: Decimal) -> list[Move]:
    """Moves at the lot's estimate, as allocation carries it."""
    if store.serialized:
        return [_move(lot, Decimal(1), s) for s in serials]
    return [_move(lot, quantity, None)]


def _move(lot: Lot, quantity: Decimal, serial: str | None) -> Move:
    return Move(
        lot_id=lot.lot_id,
        mfr_lot=None,
        expires_on=None,
        serial=serial,
        quantity=quantity,
        unit_cost=lot.est,
    )


def _event(
    store: Store, action: Action, moves: list[Move], on: date, new: NewLot | None = None
) -> Fact:
    return Fact(
        event_id=store.next_id(action),
        lic=LIC,
        action=action,
        office="AI",
        document=store.next_id("DOC"),
        on=on,
        moves=moves,
        line_no=1,
        new_lot=new,
    )


def _record(store: Store, facts: list[Fact]) -> None:
    """`service.record_events`: one batch, against what the store knew before it."""
    entries = record(store.known(), facts)
    for row in entries.lots:
        store.lots[row.lot_id].act = row.act_unit_cost
    store.usage += entries.usage
    store.cogs += entries.cogs


def _update(store: Store, updates: list[Update]) -> None:
    """`service.record_costs`: one batch of PO updates."""
    batch = [
        PoUpdate(
            event_id=store.next_id("po"),
            po=u.po,
            lic=LIC,
            on=START + timedelta(days=u.day),
            act_unit_cost=u.actual,
            closed=u.closed,
        )
        for u in updates
    ]
    keys = list(dict.fromkeys(u.key for u in batch))
    entries = apply_updates(store.orders, {k: store.booked(k) for k in keys}, batch)
    store.orders.update(entries.orders)
    for (po, _), cost in entries.actual_costs.items():
        for lot in store.lots.values():
            if lot.po == po:
                lot.act = cost
    store.cogs += entries.cogs


def _run(serialized: bool, history: list[Receive | Use | Update]) -> Store:
    """Consecutive events are one batch, consecutive PO updates another."""
    store = Store(serialized=serialized)
    facts: list[Fact] = []
    updates: list[Update] = []
    for step in history:
        if isinstance(step, Update):
            if facts:
                _record(store, facts)
                facts = []
            updates.append(step)
            continue
        if updates:
            _update(store, updates)
            updates = []
        fact = _fact(store, step)
        if fact is not None:
            facts.append(fact)
    if facts:
        _record(store, facts)
    if updates:
        _update(store, updates)
    return store


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(steps, max_size=30))
def test_usage_and_reconciliations_of_every_lot_add_up_to_its_used_value(
    serialized: bool, history: list[Receive | Use | Update]
) -> None:
    """R14, R16: per lot, usage records + reconciliations = used value (returns to vendor
    included); COGS entries = the used value of all but the returns to vendor; every
    reconciliation is dated no earlier than its usage."""
    store = _run(serialized, history)

    used_on = {u.usage_id: u.used_on for u in store.usage}
    with localcontext(EXACT):
        for lot in store.lots.values():
            figures = LotFigures(
                received_qty=lot.received,
                used_qty=lot.used,
                est_unit_cost=lot.est,
                act_unit_cost=lot.act,
            )
            unit_cost = figures.unit_cost
            usage = [u for u in store.usage if u.lot_id == lot.lot_id]
            entries = [c for c in store.cogs if c.lot_id == lot.lot_id]
            reconciled = sum((c.amount for c in entries if c.kind != "usage"), ZERO)
            assert (
                sum((u.total_cost for u in usage), ZERO) + reconciled == value(figures).used.value
            )
            sold = sum((u.quantity for u in usage if u.source in COGS_ACTIONS), ZERO)
            cogs = sum((c.amount for c in entries if c.source in COGS_ACTIONS), ZERO)
            assert cogs == cost_of(sold, unit_cost)
        for c in store.cogs:
            assert c.entered_on >= used_on[c.usage_id]
            assert (c.kind == "vendor_return_reconciliation") == (c.source == "vendor_return")
