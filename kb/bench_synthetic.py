"""A synthetic index of N chunks for `kb bench --synthetic N`, built in memory from a real one.

Embedding 100k texts would take hours on 2 cores, and the benchmark measures search, not the
model, so the synthetic corpus is made without the model:

- texts: each synthetic chunk takes the jieba tokens of 2-4 random real chunks, keeps a random
  run of them (the real chunk length distribution, 40-160 tokens) and replaces ~30 % of the
  tokens with random words from the corpus vocabulary (drawn by corpus frequency). The text is
  the tokens joined, and BM25 is built directly from the token lists (what jieba would give
  back, without tokenizing 100k texts again). So term statistics and document lengths look like
  the real corpus's, and every chunk is distinct.
- vectors: the normalised weighted sum of the real vectors of the chunks its tokens came from,
  plus Gaussian noise (sigma 0.03 per dimension, i.e. a noise vector of norm ~0.6 against a
  signal of norm ~1). This keeps vectors on the same "Chinese guidance" cone as the real ones (so
  FAISS and HNSW see realistic, clustered neighbourhoods, not uniform random points) while
  making near-duplicates rare.
- the real chunks come first, so real queries still find real answers among the distractors.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from kb.sparse import build_bm25
from kb.store import Entry, LoadedIndex
from kb.tokenize import Tokenizer
from kb.types import Chunk
from kb.vectors import build_dense_index

NOISE_SIGMA = 0.03
REPLACE_SHARE = 0.3


def real_vectors(index: LoadedIndex) -> np.ndarray:
    """The stored vectors of the real chunk entries (Flat or HNSWFlat keep them)."""
    n = len(index.chunks)
    if hasattr(index.dense, "reconstruct_n"):
        return index.dense.reconstruct_n(0, n)
    return np.vstack([index.dense.reconstruct(i) for i in range(n)])


def synthesize(index: LoadedIndex, tokenizer: Tokenizer, n: int, *, seed: int = 0) -> tuple[list[Chunk], list[list[str]], np.ndarray]:
    """n chunks (real ones first), their BM25 tokens and their vectors."""
    rng = np.random.default_rng(seed)
    real = index.chunks
    tokens = [tokenizer.tokens(c.context_text()) for c in real]
    vecs = real_vectors(index)
    vocab, counts = np.unique([t for ts in tokens for t in ts], return_counts=True)
    probs = counts / counts.sum()
    chunks, token_lists, out = list(real[:n]), tokens[:n], [vecs[: min(n, len(real))]]
    extra = max(n - len(real), 0)
    vectors = np.empty((extra, vecs.shape[1]), dtype=np.float32)
    random_words = iter(rng.choice(vocab, size=extra * 50 + 1000, p=probs))
    template = real[0]
    for i in range(extra):
        sources = rng.choice(len(real), size=int(rng.integers(2, 5)), replace=False)
        pool = [t for s in sources for t in tokens[s]]
        length = min(int(rng.integers(40, 161)), len(pool))
        start = int(rng.integers(0, len(pool) - length + 1))
        picked = pool[start:start + length]
        for j in np.nonzero(rng.random(len(picked)) < REPLACE_SHARE)[0]:
            picked[j] = str(next(random_words, picked[j]))
        weights = rng.dirichlet(np.ones(len(sources)))
        v = weights @ vecs[sources] + rng.normal(0.0, NOISE_SIGMA, vecs.shape[1])
        vectors[i] = v / np.linalg.norm(v)
        doc = f"synthetic/{i // 20:05d}.md"
        chunks.append(replace(template, chunk_id=f"{doc}#{i % 20}", doc_id=doc, ordinal=i % 20,
                              title=f"合成文档 {i // 20}", heading="", text="".join(picked),
                              licences=(), topics=(), source="synthetic"))
        token_lists.append(picked)
    out.append(vectors)
    return chunks, token_lists, np.vstack(out).astype(np.float32)


def synthetic_index(index: LoadedIndex, tokenizer: Tokenizer, n: int, *, exact_max: int, hnsw_m: int,
                    ef_search: int, k1: float, b: float) -> tuple[LoadedIndex, np.ndarray, dict[str, float]]:
    """An in-memory LoadedIndex of n synthetic chunks (one entry per chunk), its vectors, and build times."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    chunks, token_lists, vectors = synthesize(index, tokenizer, n)
    times["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    bm25 = build_bm25(token_lists, k1=k1, b=b)
    times["bm25_build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    dense, params = build_dense_index(vectors, exact_max=exact_max, hnsw_m=hnsw_m, ef_search=ef_search)
    times["dense_build_s"] = time.perf_counter() - t
    entries = [Entry(i, "chunk", "") for i in range(len(chunks))]  # texts live in the chunks
    manifest = replace(index.manifest, build_id=f"synthetic-{n}", dense=params,
                       counts={"documents": 0, "chunks": len(chunks), "entries": len(entries)})
    loaded = LoadedIndex(index.build_dir, manifest, {}, chunks, entries,
                         np.arange(len(chunks), dtype=np.int32), dense, bm25)
    return loaded, vectors, times


def dense_comparison(vectors: np.ndarray, queries: np.ndarray, *, hnsw: Any | None, k: int = 10,
                     sizes: tuple[int, ...] = (10_000, 25_000, 50_000, 100_000)) -> dict[str, Any]:
    """Exact search time at several N, and HNSW time and recall@k against exact at the full N."""
    import faiss

    from kb.vectors import search_dense

    def timed(index: Any) -> tuple[list[float], list[np.ndarray]]:
        ms, ids = [], []
        for q in queries:
            t = time.perf_counter()
            _, found = search_dense(index, q, k)
            ms.append((time.perf_counter() - t) * 1000)
            ids.append(found)
        return ms, ids

    result: dict[str, Any] = {"exact_ms": {}}
    exact_ids: list[np.ndarray] = []
    for size in sorted({s for s in sizes if s < len(vectors)} | {len(vectors)}):
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors[:size])
        ms, ids = timed(flat)
        result["exact_ms"][size] = _pcts(ms)
        exact_ids = ids
    if hnsw is not None:
        ms, ids = timed(hnsw)
        result["hnsw_ms"] = _pcts(ms)
        recall = [len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1) for a, e in zip(ids, exact_ids, strict=True)]
        result[f"hnsw_recall@{k}"] = float(np.mean(recall))
    return result


def _pcts(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99))}
