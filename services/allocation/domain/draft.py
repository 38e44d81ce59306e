"""A copy-on-write working copy of one `LicState`.

Rules read and write a `Draft`; `decide()` freezes it into the new state only when the whole
command succeeded, so a refusal half-way leaves the input state untouched (and it never is
mutated: each row dict is copied on its first write).
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
    LotStatus,
    MfrLot,
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
        self._by_serial: dict[str, list[tuple[str, str]]] | None = None
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

    def put_mfr_lot(self, row: MfrLot) -> None:
        if self._own("mfr_lots"):
            self.mfr_lots = dict(self.mfr_lots)
        self.mfr_lots[(row.lot_id, row.mfr_lot)] = row

    def put_unit(self, unit: Unit) -> None:
        if self._own("units"):
            self.units = dict(self.units)
        if unit.key not in self.units and self._by_serial is not None:
            self._by_serial.setdefault(unit.serial, []).append(unit.key)
        self.units[unit.key] = unit

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
        new = replace(
            lot,
            on_hand=lot.on_hand + on_hand,
            allocated=lot.allocated + allocated,
            used=lot.used + used,
        )
        _check(new.lot_id, new.on_hand, new.allocated, new.used)
        status: LotStatus = "closed" if new.on_hand == 0 else "open"
        if status != lot.status:
            (self.closed if status == "closed" else self.reopened).append(lot_id)
        self.put_lot(replace(new, status=status))
        if mfr_lot is not None:
            row = self.mfr_lots[(lot_id, mfr_lot)]
            changed = replace(
                row,
                on_hand=row.on_hand + on_hand,
                allocated=row.allocated + allocated,
                used=row.used + used,
            )
            _check(f"{lot_id}/{mfr_lot}", changed.on_hand, changed.allocated, changed.used)
            self.put_mfr_lot(changed)

    # -- reads --------------------------------------------------------------------------------

    def units_with_serial(self, serial: str) -> list[Unit]:
        if self._by_serial is None:
            index: dict[str, list[tuple[str, str]]] = {}
            for key in self.units:
                index.setdefault(key[0], []).append(key)
            self._by_serial = index
        return [self.units[key] for key in self._by_serial.get(serial, ())]

    def serial_in_stock(self, serial: str) -> Unit | None:
        return next((u for u in self.units_with_serial(serial) if u.in_stock), None)

    def lots_at(self, office: str) -> list[InventoryLot]:
        """The office's inventory lots, oldest first (FIFO order)."""
        return sorted((lot for lot in self.lots.values() if lot.office == office), key=_seq)

    def mfr_lots_at(self, office: str) -> list[MfrLot]:
        return [row for row in self.mfr_lots.values() if self.lots[row.lot_id].office == office]

    def next_seq(self) -> int:
        return max((lot.seq for lot in self.lots.values()), default=0) + 1


def _seq(lot: InventoryLot) -> int:
    return lot.seq


def _check(name: str, on_hand: Decimal, allocated: Decimal, used: Decimal) -> None:
    if on_hand < 0 or allocated < 0 or allocated > on_hand or used < 0:
        raise BrokenInvariant(
            f"{name}: on_hand={on_hand} allocated={allocated} used={used} is impossible"
        )
