"""Retrieval plumbing with a stand-in embedder; quality with the real model is in test_quality.py."""

import pytest

from kb.engine import KnowledgeBase
from kb.errors import InputError
from kb.indexer import build_index
from kb.types import SearchFilters


@pytest.fixture
def kb(hash_settings, hash_embedder) -> KnowledgeBase:
    build_index(hash_settings, embedder=hash_embedder)
    return KnowledgeBase.open(settings=hash_settings, embedder=hash_embedder)


def test_hits_carry_rank_score_ids_heading_text_and_method_scores(kb):
    hits = kb.search("续期要提前多少天申请", 3)
    assert [h.rank for h in hits] == [1, 2, 3]
    top = hits[0]
    assert top.doc_id == "renewal.md" and "90日" in top.text
    assert top.heading == "一、提前90日申请"
    assert top.title == "续期的基本规则" and "42号" in top.source
    assert {"dense", "bm25", "coverage"} <= set(top.scores)
    assert 0 <= top.confidence <= 1
    d = top.to_dict()
    assert {"rank", "score", "doc_id", "title", "source", "heading", "text"} <= set(d)


def test_traditional_query_finds_the_same_passage(kb):
    assert kb.search("續期要提前多少天申請", 1)[0].chunk_id == kb.search("续期要提前多少天申请", 1)[0].chunk_id


def test_bm25_mode_works_without_the_model(hash_settings, hash_embedder):
    build_index(hash_settings, embedder=hash_embedder)
    kb = KnowledgeBase.open(settings=hash_settings.replace(model="test/hash-embedder"), embedder=None)
    hits = kb.search("不良名单 年报", 2, mode="bm25")
    assert hits[0].doc_id == "annual.html"
    assert kb._embedder is None  # keyword search never loaded a model
    assert "不良名单" in hits[0].matched_terms


def test_filters_restrict_results(kb):
    hits = kb.search("材料", 10, filters=SearchFilters(doc_ids=("sub/materials.md",)))
    assert hits and {h.doc_id for h in hits} == {"sub/materials.md"}
    assert kb.search("材料", 10, filters=SearchFilters(licences=("vats",)))[0].doc_id == "renewal.md"
    assert kb.search("材料", 10, filters=SearchFilters(topics=("no-such-topic",))) == []


def test_synonyms_expand_keyword_search(kb):
    hits = kb.search("年检没做会怎样", 1, mode="bm25")
    assert hits[0].doc_id == "annual.html"  # 年检 is the old name of 年报
    assert "年报" in hits[0].matched_terms


@pytest.mark.parametrize("query", ["", "   ", "\x00\x01"])
def test_empty_queries_are_input_errors(kb, query):
    with pytest.raises(InputError, match="empty"):
        kb.search(query)


def test_overlong_query_and_bad_mode_are_input_errors(kb):
    with pytest.raises(InputError, match="limit"):
        kb.search("续期" * 5000)
    with pytest.raises(InputError, match="hybrid, dense, bm25"):
        kb.search("续期", mode="magic")


def _expected_fusion(kb, query: str, with_passages: bool) -> dict[str, float]:
    """RRF over the rankings retrieve.py documents, rebuilt independently: dense mode's ranking
    (best entry, text or FAQ key), BM25 mode's, and (with FAQ keys) the passages' own vectors."""
    p, n = kb.params, len(kb.index.chunks)
    rankings = [
        (p.dense_weight, [h.chunk_id for h in kb.search(query, n, mode="dense")]),
        (p.bm25_weight, [h.chunk_id for h in kb.search(query, n, mode="bm25")]),
    ]
    if with_passages:
        own = {e.chunk: i for i, e in enumerate(kb.index.entries) if e.kind == "chunk"}
        qv = kb.embedder.encode_queries([query])[0]
        cos = {c: float(kb.index.dense.reconstruct(i) @ qv) for c, i in own.items()}
        rankings.append((p.passage_weight, [kb.index.chunks[c].chunk_id for c in sorted(cos, key=lambda c: -cos[c])]))
    fused: dict[str, float] = {}
    for weight, ranking in rankings:
        for r, chunk_id in enumerate(ranking):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (p.rrf_k + r + 1)
    return fused


@pytest.mark.parametrize("query", ["续期要提前多少天申请", "证快到期了什么时候申请续期", "年报没报会怎样"])
def test_hybrid_fuses_best_entry_own_passage_and_bm25_rankings(kb, query):
    assert any(e.kind == "question" for e in kb.index.entries)  # the fixture corpus has a FAQ key
    expected = _expected_fusion(kb, query, with_passages=True)
    hits = kb.search(query, len(kb.index.chunks))
    assert {h.chunk_id: round(h.score, 9) for h in hits} == {c: round(s, 9) for c, s in expected.items()}


def test_without_faq_keys_the_dense_ranking_counts_once(hash_settings, hash_embedder):
    renewal = hash_settings.corpus / "renewal.md"
    text = renewal.read_text(encoding="utf-8")
    renewal.write_text(text.replace("questions:\n  - 证快到期了什么时候申请续期\n", ""), encoding="utf-8")
    build_index(hash_settings, embedder=hash_embedder)
    kb = KnowledgeBase.open(settings=hash_settings, embedder=hash_embedder)
    assert not any(e.kind == "question" for e in kb.index.entries)
    expected = _expected_fusion(kb, "续期要提前多少天申请", with_passages=False)
    hits = kb.search("续期要提前多少天申请", len(kb.index.chunks))
    assert {h.chunk_id: round(h.score, 9) for h in hits} == {c: round(s, 9) for c, s in expected.items()}


def test_english_faq_keys_serve_english_queries_and_leave_chinese_scores_alone(hash_settings, hash_embedder):
    def chinese_bm25(kb):
        return [(h.chunk_id, round(h.scores["bm25"], 6)) for h in kb.search("过期 宽限期", 5, mode="bm25")]

    build_index(hash_settings, embedder=hash_embedder)
    before = chinese_bm25(KnowledgeBase.open(settings=hash_settings, embedder=hash_embedder))
    renewal = hash_settings.corpus / "renewal.md"
    renewal.write_text(renewal.read_text(encoding="utf-8").replace(
        "questions:\n", "questions_en:\n  - q: Is there any grace period once the licence has lapsed?\n"
                        "    section: 二、过期的后果\nquestions:\n", 1), encoding="utf-8")
    build_index(hash_settings, embedder=hash_embedder)
    kb = KnowledgeBase.open(settings=hash_settings, embedder=hash_embedder)
    index = kb.index
    chinese_rows = sum(1 for e in index.entries if e.kind == "chunk" or e.text.startswith("证"))
    assert int(index.bm25.scores["num_docs"]) == chinese_rows == len(index.entries) - 1
    assert int(index.bm25_english.scores["num_docs"]) == len(index.entries)
    # "lapsed" occurs only in the English key: an English query finds the key's section by keyword
    (hit,) = kb.search("what if our licence lapsed", 1, mode="bm25")
    assert hit.heading == "二、过期的后果" and hit.scores["bm25"] > 0
    # a Chinese query is scored exactly as without the English key
    assert chinese_bm25(kb) == before
