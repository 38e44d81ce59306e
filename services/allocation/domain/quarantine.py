"""Quarantine: a QA or recall hold on stock, until released.

A quarantine is a rule kept in the LIC's state (`Quarantine`): a manufacturer lot (at every
office or one), an inventory lot, or a manufacturer lot in one inventory lot. It is a rule, not
a quantity, so a receipt (or customer return) of a held manufacturer lot arriving later is held
too. The stock stays on hand; what the rule changes:

- a sale never takes it: automatic picks (FEFO/FIFO) pass over it, and a sale naming it is
  refused (`INSUFFICIENT_STOCK` for a lot, `SERIAL_NOT_AVAILABLE` for a serial), saying why;
- a vendor return may take it when it names it (sending recalled goods back is the point), but
  never picks it automatically;
- a sale line allocated before the quarantine cannot ship while it holds such stock
  (`SHIPMENT_INCOMPLETE`): its allocation stands, the user cancels or re-picks it;
- counts and losses may take it (writing recalled goods off).

Releasing lifts the rule with the same manufacturer lot, inventory lot and office; releasing
what is not quarantined, or quarantining a lot the item never had, is `LOT_NOT_FOUND`, unless
the quarantine says `before_receipt` (a supplier's recall of a manufacturer lot on its way: the
rule holds it when it arrives). The
checks cost nothing while a LIC has no quarantine: callers test `draft.quarantines` first.
"""

from __future__ import annotations

from decimal import Decimal

from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import (
    Event,
    Item,
    Pick,
    Quarantine,
    QuarantinedStock,
    QuarantineStock,
    StockQuarantined,
)
from services.allocation.domain.receiving import require_item


def quarantine(draft: Draft, cmd: QuarantineStock) -> tuple[Event, ...]:
    """Put the named stock in quarantine, or release its quarantine."""
    item = require_item(draft)
    key = (cmd.mfr_lot or "", cmd.lot_id or "", cmd.office or "")
    if not key[0] and not key[1]:  # the contract refuses it first; the core says so too
        # No offending value: the lots are missing, and a missing value has none (contract).
        raise Refusal(
            ReasonCode.LOT_REQUIRED,
            f"a quarantine of {item.lic} names a manufacturer lot, an inventory lot or both",
        )
    if cmd.quarantined:
        _require_known(draft, item, cmd)
        rule = Quarantine(
            mfr_lot=key[0],
            lot_id=key[1],
            office=key[2],
            quarantine_id=cmd.quarantine_id,
            reason=cmd.reason,
        )
        draft.put_quarantine(rule)
    else:
        held = draft.quarantines.get(key)
        if held is None:
            raise Refusal(
                ReasonCode.LOT_NOT_FOUND,
                f"{_named(item, key)} is not in quarantine{_others(draft, key)}",
                cmd.mfr_lot or cmd.lot_id or "",
            )
        rule = held
        draft.drop_quarantine(key)
    return (
        StockQuarantined(
            command_id=cmd.message_id,
            lic=item.lic,
            quarantine_id=cmd.quarantine_id,
            quarantined=cmd.quarantined,
            reason=cmd.reason,
            mfr_lot=cmd.mfr_lot,
            lot_id=cmd.lot_id,
            office=cmd.office,
            quarantined_on=cmd.quarantined_on,
            stock=covered(draft, rule),
            released_quarantine_id=None if cmd.quarantined else rule.quarantine_id,
        ),
    )


def holding(draft: Draft, lot_id: str, mfr_lot: str | None) -> Quarantine | None:
    """The rule holding stock of inventory lot `lot_id` (and manufacturer lot `mfr_lot`), if
    any. Callers look only when `draft.quarantines` is not empty."""
    office = draft.lots[lot_id].office
    for rule in draft.quarantines.values():
        if rule.covers(lot_id, office, mfr_lot):
            return rule
    return None


def held_pick(draft: Draft, picks: list[Pick] | tuple[Pick, ...]) -> tuple[Pick, Quarantine] | None:
    """The first of `picks` in quarantine, with the rule holding it."""
    for pick in picks:
        rule = holding(draft, pick.lot_id, pick.mfr_lot)
        if rule is not None:
            return pick, rule
    return None


def why(rule: Quarantine) -> str:
    """The rule in words, for a refusal: "quarantine Q-7: failed QA"."""
    reason = f": {rule.reason}" if rule.reason else ""
    return f"quarantine {rule.quarantine_id}{reason}"


