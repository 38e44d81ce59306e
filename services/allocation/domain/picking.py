"""Which stock a shipment line takes (R9): named picks, or FEFO / FIFO when none are named.

- Only stock at the shipment's office, and only free stock (on hand − allocated, or AVAILABLE
  units), is ever picked, so nothing is allocated twice.
- Perishable sales skip lots that expired before the ship date: `expires_on < ship_on` is
  expired; a lot expiring on the ship date itself is still shipped that day. A named expired
  lot is refused `LOT_EXPIRED`. Vendor returns (R14) may take expired stock: that is often the
  reason for the return.
- A perishable sale may require a minimum remaining shelf life of N days
  (`Need.min_shelf_life_days`, the customer's): only lots with `expires_on >= ship_on + N` are
  then eligible; the others are treated as expired lots are (skipped, or, named,
  `LOT_EXPIRED` saying how many days they have left), and a shortfall says how much more stock
  there is with less. N = 0 is exactly the rule above. A lot without an expiry date never
  expires, so it is always eligible. Vendor returns ignore N.
- Automatic order: perishable lot-tracked stock first-expired-first-out by (expires_on, lot
  arrival, mfr lot), a lot without expiry last; everything else first-in-first-out by lot
  arrival, then mfr lot number (lot quantities) or the unit's position in its receipt
  (serials, whatever mfr lot they are in). A lot's arrival
  (`InventoryLot.arrival`) is the receipt date its document carried, then the order receipts
  were decided in: never that order alone, which hangs on how partitions interleave (§6).
  A named mfr lot found in several inventory lots is taken in the same order. One named twice
  on a line is one request for the sum (`merge_named`), as on an adjustment or a return.
- Quarantined stock (`quarantine.py`): automatic picks of shipment lines pass over it
  (`Need.skip_held`); a sale naming it is refused, saying which quarantine holds it
  (`Need.refuse_held`): a lot `INSUFFICIENT_STOCK`, a serial `SERIAL_NOT_AVAILABLE`. Both are
  set only while the LIC has a quarantine, so without one nothing is looked at.
- A return to vendor with a reference (its PO, `Need.reference`) takes automatic picks only
  from the inventory lots of that reference (a receipt's `reference`, else its shipment id),
  in the same order, so it is booked at that PO's cost and counted against it (R14, R16). Named
  picks are taken as named: the clerk chose the stock (a named manufacturer lot is not
  narrowed, so a vendor return whose reference is no PO, an RMA number say, still takes it).
- Not enough stock refuses the whole line (`INSUFFICIENT_STOCK`, requested vs available):
  there is no partial allocation. An automatic pick's refusal (`shortfall`) says what the
  office's free stock is, in the numbers `GET /items` gives: available (a vendor return with
  a reference: in that reference's lots, then how much more is in other lots), then how much
  more has too little shelf life, expired by the ship date, or is in quarantine, then how much
  was counted in beyond any lot (R12: unallocated stock, which no shipment takes, with how to put
  it in a lot) (each only where there is some; together, all the free stock), and, at an
  office that never had a lot or unallocated stock of the item (a mistyped office), which
  offices have stock of it. A named lot's refusal (`_short_named`: a sale, a return to vendor)
  names the office and says where the rest of the lot's stock on hand is: in quarantine (a
  sale), allocated to which shipment lines, on a held receipt (`not_free`, as a count or loss
  refused for lack of stock says it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from services.allocation.domain import checks
from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.holding import where_held
from services.allocation.domain.model import (
    ZERO,
    Item,
    LotPick,
    MfrLot,
    Pick,
    SerialStatus,
    Unit,
)
from services.allocation.domain.not_free import HELD_DOCUMENTS_SHOWN, held_documents, not_free
from services.allocation.domain.quarantine import holding, why
from services.allocation.domain.serials import NearSerials
from shared.reasons import listed, number

ONE = Decimal(1)

Source = tuple[str, str | None, Decimal]
"""Free stock to take from: (lot_id, mfr_lot, free quantity)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    """Where and when stock is wanted; `fresh_only`: refuse or skip expired lots, and those
    expiring less than `min_shelf_life_days` after the ship date."""

    item: Item
    office: str
    ship_on: date

    fresh_only: bool
    min_shelf_life_days: int = 0
    skip_held: bool = False
    """Automatic picks pass over quarantined stock (a shipment line, while the LIC has a
    quarantine)."""
    refuse_held: bool = False
    """Named picks of quarantined stock are refused (a sale, while the LIC has a quarantine)."""
    reference: str | None = None
    """Automatic picks take only the inventory lots whose `reference` is this (a vendor
    return's PO, R14); None: any lot."""
    # The earliest expiry a lot may have, worked out once: with no shelf life required the
    # check per lot is the ship date's, as it always was, at no extra cost.
    fresh_from: date = field(init=False)

    def __post_init__(self) -> None:
        days = self.min_shelf_life_days
        fresh_from = _days_after(self.ship_on, days) if days and self.fresh_only else self.ship_on
        object.__setattr__(self, "fresh_from", fresh_from)

    def expired(self, row: MfrLot | None) -> bool:
        """Not eligible: expired on the ship date, or with too little shelf life left."""
        return self.fresh_only and row is not None and row.expired_on(self.fresh_from)


