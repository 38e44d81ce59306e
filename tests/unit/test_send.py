"""`lotline send`: documents read from files, checked against the contract, routed by type."""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any

import pytest

from shared import cli, stack
from shared.contracts import topics
from shared.contracts.upstream import TOPIC_MESSAGES, UPSTREAM_ROUTES
from shared.send import DocumentError, Outcome, check, describe, read_documents, split_documents

ITEM = '{"type": "UpsertItem", "message_id": "m-1", "lic": "BOLT", "est_unit_cost": "0.10"}'
RECEIPT = json.dumps(
    {
        "type": "ShipmentReceived",
        "message_id": "m-2",
        "shipment_id": "PO-7",
        "office": "MAIN",
        "source": "purchase",
        "received_on": "2026-11-22",
        "lines": [{"line_no": 1, "lic": "BOLT", "quantity": 1.10, "unit_cost": "0.10"}],
    }
)


def test_every_upstream_document_type_routes_to_the_topic_that_reads_it() -> None:
    """DESIGN §4: each upstream type has one topic, the one whose schema accepts it, and its
    key is a field of that type."""
    seen = set()
    for topic, message in TOPIC_MESSAGES.items():
        union = typing.get_args(message)[0]
        models = typing.get_args(union) or (union,)
        for model in models:
            name = model.model_fields["type"].default
            routed_to, key_field = UPSTREAM_ROUTES[name]
            assert routed_to == topic, name
            assert key_field in model.model_fields, name
            seen.add(name)
    assert seen == set(UPSTREAM_ROUTES)
    assert set(TOPIC_MESSAGES) == {
        topics.RECEIPTS,
        topics.SHIPMENTS,
        topics.ITEMS,
        topics.ADJUSTMENTS,
        topics.COSTS,
    }


def test_documents_one_per_line_pretty_printed_or_in_an_array_are_all_read() -> None:
    pretty = json.dumps(json.loads(ITEM), indent=2)
    lines = f"{ITEM}\n\n{RECEIPT}\n"
    assert [w for w, _ in split_documents(lines, "a.jsonl")] == ["a.jsonl:1", "a.jsonl:3"]
    assert [w for w, _ in split_documents(f"{pretty}\n{pretty}", "b.json")] == [
        "b.json:1",
        "b.json:7",
    ]
    array = f"[\n {ITEM},\n {RECEIPT}\n]\n"
    assert [raw for _, raw in split_documents(array, "c.json")] == [ITEM, RECEIPT]


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (f"{ITEM}\n{{oops", "f:2", "not JSON"),
        (f"[{ITEM}, {ITEM}", "f:1", "not closed"),
        (f"[{ITEM}] {ITEM}", "f:1", "after the array"),
        (f"[{ITEM} {ITEM}]", "f:1", "expected ','"),
    ],
)
def test_text_that_is_not_json_documents_names_its_line(text: str, where: str, reason: str) -> None:
    with pytest.raises(DocumentError) as error:
        list(split_documents(text, "f"))
    assert error.value.where == where
    assert reason in error.value.reason


def test_a_document_goes_to_its_topic_with_its_key_byte_for_byte() -> None:
    receipt = check("f:1", RECEIPT)
    assert (receipt.topic, receipt.key, receipt.message_id) == (topics.RECEIPTS, "PO-7", "m-2")
    assert receipt.value == RECEIPT.encode()  # 1.1 as written, not re-rendered
    item = check("f:2", ITEM)
    assert (item.topic, item.key, item.command_id) == (topics.ITEMS, "BOLT", "item:m-1")
    assert receipt.answered_on_status and not item.answered_on_status


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"type": "ReceiptPosted", "message_id": "x"}', "'ReceiptPosted' is not an upstream"),
        ('{"message_id": "x"}', "None is not an upstream"),
        ('{"type": ["UpsertItem"]}', "['UpsertItem'] is not an upstream"),
        ('{"type": {}}', "{} is not an upstream"),
        ("[1]", "must be a JSON object"),
        (ITEM.replace('"BOLT"', '""'), 'lic: identifier is empty (offending: "")'),
        (RECEIPT.replace("1.1", "-3"), "lines[0].quantity: quantity must be greater than 0"),
        (ITEM.replace('"0.10"', "NaN"), "JSON constant NaN"),
    ],
)
def test_a_document_the_services_would_not_read_is_refused_with_the_reason(
    document: str, reason: str
) -> None:
    with pytest.raises(DocumentError) as error:
        check("f:4", document)
    assert error.value.where == "f:4"
    assert reason in error.value.reason


