"""`kb bench`: where the time and memory go. Suites (any subset, in this order):

- load: model load (+ fast query path set-up), index open, jieba load; checks they load once.
- search: latency p50/p95/p99 of `KnowledgeBase.search` per mode (hybrid, bm25, dense), per stage
  (encode, faiss, bm25, fusion), wall and CPU time; the query-vector cache is cleared before every
  timed query so every query is cold (cache hits are reported on their own). With `synthetic`
  > 0 the same on a synthetic index of that many chunks (kb/bench_synthetic.py), plus exact vs
  HNSW search time and HNSW recall@10.
- ask: `KnowledgeBase.ask` latency without an LLM (when the chat exists).
- build: a fresh full build of the corpus into a temporary folder (no embedding cache): chunks/s.
- rebuild: kb.bench_rebuild.run (incremental builds, save-to-live), when that module exists.

Queries are the project's eval questions (colloquial, typos, traditional, English), cycled to N.
Numbers are wall-clock on this machine as it is: the report records CPU count and load average,
and CPU time per query, so a busy machine shows as CPU time well below wall time.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from kb.config import Settings

SUITES = ("load", "search", "ask", "build", "rebuild")
DEFAULT_SUITES = ("load", "search", "ask", "build")
MODES = ("hybrid", "bm25", "dense")
STAGES = ("encode", "faiss", "bm25", "fusion")
ASK_MESSAGES = (
    "我们呼叫中心证续期被驳回了，说材料不齐，证是明年3月15号到期的，还来得及吗",
    "ICP证还有两个月到期，年报去年没报，现在还能续吗",
    "EDI许可证上个月已经过期了怎么办",
    "公司股权变更了，增值电信许可证续期要注意什么",
    "网络文化经营许可证什么时候开始申请续期",
)
Log = Callable[[str], None]


def parse_suites(text: str) -> tuple[str, ...]:
    from kb.errors import InputError

    names = [s.strip() for s in text.split(",") if s.strip()]
    if names == ["all"]:
        return SUITES
    unknown = [s for s in names if s not in SUITES]
    if unknown or not names:
        raise InputError(f"Unknown suite(s) {', '.join(unknown) or '(none)'}; choose from: {', '.join(SUITES)} or all.")
    return tuple(s for s in SUITES if s in names)


def pcts(values_ms: list[float]) -> dict[str, float]:
    a = np.asarray(values_ms, dtype=float)
    if a.size == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    return {k: round(float(v), 3) for k, v in
            (("p50", np.percentile(a, 50)), ("p95", np.percentile(a, 95)), ("p99", np.percentile(a, 99)), ("mean", a.mean()))}


def rss_mb() -> dict[str, float]:
    """Current RSS (psutil) and the process's peak so far (ru_maxrss, KiB on Linux)."""
    import psutil

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return {"rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1), "peak_rss_mb": round(peak, 1)}


def bench_queries(settings: Settings, n: int) -> list[str]:
    from kb.evaluate import load_questions

    try:
        texts = [q.question for q in load_questions(settings.eval_questions)]
    except Exception:  # noqa: BLE001 - no eval set: fall back to the chat examples
        texts = []
    texts = texts or list(ASK_MESSAGES)
    return [texts[i % len(texts)] for i in range(max(n, 1))]


def _clear_query_cache(kb: Any) -> None:
    cache = getattr(kb.embedder, "query_cache", None)
    if cache is not None:
        cache.clear()


def time_searches(kb: Any, queries: list[str], mode: str, *, warm: int = 3) -> dict[str, Any]:
    for q in queries[:warm]:
        kb.search(q, 5, mode=mode)
    wall, cpu, stages = [], [], {s: [] for s in STAGES}
    for q in queries:
        if mode != "bm25":
            _clear_query_cache(kb)
        timings: dict[str, float] = {}
        c, t = time.process_time(), time.perf_counter()
        kb.search(q, 5, mode=mode, timings=timings)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        for s in STAGES:
            if s in timings:
                stages[s].append(timings[s] * 1000)
    return {"n": len(queries), "total_ms": pcts(wall), "cpu_ms": pcts(cpu),
            "stages_ms": {s: pcts(v) for s, v in stages.items() if v}}


def suite_load(settings: Settings) -> dict[str, Any]:
    from kb import tokenize
    from kb.embed import load_embedder, model_location, prepare_model
    from kb.engine import KnowledgeBase

    out: dict[str, Any] = {}
    t = time.perf_counter()
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401
    out["import_torch_st_s"] = round(time.perf_counter() - t, 3)
    prepare_model(settings)
    # The process-wide embedder: in a fresh process this is the cold load (a second copy would
    # double the peak RSS this benchmark reports).
    embedder = load_embedder(settings)
    out["model_load_s"] = round(float(getattr(embedder, "load_seconds", 0.0)), 3)
    t = time.perf_counter()
    warm_up = getattr(embedder, "warm_up", None)
    if warm_up is not None:
        warm_up()
    out["query_path_setup_s"] = round(float(getattr(embedder, "fast_setup_seconds", time.perf_counter() - t)), 3)
    out["query_path"] = getattr(embedder, "query_path", "encode")
    tokenize.clear_cache()
    t = time.perf_counter()
    tokenize.get_tokenizer(query_expansion=settings.query_expansion).tokens("呼叫中心许可证续期")
    out["jieba_load_s"] = round(time.perf_counter() - t, 3)
    for verify in (True, False):
        t = time.perf_counter()
        kb = KnowledgeBase.open(settings=settings, verify_hashes=verify)
        out["index_open_s" if verify else "index_open_no_hash_s"] = round(time.perf_counter() - t, 3)
    first, again = kb.embedder, KnowledgeBase.open(settings=settings, verify_hashes=False)
    out["loads_once"] = bool(again.embedder is first and again.tokenizer is kb.tokenizer
                             and load_embedder(settings) is first)
    out["model"] = model_location(settings).name
    return out


def suite_search(kb: Any, queries: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"chunks": len(kb.index.chunks), "entries": len(kb.index.entries),
                           "dense_kind": kb.index.manifest.dense.get("kind"),
                           "query_path": getattr(kb.embedder, "query_path", "encode")}
    out["modes"] = {mode: time_searches(kb, queries, mode) for mode in MODES}
    # Cache hits: the same queries again without clearing.
    for q in queries:
        kb.search(q, 5)
    hits = []
    for q in queries:
        t = time.perf_counter()
        kb.search(q, 5)
        hits.append((time.perf_counter() - t) * 1000)
    out["hybrid_cached_query_ms"] = pcts(hits)
    return out


def suite_synthetic(kb: Any, queries: list[str], n: int, log: Log) -> dict[str, Any]:
    from kb.bench_synthetic import dense_comparison, synthetic_index
    from kb.engine import KnowledgeBase

    s = kb.settings
    log(f"synthetic: generating {n} chunks and their BM25 and FAISS indexes ...")
    loaded, vectors, times = synthetic_index(kb.index, kb.tokenizer, n, exact_max=s.exact_max_vectors,
                                             hnsw_m=s.hnsw_m, ef_search=s.hnsw_ef_search, k1=s.bm25_k1, b=s.bm25_b)
    big = KnowledgeBase(loaded, s, kb.tokenizer, kb.embedder)
    out: dict[str, Any] = {"chunks": n, "dense_kind": loaded.manifest.dense.get("kind"),
                           "build_s": {k: round(v, 2) for k, v in times.items()}}
    log(f"synthetic: timing searches ({loaded.manifest.dense.get('kind')}) ...")
    out["modes"] = {mode: time_searches(big, queries, mode) for mode in MODES}
    qv = kb.embedder.encode_queries(sorted(set(queries)))
    hnsw = loaded.dense if loaded.manifest.dense.get("kind") == "hnsw" else None
    log("synthetic: exact vs HNSW ...")
    out["dense"] = dense_comparison(vectors, qv, hnsw=hnsw)
    out["dense"]["ef_search"] = s.hnsw_ef_search
    out["memory"] = rss_mb()
    return out


def suite_ask(kb: Any, queries: list[str]) -> dict[str, Any]:
    from kb.engine import KnowledgeBase

    if not hasattr(KnowledgeBase, "ask"):
        return {"skipped": "KnowledgeBase.ask does not exist"}
    messages = list(ASK_MESSAGES) + queries
    today = date(2026, 6, 1)
    for m in messages[:3]:
        kb.ask(m, None, today=today)
    wall = []
    for m in messages:
        _clear_query_cache(kb)
        t = time.perf_counter()
        kb.ask(m, None, today=today)
        wall.append((time.perf_counter() - t) * 1000)
    return {"n": len(messages), "total_ms": pcts(wall)}


def suite_build(settings: Settings, embedder: Any) -> dict[str, Any]:
    from kb.indexer import build_index

    with tempfile.TemporaryDirectory(prefix="kb-bench-build-") as tmp:
        report = build_index(settings.replace(index=Path(tmp) / "index"), embedder=embedder)
    embed_s = report.timings.get("embed", 0.0) or 1e-9
    return {"documents": report.documents, "chunks": report.chunks, "entries": report.entries,
            "embedded": report.embedded, "seconds": report.seconds, "timings": report.timings,
            "chunks_per_s": round(report.chunks / report.seconds, 2) if report.seconds else None,
            "embeddings_per_s": round(report.embedded / embed_s, 2)}


def run(settings: Settings, *, queries: int = 100, synthetic: int = 100_000,
        suites: tuple[str, ...] = DEFAULT_SUITES, log: Log | None = None) -> dict[str, Any]:
    """Run the suites; the index in `settings.index` is only read."""
    from kb.engine import KnowledgeBase

    say = log or (lambda _msg: None)
    settings = settings.replace(llm_base_url="")  # ask is measured without a language model
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()],
                                          "torch_threads": settings.torch_threads,
                                          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")},
                              "settings": {"query_quantize": settings.query_quantize,
                                           "exact_max_vectors": settings.exact_max_vectors,
                                           "hnsw_m": settings.hnsw_m, "hnsw_ef_search": settings.hnsw_ef_search},
                              "suites": list(suites), "memory": {}}
    if "load" in suites:
        say("load: model, jieba, index ...")
        result["load"] = suite_load(settings)
        result["memory"]["after_load"] = rss_mb()
    kb = KnowledgeBase.open(settings=settings)
    qs = bench_queries(settings, queries)
    if "search" in suites:
        say(f"search: {len(qs)} queries x {len(MODES)} modes on {settings.index} ...")
        result["search"] = suite_search(kb, qs)
        result["memory"]["after_search"] = rss_mb()
    if "ask" in suites:
        say("ask ...")
        result["ask"] = suite_ask(kb, qs)
        result["memory"]["after_ask"] = rss_mb()
    if "build" in suites:
        say(f"build: fresh full build of {settings.corpus} (no embedding cache) ...")
        result["build"] = suite_build(settings, kb.embedder)
        result["memory"]["after_build"] = rss_mb()
    if "search" in suites and synthetic > 0:
        result["synthetic"] = suite_synthetic(kb, qs, synthetic, say)
    if "rebuild" in suites:
        try:
            from kb import bench_rebuild
        except ImportError:
            result["rebuild"] = {"skipped": "kb.bench_rebuild does not exist"}
        else:
            say("rebuild: kb.bench_rebuild.run ...")
            result["rebuild"] = bench_rebuild.run(settings, log=say)
    result["memory"]["end"] = rss_mb()
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


