"""What the numbers were measured on: CPU, cores, memory, Python, broker, PostgreSQL, load."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe(broker: str, postgres: str, root: Path) -> dict[str, Any]:
    """The machine description printed at the top of the results."""
    memory = psutil.virtual_memory()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(memory.total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "broker": broker,
        "postgres": postgres,
        "git": git_revision(root),
        "load_average_at_start": load_average(),
    }
