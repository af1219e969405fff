"""The index on disk: one folder per build, a CURRENT pointer flipped atomically.

    index/
      CURRENT                    build id of the live build (replaced with os.replace)
      builds/<build_id>/
        documents.jsonl          one document per line (metadata and text, for the document view)
        chunks.jsonl             one chunk per line
        entries.jsonl            searchable entries: every chunk, plus FAQ question keys -> chunk
        dense.faiss              FAISS index over normalised entry vectors (inner product)
        bm25/                    bm25s index over jieba tokens of the entries
        manifest.json            written last: what built it, sha256 of every file above
      cache/                     embedding cache (see embed_cache.py)

A build is written into `builds/.<id>.tmp`, renamed to `builds/<id>` when complete, and only
then made live by replacing CURRENT: readers never see a half-written build.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError
from kb.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    Manifest,
    atomic_write_text,
    fsync_dir,
    read_manifest,
    sha256_file,
)
from kb.types import Chunk

CURRENT = "CURRENT"
BUILDS = "builds"
BM25_ENGLISH = "bm25-english"  # the English queries' BM25 index, in a build folder


@dataclass(frozen=True)
class Entry:
    chunk: int  # index into chunks
    kind: str  # "chunk" or "question"
    text: str


@dataclass
class LoadedIndex:
    build_dir: Path
    manifest: Manifest
    documents: dict[str, dict[str, Any]]
    chunks: list[Chunk]
    entries: list[Entry]
    entry_chunk: np.ndarray  # int32, entry -> chunk index
    dense: Any  # faiss.Index
    bm25: Any  # bm25s.BM25 over the passages and the Chinese FAQ keys: what a Chinese query searches
    # Over every entry, English FAQ keys (the last entries) included: what an English query
    # searches. None when the corpus has no English keys.
    bm25_english: Any = None

    @property
    def build_id(self) -> str:
        return self.manifest.build_id


# -- pointer ----------------------------------------------------------------------------------
def current_build_id(index_dir: Path) -> str | None:
    try:
        value = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def set_current(index_dir: Path, build_id: str) -> None:
    atomic_write_text(index_dir / CURRENT, build_id + "\n")


def build_dirs(index_dir: Path) -> list[Path]:
    root = index_dir / BUILDS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


# -- writing ----------------------------------------------------------------------------------
def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def file_table(build_dir: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file in a build folder except the manifest."""
    table: dict[str, dict[str, Any]] = {}
    for path in sorted(build_dir.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            rel = path.relative_to(build_dir).as_posix()
            table[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return table


def publish_build(index_dir: Path, tmp_dir: Path, build_id: str) -> Path:
    """Rename a complete temporary build folder into place and make it live."""
    final = index_dir / BUILDS / build_id
    fsync_dir(tmp_dir)
    os.replace(tmp_dir, final)
    fsync_dir(final.parent)
    set_current(index_dir, build_id)
    return final


def prune_builds(index_dir: Path, keep: int = 2) -> list[str]:
    """Remove unfinished temporary builds and all but the live and the previous build.
    Call with the build lock held."""
    removed: list[str] = []
    root = index_dir / BUILDS
    if not root.is_dir():
        return removed
    for tmp in root.glob(".*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp.name)
    live = current_build_id(index_dir)
    builds = build_dirs(index_dir)  # build ids sort by time
    survivors = [b for b in builds if b.name == live]
    survivors += [b for b in reversed(builds) if b.name != live][: max(keep - 1, 0)]
    for build in builds:
        if build not in survivors:
            shutil.rmtree(build, ignore_errors=True)
            removed.append(build.name)
    return removed


# -- reading ----------------------------------------------------------------------------------
def resolve_build(index_dir: Path, build_id: str | None = None) -> Path:
    if not index_dir.exists():
        raise IndexMissingError(f"No index at {index_dir}. Run `kb build` to create it.")
    build_id = build_id or current_build_id(index_dir)
    if build_id is None:
        raise IndexMissingError(f"No live index in {index_dir} (no CURRENT pointer). Run `kb build`.")
    build_dir = index_dir / BUILDS / build_id
    if not (build_dir / MANIFEST).is_file():
        raise IndexCorruptError(
            f"The live index build {build_id} in {index_dir} is incomplete or missing. Run `kb build` to rebuild it."
        )
    return build_dir


def load_manifest(build_dir: Path) -> Manifest:
    try:
        manifest = read_manifest(build_dir)
    except (OSError, ValueError, TypeError) as exc:
        raise IndexCorruptError(
            f"The manifest of {build_dir} cannot be read ({exc}). Run `kb build` to rebuild the index."
        ) from None
    if manifest.format_version != FORMAT_VERSION:
        raise IndexIncompatibleError(
            f"Index {build_dir.name} has format version {manifest.format_version}; this version of kb reads "
            f"version {FORMAT_VERSION}. Run `kb build` to rebuild it."
        )
    return manifest


def verify_files(build_dir: Path, manifest: Manifest, *, hashes: bool = True) -> None:
    """Every file the manifest lists exists with its size (and sha256)."""
    for rel, meta in manifest.files.items():
        path = build_dir / rel
        if not path.is_file():
            raise IndexCorruptError(f"Index file {path} is missing. Run `kb build` to rebuild the index.")
        if path.stat().st_size != meta.get("bytes"):
            raise IndexCorruptError(
                f"Index file {path} has {path.stat().st_size} bytes, the manifest says {meta.get('bytes')} "
                "(truncated or replaced). Run `kb build` to rebuild the index."
            )
        if hashes and sha256_file(path) != meta.get("sha256"):
            raise IndexCorruptError(
                f"Index file {path} does not match its checksum (corrupted). Run `kb build` to rebuild the index."
            )


def load_index(index_dir: Path, build_id: str | None = None, *, verify_hashes: bool = True) -> LoadedIndex:
    import bm25s
    import faiss

    build_dir = resolve_build(index_dir, build_id)
    manifest = load_manifest(build_dir)
    verify_files(build_dir, manifest, hashes=verify_hashes)
    try:
        documents = {row["doc_id"]: row for row in _read_jsonl(build_dir / "documents.jsonl")}
        chunks = [Chunk.from_dict(row) for row in _read_jsonl(build_dir / "chunks.jsonl")]
        entries = [Entry(int(r["chunk"]), str(r["kind"]), str(r["text"])) for r in _read_jsonl(build_dir / "entries.jsonl")]
        dense = faiss.read_index(str(build_dir / "dense.faiss"))
        bm25 = bm25s.BM25.load(str(build_dir / "bm25"), load_corpus=False)
        english = build_dir / BM25_ENGLISH
        bm25_english = bm25s.BM25.load(str(english), load_corpus=False) if english.is_dir() else None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(
            f"Index build {build_dir.name} cannot be loaded ({type(exc).__name__}: {exc}). Run `kb build` to rebuild it."
        ) from None
    if dense.ntotal != len(entries) or len(entries) != manifest.counts.get("entries"):
        raise IndexCorruptError(
            f"Index build {build_dir.name} is inconsistent ({dense.ntotal} vectors for {len(entries)} entries). "
            "Run `kb build` to rebuild it."
        )
    keyword_rows = [int(m.scores["num_docs"]) for m in (bm25, bm25_english) if m is not None]
    if keyword_rows[0] > len(entries) or keyword_rows[-1] != len(entries):
        raise IndexCorruptError(
            f"Index build {build_dir.name} is inconsistent (keyword index rows {keyword_rows} for {len(entries)} "
            "entries). Run `kb build` to rebuild it."
        )
    entry_chunk = np.fromiter((e.chunk for e in entries), dtype=np.int32, count=len(entries))
    return LoadedIndex(build_dir, manifest, documents, chunks, entries, entry_chunk, dense, bm25, bm25_english)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
