"""Understanding one user message: which licence, which failure causes, and when it expires.

Pure and fast (regular expressions over the normalised message, no jieba): the chat calls
`extract` on every turn and `merge` to carry the situation across turns.

Expiry-date selection rule (the part most likely to go wrong, so stated once here):
  1. Every date-like expression is a candidate: absolute dates (2027年3月15日, 2027-03-15,
     二〇二七年三月十五日), relative ones (明年3月, 下个月10号, 月底, 去年底) and spans
     (还有两个月, 90天后, 过期两个月了). A candidate directly followed by another event's verb
     (提交/申请/驳回/发证/取得/…起) is about that event and never becomes the expiry date.
  2. If any candidate shares a clause (text between , 。 ; ! ? and newlines) with an expiry cue
     (到期 届满 期满 过期 失效 有效期 截止 逾期 超期), the one nearest to a cue wins; a date right after
     至/到 (the end of a range) counts as touching the cue; ties go to the later candidate.
  3. Otherwise a date without a cue is taken only when it is the only candidate in the message,
     its clause names no other event (提交, 驳回, 年报, 开会, …), the message is about a licence
     or its renewal, and nothing contradicts it (a future date while the user says it already
     expired, or a past date while the user says it is about to expire).
  4. Otherwise no date. Nothing is ever inferred from "快到期了" or from an issue date.
When the chosen candidate is not a real calendar date (2027年2月30日, 13月) the result is no date.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache

from kb.deadlines import Filed, expiry_from_issue
from kb.english import to_chinese_cues
from kb.normalize import CN_DIGITS, HAN_CHAR, chinese_int, normalize
from kb.tokenize import load_synonym_groups
from kb.vocabulary import Vocabulary, load_vocabulary

_SPACES = re.compile(r"[^\S\n]+")
GENERIC_LICENCE = "vats"  # the umbrella VATS licence: any specific licence named with it wins
EXPIRED = "expired"  # the cause id that the date arithmetic can also establish


@dataclass(frozen=True)
class Situation:
    licence: str | None = None  # licence id from vocabulary.yaml, None when not said
    causes: tuple[str, ...] = ()  # cause ids from vocabulary.yaml `causes`, in order of mention
    # Those of `causes` the user only asks about, with nothing said to be wrong ("需要准备哪些材料",
    # "社保要交几个人"): searched like the others, but not shown as the user's problem.
    asked: tuple[str, ...] = ()
    expires_on: date | None = None  # expiry date of the licence, only when the user gave one
    # "day" | "month" | "approximate" (relative spans) | "issued" (worked out from the issue date)
    date_precision: str | None = None
    date_text: str | None = None  # the (normalised) words the date was read from
    # True: the user says the renewal application is in and names no refusal (the deadline advice
    # then explains what an on-time application means instead of urging them to file); False: they
    # say it was refused; None: they said neither.
    applied: bool | None = None
    filed: Filed | None = None  # when the application that is in was handed in, if the user says
    # The date the user says the licence was issued ("证是2022年1月10日发的"), when no expiry date
    # was given: expires_on is then worked out from it and the licence's validity (ISSUED).
    issued_on: date | None = None
    # The user says nothing has gone wrong: they are preparing a renewal ("只是提前准备，没被驳回"), so
    # the chat stops asking what the problem was. Only while no cause or refusal is known.
    preparing: bool = False
    # Other licences the user holds, named together with `licence` ("我们的IDC和CDN证",
    # "B21和B25两项"): the chat searches their documents too. Not those only compared with it.
    other_licences: tuple[str, ...] = ()
    # Their expiry dates when the message gives them too ("ICP证明年5月到期，呼叫中心证8月到期": the
    # call centre's), as (licence id, date, the words when they give no day, else ""); `expires_on`
    # is the earliest, `licence`'s.
    other_expiries: tuple[tuple[str, date, str], ...] = ()


ISSUED = "issued"


def stated_causes(situation: Situation) -> tuple[str, ...]:
    """The causes the user says are their problem (not only asked about)."""
    return tuple(c for c in situation.causes if c not in situation.asked)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def extract(message: str, today: date, vocabulary: Vocabulary | None = None) -> Situation:
    """What one message says about the user's licence, renewal problems and expiry date."""
    # Horizontal whitespace runs become one space, so every pattern below can use " ?" where it
    # would use r"\s*": adjacent optional r"\s*" groups backtrack polynomially on long runs.
    said: dict[str, str] = {}  # English date phrases: their Chinese form -> the user's words
    text = to_chinese_cues(_SPACES.sub(" ", normalize(message or "")), said)
    if not text.strip():
        return Situation()
    matchers = _matchers(vocabulary or load_vocabulary())
    clauses = _Clauses(text)

    named = matchers.licences.find(text)  # (start, end, licence id) of every licence name
    licence, other_licences = _find_licence(text, clauses, named)
    keywords = matchers.causes.find(text)
    mentions = _find_causes(text, clauses, keywords)  # (position, cause id), expired excluded
    expired_at = _expired_keyword(text, clauses, keywords)
    past_clauses = _past_clauses(text, clauses)
    applied = _applied(text, clauses)

    dates = _candidates(text, today, clauses, past_clauses)
    chosen, alternatives = _choose_date(text, dates, today, clauses, expired_at is not None)
    if chosen is not None and chosen.value is None:
        chosen = None  # "2027年2月30日到期": the user meant a date, but not a real one
    other_expiries: tuple[tuple[str, date, str], ...] = ()
    if chosen is not None and other_licences:
        held = (licence, *other_licences)
        owner = _owner_of_date(text, clauses, named, chosen, dates, held)
        if owner is not None and owner != licence:
            licence, other_licences = owner, tuple(lid for lid in held if lid != owner)
        pairs = {}
        for c in alternatives:
            lid = _owner_of_date(text, clauses, named, c, dates, held)
            if lid is not None and lid != licence and c.value is not None:
                pairs.setdefault(lid, (c.value, "" if c.precision == "day" else said.get(c.text, c.text)))
        other_expiries = tuple((lid, day, words) for lid, (day, words) in pairs.items())
    issued_on = None
    if chosen is None and (issued := _issue_date(text, dates, today, clauses, licence is not None)) is not None:
        issued_on = issued.value
        chosen = replace(issued, value=expiry_from_issue(issued_on, licence), precision=ISSUED)

    # Whether the licence has already expired: a date decides when there is one (a future date
    # with "过期" in it is just the expiry verb); otherwise the user's own words decide.
    if chosen is not None and chosen.value is not None:  # (value is never None here; for mypy)
        is_expired = chosen.value < today  # a licence is still valid on its expiry day
        expired_pos = chosen.start if expired_at is None else expired_at
    else:
        is_expired = expired_at is not None
        expired_pos = len(text) if expired_at is None else expired_at
    if is_expired:
        mentions.append((expired_pos, EXPIRED))

    causes: list[str] = []
    for _, cause in sorted(mentions, key=lambda m: m[0]):
        if cause not in causes:
            causes.append(cause)
    asked = tuple(c for c in causes if c != EXPIRED) if _only_asks(text) else ()

    preparing = len(causes) == len(asked) and applied is not False and bool(_PREPARING.search(text))
    filed = _filing_date(text, dates, today, clauses, said) if applied else None
    if chosen is None:
        return Situation(licence=licence, causes=tuple(causes), asked=asked, applied=applied, filed=filed,
                         preparing=preparing, other_licences=other_licences)  # no date, so no other_expiries
    return Situation(
        licence=licence,
        causes=tuple(causes),
        asked=asked,
        expires_on=chosen.value,
        date_precision=chosen.precision,
        date_text=said.get(chosen.text, chosen.text),
        applied=applied,
        filed=filed,
        issued_on=issued_on,
        preparing=preparing,
        other_licences=other_licences,
        other_expiries=other_expiries,
    )


