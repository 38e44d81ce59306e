"""Receipts for items receiving does not know yet, through the real broker and PostgreSQL.

Upstream publishes a new item's `UpsertItem` on `inventory.items` and right after its first
`ShipmentReceived`; the item reaches receiving's read model three hops later (allocation intake,
allocation, `inventory.events`). Receiving holds such a receipt, publishing nothing, until the
item arrives (then checks it in full) or `LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS` pass (then refuses
`UNKNOWN_ITEM` what is still unknown). The services run in process, as `lotline up` runs them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.allocation.app import create_runtime as allocation
from services.receiving.app import MIGRATIONS, SCHEMA
from services.receiving.app import create_runtime as receiving
from services.receiving.repository import PgReceivingRepository, item_lock
from shared import db
from shared.config import Settings
from shared.contracts.codec import encode
from shared.contracts.events import ItemUpserted
from shared.contracts.upstream import ShipmentReceived
from shared.ids import derived_id
from shared.service import ServiceRuntime
from tests.fixtures.infra import (
    LotlineEnv,
    json_values,
    kafka_publish,
    kafka_publish_many,
    kafka_read_until,
)

FAST_JOIN = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}


@asynccontextmanager
async def running(
    lotline_env: Callable[..., LotlineEnv],
    *services: Callable[[Settings], ServiceRuntime],
    wait: float,
) -> AsyncIterator[tuple[LotlineEnv, list[ServiceRuntime]]]:
    env = lotline_env(**FAST_JOIN, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS=str(wait))
    runtimes = [create(env.settings) for create in services]
    try:
        for runtime in runtimes:
            await runtime.start()
        yield env, runtimes
    finally:
        for runtime in reversed(runtimes):
            await runtime.stop()


def receipt(run: str, doc: str, lic: str) -> bytes:
    return json.dumps(
        {
            "type": "ShipmentReceived",
            "message_id": f"rcv-{doc}-{run}",
            "shipment_id": doc,
            "office": "AI",
            "source": "purchase",
            "received_on": "2026-11-02",
            "lines": [{"line_no": 1, "lic": lic, "quantity": 2}],
        }
    ).encode()


def upsert_item(lic: str) -> bytes:
    body = {"type": "UpsertItem", "message_id": f"item-{lic}", "lic": lic, "est_unit_cost": "3"}
    return json.dumps(body).encode()


async def status_of(env: LotlineEnv, doc: str, within: float = 60) -> dict[str, Any]:
    """The first status published for `doc`."""

    def mine(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("shipment_id") == doc]

    topic = env.settings.topics.status
    records = await kafka_read_until(
        env.bootstrap, topic, lambda rs: bool(mine(rs)), timeout=within
    )
    return dict(mine(records)[0])


async def held_status(env: LotlineEnv, doc: str, until: str | None = None) -> str | None:
    """The held document's status (None: never held); with `until`, waits for that one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    conn = await asyncpg.connect(env.dsn)
    try:
        while True:
            status: str | None = await conn.fetchval(
                "SELECT status FROM receiving.held_receipts WHERE shipment_id = $1", doc
            )
            if until is None or status == until:
                return status
            assert loop.time() < deadline, f"{doc} is {status}, never {until}"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def test_a_receipt_published_before_its_new_item_is_posted_when_the_item_arrives(
    lotline_env: Any,
) -> None:
    async with running(lotline_env, allocation, receiving, wait=60) as (env, (_, runtime)):
        topics, run = env.settings.topics, uuid.uuid4().hex[:6]
        lic, doc = f"NEW-{run}", f"PO-1-{run}"

        await kafka_publish(env.bootstrap, topics.receipts, doc, receipt(run, doc, lic))
        await held_status(env, doc, until="held")
        assert await runtime.measure_waiting() > 0  # a held receipt is waiting
        await kafka_publish(env.bootstrap, topics.items, lic, upsert_item(lic))

        posted = await status_of(env, doc)
        assert posted["type"] == "ReceiptPosted", posted
        assert posted["lines"][0]["lot_id"] == f"{doc}/1"
        assert await held_status(env, doc) == "released"
        assert await runtime.measure_waiting() == 0

        # As upstream usually sends them: the new item, then at once its first receipt.
        lic, doc = f"NEWER-{run}", f"PO-2-{run}"
        await kafka_publish(env.bootstrap, topics.items, lic, upsert_item(lic))
        await kafka_publish(env.bootstrap, topics.receipts, doc, receipt(run, doc, lic))
        assert (await status_of(env, doc))["type"] == "ReceiptPosted"


