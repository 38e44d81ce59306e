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
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, localcontext

from services.allocation.domain import checks
from services.allocation.domain.draft import BrokenInvariant, Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import (
    COST_STEP,
    EXACT,
    ZERO,
    AdjustStock,
    InventoryAdjusted,
    Item,
    LotMovement,
    LotPick,
    MfrLot,
    Pick,
    SerialStatus,
    UnallocatedStock,
    Unit,
)
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
from services.allocation.domain.serials import latest_unit, whereabouts
from services.allocation.domain.shipping import movements
from shared.ids import MAX_DERIVED_ID
from shared.reasons import number

EXCEEDS_USED = "adjusted quantity exceeds the previously used quantity"


def adjust(draft: Draft, cmd: AdjustStock) -> tuple[InventoryAdjusted]:
    if cmd.refusal is not None:
        refusal = cmd.refusal
        raise Refusal(refusal.reason_code, refusal.reason, refusal.offending)
    item = require_item(draft)
    quantity = checks.nonzero(cmd.quantity)
    checks.whole_for(item, quantity)
    lot_id = None
    if cmd.kind == "beginning_balance":
        lot_id, moved = _beginning_balance(draft, cmd)
    else:
        checks.no_serials(item, cmd.serials)
        if cmd.lots:
            checks.no_lots(item, (entry.mfr_lot for entry in cmd.lots))
        moved = _remove(draft, item, cmd) if quantity < 0 else _put_back(draft, item, cmd)
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
        ),
    )


def _beginning_balance(draft: Draft, cmd: AdjustStock) -> tuple[str, tuple[LotMovement, ...]]:
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
    return got.lot.lot_id, got.movements


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
        picks = named_lots(draft, need, entries)
    else:
        unallocated, rest = _take_unallocated(draft, cmd.office, quantity)
        # Short, the refusal names the whole loss and all stock there, unallocated included.
        picks = automatic(draft, need, rest, asked=quantity) if rest > 0 else []
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


def _put_back(draft: Draft, item: Item, cmd: AdjustStock) -> tuple[LotMovement, ...]:
    """R11, R12: a positive count or loss reverses usage."""
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
        return restored
    if item.track_mfr_lot:
        picks: list[Pick] = []
        for entry in _lot_picks(item, cmd, cmd.quantity):
            picks.extend(_reverse_mfr_lot(draft, item, cmd.office, entry, picks))
        draft.move(picks, on_hand=1, used=-1)
        return movements(draft, tuple(picks))
    return _reverse_plain(draft, item, cmd)


def _restore_unit(draft: Draft, item: Item, office: str, serial: str) -> LotMovement:
    if draft.serial_in_stock(serial) is not None:
        raise checks.in_stock(item, serial)
    # The serial's own history, not FIFO: the unit decided last is the current one.
    unit = latest_unit(draft, serial)
    if unit is None or unit.status is not SerialStatus.REMOVED:
        raise Refusal(
            ReasonCode.SERIAL_NOT_AVAILABLE,
            f"serial {serial} of {item.lic} {_not_removed(draft, unit)}",
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


def _not_removed(draft: Draft, unit: Unit | None) -> str:
    """Why a count cannot put back a serial no count or loss removed, and what will: a shipped
    unit comes back as a customer return (R13) and one returned to its vendor as a receipt; a
    beginning balance would make either available while the ledger still has it with the
    customer or vendor. Only a serial lotline never had is added with a beginning balance."""
    if unit is None:
        return "was never received: add it with a beginning balance"
    where = whereabouts(draft, unit)
    if unit.status is SerialStatus.SHIPPED:
        return f"{where}: receive it as a customer return"
    if unit.status is SerialStatus.RETURNED_TO_VENDOR:
        return f"{where}: receive it again"
    return where  # in stock: refused before this (`checks.in_stock`)


def _reverse_mfr_lot(
    draft: Draft, item: Item, office: str, entry: LotPick, earlier: list[Pick]
) -> list[Pick]:
    """R11: put back at most what was used from the mfr lot (its initial quantity is the
    ceiling), newest inventory lot first."""
    rows = [
        r for r in draft.mfr_lots_at(office) if r.mfr_lot == entry.mfr_lot and describes(entry, r)
    ]
    if not rows:
        expiring = f" expiring on {entry.expires_on}" if entry.expires_on else ""
        raise Refusal(
            ReasonCode.LOT_NOT_FOUND,
            f"manufacturer lot {entry.mfr_lot}{expiring} of {item.lic} was never at office"
            f" {office}: add it with a beginning balance",
            entry.mfr_lot,
        )
    done: dict[tuple[str, str | None], Decimal] = {}
    for p in earlier:
        done[(p.lot_id, p.mfr_lot)] = done.get((p.lot_id, p.mfr_lot), ZERO) + p.quantity

    def room(row: MfrLot) -> Decimal:
        return row.used - done.get((row.lot_id, row.mfr_lot), ZERO)

    capacity = sum((room(r) for r in rows), ZERO)
    if entry.quantity > capacity:
        raise Refusal(
            ReasonCode.LOT_QTY_EXCEEDS_USED,
            f"{EXCEEDS_USED}: manufacturer lot {entry.mfr_lot} of {item.lic} can take back "
            f"{number(capacity)} (used), adjusted {number(entry.quantity)}",
            f"{entry.quantity} > {capacity}",
        )
    rows.sort(key=lambda r: draft.lots[r.lot_id].arrival, reverse=True)
    return _spread(entry.quantity, [(r.lot_id, r.mfr_lot, room(r)) for r in rows])


def _reverse_plain(draft: Draft, item: Item, cmd: AdjustStock) -> tuple[LotMovement, ...]:
    """R11, R12: fill lots newest first up to their usage; the rest is unallocated stock."""
    lots = draft.lots_at(cmd.office)[::-1]  # newest first
    picks = _spread(cmd.quantity, [(lot.lot_id, None, lot.used) for lot in lots], partial=True)
    draft.move(picks, on_hand=1, used=-1)
    moved = movements(draft, tuple(picks))
    excess = cmd.quantity - sum((p.quantity for p in picks), ZERO)
    if excess > 0:
        unit_cost = checks.cost(cmd.unit_cost, item)
        row = draft.unallocated.get(cmd.office)
        held, value = (row.quantity, row.value) if row is not None else (ZERO, ZERO)
        with localcontext(EXACT):
            value += excess * unit_cost
        draft.set_unallocated(cmd.office, held + excess, value)
        moved += (_unallocated_move(excess, unit_cost),)
    return moved


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
    dropped unread: `LOT_NOT_FOUND` for a lot not at the office, `INVALID_QUANTITY` for one
    named for another number of those units."""
    if cmd.lots:
        named = tuple(
            LotPick(mfr_lot=entry.mfr_lot, quantity=entry.quantity, lot_id=entry.lot_id)
            for entry in cmd.lots
        )
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
