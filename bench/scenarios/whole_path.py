"""stub"""

from __future__ import annotations

from bench.report import ScenarioResult
from bench.scenarios import Context
from bench.sizes import Sizes


def steps(_sizes: Sizes) -> int:
    return 1


async def run(ctx: Context, result: ScenarioResult) -> None:
    raise RuntimeError("not yet")
