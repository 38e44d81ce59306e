"""What a decision moved, as the services' pure cores see it (no pydantic here).

Receiving and shipping both read allocation's answers; this is their one value type for the
movements those answers carry, and `moved()` the one translation from the wire.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class Moved:
    """Units of one inventory lot (and manufacturer lot or serial) a decision moved."""

    lot_id: str | None
    quantity: Decimal
    unit_cost: Decimal
    mfr_lot: str | None = None
    expires_on: date | None = None
    serial: str | None = None


class MovementValues(Protocol):
    """Anything holding a movement's values: a domain movement, or a wire one read back."""

    @property
    def lot_id(self) -> str | None: ...
    @property
    def mfr_lot(self) -> str | None: ...
    @property
    def expires_on(self) -> date | None: ...
    @property
    def serial(self) -> str | None: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def unit_cost(self) -> Decimal: ...


def moved(movements: Iterable[MovementValues]) -> tuple[Moved, ...]:
    """The wire `Movement`s of an event as `Moved` values."""
    return tuple(
        Moved(
            lot_id=m.lot_id,
            mfr_lot=m.mfr_lot,
            expires_on=m.expires_on,
            serial=m.serial,
            quantity=m.quantity,
            unit_cost=m.unit_cost,
        )
        for m in movements
    )
