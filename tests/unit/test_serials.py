"""Serial entry parsing: rule R5 (typed lists, spans, spreadsheet pastes) and hostile input."""

from __future__ import annotations

import pickle
import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.serials import (
    MAX_SERIAL_LENGTH,
    SerialEntryError,
    find_duplicates,
    format_serials,
    normalize_serial,
    one_typed_serial,
    parse_serials,
)


def refusal(entry: str | list[str], **limits: int) -> SerialEntryError:
    with pytest.raises(SerialEntryError) as caught:
        parse_serials(entry, **limits)
    return caught.value


# --- lists as typed ---------------------------------------------------------------------------


def test_comma_separated_serials_are_returned_in_entry_order() -> None:
    """R5: serials typed as a list separated by commas."""
    assert parse_serials("134593568, 200937842,C-3") == ["134593568", "200937842", "C-3"]


def test_semicolons_separate_serials() -> None:
    """R5: serials typed as a list separated by semicolons."""
    assert parse_serials("A1;A2; A3") == ["A1", "A2", "A3"]


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r"])
def test_each_kind_of_line_break_separates_serials(line_break: str) -> None:
    """R5: serials typed on separate lines (LF, CRLF or a bare CR)."""
    assert parse_serials(line_break.join(["X1", "X2", "X3"])) == ["X1", "X2", "X3"]


def test_tabs_and_runs_of_spaces_separate_serials() -> None:
    """R5: tabs and runs of spaces separate serials too."""
    assert parse_serials("A1\tA2   A3 A4") == ["A1", "A2", "A3", "A4"]


def test_spreadsheet_paste_ignores_blank_cells_and_rows() -> None:
    """R5: a pasted spreadsheet range (tab-separated cells, CRLF rows) with blanks."""
    pasted = "SN1\tSN2\r\n\tSN3\r\n\t\r\nSN4\t\r\n"
    assert parse_serials(pasted) == ["SN1", "SN2", "SN3", "SN4"]


def test_no_break_spaces_from_pasted_web_pages_separate_serials() -> None:
    """R5: pasted text often carries U+00A0 or U+202F instead of plain spaces."""
    assert parse_serials("A1\u00a0A2\u202fA3") == ["A1", "A2", "A3"]


def test_leading_and_trailing_blanks_and_separators_are_ignored() -> None:
    """R5: blanks around the entry and stray separators name no serial."""
    assert parse_serials("  \r\n ,A1,, ;B2 ;\n\t ") == ["A1", "B2"]


@pytest.mark.parametrize("entry", ["", "   ", ",;\r\n\t", []])
def test_an_entry_with_no_serials_gives_an_empty_list(entry: str | list[str]) -> None:
    """R5: an empty entry names no serials (the caller decides whether that is allowed)."""
    assert parse_serials(entry) == []


def test_a_list_of_strings_may_hold_typed_lists_and_spans() -> None:
    """R5: serials may arrive as a JSON list whose elements are themselves typed entries."""
    entry = ["A1", " B1, B2 ", "C8...C10", "D1\nD2"]
    assert parse_serials(entry) == ["A1", "B1", "B2", "C8", "C9", "C10", "D1", "D2"]


def test_serials_are_normalized_to_nfc() -> None:
    """R5 + hostile input: a decomposed é and a composed é are the same serial."""
    decomposed = "Se\u0301-1"
    assert parse_serials(decomposed) == [unicodedata.normalize("NFC", decomposed)]
    assert parse_serials(decomposed) == ["S\u00e9-1"]


def test_serial_of_64_characters_is_accepted_and_65_refused() -> None:
    """R5 + hostile input: serials have a length limit of 64 characters."""
    assert parse_serials("x" * MAX_SERIAL_LENGTH) == ["x" * MAX_SERIAL_LENGTH]
    error = refusal("x" * (MAX_SERIAL_LENGTH + 1))
    assert error.code == "SERIAL_REQUIRED"
    assert "longer than 64 characters" in error.reason


def test_offending_text_of_a_megabyte_serial_is_clipped() -> None:
    """R5 + hostile input: a megabyte serial is refused without copying it into the event."""
    error = refusal("y" * 1_000_000)
    assert error.code == "SERIAL_REQUIRED"
    assert len(error.offending) <= 101
    assert len(error.reason) < 300


