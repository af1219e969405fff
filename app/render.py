"""Pure rendering helpers: user and corpus text in, safe HTML/Markdown/CSV out.

Everything that reaches the browser through `gr.HTML` is built here, and every piece of user or
corpus text goes through `html.escape` first: gr.HTML renders its value as raw HTML, so a corpus
file containing `<img src=x onerror=...>` must arrive as `&lt;img ...`. Markdown that we build from
user text (the chat bubble of the user's own message) is escaped too, so `[x](javascript:...)` is
shown as the characters the user typed, never as a link.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from kb.deadlines import EXPIRED, ON_TIME, WINDOW_MISSED, Deadline, Filed, format_date
from kb.normalize import clean
from kb.types import Hit

STATUS_WORDS = {
    ON_TIME: "来得及：还在续期申请期限内",
    WINDOW_MISSED: "已错过续期申请期限，许可证尚未到期",
    EXPIRED: "许可证已经过期",
}
STATUS_CLASS = {ON_TIME: "ok", WINDOW_MISSED: "warn", EXPIRED: "bad"}
# The user says the application is already in: whether it was on time is what matters now.
APPLIED_WORDS = {
    ON_TIME: "已提交申请：在续期申请期限内",
    WINDOW_MISSED: "已提交申请：是否按时，看提交日是否不晚于最晚申请日",
    EXPIRED: "许可证已到期：已提交的申请是否按时，请向发证机关确认",
}
# The user says the application was refused while the licence is still valid.
REFUSED_WORDS = {
    ON_TIME: "已被驳回：改正后在最晚申请日前重新提交，仍属按时申请",
    WINDOW_MISSED: "已被驳回，续期申请期限已过，许可证尚未到期",
    EXPIRED: "许可证已经过期",
}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_escape(text: str) -> str:
    """Text shown literally inside Markdown: HTML escaped, Markdown punctuation backslashed."""
    return _MD_SPECIAL.sub(r"\\\1", escape(text, quote=False))


def user_text(message: Any, limit: int) -> tuple[str, str]:
    """(cleaned message, error in Chinese or ""). Control characters, NUL bytes and lone
    surrogates are removed (`kb.normalize.clean`); what is left must be non-empty and within `limit`."""
    if not isinstance(message, str):
        return "", "请输入文字消息。"
    text = clean(message).strip()
    if not text:
        return "", "消息是空的：请用文字描述您的许可证情况，例如「呼叫中心证明年3月到期，续期被驳回了」。"
    if len(text) > limit:
        return "", f"消息太长（{len(text)} 字），上限是 {limit} 字。请只保留与许可证续期有关的情况后再发送。"
    return text, ""


def section_path(hit: Hit) -> str:
    return " › ".join(p.strip() for p in hit.heading.split(" > ") if p.strip()) or "（正文开头）"


def citation_label(n: int, hit: Hit) -> str:
    return f"[{n}] {hit.title} › {section_path(hit)}"


def citation_text(hit: Hit) -> str:
    """A citation a consultant can paste into an e-mail: title, section, source, updated date."""
    parts = [f"《{hit.title}》", section_path(hit)]
    if hit.source:
        parts.append(f"来源：{hit.source}")
    if hit.chunk.updated:
        parts.append(f"更新于 {hit.chunk.updated}")
    parts.append(f"文件：{hit.doc_id}")
    return "，".join(parts)


def highlight(text: str, terms: Iterable[str]) -> str:
    """HTML of `text` with every occurrence of `terms` wrapped in <mark>; all text escaped.
    Single characters are not marked when longer terms are: marking every 「不」 and 「证」 of a
    passage hides the words that matched."""
    words = sorted({t for t in terms if t and t.strip()}, key=len, reverse=True)
    if words and len(words[0]) > 1:
        words = [w for w in words if len(w) > 1]
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "–"


def results_html(hits: Sequence[Hit], query: str) -> str:
    if not hits:
        return f'<div class="kb-empty">没有找到与「{escape(query)}」相关的段落。请换个说法，或放宽筛选条件。</div>'
    cards = []
    for hit in hits:
        s = hit.scores
        cards.append(
            '<div class="kb-hit">'
            f'<div class="kb-hit-title">{hit.rank}. {escape(hit.title)}</div>'
            f'<div class="kb-hit-path">{escape(section_path(hit))} · <code>{escape(hit.doc_id)}</code></div>'
            f'<div class="kb-hit-text">{highlight(hit.text, hit.matched_terms)}</div>'
            '<div class="kb-hit-meta">'
            f"融合分 {hit.score:.4f} · BM25 {_fmt(s.get('bm25'))} · 语义 {_fmt(s.get('dense'))}"
            f" · 置信度 {hit.confidence:.2f} · 更新于 {escape(hit.chunk.updated or '未注明')}"
            "</div></div>"
        )
    return f'<div class="kb-results">{"".join(cards)}</div>'


def document_html(doc: dict[str, Any] | None, hit: Hit | None = None, terms: Iterable[str] = ()) -> str:
    """The whole document as escaped text, the passage of `hit` marked and anchored (#kb-passage)."""
    if not doc:
        return '<div class="kb-empty">找不到这份文档：索引可能刚刚更新，请重新检索。</div>'
    lines = str(doc.get("text", "")).split("\n")
    start, end = (hit.chunk.start_line, hit.chunk.end_line) if hit else (0, -1)
    terms = list(terms)
    body = []
    for number, line in enumerate(lines, start=1):
        inside = start <= number <= end
        heading = re.match(r"#{1,6}\s+", line)
        if heading:
            line = line[heading.end() :]
        content = highlight(line, terms) if inside else escape(line)
        cls = "kb-doc-h" if heading else "kb-doc-p"
        if inside:
            anchor = ' id="kb-passage"' if number == start else ""
            body.append(f'<div class="{cls} kb-doc-mark"{anchor}>{content}</div>')
        else:
            body.append(f'<div class="{cls}">{content}</div>')
    sources = "；".join(escape(str(s.get("name", ""))) for s in doc.get("sources") or [] if isinstance(s, dict))
    meta = f"文件 <code>{escape(str(doc.get('doc_id', '')))}</code> · 更新于 {escape(str(doc.get('updated') or '未注明'))}"
    if sources:
        meta += f" · 来源：{sources}"
    return (
        '<div class="kb-doc">'
        f'<div class="kb-doc-title">{escape(str(doc.get("title", "")))}</div>'
        f'<div class="kb-doc-meta">{meta}</div>'
        f'<div class="kb-doc-body">{"".join(body)}</div></div>'
    )


def scroll_js(container: str) -> str:
    """Browser-side: scroll the document view inside `container` so the marked passage is in view."""
    return (
        f"() => {{ const box = document.querySelector('{container} .kb-doc');"
        " const mark = box && box.querySelector('#kb-passage');"
        " if (mark) { box.scrollTop = mark.offsetTop - box.offsetTop - 40; } }"
    )


def passage_html(hit: Hit, n: int) -> str:
    """One cited passage (chat tab): where it comes from and the text itself, escaped."""
    return (
        '<div class="kb-hit">'
        f'<div class="kb-hit-title">[{n}] {escape(hit.title)}</div>'
        f'<div class="kb-hit-path">{escape(section_path(hit))} · 更新于 {escape(hit.chunk.updated or "未注明")}</div>'
        f'<div class="kb-hit-text kb-doc-mark">{highlight(hit.text, hit.matched_terms)}</div>'
        f'<div class="kb-hit-meta">来源：{escape(hit.source or hit.doc_id)}</div></div>'
    )


def _status_words(applied: bool | None) -> dict[str, str]:
    if applied:
        return APPLIED_WORDS
    return REFUSED_WORDS if applied is False else STATUS_WORDS


def deadline_html(deadline: Deadline | None, applied: bool | None = None, estimated_from: str | None = None,
                  filed: Filed | None = None) -> str:
    """The deadline box. `estimated_from`: what the expiry was worked out from, when the user gave
    no exact date (「“明年3月”」, 「发证日期“2022年1月10日”和5年有效期」); the box says so. `filed`:
    when the user says the application that is in was handed in; the box says whether on time."""
    if deadline is None:
        return (
            '<div class="kb-deadline kb-muted">时间提醒：告诉我许可证的到期日期'
            "（例如「明年3月15日到期」），我会算出最晚的续期申请日期。</div>"
        )
    status = deadline.status
    days = deadline.days_left
    if days > 0:
        left = f"距最晚申请日还有 {days} 天"
    elif days == 0:
        left = "今天是最晚申请日"
    else:
        left = f"最晚申请日已过 {-days} 天"
    rows = "".join(
        f'<li class="{"kb-passed" if d < deadline.today else ""}">{escape(format_date(d))}：{escape(label)}</li>'
        for d, label in deadline.milestones
    )
    assumed = ""
    if deadline.rule_assumed:
        assumed = f'<div class="kb-muted">未说明许可证种类，暂按{escape(deadline.rule.label)}计算。</div>'
    if applied and filed is not None:
        if filed.latest <= deadline.apply_by:
            assumed += f'<div>您说在“{escape(filed.text)}”提交：早于最晚申请日，属于按时申请。</div>'
        elif filed.earliest > deadline.apply_by:
            assumed += f'<div>您说在“{escape(filed.text)}”提交：晚于最晚申请日，不属于按时申请。</div>'
    if estimated_from:
        assumed += (f'<div class="kb-muted">到期日是根据{escape(estimated_from)}推算的，'
                    "请以证书上写明的日期为准。</div>")
    return (
        f'<div class="kb-deadline kb-{STATUS_CLASS.get(status, "warn")}">'
        f'<div class="kb-deadline-status">{escape(_status_words(applied).get(status, status))}</div>'
        f"<div>许可证到期日：<b>{escape(format_date(deadline.expires_on))}</b></div>"
        f"<div>最晚申请日：<b>{escape(format_date(deadline.apply_by))}</b>"
        f"（到期前 {deadline.rule.lead_days} 日）</div>"
        f"<div>{escape(left)}</div>{assumed}"
        f'<div class="kb-muted">准备节点：</div><ul>{rows}</ul></div>'
    )


def status_markdown(status: dict[str, Any]) -> str:
    counts = status.get("counts") or {}
    fresh = status.get("freshness") or {}
    state = fresh.get("state", "unknown")
    words = {"fresh": "✅ 与 corpus/ 一致", "stale": "⚠️ 已过期（corpus/ 有改动，请运行 `kb build`）",
             "missing": "❌ 没有索引", "broken": "❌ 索引损坏"}.get(state, "？无法判断")
    lines = [
        f"- 构建：`{status.get('build_id', '')}`（{status.get('created_at', '')}）",
        f"- 模型：`{status.get('model', '')}`",
        f"- 文档 {counts.get('documents', '?')} 篇，段落 {counts.get('chunks', '?')} 个",
        f"- 状态：{words}",
    ]
    for key, label in (("added", "新增"), ("changed", "修改"), ("removed", "删除"), ("parameters", "参数变化")):
        items = fresh.get(key) or []
        if items:
            lines.append(f"  - {label}：" + "、".join(f"`{md_escape(str(x))}`" for x in items[:20]))
    if status.get("last_reload_error"):
        lines.append(f"- 最近一次重新加载失败：{md_escape(str(status['last_reload_error']))}")
    return "\n".join(lines)


# -- exports ----------------------------------------------------------------------------------
EXPORT_FIELDS = ("rank", "title", "section", "doc_id", "source", "updated", "score", "bm25", "dense", "text")


def _row(hit: Hit) -> dict[str, Any]:
    return {
        "rank": hit.rank,
        "title": hit.title,
        "section": section_path(hit),
        "doc_id": hit.doc_id,
        "source": hit.source,
        "updated": hit.chunk.updated,
        "score": round(hit.score, 6),
        "bm25": round(hit.scores["bm25"], 6) if "bm25" in hit.scores else "",
        "dense": round(hit.scores["dense"], 6) if "dense" in hit.scores else "",
        "text": hit.text,
    }


def _csv_cell(value: Any) -> Any:
    # Spreadsheet formula injection: a cell starting with = + - @ would be evaluated by Excel.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def results_csv(hits: Sequence[Hit]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for hit in hits:
        writer.writerow({k: _csv_cell(v) for k, v in _row(hit).items()})
    # A BOM so Excel opens the Chinese text as UTF-8.
    return "\ufeff" + buf.getvalue()


def results_markdown(hits: Sequence[Hit], query: str, mode: str) -> str:
    out = [f"# 检索结果：{md_escape(query)}", "", f"模式：{mode}，共 {len(hits)} 条", ""]
    for hit in hits:
        out += [
            f"## {hit.rank}. {md_escape(hit.title)} › {md_escape(section_path(hit))}",
            "",
            f"- 文件：`{hit.doc_id}`；来源：{md_escape(hit.source or '—')}；更新于 {hit.chunk.updated or '未注明'}",
            f"- 融合分 {hit.score:.4f}；BM25 {_fmt(hit.scores.get('bm25'))}；语义 {_fmt(hit.scores.get('dense'))}",
            "",
            *("> " + md_escape(line) for line in hit.text.split("\n")),
            "",
        ]
    return "\n".join(out)


CSS = """
.kb-hit{border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px;margin:8px 0;background:#fff}
.kb-hit-title{font-weight:600}
.kb-hit-path,.kb-hit-meta,.kb-doc-meta,.kb-muted{color:#6b7280;font-size:.9em}
.kb-hit-text{margin:6px 0;white-space:pre-wrap;line-height:1.6}
.kb-results mark,.kb-doc mark,.kb-hit mark{background:#fde68a;padding:0 1px}
.kb-doc{max-height:420px;overflow:auto;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;background:#fff}
.kb-doc-title{font-size:1.15em;font-weight:700;margin-bottom:4px}
.kb-doc-h{font-weight:700;margin-top:8px}
.kb-doc-p{white-space:pre-wrap;line-height:1.6;min-height:.6em}
.kb-doc-mark{background:#fef3c7;border-left:3px solid #f59e0b;padding-left:6px}
.kb-deadline{border-radius:8px;padding:10px 12px;border:1px solid #e5e7eb;line-height:1.7}
.kb-deadline ul{margin:2px 0 0 18px}
.kb-deadline .kb-passed{color:#9ca3af;text-decoration:line-through}
.kb-deadline-status{font-weight:700;font-size:1.05em}
.kb-ok{background:#ecfdf5;border-color:#10b981}
.kb-warn{background:#fffbeb;border-color:#f59e0b}
.kb-bad{background:#fef2f2;border-color:#ef4444}
.kb-notice{background:#fffbeb;border:1px solid #f59e0b;border-radius:8px;padding:8px 12px}
.kb-empty{color:#6b7280;padding:8px}
"""
