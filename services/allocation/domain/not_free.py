"""Stock on hand that is not free, in words, for a refusal short of stock.

Stock on hand may be taken only when free (on hand − allocated − held): a refusal that said
only "requested 5, available 0" while 20 are on hand leaves a clerk guessing. So a count or loss
(`adjusting`) and a shipment line naming lots (`picking.named_lots`: a sale, a return to vendor)
both say who holds the rest, in the same words: the shipment lines it is allocated to, with how
much each (the first few, then a count), and the held receipt and return lines it is on.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from services.allocation.domain.draft import Draft
from services.allocation.domain.model import ZERO, HeldLine
from shared.reasons import listed, number

StockKey = tuple[str, str | None]
"""(inventory lot, manufacturer lot) of stock asked for; None for a whole plain lot."""

# Shipment lines a refusal names holding stock, at most; the rest are counted.
LISTED_LINES = 5


def not_free(
    draft: Draft,
    keys: set[StockKey],
    *,
    allocated: Decimal,
    held: Decimal,
    available: Decimal | None,
    taker: str,
    verb: str,
) -> str:
    """What an `INSUFFICIENT_STOCK` adds about the stock of `keys` on hand that is not free:
    "; 20 more on hand there are allocated to shipment SO-6 line 1 (20): {taker} takes only
    free stock, so release it from those lines first (…), or {verb} at most {available}",
    and what is on a held receipt; "" when all of it is free. `available`: None leaves the
    "at most" out (nothing is free: "at most 0" would say nothing)."""
    if not allocated and not held:
        return ""
    parts = []
    if allocated:
        lines = holding_lines(draft, keys)
        shown = ", ".join(
            f"shipment {shipment_id} line {line_no} ({number(quantity)})"
            for shipment_id, line_no, quantity in lines[:LISTED_LINES]
        )
        more = len(lines) - LISTED_LINES
        if more > 0:
            shown += f" and {more} more shipment line{'s' if more > 1 else ''}"
        are = "is" if allocated == 1 else "are"
        parts.append(f"{number(allocated)} more on hand there {are} allocated to {shown}")
    if held:
        on_held = [
            line
            for line in draft.holds.values()
            if any((p.lot_id, p.mfr_lot) in keys or (p.lot_id, None) in keys for p in line.picks)
        ]
        parts.append(
            f"{number(held)} more {'is' if held == 1 else 'are'} on"
            f" {listed(held_documents(on_held), HELD_DOCUMENTS_SHOWN)}, held until every line of"
            " the document is accepted"
        )
    release = (
        "release it from those lines first (ShipmentCancelled, or ShipmentPicksUpdated naming "
        "other stock)"
    )
    if available is None:
        fix = release if allocated else "send this again once that document posts"
    else:
        at_most = f"{verb} at most {number(available)}"
        fix = f"{release}, or {at_most}" if allocated else at_most
    return f"; {'; '.join(parts)}: {taker} takes only free stock, so {fix}"


HELD_DOCUMENTS_SHOWN = 3
"""Documents a refusal names holding stock on held lines, at most; the rest are counted."""


def held_documents(lines: Iterable[HeldLine]) -> list[str]:
    """Held receipt and return lines as a refusal names them, a document's lines together:
    "PO-7 lines 1 and 2", "RMA-3 line 1", by document id."""
    by_document: dict[str, list[int]] = {}
    for line in lines:
        by_document.setdefault(line.shipment_id, []).append(line.line_no)
    return [
        f"{document} line{'s' if len(numbers) > 1 else ''}"
        f" {' and '.join(map(str, sorted(numbers)))}"
        for document, numbers in sorted(by_document.items())
    ]


def holding_lines(draft: Draft, keys: set[StockKey]) -> list[tuple[str, int, Decimal]]:
    """(shipment id, line no, quantity) of each shipment line allocated stock of `keys`, by
    ship date then ids. Read on a refusal only: every allocation of the item is looked at."""
    found = []
    for allocation in draft.allocations.values():
        if allocation.status != "allocated":
            continue
        quantity = sum(
            (
                p.quantity
                for p in allocation.picks
                if (p.lot_id, p.mfr_lot) in keys or (p.lot_id, None) in keys
            ),
            ZERO,
        )
        if quantity:
            found.append((allocation.ship_on, allocation.shipment_id, allocation.line_no, quantity))
    found.sort()
    return [(shipment_id, line_no, quantity) for _, shipment_id, line_no, quantity in found]