# "只是提前准备", "还没出什么问题", "没被驳回", "just preparing ahead", "nothing has gone wrong yet".
_PREPARING = re.compile(
    r"提前准备|提早准备|提前做准备|未雨绸缪|(?:还|都)?没(?:有)?(?:出|遇到|碰到)(?:什么|任何)?问题|(?:还)?没(?:有)?被(?:驳回|拒|退回)"
    r"|只是(?:问问|了解一下|了解|咨询一下|咨询|提前)|正常续期|例行续期"
    r"|\bjust (?:preparing|planning|asking)\b|\bpreparing (?:early|ahead|in advance)\b|\bplanning ahead\b"
    r"|\bno problems?(?: so far| yet)?\b|\bnothing (?:has )?gone wrong\b|\b(?:haven't|have not|hasn't|has not) been (?:refused|rejected)\b"
)


def merge(previous: Situation, update: Situation) -> Situation:
    """The situation after another turn.

    A newly named licence replaces the old one, except that the generic VATS licence does not
    replace a specific one (a call-centre licence *is* a VATS licence). A new date replaces the
    old date with its precision and text. Causes accumulate without duplicates; when the new turn
    carries a date, whether the licence has expired follows that date (the user corrected it).
    """
    licence, other_licences = previous.licence, previous.other_licences
    if update.licence is not None and not (update.licence == GENERIC_LICENCE and previous.licence is not None):
        licence, other_licences = update.licence, update.other_licences

    old_causes = previous.causes
    if update.expires_on is not None and EXPIRED not in update.causes:
        old_causes = tuple(c for c in old_causes if c != EXPIRED)
    causes = old_causes + tuple(c for c in update.causes if c not in old_causes)
    # A cause is only asked about until a turn says it is the problem.
    stated = set(stated_causes(previous)) | set(stated_causes(update))
    asked = tuple(c for c in causes if c not in stated)

    applied = previous.applied if update.applied is None else update.applied  # "后来被驳回了" ends it
    filed = (update.filed or previous.filed) if applied else None
    preparing = (previous.preparing or update.preparing) and len(asked) == len(causes) and applied is not False
    merged = replace(previous, licence=licence, causes=causes, asked=asked, applied=applied, filed=filed,
                     preparing=preparing, other_licences=other_licences)
    if update.expires_on is not None:
        merged = replace(
            merged,
            expires_on=update.expires_on,
            date_precision=update.date_precision,
            date_text=update.date_text,
            issued_on=update.issued_on,
            other_expiries=update.other_expiries,
        )
    elif merged.issued_on is not None and licence != previous.licence:
        # "证是2022年1月发的" then "是文网文": the validity, and so the expiry, is the new licence's.
        merged = replace(merged, expires_on=expiry_from_issue(merged.issued_on, licence))
    # Other licences' dates last as long as those licences do ("那ICP证呢" drops them).
    merged = replace(merged, other_expiries=tuple(p for p in merged.other_expiries if p[0] in merged.other_licences))
    return merged


# --------------------------------------------------------------------------------------------
# Clauses
# --------------------------------------------------------------------------------------------

# After normalisation "，；！？" are half-width. "." ends a clause only when it is not between
# digits (2027.3.15); ":" does not (到期日:2027年3月15日).
_CLAUSE_BREAK = re.compile(r"[,;!?。\n]|(?<![0-9])\.|\.(?![0-9])")


class _Clauses:
    """Clause index of every position in a text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.breaks = [m.start() for m in _CLAUSE_BREAK.finditer(text)]

    def of(self, pos: int) -> int:
        return bisect_right(self.breaks, pos)

    def start(self, pos: int) -> int:
        i = self.of(pos)
        return self.breaks[i - 1] + 1 if i else 0

    def end(self, pos: int) -> int:
        i = self.of(pos)
        return self.breaks[i] if i < len(self.breaks) else len(self.text)

    def prefix(self, pos: int) -> str:
        """Text from the clause start up to `pos`."""
        return self.text[self.start(pos) : pos]

    def clause(self, pos: int) -> str:
        return self.text[self.start(pos) : self.end(pos)]


# --------------------------------------------------------------------------------------------
# Vocabulary matchers (compiled once per vocabulary)
# --------------------------------------------------------------------------------------------

_LATIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


class _TermScanner:
    """Leftmost-longest matching of many fixed terms, indexed by first character.

    One regex alternation over ~200 terms costs ~1 ms per message (Python's `re` tries every
    alternative at every position); a dict lookup per character is ~20x cheaper. Terms with a
    Latin letter or digit at an edge need a non-alphanumeric neighbour there, so "sp" does not
    match inside "isp" nor "b24" inside "b245", while "icp备案" still contains "icp".
    """

    def __init__(self, terms: dict[str, str]) -> None:
        index: dict[str, list[tuple[str, str]]] = {}
        for term in sorted(terms, key=lambda t: (-len(t), t)):
            index.setdefault(term[0], []).append((term, terms[term]))
        self._index = index

    def find(self, text: str) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        i, n = 0, len(text)
        while i < n:
            for term, value in self._index.get(text[i], ()):
                j = i + len(term)
                if not text.startswith(term, i):
                    continue
                if term[0] in _LATIN and i > 0 and text[i - 1] in _LATIN:
                    continue
                if term[-1] in _LATIN and j < n and text[j] in _LATIN:
                    continue
                found.append((i, j, value))
                i = j
                break
            else:
                i += 1
        return found


@dataclass(frozen=True)
class _Matchers:
    licences: _TermScanner
    causes: _TermScanner


def _terms(entries: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Normalised term -> id; whitespace inside a term collapses to one space as in messages."""
    out: dict[str, str] = {}
    for entry_id, words in entries.items():
        for word in words:
            key = " ".join(normalize(word).split())
            if key:
                out.setdefault(key, entry_id)
    return out


