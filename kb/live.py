"""`LiveKnowledgeBase`: the app's handle on whatever build `index/CURRENT` points at.

`get()` is called once per request. At most every `check_interval_s` one caller stats CURRENT;
when the pointer names a new build it is opened and checked (every file against its manifest
checksum, the model and tokenizer it was built with, one probe search), then the reference is
swapped. Requests already running keep the `KnowledgeBase` they got; only later `get()` calls see
the new one, so a swap never fails a request. A build that cannot be opened is refused, the old one
keeps serving, and the reason is logged once per build id.

The embedding model and jieba tokenizer are process-wide (see embed.py, tokenize.py), so opening a
new build costs reading its files, not reloading the model (0.1-0.15 s for the default corpus).
With `background=True` (the web app) that check runs in a thread of its own, so the request that
notices a new pointer is answered at once from the build it had; without it (scripts, tests) the
caller does the check and sees the new build on return.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from kb.config import Settings
from kb.embed import Embedder
from kb.engine import KnowledgeBase
from kb.errors import IndexIncompatibleError, KBError
from kb.freshness import index_status
from kb.store import CURRENT, current_build_id

log = logging.getLogger(__name__)

SWAPPED, UNCHANGED, REFUSED = "swapped", "unchanged", "refused"
CHECK_THREAD = "kb-index-check"  # the thread background checks run in


@dataclass(frozen=True)
class ReloadResult:
    status: str  # swapped | unchanged | refused
    build_id: str  # the build served after the check
    previous_build_id: str = ""
    candidate_build_id: str = ""  # what CURRENT pointed at
    reason: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LiveKnowledgeBase:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, check_interval_s: float = 1.0,
                 background: bool = False) -> None:
        self.settings = settings
        self.check_interval_s = float(check_interval_s)
        self.background = background
        self._embedder = embedder
        # Raises IndexMissingError ("Run `kb build`") and friends: with nothing to serve, fail loudly.
        self._kb = KnowledgeBase.open(settings=settings, embedder=embedder)
        self._pointer_sig = self._stat_pointer()
        self._next_check = time.monotonic() + self.check_interval_s
        self._check_lock = threading.Lock()  # one checker at a time; other callers never wait on it
        self._state_lock = threading.Lock()
        self._refused: dict[str, str] = {}  # build id -> reason, logged once each
        self._last_error = ""
        self._last_check_at = ""
        self._last_swap_at = ""
        self._swaps = 0

    # -- serving ----------------------------------------------------------------------------
    def get(self) -> KnowledgeBase:
        """The build to answer the current request from; checks for a new one now and then."""
        if time.monotonic() >= self._next_check and self._check_lock.acquire(blocking=False):
            if self.background:
                threading.Thread(target=self._check_then_release, name=CHECK_THREAD, daemon=True).start()
            else:
                try:
                    self._check(force=False)
                finally:
                    self._check_lock.release()
        return self._kb

    def _check_then_release(self) -> None:
        try:
            self._check(force=False)
        except Exception:  # noqa: BLE001 - a failed check must not kill later checks; the old build serves
            log.exception("Checking %s for a new index build failed", self.settings.index / CURRENT)
        finally:
            self._check_lock.release()

    @property
    def current(self) -> KnowledgeBase:
        """The build being served, without checking for a new one."""
        return self._kb

    def reload(self) -> ReloadResult:
        """Check CURRENT now (waiting for a check in progress) and swap if it names a new build.
        A build refused before is tried again: its files may have been repaired."""
        with self._check_lock:
            return self._check(force=True)

    # -- the check --------------------------------------------------------------------------
    def _stat_pointer(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.settings.index / CURRENT)
        except OSError:
            return None
        # CURRENT is replaced with os.replace, so a new pointer is a new inode.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _check(self, *, force: bool) -> ReloadResult:
        started = time.perf_counter()
        self._next_check = time.monotonic() + self.check_interval_s
        self._last_check_at = _now()
        old = self._kb
        sig = self._stat_pointer()
        if sig is not None and sig == self._pointer_sig and not force:
            return ReloadResult(UNCHANGED, old.build_id, old.build_id, old.build_id)
        candidate = current_build_id(self.settings.index)
        if candidate is None:
            reason = f"{self.settings.index / CURRENT} is missing; still serving build {old.build_id}"
            return self._refuse("", reason, old, started, sig)
        if candidate == old.build_id:
            self._pointer_sig = sig
            return ReloadResult(UNCHANGED, old.build_id, old.build_id, candidate, seconds=_since(started))
        if candidate in self._refused and not force:
            self._pointer_sig = sig
            return ReloadResult(REFUSED, old.build_id, old.build_id, candidate, self._refused[candidate], _since(started))
        try:
            new = self._open(candidate)
        except Exception as exc:  # noqa: BLE001 - any failure to open must leave the old build serving
            reason = str(exc) if isinstance(exc, KBError) else f"{type(exc).__name__}: {exc}"
            return self._refuse(candidate, reason, old, started, sig)
        with self._state_lock:
            self._kb = new  # one reference assignment: requests see either build, never a mix
            self._pointer_sig = sig
            self._refused.pop(candidate, None)
            self._last_error = ""
            self._last_swap_at = _now()
            self._swaps += 1
        log.info("Index reloaded: now serving build %s (was %s)", candidate, old.build_id)
        return ReloadResult(SWAPPED, candidate, old.build_id, candidate, seconds=_since(started))

    def _open(self, build_id: str) -> KnowledgeBase:
        old = self._kb
        embedder = self._embedder or old._embedder  # reuse the loaded model when there is one
        new = KnowledgeBase.open(settings=self.settings, embedder=embedder, build_id=build_id, verify_hashes=True)
        if embedder is not None:
            dim = new.index.manifest.model.get("dim")
            if dim is not None and int(dim) != embedder.dim:
                raise IndexIncompatibleError(
                    f"Build {build_id} has {dim}-dimensional vectors but the loaded model gives {embedder.dim}."
                )
        if new.index.dense.d != int(new.index.manifest.model.get("dim", new.index.dense.d)):
            raise IndexIncompatibleError(f"Build {build_id}: the dense index dimension does not match its manifest.")
        if new.index.chunks:
            # A probe search exercises BM25, FAISS and the chunk table together (and warms them up).
            probe = new.index.chunks[0].title or new.index.chunks[0].text[:20]
            mode = "hybrid" if embedder is not None else "bm25"
            new.search(probe, 1, mode=mode)
        return new

    def _refuse(self, build_id: str, reason: str, old: KnowledgeBase, started: float, sig) -> ReloadResult:
        with self._state_lock:
            first = self._refused.get(build_id) != reason
            self._refused[build_id] = reason
            self._last_error = f"build {build_id or '?'} refused: {reason}"
            self._pointer_sig = sig
        if first:
            log.warning("Refusing index build %s, still serving %s: %s", build_id or "(none)", old.build_id, reason)
        return ReloadResult(REFUSED, old.build_id, old.build_id, build_id, reason, _since(started))

    # -- reporting --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What the index panel shows: the served build, freshness against the corpus, last error."""
        kb = self._kb
        m = kb.index.manifest
        with self._state_lock:
            refused, last_error = dict(self._refused), self._last_error
        try:
            model_name = self._embedder.name if self._embedder is not None else None
            freshness: dict[str, Any] = index_status(self.settings, tokenizer=kb.tokenizer, model_name=model_name).to_dict()
        except KBError as exc:  # e.g. the corpus folder is gone
            freshness = {"state": "unknown", "message": str(exc)}
        return {
            "build_id": m.build_id,
            "created_at": m.created_at,
            "index_dir": str(self.settings.index),
            "pointer_build_id": current_build_id(self.settings.index) or "",
            "model": m.model.get("name"),
            "dim": m.model.get("dim"),
            "counts": dict(m.counts),
            "freshness": freshness,
            "last_reload_error": last_error,
            "refused_builds": refused,
            "last_check_at": self._last_check_at,
            "last_swap_at": self._last_swap_at,
            "swaps": self._swaps,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
