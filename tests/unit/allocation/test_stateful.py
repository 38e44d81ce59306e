"""Random command sequences through decide(), checked against a small reference model.

Three LICs: a plain item, a lot-tracked perishable item and a serialized item, at two offices.
After every step the invariants of R4, R7, R9 and R11 must hold; where the reference model can
tell on its own whether a command must succeed (free stock, serials in stock), decide() agrees.
Receipts carry random dates, so the order they are decided in is not the order they came in:
automatic picks must follow the receipt date (R9, §6), FEFO breaking ties by it.

Any receipt or return line may be sent held (one line of a document with several): holding it
then confirming it must leave exactly the rows the unheld decision leaves, and cancelling it
exactly the rows it started from; meanwhile other commands run against the held stock, which
nothing may use, until a later step confirms or cancels it.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from services.allocation.domain.decide import decide
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    ZERO,
    AdjustmentKind,
    AdjustStock,
    AllocateLine,
    CancelHeld,
    Command,
    ConfirmHeld,
    Decision,
    InventoryAdjusted,
    LicState,
    LineAllocated,
    LineHeld,
    LineRefusal,
    LineReleased,
    LineShipped,
    LotEntry,
    LotMovement,
    LotPick,
    MfrLot,
    ReceiveStock,
    ReleaseLine,
    ReturnFromCustomer,
    SerialStatus,
    ShipLine,
    ShipmentKind,
    StockReceived,
    StockReturned,
    UpsertItem,
)
from tests.unit.allocation.builders import holds_stock_at, waiting_at, waits

PLAIN, LOT, SER = "PLAIN", "LOT", "SER"
OFFICES = st.sampled_from(["AI", "AI", "AI", "EE"])
DATES = [date(2024, 1, 10), date(2024, 2, 10), date(2024, 3, 10), date(2024, 4, 10)]
DAYS = st.sampled_from(DATES)
MFR = st.sampled_from(["A", "B", "C"])
SERIALS = [f"S{i:02d}" for i in range(16)]
CUSTOMERS = st.sampled_from(["Acme", "Beta"])
QTY = st.integers(min_value=1, max_value=5)
KINDS = st.sampled_from(["sale", "sale", "vendor_return"])

S = SerialStatus
D = Decimal


class AllocationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.states = {lic: LicState.empty(lic) for lic in (PLAIN, LOT, SER)}
        self.ids = itertools.count()
        self.lots = itertools.count()
        # reference model
        self.total = {lic: ZERO for lic in self.states}  # stock on hand incl. unallocated
        # office -> value of the plain item's unallocated stock: in and out at the events' costs
        self.unallocated_value: defaultdict[str, Decimal] = defaultdict(Decimal)
        self.serials: dict[str, tuple[SerialStatus, str]] = {}  # serial -> (status, office)
        self.hold_next = False
        # held line -> its decided event and the reference's serials before it
        self.pending: dict[str, tuple[StockReceived | StockReturned, dict[str, Any]]] = {}

    # -- plumbing -------------------------------------------------------------------------------

    def mid(self) -> str:
        return f"m{next(self.ids)}"

    def lot_id(self) -> str:
        return f"LOT-{next(self.lots)}"

    def run(self, command: Command) -> Decision:
        before = self.states[command.lic]
        if self.hold_next and isinstance(command, ReceiveStock | ReturnFromCustomer):
            self.hold_next = False
            command = replace(command, hold=True)
            decision = self.check_hold(before, command)
        else:
            decision = decide(before, command)
        if decision.rejected is not None:
            assert len(decision.events) == 1
            assert decision.state is before or locked_by_refusal(before, decision.state, command)
        for event in decision.events:
            self.follow(event)
        self.states[command.lic] = decision.state
        return decision

    def check_hold(self, before: LicState, held: ReceiveStock | ReturnFromCustomer) -> Decision:
        """Hold then confirm = the unheld decision; hold then cancel = nothing (but the item's
        lock and Next Serial). Returns the held decision."""
        unheld = decide(before, replace(held, hold=False))
        decision = decide(before, held)
        if unheld.rejected is not None:
            assert decision.events == unheld.events
            return decision
        (answer,) = decision.events
        assert isinstance(answer, LineHeld) and (answer.decided,) == unheld.events
        ids = {"message_id": "settle", "lic": held.lic, "command_id": held.message_id}
        confirmed = decide(decision.state, ConfirmHeld(**ids))
        assert rows(confirmed.state) == rows(unheld.state)
        cancelled = decide(decision.state, CancelHeld(**ids))
        assert rows(cancelled.state) == rows(before)
        return decision

    def follow(self, event: object) -> None:
        """Track totals and serial states from the accepted events."""
        match event:
            case LineHeld(command_id=command_id, decided=decided):
                moved = [m.serial for m in decided.movements if m.serial is not None]
                self.pending[command_id] = (decided, {s: self.serials.get(s) for s in moved})
                for serial in moved:
                    self.serials[serial] = (S.HELD, "")
            case StockReceived(lic=lic, quantity=q, movements=moves, office=office):
                self.total[lic] += q
                self.mark(moves, S.AVAILABLE, office)
            case LineAllocated(movements=moves, office=office):
                self.mark(moves, S.ALLOCATED, office)
            case LineReleased(movements=moves, office=office):
                self.mark(moves, S.AVAILABLE, office)
            case LineShipped(lic=lic, quantity=q, movements=moves, office=office, kind=kind):
                self.total[lic] -= q
                gone = S.SHIPPED if kind == "sale" else S.RETURNED_TO_VENDOR
                self.mark(moves, gone, office)
            case InventoryAdjusted(lic=lic, quantity=q, movements=moves, office=office):
                self.total[lic] += q
                for m in moves:
                    if m.lot_id is None:
                        self.unallocated_value[office] += m.quantity * m.unit_cost
                self.mark([m for m in moves if m.quantity > 0], S.AVAILABLE, office)
                self.mark([m for m in moves if m.quantity < 0], S.REMOVED, office)
            case StockReturned(lic=lic, quantity=q, movements=moves):
                self.total[lic] += q
                for m in moves:
                    if m.serial is not None and m.lot_id is not None:
                        office = self.states[lic].lots[m.lot_id].office
                        self.serials[m.serial] = (S.AVAILABLE, office)

    def mark(self, moves: Iterable[LotMovement], status: SerialStatus, office: str) -> None:
        for m in moves:
            if m.serial is not None:
                self.serials[m.serial] = (status, office)

    def serials_at(self, office: str, status: SerialStatus) -> list[str]:
        return sorted(s for s, where in self.serials.items() if where == (status, office))

    def new_or_live_line(self, lic: str) -> st.SearchStrategy[str]:
        """A new shipment line, one allocated now (re-allocation) or, rarely, one shipped."""
        lines = self.states[lic].allocations
        live = sorted(k[0] for k, a in lines.items() if a.status == "allocated")
        done = sorted(k[0] for k, a in lines.items() if a.status != "allocated")
        fresh = f"SH{len(lines)}"
        return st.sampled_from([fresh, fresh, fresh, *live, *done[:1]])

    def some_line(self, lic: str) -> st.SearchStrategy[str]:
        """Mostly a line that is allocated now, sometimes any line."""
        live = [k[0] for k, a in self.states[lic].allocations.items() if a.status == "allocated"]
        return st.sampled_from([*(3 * sorted(live)), "SH0", "SH404"])

    def free_serial(self, serial: str, office: str) -> bool:
        return self.serials.get(serial) == (S.AVAILABLE, office)

    def in_stock(self, serial: str) -> bool:
        return serial in self.serials and self.serials[serial][0] in (
            S.AVAILABLE,
            S.ALLOCATED,
            S.HELD,
        )

    # -- setup ----------------------------------------------------------------------------------

    @initialize()
    def items(self) -> None:
        for lic, track, serialized, next_serial in (
            (PLAIN, False, False, None),
            (LOT, True, False, None),
            (SER, False, True, "90"),
        ):
            self.run(
                UpsertItem(
                    message_id=self.mid(),
                    lic=lic,
                    description=lic,
                    uom="Each",
                    track_mfr_lot=track,
                    serialized=serialized,
                    next_serial=next_serial,
                    est_unit_cost=D("2.50"),
                )
            )

    # -- receipts -------------------------------------------------------------------------------

    @rule(office=OFFICES, qty=QTY, cost=st.sampled_from(["1.00", "3.25"]), on=DAYS)
    def receive_plain(self, office: str, qty: int, cost: str, on: date) -> None:
        decision = self.run(self.receipt(PLAIN, office, D(qty), on, unit_cost=D(cost)))
        assert decision.rejected is None

    @rule(
        office=OFFICES,
        lots=st.lists(st.tuples(MFR, QTY, DAYS), min_size=1, max_size=2),
        on=DAYS,
    )
    def receive_lots(self, office: str, lots: list[tuple[str, int, date]], on: date) -> None:
        entries = tuple(LotEntry(mfr_lot=n, quantity=D(q), expires_on=e) for n, q, e in lots)
        total = sum((e.quantity for e in entries), ZERO)
        decision = self.run(self.receipt(LOT, office, total, on, mfr_lots=entries))
        names = [n for n, _, _ in lots]
        clash = len(set(names)) < len(names) and len({(n, e) for n, _, e in lots}) > len(set(names))
        assert (decision.rejected is None) == (not clash)

    @rule(
        office=OFFICES,
        serials=st.lists(st.sampled_from(SERIALS), min_size=1, max_size=3),
        on=DAYS,
    )
    def receive_serials(self, office: str, serials: list[str], on: date) -> None:
        command = self.receipt(SER, office, D(len(serials)), on, serials=tuple(serials))
        expected_ok = len(set(serials)) == len(serials) and not any(map(self.in_stock, serials))
        decision = self.run(command)
        assert (decision.rejected is None) == expected_ok, decision.events

    @rule(office=OFFICES, qty=st.integers(min_value=1, max_value=2), on=DAYS)
    def receive_generated(self, office: str, qty: int, on: date) -> None:
        decision = self.run(self.receipt(SER, office, D(qty), on, generate=True))
        assert decision.rejected is None

    def receipt(
        self,
        lic: str,
        office: str,
        quantity: Decimal,
        received_on: date,
        *,
        unit_cost: Decimal | None = None,
        mfr_lots: tuple[LotEntry, ...] = (),
        serials: tuple[str, ...] = (),
        generate: bool = False,
    ) -> ReceiveStock:
        return ReceiveStock(
            message_id=self.mid(),
            lic=lic,
            lot_id=self.lot_id(),
            office=office,
            kind="purchase",
            received_on=received_on,
            quantity=quantity,
            shipment_id="PO",
            line_no=1,
            unit_cost=unit_cost,
            mfr_lots=mfr_lots,
            serials=serials,
            generate_serials=generate,
        )

    # -- shipments ------------------------------------------------------------------------------

    @rule(office=OFFICES, qty=QTY, customer=CUSTOMERS, data=st.data())
    def allocate_plain(self, office: str, qty: int, customer: str, data: st.DataObject) -> None:
        shipment = data.draw(self.new_or_live_line(PLAIN))
        state = self.states[PLAIN]
        own = state.allocations.get((shipment, 1))
        mine = own.quantity if own and own.status == "allocated" and own.office == office else 0
        free = sum((lot.free for lot in state.lots.values() if lot.office == office), ZERO)
        shipped = own is not None and own.status == "shipped"
        decision = self.run(self.line(PLAIN, shipment, office, D(qty), customer))
        if waits(decision.events):  # short now, but held lines put stock at the office
            assert (own is None or own.status == "released") and holds_stock_at(state, office)
            assert free + mine < qty or waiting_at(state, office)  # or it queues behind
            return
        assert (decision.rejected is None) == (not shipped and free + mine >= qty)
        if decision.rejected is None:
            allocated = decision.events[-1]
            assert isinstance(allocated, LineAllocated)
            self.check_fifo(state, allocated, shipment)

    @rule(
        office=OFFICES,
        qty=QTY,
        ship_on=DAYS,
        kind=KINDS,
        customer=CUSTOMERS,
        data=st.data(),
    )
    def allocate_lots(
        self,
        office: str,
        qty: int,
        ship_on: date,
        kind: ShipmentKind,
        customer: str,
        data: st.DataObject,
    ) -> None:
        shipment = data.draw(self.new_or_live_line(LOT))
        state = self.states[LOT]
        stocked = sorted(
            {r.mfr_lot for r in state.mfr_lots.values() if state.lots[r.lot_id].office == office}
        )
        named = data.draw(st.sampled_from([*stocked, "C", None]))
        if kind == "vendor_return" and named is None:
            named = data.draw(st.sampled_from([*stocked, "C"]))
        lots = () if named is None else (LotPick(mfr_lot=named, quantity=D(qty)),)
        before = self.states[LOT]
        decision = self.run(self.line(LOT, shipment, office, D(qty), customer, ship_on, kind, lots))
        if waits(decision.events):
            assert named is None and kind == "sale" and holds_stock_at(before, office)
            return
        if decision.rejected is None and kind == "sale":
            allocated = decision.events[-1]
            assert isinstance(allocated, LineAllocated)
            self.check_fefo(before, allocated, shipment, auto=named is None)

    @rule(
        office=OFFICES,
        qty=st.integers(min_value=1, max_value=3),
        named=st.booleans(),
        kind=KINDS,
        customer=CUSTOMERS,
        data=st.data(),
    )
    def allocate_serials(
        self,
        office: str,
        qty: int,
        named: bool,
        kind: ShipmentKind,
        customer: str,
        data: st.DataObject,
    ) -> None:
        shipment = data.draw(self.new_or_live_line(SER))
        serials: tuple[str, ...] = ()
        if named or kind == "vendor_return":
            pool = 3 * self.serials_at(office, S.AVAILABLE) + SERIALS[:3]
            serials = tuple(data.draw(st.lists(st.sampled_from(pool), min_size=qty, max_size=qty)))
        state = self.states[SER]
        own = state.allocations.get((shipment, 1))
        live = own is not None and own.status == "allocated"
        mine = {p.serial for p in own.picks} if live and own and own.office == office else set()
        usable = all(self.free_serial(s, office) or s in mine for s in serials)
        unique = len(set(serials)) == len(serials)
        decision = self.run(
            self.line(SER, shipment, office, D(qty), customer, kind=kind, serials=serials)
        )
        if serials and not (own is not None and own.status == "shipped"):
            assert (decision.rejected is None) == (usable and unique), decision.events
        if waits(decision.events):
            assert not serials and kind == "sale" and not live and holds_stock_at(state, office)
            return
        if not serials and decision.rejected is None:
            allocated = decision.events[-1]
            assert isinstance(allocated, LineAllocated)
            self.check_fifo(state, allocated, shipment)

    def line(
        self,
        lic: str,
        shipment: str,
        office: str,
        quantity: Decimal,
        customer: str,
        ship_on: date = DATES[0],
        kind: ShipmentKind = "sale",
        lots: tuple[LotPick, ...] = (),
        serials: tuple[str, ...] = (),
    ) -> AllocateLine:
        return AllocateLine(
            message_id=self.mid(),
            lic=lic,
            shipment_id=shipment,
            line_no=1,
            office=office,
            kind=kind,
            counterparty=customer if kind == "sale" else "Vendor",
            ship_on=ship_on,
            quantity=quantity,
            lots=lots,
            serials=serials,
        )

    @rule(lic=st.sampled_from([PLAIN, LOT, SER]), data=st.data())
    def ship(self, lic: str, data: st.DataObject) -> None:
        shipment = data.draw(self.some_line(lic))
        own = self.states[lic].allocations.get((shipment, 1))
        decision = self.run(
            ShipLine(message_id=self.mid(), lic=lic, shipment_id=shipment, line_no=1)
        )
        assert (decision.rejected is None) == (own is not None and own.status == "allocated")

    def live_lics(self) -> list[str]:
        return [
            lic
            for lic, state in self.states.items()
            if any(a.status == "allocated" for a in state.allocations.values())
        ]

    @precondition(lambda self: bool(self.live_lics()))
    @rule(data=st.data())
    def ship_live(self, data: st.DataObject) -> None:
        """Ship a line that is allocated now: always accepted (automatic picks are complete)."""
        lic = data.draw(st.sampled_from(self.live_lics()))
        lines = self.states[lic].allocations.values()
        line = data.draw(st.sampled_from([a for a in lines if a.status == "allocated"]))
        command = ShipLine(message_id=self.mid(), lic=lic, shipment_id=line.shipment_id, line_no=1)
        assert self.run(command).rejected is None

    def shipped_lics(self) -> list[str]:
        return [
            lic
            for lic, state in self.states.items()
            if any(r.returnable > 0 for r in state.shipments.values())
        ]

    @precondition(lambda self: bool(self.shipped_lics()))
    @rule(data=st.data())
    def give_back_shipped(self, data: st.DataObject) -> None:
        """Return part of what was shipped to a customer: accepted while the lot still counts
        it as used (a count may have reversed that usage already)."""
        lic = data.draw(st.sampled_from(self.shipped_lics()))
        state = self.states[lic]
        row = data.draw(st.sampled_from([r for r in state.shipments.values() if r.returnable > 0]))
        qty = data.draw(st.integers(min_value=1, max_value=int(row.returnable)))
        serials: tuple[str, ...] = ()
        if lic == SER:
            shipped = [
                u.serial
                for u in state.units.values()
                if u.status is S.SHIPPED and u.customer == row.customer and u.lot_id == row.lot_id
            ]
            serials = tuple(shipped[:qty])
            qty = len(serials)
        lots = (LotPick(mfr_lot=row.mfr_lot, quantity=D(qty), lot_id=row.lot_id),)
        used = state.lots[row.lot_id].used
        if row.mfr_lot is not None:
            used = state.mfr_lots[(row.lot_id, row.mfr_lot)].used
        in_stock_again = any(self.in_stock(s) for s in serials)
        decision = self.run(
            ReturnFromCustomer(
                message_id=self.mid(),
                lic=lic,
                shipment_id="RET",
                line_no=1,
                office=state.lots[row.lot_id].office,  # received where it was shipped from
                received_on=DATES[0],
                quantity=D(qty),
                customer=row.customer,
                lots=lots if lic == LOT else (),
                serials=serials,
            )
        )
        if lic == LOT:
            assert (decision.rejected is None) == (used >= qty), decision.events
        if lic == SER and serials:
            assert (decision.rejected is None) == (not in_stock_again), decision.events

    @rule(lic=st.sampled_from([PLAIN, LOT, SER]), office=OFFICES, qty=QTY, data=st.data())
    def refused_by_shipping(self, lic: str, office: str, qty: int, data: st.DataObject) -> None:
        """A line shipping refused itself (R5, R14) is answered with exactly that problem and
        decides nothing (an allocation of the line stands); the item locks (R2)."""
        shipment = data.draw(self.new_or_live_line(lic))
        refusal = LineRefusal(
            reason_code=ReasonCode.INVALID_SERIAL_SPAN,
            reason="span '9...1' runs backwards",
            offending="9...1",
        )
        line = replace(self.line(lic, shipment, office, D(qty), "Acme"), refusal=refusal)
        before = self.states[lic]
        decision = self.run(line)
        rejected = decision.rejected
        assert rejected is not None
        assert (rejected.reason_code, rejected.reason, rejected.offending) == (
            refusal.reason_code,
            refusal.reason,
            refusal.offending,
        )
        assert rows(decision.state) == rows(before)
        assert before.item is None or (decision.state.item and decision.state.item.locked)

    @rule(lic=st.sampled_from([PLAIN, LOT, SER]), data=st.data())
    def release(self, lic: str, data: st.DataObject) -> None:
        shipment = data.draw(self.some_line(lic))
        own = self.states[lic].allocations.get((shipment, 1))
        command = ReleaseLine(message_id=self.mid(), lic=lic, shipment_id=shipment, line_no=1)
        decision = self.run(command)
        assert (decision.rejected is None) == (own is not None and own.status == "allocated")

    # -- adjustments ----------------------------------------------------------------------------

    @rule(
        office=OFFICES,
        qty=st.integers(min_value=-5, max_value=5).filter(bool),
        kind=st.sampled_from(["count", "loss", "beginning_balance"]),
        cost=st.sampled_from([None, "1.00", "3.25", "0.35"]),
    )
    def adjust_plain(self, office: str, qty: int, kind: AdjustmentKind, cost: str | None) -> None:
        state = self.states[PLAIN]
        free = sum((lot.free for lot in state.lots.values() if lot.office == office), ZERO)
        unallocated = state.unallocated.get(office)
        free += unallocated.quantity if unallocated is not None else ZERO
        command = self.adjustment(PLAIN, office, kind, D(qty))
        decision = self.run(replace(command, unit_cost=None if cost is None else D(cost)))
        if kind == "beginning_balance":
            assert (decision.rejected is None) == (qty > 0)
        else:
            assert (decision.rejected is None) == (qty > 0 or free >= -qty)

    @rule(
        office=OFFICES,
        name=MFR,
        qty=st.integers(min_value=-4, max_value=4).filter(bool),
        kind=st.sampled_from(["count", "loss", "beginning_balance"]),
        expires_on=DAYS,
    )
    def adjust_lots(
        self, office: str, name: str, qty: int, kind: AdjustmentKind, expires_on: date
    ) -> None:
        entry = LotEntry(mfr_lot=name, quantity=D(abs(qty)), expires_on=expires_on)
        # A count or loss naming an expiry moves only stock of that expiry (R11).
        rows = [
            r
            for r in self.states[LOT].mfr_lots.values()
            if r.mfr_lot == name
            and self.states[LOT].lots[r.lot_id].office == office
            and r.expires_on == expires_on
        ]
        decision = self.run(self.adjustment(LOT, office, kind, D(qty), lots=(entry,)))
        if kind == "beginning_balance":
            assert (decision.rejected is None) == (qty > 0)
        elif qty > 0:
            used = sum((r.used for r in rows), ZERO)
            assert (decision.rejected is None) == (used >= qty)
            if decision.rejected is not None and rows:
                assert decision.rejected.reason_code is ReasonCode.LOT_QTY_EXCEEDS_USED
        else:
            free = sum((r.free for r in rows), ZERO)
            assert (decision.rejected is None) == (free >= -qty)

    @rule(
        office=OFFICES,
        sign=st.sampled_from([-1, 1]),
        kind=st.sampled_from(["count", "loss", "beginning_balance"]),
        data=st.data(),
    )
    def adjust_serials(
        self, office: str, sign: int, kind: AdjustmentKind, data: st.DataObject
    ) -> None:
        status = S.AVAILABLE if sign < 0 else S.REMOVED
        pool = 3 * self.serials_at(office, status) + SERIALS[:4]
        serials = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))
        quantity = D(sign * len(serials))
        if kind == "beginning_balance":
            ok = sign > 0 and not any(map(self.in_stock, serials))
        elif sign < 0:
            ok = all(self.free_serial(s, office) for s in serials)
        else:
            ok = all(self.serials.get(s) == (S.REMOVED, office) for s in serials)
        decision = self.run(self.adjustment(SER, office, kind, quantity, serials=tuple(serials)))
        assert (decision.rejected is None) == ok, decision.events

    def adjustment(
        self,
        lic: str,
        office: str,
        kind: AdjustmentKind,
        quantity: Decimal,
        *,
        lots: tuple[LotEntry, ...] = (),
        serials: tuple[str, ...] = (),
    ) -> AdjustStock:
        return AdjustStock(
            message_id=self.mid(),
            lic=lic,
            adjustment_id=self.lot_id(),
            office=office,
            kind=kind,
            quantity=quantity,
            adjusted_on=DATES[0],
            lots=lots,
            serials=serials,
        )

    # -- returns --------------------------------------------------------------------------------

    @rule(
        lic=st.sampled_from([PLAIN, LOT, SER]),
        customer=CUSTOMERS,
        qty=QTY,
        office=OFFICES,
        data=st.data(),
    )
    def give_back(
        self, lic: str, customer: str, qty: int, office: str, data: st.DataObject
    ) -> None:
        lots: tuple[LotPick, ...] = ()
        serials: tuple[str, ...] = ()
        shipped_rows = [r for r in self.states[lic].shipments.values() if r.returnable > 0]
        if shipped_rows and data.draw(st.booleans()):
            row = data.draw(st.sampled_from(shipped_rows))
            customer = row.customer
            qty = min(qty, int(row.returnable))
        if lic == LOT:
            names = [r.mfr_lot for r in shipped_rows if r.mfr_lot and r.customer == customer]
            lots = (LotPick(mfr_lot=data.draw(st.sampled_from([*names, "A"])), quantity=D(qty)),)
        if lic == SER:
            shipped = sorted(s for s, (status, _) in self.serials.items() if status is S.SHIPPED)
            pool = shipped + SERIALS[:2]
            serials = tuple(data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2)))
            qty = len(serials)
        state = self.states[lic]
        to_them = {u.serial for u in state.units.values() if u.customer == customer}
        # R13: shipped to them, from this office (where a serial was shipped from)
        ok = len(set(serials)) == len(serials) and all(
            self.serials.get(s) == (S.SHIPPED, office) and s in to_them for s in serials
        )
        decision = self.run(
            ReturnFromCustomer(
                message_id=self.mid(),
                lic=lic,
                shipment_id="RET",
                line_no=1,
                office=office,
                received_on=DATES[0],
                quantity=D(qty),
                customer=customer,
                lots=lots,
                serials=serials,
            )
        )
        if lic == SER:
            assert (decision.rejected is None) == ok, decision.events

    # -- held lines -----------------------------------------------------------------------------

    @rule()
    def hold_the_next_line(self) -> None:
        """The next receipt or return line goes held."""
        self.hold_next = True

    def held_lines(self) -> list[tuple[str, str]]:
        return sorted((lic, key) for lic, state in self.states.items() for key in state.holds)

    @precondition(lambda self: bool(self.held_lines()))
    @rule(data=st.data(), confirm=st.booleans())
    def settle_held(self, data: st.DataObject, confirm: bool) -> None:
        lic, command_id = data.draw(st.sampled_from(self.held_lines()))
        kind = ConfirmHeld if confirm else CancelHeld
        decision = self.run(kind(message_id=self.mid(), lic=lic, command_id=command_id))
        assert decision.rejected is None and command_id not in self.states[lic].holds
        decided, serials_before = self.pending.pop(command_id)
        if confirm:
            self.follow(decided)
        else:
            for serial, was in serials_before.items():
                if was is None:
                    del self.serials[serial]
                else:
                    self.serials[serial] = was
        # Sale lines that waited for it are decided after it (`run` followed them first).
        for event in decision.events[1:]:
            self.follow(event)

    @rule(lic=st.sampled_from([PLAIN, LOT, SER]), confirm=st.booleans())
    def settle_a_line_never_held(self, lic: str, confirm: bool) -> None:
        kind = ConfirmHeld if confirm else CancelHeld
        decision = self.run(kind(message_id=self.mid(), lic=lic, command_id="m404"))
        assert decision.rejected is not None
        assert decision.rejected.reason_code is ReasonCode.UNKNOWN_SHIPMENT

    # -- checks ---------------------------------------------------------------------------------

    def check_fefo(
        self, before: LicState, event: LineAllocated, shipment: str, *, auto: bool
    ) -> None:
        """R9: never an expired lot; automatic picks take usable rows in the order (expiry,
        receipt date, order decided, mfr lot): every row before the last one taken is taken
        whole, so no earlier-expiring lot, nor one of the same expiry received earlier, is
        left free."""
        assert all(m.expires_on is None or m.expires_on >= event.ship_on for m in event.movements)
        if not auto:
            return
        mine = own_picks(before, shipment)
        taken = by_row(event.movements)

        def order(row: MfrLot) -> tuple[date, date, int, str]:
            lot = before.lots[row.lot_id]
            return (row.expires_on or date.max, lot.received_on, lot.seq, row.mfr_lot)

        last = max(order(before.mfr_lots[(i, n)]) for i, n in taken if n is not None)
        for key, row in before.mfr_lots.items():
            usable = row.expires_on is None or row.expires_on >= event.ship_on
            at_office = before.lots[row.lot_id].office == event.office
            if usable and at_office and order(row) < last:
                free = row.free + mine[key]
                assert taken[key] == free, (key, "skipped by FEFO")

    def check_fifo(self, before: LicState, event: LineAllocated, shipment: str) -> None:
        """R9: automatic picks of other stock go first in, first out: by the date the receipt
        carried, then the order receipts were decided in. Every lot before the last one taken
        is taken whole; within a serialized lot, units go in the order they were received."""
        mine = own_picks(before, shipment)
        own = before.allocations.get((shipment, 1))
        mine_units = {p.serial for p in own.picks} if own and own.status == "allocated" else set()
        taken = by_row(event.movements)

        def order(lot_id: str) -> tuple[date, int]:
            lot = before.lots[lot_id]
            return (lot.received_on, lot.seq)

        last = max(order(lot_id) for lot_id, _ in taken)
        for lot in before.lots.values():
            if lot.office != event.office or order(lot.lot_id) >= last:
                continue
            free = lot.free + mine[(lot.lot_id, None)]
            assert taken[(lot.lot_id, None)] == free, (lot.lot_id, "skipped by FIFO")
        if before.item is None or not before.item.serialized:
            return
        positions = {u.serial: u.position for u in before.units.values() if u.in_stock}
        for lot_id, _ in taken:  # each lot taken, in part or whole: its first units
            lot = before.lots[lot_id]
            free_units = sorted(
                (u.position, u.serial)
                for u in before.units.values()
                if u.lot_id == lot_id
                and lot.on_hand > lot.held  # not a held receipt's
                and (u.status is S.AVAILABLE or u.serial in mine_units)
            )
            got = sorted(
                (positions[m.serial], m.serial)
                for m in event.movements
                if m.lot_id == lot_id and m.serial is not None
            )
            assert got == free_units[: len(got)], (lot_id, "units skipped by FIFO")

    @invariant()
    def a_waiting_line_awaits_a_hold_still_there(self) -> None:
        """Every hold a sale line waits for is settled some day: once none is left, the line
        is decided, so no line waits forever on holds that are gone."""
        for state in self.states.values():
            for line in state.waiting.values():
                assert any(c in state.holds for c in line.awaits), line

    @invariant()
    def lots_balance(self) -> None:
        """R7/R11: on_hand = received − used ≥ 0, 0 ≤ allocated ≤ on_hand, closed iff empty."""
        for state in self.states.values():
            for lot in state.lots.values():
                assert lot.on_hand == lot.received_qty - lot.used
                assert lot.on_hand >= 0 and lot.used >= 0
                assert lot.allocated >= 0 and lot.held >= 0
                assert lot.allocated + lot.held <= lot.on_hand
                assert (lot.status == "closed") == (lot.on_hand == 0)
            for row in state.mfr_lots.values():
                assert row.on_hand == row.initial_qty - row.used
                assert row.allocated >= 0 and row.held >= 0 and row.used >= 0
                assert row.allocated + row.held <= row.on_hand

    @invariant()
    def mfr_lots_add_up_to_their_lot(self) -> None:
        state = self.states[LOT]
        for lot in state.lots.values():
            rows = [r for r in state.mfr_lots.values() if r.lot_id == lot.lot_id]
            assert sum((r.on_hand for r in rows), ZERO) == lot.on_hand
            assert sum((r.allocated for r in rows), ZERO) == lot.allocated
            assert sum((r.held for r in rows), ZERO) == lot.held

    @invariant()
    def totals_match_the_reference(self) -> None:
        """Held stock is not counted until its line is confirmed."""
        for lic, state in self.states.items():
            usable = sum((lot.on_hand - lot.held for lot in state.lots.values()), ZERO)
            unallocated = sum((row.quantity for row in state.unallocated.values()), ZERO)
            assert usable + unallocated == self.total[lic]

    @invariant()
    def unallocated_stock_is_worth_what_came_in_less_what_went_out(self) -> None:
        """R10, R12: its value is the events' lot-less movements at their costs, never
        negative, and none is left exactly when no unit is (what came and went nets to 0)."""
        state = self.states[PLAIN]
        for office in {*state.unallocated, *self.unallocated_value}:
            row = state.unallocated.get(office)
            assert (row.value if row is not None else ZERO) == self.unallocated_value[office]
            assert row is None or (row.quantity > 0 and row.value >= 0)

    @invariant()
    def held_stock_is_exactly_the_held_lines(self) -> None:
        """Every held quantity and HELD unit belongs to a held line, and no more; a held
        receipt's lot is held whole and not stocked (no pick or adjustment sees it)."""
        for state in self.states.values():
            by_lot: defaultdict[str, Decimal] = defaultdict(Decimal)
            serials = set()
            for hold in state.holds.values():
                for p in hold.picks:
                    by_lot[p.lot_id] += p.quantity
                    if p.serial is not None and hold.kind == "return":
                        serials.add((p.serial, p.lot_id))
                if hold.lot_id is not None:
                    lot = state.lots[hold.lot_id]
                    assert lot.held == lot.on_hand == lot.received_qty
                    assert hold.lot_id not in (state.index.stocked if state.index else {})
            assert {k: v for k, v in by_lot.items() if v} == {
                lot.lot_id: lot.held for lot in state.lots.values() if lot.held
            }
            assert serials == {u.key for u in state.units.values() if u.status is S.HELD}

    @invariant()
    def nothing_is_allocated_twice(self) -> None:
        """R9: live allocations' picks add up to exactly what lots and mfr lots hold."""
        for state in self.states.values():
            by_lot: defaultdict[str, Decimal] = defaultdict(Decimal)
            by_mfr: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
            for allocation in state.allocations.values():
                if allocation.status != "allocated":
                    continue
                assert sum((p.quantity for p in allocation.picks), ZERO) == allocation.quantity
                for p in allocation.picks:
                    by_lot[p.lot_id] += p.quantity
                    if p.mfr_lot is not None:
                        by_mfr[(p.lot_id, p.mfr_lot)] += p.quantity
            for lot in state.lots.values():
                assert lot.allocated == by_lot[lot.lot_id]
            for key, row in state.mfr_lots.items():
                assert row.allocated == by_mfr[key]

    @invariant()
    def serials_are_unique_and_consistent(self) -> None:
        """R4: one unit per serial in stock; units match their lot's quantities; every serial
        is in exactly the state the reference saw last."""
        state = self.states[SER]
        live = Counter(u.serial for u in state.units.values() if u.in_stock)
        assert all(n == 1 for n in live.values())
        for lot in state.lots.values():
            units = [u for u in state.units.values() if u.lot_id == lot.lot_id]
            assert sum(1 for u in units if u.in_stock) == lot.on_hand
            assert sum(1 for u in units if u.status is S.ALLOCATED) == lot.allocated
            held_receipt = any(h.lot_id == lot.lot_id for h in state.holds.values())
            held_units = sum(1 for u in units if u.status is S.HELD)
            assert held_units == (0 if held_receipt else lot.held)
        for serial, (status, office) in self.serials.items():
            rows = [u for u in state.units.values() if u.serial == serial and u.in_stock]
            if status is S.HELD:  # a held return's unit, or one of a held receipt's lot
                (unit,) = rows
                held_lot = any(h.lot_id == unit.lot_id for h in state.holds.values())
                assert unit.status is (S.AVAILABLE if held_lot else S.HELD)
            elif status in (S.AVAILABLE, S.ALLOCATED):
                assert [u.status for u in rows] == [status]
                assert state.lots[rows[0].lot_id].office == office
            else:
                assert rows == []


