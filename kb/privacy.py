"""Privacy: nothing the user types is kept unless conversation logging is switched on, and then
personal contact details are redacted before the record reaches the disk.

Redacted (replaced by a bracketed label): e-mail addresses, 18-digit resident ID numbers (and the
old 15-digit ones), WeChat ids written after 微信/微信号/wx/vx/WeChat (and `wxid_…` ids anywhere),
mobile numbers (with or without +86/0086, spaces or dashes) and landline numbers (area code,
optional extension, 400/800 numbers), and any digit run after a phone cue (电话：8888 6666).
Full-width characters are folded to half-width first, so "１３８…" and "＠" are caught, and
numbers written in Chinese digits are read as digits (一三八一二三四五六七八, 幺三八…, 零二一…),
so they are caught by the same rules.
Redaction is deliberately greedy: a false positive hides a number, a false negative leaks one.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb.normalize import to_halfwidth

_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_SEP = r"[ \-\u00a0—]?"  # one optional separator between digit groups
_CC = rf"(?:(?:\+|00)\s?86{_SEP}|86{_SEP})?"  # country code

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+\s?(?:@|\(at\)|\[at\])\s?[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_ID18 = re.compile(rf"{_NOT_ALNUM_BEFORE}\d{{6}}{_SEP}(?:19|20)\d{{2}}{_SEP}\d{{4}}{_SEP}\d{{3}}[\dXx]{_NOT_ALNUM_AFTER}")
_ID15 = re.compile(rf"{_NOT_ALNUM_BEFORE}\d{{15}}{_NOT_ALNUM_AFTER}")
_WECHAT = re.compile(
    r"(?P<label>(?:微信号?|微信id|威信|薇信|v信|vx|wx|weixin|wechat(?:\s?id)?)\s?(?:号|号码|id)?\s?(?:是|为|:|：|=)?\s?)"
    r"(?P<id>[A-Za-z][-_A-Za-z0-9]{5,19}|\d{5,20})",
    re.IGNORECASE,
)
_WXID = re.compile(r"wxid_[A-Za-z0-9_-]{4,}", re.IGNORECASE)
_MOBILE = re.compile(rf"{_NOT_ALNUM_BEFORE}{_CC}1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}{_NOT_ALNUM_AFTER}")
_LANDLINE = re.compile(
    rf"{_NOT_ALNUM_BEFORE}(?:"
    rf"(?:(?:\+|00)\s?86{_SEP}[(（]?0?|[(（]?0)\d{{2,3}}[)）]?{_SEP}\d{{3,4}}{_SEP}\d{{4}}"  # 010-12345678, +86 21 1234 5678
    rf"|[48]00{_SEP}\d{{3}}{_SEP}\d{{4}}"  # 400-123-4567
    rf")(?:\s?(?:-|转|ext\.?|x)\s?\d{{1,6}})?{_NOT_ALNUM_AFTER}",
    re.IGNORECASE,
)

# A number after a phone cue ("电话：8888 6666", "tel 12345678"), when no rule above matched it.
_CUED = re.compile(
    r"(?P<cue>(?:电话|座机|手机|联系方式|联系电话|热线|tel|phone|mobile)\s?(?:号码?)?\s?(?:是|为|:|：)?\s?)"
    r"(?P<n>\d[\d \-]{5,}\d)",
    re.IGNORECASE,
)

# Chinese digit characters as people spell out phone numbers (幺 is the spoken "one"); 十/百/千
# are left alone: "十一月" is a date, and no phone number is read out with them.
_CHINESE_DIGITS = str.maketrans("零〇○一二三四五六七八九幺", "0001234567891")

LABELS = {"email": "[邮箱]", "id": "[身份证号]", "wechat": "[微信号]", "mobile": "[手机号]", "phone": "[电话]"}


def _sub(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str], text: str, folded: str) -> tuple[str, str]:
    """Replace matches found in `folded` (the half-width twin of `text`, same length and
    positions) in both strings, so characters outside a match keep their original form."""
    out, out_folded, last = [], [], 0
    for m in pattern.finditer(folded):
        new = repl(m)
        out += [text[last : m.start()], new]
        out_folded += [folded[last : m.start()], new]
        last = m.end()
    if not out:
        return text, folded
    return "".join(out) + text[last:], "".join(out_folded) + folded[last:]


def _label(name: str) -> Callable[[re.Match[str]], str]:
    return lambda m: LABELS[name]


def _after(group: str, name: str) -> Callable[[re.Match[str]], str]:
    return lambda m: m.group(group) + LABELS[name]


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (_EMAIL, _label("email")),
    (_ID18, _label("id")),
    (_WXID, _label("wechat")),
    (_WECHAT, _after("label", "wechat")),
    (_MOBILE, _label("mobile")),
    (_LANDLINE, _label("phone")),
    (_CUED, _after("cue", "phone")),
    (_ID15, _label("id")),
)


def redact(text: str) -> str:
    """`text` with contact details and ID numbers replaced by labels such as [手机号]."""
    if not text:
        return text
    # One character for one character, so positions line up with `text`.
    folded = to_halfwidth(text).translate(_CHINESE_DIGITS)
    for pattern, repl in _RULES:
        text, folded = _sub(pattern, repl, text, folded)
    return text


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


class ConversationLog:
    """Append-only JSONL file for consultants to review, written only when `log_conversations`
    is on. Each record is redacted, then written with one `os.write` on an O_APPEND descriptor:
    lines from concurrent requests never interleave and a crash never leaves a half-rewritten
    file (the temp-file-and-rename rule is for files that are replaced, not appended to). The
    file is created readable by its owner only."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), **redact_value(record)}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
