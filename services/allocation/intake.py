"""The intake's SQL: the items it has passed on, and the adjustments it holds for unknown items.

Bound to the unit of work's connection (search_path = `allocation`); never opens a transaction.

Holding an adjustment for a LIC and passing that LIC's UpsertItem are serialized by a
transaction-scoped advisory lock of the LIC's bucket (`item_lock`), as receiving does for its
receipts:
without it, an adjustment could read the item as unknown while the item's transaction, not yet
committed, looks for held adjustments before the adjustment's is committed, and neither would
see the other. Whoever holds the lock reads afresh (READ COMMITTED) what the other committed.
The consumer takes a batch's locks for both topics at once, before either handler runs
(`Route.locks`, `AllocationService.item_locks` and `adjustment_locks`): taken topic by topic,
two processes could each wait for the other's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import asyncpg

from shared.contracts import commands as c
from shared.contracts.codec import encode
from shared.db import bucket_lock, lock_names


def item_lock(lic: str) -> str:
    """The name of a LIC's intake lock (`shared.db.lock_names`), the same wherever the intake
    takes it (receiving's are its own); bucketed: a batch holds a bounded number."""
    return bucket_lock("lotline.allocation.items", lic)


@dataclass(frozen=True, slots=True)
class HeldAdjustment:
    """An adjustment's (or quarantine's) command taken out of the hold, to be published now
    (`command`: its JSON, as encoded when it was held; `command_type`: its `type`)."""

    lic: str
    command_id: str
    command: bytes
    command_type: str = "AdjustStock"


class PgIntakeRepository:
    async def lock_items(self, conn: asyncpg.Connection, lics: Collection[str]) -> None:
        """Wait for, and take until the transaction ends, the lock of each LIC (granted at once
        when the consumer took it already: `item_locks`)."""
        await lock_names(conn, map(item_lock, lics))

    async def known(self, conn: asyncpg.Connection, lics: Collection[str]) -> set[str]:
        """Those of the LICs whose UpsertItem the intake has passed on, or that allocation
        knows (an item upserted on inventory.commands by lotline itself, or passed by an older
        process) and that have no adjustment held: a later adjustment never overtakes one."""
        rows = await conn.fetch(
            "SELECT lic FROM (SELECT lic FROM intake_items WHERE lic = ANY($1::text[])"
            "   UNION SELECT lic FROM items WHERE lic = ANY($1::text[])) AS k"
            " WHERE NOT EXISTS (SELECT 1 FROM held_adjustments h WHERE h.lic = k.lic)",
            sorted(set(lics)),
        )
        return {row["lic"] for row in rows}

    async def hold(
        self, conn: asyncpg.Connection, commands: Sequence[c.AdjustStock | c.QuarantineStock]
    ) -> None:
        """Hold these commands, in this order (a command held already stays as it was)."""
        if not commands:
            return
        await conn.execute(
            "INSERT INTO held_adjustments (command_id, lic, command, command_type)"
            " SELECT command_id, lic, command, command_type"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY"
            "   AS v(command_id, lic, command, command_type, n) ORDER BY n"
            " ON CONFLICT (command_id) DO NOTHING",
            [m.message_id for m in commands],
            [m.lic for m in commands],
            [encode(m).decode() for m in commands],
            [m.type for m in commands],
        )

    async def pass_items(
        self, conn: asyncpg.Connection, lics: Collection[str]
    ) -> list[HeldAdjustment]:
        """Record the LICs as passed on; take out and return the adjustments held for them, in
        the order held. The caller holds the LICs' locks."""
        if not lics:
            return []
        await conn.execute(
            "INSERT INTO intake_items (lic) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            sorted(set(lics)),
        )
        rows = await conn.fetch(
            "WITH taken AS (DELETE FROM held_adjustments WHERE lic = ANY($1::text[])"
            "   RETURNING id, lic, command_id, command, command_type)"
            " SELECT lic, command_id, command, command_type FROM taken ORDER BY id",
            sorted(set(lics)),
        )
        return [_held(row) for row in rows]

    async def expire(
        self, conn: asyncpg.Connection, wait_seconds: float, limit: int
    ) -> list[HeldAdjustment]:
        """Take out up to `limit` adjustments held longer than `wait_seconds`, in the order held.

        Only those of LICs whose lock this transaction gets without waiting: a LIC locked
        elsewhere is being held for or passed right now (its held adjustments go out there, or
        next round). Holding the lock to the end keeps another round, in this process or
        another, off the LIC's later rows until these are published first."""
        due = await conn.fetch(
            "SELECT lic FROM held_adjustments"
            " WHERE held_at <= now() - make_interval(secs => $1::float8)"
            " GROUP BY lic ORDER BY min(id) LIMIT $2",
            wait_seconds,
            limit,
        )
        if not due:
            return []
        lics = [row["lic"] for row in due]
        locked = await conn.fetch(
            "SELECT lic FROM unnest($1::text[], $2::text[]) AS v(lic, name)"
            " WHERE pg_try_advisory_xact_lock(hashtextextended(name, 0))",
            lics,
            [item_lock(lic) for lic in lics],
        )
        if not locked:
            return []
        # Per LIC, every row up to its last due one: `held_at` is when the holding transaction
        # began, so a row held later (a higher id) may be due before an earlier one.
        rows = await conn.fetch(
            "WITH due AS (SELECT lic, max(id) AS upto FROM held_adjustments"
            "   WHERE lic = ANY($1::text[])"
            "     AND held_at <= now() - make_interval(secs => $2::float8) GROUP BY lic),"
            " taken AS (DELETE FROM held_adjustments AS h WHERE h.id IN"
            "   (SELECT h2.id FROM held_adjustments AS h2 JOIN due ON due.lic = h2.lic"
            "     WHERE h2.id <= due.upto ORDER BY h2.id LIMIT $3 FOR UPDATE OF h2 SKIP LOCKED)"
            "   RETURNING h.id, h.lic, h.command_id, h.command, h.command_type)"
            " SELECT lic, command_id, command, command_type FROM taken ORDER BY id",
            [row["lic"] for row in locked],
            wait_seconds,
            limit,
        )
        return [_held(row) for row in rows]


def _held(row: asyncpg.Record) -> HeldAdjustment:
    return HeldAdjustment(
        row["lic"], row["command_id"], row["command"].encode(), row["command_type"]
    )
