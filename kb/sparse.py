"""The keyword side: BM25 (bm25s, Lucene variant) over jieba tokens, scored per query-term group.

A query term and its synonyms form a group; a passage's score for the group is the best score of
any member, so expanding 续期 into 续期/延续/续证/换证 adds recall without quadrupling its weight.
The per-group matches also give `coverage`: the share of the query's IDF mass a passage matches,
which (unlike a BM25 score) is comparable across queries and feeds the confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kb.tokenize import QueryTerms


@dataclass(frozen=True)
class SparseScores:
    scores: np.ndarray  # (entries,) BM25 sum over groups
    coverage: np.ndarray  # (entries,) matched IDF share in [0, 1]
    matched: list[tuple[str, np.ndarray]]  # (term, bool mask over entries) for terms that matched somewhere


def build_bm25(token_lists: list[list[str]], *, k1: float, b: float) -> Any:
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    # An entry with no tokens (e.g. only punctuation) still needs a row; "" is bm25s's empty token.
    retriever.index([tokens or [""] for tokens in token_lists], show_progress=False)
    return retriever


def _idf(num_docs: int, df: int) -> float:
    return math.log(1 + (num_docs - df + 0.5) / (df + 0.5))


def term_weights(bm25: Any, terms: Any) -> dict[str, float]:
    """IDF of each term in the index (terms it lacks weigh like the rarest): what a word tells
    apart, for picking a passage's sentences that match the user's specific words."""
    num_docs = int(bm25.scores["num_docs"])
    indptr = bm25.scores["indptr"]
    weights = {}
    for term in terms:
        tid = bm25.vocab_dict.get(term)
        df = 0 if tid is None else int(indptr[tid + 1] - indptr[tid])
        weights[term] = _idf(num_docs, df)
    return weights


def score_groups(bm25: Any, terms: QueryTerms) -> SparseScores:
    num_docs = int(bm25.scores["num_docs"])
    indptr = bm25.scores["indptr"]
    total = np.zeros(num_docs, dtype=np.float32)
    covered = np.zeros(num_docs, dtype=np.float32)
    idf_mass = 0.0
    matched: list[tuple[str, np.ndarray]] = []
    for group in terms.groups:
        best = np.zeros(num_docs, dtype=np.float32)
        group_idf = 0.0
        for term in group:
            tid = bm25.vocab_dict.get(term)
            if tid is None or term == "":
                continue
            df = int(indptr[tid + 1] - indptr[tid])
            group_idf = max(group_idf, _idf(num_docs, df))
            vec = bm25.get_scores_from_ids([tid])
            matched.append((term, vec > 0))
            np.maximum(best, vec, out=best)
        if group_idf == 0.0:
            # No member occurs in the corpus: a term the knowledge base knows nothing about
            # weighs like the rarest possible term, so off-topic queries get low coverage.
            group_idf = _idf(num_docs, 0)
        idf_mass += group_idf
        total += best
        covered += (best > 0).astype(np.float32) * group_idf
    coverage = covered / idf_mass if idf_mass > 0 else covered
    return SparseScores(total, coverage, matched)
