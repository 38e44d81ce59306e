"""Held receipt lines: a document received whole or not at all.

A document with several lines goes to allocation as one command per line, each decided by the
writer of its LIC. Receiving sends them with `hold`: each line is checked and applied as usual,
but its stock is held and its event kept (`LineHeld.decided`). Held stock is on hand and its
serials count as in stock, so no other document may take a serial or a return, yet it is never
picked, removed or counted as free:

- a receipt's new lot is held whole (`held` = on hand, in the lot and its mfr lots): such a lot
  is not stocked (`Draft.stocked`), so no pick or adjustment sees it or its AVAILABLE units;
- a return's quantities are held in the lots they went back to, its units HELD.

When every line is held, receiving confirms each; when any is refused, it cancels the held ones,
and nothing of the document ever happened.

- Confirm: the stock becomes usable; the kept event is published then (`HeldSettled`).
- Cancel: a receipt's new lot goes with its mfr lots and units (nothing could have used them);
  a return's units go back to SHIPPED with their customer, its quantities leave the lots again
  and the shipment rows count them as not returned. Serials handed out from the item's Next
  Serial are not taken back: a gap in the numbering, never a serial issued twice.
"""

from __future__ import annotations

from decimal import Decimal

from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import (
    CancelHeld,
    ConfirmHeld,
    HeldLine,
    HeldSettled,
    LineHeld,
    Pick,
    ReceiveStock,
    ReturnFromCustomer,
    SerialStatus,
    StockReceived,
    StockReturned,
    Unit,
)


def hold_line(
    draft: Draft,
    cmd: ReceiveStock | ReturnFromCustomer,
    decided: StockReceived | StockReturned,
    picks: tuple[Pick, ...],
    *,
    lot_id: str | None = None,
    returned: tuple[tuple[tuple[str, str | None, str], Decimal], ...] = (),
) -> tuple[LineHeld]:
    """Record a line just applied with its stock held; answer `LineHeld`, keeping `decided`."""
    draft.put_hold(
        HeldLine(
            command_id=cmd.message_id,
            shipment_id=cmd.shipment_id,
            line_no=cmd.line_no,
            picks=picks,
            lot_id=lot_id,
            returned=returned,
        )
    )
    held = LineHeld(
        command_id=cmd.message_id,
        lic=cmd.lic,
        shipment_id=cmd.shipment_id,
        line_no=cmd.line_no,
        decided=decided,
    )
    return (held,)


def moved_keeping_customer(unit: Unit, status: SerialStatus) -> Unit:
    """A returned unit held, or a held return cancelled: whom it was shipped to stays on it, so
    a cancel ships it back there."""
    return unit.moved_to(
        status, shipment_id=unit.shipment_id, line_no=unit.line_no, customer=unit.customer
    )


def confirm(draft: Draft, cmd: ConfirmHeld) -> tuple[HeldSettled]:
    hold = _held(draft, cmd)
    draft.move(hold.picks, held=-1)
    if hold.kind == "return":  # a receipt's units are AVAILABLE already, in a lot now stocked
        draft.put_units(
            draft.units[(pick.serial, pick.lot_id)].moved_to(SerialStatus.AVAILABLE)
            for pick in hold.picks
            if pick.serial is not None
        )
    draft.drop_hold(hold.command_id)
    item = draft.item
    next_serial = item.next_serial if hold.kind == "receipt" and item and item.serialized else None
    return (_settled(cmd, confirmed=True, next_serial=next_serial),)


def cancel(draft: Draft, cmd: CancelHeld) -> tuple[HeldSettled]:
    hold = _held(draft, cmd)
    if hold.lot_id is not None:  # a receipt: its new lot goes whole
        draft.delete_lot(hold.lot_id)
    else:
        draft.move(hold.picks, on_hand=-1, used=1, held=-1)
        for pick in hold.picks:
            if pick.serial is not None:
                unit = draft.units[(pick.serial, pick.lot_id)]
                draft.put_unit(moved_keeping_customer(unit, SerialStatus.SHIPPED))
        for key, quantity in hold.returned:
            row = draft.shipments.get(key)
            if row is not None:
                draft.put_shipment(row.returned_more(-quantity))
    draft.drop_hold(hold.command_id)
    return (_settled(cmd, confirmed=False),)


def _held(draft: Draft, cmd: ConfirmHeld | CancelHeld) -> HeldLine:
    hold = draft.holds.get(cmd.command_id)
    if hold is None:
        # Receiving settles each held line once; anything else is a bug worth an answer.
        raise Refusal(
            ReasonCode.UNKNOWN_SHIPMENT,
            f"no held receipt line {cmd.command_id} for item {cmd.lic}",
            cmd.command_id,
        )
    return hold


def _settled(
    cmd: ConfirmHeld | CancelHeld, *, confirmed: bool, next_serial: str | None = None
) -> HeldSettled:
    return HeldSettled(
        command_id=cmd.message_id,
        lic=cmd.lic,
        held_command_id=cmd.command_id,
        confirmed=confirmed,
        next_serial=next_serial,
    )


def where_held(draft: Draft, unit: Unit) -> str | None:
    """Why a unit in stock is not free because a held line holds it, naming that line: "on
    receipt PO-7 line 2, held until every line of the document is accepted" (AVAILABLE in a
    held receipt's lot) or "coming back on customer return RMA-3 line 1, held until …" (HELD);
    None when no held line holds it. Read on a refusal only."""
    if unit.status is SerialStatus.HELD:
        found = next(
            (
                h
                for h in draft.holds.values()
                if any(p.serial == unit.serial and p.lot_id == unit.lot_id for p in h.picks)
            ),
            None,
        )
        what = "coming back on customer return"
    elif unit.lot_id not in draft.stocked:
        found = next((h for h in draft.holds.values() if h.lot_id == unit.lot_id), None)
        what = "on receipt"
    else:
        return None
    line = "" if found is None else f" {found.shipment_id} line {found.line_no}"
    return f"{what}{line}, held until every line of the document is accepted"
