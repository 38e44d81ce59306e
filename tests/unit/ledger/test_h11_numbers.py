"""The read API writes decimals as plain text: never an exponent, never a negative zero (a
spreadsheet or a JSON reader comparing text would take "-0" for another value than "0")."""

from __future__ import annotations

from decimal import Decimal

from services.ledger.api import _number
from services.ledger.schemas import Figure


def test_a_negative_zero_value_is_written_as_zero_in_json() -> None:
    """An over-received lot at cost 0: ordered − received is −5 units worth −5 × 0 = −0."""
    figure = Figure(quantity=Decimal(-5), value=Decimal(-5) * Decimal("0.000000"))

    assert figure.model_dump(mode="json") == {"quantity": "-5", "value": "0.000000"}
    assert Figure(quantity=Decimal("-0"), value=Decimal(0)).model_dump(mode="json") == {
        "quantity": "0",
        "value": "0",
    }


def test_numbers_keep_fixed_point_and_nonzero_signs() -> None:
    assert Figure(quantity=Decimal("1E+1"), value=Decimal("-2.50")).model_dump(mode="json") == {
        "quantity": "10",
        "value": "-2.50",
    }


def test_a_negative_zero_is_written_as_zero_in_the_recall_sheet() -> None:
    """As the JSON writes it (above): the sheet's amounts read as the JSON's."""
    assert [_number(Decimal(v)) for v in ("-0", "-0.000000", "1E+1", "-2.50")] == [
        "0",
        "0.000000",
        "10",
        "-2.50",
    ]
