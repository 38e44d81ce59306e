"""Typed-entry and scan refusals read plainly on a dashboard (shared/reasons.py states the
style), as receiving, allocation and shipping pass them on unchanged: serials, spans and scans
unquoted, a scanner's group separator written <GS>, what is missing said in words (never
"None"), biip's refusals without Python's quotes, its patterns or its internals. The codes and
offending values (the contract) are unchanged."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from pydantic import TypeAdapter

from shared.barcodes import BarcodeError, decode_scan
from shared.contracts import InvalidMessage, decode
from shared.contracts import invalid as inv
from shared.contracts.upstream import ShipmentMessage
from shared.serials import SerialEntryError, normalize_serial, one_typed_serial, parse_serials

GTIN = "09506000134352"
GS = "\x1d"

# What no reason may show: Python's quotes around a value, None, a repr's \x1d for the group
# separator, biip's own spelling (its "Failed to …", its regular expressions) or a Python
# exception's text ("string index out of range", "invalid literal for int()").
_PYTHON = re.compile(
    r"['\"]|\bNone\b|\\x1d|Failed to|pattern|\^|\$|index out of range|invalid literal"
)


def _plain(reason: str) -> None:
    assert _PYTHON.search(reason) is None, reason


def _serial_refusal(call: Callable[[], object]) -> SerialEntryError:
    with pytest.raises(SerialEntryError) as caught:
        call()
    return caught.value


def _scan_refusal(raw: str) -> BarcodeError:
    with pytest.raises(BarcodeError) as caught:
        decode_scan(raw)
    return caught.value


# --- typed entry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "reason", "offending"),
    [
        ("PX-0006, PX-0006", "serial PX-0006 appears more than once in the entry", "PX-0006"),
        ("A1...B3", "span A1...B3 starts with prefix A but ends with prefix B", "A1...B3"),
        ("1...A3", "span 1...A3 starts with no prefix but ends with prefix A", "1...A3"),
        (
            "1...5...9",
            "span 1...5...9 needs exactly one marker between its two ends: ..., .. or …",
            "1...5...9",
        ),
        (
            "SN\x001",
            "serial SN\\x001 contains a control character (U+0000)",
            repr("SN\x001"),
        ),
    ],
)
def test_typed_entry_names_serials_and_spans_unquoted(
    entry: str, reason: str, offending: str
) -> None:
    """R5: the serial or span as typed, after the word that says what it is; what cannot be
    seen escaped (the offending value, for events and Postgres, is unchanged)."""
    error = _serial_refusal(lambda: parse_serials(entry))
    assert (error.reason, error.offending) == (reason, offending)


@pytest.mark.parametrize(
    ("element", "says", "offending"),
    [
        (None, "the entry holds an empty value (null) where a serial belongs", "None"),
        (7, "the entry holds the number 7 where a serial belongs", "7"),
        (True, "the entry holds the value true where a serial belongs", "True"),
        (1.50, "the entry holds the number 1.5 where a serial belongs", "1.5"),
    ],
)
def test_a_list_element_that_is_not_text_is_said_as_json_sent_it(
    element: object, says: str, offending: str
) -> None:
    """R5 + hostile input: never "serial None is not text"."""
    error = _serial_refusal(lambda: parse_serials(["A1", element]))  # type: ignore[list-item]
    assert error.reason == f"{says}: serials are text"
    assert (error.code, error.offending) == ("SERIAL_REQUIRED", offending)
    _plain(error.reason)


@pytest.mark.parametrize(
    ("serial", "reason"),
    [
        ("SN,7", "typed entry reads it as 2 serials: SN, 7"),
        ("1..1", "typed entry reads it as serial 1"),
        (",", "typed entry reads it as no serial"),
        ("a b c d e", "typed entry reads it as 5 serials: a, b, c and 2 more"),
        ("A1...A3", "typed entry refuses it: span A1...A3 names 3 serials, more than the limit 1"),
    ],
)
def test_what_typed_entry_makes_of_a_serial_is_said_without_python_quotes(
    serial: str, reason: str
) -> None:
    """R5/R6: a Next Serial or a scanned serial typed entry would read as other serials."""
    error = _serial_refusal(lambda: one_typed_serial(serial))
    assert (error.reason, error.offending) == (reason, serial)


@pytest.mark.parametrize(
    "entry",
    [
        "PX-1; PX-1",
        "SN-0102...SN-0098",
        "SN-098...SN-0102",
        "A...C",
        "1....9",
        "...9",
        "1...9",
        "A" * 65,
        "A" * 65 + "1...A9",
        "LOT\u200b1",
        "SN\ue000",
        ["A1", None],
        ["A1", b"A2"],
    ],
)
def test_no_typed_entry_refusal_shows_a_python_spelling(entry: str | list[object]) -> None:
    _plain(_serial_refusal(lambda: parse_serials(entry, max_span=3)).reason)  # type: ignore[arg-type]


def test_an_empty_serial_is_said_in_words() -> None:
    assert _serial_refusal(lambda: normalize_serial(" ")).reason == "serial is empty"


# --- scans --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            f"01{GTIN}{GS}10AB{GS}10CD",
            f"scan 01{GTIN}<GS>10AB<GS>10CD repeats AI (10) with different values",
        ),
        (
            f"01{GTIN}{GS}21SN,7",
            f"scan 01{GTIN}<GS>21SN,7 has an unusable serial: typed entry reads it as 2 "
            "serials: SN, 7",
        ),
        ("abc", "scan abc is not readable: no GS1 AI starts at abc"),
        (
            f"01{GTIN}xy{GS}10A",
            f"scan 01{GTIN}xy<GS>10A is not readable: no GS1 AI starts at xy<GS>10A",
        ),
        ("]/21/x", "scan ]/21/x is not readable: ]/ does not start a symbology identifier"),
        (
            f"(01){GTIN}(17)261399",
            f"scan (01){GTIN}(17)261399 is not readable: AI (17) is followed by 261399, which "
            "is not a valid value for it",
        ),
        (
            f"01{GTIN}{GS}17",
            f"scan 01{GTIN}<GS>17 is not readable: AI (17) is followed by "
            "nothing, which is not a valid value for it",
        ),
        ("(9999)1", "scan (9999)1 is not readable: there is no GS1 AI (9999)"),
        (
            "0109506000134359",
            "scan 0109506000134359 has an invalid GTIN: GTIN 09506000134359 has check digit 9, "
            "but its other digits call for 2",
        ),
        ("]", "scan ] is not readable: not a GS1 barcode"),
        ("]Yx", "scan ]Yx is not readable: not a GS1 barcode"),
        ("", "scan is empty"),
        (" \r\n", "scan is empty: it holds only blanks (spaces, line ends, <GS>)"),
        ("\x00", "scan \\x00 contains the character U+0000, not GS1 data"),
    ],
)
def test_a_scan_is_shown_as_scanned_with_its_group_separator_written_gs(
    raw: str, reason: str
) -> None:
    """R5: the raw scan unquoted, FNC1 written <GS>; biip's refusal in words."""
    error = _scan_refusal(raw)
    assert error.reason == reason
    _plain(error.reason)


