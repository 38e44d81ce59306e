"""Where `lotline bench` writes unless told: a quick or partial run never overwrites the full
default run's results, which the README quotes."""

from __future__ import annotations

from bench.run import RESULTS, default_out
from bench.scenarios import registry


def test_a_full_default_run_writes_the_committed_results() -> None:
    assert default_out(False, registry()) == RESULTS


def test_a_quick_run_writes_beside_them() -> None:
    assert default_out(True, registry()) == RESULTS / "quick"


def test_a_run_of_some_scenarios_writes_apart() -> None:
    some = registry()[:2]
    assert default_out(False, some) == RESULTS / "partial"
    assert default_out(True, some) == RESULTS / "partial"
