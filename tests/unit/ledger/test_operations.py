"""The operations dashboard's pure parts: what it records of answers, refusals and dead
letters, and the page, which escapes everything (hostile text is expected, DESIGN §6)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.ledger import dashboard, translate
from services.ledger.domain import operations as ops
from services.ledger.schemas import (
    DeadLetterOut,
    LedgerHealth,
    OpsSummary,
    RefusalOut,
)
from shared.contracts.events import CommandRejected
from shared.contracts.reasons import ReasonCode

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _status(document: str, status: str, at: datetime) -> ops.DocumentStatus:
    return ops.DocumentStatus(
        kind=ops.document_kind(status),
        document=document,
        status=status,
        reason_code=None,
        message_id=f"{document}-{status}",
        occurred_at=at,
    )


def test_a_document_keeps_its_last_answer_of_the_batch() -> None:
    answers = [
        _status("S1", "ShipmentAllocated", T0),
        _status("S1", "ShipmentShipped", T0 + timedelta(seconds=1)),
        _status("S1", "ShipmentAllocated", T0 - timedelta(seconds=1)),  # late, older
        _status("S1", "ReceiptPosted", T0),  # a receipt with the same id is another document
    ]

    latest = ops.latest_per_document(answers)

    assert {(s.kind, s.status) for s in latest} == {
        ("shipment", "ShipmentShipped"),
        ("receipt", "ReceiptPosted"),
    }


def test_preview_shows_the_first_bytes_escaped_never_the_whole_payload() -> None:
    payload = b"\x00\xff\xfe<script>" + "\u202e\u200b".encode() + b"x" * 10_000_000

    text = ops.preview(payload)

    assert text.startswith("\\x00\\xff\\xfe<script>\\u202e\\u200b")
    assert text.endswith("…") and len(text) < 400
    assert "\x00" not in text


def test_safe_text_clips_and_escapes_control_characters() -> None:
    assert ops.safe_text("a\nb\x07") == "a\\x0ab\\x07"
    assert ops.safe_text("é" * 600) == "é" * ops.TEXT_CHARS + "…"
    assert ops.safe_text(None) is None


def _record(offset: int, headers: list[tuple[str, bytes | None]]) -> ops.DeadLetter:
    return ops.dead_letter(
        partition=0, offset=offset, timestamp=T0, key=b"K\x00", value=b"{}", headers=headers
    )


def test_a_dead_letter_is_keyed_by_the_record_it_dead_letters() -> None:
    """The relay may publish one dead letter twice: both copies name the same source record."""
    headers: list[tuple[str, bytes | None]] = [
        ("error", b"not JSON"),
        ("source_topic", b"inventory.receipts"),
        ("source_partition", b"2"),
        ("source_offset", b"41"),
        ("consumer", b"receiving"),
        ("original_x", None),
    ]

    first, again = _record(7, headers), _record(8, headers)
    other = _record(9, [*headers[:3], ("source_offset", b"42"), headers[4]])
    foreign = _record(10, [("hello", b"\x00world")])

    assert first.message_id == again.message_id != other.message_id
    assert (first.error, first.source_offset, first.consumer) == ("not JSON", "41", "receiving")
    assert first.headers["original_x"] == "" and first.record_key == "K\\x00"
    assert foreign.message_id != _record(11, [("hello", b"\x00world")]).message_id
    assert foreign.headers == {"hello": "\\x00world"}


def test_a_record_at_a_reused_offset_is_another_dead_letter() -> None:
    """The embedded broker keeps topics in memory: after a restart another bad record comes at
    the same source offset. Its source timestamp tells them apart (the dashboard would
    otherwise take the second for a copy of the first and never show it)."""
    base: list[tuple[str, bytes | None]] = [
        ("error", b"not JSON"),
        ("source_topic", b"inventory.receipts"),
        ("source_partition", b"0"),
        ("source_offset", b"0"),
        ("consumer", b"receiving"),
    ]
    before = _record(1, [*base, ("source_timestamp", b"1795000000000")])
    copy = _record(2, [*base, ("source_timestamp", b"1795000000000")])
    after_restart = _record(3, [*base, ("source_timestamp", b"1795000999000")])

    assert before.message_id == copy.message_id != after_restart.message_id
    # A notice from before the header existed keeps the identity it was recorded under.
    older = _record(4, base)
    assert (
        older.message_id
        == "dlq:"
        + hashlib.blake2b(b"source|receiving|inventory.receipts|0|0", digest_size=16).hexdigest()
    )


def test_a_refused_document_lists_its_first_problems() -> None:
    notice = translate.StatusNotice.model_validate(
        {
            "type": "ReceiptRejected",
            "message_id": "m1",
            "occurred_at": T0.isoformat(),
            "shipment_id": "R-1",
            "problems": [
                {"line_no": n, "lic": "CAM", "reason_code": "SERIAL_REQUIRED", "reason": "r"}
                for n in range(1, 100)
            ],
            "lines": [{"ignored": True}],
        }
    )

    rows = translate.status_refusals(notice)

    assert len(rows) == ops.MAX_PROBLEMS
    assert (rows[0].type, rows[0].document, rows[0].lic, rows[0].line_no) == (
        "ReceiptRejected",
        "R-1",
        "CAM",
        1,
    )
    assert translate.to_document_status(notice) is not None


def test_a_refused_cancellation_is_a_refusal_not_a_new_status() -> None:
    notice = translate.StatusNotice.model_validate(
        {
            "type": "ShipmentCancelled",
            "message_id": "m2",
            "occurred_at": T0.isoformat(),
            "shipment_id": "S-9",
            "refused": {"reason_code": "UNKNOWN_SHIPMENT", "reason": "no S-9", "offending": "S-9"},
        }
    )

    assert translate.to_document_status(notice) is None
    assert [r.reason_code for r in translate.status_refusals(notice)] == ["UNKNOWN_SHIPMENT"]


def test_a_refusal_naming_no_open_shipment_leaves_the_shipment_shown_as_it_was() -> None:
    """A shipped sale requested or re-picked again is refused UNKNOWN_SHIPMENT: nothing
    changed, so the dashboard still shows it shipped (it showed it failed: reconciliation)."""
    notice = translate.StatusNotice.model_validate(
        {
            "type": "ShipmentAllocationFailed",
            "message_id": "m3",
            "occurred_at": T0.isoformat(),
            "shipment_id": "SO-1",
            "problems": [
                {
                    "reason_code": "UNKNOWN_SHIPMENT",
                    "reason": "SO-1 is shipped",
                    "offending": "SO-1",
                }
            ],
        }
    )

    assert translate.to_document_status(notice) is None
    assert [r.reason_code for r in translate.status_refusals(notice)] == ["UNKNOWN_SHIPMENT"]


def _rejected(**ids: str) -> CommandRejected:
    return CommandRejected(
        message_id="e1",
        command_id="c1",
        lic="CAM",
        command_type="AdjustStock",
        reason_code=ReasonCode.LOT_QTY_EXCEEDS_USED,
        reason="adjusted quantity exceeds the previously used quantity",
        offending="L1",
        occurred_at=T0,
        **ids,
    )


def test_an_adjustments_rejection_is_recorded_a_documents_is_left_to_its_status() -> None:
    """A receipt's or shipment's command refusal reaches upstream (and the dashboard) as the
    document's answer on inventory.status: counting the command too would count it twice."""
    (row,) = translate.command_refusals(_rejected(adjustment_id="ADJ-7"))

    assert (row.type, row.document, row.lic, row.reason_code) == (
        "CommandRejected:AdjustStock",
        "ADJ-7",
        "CAM",
        "LOT_QTY_EXCEEDS_USED",
    )
    assert translate.command_refusals(_rejected(shipment_id="S-1")) == []


