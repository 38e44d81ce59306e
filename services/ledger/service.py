"""Ledger use cases: record a batch of inventory events; apply a batch of PO cost updates.

Each runs inside the consumer's unit of work (one transaction with the inbox and offsets), takes
the per-LIC locks first (see `repository`), reads what the core needs, decides in memory and
writes the whole batch with set-based statements.
"""

from __future__ import annotations

from prometheus_client import Counter

from services.ledger import repository, translate
from services.ledger.domain.costing import apply_updates, may_close
from services.ledger.domain.model import Fact, ItemFact
from services.ledger.domain.recording import record
from shared.consumer import Inbound, UnitOfWork
from shared.contracts.events import InventoryEvent
from shared.contracts.upstream import PurchaseOrderUpdated

ROWS = Counter("lotline_ledger_rows_total", "Rows the ledger wrote", ["table"])
RECONCILIATIONS = Counter(
    "lotline_ledger_reconciliations_total", "COGS reconciliation entries written on PO close"
)


async def record_events(uow: UnitOfWork, batch: list[Inbound[InventoryEvent]]) -> None:
    """`inventory.events` → usage, transactions, COGS, lots, serials (R7, R10–R15)."""
    facts: list[Fact | ItemFact] = []
    for inbound in batch:
        fact = translate.to_fact(inbound.message)
        if fact is not None:
            facts.append(fact)
    if not facts:
        return
    await repository.lock_lics(uow.conn, (f.lic for f in facts))
    known = await repository.load_known(uow.conn, facts)
    entries = record(known, facts)
    await repository.write_entries(uow.conn, entries)
    ROWS.labels("usage").inc(len(entries.usage))
    ROWS.labels("transactions").inc(len(entries.transactions))
    ROWS.labels("cogs").inc(len(entries.cogs))


async def record_costs(uow: UnitOfWork, batch: list[Inbound[PurchaseOrderUpdated]]) -> None:
    """`inventory.costs` → PO quantities; on close, the lots' new cost (with a cost-change
    record each) and COGS reconciliation, exactly once (R15, R16)."""
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
    RECONCILIATIONS.inc(len(entries.cogs))
