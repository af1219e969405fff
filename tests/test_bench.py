"""`kb bench` on the small fixture corpus, and the fast query path against SentenceTransformer.encode.

Real model, real FAISS. No timing thresholds (the machine is shared): the report's shape, that
every number is positive, and that the fast (int8) query vectors agree with fp32 ones.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.config import Settings, load_settings

QUERIES = [
    "呼叫中心许可证续期被驳回了怎么办",
    "ICP证年报没报会怎样",
    "增值电信业务经营许可证到期前多久申请续期",
    "公司股权变更以后许可证要做什么",
    "材料不齐被退回，还能补交吗",
    "網絡文化經營許可證怎麼續期",  # traditional
    "EDI licence renewal rejected, what now?",
    "注册资本不够了还能续证吗",
]


@pytest.fixture(scope="module")
def fixture_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from tests_support import FIXTURE_CORPUS  # type: ignore[import-not-found]

    from kb.indexer import build_index

    root = tmp_path_factory.mktemp("bench")
    settings = load_settings({"corpus": FIXTURE_CORPUS, "index": root / "index"})
    build_index(settings)
    return settings


@pytest.fixture(scope="module")
def embedder(fixture_index: Settings):
    from kb.embed import load_embedder

    return load_embedder(fixture_index)


def _positive(block: dict) -> None:
    for key in ("p50", "p95", "p99", "mean"):
        assert block[key] > 0, block


def test_bench_command_report(fixture_index: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_CORPUS", str(fixture_index.corpus))
    # A small exact_max so the 1,500-chunk synthetic index is HNSW and recall is measured.
    monkeypatch.setenv("KB_EXACT_MAX_VECTORS", "1000")
    result = CliRunner().invoke(main, ["bench", "--index", str(fixture_index.index), "--queries", "4",
                                       "--synthetic", "1500", "--suite", "load,search,ask,build", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["suites"] == ["load", "search", "ask", "build"]
    for name, block in (("default", report["search"]), ("synthetic", report["synthetic"])):
        assert set(block["modes"]) == {"hybrid", "bm25", "dense"}, name
        for mode, stats in block["modes"].items():
            _positive(stats["total_ms"])
            expected = {"bm25", "fusion"} | ({"encode", "faiss"} if mode != "bm25" else set())
            assert set(stats["stages_ms"]) == expected, (name, mode)
            for stage in stats["stages_ms"].values():
                _positive(stage)
    assert report["synthetic"]["chunks"] == 1500
    assert report["synthetic"]["dense_kind"] == "hnsw"
    assert 0.5 <= report["synthetic"]["dense"]["hnsw_recall@10"] <= 1.0
    assert report["search"]["query_path"] in ("traced int8", "traced fp32")
    load = report["load"]
    assert load["loads_once"] is True
    assert load["model_load_s"] > 0 and load["index_open_s"] > 0 and load["jieba_load_s"] > 0
    build = report["build"]
    assert build["chunks"] > 0 and build["embedded"] == build["entries"] and build["chunks_per_s"] > 0
    assert report["memory"]["end"]["peak_rss_mb"] > 100
    if "total_ms" in report["ask"]:
        _positive(report["ask"]["total_ms"])


def test_bench_markdown_and_bad_suite(fixture_index: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["bench", "--index", str(fixture_index.index), "--queries", "2",
                                  "--synthetic", "0", "--suite", "search"])
    assert result.exit_code == 0, result.output
    assert "| hybrid, default corpus" in result.stdout and "encode p50" in result.stdout
    bad = runner.invoke(main, ["bench", "--index", str(fixture_index.index), "--suite", "search,speed"])
    assert bad.exit_code != 0
    assert "speed" in bad.output and "choose from" in bad.output and "Traceback" not in bad.output


def test_quantized_query_vectors_agree_with_fp32(embedder) -> None:
    assert embedder.query_quantize, "query_quantize is the default"
    fast = np.vstack([embedder.encode_query(q) for q in QUERIES])
    exact = embedder.encode_queries_exact(QUERIES)
    assert embedder.query_path == "traced int8"
    cos = (fast * exact).sum(axis=1)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    assert cos.mean() >= 0.99 and cos.min() >= 0.98, cos
    # The nearest of the other queries is the same for int8 and fp32.
    assert ((fast @ exact.T).argmax(axis=1) == np.arange(len(QUERIES))).all()


def test_query_cache_is_bounded_and_exact(embedder) -> None:
    from kb.query_encoder import LRUCache

    cache = LRUCache(2)
    for i, key in enumerate("abc"):
        cache.put(key, np.full(3, i, np.float32))
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") is not None
    embedder.query_cache.clear()
    first = embedder.encode_query(QUERIES[0])
    assert embedder.encode_query(QUERIES[0]) is first  # served from the cache
    assert not first.flags.writeable  # a shared vector cannot be changed by a caller


def test_fp32_fast_path_reproduces_encode(fixture_index: Settings) -> None:
    from kb.embed import SentenceTransformerEmbedder, model_location

    fp32 = SentenceTransformerEmbedder(model_location(fixture_index), query_quantize=False)
    fast = np.vstack([fp32.encode_query(q) for q in QUERIES])
    assert fp32.query_path == "traced fp32"
    cos = (fast * fp32.encode_queries_exact(QUERIES)).sum(axis=1)
    assert cos.min() >= 0.9999, cos


def test_top_positive_matches_a_stable_full_sort() -> None:
    from kb.retrieve import top_positive

    rng = np.random.default_rng(7)
    for _ in range(300):
        n, k = int(rng.integers(1, 200)), int(rng.integers(1, 60))
        scores = (rng.integers(0, 5, n) * rng.integers(0, 2, n)).astype(np.float32)  # many ties and zeros
        expected = [int(c) for c in np.argsort(-scores, kind="stable")[:k] if scores[c] > 0]
        assert top_positive(scores, k) == expected
