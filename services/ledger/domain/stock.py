"""An item's stock at one office as the read API reports it (§4, R9, R12).

Allocation takes stock only from inventory lots at the shipment's office (R9); stock that no
lot holds (R12's unallocated stock, from adjusting a plain item up beyond what its lots can
take) is physically there but cannot be allocated or shipped. So:

- on hand = current quantity of the office's lots + unallocated stock (the physical count);
- available = current quantity of the lots − allocated (what a shipment can still get);
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

    @property
    def on_hand(self) -> Decimal:
        return self.in_lots + self.unallocated

    @property
    def available(self) -> Decimal:
        return self.in_lots - self.allocated
