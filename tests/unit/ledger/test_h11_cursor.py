"""The read API's `after` cursors: the sort key of a page's last row, opaque and URL-safe, and
anything else refused as a bad cursor (a 422 naming `after`), never a server error."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from services.ledger.queries import BadCursor, _token, _untoken

SHAPE = (str, dt.date, str)


@pytest.mark.parametrize(
    "lot_id", ["IN,1/1", "A/1%2F/2", "Lot-\u00e9/3", 'Q"uote\\/4', "\u6f22\u5b57/5", "x" * 128]
)
def test_a_cursor_carries_any_identifier_through_a_url_unchanged(lot_id: str) -> None:
    token = _token("KIT/2,\u00e9", dt.date(2024, 1, 2), lot_id)

    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert _untoken(token, SHAPE) == ["KIT/2,\u00e9", dt.date(2024, 1, 2), lot_id]


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a cursor",
        _raw("[" * 1500 + "]" * 1500),  # deeper than the JSON parser recurses
        _raw('["A", "2024-13-01", "L"]'),
        _raw('["A\\u0000", "2024-01-01", "L"]'),  # PostgreSQL refuses a NUL: was a 500
        _raw('[" A", "2024-01-01", "L"]'),  # not as the contract normalizes an id
        _raw('["A", "2024-01-01"]'),
        _raw('{"lic": "A"}'),
        _raw('["A", 20240101, "L"]'),
        _raw("\xff"),
    ],
)
def test_anything_but_a_cursor_of_the_list_is_a_bad_cursor(token: str) -> None:
    with pytest.raises(BadCursor):
        _untoken(token, SHAPE)


def test_a_usage_cursor_holds_a_bigint_sequence_only() -> None:
    assert _untoken(_token(dt.date(2024, 1, 2), 2**63 - 1), (dt.date, int)) == [
        dt.date(2024, 1, 2),
        2**63 - 1,
    ]
    for seq in ("2**63", "-1", "true", "1.0"):
        with pytest.raises(BadCursor):
            _untoken(_raw(f'["2024-01-02", {2**63 if seq == "2**63" else seq}]'), (dt.date, int))
