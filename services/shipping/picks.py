"""Picks as people enter them (R5) and what a return to vendor must name (R14). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
from shared.reasons import ReasonCode
from shared.serials import SerialEntryError, find_duplicates, parse_serials

# --- picks (R5, R14) --------------------------------------------------------------------------


def parse_picks(
    shipment: Shipment, line: Line, entry: Entry, item: Item | None, limits: Limits
) -> Picks | Problem:
    """The line's picks from what was typed and scanned, or the first problem with them."""

    def problem(code: ReasonCode, reason: str, offending: str | None) -> Problem:
        return Problem(
            line_no=line.line_no, lic=line.lic, reason_code=code, reason=reason, offending=offending
        )

    if len(entry.scans) > limits.max_serials_per_line:
        count = str(len(entry.scans))
        return problem(ReasonCode.INVALID_QUANTITY, f"line has {count} scans, too many", count)
    try:
        typed = _typed_serials(entry.serials, limits)
        scans = [_checked_scan(raw, item) for raw in entry.scans]
    except (SerialEntryError, BarcodeError) as error:
        return problem(ReasonCode(error.code), error.reason, error.offending)
    serialized = item is None or item.serialized
    serials = typed + [s.serial for s in scans if s.serial is not None and serialized]
    duplicates = find_duplicates(serials)
    if duplicates:
        reason = f"serial {duplicates[0]!r} is picked more than once on the line"
        return problem(ReasonCode.DUPLICATE_SERIAL, reason, duplicates[0])
    picks = Picks(lots=entry.lots or _scanned_lots(scans, item, serials), serials=tuple(serials))
    return _named_for_vendor(shipment, line, picks, item) or picks


def _typed_serials(entry: str | tuple[str, ...] | None, limits: Limits) -> list[str]:
    if entry is None or (not isinstance(entry, str) and not entry):
        return []
    return parse_serials(entry, max_span=limits.max_span, max_serials=limits.max_serials_per_line)


def _checked_scan(raw: str, item: Item | None) -> Scan:
    scan = decode_scan(raw)
    expected = normalize_gtin(item.gtin if item else None)
    if expected is not None and scan.gtin is not None and scan.gtin != expected:
        raise BarcodeError(
            ReasonCode.INVALID_BARCODE.value,
            f"scan {raw!r} carries GTIN {scan.gtin}, but item {item.lic if item else ''} has "
            f"GTIN {expected}",
            raw,
        )
    return scan


def _scanned_lots(
    scans: Iterable[Scan], item: Item | None, serials: Sequence[str]
) -> tuple[LotPick, ...]:
    """Each scan of a lot is one unit of it; serials, when scanned, already name the units."""
    if serials or (item is not None and not item.track_mfr_lot):
        return ()
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
