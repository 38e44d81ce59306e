"""`lotline watch` against a real broker: what lotline answered and decided, as it arrives or
from the beginning, one summary each, and only what names the ids asked for."""

from __future__ import annotations

import io
import json
from typing import Any

from shared.kafka import make_producer
from shared.watch import watch
from tests.fixtures.infra import LotlineEnv

FAILED = {
    "type": "ShipmentAllocationFailed",
    "message_id": "st-1",
    "shipment_id": "SO-5002",
    "answers": ["up-7"],
    "reason_code": "INSUFFICIENT_STOCK",
    "reason": "YOG at MAIN: requested 60, available 52",
    "allocated_lines": [
        {
            "line_no": 2,
            "lic": "PUMP",
            "quantity": "1",
            "movements": [{"lot_id": "PO-1/1", "serial": "PX-0002", "quantity": "1"}],
        }
    ],
}
ALLOCATED = {
    "type": "LineAllocated",
    "message_id": "ev-1",
    "lic": "PUMP",
    "command_id": "cmd-9",
    "shipment_id": "SO-7",
    "line_no": 1,
    "movements": [{"lot_id": "PO-1/1", "serial": "PX-0003", "quantity": "1"}],
}

END = {"type": "ShipmentCancelled", "message_id": "st-9", "shipment_id": "END"}


async def _publish(env: LotlineEnv) -> None:
    topics = env.settings.topics
    producer = make_producer(env.settings)
    await producer.start()
    try:
        await producer.send_and_wait(topics.status, json.dumps(FAILED).encode(), key=b"SO-5002")
        await producer.send_and_wait(topics.events, json.dumps(ALLOCATED).encode(), key=b"PUMP")
        await producer.send_and_wait(
            topics.dlq,
            b"{not json",
            key=b"SO-5003",
            headers=[
                ("error", b"not JSON: Expecting property name"),
                ("source_topic", topics.shipments.encode()),
            ],
        )
        # Last, naming END: a watch asked for END as well stops on it, having read the rest.
        await producer.send_and_wait(topics.status, json.dumps(END).encode(), key=b"END")
    finally:
        await producer.stop()


async def test_watch_from_the_beginning_summarizes_answers_decisions_and_dead_letters(
    lotline_env: Any,
) -> None:
    env: LotlineEnv = lotline_env()
    await _publish(env)
    out = io.StringIO()

    shown = await watch(env.settings, out, from_beginning=True, until=lambda n: n >= 4)

    assert shown == 4
    text = out.getvalue()
    assert "status SO-5002  ShipmentAllocationFailed INSUFFICIENT_STOCK: YOG at MAIN" in text
    # what the refusal left standing: the serial still reserved
    assert "still allocated: line 2 PUMP quantity 1: serial PX-0002 from lot PO-1/1" in text
    assert "events PUMP  LineAllocated" in text and "serial PX-0003 from lot PO-1/1" in text
    assert "dlq    SO-5003  dead-lettered from inventory.shipments: not JSON: Expecting" in text


async def test_watch_with_ids_shows_only_the_messages_naming_them(lotline_env: Any) -> None:
    """An id matches a key, a naming field (here the command id) or a document a status
    answers (its upstream message id); the others are read and not shown."""
    env: LotlineEnv = lotline_env()
    await _publish(env)

    for asked, expected in (("up-7", "SO-5002"), ("cmd-9", "PUMP"), ("SO-5003", "SO-5003")):
        out = io.StringIO()
        await watch(
            env.settings,
            out,
            from_beginning=True,
            ids=[asked, "END"],
            as_json=True,
            until=lambda n: n >= 2,  # the match, then END (published last)
        )
        keys = [json.loads(line)["key"] for line in out.getvalue().splitlines()]
        assert keys == [expected, "END"], asked


async def test_watch_finds_a_dead_letter_by_the_ids_its_document_names_and_shows_it_whole(
    lotline_env: Any,
) -> None:
    """A dead letter's record key is the document's as received: the message_id its sender
    chose is in the dead-lettered bytes (a JSON object) or the original record's headers.
    `--json` shows its headers and value, as the README promises."""
    env: LotlineEnv = lotline_env()
    topics = env.settings.topics
    document = {
        "type": "ShipmentRequested",
        "message_id": "up-42",
        "shipment_id": "SO-42",
        "lines": [{"line_no": 1, "lic": "YOG", "quantity": 0}],
    }
    headers = [
        ("error", b"lines[0].quantity: quantity must be greater than 0"),
        ("source_topic", topics.shipments.encode()),
    ]
    producer = make_producer(env.settings)
    await producer.start()
    try:
        value = json.dumps(document).encode()
        await producer.send_and_wait(topics.dlq, value, key=None, headers=headers)
        await producer.send_and_wait(
            topics.dlq,
            b"\xff not a document",
            key=None,
            headers=[*headers, ("original_message_id", b"up-43")],
        )
        await producer.send_and_wait(topics.status, json.dumps(END).encode(), key=b"END")
    finally:
        await producer.stop()

    out = io.StringIO()
    await watch(
        env.settings,
        out,
        from_beginning=True,
        ids=["up-42", "up-43", "END"],
        as_json=True,
        until=lambda n: n >= 3,
    )

    first, second, end = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["topic"] == "dlq"
    assert json.loads(first["value"]) == document
    assert first["headers"] == {k: v.decode() for k, v in headers}
    assert first["value_bytes"] == len(value)
    assert second["headers"]["original_message_id"] == "up-43"
    assert second["value_base64"] and "value" not in second
    assert end["key"] == "END"
