"""How the operations dashboard names the refusals of adjustments and items (DESIGN.md §4):
by the command refused, whichever part of allocation refused it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.allocation import translate as allocation_wire
from services.ledger import translate
from shared.contracts.events import CommandRejected
from shared.contracts.reasons import ReasonCode
from shared.contracts.upstream import AdjustInventory, UpsertItem


def _intake_refusal(raw: dict[str, Any]) -> CommandRejected:
    """The allocation intake's answer to an upstream document that fails the contract."""
    model = AdjustInventory if raw["type"] == "AdjustInventory" else UpsertItem
    with pytest.raises(ValidationError) as failed:
        model.model_validate(raw)
    build = (
        allocation_wire.invalid_adjustment
        if raw["type"] == "AdjustInventory"
        else allocation_wire.invalid_item
    )
    refusal = build(raw, failed.value.errors())
    assert refusal is not None
    return refusal


def _decided_refusal(command_type: str, adjustment_id: str | None) -> CommandRejected:
    """Allocation's answer to the command it decided (`command_type`: the command's)."""
    return CommandRejected(
        message_id=f"{command_type}/rejected",
        command_id="c1",
        lic="CAM",
        command_type=command_type,
        adjustment_id=adjustment_id,
        reason_code=ReasonCode.LOT_QTY_EXCEEDS_USED,
        reason="adjusted quantity exceeds the previously used quantity",
    )


def test_an_adjustments_refusals_show_under_one_type_whoever_refused_it() -> None:
    """§4: one upstream adjustment refused first at the intake (its quantity is not a number)
    and then, sent again corrected, by allocation's decision: both refusals are the
    adjustment's command's (`CommandRejected:AdjustStock`), so the dashboard counts them under
    one type, not one under the upstream document's name and one under the command's."""
    raw = {
        "type": "AdjustInventory",
        "message_id": "adj-msg-1",
        "adjustment_id": "ADJ-7",
        "lic": "CAM",
        "office": "AI",
        "kind": "count",
        "quantity": "lots",
    }
    at_intake = _intake_refusal(raw)
    decided = _decided_refusal("AdjustStock", "ADJ-7")

    rows = translate.command_refusals(at_intake) + translate.command_refusals(decided)

    assert [(r.type, r.document) for r in rows] == [
        ("CommandRejected:AdjustStock", "ADJ-7"),
        ("CommandRejected:AdjustStock", "ADJ-7"),
    ]
    assert rows[0].reason_code == ReasonCode.INVALID_QUANTITY.value


def test_an_items_refusals_show_under_its_command_whoever_refused_it() -> None:
    """§4: an item's command is `UpsertItem` at the intake and when decided alike."""
    raw = {"type": "UpsertItem", "message_id": "item-msg-1", "lic": "CAM", "serialized": "yes"}
    at_intake = _intake_refusal(raw)
    decided = _decided_refusal("UpsertItem", None)

    rows = translate.command_refusals(at_intake) + translate.command_refusals(decided)

    assert {(r.type, r.document) for r in rows} == {("CommandRejected:UpsertItem", "CAM")}


def test_the_ledgers_light_movement_reads_every_field_of_the_contracts() -> None:
    # WireMove stands in for the contract's Movement to save memory: a field added to the
    # contract must be added there too, or the ledger would drop it unread.
    from dataclasses import fields

    from services.ledger.translate import WireMove
    from shared.contracts.events import Movement

    assert {f.name for f in fields(WireMove)} == set(Movement.model_fields)