async def test_a_receipt_whose_item_never_arrives_is_refused_after_the_wait(
    lotline_env: Any,
) -> None:
    async with running(lotline_env, receiving, wait=1) as (env, _):
        run = uuid.uuid4().hex[:6]
        lic, doc = f"NEVER-{run}", f"PO-3-{run}"
        loop = asyncio.get_running_loop()
        sent = loop.time()

        await kafka_publish(
            env.bootstrap, env.settings.topics.receipts, doc, receipt(run, doc, lic)
        )
        refused = await status_of(env, doc)

        assert loop.time() - sent >= 1.0
        assert refused["type"] == "ReceiptRejected"
        assert [(p["reason_code"], p["offending"]) for p in refused["problems"]] == [
            ("UNKNOWN_ITEM", lic)
        ]
        assert await held_status(env, doc) == "expired"


async def test_redelivered_receipt_and_item_events_settle_a_held_receipt_once(
    lotline_env: Any,
) -> None:
    """Receiving alone: allocation's ItemUpserted is published as its relay would, twice (at
    least once), then again for a later change of the item; the deadline passes after."""
    async with running(lotline_env, receiving, wait=3) as (env, _):
        topics, run = env.settings.topics, uuid.uuid4().hex[:6]
        lic, doc = f"TWICE-{run}", f"PO-4-{run}"
        document = receipt(run, doc, lic)
        await kafka_publish(env.bootstrap, topics.receipts, doc, document)
        await kafka_publish(env.bootstrap, topics.receipts, doc, document)
        await held_status(env, doc, until="held")

        def event(message_id: str, description: str) -> bytes:
            return encode(
                ItemUpserted(
                    message_id=message_id,
                    lic=lic,
                    command_id=f"item:item-{lic}",
                    description=description,
                    track_mfr_lot=False,
                    serialized=False,
                    perishable=False,
                    est_unit_cost=Decimal(3),
                )
            )

        headers = [("type", b"ItemUpserted")]
        for body in (event(f"{lic}#1", "new"), event(f"{lic}#1", "new"), event(f"{lic}#2", "x")):
            await kafka_publish(env.bootstrap, topics.events, lic, body, headers=headers)
        await held_status(env, doc, until="released")
        await asyncio.sleep(3.5)  # past the deadline, several rounds of the periodic job

        conn = await asyncpg.connect(env.dsn)
        try:  # everything receiving ever published (kept a while after it was sent)
            sent = await conn.fetch("SELECT topic, payload FROM receiving.outbox ORDER BY id")
            receipts = await conn.fetch("SELECT status FROM receiving.receipts")
        finally:
            await conn.close()
        assert [(r["topic"], json.loads(r["payload"])["type"]) for r in sent] == [
            (topics.commands, "ReceiveStock")
        ]
        assert [r["status"] for r in receipts] == ["posting"]  # no allocation here to answer
        assert await held_status(env, doc) == "released"


def invalid_receipt(run: str, doc: str, lic: str, version: str) -> bytes:
    """A newer version of `doc` that fails its schema (a negative quantity) but names its ids."""
    body = json.loads(receipt(run, doc, lic))
    body["message_id"] = f"rcv-{doc}-{run}-{version}"
    body["lines"][0]["quantity"] = -4
    return json.dumps(body).encode()


async def statuses_of(env: LotlineEnv, doc: str, n: int) -> list[dict[str, Any]]:
    """The first `n` statuses published for `doc`, in order (one partition: the key is `doc`)."""

    def mine(records: list[Any]) -> list[Any]:
        return [v for v in json_values(records) if v.get("shipment_id") == doc]

    topic = env.settings.topics.status
    records = await kafka_read_until(
        env.bootstrap, topic, lambda rs: len(mine(rs)) >= n, timeout=60
    )
    return [dict(v) for v in mine(records)]


