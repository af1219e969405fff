"""What every part of the app shares: settings, the live index handle, download files, the password."""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kb.config import Settings
from kb.engine import KnowledgeBase
from kb.errors import KBError

log = logging.getLogger("app")

# Search modes as the consultant sees them (label -> kb mode).
MODES = {"混合": "hybrid", "关键词": "bm25", "语义": "dense"}
MAX_TOP_K = 50
FILE_TTL_S = 3600  # downloads (.ics, CSV, Markdown) are deleted after an hour


class LiveLike(Protocol):
    def get(self) -> KnowledgeBase: ...

    def reload(self) -> Any: ...

    def status(self) -> dict[str, Any]: ...


def friendly_error(exc: BaseException) -> str:
    """A Chinese one-liner for the browser or the API; the details go to the log, not to the user."""
    if isinstance(exc, KBError):
        name = type(exc).__name__
        if name.startswith("Index"):
            return f"知识库索引暂时不可用，请联系管理员运行 `kb build`。（{exc}）"
        if name == "ModelError":
            return f"检索模型无法加载，请联系管理员运行 `kb prepare-model`。（{exc}）"
        return f"请求无法处理：{exc}"
    log.exception("Unexpected error while handling a request", exc_info=exc)
    return "抱歉，服务器处理这个请求时出错了。请稍后重试；如果一再出现，请联系管理员。"


@dataclass
class AppContext:
    settings: Settings
    live: LiveLike
    files: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kb-app-")))

    def kb(self) -> KnowledgeBase:
        """The build for this request: call once per request and use it throughout."""
        return self.live.get()

    # -- access control -------------------------------------------------------------------
    @property
    def consultant_locked(self) -> bool:
        return bool(self.settings.consultant_password)

    def password_ok(self, given: Any) -> bool:
        """Constant-time comparison; no password configured means the workspace is open."""
        expected = self.settings.consultant_password
        if not expected:
            return True
        if not isinstance(given, str) or not given:
            return False
        return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))

    # -- download files -------------------------------------------------------------------
    def write_file(self, name: str, text: str) -> Path:
        """Write a download into its own folder (so two sessions never share a file), atomically."""
        self._prune()
        folder = self.files / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
        return path

    def _prune(self) -> None:
        cutoff = time.time() - FILE_TTL_S
        try:
            entries = list(self.files.iterdir())
        except OSError:
            self.files.mkdir(parents=True, exist_ok=True)
            return
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                continue

    def close(self) -> None:
        shutil.rmtree(self.files, ignore_errors=True)
