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

Serials match exactly (GS1 AI 21 serials are case-sensitive, and "98" is not "00098"): serials
that differ only by letter case or by the leading zeros of their digits are separate units. A
refusal saying a serial was never received names its near matches (`NearSerials`), the units
of the LIC whose serial has the same `near_key`, so a clerk who typed "98" for "00098" sees it.
The lookup is built only when such a refusal is written, never on an accepted path.
"""

from __future__ import annotations

import re

from services.allocation.domain.draft import Draft
from services.allocation.domain.errors import ReasonCode, Refusal
from services.allocation.domain.holding import where_held
from services.allocation.domain.model import SerialStatus, Unit
from shared.reasons import shown
from shared.serials import SerialEntryError, one_typed_serial

MIN_NUMERIC_WIDTH = 5
_TAIL = re.compile(r"(.*?)([0-9]+)")
_DIGIT_RUN = re.compile(r"[0-9]+")

NEAR_SHOWN = 3
"""Near matches a refusal names at most; the rest are counted."""


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
    held = where_held(draft, unit)
    if held is not None:
        return f"is {held}"
    return f"is in stock at office {office}"


def _document(unit: Unit) -> str:
    """The shipment line that took `unit`: "shipment SO-7001 line 1"."""
    if unit.shipment_id is None:
        return "another shipment"
    line = "" if unit.line_no is None else f" line {unit.line_no}"
    return f"shipment {unit.shipment_id}{line}"


# -- near matches -------------------------------------------------------------------------------


def near_key(serial: str) -> str:
    """What a serial is when letter case and the leading zeros of each run of digits are
    ignored: "IP200-0002", "ip200-002" and "Ip200-2" are all "ip200-2"; "00098" and "98" are
    "98"; "000" is "0"."""
    return _DIGIT_RUN.sub(_unpadded, serial.casefold())


def _unpadded(run: re.Match[str]) -> str:
    return run.group().lstrip("0") or "0"


class NearSerials:
    """The near matches of serials a refusal says were never received, from one LIC's units.

    Making one costs nothing: the index (one pass over every unit of the LIC) is built on the
    first `hint`, so only a refusal pays for it, and once however many serials it names."""

    def __init__(self, draft: Draft) -> None:
        self._draft = draft
        self._index: dict[str, dict[str, Unit]] | None = None

    def hint(self, serial: str) -> str:
        """ " (did you mean 00098, which is in stock at office MAIN? serials match exactly:
        case and leading zeros count)" to follow "was never received"; "" without a near match.
        At most `NEAR_SHOWN` serials, in code point order, each with where its current unit
        is (`whereabouts`)."""
        near = self._near().get(near_key(serial), {})
        others = sorted(s for s in near if s != serial)
        if not others:
            return ""
        named = [
            f"{shown(s)}, which {whereabouts(self._draft, near[s])}" for s in others[:NEAR_SHOWN]
        ]
        more = len(others) - NEAR_SHOWN
        if more > 0:
            named.append(f"one of {more} more")
        # Commas, not semicolons: a refusal of several serials joins their reasons with "; ".
        which = named[0] if len(named) == 1 else ", ".join(named[:-1]) + f", or {named[-1]}"
        return f" (did you mean {which}? serials match exactly: case and leading zeros count)"

    def _near(self) -> dict[str, dict[str, Unit]]:
        """near key -> serial -> its current unit (the latest, as `latest_unit`)."""
        if self._index is None:
            draft = self._draft
            seq = {lot_id: lot.seq for lot_id, lot in draft.lots.items()}
            index: dict[str, dict[str, Unit]] = {}
            for (serial, lot_id), unit in draft.units.items():
                same = index.setdefault(near_key(serial), {})
                before = same.get(serial)
                if before is None or seq[lot_id] > seq[before.lot_id]:
                    same[serial] = unit
            self._index = index
        return self._index


def near_matches(draft: Draft, serial: str) -> str:
    """`NearSerials.hint` for a single refusal."""
    return NearSerials(draft).hint(serial)
