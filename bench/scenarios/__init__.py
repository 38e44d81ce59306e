"""The scenarios of issue 6, in the order they run, and what each one gets to work with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from bench.infra import Infra
from bench.report import ScenarioResult
from bench.sizes import Sizes


class Progress:
    """One progress bar over every step of every selected scenario."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self._bar = tqdm(
            total=total, unit="step", dynamic_ncols=True, mininterval=0.5, disable=not enabled
        )

    def step(self, text: str) -> None:
        self._bar.set_description_str(text[:60])
        self._bar.set_postfix_str("", refresh=False)
        self._bar.update(1)

    def note(self, text: str) -> None:
        self._bar.set_postfix_str(text[:60], refresh=False)

    def say(self, text: str) -> None:
        tqdm.write(text)

    def skip_to(self, done: int) -> None:
        if self._bar.n < done:
            self._bar.update(done - self._bar.n)

    @property
    def done(self) -> int:
        return int(self._bar.n)

    def close(self) -> None:
        self._bar.close()


@dataclass
class Context:
    infra: Infra
    sizes: Sizes
    progress: Progress
    ceilings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ceiling(self, key: str, value: float | None, unit: str, label: str, note: str = "") -> None:
        if value is not None:
            self.ceilings[key] = {"value": value, "unit": unit, "label": label, "note": note}


Runner = Callable[[Context, ScenarioResult], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    title: str
    steps: Callable[[Sizes], int]
    run: Runner


def registry() -> list[Scenario]:
    from bench.scenarios import allocation, ceilings, micro, serial_receipt, trace, whole_path

    return [
        Scenario(1, "ceilings", "1. Ceilings", ceilings.steps, ceilings.run),
        Scenario(2, "allocation", "2. Allocation alone", allocation.steps, allocation.run),
        Scenario(3, "whole_path", "3. Whole path", whole_path.steps, whole_path.run),
        Scenario(
            4, "serial_receipt", "4. Serial-heavy receipt", serial_receipt.steps, serial_receipt.run
        ),
        Scenario(5, "trace", "5. Trace at scale", trace.steps, trace.run),
        Scenario(6, "micro", "6. Core micro-benchmarks", micro.steps, micro.run),
    ]
