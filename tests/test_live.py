"""LiveKnowledgeBase: hot reload between requests, refusing broken or incompatible builds."""

from __future__ import annotations

import logging
import shutil
import threading
import time

import pytest
from hash_embedder import HashEmbedder

from kb.config import load_settings
from kb.errors import IndexMissingError
from kb.indexer import build_index
from kb.live import LiveKnowledgeBase
from kb.store import BUILDS, current_build_id, set_current

MARKER = "蓝鲸编号"  # a word no corpus document contains


def add_marker_doc(corpus, n: int = 1) -> None:
    (corpus / "marker.md").write_text(
        f"# 续期口令说明\n\n提交续期申请时请在备注栏填写{MARKER}{n}号，通信管理局据此查找档案。\n",
        encoding="utf-8",
    )


def marker_seen(kb) -> bool:
    return any(MARKER in h.text for h in kb.search(f"{MARKER}是什么", 3, mode="bm25"))


def copy_build_as(index, build_id: str, new_id: str):
    dest = index / BUILDS / new_id
    shutil.copytree(index / BUILDS / build_id, dest)
    return dest


def test_no_index_raises_the_usual_missing_error(hash_settings, hash_embedder):
    with pytest.raises(IndexMissingError, match="kb build"):
        LiveKnowledgeBase(hash_settings, embedder=hash_embedder)


def test_new_build_is_picked_up_and_in_flight_handles_keep_the_old_one(hash_settings, hash_embedder):
    first = build_index(hash_settings, embedder=hash_embedder)
    live = LiveKnowledgeBase(hash_settings, embedder=hash_embedder, check_interval_s=0)
    old = live.get()
    assert old.build_id == first.build_id and not marker_seen(old)

    add_marker_doc(hash_settings.corpus)
    second = build_index(hash_settings, embedder=hash_embedder)
    new = live.get()
    assert new.build_id == second.build_id and marker_seen(new)
    # A request holding the old handle finishes on the old build, even after it is pruned from disk.
    build_index(hash_settings, embedder=hash_embedder, force=True)
    assert not (hash_settings.index / BUILDS / first.build_id).exists()
    assert old.build_id == first.build_id and old.search("续期", 2) and not marker_seen(old)
    assert live.get().build_id != second.build_id
    status = live.status()
    assert status["swaps"] == 2 and status["freshness"]["state"] == "fresh"
    assert status["pointer_build_id"] == status["build_id"] == current_build_id(hash_settings.index)


def test_checks_are_rate_limited_and_reload_forces_one(hash_settings, hash_embedder):
    first = build_index(hash_settings, embedder=hash_embedder)
    live = LiveKnowledgeBase(hash_settings, embedder=hash_embedder, check_interval_s=3600)
    assert live.reload().status == "unchanged"
    add_marker_doc(hash_settings.corpus)
    second = build_index(hash_settings, embedder=hash_embedder)
    assert live.get().build_id == first.build_id  # not checked yet
    result = live.reload()
    assert (result.status, result.build_id, result.previous_build_id) == ("swapped", second.build_id, first.build_id)
    assert live.get().build_id == second.build_id


def test_corrupt_or_incompatible_builds_are_refused_and_the_old_one_keeps_serving(hash_settings, hash_embedder, caplog):
    good = build_index(hash_settings, embedder=hash_embedder).build_id
    live = LiveKnowledgeBase(hash_settings, embedder=hash_embedder, check_interval_s=0)
    index = hash_settings.index

    bad = "29990101T000000.000000Z-bad001"
    chunks = copy_build_as(index, good, bad) / "chunks.jsonl"
    chunks.write_bytes(chunks.read_bytes()[:-40])  # truncated
    set_current(index, bad)
    with caplog.at_level(logging.WARNING, logger="kb.live"):
        for _ in range(5):
            assert live.get().build_id == good
            assert live.get().search("续期", 1)
    refusals = [r for r in caplog.records if bad in r.getMessage()]
    assert len(refusals) == 1 and "truncated" in refusals[0].getMessage()  # logged once per bad build
    status = live.status()
    assert status["build_id"] == good and status["pointer_build_id"] == bad
    assert "truncated" in status["last_reload_error"] and status["freshness"]["state"] == "broken"
    result = live.reload()
    assert result.status == "refused" and result.build_id == good and "truncated" in result.reason

    # Same bytes, another model: incompatible with the loaded embedder.
    other = build_index(hash_settings.replace(index=index), embedder=HashEmbedder(name="other/model"), force=True)
    result = live.reload()
    assert result.status == "refused" and result.candidate_build_id == other.build_id
    assert "built with model 'other/model'" in result.reason and live.get().build_id == good

    # A sound build is accepted again and clears the error.
    fixed = build_index(hash_settings, embedder=hash_embedder, force=True).build_id
    assert live.get().build_id == fixed and live.status()["last_reload_error"] == ""


