"""English messages: dates and expiry phrases rewritten into the Chinese the situation reads.

Foreign-invested companies write to the chat in English ("Our ICP licence expires on 15 March
2027"). The situation extractor (kb/situation.py) reads dates and expiry cues in Chinese only, so
before it runs, the English ways of saying *when* and *expired* are rewritten into their Chinese
equivalents ("2027年3月15日到期"); licence names and failure causes in English are plain aliases
and keywords in vocabulary.yaml. A denial that names what was *not* the cause ("not because of
missing documents", "the issue wasn't the staff") becomes 不是, which the Chinese negation rule
reads. Everything else in the message is left as it is.

Word order matters to the Chinese rules: "expires tomorrow" becomes "明天到期" (the day comes
first), "expired two weeks ago" becomes "过期了2周" (time since expiry), and an expiry word in an
if- or whether-clause is marked as hypothetical ("如果过期"), so "if our licence has expired"
does not say that it has.

Input is normalised text (ASCII lower-case, half-width, single spaces).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
}  # "may" is also a verb: it is read as May next to a day or a year, or after in/next/by/until
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "eighteen": 18, "twenty": 20,
    "thirty": 30, "sixty": 60, "ninety": 90,
}
_UNITS = {"day": "天", "week": "周", "month": "个月", "year": "年"}

_MONTH = r"(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_MONTH_NOT_MAY = r"(?P<mon>" + "|".join(sorted((m for m in _MONTHS if m != "may"), key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<y>(?:19|20|21)[0-9]{2})"
_NUM = r"(?P<n>[0-9]{1,3}|" + "|".join(sorted(_NUMBERS, key=len, reverse=True)) + r")"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_ABOUT = r"(?:(?:about|around|roughly|approximately|nearly|almost|just|only|less than|under) )?"

# Absolute dates first (longest forms first), then relative ones.
_DMY = re.compile(rf"\b{_DAY} (?:of )?{_MONTH},? {_YEAR}\b")
_MDY = re.compile(rf"\b{_MONTH} {_DAY},? {_YEAR}\b")
_MY = re.compile(rf"\b(?:(?P<pre>early|late|mid|(?:the )?end of)[ -])?{_MONTH},? {_YEAR}\b")
_DM = re.compile(rf"\b{_DAY} (?:of )?{_MONTH_NOT_MAY}\b")
_MD = re.compile(rf"\b{_MONTH_NOT_MAY} {_DAY}\b(?!,? [0-9])")
_MONTH_ONLY = re.compile(
    rf"\b(?P<pre>in|next|by|until|till|early|late|mid|end of|the end of) {_MONTH}\b(?! [0-9])"
    rf"|\b(?P<pre2>this|before) {_MONTH_NOT_MAY.replace('?P<mon>', '?P<mon2>')}\b(?! [0-9])"  # "this may" is a verb
)
_REL = [
    (re.compile(r"\b(?:the )?end of (?:this|the) month\b"), "本月底"),
    (re.compile(r"\b(?:the )?end of next month\b"), "下个月底"),
    (re.compile(r"\b(?:the )?end of (?:this|the) year\b"), "年底"),
    (re.compile(r"\b(?:the )?end of next year\b"), "明年年底"),
    (re.compile(r"\bnext month\b"), "下个月"),
    (re.compile(r"\bthis month\b"), "本月"),
    (re.compile(r"\blast month\b"), "上个月"),
    (re.compile(r"\bnext week\b"), "1周后"),
]
_SPAN_AHEAD = re.compile(rf"\bin {_ABOUT}{_NUM} {_UNIT}\b")
_SPAN_LEFT = re.compile(rf"\b{_ABOUT}{_NUM} {_UNIT} (?:left|remaining|to go)\b")
_HALF_YEAR = re.compile(r"\bin (?:about |around )?(?:half a year|six months)\b")

_EXPIRES = r"(?:expires|expire|expiring|will expire|is due to expire|runs out|lapses)"
_EXPIRED_WORD = r"(?:expired|lapsed)"
_WHEN_AFTER_VERB = re.compile(rf"\b{_EXPIRES} (?P<when>today|tomorrow)\b")
_EXPIRED_AGO = re.compile(rf"\b{_EXPIRED_WORD} (?:about |around |roughly )?{_NUM} {_UNIT} ago\b")
_EXPIRED_LAST = re.compile(rf"\b{_EXPIRED_WORD} (?:last|a) (?P<unit>week|month|year)\b")
_EXPIRED_DAY = re.compile(rf"\b{_EXPIRED_WORD} (?P<when>yesterday|today)\b")
_NOT_EXPIRED = re.compile(rf"\b(?:has not|hasn't|have not|haven't|is not|isn't|not yet|not) (?:yet )?{_EXPIRED_WORD}\b")
_HYPOTHETICAL_EXPIRED = re.compile(
    r"\b(?P<cue>if|whether|in case|suppose|supposing|once|before|unless)\b(?P<mid>[^,.;?!]*?)"
    rf"\b(?:(?:has|have|had|is|was) )?(?:already )?{_EXPIRED_WORD}\b"
)
_HAS_EXPIRED = re.compile(rf"\b(?:has|have|had|is|was) (?:already )?{_EXPIRED_WORD}\b|\balready {_EXPIRED_WORD}\b")
_EXPIRED = re.compile(rf"\b{_EXPIRED_WORD}\b")
_EXPIRY = re.compile(rf"\b(?:{_EXPIRES}|expiry date|expiration date|expiry|expiration|valid until|valid through)\b")

# The issue date ("our licence was issued on 10 January 2022", "we got the licence in March 2022",
# "date of issue: …"): the Chinese parser reads "发证日期是<date>" and works out the expiry from it.
_ISSUED = re.compile(
    r"\b(?:(?:was|were|has been|had been) )?(?:issued|granted)(?: to us)? (?:on|in)\b"
    r"|\b(?:issue date|date of issue|issuing date)\b:?"
    r"|\b(?:got|obtained|received) (?P<what>(?:our|the|a|this|that) (?:[a-z-]+ ){0,3}(?:licen[cs]e|permit)) (?:on|in)\b"
)

# Only denials of a thing ("was not the documents", "not because of …"), not of an action: in "we
# were not getting consent" the missing consent *is* the cause.
_NOT_THE_CAUSE = re.compile(
    r"\b(?:(?:is|was|are|were) not|isn't|wasn't|aren't|weren't)(?= (?:the|a|an|our|any|about|related|because|due|caused)\b)"
    r"|\bnot (?:because of|due to|about|related to|caused by)\b|\bnothing to do with\b|\brather than\b"
)

_HAS_ENGLISH = re.compile(r"[a-z]{3,}")


def _number(token: str) -> int:
    return int(token) if token.isdigit() else _NUMBERS[token]


_PART_OF_MONTH = {"early": "初", "mid": "中旬", "late": "下旬", "end of": "底", "the end of": "底"}


def _ymd(m: re.Match[str]) -> str:
    groups = m.groupdict()
    text = f"{groups['y']}年" if groups.get("y") else ""
    text += f"{_MONTHS[groups['mon']]}月"
    if groups.get("d"):
        text += f"{int(groups['d'])}日"
    return text + _PART_OF_MONTH.get(groups.get("pre") or "", "")  # "end of February 2027" -> 2027年2月底


def _month_only(m: re.Match[str]) -> str:
    month = _MONTHS[m.group("mon") or m.group("mon2")]
    return f"{month}月{_PART_OF_MONTH.get(m.group('pre') or '', '')}"


def _span(m: re.Match[str], template: str) -> str:
    return template.format(n=_number(m.group("n")), unit=_UNITS[m.group("unit")])


def to_chinese_cues(text: str, originals: dict[str, str] | None = None) -> str:
    """`text` with its English dates and expiry phrases in Chinese; unchanged without English.
    `originals`, when given, receives each date phrase's Chinese form -> the user's own words, so
    the answer can quote what the user wrote ("expired last week", not "过期了1周")."""
    if not _HAS_ENGLISH.search(text):
        return text
    said = originals if originals is not None else {}

    def sub(pattern: re.Pattern[str], make: Callable[[re.Match[str]], str], text: str) -> str:
        def record(m: re.Match[str]) -> str:
            chinese = make(m)
            said.setdefault(chinese, m.group(0))
            return chinese

        return pattern.sub(record, text)

    for pattern in (_DMY, _MDY, _MY, _DM, _MD):
        text = sub(pattern, _ymd, text)
    text = sub(_MONTH_ONLY, _month_only, text)
    text = sub(_EXPIRED_AGO, lambda m: _span(m, "过期了{n}{unit}"), text)
    text = sub(_EXPIRED_LAST, lambda m: f"过期了1{_UNITS[m.group('unit')]}", text)
    for pattern, chinese in _REL:
        text = sub(pattern, lambda m, chinese=chinese: chinese, text)
    text = sub(_HALF_YEAR, lambda m: "还有半年", text)
    text = sub(_SPAN_AHEAD, lambda m: _span(m, "还有{n}{unit}"), text)
    text = sub(_SPAN_LEFT, lambda m: _span(m, "还剩{n}{unit}"), text)
    text = sub(_WHEN_AFTER_VERB, lambda m: {"today": "今天", "tomorrow": "明天"}[m.group("when")] + "到期", text)
    text = sub(_EXPIRED_DAY, lambda m: {"yesterday": "昨天", "today": "今天"}[m.group("when")] + "过期了", text)
    text = _NOT_EXPIRED.sub("还没过期", text)
    text = _HYPOTHETICAL_EXPIRED.sub(lambda m: f"{m.group('cue')}{m.group('mid')} 如果过期", text)
    text = _HAS_EXPIRED.sub("已经过期", text)
    text = _EXPIRED.sub("过期了", text)
    text = _NOT_THE_CAUSE.sub("不是", text)
    text = _ISSUED.sub(lambda m: f"{m.group('what') or ''} 发证日期是".lstrip(), text)
    return _EXPIRY.sub("到期", text)
