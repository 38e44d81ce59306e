"""What an accepted adjustment's clerk should hear at once (`InventoryAdjusted.warnings`).

A month-end count is typed by people, and some adjustments the rules accept still need a word:
the stock went in, but not where or how the clerk likely meant. Each warning says what happened
and what to do about it; none refuses anything.

- `SERIAL_WAS_SHIPPED`: a beginning balance names a serial last shipped to a customer (or
  returned to a vendor). R11 allows it, and the unit is in stock again, so no customer holds it
  any more; but the sale's usage stands. If the customer sent it back, a customer return is what
  reverses that usage (R13).
- `STOCK_IN_NO_LOT`: a plain item's count or loss added more than its lots at the office can
  take back (R12), and the rest is unallocated stock, which no sale takes (allocation picks lot
  stock only). At an office that never had a lot of the item and holds none of it, the office
  is likely mistyped ("Main" for "MAIN"): the warning names the offices that have stock.
- `LOT_EXPIRED_ON_ADJUSTMENT`: a beginning balance of a perishable manufacturer lot that expired
  before `adjusted_on` (receiving's `LOT_EXPIRED_ON_RECEIPT` rule: a lot expiring that very day
  is good through it, and a sale shipping that day still takes it, R9).
- `ESTIMATED_COST`: a beginning balance without `unit_cost`, costed at the item's estimated
  unit cost (R16 has no purchase order to correct it later).
- `UNIT_COST_NOT_USED`: a count or loss that adds, naming a `unit_cost`, put units back into
  existing inventory lots: that reverses their usage at each lot's own cost (R11), so the cost
  named was not used for them (the unallocated rest of a plain item, R12, does take it). One per
  inventory lot whose cost differs; a beginning balance is what adds stock at a cost named.

At most `MAX_WARNINGS` are listed per adjustment, the last saying how many more there are (a
beginning balance of 100,000 serials that all were shipped once must not make a huge answer).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, localcontext

from services.allocation.domain.draft import Draft
from services.allocation.domain.model import (
    EXACT,
    ZERO,
    AdjustmentWarning,
    AdjustStock,
    InventoryLot,
    Item,
    LotMovement,
    SerialStatus,
    Unit,
)
from services.allocation.domain.serials import whereabouts
from shared.reasons import listed, number

MAX_WARNINGS = 100
"""Warnings one `InventoryAdjusted` lists at most; the last one listed says how many more."""

_LEFT = (SerialStatus.SHIPPED, SerialStatus.RETURNED_TO_VENDOR)


def capped(
    warnings: list[AdjustmentWarning], limit: int = MAX_WARNINGS
) -> tuple[AdjustmentWarning, ...]:
    """The first `limit` warnings, the last of them saying how many more were not listed."""
    listed_ = warnings[: max(1, limit)]
    more = len(warnings) - len(listed_)
    if more > 0:
        note = f" ({more} more warning{'s' if more > 1 else ''} on this adjustment not listed)"
        listed_[-1] = replace(listed_[-1], message=listed_[-1].message + note)
    return tuple(listed_)


# -- beginning balances -------------------------------------------------------------------------


def beginning_balance(
    draft: Draft, item: Item, cmd: AdjustStock, lot: InventoryLot
) -> list[AdjustmentWarning]:
    """The warnings of a beginning balance that created `lot` (written into `draft` already):
    serials that had left stock, expired manufacturer lots, the estimated cost."""
    return [
        *shipped_serials(draft, item, cmd, lot),
        *expired_lots(draft, item, cmd, lot),
        *estimated_cost(item, cmd, lot),
    ]


def shipped_serials(
    draft: Draft, item: Item, cmd: AdjustStock, lot: InventoryLot
) -> list[AdjustmentWarning]:
    """`SERIAL_WAS_SHIPPED` for each serial of the new `lot` whose unit before it (its serial's
    latest, `serials.latest_unit`) was shipped to a customer or returned to a vendor."""
    # A beginning balance names its serials; none out of stock: none can have been shipped.
    if not item.serialized or len(draft.units) == len(draft.in_stock_keys):
        return []
    serials = cmd.serials
    before = _latest_before(draft, set(serials), lot.lot_id)
    return [
        _shipped(draft, item, lot, unit)
        for serial in serials
        if (unit := before.get(serial)) is not None and unit.status in _LEFT
    ]


def _latest_before(draft: Draft, serials: set[str], lot_id: str) -> dict[str, Unit]:
    """serial -> its latest unit outside `lot_id` (the lot's seq decides, as `latest_unit`),
    for the `serials` lotline had before; one pass over the item's units, not one per serial."""
    latest: dict[str, Unit] = {}
    lots = draft.lots
    for (serial, unit_lot), unit in draft.units.items():
        if unit_lot == lot_id or serial not in serials:
            continue
        best = latest.get(serial)
        if best is None or lots[unit_lot].seq > lots[best.lot_id].seq:
            latest[serial] = unit
    return latest


def _shipped(draft: Draft, item: Item, lot: InventoryLot, unit: Unit) -> AdjustmentWarning:
    serial, office = unit.serial, lot.office
    shipped_from = draft.lots[unit.lot_id].office
    again = (
        f"serial {serial} of {item.lic} {whereabouts(draft, unit)}, and this beginning balance "
        f"puts it in stock again at office {office} (inventory lot {lot.lot_id})"
    )
    remove = f"remove it with a count or loss of -1 naming serial {serial} at office {office}"
    if unit.status is SerialStatus.SHIPPED:
        customer = unit.customer or "the customer"
        message = (
            f"{again}: no customer holds it any more, but the sale's usage stands. If "
            f"{customer} sent it back, a customer return is what reverses that usage (R13): "
            f"{remove}, then receive it on a ShipmentReceived of source customer_return at "
            f"office {shipped_from}, which shipped it."
        )
    else:
        allocation = draft.allocations.get((unit.shipment_id or "", unit.line_no or 0))
        vendor = allocation.counterparty if allocation and allocation.counterparty else None
        message = (
            f"{again}: no vendor holds it any more. If {vendor or 'the vendor'} sent it back, "
            "a purchase receipt is what ties it to its purchase order and cost: "
            f"{remove}, then receive it on a ShipmentReceived of source purchase."
        )
    return AdjustmentWarning(
        code="SERIAL_WAS_SHIPPED",
        message=message,
        serial=serial,
        mfr_lot=unit.mfr_lot,
        lot_id=lot.lot_id,
        office=office,
    )


def expired_lots(
    draft: Draft, item: Item, cmd: AdjustStock, lot: InventoryLot
) -> list[AdjustmentWarning]:
    """`LOT_EXPIRED_ON_ADJUSTMENT` for each perishable manufacturer lot of the new `lot` that
    expires before `adjusted_on`. One expiring that very day is not expired (R9)."""
    if not item.perishable:
        return []
    rows = [draft.mfr_lots[(lot.lot_id, name)] for name in draft.mfr_names.get(lot.lot_id, ())]
    warnings = []
    for row in rows:
        expires_on = row.expires_on
        if expires_on is None or expires_on >= cmd.adjusted_on:
            continue
        days = (cmd.adjusted_on - expires_on).days
        units = f"{number(row.initial_qty)} unit{'' if row.initial_qty == 1 else 's'}"
        message = (
            f"manufacturer lot {row.mfr_lot} of {item.lic} ({units}) is expired: its expiry "
            f"date, {expires_on}, is {days} day{'s' if days > 1 else ''} before the adjustment "
            f"date, {cmd.adjusted_on}. It is added to inventory lot {lot.lot_id} at office "
            f"{lot.office} all the same, and no sale shipping after its expiry will take it: "
            "quarantine it "
            f"(QuarantineStock with lic {item.lic}, mfr_lot {row.mfr_lot}, lot_id {lot.lot_id}), "
            f"or write it off (AdjustInventory of kind loss naming lot {row.mfr_lot}); if the "
            "expiry date was mistyped, remove the lot so and add it again with the right one."
        )
        warnings.append(
            AdjustmentWarning(
                code="LOT_EXPIRED_ON_ADJUSTMENT",
                message=message,
                mfr_lot=row.mfr_lot,
                expires_on=expires_on,
                lot_id=lot.lot_id,
                office=lot.office,
            )
        )
    return warnings


def estimated_cost(item: Item, cmd: AdjustStock, lot: InventoryLot) -> list[AdjustmentWarning]:
    """`ESTIMATED_COST` for a beginning balance that named no `unit_cost`: it took the item's
    estimated unit cost, and no purchase order will ever correct it (R16)."""
    if cmd.unit_cost is not None:
        return []
    one = lot.received_qty == 1
    units = f"{number(lot.received_qty)} unit{'' if one else 's'}"
    message = (
        f"the beginning balance names no unit_cost: its {units} of {item.lic} in inventory lot "
        f"{lot.lot_id} at office {lot.office} {'is' if one else 'are'} costed at the item's "
        f"estimated unit cost, {number(lot.unit_cost)} each, and every sale of "
        f"{'it' if one else 'them'} will be costed so (no purchase order will correct it). If "
        "the stock cost otherwise, send unit_cost with its beginning balance."
    )
    return [
        AdjustmentWarning(
            code="ESTIMATED_COST", message=message, lot_id=lot.lot_id, office=lot.office
        )
    ]


# -- counts and losses that add -----------------------------------------------------------------


def stock_in_no_lot(
    draft: Draft, item: Item, cmd: AdjustStock, excess: Decimal, *, had_stock: bool
) -> AdjustmentWarning:
    """`STOCK_IN_NO_LOT` for the `excess` of a plain item's count or loss that no lot at the
    office could take back (R12): how many, that no sale takes them, and how to make them
    sellable. `had_stock`: the office held some of the item (in a lot or not) before; without
    it and without a lot there ever, the office is likely mistyped: the offices with stock are
    named."""
    office, kind = cmd.office, cmd.kind
    one = excess == 1
    units = f"{number(excess)} unit{'' if one else 's'}"
    n, them, they = number(excess), "it" if one else "them", "it is" if one else "they are"
    remedy = (
        f"remove {them} with a count or loss of -{n} at office {office} (stock in no lot goes "
        f"first), then add {them} with a beginning balance of {n} there, which puts {them} in a "
        "new adjustment lot"
    )
    no_sale = "no sale takes stock in no lot (allocation takes lot stock only)"
    elsewhere = [] if had_stock or draft.lots_at(office) else _elsewhere(draft, office)
    if elsewhere:  # an office that has nothing of the item: likely mistyped
        near = [o for o in elsewhere if o.casefold() == office.casefold()]
        guess = f"was office {near[0]} meant?" if near else "is the office mistyped?"
        where = "office" if len(elsewhere) == 1 else "offices"
        said = (
            f"{units} of {item.lic} went into no inventory lot at office {office}, which never "
            f"had a lot of {item.lic} and held none of it, while the item has stock at {where} "
            f"{listed(elsewhere)}: {guess} {they.capitalize()} unallocated stock (R12), and "
            f"{no_sale}. If another office was meant, remove {them} with a count or loss of "
            f"-{n} at office {office} and send the {kind} again for that office; if {they} truly "
            f"at office {office}, {remedy}."
        )
    elif draft.lots_at(office):
        taken = cmd.quantity - excess
        said = (
            f"{units} of {item.lic} went into no inventory lot at office {office}: the lots "
            f"there could take back {number(taken)} of this {kind}'s {number(cmd.quantity)} "
            f"(what was used from them), and the rest is unallocated stock (R12). But {no_sale}: "
            f"to make {them} sellable, {remedy}."
        )
    else:
        said = (
            f"{units} of {item.lic} went into no inventory lot at office {office}, which never "
            f"had a lot of the item to take {them} back: {they} unallocated stock (R12). But "
            f"{no_sale}: to make {them} sellable, {remedy}."
        )
    return AdjustmentWarning(code="STOCK_IN_NO_LOT", message=said, office=office)


def unit_cost_not_used(
    item: Item, cmd: AdjustStock, moved: tuple[LotMovement, ...]
) -> list[AdjustmentWarning]:
    """`UNIT_COST_NOT_USED` for each inventory lot a count or loss adding units with a
    `unit_cost` put some back into at another cost: putting back reverses usage at the lot's
    own cost (R11), so the clerk's cost went unused for them. Units in no lot (a plain item's
    rest, R12) took the cost named: not warned of. Costs equal in value (5 and 5.00): none."""
    given = cmd.unit_cost
    if given is None or cmd.kind == "beginning_balance" or cmd.quantity <= 0:
        return []
    by_lot: dict[str, list[LotMovement]] = {}
    for m in moved:
        if m.lot_id is not None and m.quantity > 0 and m.unit_cost != given:
            by_lot.setdefault(m.lot_id, []).append(m)
    return [_cost_not_used(item, cmd, given, lot_id, rows) for lot_id, rows in by_lot.items()]


def _cost_not_used(
    item: Item, cmd: AdjustStock, given: Decimal, lot_id: str, rows: list[LotMovement]
) -> AdjustmentWarning:
    # One lot, one cost: every movement into it carries the lot's unit cost.
    cost, kind, office = rows[0].unit_cost, cmd.kind, cmd.office
    quantity = sum((m.quantity for m in rows), ZERO)
    with localcontext(EXACT):
        booked, meant = quantity * cost, quantity * given
    one = quantity == 1
    units = f"{number(quantity)} unit{'' if one else 's'}"
    mfr_lots = sorted({m.mfr_lot for m in rows if m.mfr_lot is not None})
    serials = [m.serial for m in rows if m.serial is not None]
    which = []
    if mfr_lots:
        which.append(f"manufacturer lot{'' if len(mfr_lots) == 1 else 's'} {listed(mfr_lots)}")
    if serials:
        which.append(f"serial{'' if len(serials) == 1 else 's'} {listed(serials)}")
    named = f" ({'; '.join(which)})" if which else ""
    # Allocation knows the lot's cost as received; a closed PO's actual cost is the ledger's
    # (R16), and the reversal is booked at it: the message names the received cost as such and
    # claims no booked amount.
    message = (
        f"this {kind} put {units} of {item.lic}{named} back into inventory lot {lot_id} at "
        f"office {office} at the lot's own cost, not the unit_cost given, {number(given)} "
        f"({number(meant)} for {'it' if one else 'them'}): the lot was received at "
        f"{number(cost)} each ({number(booked)}), and once its PO closes, or if it has, at the "
        f"PO's actual cost, which the ledger books. A {kind} putting back units reverses their "
        f"usage at the lot's cost (R11). To add stock at {number(given)}, send a "
        "beginning_balance, which makes a new lot at the cost it names."
    )
    return AdjustmentWarning(
        code="UNIT_COST_NOT_USED",
        message=message,
        serial=serials[0] if len(serials) == 1 else None,
        mfr_lot=mfr_lots[0] if len(mfr_lots) == 1 else None,
        expires_on=rows[0].expires_on if len(mfr_lots) == 1 else None,
        lot_id=lot_id,
        office=office,
    )


def _elsewhere(draft: Draft, office: str) -> list[str]:
    """The other offices holding stock of the item, in a lot or in none (R12), sorted."""
    offices = set(draft.stocked.values())
    offices.update(o for o, row in draft.unallocated.items() if row.quantity > 0)
    offices.discard(office)
    return sorted(offices)
