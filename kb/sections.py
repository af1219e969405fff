"""The Markdown of an answer, section by section, and the condensing of passages into bullets.

Pure functions over Situation, Deadline and Hit: no retrieval here, so every wording decision can
be tested without a model. Everything that came from the user or the corpus is escaped (HTML and
Markdown), so a `<script>` or `[x](javascript:…)` in either is shown as text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kb.deadlines import EXPIRED, ON_TIME, Deadline, compute, format_date, load_rules, status_advice
from kb.situation import Situation, stated_causes
from kb.types import Hit
from kb.vocabulary import Vocabulary, load_vocabulary

DISCLAIMER = "以上内容是根据公开规定和实务资料整理的参考建议，不是发证机关的决定；具体要求以{authority}的答复为准。"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
_MILESTONE_SENTENCE = re.compile(r"建议节点：[^。]*。")


def md_escape(text: str) -> str:
    """Text shown literally inside Markdown: HTML characters as entities, Markdown marks escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


@dataclass(frozen=True)
class Group:
    """Passages retrieved for one reason (a failure cause, or the question itself)."""

    label: str
    query: str
    hits: tuple[Hit, ...]


# --------------------------------------------------------------------------------------------
# Condensing a passage
# --------------------------------------------------------------------------------------------

_SENTENCE = re.compile(r"[^。！？；!?;]+[。！？；!?;]?")
_NUMBERING = re.compile(r"^\s*(?:[(（]?[0-9一二三四五六七八九十]+[)）、.．]|[-*•]\s)\s*")
_META = ("本文", "本节", "下文", "以下", "如下")
MAX_SENTENCE_CHARS = 120


def _sentences(text: str) -> list[tuple[str, str]]:
    """(sub-heading, sentence) pairs; a short line without final punctuation is a sub-heading."""
    out: list[tuple[str, str]] = []
    sub = ""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if len(line) <= 30 and not re.search(r"[。！？；!?;：:]$", line):
            sub = _NUMBERING.sub("", line).strip("*# ")
            continue
        for m in _SENTENCE.finditer(_NUMBERING.sub("", line)):
            sentence = m.group(0).strip()
            if len(sentence) >= 6:
                out.append((sub, sentence))
    return out


