"""Receiving's pure core: a document of several lines is received whole or not at all.

Its lines are sent with `hold`; allocation holds each line it accepts (`LineHeld`). Once every
line is answered, `settle` confirms them all when none was refused, or cancels the held ones
and rejects the document, posting nothing. A single line is one atomic command, as before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from services.receiving import translate
from services.receiving.domain import (
    Answer,
    Confirm,
    LineOutcome,
    Posted,
    Problem,
    Settled,
    check_receipt,
    settle,
)
from shared.contracts import commands as c
from shared.contracts import events as e
from shared.contracts import upstream as u
from shared.reasons import ReasonCode
from tests.unit.receiving.test_receipt_checks import DAY, ITEMS, line, receipt

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)


def waiting(no: int, lic: str = "PLAIN") -> LineOutcome:
    return LineOutcome(line_no=no, lic=lic)


def held(no: int, lic: str = "PLAIN") -> LineOutcome:
    return LineOutcome(line_no=no, lic=lic, held=True)


def posted(no: int, lic: str = "PLAIN") -> LineOutcome:
    return LineOutcome(line_no=no, lic=lic, posted=Posted(line_no=no, lic=lic, quantity=Decimal(1)))


def refused(no: int, lic: str = "CAM") -> LineOutcome:
    problem = Problem(
        line_no=no,
        lic=lic,
        reason_code=ReasonCode.DUPLICATE_SERIAL,
        reason="serial S1 is already in stock",
        offending="S1",
    )
    return LineOutcome(line_no=no, lic=lic, problem=problem)


# --- the hold flag ----------------------------------------------------------------------------


def test_every_line_of_a_document_with_several_is_sent_held() -> None:
    commands = check_receipt(receipt(line("PLAIN", 1), line("CAM-NS", 2, no=2)), ITEMS).commands
    assert [(cmd.line_no, cmd.hold) for cmd in commands] == [(1, True), (2, True)]


def test_a_single_line_document_is_sent_as_one_atomic_command() -> None:
    (command,) = check_receipt(receipt(line("PLAIN", 1)), ITEMS).commands
    assert not command.hold


def test_the_hold_flag_goes_out_on_receipts_and_returns() -> None:
    def wire(source: str, *lines: dict[str, object]) -> u.ShipmentReceived:
        return u.ShipmentReceived.model_validate(
            {
                "message_id": "m-1",
                "occurred_at": NOW,
                "shipment_id": "PO-1",
                "office": "AI",
                "source": source,
                "customer": "Montboro" if source == "customer_return" else None,
                "received_on": DAY,
                "lines": [{"line_no": n, **x} for n, x in enumerate(lines, start=1)],
            }
        )

    for source, kind in (("purchase", c.ReceiveStock), ("customer_return", c.ReturnStock)):
        doc = wire(source, {"lic": "PLAIN", "quantity": 1}, {"lic": "PLAIN", "quantity": 2})
        commands = check_receipt(translate.receipt(doc), ITEMS).commands
        sent = [translate.command(doc, cmd) for cmd in commands]
        assert [(type(s), s.hold) for s in sent] == [(kind, True), (kind, True)]

        single = wire(source, {"lic": "PLAIN", "quantity": 1})
        (cmd,) = check_receipt(translate.receipt(single), ITEMS).commands
        assert translate.command(single, cmd).hold is False


# --- settling ---------------------------------------------------------------------------------


def test_a_document_waits_while_any_line_is_unanswered() -> None:
    assert settle([held(1), waiting(2)]) is None
    assert settle([waiting(1), refused(2)]) is None


def test_every_line_held_confirms_them_all_and_publishes_nothing_yet() -> None:
    decision = settle([held(2, "CAM"), held(1)])
    assert decision == Confirm(held=(held(1), held(2, "CAM")))


def test_a_refused_line_cancels_the_held_ones_and_rejects_the_document_posting_nothing() -> None:
    decision = settle([held(1), refused(2), held(3, "MILK"), refused(4)])
    assert isinstance(decision, Settled)
    assert not decision.fully_posted
    assert decision.posted == ()
    assert [p.line_no for p in decision.problems] == [2, 4]
    assert decision.cancelled == (held(1), held(3, "MILK"))


def test_every_line_refused_cancels_nothing() -> None:
    decision = settle([refused(1), refused(2)])
    assert isinstance(decision, Settled)
    assert (decision.posted, decision.cancelled) == ((), ())
    assert [p.line_no for p in decision.problems] == [1, 2]


def test_confirmed_lines_answered_posted_settle_the_document_as_posted() -> None:
    decision = settle([posted(2), posted(1)])
    assert isinstance(decision, Settled)
    assert decision.fully_posted
    assert [p.line_no for p in decision.posted] == [1, 2]
    assert decision.cancelled == ()


def test_a_single_line_document_settles_as_before() -> None:
    done = settle([posted(1)])
    assert isinstance(done, Settled)
    assert (done.fully_posted, [p.line_no for p in done.posted], done.cancelled) == (True, [1], ())
    refusal = settle([refused(1)])
    assert isinstance(refusal, Settled)
    assert (refusal.posted, [p.line_no for p in refusal.problems]) == ((), [1])


def test_a_confirmed_line_refused_after_all_falls_back_to_naming_the_posted_ones() -> None:
    """Allocation never refuses a confirmed line; if it did, what posted is not hidden."""
    decision = settle([posted(1), refused(2)])
    assert isinstance(decision, Settled)
    assert [p.line_no for p in decision.posted] == [1]
    assert [p.line_no for p in decision.problems] == [2]
    assert decision.cancelled == ()


# --- answers and the held lines' commands ------------------------------------------------------


def test_line_held_is_an_answer_that_holds_the_line() -> None:
    event = e.LineHeld(
        message_id="ev-1", lic="PLAIN", command_id="receipt:m-1/1", shipment_id="PO-1", line_no=1
    )
    assert translate.answer(event) == Answer(command_id="receipt:m-1/1", held=True)


def test_confirm_and_cancel_name_the_held_command_with_ids_derived_from_it() -> None:
    confirm = translate.confirm_held("receipt:m-1/2", "CAM")
    cancel = translate.cancel_held("receipt:m-1/2", "CAM")
    assert (confirm.message_id, confirm.lic, confirm.command_id) == (
        "receipt:m-1/2/confirm",
        "CAM",
        "receipt:m-1/2",
    )
    assert (cancel.message_id, cancel.lic, cancel.command_id) == (
        "receipt:m-1/2/cancel",
        "CAM",
        "receipt:m-1/2",
    )
