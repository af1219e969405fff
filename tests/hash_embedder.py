"""A deterministic stand-in embedder for fast unit tests of index plumbing (never for quality)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


class HashEmbedder:
    """Character-bigram feature hashing, L2-normalised: similar texts get similar vectors."""

    def __init__(self, dim: int = 64, name: str = "test/hash-embedder") -> None:
        self.dim = dim
        self.name = name
        self.calls = 0
        self.encoded = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for a, b in zip(text, text[1:], strict=False):
            h = int.from_bytes(hashlib.blake2b((a + b).encode("utf-8"), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.encoded += len(texts)
        return np.vstack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_passages(self, texts: Sequence[str], progress=None) -> np.ndarray:
        out = self.encode_queries(texts)
        if progress:
            progress(len(texts), len(texts))
        return out