def _days_after(day: date, days: int) -> date:
    """`days` after `day`. Past the calendar's end (a ship date in year 9999 with years
    required: hostile input) its last day, which stands for "never expires": only a lot
    dated so is eligible, and the consumer never meets an OverflowError."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max


def automatic(
    draft: Draft, need: Need, quantity: Decimal, asked: Decimal | None = None
) -> list[Pick]:
    """R9 without picks: FEFO for perishable lots, FIFO otherwise. `asked`: the whole request
    when the caller took `asked - quantity` of it elsewhere first (a loss's unallocated stock,
    R12); a refusal then names the whole request and counts that part as available too."""
    try:
        return _automatic(draft, need, quantity, asked)
    except Refusal:
        # Short: say what the free stock at the office is (`shortfall`), so the user sees why
        # stock on hand was not taken.
        raise shortfall(draft, need, quantity, asked) from None


def _automatic(
    draft: Draft, need: Need, quantity: Decimal, asked: Decimal | None = None
) -> list[Pick]:
    what = f"item {need.item.lic} at office {need.office}"
    if need.item.serialized:
        units = free_units(draft, need)
        if need.reference is not None:
            units = [u for u in units if _of_reference(draft, need, u.lot_id)]
        if need.fresh_only:
            units = [u for u in units if not need.expired(_row(draft, u))]
        if need.skip_held:
            units = [u for u in units if holding(draft, u.lot_id, u.mfr_lot) is None]
        return _take_units(units, quantity, what, asked)
    if need.item.track_mfr_lot:
        rows = [r for r in fresh_rows(draft, need) if r.free > 0]
        sources: list[Source] = [(r.lot_id, r.mfr_lot, r.free) for r in rows]
    else:
        lots = draft.lots_at(need.office, stocked=True)
        sources = [(lot.lot_id, None, lot.free) for lot in lots if lot.free > 0]
    if need.reference is not None:
        sources = [s for s in sources if _of_reference(draft, need, s[0])]
    if need.skip_held:
        sources = [s for s in sources if holding(draft, s[0], s[1]) is None]
    return _fill(quantity, sources, what, asked)


def _of_reference(draft: Draft, need: Need, lot_id: str) -> bool:
    """Whether the inventory lot is one of `need.reference`'s (R14)."""
    return draft.lots[lot_id].reference == need.reference


@dataclass(slots=True)
class FreeStock:
    """The free stock (on hand − allocated) at an office, by why an automatic pick for a
    `Need` may take it or not. Each unit is in one part, so together they are all of it:
    `available` + `other_lots` + `short_dated` + `expired` is what `GET /items` counts
    available, `in_quarantine` its quarantined stock not allocated, and `unallocated` its
    unallocated."""

    available: Decimal = ZERO
    """Takeable: fresh enough, not held, in a lot of the reference if one is required."""
    other_lots: Decimal = ZERO
    """In inventory lots of another reference than the vendor return's (`Need.reference`),
    whatever else holds it: a return without the reference would take it."""
    short_dated: Decimal = ZERO
    """Not expired on the ship date, but with less shelf life left than required."""
    expired: Decimal = ZERO
    """Expired before the ship date (a sale never takes it, R9)."""
    in_quarantine: Decimal = ZERO
    """Held by a quarantine, whatever its expiry: releasing it is what would free it."""
    unallocated: Decimal = ZERO
    """On hand in no lot (R12: a plain item counted in beyond what its lots had used). Usage
    is written against lots (R10), so no shipment takes it: only a beginning balance, after a
    count takes it out, puts it in a lot."""


