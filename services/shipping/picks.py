"""Picks as people enter them (R5) and what a return to vendor must name (R14). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from services.shipping.model import (
    ZERO,
    Entry,
    Item,
    Limits,
    Line,
    LotPick,
    Picks,
    Problem,
    Shipment,
)
from shared.barcodes import BarcodeError, Scan, decode_scan
from shared.reasons import ReasonCode, listed, number, shown
from shared.serials import SerialEntryError, find_duplicates, parse_serials

# --- picks (R5, R14) --------------------------------------------------------------------------


def parse_picks(
    shipment: Shipment,
    line: Line,
    entry: Entry,
    item: Item | None,
    limits: Limits,
    budget: int | None = None,
) -> Picks | Problem:
    """The line's picks from what was typed and scanned, or the first problem with them.
    Scans need the item (`UNKNOWN_ITEM` without it); typed picks do not. `budget`: the
    serials the line's document may still name (None: only the line's limit); a span is sized
    against it before it is expanded."""

    def problem(code: ReasonCode, reason: str, offending: str | None) -> Problem:
        return Problem(
            line_no=line.line_no, lic=line.lic, reason_code=code, reason=reason, offending=offending
        )

    if item is None and entry.scans:
        # A scan is checked against the item (its GTIN, whether it has lots or serials): one
        # shipping does not know cannot be, so the line is refused as allocation refuses a
        # line of an unknown item. (The service first has such a line wait for its item.)
        return problem(ReasonCode.UNKNOWN_ITEM, f"item {line.lic} is not known", line.lic)
    if len(entry.scans) > limits.max_serials_per_line:
        count = str(len(entry.scans))
        return problem(ReasonCode.INVALID_QUANTITY, f"line has {count} scans, too many", count)
    cap = limits.max_serials_per_line if budget is None else max(0, budget)
    cap = min(cap, limits.max_serials_per_line)
    try:
        typed = _typed_serials(entry.serials, limits.max_span, cap)
        scans = [_checked_scan(raw, item) for raw in entry.scans]
    except SerialEntryError as error:
        if error.code == ReasonCode.INVALID_QUANTITY.value and cap < limits.max_serials_per_line:
            return _over_budget(problem, limits, error.offending)
        return problem(ReasonCode(error.code), error.reason, error.offending)
    except BarcodeError as error:
        return problem(ReasonCode(error.code), error.reason, error.offending)
    serialized = item is None or item.serialized
    serials = typed + [s.serial for s in scans if s.serial is not None and serialized]
    if len(serials) > cap and cap < limits.max_serials_per_line:
        return _over_budget(problem, limits, str(len(serials)))
    duplicates = find_duplicates(serials)
    if duplicates:
        reason = f"serial {duplicates[0]} is picked more than once on the line"
        return problem(ReasonCode.DUPLICATE_SERIAL, reason, duplicates[0])
    lots = _lots(entry.lots, scans, item, len(serials), serialized)
    if isinstance(lots, BarcodeError):
        return problem(ReasonCode.INVALID_BARCODE, lots.reason, lots.offending)
    paired = _serial_lots(scans, item) if serialized else ()
    picks = Picks(lots=lots, serials=tuple(serials), serial_lots=paired)
    return _named_for_vendor(shipment, line, picks, item) or picks


def _typed_serials(
    entry: str | tuple[str, ...] | None, max_span: int, max_serials: int
) -> list[str]:
    if entry is None or (not isinstance(entry, str) and not entry):
        return []
    return parse_serials(entry, max_span=max_span, max_serials=max_serials)


def _over_budget(
    problem: Callable[[ReasonCode, str, str | None], Problem], limits: Limits, named: str | None
) -> Problem:
    """The line would take its document past its serial budget: refused as a receipt line is."""
    most = limits.max_serials_per_document
    reason = f"the shipment's lines name more than {most} serials, the most one document may name"
    return problem(ReasonCode.INVALID_QUANTITY, reason, named)


def _checked_scan(raw: str, item: Item | None) -> Scan:
    scan = decode_scan(raw)
    if item is None:  # a line of an unknown item with scans is refused before they are read
        return scan
    expected = normalize_gtin(item.gtin)
    if expected is not None and scan.gtin is not None and scan.gtin != expected:
        raise BarcodeError(
            ReasonCode.INVALID_BARCODE.value,
            f"scan {shown(raw)} carries GTIN {scan.gtin}, but item {item.lic} has GTIN {expected}",
            raw,
        )
    return scan


def _lots(
    typed: tuple[LotPick, ...],
    scans: Sequence[Scan],
    item: Item | None,
    serials: int,
    serialized: bool,
) -> tuple[LotPick, ...] | BarcodeError:
    """The line's manufacturer lots (R5, R9, R15). A scan's lot is read off the unit itself, so
    it must be one the line types, if it types any (the first scan that is not is the problem),
    and a serial scanned with its lot must have a unit of that lot as typed to itself (the
    first that has none is the problem: it would ship recorded under another typed lot).
    Without typed lots, each scan of a lot is one unit of it. Lots sent beside serials have
    allocation check that the serials are in them, exactly as many of each lot as named.
    Scanned lots that name fewer units than the line has serials (some typed, or scanned
    without a lot) cannot be checked that way, and are not sent. Either way each serial
    scanned with its lot also goes paired with it (`_serial_lots`): a serial scanned with the
    wrong lot is refused, never shipped from another, even where the counts agree."""
    if item is not None and not item.track_mfr_lot:
        return typed  # the item tracks no lots: any typed are refused by allocation
    if typed:
        stray = _unlisted(typed, scans) or (_unplaced(typed, scans) if serialized else None)
        return typed if stray is None else stray
    scanned = _scanned_lots(scans)
    if sum((pick.quantity for pick in scanned), ZERO) < serials:
        return ()
    return scanned


def _serial_lots(scans: Iterable[Scan], item: Item | None) -> tuple[tuple[str, str], ...]:
    """Each serial scanned with its manufacturer lot (AI 21 with AI 10), paired with that lot
    (R5, R15): only allocation knows which lot holds a unit, so it checks each pair, unit by
    unit; per-lot counts cannot see two serials scanned with each other's lots. None for an
    item that tracks no lots (its scans' lots are not sent either, as in `_lots`)."""
    if item is not None and not item.track_mfr_lot:
        return ()
    return tuple(
        (scan.serial, scan.mfr_lot)
        for scan in scans
        if scan.serial is not None and scan.mfr_lot is not None
    )


def _unlisted(typed: Iterable[LotPick], scans: Iterable[Scan]) -> BarcodeError | None:
    lots = list(dict.fromkeys(pick.mfr_lot for pick in typed))
    for scan in scans:
        if scan.mfr_lot is not None and scan.mfr_lot not in lots:
            return BarcodeError(
                ReasonCode.INVALID_BARCODE.value,
                f"scan {shown(scan.raw)} is a unit of manufacturer lot {scan.mfr_lot}, which "
                f"the line does not list (it lists {listed(lots)})",
                scan.raw,
            )
    return None


def _unplaced(typed: Iterable[LotPick], scans: Iterable[Scan]) -> BarcodeError | None:
    """Unit by unit, as far as shipping can tell: each serial scanned with its lot takes one
    of the units typed for that lot. Which lot really holds a serial only allocation knows."""
    typed_units: dict[str, Decimal] = {}
    for pick in typed:
        typed_units[pick.mfr_lot] = typed_units.get(pick.mfr_lot, ZERO) + pick.quantity
    left = dict(typed_units)
    for scan in scans:
        if scan.mfr_lot is None or scan.serial is None:
            continue
        if left.get(scan.mfr_lot, ZERO) < 1:
            lot = scan.mfr_lot
            return BarcodeError(
                ReasonCode.INVALID_BARCODE.value,
                f"scan {shown(scan.raw)} is serial {scan.serial} of manufacturer lot {lot}, but "
                f"the line types {number(typed_units.get(lot, ZERO))} of lot {lot}, fewer than "
                "the serials scanned in it",
                scan.raw,
            )
        left[scan.mfr_lot] -= 1
    return None


def _scanned_lots(scans: Iterable[Scan]) -> tuple[LotPick, ...]:
    """Each scan of a lot is one unit of it, whether or not it also names its serial."""
    counted: dict[str, Decimal] = {}
    for scan in scans:
        if scan.mfr_lot is not None:
            counted[scan.mfr_lot] = counted.get(scan.mfr_lot, ZERO) + 1
    return tuple(LotPick(mfr_lot=lot, quantity=qty) for lot, qty in counted.items())


def _named_for_vendor(
    shipment: Shipment, line: Line, picks: Picks, item: Item | None
) -> Problem | None:
    """R14: a return to vendor names what goes back: serials, or manufacturer lots."""
    if shipment.kind != "vendor_return" or item is None:
        return None
    if item.serialized and not picks.serials:
        code, what = ReasonCode.SERIAL_REQUIRED, "its serials"
    elif item.track_mfr_lot and not picks.lots and not picks.serials:
        code, what = ReasonCode.LOT_REQUIRED, "its manufacturer lots"
    else:
        return None
    return Problem(
        line_no=line.line_no,
        lic=line.lic,
        reason_code=code,
        reason=f"a return to vendor of {item.lic} (line {line.line_no}) must name {what}",
        offending=line.lic,
    )


def normalize_gtin(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value.zfill(14) if value.isdigit() and len(value) <= 14 else value
