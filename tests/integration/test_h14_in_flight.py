"""Work between the services when the memory-only broker stops.

A receipt and a sale whose commands went with the previous broker: when `lotline up` starts a
new one on that database, what the services' outboxes kept is sent again, so the receipt
resumes and is posted with nothing sent by anyone; the sale, whose outbox rows are gone (as
after the outbox's retention), is named with what can be done. And Ctrl-C lets a document in
flight finish before the services stop.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from shared import stack
from tests.fixtures.infra import LotlineEnv, json_values, kafka_publish, kafka_read_until
from tests.integration.test_h14_up_restart import RunningUp


def _json(message_type: str, /, **fields: Any) -> bytes:
    body = {"type": message_type, "occurred_at": "2026-11-01T10:00:00Z", **fields}
    return json.dumps(body).encode()


def _receipt(document: str, message_id: str) -> bytes:
    return _json(
        "ShipmentReceived",
        message_id=message_id,
        shipment_id=document,
        office="AI",
        source="purchase",
        received_on="2026-11-01",
        lines=[{"line_no": 1, "lic": "GIZMO", "quantity": 5, "unit_cost": "4"}],
    )


async def _until(dsn: str, sql: str, *args: Any, timeout: float = 120) -> None:
    """Until `sql` finds a row."""
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(dsn)
    try:
        while await conn.fetchval(sql, *args) is None:
            assert time.monotonic() < deadline, sql
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


SENT = (
    "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM receiving.outbox WHERE sent_at IS NULL)"
    " AND NOT EXISTS (SELECT 1 FROM shipping.outbox WHERE sent_at IS NULL)"
)
POSTING = "SELECT 1 FROM receiving.receipts WHERE shipment_id = $1 AND status = 'posting'"


async def _strand(env: LotlineEnv) -> None:
    """On a broker of its own, since stopped: receipt PO-1 and sale SO-1 sent to allocation
    while it was down, and so lost with that broker."""
    broker = stack.start_broker(log_path=env.data_dir / "previous-broker.log")
    settings = env.settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
    topics = settings.topics
    procs: dict[str, Any] = {}
    try:
        await stack.create_topics(settings)
        await stack.migrate_all(env.dsn)
        names = ["receiving", "shipping", "allocation"]
        started = stack.start_services(stack.stack_env(settings, env.env), names)
        procs = dict(zip(names, started, strict=True))
        item = _json(
            "UpsertItem",
            message_id="item-gizmo",
            lic="GIZMO",
            description="gizmo",
            uom="EA",
            est_unit_cost="4",
        )
        await kafka_publish(broker.bootstrap, topics.items, "GIZMO", item)
        for schema in ("receiving", "shipping"):  # both know it: nothing waits for it
            await _until(env.dsn, f"SELECT 1 FROM {schema}.items WHERE lic = 'GIZMO'")
        stack.stop_services([procs.pop("allocation")])

        await kafka_publish(broker.bootstrap, topics.receipts, "PO-1", _receipt("PO-1", "po-1"))
        sale = _json(
            "ShipmentRequested",
            message_id="so-1",
            shipment_id="SO-1",
            office="AI",
            kind="sale",
            customer="C1",
            ship_on="2026-11-02",
            lines=[{"line_no": 1, "lic": "GIZMO", "quantity": 1}],
        )
        await kafka_publish(broker.bootstrap, topics.shipments, "SO-1", sale)
        await _until(env.dsn, POSTING, "PO-1")
        await _until(env.dsn, "SELECT 1 FROM shipping.pending_commands WHERE shipment_id = 'SO-1'")
        await _until(env.dsn, SENT)  # their commands are in the broker, marked sent
    finally:
        stack.stop_services(list(procs.values()))
        broker.stop()


async def _posted(bootstrap: str, topic: str, document: str) -> None:
    def seen(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return any(
            v.get("type") == "ReceiptPosted" and v.get("shipment_id") == document
            for v in json_values(records)
        )

    await kafka_read_until(bootstrap, topic, seen, timeout=90)


async def test_work_stranded_by_the_previous_broker_is_named_and_in_flight_work_finishes(
    lotline_env: Callable[..., LotlineEnv],
) -> None:
    env = lotline_env(topics=False, LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS="1")
    await _strand(env)
    # The sale's command is no longer kept in shipping's outbox (sent over 10 minutes ago).
    conn = await asyncpg.connect(env.dsn)
    try:
        await conn.execute("DELETE FROM shipping.outbox")
    finally:
        await conn.close()
    # `lotline up` on that database, with an embedded broker of its own: a new one.
    environ = {k: v for k, v in env.env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}

    with RunningUp(environ) as up:
        up.wait_for("will be sent again: what was in flight resumes")
        # What upstream sent that no service read is not among them: the operator is told.
        up.wait_for("no service had read before the last stop went with the old broker")
        up.wait_for("lotline is up")
        up.wait_for("!!     1 being allocated: SO-1")
        assert "      1 document resumed and finished\n" in up.lines
        warning = [line for line in up.lines if line.startswith("!! ")]
        assert "went with that broker (memory only)" in warning[0]
        assert "PO-1" not in "".join(warning)  # it resumed
        running = stack.running_stack(env.data_dir)
        assert running is not None
        bootstrap = running["kafka_bootstrap_servers"]
        topics = env.settings.topics

        # The receipt's commands, sent again from receiving's outbox, were decided: posted.
        await _posted(bootstrap, topics.status, "PO-1")

        # Ctrl-C while a receipt waits for allocation: the stop waits for its answer.
        allocation = up.service("allocation")
        allocation.suspend()
        try:
            await kafka_publish(bootstrap, topics.receipts, "PO-2", _receipt("PO-2", "po-2"))
            await _until(env.dsn, POSTING, "PO-2")
            up.proc.send_signal(signal.SIGINT)
            up.wait_for("waiting up to 10 s for 1 document in flight to finish")
        finally:
            allocation.resume()
        code = up.proc.wait(120)

    assert code == 0, up.output + "".join(up.errors)
    assert "      all finished\n" in up.lines
    await _until(
        env.dsn, "SELECT 1 FROM receiving.receipts WHERE shipment_id = 'PO-2' AND status = 'posted'"
    )
