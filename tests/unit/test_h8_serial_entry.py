"""Serial entry as people type and paste it (R5): blanks around a span's marker, and the commas
and semicolons of other scripts' keyboards."""

from __future__ import annotations

import pytest

from shared.serials import SerialEntryError, one_typed_serial, parse_serials


@pytest.mark.parametrize(
    "blank",
    ["\t", "\u2009", "\u202f", "\u3000", " \t "],
    ids=["tab", "thin-space", "narrow-nbsp", "ideographic-space", "space-tab-space"],
)
def test_a_span_with_any_blank_around_its_marker_is_one_span(blank: str) -> None:
    """R5: "1000 ... 1002" is one span whichever blank a spreadsheet or word processor put
    around the marker; read as three items, it was refused naming only "..."."""
    assert parse_serials(f"1000{blank}...{blank}1002") == ["1000", "1001", "1002"]
    assert parse_serials(f"A1, SN-0098{blank}…{blank}SN-0100") == [
        "A1",
        "SN-0098",
        "SN-0099",
        "SN-0100",
    ]


def test_a_bad_span_with_blanks_around_its_marker_is_refused_naming_the_whole_span() -> None:
    """R5: bad spans are refused with the offending text: the span, not its marker alone."""
    with pytest.raises(SerialEntryError) as caught:
        parse_serials("1002\t...\t998")
    assert caught.value.code == "INVALID_SERIAL_SPAN"
    assert caught.value.offending == "1002...998"


def test_line_breaks_around_a_marker_still_separate_items() -> None:
    """One item per line: a marker alone on its line is not joined to its neighbours."""
    with pytest.raises(SerialEntryError) as caught:
        parse_serials("1000\n...\n1002")
    assert caught.value.code == "INVALID_SERIAL_SPAN"


@pytest.mark.parametrize(
    "separator",
    ["\uff0c", "\uff1b", "\u3001", "\ufe50", "\ufe54", "\u060c", "\u061b"],
    ids=["fullwidth-comma", "fullwidth-semicolon", "ideographic-comma", "small-comma",
         "small-semicolon", "arabic-comma", "arabic-semicolon"],
)  # fmt: skip
def test_commas_and_semicolons_of_other_keyboards_separate_serials(separator: str) -> None:
    """R5: a Chinese, Japanese or Arabic keyboard types its own comma; "SN1，SN2" names two
    units. Read as one serial that looks like two, it was received as one unit."""
    assert parse_serials(f"SN1{separator}SN2") == ["SN1", "SN2"]
    assert parse_serials([f"SN3{separator} SN4"]) == ["SN3", "SN4"]


def test_a_serial_holding_another_keyboards_comma_is_not_one_typed_serial() -> None:
    """R6: a Next Serial typed entry would split cannot be handed out."""
    with pytest.raises(SerialEntryError) as caught:
        one_typed_serial("SN\uff0c1")
    assert caught.value.code == "INVALID_SERIAL_SPAN"
