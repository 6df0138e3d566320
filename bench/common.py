"""Shared by the benchmarks: the machine's description and saving figures."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def save(name: str, figures: dict[str, Any], table: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    payload = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), **figures}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    header = f"{name} — {payload['machine']}, {payload['date']}\n\n"
    (RESULTS / f"{name}.md").write_text(header + table + "\n")
    print(header + table)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]
