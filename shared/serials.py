"""Serial number entry parsing (DESIGN.md rule R5, hostile input per section 6).

People type serials as lists separated by commas, semicolons or line breaks, as inclusive
spans (``1000...1009``, ``SN-0098...SN-0102``), or paste them from a spreadsheet. This module
turns such an entry into the list of serials it names, in entry order, or refuses it with a
contract reason code and the offending text.

Pure: standard library and shared.reasons only, no I/O. Reasons follow shared/reasons.py's
style: serials and spans unquoted, as typed (`shown`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.reasons import flag, listed, number, shown

__all__ = [
    "DUPLICATE_SERIAL",
    "INVALID_QUANTITY",
    "INVALID_SERIAL_SPAN",
    "MAX_SERIAL_LENGTH",
    "SERIAL_REQUIRED",
    "SerialEntryError",
    "find_duplicates",
    "format_serials",
    "normalize_serial",
    "one_typed_serial",
    "parse_serials",
]

# Contract reason codes (DESIGN.md section 4) this module may raise.
INVALID_SERIAL_SPAN = "INVALID_SERIAL_SPAN"
DUPLICATE_SERIAL = "DUPLICATE_SERIAL"
INVALID_QUANTITY = "INVALID_QUANTITY"
SERIAL_REQUIRED = "SERIAL_REQUIRED"

MAX_SERIAL_LENGTH = 64
# Offending texts and reasons end up in events and logs: never copy megabytes into them.
_MAX_SHOWN = 100

# Separators: commas, semicolons, tabs, line breaks and every Unicode space (NBSP and friends
# arrive when pasting from spreadsheets and web pages). Other control characters (VT, FF, NEL,
# \x1c-\x1f) are deliberately not separators: they are refused, not silently swallowed.
_BLANKS = (
    "\t\r\n \u00a0\u1680"
    + "".join(chr(code) for code in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
# Commas and semicolons: ASCII, and those Chinese, Japanese and Arabic keyboards type (fullwidth,
# ideographic, small, Arabic). NFC keeps them apart from "," and ";", so without this "SN1，SN2"
# would be one serial that reads as two.
_COMMAS = ",;\uff0c\uff1b\u3001\ufe50\ufe51\ufe54\u060c\u061b"
_SEPARATOR_RE = re.compile("[" + re.escape(_COMMAS + _BLANKS) + "]+")
# Span markers: "..." as in the seed, "..", and the typographic ellipsis that word processors and
# phones substitute for "...". Any run of two or more dots is inspected so "...." is refused.
_MARKER_RE = re.compile(r"\.{2,}|…")
_VALID_MARKERS = frozenset({"...", "..", "…"})
# "1000 ... 1009" is one span, not three entries: drop the blanks around a marker first, any
# but line breaks (one item per line), as pasted cells and word processors put tabs and thin or
# no-break spaces there.
_INLINE_BLANKS = (
    "[" + re.escape(_BLANKS.translate(str.maketrans("", "", "\r\n\u2028\u2029"))) + "]*"
)
_SPACED_MARKER_RE = re.compile(_INLINE_BLANKS + r"(\.{2,}|…)" + _INLINE_BLANKS)
_ASCII_DIGITS = "0123456789"

# Unicode categories refused inside a serial, with the words used in the refusal.
# Invisible too, but letters or marks, not format characters (Cf): Unicode's default-ignorable
# Hangul fillers, variation selectors, combining grapheme joiner, Khmer inherent vowels and
# Mongolian selectors, and the braille blank. "LOT-1" + U+3164 looks exactly like "LOT-1".
BLANK_LOOKING = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u2800\u3164\ufe00-\ufe0f\uffa0"
    "\U000e0100-\U000e01ef]"
)
_BAD_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",  # zero-width space/joiners, BOM, bidi controls
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned character",
}


class SerialEntryError(ValueError):
    """A serial entry refused with a contract reason code.

    ``code`` is a contract reason code (``INVALID_SERIAL_SPAN``, ``DUPLICATE_SERIAL``,
    ``INVALID_QUANTITY`` or ``SERIAL_REQUIRED``), ``reason`` a sentence for people naming the
    offending value, ``offending`` the offending text (escaped with ``repr`` when it holds
    characters that must not travel further, clipped when very long).
    """

    def __init__(self, code: str, reason: str, offending: str) -> None:
        # All three go to Exception.args so the error pickles and unpickles intact.
        super().__init__(code, reason, offending)
        self.code = code
        self.reason = reason
        self.offending = offending

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


@dataclass(frozen=True, slots=True)
class _Span:
    """A parsed span, not yet materialized: ``prefix`` + numbers ``first..last``."""

    prefix: str
    first: int
    last: int
    width: int  # 0: natural numbers, no padding

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def serials(self) -> list[str]:
        # One %-format per serial runs at C speed; "%" in the prefix must be escaped for it.
        number = f"%0{self.width}d" if self.width else "%d"
        pattern = self.prefix.replace("%", "%%") + number
        return list(map(pattern.__mod__, range(self.first, self.last + 1)))


def parse_serials(
    text: str | Sequence[str],
    *,
    max_span: int = 1_000_000,
    max_serials: int = 1_000_000,
) -> list[str]:
    """Parse a serial entry (rule R5) into its serials, in entry order.

    ``text`` is one string as typed or pasted, or a list of such strings. Items are separated
    by commas, semicolons (also the fullwidth, ideographic and Arabic ones), line breaks, tabs
    or spaces; blanks are ignored. An item ``A...B`` (also ``A..B``, ``A…B``, with blanks
    around the marker) is an inclusive span: both ends share a prefix and end in digits; the
    digit width is kept when the ends have the same width. Each serial is NFC
    normalized, at most 64 characters, and free of control and invisible characters.

    Raises:
        SerialEntryError: ``INVALID_SERIAL_SPAN`` for a bad span or one larger than
            ``max_span``; ``SERIAL_REQUIRED`` for a bad serial; ``DUPLICATE_SERIAL`` naming
            the first repeated serial; ``INVALID_QUANTITY`` when the entry names more than
            ``max_serials`` serials. Spans are sized before they are expanded.
    """
    serials: list[str] = []
    for token in _tokens(text, max_serials):
        # Plain substring tests: same as _MARKER_RE.search but cheaper per item.
        if ".." not in token and "…" not in token:
            serials.append(_clean(token, code=SERIAL_REQUIRED))
        else:
            span = _parse_span(token, max_span)
            if len(serials) + span.size > max_serials:
                raise _too_many(len(serials) + span.size, max_serials)
            serials.extend(span.serials())
    # Items are counted while tokenizing and spans before expansion, but a span followed by
    # single items can still cross the limit only here.
    if len(serials) > max_serials:
        raise _too_many(len(serials), max_serials)
    # Fast path: building a set is C speed; only walk the list when there is a repeat.
    if len(set(serials)) != len(serials):
        first = find_duplicates(serials)[0]
        raise SerialEntryError(
            DUPLICATE_SERIAL,
            f"serial {shown(first)} appears more than once in the entry",
            _clip(first),
        )
    return serials


def normalize_serial(value: str) -> str:
    """Normalize one serial (e.g. a scanned one): NFC, trimmed, checked like a typed serial.

    Unlike ``parse_serials`` it does not split on separators or expand spans.

    Raises:
        SerialEntryError: ``SERIAL_REQUIRED`` when empty, too long, or holding a control,
            invisible or lone-surrogate character.
    """
    trimmed = value.strip(_BLANKS)
    if not trimmed:
        raise SerialEntryError(SERIAL_REQUIRED, "serial is empty", _clip(value))
    return _clean(trimmed, code=SERIAL_REQUIRED)


def one_typed_serial(value: str) -> str:
    """``value``, if typed entry (``parse_serials``) reads it back as exactly that one serial.

    The test for a serial lotline takes from anywhere but typed entry (a Next Serial, rule R6;
    a scanned AI 21 serial, R5): returns, vendor returns and adjustments name units by typed
    entry only, so a serial it would split (``"SN,7"``), change or refuse could never be named
    again. Pass ``value`` already normalized (NFC, trimmed), as it will be stored.

    Raises:
        SerialEntryError: typed entry's own refusal (a bad character, too long, a span), or
            ``INVALID_SERIAL_SPAN`` when typed entry reads it as other serials.
    """
    try:
        # max_span=1: a span is never expanded here, only refused.
        typed = parse_serials(value, max_span=1)
    except SerialEntryError as exc:
        raise SerialEntryError(
            exc.code, f"typed entry refuses it: {exc.reason}", exc.offending
        ) from None
    if typed != [value]:
        raise SerialEntryError(
            INVALID_SERIAL_SPAN, f"typed entry reads it as {_read_as(typed)}", _clip(value)
        )
    return value


def _read_as(serials: Sequence[str]) -> str:
    """What typed entry made of a serial, in words: "no serial", "serial 1",
    "2 serials: SN, 7"."""
    if not serials:
        return "no serial"
    if len(serials) == 1:
        return f"serial {shown(serials[0])}"
    return f"{len(serials)} serials: {shown(listed(serials, most=3))}"


def find_duplicates(serials: Iterable[str]) -> list[str]:
    """Serials that occur more than once, each once, in the order their repeat is met.

    Compares exactly; pass serials already normalized (by ``parse_serials`` or
    ``normalize_serial``). Never raises.
    """
    seen: set[str] = set()
    reported: set[str] = set()
    duplicates: list[str] = []
    for serial in serials:
        if serial not in seen:
            seen.add(serial)
        elif serial not in reported:
            reported.add(serial)
            duplicates.append(serial)
    return duplicates


def format_serials(serials: Sequence[str]) -> str:
    """Render serials for display, compressing runs into spans; ``parse_serials`` reads it back.

    A run is three or more consecutive entries with the same prefix whose numeric tails step
    by one and keep the same digit width (or, without leading zeros, grow naturally:
    ``8...11``). Items are joined with ``", "``. Order is kept, so
    ``parse_serials(format_serials(s)) == s`` for any list of distinct normalized serials.
    """
    tails = [_split_tail(serial) for serial in serials]
    parts: list[str] = []
    start = 0
    while start < len(serials):
        end = _run_end(tails, start)
        if end - start >= 2:
            parts.append(f"{serials[start]}...{serials[end]}")
        else:
            parts.extend(serials[start : end + 1])
        start = end + 1
    return ", ".join(parts)


# --- tokenizing -------------------------------------------------------------------------------


def _tokens(text: str | Sequence[str], max_serials: int) -> Iterator[str]:
    """Yield the non-blank items of the entry, spans still whole."""
    if isinstance(text, str):
        pieces: Sequence[object] = (text,)
    elif isinstance(text, Sequence):
        pieces = text
    else:
        raise SerialEntryError(SERIAL_REQUIRED, "serials must be text or a list of text", "")
    count = 0
    for piece in pieces:
        # Upstream JSON may carry numbers or nulls where text belongs: refuse, never crash.
        if not isinstance(piece, str):
            raise SerialEntryError(
                SERIAL_REQUIRED,
                f"the entry holds {_described(piece)} where a serial belongs: serials are text",
                _clip(repr(piece)),
            )
        if not piece.isascii():
            # NFC before splitting: U+037E (Greek question mark) is canonically ";", so after
            # splitting it would end up inside one serial that typed entry reads as two.
            piece = unicodedata.normalize("NFC", piece)
        if ".." in piece or "…" in piece:
            piece = _SPACED_MARKER_RE.sub(r"\1", piece)
        tokens = _SEPARATOR_RE.split(piece)
        # Every item names at least one serial, so a paste with too many items is refused
        # here, before any of it is checked character by character.
        count += len(tokens) - tokens.count("")
        if count > max_serials:
            raise _too_many(count, max_serials)
        for token in tokens:
            if token:
                yield token


def _described(value: object) -> str:
    """A value that is not text, as the JSON upstream sent it, never "None"."""
    if value is None:
        return "an empty value (null)"
    if isinstance(value, bool):
        return f"the value {flag(value)}"
    if isinstance(value, int | Decimal):
        return f"the number {number(value)}"
    if isinstance(value, float):
        return f"the number {number(Decimal(repr(value)))}"
    return "a value that is not text"


# --- single serials ---------------------------------------------------------------------------


def _clean(token: str, *, code: str) -> str:
    """Check one separator-free serial and return it NFC-normalized."""
    value = _checked_nfc(token, code)
    if len(value) > MAX_SERIAL_LENGTH:
        raise SerialEntryError(
            code,
            f"serial {shown(value)} is longer than {MAX_SERIAL_LENGTH} characters",
            _clip(value),
        )
    return value


def _checked_nfc(token: str, code: str) -> str:
    """Refuse bad characters, then NFC-normalize."""
    if token.isascii():
        # ASCII fast path (nearly every serial): printable excludes exactly the C0 controls
        # and DEL, and NFC cannot change ASCII.
        if not token.isprintable():
            _refuse_characters(token, code)
        return token
    _refuse_characters(token, code)
    return unicodedata.normalize("NFC", token)


def _refuse_characters(token: str, code: str) -> None:
    """Raise for the first control, invisible, surrogate or unassigned character."""
    noun = "span" if code == INVALID_SERIAL_SPAN else "serial"
    for char in token:
        what = _BAD_CATEGORIES.get(unicodedata.category(char))
        if what is None and BLANK_LOOKING.match(char):
            what = "an invisible character"
        if what is not None:
            raise SerialEntryError(
                code,
                f"{noun} {shown(token)} contains {what} (U+{ord(char):04X})",
                # repr: NUL and lone surrogates cannot be stored in Postgres text or UTF-8 JSON.
                repr(_clip(token)),
            )


# --- spans ------------------------------------------------------------------------------------


def _parse_span(token: str, max_span: int) -> _Span:
    """Parse ``A...B`` into a `_Span`, checking its size before anything is expanded."""
    # Bad characters inside a span make a bad span. The length limit applies to each end.
    cleaned = _checked_nfc(token, INVALID_SERIAL_SPAN)
    markers = _MARKER_RE.findall(cleaned)
    if len(markers) != 1 or markers[0] not in _VALID_MARKERS:
        raise _bad_span(cleaned, "needs exactly one marker between its two ends: ..., .. or …")
    first_text, _, last_text = cleaned.partition(markers[0])
    if not first_text or not last_text:
        raise _bad_span(cleaned, "needs a serial on both sides of the marker")
    if max(len(first_text), len(last_text)) > MAX_SERIAL_LENGTH:
        raise _bad_span(cleaned, f"has an end longer than {MAX_SERIAL_LENGTH} characters")
    first_prefix, first_digits = _split_tail(first_text)
    last_prefix, last_digits = _split_tail(last_text)
    if not first_digits or not last_digits:
        raise _bad_span(cleaned, "must end in digits on both sides")
    if first_prefix != last_prefix:
        raise _bad_span(
            cleaned, f"starts with {_prefix(first_prefix)} but ends with {_prefix(last_prefix)}"
        )
    width = _span_width(cleaned, first_digits, last_digits)
    first, last = int(first_digits), int(last_digits)
    if last < first:
        raise _bad_span(cleaned, "runs backwards")
    span = _Span(first_prefix, first, last, width)
    if span.size > max_span:
        raise _bad_span(cleaned, f"names {span.size} serials, more than the limit {max_span}")
    return span


def _span_width(text: str, first_digits: str, last_digits: str) -> int:
    """Digit width to pad to, 0 for natural numbers; refuses ends whose widths disagree."""
    if len(first_digits) == len(last_digits):
        return len(first_digits)
    if _has_leading_zero(first_digits) or _has_leading_zero(last_digits):
        raise _bad_span(
            text,
            f"mixes digit widths {len(first_digits)} and {len(last_digits)} with leading zeros",
        )
    return 0


def _prefix(prefix: str) -> str:
    return f"prefix {shown(prefix)}" if prefix else "no prefix"


def _has_leading_zero(digits: str) -> bool:
    return len(digits) > 1 and digits[0] == "0"


def _split_tail(serial: str) -> tuple[str, str]:
    """Split into (prefix, trailing ASCII digits); the digits may be empty.

    Only ASCII digits count: int() would also accept Arabic-Indic or full-width digits.
    """
    prefix = serial.rstrip(_ASCII_DIGITS)
    return prefix, serial[len(prefix) :]


# --- formatting -------------------------------------------------------------------------------


def _run_end(tails: Sequence[tuple[str, str]], start: int) -> int:
    """Index of the last entry of the span-able run beginning at ``start``."""
    prefix, digits = tails[start]
    if not digits:
        return start
    # A run that starts with a leading zero is fixed-width; otherwise numbers grow naturally.
    # Deciding once per run keeps the whole run expressible as one span.
    fixed_width = len(digits) if _has_leading_zero(digits) else 0
    value = int(digits)
    end = start
    while end + 1 < len(tails):
        next_prefix, next_digits = tails[end + 1]
        if next_prefix != prefix or not next_digits or int(next_digits) != value + 1:
            break
        if fixed_width:
            if len(next_digits) != fixed_width:
                break
        elif _has_leading_zero(next_digits):
            break
        value += 1
        end += 1
    return end


# --- refusals ---------------------------------------------------------------------------------


def _bad_span(text: str, why: str) -> SerialEntryError:
    return SerialEntryError(INVALID_SERIAL_SPAN, f"span {shown(text)} {why}", _clip(text))


def _too_many(count: int, max_serials: int) -> SerialEntryError:
    # Counting stops at the item that crosses the limit: the entry names at least ``count``.
    return SerialEntryError(
        INVALID_QUANTITY,
        f"the entry names at least {count} serials, more than the limit {max_serials}",
        str(count),
    )


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"
