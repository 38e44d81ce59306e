"""Inventory adjustments (R11, R12).

- `beginning_balance` (quantity > 0) receives a new adjustment lot, validated like a receipt
  line (R3, R4): mfr lot numbers seen before are fine, a serial still in stock is not.
- `count` / `loss` with quantity < 0 take the named stock out of use (mfr lots or serials must
  be named; plain items go FIFO, first out of unallocated stock, at the average cost it came in
  at: see `cost_out`). Only free stock is removed: allocated stock belongs to a shipment.
- `count` / `loss` with quantity > 0 reverse usage: a mfr lot takes back at most what was used
  from it (`LOT_QTY_EXCEEDS_USED`), a serial comes back only if it was removed; plain items fill
  the office's lots newest first up to their usage and keep the rest as unallocated stock (R12).
  "Oldest" and "newest" are by `InventoryLot.arrival` (receipt date, then decision order), the
  order FIFO takes stock in.
- For an item both lot-tracked and serialized the serials decide which units; named lots are
  not needed, but lots named beside them must hold them (`picking.lots_hold_serials`), as on a
  shipment line or a customer return.
- An adjustment accepted all the same may need a word for its clerk (a shipped serial counted
  in, stock in no lot, an expired lot, an estimated cost): `InventoryAdjusted.warnings`, see
  `adjustment_warnings`. A refusal says what to do: where a lot named at the wrong office or
  expiry is, which shipment lines hold stock a removal asked for, how much a count can put back
  and the seed's remedy for the rest.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, localcontext

from services.allocation.domain import adjustment_warnings as warn
from services.allocation.domain import checks
from services.allocation.domain.draft import BrokenInvariant, Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import (
    COST_STEP,
    EXACT,
    ZERO,
    AdjustmentWarning,
    AdjustStock,
    InventoryAdjusted,
    InventoryLot,
    Item,
    LotMovement,
    LotPick,
    MfrLot,
    Pick,
    SerialStatus,
    UnallocatedStock,
    Unit,
)
from services.allocation.domain.not_free import not_free
from services.allocation.domain.picking import (
    Need,
    automatic,
    describes,
    lots_hold_serials,
    merge_named,
    named_lots,
    named_serials,
)
from services.allocation.domain.receiving import NewLot, require_item, stock_in
from services.allocation.domain.serials import latest_unit, near_matches, whereabouts
from services.allocation.domain.shipping import movements
from shared.ids import MAX_DERIVED_ID
from shared.reasons import listed, listed_expiring, number

EXCEEDS_USED = "adjusted quantity exceeds the previously used quantity"


def adjust(draft: Draft, cmd: AdjustStock) -> tuple[InventoryAdjusted]:
    if cmd.refusal is not None:
        refusal = cmd.refusal
        raise Refusal(refusal.reason_code, refusal.reason, refusal.offending)
    item = require_item(draft)
    quantity = checks.nonzero(cmd.quantity)
    checks.whole_for(item, quantity)
    lot_id = None
    warnings: list[AdjustmentWarning] = []
    if cmd.kind == "beginning_balance":
        lot, moved = _beginning_balance(draft, cmd)
        lot_id = lot.lot_id
        warnings = warn.beginning_balance(draft, item, cmd, lot)
    else:
        checks.no_serials(item, cmd.serials)
        if cmd.lots:
            checks.no_lots(item, (entry.mfr_lot for entry in cmd.lots))
        if quantity < 0:
            moved = _remove(draft, item, cmd)
        else:
            moved, warnings = _put_back(draft, item, cmd)
            # Units put back into lots took each lot's cost, not a unit_cost the clerk gave.
            warnings = [*warn.unit_cost_not_used(item, cmd, moved), *warnings]
    draft.lock_item()
    return (
        InventoryAdjusted(
            command_id=cmd.message_id,
            lic=item.lic,
            adjustment_id=cmd.adjustment_id,
            office=cmd.office,
            kind=cmd.kind,
            quantity=quantity,
            adjusted_on=cmd.adjusted_on,
            reason=cmd.reason,
            movements=moved,
            lot_id=lot_id,
            unallocated=sum((m.quantity for m in moved if m.lot_id is None), ZERO),
            closed_lots=tuple(draft.closed),
            reopened_lots=tuple(draft.reopened),
            warnings=warn.capped(warnings),
        ),
    )


def _beginning_balance(
    draft: Draft, cmd: AdjustStock
) -> tuple[InventoryLot, tuple[LotMovement, ...]]:
    """R11: a beginning balance always creates a new adjustment lot."""
    if cmd.quantity < 0:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            "a beginning balance adds stock: quantity must be greater than 0, got "
            f"{number(cmd.quantity)}",
            str(cmd.quantity),
        )
    spec = NewLot(
        lot_id=cmd.lot_id or adjustment_lot_id(draft, cmd),
        office=cmd.office,
        kind="adjustment",
        reference=cmd.adjustment_id,
        received_on=cmd.adjusted_on,
        quantity=cmd.quantity,
        unit_cost=cmd.unit_cost,
        mfr_lots=cmd.lots,
        serials=cmd.serials,
    )
    got = stock_in(draft, spec)
    return got.lot, got.movements


def adjustment_lot_id(draft: Draft, cmd: AdjustStock) -> str:
    """`<adjustment id>/<LIC>/BB`; a further beginning balance of the item in the same
    adjustment gets `/BB2`, `/BB3`, ... (the LIC's history decides, so a replay names it alike).

    Inventory lot ids are unique across items, and each LIC's decisions see only its own lots,
    so the name alone must keep lots apart: a receipt's lot id ends in its line number, never
    in a `BB` tag, and the adjustment id's `/` (and `%`) are escaped, so no two adjustment and
    LIC pairs share a name. A name too long to carry uses a digest of the pair instead.
    """
    escaped = cmd.adjustment_id.replace("%", "%25").replace("/", "%2F")
    n = 1
    while True:
        tag = "BB" if n == 1 else f"BB{n}"
        lot_id = f"{escaped}/{cmd.lic}/{tag}"
        if len(lot_id) > MAX_DERIVED_ID:
            pair = f"{cmd.adjustment_id}\x00{cmd.lic}".encode()
            lot_id = f"{hashlib.sha256(pair).hexdigest()[:40]}/{tag}"
        if lot_id not in draft.lots:
            return lot_id
        n += 1


# -- removing -----------------------------------------------------------------------------------


def _remove(draft: Draft, item: Item, cmd: AdjustStock) -> tuple[LotMovement, ...]:
    """R11: take the named (or, for plain items, the oldest free) stock out of use."""
    quantity = -cmd.quantity
    need = Need(item=item, office=cmd.office, ship_on=cmd.adjusted_on, fresh_only=False)
    unallocated: tuple[LotMovement, ...] = ()
    if item.serialized:
        serials = checks.serial_list(item, _serials(item, cmd), quantity)
        picks = named_serials(draft, need, serials)
        _lots_beside_serials(draft, need, cmd, picks)
    elif item.track_mfr_lot:
        entries = _lot_picks(item, cmd, quantity)
        picks = _named_lots(draft, need, entries)
    else:
        unallocated, rest = _take_unallocated(draft, cmd.office, quantity)
        # Short, the refusal names the whole loss and all stock there, unallocated included.
        picks = _oldest(draft, need, rest, quantity) if rest > 0 else []
    draft.move(picks, on_hand=-1, used=1)
    draft.put_units(
        draft.units[(pick.serial, pick.lot_id)].moved_to(SerialStatus.REMOVED)
        for pick in picks
        if pick.serial is not None
    )
    return unallocated + _negated(movements(draft, tuple(picks)))


def _take_unallocated(
    draft: Draft, office: str, quantity: Decimal
) -> tuple[tuple[LotMovement, ...], Decimal]:
    """R10, R12: unallocated stock goes first, at the cost it came in at (`cost_out`); returns
    its movements and the quantity still to take from lots."""
    row = draft.unallocated.get(office)
    if row is None:
        return (), quantity
    take = min(row.quantity, quantity)
    parts = cost_out(row, take)
    with localcontext(EXACT):
        value = row.value - sum((q * unit_cost for q, unit_cost in parts), ZERO)
    draft.set_unallocated(office, row.quantity - take, value)
    return tuple(_unallocated_move(-q, unit_cost) for q, unit_cost in parts), quantity - take


def cost_out(row: UnallocatedStock, quantity: Decimal) -> list[tuple[Decimal, Decimal]]:
    """(quantity, unit cost) parts that take `quantity` (0 < quantity ≤ row.quantity) out of
    unallocated stock at its average unit cost (`UnallocatedStock.average`).

    Part of it: one part at the average. Rounded down, so the value left never goes negative;
    when the average needs no rounding (the usual case), what is left keeps it exactly.
    All of it: exactly the value left, so what came in and went out nets to nothing. The
    rounded-down average leaves `rest` = value − quantity × average, less than one `COST_STEP`
    per unit; `rest / COST_STEP` units go one step above the average and the others at it. That
    split is exact: every quantity and unit cost has at most 6 places, so the value has at most
    12 and `rest / COST_STEP` at most 6, like any quantity on the wire."""
    average = row.average()
    if quantity < row.quantity:
        return [(quantity, average)]
    with localcontext(EXACT):
        above = (row.value - quantity * average) / COST_STEP
    if not above:
        return [(quantity, average)]
    return [(quantity - above, average), (above, average + COST_STEP)]


# -- putting back -------------------------------------------------------------------------------


def _put_back(
    draft: Draft, item: Item, cmd: AdjustStock
) -> tuple[tuple[LotMovement, ...], list[AdjustmentWarning]]:
    """R11, R12: a positive count or loss reverses usage; what a plain item's lots cannot take
    back is unallocated stock, warned of (`STOCK_IN_NO_LOT`)."""
    if item.serialized:
        serials = checks.serial_list(item, _serials(item, cmd), cmd.quantity)
        restored = tuple(_restore_unit(draft, item, cmd.office, serial) for serial in serials)
        need = Need(item=item, office=cmd.office, ship_on=cmd.adjusted_on, fresh_only=False)
        units = [
            Pick(lot_id=m.lot_id, mfr_lot=m.mfr_lot, serial=m.serial, quantity=m.quantity)
            for m in restored
            if m.lot_id is not None
        ]
        _lots_beside_serials(draft, need, cmd, units)
        return restored, []
    if item.track_mfr_lot:
        picks: list[Pick] = []
        for entry in _lot_picks(item, cmd, cmd.quantity):
            picks.extend(_reverse_mfr_lot(draft, item, cmd, entry, picks))
        draft.move(picks, on_hand=1, used=-1)
        return movements(draft, tuple(picks)), []
    return _reverse_plain(draft, item, cmd)


def _restore_unit(draft: Draft, item: Item, office: str, serial: str) -> LotMovement:
    if draft.serial_in_stock(serial) is not None:
        raise checks.in_stock(item, serial, draft)
    # The serial's own history, not FIFO: the unit decided last is the current one.
    unit = latest_unit(draft, serial)
    if unit is None or unit.status is not SerialStatus.REMOVED:
        raise Refusal(
            ReasonCode.SERIAL_NOT_AVAILABLE,
            f"serial {serial} of {item.lic} {_not_removed(draft, serial, unit)}",
            serial,
        )
    removed_at = draft.lots[unit.lot_id].office
    if removed_at != office:
        raise Refusal(
            ReasonCode.SERIAL_NOT_AVAILABLE,
            f"serial {serial} of {item.lic} was removed from stock at office {removed_at}, not "
            f"at office {office}: count it back in at office {removed_at}, or add it at office "
            f"{office} with a beginning balance",
            serial,
        )
    draft.change(unit.lot_id, unit.mfr_lot, on_hand=Decimal(1), used=Decimal(-1))
    draft.put_unit(unit.moved_to(SerialStatus.AVAILABLE))
    return _unit_move(draft, unit)


def _not_removed(draft: Draft, serial: str, unit: Unit | None) -> str:
    """Why a count cannot put back a serial no count or loss removed, and what will: a shipped
    unit comes back as a customer return (R13) and one returned to its vendor as a receipt; a
    beginning balance would make either available while the ledger still has it with the
    customer or vendor. Only a serial lotline never had is added with a beginning balance; its
    near matches ("00098" for "98") are named first, in case one was meant."""
    if unit is None:
        return f"was never received{near_matches(draft, serial)}: add it with a beginning balance"
    where = whereabouts(draft, unit)
    if unit.status is SerialStatus.SHIPPED:
        return f"{where}: receive it as a customer return"
    if unit.status is SerialStatus.RETURNED_TO_VENDOR:
        return f"{where}: receive it again"
    return where  # in stock: refused before this (`checks.in_stock`)


def _reverse_mfr_lot(
    draft: Draft, item: Item, cmd: AdjustStock, entry: LotPick, earlier: list[Pick]
) -> list[Pick]:
    """R11: put back at most what was used from the mfr lot (its initial quantity is the
    ceiling), newest inventory lot first."""
    rows = _rows_at(draft, cmd.office, entry)
    if not rows:
        raise _lot_not_at(draft, item, cmd.office, entry, removing=False)
    done: dict[tuple[str, str | None], Decimal] = {}
    for p in earlier:
        done[(p.lot_id, p.mfr_lot)] = done.get((p.lot_id, p.mfr_lot), ZERO) + p.quantity

    def room(row: MfrLot) -> Decimal:
        return row.used - done.get((row.lot_id, row.mfr_lot), ZERO)

    capacity = sum((room(r) for r in rows), ZERO)
    if entry.quantity > capacity:
        raise _exceeds_used(item, cmd, entry, capacity, rows)
    rows.sort(key=lambda r: draft.lots[r.lot_id].arrival, reverse=True)
    return _spread(entry.quantity, [(r.lot_id, r.mfr_lot, room(r)) for r in rows])


def _reverse_plain(
    draft: Draft, item: Item, cmd: AdjustStock
) -> tuple[tuple[LotMovement, ...], list[AdjustmentWarning]]:
    """R11, R12: fill lots newest first up to their usage; the rest is unallocated stock,
    which no sale takes: warned of (`STOCK_IN_NO_LOT`)."""
    lots = draft.lots_at(cmd.office)[::-1]  # newest first
    picks = _spread(cmd.quantity, [(lot.lot_id, None, lot.used) for lot in lots], partial=True)
    draft.move(picks, on_hand=1, used=-1)
    moved = movements(draft, tuple(picks))
    excess = cmd.quantity - sum((p.quantity for p in picks), ZERO)
    if excess <= 0:
        return moved, []
    unit_cost = checks.cost(cmd.unit_cost, item)
    row = draft.unallocated.get(cmd.office)
    held, value = (row.quantity, row.value) if row is not None else (ZERO, ZERO)
    with localcontext(EXACT):
        value += excess * unit_cost
    draft.set_unallocated(cmd.office, held + excess, value)
    moved += (_unallocated_move(excess, unit_cost),)
    return moved, [warn.stock_in_no_lot(draft, item, cmd, excess, had_stock=row is not None)]


# -- refusals, said for a count or loss --------------------------------------------------------
#
# A removal takes stock as a shipment line naming it would (`picking`), and its refusals say
# what a pick's say. A warehouse manager doing a month-end count needs more from them: where
# the stock is, who holds it, what to send instead.


def _named_lots(draft: Draft, need: Need, entries: tuple[LotPick, ...]) -> list[Pick]:
    """`picking.named_lots` for a removal (R11); a lot not at the office or short of free stock
    is refused for the first entry that is, as `named_lots` would, saying where the lot is
    (`_lot_not_at`) or which shipment lines hold its stock (`not_free`)."""
    try:
        return named_lots(draft, need, entries)
    except Refusal as refusal:
        if refusal.code not in (ReasonCode.LOT_NOT_FOUND, ReasonCode.INSUFFICIENT_STOCK):
            raise
        # The refusal path only: find the first entry `named_lots` cannot take (taking the ones
        # before it as it does), rather than repeating how it spreads entries over lots.
        for i, entry in enumerate(entries):
            try:
                named_lots(draft, need, entries[: i + 1])
            except Refusal:
                earlier = named_lots(draft, need, entries[:i]) if i else []
                raise _removal_refused(draft, need, entry, earlier) from None
        raise


def _removal_refused(draft: Draft, need: Need, entry: LotPick, earlier: list[Pick]) -> Refusal:
    """The refusal of a removal naming `entry`, after `earlier` entries took their picks:
    `LOT_NOT_FOUND` where the office has none of it as named, else `INSUFFICIENT_STOCK` naming
    the office, what is free and which shipment lines hold the rest."""
    rows = _rows_at(draft, need.office, entry)
    if not rows:
        return _lot_not_at(draft, need.item, need.office, entry, removing=True)
    done: dict[tuple[str, str | None], Decimal] = {}
    for p in earlier:
        done[(p.lot_id, p.mfr_lot)] = done.get((p.lot_id, p.mfr_lot), ZERO) + p.quantity
    available = sum((max(r.free - done.get((r.lot_id, r.mfr_lot), ZERO), ZERO) for r in rows), ZERO)
    expiring = f" expiring on {entry.expires_on}" if entry.expires_on else ""
    keys: set[tuple[str, str | None]] = {(r.lot_id, r.mfr_lot) for r in rows}
    holders = not_free(
        draft,
        keys,
        allocated=sum((r.allocated for r in rows), ZERO),
        held=sum((r.held for r in rows), ZERO),
        available=available,
        taker="a count or loss",
        verb="remove",
    )
    return Refusal(
        ReasonCode.INSUFFICIENT_STOCK,
        f"manufacturer lot {entry.mfr_lot}{expiring} of {need.item.lic} at office {need.office}: "
        f"requested {number(entry.quantity)}, available {number(available)}{holders}",
        f"{entry.quantity} > {available}",
    )


def _oldest(draft: Draft, need: Need, rest: Decimal, asked: Decimal) -> list[Pick]:
    """`picking.automatic` for a plain item's removal of `asked`, `rest` of it from lots (the
    rest came out of unallocated stock); short, its refusal also names the shipment lines
    holding the office's stock (`not_free`)."""
    try:
        return automatic(draft, need, rest, asked=asked)
    except Refusal as refusal:
        if refusal.code is not ReasonCode.INSUFFICIENT_STOCK:
            raise
        lots = draft.lots_at(need.office, stocked=True)
        holders = not_free(
            draft,
            {(lot.lot_id, None) for lot in lots},
            allocated=sum((lot.allocated for lot in lots), ZERO),
            held=sum((lot.held for lot in lots), ZERO),
            available=sum((max(lot.free, ZERO) for lot in lots), asked - rest),
            taker="a count or loss",
            verb="remove",
        )
        raise Refusal(refusal.code, refusal.reason + holders, refusal.offending) from None


