"""Lot valuation as the inventory-lots seed shows it (R7).

A purchase lot shows Ordered / Purchased, Ordered / Received, Accrued Inventory and Current
Inventory, each a quantity and its value at the lot's unit cost (the actual cost once the PO is
closed, else the estimate; a reopened PO's lots keep the actual cost last applied, not final
until it closes again):

- purchased remaining = ordered − purchased; received remaining = ordered − received;
- accrued = received − purchased; current = received − used.

Accrued inventory is stock received that no bill has been entered for yet: a purchase lot's
alone. A production or adjustment (beginning balance) lot was bought from no one and will never
be billed, so it accrues nothing (0), or every beginning balance would count as owed forever.

Ordered is unknown (None) until a `PurchaseOrderUpdated` names it; purchased is 0 until then.

A PO line received in several shipments (or several lines of one) has several purchase lots,
but `PurchaseOrderUpdated` gives ordered and purchased for the whole line. The seed shows them
"of the inventory lot", and a lot's accrued inventory is its own received − purchased, so each
lot shows its share (`share_po_line`): in receipt order, each lot takes what it received out of
what is left of the line, and the latest lot takes all that is left (what is still to be
received or was invoiced ahead of receipt). A line received in one lot shows the whole line, and
the lots' ordered, purchased and accrued always add up to the line's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from services.ledger.domain.model import ZERO, Delta, LotKind, LotRow, cost_of


@dataclass(frozen=True, slots=True, kw_only=True)
class LotFigures:
    """The quantities and costs a valuation is computed from."""

    received_qty: Decimal
    used_qty: Decimal = ZERO
    allocated_qty: Decimal = ZERO
    est_unit_cost: Decimal
    act_unit_cost: Decimal | None = None
    ordered_qty: Decimal | None = None
    purchased_qty: Decimal | None = None
    po_reopened: bool = False
    """The lot's PO was reopened after a closing applied its actual cost (R16)."""
    kind: LotKind = "purchase"
    quarantined_qty: Decimal = ZERO
    """Its stock on hand a quarantine holds, allocated or not (a sale takes none of it)."""
    quarantined_allocated_qty: Decimal = ZERO
    """Of that, what is allocated (in `allocated_qty` already)."""

    @classmethod
    def of(cls, lot: LotRow) -> LotFigures:
        return cls(
            received_qty=lot.received_qty,
            est_unit_cost=lot.est_unit_cost,
            act_unit_cost=lot.act_unit_cost,
            kind=lot.kind,
        )

    @property
    def unit_cost(self) -> Decimal:
        return self.est_unit_cost if self.act_unit_cost is None else self.act_unit_cost

    def plus(self, delta: Delta) -> LotFigures:
        return replace(
            self,
            used_qty=self.used_qty + delta.used,
            allocated_qty=self.allocated_qty + delta.allocated,
        )


@dataclass(frozen=True, slots=True)
class PoShare:
    """One lot's share of its PO line's ordered and purchased quantities (None: not known)."""

    ordered_qty: Decimal | None
    purchased_qty: Decimal | None


def share_po_line(
    ordered: Decimal | None, purchased: Decimal | None, received: Sequence[Decimal]
) -> list[PoShare]:
    """Each lot's share of a PO line, `received` being the line's lots' received quantities in
    receipt order (see the module docstring)."""
    return [
        PoShare(o, p)
        for o, p in zip(_share(ordered, received), _share(purchased, received), strict=True)
    ]


def _share(total: Decimal | None, received: Sequence[Decimal]) -> list[Decimal | None]:
    if total is None:
        return [None] * len(received)
    shares: list[Decimal | None] = []
    left = total
    for n, quantity in enumerate(received, 1):
        share = left if n == len(received) else max(ZERO, min(quantity, left))
        shares.append(share)
        left -= share
    return shares


@dataclass(frozen=True, slots=True)
class Figure:
    quantity: Decimal
    value: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Valuation:
    unit_cost: Decimal
    cost_is_final: bool
    ordered: Figure | None
    purchased: Figure
    purchased_remaining: Figure | None
    received: Figure
    received_remaining: Figure | None
    accrued: Figure
    used: Figure
    current: Figure
    allocated: Figure
    available: Figure
    quarantined: Figure

    @property
    def status(self) -> str:
        """Open while stock remains, Closed when it is all used (R7)."""
        return "open" if self.current.quantity > 0 else "closed"


def value(lot: LotFigures) -> Valuation:
    """The seed's sections for one lot."""
    cost = lot.unit_cost

    def at(quantity: Decimal) -> Figure:
        return Figure(quantity, cost_of(quantity, cost))

    purchased = lot.purchased_qty if lot.purchased_qty is not None else ZERO
    ordered = lot.ordered_qty
    current = lot.received_qty - lot.used_qty
    accrued = lot.received_qty - purchased if lot.kind == "purchase" else ZERO
    free_held = lot.quarantined_qty - lot.quarantined_allocated_qty  # no sale may take it
    return Valuation(
        unit_cost=cost,
        cost_is_final=lot.act_unit_cost is not None and not lot.po_reopened,
        ordered=None if ordered is None else at(ordered),
        purchased=at(purchased),
        purchased_remaining=None if ordered is None else at(ordered - purchased),
        received=at(lot.received_qty),
        received_remaining=None if ordered is None else at(ordered - lot.received_qty),
        accrued=at(accrued),
        used=at(lot.used_qty),
        current=at(current),
        allocated=at(lot.allocated_qty),
        available=at(current - lot.allocated_qty - free_held),
        quarantined=at(lot.quarantined_qty),
    )