@lru_cache(maxsize=8)
def _matchers(vocabulary: Vocabulary) -> _Matchers:
    return _Matchers(
        licences=_TermScanner(_terms({k: (*v.aliases, *v.codes) for k, v in vocabulary.licences.items()})),
        causes=_TermScanner(_terms({k: v.keywords for k, v in vocabulary.causes.items()})),
    )


# --------------------------------------------------------------------------------------------
# Negation
# --------------------------------------------------------------------------------------------

# "不是材料问题", "并非人员原因": a negator before the term in the same clause, with no contrast
# word between them ("不是材料问题，是人员资质不够" keeps the staff cause).
_NEGATOR = re.compile(r"并不是|(?<!是)不是|并非|不属于|不涉及|不存在|不在于|排除")
_CONTRAST = re.compile(r"而是|但是|但|而|是|只是|反而|其实")
# "材料没问题", "材料齐全": a denial right after the term.
_DENIAL_AFTER = re.compile(
    r" ?(?:方面|这块|这一块|这边|的)? ?(?:都|也|倒|是|应该)? ?"
    r"(?:没问题|没有问题|没什么问题|没啥问题|没出问题|没出什么问题|不是问题|不是原因|不是重点|齐全|齐了|是齐的|都齐|不缺|没缺|无关|没关系)"
)
_NEG_WINDOW = 10  # characters before a term searched for a negator


def _negated(text: str, clauses: _Clauses, start: int, end: int, *, denial_after: bool = True) -> bool:
    lo = max(clauses.start(start), start - _NEG_WINDOW)
    window = text[lo:start]
    for neg in _NEGATOR.finditer(window):
        if not _CONTRAST.search(window[neg.end() :]):
            return True
    return denial_after and bool(_DENIAL_AFTER.match(text, end, clauses.end(start)))


# --------------------------------------------------------------------------------------------
# Licence
# --------------------------------------------------------------------------------------------


def _find_licence(
    text: str, clauses: _Clauses, named: list[tuple[int, int, str]]
) -> tuple[str | None, tuple[str, ...]]:
    """The last specific licence mentioned (users switch: "那ICP证呢"), and the user's other ones
    named in the same message; the generic VATS licence only when nothing more specific is named;
    negated mentions ("不是ICP证") are skipped, and so is a licence the user only compares theirs
    with ("EDI证快到期了，续期跟ICP规则一样吗" is about the EDI licence) unless no other is named."""
    # Only a negator before the name counts: "呼叫中心证没问题" still names the licence.
    found = [(s, e, lid) for s, e, lid in named if not _negated(text, clauses, s, e, denial_after=False)]
    specific = [(s, e, lid) for s, e, lid in found if lid != GENERIC_LICENCE]
    own = [lid for s, e, lid in specific if not _compared_with(text, s, e)]
    if own or specific:
        names = list(dict.fromkeys(own or [lid for _, _, lid in specific]))
        main = (own or [lid for _, _, lid in specific])[-1]
        return main, tuple(lid for lid in names if lid != main) if own else ()
    return (GENERIC_LICENCE if found else None), ()


def _owner_of_date(
    text: str, clauses: _Clauses, named: list[tuple[int, int, str]], date_: _Candidate, dates: list[_Candidate],
    held: tuple[str, ...],
) -> str | None:
    """With several licences named, whose expiry a date is: in order after 分别 ("ICP和呼叫中心两张证，
    分别是明年5月和8月到期"), otherwise the licence named last before it ("ICP证明年5月到期，呼叫中心证8月
    到期")."""
    mentions = [(s, lid) for s, _, lid in named if lid in held]
    each = text.find("分别", 0, date_.start)
    if each >= 0:
        order = list(dict.fromkeys(lid for s, lid in mentions if s < each))
        group = [c for c in dates if c.start > each and clauses.start(c.start) == clauses.start(each)]
        if len(order) == len(group) and date_ in group:
            return order[group.index(date_)]
    before = [lid for s, lid in mentions if s < date_.start]
    return before[-1] if before else None


_COMPARED_BEFORE = re.compile(r"(?:跟|和|与|同|比|对比|相比)$")
_COMPARED_AFTER = re.compile(r"^[^，。！？；,.!?;]{0,8}?(?:一样|相同|不同|区别|差别|相比|比较|类似)")


# English puts the comparison before the name: "any different from renewing an ICP licence",
# "the same as for ICP", "compared with our EDI licence", "like our ICP licence".
_COMPARED_BEFORE_EN = re.compile(
    r"\b(?:different from|differs? from|the same as|same as|compared (?:to|with)|similar to|than|versus|vs\.?"
    r"|(?<!would )(?<!'d )like|as with)"
    r" (?:(?:for|with|renewing|getting|holding|an?|the|our|their|your) ){0,3}$"
)


def _compared_with(text: str, start: int, end: int) -> bool:
    """The mention is the other side of a comparison: 跟/和/与/比 right before it and 一样/不同/
    区别… shortly after, in the same clause; in English, "different from / the same as / compared
    with …" right before it."""
    if _COMPARED_BEFORE_EN.search(text[max(0, start - 60):start]):
        return True
    return bool(_COMPARED_BEFORE.search(text[max(0, start - 2):start]) and _COMPARED_AFTER.search(text[end:]))


# --------------------------------------------------------------------------------------------
# Causes
# --------------------------------------------------------------------------------------------


# A message that asks about causes' subjects and says nothing is wrong ("需要准备哪些材料",
# "社保要交几个人", "年报怎么报", "How many staff need social insurance?"): the user asks about
# those parts of the renewal; they are not the user's problems. Any problem word or completed
# event in the message ("材料不齐", "年报漏报了", "我们换了股东", "公司去年减资了") makes them so.
_ASKING = re.compile(
    r"[?？]|吗|呢|哪些|哪个|什么|啥|怎么|怎样|如何|多少|几个|几人|几年|是否|要不要|需不需要|能不能|可不可以|会不会|有没有"
    r"|\b(?:what|which|how|do|does|is|are|can|should|must)\b"
)
_QUESTION_FRAMES = re.compile(r"有没有|是不是|要不要|需不需要|能不能|可不可以|会不会|够不够|对不对|行不行|了解")
_PROBLEM_CUE = re.compile(
    r"了|不齐|不全|不完整|不够|不足|缺|少了|减|没|未|问题|错|不合规|不符合|不达标|不一致|不一样|不对|不行|退回|驳回|被拒|拒|"
    r"投诉|泄露|罚|漏|忘|变|换|改|调整|搬|断|只有|就[0-9一二两三四五六七八九十]|不到|过期|指出|被|因为|由于|原因|卡|失败|不过|过不了"
    r"|\b(?:missing|lack\w*|incomplete|insufficient|not|no|never|without|refused|rejected|fined|complain\w*|leak\w*"
    r"|changed|because|didn't|wasn't|weren't|failed|moved|cut|replac\w*|rais\w*|reduc\w*|appears?|listed|added|sold)\b"
)


