"""Keeps `lotline bench` working: a short run of the core micro-benchmarks, of scenario 2
(allocation alone, as OS processes) and of scenario 5 (the ledger's bulk loader, then traces)
against the session's broker and PostgreSQL writes a results file with the expected keys. The
benchmark is not a test: nothing here asserts a speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import stack
from tests.fixtures.infra import Infra


@pytest.mark.timeout(120)
def test_quick_bench_writes_results_with_every_key(
    infra: Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.run import main

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", infra.bootstrap)
    monkeypatch.setenv("DATABASE_URL", stack.database_dsn(infra.admin_dsn, "postgres"))
    out = tmp_path / "results"

    code = main(
        ["--quick", "--scenarios", "micro,allocation,trace", "--out", str(out), "--no-progress"]
    )

    results = json.loads((out / "latest.json").read_text())
    assert (out / "latest.md").read_text().startswith("# lotline benchmark")
    assert {"command", "mode", "machine", "ceilings", "targets", "scenarios"} <= results.keys()
    assert {"cpu", "cores", "ram_gb", "python", "broker", "postgres"} <= results["machine"].keys()
    assert set(results["scenarios"]) == {"micro", "allocation", "trace"}, code
    for scenario in results["scenarios"].values():
        assert {"status", "figures", "topics_held", "error"} <= scenario.keys()
        for figure in scenario["figures"]:
            assert {"name", "value", "unit", "ceiling", "ratio", "target"} <= figure.keys()
    names = {f["name"] for s in results["scenarios"].values() for f in s["figures"]}
    assert "allocation core decisions" in names, results["scenarios"]["micro"]["error"]
    assert "allocation decisions/s, 1 process" in names, results["scenarios"]["allocation"]["error"]
    assert "trace of a lot (forward) p99" in names, results["scenarios"]["trace"]["error"]
