"""Ledger use cases: record a batch of inventory events; apply a batch of PO cost updates;
record document answers and dead letters for the operations dashboard.

Each runs inside the consumer's unit of work (one transaction with the inbox and offsets), takes
the per-LIC locks first (see `repository`), reads what the core needs, decides in memory and
writes the whole batch with set-based statements.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from prometheus_client import Counter

from services.ledger import operations, quarantine, repository, translate
from services.ledger.domain.costing import apply_updates, may_close
from services.ledger.domain.model import Fact, Hold, ItemFact
from services.ledger.domain.operations import (
    DeadLetter,
    DocumentStatus,
    Refusal,
    latest_per_document,
)
from services.ledger.domain.recording import record
from services.ledger.translate import StatusNotice
from shared.consumer import Inbound, UnitOfWork
from shared.contracts.events import (
    CommandRejected,
    InventoryAdjusted,
    InventoryEvent,
    ItemUpserted,
    StockQuarantined,
    StockReceived,
)
from shared.contracts.upstream import PurchaseOrderUpdated
from shared.offload import compute

ROWS = Counter("lotline_ledger_rows_total", "Rows the ledger wrote", ["table"])
# What booking a movement costs, roughly in microseconds (`shared.offload`).
MOVE_WEIGHT = 10
RECONCILIATIONS = Counter(
    "lotline_ledger_reconciliations_total", "COGS reconciliation entries written on PO close"
)


async def event_locks(_conn: asyncpg.Connection, events: list[InventoryEvent]) -> list[str]:
    """The LICs `record_events` locks (`repository.lock_lics`): those of the events that move
    something, all but refusals (`Route.locks`)."""
    return [event.lic for event in events if not isinstance(event, CommandRejected)]


async def cost_locks(_conn: asyncpg.Connection, updates: list[PurchaseOrderUpdated]) -> list[str]:
    """The LICs `record_costs` locks (`Route.locks`)."""
    return [update.lic for update in updates]


async def record_events(uow: UnitOfWork, batch: list[Inbound[InventoryEvent]]) -> None:
    """`inventory.events` → usage, transactions, COGS, lots, serials (R7, R10–R15), the
    quarantines in force with a transaction record per lot each covers (and per lot stock
    arrives into while one covers it); for the
    dashboard, adjustments posted (its documents) and adjustments' and items' refusals and the
    last event recorded, written with the batch's last statement (no extra round trip); and
    each item's Next Serial (R6)."""
    facts: list[Fact | ItemFact] = []
    refused: list[Refusal] = []
    adjusted: list[DocumentStatus] = []
    held: list[StockQuarantined] = []
    # The facts with the batch's holds and releases in their places: stock arriving after a
    # hold gets a quarantine record (`recording`).
    ordered: list[Fact | ItemFact | Hold] = []
    for inbound in batch:
        fact = translate.to_fact(inbound.message)
        if fact is not None:
            facts.append(fact)
            ordered.append(fact)
            if isinstance(inbound.message, InventoryAdjusted):
                adjusted.append(translate.adjustment_status(inbound.message))
        elif isinstance(inbound.message, CommandRejected):
            refused += translate.command_refusals(inbound.message)
        elif isinstance(inbound.message, StockQuarantined):
            held.append(inbound.message)
            ordered.append(translate.to_hold(inbound.message))
    also = [
        _progress(batch[-1]) if batch else None,
        operations.refusals_part(refused),
        operations.documents_part(latest_per_document(adjusted)),
    ]
    dashboard = [part for part in also if part is not None]
    if not facts:
        await repository.write_parts(uow.conn, dashboard)
        if held:
            await repository.lock_lics(uow.conn, (q.lic for q in held))
            await quarantine.record(uow.conn, held)
        return
    await repository.lock_lics(uow.conn, [*(f.lic for f in facts), *(q.lic for q in held)])
    known = await repository.load_known(uow.conn, facts)
    # A 100,000-serial shipment's events take seconds to book: off the loop.
    moves = sum(len(f.moves) for f in facts if isinstance(f, Fact))
    entries = await compute(lambda: record(known, ordered), weight=MOVE_WEIGHT * moves)
    next_serials = latest_next_serials(inbound.message for inbound in batch)
    await repository.write_entries(uow.conn, entries, also=dashboard, next_serials=next_serials)
    # After the batch's lots are written: a quarantine's records are costed at its lots', and
    # its serials counted as they were at it in the batch.
    await quarantine.record(uow.conn, held, [inbound.message for inbound in batch])
    ROWS.labels("usage").inc(len(entries.usage))
    ROWS.labels("transactions").inc(len(entries.transactions))
    ROWS.labels("cogs").inc(entries.count_cogs())


