"""Rebuild the index when the corpus changes (`kb watch`).

Polling, not inotify: a stat of every corpus file (mtime, size) each `poll_s` costs a few
milliseconds for a thousand files, works on every filesystem (network mounts, Docker volumes) and
needs no dependency. An editor saving a file often writes it several times in a row, so a rebuild
starts only once the corpus has stopped changing for `debounce_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from kb.config import Settings
from kb.embed import Embedder
from kb.errors import BuildLockedError, CorpusError, KBError
from kb.indexer import BuildReport, build_index
from kb.ingest import doc_id_for, iter_corpus_files

Snapshot = dict[str, tuple[int, int]]  # doc id -> (mtime_ns, size)


def snapshot(root: Path) -> Snapshot:
    """mtime and size of every file the indexer would read; an absent corpus is empty."""
    if not root.is_dir():
        return {}
    out: Snapshot = {}
    for path in iter_corpus_files(root):
        try:
            st = path.stat()
        except OSError:  # deleted between listing and stat
            continue
        out[doc_id_for(path, root)] = (st.st_mtime_ns, st.st_size)
    return out


class Debouncer:
    """Decides when a rebuild is due: the snapshot differs from the last built one and has not
    changed for `debounce_s`. Time comes from `clock` so tests can drive it."""

    def __init__(self, initial: Snapshot, *, debounce_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.debounce_s = debounce_s
        self._clock = clock
        self._built = initial  # what the index was last built from (or the state at start)
        self._seen = initial  # the latest snapshot
        self._changed_at = clock()
        self._retry_at: float | None = None

    def observe(self, snap: Snapshot) -> bool:
        """Record a new snapshot; True when a rebuild should start now."""
        now = self._clock()
        if snap != self._seen:
            self._seen = snap
            self._changed_at = now
            self._retry_at = None
        if self._retry_at is not None:
            return now >= self._retry_at
        return snap != self._built and now - self._changed_at >= self.debounce_s

    def built(self, snap: Snapshot) -> None:
        """A rebuild from `snap` finished (successfully or with an error that needs a new edit)."""
        self._built = snap
        self._retry_at = None

    def retry_in(self, seconds: float) -> None:
        """A rebuild could not run (lock held): try again later even without a new change."""
        self._retry_at = self._clock() + seconds

    @property
    def pending(self) -> bool:
        return self._seen != self._built


def watch(
    settings: Settings,
    *,
    debounce_s: float = 1.0,
    poll_s: float = 0.5,
    retry_s: float = 5.0,
    on_report: Callable[[BuildReport], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    embedder: Embedder | None = None,
    initial_build: bool = True,
) -> int:
    """Poll `settings.corpus` until `stop` is set (or KeyboardInterrupt) and build after changes
    settle. Build errors go to `on_error` and watching goes on. Returns the number of builds run."""
    if not settings.corpus.is_dir():
        raise CorpusError(f"Corpus directory {settings.corpus} does not exist; create it or pass --corpus DIR.")
    stop = stop or threading.Event()
    report_fn = on_report or (lambda _r: None)
    error_fn = on_error or (lambda _m: None)
    builds = 0

    def rebuild(snap: Snapshot, debouncer: Debouncer) -> None:
        nonlocal builds
        builds += 1
        try:
            report_fn(build_index(settings, embedder=embedder))
        except BuildLockedError as exc:
            error_fn(f"{exc} Retrying in {retry_s:g}s.")
            debouncer.retry_in(retry_s)
            return
        except KBError as exc:
            error_fn(str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad rebuild must not end the watch
            error_fn(f"Rebuild failed unexpectedly ({type(exc).__name__}: {exc}); still watching.")
        debouncer.built(snap)

    start = snapshot(settings.corpus)
    debouncer = Debouncer(start, debounce_s=debounce_s)
    if initial_build:  # an index older than the corpus is refreshed before waiting for edits
        rebuild(start, debouncer)
    while not stop.wait(poll_s):
        snap = snapshot(settings.corpus)
        if debouncer.observe(snap):
            rebuild(snap, debouncer)
    return builds