def _rows_at(draft: Draft, office: str, entry: LotPick) -> list[MfrLot]:
    """The office's stock of the manufacturer lot `entry` names (its expiry and inventory lot,
    where given: `picking.describes`), used up or not."""
    return [
        r for r in draft.mfr_lots_at(office) if r.mfr_lot == entry.mfr_lot and describes(entry, r)
    ]


def _lot_not_at(
    draft: Draft, item: Item, office: str, entry: LotPick, *, removing: bool
) -> Refusal:
    """`LOT_NOT_FOUND` for a manufacturer lot a count or loss names that the office has no
    stock of as named. The office has the lot with another expiry: that expiry (a mistyped
    `expires_on`). Else the offices that have it: on hand, for a removal; ever received, for a
    count putting usage back (which goes back only into lots at their own office)."""
    expiring = f" expiring on {entry.expires_on}" if entry.expires_on else ""
    named = f"manufacturer lot {entry.mfr_lot}{expiring} of {item.lic}"
    here = [r for r in draft.mfr_lots_at(office) if r.mfr_lot == entry.mfr_lot]
    if here:  # as named (its expiry, its inventory lot), not: what the office has of it
        stocked = [r for r in here if r.on_hand > 0] or here
        holds = "holds" if removing else "has had"
        reason = (
            f"{named} is not at office {office}: office {office} {holds} manufacturer lot "
            f"{entry.mfr_lot} {listed_expiring(r.expires_on for r in stocked)}; name that "
            "expires_on, or none"
        )
    elif removing:
        where = _offices_with(draft, entry.mfr_lot, on_hand=True)
        reason = f"{named} is not at office {office}: " + (
            f"it is on hand at {where}" if where else "no office has it on hand"
        )
    else:
        where = _offices_with(draft, entry.mfr_lot, on_hand=False)
        reason = f"{named} was never at office {office}: " + (
            f"it was received at {where}, and a count or loss puts stock back only into lots at "
            f"their own office: count it back there, or add it at office {office} with a "
            "beginning balance"
            if where
            else "add it with a beginning balance"
        )
    return Refusal(ReasonCode.LOT_NOT_FOUND, reason, entry.mfr_lot)


