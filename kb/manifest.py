"""The manifest of one index build, and atomic file writing.

`manifest.json` is written last into a build folder: a folder without one is an unfinished build.
It records what is needed to decide whether an index can be used with the current settings and
whether it still matches the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    format_version: int
    build_id: str
    created_at: str  # ISO 8601, UTC
    kb_version: str
    model: dict[str, Any]  # name, dim, prepared_from
    tokenizer: dict[str, Any]
    bm25: dict[str, Any]
    chunking: dict[str, Any]
    dense: dict[str, Any]  # kind (flat|hnsw), params
    counts: dict[str, int]  # documents, chunks, entries
    corpus: dict[str, Any]  # root, files {doc_id: sha256}
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {sha256, bytes}
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def corpus_files(self) -> dict[str, str]:
        return dict(self.corpus.get("files", {}))


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


def write_manifest(build_dir: Path, manifest: Manifest) -> None:
    atomic_write_json(build_dir / MANIFEST, manifest.to_dict())


def read_manifest(build_dir: Path) -> Manifest:
    data = json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("manifest is not a JSON object")
    return Manifest.from_dict(data)
