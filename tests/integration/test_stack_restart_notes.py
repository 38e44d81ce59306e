"""`lotline up` on a database a previous run used (shared/stack.py): the services' kept outbox
rows follow a changed LOTLINE_TOPIC_PREFIX, and a new memory-only broker's start knows the
previous one held positions (so it can say what went with it); on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from shared import stack
from shared.contracts.topics import Topics
from tests.fixtures.infra import LotlineEnv


async def test_outbox_rows_of_another_prefix_go_to_this_prefixs_topics(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """Restarted with LOTLINE_TOPIC_PREFIX=prod2. on the database of a run with old., the rows
    kept for old.inventory.* (sent or not) go to prod2.inventory.*, the same topic; rows of
    this prefix and of a topic that is none of the contract's stay as they are."""
    env = lotline_env(topics=False)
    schemas = list(await stack.migrate_all(env.dsn))
    rows = [
        ("old.inventory.commands", None),
        ("old.inventory.commands", "now()"),
        ("old.inventory.status", None),
        ("prod2.inventory.events", None),
        ("someone.elses", None),
    ]
    conn = await asyncpg.connect(env.dsn)
    try:
        for topic, sent in rows:
            await conn.execute(
                "INSERT INTO receiving.outbox (topic, key, payload, sent_at)"
                f" VALUES ($1, 'k', 'v', {sent or 'NULL'})",
                topic,
            )

        moved = await stack.retopic_outboxes(env.dsn, schemas, Topics("prod2."))
        topics = [
            r["topic"] for r in await conn.fetch("SELECT topic FROM receiving.outbox ORDER BY id")
        ]
        again = await stack.retopic_outboxes(env.dsn, schemas, Topics("prod2."))
    finally:
        await conn.close()

    assert moved == {
        "old.inventory.commands": "prod2.inventory.commands",
        "old.inventory.status": "prod2.inventory.status",
    }
    assert topics == [
        "prod2.inventory.commands",
        "prod2.inventory.commands",
        "prod2.inventory.status",
        "prod2.inventory.events",
        "someone.elses",
    ]
    assert again == {}


async def test_forgetting_positions_counts_those_a_previous_broker_left(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """A first start has no positions to forget (nothing went with a previous broker); a
    restart forgets those stored, once."""
    env = lotline_env(topics=False)
    schemas = list(await stack.migrate_all(env.dsn))
    assert await stack.forget_consumed_offsets(env.dsn, schemas) == 0
    conn = await asyncpg.connect(env.dsn)
    try:
        await conn.execute(
            "INSERT INTO ledger.consumer_offsets (consumer, topic, partition, next_offset)"
            " VALUES ('ledger-events', 'inventory.events', 0, 42),"
            " ('ledger-events', 'inventory.events', 1, NULL)"
        )
        assert await stack.forget_consumed_offsets(env.dsn, schemas) == 1
        assert await conn.fetchval("SELECT count(next_offset) FROM ledger.consumer_offsets") == 0
    finally:
        await conn.close()
    assert await stack.forget_consumed_offsets(env.dsn, schemas) == 0
