"""Scaling figures as a table and a PNG, from bench/results/turn_overhead.json (run
bench/turn_overhead.py first): turn overhead against world size, and index memory against the
number of sessions.

    python bench/plot_scaling.py      # writes bench/results/scaling.png and scaling.md
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from common import RESULTS, save


def main() -> None:
    data = json.loads((RESULTS / "turn_overhead.json").read_text())
    overhead, memory = data["overhead"], data["index_memory"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = [row["entries"] for row in overhead]
    left.plot(sizes, [row["overhead_p50_ms"] for row in overhead], "o-", label="p50")
    left.plot(sizes, [row["overhead_p95_ms"] for row in overhead], "s--", label="p95")
    left.set_xscale("log")
    left.set_xlabel("lore entries in the world")
    left.set_ylabel("turn overhead, ms (no LLM call)")
    left.set_ylim(bottom=0)
    left.set_title("Turn overhead")
    left.legend()
    sessions = [row["sessions"] for row in memory]
    right.plot(
        sessions,
        [row["overlay_design_mb"] for row in memory],
        "o-",
        label="world index + session overlays (measured)",
    )
    right.plot(
        sessions,
        [row["full_index_per_session_mb_extrapolated"] for row in memory],
        "s--",
        label="one full index per session (extrapolated)",
    )
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("sessions (1k-entry world, 10 notes each)")
    right.set_ylabel("index memory, MB")
    right.set_title("Index memory")
    right.legend(fontsize=8)
    figure.suptitle(f"loreweave scaling — {data['machine']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(RESULTS / "scaling.png", dpi=110)
    lines = [
        "| entries | overhead p50 ms | p95 ms | first turn of a process ms | world vectors MB |",
        "|---|---|---|---|---|",
        *[
            f"| {r['entries']:,} | {r['overhead_p50_ms']:.1f} | {r['overhead_p95_ms']:.1f} | {r['first_turn_ms']:.0f} | {r['world_tier_vectors_mb']:.1f} |"
            for r in overhead
        ],
        "",
        "| sessions | overlay design MB (measured) | full index per session MB (extrapolated) |",
        "|---|---|---|",
        *[
            f"| {m['sessions']:,} | {m['overlay_design_mb']:.0f} | {m['full_index_per_session_mb_extrapolated']:.0f} |"
            for m in memory
        ],
        "",
        "Plot: bench/results/scaling.png",
    ]
    save("scaling", {"overhead": overhead, "index_memory": memory}, "\n".join(lines))


if __name__ == "__main__":
    main()
