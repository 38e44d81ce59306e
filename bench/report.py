"""Results: every figure absolute and as a ratio to its ceiling, written as JSON and Markdown.

A figure names the ceiling it is compared with (a key of `ceilings`, measured by scenario 1 in
the same run). Throughputs are reported as a fraction of their ceiling; latencies and durations
as a multiple of theirs ("×"). Targets from issue 6 are checked against the value or the ratio.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Compare = Literal["value<=", "value>=", "ratio<=", "ratio>="]


@dataclass
class Target:
    compare: Compare
    threshold: float
    text: str


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    ceiling: str | None = None  # key of the ceilings
    target: Target | None = None
    note: str = ""
    missed: bool = False  # no value because the thing measured never happened: target not met

    def as_dict(self, ceilings: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ceiling = ceilings.get(self.ceiling) if self.ceiling else None
        ceiling_value = ceiling["value"] if ceiling else None
        ratio = None
        if self.value is not None and ceiling_value:
            ratio = round(self.value / ceiling_value, 3)
        return {
            "name": self.name,
            "value": _round(self.value),
            "unit": self.unit,
            "ceiling": self.ceiling,
            "ceiling_value": _round(ceiling_value),
            "ratio": ratio,
            "target": self.target.text if self.target else None,
            "meets_target": False if self.missed else _meets(self.target, self.value, ratio),
            "note": self.note,
        }


def _meets(target: Target | None, value: float | None, ratio: float | None) -> bool | None:
    if target is None:
        return None
    measured = value if target.compare.startswith("value") else ratio
    if measured is None:
        return None
    if target.compare.endswith("<="):
        return measured <= target.threshold
    return measured >= target.threshold


@dataclass
class ScenarioResult:
    name: str
    title: str
    status: str = "ok"  # ok | failed | skipped
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    topics_held: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def figure(
        self,
        name: str,
        value: float | None,
        unit: str,
        *,
        ceiling: str | None = None,
        target: Target | None = None,
        note: str = "",
        missed: bool = False,
    ) -> None:
        self.figures.append(Figure(name, value, unit, ceiling, target, note, missed))

    def as_dict(self, ceilings: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "topics_held": self.topics_held,
            "figures": [f.as_dict(ceilings) for f in self.figures],
            "details": self.details,
        }


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 3) if abs(value) < 100 else round(value, 1)


def build(
    *,
    command: str,
    mode: str,
    machine: dict[str, Any],
    ceilings: dict[str, dict[str, Any]],
    scenarios: list[ScenarioResult],
    started_at: str,
    seconds: float,
) -> dict[str, Any]:
    body = {name: s.as_dict(ceilings) for name, s in ((s.name, s) for s in scenarios)}
    targets = [
        {
            "scenario": name,
            "figure": fig["name"],
            "target": fig["target"],
            "value": fig["value"],
            "unit": fig["unit"],
            "ratio": fig["ratio"],
            "meets_target": fig["meets_target"],
        }
        for name, scenario in body.items()
        for fig in scenario["figures"]
        if fig["target"]
    ]
    return {
        "command": command,
        "mode": mode,
        "started_at": started_at,
        "seconds": round(seconds, 1),
        "machine": machine,
        "ceilings": ceilings,
        "targets": targets,
        "scenarios": body,
    }


def write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write latest.json and latest.md atomically (a crash leaves the previous ones)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "latest.json", out / "latest.md"
    for path, text in (
        (json_path, json.dumps(results, indent=2, default=str) + "\n"),
        (md_path, markdown(results)),
    ):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return json_path, md_path


# -- Markdown --------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | int):
        number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}" if value else "0"
        return f"{number} {unit}".strip()
    return str(value)


def _ratio(fig: dict[str, Any]) -> str:
    ratio = fig["ratio"]
    if ratio is None:
        return "–"
    if fig["unit"] in ("ms", "s"):
        return f"{ratio:.2f}×"
    return f"{ratio:.1%}"


def _status(meets: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "–"}[meets]


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# lotline benchmark: latest results",
        "",
        f"Produced by `{results['command']}` ({results['mode']} sizes) on {results['started_at']},"
        f" in {results['seconds']:.0f} s.",
        "",
        "Every figure is shown absolute and as a ratio to this machine's own ceiling measured in"
        " the same run: throughputs as a fraction of the ceiling, latencies and durations as a"
        " multiple of it.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    for key, value in machine.items():
        lines.append(
            f"| {key.replace('_', ' ')} | {_fmt(value) if not isinstance(value, list) else value} |"
        )
    lines += [
        "",
        "## Ceilings (scenario 1, same run)",
        "",
        "| ceiling | value | note |",
        "| --- | --- | --- |",
    ]
    for key, ceiling in results["ceilings"].items():
        value = _fmt(ceiling["value"], ceiling["unit"])
        lines.append(f"| {ceiling['label']} (`{key}`) | {value} | {ceiling.get('note', '')} |")
    lines += [
        "",
        "## Targets (issue 6)",
        "",
        "| target | measured | ratio | status |",
        "| --- | --- | --- | --- |",
    ]
    for target in results["targets"]:
        ratio = _ratio(target)
        lines.append(
            f"| {target['target']} | {target['figure']}: {_fmt(target['value'], target['unit'])}"
            f" | {ratio} | {_status(target['meets_target'])} |"
        )
    for name, scenario in results["scenarios"].items():
        lines += ["", f"## {scenario['title']}", ""]
        lines.append(f"Status: {scenario['status']}, {scenario['seconds']:.0f} s.")
        if scenario["error"]:
            lines += ["", "```", scenario["error"].strip(), "```"]
        if scenario["topics_held"]:
            held = ", ".join(f"`{t}` {n:,}" for t, n in scenario["topics_held"].items())
            lines += ["", f"Messages the topics held at the end: {held}."]
        if scenario["figures"]:
            lines += [
                "",
                "| figure | value | ceiling | ratio | target | note |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for fig in scenario["figures"]:
                ceiling = (
                    f"{_fmt(fig['ceiling_value'])} (`{fig['ceiling']}`)" if fig["ceiling"] else "–"
                )
                target = f"{fig['target']}: {_status(fig['meets_target'])}" if fig["target"] else ""
                lines.append(
                    f"| {fig['name']} | {_fmt(fig['value'], fig['unit'])} | {ceiling}"
                    f" | {_ratio(fig)} | {target} | {fig['note']} |"
                )
        for table in scenario["details"].get("tables", []):
            lines += _table(table)
        notes = scenario["details"].get("notes")
        if notes:
            lines += [""] + [f"- {note}" for note in notes]
        del name
    return "\n".join(lines) + "\n"


def _table(table: dict[str, Any]) -> list[str]:
    """A scenario's own table (`details["tables"]`): a title, its columns and rows of text."""
    columns = table["columns"]
    lines = ["", f"{table['title']}:", "", "| " + " | ".join(columns) + " |"]
    lines.append("| " + " | ".join("---" for _ in columns) + " |")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]]
    return lines
