"""An item's stock at one office as the read API reports it (§4, R9, R12).

Allocation takes stock only from inventory lots at the shipment's office (R9); stock that no
lot holds (R12's unallocated stock, from adjusting a plain item up beyond what its lots can
take) is physically there but cannot be allocated or shipped. So:

- on hand = current quantity of the office's lots + unallocated stock (the physical count);
- available = current quantity of the lots − allocated − stock held by a quarantine and not
  allocated (what a sale can still get: allocation passes over held stock);
- quarantined = the lots' stock on hand a quarantine holds (allocated or not: a line allocated
  before the quarantine keeps its allocation but cannot ship);
- unallocated stock is reported on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.ledger.domain.model import ZERO


@dataclass(frozen=True, slots=True, kw_only=True)
class StockAtOffice:
    office: str
    in_lots: Decimal
    allocated: Decimal = ZERO
    unallocated: Decimal = ZERO
    quarantined: Decimal = ZERO
    quarantined_allocated: Decimal = ZERO
    """Of `quarantined`, what is allocated (so counted in `allocated` already)."""

    @property
    def on_hand(self) -> Decimal:
        return self.in_lots + self.unallocated

    @property
    def available(self) -> Decimal:
        return self.in_lots - self.allocated - (self.quarantined - self.quarantined_allocated)
