"""Stock coming in as a new inventory lot: receipt lines and beginning balances (R3–R7, R11).

Policies:
- The same manufacturer lot listed twice on one line (e.g. one entry per barcode scan) is merged
  when the expiry dates agree and refused (`EXPIRY_REQUIRED`) when they differ, one of them
  missing included (the reason says "expiring on … and without one", as receiving does).
- Serials of an item that is both lot-tracked and serialized are assigned to the line's
  manufacturer lots in the order both are listed.
- Given serials win over `generate_serials`; generation needs the flag and a Next Serial. A
  generated serial already in stock is refused `DUPLICATE_SERIAL` saying it came from the Next
  Serial (the line typed none) and what to do: type the serials or move the Next Serial on.
- A lot id that already exists is refused (`INVALID_QUANTITY`): the lot id is deterministic from
  the document, so this is the same document line sent again under a new message id.
- A held line (one of a document with several, `ReceiveStock.hold`) is decided in full, but its
  new lot is held whole (`held` = on hand: not stocked, so nothing picks it) and its event kept
  until the line is confirmed (`holding.py`): a document is received whole or not at all.
- Units arriving in stock that a quarantine in force holds (a manufacturer lot recalled
  `before_receipt`, say) are received all the same, held by the rule (`quarantine.py`), and
  the event names them (`held_on_arrival`): the dock must put them in quarantine storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from services.allocation.domain import checks
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.holding import hold_line
from services.allocation.domain.model import (
    HeldOnArrival,
    InventoryLot,
    Item,
    LineHeld,
    LotEntry,
    LotKind,
    LotMovement,
    MfrLot,
    Pick,
    ReceiveStock,
    StockReceived,
    Unit,
)
from services.allocation.domain.serials import serial_run
from shared.reasons import listed, listed_expiring, number

ONE = Decimal(1)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewLot:
    """What a receipt-like line asks for, before validation."""

    lot_id: str
    office: str
    kind: LotKind
    reference: str
    received_on: date
    quantity: Decimal
    unit_cost: Decimal | None
    mfr_lots: tuple[LotEntry, ...]
    serials: tuple[str, ...]
    generate_serials: bool = False
    held: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    lot: InventoryLot
    movements: tuple[LotMovement, ...]
    generated: tuple[str, ...]


def require_item(draft: Draft) -> Item:
    if draft.item is None:
        raise Refusal(ReasonCode.UNKNOWN_ITEM, f"item {draft.lic} is not known", draft.lic)
    return draft.item


def receive(draft: Draft, cmd: ReceiveStock) -> tuple[StockReceived] | tuple[LineHeld]:
    """R3, R4, R6, R7: one receipt line becomes one open inventory lot."""
    spec = NewLot(
        lot_id=cmd.lot_id,
        office=cmd.office,
        kind=cmd.kind,
        reference=cmd.reference or cmd.shipment_id,
        received_on=cmd.received_on,
        quantity=cmd.quantity,
        unit_cost=cmd.unit_cost,
        mfr_lots=cmd.mfr_lots,
        serials=cmd.serials,
        generate_serials=cmd.generate_serials,
        held=cmd.hold,
    )
    got = stock_in(draft, spec)
    event = StockReceived(
        command_id=cmd.message_id,
        lic=cmd.lic,
        lot_id=got.lot.lot_id,
        office=got.lot.office,
        kind=got.lot.kind,
        reference=got.lot.reference,
        shipment_id=cmd.shipment_id,
        line_no=cmd.line_no,
        received_on=cmd.received_on,
        quantity=got.lot.received_qty,
        unit_cost=got.lot.unit_cost,
        movements=got.movements,
        generated_serials=got.generated,
        next_serial=draft.item.next_serial if draft.item else None,
        quarantined=held_on_arrival(draft, got.movements),
    )
    if not cmd.hold:
        return (event,)
    # The lot is held whole: its quantities, per mfr lot, not one pick per serial.
    lot_id = got.lot.lot_id
    rows = [draft.mfr_lots[(lot_id, name)] for name in draft.mfr_names.get(lot_id, ())]
    picks = tuple(
        Pick(lot_id=lot_id, mfr_lot=row.mfr_lot, serial=None, quantity=row.initial_qty)
        for row in rows
    ) or (Pick(lot_id=lot_id, mfr_lot=None, serial=None, quantity=got.lot.received_qty),)
    return hold_line(draft, cmd, event, picks, lot_id=lot_id)


def stock_in(draft: Draft, spec: NewLot) -> Received:
    """Validate a receipt-like line and write its lot, mfr lots and units into `draft`."""
    item = require_item(draft)
    if spec.lot_id in draft.lots:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"inventory lot {spec.lot_id} already exists: this line was received before",
            spec.lot_id,
        )
    if spec.lot_id in draft.lots_elsewhere:
        raise Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"inventory lot {spec.lot_id} already exists for item "
            f"{draft.lots_elsewhere[spec.lot_id]}: this document line was received before",
            spec.lot_id,
        )
    quantity = checks.positive(spec.quantity)
    checks.whole_for(item, quantity)
    unit_cost = checks.cost(spec.unit_cost, item)
    entries = mfr_entries(item, quantity, spec.mfr_lots)
    serials, generated = incoming_serials(draft, item, spec)
    lot = InventoryLot(
        lot_id=spec.lot_id,
        lic=item.lic,
        office=spec.office,
        kind=spec.kind,
        reference=spec.reference,
        received_on=spec.received_on,
        unit_cost=unit_cost,
        received_qty=quantity,
        seq=draft.next_seq(),
        on_hand=quantity,
        held=quantity if spec.held else ZERO,
    )
    draft.put_lot(lot)
    for entry in entries:
        draft.put_mfr_lot(
            MfrLot(
                lot_id=lot.lot_id,
                mfr_lot=entry.mfr_lot,
                expires_on=entry.expires_on,
                initial_qty=entry.quantity,
                on_hand=entry.quantity,
                held=entry.quantity if spec.held else ZERO,
            )
        )
    units = _units(item, lot, entries, serials)
    draft.put_units(units)
    draft.lock_item()
    return Received(lot=lot, movements=_movements(lot, entries, units), generated=generated)


def held_on_arrival(
    draft: Draft, moved: Iterable[LotMovement] | Iterable[Pick]
) -> tuple[HeldOnArrival, ...]:
    """The units `moved` into stock (a receipt's movements, a customer return's picks) that
    quarantines in force hold, per inventory lot, manufacturer lot and quarantine, in the
    order they moved: every quarantine holding them (in key order, so a replay names them
    alike), as each must be released before they ship. Costs nothing while the LIC has no
    quarantine."""
    if not draft.quarantines:
        return ()
    rules = sorted(draft.quarantines.values(), key=lambda rule: rule.key)
    held: dict[tuple[str, str | None, tuple[str, str, str]], Decimal] = {}
    for movement in moved:
        lot_id = movement.lot_id
        if lot_id is None:
            continue
        office = draft.lots[lot_id].office
        for rule in rules:
            if rule.covers(lot_id, office, movement.mfr_lot):
                key = (lot_id, movement.mfr_lot, rule.key)
                held[key] = held.get(key, ZERO) + movement.quantity
    return tuple(
        HeldOnArrival(
            lot_id=lot_id,
            mfr_lot=mfr_lot,
            quantity=quantity,
            quarantine=draft.quarantines[rule_key],
        )
        for (lot_id, mfr_lot, rule_key), quantity in held.items()
    )


def mfr_entries(item: Item, quantity: Decimal, given: tuple[LotEntry, ...]) -> list[LotEntry]:
    """R3: lot-tracked lines name mfr lots covering the quantity, with expiry if perishable."""
    if given:
        checks.no_lots(item, (entry.mfr_lot for entry in given))
    if not item.track_mfr_lot:
        return []
    if not given:
        raise Refusal(ReasonCode.LOT_REQUIRED, f"item {item.lic} needs manufacturer lots", item.lic)
    merged: dict[str, LotEntry] = {}
    for entry in given:
        _check_entry(item, entry)
        before = merged.get(entry.mfr_lot)
        if before is not None and before.expires_on != entry.expires_on:
            raise Refusal(
                ReasonCode.EXPIRY_REQUIRED,
                f"manufacturer lot {entry.mfr_lot} is listed "
                f"{listed_expiring((before.expires_on, entry.expires_on))}",
                entry.mfr_lot,
            )
        total = entry.quantity + (before.quantity if before else 0)
        merged[entry.mfr_lot] = LotEntry(  # spelled out: `replace()` is slow
            mfr_lot=entry.mfr_lot,
            quantity=total,
            expires_on=entry.expires_on,
            lot_id=entry.lot_id,
        )
    checks.lot_sum(quantity, (entry.quantity for entry in merged.values()))
    return list(merged.values())


def _check_entry(item: Item, entry: LotEntry) -> None:
    if not entry.mfr_lot:
        raise Refusal(ReasonCode.LOT_REQUIRED, "a manufacturer lot number is blank", "")
    checks.positive(entry.quantity, f"quantity of manufacturer lot {entry.mfr_lot}")
    checks.whole_for(item, entry.quantity, f"quantity of manufacturer lot {entry.mfr_lot}")
    if item.perishable and entry.expires_on is None:
        raise Refusal(
            ReasonCode.EXPIRY_REQUIRED,
            f"perishable item {item.lic}: manufacturer lot {entry.mfr_lot} needs an expiry date",
            entry.mfr_lot,
        )


def incoming_serials(
    draft: Draft, item: Item, spec: NewLot
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """R4, R6: the line's serials (given or generated) and the generated ones."""
    checks.no_serials(item, spec.serials)
    if not item.serialized:
        return (), ()
    generated: tuple[str, ...] = ()
    if spec.serials:
        serials = checks.serial_list(item, spec.serials, spec.quantity)
    elif spec.generate_serials and item.next_serial:
        serials, next_serial = serial_run(item.next_serial, int(spec.quantity))
        generated = serials
        draft.item = replace(item, next_serial=next_serial)
    else:
        raise Refusal(
            ReasonCode.SERIAL_REQUIRED,
            f"item {item.lic} is serialized: the line needs {number(spec.quantity)} serials"
            + ("" if item.next_serial else " and the item has no Next Serial"),
            item.lic,
        )
    if generated:
        _generated_free(draft, item, generated)
        return serials, generated
    for serial in serials:
        if draft.serial_in_stock(serial) is not None:
            raise checks.in_stock(item, serial, draft)
    return serials, generated