def _only_asks(text: str) -> bool:
    return bool(_ASKING.search(text)) and not _PROBLEM_CUE.search(_QUESTION_FRAMES.sub("", text))


def _find_causes(text: str, clauses: _Clauses, keywords: list[tuple[int, int, str]]) -> list[tuple[int, str]]:
    """(position, cause id) of every non-negated cause keyword except `expired`, which has its
    own tense-aware rule (`_expired_keyword`)."""
    return [(s, cid) for s, e, cid in keywords if cid != EXPIRED and not _negated(text, clauses, s, e)]


# "快到期了", "还没过期", "要是过期了": not a statement that the licence has expired.
_NOT_YET = re.compile(
    r"(?:还没有|还没|没有|没|未|尚未|还未|并未|并没有|不会|不|别|快要|就要|将要|即将|马上|快|要|将|会|(?<!早)就|还有)"
    r" ?(?:都|也)? ?$"
)
_HYPOTHETICAL = re.compile(
    r"如果|万一|假如|要是|假设|以免|避免|防止|担心|害怕|怕|会不会|是否|是不是|有没有|能不能|可不可以"
)
_QUESTION_AFTER = re.compile(r" ?了? ?(?:吗|嘛|么|没有? ?(?:[?呢啊]|$))")


_ASSERT_WINDOW = 20  # characters before an expiry or refusal word searched for doubt or negation


def _asserted(text: str, clauses: _Clauses, start: int, end: int) -> bool:
    """True when the word at [start, end) (an expiry or a refusal) states a fact, not a future,
    a question or a doubt."""
    prefix = clauses.prefix(start)[-_ASSERT_WINDOW:]
    if _NOT_YET.search(prefix) or _HYPOTHETICAL.search(prefix) or _NEGATOR.search(prefix[-4:]):
        return False
    return not _QUESTION_AFTER.match(text, end)


# What else expires: "接入合同过期了", "备案失效了", "营业执照到期" are not the licence.
_OTHER_SUBJECT = re.compile(
    r"(?:合同|协议|备案|执照|域名|身份证|资质证书|证明|报告|号码|账号|密码|授权书?|委托书|承诺书|中继|租约"
    r"|contract|agreement|filing|domain|lease)"
    r" ?(?:都|也|已经|已|早就|快要|快|就|还)? ?$"
)


def _expired_keyword(text: str, clauses: _Clauses, keywords: list[tuple[int, int, str]]) -> int | None:
    """Position of the first `expired` keyword the user asserts (已经过期, 过期了, 失效, …) of the
    licence, not of a contract, a filing or another document named right before it."""
    for s, e, cid in keywords:
        if cid == EXPIRED and _asserted(text, clauses, s, e) and not _OTHER_SUBJECT.search(text, clauses.start(s), s):
            return s
    return None


# Explicit past tense: decides whether a date without a year ("3月15号已经过期了") is the last
# occurrence rather than the next one.
_PAST = re.compile(
    r"已经?(?:过期|到期|失效|届满)|早(?:就|已)(?:过期|到期|失效)|(?:过期|到期|失效|届满)了|逾期|超期|错过了"
)


def _past_clauses(text: str, clauses: _Clauses) -> set[int]:
    return {clauses.of(p.start()) for p in _PAST.finditer(text) if _asserted(text, clauses, p.start(), p.end())}


# --------------------------------------------------------------------------------------------
# An application already submitted
# --------------------------------------------------------------------------------------------

# "交了续期申请", "提前三个多月交的续期申请", "续期申请上周已经在系统里提交了", "系统显示已受理",
# "还在审批中", "管局还没批下来", "we filed the renewal", "the application was accepted", "still
# pending". Not "还没交申请" (no 了/过/的 after the verb), "交了申请以后多久出结果" (a question
# about the process), "如果已经提交了…", "现在审批很慢", or "没批下来" without 还 (often a refusal).
_APPLIED = re.compile(
    r"(?:提交|递交|交|报送)(?:了|过|(?P<de>的)) ?(?:续期|延续|续证|续办)?申请(?! ?(?:以后|之后|后))"
    r"|(?:续期|延续|续证)申请[^,;!?。]{0,10}?(?:已经|已|早就)[^,;!?。]{0,8}?(?:提交|递交|交)"
    # "交了续期", "续期申请交上去快一个月了" (not 交了续期费, 交了续期以后…, 把续期申请交上去, 续期交上去一般…)
    r"|(?:提交|递交|交)(?:了|过|上去了|(?P<de2>的)) ?(?:续期|延续|续证)(?!费|申请)(?! ?(?:以后|之后|后))"
    r"|(?<!把)(?:续期|延续|续证)(?:申请|材料)?(?:交上去|提交上去|递上去|报上去)(?=了(?!以后|之后|后)|快|都|已经|有)"
    r"|(?:已经|已)(?:受理|提交|递交)"
    r"|(?:还在|正在|仍在|仍然在|一直在)(?:审批|审核|审查|审)|(?:审批|审核|审查)中"
    r"|还(?:没有?|未)(?:批下来|审下来|出结果|给结果|作出决定|做出决定|批复)"
    r"|\b(?:we|i|have|had|already) (?:already |have |had )?(?:filed|submitted|lodged|applied for)\b"
    r"|\b(?:was|been|has been|have been) (?:accepted|received|filed|submitted)\b"
    r"|\b(?:still )?(?:pending|under review|awaiting (?:a |the )?decision)\b|\bstill no decision\b"
)
# "交的申请" states the user's own filing only with a first person ("我们是提前三个月交的续期申请"),
# not in a general question ("申请人提交的延续申请材料不齐全时…").
_FIRST_PERSON = re.compile(r"我|咱|本公司|公司")
# Not filed (the doubt words of an expiry statement, _HYPOTHETICAL, count too).
_NOT_FILED = re.compile(r"没|未|忘了|\bif\b|whether|\bnot\b|n't")
REFUSAL_WORD = "驳回"  # names the synonym group (kb/data/synonyms.yaml) of refusal words


@lru_cache(maxsize=1)
def _refused() -> re.Pattern[str]:
    """The refusal words, from the same synonym group search expands 驳回 with: a refused
    application is not pending (its advice is re-applying, not an on-time application)."""
    group = next(g for g in load_synonym_groups() if REFUSAL_WORD in g)
    return re.compile("|".join(re.escape(w) for w in sorted(group, key=len, reverse=True)))


