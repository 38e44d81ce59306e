"""`lotline watch`: lotline's answers and decisions as they arrive, one summary each.

What an operator otherwise writes a Kafka consumer for: `inventory.status` (each document's
answer), `inventory.events` (allocation's decisions and refusals, item by item) and
`inventory.dlq` (what a service could not take), printed as `lotline send` prints an answer
(`send.describe`). From the topics' ends, or with `from_beginning` from the first message the
broker still holds (the embedded broker keeps messages in memory while it runs): with `ids`,
only the messages that name one of them (a document, shipment, item, command or message id),
which answers "what became of SO-5002?".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TextIO

from aiokafka import ConsumerRecord

from shared.config import Settings
from shared.send import answer_consumer, assign_answer_topics, describe

# The fields of an answer or event that name what it is about.
NAMING_FIELDS = ("shipment_id", "lic", "message_id", "command_id", "adjustment_id", "lot_id")


@dataclass(frozen=True)
class Seen:
    """One message, as `watch` shows it."""

    topic: str  # the contract's name: status, events or dlq
    key: str
    text: str  # `describe` of the answer, or why a record was dead-lettered
    message: dict[str, Any] | None  # the JSON, None for a dead letter

    def summary(self) -> str:
        return f"{self.topic:<6} {self.key}  {self.text}"


def seen(record: ConsumerRecord[bytes, bytes], settings: Settings) -> Seen:
    """A record of one of the watched topics, summarized (never raises on odd bytes)."""
    topics = settings.topics
    key = (record.key or b"").decode(errors="replace")
    if record.topic == topics.dlq:
        headers = {k: v.decode(errors="replace") for k, v in record.headers}
        source = headers.get("source_topic", "?").removeprefix(topics.prefix)
        error = headers.get("error") or "(no error header)"
        return Seen("dlq", key, f"dead-lettered from {source}: {error}", None)
    name = "status" if record.topic == topics.status else "events"
    try:
        message = json.loads(record.value or b"")
    except ValueError:
        message = None
    if not isinstance(message, dict):
        return Seen(name, key, "(not a JSON object)", None)
    return Seen(name, key, describe(message), message)


def names(item: Seen, ids: Collection[str]) -> bool:
    """Whether the message is about one of `ids`: its key, a naming field, or a document it
    answers (a status lists the message ids it answers)."""
    if item.key in ids:
        return True
    message = item.message or {}
    if any(str(message.get(f)) in ids for f in NAMING_FIELDS if message.get(f) is not None):
        return True
    answers = message.get("answers")
    return isinstance(answers, list) and any(str(a) in ids for a in answers)


async def watch(
    settings: Settings,
    out: TextIO,
    *,
    from_beginning: bool = False,
    ids: Collection[str] = (),
    as_json: bool = False,
    until: Callable[[int], bool] = lambda _: False,
) -> int:
    """Print each message of the watched topics as it arrives; returns how many were shown
    once `until(shown)` says so (the command runs until interrupted)."""
    consumer = answer_consumer(settings)
    shown = 0
    try:
        await consumer.start()
        partitions = await assign_answer_topics(consumer, settings)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        while not until(shown):
            batches = await consumer.getmany(timeout_ms=200)
            # Partitions of one topic interleave by time, roughly as they were published.
            records = sorted(
                (r for rs in batches.values() for r in rs), key=lambda r: (r.timestamp, r.offset)
            )
            for record in records:
                item = seen(record, settings)
                if ids and not names(item, ids):
                    continue
                if as_json:
                    line: dict[str, Any] = {"topic": item.topic, "key": item.key}
                    line["message" if item.message is not None else "text"] = (
                        item.message if item.message is not None else item.text
                    )
                    print(json.dumps(line, ensure_ascii=False), file=out, flush=True)
                else:
                    print(item.summary(), file=out, flush=True)
                shown += 1
    finally:
        await consumer.stop()
    return shown