def free_stock(draft: Draft, need: Need) -> FreeStock:
    """The office's free stock of `need.item`, as `FreeStock` sorts it for `need`."""
    stock = FreeStock()
    sources: Iterable[tuple[str, str | None, Decimal, MfrLot | None]]
    if need.item.serialized:
        sources = ((u.lot_id, u.mfr_lot, ONE, _row(draft, u)) for u in free_units(draft, need))
    elif need.item.track_mfr_lot:
        every = fresh_rows(draft, replace(need, fresh_only=False))
        sources = ((r.lot_id, r.mfr_lot, r.free, r) for r in every)
    else:
        lots = draft.lots_at(need.office, stocked=True)
        sources = ((lot.lot_id, None, lot.free, None) for lot in lots)
    for lot_id, mfr_lot, free, row in sources:
        if free <= 0:
            continue
        if need.reference is not None and not _of_reference(draft, need, lot_id):
            stock.other_lots += free
        elif need.skip_held and holding(draft, lot_id, mfr_lot) is not None:
            stock.in_quarantine += free
        elif need.fresh_only and row is not None and row.expired_on(need.ship_on):
            stock.expired += free
        elif need.expired(row):
            stock.short_dated += free
        else:
            stock.available += free
    # A short loss took all of it before asking for lot stock (`asked`): none is left to name.
    counted = draft.unallocated.get(need.office)
    if counted is not None:
        stock.unallocated = counted.quantity
    return stock


def shortfall(draft: Draft, need: Need, quantity: Decimal, asked: Decimal | None = None) -> Refusal:
    """INSUFFICIENT_STOCK for an automatic pick short of stock: requested, available (with the
    shelf life required, if any; a vendor return's reference, if one), then each part of the
    free stock it could not take, where there is some: "and 20 more in other lots: leave
    reference out to return any", "and 3 more with less", "and 40 more expired by 2026-11-25"
    (the ship date), "and 150 more in quarantine", and last the office's unallocated stock
    (R12), which no shipment takes, with how to put it in a lot. An office with no lot and no
    unallocated stock of the item, while others have stock, names those (a mistyped office:
    "none at office MIAN; the item has stock at office MAIN")."""
    stock = free_stock(draft, need)
    which = ""
    if need.fresh_only and need.min_shelf_life_days and need.item.track_mfr_lot:
        which = f" with at least {_days(need.min_shelf_life_days)} of shelf life left"
    if need.reference is not None:
        which += f" in the lots of {need.reference} (the return's reference)"
        if stock.other_lots:
            others = number(stock.other_lots)
            which += f", and {others} more in other lots: leave reference out to return any"
    for more, kind in (
        (stock.short_dated, "with less"),
        (stock.expired, f"expired by {need.ship_on}"),
        (stock.in_quarantine, "in quarantine"),
    ):
        if more:
            which += f", and {number(more)} more {kind}"
    if stock.unallocated:
        which += _unallocated(stock.unallocated)
    which += _on_held_lines(draft, need.office)
    if not stock.available and (asked is None or asked == quantity):
        which += _elsewhere(draft, need.office)
    what = f"item {need.item.lic} at office {need.office}"
    return _short(quantity, stock.available, what, asked, which=which)


def _on_held_lines(draft: Draft, need_office: str) -> str:
    """The office's stock on receipt and return lines held until the rest of their document
    is accepted (`HeldLine`), which no shipment takes yet: ", and 180 more on PO-7 lines 1 and
    2, held until …". Confirmed within moments as a rule, and a sale that can waits for them
    (`waiting.py`); one that cannot (a re-allocation) is answered now, and a bare "available
    0" would read as stock gone missing. Read on a refusal only."""
    held = []
    total = ZERO
    for line in draft.holds.values():
        here = sum(
            (p.quantity for p in line.picks if draft.lots[p.lot_id].office == need_office), ZERO
        )
        if here:
            total += here
            held.append(line)
    if not total:
        return ""
    return (
        f", and {number(total)} more on {listed(held_documents(held), HELD_DOCUMENTS_SHOWN)},"
        " held until every line of the document is accepted: the stock is free once that"
        " document posts, so send this again then"
    )


