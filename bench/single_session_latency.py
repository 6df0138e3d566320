"""With one session playing one turn at a time, how long until a turn's memory is applied
(analysis, creations, note updates): this tree against an earlier commit, on the same
stand-in server (fixed 1.0 s per LLM call, 20 ms per embedding call).

    python bench/single_session_latency.py [--before 3b66d10] [--turns 10]

The earlier commit is checked out in a temporary git worktree and run by
bench/single_session_driver.py with its own ``src`` first on PYTHONPATH.
Results: bench/results/single_session_latency.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import percentile, save
from loreweave.testing import FakeProviderServer
from story_standin import PROMPT_HANDLERS, by_wording

HERE = Path(__file__).parent
ROOT = HERE.parent


def measure(src: Path, url: str, turns: int, work: Path) -> list[float]:
    out = work / f"{src.parent.name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOREWEAVE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(HERE)])
    subprocess.run(  # our own driver, our interpreter
        [
            sys.executable,
            str(HERE / "single_session_driver.py"),
            url,
            str(out),
            "--turns",
            str(turns),
        ],
        check=True,
        env=env,
    )
    return [float(x) for x in json.loads(out.read_text())]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="3b66d10")
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        before = work / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
            check=True,
            capture_output=True,
        )
        try:
            for name, src in ((f"before ({args.before})", before / "src"), ("now", ROOT / "src")):
                with FakeProviderServer(
                    chat_handler=by_wording,
                    prompt_handlers=PROMPT_HANDLERS,
                    latency=1.0,
                    embedding_latency=0.02,
                ) as server:
                    rows[name] = measure(src, server.openai_url, args.turns, work)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False
            )
    lines = ["| code | turns | turn → memory applied p50 | p95 | max |", "|---|---|---|---|---|"]
    lines += [
        f"| {name} | {len(v)} | {percentile(v, 0.5):.2f} s | {percentile(v, 0.95):.2f} s | "
        f"{max(v):.2f} s |"
        for name, v in rows.items()
    ]
    save("single_session_latency", {"turns": args.turns, "latencies": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