def latest_next_serials(events: Iterable[InventoryEvent]) -> dict[str, str | None]:
    """R6: each item's Next Serial as the last of `events` (in partition order, which is the
    item's) that says it. An `ItemUpserted` sets it, None clearing it: allocation publishes the
    item's value after the upsert (an `UpsertItem` that leaves it out keeps it), so the event's
    value is the item's. A `StockReceived` carries it after the receipt (moved on when the
    receipt took serials from it); one without (an event from before it did) leaves it."""
    latest: dict[str, str | None] = {}
    for event in events:
        if isinstance(event, ItemUpserted) or (
            isinstance(event, StockReceived) and event.next_serial is not None
        ):
            latest[event.lic] = event.next_serial
    return latest


async def record_costs(uow: UnitOfWork, batch: list[Inbound[PurchaseOrderUpdated]]) -> None:
    """`inventory.costs` → PO quantities; on close, the lots' new cost (with a cost-change
    record each) and the reconciliation of every usage of them, returns to vendor included,
    exactly once (R15, R16)."""
    updates = [translate.to_po_update(inbound.message) for inbound in batch]
    if not updates:
        return
    await repository.lock_lics(uow.conn, (u.lic for u in updates))
    keys = list(dict.fromkeys(u.key for u in updates))
    orders = await repository.load_orders(uow.conn, keys)
    closing = may_close(orders, updates)
    usage = await repository.load_booked_usage(uow.conn, closing)
    lots = await repository.load_po_lots(uow.conn, closing)
    entries = apply_updates(orders, usage, updates, lots)
    await repository.write_costs(uow.conn, entries)
    # COGS reconciliations, as documented: a return to vendor's is not one (`CogsKind`).
    RECONCILIATIONS.inc(sum(1 for c in entries.cogs if c.kind == "reconciliation"))


async def record_status(uow: UnitOfWork, batch: list[Inbound[StatusNotice]]) -> None:
    """`inventory.status` → each document's latest answer and the refusals, one statement."""
    notices = [inbound.message for inbound in batch]
    statuses = [s for s in map(translate.to_document_status, notices) if s is not None]
    refused = [r for notice in notices for r in translate.status_refusals(notice)]
    parts = [
        operations.documents_part(latest_per_document(statuses)),
        operations.refusals_part(refused),
    ]
    await repository.write_parts(uow.conn, [p for p in parts if p is not None])


async def record_dead_letters(uow: UnitOfWork, batch: list[Inbound[DeadLetter]]) -> None:
    """`inventory.dlq` → the dashboard's dead letters (read raw: see `translate`)."""
    part = operations.dead_letters_part([inbound.message for inbound in batch])
    if part is not None:
        await repository.write_parts(uow.conn, [part])


async def prune_operations(uow: UnitOfWork) -> None:
    """Bound the dashboard's tables (a periodic job)."""
    await operations.prune(uow.conn)


def _progress(last: Inbound[InventoryEvent]) -> repository.Part:
    event = last.message
    return operations.progress_part(
        last.topic,
        last.partition,
        message_id=event.message_id,
        event_type=event.type,
        lic=event.lic,
        occurred_at=event.occurred_at,
    )
