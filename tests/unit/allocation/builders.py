"""Terse builders for allocation-core tests: commands with sensible defaults, and a `Book`
that folds decisions and checks the answers."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal

from services.allocation.domain.decide import decide
from services.allocation.domain.errors import ReasonCode
from services.allocation.domain.model import (
    AdjustmentKind,
    AdjustStock,
    AllocateLine,
    CancelHeld,
    Command,
    CommandRejected,
    ConfirmHeld,
    Event,
    LicState,
    LineHeld,
    LineWaiting,
    LotEntry,
    LotPick,
    QuarantineStock,
    ReceiveStock,
    ReleaseLine,
    ReturnFromCustomer,
    ShipLine,
    ShipmentKind,
    UpsertItem,
)

DAY = date(2023, 8, 1)
_ids = itertools.count(1)


def _mid() -> str:
    return f"m-{next(_ids)}"


def D(value: str | int) -> Decimal:
    return Decimal(value)


def lot(mfr_lot: str, quantity: str | int, expires_on: date | None = None) -> LotEntry:
    return LotEntry(mfr_lot=mfr_lot, quantity=D(quantity), expires_on=expires_on)


def pick(mfr_lot: str, quantity: str | int, lot_id: str | None = None) -> LotPick:
    return LotPick(mfr_lot=mfr_lot, quantity=D(quantity), lot_id=lot_id)


def item(
    lic: str = "L",
    *,
    track: bool = False,
    serialized: bool = False,
    perishable: bool | None = None,
    next_serial: str | None = None,
    cost: str = "10.00",
) -> UpsertItem:
    return UpsertItem(
        message_id=_mid(),
        lic=lic,
        description=f"item {lic}",
        uom="Each",
        track_mfr_lot=track,
        serialized=serialized,
        perishable=perishable,
        next_serial=next_serial,
        est_unit_cost=D(cost),
    )


def receive(
    lot_id: str,
    quantity: str | int,
    *,
    lic: str = "L",
    office: str = "AI",
    lots: Iterable[LotEntry] = (),
    serials: Iterable[str] = (),
    generate: bool = False,
    cost: str | None = None,
    on: date = DAY,
) -> ReceiveStock:
    doc, _, line = lot_id.partition("/")
    return ReceiveStock(
        message_id=_mid(),
        lic=lic,
        lot_id=lot_id,
        office=office,
        kind="purchase",
        reference=doc,
        received_on=on,
        quantity=D(quantity),
        shipment_id=doc,
        line_no=int(line or 1),
        unit_cost=None if cost is None else D(cost),
        mfr_lots=tuple(lots),
        serials=tuple(serials),
        generate_serials=generate,
    )


def allocate(
    shipment_id: str,
    quantity: str | int,
    *,
    lic: str = "L",
    line_no: int = 1,
    office: str = "AI",
    kind: ShipmentKind = "sale",
    to: str | None = "Customer",
    ship_on: date = DAY,
    lots: Iterable[LotPick] = (),
    serials: Iterable[str] = (),
    serial_lots: Iterable[tuple[str, str]] = (),
    min_shelf_life_days: int = 0,
) -> AllocateLine:
    return AllocateLine(
        message_id=_mid(),
        lic=lic,
        shipment_id=shipment_id,
        line_no=line_no,
        office=office,
        kind=kind,
        counterparty=to,
        ship_on=ship_on,
        quantity=D(quantity),
        lots=tuple(lots),
        serials=tuple(serials),
        serial_lots=tuple(serial_lots),
        min_shelf_life_days=min_shelf_life_days,
    )


def ship(shipment_id: str, *, lic: str = "L", line_no: int = 1) -> ShipLine:
    return ShipLine(message_id=_mid(), lic=lic, shipment_id=shipment_id, line_no=line_no)


def release(shipment_id: str, *, lic: str = "L", line_no: int = 1) -> ReleaseLine:
    return ReleaseLine(message_id=_mid(), lic=lic, shipment_id=shipment_id, line_no=line_no)


def adjust(
    adjustment_id: str,
    kind: AdjustmentKind,
    quantity: str | int,
    *,
    lic: str = "L",
    office: str = "AI",
    lots: Iterable[LotEntry] = (),
    serials: Iterable[str] = (),
    cost: str | None = None,
    on: date = DAY,
) -> AdjustStock:
    return AdjustStock(
        message_id=_mid(),
        lic=lic,
        adjustment_id=adjustment_id,
        office=office,
        kind=kind,
        quantity=D(quantity),
        adjusted_on=on,
        unit_cost=None if cost is None else D(cost),
        lots=tuple(lots),
        serials=tuple(serials),
        reason="test",
    )


def give_back(
    doc: str,
    quantity: str | int,
    *,
    lic: str = "L",
    customer: str | None = "Customer",
    office: str = "AI",
    lots: Iterable[LotPick] = (),
    serials: Iterable[str] = (),
    serial_lots: Iterable[tuple[str, str]] = (),
    on: date = DAY,
) -> ReturnFromCustomer:
    return ReturnFromCustomer(
        message_id=_mid(),
        lic=lic,
        shipment_id=doc,
        line_no=1,
        office=office,
        customer=customer,
        received_on=on,
        quantity=D(quantity),
        lots=tuple(lots),
        serials=tuple(serials),
        serial_lots=tuple(serial_lots),
    )


def quarantine(
    quarantine_id: str = "Q-1",
    *,
    lic: str = "L",
    mfr_lot: str | None = None,
    lot_id: str | None = None,
    office: str | None = None,
    quarantined: bool = True,
    reason: str = "recall",
    on: date = DAY,
    before_receipt: bool = False,
) -> QuarantineStock:
    return QuarantineStock(
        message_id=_mid(),
        lic=lic,
        quarantine_id=quarantine_id,
        quarantined=quarantined,
        quarantined_on=on,
        reason=reason,
        mfr_lot=mfr_lot,
        lot_id=lot_id,
        office=office,
        before_receipt=before_receipt,
    )


class Book:
    """One LIC's state, folded through `decide` by the test."""

    def __init__(self, *commands: Command, lic: str = "L") -> None:
        self.state = LicState.empty(lic)
        for command in commands:
            self.ok(command)

    def ok(self, command: Command) -> tuple[Event, ...]:
        decision = decide(self.state, command)
        assert decision.rejected is None, decision.rejected
        self.state = decision.state
        return decision.events

    def refused(self, command: Command, code: ReasonCode) -> CommandRejected:
        before = self.state
        decision = decide(before, command)
        if isinstance(command, AllocateLine) and before.item and not before.item.locked:
            # R2: a refused shipment line still is a sales order naming the item: it locks.
            assert decision.state.item == replace(before.item, locked=True)
            self.state = decision.state
        else:
            assert decision.state is before
        rejection = decision.rejected
        assert rejection is not None, f"expected {code}, got {decision.events}"
        assert rejection.reason_code == code, rejection
        assert len(decision.events) == 1
        return rejection

    def lot(self, lot_id: str) -> tuple[Decimal, Decimal, Decimal]:
        """(on_hand, allocated, used) of an inventory lot."""
        row = self.state.lots[lot_id]
        return row.on_hand, row.allocated, row.used

    def mfr(self, lot_id: str, mfr_lot: str) -> tuple[Decimal, Decimal, Decimal]:
        row = self.state.mfr_lots[(lot_id, mfr_lot)]
        return row.on_hand, row.allocated, row.used

    def status(self, serial: str) -> str:
        live = [u for u in self.state.units.values() if u.serial == serial]
        return ",".join(sorted(u.status.value for u in live))


