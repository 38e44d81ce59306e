"""Validated scalar types of the wire contract: identifiers, quantities, money, dates.

Hostile input is expected (DESIGN.md §6): identifiers are NFC-normalized and trimmed, control
and invisible characters are refused, numbers must be finite and within sane bounds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    Strict,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from shared import reasons
from shared.serials import BLANK_LOOKING

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 2_000
MAX_QUANTITY = Decimal("1000000000")  # a billion units on one line is a typo, not a receipt
MAX_MONEY = Decimal("1000000000000")
MAX_DECIMAL_PLACES = 6

# Zero-width code points look like nothing on screen but make two lot numbers differ.
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}
_REFUSED = {
    "Cc": "the control character",
    "Cf": "the invisible character",
    "Co": "the private-use character",
    "Cn": "the unassigned character",
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
    # Inside an identifier (around it, trimmed): "LOT A" with a no-break space is not "LOT A".
    "Zs": "the space look-alike",
}


def _check_text(value: str, *, what: str) -> str:
    if value.isascii() and value.isprintable():
        # The common case, fast: printable ASCII is NFC and holds no control or invisible
        # character.
        return value.strip()
    value = unicodedata.normalize("NFC", value).strip()
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise ValueError(f"{what} contains a lone surrogate")
        refused = _REFUSED.get(category) if ch != " " else None
        if refused is None and (ch in _INVISIBLE or BLANK_LOOKING.match(ch)):
            refused = "the invisible character"
        if refused is not None:
            raise ValueError(f"{what} contains {refused} U+{ord(ch):04X}")
    return value


def normalize_identifier(value: str) -> str:
    """NFC, trimmed, no control or invisible characters, non-empty, bounded."""
    value = _check_text(value, what="identifier")
    if not value:
        raise ValueError("identifier is empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"identifier longer than {MAX_ID_LENGTH} characters")
    return value


def _normalize_text(value: str) -> str:
    # Free text may hold line breaks and tabs; other control characters are refused.
    value = unicodedata.normalize("NFC", value).strip()
    for ch in value:
        if ch in "\n\r\t":
            continue
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise ValueError(f"text contains the control character U+{ord(ch):04X}")
    if len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"text longer than {MAX_TEXT_LENGTH} characters")
    return value


# A decimal string as JSON writes a number, sign and exponent allowed: Python's Decimal() also
# reads "1_5" as 15 and any script's digits ("\u0665" is 5), which no sender means.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _to_decimal(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, float):
        # Floats only reach here from Python callers; the JSON decoder yields Decimal.
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip()
        # Digits, sign, point and exponent only; the pattern is checked only for text holding
        # anything else (a 100,000-movement event holds 200,000 numbers as text).
        if not (text.isascii() and "_" not in text) and _DECIMAL_TEXT.fullmatch(text) is None:
            raise ValueError(f"{_render(value)} is not a decimal number")
        return text
    return value


def _clipped(text: str) -> str:
    """A value for a refusal's reason: a 5,000-character one is shown by its ends."""
    return text if len(text) <= 40 else f"{text[:20]}…{text[-10:]} ({len(text)} characters)"


_QUANTUM = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)
_ZERO = Decimal(0)


def _bounded(limit: Decimal, what: str) -> AfterValidator:
    def check(value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError(f"{what} must be a finite number")
        # copy_abs, not abs(): abs() rounds to the decimal context and raises decimal.Overflow
        # (not a ValueError, so it escapes validation) for an exponent beyond its Emax
        # (1E+1000000000); copy_abs and a comparison never round and never signal.
        if value.copy_abs() > limit:
            raise ValueError(f"{what} {_shown(value)} is beyond the limit {limit}")
        # A value equal to itself rounded to the allowed places has no more places than that
        # (quantize cannot overflow: the value is within the limit). Cheaper than as_tuple(),
        # which builds a tuple of digits per value: a 100,000-serial event holds 200,000.
        rounded = value.quantize(_QUANTUM)
        if value != rounded:
            raise ValueError(
                f"{what} {_shown(value)} has more than {MAX_DECIMAL_PLACES} decimal places"
            )
        if not value:
            # -0 is 0; and 0E-1000000 (10 bytes in) would be written as a million digits.
            value = value.copy_abs()
            return _ZERO if value.compare_total(rounded.copy_abs()) < 0 else value
        # Equal numbers, so only zeros lie past 6 places: drop them (PostgreSQL's numeric takes
        # 16,383 places, and the wire should not carry what an 8 MiB message could). A total
        # ordering puts the smaller exponent first for a positive number, last for a negative.
        if value.compare_total(rounded) == (-1 if value > 0 else 1):
            return rounded
        return value

    return AfterValidator(check)


def _shown(value: Decimal) -> str:
    return _clipped(str(value))


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError(f"quantity must be greater than 0, not {_shown(value)}")
    return value


def _a_change(value: Decimal) -> Decimal:
    """`SignedQuantity`: an adjustment's quantity (`AdjustInventory`, re-keyed as `AdjustStock`;
    DESIGN §4: no other message carries a signed one), the change in stock, never 0. A clerk
    who counted none of a lot sends the count itself, 0: say what the field means. The lot's
    quantity is not known here, so the example is only that."""
    if value == 0:
        raise ValueError(
            "quantity must not be 0: it is the change in stock (+ adds, - removes), not the"
            " quantity counted: to empty a lot holding 15, for example, send -15"
        )
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"amount must be 0 or more, not {_shown(value)}")
    return value


