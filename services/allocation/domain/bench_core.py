"""Micro-benchmark of the pure allocation core: in-memory decisions per second.

Not a test and not the project's benchmark (that one publishes through Kafka and measures
sustained decisions/s end to end, DESIGN §7); this only says how much of the budget `decide()`
itself takes. Run: `python -m services.allocation.domain.bench_core [n]` (default 30000).

The workload cycles over plain, lot-tracked perishable and serialized LICs; per LIC a cycle is
receive 10 → allocate 9 (automatic FEFO/FIFO) → ship → allocate 3 → cancel → loss of 1: stock
on hand stays level (as in a real partition) while history (closed lots, shipped serials,
allocations) grows, about n / 6 / lics cycles per LIC.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from services.allocation.domain.decide import decide, decide_all
from services.allocation.domain.model import (
    AdjustStock,
    AllocateLine,
    Command,
    LicState,
    LotEntry,
    ReceiveStock,
    ReleaseLine,
    ShipLine,
    UpsertItem,
)

KINDS = ("plain", "lot", "serial")
DAY = date(2024, 1, 1)


def workload(n: int, lics: int = 30) -> list[Command]:
    """`n` commands over `lics` LICs (setup upserts included in the count)."""
    names = [f"{KINDS[i % 3]}-{i}" for i in range(lics)]
    commands: list[Command] = [_item(name) for name in names]
    cycle = 0
    while len(commands) < n:
        for name in names:
            commands.extend(_cycle(name, cycle))
        cycle += 1
    return commands[:n]


def measure(n: int, *, batch: int = 500, clock: Callable[[], float] = time.perf_counter) -> float:
    """Decisions per second of the core over an `n`-command workload, in memory.

    `batch > 0`: as the service decides (DESIGN §7), commands arrive in consumer batches of
    `batch` messages, each split per LIC and decided with `decide_all`. `batch=0`: one
    `decide` per command. `clock=time.process_time` counts CPU seconds instead of wall
    seconds: steadier on a shared machine.
    """
    commands = workload(n)
    states: dict[str, LicState] = {}
    started = clock()
    if batch <= 0:
        for command in commands:
            state = states.get(command.lic) or LicState.empty(command.lic)
            states[command.lic] = decide(state, command).state
    else:
        for first in range(0, len(commands), batch):
            per_lic: dict[str, list[Command]] = {}
            for command in commands[first : first + batch]:
                per_lic.setdefault(command.lic, []).append(command)
            for lic, some in per_lic.items():
                states[lic], _ = decide_all(states.get(lic) or LicState.empty(lic), some)
    return len(commands) / (clock() - started)


def _item(lic: str) -> UpsertItem:
    kind = lic.split("-")[0]
    return UpsertItem(
        message_id=f"{lic}-item",
        lic=lic,
        description=lic,
        uom="Each",
        track_mfr_lot=kind == "lot",
        serialized=kind == "serial",
        next_serial="1" if kind == "serial" else None,
        est_unit_cost=Decimal("2.50"),
    )


def _cycle(lic: str, n: int) -> list[Command]:
    kind = lic.split("-")[0]
    day = DAY + timedelta(days=n)
    size = 10 if n else 20  # the first cycle also stocks the shelf
    lots: tuple[LotEntry, ...] = ()
    if kind == "lot":
        expiry = day + timedelta(days=30)
        lots = (
            LotEntry(mfr_lot=f"M{n}a", quantity=Decimal(size - 4), expires_on=expiry),
            LotEntry(mfr_lot=f"M{n}b", quantity=Decimal(4), expires_on=expiry - timedelta(5)),
        )
    ship_id = f"S-{lic}-{n}"
    removal = AdjustStock(
        message_id=f"{ship_id}-adj",
        lic=lic,
        adjustment_id=f"ADJ-{lic}-{n}",
        office="AI",
        kind="loss",
        quantity=Decimal(-1),
        adjusted_on=day,
        lots=(LotEntry(mfr_lot=f"M{n}a", quantity=Decimal(1)),) if kind == "lot" else (),
        serials=(f"{10 * n + 10:05d}",) if kind == "serial" else (),
    )
    return [
        ReceiveStock(
            message_id=f"{ship_id}-in",
            lic=lic,
            lot_id=f"PO-{lic}-{n}/1",
            office="AI",
            kind="purchase",
            received_on=day,
            quantity=Decimal(size),
            shipment_id=f"PO-{lic}-{n}",
            line_no=1,
            mfr_lots=lots,
            generate_serials=kind == "serial",
        ),
        _allocate(lic, ship_id, 1, 9, day),
        ShipLine(message_id=f"{ship_id}-ship", lic=lic, shipment_id=ship_id, line_no=1),
        _allocate(lic, ship_id, 2, 3, day),
        ReleaseLine(message_id=f"{ship_id}-cancel", lic=lic, shipment_id=ship_id, line_no=2),
        removal,
    ]


def _allocate(lic: str, ship_id: str, line_no: int, qty: int, day: date) -> AllocateLine:
    return AllocateLine(
        message_id=f"{ship_id}-{line_no}",
        lic=lic,
        shipment_id=ship_id,
        line_no=line_no,
        office="AI",
        kind="sale",
        counterparty="Customer",
        ship_on=day,
        quantity=Decimal(qty),
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    for label, batch in (("batches of 500, decide_all per LIC", 500), ("one decide each", 0)):
        wall = measure(n, batch=batch)
        cpu = measure(n, batch=batch, clock=time.process_time)
        print(f"{n} commands, {label}: {wall:,.0f}/s wall, {cpu:,.0f}/s per CPU second")


if __name__ == "__main__":
    main()