def _unallocated(quantity: Decimal) -> str:
    """The part of a shortfall that is unallocated stock (R12), and the way to sell it: a
    negative count takes unallocated stock first, and a beginning balance makes a new lot."""
    n = number(quantity)
    return (
        f", and {n} more counted in beyond any lot (R12), which no shipment can take: to make"
        f" them sellable, remove them with a count of -{n} and add them back with a beginning"
        f" balance of {n}"
    )


def _elsewhere(draft: Draft, office: str) -> str:
    """Where the item's stock is (in lots or unallocated, R12: on hand either way), when
    `office` never had a lot of it nor holds unallocated stock of it; else ""."""
    if draft.lots_at(office) or office in draft.unallocated:
        return ""
    others = sorted((set(draft.stocked.values()) | set(draft.unallocated)) - {office})
    if not others:
        return ""
    offices = "office" if len(others) == 1 else "offices"
    return f": none at office {office}; the item has stock at {offices} {listed(others)}"


def named_lots(draft: Draft, need: Need, picks: tuple[LotPick, ...]) -> list[Pick]:
    """R9 with manufacturer lots named: each must be at the office, fresh and free; one short
    of free stock is refused saying who holds the rest (`_short_named`)."""
    taken: dict[tuple[str, str], Decimal] = {}
    taken_serials: set[str | None] = set()
    result: list[Pick] = []
    for pick in picks:
        quantity = checks.positive(pick.quantity, f"quantity of manufacturer lot {pick.mfr_lot}")
        checks.whole_for(need.item, quantity, f"quantity of manufacturer lot {pick.mfr_lot}")
    for pick in merge_named(picks):
        quantity = pick.quantity
        fresh = _matching(draft, need, pick)
        rows = _clear_rows(draft, need, pick, fresh) if need.refuse_held else fresh
        what = f"manufacturer lot {pick.mfr_lot} of {need.item.lic} at office {need.office}"
        if need.item.serialized:
            lot_ids = {r.lot_id for r in rows}
            units = [
                u
                for u in free_units(draft, need)
                if u.mfr_lot == pick.mfr_lot
                and u.lot_id in lot_ids
                and u.serial not in taken_serials
            ]
            if len(units) < quantity:
                raise _short_named(draft, need, pick, Decimal(len(units)), rows, fresh)
            got = _take_units(units, quantity, what)
            taken_serials.update(p.serial for p in got)
        else:
            sources = [
                (r.lot_id, r.mfr_lot, r.free - taken.get((r.lot_id, r.mfr_lot), ZERO)) for r in rows
            ]
            free = sum((max(source[2], ZERO) for source in sources), ZERO)
            if free < quantity:
                raise _short_named(draft, need, pick, free, rows, fresh)
            got = _fill(quantity, sources, what)
        for p in got:
            key = (p.lot_id, pick.mfr_lot)
            taken[key] = taken.get(key, ZERO) + p.quantity
        result.extend(got)
    return _merge(result) if not need.item.serialized else result


def _short_named(
    draft: Draft,
    need: Need,
    pick: LotPick,
    available: Decimal,
    rows: list[MfrLot],
    fresh: list[MfrLot],
) -> Refusal:
    """INSUFFICIENT_STOCK for a named manufacturer lot (`rows`: its stock the line may take;
    `fresh`: that and its stock in quarantine, which a sale may not take): requested and
    available at the office, then what of the rest is in quarantine (a sale), which shipment
    lines it is allocated to and what is on a held receipt (`not_free`), as a count or loss
    refused for the same reason says it. Nothing is on hand but what these name."""
    which = ""
    if need.refuse_held:
        quarantined = [r for r in fresh if r not in rows and r.free > 0]
        if quarantined:
            held_by = (holding(draft, r.lot_id, r.mfr_lot) for r in quarantined)
            rules = dict.fromkeys(why(rule) for rule in held_by if rule is not None)
            which = (
                f", and {number(sum((r.free for r in quarantined), ZERO))} more in quarantine "
                f"({'; '.join(rules)}), which a sale may not take"
            )
    which += not_free(
        draft,
        {(r.lot_id, r.mfr_lot) for r in rows},
        allocated=sum((r.allocated for r in rows), ZERO),
        held=sum((r.held for r in rows), ZERO),
        available=available if available > 0 else None,
        taker="a shipment line",
        verb="name",
    )
    what = f"manufacturer lot {pick.mfr_lot} of {need.item.lic} at office {need.office}"
    return _short(pick.quantity, available, what, which=which)


