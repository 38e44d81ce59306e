"""The wording helpers every refusal reason uses (shared/reasons.py's module docstring)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.reasons import flag, listed, number, shown


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("5.000"), "5"),
        (Decimal("2.50"), "2.5"),
        (Decimal("1E+3"), "1000"),
        (Decimal("-3"), "-3"),
        (Decimal("-0.00"), "0"),
        (Decimal("0E-7"), "0"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("123456789012.123456"), "123456789012.123456"),
        (7, "7"),
    ],
)
def test_a_number_reads_as_a_person_types_it(value: Decimal | int, text: str) -> None:
    assert number(value) == text


def test_a_hostile_number_stays_short() -> None:
    """1E+400 is refused elsewhere; its reason must not carry 400 digits meanwhile."""
    assert number(Decimal("1E+400")) == "1E+400"
    assert number(Decimal("NaN")) == "NaN"


def test_flags_are_spelled_as_json_spells_them() -> None:
    assert (flag(True), flag(False)) == ("true", "false")


def test_a_list_names_the_first_few_then_how_many_more() -> None:
    assert listed(["A", "B"]) == "A, B"
    assert listed([f"L{i}" for i in range(8)]) == "L0, L1, L2, L3, L4 and 3 more"
    assert listed([]) == ""


def test_raw_text_is_shown_unquoted_with_what_cannot_be_seen_escaped() -> None:
    assert shown("(01)09506000134352(21)SN1") == "(01)09506000134352(21)SN1"
    assert shown("0109506000134352\x1d21SN1\r") == "0109506000134352<GS>21SN1\\r"
    # what a repr escaped: blanks other than the space, private-use, lone surrogates
    assert shown("A\u00a0B\ue000\ud800") == "A\\xa0B\\ue000\\ud800"
    assert shown("Sé-1") == "Sé-1"
    assert shown("LOT\u200b1") == "LOT\\u200b1"
    assert shown("x" * 150) == "x" * 100 + "…"
