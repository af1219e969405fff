"""The dense side: a FAISS index over L2-normalised vectors, searched by inner product (= cosine).

Exact `IndexFlatIP` while the index is small (a 1,000-chunk corpus is searched in well under a
millisecond); HNSW above `exact_max_vectors` (30k; the measurements are in kb/config.py), where
brute force starts to cost more than HNSW's search and its rebuild on every index change. Recall of HNSW against exact search is measured by
`kb bench --synthetic N`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def build_dense_index(vectors: np.ndarray, *, exact_max: int, hnsw_m: int, ef_search: int) -> tuple[Any, dict[str, Any]]:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n <= exact_max:
        index = faiss.IndexFlatIP(dim)
        params: dict[str, Any] = {"kind": "flat", "metric": "inner_product"}
    else:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 200
        index.hnsw.efSearch = ef_search
        params = {"kind": "hnsw", "metric": "inner_product", "m": hnsw_m, "ef_construction": 200, "ef_search": ef_search}
    if n:
        index.add(vectors)
    params["count"] = int(n)
    params["dim"] = int(dim)
    return index, params


def search_dense(index: Any, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, entry ids); `allowed` restricts the search to those entry ids."""
    import faiss

    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    params = None
    if allowed is not None:
        if len(allowed) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if isinstance(index, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=index.hnsw.efSearch)
        else:
            params = faiss.SearchParameters(sel=selector)
    scores, ids = index.search(q, k, params=params) if params is not None else index.search(q, k)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]


def entry_vectors(index: Any, ids: np.ndarray) -> np.ndarray:
    """The stored vectors of some entries (Flat and HNSWFlat both keep them)."""
    return np.vstack([index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, index.d), np.float32)
