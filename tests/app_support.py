"""Helpers for the web-app tests: a small corpus with hostile content, a real build, a live server.

The corpus is the fixture corpus, two real guidance documents (so the chat has remediation and
deadline passages to cite) and one document full of HTML/JS/Markdown payloads that must be shown
as text everywhere.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

from tests_support import FIXTURE_CORPUS, REAL_CORPUS

from kb.config import Settings, load_settings

REAL_DOCS = ("call-center/cause-materials.md", "general/validity-and-lead-time.md")
XSS_DOC = "security/xss-test.md"
XSS_TEXT = """---
title: 安全测试文档：网页脚本与链接
licences: [call-center]
topics: [faq]
sources:
  - name: 测试来源<script>window.__xss=1</script>
updated: 2026-01-01
questions:
  - 安全测试文档里的脚本会执行吗
---

# 安全测试<script>window.__xss=1;alert(1)</script>

安全测试段落一：续期注意事项<script>window.__xss=1;alert(1)</script>，这段脚本必须显示为文字。

安全测试段落二：图片<img src=x onerror="window.__xss=1;alert(1)">也应当显示为文字，不能加载。

安全测试段落三：链接[点我](javascript:window.__xss=1;alert(1)) 和图片 ![](http://127.0.0.1:9/x.png) 都不能生效。
"""


# The consultant password of the locked app server (non-ASCII on purpose: HTTP headers are latin-1).
CONSULTANT_PASSWORD = "s3cret-顾问"


def make_corpus(dest: Path) -> Path:
    shutil.copytree(FIXTURE_CORPUS, dest)
    for rel in REAL_DOCS:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REAL_CORPUS / rel, target)
    xss = dest / XSS_DOC
    xss.parent.mkdir(parents=True, exist_ok=True)
    xss.write_text(XSS_TEXT, encoding="utf-8")
    return dest


def build_small_index(root: Path) -> Settings:
    """A real build (real model, real FAISS) of the small corpus into `root`."""
    from kb.indexer import build_index

    settings = load_settings({"corpus": make_corpus(root / "corpus"), "index": root / "index"})
    build_index(settings)
    return settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`app.main.create_server` under uvicorn in a background thread on a free loopback port."""

    def __init__(self, settings: Settings, live=None) -> None:  # noqa: ANN001
        import uvicorn

        from app.main import create_server

        self.app = create_server(settings, live)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the app server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.kb_context.close()