def own_picks(before: LicState, shipment: str) -> defaultdict[tuple[str, str | None], Decimal]:
    """What the line holds before it is re-allocated: free again to its new allocation."""
    mine: defaultdict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    own = before.allocations.get((shipment, 1))
    if own is not None and own.status == "allocated":
        for p in own.picks:
            mine[(p.lot_id, p.mfr_lot)] += p.quantity
    return mine


def by_row(moves: Iterable[LotMovement]) -> defaultdict[tuple[str, str | None], Decimal]:
    taken: defaultdict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    for m in moves:
        assert m.lot_id is not None
        taken[(m.lot_id, m.mfr_lot)] += m.quantity
    return taken


def locked_by_refusal(before: LicState, after: LicState, command: Command) -> bool:
    """R2: the one change a refusal makes: a refused shipment line locks its known item."""
    return (
        isinstance(command, AllocateLine)
        and before.item is not None
        and not before.item.locked
        and after.item == replace(before.item, locked=True)
        and rows(after) == rows(before)
    )


def rows(state: LicState) -> tuple[object, ...]:
    """A state's rows, without the item (a hold leaves it locked and its Next Serial on)."""
    return (
        state.lots,
        state.mfr_lots,
        state.units,
        state.allocations,
        state.shipments,
        state.unallocated,
        state.holds,
    )


AllocationMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAllocationMachine = AllocationMachine.TestCase
