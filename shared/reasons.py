"""Reason codes of the public contract (DESIGN.md §4), and how a refusal's `reason` reads.
Pure: domain cores import it too.

A `reason` is read by warehouse staff on dashboards, so every reason lotline builds follows one
style, kept by the helpers below (use them rather than formatting values by hand):

- Identifiers (LICs, serials, manufacturer and inventory lots, offices, shipment, adjustment and
  message ids) appear as they are, without quotes, after the word that says what they are:
  "serial PX-0005 of WIDGET is already in stock", "manufacturer lot L7 of WIDGET is not at
  office MAIN" (the style most reasons already used). The contract has trimmed them and
  refused control and invisible characters, so nothing hides in them; a quote mark in a reason
  is part of a value. Raw text that is not an identifier (a barcode scan as scanned, a serial
  as typed) is shown the same way, clipped, with a scanner's group separator (FNC1) written
  <GS> as GS1's documents and scanner tools write it, and every other character that cannot
  be seen written as an escape ("\\r", "\\u200b"): `shown`. (A literal "<GS>" in a scan is
  shown alike; the refusal's `offending` carries the scan exactly.)
- Numbers as a person types them: 5, 2.5, 1000 (`number`): never ``Decimal('5')``, ``5.000``
  or ``1E+3``.
- Yes/no values as the JSON upstream sends spells them: true, false (`flag`).
- Nothing missing is ever "None": say what is missing, in words ("without an expiry date",
  `listed_expiring`; "no manufacturer lot"). Dates are YYYY-MM-DD.
- Statuses in words ("is not in stock: it was shipped on 2026-03-02 (shipment S-1 line 1)"),
  never the names of enums or fields' internal values ("AVAILABLE").
- Several values: joined with ", ", the first few and how many more (`listed`), never a
  Python list.
- A value refused as sent (a date, a kind, a flag, a number in the wrong place) is written as
  the JSON upstream sent spells it (`sent`): null, true, 2026-11-23T00:00:00Z, sale; a list or
  an object is named ("a list"), not printed; and spaces around text, which a dashboard does
  not show, are said in words: "sale followed by a space", "empty".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum


class ReasonCode(StrEnum):
    UNKNOWN_ITEM = "UNKNOWN_ITEM"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    LOT_REQUIRED = "LOT_REQUIRED"
    EXPIRY_REQUIRED = "EXPIRY_REQUIRED"
    SERIAL_REQUIRED = "SERIAL_REQUIRED"
    SERIAL_COUNT_MISMATCH = "SERIAL_COUNT_MISMATCH"
    DUPLICATE_SERIAL = "DUPLICATE_SERIAL"
    SERIAL_NOT_AVAILABLE = "SERIAL_NOT_AVAILABLE"
    SERIAL_NOT_SHIPPED = "SERIAL_NOT_SHIPPED"
    LOT_NOT_FOUND = "LOT_NOT_FOUND"
    LOT_EXPIRED = "LOT_EXPIRED"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    LOT_QTY_EXCEEDS_USED = "LOT_QTY_EXCEEDS_USED"
    RETURN_EXCEEDS_SHIPPED = "RETURN_EXCEEDS_SHIPPED"
    TRACKING_LOCKED = "TRACKING_LOCKED"
    SHIPMENT_INCOMPLETE = "SHIPMENT_INCOMPLETE"
    UNKNOWN_SHIPMENT = "UNKNOWN_SHIPMENT"
    INVALID_SERIAL_SPAN = "INVALID_SERIAL_SPAN"
    INVALID_BARCODE = "INVALID_BARCODE"


def listed_expiring(dates: Iterable[date | None]) -> str:
    """How a manufacturer lot is listed, for a reason: "expiring on 2026-12-31 and
    2027-01-31", "expiring on 2026-12-31 and without one", "without an expiry date"; never
    "None"."""
    given = set(dates)
    dated = sorted(str(day) for day in given if day is not None)
    parts = [f"expiring on {' and '.join(dated)}"] if dated else []
    if None in given:
        parts.append("without one" if dated else "without an expiry date")
    return " and ".join(parts)


# Beyond this many digits before or after the point a number is written as Python writes it
# (1E+400): hostile input must not turn into a reason of 400 digits. The contract's own bounds
# (a billion, 6 decimal places) are well inside.
_MAX_DIGITS = 30
_MAX_SHOWN = 100
_GROUP_SEPARATOR = "\x1d"  # FNC1 as scanners transmit it


def number(value: Decimal | int) -> str:
    """A quantity or amount as a person types it: "5", "2.5", "-3", "1000"; never "5.000",
    "1E+3" or "Decimal('5')" (the values are the same; the noise is how they were computed)."""
    if isinstance(value, int) or not value.is_finite():
        return str(value)
    if not value:
        return "0"  # also -0 and 0E-7
    if abs(value.adjusted()) > _MAX_DIGITS:
        return str(value)
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def flag(value: bool) -> str:
    """A yes/no value as JSON spells it: "true", "false"."""
    return "true" if value else "false"


def listed(values: Iterable[str], most: int = 5) -> str:
    """Values joined with ", ": the first `most`, then how many more ("A, B and 3 more")."""
    names = list(values)
    shown = ", ".join(names[:most])
    rest = len(names) - most
    return f"{shown} and {rest} more" if rest > 0 else shown


def shown(text: str) -> str:
    """Raw text (a scan as scanned, a serial as typed) for a reason: as is, clipped to 100
    characters, the group separator written "<GS>", and every other character that cannot be
    seen (controls, invisible formatting, private-use, unassigned, lone surrogates, blanks
    other than the space) written as an escape ("\\r", "\\u200b"), never hidden."""
    clipped = text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"
    if clipped.isprintable():
        return clipped
    return "".join(_visible(ch) for ch in clipped)


def _visible(ch: str) -> str:
    if ch == _GROUP_SEPARATOR:
        return "<GS>"
    # str.isprintable is what repr escapes by: nothing a repr made visible is hidden here.
    return ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")


def sent(value: object) -> str:
    """A JSON value as upstream sent it, for a reason saying what was expected instead: null,
    true, false, a number as written (1.50, 1E+3: what was refused is what was sent), text as
    `shown` with the spaces around it said in words ("sale followed by a space", "empty",
    "3 spaces"), "a list" or "an object" for a container."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return flag(value)
    if isinstance(value, int | Decimal | float):
        return shown(str(value))  # clipped: a 5,000-digit number is not a reason
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if not isinstance(value, str):
        return shown(str(value))
    core = value.strip(" ")
    if not core:
        return _spaces(len(value)) if value else "empty"
    lead, trail = len(value) - len(value.lstrip(" ")), len(value) - len(value.rstrip(" "))
    around = [f"preceded by {_spaces(lead)}"] if lead else []
    around += [f"followed by {_spaces(trail)}"] if trail else []
    return " ".join([shown(core), " and ".join(around)]) if around else shown(core)


def _spaces(count: int) -> str:
    return "a space" if count == 1 else f"{count} spaces"
