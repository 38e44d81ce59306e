"""`lotline up` as a supervisor: a service that dies once the stack is up is started again
after a pause that grows while it keeps dying; its log's start line is one JSON object; work
left in flight by a previous memory-only broker is named, with what can be done about it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shared import stack


def test_the_pause_before_a_restart_doubles_while_the_service_keeps_dying_and_resets() -> None:
    first = stack.restart_delay(None, 500.0)
    again = [first]
    for _ in range(7):  # each start dies within a minute
        again.append(stack.restart_delay(again[-1], 5.0))

    assert again == [1, 2, 4, 8, 16, 30, 30, 30]
    assert stack.restart_delay(30, 60.0) == 1  # it ran a minute: a new failure, not a loop


def test_a_service_that_died_is_one_problem_however_often_it_died() -> None:
    log = Path("/data/logs/allocation.log")

    once = stack.deaths_problem("allocation", ["was killed by SIGKILL"], log)
    often = stack.deaths_problem("allocation", ["exited with 1", "exited with 3"], log)

    assert once == f"service allocation was killed by SIGKILL after the stack was up: see {log}"
    assert often == (
        "service allocation died 2 times after the stack was up (the last time it exited"
        f" with 3): see {log}"
    )


def _service(code: str, log: Path) -> subprocess.Popen[bytes]:
    """A stand-in for `python -m services.allocation` running `code`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, "services.allocation"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_dead_service_is_started_again_and_the_new_process_is_the_one_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It dies at once, twice (pauses of 1 s, then 2 s: it keeps dying within a minute of its
    start), then runs on: `procs` holds the running one, which the shutdown stops."""
    log = tmp_path / "allocation.log"
    scripts = iter(
        ["import sys; sys.exit(1)", "import sys; sys.exit(3)", "import time; time.sleep(60)"]
    )
    started: list[subprocess.Popen[bytes]] = []
    stopping = threading.Event()

    def restart(name: str) -> subprocess.Popen[bytes]:
        assert name == "allocation"
        started.append(_service(next(scripts), log))
        if len(started) == 3:
            stopping.set()  # as a Ctrl-C once it runs again
        return started[-1]

    procs = [restart("allocation")]
    try:
        problems = stack._watch(procs, tmp_path, stopping, restart=restart)
    finally:
        stack.stop_services(started)

    assert procs == [started[-1]]
    assert procs[0].returncode == -15  # the one running was stopped
    assert problems == [
        f"service allocation died 2 times after the stack was up (the last time it exited with"
        f" 3): see {log}"
    ]
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"!! allocation exited with 1 (log: {log}); restarting in 1 s",
        f"   allocation restarted (pid {started[1].pid})",
        f"!! allocation exited with 3 (log: {log}); restarting in 2 s",
        f"   allocation restarted (pid {started[2].pid})",
    ]


def test_a_service_log_begins_each_start_with_a_json_line_as_the_services_write(
    tmp_path: Path,
) -> None:
    """README: with LOG_FORMAT=json every log line is one JSON object. The real service is
    started; a setting it cannot work with makes it stop at once."""
    env = {"PATH": os.environ.get("PATH", ""), "LOG_FORMAT": "json", "DB_POOL_SIZE": "0"}

    (proc,) = stack.start_services(env, ["receiving"], log_dir=tmp_path)
    proc.wait(60)

    first = (tmp_path / "receiving.log").read_text().splitlines()[0]
    line = json.loads(first)
    assert line["event"] == "stack.service_starting"
    assert (line["service"], line["level"]) == ("receiving", "info")
    assert line["timestamp"].endswith("Z")
    console = stack.starting_line("receiving", "console").decode()
    assert "stack.service_starting" in console and not console.startswith("{")


def _receipts(fate: stack.ReceiptFate, count: int) -> tuple[stack.StrandedReceipt, ...]:
    return tuple(stack.StrandedReceipt(f"PO-{n}", f"m-{n}", fate) for n in range(1, count + 1))


def test_stranded_work_is_named_ten_at_a_time_with_what_can_be_done() -> None:
    found = stack.Stranded(
        receipts=(
            *_receipts("unread", 12),
            stack.StrandedReceipt("PO-D", "m-d", "decided"),
            stack.StrandedReceipt("RMA-1", "m-r", "return"),
            stack.StrandedReceipt("PO-H", "m-h", "held"),
        ),
        held=(("PO-H", 2),),
        shipments=(("SO-1", "allocating"), ("SO-2", "shipping"), ("SO-3", "cancelling")),
        unsent=3,
    )

    lines = stack.stranded_warning(found, wait_seconds=30, read_api="http://127.0.0.1:8080")

    text = "\n".join(lines)
    assert "went with that broker (memory only)" in lines[0]
    assert "  15 receipts being posted (receiving.receipts, status 'posting'):" in lines
    unread = ", ".join(f"PO-{n}" for n in range(1, 11))
    assert f"    12 whose lines allocation never read: {unread} and 2 more" in lines
    assert "send each again with a new message_id: it is posted once" in text
    assert "LOTLINE_UNKNOWN_ITEM_WAIT_SECONDS (30 s)" in text
    assert "    1 whose lines allocation decided (its answers lost): PO-D" in lines
    assert "http://127.0.0.1:8080/lots/<document>/<line_no>" in text
    assert "    1 customer return: RMA-1" in lines
    assert "    1 with lines allocation holds (below): PO-H" in lines
    assert "  2 receipt lines allocation holds (allocation.held_lines), of 1 receipt: PO-H" in lines
    assert "nothing lotline accepts confirms or releases them" in text
    assert "  3 shipments waiting for allocation's answers (shipping.pending_commands):" in lines
    assert "    1 being allocated: SO-1" in lines
    assert "a ShipmentCancelled with a new message_id releases what allocation holds" in text
    assert "    2 being shipped or cancelled: SO-2, SO-3" in lines
    assert "3 events still unsent in the services' outboxes" in lines[-1]


def test_nothing_in_flight_says_nothing() -> None:
    assert stack.stranded_warning(stack.Stranded(unsent=4), wait_seconds=30, read_api="x") == []


@pytest.mark.parametrize(
    ("source", "lines", "held", "read", "fate"),
    [
        ("purchase", [("c1", "pending"), ("c2", "pending")], set(), set(), "unread"),
        ("purchase", [("c1", "pending")], set(), {"c1"}, "decided"),
        ("production", [("c1", "confirmed"), ("c2", "pending")], set(), set(), "decided"),
        ("purchase", [("c1", "held"), ("c2", "pending")], {"c1"}, {"c1"}, "held"),
        ("customer_return", [("c1", "pending")], set(), set(), "return"),
        ("customer_return", [("c1", "held")], {"c1"}, {"c1"}, "held"),
    ],
)
def test_what_became_of_a_receipt_being_posted(
    source: str,
    lines: list[tuple[str, str]],
    held: set[str],
    read: set[str],
    fate: stack.ReceiptFate,
) -> None:
    assert stack.receipt_fate(source=source, lines=lines, held=held, read=read) == fate
