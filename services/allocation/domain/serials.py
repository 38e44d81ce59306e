"""Next Serial arithmetic (R6).

A purely numeric Next Serial shorter than 5 digits is zero padded to 5 ("7" -> "00007");
a longer one keeps its width. A serial with a prefix and a numeric tail keeps the prefix and the
tail's width ("SN-0098" -> "SN-0098", "SN-0099", "SN-0100"). A run that overflows the width
grows it ("99999" -> "100000"). A Next Serial without a numeric tail cannot be continued.
"""

from __future__ import annotations

import re

from services.allocation.domain.errors import ReasonCode, Refusal

MIN_NUMERIC_WIDTH = 5
_TAIL = re.compile(r"(.*?)([0-9]+)")


def serial_run(next_serial: str, count: int) -> tuple[tuple[str, ...], str]:
    """`count` consecutive serials starting at `next_serial`, and the Next Serial after them."""
    match = _TAIL.fullmatch(next_serial)
    if match is None:
        raise Refusal(
            ReasonCode.SERIAL_REQUIRED,
            f"next serial {next_serial!r} has no numeric tail to continue from",
            next_serial,
        )
    prefix, digits = match.groups()
    width = len(digits) if prefix else max(len(digits), MIN_NUMERIC_WIDTH)
    start = int(digits)

    def render(number: int) -> str:
        return f"{prefix}{number:0{width}d}"

    return tuple(render(start + i) for i in range(count)), render(start + count)
