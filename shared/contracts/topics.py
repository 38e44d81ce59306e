"""Topic names of the public contract. A prefix (LOTLINE_TOPIC_PREFIX) isolates test runs."""

from __future__ import annotations

from dataclasses import dataclass

RECEIPTS = "inventory.receipts"
SHIPMENTS = "inventory.shipments"
ITEMS = "inventory.items"
ADJUSTMENTS = "inventory.adjustments"
COMMANDS = "inventory.commands"
EVENTS = "inventory.events"
STATUS = "inventory.status"
COSTS = "inventory.costs"
DLQ = "inventory.dlq"

ALL = (RECEIPTS, SHIPMENTS, ITEMS, ADJUSTMENTS, COMMANDS, EVENTS, STATUS, COSTS, DLQ)
# Per-LIC topics carry the one-writer-per-LIC guarantee: their partitions bound how many
# allocation processes share the work (LOTLINE_LIC_PARTITIONS). Every partition a consumer
# reads costs the broker on each fetch, even when idle, so no more than needed.
LIC_TOPICS = (COMMANDS, EVENTS)
LIC_PARTITIONS = 8
DEFAULT_PARTITIONS = 4


@dataclass(frozen=True)
class Topics:
    """Resolved topic names for one deployment (the prefix is empty in production)."""

    prefix: str = ""

    def name(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    @property
    def receipts(self) -> str:
        return self.name(RECEIPTS)

    @property
    def shipments(self) -> str:
        return self.name(SHIPMENTS)

    @property
    def items(self) -> str:
        return self.name(ITEMS)

    @property
    def adjustments(self) -> str:
        return self.name(ADJUSTMENTS)

    @property
    def commands(self) -> str:
        return self.name(COMMANDS)

    @property
    def events(self) -> str:
        return self.name(EVENTS)

    @property
    def status(self) -> str:
        return self.name(STATUS)

    @property
    def costs(self) -> str:
        return self.name(COSTS)

    @property
    def dlq(self) -> str:
        return self.name(DLQ)

    def partitions(self, lic_partitions: int = LIC_PARTITIONS) -> dict[str, int]:
        return {
            self.name(t): lic_partitions if t in LIC_TOPICS else DEFAULT_PARTITIONS for t in ALL
        }