# A refusal word that is not the user's own news: hearsay, what is common, what may happen, and
# the English doubt words (the Chinese ones are _HYPOTHETICAL's and _NOT_YET's).
_REFUSAL_DOUBT = re.compile(
    r"听说|别人|别的|很多|有的|有些|容易|可能|常见|一般|通常|哪些|什么情况|怎么才能不|才不会"
    r"|\b(?:avoid|avoiding|if|whether|prevent|risk|chance)\b|\b(?:be|being|get|getting) $"
)
_NOT_REFUSED = re.compile(r"(?:没|没有|未|并未|并没有|不会|不)(?:都|也)? ?被? ?$")  # "没被驳回"
_REFUSAL_GENERAL_AFTER = re.compile(r" ?的(?:话|常见|主要|一般|通常|情况|企业|公司)|的原因(?:有|一般|通常|都)| ?了? ?(?:吗|么)")


def _refusal_stated(text: str, clauses: _Clauses, m: re.Match[str]) -> bool:
    """The refusal word states what happened to the user's application ("续期被驳回了", "we were
    refused"), not a fear, a question, hearsay or a general point ("怎么避免被驳回", "会不会被拒",
    "被驳回的常见原因有哪些")."""
    prefix = clauses.prefix(m.start())[-_ASSERT_WINDOW:]
    if _REFUSAL_DOUBT.search(prefix) or _NOT_REFUSED.search(prefix) or not _asserted(text, clauses, m.start(), m.end()):
        return False
    return not _REFUSAL_GENERAL_AFTER.match(text, m.end())


def _applied(text: str, clauses: _Clauses) -> bool | None:
    """False when the user says the application was refused, True when they say it is in and
    waiting, whichever they say last ("上次被驳回了，这次重新交了，还在审批中" is waiting again);
    None when they say neither."""
    refused_at = max((m.start() for m in _refused().finditer(text) if _refusal_stated(text, clauses, m)), default=-1)
    pending_at = waiting_at = -1
    for m in _APPLIED.finditer(text):
        prefix = clauses.prefix(m.start())
        if m.group("de") and not _FIRST_PERSON.search(prefix):
            continue
        if m.group("de2") and not _FIRST_PERSON.search(text, 0, m.start()):  # "我们的证1月到期，12月10号交的续期"
            continue
        window = prefix[-12:]
        if not (_HYPOTHETICAL.search(window) or _NOT_FILED.search(window)):
            pending_at = m.start()
            if _WAITING.search(m.group()):
                waiting_at = m.start()
    if refused_at < 0:
        return True if pending_at >= 0 else None
    # After a refusal only a wait said later reopens it: in "rejected because we filed 60 days
    # before expiry" the filing came first.
    return waiting_at > refused_at


_WAITING = re.compile(r"还|正在|仍|一直|中|受理|pending|under review|awaiting|still")


# --------------------------------------------------------------------------------------------
# Numbers and calendar arithmetic
# --------------------------------------------------------------------------------------------

def _int(token: str) -> int | None:
    """Arabic or Chinese numerals ("15", "十五", "二十八", "一百八十", colloquial 俩 and 仨) -> int."""
    if token.isascii() and token.isdigit():
        return int(token)
    if token in _COLLOQUIAL_NUMBERS:
        return _COLLOQUIAL_NUMBERS[token]
    return chinese_int(token)


_COLLOQUIAL_NUMBERS = {"俩": 2, "仨": 3}  # "还有俩月到期": 俩 is 两个, so no 个 follows


def _year(token: str) -> int | None:
    """A written year: "2027", "27" (-> 2027), "二〇二七" / "二零二七" (digit by digit)."""
    if token.isascii() and token.isdigit():
        return 2000 + int(token) if len(token) == 2 else int(token)
    digits = [CN_DIGITS.get(ch) for ch in token]
    if any(d is None for d in digits):
        return None
    return int("".join(str(d) for d in digits))


def add_months(d: date, months: int) -> date:
    """Calendar month arithmetic clamped to the month end: Jan 31 + 1 month = Feb 28 (or 29)."""
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(d.day, last))


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


_MIN_YEAR, _MAX_YEAR = 1990, 2199  # outside: a typo or a licence number, not an expiry year


def _valid_year(year: int | None) -> int:
    if year is None or not _MIN_YEAR <= year <= _MAX_YEAR:
        raise ValueError("year out of range")
    return year


# --------------------------------------------------------------------------------------------
# Date candidates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    text: str
    value: date | None  # None: looked like a date but is not a real one (2027年2月30日)
    precision: str


_CN = "零〇○一二两三四五六七八九十百俩仨"
_NB = rf"(?<![0-9{_CN}])"  # no numeral directly before
_MON = r"(?P<m>[0-9]{1,2}|[一二三四五六七八九十]{1,2})"  # "两月" is a span word, never a month
_DAYPART = (
    r"(?:(?P<d>[0-9]{1,2}|[一二三四五六七八九十]{1,3}) ?[日号]"
    r"|(?P<dbare>[0-9]{1,2})(?![0-9]| ?[个天周年月%])"
    r"|(?P<part>底|末|初|上旬|中旬|下旬))"
)
_REL_YEAR = {"前年": -2, "去年": -1, "今年": 0, "本年": 0, "明年": 1, "后年": 2}
_REL_MONTH = {
    "上个月": -1,
    "上月": -1,
    "这个月": 0,
    "这月": 0,
    "本月": 0,
    "当月": 0,
    "下个月": 1,
    "下月": 1,
    "下下个月": 2,
}
_REL_DAY = {"大前天": -3, "前天": -2, "昨天": -1, "今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
# Month parts: the first day of the part (conservative for deadline advice), the end for 底/末.
_PART_DAY = {"初": 1, "上旬": 1, "中旬": 11, "下旬": 21}

_ISO = re.compile(
    # not inside a longer number, but after a range's dash ("2022.03.15-2027.03.14")
    r"(?:(?<![0-9./-])|(?<=[0-9][-~])|(?<=[0-9] [-~] ))(?P<y>[0-9]{4}) ?(?P<sep>[-/.]) ?(?P<m>[0-9]{1,2})"
    r"(?: ?(?P=sep) ?(?P<d>[0-9]{1,2}))?(?![0-9])(?: ?[日号])?"
)
_YMD = re.compile(
    rf"{_NB}(?:(?P<y>[0-9]{{4}}|[零〇○一二三四五六七八九]{{4}})|(?P<y2>[0-9]{{2}})) ?年 ?(?:的)? ?"
    rf"{_MON} ?月份? ?{_DAYPART}?"
)
_YEAR_END = re.compile(rf"{_NB}(?P<y>[0-9]{{4}}|[0-9]{{2}}|[零〇○一二三四五六七八九]{{4}}) ?年 ?(?:年底|年末|底|末)")
# The start of a year, as its first day (conservative, as for month parts): "2027年初", "明年年头".
_YEAR_START = re.compile(rf"{_NB}(?P<y>[0-9]{{4}}|[0-9]{{2}}|[零〇○一二三四五六七八九]{{4}}) ?年 ?(?:年初|年头|初|头)(?![0-9{_CN}个])")
_REL_YEAR_START = re.compile(rf"(?P<ry>前年|去年|今年|本年|明年|后年) ?(?:年初|年头|初)(?![0-9{_CN}个])")
_REL_YMD = re.compile(rf"(?P<ry>前年|去年|今年|本年|明年|后年) ?(?:的)? ?{_MON} ?月份? ?{_DAYPART}?")
_REL_YEAR_END = re.compile(
    r"(?P<ry>前年|去年|今年|本年|明年|后年) ?(?:年底|年末|底|末)|(?<![0-9〇○零一二三四五六七八九])(?:年底|年末)"
)
_REL_MONTH_RE = re.compile(
    r"(?P<rm>下下个月|下个月|下月|上个月|上月|这个月|这月|本月|当月) ?(?:的)? ?"
    r"(?:(?P<d>[0-9]{1,2}|[一二三四五六七八九十]{1,3}) ?[日号]|(?P<dbare>[0-9]{1,2})(?![0-9]| ?[个天周年月%])"
    r"|(?P<part>底|末|初|上旬|中旬|下旬))?"
)
_MONTH_END = re.compile(r"(?<![0-9一二三四五六七八九十个上下本这当])月(?P<part>底|末)")
_MD = re.compile(rf"{_NB}(?<!年){_MON} ?月份? ?{_DAYPART}?")
_REL_DAY_RE = re.compile(
    r"(?P<rd>大前天|前天|昨天|今天|今日|明天|明日|大后天|后天)(?= ?(?:就|将|要|会|已经|已|也){0,3} ?(?:到期|过期|失效|届满))"
)
# "下周五到期", "这周三", "上个星期二就过期了" (Monday = 1; 日/天 = Sunday, the week's last day).
_WEEKDAY_RE = re.compile(r"(?P<wk>下下|下个?|这个?|本|上个?)(?:周|星期|礼拜) ?(?P<wd>[一二三四五六日天1-7])")
_WEEK_SHIFT = {"下下": 2, "下": 1, "下个": 1, "这": 0, "这个": 0, "本": 0, "上": -1, "上个": -1}
_WEEKDAY = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7}