HOSTILE = '<script>alert("x")</script>&'


def _summary() -> OpsSummary:
    return OpsSummary(
        generated_at=T0,
        window_hours=24,
        documents_by_status=[],
        latest_documents=[],
        refusals_by_reason=[],
        latest_refusals=[
            RefusalOut(
                type="ReceiptRejected",
                document=HOSTILE,
                lic=None,
                line_no=1,
                reason_code="LOT_REQUIRED",
                offending=HOSTILE,
                reason=HOSTILE,
                occurred_at=T0,
            )
        ],
        dead_letters_in_window=1,
        latest_dead_letters=[
            DeadLetterOut(
                dlq_partition=0,
                dlq_offset=3,
                dead_at=T0,
                error=HOSTILE,
                source_topic="t",
                source_partition="0",
                source_offset="1",
                consumer=None,
                answered=None,
                headers={HOSTILE: HOSTILE},
                key=None,
                payload_bytes=9,
                preview=HOSTILE,
            )
        ],
        ledger=LedgerHealth(
            last_event=None,
            usage_records_today=0,
            usage_cost_today=Decimal(0),
            expiring_days=30,
            expiring_lots=0,
            expiring=[],
        ),
    )


def test_the_page_escapes_every_value_and_refreshes_itself() -> None:
    page = dashboard.render(_summary(), refresh_seconds=7)

    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert '<meta http-equiv="refresh" content="7">' in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert date(2024, 5, 1).isoformat() in page


def test_a_posted_receipt_stays_posted_when_a_later_version_is_refused() -> None:
    """A receipt is received whole once: a version sent after it posted is refused (its lots
    exist), and the dashboard still counts the document posted. Before, the refusal, being
    later, replaced it: three posted receipts showed as rejected."""
    answers = [
        _status("R1", "ReceiptPosted", T0),
        _status("R1", "ReceiptRejected", T0 + timedelta(seconds=1)),
        _status("R2", "ReceiptRejected", T0),  # refused, then a corrected version posted
        _status("R2", "ReceiptPosted", T0 + timedelta(seconds=1)),
    ]

    latest = ops.latest_per_document(answers)

    assert {(s.document, s.status) for s in latest} == {
        ("R1", "ReceiptPosted"),
        ("R2", "ReceiptPosted"),
    }
