"""The benchmark's Markdown shows where the whole path's latency goes, hop by hop, from the
figures the run recorded (not only in the JSON)."""

from __future__ import annotations

from typing import Any

from bench.report import markdown
from bench.scenarios.whole_path import latency_table


def _summary(p50: float, p99: float) -> dict[str, Any]:
    return {"count": 10, "p50_ms": p50, "p99_ms": p99}


def _run(base: float) -> dict[str, Any]:
    return {
        "hops": {
            "shipping: request → AllocateLine published": _summary(base, base * 3),
            "allocation: AllocateLine → LineAllocated published": _summary(base + 1, 50),
            "shipping: LineAllocated → ShipmentAllocated published": _summary(base + 2, 60),
        },
        "inside_hops": {
            "shipping (request): wait": _summary(11, 21),
            "shipping (request): commit + relay": _summary(12, 22),
            "allocation: wait": _summary(13, 23),
            "allocation: commit + relay": _summary(14, 24),
            "shipping (answer): wait": _summary(15, 25),
            "shipping (answer): commit + relay": _summary(16, 26),
        },
    }


def test_each_run_has_a_row_per_hop_with_its_two_halves() -> None:
    details = {"fast": _run(1000), "100/s": _run(30), "500/s": "failed"}
    table = latency_table(details, ["fast", "100/s", "500/s"])
    rows = table["rows"]
    assert [row[:2] for row in rows[:3]] == [
        ["fast", "shipping: request → AllocateLine published"],
        ["fast", "allocation: AllocateLine → LineAllocated published"],
        ["fast", "shipping: LineAllocated → ShipmentAllocated published"],
    ]
    assert rows[0][2:] == ["1,000 / 3,000", "11 / 21", "12 / 22"]
    assert rows[4] == [
        "100/s",
        "allocation: AllocateLine → LineAllocated published",
        "31 / 50",
        "13 / 23",
        "14 / 24",
    ]
    assert len(rows) == 6  # the failed run has none


def test_a_hop_never_measured_shows_a_dash() -> None:
    run = _run(30)
    run["inside_hops"] = {}
    run["hops"]["allocation: AllocateLine → LineAllocated published"] = {"count": 0}
    rows = latency_table({"100/s": run}, ["100/s"])["rows"]
    assert rows[1][2:] == ["–", "–", "–"]


def test_the_markdown_shows_the_table_under_its_scenario() -> None:
    table = latency_table({"100/s": _run(30)}, ["100/s"])
    results = {
        "machine": {},
        "command": "lotline bench",
        "mode": "default",
        "started_at": "now",
        "seconds": 1.0,
        "ceilings": {},
        "targets": [],
        "scenarios": {
            "whole_path": {
                "title": "3. Whole path",
                "status": "ok",
                "seconds": 1.0,
                "error": None,
                "topics_held": {},
                "figures": [],
                "details": {"tables": [table]},
            }
        },
    }
    text = markdown(results)
    section = text[text.index("## 3. Whole path") :]
    assert "Where the latency goes, hop by hop (ms, p50 / p99):" in section
    assert (
        "| 100/s | shipping: request → AllocateLine published | 30 / 90 | 11 / 21 | 12 / 22 |"
        in (section)
    )
