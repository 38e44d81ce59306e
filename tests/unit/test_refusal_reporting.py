"""Business refusals put in the outbox are counted (`lotline_refusals_total`) and logged once
(`refusal`), only after their unit of work committed; dead-letter log lines name the record's
key and message id without trusting its bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from prometheus_client import REGISTRY

import shared.outbox as outbox_module
from shared.consumer import UnitOfWork
from shared.contracts.events import CommandRejected, ItemUpserted
from shared.contracts.reasons import ReasonCode
from shared.contracts.status import (
    LineProblem,
    ReceiptPosted,
    ReceiptRejected,
    ShipmentCancelledStatus,
    ShipmentShipRefused,
)
from shared.outbox import Outbox


class Logged:
    """Stands in for a module's structlog logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))

        return record

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for _, event, fields in self.lines if event == name]


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[Logged]:
    fake = Logged()
    monkeypatch.setattr(outbox_module, "log", fake)
    yield fake


def refusals(service: str, kind: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "lotline_refusals_total", {"service": service, "type": kind, "reason_code": code}
    )
    return value or 0.0


def _rejected(message_id: str = "c1/rejected", offending: str | None = "-1") -> CommandRejected:
    return CommandRejected(
        message_id=message_id,
        lic="LIC-1",
        command_id="c1",
        command_type="AdjustStock",
        adjustment_id="ADJ-7",
        reason_code=ReasonCode.INVALID_QUANTITY,
        reason="quantity must be positive",
        offending=offending,
    )


def test_a_refusal_is_counted_and_logged_once_only_when_committed(logged: Logged) -> None:
    before = refusals("unit-a", "CommandRejected", "INVALID_QUANTITY")
    outbox = Outbox(service="unit-a")
    outbox.emit("events", "LIC-1", _rejected())
    outbox.emit(
        "events",
        "LIC-1",
        ItemUpserted(  # not a refusal: neither counted nor logged
            message_id="i1",
            lic="LIC-1",
            command_id="c0",
            track_mfr_lot=False,
            serialized=False,
            perishable=False,
            est_unit_cost="1",
        ),
    )
    # Emitted, not committed: nothing yet (a unit rolled back never gets further than this).
    assert refusals("unit-a", "CommandRejected", "INVALID_QUANTITY") == before
    assert logged.events("refusal") == []

    outbox.report_refusals()
    outbox.report_refusals()  # several units of work share one outbox: still once
    assert refusals("unit-a", "CommandRejected", "INVALID_QUANTITY") == before + 1
    (line,) = logged.events("refusal")
    assert line == {
        "service": "unit-a",
        "type": "CommandRejected",
        "message_id": "c1/rejected",
        "reason_code": "INVALID_QUANTITY",
        "reason": "quantity must be positive",
        "offending": "-1",
        "command_id": "c1",  # the command it decides: back to what upstream sent
        "adjustment_id": "ADJ-7",
        "lic": "LIC-1",
    }
    assert [level for level, event, _ in logged.lines if event == "refusal"] == ["info"]


def test_an_outbox_left_uncommitted_counts_nothing(logged: Logged) -> None:
    before = refusals("unit-b", "CommandRejected", "INVALID_QUANTITY")
    outbox = Outbox(service="unit-b")
    outbox.emit("events", "LIC-1", _rejected())
    del outbox  # the transaction rolled back: the unit's outbox is dropped
    assert refusals("unit-b", "CommandRejected", "INVALID_QUANTITY") == before
    assert logged.events("refusal") == []


def test_a_unit_of_works_after_commit_hooks_report_its_outbox(logged: Logged) -> None:
    """What `ServiceRuntime.every` and the consumer run after a commit, and only then."""
    before = refusals("unit-c", "ShipmentShipRefused", "SHIPMENT_INCOMPLETE")
    uow = UnitOfWork(cast(asyncpg.Connection, None), Outbox(service="unit-c"))
    uow.outbox.emit(
        "status",
        "S-1",
        ShipmentShipRefused(
            message_id="s1",
            shipment_id="S-1",
            reason_code=ReasonCode.SHIPMENT_INCOMPLETE,
            reason="line 2 has no lot",
            problems=[
                LineProblem(
                    line_no=2, lic="LIC-9", reason_code=ReasonCode.LOT_REQUIRED, reason="no lot"
                )
            ],
        ),
    )
    assert refusals("unit-c", "ShipmentShipRefused", "SHIPMENT_INCOMPLETE") == before
    for callback in uow.committed:
        callback()
    assert refusals("unit-c", "ShipmentShipRefused", "SHIPMENT_INCOMPLETE") == before + 1
    (line,) = logged.events("refusal")
    assert (line["shipment_id"], line["line_no"], line["lic"], line["problems"]) == (
        "S-1",
        2,
        "LIC-9",
        1,
    )


