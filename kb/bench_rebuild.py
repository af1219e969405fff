"""Rebuild benchmarks: full vs incremental builds, and the time from saving a file to the app
answering from it while `kb watch` runs. `python -m kb.bench_rebuild --help`.

Scaled corpora are the real documents copied into N variants (distinct folder, title and a
variant sentence, so every chunk text differs). Embedding thousands of variant chunks on a small
CPU takes longer than the rest of the benchmark together, so for scaled corpora the embedding
cache is seeded with the vector of the source chunk each variant chunk was copied from: the build
then does all its real work except embedding (scan, chunk, BM25, FAISS, write), and the full
build time is reported as that measured time plus the embedding count divided by the embedding
rate measured on the default corpus (`full_s_estimated`). A real full build of a scaled corpus can
be run, time-boxed, with `full_box_s`. Incremental builds and save-to-live are always measured.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kb.chunking import ChunkingParams, chunk_document
from kb.config import Settings
from kb.embed import Embedder, load_embedder, prepare_model
from kb.embed_cache import EmbeddingCache, text_key
from kb.indexer import BuildReport, build_index
from kb.ingest import scan_corpus, split_front_matter

MARKER = "蓝鲸编号"  # a word no corpus document contains
REGIONS = ("北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东", "福建", "河南", "湖南", "安徽",
           "河北", "陕西", "重庆", "天津", "辽宁", "江西", "广西", "云南", "贵州", "山西", "吉林", "海南")


class _TimeBox(Exception):
    pass


def make_variants(src: Path, dest: Path, documents: int) -> int:
    """Write `documents` files under dest: copies of the .md files of src, variant by variant."""
    import yaml

    files = sorted(p for p in src.rglob("*.md") if p.name != "README.md" and not p.name.startswith(("_", ".")))
    written = 0
    for v in range(math.ceil(documents / len(files))):
        region = REGIONS[v % len(REGIONS)] + (str(v // len(REGIONS)) if v >= len(REGIONS) else "")
        for path in files:
            if written == documents:
                return written
            meta, body = split_front_matter(path.read_text(encoding="utf-8"))
            meta["title"] = f"{meta.get('title') or path.stem}（{region}版）"
            body = body.rstrip() + f"\n\n本文为{region}地区的办理参考，具体以{region}通信管理局的要求为准。\n"
            out = dest / f"v{v:02d}" / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
            out.write_text(f"---\n{front}---\n\n{body}", encoding="utf-8")
            written += 1
    return written


def seed_cache(corpus: Path, source_corpus: Path, index: Path, embedder: Embedder, settings: Settings) -> int:
    """Give every variant chunk the cached vector of the source chunk it was copied from."""
    params = ChunkingParams(settings.chunk_min_chars, settings.chunk_max_chars)
    cache = EmbeddingCache(index / "cache", embedder.name, embedder.dim)
    sources = {d.doc_id: chunk_document(d, params) for d in scan_corpus(source_corpus).documents}
    keep: set[str] = set()
    for doc in scan_corpus(corpus).documents:
        original = sources[doc.doc_id.split("/", 1)[1]]
        for i, chunk in enumerate(chunk_document(doc, params)):
            src = original[min(i, len(original) - 1)]
            vec = cache.get(text_key("passage", src.context_text()))
            if vec is not None:
                key = text_key("passage", chunk.context_text())
                cache.put(key, vec)
                keep.add(key)
        keep.update(text_key("query", q) for q in doc.questions)
    cache.save(keep)
    return len(keep)


def edit_one_document(corpus: Path, note: str) -> str:
    """Append a paragraph to one mid-sized document; returns its doc id."""
    files = sorted(p for p in corpus.rglob("*.md") if p.name != "README.md")
    path = files[len(files) // 2]
    path.write_text(path.read_text(encoding="utf-8").rstrip() + f"\n\n{note}\n", encoding="utf-8")
    return path.relative_to(corpus).as_posix()


def _build(settings: Settings, embedder: Embedder, box_s: float | None = None, **kw: Any) -> BuildReport:
    deadline = time.monotonic() + box_s if box_s else None

    def on_stage(stage: str, done: int, total: int) -> None:
        if deadline is not None and stage == "embed" and time.monotonic() > deadline:
            raise _TimeBox(done, total)

    return build_index(settings, embedder=embedder, on_stage=on_stage, **kw)


def _case(name: str, settings: Settings, embedder: Embedder, *, seeded: bool, rate: float | None,
          keep_cache: Path | None = None) -> dict[str, Any]:
    full = _build(settings, embedder)
    if keep_cache is not None:  # the vectors of the unedited corpus, to seed the scaled cases from
        shutil.copytree(settings.index / "cache", keep_cache)
    out: dict[str, Any] = {
        "name": name, "documents": full.documents, "chunks": full.chunks, "entries": full.entries,
        "full_s" if not seeded else "full_without_embedding_s": full.seconds,
        "full_timings": full.timings, "embedded": full.embedded, "reused": full.reused,
    }
    if seeded and rate:
        out["full_s_estimated"] = round(full.seconds + (full.embedded + full.reused) / rate, 1)
    noop = _build(settings, embedder)
    out["up_to_date_check_s"] = noop.seconds
    doc = edit_one_document(settings.corpus, "补充说明：续期申请提交后，请留意短信和系统通知，按要求补正材料。")
    inc = _build(settings, embedder)
    out.update({"changed_doc": doc, "incremental_s": inc.seconds, "incremental_embedded": inc.embedded,
                "incremental_reused": inc.reused, "incremental_timings": inc.timings})
    return out


def save_to_live(settings: Settings, embedder: Embedder, *, debounce_s: float = 1.0, poll_s: float = 0.5,
                 check_interval_s: float = 1.0, timeout_s: float = 120.0) -> dict[str, Any]:
    """Seconds from writing a file to LiveKnowledgeBase.get() answering from it, `kb watch` running."""
    from kb.live import LiveKnowledgeBase
    from kb.watch import watch

    reports: list[BuildReport] = []
    errors: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(settings,), kwargs={
        "debounce_s": debounce_s, "poll_s": poll_s, "on_report": reports.append, "on_error": errors.append,
        "stop": stop, "embedder": embedder}, daemon=True)
    live = LiveKnowledgeBase(settings, embedder=embedder, check_interval_s=check_interval_s, background=True)
    watcher.start()
    try:
        while not (reports or errors):
            time.sleep(0.05)
        code = f"{MARKER}{os.getpid() % 1000}"
        saved = time.perf_counter()
        doc = edit_one_document(settings.corpus, f"提交续期申请时请在备注栏填写{code}号，便于查找档案。")
        seen = None
        build_id = live.get().build_id
        while time.perf_counter() - saved < timeout_s:
            # Cheap checks until a new build is served, then one real (hybrid) request: a tight loop
            # of searches would compete with the rebuild for the CPU and the model.
            kb = live.get()
            if kb.build_id != build_id:
                build_id = kb.build_id
                if any(code in h.text for h in kb.search(f"{code}是什么", 3)):
                    seen = round(time.perf_counter() - saved, 2)
                    break
            time.sleep(0.05)
    finally:
        stop.set()
        watcher.join()
    rebuild = next((r for r in reports if not r.up_to_date), None)
    return {"documents": rebuild.documents if rebuild else None, "changed_doc": doc, "seconds": seen,
            "build_s": rebuild.seconds if rebuild else None, "debounce_s": debounce_s, "poll_s": poll_s,
            "check_interval_s": check_interval_s, "errors": errors}


def run(settings: Settings, *, scale: int = 10, documents: int = 1000, full_box_s: float = 0.0,
        workdir: Path | None = None, log=None) -> dict[str, Any]:
    """Run every case in a temporary folder (the settings' index is never touched); returns numbers."""
    say = log or (lambda _msg: None)
    root = Path(workdir or tempfile.mkdtemp(prefix="kb-bench-rebuild-"))
    started = time.perf_counter()
    prepare_model(settings)
    t = time.perf_counter()
    embedder = load_embedder(settings)
    result: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(),
                              "model_load_s": round(time.perf_counter() - t, 1), "cases": []}
    try:
        base = settings.replace(corpus=root / "default" / "corpus", index=root / "default" / "index")
        shutil.copytree(settings.corpus, base.corpus)
        say("default corpus: full build (every chunk embedded) ...")
        seed = root / "default" / "seed-cache"
        default = _case("default", base, embedder, seeded=False, rate=None, keep_cache=seed)
        embed_s = default["full_timings"].get("embed", 0.0)
        rate = default["embedded"] / embed_s if embed_s else None
        default["embed_per_s"] = round(rate, 2) if rate else None
        result["cases"].append(default)
        say(f"  {default}")
        say("save-to-live with the watcher, default corpus ...")
        result["save_to_live"] = [save_to_live(base, embedder)]
        say(f"  {result['save_to_live'][-1]}")
        live_settings = base
        source = root / "default" / "source"
        shutil.copytree(settings.corpus, source)
        for name, count in ((f"x{scale}", scale * default["documents"]), (f"{documents}docs", documents)):
            s = settings.replace(corpus=root / name / "corpus", index=root / name / "index")
            make_variants(source, s.corpus, count)
            shutil.copytree(seed, s.index / "cache")
            say(f"{name}: seeding the embedding cache for {count} documents ...")
            seed_cache(s.corpus, source, s.index, embedder, settings)
            case = _case(name, s, embedder, seeded=True, rate=rate)
            result["cases"].append(case)
            say(f"  {case}")
            live_settings = s
        say(f"save-to-live with the watcher on {live_settings.corpus} ...")
        result["save_to_live"].append(save_to_live(live_settings, embedder))
        say(f"  {result['save_to_live'][-1]}")
        if full_box_s > 0:
            say(f"real full build of {documents} documents, time box {full_box_s:g}s ...")
            s = live_settings.replace(index=root / "full-real" / "index")
            t = time.perf_counter()
            try:
                report = _build(s, embedder, box_s=full_box_s)
                result["full_real"] = {"documents": report.documents, "seconds": report.seconds,
                                       "embedded": report.embedded, "completed": True}
            except _TimeBox as exc:
                done, total = exc.args
                elapsed = time.perf_counter() - t
                # `total` counts chunk passages only; FAQ questions (entries - chunks) are embedded after them.
                embeddings = total + (result["cases"][-1]["entries"] - result["cases"][-1]["chunks"])
                result["full_real"] = {"completed": False, "stopped_after_s": round(elapsed, 1), "embedded": done,
                                       "embeddings_total": embeddings,
                                       "estimated_full_s": round(elapsed * embeddings / done, 0) if done else None}
            say(f"  {result['full_real']}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["load_avg_end"] = os.getloadavg()
    result["total_s"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json
    import sys

    from kb.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m kb.bench_rebuild", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10, help="variants of the corpus for the scaled case")
    parser.add_argument("--documents", type=int, default=1000, help="documents in the large case")
    parser.add_argument("--full-box", type=float, default=0.0, help="also try a real full build of the large case, "
                        "stopping after this many seconds (0: skip)")
    args = parser.parse_args(argv)
    result = run(load_settings(), scale=args.scale, documents=args.documents, full_box_s=args.full_box,
                 log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
