"""Is the live index still what `kb build` would make from the corpus and settings now?

Cheap by design (it backs `kb status`, cron checks and the consultant index panel): it hashes the
corpus files and reads the live manifest, checks that the build's files exist with their sizes,
and compares the build parameters. Nothing is parsed, chunked or embedded.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kb.config import Settings
from kb.embed import model_location
from kb.errors import CorpusError, IndexMissingError, KBError
from kb.indexer import _manifest_key, compatibility_key
from kb.ingest import doc_id_for, iter_corpus_files
from kb.manifest import Manifest
from kb.store import current_build_id, load_manifest, resolve_build, verify_files
from kb.tokenize import Tokenizer, get_tokenizer

FRESH, STALE, MISSING, BROKEN = "fresh", "stale", "missing", "broken"
EXIT_CODES = {FRESH: 0, STALE: 1, MISSING: 2, BROKEN: 2}


@dataclass(frozen=True)
class IndexStatus:
    state: str  # fresh | stale | missing | broken
    message: str
    index_dir: str = ""
    corpus_dir: str = ""
    build_id: str = ""
    created_at: str = ""
    added: list[str] = field(default_factory=list)  # doc ids (paths relative to the corpus)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)  # build parameters that differ, in words

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    @property
    def fresh(self) -> bool:
        return self.state == FRESH

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def corpus_hashes(root: Path, *, max_file_mb: float = 20.0) -> dict[str, str]:
    """doc id -> sha256 of every file the indexer would consider, as `scan_corpus` records them
    (files over the size limit or unreadable are not recorded there either)."""
    if not root.is_dir():
        raise CorpusError(f"Corpus directory {root} does not exist; create it or pass --corpus DIR.")
    hashes: dict[str, str] = {}
    limit = max_file_mb * 1024 * 1024
    for path in iter_corpus_files(root):
        try:
            if path.stat().st_size > limit:
                continue
            hashes[doc_id_for(path, root)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
    return hashes


def index_status(
    settings: Settings,
    *,
    tokenizer: Tokenizer | None = None,
    model_name: str | None = None,
    verify_hashes: bool = False,
) -> IndexStatus:
    """Compare the live build with the corpus on disk and the configured build parameters
    (`model_name` overrides the configured model, for a caller that builds with its own embedder).

    Raises CorpusError when the corpus folder does not exist (nothing to compare with)."""
    index_dir, corpus_dir = settings.index, settings.corpus
    base = {"index_dir": str(index_dir), "corpus_dir": str(corpus_dir)}
    try:
        build_dir = resolve_build(index_dir)
    except IndexMissingError as exc:
        return IndexStatus(MISSING, str(exc), **base)
    except KBError as exc:
        return IndexStatus(BROKEN, str(exc), build_id=current_build_id(index_dir) or "", **base)
    try:
        manifest = load_manifest(build_dir)
        verify_files(build_dir, manifest, hashes=verify_hashes)
    except KBError as exc:
        return IndexStatus(BROKEN, str(exc), build_id=build_dir.name, **base)

    on_disk = corpus_hashes(corpus_dir, max_file_mb=settings.max_file_mb)
    built = manifest.corpus_files
    added = sorted(set(on_disk) - set(built))
    removed = sorted(set(built) - set(on_disk))
    changed = sorted(k for k in on_disk if k in built and built[k] != on_disk[k])
    parameters = parameter_differences(manifest, settings, tokenizer, model_name)
    info = {"build_id": manifest.build_id, "created_at": manifest.created_at, **base}
    if not (added or removed or changed or parameters):
        n = manifest.counts.get("documents", 0)
        return IndexStatus(FRESH, f"Index {manifest.build_id} is up to date with {corpus_dir} ({n} documents).", **info)
    parts = [f"{len(v)} {k}" for k, v in (("added", added), ("changed", changed), ("removed", removed)) if v]
    reasons = ([f"corpus files: {', '.join(parts)}"] if parts else []) + parameters
    message = f"Index {manifest.build_id} is stale ({'; '.join(reasons)}). Run `kb build` to refresh it."
    return IndexStatus(STALE, message, added=added, changed=changed, removed=removed, parameters=parameters, **info)


def parameter_differences(
    manifest: Manifest, settings: Settings, tokenizer: Tokenizer | None = None, model_name: str | None = None
) -> list[str]:
    """What `kb build` would build differently from this manifest, one phrase per parameter."""
    tokenizer = tokenizer or get_tokenizer(oov_bigrams=settings.oov_bigrams, query_expansion=settings.query_expansion)
    if tokenizer.oov_bigrams != settings.oov_bigrams:  # a caller's tokenizer for other settings
        tokenizer = get_tokenizer(oov_bigrams=settings.oov_bigrams, query_expansion=settings.query_expansion)
    want = compatibility_key(
        settings, tokenizer, model_name or model_location(settings).name, manifest.dense.get("count")
    )
    have = _manifest_key(manifest)
    out: list[str] = []
    for key, wanted in want.items():
        if have.get(key) == wanted:
            continue
        if key == "tokenizer":
            # Name what moved (jieba version, a dictionary file, options) without dumping hashes.
            old = have.get(key) if isinstance(have.get(key), dict) else {}
            moved = [k for k in sorted(set(old) | set(wanted)) if old.get(k) != wanted.get(k)]
            files = old.get("files", {}) if isinstance(old.get("files"), dict) else {}
            moved = [k for k in moved if k != "files"] + [
                f"{name} file" for name in sorted(set(files) | set(wanted.get("files", {})))
                if files.get(name) != wanted.get("files", {}).get(name)
            ]
            out.append(f"tokenizer differs ({', '.join(moved) or 'fingerprint'})")
        else:
            out.append(f"{key.replace('_', ' ')}: index has {_short(have.get(key))}, settings want {_short(wanted)}")
    return out


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)