def test_one_bad_document_refuses_the_whole_input() -> None:
    bad = ITEM.replace('"BOLT"', '""')
    with pytest.raises(DocumentError) as error:
        read_documents([("a", ITEM), ("b", f"{RECEIPT}\n{bad}")])
    assert error.value.where == "b:2"
    with pytest.raises(DocumentError, match="no documents"):
        read_documents([("a", "\n  \n")])


def test_an_answer_shows_the_refusal_and_what_each_line_took() -> None:
    refused = Outcome(
        check("f:1", RECEIPT),
        answer={"type": "ReceiptRejected", "reason_code": "UNKNOWN_ITEM", "reason": "no BOLT"},
    )
    assert (
        refused.summary() == "f:1  ShipmentReceived PO-7  → ReceiptRejected UNKNOWN_ITEM: no BOLT"
    )
    moves = [
        {"lot_id": "PO-7/1", "mfr_lot": "B", "expires_on": "2027-01-01", "quantity": "4"},
        {"lot_id": "PO-7/2", "serial": "SN-9", "quantity": "1"},
    ]
    taken = Outcome(
        check("f:1", RECEIPT),
        answer={
            "type": "ReceiptPosted",
            "lines": [{"line_no": 1, "lic": "BOLT", "movements": moves}],
        },
    )
    assert taken.summary().splitlines()[1].strip() == (
        "line 1 BOLT: 4 of B (expires 2027-01-01) into lot PO-7/1, serial SN-9 into lot PO-7/2"
    )
    assert "→ no answer yet" in Outcome(check("f:1", RECEIPT)).summary()
    assert (
        Outcome(check("f:1", RECEIPT), dead_letter="reused")
        .summary()
        .endswith("→ dead-lettered: reused")
    )


def test_a_serial_shows_its_manufacturer_lot_and_an_adjustment_what_it_moved() -> None:
    moves = [
        {"lot_id": "PO-7/1", "mfr_lot": "LA", "expires_on": "2027-12-31", "serial": "S1"},
        {"lot_id": "PO-7/1", "serial": "S2", "quantity": "1"},
    ]
    posted = Outcome(
        check("f:1", RECEIPT),
        answer={
            "type": "ReceiptPosted",
            "lines": [{"line_no": 1, "lic": "VAX", "movements": moves}],
        },
    )
    assert posted.summary().splitlines()[1].strip() == (
        "line 1 VAX: serial S1 of LA (expires 2027-12-31) into lot PO-7/1,"
        " serial S2 into lot PO-7/1"
    )
    adjustment = json.dumps(
        {
            "type": "AdjustInventory",
            "message_id": "a-1",
            "adjustment_id": "ADJ-1",
            "lic": "RES",
            "office": "MAIN",
            "kind": "loss",
            "quantity": -2,
            "lots": [{"mfr_lot": "R-1", "quantity": 2}],
        }
    )
    adjusted = Outcome(
        check("f:2", adjustment),
        answer={
            "type": "InventoryAdjusted",
            "lic": "RES",
            "movements": [{"lot_id": "BB/1", "mfr_lot": "R-1", "quantity": "-2"}],
        },
    )
    assert adjusted.summary().splitlines() == [
        "f:2  AdjustInventory ADJ-1  → InventoryAdjusted",
        "      RES: -2 of R-1 from lot BB/1",
    ]


def test_a_document_not_sent_after_an_unanswered_one_says_so() -> None:
    skipped = Outcome(check("f:3", RECEIPT), sent=False)
    assert skipped.summary() == (
        "f:3  ShipmentReceived PO-7  → not sent (a document before it was not answered)"
    )


def test_lotline_send_refuses_a_bad_file_before_reaching_any_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # nothing listens there
    path = tmp_path / "docs.jsonl"
    path.write_text(f"{ITEM}\n{ITEM.replace('m-1', '')}\n")

    assert cli.main(["send", str(path)]) == 2

    err = capsys.readouterr().err
    assert f"{path}:2: message_id: identifier is empty" in err
    assert "nothing was sent" in err


def test_lotline_send_without_a_broker_or_a_running_stack_says_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(tmp_path))
    (tmp_path / stack.STACK_FILE).write_text(
        json.dumps({"pid": 2**22 + 12345, "kafka_bootstrap_servers": "127.0.0.1:9"})
    )  # a stack that is no longer running (no such process)
    path = tmp_path / "docs.jsonl"
    path.write_text(ITEM)

    assert cli.main(["send", str(path)]) == 2
    assert cli.main(["demo"]) == 2
    assert cli.main(["watch", "SO-1"]) == 2

    err = capsys.readouterr().err
    assert err.count("no `lotline up` is running") == 3
    assert "lotline watch: " in err
    assert "make up" in err


