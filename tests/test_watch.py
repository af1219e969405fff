"""kb watch: corpus polling, debouncing, rebuilding, surviving bad files and a held lock."""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.errors import CorpusError
from kb.indexer import build_index, build_lock
from kb.store import current_build_id
from kb.watch import Debouncer, snapshot, watch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_snapshot_sees_what_the_indexer_reads(corpus_copy):
    (corpus_copy / "_draft.md").write_text("草稿", encoding="utf-8")
    (corpus_copy / "notes.xyz").write_text("不支持的格式", encoding="utf-8")
    assert sorted(snapshot(corpus_copy)) == ["annual.html", "fees.txt", "renewal.md", "sub/materials.md"]
    assert snapshot(corpus_copy / "missing") == {}


def test_debouncer_waits_for_the_corpus_to_settle():
    clock = FakeClock()
    d = Debouncer({"a.md": (1, 10)}, debounce_s=1.0, clock=clock)
    assert not d.observe({"a.md": (1, 10)})
    clock.now += 5
    assert not d.observe({"a.md": (1, 10)})  # nothing changed: never due
    edits = [{"a.md": (2, 11)}, {"a.md": (3, 12)}, {"a.md": (4, 13)}]
    for snap in edits:  # an editor saving three times, 0.5 s apart
        assert not d.observe(snap)
        clock.now += 0.5
    assert not d.observe(edits[-1])  # 0.5 s since the last change
    clock.now += 0.5
    assert d.observe(edits[-1]) and d.pending
    d.built(edits[-1])
    clock.now += 10
    assert not d.observe(edits[-1]) and not d.pending
    # Undoing an edit back to what was built needs no rebuild.
    assert not d.observe({"a.md": (5, 14)})
    assert not d.observe(edits[-1])
    clock.now += 2
    assert not d.observe(edits[-1])


def test_debouncer_retries_after_a_held_lock_without_a_new_edit():
    clock = FakeClock()
    d = Debouncer({}, debounce_s=0.5, clock=clock)
    snap = {"a.md": (1, 1)}
    d.observe(snap)
    clock.now += 1
    assert d.observe(snap)
    d.retry_in(5)
    clock.now += 4
    assert not d.observe(snap)
    clock.now += 1
    assert d.observe(snap)


class WatchThread:
    """watch() in a background thread with fast polling, collecting what it reports."""

    def __init__(self, settings, embedder, *, debounce_s: float = 0.3) -> None:
        self.reports: list = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=watch, args=(settings,),
            kwargs={"debounce_s": debounce_s, "poll_s": 0.05, "retry_s": 0.3, "on_report": self.reports.append,
                    "on_error": self.errors.append, "stop": self.stop, "embedder": embedder},
        )

    def __enter__(self) -> WatchThread:
        self.thread.start()
        wait_for(lambda: self.reports or self.errors)  # the initial build
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()

    @property
    def rebuilds(self) -> list:
        return [r for r in self.reports if not r.up_to_date]


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_edit_triggers_exactly_one_rebuild_after_the_debounce(hash_settings, hash_embedder):
    first = build_index(hash_settings, embedder=hash_embedder)
    fees = hash_settings.corpus / "fees.txt"
    with WatchThread(hash_settings, hash_embedder, debounce_s=0.3) as w:
        assert [r.up_to_date for r in w.reports] == [True]  # the index was already fresh
        for n in range(4):  # several quick saves of one edit
            fees.write_text(f"续期不收费（第{n}稿），代理费是服务费。", encoding="utf-8")
            time.sleep(0.05)
        saved = time.monotonic()
        wait_for(lambda: w.rebuilds)
        assert time.monotonic() - saved >= 0.25  # not before the corpus settled
        time.sleep(0.8)  # well past another debounce: nothing more happens
        assert len(w.rebuilds) == 1 and w.errors == []
        report = w.rebuilds[0]
        assert report.changed == ["fees.txt"] and report.added == report.removed == []
        assert current_build_id(hash_settings.index) == report.build_id != first.build_id


def test_a_stale_index_is_refreshed_when_watching_starts(hash_settings, hash_embedder):
    build_index(hash_settings, embedder=hash_embedder)
    (hash_settings.corpus / "annual.html").unlink()
    with WatchThread(hash_settings, hash_embedder) as w:
        assert len(w.reports) == 1 and w.reports[0].removed == ["annual.html"]


def test_bad_files_and_errors_do_not_stop_the_watcher(hash_settings, hash_embedder, tmp_path):
    build_index(hash_settings, embedder=hash_embedder)
    corpus = hash_settings.corpus
    with WatchThread(hash_settings, hash_embedder) as w:
        # A file that cannot be read: the rebuild goes on without it and says why.
        (corpus / "broken.docx").write_bytes(b"not a zip file at all")
        wait_for(lambda: w.rebuilds)
        assert any("broken.docx" in warning for warning in w.rebuilds[0].warnings)

        # A corpus with nothing readable: the build fails, the error is reported, watching goes on.
        saved = {p: p.read_bytes() for p in corpus.rglob("*") if p.is_file()}
        for p in saved:
            p.unlink()
        wait_for(lambda: w.errors)
        assert "empty" in w.errors[0]

        # Another build holds the lock: reported, then retried without a further edit.
        with build_lock(hash_settings.index):
            for p, data in saved.items():
                p.write_bytes(data)
            (corpus / "fees.txt").write_text("续期不收费（锁期间的修改）。", encoding="utf-8")
            wait_for(lambda: any("Another build is running" in e for e in w.errors))
        wait_for(lambda: len(w.rebuilds) == 2)
        assert w.rebuilds[1].changed == ["fees.txt"] and w.thread.is_alive()

        # And an ordinary edit after all that is still picked up.
        renewal = corpus / "renewal.md"
        renewal.write_text(renewal.read_text(encoding="utf-8") + "\n补充：续期材料要加盖公章。\n", encoding="utf-8")
        wait_for(lambda: len(w.rebuilds) == 3)
        assert w.rebuilds[2].changed == ["renewal.md"]

def test_watch_refuses_a_missing_corpus(hash_settings, tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        watch(hash_settings.replace(corpus=tmp_path / "nope"), stop=threading.Event())
    result = CliRunner().invoke(main, ["watch", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "i")])
    assert result.exit_code == 1 and "does not exist" in result.output
