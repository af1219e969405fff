"""Hybrid retrieval: dense (FAISS) and keyword (BM25) candidates, fused with weighted RRF.

Why RRF: BM25 scores and cosines live on different, query-dependent scales; ranks do not. The
constant k (settings.rrf_k) and the weights were chosen on the tuning split of the eval set only.

Three rankings are fused: BM25, passages by their best dense entry (their own text or one of the
FAQ question keys that point at them, as in mode "dense"), and passages by their own vector
alone. The third keeps a passage that reads like the answer in the running when a key of some
other passage happens to phrase the question more closely. On the tuning split: hit@1 0.757 ->
0.803, hit@3 0.941 -> 0.961, MRR 0.850 -> 0.879 (held out hit@3 0.934 -> 0.943, MRR 0.860 ->
0.877); for k 3..12 and weights 0.5..2.0 tune hit@3 stays within 0.947-0.961. Giving the dense
ranking twice the weight instead fell to hit@3 0.908; ranking by the keys alone in place of the
best entry gave 0.947-0.961 but let a lone weak key win (rank 1 of a short list). An index
without keys has one dense ranking, counted once.

Confidence is separate from the fused score: it must mean the same thing for every query, so it
is built from two absolute signals — the passage's cosine to the query (rescaled between a floor
typical of unrelated text and a ceiling typical of a clear answer) and BM25 coverage (the share
of the query's IDF mass the passage contains).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kb.embed import Embedder, encode_query
from kb.errors import InputError
from kb.normalize import clean, normalize, to_halfwidth, to_simplified
from kb.sparse import score_groups
from kb.spelling import Correction, HomophoneIndex
from kb.store import LoadedIndex
from kb.tokenize import Tokenizer, is_english
from kb.types import Hit, SearchFilters
from kb.vectors import entry_vectors, search_dense

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class RetrievalParams:
    rrf_k: int = 5
    dense_weight: float = 1.0  # passages by their best entry (own text or FAQ key)
    passage_weight: float = 1.0  # passages by their own vector alone
    bm25_weight: float = 1.0
    candidates: int = 50
    dense_floor: float = 0.78
    dense_ceiling: float = 0.90
    max_query_chars: int = 2000
    homophones: bool = True  # add index words the query seems to mistype (see spelling.py)


def confidence(cosine: float | None, coverage: float, params: RetrievalParams) -> float:
    if cosine is None:
        return float(coverage)
    span = max(params.dense_ceiling - params.dense_floor, 1e-6)
    dense_part = min(max((cosine - params.dense_floor) / span, 0.0), 1.0)
    return float(0.5 * dense_part + 0.5 * coverage)


def chunk_mask(index: LoadedIndex, filters: SearchFilters) -> np.ndarray:
    cache = index.__dict__.setdefault("_mask_cache", {})
    if filters not in cache:
        cache[filters] = np.fromiter((filters.accepts(c) for c in index.chunks), dtype=bool, count=len(index.chunks))
    return cache[filters]


def key_entries(index: LoadedIndex) -> np.ndarray:
    """Bool per entry: an FAQ question key (else the passage's own text)."""
    if "_key_entries" not in index.__dict__:
        kinds = [e.kind for e in index.entries]
        index.__dict__["_key_entries"] = np.fromiter((k == "question" for k in kinds), dtype=bool, count=len(kinds))
    return index.__dict__["_key_entries"]


def sparse_index(index: LoadedIndex, query: str) -> Any:
    """The BM25 index a query searches: for an English query the one that also holds the English
    FAQ keys, for any other the passages and Chinese keys alone. (One index over every entry cost
    the Chinese questions: 424 short English rows change BM25's length normalisation and IDF for
    all; on the tuning split 3 Chinese questions fell out of the top 3 and none came in.)"""
    if index.bm25_english is not None and is_english(query):
        return index.bm25_english
    return index.bm25


def homophone_index(index: LoadedIndex) -> HomophoneIndex:
    """Built once per loaded index (~30 ms for the default corpus' vocabulary)."""
    if "_homophones" not in index.__dict__:
        index.__dict__["_homophones"] = HomophoneIndex(index.bm25.vocab_dict)
    return index.__dict__["_homophones"]


def typo_corrections(index: LoadedIndex, tokenizer: Tokenizer, query: str) -> list[Correction]:
    return homophone_index(index).corrections(normalize(query), tokenizer)


def fix_domain_typos(index: LoadedIndex, tokenizer: Tokenizer, text: str) -> str:
    """`text` normalised, with homophone typos of the domain's own words replaced (呼交中心 ->
    呼叫中心, 文王文 -> 文网文): what the chat's message understanding (licence, causes, scope)
    reads. Only domain words, so a stray correction of everyday words (是一 -> 十一) never
    reaches the date parser."""
    return _replace_domain_typos(index, tokenizer, normalize(text))


def dense_query_text(index: LoadedIndex, tokenizer: Tokenizer, query: str, params: RetrievalParams) -> str:
    """What the embedding model reads: the query half-width and simplified (case kept), with the
    domain-word typos fixed as for the chat (the model cannot tell 呼交中心 is 呼叫中心), and an
    English query followed by the corpus's Chinese words for its terms from the synonym glossary
    ("…fee for renewing an ICP licence? (政府 费用 续期 许可证)").

    Typo fixes: dense alone on the eval's typo questions 0.860 -> 0.884 hit@3, tuning split 0.895 ->
    0.901; hybrid unchanged on tune (MRR 0.851), held out MRR 0.859 -> 0.861. Lower-casing as well
    (what BM25 reads) cost the English questions (dense 0.741 -> 0.704): passages are embedded with
    their case. The gloss: English questions hybrid hit@3 0.852 -> 0.926, MRR 0.726 -> 0.737; tune
    hit@3 0.961 -> 0.974, held out unchanged. Replacing the English by the gloss instead lost
    (dense 0.741 -> 0.481): the model reads English well enough, it only lacks the domain's words."""
    text = to_simplified(to_halfwidth(query))
    if params.homophones:
        text = _replace_domain_typos(index, tokenizer, text)
    gloss = tokenizer.chinese_gloss(text)  # empty unless the query is English
    return f"{text} ({' '.join(gloss)})" if gloss else text


def _replace_domain_typos(index: LoadedIndex, tokenizer: Tokenizer, text: str) -> str:
    # Corrections are found on the normalised text (cached per text, so BM25's use is free);
    # the typed windows are Han characters, which normalising leaves alone. A correction is
    # applied when it is a domain word or completes one with its neighbours (通信管理据: 管理局
    # is an everyday word, but the fix makes 通信管理局).
    for c in typo_corrections(index, tokenizer, text):
        fixed = text.replace(c.typed, c.word)
        if c.word in tokenizer.domain_words or any(
            c.word in w and fixed.count(w) > text.count(w) for w in tokenizer.domain_words
        ):
            text = fixed
    return text


def top_positive(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest positive scores, ties by index: what a stable argsort gives, but
    without sorting every entry (at 100k chunks the full sort alone took 11 ms)."""
    if k < len(scores):
        kth = float(scores[np.argpartition(-scores, k - 1)[k - 1]])
        candidates = np.nonzero(scores >= kth)[0] if kth > 0 else np.nonzero(scores > 0)[0]
    else:
        candidates = np.nonzero(scores > 0)[0]
    order = np.argsort(-scores[candidates], kind="stable")[:k]
    return [int(c) for c in candidates[order]]


def search(
    index: LoadedIndex,
    tokenizer: Tokenizer,
    embedder: Embedder | None,
    query: str,
    *,
    top_k: int = 5,
    mode: str = "hybrid",
    filters: SearchFilters | None = None,
    params: RetrievalParams | None = None,
    timings: dict[str, float] | None = None,
) -> list[Hit]:
    params = params or RetrievalParams()
    if mode not in MODES:
        raise InputError(f"Unknown search mode {mode!r}; choose one of: {', '.join(MODES)}.")
    if top_k < 1:
        raise InputError("top_k must be at least 1.")
    query = clean(query).strip()
    if not query:
        raise InputError("The query is empty; type what you are looking for.")
    if len(query) > params.max_query_chars:
        raise InputError(f"The query has {len(query)} characters; the limit is {params.max_query_chars}. Shorten it.")
    timings = timings if timings is not None else {}
    n_chunks = len(index.chunks)
    mask = chunk_mask(index, filters) if filters else None
    k = max(params.candidates, top_k)

    dense_rank: list[int] = []  # passages by their best entry, text or FAQ key
    passage_rank: list[int] = []  # by their own vector alone
    dense_cos: dict[int, float] = {}
    if mode in ("hybrid", "dense"):
        if embedder is None:
            raise InputError("Dense search needs the embedding model; it is not loaded.")
        t = time.perf_counter()
        qv = encode_query(embedder, dense_query_text(index, tokenizer, query, params))
        timings["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        allowed = np.nonzero(mask[index.entry_chunk])[0] if mask is not None else None
        scores, ids = search_dense(index.dense, qv, k * 3, allowed)
        is_key = key_entries(index)
        for score, entry in zip(scores, ids, strict=True):
            chunk = int(index.entry_chunk[entry])
            if chunk not in dense_cos:
                dense_cos[chunk] = float(score)
                dense_rank.append(chunk)
            if not is_key[entry]:
                passage_rank.append(chunk)  # one passage entry per chunk
        dense_rank = dense_rank[:k]
        # Without FAQ keys both rankings are the same: count it once.
        passage_rank = passage_rank[:k] if is_key.any() else []
        timings["faiss"] = time.perf_counter() - t

    t = time.perf_counter()
    terms = tokenizer.query_terms(query)
    if params.homophones:
        terms = tokenizer.extend(terms, [c.word for c in typo_corrections(index, tokenizer, query)])
    sparse = score_groups(sparse_index(index, query), terms)
    scored = index.entry_chunk[:len(sparse.scores)]  # the Chinese BM25 index stops before the English keys
    chunk_bm25 = np.zeros(n_chunks, dtype=np.float32)
    np.maximum.at(chunk_bm25, scored, sparse.scores)
    chunk_cov = np.zeros(n_chunks, dtype=np.float32)
    np.maximum.at(chunk_cov, scored, sparse.coverage)
    bm25_rank: list[int] = []
    if mode in ("hybrid", "bm25"):
        ranked = np.where(mask, chunk_bm25, 0.0) if mask is not None else chunk_bm25
        bm25_rank = top_positive(ranked, k)
    timings["bm25"] = time.perf_counter() - t

    t = time.perf_counter()
    fused: dict[int, float] = {}
    if mode == "hybrid":
        rankings = ((params.dense_weight, dense_rank), (params.passage_weight, passage_rank), (params.bm25_weight, bm25_rank))
        for weight, ranking in rankings:
            for r, chunk in enumerate(ranking):
                fused[chunk] = fused.get(chunk, 0.0) + weight / (params.rrf_k + r + 1)
    elif mode == "dense":
        fused = {c: dense_cos[c] for c in dense_rank}
    else:
        fused = {c: float(chunk_bm25[c]) for c in bm25_rank}
    best = sorted(fused, key=lambda c: (-fused[c], c))[:top_k]
    if embedder is not None and mode != "bm25":
        missing = [c for c in best if c not in dense_cos]
        if missing:  # found by BM25 only: still report its cosine for the confidence
            vecs = entry_vectors(index.dense, np.asarray(missing))
            for c, v in zip(missing, vecs @ qv, strict=True):
                dense_cos[c] = float(v)
    hits = []
    for rank, c in enumerate(best, start=1):
        cos = dense_cos.get(c)
        per_method = {"bm25": float(chunk_bm25[c]), "coverage": float(chunk_cov[c])}
        if cos is not None:
            per_method["dense"] = cos
        matched = tuple(term for term, m in sparse.matched if m[c])  # entry c is chunk c's own text
        hits.append(
            Hit(
                rank=rank,
                score=float(fused[c]),
                confidence=confidence(cos, float(chunk_cov[c]), params),
                chunk=index.chunks[c],
                scores=per_method,
                matched_terms=matched,
            )
        )
    timings["fusion"] = time.perf_counter() - t
    return hits