def test_lotline_send_check_reads_the_documents_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)  # no broker, no stack
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(tmp_path))
    path = tmp_path / "docs.json"
    path.write_text(f"[{ITEM}, {RECEIPT}, {ITEM}]")

    assert cli.main(["send", "--check", str(path)]) == 0

    assert capsys.readouterr().out == (
        "3 documents as the contract reads them (1 ShipmentReceived, 2 UpsertItem); none sent\n"
    )


def _status_record(settings: Any, answer: dict[str, Any]) -> Any:
    from aiokafka import ConsumerRecord

    value = json.dumps(answer).encode()
    return ConsumerRecord(settings.topics.status, 0, 0, 0, 0, b"S-1", value, None, 1, 1, [])


def test_a_status_answers_every_document_it_names_and_only_those() -> None:
    """One status may answer several documents (a request and its picks update allocated
    together): matched by the `answers` it lists, not by type alone (review, r4)."""
    from shared.config import Settings
    from shared.send import _Answers

    def shipment(message_type: str, message_id: str, **fields: Any) -> str:
        document = {"type": message_type, "message_id": message_id, "shipment_id": "S-1"}
        return json.dumps({**document, **fields})

    request = shipment(
        "ShipmentRequested",
        "r1",
        office="MAIN",
        kind="sale",
        customer="C",
        ship_on="2026-11-22",
        lines=[{"line_no": 1, "lic": "BOLT", "quantity": 1}],
    )
    picks = shipment(
        "ShipmentPicksUpdated", "p1", line_no=1, lots=[{"mfr_lot": "A", "quantity": 1}]
    )
    ship = shipment("ShipmentShipRequested", "s1")
    settings = Settings()
    reader = _Answers(settings, [check("f:1", request), check("f:2", picks), check("f:3", ship)])

    allocated = {"type": "ShipmentAllocated", "shipment_id": "S-1", "answers": ["r1", "p1"]}
    matched = reader._match(_status_record(settings, allocated))

    assert [o.document.message_id for o in matched] == ["r1", "p1"]
    assert [o.answer is not None for o in reader.outcomes] == [True, True, False]
    # Without `answers` (an older shipping), the first document waiting for that type.
    shipped = {"type": "ShipmentShipped", "shipment_id": "S-1"}
    assert [o.document.message_id for o in reader._match(_status_record(settings, shipped))] == [
        "s1"
    ]


def _sent_by_cli(
    monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: bytes = b""
) -> tuple[int, list[bytes]]:
    """`lotline send ARGS` with a broker configured but `send` captured: (status, the bytes
    each document would be published with)."""
    import io
    import sys

    import shared.send

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    # As Python reads a terminal's or a pipe's bytes under a POSIX locale.
    text_in = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    monkeypatch.setattr(sys, "stdin", text_in)
    published: list[bytes] = []

    async def capture(_settings: Any, documents: Any, **_kwargs: Any) -> list[Outcome]:
        published.extend(doc.value for doc in documents)
        return []

    monkeypatch.setattr(shared.send, "send", capture)
    return cli.main(["send", "--no-wait", *args]), published


@pytest.mark.parametrize("where", ["file", "stdin"])
@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        ((ITEM + "\n").encode() + b'{"type": "UpsertItem", "lic": "CAF\xe9"}\n', 2, "not UTF-8"),
        (("\ufeff" + ITEM).encode("utf-16-le"), 1, "UTF-16"),
    ],
)
def test_a_file_that_is_not_utf8_is_refused_naming_its_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    data: bytes,
    line: int,
    reason: str,
) -> None:
    """A Latin-1 export or a PowerShell (UTF-16) file: exit 2 naming the line, not a
    traceback, and nothing sent."""
    path = tmp_path / "docs.jsonl"
    path.write_bytes(data)
    args, stdin = ([str(path)], b"") if where == "file" else (["-"], data)

    code, published = _sent_by_cli(monkeypatch, args, stdin)

    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 2, err
    assert published == []
    name = str(path) if where == "file" else "stdin"
    assert f"{name}:{line}: " in err
    assert reason in err
    assert "nothing was sent" in err


def test_documents_are_published_byte_for_byte_as_the_file_holds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows line ends inside a pretty-printed document are kept, and a UTF-8 byte order mark
    (Notepad's) is not part of the first document."""
    pretty = json.dumps(json.loads(RECEIPT), indent=2).replace("\n", "\r\n").encode()
    path = tmp_path / "docs.json"
    path.write_bytes(b"\xef\xbb\xbf" + ITEM.encode() + b"\r\n" + pretty + b"\r\n")

    code, published = _sent_by_cli(monkeypatch, [str(path)])

    assert code == 0
    assert published == [ITEM.encode(), pretty]


@pytest.mark.parametrize("wait", [[], ["--no-wait"]])
def test_lotline_send_to_a_broker_that_does_not_answer_says_so_and_sends_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    wait: list[str],
) -> None:
    """A wrong KAFKA_BOOTSTRAP_SERVERS (or a stack gone): one line naming the broker, exit 1."""
    bootstrap = f"127.0.0.1:{stack.free_port()}"  # nothing listens there
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    path = tmp_path / "docs.jsonl"
    path.write_text(ITEM)

    code = cli.main(["send", *wait, str(path)])

    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code == 1
    assert f"lotline send: the broker at {bootstrap} does not answer" in captured.err
    assert "nothing was sent" in captured.err
    assert "→ sent" not in captured.out