# --- characters that must never become a serial -----------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["\x00", "\x07", "\x1d", "\x7f", "\x85", "\x0b"],
    ids=["NUL", "BEL", "GS", "DEL", "NEL", "VT"],
)
def test_control_characters_in_a_serial_are_refused(bad: str) -> None:
    """R5 + hostile input: control characters are refused with SERIAL_REQUIRED."""
    error = refusal(f"ok-1, AB{bad}C")
    assert error.code == "SERIAL_REQUIRED"
    assert "control character" in error.reason
    assert f"U+{ord(bad):04X}" in error.reason
    # The offending text is escaped so it can be stored and shown safely.
    assert error.offending == repr(f"AB{bad}C")
    assert bad not in error.offending


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad"])
def test_zero_width_characters_in_a_serial_are_refused(invisible: str) -> None:
    """R5 + hostile input: zero-width characters make look-alike serials; refused."""
    error = refusal(f"SN{invisible}100")
    assert error.code == "SERIAL_REQUIRED"
    assert "invisible" in error.reason
    assert invisible not in error.offending


def test_a_lone_surrogate_is_refused_and_escaped() -> None:
    """R5 + hostile input: lone surrogates cannot be encoded as UTF-8; refused, escaped."""
    error = refusal("AB\ud800")
    assert error.code == "SERIAL_REQUIRED"
    assert "surrogate" in error.reason
    assert error.offending == repr("AB\ud800")
    error.offending.encode("utf-8")  # safe to put into JSON and Postgres


def test_a_control_character_inside_a_span_is_a_bad_span() -> None:
    """R5: a span with a bad character is refused as INVALID_SERIAL_SPAN."""
    error = refusal("SN-1\x00...SN-5")
    assert error.code == "INVALID_SERIAL_SPAN"
    assert error.offending == repr("SN-1\x00...SN-5")


@pytest.mark.parametrize("element", [1001, None, 1.5, b"A1"])
def test_non_text_elements_in_a_list_are_refused(element: object) -> None:
    """R5 + hostile input: a JSON list with numbers or nulls is refused, not a crash."""
    error = refusal(["A1", element])  # type: ignore[list-item]
    assert error.code == "SERIAL_REQUIRED"
    assert "where a serial belongs: serials are text" in error.reason


# --- spans ------------------------------------------------------------------------------------


def test_numeric_span_is_inclusive() -> None:
    """R5: the seed's span 1000...1009 names ten serials, both ends included."""
    assert parse_serials("1000...1009") == [str(n) for n in range(1000, 1010)]


@pytest.mark.parametrize("span", ["7..9", "7…9", "7 ... 9", "7\u00a0..\u00a09", "7 …9"])
def test_two_dots_an_ellipsis_and_spaces_around_the_marker_are_accepted(span: str) -> None:
    """R5: '..' and the typographic ellipsis mark a span; spaces around it are ignored."""
    assert parse_serials(span) == ["7", "8", "9"]


def test_span_keeps_prefix_and_zero_padded_width() -> None:
    """R5: a span keeps its prefix and the digit width of its ends."""
    assert parse_serials("SN-0098...SN-0102") == [
        "SN-0098",
        "SN-0099",
        "SN-0100",
        "SN-0101",
        "SN-0102",
    ]


def test_span_without_leading_zeros_grows_naturally() -> None:
    """R5: ends of different widths without leading zeros are plain numbers."""
    assert parse_serials("A98...A102") == ["A98", "A99", "A100", "A101", "A102"]
    assert parse_serials("0...10") == [str(n) for n in range(11)]


def test_span_prefix_may_contain_digits() -> None:
    """R5: the prefix is everything before the trailing digits, e.g. a year."""
    assert parse_serials("2024-07...2024-09") == ["2024-07", "2024-08", "2024-09"]


def test_span_of_one_serial_is_that_serial() -> None:
    """R5: an inclusive span whose ends are equal names one serial."""
    assert parse_serials("SN-5...SN-5") == ["SN-5"]


def test_spans_and_single_serials_mix_in_entry_order() -> None:
    """R5: spans and listed serials may be combined in one entry."""
    assert parse_serials("Z9, A1...A3; B7") == ["Z9", "A1", "A2", "A3", "B7"]


def test_prefix_with_percent_sign_is_kept_literally() -> None:
    """R5: the prefix is copied verbatim into every serial of the span."""
    assert parse_serials("%d-1...%d-3") == ["%d-1", "%d-2", "%d-3"]


