"""GS1 barcode scans (DESIGN.md rule R5: AI 01 GTIN, 10 lot, 17 expiry, 21 serial).

Scanners deliver GS1 element strings with or without a symbology identifier (``]C1`` GS1-128,
``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR, ...) and with FNC1 sent as ASCII GS (``\\x1d``);
people copy the human-readable form ``(01)09506000134352(17)261231(10)ABC123(21)XYZ``.
The GS1 grammar (AI table, check digits, dates) is biip's; this module only picks the four
AIs lotline uses and refuses everything else with ``INVALID_BARCODE`` and the raw text.

Reasons follow shared/reasons.py's style: the scan unquoted, as scanned (`shown`), and biip's
own refusals reworded without its Python quotes and patterns (`_in_words`).

Pure: standard library, biip and shared.reasons only, no I/O.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import biip
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message

from shared.reasons import shown
from shared.serials import SerialEntryError, normalize_serial, one_typed_serial

__all__ = [
    "INVALID_BARCODE",
    "MAX_SCAN_LENGTH",
    "BarcodeError",
    "Scan",
    "decode_scan",
    "read_as",
    "separator_hint",
]

INVALID_BARCODE = "INVALID_BARCODE"
# The longest GS1 DataMatrix payloads people scan are a few hundred characters; anything
# longer is not a scan.
MAX_SCAN_LENGTH = 512
_GROUP_SEPARATOR = "\x1d"  # FNC1 as transmitted by scanners
_GTIN, _LOT, _EXPIRY, _SERIAL = "01", "10", "17", "21"
_RELEVANT_AIS = (_GTIN, _LOT, _EXPIRY, _SERIAL)
# A logistic unit's label (a case, a pallet) names the trade items it contains (AI 02, their
# GTIN; AI 37, their count): it is not one unit, and its product is not in AI 01.
_CONTENT_AIS = ("02", "37")
_MAX_SHOWN = 100
# Controls a scanner legitimately sends: FNC1 as GS, and CR/LF/TAB suffixes.
_HARMLESS_CONTROLS = str.maketrans("", "", "\x1d\r\n\t")


class BarcodeError(ValueError):
    """An unreadable scan: ``code`` is ``INVALID_BARCODE``, ``offending`` the raw scan.

    ``offending`` is the raw text unchanged when it is safe to store and show; when it holds
    characters no scanner sends (NUL, lone surrogates, other controls) or is very long it is
    escaped with ``repr`` and clipped.
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
class Scan:
    """What one scan says about a unit. Fields the barcode does not carry are ``None``.

    ``gtin`` is always the 14-digit form; ``expires_on`` already resolves day ``00`` to the
    last day of the month; ``raw`` is the scan exactly as received.
    """

    gtin: str | None
    mfr_lot: str | None
    expires_on: dt.date | None
    serial: str | None
    raw: str


def decode_scan(raw: str) -> Scan:
    """Decode one barcode scan into GTIN, manufacturer lot, expiry and serial (rule R5).

    Accepts GS1 element strings with or without a symbology identifier, FNC1 as ASCII GS,
    the human-readable ``(AI)value`` form, GS1 Digital Link URIs, and a bare GTIN/EAN/UPC.

    Raises:
        BarcodeError: ``INVALID_BARCODE`` when the scan is empty, too long, holds characters
            no GS1 barcode carries, does not parse, has a bad check digit or date, repeats an
            AI with different values, carries none of the AIs 01, 10, 17 and 21, or labels a
            case of trade items (AI 02 or 37) instead of one unit.
    """
    text = _checked_text(raw)
    if text.startswith("("):
        elements = _parse_hri(text, raw)
        bare_gtin = None
    else:
        elements, bare_gtin = _parse_scanned(text, raw)
    content = sorted({element.ai.ai for element in elements} & set(_CONTENT_AIS))
    if content:
        # Read as a unit it would count one unit of its lot and pass the item's GTIN check.
        shown = ", ".join(f"({ai})" for ai in content)
        raise _invalid(raw, f"labels a case of trade items ({shown}), not one unit: scan the units")
    if not any(element.ai.ai in _RELEVANT_AIS for element in elements):
        if bare_gtin is not None:
            # A product barcode (EAN-13, UPC-A, ...) names the item and nothing else.
            return Scan(gtin=bare_gtin, mfr_lot=None, expires_on=None, serial=None, raw=raw)
        raise _invalid(raw, "carries none of the GS1 AIs (01), (10), (17), (21)")
    return Scan(
        gtin=_gtin(elements, raw),
        mfr_lot=_value(elements, _LOT, raw),
        expires_on=_expiry(elements, raw),
        serial=_serial(elements, raw),
        raw=raw,
    )