async def test_an_invalid_newer_version_supersedes_a_held_receipt_before_its_refusal(
    lotline_env: Any,
) -> None:
    """The newer version fails its schema, so the consumer answers it (`refuse_receipts`) and no
    handler sees it: it supersedes the held one all the same, whose refusal goes first, once;
    the item arriving later posts nothing."""
    async with running(lotline_env, receiving, wait=60) as (env, _):
        topics, run = env.settings.topics, uuid.uuid4().hex[:6]
        lic = f"LATE-{run}"
        across, within = f"PO-5-{run}", f"PO-6-{run}"

        # Held in one batch, superseded by a later one.
        await kafka_publish(env.bootstrap, topics.receipts, across, receipt(run, across, lic))
        await held_status(env, across, until="held")
        newer = invalid_receipt(run, across, lic, "v2")
        await kafka_publish(env.bootstrap, topics.receipts, across, newer)
        await kafka_publish(env.bootstrap, topics.receipts, across, newer)  # at least once
        # Both versions back to back (one batch, or two).
        await kafka_publish_many(
            env.bootstrap,
            topics.receipts,
            [
                (within, receipt(run, within, lic)),
                (within, invalid_receipt(run, within, lic, "v2")),
            ],
        )

        for doc in (across, within):
            first, second = await statuses_of(env, doc, 2)
            assert (first["type"], second["type"]) == ("ReceiptRejected", "ReceiptRejected")
            assert [p["reason_code"] for p in first["problems"]] == ["UNKNOWN_ITEM"], first
            assert f"superseded by message rcv-{doc}-{run}-v2" in first["problems"][0]["reason"]
            assert first["message_id"] == derived_id(f"rcv-{doc}-{run}", "rejected")
            assert [p["reason_code"] for p in second["problems"]] == ["INVALID_QUANTITY"]
            assert second["message_id"] == derived_id(f"rcv-{doc}-{run}-v2", "rejected")
        assert await held_status(env, across) == "superseded"
        assert await held_status(env, within) in (None, "superseded")  # never held, or not long

        # The item arrives: nothing of either document is held to post.
        body = encode(
            ItemUpserted(
                message_id=f"{lic}#1",
                lic=lic,
                command_id=f"item:item-{lic}",
                description="new",
                track_mfr_lot=False,
                serialized=False,
                perishable=False,
                est_unit_cost=Decimal(3),
            )
        )
        await kafka_publish(
            env.bootstrap, topics.events, lic, body, headers=[("type", b"ItemUpserted")]
        )
        conn = await asyncpg.connect(env.dsn)
        try:  # the item stored (any release is in the same transaction), then all published
            for _ in range(1200):
                if await conn.fetchval("SELECT count(*) FROM receiving.items"):
                    break
                await asyncio.sleep(0.05)
            sent = await conn.fetch(
                "SELECT topic, payload FROM receiving.outbox WHERE topic <> $1 ORDER BY id",
                topics.dlq,
            )
        finally:
            await conn.close()
        assert [(r["topic"], json.loads(r["payload"])["type"]) for r in sent] == [
            (topics.status, "ReceiptRejected")
        ] * 4


async def test_the_locks_the_consumer_takes_for_receiving_are_the_ones_it_locks_with(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    """Receiving's routes declare the item locks their handlers may take (`Route.locks`): a
    receipt's unknown items' (a known item stays known: never locked, so a receipt of
    thousands of known items takes no lock) and an arriving item's. The consumer takes both
    topics' at once, before either handler runs, so two processes never each hold one and wait
    for the other's; for that they must be the very locks receiving waits for (`lock_items`)."""
    env = lotline_env(topics=False, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="30")
    await db.migrate(env.dsn, SCHEMA, db.migration_files(MIGRATIONS))
    routes = {route.topic: route for route in receiving(env.settings).routes}
    topics = env.settings.topics
    receipts_locks, events_locks = (routes[t].locks for t in (topics.receipts, topics.events))
    assert receipts_locks is not None and events_locks is not None
    document = json.loads(receipt("r", "DOC", "RECEIVED"))
    document["lines"].append({"line_no": 2, "lic": "KNOWN", "quantity": 1})
    arrival = ItemUpserted.model_validate(
        {
            "message_id": "m",
            "lic": "ARRIVED",
            "command_id": "c",
            "track_mfr_lot": False,
            "serialized": False,
            "perishable": False,
            "est_unit_cost": "1",
        }
    )
    first = await asyncpg.connect(env.dsn, server_settings={"search_path": SCHEMA})
    second = await asyncpg.connect(env.dsn, server_settings={"search_path": SCHEMA})
    try:
        await first.execute(
            "INSERT INTO items (lic, track_mfr_lot, serialized, perishable)"
            " VALUES ('KNOWN', false, false, false)"
        )
        async with first.transaction():
            declared = [
                *await receipts_locks(first, [ShipmentReceived.model_validate(document)]),
                *await events_locks(first, [arrival]),
            ]
            assert declared == [item_lock("RECEIVED"), item_lock("ARRIVED")]
            await db.lock_names(first, declared)
            for lic in ("RECEIVED", "ARRIVED"):
                async with second.transaction():
                    await second.execute("SET LOCAL lock_timeout = '200ms'")
                    with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                        await PgReceivingRepository().lock_items(second, [lic])
    finally:
        await first.close()
        await second.close()