@pytest.mark.parametrize(
    ("span", "why"),
    [
        ("1009...1000", "runs backwards"),
        ("SN-0102...SN-0098", "runs backwards"),
        ("A1...B3", "starts with prefix A but ends with prefix B"),
        ("SN-098...SN-0102", "mixes digit widths"),
        ("SN-0098...SN-102", "mixes digit widths"),
        ("98...0102", "mixes digit widths"),
        ("A...C", "must end in digits"),
        ("1A...3A", "must end in digits"),
        ("１...３", "must end in digits"),  # full-width digits: int() would take them
        ("1....9", "exactly one"),
        ("1...5...9", "exactly one"),
        ("1...", "both sides"),
        ("...9", "both sides"),
        ("...", "both sides"),
        ("A" * 65 + "1...A" + "9", "longer than 64"),
    ],
)
def test_bad_spans_are_refused_with_the_span_text(span: str, why: str) -> None:
    """R5: bad spans are refused with INVALID_SERIAL_SPAN and the offending span text."""
    error = refusal(f"OK-1, {span}, OK-2")
    assert error.code == "INVALID_SERIAL_SPAN"
    assert why in error.reason
    assert error.offending.rstrip("…") in span


def test_span_larger_than_max_span_is_refused() -> None:
    """R5: a span has a sane upper size."""
    assert len(parse_serials("1...10", max_span=10)) == 10
    error = refusal("1...11", max_span=10)
    assert error.code == "INVALID_SERIAL_SPAN"
    assert error.offending == "1...11"
    assert "11 serials" in error.reason


def test_span_of_a_billion_is_refused_without_expanding_it() -> None:
    """R5 + hostile input: a span of 10**9 is refused at once, never materialized."""
    error = refusal("SN-1...SN-1000000000")
    assert error.code == "INVALID_SERIAL_SPAN"
    assert error.offending == "SN-1...SN-1000000000"


def test_span_with_sixty_digit_ends_is_refused_by_size() -> None:
    """R5 + hostile input: huge numeric ends are sized arithmetically, not expanded."""
    error = refusal(f"{10**59}...{10**60 - 1}")
    assert error.code == "INVALID_SERIAL_SPAN"


# --- duplicates and counts --------------------------------------------------------------------


def test_a_serial_typed_twice_is_refused_naming_it() -> None:
    """R4/R5: serials must be unique in the entry."""
    error = refusal("A1, B2, A1, B2")
    assert error.code == "DUPLICATE_SERIAL"
    assert error.offending == "A1"


def test_a_listed_serial_inside_a_span_is_a_duplicate() -> None:
    """R4/R5: overlap between a span and a listed serial is a duplicate."""
    error = refusal("SN-0100, SN-0098...SN-0102")
    assert error.code == "DUPLICATE_SERIAL"
    assert error.offending == "SN-0100"


def test_nfc_equal_serials_are_duplicates() -> None:
    """R5 + hostile input: two spellings of the same NFC serial are the same serial."""
    error = refusal(["S\u00e9-1", "Se\u0301-1"])
    assert error.code == "DUPLICATE_SERIAL"
    assert error.offending == "S\u00e9-1"


def test_a_look_alike_that_normalizes_to_a_separator_separates() -> None:
    """R5 + hostile input: U+037E (Greek question mark) looks like ";" and NFC makes it one.
    Normalized after splitting, "SN1\u037eSN2" became the one serial "SN1;SN2", which typed
    entry reads as two: a unit no return or adjustment could ever name again."""
    assert parse_serials("SN1\u037eSN2") == ["SN1", "SN2"]
    assert parse_serials(["SN-1\u037e SN-2"]) == ["SN-1", "SN-2"]


def test_more_listed_serials_than_the_limit_is_an_invalid_quantity() -> None:
    """R5 + hostile input: the entry's serial count is bounded."""
    assert len(parse_serials("a b c", max_serials=3)) == 3
    error = refusal("a b c d", max_serials=3)
    assert error.code == "INVALID_QUANTITY"


def test_spans_adding_up_beyond_the_limit_are_an_invalid_quantity() -> None:
    """R5 + hostile input: many spans each under max_span still count toward the limit."""
    error = refusal("1...600, 601...1200", max_serials=1000)
    assert error.code == "INVALID_QUANTITY"
    assert error.offending == "1200"
    error = refusal(["A1...A4", "B1"], max_serials=4)
    assert error.code == "INVALID_QUANTITY"


