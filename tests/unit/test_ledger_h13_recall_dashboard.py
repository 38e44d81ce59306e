"""The dashboard's dead letters say where on the dead-letter topic each one is: "2:0" under its
time read as nothing a person could name (it is the partition and the offset)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from services.ledger import dashboard
from services.ledger.schemas import DeadLetterOut, LedgerHealth, OpsSummary

AT = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)


def _with_dead_letter(partition: int, offset: int) -> OpsSummary:
    letter = DeadLetterOut(
        dlq_partition=partition,
        dlq_offset=offset,
        dead_at=AT,
        error="not JSON",
        source_topic="inventory.shipments",
        source_partition="1",
        source_offset="17",
        consumer="shipping",
        answered=None,
        headers={},
        key=None,
        payload_bytes=3,
        preview="abc",
    )
    return OpsSummary(
        generated_at=AT,
        window_hours=24,
        documents_by_status=[],
        latest_documents=[],
        refusals_by_reason=[],
        latest_refusals=[],
        dead_letters_in_window=1,
        latest_dead_letters=[letter],
        ledger=LedgerHealth(
            last_event=None,
            usage_records_today=0,
            usage_cost_today=Decimal(0),
            expiring_days=30,
            expiring_lots=0,
            expiring=[],
        ),
    )


def test_a_dead_letter_names_its_partition_and_offset_on_the_dead_letter_topic() -> None:
    page = dashboard.render(_with_dead_letter(2, 0))

    assert "<span class=muted>DLQ partition 2, offset 0</span>" in page
    assert ">2:0<" not in page
