"""Characters that look like nothing, or like a plain space, in identifiers and serials
(DESIGN.md §6: "zero-width or look-alike characters in lot numbers and serials").

`LOT-1` and `LOT-1` followed by U+3164 (a Hangul filler, a letter that shows as nothing) look
the same on every screen and label but would be two lots: a recall by the one typed would miss
the other. Format characters (Cf: zero-width space, joiners, bidi controls) were already refused;
these are the invisible ones of other categories, the look-alike spaces and line separators,
and private-use or unassigned code points (which the serial parser already refuses)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.contracts import InvalidMessage, decode
from shared.contracts import invalid as inv
from shared.contracts.types import normalize_identifier
from shared.contracts.upstream import ReceiptMessage
from shared.reasons import ReasonCode
from tests.fixtures.documents import receipt_document

RECEIPTS = TypeAdapter(ReceiptMessage)

INVISIBLE = [
    "\u3164",  # Hangul filler
    "\u115f",  # Hangul choseong filler
    "\u1160",  # Hangul jungseong filler
    "\uffa0",  # halfwidth Hangul filler
    "\u034f",  # combining grapheme joiner
    "\ufe0f",  # variation selector 16
    "\U000e0100",  # variation selector 17
    "\u17b4",  # Khmer vowel inherent aq
    "\u180b",  # Mongolian free variation selector
    "\u2800",  # braille pattern blank
]
LOOK_ALIKE_SPACES = ["\u00a0", "\u2007", "\u202f", "\u3000"]
OTHERS = ["\u2028", "\u2029", "\ue000", "\uffff"]  # line/paragraph separator, private, non-char


def _problem(doc: dict[str, Any]) -> inv.Problem:
    with pytest.raises(InvalidMessage) as caught:
        decode(RECEIPTS, json.dumps(doc).encode())
    assert caught.value.document is not None and caught.value.error is not None
    [problem] = inv.problems(caught.value.document, caught.value.error.errors())
    return problem


@pytest.mark.parametrize("char", INVISIBLE + LOOK_ALIKE_SPACES + OTHERS)
def test_an_identifier_holding_an_invisible_or_look_alike_character_is_refused(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        normalize_identifier(f"LOT{char}1")


@pytest.mark.parametrize("char", INVISIBLE + LOOK_ALIKE_SPACES)
def test_a_manufacturer_lot_holding_one_is_refused_lot_required_naming_it(char: str) -> None:
    problem = _problem(receipt_document(lots=[{"mfr_lot": f"LOT{char}1", "quantity": 1}]))
    assert problem.path == "lines[0].lots[0].mfr_lot"
    assert problem.reason_code == ReasonCode.LOT_REQUIRED
    assert f"U+{ord(char):04X}" in problem.reason


@pytest.mark.parametrize("char", ["\u3164", "\ufe0f", "\u2800"])
@pytest.mark.parametrize("as_list", [False, True])
def test_a_serial_holding_one_is_refused_invalid_serial_span(char: str, as_list: bool) -> None:
    """The serial parser (R5) passes these letters and marks, and a command's serials are
    identifiers: caught here, the receipt is refused with a reason, not failed on later."""
    entry = f"SN-1, SN-2{char}"
    problem = _problem(
        receipt_document(
            lots=[{"mfr_lot": "M-1", "quantity": 1}], serials=[entry] if as_list else entry
        )
    )
    assert problem.path.startswith("lines[0].serials")
    assert problem.reason_code == ReasonCode.INVALID_SERIAL_SPAN
    assert f"U+{ord(char):04X}" in problem.reason


def test_spaces_around_an_identifier_are_still_trimmed_and_letters_of_any_script_kept() -> None:
    assert normalize_identifier("\u3000LOT-1\u00a0") == "LOT-1"
    assert normalize_identifier("Lot-Ä-東京-한") == "Lot-Ä-東京-한"
    assert normalize_identifier("LOT 1") == "LOT 1"