@pytest.mark.parametrize("command", ["send", "demo"])
@pytest.mark.parametrize("seconds", ["-1", "nan", "inf"])
def test_a_wait_that_is_no_number_of_seconds_is_refused_as_usage(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    seconds: str,
) -> None:
    """`--wait -1` sent and then reported every document unanswered (exit 1); `--wait inf`
    waited forever for a redelivery that gets no answer."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{stack.free_port()}")
    path = tmp_path / "docs.jsonl"
    path.write_text(ITEM)
    files = [str(path)] if command == "send" else []

    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--wait", seconds, *files])

    assert exited.value.code == 2
    assert "--wait" in capsys.readouterr().err


def test_send_reaches_the_running_stack_on_its_own_topics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `lotline up` in LOTLINE_DATA_DIR created its topics without a prefix: a
    LOTLINE_TOPIC_PREFIX left in this terminal must not send to topics nobody reads."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOTLINE_TOPIC_PREFIX", "t1.")
    (tmp_path / stack.STACK_FILE).write_text(
        json.dumps(
            {
                "pid": os.getpid(),  # running
                "kafka_bootstrap_servers": "127.0.0.1:19092",
                "topic_prefix": "",
                "read_api": "http://127.0.0.1:18080",
            }
        )
    )

    reached = cli._stack_settings("send")

    assert reached is not None
    settings, api = reached
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert settings.topics.receipts == "inventory.receipts"
    assert api == "http://127.0.0.1:18080"


def test_an_adjustment_answer_says_which_way_stock_moved_and_flags_a_loss_that_adds() -> None:
    """R11 lets a count or loss add as well as remove: a loss sent without its minus sign adds
    stock, and the summary must not read like a removal."""
    adjustment = json.dumps(
        {
            "type": "AdjustInventory",
            "message_id": "m-9",
            "adjustment_id": "ADJ-9",
            "lic": "RES",
            "office": "AI",
            "kind": "loss",
            "quantity": 2,
            "lots": [{"mfr_lot": "R-1", "quantity": 2}],
        }
    )
    answer = {
        "type": "InventoryAdjusted",
        "lic": "RES",
        "kind": "loss",
        "quantity": "2",
        "movements": [{"lot_id": "PO-1/1", "mfr_lot": "R-1", "quantity": "2"}],
    }
    added = Outcome(check("f:4", adjustment), answer=answer).summary().splitlines()
    assert (
        added[-1] == "      stock change +2: added (a loss that adds: was the minus sign left out?)"
    )
    removed = Outcome(
        check("f:4", adjustment), answer=answer | {"quantity": "-2", "kind": "count"}
    ).summary()
    assert removed.splitlines()[-1] == "      stock change -2: removed"


def test_stock_in_no_lot_and_a_return_read_as_what_they_did() -> None:
    """A count adding beyond any lot says the units are in no lot (R12), not a bare number; a
    customer return's units go into their lot, and a sale's come from it."""
    counted = describe(
        {
            "type": "InventoryAdjusted",
            "lic": "GLV-100",
            "movements": [
                {"lot_id": "RCV-1/1", "quantity": "13"},
                {"lot_id": None, "quantity": "5"},
            ],
        }
    )
    assert counted.splitlines()[1].strip() == (
        "GLV-100: 13 into lot RCV-1/1, 5 in no lot (unallocated stock, R12)"
    )
    returned = describe(
        {
            "type": "ReceiptPosted",
            "lines": [
                {
                    "line_no": 1,
                    "lic": "VAN",
                    "movements": [{"lot_id": "RCV-102/1", "mfr_lot": "L-A", "quantity": "5"}],
                }
            ],
        }
    )
    assert returned.splitlines()[1].strip() == "line 1 VAN: 5 of L-A into lot RCV-102/1"
    sold = describe(
        {
            "type": "LineShipped",
            "lic": "VAN",
            "movements": [{"lot_id": "RCV-102/1", "mfr_lot": "L-A", "quantity": "5"}],
        }
    )
    assert sold.splitlines()[1].strip() == "VAN: 5 of L-A from lot RCV-102/1"