def test_a_document_refusal_names_its_first_problems_line_and_clips_what_it_quotes(
    logged: Logged,
) -> None:
    huge = "9" * 1_900  # as long as a Text may be
    before = refusals("unit-d", "ReceiptRejected", "INVALID_SERIAL_SPAN")
    outbox = Outbox(service="unit-d")
    outbox.emit(
        "status",
        "R-1",
        ReceiptRejected(
            message_id="r1",
            shipment_id="R-1",
            answers=["upstream-r1"],
            problems=[
                LineProblem(
                    line_no=3,
                    lic="LIC-2",
                    reason_code=ReasonCode.INVALID_SERIAL_SPAN,
                    reason=f"span {huge[:1_800]} is too long",
                    offending=huge,
                ),
                LineProblem(line_no=4, reason_code=ReasonCode.UNKNOWN_ITEM, reason="unknown"),
            ],
        ),
    )
    outbox.emit("status", "R-2", ReceiptPosted(message_id="r2", shipment_id="R-2", lines=[]))
    outbox.report_refusals()
    assert refusals("unit-d", "ReceiptRejected", "INVALID_SERIAL_SPAN") == before + 1
    (line,) = logged.events("refusal")
    assert (line["shipment_id"], line["line_no"], line["lic"], line["problems"]) == (
        "R-1",
        3,
        "LIC-2",
        2,
    )
    assert line["answers"] == ["upstream-r1"]  # the messages upstream sent, to find them by
    assert len(line["offending"]) < 300 and line["offending"].endswith("(1900 characters)")
    assert len(line["reason"]) < 600


def test_a_refused_cancel_counts_and_a_plain_cancel_does_not(logged: Logged) -> None:
    before = refusals("unit-e", "ShipmentCancelled", "UNKNOWN_SHIPMENT")
    outbox = Outbox(service="unit-e")
    outbox.emit("status", "S-1", ShipmentCancelledStatus(message_id="x1", shipment_id="S-1"))
    outbox.emit(
        "status",
        "S-2",
        ShipmentCancelledStatus(
            message_id="x2",
            shipment_id="S-2",
            refused=LineProblem(reason_code=ReasonCode.UNKNOWN_SHIPMENT, reason="no S-2"),
        ),
    )
    outbox.report_refusals()
    assert refusals("unit-e", "ShipmentCancelled", "UNKNOWN_SHIPMENT") == before + 1
    assert [line["shipment_id"] for line in logged.events("refusal")] == ["S-2"]


def test_without_a_service_name_the_service_the_process_logs_as_is_used(
    logged: Logged,
) -> None:
    import structlog

    before = refusals("unit-f", "CommandRejected", "INVALID_QUANTITY")
    with structlog.contextvars.bound_contextvars(service="unit-f"):
        outbox = Outbox()  # as ServiceRuntime.every makes it
        outbox.emit("events", "LIC-1", _rejected())
        outbox.report_refusals()
    assert refusals("unit-f", "CommandRejected", "INVALID_QUANTITY") == before + 1


# --- dead-letter log lines --------------------------------------------------------------------


def _dead(value: bytes | None, key: bytes | None = b"k", **options: Any) -> Any:
    from shared.consumer import _Dead

    size = len(value) if value is not None else 0
    record = ConsumerRecord("t", 0, 7, 0, 0, key, value, None, 1, size, [])
    return _Dead(record, "why", **options)


def test_a_dead_letters_key_is_clipped_and_repr_d() -> None:
    from shared.consumer import _loggable_key

    assert _loggable_key(None) is None
    assert _loggable_key(b"LIC-1") == "b'LIC-1'"
    hostile = b"\x1b[31m\n\x00" * 1000
    shown = _loggable_key(hostile)
    assert shown is not None and "\n" not in shown and "\x1b" not in shown and "\x00" not in shown
    assert len(shown) < 1000 and shown.endswith("(7000 bytes)")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'{"type": "UpsertItem", "message_id": "m-1"}', "m-1"),
        (b'{"message_id": 12}', "12"),
        (b'{"message_id": "evil\\nline"}', "'evil\\nline'"),
        (b'{"message_id": ["not", "an", "id"]}', None),
        (b'{"message_id": true}', None),
        (b"[1, 2]", None),
        (b"\xff not json", None),
        (b"{" * 100_000, None),  # nested too deeply
        (b'{"message_id": "a", "message_id": "b"}', None),  # duplicate keys: not trusted
        (b'{"message_id": ' + b"9" * 10_000 + b"}", "9" * 200),  # beyond int(): clipped
        (b"", None),
        (None, None),
    ],
)
def test_a_dead_letters_message_id_is_read_best_effort_never_raising(
    value: bytes | None, expected: str | None
) -> None:
    from shared.consumer import _loggable_id

    assert _loggable_id(_dead(value)) == expected


def test_a_dead_letters_message_id_is_clipped_and_oversized_bytes_are_not_read() -> None:
    from shared.consumer import _loggable_id

    long_id = "x" * 10_000
    shown = _loggable_id(_dead(b'{"message_id": "%s"}' % long_id.encode()))
    assert shown == "x" * 200
    big = b'{"message_id": "m", "pad": "' + b"p" * (2 * 1024 * 1024) + b'"}'
    assert _loggable_id(_dead(big)) is None
    # What decoding already read is used; bytes it could not read as an object are not again.
    assert _loggable_id(_dead(b"junk", document={"message_id": "m-doc"})) == "m-doc"
    assert _loggable_id(_dead(b'{"message_id": "m"}', peek=False)) is None
