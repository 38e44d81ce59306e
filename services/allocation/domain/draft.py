"""A copy-on-write working copy of one `LicState`.

Rules read and write a `Draft`. `decide()` freezes it into the new state only when the command
succeeded, so a refusal half-way leaves the input untouched; `decide_all()` keeps one draft for
a whole batch and rolls a refused command back from the journal. The input state is never
mutated: each row dict, and each dict of the derived `StockIndex`, is copied on first write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from services.allocation.domain.model import (
    ZERO,
    Allocation,
    CustomerShipment,
    HeldLine,
    InventoryLot,
    Item,
    LicState,
    MfrLot,
    Pick,
    Quarantine,
    SerialStatus,
    StockIndex,
    Touched,
    UnallocatedStock,
    Unit,
    WaitingLine,
)

# The journaled tables that are rows (the rest of the journal is the derived index).
ROW_TABLES = (
    "lots",
    "mfr_lots",
    "units",
    "allocations",
    "shipments",
    "unallocated",
    "holds",
    "quarantines",
    "waiting",
)


class BrokenInvariant(Exception):
    """A row would hold impossible quantities: a bug in the rules, never a business refusal."""


_MISSING: Any = object()

# Enum members looked up on the class cost a metaclass call each; units move by the thousand.
_AVAILABLE = SerialStatus.AVAILABLE
_ALLOCATED = SerialStatus.ALLOCATED
_HELD = SerialStatus.HELD

Mark = tuple[int, "Item | None", int]
"""A savepoint: journal length, item and last lot seq when it was taken."""


class Draft:
    """Working copy of one LIC. Each row dict (and each dict of the derived index) is copied on
    its first write; after that, writes go to the copy and into a journal, so a batch can
    roll back one refused command without copying the state per command."""

    def __init__(self, state: LicState, lots_elsewhere: Mapping[str, str] | None = None) -> None:
        self.lic = state.lic
        # Inventory lot ids are unique across items: those other LICs hold (id -> LIC).
        self.lots_elsewhere: Mapping[str, str] = lots_elsewhere or {}
        self.item: Item | None = state.item
        self.lots = state.lots
        self.mfr_lots = state.mfr_lots
        self.units = state.units
        self.allocations = state.allocations
        self.shipments = state.shipments
        self.unallocated = state.unallocated
        self.holds = state.holds
        self.quarantines = state.quarantines
        self.waiting = state.waiting
        index = state.index or build_index(state)
        self.in_stock_keys = index.in_stock
        self.stocked = index.stocked
        self.mfr_names = index.mfr_names
        self.last_seq = index.last_seq
        self._owned: dict[str, dict[Any, Any]] = {}  # tables copied for writing, by name
        self._journal: list[tuple[str, Any, Any]] = []
        self.closed: list[str] = []
        self.reopened: list[str] = []

    def freeze(self) -> LicState:
        return LicState(
            lic=self.lic,
            item=self.item,
            lots=self.lots,
            mfr_lots=self.mfr_lots,
            units=self.units,
            allocations=self.allocations,
            shipments=self.shipments,
            unallocated=self.unallocated,
            holds=self.holds,
            quarantines=self.quarantines,
            waiting=self.waiting,
            index=StockIndex(
                in_stock=self.in_stock_keys,
                stocked=self.stocked,
                mfr_names=self.mfr_names,
                last_seq=self.last_seq,
            ),
        )

    def touched(self) -> Touched:
        """The keys of each row table written or deleted since the draft was made. A rollback
        pops its entries off the journal, so a refused command leaves none behind."""
        keys: dict[str, dict[Any, None]] = {name: {} for name in ROW_TABLES}
        for name, key, _ in self._journal:
            table = keys.get(name)
            if table is not None:
                table[key] = None
        return {name: tuple(table) for name, table in keys.items()}

    # -- savepoints ---------------------------------------------------------------------------

    def savepoint(self) -> Mark:
        self.closed, self.reopened = [], []
        return (len(self._journal), self.item, self.last_seq)

    def rollback(self, mark: Mark) -> None:
        """Undo every write since `mark`, newest first."""
        length, self.item, self.last_seq = mark
        while len(self._journal) > length:
            name, key, before = self._journal.pop()
            table = getattr(self, name)
            if before is _MISSING:
                del table[key]
            else:
                table[key] = before

    # -- writes -------------------------------------------------------------------------------

    def _table(self, name: str) -> dict[Any, Any]:
        """The table to write: the draft's own copy, made on the first write."""
        table = self._owned.get(name)
        if table is None:
            table = self._owned[name] = dict(getattr(self, name))
            setattr(self, name, table)
        return table

    def _write(self, name: str, key: Any, value: Any) -> None:
        """Set (or, with `_MISSING`, delete) one entry of a table, journaled."""
        table = self._owned.get(name)  # (`_table` inlined for a table already copied)
        if table is None:
            table = self._table(name)
        self._journal.append((name, key, table.get(key, _MISSING)))
        if value is _MISSING:
            del table[key]
        else:
            table[key] = value

    def put_lot(self, lot: InventoryLot) -> None:
        self._write("lots", lot.lot_id, lot)
        if lot.seq > self.last_seq:
            self.last_seq = lot.seq
        stocked = lot.on_hand > lot.held  # a held receipt's lot (held whole) is not
        if (lot.lot_id in self.stocked) != stocked:
            self._write("stocked", lot.lot_id, lot.office if stocked else _MISSING)

    def put_mfr_lot(self, row: MfrLot) -> None:
        key = (row.lot_id, row.mfr_lot)
        if key not in self.mfr_lots:
            names = (*self.mfr_names.get(row.lot_id, ()), row.mfr_lot)
            self._write("mfr_names", row.lot_id, names)
        self._write("mfr_lots", key, row)

    def put_unit(self, unit: Unit) -> None:
        self.put_units((unit,))

    def put_units(self, units: Iterable[Unit]) -> None:
        """`put_unit` each, in order (a line moves a unit per serial: lookups hoisted)."""
        table = self._table("units")
        journal = self._journal
        for unit in units:
            serial = unit.serial
            key = (serial, unit.lot_id)
            journal.append(("units", key, table.get(key, _MISSING)))
            table[key] = unit
            held = self.in_stock_keys.get(serial)
            if unit.status is _AVAILABLE or unit.status is _ALLOCATED or unit.status is _HELD:
                if held != key:  # allocating or releasing a unit leaves the index as it is
                    self._write("in_stock_keys", serial, key)
            elif held == key:
                self._write("in_stock_keys", serial, _MISSING)

    def put_allocation(self, allocation: Allocation) -> None:
        self._write("allocations", allocation.key, allocation)

    def put_shipment(self, row: CustomerShipment) -> None:
        self._write("shipments", row.key, row)

    def set_unallocated(self, office: str, quantity: Decimal, value: Decimal) -> None:
        """The office's unallocated stock is now `quantity` worth `value`; none drops its row."""
        if quantity < ZERO or value < ZERO or (not quantity and value):
            raise BrokenInvariant(f"unallocated stock at {office}: {quantity} worth {value}")
        if quantity:
            row = UnallocatedStock(office=office, quantity=quantity, value=value)
            self._write("unallocated", office, row)
        elif office in self.unallocated:
            self._write("unallocated", office, _MISSING)

    def put_hold(self, hold: HeldLine) -> None:
        self._write("holds", hold.command_id, hold)

    def drop_hold(self, command_id: str) -> None:
        self._write("holds", command_id, _MISSING)

    def put_quarantine(self, rule: Quarantine) -> None:
        self._write("quarantines", rule.key, rule)

    def drop_quarantine(self, key: tuple[str, str, str]) -> None:
        self._write("quarantines", key, _MISSING)

    def put_waiting(self, line: WaitingLine) -> None:
        self._write("waiting", line.command.message_id, line)

    def drop_waiting(self, command_id: str) -> None:
        self._write("waiting", command_id, _MISSING)

    def delete_lot(self, lot_id: str) -> None:
        """Remove an inventory lot with its mfr lots and units: a cancelled held receipt's,
        which nothing else could have touched."""
        lot = self.lots[lot_id]
        for name in self.mfr_names.get(lot_id, ()):
            self._write("mfr_lots", (lot_id, name), _MISSING)
        if lot_id in self.mfr_names:
            self._write("mfr_names", lot_id, _MISSING)
        for key in [key for key in self.units if key[1] == lot_id]:
            if self.in_stock_keys.get(key[0]) == key:
                self._write("in_stock_keys", key[0], _MISSING)
            self._write("units", key, _MISSING)
        if lot_id in self.stocked:
            self._write("stocked", lot_id, _MISSING)
        self._write("lots", lot_id, _MISSING)
        if lot.seq == self.last_seq:  # as a reload would count: the highest seq left
            self.last_seq = max((other.seq for other in self.lots.values()), default=0)

    def lock_item(self) -> None:
        if self.item is not None and not self.item.locked:
            self.item = replace(self.item, locked=True)

    # -- quantity moves -----------------------------------------------------------------------

    def change(
        self,
        lot_id: str,
        mfr_lot: str | None,
        *,
        on_hand: Decimal = ZERO,
        allocated: Decimal = ZERO,
        used: Decimal = ZERO,
        held: Decimal = ZERO,
    ) -> None:
        """Apply deltas to an inventory lot and its mfr lot; close or reopen the lot (R7)."""
        self._change_lot(lot_id, on_hand, allocated, used, held)
        if mfr_lot is not None:
            self._change_mfr_lot(lot_id, mfr_lot, on_hand, allocated, used, held)

    def move(
        self,
        picks: Sequence[Pick],
        *,
        on_hand: int = 0,
        allocated: int = 0,
        used: int = 0,
        held: int = 0,
    ) -> None:
        """`change()` by every pick's quantity with these signs (−1, 0 or +1), in one write per
        lot and mfr lot however many picks name it (a serialized line has a pick per unit).

        Same rows, checks and order of Closed / reopened lots as changing pick by pick: every
        pick moves on hand the same way, so a lot closes at its last pick and reopens at its
        first, and the checks hold in between exactly when they hold at the end."""
        if len(picks) == 1:  # the common case of plain and lot-tracked lines
            p = picks[0]
            q = p.quantity
            self.change(
                p.lot_id,
                p.mfr_lot,
                on_hand=_signed(q, on_hand),
                allocated=_signed(q, allocated),
                used=_signed(q, used),
                held=_signed(q, held),
            )
            return
        lots: dict[str, Decimal] = {}
        rows: dict[tuple[str, str], Decimal] = {}
        turn: dict[str, int] = {}  # the pick at which one-by-one changes would close or reopen
        for i, p in enumerate(picks):
            before = lots.get(p.lot_id)
            lots[p.lot_id] = p.quantity if before is None else before + p.quantity
            if before is None or on_hand < 0:
                turn[p.lot_id] = i
            if p.mfr_lot is not None:
                key = (p.lot_id, p.mfr_lot)
                row = rows.get(key)
                rows[key] = p.quantity if row is None else row + p.quantity
        for lot_id in sorted(lots, key=turn.__getitem__):
            q = lots[lot_id]
            self._change_lot(
                lot_id,
                _signed(q, on_hand),
                _signed(q, allocated),
                _signed(q, used),
                _signed(q, held),
            )
        for (lot_id, mfr_lot), q in rows.items():
            self._change_mfr_lot(
                lot_id,
                mfr_lot,
                _signed(q, on_hand),
                _signed(q, allocated),
                _signed(q, used),
                _signed(q, held),
            )

    def _change_lot(
        self, lot_id: str, on_hand: Decimal, allocated: Decimal, used: Decimal, held: Decimal
    ) -> None:
        lot = self.lots[lot_id]
        new = lot.moved(on_hand, allocated, used, held)
        _check(new.lot_id, new.on_hand, new.allocated, new.used, new.held)
        if new.status != lot.status:
            (self.closed if new.status == "closed" else self.reopened).append(lot_id)
        self.put_lot(new)

    def _change_mfr_lot(
        self,
        lot_id: str,
        mfr_lot: str,
        on_hand: Decimal,
        allocated: Decimal,
        used: Decimal,
        held: Decimal,
    ) -> None:
        row = self.mfr_lots[(lot_id, mfr_lot)].moved(on_hand, allocated, used, held)
        _check(f"{lot_id}/{mfr_lot}", row.on_hand, row.allocated, row.used, row.held)
        self.put_mfr_lot(row)

    # -- reads --------------------------------------------------------------------------------

    def units_with_serial(self, serial: str) -> list[Unit]:
        """Every unit row of a serial, in stock or not (a scan: for the rarer paths)."""
        return [unit for key, unit in self.units.items() if key[0] == serial]

    def in_stock(self) -> list[Unit]:
        """Units AVAILABLE, ALLOCATED or HELD (`Unit.in_stock`)."""
        return [self.units[key] for key in self.in_stock_keys.values()]

    def serial_in_stock(self, serial: str) -> Unit | None:
        key = self.in_stock_keys.get(serial)
        return None if key is None else self.units[key]

    def lots_at(self, office: str, *, stocked: bool = False) -> list[InventoryLot]:
        """The office's inventory lots (only those with stock, if `stocked`), oldest first by
        `InventoryLot.arrival`."""
        if stocked:
            lots = [self.lots[i] for i, where in self.stocked.items() if where == office]
        else:
            lots = [lot for lot in self.lots.values() if lot.office == office]
        return sorted(lots, key=_arrival)

    def stocked_arrivals(self, office: str) -> dict[str, tuple[date, int]]:
        """lot_id -> `arrival` of the office's inventory lots with stock (unordered: no sort)."""
        lots = self.lots
        return {i: lots[i].arrival for i, where in self.stocked.items() if where == office}

    def mfr_lots_at(self, office: str, *, stocked: bool = False) -> list[MfrLot]:
        """The office's manufacturer lots (only in lots with stock, if `stocked`)."""
        return [
            self.mfr_lots[(lot.lot_id, name)]
            for lot in self.lots_at(office, stocked=stocked)
            for name in self.mfr_names.get(lot.lot_id, ())
        ]

    def next_seq(self) -> int:
        return self.last_seq + 1


def build_index(state: LicState) -> StockIndex:
    """The derived lookups of a freshly loaded state (once per load, not per decision)."""
    names: dict[str, tuple[str, ...]] = {}
    for lot_id, name in state.mfr_lots:
        names[lot_id] = (*names.get(lot_id, ()), name)
    return StockIndex(
        in_stock={key[0]: key for key, unit in state.units.items() if unit.in_stock},
        stocked={lot.lot_id: lot.office for lot in state.lots.values() if lot.on_hand > lot.held},
        mfr_names=names,
        last_seq=max((lot.seq for lot in state.lots.values()), default=0),
    )


def _signed(quantity: Decimal, sign: int) -> Decimal:
    return quantity if sign > 0 else -quantity if sign < 0 else ZERO


def _arrival(lot: InventoryLot) -> tuple[date, int]:
    return lot.arrival


def _check(name: str, on_hand: Decimal, allocated: Decimal, used: Decimal, held: Decimal) -> None:
    if (
        on_hand < ZERO
        or allocated < ZERO
        or held < ZERO
        or allocated + held > on_hand
        or used < ZERO
    ):
        raise BrokenInvariant(
            f"{name}: on_hand={on_hand} allocated={allocated} used={used} held={held} is impossible"
        )
