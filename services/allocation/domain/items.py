"""Item upserts (R1, R2)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

from services.allocation.domain import checks
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import Item, ItemUpserted, UpsertItem
from shared.reasons import flag

_T = TypeVar("_T")

NEW_ITEM = Item(
    lic="",
    description="",
    uom="Each",
    track_mfr_lot=False,
    serialized=False,
    perishable=False,
    next_serial=None,
    est_unit_cost=Decimal(0),
)
"""What an item is before any upsert: the values a new item takes for the fields left out."""


def upsert_item(draft: Draft, cmd: UpsertItem) -> tuple[ItemUpserted]:
    """Upsert semantics: a field the command leaves out (None) keeps the item's current value,
    a new item's is `NEW_ITEM`'s; so an ERP that sends only what changed cannot reset the cost
    or switch tracking off, nor wipe the Next Serial receipts advanced.

    R1: marking `track_mfr_lot` marks `perishable` unless the command says otherwise;
    R2: tracking flags freeze once used (only a flag the command gives can differ).
    """
    before = draft.item
    if before is not None and before.locked:
        _check_tracking(before, cmd)
    current = before or replace(NEW_ITEM, lic=cmd.lic)
    item = replace(
        current,
        description=_given(cmd.description, current.description),
        uom=_given(cmd.uom, current.uom),
        track_mfr_lot=_given(cmd.track_mfr_lot, current.track_mfr_lot),
        serialized=_given(cmd.serialized, current.serialized),
        perishable=_perishable(before, cmd),
        next_serial=_given(cmd.next_serial, current.next_serial),
        est_unit_cost=_given(cmd.est_unit_cost, current.est_unit_cost),
        gtin=_given(cmd.gtin, current.gtin),
    )
    checks.cost(item.est_unit_cost, item)
    draft.item = item
    return (
        ItemUpserted(
            command_id=cmd.message_id,
            lic=item.lic,
            description=item.description,
            uom=item.uom,
            track_mfr_lot=item.track_mfr_lot,
            serialized=item.serialized,
            perishable=item.perishable,
            next_serial=item.next_serial,
            est_unit_cost=item.est_unit_cost,
            gtin=item.gtin,
        ),
    )


def _given(value: _T | None, current: _T) -> _T:
    return current if value is None else value


def _perishable(before: Item | None, cmd: UpsertItem) -> bool:
    """The command's `perishable`; when it leaves it out, true if the command marks lot
    tracking (for a new item, or one whose lot tracking was off), else the item's current flag:
    an update that only changes, say, the cost must not turn a cleared flag back on (R1: the
    flag follows the *marking* of lot tracking, not every message that repeats it)."""
    if cmd.perishable is not None:
        return cmd.perishable
    if cmd.track_mfr_lot and (before is None or not before.track_mfr_lot):
        return True
    return before.perishable if before is not None else NEW_ITEM.perishable


def _check_tracking(before: Item, cmd: UpsertItem) -> None:
    for name, old, new in (
        ("track_mfr_lot", before.track_mfr_lot, cmd.track_mfr_lot),
        ("serialized", before.serialized, cmd.serialized),
    ):
        if new is not None and old != new:
            raise Refusal(
                ReasonCode.TRACKING_LOCKED,
                f"{name} of item {before.lic} cannot change from {flag(old)} to {flag(new)}: "
                "records already refer to the item",
                name,
            )