def test_long_list_of_strings_beyond_the_limit_is_an_invalid_quantity() -> None:
    """R5 + hostile input: a list input is bounded the same way."""
    error = refusal([f"S{n}" for n in range(11)], max_serials=10)
    assert error.code == "INVALID_QUANTITY"


def test_find_duplicates_lists_each_repeat_once_in_order_met() -> None:
    """R4/R5: the non-raising helper reports every repeated serial once."""
    assert find_duplicates(["A", "B", "B", "A", "B", "C"]) == ["B", "A"]
    assert find_duplicates(["A", "B"]) == []
    assert find_duplicates([]) == []


def test_hundred_thousand_serials_parse_listed_and_as_a_span() -> None:
    """R5: a realistic large receipt (100,000 units) parses both ways to the same serials."""
    serials = [f"SN-{n:06d}" for n in range(100_000)]
    assert parse_serials(", ".join(serials)) == serials
    assert parse_serials("SN-000000...SN-099999") == serials


# --- normalize_serial -------------------------------------------------------------------------


def test_normalize_serial_trims_and_composes() -> None:
    """R5: one serial (e.g. scanned) gets the same normalization as a typed one."""
    assert normalize_serial("  Se\u0301-1\r\n") == "S\u00e9-1"


@pytest.mark.parametrize("bad", ["", "  ", "A\x00", "A\u200bB", "x" * 65])
def test_normalize_serial_refuses_empty_invisible_and_long(bad: str) -> None:
    """R5 + hostile input: empty, control/invisible characters and long serials are refused."""
    with pytest.raises(SerialEntryError) as caught:
        normalize_serial(bad)
    assert caught.value.code == "SERIAL_REQUIRED"


# --- one_typed_serial -------------------------------------------------------------------------


@pytest.mark.parametrize("serial", ["SN-0099", "134593568", "S\u00e9-1", "x" * MAX_SERIAL_LENGTH])
def test_one_typed_serial_accepts_what_typed_entry_reads_back_as_itself(serial: str) -> None:
    """R5/R6: a serial from anywhere but typed entry must be one typed entry can name."""
    assert one_typed_serial(serial) == serial
    assert parse_serials(serial) == [serial]


@pytest.mark.parametrize(
    ("serial", "says"),
    [
        ("SN,7", "typed entry reads it as 2 serials: SN, 7"),
        ("SN;7", "typed entry reads it as 2 serials: SN, 7"),
        ("SN 7", "typed entry reads it as 2 serials: SN, 7"),
        ("1..1", "typed entry reads it as serial 1"),
        ("A1...A3", "span"),
        (",", "typed entry reads it as no serial"),
        ("x" * (MAX_SERIAL_LENGTH + 1), "longer than 64 characters"),
    ],
)
def test_one_typed_serial_refuses_what_typed_entry_would_split_change_or_refuse(
    serial: str, says: str
) -> None:
    """R5/R6: a unit stored under a serial typed entry reads as other serials could never be
    named again by a return or an adjustment (or worse, names other units)."""
    with pytest.raises(SerialEntryError) as caught:
        one_typed_serial(serial)
    assert says in caught.value.reason
    assert caught.value.code in ("INVALID_SERIAL_SPAN", "SERIAL_REQUIRED")


def test_serial_entry_error_survives_pickling() -> None:
    """R5: refusals cross process boundaries intact (code, reason, offending)."""
    error = refusal("5...3")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.reason, copy.offending) == (error.code, error.reason, error.offending)


# --- format_serials ---------------------------------------------------------------------------


def test_format_compresses_runs_of_three_or_more_into_spans() -> None:
    """R5: display form uses spans for consecutive runs."""
    serials = ["SN-0098", "SN-0099", "SN-0100", "SN-0101", "X", "7", "8", "C1", "C2", "C3"]
    assert format_serials(serials) == "SN-0098...SN-0101, X, 7, 8, C1...C3"


def test_format_breaks_runs_where_prefix_width_or_step_changes() -> None:
    """R5: only same-prefix, same-width (or naturally growing), step-1 runs become spans."""
    assert format_serials(["A1", "A2", "B3", "B4"]) == "A1, A2, B3, B4"
    assert format_serials(["09", "10", "11", "12"]) == "09...12"
    assert format_serials(["98", "99", "100", "101"]) == "98...101"
    # 099 starts a fixed-width run of 3; 0100 has another width.
    assert format_serials(["097", "098", "099", "0100"]) == "097...099, 0100"
    assert format_serials(["1", "3", "5"]) == "1, 3, 5"
    assert format_serials([]) == ""


