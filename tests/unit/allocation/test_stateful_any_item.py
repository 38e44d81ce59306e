"""Random command sequences for one item of any flags, with invariants read off the state alone.

`test_stateful.py` drives a plain, a lot-tracked and a serialized item; this machine draws the
item's flags (lot-tracked and serialized together included, perishable or not) and throws every
command at it, valid or not. After every step the state must balance (R7, R9, R11), serialized
units must match their lots' and manufacturer lots' quantities (R4), live allocations must
hold exactly what the rows say is allocated (R9: nothing twice), a sale must never take an
expired lot (R9), and the derived index and movements carried from decision to decision must
be the ones a reload would build (a cached state and a reloaded one decide alike, §6). An
automatic allocation must be accepted exactly when the office has enough usable free stock and
take it in FEFO / FIFO order; a batch must decide as one command at a time does.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from services.allocation.domain.decide import decide, decide_all
from services.allocation.domain.draft import Draft, build_index
from services.allocation.domain.model import (
    ZERO,
    AdjustStock,
    AllocateLine,
    CancelHeld,
    Command,
    ConfirmHeld,
    Decision,
    LicState,
    LineAllocated,
    LotEntry,
    LotPick,
    ReceiveStock,
    ReleaseLine,
    ReturnFromCustomer,
    SerialStatus,
    ShipLine,
    UpsertItem,
)
from services.allocation.domain.shipping import movements
from tests.unit.allocation.builders import holds_stock_at, waiting_at, waits

LIC = "X"
OFFICES = st.sampled_from(["AI", "AI", "EE"])
DATES = [date(2024, 1, 10), date(2024, 2, 10), date(2024, 3, 10), date(2024, 4, 10)]
DAYS = st.sampled_from(DATES)
MFR = st.sampled_from(["A", "B", "C"])
SERIALS = [f"S{i}" for i in range(10)]
CUSTOMERS = st.sampled_from(["Acme", "Beta", None])
QTY = st.integers(min_value=1, max_value=4)
SMALL = st.integers(min_value=1, max_value=2)
S = SerialStatus
Source = tuple[str, str | None, str | None]
"""Free stock automatic picks may take: (inventory lot, manufacturer lot, serial)."""


class AnyItemMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = LicState.empty(LIC)
        self.ids = itertools.count()
        self.history: list[Command] = []
        self.events: list[object] = []
        self.track = self.serialized = self.perishable = False

    def mid(self) -> str:
        return f"m{next(self.ids)}"

    def run(self, command: Command) -> Decision:
        before = self.state
        decision = decide(before, command)
        self.history.append(command)
        self.events.extend(decision.events)
        self.state = decision.state
        self.check_events(decision)
        return decision

    def check_events(self, decision: Decision) -> None:
        for event in decision.events:
            if isinstance(event, LineAllocated) and event.kind == "sale" and self.perishable:
                for m in event.movements:
                    assert m.expires_on is None or m.expires_on >= event.ship_on, m

    @initialize(
        track=st.booleans(),
        serialized=st.booleans(),
        perishable=st.booleans(),
    )
    def item(self, track: bool, serialized: bool, perishable: bool) -> None:
        self.track, self.serialized = track, serialized
        self.perishable = perishable and track
        self.run(
            UpsertItem(
                message_id=self.mid(),
                lic=LIC,
                track_mfr_lot=track,
                serialized=serialized,
                perishable=self.perishable,
                est_unit_cost=Decimal("2.00"),
            )
        )

    # -- helpers ------------------------------------------------------------------------------

    def entries(self, data: st.DataObject, quantity: int) -> tuple[LotEntry, ...]:
        if not self.track:
            return ()
        split = data.draw(st.integers(min_value=0, max_value=quantity))
        parts = [(data.draw(MFR), q) for q in (split, quantity - split) if q]
        return tuple(
            LotEntry(mfr_lot=name, quantity=Decimal(q), expires_on=data.draw(DAYS))
            for name, q in parts
        )

    def serials(
        self, data: st.DataObject, quantity: int, status: SerialStatus | None = None
    ) -> tuple[str, ...]:
        """`quantity` serials, mostly of units in `status` (any serial, if None)."""
        if not self.serialized:
            return ()
        pool = list(SERIALS)
        if status is not None:
            have = sorted({u.serial for u in self.state.units.values() if u.status is status})
            pool = 4 * have + SERIALS[:2]
        return tuple(
            data.draw(st.lists(st.sampled_from(pool), min_size=quantity, max_size=quantity))
        )

    def lot_picks(self, data: st.DataObject, quantity: int) -> tuple[LotPick, ...]:
        if not self.track or data.draw(st.booleans()):
            return ()
        names = sorted({name for _, name in self.state.mfr_lots}) or ["A"]
        return (LotPick(mfr_lot=data.draw(st.sampled_from(names)), quantity=Decimal(quantity)),)

    # -- rules --------------------------------------------------------------------------------

    @rule(office=OFFICES, qty=QTY, on=DAYS, held=st.booleans(), data=st.data())
    def receive(self, office: str, qty: int, on: date, held: bool, data: st.DataObject) -> None:
        n = next(self.ids)
        self.run(
            ReceiveStock(
                message_id=self.mid(),
                lic=LIC,
                lot_id=f"PO-{n}/1",
                office=office,
                kind="purchase",
                received_on=on,
                quantity=Decimal(qty),
                shipment_id=f"PO-{n}",
                line_no=1,
                unit_cost=Decimal(data.draw(st.sampled_from(["1.00", "3.00"]))),
                mfr_lots=self.entries(data, qty),
                serials=self.serials(data, qty),
                hold=held,
            )
        )

    def live(self) -> list[str]:
        return sorted(k[0] for k, a in self.state.allocations.items() if a.status == "allocated")

    def some_line(self, data: st.DataObject) -> str:
        """Mostly a line allocated now; sometimes one shipped or released, or never seen."""
        done = sorted(k[0] for k, a in self.state.allocations.items() if a.status != "allocated")
        return data.draw(st.sampled_from([*(3 * self.live()), *done[:2], "SH404"]))

    @rule(
        office=OFFICES,
        qty=SMALL,
        ship_on=DAYS,
        kind=st.sampled_from(["sale", "sale", "vendor_return"]),
        customer=CUSTOMERS,
        data=st.data(),
    )
    def allocate(
        self,
        office: str,
        qty: int,
        ship_on: date,
        kind: str,
        customer: str | None,
        data: st.DataObject,
    ) -> None:
        shipment = data.draw(st.sampled_from([f"SH{next(self.ids)}"] * 3 + self.live()))
        serials: tuple[str, ...] = ()
        if self.serialized and data.draw(st.booleans()):
            count = data.draw(st.integers(min_value=1, max_value=qty))
            serials = self.serials(data, count, S.AVAILABLE)
        lots = self.lot_picks(data, qty)
        before = self.state
        decision = self.run(
            AllocateLine(
                message_id=self.mid(),
                lic=LIC,
                shipment_id=shipment,
                line_no=1,
                office=office,
                kind=kind,  # type: ignore[arg-type]
                counterparty=customer,
                ship_on=ship_on,
                quantity=Decimal(qty),
                lots=lots,
                serials=serials,
            )
        )
        automatic = not lots and not serials
        if automatic and (kind == "sale" or not (self.track or self.serialized)):
            self.check_automatic(before, decision, shipment, office, ship_on, qty, kind)

    def check_automatic(
        self,
        before: LicState,
        decision: Decision,
        shipment: str,
        office: str,
        ship_on: date,
        qty: int,
        kind: str,
    ) -> None:
        """R9 without picks: accepted exactly when the office has enough free stock usable on
        the ship date (the line's own picks are free to it again), and taken in order: every
        source ordered before the last one taken is taken whole."""
        own = before.allocations.get((shipment, 1))
        if own is not None and own.status == "shipped":
            assert decision.rejected is not None
            return
        mine: defaultdict[Source, Decimal] = defaultdict(Decimal)
        if own is not None and own.status == "allocated":
            for p in own.picks:
                mine[(p.lot_id, p.mfr_lot, p.serial)] += p.quantity
        fresh_only = self.perishable and kind == "sale"
        sources: dict[Source, tuple[Decimal, tuple[Any, ...]]] = {}
        for lot in before.lots.values():
            if lot.office != office or lot.on_hand <= lot.held:
                continue
            arrival = (lot.received_on, lot.seq)
            if self.serialized:
                for u in before.units.values():
                    if u.lot_id != lot.lot_id:
                        continue
                    key: Source = (u.lot_id, u.mfr_lot, u.serial)
                    if u.status is not S.AVAILABLE and not mine[key]:
                        continue
                    row = before.mfr_lots.get((u.lot_id, u.mfr_lot or ""))
                    expiry = row.expires_on if row is not None else None
                    if fresh_only and expiry is not None and expiry < ship_on:
                        continue
                    first = (expiry or date.max) if self.perishable else date.max
                    sources[key] = (Decimal(1), (first, arrival, u.position))
            elif self.track:
                for (lot_id, name), row in before.mfr_lots.items():
                    if lot_id != lot.lot_id:
                        continue
                    if fresh_only and row.expires_on is not None and row.expires_on < ship_on:
                        continue
                    key = (lot_id, name, None)
                    free = row.free + mine[key]
                    first = (row.expires_on or date.max) if self.perishable else date.max
                    if free > 0:
                        sources[key] = (free, (first, arrival, name))
            else:
                key = (lot.lot_id, None, None)
                if lot.free + mine[key] > 0:
                    sources[key] = (lot.free + mine[key], (arrival,))
        available = sum((q for q, _ in sources.values()), ZERO)
        if waits(decision.events):  # short now, but held lines put stock at the office
            assert kind == "sale" and holds_stock_at(before, office)
            assert own is None or own.status == "released"
            assert available < qty or waiting_at(before, office)  # or it queues behind
            return
        assert (decision.rejected is None) == (available >= qty), (available, decision.events)
        if decision.rejected is not None:
            return
        allocated = decision.events[-1]
        assert isinstance(allocated, LineAllocated) and allocated.complete
        taken: defaultdict[Source, Decimal] = defaultdict(Decimal)
        for m in allocated.movements:
            assert m.lot_id is not None
            taken[(m.lot_id, m.mfr_lot, m.serial)] += m.quantity
        assert set(taken) <= set(sources), (taken, sources)
        last = max(sources[key][1] for key in taken)
        for key, (free, order) in sources.items():
            if order < last:
                assert taken[key] == free, (key, "skipped", allocated.movements)

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def ship(self, data: st.DataObject) -> None:
        shipment = self.some_line(data)
        self.run(ShipLine(message_id=self.mid(), lic=LIC, shipment_id=shipment, line_no=1))

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        shipment = self.some_line(data)
        self.run(ReleaseLine(message_id=self.mid(), lic=LIC, shipment_id=shipment, line_no=1))

    @rule(
        office=OFFICES,
        qty=st.integers(min_value=-4, max_value=4).filter(bool),
        kind=st.sampled_from(["count", "loss", "beginning_balance"]),
        data=st.data(),
    )
    def adjust(self, office: str, qty: int, kind: str, data: st.DataObject) -> None:
        n = next(self.ids)
        self.run(
            AdjustStock(
                message_id=self.mid(),
                lic=LIC,
                adjustment_id=f"ADJ-{n}",
                office=office,
                kind=kind,  # type: ignore[arg-type]
                quantity=Decimal(qty),
                adjusted_on=data.draw(DAYS),
                unit_cost=Decimal("5.00"),
                lots=self.entries(data, abs(qty)) if data.draw(st.integers(0, 4)) else (),
                serials=self.serials(data, abs(qty)),
            )
        )

    @rule(
        office=OFFICES,
        qty=QTY,
        customer=CUSTOMERS,
        held=st.booleans(),
        data=st.data(),
    )
    def give_back(
        self, office: str, qty: int, customer: str | None, held: bool, data: st.DataObject
    ) -> None:
        shipped = sorted(u.serial for u in self.state.units.values() if u.status is S.SHIPPED)
        name = data.draw(MFR)
        rows = [r for r in self.state.shipments.values() if r.returnable > 0]
        mostly_shipped = data.draw(st.integers(0, 3)) > 0
        if rows and mostly_shipped:
            row = data.draw(st.sampled_from(rows))
            office = self.state.lots[row.lot_id].office
            customer = row.customer or data.draw(st.sampled_from([None, ""])) or None
            qty = data.draw(st.integers(min_value=1, max_value=int(row.returnable)))
            name = row.mfr_lot or name
            shipped = [
                u.serial
                for u in self.state.units.values()
                if u.status is S.SHIPPED and u.lot_id == row.lot_id
            ]
        serials: tuple[str, ...] = ()
        if self.serialized:
            pool = shipped + SERIALS[:2]
            serials = tuple(
                dict.fromkeys(data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3)))
            )
            qty = len(serials)
        lots: tuple[LotPick, ...] = ()
        if self.track and not self.serialized:
            lots = (LotPick(mfr_lot=name, quantity=Decimal(qty)),)
        n = next(self.ids)
        self.run(
            ReturnFromCustomer(
                message_id=self.mid(),
                lic=LIC,
                shipment_id=f"RET-{n}",
                line_no=1,
                office=office,
                received_on=DATES[0],
                quantity=Decimal(qty),
                customer=customer,
                lots=lots,
                serials=serials,
                hold=held,
            )
        )

    @precondition(lambda self: bool(self.state.holds))
    @rule(data=st.data(), confirm=st.booleans())
    def settle(self, data: st.DataObject, confirm: bool) -> None:
        command_id = data.draw(st.sampled_from(sorted(self.state.holds)))
        kind = ConfirmHeld if confirm else CancelHeld
        self.run(kind(message_id=self.mid(), lic=LIC, command_id=command_id))

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def a_waiting_line_awaits_a_hold_still_there(self) -> None:
        """Once none of its holds is left, a waiting sale line is decided: none waits on."""
        for line in self.state.waiting.values():
            assert any(c in self.state.holds for c in line.awaits), line

    @invariant()
    def quantities_balance(self) -> None:
        state = self.state
        for lot in state.lots.values():
            assert lot.on_hand == lot.received_qty - lot.used, lot
            assert lot.on_hand >= 0 and lot.used >= 0 and lot.allocated >= 0 and lot.held >= 0
            assert lot.allocated + lot.held <= lot.on_hand, lot
            assert (lot.status == "closed") == (lot.on_hand == 0), lot
            rows = [r for r in state.mfr_lots.values() if r.lot_id == lot.lot_id]
            if self.track:
                for field in ("on_hand", "allocated", "used", "held", "initial_qty"):
                    total = sum((getattr(r, field) for r in rows), ZERO)
                    mine = lot.received_qty if field == "initial_qty" else getattr(lot, field)
                    assert total == mine, (field, lot, rows)
            else:
                assert rows == []
        for row in state.mfr_lots.values():
            assert row.on_hand == row.initial_qty - row.used, row
            assert row.used >= 0 and row.allocated >= 0 and row.held >= 0
            assert row.allocated + row.held <= row.on_hand, row

    @invariant()
    def nothing_allocated_twice(self) -> None:
        by_lot: defaultdict[str, Decimal] = defaultdict(Decimal)
        by_mfr: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
        units: Counter[tuple[str, str]] = Counter()
        for allocation in self.state.allocations.values():
            if allocation.status != "allocated":
                continue
            assert sum((p.quantity for p in allocation.picks), ZERO) <= allocation.quantity
            for p in allocation.picks:
                assert self.state.lots[p.lot_id].office == allocation.office
                by_lot[p.lot_id] += p.quantity
                if p.mfr_lot is not None:
                    by_mfr[(p.lot_id, p.mfr_lot)] += p.quantity
                if p.serial is not None:
                    units[(p.serial, p.lot_id)] += 1
                    unit = self.state.units[(p.serial, p.lot_id)]
                    assert unit.status is S.ALLOCATED
                    assert (unit.shipment_id, unit.line_no) == allocation.key
        assert all(n == 1 for n in units.values())
        for lot in self.state.lots.values():
            assert lot.allocated == by_lot[lot.lot_id]
        for key, row in self.state.mfr_lots.items():
            assert row.allocated == by_mfr[key]
        allocated_units = {u.key for u in self.state.units.values() if u.status is S.ALLOCATED}
        assert allocated_units == set(units)

    @invariant()
    def units_match_their_lots(self) -> None:
        if not self.serialized:
            assert self.state.units == {}
            return
        state = self.state
        live = Counter(u.serial for u in state.units.values() if u.in_stock)
        assert all(n == 1 for n in live.values()), live
        for lot in state.lots.values():
            units = [u for u in state.units.values() if u.lot_id == lot.lot_id]
            assert sum(1 for u in units if u.in_stock) == lot.on_hand, lot
            assert sum(1 for u in units if u.status is S.ALLOCATED) == lot.allocated, lot
        for row in state.mfr_lots.values():
            units = [
                u
                for u in state.units.values()
                if u.lot_id == row.lot_id and u.mfr_lot == row.mfr_lot
            ]
            assert sum(1 for u in units if u.in_stock) == row.on_hand, row
            assert sum(1 for u in units if u.status is S.ALLOCATED) == row.allocated, row

    @invariant()
    def returns_never_exceed_shipments(self) -> None:
        for row in self.state.shipments.values():
            assert ZERO <= row.returned <= row.shipped, row

    @invariant()
    def index_is_what_a_reload_builds(self) -> None:
        """The index the core carries forward equals the one built from the rows alone."""
        state = self.state
        if state.index is not None:
            assert state.index == build_index(replace(state, index=None))
        draft = Draft(state)
        for allocation in state.allocations.values():
            if allocation.movements is not None:
                assert allocation.status == "allocated"
                assert allocation.movements == movements(draft, allocation.picks)

    @invariant()
    def a_batch_decides_like_one_command_at_a_time(self) -> None:
        if len(self.history) % 10:
            return
        state, events = decide_all(LicState.empty(LIC), self.history)
        assert events == self.events
        assert replace(state, index=None) == replace(self.state, index=None)
        assert state.index == build_index(replace(state, index=None))


AnyItemMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestAnyItemMachine = AnyItemMachine.TestCase
