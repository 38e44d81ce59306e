"""Shipment lines: allocate, re-allocate, release, ship (R8, R9, R10, R14).

- Re-allocating an allocated line releases its old picks and allocates anew inside the same
  decision (`LineReleased(reallocated=True)` then `LineAllocated`); if the new allocation is
  refused the old one stands, because the whole draft is dropped.
- A line its sender already refused (`AllocateLine.refusal`: picks shipping could not read,
  R5, or a vendor return naming nothing, R14) is refused with exactly that problem before
  anything is looked at: nothing is decided and any allocation of the line stands. It still
  names the item, so it locks the tracking flags like any refused line (R2, `decide.py`).
- A shipped line is final: allocating, releasing or shipping it again is `UNKNOWN_SHIPMENT`
  ("no open allocation"), as is any line never allocated.
- Vendor returns (R14) must name lots (lot-tracked) or serials (serialized); plain items are
  taken FIFO, only from the lots of the return's reference (its PO) when it has one
  (`Need.reference`). Shipping one removes the stock: units become RETURNED_TO_VENDOR.
- A line of an item both lot-tracked and serialized may name serials and manufacturer lots
  together: the serials decide the units, and each named lot must be at the office
  (`LOT_NOT_FOUND`) and name as many units as the named serials hold in it
  (`INVALID_QUANTITY`), so a lot that contradicts them is refused rather than ignored. A serial
  scanned with its lot (`AllocateLine.serial_lots`) must be a unit of that very lot
  (`INVALID_QUANTITY`, naming the serial and the lot it is in): counts per lot cannot see two
  serials scanned with each other's lots.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from services.allocation.domain import checks
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import (
    EXACT,
    ZERO,
    AllocateLine,
    Allocation,
    CustomerShipment,
    Event,
    Item,
    LineAllocated,
    LineReleased,
    LineShipped,
    LotMovement,
    Pick,
    ReleaseLine,
    SerialStatus,
    ShipLine,
)
from services.allocation.domain.picking import (
    Need,
    automatic,
    lots_hold_serials,
    named_lots,
    named_serials,
    serials_in_their_lots,
)
from services.allocation.domain.quarantine import held_pick, why
from services.allocation.domain.receiving import require_item


def allocate(draft: Draft, cmd: AllocateLine) -> tuple[Event, ...]:
    """R9: allocate the line at its office, replacing any earlier allocation of it."""
    if cmd.refusal is not None:
        refusal = cmd.refusal
        raise Refusal(refusal.reason_code, refusal.reason, refusal.offending)
    item = require_item(draft)
    quantity = checks.positive(cmd.quantity)
    checks.whole_for(item, quantity)
    events: list[Event] = []
    previous = draft.allocations.get((cmd.shipment_id, cmd.line_no))
    if previous is not None and previous.status == "shipped":
        raise _not_open(cmd.shipment_id, cmd.line_no, "it was already shipped")
    if previous is not None and previous.status == "allocated":
        events.append(release(draft, previous, cmd.message_id, reallocated=True))
    picks = choose(draft, item, cmd, quantity)
    moved = movements(draft, tuple(picks))
    allocation = Allocation(
        shipment_id=cmd.shipment_id,
        line_no=cmd.line_no,
        lic=item.lic,
        office=cmd.office,
        kind=cmd.kind,
        counterparty=cmd.counterparty,
        ship_on=cmd.ship_on,
        quantity=quantity,
        picks=tuple(picks),
        explicit=bool(cmd.lots or cmd.serials),
        complete=is_complete(item, quantity, picks),
        movements=moved,
    )
    hold(draft, allocation)
    draft.lock_item()
    events.append(
        LineAllocated(
            command_id=cmd.message_id,
            lic=item.lic,
            shipment_id=cmd.shipment_id,
            line_no=cmd.line_no,
            office=cmd.office,
            kind=cmd.kind,
            counterparty=cmd.counterparty,
            ship_on=cmd.ship_on,
            quantity=quantity,
            movements=moved,
            explicit=allocation.explicit,
            complete=allocation.complete,
        )
    )
    return tuple(events)


def choose(draft: Draft, item: Item, cmd: AllocateLine, quantity: Decimal) -> list[Pick]:
    checks.no_serials(item, cmd.serials)
    if cmd.lots:
        checks.no_lots(item, (p.mfr_lot for p in cmd.lots))
    if cmd.serial_lots:
        checks.no_lots(item, (mfr_lot for _, mfr_lot in cmd.serial_lots))
    if cmd.kind == "vendor_return":
        _require_named(item, cmd)
    quarantines = bool(draft.quarantines)  # none (the usual case): nothing more is looked at
    need = Need(
        item=item,
        office=cmd.office,
        ship_on=cmd.ship_on,
        fresh_only=item.perishable and cmd.kind == "sale",
        min_shelf_life_days=cmd.min_shelf_life_days,
        skip_held=quarantines,
        refuse_held=quarantines and cmd.kind == "sale",
        reference=cmd.reference if cmd.kind == "vendor_return" else None,
    )
    # Named picks may cover part of the line: it is then allocated as far as named and left
    # incomplete, and shipping refuses to ship it until picks cover it (R8). Serials decide
    # the units; lots named beside them must agree with them, never be dropped unread, and
    # so must the lot each serial was scanned with, unit by unit.
    if cmd.serials:
        serials = checks.serial_list(item, cmd.serials, quantity, partial=True)
        picks = named_serials(draft, need, serials)
        if cmd.lots:
            lots_hold_serials(draft, need, cmd.lots, picks)
        serials_in_their_lots(need, cmd.serial_lots, picks)
        return picks
    serials_in_their_lots(need, cmd.serial_lots, [])  # refuses a scanned serial not named
    if cmd.lots:
        checks.picks_within(quantity, (p.quantity for p in cmd.lots))
        return named_lots(draft, need, cmd.lots)
    return automatic(draft, need, quantity)


def _require_named(item: Item, cmd: AllocateLine) -> None:
    if item.serialized and not cmd.serials:
        raise Refusal(
            ReasonCode.SERIAL_REQUIRED,
            f"a return to vendor of serialized item {item.lic} must name its serials",
            cmd.shipment_id,
        )
    if item.track_mfr_lot and not cmd.lots and not cmd.serials:
        raise Refusal(
            ReasonCode.LOT_REQUIRED,
            f"a return to vendor of lot-tracked item {item.lic} must name its manufacturer lots",
            cmd.shipment_id,
        )


def is_complete(item: Item, quantity: Decimal, picks: list[Pick]) -> bool:
    """R8: every lot-tracked unit has a mfr lot and every serialized unit a serial."""
    covered = sum((p.quantity for p in picks), ZERO) == quantity
    lots_named = not item.track_mfr_lot or all(p.mfr_lot for p in picks)
    serials_named = not item.serialized or all(p.serial for p in picks)
    return covered and lots_named and serials_named


def hold(draft: Draft, allocation: Allocation) -> None:
    draft.move(allocation.picks, allocated=1)
    draft.put_units(
        draft.units[(pick.serial, pick.lot_id)].moved_to(
            SerialStatus.ALLOCATED, shipment_id=allocation.shipment_id, line_no=allocation.line_no
        )
        for pick in allocation.picks
        if pick.serial is not None
    )
    draft.put_allocation(allocation)


def release_line(draft: Draft, cmd: ReleaseLine) -> tuple[Event, ...]:
    """Cancel: give the line's picks back to free stock."""
    require_item(draft)
    allocation = _open(draft, cmd.shipment_id, cmd.line_no)
    return (release(draft, allocation, cmd.message_id, reallocated=False),)


