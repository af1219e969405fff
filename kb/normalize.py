"""Text normalisation shared by indexing, queries and message understanding.

Users type traditional characters and full-width digits ("呼叫中心證３月到期"); the corpus is
simplified with half-width digits. Both sides go through `normalize` before tokenizing or parsing,
so "證" matches "证" and "３" matches "3". Displayed text is never normalised.
"""

from __future__ import annotations

import re
from functools import lru_cache

HAN_CHAR = re.compile(r"[\u3400-\u9fff]")  # one Han character (CJK extension A and the unified block)
_FULLWIDTH_OFFSET = 0xFEE0
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028-\u202e\ufeff]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


@lru_cache(maxsize=1)
def _t2s():
    # opencc-python-reimplemented is pure Python; its dictionaries load once per process.
    import opencc

    return opencc.OpenCC("t2s")


def to_halfwidth(text: str) -> str:
    """Full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space become half-width."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - _FULLWIDTH_OFFSET))
        elif code == 0x3000:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def to_simplified(text: str) -> str:
    """Traditional Chinese characters become simplified (OpenCC t2s)."""
    return _t2s().convert(text)


def clean(text: str) -> str:
    """Drop control characters, zero-width marks and lone surrogates; keep newlines and tabs."""
    text = _SURROGATES.sub("", text)
    return _CONTROL.sub("", text)


def normalize(text: str) -> str:
    """The canonical form for matching: cleaned, half-width, simplified, ASCII lower-cased."""
    return to_simplified(to_halfwidth(clean(text))).lower()


CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}


def chinese_int(text: str) -> int | None:
    """Chinese numerals up to the thousands ("十五", "九十", "一百八十", "一千") -> int; None for
    anything else (including the empty string)."""
    if not text:
        return None
    total, current = 0, 0
    for ch in text:
        if ch in CN_DIGITS:
            current = current * 10 + CN_DIGITS[ch] if current else CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
        else:
            return None
    return total + current