_SPAN = (
    rf"(?P<n>[0-9]{{1,6}}|[{_CN}]{{1,8}})? ?(?P<h1>半)? ?(?P<ge>个)? ?(?P<h2>半)? ?多? ?"
    r"(?P<unit>天|日|周|星期|礼拜|月|年)(?P<h3>半)?多?"
)
_SPAN_AHEAD = re.compile(
    r"(?P<pre>(?:有效期还有|还有|还剩|剩下|剩余|剩|仅剩|只剩|只有|仅有|不到|不足|大概|大约|约|差不多|将近|接近|再过|(?<![超经通度错越路])过){1,3})"
    rf" ?(?:就|也就)? ?{_SPAN}(?! ?(?:前|以前|之前))"
)
_SPAN_AFTER = re.compile(rf"{_NB}{_SPAN} ?(?:后|以后|之后|内|以内|之内)")
_SPAN_SINCE = re.compile(
    r"(?<!距)(?<!离)(?:过期|到期|失效|逾期|超期) ?了? ?(?:已经|已|快|将近|近|差不多|有|都|大概|大约|约|超过|不止){0,3} ?"
    rf"{_SPAN}(?! ?(?:后|以后|之后|内|以内|之内))(?: ?多?了)?"
)
_SPAN_AGO = re.compile(rf"{_NB}{_SPAN} ?(?:前|以前|之前) ?(?:就|已经|已|早就){{0,2}} ?(?:过期|到期|失效)了?")


def _day_in_month(year: int, month: int, match: re.Match[str]) -> tuple[date, str]:
    """The date a (year, month, day-or-part) match means, and its precision."""
    d, dbare, part = match.group("d"), match.group("dbare"), match.group("part")
    if d or dbare:
        day = _int(d or dbare)
        if day is None:
            raise ValueError("bad day")
        return date(year, month, day), "day"
    if part in ("底", "末"):
        return _month_end(year, month), "month"
    return date(year, month, _PART_DAY.get(part or "", 1)), "month"


def _month_of(match: re.Match[str]) -> int:
    month = _int(match.group("m"))
    if month is None or not 1 <= month <= 12:
        raise ValueError("bad month")
    return month


def _clamp_current_month(value: date, precision: str, today: date, past: bool) -> date:
    """A month-level date in the current month ("11月到期" said on 11-28) is not taken to be in
    the past unless the user says so: the first of the month would claim an expiry nobody stated."""
    if precision == "month" and not past and (value.year, value.month) == (today.year, today.month):
        return max(value, today)
    return value


