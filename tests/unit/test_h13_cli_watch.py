"""`lotline watch`: a dead letter is found by what its document and headers name and shown
whole with --json; a broker that stops answering is said once, and once when it is back; a
broker absent at the start is one line, not a traceback nor aiokafka's logs."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord

import shared.watch
from shared import cli, stack
from shared.config import Settings
from shared.watch import BrokerState, names, seen

SETTINGS = Settings()
DOCUMENT = {
    "type": "ShipmentRequested",
    "message_id": "up-7",
    "shipment_id": "SO-5002",
    "lines": [{"line_no": 1, "lic": "YOG", "quantity": 0}],
}


def _dead_letter(
    value: bytes, headers: list[tuple[str, bytes | None]] | None = None, key: bytes = b"K-1"
) -> Any:
    headers = headers if headers is not None else [("error", b"lines[0].quantity: > 0")]
    return ConsumerRecord(SETTINGS.topics.dlq, 0, 5, 0, 0, key, value, None, 1, 1, headers)


def test_a_dead_letter_is_named_by_its_documents_ids_and_its_headers() -> None:
    """Its record key is the document's as received (maybe none): the message_id the sender
    chose is in the bytes, or in the original record's headers."""
    from_value = seen(_dead_letter(json.dumps(DOCUMENT).encode(), key=b""), SETTINGS)
    assert names(from_value, {"up-7"})
    assert names(from_value, {"SO-5002"})
    assert not names(from_value, {"YOG", "up-8"})  # a line's LIC is not the document's

    # Bytes that are no document (dead-lettered for it): the headers still name it.
    headers: list[tuple[str, bytes | None]] = [
        ("error", b"not JSON"),
        ("original_message_id", b"up-9"),
        ("original_trace", None),
    ]
    from_headers = seen(_dead_letter(b"{not json", headers, key=b""), SETTINGS)
    assert names(from_headers, {"up-9"})
    assert not names(from_headers, {"not JSON"})
    nested = seen(_dead_letter(b"[" * 100_000, key=b""), SETTINGS)  # deeper than json reads
    assert not names(nested, {"up-7"})


def test_json_shows_a_dead_letter_with_its_headers_and_value() -> None:
    value = json.dumps(DOCUMENT).encode()
    shown = seen(_dead_letter(value), SETTINGS).as_json()

    assert shown["headers"] == {"error": "lines[0].quantity: > 0"}
    assert json.loads(shown["value"]) == DOCUMENT
    assert shown["value_bytes"] == len(value)
    assert "value_clipped" not in shown
    assert shown["text"].startswith("dead-lettered from ?: lines[0].quantity")

    latin1 = seen(_dead_letter(b'{"lic": "CAF\xe9"}'), SETTINGS).as_json()
    assert "value" not in latin1
    assert base64.b64decode(latin1["value_base64"]) == b'{"lic": "CAF\xe9"}'


def test_json_clips_a_very_large_dead_letter_and_states_its_size() -> None:
    big = ("é" * shared.watch.MAX_VALUE_BYTES).encode()  # two bytes a character
    shown = seen(_dead_letter(big), SETTINGS).as_json()

    assert shown["value_bytes"] == len(big)
    assert shown["value_clipped"] is True
    assert shown["value"] == "é" * (shared.watch.MAX_VALUE_BYTES // 2)
    line = json.dumps(shown, ensure_ascii=False)
    assert len(line.encode()) < shared.watch.MAX_VALUE_BYTES + 1000


class _Broker:
    """A client whose metadata request the broker answers, or not; counts the requests."""

    def __init__(self) -> None:
        self.up = True
        self.asked = 0

    async def topics(self) -> set[str]:
        from aiokafka.errors import KafkaConnectionError

        self.asked += 1
        if not self.up:
            raise KafkaConnectionError("Unable to get cluster metadata")
        return {"inventory.status"}


async def test_a_broker_that_stops_answering_is_said_once_and_once_when_it_is_back() -> None:
    """Asked only after PROBE_SECONDS without a record (a record is its answer), then every
    PROBE_SECONDS: no request per poll."""
    now = [0.0]
    broker = _Broker()
    state = BrokerState("127.0.0.1:9092", clock=lambda: now[0])
    quiet = shared.watch.PROBE_SECONDS

    async def poll(seconds: float, heard: bool = False) -> str | None:
        now[0] += seconds
        return await state.after_poll(broker, heard)

    assert await poll(1.0) is None and broker.asked == 0
    assert await poll(quiet) is None and broker.asked == 1  # quiet: asked, it answers
    broker.up = False
    assert await poll(1.0) is None and broker.asked == 1
    assert await poll(quiet) == "the broker at 127.0.0.1:9092 does not answer; still trying"
    notes = [await poll(quiet) for _ in range(3)]  # asked again, not said again
    assert notes == [None, None, None] and broker.asked == 5
    broker.up = True
    assert await poll(quiet) == "the broker at 127.0.0.1:9092 answers again"
    assert await poll(0.2, heard=True) is None and broker.asked == 6


async def test_a_record_read_says_the_broker_answers_again() -> None:
    broker = _Broker()
    broker.up = False
    now = [0.0]
    state = BrokerState("b:1", clock=lambda: now[0])
    now[0] += shared.watch.PROBE_SECONDS
    gone = await state.after_poll(broker, False)
    assert gone == "the broker at b:1 does not answer; still trying"
    assert await state.after_poll(broker, True) == "the broker at b:1 answers again"


def test_watch_without_a_broker_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traceback, and none of aiokafka's own log lines (it logs every retry)."""
    bootstrap = f"127.0.0.1:{stack.free_port()}"  # nothing listens there
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(tmp_path))

    assert cli.main(["watch", "SO-1"]) == 1

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lotline watch: the broker at {bootstrap} does not answer: ")


def test_send_to_no_broker_prints_none_of_aiokafkas_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = f"127.0.0.1:{stack.free_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    path = tmp_path / "docs.jsonl"
    path.write_text('{"type": "UpsertItem", "message_id": "m-1", "lic": "BOLT"}')

    assert cli.main(["send", str(path)]) == 1

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"lotline send: the broker at {bootstrap} does not answer: ")