def condense(hit: Hit, terms: Sequence[str], max_sentences: int = 2, weights: Mapping[str, float] | None = None) -> str:
    """The passage's most relevant sentences (by weighted overlap with the query terms: each
    term's `weights`, its IDF, else its length), in their original order, each under a new
    sub-heading with that heading as a lead-in."""
    sentences = _sentences(hit.text)
    if not sentences:
        return hit.text.strip()[:MAX_SENTENCE_CHARS]
    # Query terms come normalised from the tokenizer and the corpus is simplified Chinese (kb
    # check enforces it), so lower-casing is enough here; full normalisation (OpenCC) per sentence
    # cost ~20 ms per answer.
    wanted = {t.lower() for t in terms if len(t) >= 2}

    def score(item: tuple[str, str]) -> float:
        sub, sentence = item
        norm = f"{sub} {sentence}".lower()
        value = sum(weights.get(t, len(t)) if weights else len(t) for t in wanted if t in norm)
        return value - (100 if sentence.startswith(_META) else 0)

    scores = [score(item) for item in sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    chosen = sorted(ranked[:max_sentences])
    chosen = [i for i in chosen if scores[i] >= 0] or chosen[:1]  # "本文说明…" only when alone
    parts = []
    previous_sub = None
    for i in chosen:
        sub, sentence = sentences[i]
        if len(sentence) > MAX_SENTENCE_CHARS:
            sentence = sentence[: MAX_SENTENCE_CHARS - 1] + "…"
        # Each sentence under a sub-heading other than the one before it gets that heading as a lead-in.
        parts.append(f"{sub}：{sentence}" if sub and sub != previous_sub and sub not in sentence else sentence)
        previous_sub = sub
    text = "".join(parts)
    return text[:-1] + "。" if text.endswith(("；", ";", "，", ",")) else text


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def licence_label(situation: Situation, vocabulary: Vocabulary) -> str | None:
    if situation.licence is None or situation.licence not in vocabulary.licences:
        return None
    return vocabulary.licence_label(situation.licence)


def situation_lines(situation: Situation, vocabulary: Vocabulary) -> list[str]:
    """Plain-text facts as understood (also given to the generator)."""
    causes = "、".join(vocabulary.cause_label(c) for c in stated_causes(situation) if c in vocabulary.causes)
    asked = "、".join(vocabulary.cause_subject(c) for c in situation.asked if c in vocabulary.causes)
    if situation.expires_on is None:
        expiry = "未说明"
    elif situation.date_precision == "day":
        expiry = format_date(situation.expires_on)
    elif situation.issued_on is not None:
        years = load_rules().rule_for(situation.licence)[0].validity_years
        expiry = (f"约{format_date(situation.expires_on)}（根据发证日期“{situation.date_text}”和{years}年有效期推算，"
                  "以证书上写明的到期日为准；如果已经续过期，以新证为准）")
    else:
        expiry = f"约{format_date(situation.expires_on)}（根据“{situation.date_text}”推算，请以证书上的日期为准）"
    lines = [
        f"许可证：{licence_label(situation, vocabulary) or '未说明'}"
        + "".join(f"；另有{vocabulary.licence_label(lid)}" for lid in situation.other_licences if lid in vocabulary.licences),
        f"遇到的问题：{causes or ('暂无，提前准备续期' if situation.preparing else '未说明')}",
        f"有效期届满日：{expiry}",
    ]
    if asked:
        lines.insert(2, f"您问到：{asked}")
    if situation.applied and situation.filed is not None:
        lines.append(f"续期申请：您说已在“{situation.filed.text}”提交，尚未收到结果")
    elif situation.applied:
        lines.append("续期申请：您说已经提交，尚未收到结果")
    elif situation.applied is False:
        lines.append("续期申请：您说已被驳回（或被退回）")
    return lines


def situation_section(situation: Situation, vocabulary: Vocabulary) -> str:
    return "### 情况判断\n\n" + "\n".join(f"- {md_escape(line)}" for line in situation_lines(situation, vocabulary))


def deadline_section(deadline: Deadline | None, situation: Situation) -> str:
    if deadline is None:
        rule, assumed = load_rules().rule_for(situation.licence)
        if assumed:
            rule_text = "增值电信业务经营许可证须在有效期届满前90日提出续期申请，网络文化经营许可证为届满前30日"
        else:
            rule_text = f"按{rule.label}，须在有效期届满前{rule.lead_days}日提出续期申请"
        return (
            "### 时间提醒\n\n"
            f"您还没有说明许可证的到期日期。{rule_text}，逾期不能再办续期。告诉我证书上的到期日后，我会算出最晚提交日和准备节点。"
        )
    # status_advice lists the upcoming milestones in one sentence ("建议节点：…。"); the answer
    # shows them as a list instead, so that sentence is cut here.
    advice = _MILESTONE_SENTENCE.sub("", status_advice(deadline, situation.applied, situation.filed))
    if situation.issued_on is not None:
        # The expiry is worked out from the issue date: a licence renewed since has another one.
        advice = "以下按发证日期推算的到期日计算。" + advice
        if deadline.status == EXPIRED:
            advice += "如果这期间已经续过期，请把新证上的到期日告诉我，我会重新计算。"
    lines = ["### 时间提醒", "", md_escape(advice)]
    vocabulary = load_vocabulary()
    for licence, expires_on, words in situation.other_expiries:
        # Another licence the user named with its own date: its own deadline, by its own rule.
        if licence not in vocabulary.licences:
            continue
        other = compute(expires_on, deadline.today, licence)
        when = (f"还有{other.days_left}天" if other.days_left > 0 else "今天就是最后一天" if other.days_left == 0
                else f"已过{-other.days_left}天，请尽快联系发证机关")
        expiry = f"约{format_date(expires_on)}（根据“{words}”推算）" if words else format_date(expires_on)
        lines += ["", md_escape(f"另：您的{vocabulary.licence_label(licence)}{expiry}到期，续期申请最晚须在"
                                f"{format_date(other.apply_by)}前提出（届满前{other.rule.lead_days}日），{when}。")]
    upcoming = [(day, label) for day, label in deadline.milestones if day >= deadline.today]
    if deadline.status == ON_TIME and upcoming and not situation.applied:
        lines += ["", "建议的准备节点（可下载日历提醒）："]
        for day, label in upcoming:
            text = f"{format_date(day)}：{md_escape(label)}"
            lines.append(f"- **{text}**" if day == deadline.apply_by else f"- {text}")
    return "\n".join(lines)


def measures_section(groups: Sequence[Group], numbers: dict[str, int], terms: dict[str, Sequence[str]],
                     weights: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """Bullets grouped by cause; `numbers` maps chunk_id -> citation number; `weights` per group
    label the terms' weights for condensing."""
    lines = ["### 应对措施", ""]
    for group in groups:
        if not group.hits:
            continue
        if len(groups) > 1 or group.label:
            lines.append(f"**{md_escape(group.label)}**")
            lines.append("")
        for hit in group.hits:
            lines.append(f"- {md_escape(condense(hit, terms.get(group.label, ()), weights=(weights or {}).get(group.label)))} "
                         f"[{numbers[hit.chunk_id]}]")
        lines.append("")
    return "\n".join(lines).rstrip()


def source_line(n: int, hit: Hit) -> str:
    where = md_escape(hit.title or hit.doc_id)
    if hit.heading:
        where += " › " + md_escape(hit.heading.replace(" > ", " › "))
    updated = f"（更新于 {md_escape(hit.chunk.updated)}）" if hit.chunk.updated else ""
    return f"[{n}] {where}{updated}"


def sources_section(hits: Sequence[Hit]) -> str:
    # Two trailing spaces would be a Markdown line break; a list keeps one source per line.
    return "### 参考来源\n\n" + "\n".join(f"- {source_line(n, h)}" for n, h in enumerate(hits, start=1))


def follow_up_questions(situation: Situation) -> tuple[str, ...]:
    questions = []
    if situation.licence is None:
        questions.append("您的是哪一种许可证？例如呼叫中心（B24）、ICP（B25）、EDI（B21）、IDC/CDN/ISP、SP，或网络文化经营许可证。")
    elif situation.licence == "vats":
        questions.append("您的增值电信业务经营许可证具体是哪类业务（呼叫中心、ICP、EDI、IDC……）？不同业务的补救要点不同。")
    if not stated_causes(situation) and not situation.preparing:
        questions.append(
            "续期遇到了什么问题？如果被驳回或要求补正，通知里写的原因是什么（如材料不齐、人员资质、营销外呼投诉、"
            "数据安全、公司变更、年报、许可条件）？如果只是提前准备，也请告诉我。"
        )
    if situation.expires_on is None:
        questions.append("许可证的有效期到哪一天？请按证书上的日期告诉我（如 2027年3月15日），我来计算最晚提交日。")
    elif situation.issued_on is not None:
        questions.append(f"到期日是按发证日期（“{situation.date_text}”）推算的。证书上写明的有效期截止日是哪一天？")
    elif situation.date_precision != "day":
        questions.append(f"您说的到期时间（“{situation.date_text}”）是大概的，证书上的具体到期日是哪一天？")
    return tuple(questions)


def follow_up_section(questions: Sequence[str]) -> str:
    return "### 还需要您补充\n\n" + "\n".join(f"{n}. {md_escape(q)}" for n, q in enumerate(questions, start=1))


def disclaimer(deadline: Deadline | None) -> str:
    authority = deadline.rule.authority if deadline is not None else "发证机关（工业和信息化部或省通信管理局等）"
    return f"*{md_escape(DISCLAIMER.format(authority=authority))}*"