def _offices_with(draft: Draft, mfr_lot: str, *, on_hand: bool) -> str:
    """ "office MAIN (5 on hand)", "offices MAIN (5 on hand), WEST (2 on hand)": the offices with
    stock of `mfr_lot` on hand; without `on_hand`, every office that received it. "": none."""
    totals: dict[str, Decimal] = {}
    for (lot_id, name), row in draft.mfr_lots.items():
        if name == mfr_lot and (row.on_hand > 0 or not on_hand):
            office = draft.lots[lot_id].office
            totals[office] = totals.get(office, ZERO) + row.on_hand
    if not totals:
        return ""
    offices = sorted(totals)
    shown = [f"{o} ({number(totals[o])} on hand)" if on_hand else o for o in offices]
    return f"{'office' if len(offices) == 1 else 'offices'} {listed(shown)}"


def _exceeds_used(
    item: Item, cmd: AdjustStock, entry: LotPick, capacity: Decimal, rows: list[MfrLot]
) -> Refusal:
    """`LOT_QTY_EXCEEDS_USED` (R11, the seed's words first): how much of the lot's usage can be
    put back, how many the count adds, and the seed's remedy with the numbers: a count or loss
    putting back what fits, then a beginning balance (a new adjustment lot) for the rest."""
    name, kind, asked = entry.mfr_lot, cmd.kind, entry.quantity
    rest = asked - capacity
    expiries = {r.expires_on for r in rows}
    expiring = ""
    if item.perishable:
        only = next(iter(expiries)) if len(expiries) == 1 else None
        expiring = f" expiring on {only}" if only else " with its expiry date"
    balance = (
        f"a beginning balance of {number(rest)} naming lot {name}{expiring}, which puts them in "
        "a new adjustment lot"
    )
    if capacity:
        used = (
            f"{number(capacity)} of its units {'has' if capacity == 1 else 'have'} been used "
            f"(shipped, or removed by a count or loss), so a {kind} can put back at most "
            f"{number(capacity)} of them"
        )
        fix = (
            f"put back {number(capacity)} with this {kind} naming lot {name} for "
            f"{number(capacity)}, then add the other {number(rest)} with {balance}"
        )
    else:
        used = (
            "none of its units has been used (shipped, or removed by a count or loss), so a "
            f"{kind} can put none back"
        )
        fix = f"add them with {balance}"
    return Refusal(
        ReasonCode.LOT_QTY_EXCEEDS_USED,
        f"{EXCEEDS_USED}: of manufacturer lot {name} of {item.lic} at office {cmd.office}, "
        f"{used}, and this {kind} adds {number(asked)}: {fix}",
        f"{asked} > {capacity}",
    )