# --- saying what a scan read -------------------------------------------------------------------


def read_as(scan: Scan) -> str:
    """What a decoded scan carries, for a reason: "GTIN 00300123456785, manufacturer lot L7
    and expiry date 2027-12-31"; "only GTIN 09506000134352"."""
    parts = [
        f"{what} {shown(str(value))}"
        for what, value in (
            ("GTIN", scan.gtin),
            ("manufacturer lot", scan.mfr_lot),
            ("expiry date", scan.expires_on),
            ("serial", scan.serial),
        )
        if value is not None
    ]
    if len(parts) == 1:
        return f"only {parts[0]}"
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


# AI 10 is of variable length, so a GS (FNC1) must end it when another AI follows; a scanner
# that drops it makes the next AI part of the lot, as GS1 reads it: "10L7" + "21SN9" reads as
# lot "L721SN9". Only an AI the scan does not carry on its own can be in it, after at least one
# character of lot (a lot is never empty): AI 17 with a date (YYMMDD, day 00 allowed), AI 21
# with anything.
_RUN_INTO_LOT = {
    _EXPIRY: re.compile(r".+17\d\d(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])"),
    _SERIAL: re.compile(r".+21."),
}
_WHAT = {_EXPIRY: "the expiry date", _SERIAL: "the serial"}


def separator_hint(scan: Scan, about: str | None = None) -> str | None:
    """Why a scan's lot may hold an AI the scan lacks (17 expiry, 21 serial; only ``about``
    when given): "manufacturer lot L721SN9 as scanned may hold the serial: a scanner that drops
    the group separator (GS, FNC1) after the lot runs AI 21 into it". None when it cannot: the
    scan has no lot, carries the AI itself, or is in a form without separators (the
    bracketed human-readable form, a Digital Link URI)."""
    lot = scan.mfr_lot
    if lot is None or not _separated_form(scan.raw):
        return None
    missing = {_EXPIRY: scan.expires_on is None, _SERIAL: scan.serial is None}
    ais = [ai for ai, pattern in _RUN_INTO_LOT.items() if missing[ai] and pattern.match(lot)]
    if not ais or (about is not None and about not in ais):
        return None
    held = " and ".join(_WHAT[ai] for ai in ais)
    run = f"AI {ais[0]}" if len(ais) == 1 else f"AIs {' and '.join(ais)}"
    return (
        f"manufacturer lot {shown(lot)} as scanned may hold {held}: a scanner that drops the "
        f"group separator (GS, FNC1) after the lot runs {run} into it"
    )


def _separated_form(raw: str) -> bool:
    """A GS1 element string (AIs one after another, FNC1 between them), as scanners send."""
    text = raw.strip().lower()
    return not text.startswith(("(", "http://", "https://"))


# --- reading ----------------------------------------------------------------------------------


