"""Serial numbers: Next Serial arithmetic (R6), and where a serial is now, in words.

A purely numeric Next Serial shorter than 5 digits is zero padded to 5 ("7" -> "00007");
a longer one keeps its width. A serial with a prefix and a numeric tail keeps the prefix and the
tail's width ("SN-0098" -> "SN-0098", "SN-0099", "SN-0100"). A run that overflows the width
grows it ("99999" -> "100000"). A Next Serial without a numeric tail cannot be continued.

Every serial a run hands out must be one that typed entry (R5, `shared.serials.parse_serials`)
reads back as itself, or the unit could never be named again by a return, a vendor return or an
adjustment: a run that would hand out another (one grown past the maximum length, or continuing
a Next Serial stored before the contract checked it) is refused, not generated.

A refusal naming a serial that cannot do what was asked says where the serial is now
(`whereabouts`): shipped to whom on which shipment line, returned to which vendor, removed by a
count, in stock at which office. Its advice then fits the case: a shipped unit comes back as a
customer return, never as a beginning balance that would make it available while the ledger
still has the customer holding it.
"""

from __future__ import annotations

import re

from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.model import SerialStatus, Unit
from shared.reasons import shown
from shared.serials import SerialEntryError, one_typed_serial

MIN_NUMERIC_WIDTH = 5
_TAIL = re.compile(r"(.*?)([0-9]+)")


def serial_run(next_serial: str, count: int) -> tuple[tuple[str, ...], str]:
    """`count` consecutive serials starting at `next_serial`, and the Next Serial after them."""
    match = _TAIL.fullmatch(next_serial)
    if match is None:
        raise Refusal(
            ReasonCode.SERIAL_REQUIRED,
            f"Next Serial {shown(next_serial)} has no numeric tail to continue from",
            next_serial,
        )
    prefix, digits = match.groups()
    width = len(digits) if prefix else max(len(digits), MIN_NUMERIC_WIDTH)
    start = int(digits)

    def render(number: int) -> str:
        return f"{prefix}{number:0{width}d}"

    serials = tuple(render(start + i) for i in range(count))
    # Every serial of the run has the same prefix and a tail only as wide as the last one's, so
    # the first and the last stand for them all.
    for serial in dict.fromkeys(serials[:1] + serials[-1:]):
        _typeable(serial, next_serial)
    return serials, render(start + count)


def _typeable(serial: str, next_serial: str) -> None:
    """Refuse a generated serial that typed entry would not read back as itself."""
    try:
        one_typed_serial(serial)
    except SerialEntryError as exc:
        raise Refusal(
            ReasonCode.INVALID_SERIAL_SPAN,
            f"Next Serial {shown(next_serial)} would generate serial {shown(serial)}: {exc.reason}",
            serial,
        ) from None


def latest_unit(draft: Draft, serial: str) -> Unit | None:
    """The serial's current unit, None if it was never received. A serial is received again
    only after it left stock, so the unit decided last (its lot's highest seq) is current."""
    return max(
        draft.units_with_serial(serial), key=lambda u: draft.lots[u.lot_id].seq, default=None
    )


def whereabouts(draft: Draft, unit: Unit) -> str:
    """Where `unit` is now, to follow "serial X of LIC": "was shipped to St Mary Hospital on
    shipment SO-7001 line 1", "was returned to vendor Acme on shipment RTV-1 line 1", "was
    removed from stock at office MAIN by a count or loss", "is allocated to shipment S-2 line 1
    at office MAIN", "is in stock at office MAIN"."""
    office = draft.lots[unit.lot_id].office
    status = unit.status
    if status is SerialStatus.SHIPPED:
        to = f" to {unit.customer}" if unit.customer else ""
        return f"was shipped{to} on {_document(unit)}"
    if status is SerialStatus.RETURNED_TO_VENDOR:
        allocation = draft.allocations.get((unit.shipment_id or "", unit.line_no or 0))
        vendor = allocation.counterparty if allocation is not None else None
        whom = f"vendor {vendor}" if vendor else "the vendor"
        return f"was returned to {whom} on {_document(unit)}"
    if status is SerialStatus.REMOVED:
        return f"was removed from stock at office {office} by a count or loss"
    if status is SerialStatus.ALLOCATED:
        return f"is allocated to {_document(unit)} at office {office}"
    if status is SerialStatus.HELD:
        return "is coming back on a customer return held for the rest of its document"
    if unit.lot_id not in draft.stocked:  # AVAILABLE in a held receipt's lot
        return "is on a receipt held until the rest of its document is posted"
    return f"is in stock at office {office}"


def _document(unit: Unit) -> str:
    """The shipment line that took `unit`: "shipment SO-7001 line 1"."""
    if unit.shipment_id is None:
        return "another shipment"
    line = "" if unit.line_no is None else f" line {unit.line_no}"
    return f"shipment {unit.shipment_id}{line}"
