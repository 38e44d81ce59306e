"""`lotline watch`: lotline's answers and decisions as they arrive, one summary each.

What an operator otherwise writes a Kafka consumer for: `inventory.status` (each document's
answer), `inventory.events` (allocation's decisions and refusals, item by item) and
`inventory.dlq` (what a service could not take), printed as `lotline send` prints an answer
(`send.describe`). From the topics' ends, or with `from_beginning` from the first message the
broker still holds (the embedded broker keeps messages in memory while it runs): with `ids`,
only the messages that name one of them (a document, shipment, item, command or message id),
which answers "what became of SO-5002?". A dead letter names what its original document
names (its bytes, when they are a JSON object) and what its headers name.

A broker gone is not seen in what the consumer reads (aiokafka retries on its own, and a poll
returns nothing, as when nothing happens): after PROBE_SECONDS without a record `watch` asks
the broker for its metadata, and says in one line when it stops answering and when it answers
again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaError

from shared.config import Settings
from shared.send import BrokerError, answer_consumer, assign_answer_topics, describe

# The fields of an answer, an event or an upstream document that name what it is about.
NAMING_FIELDS = (
    "shipment_id",
    "lic",
    "message_id",
    "command_id",
    "adjustment_id",
    "quarantine_id",
    "po",
    "lot_id",
)
# `--json` shows a dead letter's value whole up to this size; beyond (a megabyte payload is
# expected hostile input), its start, with its size.
MAX_VALUE_BYTES = 64 * 1024
# After this long without a record the broker is asked whether it still answers (a metadata
# request), waiting this long at most for its answer: a few requests a minute while idle.
PROBE_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Seen:
    """One message, as `watch` shows it."""

    topic: str  # the contract's name: status, events or dlq
    key: str
    text: str  # `describe` of the answer, or why a record was dead-lettered
    message: dict[str, Any] | None  # the JSON, None for a dead letter
    headers: Mapping[str, str] = field(default_factory=dict)  # a dead letter's
    value: bytes | None = None  # a dead letter's bytes, as the service received them

    def summary(self) -> str:
        return f"{self.topic:<6} {self.key}  {self.text}"

    def original(self) -> dict[str, Any] | None:
        """A dead letter's original document, when its bytes are a JSON object (read leniently:
        a document dead-lettered for a duplicate key or a NaN still names its ids)."""
        if self.value is None:
            return None
        try:
            document = json.loads(self.value)
        except (ValueError, RecursionError):
            return None
        return document if isinstance(document, dict) else None

    def as_json(self) -> dict[str, Any]:
        """The message whole: an answer or event as its JSON; a dead letter with its headers and
        its value (text when UTF-8, else base64; clipped past MAX_VALUE_BYTES, size stated)."""
        line: dict[str, Any] = {"topic": self.topic, "key": self.key}
        if self.message is not None:
            return line | {"message": self.message}
        line["text"] = self.text
        if self.value is None:
            return line
        return line | {"headers": dict(self.headers), **_value_json(self.value)}


def _value_json(value: bytes) -> dict[str, Any]:
    shown = value[:MAX_VALUE_BYTES]
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        found: dict[str, Any] = {"value_base64": base64.b64encode(shown).decode("ascii")}
    else:  # the cut may split a character: only that one is dropped
        found = {"value": shown.decode("utf-8", errors="ignore")}
    found["value_bytes"] = len(value)
    if len(shown) < len(value):
        found["value_clipped"] = True
    return found


def seen(record: ConsumerRecord[bytes, bytes], settings: Settings) -> Seen:
    """A record of one of the watched topics, summarized (never raises on odd bytes)."""
    topics = settings.topics
    key = (record.key or b"").decode(errors="replace")
    if record.topic == topics.dlq:
        # Kafka allows a header without a value (aiokafka: None).
        headers = {k: (v or b"").decode(errors="replace") for k, v in record.headers}
        source = headers.get("source_topic", "?").removeprefix(topics.prefix)
        error = headers.get("error") or "(no error header)"
        text = f"dead-lettered from {source}: {error}"
        return Seen("dlq", key, text, None, headers, record.value or b"")
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
    answers (a status lists the message ids it answers); a dead letter's original document's
    naming fields and its headers naming them (`message_id`, `original_message_id` …)."""
    if item.key in ids:
        return True
    message = item.message or item.original() or {}
    if any(str(message.get(f)) in ids for f in NAMING_FIELDS if message.get(f) is not None):
        return True
    if any(
        value in ids
        for header, value in item.headers.items()
        if header.removeprefix("original_") in NAMING_FIELDS
    ):
        return True
    answers = message.get("answers")
    return isinstance(answers, list) and any(str(a) in ids for a in answers)


class _Metadata(Protocol):
    async def topics(self) -> set[str]: ...


async def broker_answers(client: _Metadata) -> bool:
    """Whether the broker answers a metadata request within PROBE_TIMEOUT_SECONDS (a broker
    paused or behind a dropped network keeps the connection open and never answers)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await client.topics()
    except (KafkaError, OSError, TimeoutError):
        return False
    return True


@dataclass
class BrokerState:
    """Whether the broker at `bootstrap` answers, as `watch` tells it: one line when it stops
    answering, one when it answers again. A record read is its answer; after PROBE_SECONDS
    without one, it is asked (`broker_answers`), then again every PROBE_SECONDS."""

    bootstrap: str
    clock: Callable[[], float] = time.monotonic
    answering: bool = True
    _quiet_since: float = field(init=False)  # the last record, or the last question

    def __post_init__(self) -> None:
        self._quiet_since = self.clock()

    async def after_poll(self, client: _Metadata, heard: bool) -> str | None:
        """After a poll (`heard`: it brought records): the line to print, if any."""
        if not heard:
            if self.clock() - self._quiet_since < PROBE_SECONDS:
                return None
            heard = await broker_answers(client)
        self._quiet_since = self.clock()
        if heard == self.answering:
            return None
        self.answering = heard
        if heard:
            return f"the broker at {self.bootstrap} answers again"
        return f"the broker at {self.bootstrap} does not answer; still trying"


async def watch(
    settings: Settings,
    out: TextIO,
    *,
    from_beginning: bool = False,
    ids: Collection[str] = (),
    as_json: bool = False,
    until: Callable[[int], bool] = lambda _: False,
    notes: TextIO | None = None,
) -> int:
    """Print each message of the watched topics as it arrives; returns how many were shown
    once `until(shown)` says so (the command runs until interrupted). `notes`: where to say
    that the broker stopped answering, and that it answers again. BrokerError when the broker
    does not answer at the start."""
    consumer = answer_consumer(settings)
    broker = BrokerState(settings.require_bootstrap())
    shown = 0
    try:
        try:
            await consumer.start()
        except KafkaConnectionError as exc:
            raise BrokerError(f"the broker at {broker.bootstrap} does not answer: {exc}") from None
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
            note = await broker.after_poll(consumer, heard=bool(records))
            if note is not None and notes is not None:
                print(f"lotline watch: {note}", file=notes, flush=True)
            for record in records:
                item = seen(record, settings)
                if ids and not names(item, ids):
                    continue
                if as_json:
                    print(json.dumps(item.as_json(), ensure_ascii=False), file=out, flush=True)
                else:
                    print(item.summary(), file=out, flush=True)
                shown += 1
    finally:
        await consumer.stop()
    return shown
