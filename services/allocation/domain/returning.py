"""Customer returns (R13).

- A serialized return names serials that were SHIPPED from the return's office (to the named
  customer, when one is named): otherwise `SERIAL_NOT_SHIPPED`, saying where the serial is
  now (`serials.whereabouts`): in stock (back already, say), shipped to another customer,
  returned to its vendor, removed by a count. The unit becomes AVAILABLE again in its
  original lot.
- A serialized return may also name mfr lots (a lot-tracked item's): they must hold the named
  serials, as on a shipment line (`picking.lots_hold_serials`): a lot not at the office is
  `LOT_NOT_FOUND`, a lot named for more or fewer units than the serials hold in it
  `INVALID_QUANTITY`, each naming the lot. A serial scanned with its lot
  (`ReturnFromCustomer.serial_lots`) must be a unit of that very lot, as on a shipment line
  (`picking.serials_in_their_lots`): `INVALID_QUANTITY`, naming the serial and the lot it is
  in, since counts per lot cannot see two serials scanned with each other's lots. A pairing
  naming a serial the return does not name is refused the same way.
- A lot-tracked return names mfr lots; a plain return names nothing. Either cannot exceed what
  was shipped from the return's office (to that customer) out of those lots minus what already
  came back, nor what those lots still count as used: `RETURN_EXCEEDS_SHIPPED`. Newest lots take
  returns first, newest by `InventoryLot.arrival` (receipt date, then decision order), the
  reverse of the order FIFO ships them in. Within a lot, a return naming no customer counts
  against the unnamed sale first, then customers by name: never the rows' listing order.
  The refusal shows its arithmetic (`_exceeds`): shipped N (to the customer) from the office,
  M of it returned, so N − M can come back (less, where counts put usage back). The rows keep
  how much came back, not which return named whom, so a named customer's M may hold returns
  that named no customer: the reason then says how those are counted. A manufacturer lot the
  item never had (a typo) is `LOT_NOT_FOUND`, naming the lots shipped (to the customer) from
  the office, as a pick or a count naming one is. No reason says "only 0": "none was
  shipped", "none can come back".
- Returned stock goes back into the inventory lot it was shipped from (reopening it, R7), and
  its usage is reversed at the lot's unit cost. An inventory lot is at one office, so a return
  is received at the office that shipped it: stock counted back into a lot at another office
  would be shown where it is not, and there is no transfer between offices to move it.
- A held return (one line of a document with several) counts back and puts back in the same way,
  but holds the stock (`held` quantities, serials HELD) until the line is confirmed or cancelled
  (`holding.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.allocation.domain import checks
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.holding import hold_line, moved_keeping_customer
from services.allocation.domain.model import (
    ZERO,
    CustomerShipment,
    Item,
    LineHeld,
    LotPick,
    Pick,
    ReturnFromCustomer,
    SerialStatus,
    StockReturned,
)
from services.allocation.domain.picking import (
    Need,
    lots_hold_serials,
    merge_named,
    serials_in_their_lots,
)
from services.allocation.domain.receiving import held_on_arrival, require_item
from services.allocation.domain.serials import latest_unit, near_matches, whereabouts
from services.allocation.domain.shipping import movements
from shared.reasons import listed, number

ShipmentKey = tuple[str, str | None, str]
Returned = tuple[Pick, ShipmentKey]
"""A pick back into a lot, and the shipment row it is counted against."""


def return_stock(draft: Draft, cmd: ReturnFromCustomer) -> tuple[StockReturned] | tuple[LineHeld]:
    item = require_item(draft)
    quantity = checks.positive(cmd.quantity)
    checks.whole_for(item, quantity)
    checks.no_serials(item, cmd.serials)
    checks.no_lots(item, (p.mfr_lot for p in cmd.lots))
    if cmd.serial_lots:
        checks.no_lots(item, (mfr_lot for _, mfr_lot in cmd.serial_lots))
    need = Need(item=item, office=cmd.office, ship_on=cmd.received_on, fresh_only=False)
    if item.serialized:
        serials = checks.serial_list(item, _serials(item, cmd), quantity)
        picks = [_return_unit(draft, item, cmd, serial) for serial in serials]
        if cmd.lots:
            # R13: lots named beside the serials must hold them, never be dropped unread;
            # the same check as a shipment line naming both (R9).
            lots_hold_serials(draft, need, cmd.lots, [pick for pick, _ in picks])
    elif item.track_mfr_lot:
        picks = []
        for pick in _lots(item, cmd, quantity):
            picks.extend(_returnable(draft, item, cmd, pick, picks))
    else:
        whole = LotPick(mfr_lot="", quantity=quantity)
        picks = _returnable(draft, item, cmd, whole, [])
    picked = tuple(pick for pick, _ in picks)
    # R5, R15: and each serial scanned with its lot must come back from that very lot, unit by
    # unit (a pairing on a return of units without serials names none of them: refused).
    serials_in_their_lots(need, cmd.serial_lots, list(picked))
    returned = _reverse(draft, picks, held=cmd.hold)
    draft.lock_item()
    event = StockReturned(
        command_id=cmd.message_id,
        lic=item.lic,
        shipment_id=cmd.shipment_id,
        line_no=cmd.line_no,
        office=cmd.office,
        customer=cmd.customer,
        received_on=cmd.received_on,
        quantity=quantity,
        movements=movements(draft, picked),
        reopened_lots=tuple(draft.reopened),
        quarantined=held_on_arrival(draft, picked),
    )
    if not cmd.hold:
        return (event,)
    return hold_line(draft, cmd, event, picked, returned=tuple(returned.items()))


def _return_unit(draft: Draft, item: Item, cmd: ReturnFromCustomer, serial: str) -> Returned:
    customer = cmd.customer
    units = draft.units_with_serial(serial)
    to_them = [
        u for u in units if u.status is SerialStatus.SHIPPED and customer in (None, u.customer)
    ]
    shipped = [u for u in to_them if draft.lots[u.lot_id].office == cmd.office]
    if not shipped:
        to = f" to {customer}" if customer else ""
        if to_them:
            offices = listed(sorted({draft.lots[u.lot_id].office for u in to_them}))
            why = (
                f"was shipped{to} from office {offices}, not {cmd.office}: a return is "
                "received at the office that shipped it"
            )
        elif any(u.status is SerialStatus.HELD for u in units):
            why = "is already coming back on a return held for the rest of its document"
        else:
            why = _not_out(draft, customer, serial)
        raise Refusal(ReasonCode.SERIAL_NOT_SHIPPED, f"serial {serial} of {item.lic} {why}", serial)
    if any(u.in_stock for u in units):
        raise checks.in_stock(item, serial, draft)
    # The serial's own history, not FIFO: a serial is received again only after it left stock,
    # so the unit decided last (highest seq) is the one shipped last.
    unit = max(shipped, key=lambda u: draft.lots[u.lot_id].seq)
    pick = Pick(lot_id=unit.lot_id, mfr_lot=unit.mfr_lot, serial=serial, quantity=Decimal(1))
    return pick, (unit.lot_id, unit.mfr_lot, unit.customer or "")


def _not_out(draft: Draft, customer: str | None, serial: str) -> str:
    """R13: where a serial no customer (or not `customer`) holds is instead, from its current
    unit: never received, in stock (back already, say, or never shipped: the state does not
    tell), shipped to another customer, returned to its vendor, removed by a count. One never
    received names its near matches ("ip200-0001" for "IP200-0001")."""
    unit = latest_unit(draft, serial)
    if unit is None:
        return f"was never received{near_matches(draft, serial)}"
    where = whereabouts(draft, unit)
    if unit.status is SerialStatus.SHIPPED:  # so `customer` is named, and another
        return f"{where}, not to {customer}"
    return f"is not with a customer: it {where}"


def _returnable(
    draft: Draft, item: Item, cmd: ReturnFromCustomer, wanted: LotPick, earlier: list[Returned]
) -> list[Returned]:
    """Spread a return over the lots at its office that shipped it, newest first, within what
    each shipped (minus returns) and still counts as used."""
    customer = cmd.customer
    mfr_lot = wanted.mfr_lot or None
    rows = [
        row
        for row in draft.shipments.values()
        if row.mfr_lot == mfr_lot
        and wanted.lot_id in (None, row.lot_id)
        and customer in (None, row.customer)
    ]
    elsewhere = sorted(
        {draft.lots[r.lot_id].office for r in rows if r.returnable > 0} - {cmd.office}
    )
    rows = [row for row in rows if draft.lots[row.lot_id].office == cmd.office]
    # A total order, never the dict's (first shipment in memory, heap order once reloaded: §6
    # "replays decide the same way"). Newest lot first; within a lot (one mfr lot, so one row
    # per customer) a return naming no customer counts against the unnamed sale ("") first,
    # being the likeliest match and leaving named customers' rows for their own returns, then
    # by customer name. Two stable sorts: the few rows of one return, so cheap.
    rows.sort(key=lambda row: row.customer)
    rows.sort(key=lambda row: draft.lots[row.lot_id].arrival, reverse=True)
    taken: dict[tuple[str, str | None], Decimal] = {}
    from_row: dict[ShipmentKey, Decimal] = {}
    for p, row_key in earlier:
        taken[(p.lot_id, p.mfr_lot)] = taken.get((p.lot_id, p.mfr_lot), ZERO) + p.quantity
        from_row[row_key] = from_row.get(row_key, ZERO) + p.quantity
    picks: list[Returned] = []
    left = wanted.quantity
    available = ZERO
    for row in rows:
        lot_key = (row.lot_id, row.mfr_lot)
        not_back = row.returnable - from_row.get(row.key, ZERO)
        room = min(not_back, _used(draft, row) - taken.get(lot_key, ZERO))
        if room <= 0:
            continue
        available += room
        take = min(room, left)
        if take > 0:
            pick = Pick(lot_id=row.lot_id, mfr_lot=mfr_lot, serial=None, quantity=take)
            picks.append((pick, row.key))
            taken[lot_key] = taken.get(lot_key, ZERO) + take
            left -= take
    if left > 0:
        if mfr_lot is not None and not _has_lot(draft, mfr_lot):
            raise _no_such_lot(draft, item, cmd, mfr_lot)
        counted = Counted(
            shipped=sum((row.shipped for row in rows), ZERO),
            returned=sum((row.returned for row in rows), ZERO),
            on_this_return=sum((from_row.get(row.key, ZERO) for row in rows), ZERO),
            available=available,
        )
        raise _exceeds(item, cmd, wanted, counted, elsewhere)
    return picks


@dataclass(frozen=True, slots=True)
class Counted:
    """What a return's refusal counts from the shipment rows it may come back against (R13):
    shipped from them, returned to them before, named by this return's earlier entries, and
    what can come back (within what each row's lot still counts as used)."""

    shipped: Decimal
    returned: Decimal
    on_this_return: Decimal
    available: Decimal

    @property
    def unreturned(self) -> Decimal:
        """Shipped and not returned, whether or not its usage is still there (R11)."""
        return self.shipped - self.returned - self.on_this_return


def _exceeds(
    item: Item, cmd: ReturnFromCustomer, wanted: LotPick, counted: Counted, elsewhere: list[str]
) -> Refusal:
    """RETURN_EXCEEDS_SHIPPED with its arithmetic: shipped N (to the customer) from the office,
    M of it returned, so N − M can come back; less, when counts put back usage it would
    reverse (R11). A named customer's M may include returns that named no customer, which the
    rows cannot tell apart: the reason says how those are counted (`UNNAMED_RETURNS`)."""
    customer = cmd.customer
    what = f"manufacturer lot {wanted.mfr_lot}" if wanted.mfr_lot else f"item {item.lic}"
    to = f" to {customer}" if customer else ""
    shipped = f"{number(counted.shipped)} was shipped{to} from office {cmd.office}"
    back = " and ".join(
        part
        for quantity, part in (
            (counted.returned, f"{number(counted.returned)} of it was returned"),
            (
                counted.on_this_return,
                f"{number(counted.on_this_return)} of it is named earlier on this return",
            ),
        )
        if quantity
    )
    can = f"only {number(counted.available)}" if counted.available else "none"
    if not counted.shipped:
        said = f"none was shipped{to} from office {cmd.office}"
    elif counted.unreturned == counted.available:
        said = f"{shipped} and {back}, so {can} can come back" if back else f"only {shipped}"
    else:
        # R11: a count or loss put back usage this return would reverse; saying "only
        # `available` was shipped" would contradict the shipment records.
        left = f"{back}, leaving {number(counted.unreturned)}" if back else "not returned"
        said = (
            f"{can} can come back: {shipped} and {left}, but counts have put back the usage of "
            f"{number(counted.unreturned - counted.available)} of it (add the rest with a "
            "beginning balance)"
        )
    if elsewhere:
        said += (
            f" (more was shipped from office {listed(elsewhere)}: a return is received"
            " at the office that shipped it)"
        )
    if customer and counted.returned:
        said += f"; {UNNAMED_RETURNS}"
    return Refusal(
        ReasonCode.RETURN_EXCEEDS_SHIPPED,
        f"{what}: returning {number(wanted.quantity)}, but {said}",
        f"{wanted.quantity} > {counted.available}",
    )


UNNAMED_RETURNS = (
    "what was returned may include returns that named no customer: each is counted against "
    "the customers the stock was shipped to, newest inventory lot first and, within a lot, "
    "the sale that named no customer first, then customers by name"
)
"""How a return naming no customer was counted (`_returnable`'s order), for a refusal naming a
customer: the shipment rows record how much came back, not which return named whom."""


def _has_lot(draft: Draft, mfr_lot: str) -> bool:
    """Whether the item ever had manufacturer lot `mfr_lot`, at any office (read on a refusal
    only: every mfr lot of the item is looked at)."""
    return any(name == mfr_lot for _, name in draft.mfr_lots)


def _no_such_lot(draft: Draft, item: Item, cmd: ReturnFromCustomer, mfr_lot: str) -> Refusal:
    """LOT_NOT_FOUND for a return naming a manufacturer lot the item never had (a typo, most
    likely), as a pick or a count naming one is refused, not RETURN_EXCEEDS_SHIPPED ("only 0
    was shipped"): with the lots that were shipped from the office (to the customer), if any."""
    customer = cmd.customer
    shipped = sorted(
        {
            row.mfr_lot
            for row in draft.shipments.values()
            if row.mfr_lot is not None
            and row.shipped > 0
            and customer in (None, row.customer)
            and draft.lots[row.lot_id].office == cmd.office
        }
    )
    reason = f"item {item.lic} has no manufacturer lot {mfr_lot}"
    if shipped:
        to = f" to {customer}" if customer else ""
        lots = "manufacturer lot" if len(shipped) == 1 else "manufacturer lots"
        reason += f"; {lots} shipped{to} from office {cmd.office}: {listed(shipped)}"
    return Refusal(ReasonCode.LOT_NOT_FOUND, reason, mfr_lot)


def _used(draft: Draft, row: CustomerShipment) -> Decimal:
    if row.mfr_lot is None:
        return draft.lots[row.lot_id].used
    return draft.mfr_lots[(row.lot_id, row.mfr_lot)].used


def _reverse(draft: Draft, picks: list[Returned], *, held: bool) -> dict[ShipmentKey, Decimal]:
    """Usage reversed into the original lots (held there, if `held`); the shipment rows record
    the return. Returns what each shipment row counted back."""
    draft.move([pick for pick, _ in picks], on_hand=1, used=-1, held=1 if held else 0)
    returned: dict[ShipmentKey, Decimal] = {}
    for pick, key in picks:
        if pick.serial is not None:
            unit = draft.units[(pick.serial, pick.lot_id)]
            if held:
                draft.put_unit(moved_keeping_customer(unit, SerialStatus.HELD))
            else:
                draft.put_unit(unit.moved_to(SerialStatus.AVAILABLE))
        before = returned.get(key)
        returned[key] = pick.quantity if before is None else before + pick.quantity
    for key, quantity in returned.items():
        row = draft.shipments.get(key)
        if row is not None:
            draft.put_shipment(row.returned_more(quantity))
    return returned


def _serials(item: Item, cmd: ReturnFromCustomer) -> tuple[str, ...]:
    if not cmd.serials:
        raise Refusal(
            ReasonCode.SERIAL_REQUIRED,
            f"a return of serialized item {item.lic} must name its serials",
            cmd.shipment_id,
        )
    return cmd.serials


def _lots(item: Item, cmd: ReturnFromCustomer, quantity: Decimal) -> tuple[LotPick, ...]:
    if not cmd.lots:
        raise Refusal(
            ReasonCode.LOT_REQUIRED,
            f"a return of lot-tracked item {item.lic} must name its manufacturer lots",
            cmd.shipment_id,
        )
    for pick in cmd.lots:
        checks.positive(pick.quantity, f"quantity of manufacturer lot {pick.mfr_lot}")
    checks.lot_sum(quantity, (p.quantity for p in cmd.lots))
    return merge_named(cmd.lots)
