"""R11: an adjustment's `quantity` is the change in stock (+ adds, − removes), never 0. A
manager who counted none of a lot and sent `"quantity": 0` is told so, with an example of
what to send; the refusal still names the field and the value as sent (INVALID_QUANTITY)."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from pydantic import AfterValidator, BaseModel, TypeAdapter

from services.allocation import translate as allocation
from shared.contracts import InvalidMessage, commands, decode, events, status, upstream
from shared.contracts.events import CommandRejected
from shared.contracts.types import SignedQuantity, _a_change
from shared.contracts.upstream import AdjustmentMessage
from shared.reasons import ReasonCode

ADJUSTMENTS = TypeAdapter(AdjustmentMessage)
SAYS = (
    "quantity must not be 0: it is the change in stock (+ adds, - removes), not the quantity "
    "counted: to empty a lot holding 15, for example, send -15"
)


def _count(quantity: object) -> dict[str, Any]:
    return {
        "type": "AdjustInventory",
        "message_id": "adj-1",
        "adjustment_id": "ADJ-1",
        "lic": "GLV-100",
        "office": "MAIN",
        "kind": "count",
        "quantity": quantity,
    }


@pytest.mark.parametrize(
    ("quantity", "sent"),
    [(0, "0"), ("0", "0"), ("-0", "-0"), ("0.000000", "0.000000"), (0.0, "0.0")],
)
def test_a_count_of_zero_is_told_that_quantity_is_the_change_in_stock(
    quantity: object, sent: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode(ADJUSTMENTS, json.dumps(_count(quantity)).encode())
    exc = caught.value
    assert exc.document is not None and exc.error is not None
    refusal = allocation.invalid_adjustment(exc.document, exc.error.errors())
    assert isinstance(refusal, CommandRejected)
    assert refusal.reason_code == ReasonCode.INVALID_QUANTITY
    assert refusal.reason == f"quantity: {SAYS}"
    assert refusal.offending == sent  # the value as sent


def test_the_remedy_it_gives_is_a_valid_adjustment_quantity() -> None:
    assert str(TypeAdapter(SignedQuantity).validate_python("-15")) == "-15"


def _signed_fields() -> set[tuple[str, str]]:
    """(model, field) of every contract message field validated as `SignedQuantity`."""
    found = set()
    for module in (commands, events, status, upstream):
        for name, model in inspect.getmembers(module, inspect.isclass):
            if not issubclass(model, BaseModel) or model.__module__ != module.__name__:
                continue
            for field, info in model.model_fields.items():
                if any(
                    isinstance(m, AfterValidator) and m.func is _a_change for m in info.metadata
                ):
                    found.add((name, field))
    return found


def test_only_adjustments_carry_a_signed_quantity_so_the_message_fits_every_use() -> None:
    """The message speaks of an adjustment (the change in stock, a lot emptied): it is right
    wherever `SignedQuantity` is used only while that is an adjustment's quantity. A message
    of another kind taking it needs its own validator and words."""
    assert _signed_fields() == {("AdjustInventory", "quantity"), ("AdjustStock", "quantity")}
