"""Heavy pure work off the event loop.

A service's consumers, their heartbeats to the broker, its outbox relay and (in the ledger) the
read API share one event loop. A handler that computes for longer than the consumer's session
timeout (KAFKA_SESSION_TIMEOUT_MS, 6 s) without giving the loop back is dropped from its group:
its partitions move to another process, which takes the same document from the stored offset
and, computing as long, loses them back; the first one's commit is then fenced. A receipt of
200,000 scanned barcodes (8 MB, within the upstream limit) took 21 s to check.

Work big enough to matter runs in a worker thread instead. The interpreter hands the GIL back to
the loop's thread every few milliseconds, so heartbeats, the relay and the API go on while the
handler awaits the result. The work must be pure: it runs while other tasks of the loop run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence, Sized
from decimal import Decimal
from typing import Protocol, TypeVar

T = TypeVar("T")

HEAVY = 20_000
"""Weight from which work goes to a thread; a weight is about a microsecond of work. Lighter
work runs at once: a thread hand-off costs more than it saves."""

SCAN_WEIGHT = 100
"""A GS1 scan, decoded by biip: about 100 µs. A serial, a lot or a line: about 1."""

MAX_SERIALS = 1_000_000  # the most a document may name: a bigger quantity is refused anyway


class Entry(Protocol):
    """What was typed and scanned on a receipt or shipment line (or a picks update)."""

    @property
    def lots(self) -> Sized: ...
    @property
    def serials(self) -> str | Sequence[str] | None: ...
    @property
    def scans(self) -> Sized: ...


def entry_weight(entry: Entry, quantity: Decimal | None = None) -> int:
    """About how many microseconds reading `entry` takes. Typed serials count as the line's
    `quantity` when it is known (a span is a few characters however many it names), else
    about one per 8 characters."""
    weight = 1 + len(entry.lots) + SCAN_WEIGHT * len(entry.scans)
    serials = entry.serials
    if serials is not None:
        if quantity is not None:
            weight += min(int(quantity), MAX_SERIALS)
        else:
            weight += len(serials) if not isinstance(serials, str) else len(serials) // 8
    return weight


async def compute(work: Callable[[], T], *, weight: int) -> T:
    """`work()`, in a worker thread when `weight` reaches HEAVY, else right here."""
    if weight < HEAVY:
        return work()
    return await asyncio.to_thread(work)
