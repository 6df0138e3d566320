"""Fakes that implement loreweave's real interfaces, shipped for tests, demos and benchmarks:
a provider server speaking the Mistral / OpenAI HTTP APIs, and a deterministic embedder."""

from loreweave.testing.fake_provider import FakeProviderServer, FakeReply
from loreweave.testing.hashing_embedder import HashingEmbedder, hash_embedding

__all__ = ["FakeProviderServer", "FakeReply", "HashingEmbedder", "hash_embedding"]