def _next_occurrence(month: int, match: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    """A date without a year: the next one on or after today, or the last one on or before today
    when the clause says it already expired. Month-only dates compare by month."""
    step = -1 if past else 1
    year = today.year
    for _ in range(9):  # 2月29日 may need up to 8 years to find a leap year
        try:
            value, precision = _day_in_month(year, month, match)
        except ValueError:
            if match.group("d") or match.group("dbare"):
                day = _int(match.group("d") or match.group("dbare")) or 0
                if month == 2 and day == 29:
                    year += step
                    continue
            raise
        if precision == "day":
            ok = value <= today if past else value >= today
        else:
            ok = (year, month) <= (today.year, today.month) if past else (year, month) >= (today.year, today.month)
        if ok:
            return value, precision
        year += step
    raise ValueError("no occurrence")


def _span(match: re.Match[str]) -> tuple[int, int] | None:
    """(months, days) of a span match, or None when it is not a span ("3月" is March)."""
    n_text, unit = match.group("n"), match.group("unit")
    half = bool(match.group("h1") or match.group("h2") or match.group("h3"))
    n = _int(n_text) if n_text else None
    if n_text and n is None:
        return None
    if n is None and not match.group("h1"):
        return None
    if unit == "月" and not (match.group("ge") or match.group("h1") or n_text in _COLLOQUIAL_NUMBERS):
        return None
    if unit in ("星期", "礼拜") and n is None:
        return None
    n = n or 0
    if n > 100 * 366:  # not a licence's remaining life
        return None
    if unit == "年":
        return n * 12 + (6 if half else 0), 0
    if unit == "月":
        return n, 15 if half else 0
    if unit in ("周", "星期", "礼拜"):
        return 0, n * 7 + (3 if half else 0)
    return 0, n  # 天, 日


def _shift(today: date, span: tuple[int, int], sign: int) -> date:
    months, days = span
    return add_months(today, sign * months) + timedelta(days=sign * days)


_Builder = Callable[[re.Match[str], date, bool], tuple[date, str]]


def _build_iso(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    year, month = _valid_year(int(m.group("y"))), int(m.group("m"))
    if m.group("d"):
        return date(year, month, int(m.group("d"))), "day"
    return date(year, month, 1), "month"


def _build_ymd(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    year = _valid_year(_year(m.group("y") or m.group("y2")))
    return _day_in_month(year, _month_of(m), m)


def _build_year_end(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return date(_valid_year(_year(m.group("y"))), 12, 31), "month"


def _build_year_start(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return date(_valid_year(_year(m.group("y"))), 1, 1), "month"


def _build_rel_year_start(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return date(today.year + _REL_YEAR[m.group("ry")], 1, 1), "month"


def _build_rel_ymd(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return _day_in_month(today.year + _REL_YEAR[m.group("ry")], _month_of(m), m)


def _build_rel_year_end(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return date(today.year + _REL_YEAR[m.group("ry") or "今年"], 12, 31), "month"


def _build_rel_month(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    first = add_months(today.replace(day=1), _REL_MONTH[m.group("rm")])
    return _day_in_month(first.year, first.month, m)


def _build_month_end(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return _month_end(today.year, today.month), "month"


def _build_md(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return _next_occurrence(_month_of(m), m, today, past)


def _build_rel_day(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    return today + timedelta(days=_REL_DAY[m.group("rd")]), "day"


def _build_weekday(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
    wd = m.group("wd")
    weekday = int(wd) if wd.isdigit() else _WEEKDAY[wd]
    monday = today - timedelta(days=today.weekday())
    return monday + timedelta(weeks=_WEEK_SHIFT[m.group("wk")], days=weekday - 1), "day"


def _span_builder(sign: int) -> _Builder:
    def build(m: re.Match[str], today: date, past: bool) -> tuple[date, str]:
        span = _span(m)
        if span is None:
            raise LookupError("not a span")
        return _shift(today, span, sign), "approximate"

    return build


# Highest priority first: a later pattern never reuses text an earlier one matched.
_PATTERNS: tuple[tuple[re.Pattern[str], _Builder], ...] = (
    (_ISO, _build_iso),
    (_YMD, _build_ymd),
    (_YEAR_END, _build_year_end),
    (_YEAR_START, _build_year_start),
    (_REL_YMD, _build_rel_ymd),
    (_REL_YEAR_END, _build_rel_year_end),
    (_REL_YEAR_START, _build_rel_year_start),
    (_REL_MONTH_RE, _build_rel_month),
    (_MONTH_END, _build_month_end),
    (_MD, _build_md),
    (_REL_DAY_RE, _build_rel_day),
    (_WEEKDAY_RE, _build_weekday),
    (_SPAN_AGO, _span_builder(-1)),
    (_SPAN_SINCE, _span_builder(-1)),
    (_SPAN_AHEAD, _span_builder(1)),
    (_SPAN_AFTER, _span_builder(1)),
)


_FUTURE_MARK = re.compile(r"快要|就要|将要|即将|马上|还有|还剩|还没|尚未|还未|以后|之后|明年|后年|下个月|下月")


def _in_past(text: str, clauses: _Clauses, pos: int, past_clauses: set[int]) -> bool:
    """Whether a date without a year at `pos` should be read backwards: its clause says the
    licence already expired, or another clause does and this one has no sign of the future
    ("3月15号,已经过期了" -> the last 15 March)."""
    if clauses.of(pos) in past_clauses:
        return True
    return bool(past_clauses) and not _FUTURE_MARK.search(clauses.clause(pos))


_MAX_CANDIDATES = 64  # more date-like strings than this is not a message about one licence


def _candidates(text: str, today: date, clauses: _Clauses, past_clauses: set[int]) -> list[_Candidate]:
    taken: list[tuple[int, int]] = []
    found: list[_Candidate] = []
    for pattern, build in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            while end > start and text[end - 1].isspace():
                end -= 1
            if end <= start or any(start < e and s < end for s, e in taken):
                continue
            past = _in_past(text, clauses, start, past_clauses)
            try:
                value, precision = build(m, today, past)
                value = _clamp_current_month(value, precision, today, past)
            except LookupError:
                continue  # matched the shape of a span but is not one: not a candidate at all
            except (ValueError, OverflowError):
                value, precision = None, "day"
            if len(found) >= _MAX_CANDIDATES:
                break
            taken.append((start, end))
            found.append(_Candidate(start, end, text[start:end].strip(), value, precision))
    return sorted(found, key=lambda c: c.start)


# --------------------------------------------------------------------------------------------
# Choosing the expiry date
# --------------------------------------------------------------------------------------------

_EXPIRY_CUE = re.compile(r"到期|届满|期满|过期|失效|有效期|截止|逾期|超期")
# A date directly followed by another event's verb is that event's date ("去年12月提交的申请").
# The event may name what it happened to first ("上个月续期被退回", "去年12月申请材料交上去").
_OTHER_EVENT_AFTER = re.compile(
    r" ?(?:的|就|才|被|已经|已|我们|我|公司|左右)? ?"
    r"(?:(?:续期|续证|续办|续牌|延续)?(?:申请|材料)?(?:又|也|就|才|已经|已|被|给)? ?)?"
    r"(?:前|之前|以前)? ?(?:要|得|需要|必须)? ?"
    r"(?:起|开始|生效|提交|递交|申请|驳回|拒绝|不予|受理|审核|审批|核查|检查|下证|下的证|下的|下来的|发证|发的|发放|"
    r"颁发|签发|取得|拿到|拿证|拿的|领证|领的|领到|获得|成立|注册|变更|办的|办理|交的|交了|交上|通知|批的|批准|批下来|开会|"
    r"补正|整改|年报|报送|退回|打回|被拒|拒了|没通过|未通过|没批)"
)
_OTHER_EVENT = re.compile(
    r"提交|递交|申请|驳回|拒绝|不予|受理|审核|审批|核查|检查|通知|下证|发证|颁发|签发|取得|拿到|拿证|获得|成立|"
    r"注册|变更|年报|开会|会议|补正|整改|处罚|约谈|面谈|上报|办理|去办|打电话|来电|批准|报送|退回|打回|被拒|没通过|未通过"
)
_RANGE_DASH = r"(?:至|到|~|—|-|－)"
_RANGE_START_AFTER = re.compile(rf" ?{_RANGE_DASH} ?[0-9〇○零一二三四五六七八九]")
# Dates joined by a conjunction share the expiry word after the last one ("5月和8月到期").
_CONJUNCTION = re.compile(r"^ ?(?:和|与|及|跟|、|或|/) ?$")
_RANGE_END_BEFORE = re.compile(rf"{_RANGE_DASH} ?$")
_ABOUT_RENEWAL = re.compile(r"续期|续证|续办|延续|换证|许可|有效期|到期|过期|届满|失效|证(?!明)")
_NOT_YET_EXPIRED = re.compile(r"(?:快要|就要|将要|即将|马上|快|还没有?|尚未|还未|没有?) ?(?:到期|过期|失效|届满)")


# The date the licence was issued: "证是2022年1月10日发的", "2021年12月拿的证", "2022年3月取得许可证",
# "发证日期是2022年1月10日". Said of the licence, not of an application ("去年12月批下来的续期").
_ISSUED_AFTER = re.compile(
    r" ?(?:的|就|才|我们|公司)? ?(?:发证|下证|下的证|颁发|签发|发放|拿到证|拿的证|拿证|领的证|领证|领到证"
    r"|(?:取得|获得|拿到|领到)(?:了|的)? ?(?:许可证|许可|牌照|证)|(?P<bare>发的|拿的|领的|下的|下来的|批的|批下来的))"
)
_ISSUED_BEFORE = re.compile(r"(?:发证|颁发|签发|取证|拿证|领证)(?:日期|时间|日)(?:是|为|:)? ?$")
_LICENCE_WORD = re.compile(r"证(?!明)|许可|牌照|licen[cs]e")
_RENEWED_BEFORE = re.compile(r"续过|续了|延续过|换过证|换了证|续期过|renewed")


# The date an application was handed in: "我们9月就交了续期申请", "12月10号交的续期",
# "去年12月续期申请交上去了", "we filed the renewal in September" (read as "we filed the renewal 9月").
_FILED_AFTER = re.compile(
    r" ?(?:的|就|才|我们|我们就)? ?(?:(?:续期|延续|续证|续办)?(?:申请|材料)? ?)"
    r"(?:(?:已经|已) ?(?:提交|递交|报送)|(?:就|已经|已)? ?(?:提交|递交|交|报送)(?:了|的|上去|过))"
)
_FILED_BEFORE_EN = re.compile(r"\b(?:filed|submitted|lodged|applied)\b[^.?!;,，。？！；]{0,40}?(?:\b(?:in|on) )?$")


def _filing_date(
    text: str, dates: list[_Candidate], today: date, clauses: _Clauses, said: dict[str, str]
) -> Filed | None:
    for c in dates:
        if c.value is None or c.precision not in ("day", "month"):
            continue
        if not (_FILED_AFTER.match(text, c.end) or _FILED_BEFORE_EN.search(text, clauses.start(c.start), c.start)):
            continue
        value = c.value
        if value > today and not _YEAR_SAID.search(c.text):
            value = add_months(value, -12)  # "12月10号交的": a filing is past, so last December
        if value > today:
            continue
        latest = value if c.precision == "day" else min(_month_end(value.year, value.month), today)
        return Filed(value, latest, said.get(c.text, c.text))
    return None


_YEAR_SAID = re.compile(r"年|[0-9]{4}")


def _issue_date(
    text: str, dates: list[_Candidate], today: date, clauses: _Clauses, names_licence: bool
) -> _Candidate | None:
    """The issue date, when it is the message's only date, is said of the licence, and no earlier
    renewal is mentioned (a renewed licence's term runs from the renewal, whose date is unknown)."""
    if len(dates) != 1 or dates[0].value is None or dates[0].value > today or _RENEWED_BEFORE.search(text):
        return None
    c = dates[0]
    after = _ISSUED_AFTER.match(text, c.end)
    before = _ISSUED_BEFORE.search(text, clauses.start(c.start), c.start)
    if not (after or before):
        return None
    if after and after.group("bare"):
        # "证是2022年1月发的" and "我们的文网文是2021年1月发的", not "2022年1月10日发的通知"
        following = text[after.end():after.end() + 2]
        if HAN_CHAR.match(following) and not following.startswith(("证", "许", "牌")):
            return None
        if not (names_licence or _LICENCE_WORD.search(clauses.clause(c.start))):
            return None
    return c


def _cue_distance(c: _Candidate, text: str, clauses: _Clauses) -> int | None:
    lo, hi = clauses.start(c.start), clauses.end(c.start)
    if _EXPIRY_CUE.search(text, c.start, c.end):
        return 0  # spans like "过期两个月了" contain their cue
    distances = []
    for cue in _EXPIRY_CUE.finditer(text, lo, hi):
        if cue.end() <= c.start:
            distances.append(c.start - cue.end())
        elif cue.start() >= c.end:
            distances.append(cue.start() - c.end)
        else:
            distances.append(0)
    range_end = _RANGE_END_BEFORE.search(text, lo, c.start)
    if not distances:
        # "证是2022年3月15日到2027年3月14日": a range said of the licence ends at its expiry
        return 0 if range_end and _ABOUT_RENEWAL.search(text, lo, hi) else None
    if range_end:
        return 0  # "有效期2022年3月15日至2027年3月15日": the range end is the expiry
    return min(distances)


def _coordinated(text: str, best: _Candidate, candidates: list[_Candidate]) -> list[_Candidate]:
    """The dates joined to `best` by conjunctions, going back from it ("明年5月和8月" for 8月)."""
    before = sorted((c for c in candidates if c.end <= best.start), key=lambda c: -c.start)
    joined, edge = [], best.start
    for c in before:
        if not _CONJUNCTION.match(text[c.end:edge]):
            break
        joined.append(c)
        edge = c.start
    return joined


def _choose_date(
    text: str, all_dates: list[_Candidate], today: date, clauses: _Clauses, says_expired: bool
) -> tuple[_Candidate | None, list[_Candidate]]:
    """The expiry date, and the other expiry dates still to come that the message gives with it
    (other licences')."""
    candidates = [c for c in all_dates if not _OTHER_EVENT_AFTER.match(text, c.end)]
    if not candidates:
        return None, []
    cued = [(d, c) for c in candidates if (d := _cue_distance(c, text, clauses)) is not None]
    if cued:
        best = min(cued, key=lambda dc: (dc[0], -dc[1].start))[1]
        # Several licences' expiries ("ICP证明年5月到期，呼叫中心证8月到期", "分别是明年5月和8月到期"):
        # the earliest still to come is the one whose deadline comes first (a past one is history:
        # "去年3月到期后重新申请了，新证2029年3月到期").
        several = [c for d, c in cued if c is best or (d == 0 and not _RANGE_START_AFTER.match(text, c.end))]
        several += _coordinated(text, best, candidates)
        upcoming = sorted((c for c in several if c.value is not None and c.value >= today), key=lambda c: (c.value, c.start))
        return (upcoming[0], upcoming[1:]) if upcoming else (best, [])

    # Rule 3: a lone date with no expiry cue in its clause.
    if len(all_dates) != 1 or len(candidates) != 1:
        return None, []
    lone = candidates[0]
    if _OTHER_EVENT.search(clauses.clause(lone.start)) or not _ABOUT_RENEWAL.search(text):
        return None, []
    if lone.value is not None:
        if says_expired and lone.value > today:
            return None, []
        if _NOT_YET_EXPIRED.search(text) and lone.value < today:
            return None, []
    return lone, []