def holds_stock_at(state: LicState, office: str) -> bool:
    """Whether held receipt or return lines put stock at `office`: a new sale line without
    picks, short of free stock, then waits for them (`domain/waiting.py`)."""
    return any(
        state.lots[p.lot_id].office == office for hold in state.holds.values() for p in hold.picks
    )


def waiting_at(state: LicState, office: str) -> bool:
    """Whether sale lines at `office` wait for held lines: a new one there queues behind them."""
    return any(line.command.office == office for line in state.waiting.values())


def waits(decision_events: tuple[Event, ...]) -> bool:
    """Whether the decision's answer is that the line waits for held lines."""
    return bool(decision_events) and isinstance(decision_events[-1], LineWaiting)


def hold(book: Book, command: ReceiveStock | ReturnFromCustomer) -> LineHeld:
    """Send `command` held (one line of a document with several): it is answered `LineHeld`."""
    (event,) = book.ok(replace(command, hold=True))
    assert isinstance(event, LineHeld)
    return event


def settle(kind: type[ConfirmHeld] | type[CancelHeld], held: LineHeld) -> ConfirmHeld | CancelHeld:
    """Receiving's confirmation or cancellation of a held line."""
    return kind(message_id=f"{held.command_id}/settle", lic=held.lic, command_id=held.command_id)
