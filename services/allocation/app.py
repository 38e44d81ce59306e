"""Allocation's composition root: the one writer of lot and serial state, per LIC partition."""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter

from services.allocation import translate
from services.allocation.service import AllocationService
from shared.config import Settings
from shared.contracts.commands import Command
from shared.contracts.upstream import AdjustmentMessage, ItemMessage, UpsertItem
from shared.service import ServiceRuntime, serve

SCHEMA = "allocation"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_runtime(settings: Settings) -> ServiceRuntime:
    runtime = ServiceRuntime(settings, schema=SCHEMA, migrations=MIGRATIONS)
    service = AllocationService(settings)
    topics = settings.topics
    runtime.consume(
        name="allocation",
        topic=topics.commands,
        adapter=TypeAdapter(Command),
        handler=service.decide_batch,
        payload_doc=Command,
        description="Per-LIC commands, decided in partition order by the one writer per LIC.",
        on_assign=service.forget_states,
    )
    runtime.consume(
        name="allocation-intake-items",
        topic=topics.items,
        adapter=TypeAdapter(ItemMessage),
        handler=service.rekey_items,
        payload_doc=UpsertItem,
        locks=service.item_locks,
        refuse=translate.refuse_items(topics.events),
        description="Upstream item master data, re-keyed by LIC into inventory.commands.",
    )
    runtime.consume(
        name="allocation-intake-adjustments",
        topic=topics.adjustments,
        adapter=TypeAdapter(AdjustmentMessage),
        handler=service.rekey_adjustments,
        payload_doc=AdjustmentMessage,
        locks=service.adjustment_locks,
        refuse=translate.refuse_adjustments(topics.events),
        description="Upstream inventory adjustments and quarantines, re-keyed by LIC into "
        "inventory.commands.",
    )
    # Adjustments and quarantines held for items not passed on yet: published when their
    # wait is over.
    runtime.every(service.expire_every, service.expire_held)
    # A held receipt line waits for receiving to confirm or cancel it (normally a round trip),
    # and a sale line waiting on it as long; a held adjustment for its item, at most
    # LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS.
    runtime.watch_waiting(
        "SELECT least((SELECT min(held_at) FROM held_lines),"
        " (SELECT min(waiting_since) FROM waiting_lines),"
        " (SELECT min(held_at) FROM held_adjustments))"
    )
    return runtime


def run() -> None:
    serve("allocation", create_runtime)