def _clear_rows(draft: Draft, need: Need, pick: LotPick, rows: list[MfrLot]) -> list[MfrLot]:
    """The rows of a named lot a sale may take: not in quarantine. All of them held: the lot
    is refused, saying which quarantine holds it (`INSUFFICIENT_STOCK`: there is none free)."""
    clear = []
    held = None
    for row in rows:
        rule = holding(draft, row.lot_id, row.mfr_lot)
        if rule is None:
            clear.append(row)
        elif held is None:
            held = rule
    if held is not None and not clear:
        raise Refusal(
            ReasonCode.INSUFFICIENT_STOCK,
            f"manufacturer lot {pick.mfr_lot} of {need.item.lic} at office {need.office} is in "
            f"quarantine ({why(held)}): a sale may not take it",
            pick.mfr_lot,
        )
    return clear


def merge_named(picks: Iterable[LotPick]) -> tuple[LotPick, ...]:
    """One entry per (mfr lot, inventory lot) named, with the entries' total, in first-seen
    order: a lot named twice (an entry per scan, say) is one request for the sum, so a refusal
    names what was asked of the lot in all, not one entry against what the others left."""
    merged: dict[tuple[str, str | None, date | None], LotPick] = {}
    for pick in picks:
        key = (pick.mfr_lot, pick.lot_id, pick.expires_on)
        before = merged.get(key)
        merged[key] = (
            pick
            if before is None
            else LotPick(
                mfr_lot=pick.mfr_lot,
                quantity=before.quantity + pick.quantity,
                lot_id=pick.lot_id,
                expires_on=pick.expires_on,
            )
        )
    return tuple(merged.values())


def named_serials(draft: Draft, need: Need, serials: tuple[str, ...]) -> list[Pick]:
    """R9 with serials named: each must be an AVAILABLE unit at the office, not expired. A
    refusal names every serial that is not (the first's code and offending value), so a clerk
    fixes the picks in one round; one never received, with its near matches."""
    result = []
    refused: list[Refusal] = []
    near = NearSerials(draft)  # builds nothing unless a serial was never received
    for serial in serials:
        try:
            result.append(_named_serial(draft, need, serial, near))
        except Refusal as refusal:
            refused.append(refusal)
    if refused:
        raise _every(refused)
    return result


# Serials a refusal of named serials lists at most; the rest are counted.
LISTED_SERIALS = 10


def _every(refused: list[Refusal]) -> Refusal:
    """One refusal for the serials `refused`: the first's code and offending value, each
    one's reason."""
    first = refused[0]
    if len(refused) == 1:
        return first
    reasons = "; ".join(r.reason for r in refused[:LISTED_SERIALS])
    more = len(refused) - LISTED_SERIALS
    if more > 0:
        reasons += f"; and {more} more serials named cannot be taken"
    return Refusal(first.code, reasons, first.offending)


def _named_serial(draft: Draft, need: Need, serial: str, near: NearSerials) -> Pick:
    unit = _available(draft, need, serial, near)
    if need.refuse_held:
        rule = holding(draft, unit.lot_id, unit.mfr_lot)
        if rule is not None:
            raise Refusal(
                ReasonCode.SERIAL_NOT_AVAILABLE,
                f"serial {serial} of {need.item.lic} is in quarantine ({why(rule)}): a "
                "sale may not take it",
                serial,
            )
    row = _row(draft, unit)
    if row is not None and need.expired(row):
        raise _expired(row, need, serial=serial)
    return Pick(lot_id=unit.lot_id, mfr_lot=unit.mfr_lot, serial=serial, quantity=ONE)


