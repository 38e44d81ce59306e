"""`sent`: a refused value written in a reason as upstream sent it (shared/reasons.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.reasons import sent


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (Decimal("1.50"), "1.50"),  # what was refused is what was sent
        (Decimal("1E+3"), "1E+3"),
        (20261123, "20261123"),
        ("2026-11-23T00:00:00Z", "2026-11-23T00:00:00Z"),
        ("yes", "yes"),
        ([1, 2], "a list"),
        ({"a": 1}, "an object"),
    ],
)
def test_a_value_reads_as_json_spells_it_unquoted(value: object, text: str) -> None:
    assert sent(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("sale ", "sale followed by a space"),
        (" sale", "sale preceded by a space"),
        ("  sale   ", "sale preceded by 2 spaces and followed by 3 spaces"),
        ("", "empty"),
        (" ", "a space"),
        ("   ", "3 spaces"),
        ("sale order", "sale order"),
    ],
)
def test_spaces_a_dashboard_would_not_show_are_said_in_words(value: str, text: str) -> None:
    assert sent(value) == text


def test_what_cannot_be_seen_is_escaped_and_long_values_clipped() -> None:
    assert sent("sale\t") == "sale\\t"
    assert sent("LOT\u200b1\x1d") == "LOT\\u200b1<GS>"
    assert sent("x" * 150) == "x" * 100 + "…"
    assert sent(Decimal("1" * 150)) == "1" * 100 + "…"