def _plain(value: Decimal) -> str:
    # Fixed-point text: never "1E+1" on the wire.
    text = format(value, "f")
    return text


_DecimalSer = PlainSerializer(_plain, return_type=str, when_used="json")


# --- What the JSON schema (and so the AsyncAPI document) says about these types -----------------
# Documentation only: the limits are enforced by the validators above, which give the refusal its
# reason code and message; a pydantic constraint (`Field(max_length=...)`) would refuse first with
# pydantic's own message, and before normalization. These annotations change the schema text alone.


@dataclass(frozen=True)
class _Documented:
    """Rewrites the generated JSON schema of the annotated type; validation is untouched."""

    rewrite: Callable[[JsonSchemaValue], JsonSchemaValue]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.rewrite(handler(core_schema))


def _text_schema(max_length: int, description: str) -> _Documented:
    def rewrite(schema: JsonSchemaValue) -> JsonSchemaValue:
        # Replaces the models' catch-all `str_max_length` (8 MiB) with the real limit.
        return {**schema, "maxLength": max_length, "description": description}

    return _Documented(rewrite)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal_schema(
    description: str,
    *,
    limit: Decimal,
    minimum: Decimal | None = None,
    exclusive_minimum: Decimal | None = None,
    not_zero: bool = False,
) -> _Documented:
    bounds: dict[str, Any] = {
        "minimum": _number(-limit if minimum is None else minimum),
        "maximum": _number(limit),
        # "At most 6 decimal places" stays in the description: JSON Schema's multipleOf is
        # tested with float division by common validators, which refuse 0.1 as a multiple of
        # 1e-06, so it would refuse numbers lotline takes.
    }
    if exclusive_minimum is not None:
        del bounds["minimum"]
        bounds["exclusiveMinimum"] = _number(exclusive_minimum)
    if not_zero:
        bounds["not"] = {"const": 0}
    string = {"type": "string"}  # a decimal string, e.g. "2.50": the same bounds, as text

    def rewrite(schema: JsonSchemaValue) -> JsonSchemaValue:
        # Validation mode: a JSON number or a decimal string (pydantic's anyOf); lotline writes
        # strings (serialization mode: a string). The bounds apply to the number either way.
        branches = schema.get("anyOf")
        if isinstance(branches, list):
            rewritten = [
                {**branch, **bounds}
                if branch.get("type") == "number"
                else string
                if branch.get("type") == "string"
                else branch
                for branch in branches
            ]
            return {**schema, "anyOf": rewritten, "description": description}
        if schema.get("type") == "string":
            return {**string, "description": description}
        return {**schema, **bounds, "description": description}

    return _Documented(rewrite)


_LIMITS = f"at most {MAX_DECIMAL_PLACES} decimal places; a JSON number or a decimal string"
_ID_DOC = (
    f"An identifier: NFC-normalized and trimmed, 1 to {MAX_ID_LENGTH} characters, no control or"
    " invisible characters."
)

Identifier = Annotated[
    str, AfterValidator(normalize_identifier), _text_schema(MAX_ID_LENGTH, _ID_DOC)
]
Text = Annotated[
    str,
    AfterValidator(_normalize_text),
    _text_schema(
        MAX_TEXT_LENGTH,
        f"Free text: NFC-normalized and trimmed, at most {MAX_TEXT_LENGTH} characters; line"
        " breaks and tabs allowed, other control characters not.",
    ),
]

