"""The app's rendering helpers: user and corpus text always reaches the browser as text."""

from __future__ import annotations

import csv
import io
from datetime import date

from app.render import (
    deadline_html,
    document_html,
    highlight,
    md_escape,
    results_csv,
    results_html,
    results_markdown,
    section_path,
    user_text,
)
from kb.deadlines import Filed, compute
from kb.types import Chunk, Hit

PAYLOAD = '<script>alert(1)</script><img src=x onerror="alert(2)">[x](javascript:alert(3))'


def _hit(text: str = PAYLOAD, heading: str = "一、<b>标题</b> > 2、小节", rank: int = 1) -> Hit:
    chunk = Chunk(
        chunk_id="d.md#0", doc_id="d.md", ordinal=0, title="标题<i>x</i>", heading=heading, text=text,
        start_line=3, end_line=3, licences=("icp",), topics=("faq",), source="=HYPERLINK(\"http://x\")",
        updated="2026-01-01",
    )
    return Hit(rank=rank, score=0.5, confidence=0.9, chunk=chunk, scores={"bm25": 1.5, "dense": 0.88},
               matched_terms=("script", "alert"))


def test_highlight_escapes_everything_and_marks_terms():
    html = highlight("A<b>续期</b>&续期", ["续期"])
    assert html == "A&lt;b&gt;<mark>续期</mark>&lt;/b&gt;&amp;<mark>续期</mark>"
    assert highlight("<x>", []) == "&lt;x&gt;"
    # Terms that are regex metacharacters are literal.
    assert highlight("a.b a+b", ["a+b"]) == "a.b <mark>a+b</mark>"


def test_highlight_skips_single_characters_when_words_matched():
    assert highlight("材料不全，证不一致", ["材料", "不", "证"]) == "<mark>材料</mark>不全，证不一致"
    assert highlight("证不一致", ["证"]) == "<mark>证</mark>不一致"  # nothing longer: still marked


def test_results_and_document_html_never_contain_live_markup():
    hit = _hit()
    for html in (
        results_html([hit], "<q>"),
        document_html({"doc_id": "d.md", "title": "<t>", "text": "# H<s>\n\n" + PAYLOAD, "sources": [{"name": "<s>"}]},
                      hit, hit.matched_terms),
    ):
        assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
        assert "&lt;<mark>script</mark>&gt;" in html  # escaped, and the matched term marked
        assert "onerror=&quot;<mark>alert</mark>(2)&quot;" in html
    doc = document_html({"doc_id": "d.md", "title": "t", "text": "a\nb\n" + PAYLOAD}, hit, ["alert"])
    assert 'id="kb-passage"' in doc and doc.count("kb-doc-mark") == 1
    assert "找不到这份文档" in document_html(None)


def test_section_path_keeps_angle_brackets_inside_headings():
    assert section_path(_hit(heading="安全<script>x</script> > 2、小节")) == "安全<script>x</script> › 2、小节"
    assert section_path(_hit(heading="")) == "（正文开头）"


def test_md_escape_turns_markdown_and_html_into_literal_text():
    out = md_escape(PAYLOAD)
    assert "<" not in out and "](" not in out
    assert "\\[x\\]\\(javascript:alert\\(3\\)\\)" in out


def test_user_text_cleans_and_limits():
    assert user_text("  呼叫中心\x00证 ", 10) == ("呼叫中心证", "")
    assert user_text("\ud800", 10)[1].startswith("消息是空的")
    assert "太长" in user_text("续" * 11, 10)[1]
    assert user_text(None, 10)[1] == "请输入文字消息。"
    assert user_text("🙂证", 10) == ("🙂证", "")


def test_exports_are_complete_and_defuse_spreadsheet_formulas():
    hits = [_hit(rank=1), _hit(text="=cmd|' /C calc'!A0", rank=2)]
    text = results_csv(hits)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["rank"] for r in rows] == ["1", "2"]
    assert rows[0]["text"] == PAYLOAD and rows[0]["bm25"] == "1.5"
    assert rows[1]["text"].startswith("'=") and rows[0]["source"].startswith("'=")
    md = results_markdown(hits, "续期", "混合")
    assert md.startswith("# 检索结果：续期") and "## 2." in md and "<script>" not in md


def test_deadline_box_states():
    assert "告诉我许可证的到期日期" in deadline_html(None)
    box = deadline_html(compute(date(2027, 3, 15), date(2026, 11, 29), "call-center"))
    assert "2027年3月15日" in box and "2026年12月15日" in box and "还有 16 天" in box and "kb-ok" in box
    late = deadline_html(compute(date(2027, 1, 10), date(2026, 11, 29), None))
    assert "已错过" in late and "未说明许可证种类" in late and "kb-warn" in late
    gone = deadline_html(compute(date(2026, 10, 1), date(2026, 11, 29), "icp"))
    assert "已经过期" in gone and "kb-bad" in gone and "kb-passed" in gone
    # An application the user says is already in: no "missed" verdict, the question is whether it was on time.
    pending = deadline_html(compute(date(2027, 1, 10), date(2026, 11, 29), "icp"), applied=True)
    assert "已提交申请" in pending and "已错过" not in pending and "kb-warn" in pending
    # ... and when the user said when they filed, whether that was on time.
    in_time = deadline_html(compute(date(2027, 1, 10), date(2026, 11, 29), "icp"), applied=True,
                            filed=Filed(date(2026, 9, 1), date(2026, 9, 30), "9月"))
    assert "您说在“9月”提交：早于最晚申请日，属于按时申请" in in_time
    late_filed = deadline_html(compute(date(2027, 1, 10), date(2026, 11, 29), "icp"), applied=True,
                               filed=Filed(date(2026, 11, 5), date(2026, 11, 5), "11月5号"))
    assert "不属于按时申请" in late_filed and "属于按时申请" not in pending
    # A refused application: hand it in again by the apply-by date.
    refused = deadline_html(compute(date(2027, 3, 15), date(2026, 11, 29), "call-center"), applied=False)
    assert "已被驳回" in refused and "仍属按时申请" in refused and "kb-ok" in refused
    assert "已被驳回" not in deadline_html(compute(date(2027, 3, 15), date(2026, 11, 29), "call-center"))
    # An expiry worked out from the user's words ("明年3月") says so.
    rough = deadline_html(compute(date(2027, 3, 1), date(2026, 11, 29), "call-center"), estimated_from="“明年3月”")
    assert "根据“明年3月”推算" in rough and "推算" not in box