# -- helpers ------------------------------------------------------------------------------------


def _spread(
    quantity: Decimal, room: list[tuple[str, str | None, Decimal]], *, partial: bool = False
) -> list[Pick]:
    picks = []
    left = quantity
    for lot_id, mfr_lot, space in room:
        if left <= 0:
            break
        take = min(space, left)
        if take > 0:
            picks.append(Pick(lot_id=lot_id, mfr_lot=mfr_lot, serial=None, quantity=take))
            left -= take
    if left > 0 and not partial:
        raise BrokenInvariant(f"{left} left to spread after the capacity check")
    return picks


def _serials(item: Item, cmd: AdjustStock) -> tuple[str, ...]:
    if not cmd.serials:
        raise Refusal(
            ReasonCode.SERIAL_REQUIRED,
            f"an adjustment of serialized item {item.lic} must name its serials",
            cmd.adjustment_id,
        )
    return cmd.serials


def _lots_beside_serials(draft: Draft, need: Need, cmd: AdjustStock, units: list[Pick]) -> None:
    """Lots named beside serials are checked against the units the serials name, never
    dropped unread: `LOT_NOT_FOUND` for a lot not at the office (saying where it is,
    `_lot_not_at`), `INVALID_QUANTITY` for one named for another number of those units."""
    if not cmd.lots:
        return
    named = tuple(
        LotPick(mfr_lot=entry.mfr_lot, quantity=entry.quantity, lot_id=entry.lot_id)
        for entry in cmd.lots
    )
    for pick in named:  # in `lots_hold_serials`' order: its quantity checks, then the office
        what = f"quantity of manufacturer lot {pick.mfr_lot}"
        checks.whole_for(need.item, checks.positive(pick.quantity, what), what)
        if not _rows_at(draft, need.office, pick):
            raise _lot_not_at(draft, need.item, need.office, pick, removing=cmd.quantity < 0)
    lots_hold_serials(draft, need, named, units)


