"""Next Serial arithmetic (R6).

A purely numeric Next Serial shorter than 5 digits is zero padded to 5 ("7" -> "00007");
a longer one keeps its width. A serial with a prefix and a numeric tail keeps the prefix and the
tail's width ("SN-0098" -> "SN-0098", "SN-0099", "SN-0100"). A run that overflows the width
grows it ("99999" -> "100000"). A Next Serial without a numeric tail cannot be continued.

Every serial a run hands out must be one that typed entry (R5, `shared.serials.parse_serials`)
reads back as itself, or the unit could never be named again by a return, a vendor return or an
adjustment: a run that would hand out another (one grown past the maximum length, or continuing
a Next Serial stored before the contract checked it) is refused, not generated.
"""

from __future__ import annotations

import re

from services.allocation.domain.errors import ReasonCode, Refusal
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