def test_a_pointer_that_disappears_keeps_the_old_build(hash_settings, hash_embedder):
    good = build_index(hash_settings, embedder=hash_embedder).build_id
    live = LiveKnowledgeBase(hash_settings, embedder=hash_embedder, check_interval_s=0)
    (hash_settings.index / "CURRENT").unlink()
    result = live.reload()
    assert result.status == "refused" and "CURRENT" in result.reason
    assert live.get().build_id == good and live.get().search("续期", 1)


# -- the real model --------------------------------------------------------------------------
@pytest.fixture
def real_small(tmp_path, corpus_copy):
    return load_settings({"corpus": corpus_copy, "index": tmp_path / "index"})


def test_concurrent_searches_during_a_rebuild_never_fail_real_model(real_small):
    from kb.embed import load_embedder

    first = build_index(real_small)
    live = LiveKnowledgeBase(real_small, check_interval_s=0.05)
    embedder = load_embedder(real_small)
    assert live.get().search("续期要提前多少天", 3)[0].doc_id == "renewal.md"

    errors: list[BaseException] = []
    seen: dict[str, int] = {}  # build id -> answers containing the new text
    served: dict[str, int] = {}  # build id -> requests answered
    stop = threading.Event()
    queries = ["续期要提前多少天", "办理许可证收费吗", f"{MARKER}是什么", "呼叫中心续期材料", "年报没报怎么办"]

    def client(offset: int) -> None:
        i = offset
        while not stop.is_set():
            kb = live.get()
            try:
                hits = kb.search(queries[i % len(queries)], 3)  # hybrid: the model, FAISS and BM25
                assert hits
                served[kb.build_id] = served.get(kb.build_id, 0) + 1
                if any(MARKER in h.text for h in hits):
                    seen[kb.build_id] = seen.get(kb.build_id, 0) + 1
            except BaseException as exc:  # noqa: BLE001 - every failure counts
                errors.append(exc)
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        add_marker_doc(real_small.corpus)
        report = build_index(real_small, embedder=embedder)
        assert report.added == ["marker.md"]
        deadline = time.monotonic() + 30
        while report.build_id not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert served.get(first.build_id, 0) > 0 and served.get(report.build_id, 0) > 0
    assert first.build_id not in seen
    assert seen.get(report.build_id, 0) > 0  # later requests answer from the new text
    assert live.get().build_id == report.build_id
    hits = live.get().search(f"{MARKER}是什么", 1)
    assert hits[0].doc_id == "marker.md"


def test_a_corrupted_new_build_is_refused_real_model(real_small, caplog):
    good = build_index(real_small).build_id
    live = LiveKnowledgeBase(real_small, check_interval_s=0)
    before = [h.to_dict() for h in live.get().search("续期要提前多少天", 3)]
    bad = "29990101T000000.000000Z-bad002"
    dense = copy_build_as(real_small.index, good, bad) / "dense.faiss"
    with dense.open("r+b") as fh:
        fh.truncate(dense.stat().st_size // 2)
    set_current(real_small.index, bad)
    with caplog.at_level(logging.WARNING, logger="kb.live"):
        kb = live.get()
    assert kb.build_id == good and [h.to_dict() for h in kb.search("续期要提前多少天", 3)] == before
    assert any("dense.faiss" in r.getMessage() for r in caplog.records)


def test_background_checks_swap_in_their_own_thread_and_refuse_there_too(hash_settings, hash_embedder, caplog):
    """The web app's mode: the request that notices a new pointer is not the one that opens it."""
    from kb.live import CHECK_THREAD

    good = build_index(hash_settings, embedder=hash_embedder).build_id
    live = LiveKnowledgeBase(hash_settings, embedder=hash_embedder, check_interval_s=0, background=True)

    def served_after_checks(build_id: str) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if live.get().build_id == build_id:
                return True
            time.sleep(0.02)
        return False

    add_marker_doc(hash_settings.corpus)
    second = build_index(hash_settings, embedder=hash_embedder).build_id
    with caplog.at_level(logging.INFO, logger="kb.live"):
        assert served_after_checks(second) and marker_seen(live.get())
        bad = "29990101T000000.000000Z-bad003"
        chunks = copy_build_as(hash_settings.index, second, bad) / "chunks.jsonl"
        chunks.write_bytes(chunks.read_bytes()[:-40])
        set_current(hash_settings.index, bad)
        deadline = time.monotonic() + 10
        while not any(bad in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            assert live.get().build_id == second  # the old build keeps serving meanwhile
            time.sleep(0.02)
    swaps = [r for r in caplog.records if "Index reloaded" in r.getMessage()]
    refusals = [r for r in caplog.records if bad in r.getMessage()]
    assert len(swaps) == 1 and swaps[0].threadName == CHECK_THREAD
    assert len(refusals) == 1 and refusals[0].threadName == CHECK_THREAD and "truncated" in refusals[0].getMessage()
    assert live.get().build_id == second and good != second
