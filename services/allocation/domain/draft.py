"""A copy-on-write working copy of one `LicState`.

Rules read and write a `Draft`; `decide()` freezes it into the new state only when the whole
command succeeded, so a refusal half-way leaves the input state untouched (and it never is
mutated: each row dict, and each dict of the derived `StockIndex`, is copied on its first write).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

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


class Draft:
    def __init__(self, state: LicState) -> None:
        self.lic = state.lic
        self.item: Item | None = state.item
        self.lots = state.lots
        self.mfr_lots = state.mfr_lots
        self.units = state.units
        self.allocations = state.allocations
        self.shipments = state.shipments
        self.unallocated = state.unallocated
        self._owned: set[str] = set()
        self._index = state.index or build_index(state)
        self._in_stock = self._index.in_stock
        self._stocked = self._index.stocked
        self._mfr_names = self._index.mfr_names
        self._last_seq = self._index.last_seq
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
                in_stock=self._in_stock,
                stocked=self._stocked,
                mfr_names=self._mfr_names,
                last_seq=self._last_seq,
            ),
        )

    # -- writes (copy each dict once, on its first write) -------------------------------------

    def _own(self, name: str) -> bool:
        first = name not in self._owned
        self._owned.add(name)
        return first

    def put_lot(self, lot: InventoryLot) -> None:
        if self._own("lots"):
            self.lots = dict(self.lots)
        self.lots[lot.lot_id] = lot
        self._last_seq = max(self._last_seq, lot.seq)
        if (lot.lot_id in self._stocked) != (lot.on_hand > 0):
            if self._own("stocked"):
                self._stocked = dict(self._stocked)
            if lot.on_hand > 0:
                self._stocked[lot.lot_id] = lot.office
            else:
                del self._stocked[lot.lot_id]

    def put_mfr_lot(self, row: MfrLot) -> None:
        if self._own("mfr_lots"):
            self.mfr_lots = dict(self.mfr_lots)
        key = (row.lot_id, row.mfr_lot)
        if key not in self.mfr_lots:
            if self._own("mfr_names"):
                self._mfr_names = dict(self._mfr_names)
            self._mfr_names[row.lot_id] = (*self._mfr_names.get(row.lot_id, ()), row.mfr_lot)
        self.mfr_lots[key] = row

    def put_unit(self, unit: Unit) -> None:
        if self._own("units"):
            self.units = dict(self.units)
        self.units[unit.key] = unit
        if unit.in_stock or self._in_stock.get(unit.serial) == unit.key:
            if self._own("in_stock"):
                self._in_stock = dict(self._in_stock)
            if unit.in_stock:
                self._in_stock[unit.serial] = unit.key
            else:
                del self._in_stock[unit.serial]

    def put_allocation(self, allocation: Allocation) -> None:
        if self._own("allocations"):
            self.allocations = dict(self.allocations)
        self.allocations[allocation.key] = allocation

    def put_shipment(self, row: CustomerShipment) -> None:
        if self._own("shipments"):
            self.shipments = dict(self.shipments)
        self.shipments[row.key] = row

    def set_unallocated(self, office: str, quantity: Decimal) -> None:
        if self._own("unallocated"):
            self.unallocated = dict(self.unallocated)
        if quantity:
            self.unallocated[office] = quantity
        else:
            self.unallocated.pop(office, None)

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
        return [self.units[key] for key in self._in_stock.values()]

    def serial_in_stock(self, serial: str) -> Unit | None:
        key = self._in_stock.get(serial)
        return None if key is None else self.units[key]

    def lots_at(self, office: str, *, stocked: bool = False) -> list[InventoryLot]:
        """The office's inventory lots (only those with stock, if `stocked`), oldest first."""
        if stocked:
            lots = [self.lots[i] for i, where in self._stocked.items() if where == office]
        else:
            lots = [lot for lot in self.lots.values() if lot.office == office]
        return sorted(lots, key=_seq)

    def mfr_lots_at(self, office: str, *, stocked: bool = False) -> list[MfrLot]:
        """The office's manufacturer lots (only in lots with stock, if `stocked`)."""
        return [
            self.mfr_lots[(lot.lot_id, name)]
            for lot in self.lots_at(office, stocked=stocked)
            for name in self._mfr_names.get(lot.lot_id, ())
        ]

    def next_seq(self) -> int:
        return self._last_seq + 1


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