def covered(draft: Draft, rule: Quarantine) -> tuple[QuarantinedStock, ...]:
    """The stock on hand `rule` covers now: per inventory lot and manufacturer lot (per
    inventory lot alone for one without manufacturer lots), in lot arrival order."""
    stock: list[QuarantinedStock] = []
    lots = sorted(draft.lots.values(), key=lambda lot: lot.arrival)
    for lot in lots:
        if (rule.lot_id and rule.lot_id != lot.lot_id) or (
            rule.office and rule.office != lot.office
        ):
            continue
        names = draft.mfr_names.get(lot.lot_id, ())
        if not names:
            if not rule.mfr_lot and lot.on_hand > 0:
                stock.append(_stock(lot.lot_id, lot.office, None, lot.on_hand, lot.allocated))
            continue
        for name in names:
            row = draft.mfr_lots[(lot.lot_id, name)]
            if rule.covers(lot.lot_id, lot.office, name) and row.on_hand > 0:
                stock.append(_stock(lot.lot_id, lot.office, name, row.on_hand, row.allocated))
    return tuple(stock)


def _stock(
    lot_id: str, office: str, mfr_lot: str | None, on_hand: Decimal, allocated: Decimal
) -> QuarantinedStock:
    return QuarantinedStock(
        lot_id=lot_id, office=office, mfr_lot=mfr_lot, on_hand=on_hand, allocated=allocated
    )


def _require_known(draft: Draft, item: Item, cmd: QuarantineStock) -> None:
    """LOT_NOT_FOUND for a lot the item never had: a typo must not hold nothing silently."""
    if cmd.lot_id is not None:
        lot = draft.lots.get(cmd.lot_id)
        if lot is None:
            raise Refusal(
                ReasonCode.LOT_NOT_FOUND,
                f"inventory lot {cmd.lot_id} is not a lot of {item.lic}",
                cmd.lot_id,
            )
        if cmd.office is not None and lot.office != cmd.office:
            raise Refusal(
                ReasonCode.LOT_NOT_FOUND,
                f"inventory lot {cmd.lot_id} of {item.lic} is at office {lot.office}, not at "
                f"office {cmd.office}",
                cmd.lot_id,
            )
    if cmd.mfr_lot is None:
        return
    if cmd.before_receipt:
        # A lot on its way can only arrive as a manufacturer lot of a lot-tracked item.
        if not item.track_mfr_lot:
            raise Refusal(
                ReasonCode.LOT_NOT_FOUND,
                f"{item.lic} does not track manufacturer lots, so manufacturer lot "
                f"{cmd.mfr_lot} can never arrive",
                cmd.mfr_lot,
            )
        return
    lot_ids = [cmd.lot_id] if cmd.lot_id is not None else list(draft.mfr_names)
    if not any(cmd.mfr_lot in draft.mfr_names.get(i, ()) for i in lot_ids):
        where = f" in inventory lot {cmd.lot_id}" if cmd.lot_id is not None else ""
        raise Refusal(
            ReasonCode.LOT_NOT_FOUND,
            f"manufacturer lot {cmd.mfr_lot} of {item.lic} was never received{where}"
            + ("" if where else " (before_receipt: true holds a lot that has not arrived)"),
            cmd.mfr_lot,
        )


def _named(item: Item, key: tuple[str, str, str]) -> str:
    mfr_lot, lot_id, office = key
    parts = []
    if mfr_lot:
        parts.append(f"manufacturer lot {mfr_lot}")
    if lot_id:
        parts.append(f"inventory lot {lot_id}")
    where = f" at office {office}" if office else " at every office"
    return f"{' in '.join(parts)} of {item.lic}{where}"


def _others(draft: Draft, key: tuple[str, str, str]) -> str:
    """The quarantines of the same lot that are in force, to release instead."""
    mfr_lot, lot_id, _ = key
    others = [
        rule
        for rule in draft.quarantines.values()
        if (mfr_lot and rule.mfr_lot == mfr_lot) or (lot_id and rule.lot_id == lot_id)
    ]
    if not others:
        return ""
    listed = "; ".join(
        f"{why(rule)} ({'office ' + rule.office if rule.office else 'every office'})"
        for rule in others
    )
    return f" as named (in force: {listed})"
