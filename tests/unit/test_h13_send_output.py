"""What `lotline send` tells a new user: every problem of a refusal and what its lines still
hold, where it looked for the stack, the offending value of a document it will not send, why
an answer is slow to come, and why a redelivered document gets none."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import shared.send
from shared import cli, stack
from shared.config import Settings
from shared.send import DocumentError, Outcome, _Answers, check

REQUEST = json.dumps(
    {
        "type": "ShipmentRequested",
        "message_id": "r-1",
        "shipment_id": "S-1",
        "office": "MAIN",
        "kind": "sale",
        "customer": "C",
        "ship_on": "2026-11-22",
        "lines": [
            {"line_no": 1, "lic": "BOLT", "quantity": 60},
            {"line_no": 2, "lic": "PX", "quantity": 1},
        ],
    }
)
RECEIPT = json.dumps(
    {
        "type": "ShipmentReceived",
        "message_id": "m-2",
        "shipment_id": "PO-7",
        "office": "MAIN",
        "source": "purchase",
        "received_on": "2026-11-22",
        "lines": [{"line_no": 1, "lic": "BOLT", "quantity": 4, "unit_cost": "0.10"}],
    }
)
ITEM = '{"type": "UpsertItem", "message_id": "m-1", "lic": "BOLT", "est_unit_cost": "0.10"}'
SHORT = {
    "line_no": 1,
    "lic": "BOLT",
    "reason_code": "INSUFFICIENT_STOCK",
    "reason": "BOLT at MAIN: requested 60, available 52",
    "offending": "60",
}
PX_0002 = {
    "line_no": 2,
    "lic": "PX",
    "quantity": "1",
    "movements": [{"lot_id": "PO-1/1", "serial": "PX-0002", "quantity": "1", "unit_cost": "5"}],
}


def _failed(**fields: Any) -> dict[str, Any]:
    return {
        "type": "ShipmentAllocationFailed",
        "shipment_id": "S-1",
        "reason_code": "INSUFFICIENT_STOCK",
        "reason": SHORT["reason"],
        "problems": [SHORT],
        **fields,
    }


def test_a_refused_shipment_shows_the_serial_its_other_line_still_holds() -> None:
    """Lines allocate independently (docs/contract.md): line 2's PX-0002 stays reserved while
    line 1 is short, and the summary says so under the unchanged headline."""
    summary = Outcome(check("f:1", REQUEST), answer=_failed(allocated_lines=[PX_0002])).summary()

    assert summary.splitlines() == [
        "f:1  ShipmentRequested S-1  → ShipmentAllocationFailed INSUFFICIENT_STOCK:"
        " BOLT at MAIN: requested 60, available 52",
        "      still allocated: line 2 PX quantity 1: serial PX-0002 from lot PO-1/1",
    ]


def test_a_refusal_lists_every_problem_and_bounds_the_lists() -> None:
    problems = [SHORT] + [
        {**SHORT, "line_no": n, "lic": f"L{n}", "reason": f"problem {n}"} for n in range(2, 14)
    ]
    lines = [{**PX_0002, "line_no": n} for n in range(20, 20 + shared.send.MAX_LISTED + 2)]
    big = {
        **PX_0002,
        "line_no": 99,
        "quantity": "40",
        "movements": [
            {"lot_id": "PO-1/1", "serial": f"PX-{n:04}", "quantity": "1"} for n in range(40)
        ],
    }
    answer = _failed(problems=problems, allocated_lines=[big, *lines])

    details = Outcome(check("f:1", REQUEST), answer=answer).summary().splitlines()[1:]

    listed = [d.strip() for d in details if d.strip().startswith("problem:")]
    assert listed[0] == (
        "problem: line 1 BOLT INSUFFICIENT_STOCK: BOLT at MAIN: requested 60, available 52"
        ' (offending: "60")'
    )
    assert len(listed) == shared.send.MAX_LISTED
    assert "… 3 more problems" in [d.strip() for d in details]
    held = [d.strip() for d in details if d.strip().startswith("still allocated:")]
    assert len(held) == shared.send.MAX_LISTED
    assert held[0].startswith("still allocated: line 99 PX quantity 40: serial PX-0000")
    assert held[0].endswith("… 35 more")  # a big line's serials, briefly
    assert details[-1].strip() == "… 3 more lines still allocated"


def test_a_rejected_receipt_shows_its_posted_lines_and_a_refused_cancel_its_reason() -> None:
    posted = {"line_no": 2, "lic": "BOLT", "quantity": "4", "lot_id": "PO-7/2"}
    rejected = Outcome(
        check("f:1", RECEIPT),
        answer={
            "type": "ReceiptRejected",
            "reason_code": "UNKNOWN_ITEM",
            "reason": "no NUT",
            "problems": [{"line_no": 1, "lic": "NUT", "reason_code": "UNKNOWN_ITEM"}],
            "posted_lines": [posted],
        },
    )
    assert rejected.summary().splitlines()[1:] == [
        "      posted: line 2 BOLT quantity 4 (lot PO-7/2)"
    ]
    cancel = check("f:2", '{"type": "ShipmentCancelled", "message_id": "c", "shipment_id": "S"}')
    refused = Outcome(
        cancel,
        answer={
            "type": "ShipmentCancelled",
            "shipment_id": "S",
            "refused": {
                "reason_code": "UNKNOWN_SHIPMENT",
                "reason": "a shipped shipment cannot be cancelled",
            },
        },
    )
    assert refused.summary().splitlines() == [
        "f:2  ShipmentCancelled S  → ShipmentCancelled",
        "      refused: UNKNOWN_SHIPMENT: a shipped shipment cannot be cancelled",
    ]
    omitted = _failed(movements_omitted=True, allocated_lines=[{**PX_0002, "movements": []}])
    assert (
        "line 2 PX quantity 1 (units not listed"
        in Outcome(check("f:1", REQUEST), answer=omitted).summary()
    )


def test_an_unanswered_document_says_a_processed_message_id_is_not_answered_again() -> None:
    summary = Outcome(check("f:1", ITEM)).summary()

    assert summary.startswith("f:1  UpsertItem BOLT  → no answer yet")
    assert "a message_id processed before is not answered again" in summary
    assert "first answer" in summary


def test_no_running_stack_names_the_absolute_folder_and_how_to_reach_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lotline send` run outside the repo looked in `./.lotline` of the current directory."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("LOTLINE_DATA_DIR", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (elsewhere / "docs.jsonl").write_text(ITEM)

    assert cli.main(["send", "docs.jsonl"]) == 2

    err = capsys.readouterr().err
    assert f"running from {(elsewhere / '.lotline').resolve()}:" in err
    assert "LOTLINE_DATA_DIR" in err
    assert "the directory it was started in" in err
    assert not (elsewhere / ".lotline").exists()  # the default data dir is only looked in


def test_check_quotes_the_offending_value_as_the_services_refusals_do() -> None:
    item = json.loads(ITEM) | {"perishable": "yes", "serialized": "no"}

    with pytest.raises(DocumentError) as error:
        check("f:1", json.dumps(item))

    assert error.value.reason == (  # in the order of the contract's fields
        'serialized: must be true or false, not no (offending: "no");'
        ' perishable: must be true or false, not yes (offending: "yes")'
    )


def test_check_of_one_document_counts_it_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("LOTLINE_DATA_DIR", str(tmp_path))
    path = tmp_path / "docs.jsonl"
    path.write_text(ITEM)

    assert cli.main(["send", "--check", str(path)]) == 0
    assert capsys.readouterr().out == (
        "1 document as the contract reads them (1 UpsertItem); none sent\n"
    )

    path.write_text(ITEM.replace('"BOLT"', '"BOLT", "perishable": "yes"'))
    assert cli.main(["send", "--check", str(path)]) == 2
    assert '(offending: "yes")' in capsys.readouterr().err


def test_one_unanswered_document_is_counted_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")

    async def unanswered(_settings: Any, documents: Any, **_kwargs: Any) -> list[Outcome]:
        return [Outcome(doc) for doc in documents]

    monkeypatch.setattr(shared.send, "send", unanswered)
    path = tmp_path / "docs.jsonl"
    path.write_text(ITEM)

    assert cli.main(["send", "--wait", "3", str(path)]) == 1

    err = capsys.readouterr().err
    assert "lotline send: 1 document not answered within 3 s" in err
    assert "is not answered again: look for its first answer" in err


class _Silent:
    """A consumer that reads nothing: no answer ever comes."""

    async def getmany(self, timeout_ms: int = 0) -> dict[Any, Any]:
        return {}


def _ticks() -> Any:
    """A clock one second later on every reading: the wait passes without sleeping."""
    now = iter(range(10_000))
    return lambda: float(next(now))


@pytest.mark.parametrize(("document", "noted"), [(RECEIPT, True), (ITEM, False)])
async def test_a_silent_wait_says_once_that_the_document_may_be_held(
    document: str, noted: bool
) -> None:
    """A receipt naming an item not known yet is held (LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS):
    one note after a few seconds of silence, not a spinner; an item is never held."""
    settings = Settings().model_copy(update={"unknown_item_wait_seconds": 12.0})
    notes = io.StringIO()
    reader = _Answers(settings, [check("f:1", document)], notes=notes, clock=_ticks())
    reader._consumer = _Silent()  # type: ignore[assignment]

    await reader._read(60.0, None, False, lambda: bool(reader._pending()))

    lines = notes.getvalue().splitlines()
    if not noted:
        assert lines == []
        return
    assert len(lines) == 1
    assert re.search(r"held up to 12 s \(LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS\)", lines[0])


def test_the_alert_section_says_metrics_need_metrics_port_in_the_order_up_gives_them() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = " ".join(readme.split("Worth an alert", 1)[1].split("\n- ", 1)[0].split())

    assert "`METRICS_PORT=9101 make up`" in section
    ports = {name: 9101 + n for n, name in enumerate(stack.METRICS_SERVICES)}
    for name, port in ports.items():
        assert f"{name}'s on {port}" in section


async def test_the_held_note_also_names_a_resent_message_id() -> None:
    """A receipt resent with a message_id processed before is never answered: the note after a
    silent wait must not say only that it is held for its item."""
    settings = Settings().model_copy(update={"unknown_item_wait_seconds": 30.0})
    notes = io.StringIO()
    reader = _Answers(settings, [check("f:1", RECEIPT)], notes=notes, clock=_ticks())
    reader._consumer = _Silent()  # type: ignore[assignment]

    await reader._read(60.0, None, False, lambda: bool(reader._pending()))

    [note] = notes.getvalue().splitlines()
    assert "held up to 30 s" in note
    assert "a resent message_id (processed before) is never answered again" in note
    assert "one of thousands of serials or lines takes seconds" in note  # just slow
    assert "a service stalled or behind answers late" in note  # or stuck: where to look
