"""A copy-on-write working copy of one `LicState`.

Rules read and write a `Draft`. `decide()` freezes it into the new state only when the command
succeeded, so a refusal half-way leaves the input untouched; `decide_all()` keeps one draft for
a whole batch and rolls a refused command back from the journal. The input state is never
mutated: each row dict, and each dict of the derived `StockIndex`, is copied on first write.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from services.allocation.domain.model import (
    ZERO,
    Allocation,
    CustomerShipment,
    InventoryLot,
    Item,
    LicState,
    MfrLot,
    StockIndex,
    Unit,
)


class BrokenInvariant(Exception):
    """A row would hold impossible quantities: a bug in the rules, never a business refusal."""


_MISSING: Any = object()

Mark = tuple[int, "Item | None", int]
"""A savepoint: journal length, item and last lot seq when it was taken."""


class Draft:
    """Working copy of one LIC. Each row dict (and each dict of the derived index) is copied on
    its first write; after that, writes go to the copy and into a journal, so a batch can
    roll back one refused command without copying the state per command."""

    def __init__(self, state: LicState) -> None:
        self.lic = state.lic
        self.item: Item | None = state.item
        self.lots = state.lots
        self.mfr_lots = state.mfr_lots
        self.units = state.units
        self.allocations = state.allocations
        self.shipments = state.shipments
        self.unallocated = state.unallocated
        index = state.index or build_index(state)
        self.in_stock_keys = index.in_stock
        self.stocked = index.stocked
        self.mfr_names = index.mfr_names
        self.last_seq = index.last_seq
        self._owned: set[str] = set()
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
            index=StockIndex(
                in_stock=self.in_stock_keys,
                stocked=self.stocked,
                mfr_names=self.mfr_names,
                last_seq=self.last_seq,
            ),
        )

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

    def _write(self, name: str, key: Any, value: Any) -> None:
        """Set (or, with `_MISSING`, delete) one entry of a table, journaled."""
        if name not in self._owned:
            self._owned.add(name)
            setattr(self, name, dict(getattr(self, name)))
        table = getattr(self, name)
        self._journal.append((name, key, table.get(key, _MISSING)))
        if value is _MISSING:
            del table[key]
        else:
            table[key] = value

    def put_lot(self, lot: InventoryLot) -> None:
        self._write("lots", lot.lot_id, lot)
        self.last_seq = max(self.last_seq, lot.seq)
        if (lot.lot_id in self.stocked) != (lot.on_hand > 0):
            self._write("stocked", lot.lot_id, lot.office if lot.on_hand > 0 else _MISSING)

    def put_mfr_lot(self, row: MfrLot) -> None:
        key = (row.lot_id, row.mfr_lot)
        if key not in self.mfr_lots:
            names = (*self.mfr_names.get(row.lot_id, ()), row.mfr_lot)
            self._write("mfr_names", row.lot_id, names)
        self._write("mfr_lots", key, row)

    def put_unit(self, unit: Unit) -> None:
        self._write("units", unit.key, unit)
        if unit.in_stock:
            self._write("in_stock_keys", unit.serial, unit.key)
        elif self.in_stock_keys.get(unit.serial) == unit.key:
            self._write("in_stock_keys", unit.serial, _MISSING)

    def put_allocation(self, allocation: Allocation) -> None:
        self._write("allocations", allocation.key, allocation)

    def put_shipment(self, row: CustomerShipment) -> None:
        self._write("shipments", row.key, row)

    def set_unallocated(self, office: str, quantity: Decimal) -> None:
        if quantity or office in self.unallocated:
            self._write("unallocated", office, quantity if quantity else _MISSING)

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
    ) -> None:
        """Apply deltas to an inventory lot and its mfr lot; close or reopen the lot (R7)."""
        lot = self.lots[lot_id]
        new = lot.moved(on_hand, allocated, used)
        _check(new.lot_id, new.on_hand, new.allocated, new.used)
        if new.status != lot.status:
            (self.closed if new.status == "closed" else self.reopened).append(lot_id)
        self.put_lot(new)
        if mfr_lot is not None:
            row = self.mfr_lots[(lot_id, mfr_lot)].moved(on_hand, allocated, used)
            _check(f"{lot_id}/{mfr_lot}", row.on_hand, row.allocated, row.used)
            self.put_mfr_lot(row)

    # -- reads --------------------------------------------------------------------------------

    def units_with_serial(self, serial: str) -> list[Unit]:
        """Every unit row of a serial, in stock or not (a scan: for the rarer paths)."""
        return [unit for key, unit in self.units.items() if key[0] == serial]

    def in_stock(self) -> list[Unit]:
        """Units AVAILABLE or ALLOCATED."""
        return [self.units[key] for key in self.in_stock_keys.values()]

    def serial_in_stock(self, serial: str) -> Unit | None:
        key = self.in_stock_keys.get(serial)
        return None if key is None else self.units[key]

    def lots_at(self, office: str, *, stocked: bool = False) -> list[InventoryLot]:
        """The office's inventory lots (only those with stock, if `stocked`), oldest first."""
        if stocked:
            lots = [self.lots[i] for i, where in self.stocked.items() if where == office]
        else:
            lots = [lot for lot in self.lots.values() if lot.office == office]
        return sorted(lots, key=_seq)

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
        stocked={lot.lot_id: lot.office for lot in state.lots.values() if lot.on_hand > 0},
        mfr_names=names,
        last_seq=max((lot.seq for lot in state.lots.values()), default=0),
    )


def _seq(lot: InventoryLot) -> int:
    return lot.seq


def _check(name: str, on_hand: Decimal, allocated: Decimal, used: Decimal) -> None:
    if on_hand < 0 or allocated < 0 or allocated > on_hand or used < 0:
        raise BrokenInvariant(
            f"{name}: on_hand={on_hand} allocated={allocated} used={used} is impossible"
        )