# --- properties -------------------------------------------------------------------------------

# Serial characters: letters (incl. precomposed non-ASCII), digits and common punctuation.
# No dots (".." would be a span marker) and no separators.
_WORD_CHARS = string.ascii_letters + string.digits + "-_/#+é\u00c5ß"
_PREFIX_CHARS = string.ascii_letters + "-_/#é"
_SEPARATORS = [",", ";", "\n", "\r\n", "\r", "\t", " ", "   ", ", ", " ; ", "\t\t", ",\n", "\u00a0"]


@st.composite
def runs(draw: st.DrawFn) -> list[str]:
    """A consecutive run: a prefix, a width (0 = natural numbers) and a count."""
    prefix = draw(st.text(_PREFIX_CHARS, max_size=6))
    width = draw(st.integers(min_value=0, max_value=8))
    first = draw(st.integers(min_value=0, max_value=10**6))
    count = draw(st.integers(min_value=1, max_value=25))
    return [prefix + (f"{n:0{width}d}" if width else str(n)) for n in range(first, first + count)]


@st.composite
def serial_lists(draw: st.DrawFn) -> list[str]:
    """Distinct valid serials: runs mixed with free-form serials, in random order or not."""
    groups = draw(
        st.lists(
            st.one_of(runs(), st.lists(st.text(_WORD_CHARS, min_size=1, max_size=20), max_size=3)),
            max_size=8,
        )
    )
    serials = list(dict.fromkeys(serial for group in groups for serial in group))
    if draw(st.booleans()):
        serials = draw(st.permutations(serials))
    return serials


@settings(max_examples=300)
@given(serials=serial_lists(), data=st.data())
def test_listed_serials_round_trip_with_any_separators(
    serials: list[str], data: st.DataObject
) -> None:
    """R5: any list of serials, joined by any mix of separators, parses back unchanged."""
    text = data.draw(st.sampled_from(["", " ", "\r\n"]))
    for serial in serials:
        text += serial + data.draw(st.sampled_from(_SEPARATORS))
    assert parse_serials(text) == serials


@settings(max_examples=300)
@given(serials=serial_lists())
def test_formatted_spans_parse_back_to_the_same_serials(serials: list[str]) -> None:
    """R5: format_serials' spans keep prefix and width, so parsing restores every serial."""
    formatted = format_serials(serials)
    assert parse_serials(formatted) == serials
    assert parse_serials(formatted.split(", ")) == serials


_HOSTILE = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(
            ["\ud800", "\x00", "\u200b", "...", "…", "..", "0", "9", ",", " ", "\n", "\u037e"]
        ),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=500)
@given(entry=st.one_of(_HOSTILE, st.lists(_HOSTILE, max_size=4)))
def test_any_input_gives_clean_serials_or_a_coded_refusal(entry: str | list[str]) -> None:
    """R5 + hostile input: nothing crashes; every serial returned is clean and unique."""
    try:
        serials = parse_serials(entry, max_span=1000)
    except SerialEntryError as error:
        assert error.code in {
            "INVALID_SERIAL_SPAN",
            "DUPLICATE_SERIAL",
            "INVALID_QUANTITY",
            "SERIAL_REQUIRED",
        }
        error.offending.encode("utf-8")
        error.reason.encode("utf-8")
        return
    assert len(set(serials)) == len(serials)
    for serial in serials:
        assert 0 < len(serial) <= MAX_SERIAL_LENGTH
        assert one_typed_serial(serial) == serial  # typed entry can name the unit again
        assert serial == unicodedata.normalize("NFC", serial)
        assert all(unicodedata.category(char)[0] not in "CZ" for char in serial)


@pytest.mark.parametrize("invisible", ["\u3164", "\u115f", "\ufe0f", "\u034f", "\u2800"])
def test_a_serial_holding_an_invisible_letter_or_mark_is_refused_by_the_parser_too(
    invisible: str,
) -> None:
    """R5, §6: "SN-1" + U+3164 looks exactly like "SN-1"; the parser refuses it as the
    contract does (one rule: `BLANK_LOOKING`), naming the code point."""
    with pytest.raises(SerialEntryError) as refused:
        parse_serials(f"SN-1{invisible}, SN-2")
    assert f"U+{ord(invisible):04X}" in refused.value.reason