@pytest.mark.parametrize(
    "raw",
    [
        "garbage",
        "123",
        "12345",
        "]C",
        "]Yx1",
        "(01)",
        "(99999)x",
        f"(01){GTIN}(17)261231(10)",
        f"01{GTIN}1",
        f"(01){GTIN}(21)" + "x" * 30,
        f"(01){GTIN}(21)A...B",
        f"https://id.gs1.org/01/{GTIN}/21/a,b",
        "https://id.gs1.org/21/x",
        "ftp://x/01/09506000134352",
        "]Zx",
        "]d2 ",
        f"https://id.gs1.org/01/{GTIN}/99/x",
        f"(02){GTIN}(37)5",
        "x" * 600,
        "ab\u00e9",
        GS,
    ],
)
def test_no_scan_refusal_shows_a_python_spelling(raw: str) -> None:
    error = _scan_refusal(raw)
    assert error.code == "INVALID_BARCODE"
    _plain(error.reason)


def test_a_scan_refusal_keeps_its_offending_value() -> None:
    """The contract: offending is the raw scan, unchanged (or repr'd when it cannot travel)."""
    assert _scan_refusal(f"01{GTIN}{GS}10AB{GS}10CD").offending == f"01{GTIN}{GS}10AB{GS}10CD"
    assert _scan_refusal("\x00").offending == repr("\x00")
    assert _scan_refusal(" \r\n").offending == " \r\n"


# --- numbers as text in a document ----------------------------------------------------------


def test_a_quantity_that_is_not_a_decimal_number_is_shown_unquoted() -> None:
    doc = {
        "type": "ShipmentRequested",
        "message_id": "m-1",
        "occurred_at": "2026-11-01T10:00:00Z",
        "shipment_id": "S-1",
        "office": "AI",
        "ship_on": "2026-11-02",
        "lines": [{"line_no": 1, "lic": "L-1", "quantity": "1_5"}],
    }
    with pytest.raises(InvalidMessage) as caught:
        decode(TypeAdapter(ShipmentMessage), json.dumps(doc).encode())
    assert caught.value.document is not None and caught.value.error is not None
    (problem,) = inv.problems(caught.value.document, caught.value.error.errors(include_url=False))
    assert problem.reason == "lines[0].quantity: 1_5 is not a decimal number"
    assert problem.offending == "1_5"