def _checked_text(raw: str) -> str:
    """Refuse what is not a scan before biip sees it; return the text without blanks around."""
    if not isinstance(raw, str):
        raise BarcodeError(INVALID_BARCODE, "scan is not text", _clip(repr(raw)))
    if len(raw) > MAX_SCAN_LENGTH:
        raise _invalid(raw, f"is longer than {MAX_SCAN_LENGTH} characters")
    # Scanners add CR/LF suffixes and some send FNC1 first: str.strip() drops both (GS counts
    # as whitespace), as biip itself does.
    text = raw.strip()
    if not text:
        # Blanks shown as they are would not be seen: say what the scan holds instead.
        what = "is empty" if not raw else "is empty: it holds only blanks (spaces, line ends, <GS>)"
        raise BarcodeError(INVALID_BARCODE, f"scan {what}", _offending(raw))
    for char in text:
        # GS1 data is printable ASCII (charsets 82 and 39) plus GS; the HRI form has spaces.
        # Checking here also keeps full-width digits away from regexes whose \d accepts them.
        if not (" " <= char <= "~" or char == _GROUP_SEPARATOR):
            raise _invalid(raw, f"contains the character U+{ord(char):04X}, not GS1 data")
    return text


# The HRI as biip reads it (`\((\d+)\)([^(]+)`, found anywhere, the rest skipped unread), but
# required to cover the whole text: an AI without a value, "()" or a value holding "(" (cut
# short at it) would otherwise be dropped silently, giving another lot or no GTIN to check.
_HRI_RE = re.compile(r"(?:\(\d+\)[^(]+)+")


def _parse_hri(text: str, raw: str) -> Sequence[GS1ElementString]:
    if not _HRI_RE.fullmatch("".join(text.split())):  # biip drops blanks first, as here
        raise _invalid(raw, "is not readable: every (AI) must be followed by its value")
    try:
        return GS1Message.parse_hri(text).element_strings
    except Exception as error:  # biip raises more than ParseError on odd input: see _parse_scanned
        raise _unreadable(raw, error) from error


def _parse_scanned(text: str, raw: str) -> tuple[Sequence[GS1ElementString], str | None]:
    """Element strings from a GS1 message or Digital Link URI, and a bare GTIN if any."""
    try:
        result = biip.parse(text)
    except Exception as error:
        # biip.parse raises IndexError/ValueError on a truncated symbology identifier ("]",
        # "]Yx"); a scan must never crash a consumer, so every failure is a refusal.
        raise _unreadable(raw, error) from error
    if result.gs1_message is not None:
        elements: Sequence[GS1ElementString] = result.gs1_message.element_strings
    elif result.gs1_digital_link_uri is not None:
        elements = result.gs1_digital_link_uri.element_strings
    else:
        elements = ()
    bare_gtin = result.gtin.as_gtin_14() if result.gtin is not None else None
    if not elements and bare_gtin is None:
        error_text = (
            result.gs1_message_error or result.gs1_digital_link_uri_error or result.gtin_error
        )
        raise _invalid(raw, f"is not readable: {_in_words(error_text or 'not a GS1 barcode')}")
    return elements, bare_gtin


# --- the four AIs -----------------------------------------------------------------------------


def _single(elements: Sequence[GS1ElementString], ai: str, raw: str) -> GS1ElementString | None:
    """The element for ``ai``; a repeat with the same value is harmless, a different one not."""
    found = [element for element in elements if element.ai.ai == ai]
    if not found:
        return None
    if any(element.value != found[0].value for element in found[1:]):
        raise _invalid(raw, f"repeats AI ({ai}) with different values")
    return found[0]


def _value(elements: Sequence[GS1ElementString], ai: str, raw: str) -> str | None:
    element = _single(elements, ai, raw)
    return None if element is None else element.value


def _gtin(elements: Sequence[GS1ElementString], raw: str) -> str | None:
    element = _single(elements, _GTIN, raw)
    if element is None:
        return None
    if element.gtin is None:
        raise _invalid(raw, f"has an invalid GTIN: {_in_words(element.gtin_error or '')}")
    return element.gtin.as_gtin_14()


def _expiry(elements: Sequence[GS1ElementString], raw: str) -> dt.date | None:
    element = _single(elements, _EXPIRY, raw)
    if element is None:
        return None
    if element.date is None:  # biip refuses bad dates itself; this guards a config change
        raise _invalid(raw, f"has an unreadable expiry date {shown(element.value)}")
    return element.date


