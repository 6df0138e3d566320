"""Vectors: rows in the database (the truth) and FAISS indexes (per-process caches of them)."""
