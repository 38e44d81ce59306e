"""A deeply nested offending value is shown, not recursed through (DESIGN.md §6: deeply nested
JSON; docs/contract.md, Invalid documents).

The consumer parses a record, then answers it from a few frames deeper (its route's refuser,
the service's translation, `problems`). A value nested almost as deep as the JSON parser allows
must not then exhaust the stack while its refusal shows it: the document would go unanswered."""

from __future__ import annotations

import sys
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.contracts import invalid as inv
from shared.contracts.upstream import ReceiptMessage
from shared.reasons import ReasonCode
from tests.fixtures.documents import receipt_document

RECEIPTS = TypeAdapter(ReceiptMessage)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_value_nested_to_the_parsers_limit_is_shown_clipped_and_answered() -> None:
    doc = receipt_document(lots=_nested(sys.getrecursionlimit() - 20))
    try:
        RECEIPTS.validate_python(doc)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        raise AssertionError("a list of lists is not a list of lots")
    [problem] = inv.problems(doc, errors)
    assert problem.path == "lines[0].lots[0]"
    assert problem.reason_code == ReasonCode.LOT_REQUIRED
    assert problem.offending is not None and problem.offending.startswith("[[[[")
    assert len(problem.offending) < 300