def _lot_picks(item: Item, cmd: AdjustStock, quantity: Decimal) -> tuple[LotPick, ...]:
    if not cmd.lots:
        raise Refusal(
            ReasonCode.LOT_REQUIRED,
            f"an adjustment of lot-tracked item {item.lic} must name its manufacturer lots",
            cmd.adjustment_id,
        )
    picks = tuple(
        LotPick(
            mfr_lot=entry.mfr_lot,
            quantity=entry.quantity,
            lot_id=entry.lot_id,
            expires_on=entry.expires_on,
        )
        for entry in cmd.lots
    )
    for pick in picks:
        checks.positive(pick.quantity, f"quantity of manufacturer lot {pick.mfr_lot}")
    checks.lot_sum(quantity, (p.quantity for p in picks))
    return merge_named(picks)


def _negated(moved: tuple[LotMovement, ...]) -> tuple[LotMovement, ...]:
    return tuple(
        LotMovement(
            lot_id=m.lot_id,
            mfr_lot=m.mfr_lot,
            expires_on=m.expires_on,
            serial=m.serial,
            quantity=-m.quantity,
            unit_cost=m.unit_cost,
        )
        for m in moved
    )


def _unit_move(draft: Draft, unit: Unit) -> LotMovement:
    row = draft.mfr_lots.get((unit.lot_id, unit.mfr_lot)) if unit.mfr_lot else None
    return LotMovement(
        lot_id=unit.lot_id,
        mfr_lot=unit.mfr_lot,
        expires_on=row.expires_on if row else None,
        serial=unit.serial,
        quantity=Decimal(1),
        unit_cost=draft.lots[unit.lot_id].unit_cost,
    )


def _unallocated_move(quantity: Decimal, unit_cost: Decimal) -> LotMovement:
    return LotMovement(
        lot_id=None,
        mfr_lot=None,
        expires_on=None,
        serial=None,
        quantity=quantity,
        unit_cost=unit_cost,
    )
