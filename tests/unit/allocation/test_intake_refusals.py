"""The intake's refusal hooks (docs/contract.md, "Invalid documents"): each intake route answers
an invalid document of its own topic's type only. A document of the other intake type, sent to
the wrong topic, is not answered there (dead letter only): answered, it would carry the command
id its own topic's decision carries later, two opposite decisions for one command."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.allocation import translate
from shared.contracts import InvalidMessage, decode
from shared.contracts.events import CommandRejected
from shared.contracts.upstream import AdjustmentMessage, ItemMessage

EVENTS = "t.inventory.events"
ITEMS = TypeAdapter(ItemMessage)
ADJUSTMENTS = TypeAdapter(AdjustmentMessage)

ADJUSTMENT = {
    "type": "AdjustInventory",
    "message_id": "adj-1",
    "adjustment_id": "ADJ-1",
    "lic": "A",
    "office": "AI",
    "kind": "beginning_balance",
    "quantity": 5,
    "unit_cost": "1.00",
}
ITEM = {"type": "UpsertItem", "message_id": "item-1", "lic": "B", "est_unit_cost": "1.00"}


def _hook_answers(
    hook: Any, adapter: TypeAdapter[Any], doc: dict[str, Any]
) -> list[tuple[str, str | None, Any]] | None:
    """What the consumer does with a document its route's adapter refuses."""
    with pytest.raises(InvalidMessage) as caught:
        decode(adapter, json.dumps(doc).encode())
    exc = caught.value
    assert exc.document is not None and exc.error is not None
    answers = hook(exc.document, exc.error.errors(include_url=False))
    return None if answers is None else list(answers)


@pytest.mark.parametrize("doc", [ADJUSTMENT, {**ADJUSTMENT, "quantity": 0}], ids=["valid", "bad"])
def test_the_items_hook_leaves_an_adjustment_unanswered(doc: dict[str, Any]) -> None:
    assert _hook_answers(translate.refuse_items(EVENTS), ITEMS, doc) is None


@pytest.mark.parametrize("doc", [ITEM, {**ITEM, "est_unit_cost": "-1"}], ids=["valid", "bad"])
def test_the_adjustments_hook_leaves_an_item_unanswered(doc: dict[str, Any]) -> None:
    assert _hook_answers(translate.refuse_adjustments(EVENTS), ADJUSTMENTS, doc) is None


def test_the_items_hook_answers_an_invalid_item() -> None:
    answers = _hook_answers(translate.refuse_items(EVENTS), ITEMS, {**ITEM, "est_unit_cost": "-1"})
    assert answers is not None
    ((topic, key, rejected),) = answers
    assert (topic, key) == (EVENTS, "B")
    assert isinstance(rejected, CommandRejected)
    assert (rejected.command_id, rejected.command_type) == ("item:item-1", "UpsertItem")
    assert (rejected.reason_code.value, rejected.offending) == ("INVALID_QUANTITY", "-1")


def test_the_adjustments_hook_answers_an_invalid_adjustment() -> None:
    answers = _hook_answers(
        translate.refuse_adjustments(EVENTS), ADJUSTMENTS, {**ADJUSTMENT, "quantity": 0}
    )
    assert answers is not None
    ((topic, key, rejected),) = answers
    assert (topic, key) == (EVENTS, "A")
    assert isinstance(rejected, CommandRejected)
    assert (rejected.command_id, rejected.adjustment_id) == ("adjustment:adj-1", "ADJ-1")
    assert (rejected.reason_code.value, rejected.offending) == ("INVALID_QUANTITY", "0")


def test_the_intake_routes_each_install_their_own_topics_hook() -> None:
    """The composition root wires each intake topic to its own type's hook."""
    from services.allocation.app import create_runtime
    from shared.config import Settings

    settings = Settings(LOTLINE_TOPIC_PREFIX="t.")
    runtime = create_runtime(settings)
    routes = {route.topic: route for route in runtime.routes}
    items, adjustments = routes[settings.topics.items], routes[settings.topics.adjustments]
    assert items.refuse is not None and adjustments.refuse is not None
    assert _hook_answers(items.refuse, ITEMS, ADJUSTMENT) is None
    assert _hook_answers(adjustments.refuse, ADJUSTMENTS, ITEM) is None
