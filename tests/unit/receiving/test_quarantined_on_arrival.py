"""Units a receipt or customer return put in stock that a quarantine in force holds: allocation
names them in its answer (`quarantined`), receiving keeps them with the posted line
(`translate.PostedLineResult`) and its `ReceiptPosted` warns of them, one
`LOT_QUARANTINED_ON_RECEIPT` (`LOT_QUARANTINED_ON_RETURN` for a return) per line, inventory
lot, manufacturer lot and quarantine, saying to put the units in quarantine storage and what
releases them. services/receiving/domain.py (`quarantined_on_arrival`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson

from services.receiving import translate
from services.receiving.domain import (
    Posting,
    ReceiptWarning,
    Source,
    posting_warnings,
)
from shared.contracts import events, status
from shared.contracts.codec import encode
from shared.send import describe

RECEIVED_ON = date(2026, 11, 2)
EXPIRES = date(2027, 6, 30)


def rule(
    qid: str = "Q-7", reason: str = "supplier recall notice 7", **named: str
) -> events.QuarantineRule:
    return events.QuarantineRule(quarantine_id=qid, reason=reason, **named)


def held(
    mfr_lot: str | None, quantity: int, quarantine: events.QuarantineRule, lot_id: str = "PO-1/1"
) -> events.HeldOnArrival:
    return events.HeldOnArrival(
        lot_id=lot_id, mfr_lot=mfr_lot, quantity=Decimal(quantity), quarantine=quarantine
    )


def moved(mfr_lot: str | None, quantity: int, lot_id: str = "PO-1/1") -> events.Movement:
    return events.Movement(
        lot_id=lot_id,
        mfr_lot=mfr_lot,
        expires_on=EXPIRES if mfr_lot else None,
        quantity=Decimal(quantity),
        unit_cost=Decimal("3"),
    )


def received(
    *movements: events.Movement, quarantined: list[events.HeldOnArrival], no: int = 1
) -> translate.PostedLineResult:
    """A posted receipt line as receiving keeps it: allocation's answer, passed through."""
    event = events.StockReceived(
        message_id="e-1",
        lic="VAX",
        command_id=f"c-{no}",
        shipment_id="PO-1",
        line_no=no,
        lot_id="PO-1/1",
        office="AI",
        received_on=RECEIVED_ON,
        quantity=sum((m.quantity for m in movements), Decimal(0)),
        unit_cost=Decimal("3"),
        movements=list(movements),
        quarantined=quarantined,
    )
    return translate.line_result(event)


def returned(
    *movements: events.Movement, quarantined: list[events.HeldOnArrival]
) -> translate.PostedLineResult:
    event = events.StockReturned(
        message_id="e-2",
        lic="VAX",
        command_id="c-r",
        shipment_id="RMA-1",
        line_no=1,
        office="AI",
        received_on=RECEIVED_ON,
        quantity=sum((m.quantity for m in movements), Decimal(0)),
        movements=list(movements),
        quarantined=quarantined,
    )
    return translate.line_result(event)


def warned(
    *lines: status.LineResult, source: Source = "purchase", limit: int = 100
) -> tuple[ReceiptWarning, ...]:
    posting = Posting(source=source, received_on=RECEIVED_ON, lines=lines)
    return posting_warnings(posting, {}, limit)


def test_a_receipt_of_a_recalled_lot_is_warned_of_naming_units_lot_quarantine_and_remedy() -> None:
    line = received(
        moved("LOTZ", 2), moved("GOOD", 3), quarantined=[held("LOTZ", 2, rule(mfr_lot="LOTZ"))]
    )
    (warning,) = warned(line)
    assert (warning.line_no, warning.lic, warning.code) == (1, "VAX", "LOT_QUARANTINED_ON_RECEIPT")
    assert (warning.mfr_lot, warning.expires_on, warning.lot_id) == ("LOTZ", EXPIRES, "PO-1/1")
    assert warning.quarantine_id == "Q-7"
    assert warning.message == (
        "2 units of manufacturer lot LOTZ of VAX (line 1) arrived in quarantine: quarantine Q-7 "
        "(supplier recall notice 7) holds them. They are received into inventory lot PO-1/1 "
        "all the same, on hand but not for sale: put the units in quarantine storage; they "
        "cannot ship until QuarantineStock with quarantined=false releases Q-7 (with mfr_lot "
        "LOTZ, no lot_id, no office, as it was sent)."
    )