def lots_hold_serials(
    draft: Draft, need: Need, lots: tuple[LotPick, ...], picks: list[Pick]
) -> None:
    """R9 with serials and manufacturer lots both named: the serials (`picks`, from
    `named_serials`) decide which units go, and the lots must agree with them. Each named lot
    must be at the office (`LOT_NOT_FOUND`), and its entries together must name exactly as
    many units as the named serials hold in it (`INVALID_QUANTITY`); an entry narrowed to an
    inventory lot, no more than they hold there. A lot left out is not checked."""
    office_rows = draft.mfr_lots_at(need.office)
    by_name: dict[str, Decimal] = {}
    by_lot: dict[tuple[str, str], Decimal] = {}
    for pick in lots:
        what = f"quantity of manufacturer lot {pick.mfr_lot}"
        quantity = checks.positive(pick.quantity, what)
        checks.whole_for(need.item, quantity, what)
        if not _named(office_rows, pick):
            raise _not_found(need, pick)
        by_name[pick.mfr_lot] = by_name.get(pick.mfr_lot, ZERO) + quantity
        if pick.lot_id is not None:
            key = (pick.lot_id, pick.mfr_lot)
            by_lot[key] = by_lot.get(key, ZERO) + quantity
    for name, quantity in by_name.items():
        held = sum(1 for p in picks if p.mfr_lot == name)
        if quantity != held:
            raise _disagree(need, name, quantity, held, "")
    for (lot_id, name), quantity in by_lot.items():
        held = sum(1 for p in picks if p.mfr_lot == name and p.lot_id == lot_id)
        if quantity > held:
            raise _disagree(need, name, quantity, held, f" in inventory lot {lot_id}")


def serials_in_their_lots(
    need: Need, serial_lots: tuple[tuple[str, str], ...], picks: list[Pick]
) -> None:
    """R5, R9, R15, unit by unit: a serial scanned with its manufacturer lot (a GS1 label's
    AI 21 with AI 10) must be a unit of that lot, or the line would ship, and a recall of the
    lot would miss, a unit recorded under a lot it is not in. Per-lot counts
    (`lots_hold_serials`) cannot see two serials scanned with each other's lots. The first
    serial whose unit (of `picks`, from `named_serials`) is in another lot, or that the line
    does not name, is refused `INVALID_QUANTITY`, as a lot that does not hold the named serials
    is, naming the serial and the lot it is in."""
    if not serial_lots:
        return
    units = {p.serial: p for p in picks if p.serial is not None}
    for serial, scanned in serial_lots:
        unit = units.get(serial)
        if unit is None:
            raise Refusal(
                ReasonCode.INVALID_QUANTITY,
                f"serial {serial} of {need.item.lic} is scanned with manufacturer lot {scanned}, "
                "but the line does not name that serial",
                serial,
            )
        if unit.mfr_lot != scanned:
            held = unit.mfr_lot
            lot = "no manufacturer lot" if held is None else f"manufacturer lot {held}"
            raise Refusal(
                ReasonCode.INVALID_QUANTITY,
                f"serial {serial} of {need.item.lic} is scanned with manufacturer lot {scanned}, "
                f"but it is in {lot} (inventory lot {unit.lot_id})",
                serial,
            )


def _disagree(need: Need, name: str, quantity: Decimal, held: int, where: str) -> Refusal:
    return Refusal(
        ReasonCode.INVALID_QUANTITY,
        f"manufacturer lot {name} of {need.item.lic}{where} is named for {number(quantity)}, but "
        f"{held} of the named serials are in it",
        name,
    )


# -- candidates ---------------------------------------------------------------------------------


def fresh_rows(draft: Draft, need: Need) -> list[MfrLot]:
    """The office's mfr lots usable on the ship date, in FEFO (perishable) or FIFO order."""
    arrivals = draft.stocked_arrivals(need.office)
    mfr_lots, names = draft.mfr_lots, draft.mfr_names
    # (expiry, lot arrival, mfr lot) is unique per row, so the order rows are listed in is moot.
    rows = [mfr_lots[(lot_id, name)] for lot_id in arrivals for name in names.get(lot_id, ())]
    if need.fresh_only:
        rows = [r for r in rows if not need.expired(r)]
    perishable = need.item.perishable
    rows.sort(
        key=lambda r: (
            r.expires_on if perishable and r.expires_on else date.max,
            arrivals[r.lot_id],
            r.mfr_lot,
        )
    )
    return rows


