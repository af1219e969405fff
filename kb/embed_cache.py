"""Embedding cache for incremental builds, keyed by (model, prompt, text hash).

Stored beside the index as `cache/<model-key>.npy` (vectors) + `.json` (keys in row order), both
replaced atomically after a build. Unchanged chunks are never embedded twice; a corrupt cache is
ignored (and rebuilt), never fatal.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np

from kb.manifest import atomic_write_bytes, atomic_write_text


def text_key(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\0{text}".encode()).hexdigest()[:32]


class EmbeddingCache:
    def __init__(self, folder: Path, model_name: str, dim: int) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name).strip("_")[-60:]
        ident = hashlib.sha256(model_name.encode("utf-8")).hexdigest()[:8]
        self._base = folder / f"{slug}-{ident}-{dim}"
        self.dim = dim
        self._vectors: dict[str, np.ndarray] = {}
        self._load()

    def _load(self) -> None:
        try:
            keys = json.loads(self._base.with_suffix(".json").read_text(encoding="utf-8"))
            matrix = np.load(self._base.with_suffix(".npy"), allow_pickle=False)
        except (OSError, ValueError):
            return
        if matrix.ndim != 2 or matrix.shape != (len(keys), self.dim):
            return
        self._vectors = {k: matrix[i] for i, k in enumerate(keys)}

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, key: str) -> np.ndarray | None:
        return self._vectors.get(key)

    def put(self, key: str, vector: np.ndarray) -> None:
        self._vectors[key] = np.asarray(vector, dtype=np.float32)

    def save(self, keep: set[str]) -> None:
        """Persist the vectors whose keys are in `keep` (the live corpus), dropping the rest."""
        keys = [k for k in self._vectors if k in keep]
        matrix = np.vstack([self._vectors[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)
        buf = io.BytesIO()
        np.save(buf, matrix.astype(np.float32), allow_pickle=False)
        # Vectors first, keys second: a crash between the two leaves a shape mismatch, which
        # _load treats as an empty cache.
        atomic_write_bytes(self._base.with_suffix(".npy"), buf.getvalue())
        atomic_write_text(self._base.with_suffix(".json"), json.dumps(keys))