def _generated_free(draft: Draft, item: Item, generated: tuple[str, ...]) -> None:
    """R4, R6: serials taken from the Next Serial that are in stock already (typed in on an
    earlier receipt, say) are refused naming where they came from, since the line typed
    none, and the two ways out."""
    taken = [serial for serial in generated if draft.serial_in_stock(serial) is not None]
    if not taken:
        return
    run = generated[0] if len(generated) == 1 else f"{generated[0]} to {generated[-1]}"
    named = f"serial {taken[0]} is" if len(taken) == 1 else f"serials {listed(taken)} are"
    raise Refusal(
        ReasonCode.DUPLICATE_SERIAL,
        f"the line names no serials, so they were taken from the Next Serial of item "
        f"{item.lic} ({run}), but {named} already in stock: type the line's serials, or send "
        "the item's next_serial past those in stock",
        taken[0],
    )


def _units(
    item: Item, lot: InventoryLot, entries: list[LotEntry], serials: tuple[str, ...]
) -> list[Unit]:
    owners = [entry.mfr_lot for entry in entries for _ in range(int(entry.quantity))]
    return [
        Unit(
            lic=item.lic,
            serial=serial,
            lot_id=lot.lot_id,
            mfr_lot=owners[i] if owners else None,
            position=i,
        )
        for i, serial in enumerate(serials)
    ]


def _movements(
    lot: InventoryLot, entries: list[LotEntry], units: list[Unit]
) -> tuple[LotMovement, ...]:
    expiry = {entry.mfr_lot: entry.expires_on for entry in entries}
    if units:
        return tuple(
            LotMovement(
                lot_id=lot.lot_id,
                mfr_lot=unit.mfr_lot,
                expires_on=expiry.get(unit.mfr_lot) if unit.mfr_lot else None,
                serial=unit.serial,
                quantity=ONE,
                unit_cost=lot.unit_cost,
            )
            for unit in units
        )
    if entries:
        return tuple(
            LotMovement(
                lot_id=lot.lot_id,
                mfr_lot=entry.mfr_lot,
                expires_on=entry.expires_on,
                serial=None,
                quantity=entry.quantity,
                unit_cost=lot.unit_cost,
            )
            for entry in entries
        )
    return (
        LotMovement(
            lot_id=lot.lot_id,
            mfr_lot=None,
            expires_on=None,
            serial=None,
            quantity=lot.received_qty,
            unit_cost=lot.unit_cost,
        ),
    )