def _serial(elements: Sequence[GS1ElementString], raw: str) -> str | None:
    value = _value(elements, _SERIAL, raw)
    if value is None:
        return None
    # The same normalization as a typed serial, so a scanned and a typed unit compare equal.
    # AI 21 allows ',' and ';' (and '..'), which typed entry reads as separators (a span): a
    # unit received as "SN,7" could never be named again by a return or an adjustment, so a
    # serial typed entry does not read back as itself is refused.
    try:
        return one_typed_serial(normalize_serial(value))
    except SerialEntryError as error:
        raise _invalid(raw, f"has an unusable serial: {error.reason}") from error


# --- refusals ---------------------------------------------------------------------------------


def _invalid(raw: str, why: str) -> BarcodeError:
    return BarcodeError(INVALID_BARCODE, f"scan {shown(raw)} {why}", _offending(raw))


def _unreadable(raw: str, error: Exception) -> BarcodeError:
    # Only biip's own refusals say something about the scan; an IndexError or a ValueError
    # from int() on a truncated symbology identifier speaks of Python, not of the barcode.
    if isinstance(error, biip.ParseError):
        return _invalid(raw, f"is not readable: {_in_words(str(error))}")
    return _invalid(raw, "is not readable: not a GS1 barcode")


# biip's refusals (biip 5) as a person would say them. The values in them are the scan's, as
# Python writes them (in quotes, escaped): each is read back (`_unquoted`), so a group
# separator in one shows as <GS>, as in the scan.
_LITERAL = r"""(?:'[^']*'|"[^"]*")"""
_BIIP_WORDS = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (
            rf"Failed to match (?P<data>{_LITERAL}) with GS1 AI \((?P<ai>\d+)\) .*",
            "AI ({ai}) is followed by {value}, which is not a valid value for it",
        ),
        (
            rf"Failed to get GS1 Application Identifier from (?P<rest>{_LITERAL})",
            "no GS1 AI starts at {rest}",
        ),
        (
            rf"Unknown GS1 Application Identifier (?P<ai>{_LITERAL}) in .*",
            "there is no GS1 AI ({ai})",
        ),
        (
            rf"Failed to parse GS1 AI \((?P<ai>\d+)\) date/time from (?P<value>{_LITERAL})",
            "AI ({ai}) holds {value}, which is not a date",
        ),
        (
            r"Invalid GTIN check digit for '(?P<gtin>\d+)': Expected (?P<want>\d), got (?P<got>\d)",
            "GTIN {gtin} has check digit {got}, but its other digits call for {want}",
        ),
        (
            rf"Failed to get Symbology Identifier from {_LITERAL}\. (?P<c>{_LITERAL}) is not .*",
            "]{c} does not start a symbology identifier",
        ),
        (
            rf"Failed to parse {_LITERAL} as (?P<what>[A-Z0-9-]+): Expected (?P<why>.*)",
            "a {what} should have {why}",
        ),
    )
)
_QUOTED = re.compile(_LITERAL)


def _in_words(message: str) -> str:
    message = message.removesuffix(".")
    for pattern, words in _BIIP_WORDS:
        match = pattern.fullmatch(message)
        if match is not None:
            said = {name: _unquoted(text) for name, text in match.groupdict().items()}
            if "data" in said:  # biip quotes an AI's data with the AI in front
                said["value"] = said["data"].removeprefix(said["ai"])
            return shown(words.format_map({name: text or "nothing" for name, text in said.items()}))
    # Any other: as biip says it, its values without Python's quotes.
    return shown(_QUOTED.sub(lambda quoted: _unquoted(quoted[0]) or "nothing", message))


def _unquoted(text: str) -> str:
    """A value as biip quoted it, read back (escapes and all); other text as it is."""
    if text[:1] not in ("'", '"'):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text[1:-1]
    return value if isinstance(value, str) else text[1:-1]


def _offending(raw: str) -> str:
    # GS and line ends are what scanners send and are fine in JSON and Postgres; NUL, lone
    # surrogates and other controls are not, so those scans travel escaped.
    if len(raw) <= _MAX_SHOWN and raw.translate(_HARMLESS_CONTROLS).isprintable():
        return raw
    return repr(_clip(raw))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"