def free_units(draft: Draft, need: Need) -> list[Unit]:
    """AVAILABLE units at the office, in FEFO (perishable) or FIFO order."""
    office_lots = draft.stocked_arrivals(need.office)
    units = draft.units
    available = SerialStatus.AVAILABLE
    free = [
        unit
        for key in draft.in_stock_keys.values()
        if (unit := units[key]).status is available and unit.lot_id in office_lots
    ]
    if not need.item.perishable:
        free.sort(key=lambda unit: (office_lots[unit.lot_id], unit.position))
        return free

    def order(unit: Unit) -> tuple[date, tuple[date, int], int]:
        row = _row(draft, unit)
        expiry = row.expires_on if row and row.expires_on else date.max
        return (expiry, office_lots[unit.lot_id], unit.position)

    free.sort(key=order)
    return free


def _row_order(draft: Draft, item: Item, row: MfrLot) -> tuple[date, tuple[date, int], str]:
    expiry = row.expires_on if item.perishable and row.expires_on else date.max
    return (expiry, draft.lots[row.lot_id].arrival, row.mfr_lot)


def _row(draft: Draft, unit: Unit) -> MfrLot | None:
    return None if unit.mfr_lot is None else draft.mfr_lots[(unit.lot_id, unit.mfr_lot)]


def _matching(draft: Draft, need: Need, pick: LotPick) -> list[MfrLot]:
    every = _named(draft.mfr_lots_at(need.office, stocked=True), pick)
    if not every:  # used up or never there: which one decides the refusal
        every = _named(draft.mfr_lots_at(need.office), pick)
    if not every:
        raise _not_found(need, pick)
    fresh = [r for r in every if not need.expired(r)]
    if not fresh:
        raise _expired(every[0], need)
    return sorted(fresh, key=lambda r: _row_order(draft, need.item, r))


def _named(rows: list[MfrLot], pick: LotPick) -> list[MfrLot]:
    return [r for r in rows if r.mfr_lot == pick.mfr_lot and describes(pick, r)]


def describes(pick: LotPick, row: MfrLot) -> bool:
    """Whether the stock `row` is what `pick` names beside its mfr lot: the inventory lot and
    the expiry, where given (an expiry that is not the lot's names other stock)."""
    return pick.lot_id in (None, row.lot_id) and pick.expires_on in (None, row.expires_on)


def _not_found(need: Need, pick: LotPick) -> Refusal:
    expiring = f" expiring on {pick.expires_on}" if pick.expires_on else ""
    return Refusal(
        ReasonCode.LOT_NOT_FOUND,
        f"manufacturer lot {pick.mfr_lot}{expiring} of {need.item.lic} is not at office"
        f" {need.office}",
        pick.mfr_lot,
    )


def _available(draft: Draft, need: Need, serial: str, near: NearSerials) -> Unit:
    held = draft.serial_in_stock(serial)
    if held is None:
        why = f"is not in stock: {_gone(draft, serial, near)}"
    else:
        office = draft.lots[held.lot_id].office
        if held.status is SerialStatus.ALLOCATED:
            why = f"is already allocated to {_line(held)}"
            if office != need.office:
                why += f" at office {office}"
        elif (on_held := where_held(draft, held)) is not None:
            why = f"is {on_held}"
        elif office != need.office:
            why = f"is in stock at office {office}, not at office {need.office}"
        else:
            return held
    raise Refusal(
        ReasonCode.SERIAL_NOT_AVAILABLE, f"serial {serial} of {need.item.lic} {why}", serial
    )


def _gone(draft: Draft, serial: str, near: NearSerials) -> str:
    """What became of a serial not in stock, in words, from its latest unit: a serial is
    received again only after it left stock, so the unit decided last is the current one.
    One never received names its near matches ("98" for "00098")."""
    latest = max(
        draft.units_with_serial(serial), key=lambda u: draft.lots[u.lot_id].seq, default=None
    )
    if latest is None:
        return f"it was never received{near.hint(serial)}"
    if latest.status is SerialStatus.REMOVED:
        return "a count or loss removed it from stock"
    if latest.status is SerialStatus.SHIPPED:
        return f"it was shipped{_on(draft, latest)} ({_line(latest)})"
    if latest.status is SerialStatus.RETURNED_TO_VENDOR:
        return f"it was returned to the vendor{_on(draft, latest)} ({_line(latest)})"
    return "it has left stock"


