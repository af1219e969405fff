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