def test_a_line_with_nothing_held_and_a_line_as_the_contract_has_it_warn_of_nothing() -> None:
    """A `LineResult` without `quarantined` (as an older stored result reads) holds none."""
    assert warned(received(moved("LOTZ", 2), quarantined=[])) == ()
    plain = status.LineResult(line_no=1, lic="VAX", quantity=Decimal(2), movements=[moved("A", 2)])
    assert warned(plain) == ()


def test_a_return_into_a_held_lot_is_warned_of_with_its_own_code() -> None:
    """A plain item's units in no manufacturer lot, back into a lot quarantined by its id at
    one office: no manufacturer lot, no expiry; the release names the rule as it was sent."""
    line = returned(
        moved(None, 1, lot_id="PO-9/2"),
        quarantined=[
            held(None, 1, rule("Q-QA", "failed QA", lot_id="PO-9/2", office="AI"), "PO-9/2")
        ],
    )
    (warning,) = warned(line, source="customer_return")
    assert warning.code == "LOT_QUARANTINED_ON_RETURN"
    assert (warning.mfr_lot, warning.expires_on, warning.lot_id) == (None, None, "PO-9/2")
    text = warning.message
    assert text.startswith("1 unit of VAX (line 1) came back into inventory lot PO-9/2, the lot")
    for said in (
        "quarantine Q-QA (failed QA) holds",
        "put the units in quarantine storage",
        "releases Q-QA (with no mfr_lot, lot_id PO-9/2, office AI, as it was sent)",
    ):
        assert said in text, (said, text)


def test_units_two_quarantines_hold_make_a_warning_each_naming_the_other() -> None:
    first, second = rule("Q-1", mfr_lot="LOTZ"), rule("Q-2", "audit", mfr_lot="LOTZ", office="AI")
    line = received(moved("LOTZ", 2), quarantined=[held("LOTZ", 2, first), held("LOTZ", 2, second)])
    one, two = warned(line)
    assert (one.quarantine_id, two.quarantine_id) == ("Q-1", "Q-2")
    assert one.message.endswith("; quarantine Q-2 holds them too: release each.")
    assert two.message.endswith("; quarantine Q-1 holds them too: release each.")


def test_a_long_reason_does_not_crowd_out_what_to_do() -> None:
    line = received(moved("LOTZ", 1), quarantined=[held("LOTZ", 1, rule(reason="x" * 1900))])
    (warning,) = warned(line)
    assert "x" * 200 + "…" in warning.message and "x" * 201 not in warning.message
    assert warning.message.endswith("as it was sent).")


def test_past_the_limit_the_last_listed_counts_the_warnings_left_out() -> None:
    line = received(
        moved("A", 1),
        quarantined=[held("A", 1, rule(f"Q-{n}", mfr_lot="A", office=f"O{n}")) for n in range(3)],
    )
    capped = warned(line, limit=2)
    assert len(capped) == 2
    assert capped[-1].message.endswith("(1 more warning on this receipt not listed)")


def test_the_held_units_are_kept_with_the_line_but_never_reach_the_status_lines() -> None:
    """Receiving stores each posted line's result as JSON until its document posts: the held
    units survive the round trip; the status's `lines[]` are the contract's `LineResult`."""
    line = received(moved("LOTZ", 2), quarantined=[held("LOTZ", 2, rule(mfr_lot="LOTZ"))])
    stored = translate.stored_line_result(line.model_dump_json())
    assert stored.quarantined == line.quarantined
    (warning,) = warned(stored)
    posted = translate.posted("st-1", "PO-1", [stored], answers="m-1", warnings=[warning])
    wire = orjson.loads(encode(posted))
    assert "quarantined" not in wire["lines"][0]
    assert wire["warnings"] == [
        {
            "line_no": 1,
            "lic": "VAX",
            "code": "LOT_QUARANTINED_ON_RECEIPT",
            "mfr_lot": "LOTZ",
            "expires_on": "2027-06-30",
            "lot_id": "PO-1/1",
            "quarantine_id": "Q-7",
            "message": warning.message,
        }
    ]
    printed = describe(wire).splitlines()
    assert f"      warning: line 1 VAX LOT_QUARANTINED_ON_RECEIPT: {warning.message}" in printed
