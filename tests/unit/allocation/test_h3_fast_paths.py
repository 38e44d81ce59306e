"""The allocation path's speed-ups change nothing: rows travel to PostgreSQL with every value's
exact text, and `translate`'s dispatch table picks the function `singledispatch` picked."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson

from services.allocation import translate
from services.allocation.repository import LOTS, TABLES
from shared.db import json_rows


def test_rows_travel_with_each_values_exact_text() -> None:
    """R15: quantities and costs keep their digits and scale (as asyncpg's binary numeric
    did); dates go as ISO text, None as null."""
    row = (
        "PO-1/1", "L", "AI", "purchase", None, date(2026, 11, 1), Decimal("4.000000"),
        Decimal("1E+2"), 7, Decimal("0E-8"), Decimal("-1.50"), Decimal("123456789.123456"),
        "open", Decimal(0),
    )  # fmt: skip
    (text,) = json_rows([row])
    assert orjson.loads(text) == [
        "PO-1/1", "L", "AI", "purchase", None, "2026-11-01", "4.000000", "1E+2", 7, "0E-8",
        "-1.50", "123456789.123456", "open", "0",
    ]  # fmt: skip
    assert [Decimal(v) for v in orjson.loads(text)[6:8]] == [row[6], row[7]]
    assert str(Decimal(orjson.loads(text)[9])) == "0E-8"


def test_each_column_is_read_back_as_its_type() -> None:
    for table in TABLES:
        sql = table.upsert_sql(3)
        for i, (_, sql_type) in enumerate(table.columns):
            assert f"(r->>{i})::{sql_type}" in sql
        assert "$3::text[]" in sql
    assert LOTS.delete_sql(1).endswith("FROM unnest($1::text[]::jsonb[]) AS r)")


def test_the_dispatch_table_names_the_registered_functions() -> None:
    assert set(translate._TO_DOMAIN) == set(translate._to_domain.registry) - {object}
    for cls, convert in translate._TO_DOMAIN.items():
        assert translate._to_domain.dispatch(cls) is convert
