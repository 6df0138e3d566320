"""Benchmark an import with the offline embedder: CPU-seconds and wall time of `loreweave import`,
whole and beyond start-up, for the sample World Info file (4 entries) and generated files.

Each run is a fresh process on a fresh SQLite database (migrated beforehand, not counted).  The
process times itself: start-up is everything before the lorebook is read (imports, settings,
the database, the embedder's weights); the import is reading the file, embedding and writing.
CPU-seconds are the process's, every thread included (OpenBLAS's too).  Each case runs
``--repeat`` times; the least is kept (the machine's load only ever adds).

    python bench/import_speed.py [--sizes 1000] [--repeat 3] [--threads default 1] [--label x]

``--threads 1`` runs with OPENBLAS_NUM_THREADS=1.  Figures are printed and saved to
bench/results/import_speed[_label].json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import save

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data"
SAMPLE_FILE = SAMPLE / "sillytavern-world-info-eldoria.json"

WORKER = r"""
import json, sys, time
started_cpu, started = time.process_time(), time.perf_counter()
from loreweave.bootstrap import build_store
from loreweave.config import load_settings
from loreweave.interop.files import read_lorebook
from pathlib import Path
store = build_store(load_settings(None))
world = store.lore.create_world("bench")
ready_cpu, ready = time.process_time(), time.perf_counter()
book = read_lorebook(Path(sys.argv[1]))
report = store.lore.import_entries(world.id, book.entries, book.fields)
done_cpu, done = time.process_time(), time.perf_counter()
store.close()
print(json.dumps({
    "entries": len(report.created),
    "startup_cpu": ready_cpu - started_cpu, "startup_wall": ready - started,
    "import_cpu": done_cpu - ready_cpu, "import_wall": done - ready,
}))
"""


def generated(count: int, folder: Path) -> Path:
    """A World Info file of ``count`` entries of 30 to 90 words."""
    text = (
        "the keeper guards a gate of the old city trades salt with river folk and remembers "
        "every debt owed since the flood that drowned the lower market"
    )
    words = text.split()
    entries = {}
    for uid in range(count):
        body = " ".join(words[(uid + i) % len(words)] for i in range(30 + (uid * 7) % 61))
        entries[str(uid)] = {
            "uid": uid,
            "key": [f"Keeper {uid}"],
            "keysecondary": [],
            "comment": f"Keeper {uid}",
            "content": f"Keeper {uid}: {body}.",
            "constant": False,
            "selective": True,
            "order": 100,
            "position": 0,
            "disable": False,
        }
    path = folder / f"generated-{count}.json"
    path.write_text(json.dumps({"entries": entries}))
    return path


def run_once(path: Path, threads: str, folder: Path) -> dict[str, Any]:
    database = folder / f"run-{os.getpid()}-{threads}-{path.stem}.db"
    database.unlink(missing_ok=True)
    env = {
        **os.environ,
        "LOREWEAVE_DATABASE_URL": f"sqlite:///{database}",
        "LOREWEAVE_INDEX_DIR": str(folder / "index"),
    }
    env.pop("OPENBLAS_NUM_THREADS", None)
    if threads != "default":
        env["OPENBLAS_NUM_THREADS"] = threads
    cli = [sys.executable, "-m", "loreweave"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(path)], env=env, check=True, capture_output=True
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", nargs="+", default=["default", "1"])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        cases = [("sample World Info", SAMPLE_FILE)]
        cases += [("generated", generated(size, folder)) for size in args.sizes]
        for name, path in cases:
            for threads in args.threads:
                runs = [run_once(path, threads, folder) for _ in range(args.repeat)]
                best = {k: min(r[k] for r in runs) for k in runs[0]}
                rows.append({"file": name, "threads": threads, **best})
                print(rows[-1], flush=True)
    table = [
        "| entries | BLAS threads | start-up CPU s | import CPU s | import wall s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['file']} ({r['entries']}) | {r['threads']} | {r['startup_cpu']:.2f} | {r['import_cpu']:.2f} "
            f"| {r['import_wall']:.2f} |"
        )
    label = f"_{args.label}" if args.label else ""
    save(f"import_speed{label}", {"rows": rows, "repeat": args.repeat}, "\n".join(table))


if __name__ == "__main__":
    main()
