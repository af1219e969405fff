"""Shared fixtures. Tests run offline: any socket to a non-loopback address fails."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

from hash_embedder import HashEmbedder  # noqa: E402

from kb.config import Settings, load_settings  # noqa: E402

FIXTURE_CORPUS = TESTS / "data" / "corpus"
REAL_CORPUS = ROOT / "corpus"

_real_connect = socket.socket.connect


def _guarded_connect(self, address):  # type: ignore[no-untyped-def]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0") and not host.startswith("/"):
        raise OSError(f"tests are offline: connection to {host!r} blocked")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _offline():
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the small fixture corpus."""
    dest = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, dest)
    return dest


@pytest.fixture
def hash_settings(tmp_path: Path, corpus_copy: Path) -> Settings:
    # Small chunks, so the four short fixture documents still make a chunk per section.
    return load_settings({"corpus": corpus_copy, "index": tmp_path / "index", "chunk_min_chars": 30}, env={})


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The real model (converted once into the user's cache, or KB_MODEL_DIR) and the real corpus."""
    index = tmp_path_factory.mktemp("real-index")
    return load_settings({"corpus": REAL_CORPUS, "index": index})


@pytest.fixture(scope="session")
def real_kb(real_settings: Settings):
    """The real corpus built with the real model into a temporary index, once per session."""
    from kb.engine import KnowledgeBase
    from kb.indexer import build_index

    build_index(real_settings)
    return KnowledgeBase.open(settings=real_settings)


@pytest.fixture(scope="session")
def app_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Web-app tests: a small corpus (fixture docs, two real guidance docs, one document full of
    HTML/JS payloads) built once with the real model; shared by test_app_api and test_browser."""
    from app_support import build_small_index

    return build_small_index(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="session")
def app_live(app_settings: Settings):
    """One LiveKnowledgeBase (model loaded once) shared by every app server of the session."""
    from kb.live import LiveKnowledgeBase

    return LiveKnowledgeBase(app_settings, background=True)


@pytest.fixture(scope="module")
def server(app_settings, app_live):
    """The web app on a free loopback port (per test module), over the small app index."""
    from app_support import AppServer

    with AppServer(app_settings, app_live) as srv:
        yield srv


@pytest.fixture(scope="module")
def locked_server(app_settings, app_live):
    """The same app with a consultant password (app_support.CONSULTANT_PASSWORD)."""
    from app_support import CONSULTANT_PASSWORD, AppServer

    with AppServer(app_settings.replace(consultant_password=CONSULTANT_PASSWORD), app_live) as srv:
        yield srv