Quantity = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    _bounded(MAX_QUANTITY, "quantity"),
    AfterValidator(_positive),
    _DecimalSer,
    _decimal_schema(
        f"A quantity: greater than 0, at most {MAX_QUANTITY}, {_LIMITS}.",
        limit=MAX_QUANTITY,
        exclusive_minimum=Decimal(0),
    ),
]
# An adjustment's quantity only: the change in stock (`_a_change` says so when it is 0).
SignedQuantity = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    _bounded(MAX_QUANTITY, "quantity"),
    AfterValidator(_a_change),
    _DecimalSer,
    _decimal_schema(
        f"A signed quantity: not 0, from -{MAX_QUANTITY} to {MAX_QUANTITY}, {_LIMITS}.",
        limit=MAX_QUANTITY,
        not_zero=True,
    ),
]
# Counts that may be zero: a PO line ordered but not yet purchased.
Count = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    _bounded(MAX_QUANTITY, "quantity"),
    AfterValidator(_non_negative),
    _DecimalSer,
    _decimal_schema(
        f"A count: 0 or more, at most {MAX_QUANTITY}, {_LIMITS}.",
        limit=MAX_QUANTITY,
        minimum=Decimal(0),
    ),
]
# Quantities reported by lotline itself (may be zero or negative, e.g. a reversal).
Amount = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    _bounded(MAX_MONEY, "amount"),
    _DecimalSer,
    _decimal_schema(
        f"An amount (may be 0 or negative, e.g. a reversal): from -{MAX_MONEY} to {MAX_MONEY},"
        f" {_LIMITS}.",
        limit=MAX_MONEY,
    ),
]
Money = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    _bounded(MAX_MONEY, "money"),
    AfterValidator(_non_negative),
    _DecimalSer,
    _decimal_schema(
        f"Money: 0 or more, at most {MAX_MONEY}, {_LIMITS} (lotline writes strings).",
        limit=MAX_MONEY,
        minimum=Decimal(0),
    ),
]
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    """DESIGN §4: dates are `YYYY-MM-DD`. pydantic alone also takes a date and time at
    midnight (with any offset) and a Unix time (0 is 1970-01-01)."""
    if isinstance(value, datetime) or not isinstance(value, str | date):
        raise ValueError(f"a date is written YYYY-MM-DD, not {_render(value)}")
    if isinstance(value, str) and _ISO_DATE.fullmatch(value) is None:
        raise ValueError(f"a date is written YYYY-MM-DD, not {_render(value)}")
    return value


# RFC 3339 (section 5.6): seconds and an offset are required; "t", "z" and a space for "T" are
# allowed. pydantic alone also takes a time without an offset, a date alone and a Unix time.
_RFC_3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc_3339(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a time is RFC 3339, with its offset: this one has none")
        return value
    if not isinstance(value, str) or _RFC_3339.fullmatch(value) is None:
        raise ValueError(
            f"a time is RFC 3339 (e.g. 2026-11-01T10:00:00Z, with its offset), not {_render(value)}"
        )
    return value


def _render(value: object) -> str:
    """A refused value in a reason, as sent (shared/reasons.py): unquoted, long text by its
    ends, spaces around it in words."""
    return reasons.sent(_clipped(value) if isinstance(value, str) else value)


MAX_LINE_NO = 100_000


def whole_number(value: object, most: int, what: str) -> object:
    """A JSON number (read as Decimal) for an integer field, checked before pydantic makes an
    int of it: 1E+1000000000 would be a billion digits, and telling 1E-1000000000 has a
    fraction took as long (ten bytes of input each, minutes of a partition's time). A
    comparison never rounds, so these checks are cheap whatever the exponent."""
    if isinstance(value, Decimal):
        if not value.is_finite() or value.copy_abs() > most:
            raise ValueError(f"{what} is at most {most}, not {_clipped(str(value))}")
        if value != value.to_integral_value():
            raise ValueError(f"{what} is a whole number, not {_clipped(str(value))}")
    return value


def _line_number(value: object) -> object:
    """A line number is a JSON number (or its digits as text): not a boolean, not "1_0"."""
    if isinstance(value, bool):
        raise ValueError(f"a line number is a number, not {_render(value)}")
    whole_number(value, MAX_LINE_NO, "a line number")
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"a line number is a number, not {_render(value)}")
    return value


Date = Annotated[date, BeforeValidator(_iso_date)]
# The dates of lotline's own messages (commands, events): only lotline writes them, from dates
# already read as `Date`. `Date`'s Python check per value cost a quarter of the time to read a
# 100,000-movement event (0.57 s → 0.72 s), in every service that reads it.
OwnDate = date
Timestamp = Annotated[datetime, BeforeValidator(_rfc_3339)]
LineNo = Annotated[int, Field(ge=1, le=MAX_LINE_NO), BeforeValidator(_line_number)]
# A JSON true or false: pydantic alone also reads "yes", "off", "t", 0 and 1 as flags.
Flag = Annotated[bool, Strict()]


def _blank_is_none(value: object) -> object:
    """Many ERPs send an empty string for a field they have no value for."""
    return None if isinstance(value, str) and not value.strip() else value


# What an upstream system may leave out, or send blank: both mean "none".
OptionalIdentifier = Annotated[Identifier | None, BeforeValidator(_blank_is_none)]
OptionalMoney = Annotated[Money | None, BeforeValidator(_blank_is_none)]