# -- the report ---------------------------------------------------------------------------------
def _row(label: str, m: dict[str, Any]) -> str:
    t, st = m["total_ms"], m["stages_ms"]
    cells = [f"{st[s]['p50']:.1f}" if s in st else "–" for s in STAGES]
    return (f"| {label} | {t['p50']:.1f} | {t['p95']:.1f} | {t['p99']:.1f} | {m['cpu_ms']['p50']:.1f} | "
            + " | ".join(cells) + " |")


def format_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"Machine: {m['cpus']} CPUs, load average {m['load_avg_start'][0]:.1f} at start / "
             f"{m['load_avg_end'][0]:.1f} at end, torch threads {m['torch_threads']}, "
             f"query int8 {r['settings']['query_quantize']}.", ""]
    blocks = []
    if "search" in r:
        blocks.append((f"default corpus ({r['search']['chunks']} chunks, {r['search']['dense_kind']})", r["search"]))
    if "synthetic" in r:
        blocks.append((f"synthetic {r['synthetic']['chunks']:,} chunks ({r['synthetic']['dense_kind']})", r["synthetic"]))
    if blocks:
        lines += ["| search (ms) | p50 | p95 | p99 | CPU p50 | encode p50 | FAISS p50 | BM25 p50 | fusion p50 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, block in blocks:
            for mode, stats in block["modes"].items():
                lines.append(_row(f"{mode}, {name}", stats))
        if "search" in r:
            c = r["search"]["hybrid_cached_query_ms"]
            lines += ["", f"Hybrid with the query vector cached (repeated question): p50 {c['p50']:.1f} ms, "
                      f"p95 {c['p95']:.1f} ms. Query path: {r['search']['query_path']}."]
    if "synthetic" in r:
        d = r["synthetic"]["dense"]
        lines += ["", "| dense only (ms) | p50 | p95 |", "|---|---|---|"]
        for n, p in d["exact_ms"].items():
            lines.append(f"| exact (Flat) at {int(n):,} vectors | {p['p50']:.2f} | {p['p95']:.2f} |")
        if "hnsw_ms" in d:
            lines.append(f"| HNSW at {r['synthetic']['chunks']:,} (efSearch {d['ef_search']}) | "
                         f"{d['hnsw_ms']['p50']:.2f} | {d['hnsw_ms']['p95']:.2f} |")
            lines.append(f"\nHNSW recall@10 against exact search: {d['hnsw_recall@10']:.3f}. "
                         f"Synthetic index build: {r['synthetic']['build_s']}.")
    other: list[str] = []  # rows of the table of other numbers, shown when there are any
    if "load" in r:
        ld = r["load"]
        other += [f"| import torch + sentence-transformers | {ld['import_torch_st_s']:.2f} s |",
                  f"| model load | {ld['model_load_s']:.2f} s |",
                  f"| fast query path set-up ({ld['query_path']}) | {ld['query_path_setup_s']:.2f} s |",
                  f"| jieba + dictionary load | {ld['jieba_load_s']:.2f} s |",
                  f"| index open (sha256 verified / not) | {ld['index_open_s']:.3f} s / {ld['index_open_no_hash_s']:.3f} s |",
                  f"| model, jieba, index load once per process | {'yes' if ld['loads_once'] else 'NO'} |"]
    if "ask" in r:
        a = r["ask"]
        other.append(f"| ask, no LLM ({a['n']} messages) | p50 {a['total_ms']['p50']:.1f} ms, p95 {a['total_ms']['p95']:.1f} ms |"
                     if "total_ms" in a else f"| ask | skipped: {a['skipped']} |")
    if "build" in r:
        b = r["build"]
        other.append(f"| full build, {b['documents']} docs / {b['chunks']} chunks / {b['entries']} entries, no cache | "
                     f"{b['seconds']:.1f} s = {b['chunks_per_s']} chunks/s ({b['embeddings_per_s']} embeddings/s) |")
    mem = r["memory"]
    for key in ("after_load", "after_search", "after_ask", "after_build"):
        if key in mem:
            other.append(f"| RSS {key.replace('_', ' ')} (current / peak) | {mem[key]['rss_mb']:.0f} MB / {mem[key]['peak_rss_mb']:.0f} MB |")
    if "synthetic" in r:
        s = r["synthetic"]["memory"]
        other.append(f"| RSS with the synthetic index loaded (current / peak) | {s['rss_mb']:.0f} MB / {s['peak_rss_mb']:.0f} MB |")
    if other:
        lines += ["", "| other | value |", "|---|---|", *other]
    if "rebuild" in r:
        lines += rebuild_lines(r["rebuild"])
    return "\n".join(lines)


def rebuild_lines(rebuild: dict) -> list[str]:
    """The rebuild suite's table: full, incremental and save-to-live seconds per corpus size."""
    if "skipped" in rebuild:
        return ["", f"Rebuild suite skipped: {rebuild['skipped']}."]
    lines = ["", "| corpus | full build | incremental, one document changed | up-to-date check |",
             "|---|---|---|---|"]
    for case in rebuild["cases"]:
        if "full_s" in case:
            full = f"{case['full_s']:.1f} s"
        else:
            estimate = case.get("full_s_estimated")
            full = (f"{case['full_without_embedding_s']:.1f} s + embedding"
                    + (f" ≈ {estimate:.0f} s in all" if estimate else ""))
        lines.append(f"| {case['name']}: {case['documents']} docs, {case['chunks']} chunks, {case['entries']} entries "
                     f"| {full} | {case['incremental_s']:.2f} s ({case['incremental_embedded']} embedded, "
                     f"{case['incremental_reused']} reused) | {case['up_to_date_check_s']:.2f} s |")
    for live in rebuild.get("save_to_live", []):
        seen = f"{live['seconds']:.1f} s" if live["seconds"] is not None else "not seen"
        lines.append(f"\nSave → live with `kb watch` running, {live['documents']} documents: {seen}"
                     + (f" (errors: {'; '.join(live['errors'])})" if live["errors"] else "") + ".")
    if "full_real" in rebuild:
        lines.append(f"\nReal full build of the large corpus: {rebuild['full_real']}.")
    return lines