def _line(unit: Unit) -> str:
    """The shipment line that took `unit`, as a reason names it."""
    if unit.shipment_id is None:
        return "another shipment"
    line = "" if unit.line_no is None else f" line {unit.line_no}"
    return f"shipment {unit.shipment_id}{line}"


def _on(draft: Draft, unit: Unit) -> str:
    """The ship date of the allocation that shipped `unit` (" on 2026-03-02"); "" unknown."""
    allocation = draft.allocations.get((unit.shipment_id or "", unit.line_no or 0))
    return "" if allocation is None else f" on {allocation.ship_on}"


def _expired(row: MfrLot, need: Need, *, serial: str | None = None) -> Refusal:
    """LOT_EXPIRED for a named manufacturer lot, or for a named serial in one: expired on the
    ship date, or with less shelf life left than the line requires."""
    lic = need.item.lic
    expires = row.expires_on
    if expires is not None and not row.expired_on(need.ship_on):  # too little shelf life
        left = (expires - need.ship_on).days
        after = f"{_days(left)} after the ship date {need.ship_on}" if left else "the ship date"
        when = (
            f"expires on {expires}, {after}, but the line requires at least "
            f"{_days(need.min_shelf_life_days)} of shelf life left"
        )
    else:
        when = f"expired on {expires}, before the ship date {need.ship_on}"
    if serial is None:
        return Refusal(
            ReasonCode.LOT_EXPIRED, f"manufacturer lot {row.mfr_lot} of {lic} {when}", row.mfr_lot
        )
    return Refusal(
        ReasonCode.LOT_EXPIRED,
        f"serial {serial} of {lic} is in manufacturer lot {row.mfr_lot}, which {when}",
        serial,
    )


# -- taking -------------------------------------------------------------------------------------


def _fill(
    quantity: Decimal, sources: Iterable[Source], what: str, asked: Decimal | None = None
) -> list[Pick]:
    picks: list[Pick] = []
    wanted = quantity
    available = ZERO
    for lot_id, mfr_lot, free in sources:
        if free <= 0:
            continue
        available += free
        if wanted > 0:
            take = min(free, wanted)
            picks.append(Pick(lot_id=lot_id, mfr_lot=mfr_lot, serial=None, quantity=take))
            wanted -= take
    if wanted > 0:
        raise _short(quantity, available, what, asked)
    return picks


def _take_units(
    units: list[Unit], quantity: Decimal, what: str, asked: Decimal | None = None
) -> list[Pick]:
    if len(units) < quantity:
        raise _short(quantity, Decimal(len(units)), what, asked)
    return [
        Pick(lot_id=u.lot_id, mfr_lot=u.mfr_lot, serial=u.serial, quantity=ONE)
        for u in units[: int(quantity)]
    ]


def _short(
    quantity: Decimal,
    available: Decimal,
    what: str,
    asked: Decimal | None = None,
    *,
    which: str = "",
) -> Refusal:
    """INSUFFICIENT_STOCK: `which` says what the available stock is, when not all of it."""
    if asked is not None:  # `asked - quantity` was taken elsewhere: it is available too
        quantity, available = asked, available + (asked - quantity)
    return Refusal(
        ReasonCode.INSUFFICIENT_STOCK,
        f"{what}: requested {number(quantity)}, available {number(available)}{which}",
        f"{quantity} > {available}",
    )


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def _merge(picks: list[Pick]) -> list[Pick]:
    """One pick per (lot, mfr lot), in first-seen order (a lot named twice is one pick)."""
    merged: dict[tuple[str, str | None], Pick] = {}
    for p in picks:
        key = (p.lot_id, p.mfr_lot)
        before = merged.get(key)
        merged[key] = (
            p
            if before is None
            else Pick(
                lot_id=p.lot_id,
                mfr_lot=p.mfr_lot,
                serial=None,
                quantity=before.quantity + p.quantity,
            )
        )
    return list(merged.values())