def release(
    draft: Draft, allocation: Allocation, command_id: str, *, reallocated: bool
) -> LineReleased:
    draft.move(allocation.picks, allocated=-1)
    draft.put_units(
        draft.units[(pick.serial, pick.lot_id)].moved_to(SerialStatus.AVAILABLE)
        for pick in allocation.picks
        if pick.serial is not None
    )
    draft.put_allocation(allocation.with_status("released"))
    return LineReleased(
        command_id=command_id,
        lic=allocation.lic,
        shipment_id=allocation.shipment_id,
        line_no=allocation.line_no,
        office=allocation.office,
        released_on=allocation.ship_on,
        movements=held(draft, allocation),
        reallocated=reallocated,
        counterparty=allocation.counterparty,
    )


def ship(draft: Draft, cmd: ShipLine) -> tuple[Event, ...]:
    """R8, R10, R14: allocated stock becomes used, costed at each lot's unit cost."""
    require_item(draft)
    allocation = _open(draft, cmd.shipment_id, cmd.line_no)
    if not allocation.complete:
        raise Refusal(
            ReasonCode.SHIPMENT_INCOMPLETE,
            f"shipment {cmd.shipment_id} line {cmd.line_no} does not name every manufacturer "
            "lot and serial it ships",
            f"{cmd.shipment_id}/{cmd.line_no}",
        )
    if draft.quarantines and allocation.kind == "sale":
        _not_in_quarantine(draft, allocation)
    _use(draft, allocation)
    draft.put_allocation(allocation.with_status("shipped"))
    moved = held(draft, allocation)
    with localcontext(EXACT):  # up to 33 digits per movement: the default context rounds
        total_cost = sum((m.quantity * m.unit_cost for m in moved), ZERO)
    return (
        LineShipped(
            command_id=cmd.message_id,
            lic=allocation.lic,
            shipment_id=allocation.shipment_id,
            line_no=allocation.line_no,
            office=allocation.office,
            kind=allocation.kind,
            counterparty=allocation.counterparty,
            ship_on=allocation.ship_on,
            quantity=allocation.quantity,
            movements=moved,
            total_cost=total_cost,
            closed_lots=tuple(draft.closed),
        ),
    )


