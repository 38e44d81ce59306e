"""The test infrastructure itself: a real broker, a real PostgreSQL, the contract's topics."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from shared.contracts import topics as contract
from tests.fixtures.infra import (
    Infra,
    LotlineEnv,
    json_values,
    kafka_publish,
    kafka_read_until,
)


async def test_broker_round_trips_a_message_and_postgres_answers(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env()
    marker = uuid.uuid4().hex
    value = f'{{"marker": "{marker}"}}'.encode()

    await kafka_publish(env.bootstrap, env.settings.topics.receipts, "doc-1", value)
    records = await kafka_read_until(
        env.bootstrap,
        env.settings.topics.receipts,
        lambda rs: any(r.value == value for r in rs),
        timeout=20,
    )

    (record,) = [r for r in records if r.value == value]
    assert record.key == b"doc-1"
    assert json_values([record]) == [{"marker": marker}]
    conn = await asyncpg.connect(env.dsn)
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select current_database()") == env.database
    finally:
        await conn.close()


async def test_ensure_topics_creates_every_contract_topic(
    infra: Infra, lotline_env: Callable[..., LotlineEnv]
) -> None:
    env = lotline_env()  # creates the topics under a fresh prefix
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap, **infra.kafka_options)
    await admin.start()
    try:
        names = [env.settings.topics.name(t) for t in contract.ALL]
        described = await admin.describe_topics(names)
    finally:
        await admin.close()

    partitions = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
    assert set(partitions) == set(names)
    assert partitions[env.settings.topics.commands] >= 8
    assert partitions[env.settings.topics.events] >= 8
    assert all(count >= 1 for count in partitions.values())


async def test_each_test_gets_its_own_database_and_topics(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    first, second = lotline_env(topics=False), lotline_env(topics=False)

    assert first.database != second.database
    assert first.topic_prefix != second.topic_prefix
    assert first.env["DATABASE_URL"] == first.dsn
    assert first.env["LOTLINE_TOPIC_PREFIX"] == first.topic_prefix
