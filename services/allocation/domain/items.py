"""Item upserts (R1, R2)."""

from __future__ import annotations

from services.allocation.domain import checks
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import Item, ItemUpserted, UpsertItem


def upsert_item(draft: Draft, cmd: UpsertItem) -> tuple[ItemUpserted]:
    """R1: marking `track_mfr_lot` marks `perishable` unless the command says otherwise;
    R2: tracking flags freeze once used.

    `next_serial=None` keeps the current Next Serial (so an ERP that does not send it cannot
    wipe what receipts advanced).
    """
    before = draft.item
    if before is not None and before.locked:
        _check_tracking(before, cmd)
    item = Item(
        lic=cmd.lic,
        description=cmd.description,
        uom=cmd.uom,
        track_mfr_lot=cmd.track_mfr_lot,
        serialized=cmd.serialized,
        perishable=_perishable(before, cmd),
        next_serial=cmd.next_serial or (before.next_serial if before else None),
        est_unit_cost=cmd.est_unit_cost,
        locked=before.locked if before else False,
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
        ),
    )


def _perishable(before: Item | None, cmd: UpsertItem) -> bool:
    """The command's `perishable`; when it leaves it out, `track_mfr_lot` for a new item or one
    whose lot tracking is being marked now, else the item's current flag: an update that
    only changes, say, the cost must not turn a cleared flag back on (R1: the flag follows
    the *marking* of lot tracking, not every message that repeats it)."""
    if cmd.perishable is not None:
        return cmd.perishable
    if before is None or (cmd.track_mfr_lot and not before.track_mfr_lot):
        return cmd.track_mfr_lot
    return before.perishable


def _check_tracking(before: Item, cmd: UpsertItem) -> None:
    for flag, old, new in (
        ("track_mfr_lot", before.track_mfr_lot, cmd.track_mfr_lot),
        ("serialized", before.serialized, cmd.serialized),
    ):
        if old != new:
            raise Refusal(
                ReasonCode.TRACKING_LOCKED,
                f"{flag} of {before.lic} cannot change from {old} to {new}: "
                "records already refer to the item",
                flag,
            )