def _not_in_quarantine(draft: Draft, allocation: Allocation) -> None:
    """A sale line allocated before its stock went into quarantine does not ship: its
    allocation stands, to be cancelled or picked again (`quarantine.py`)."""
    found = held_pick(draft, allocation.picks)
    if found is None:
        return
    pick, rule = found
    stock = f"inventory lot {pick.lot_id}"
    if pick.mfr_lot is not None:
        stock = f"manufacturer lot {pick.mfr_lot} in {stock}"
    if pick.serial is not None:
        stock = f"serial {pick.serial} of {stock}"
    line = f"{allocation.shipment_id}/{allocation.line_no}"
    raise Refusal(
        ReasonCode.SHIPMENT_INCOMPLETE,
        f"shipment {allocation.shipment_id} line {allocation.line_no} holds {stock}, which is "
        f"in quarantine ({why(rule)}): pick the line again, or cancel what is left of the shipment",
        line,
    )


def _use(draft: Draft, allocation: Allocation) -> None:
    """The line's picks leave stock; a sale counts them shipped to its customer (R13)."""
    picks = allocation.picks
    draft.move(picks, allocated=-1, on_hand=-1, used=1)
    sale = allocation.kind == "sale"
    target = SerialStatus.SHIPPED if sale else SerialStatus.RETURNED_TO_VENDOR
    customer = allocation.counterparty if sale else None
    draft.put_units(
        draft.units[(pick.serial, pick.lot_id)].moved_to(
            target,
            shipment_id=allocation.shipment_id,
            line_no=allocation.line_no,
            customer=customer,
        )
        for pick in picks
        if pick.serial is not None
    )
    if not sale:
        return
    shipped: dict[tuple[str, str | None], Decimal] = {}
    for pick in picks:
        key = (pick.lot_id, pick.mfr_lot)
        before = shipped.get(key)
        shipped[key] = pick.quantity if before is None else before + pick.quantity
    name = allocation.counterparty or ""
    for (lot_id, mfr_lot), quantity in shipped.items():
        row = draft.shipments.get((lot_id, mfr_lot, name))
        if row is None:
            row = CustomerShipment(lot_id=lot_id, mfr_lot=mfr_lot, customer=name, shipped=ZERO)
        draft.put_shipment(row.shipped_more(quantity))


def movements(draft: Draft, picks: tuple[Pick, ...]) -> tuple[LotMovement, ...]:
    lots, mfr_lots = draft.lots, draft.mfr_lots
    return tuple(
        LotMovement(
            lot_id=p.lot_id,
            mfr_lot=p.mfr_lot,
            expires_on=mfr_lots[(p.lot_id, p.mfr_lot)].expires_on if p.mfr_lot else None,
            serial=p.serial,
            quantity=p.quantity,
            unit_cost=lots[p.lot_id].unit_cost,
        )
        for p in picks
    )


def held(draft: Draft, allocation: Allocation) -> tuple[LotMovement, ...]:
    """The allocation's picks as movements: those it kept, or built anew if it was loaded."""
    if allocation.movements is not None:
        return allocation.movements
    return movements(draft, allocation.picks)


def _open(draft: Draft, shipment_id: str, line_no: int) -> Allocation:
    allocation = draft.allocations.get((shipment_id, line_no))
    if allocation is None:
        raise _not_open(shipment_id, line_no, "it was never allocated")
    if allocation.status != "allocated":
        # The status in words: "shipped" or "released" (given back to stock).
        why = "it was already shipped" if allocation.status == "shipped" else "it was released"
        raise _not_open(shipment_id, line_no, why)
    return allocation


def _not_open(shipment_id: str, line_no: int, why: str) -> Refusal:
    return Refusal(
        ReasonCode.UNKNOWN_SHIPMENT,
        f"shipment {shipment_id} line {line_no} has no open allocation: {why}",
        f"{shipment_id}/{line_no}",
    )
