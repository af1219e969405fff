"""From one user message to an `Answer`: understand, decide scope, retrieve, compose.

    message -> sanitize (empty / too long / 「重新开始」 answered directly)
            -> situation.extract + merge into the Conversation
            -> scope: on-topic?  (kb/scope.py; off-topic gets an honest short reply, no passages)
            -> deadline (kb/deadlines.py) from the accumulated situation
            -> retrieval: one search per failure cause (the vocabulary's cause query plus the
               licence name) and one for the message itself, restricted to the licence's
               documents plus the general ones; passages below `cite_min_confidence` are dropped
            -> Markdown: 情况判断, 时间提醒, 应对措施 (extractive, or generated when an LLM is
               configured), 参考来源, 还需要您补充, disclaimer.

Nothing the user typed is stored anywhere unless `log_conversations` is on (then redacted).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from kb import sections
from kb.chunking import SENTENCE_END
from kb.conversation import Conversation
from kb.deadlines import Deadline, compute, to_ics
from kb.llm import LLMConfig, LLMError, build_messages, sanitize_generated, stream_completion
from kb.normalize import clean
from kb.privacy import ConversationLog
from kb.scope import Signals, decide, signals
from kb.sections import Group
from kb.situation import GENERIC_LICENCE, Situation, extract, merge
from kb.sparse import term_weights
from kb.types import Hit, SearchFilters
from kb.vocabulary import load_vocabulary

if TYPE_CHECKING:
    from kb.engine import KnowledgeBase

log = logging.getLogger(__name__)

FALLBACK_NOTICE = "生成服务暂时不可用，以下“应对措施”为知识库原文摘要。"
GENERATING = "（正在生成……）"
RESET_WORDS = {"重新开始", "重新开始咨询", "重新咨询", "从头开始", "重来", "清空", "重置", "restart", "reset", "startover"}
EXAMPLE = "我们呼叫中心证续期被驳回了，说材料不齐，证是明年3月15号到期的，还来得及吗"
COVERAGE = (
    "本助手只解答**增值电信业务经营许可证**（呼叫中心 B24、ICP B25、EDI B21、IDC/CDN/ISP、SP）和"
    "**网络文化经营许可证**的续期问题，例如：\n\n"
    "- 续期申请最晚什么时候提交，过期了怎么办\n"
    "- 续期被驳回的常见原因（材料、人员资质、营销外呼、数据安全、公司变更、年报、许可条件）和补救办法\n"
    "- 续期材料、办理流程、审批时间和费用\n\n"
    f"您可以这样问：「{EXAMPLE}」"
)
CAUSE_HITS, QUESTION_HITS, LAST_ASK_HITS, MAX_CAUSES = 2, 3, 1, 3
OWN_WORD_WEIGHT = 3.0  # in a cause group, the user's words the cause query lacks, when condensing
PENDING_LABEL = "已提交申请、等待结果"
PENDING_QUERY = "按时提交延续申请 到期前未作决定 视为准予延续"


@dataclass(frozen=True)
class Answer:
    markdown: str  # the full answer in Simplified Chinese Markdown
    grounded: bool  # True when the answer rests on cited passages of the knowledge base
    situation: Situation  # accumulated situation after this message
    deadline: Deadline | None
    hits: tuple[Hit, ...] = ()  # the cited passages; citation [n] is hits[n-1]
    follow_up: tuple[str, ...] = ()  # clarifying questions (还需要您补充)
    notice: str | None = None  # e.g. the generator failed and the extractive section is shown
    complete: bool = True  # False on intermediate streaming updates
    # answer | offtopic | empty | too_long | reset: lets a UI skip the "not grounded" note on a
    # greeting or an input prompt.
    kind: str = "answer"

    def to_dict(self) -> dict[str, Any]:
        s = self.situation
        return {
            "answer": self.markdown,
            "grounded": self.grounded,
            "kind": self.kind,
            "situation": {
                "licence": s.licence,
                "causes": list(s.causes),
                "asked": list(s.asked),
                "expires_on": s.expires_on.isoformat() if s.expires_on else None,
                "date_precision": s.date_precision,
                "issued_on": s.issued_on.isoformat() if s.issued_on else None,
                "applied": s.applied,
                "filed": {"earliest": s.filed.earliest.isoformat(), "latest": s.filed.latest.isoformat(),
                          "text": s.filed.text} if s.filed else None,
                "preparing": s.preparing,
                "other_licences": list(s.other_licences),
                "other_expiries": [{"licence": lid, "expires_on": day.isoformat(), "words": words}
                                   for lid, day, words in s.other_expiries],
            },
            "deadline": self.deadline.to_dict() if self.deadline else None,
            # `citation` is the [n] the answer text uses; `rank` is the passage's place in the one
            # search that found it (the chat runs a search per cause), so ranks can repeat.
            "sources": [{"citation": n, **h.to_dict()} for n, h in enumerate(self.hits, start=1)],
            "follow_up": list(self.follow_up),
            "notice": self.notice,
        }

    def ics(self) -> str | None:
        if self.deadline is None:
            return None
        vocabulary = load_vocabulary()
        return to_ics(self.deadline, sections.licence_label(self.situation, vocabulary))


@dataclass
class _Turn:
    """Everything composed for one on-topic message."""

    text: str
    situation: Situation
    deadline: Deadline | None
    groups: list[Group]
    hits: tuple[Hit, ...]
    follow_up: tuple[str, ...]
    head: str = ""
    measures: str = ""
    tail: str = ""
    terms: dict[str, tuple[str, ...]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Entry points (KnowledgeBase.ask / ask_stream call these)
# --------------------------------------------------------------------------------------------


def respond(kb: KnowledgeBase, message: Any, conversation: Conversation | None = None,
            today: date | None = None) -> Answer:
    last: Answer | None = None
    for answer in respond_stream(kb, message, conversation, today):
        last = answer
    assert last is not None and last.complete
    return last


def respond_stream(kb: KnowledgeBase, message: Any, conversation: Conversation | None = None,
                   today: date | None = None) -> Iterator[Answer]:
    conversation = conversation if conversation is not None else Conversation()
    today = today or date.today()
    text = sanitize(message)
    limit = kb.settings.max_message_chars
    if not text:
        yield _direct(conversation, "empty", "请描述一下您的情况：是哪种许可证、续期遇到了什么问题、证件什么时候到期。\n\n"
                      f"例如：「{EXAMPLE}」")
        return
    if len(text) > limit:
        yield _direct(conversation, "too_long",
                      f"您的消息有 {len(text)} 个字，超过了 {limit} 字的上限，没有处理。请只保留关键情况"
                      "（哪种许可证、被驳回的原因、到期日期）后重新发送，也可以分几条发。")
        return
    if re.sub(r"[\s\W_]+", "", text).lower() in RESET_WORDS:
        conversation.reset()
        yield _direct(conversation, "reset", "好的，之前的情况已经清空，我们重新开始。\n\n"
                      "请告诉我：是哪种许可证、续期遇到了什么问题、证件什么时候到期。")
        return

    understood = kb.fix_typos(text)
    update = extract(understood, today)
    sig = signals(understood, update, conversation.has_context)
    raw_hits: list[Hit] = []
    if sig.verdict is None:
        raw_hits = kb.search(text, 5)
    conversation.turns += 1
    threshold = kb.settings.context_min_confidence if conversation.has_context else kb.settings.min_confidence
    if not decide(sig, max((h.confidence for h in raw_hits), default=0.0), threshold):
        answer = _offtopic(conversation, sig)
        _log(kb, conversation, text, answer)
        yield answer
        return

    conversation.situation = merge(conversation.situation, update)
    named = update.licence is not None and update.licence == conversation.situation.licence
    turn = _compose(kb, text, conversation.situation, today, raw_hits, named)
    final = None
    config = LLMConfig.from_settings(kb.settings)
    if config is not None and turn.hits:
        for answer in _generate(kb, config, turn):
            if answer.complete:
                final = answer
            else:
                yield answer
    if final is None:
        final = _answer(turn, turn.measures)
    _log(kb, conversation, text, final)
    yield final


def sanitize(message: Any) -> str:
    """The message as text: control characters, NUL bytes and lone surrogates removed."""
    if message is None:
        return ""
    if not isinstance(message, str):
        message = str(message)
    return clean(message.replace("\r\n", "\n").replace("\r", "\n")).strip()


# --------------------------------------------------------------------------------------------
# Direct replies
# --------------------------------------------------------------------------------------------


def _direct(conversation: Conversation, kind: str, markdown: str) -> Answer:
    return Answer(markdown=markdown, grounded=False, situation=conversation.situation, deadline=None, kind=kind)


_OFFTOPIC_OPENING = {
    "smalltalk": "您好！我是续证助手。",
    "foreign": "您问的似乎是其他证照或事项，不在本知识库的范围内，我没有可以作为依据的资料，所以不作回答。",
    "unrelated": "您问的似乎是呼叫中心运营或电信消费方面的事（系统、排班、话费、宽带等），不涉及许可证本身，"
                 "不在本知识库的范围内，我没有可以作为依据的资料，所以不作回答。",
}


def _offtopic(conversation: Conversation, sig: Signals) -> Answer:
    opening = _OFFTOPIC_OPENING.get(
        sig.reason, "抱歉，知识库里没有与这个问题相关的资料，我不能给出有依据的回答。"
    )
    return _direct(conversation, "offtopic", f"{opening}\n\n{COVERAGE}")


# --------------------------------------------------------------------------------------------
# Retrieval and composition
# --------------------------------------------------------------------------------------------


def _licence_filter(licence: str | None, others: tuple[str, ...] = ()) -> SearchFilters | None:
    """The documents of every licence the user holds ("我们的IDC和CDN证": both) plus the general
    telecom ones (tagged `vats`). The network culture licence alone follows other rules, so it gets
    its own documents only. A VATS licence not said more precisely ("our value-added telecom
    permit") may be any of them, so every telecom licence's documents stay in: the remedies for the
    outline's causes are in the call-centre documents, and the general ones alone cited the refusal
    overview for a data leak."""
    if licence is None:
        return None
    held = (licence, *others)
    if held == (GENERIC_LICENCE,):
        held = tuple(lid for lid in load_vocabulary().licences if lid != "network-culture")
    if held == ("network-culture",):
        return SearchFilters(licences=held)
    return SearchFilters(licences=tuple(dict.fromkeys((*held, "vats"))))


def _short_name(licence: str | None) -> str:
    if licence is None:
        return ""
    vocabulary = load_vocabulary()
    if licence not in vocabulary.licences:
        return ""
    return re.split(r"[（(]", vocabulary.licence_label(licence))[0]


def retrieve(kb: KnowledgeBase, text: str, situation: Situation, raw_hits: list[Hit] | None = None,
             named: bool = False) -> list[Group]:
    """One group per failure cause (in the order the user named them), then the message's own.
    `named`: the message itself names the licence, so its name need not be added to the query."""
    vocabulary = load_vocabulary()
    floor = kb.settings.cite_min_confidence
    filters = _licence_filter(situation.licence, situation.other_licences)
    name = "" if situation.other_licences else _short_name(situation.licence)
    limit = kb.settings.max_message_chars
    used: set[str] = set()
    groups: list[Group] = []

    def pick(hits: list[Hit], n: int) -> tuple[Hit, ...]:
        chosen = []
        for hit in hits:
            if len(chosen) == n:
                break
            if hit.chunk_id not in used and hit.confidence >= floor:
                used.add(hit.chunk_id)
                chosen.append(hit)
        return tuple(chosen)

    for cause_id in situation.causes[:MAX_CAUSES]:
        cause = vocabulary.causes.get(cause_id)
        if cause is None or not cause.query:
            continue
        # Measured on ten licence x cause pairs: the licence name plus the cause query, limited to
        # the licence's documents *and* the cause's topics, ranks the licence's own remedy first;
        # without the topic limit the name alone pulls in the glossary that lists every licence.
        query = f"{name} {cause.query}".strip()
        topical = SearchFilters(licences=filters.licences if filters else (), topics=cause.topics)
        hits = pick(kb.search(query, 5, filters=topical), CAUSE_HITS)
        if not hits:
            hits = pick(kb.search(query, 5, filters=filters), CAUSE_HITS)
        label = vocabulary.cause_subject(cause_id) if cause_id in situation.asked else cause.label
        groups.append(Group(label, query, hits))

    if situation.applied:
        # An application already in: what an on-time application means (deemed approval when no
        # decision comes before expiry) is the passage the user needs, whatever they asked.
        query = f"{name} {PENDING_QUERY}".strip()
        groups.append(Group(PENDING_LABEL, query, pick(kb.search(query, 5, filters=filters), CAUSE_HITS)))

    query = text if not name or named else f"{name} {text}"[:limit]
    if query == text and filters is None and raw_hits:
        hits = raw_hits
    else:
        hits = kb.search(query, 5, filters=filters)
    # The message's own search keeps its top three even after cause groups (it used to add only
    # two): `kb eval --chat`, the share of answers citing a passage that answers the question,
    # tune 0.921 -> 0.941, held out 0.937 -> 0.944, at 3.3 -> 3.7 cited passages on average.
    # Loose matches are still dropped by cite_min_confidence.
    label = "与您的问题相关" if groups else ""
    chosen = pick(hits, QUESTION_HITS)
    ask = last_ask(text)
    if ask:
        # A message of several sentences ("整改完了，准备重新提交。等审批这段时间要注意啥？") is ranked
        # by its situation as much as by its question; the final question's own best passage is
        # cited too. `kb eval --chat` on the 349 tuning questions: 0.977 -> 0.980, no answer lost,
        # 3.9 -> 4.1 cited passages on average.
        chosen += pick(kb.search(ask if not name else f"{name} {ask}", 5, filters=filters), LAST_ASK_HITS)
    groups.append(Group(label, query, chosen))
    return [g for g in groups if g.hits]


def last_ask(text: str) -> str | None:
    """The last sentence of a message of two or more sentences (fragments under four characters do
    not count), or None for a one-sentence message."""
    sentences = [s.strip() for s in SENTENCE_END.split(text) if len(s.strip()) >= 4]
    return sentences[-1] if len(sentences) >= 2 else None


_TERMS_CACHE_SIZE = 512  # cause queries are licence x cause (~100); the rest are one-off


def _terms(kb: KnowledgeBase, query: str, cached: bool) -> tuple[str, ...]:
    """Query terms for condensing. Cause queries are a fixed set (licence x cause), so their
    jieba tokenisation is kept on the KnowledgeBase instance (dropped with it, and emptied when it
    reaches _TERMS_CACHE_SIZE: a message query with the licence name in front lands here too)."""
    if not cached:
        return tuple(kb.tokenizer.query_terms(query).tokens)
    cache: dict[str, tuple[str, ...]] = kb.__dict__.setdefault("_chat_terms", {})
    if query not in cache:
        if len(cache) >= _TERMS_CACHE_SIZE:
            cache.clear()
        cache[query] = tuple(kb.tokenizer.query_terms(query).tokens)
    return cache[query]


def _compose(kb: KnowledgeBase, text: str, situation: Situation, today: date, raw_hits: list[Hit],
             named: bool) -> _Turn:
    vocabulary = load_vocabulary()
    deadline = compute(situation.expires_on, today, situation.licence) if situation.expires_on else None
    groups = retrieve(kb, text, situation, raw_hits, named)
    hits = tuple(h for g in groups for h in g.hits)
    numbers = {h.chunk_id: n for n, h in enumerate(hits, start=1)}
    # Passages are condensed to their sentences that match the group's query, each word weighted by
    # its IDF; in a cause group the user's own words that the cause query lacks weigh triple, so
    # "注册地址变了" picks the address-change sentence of the company-changes passage.
    own = _terms(kb, text, cached=False)
    terms: dict[str, tuple[str, ...]] = {}
    specific: dict[str, set[str]] = {}
    for g in groups:
        if g.query == text:
            terms[g.label], specific[g.label] = own, set()
        else:
            query_terms = _terms(kb, g.query, cached=True)
            terms[g.label], specific[g.label] = query_terms + own, set(own) - set(query_terms)
    idf = term_weights(kb.index.bm25, {t for ts in terms.values() for t in ts})
    weights = {label: {t: w * (OWN_WORD_WEIGHT if t in words else 1.0) for t, w in idf.items()}
               for label, words in specific.items()}
    follow_up = sections.follow_up_questions(situation)
    turn = _Turn(text, situation, deadline, groups, hits, follow_up, terms=terms)
    turn.head = "\n\n".join(
        [sections.situation_section(situation, vocabulary), sections.deadline_section(deadline, situation)]
    )
    if groups:
        turn.measures = sections.measures_section(groups, numbers, terms, weights)
    else:
        turn.measures = ("### 应对措施\n\n知识库中没有找到与您的情况足够相关的资料，无法给出有出处的具体措施。"
                         "建议直接向发证机关咨询，或补充更多情况后再问我。")
    tail = [sections.sources_section(hits)] if hits else []
    if follow_up:
        tail.append(sections.follow_up_section(follow_up))
    tail.append(sections.disclaimer(deadline))
    turn.tail = "\n\n".join(tail)
    return turn


def _answer(turn: _Turn, measures: str, *, notice: str | None = None, complete: bool = True) -> Answer:
    return Answer(
        markdown="\n\n".join([turn.head, measures, turn.tail]),
        grounded=bool(turn.hits),
        situation=turn.situation,
        deadline=turn.deadline,
        hits=turn.hits,
        follow_up=turn.follow_up,
        notice=notice,
        complete=complete,
    )


def _generate(kb: KnowledgeBase, config: LLMConfig, turn: _Turn) -> Iterator[Answer]:
    """Partial answers while the generator streams, then the complete one (generated, or the
    extractive section with a notice when generation fails at any point)."""
    vocabulary = load_vocabulary()
    numbers = {h.chunk_id: n for n, h in enumerate(turn.hits, start=1)}
    groups = [(g.label or "要点", [numbers[h.chunk_id] for h in g.hits]) for g in turn.groups]
    messages = build_messages(turn.text, sections.situation_lines(turn.situation, vocabulary), groups, turn.hits)
    yield _answer(turn, f"### 应对措施\n\n{GENERATING}", complete=False)
    text = ""
    try:
        for delta in stream_completion(config, messages):
            text += delta
            body = sanitize_generated(text, len(turn.hits))
            yield _answer(turn, f"### 应对措施\n\n{body}\n\n{GENERATING}", complete=False)
    except LLMError as exc:
        log.warning("generation failed, extractive answer used: %s", exc)  # never the message text
        yield _answer(turn, turn.measures, notice=FALLBACK_NOTICE)
        return
    body = sanitize_generated(text, len(turn.hits)).strip()
    yield _answer(turn, f"### 应对措施\n\n{body}")


# --------------------------------------------------------------------------------------------
# Optional conversation log
# --------------------------------------------------------------------------------------------


def _log(kb: KnowledgeBase, conversation: Conversation, text: str, answer: Answer) -> None:
    if not kb.settings.log_conversations:
        return
    s = answer.situation
    record = {
        "build_id": kb.build_id,
        "turn": conversation.turns,
        "message": text,
        "kind": answer.kind,
        "grounded": answer.grounded,
        "situation": {"licence": s.licence, "causes": list(s.causes),
                      "expires_on": s.expires_on.isoformat() if s.expires_on else None},
        "sources": [h.chunk_id for h in answer.hits],
        "notice": answer.notice,
    }
    try:
        ConversationLog(kb.settings.conversation_log).append(record)
    except OSError as exc:  # a full disk must not cost the user their answer
        log.warning("conversation log not written: %s", exc.strerror or exc.__class__.__name__)
