"""A deterministic embedder with no model: feature hashing of words and word pairs.

Texts that share words are close, so retrieval behaves sensibly, and it costs microseconds —
for tests and for benchmarks at sizes where a neural model would only measure itself.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np

from loreweave.llm.types import Matrix, normalise_rows

_WORD = re.compile(r"[a-z0-9]+")


def hash_embedding(text: str, dim: int) -> list[float]:
    vector = [0.0] * dim
    words = _WORD.findall(text.lower())
    for feature in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    return vector


class HashingEmbedder:
    provider = "hashing"

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim
        self.model_name = f"hashing-{dim}"
        self.calls = 0

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        self.calls += 1
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalise_rows([hash_embedding(text, self._dim) for text in texts])
