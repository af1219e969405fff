"""Homophone typos in queries: 续其 for 续期, 工做 for 工作, 注测 for 注册.

Chinese is typed through pinyin input methods, so the usual typo is not a wrong letter but a
wrong character with the same sound. jieba cuts such a word into single characters, BM25 then
finds nothing, and only the dense side may still guess the meaning. The fix: a run of 2–4 Han
characters of the query that the index does not contain, and that sounds exactly like an index
word differing from it in one character, adds that word to the query (the typed text is kept, so
a wrong guess costs one extra query term, never the user's own words).

Sound = toneless pinyin per character (pypinyin, context-aware for polyphones); tones are
ignored because the input method ignores them. Requiring one differing character keeps unrelated
homophone words apart (实施 and 事实 both read "shishi" but differ in both characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")
_HAN_WORD = re.compile(r"[\u4e00-\u9fff]{2,4}")
MAX_WORD_CHARS = 4
CACHE_SIZE = 1024  # texts whose corrections are remembered (the chat re-searches fixed cause queries)


class Segmenter(Protocol):
    def cut(self, text: str) -> list[str]: ...

    def is_word(self, word: str) -> bool: ...


@dataclass(frozen=True)
class Correction:
    typed: str  # what the user typed (normalised), e.g. 续其
    word: str  # the index word it sounds like, e.g. 续期


@lru_cache(maxsize=1)
def _lazy_pinyin():
    # Imported on first use: loading pypinyin's dictionaries takes ~0.4 s.
    from pypinyin import lazy_pinyin

    return lazy_pinyin


def sounds(text: str) -> tuple[str, ...]:
    """Toneless pinyin of each character of a pure-Han string."""
    out = tuple(_lazy_pinyin()(text))
    if len(out) != len(text):  # defensive: pypinyin keeps non-Han runs whole
        raise ValueError(f"not a pure Han string: {text!r}")
    return out


class HomophoneIndex:
    """The words of an index, keyed by their sound."""

    def __init__(self, words: Iterable[str]) -> None:
        self._cache: dict[tuple[str, Segmenter], list[Correction]] = {}
        self.known = frozenset(words)
        self._by_sound: dict[tuple[str, ...], list[str]] = {}
        for word in sorted(self.known):
            if _HAN_WORD.fullmatch(word):
                self._by_sound.setdefault(sounds(word), []).append(word)

    def corrections(self, text: str, segmenter: Segmenter) -> list[Correction]:
        """Index words that `text` (normalised: simplified, lower-case) seems to mistype, in order
        of appearance.

        A window is left alone when the index or the general dictionary knows it (决意 is a word,
        even if the user meant 决议), or when it cuts through a word the segmenter found whole
        (心续 in 呼叫中心续期 sounds like 心许, but 呼叫中心 and 续期 are both fine). A typo breaks
        the segmentation: 续其 comes out as 续/其, 工做日 as 按工/做/日算."""
        cached = self._cache.get((text, segmenter))
        if cached is not None:
            return list(cached)
        found = self._corrections(text, segmenter)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[(text, segmenter)] = found
        return list(found)

    def _corrections(self, text: str, segmenter: Segmenter) -> list[Correction]:
        found: list[Correction] = []
        seen: set[str] = set()
        for run in _HAN_RUN.finditer(text):
            chars = run.group()
            run_sounds = sounds(chars)
            whole = _whole_words(chars, segmenter)
            for start in range(len(chars)):
                for n in range(2, min(MAX_WORD_CHARS, len(chars) - start) + 1):
                    end = start + n
                    typed = chars[start:end]
                    if typed in self.known or segmenter.is_word(typed):
                        continue
                    if any(a < end and b > start and not (start <= a and b <= end) for a, b in whole):
                        continue
                    for word in self._by_sound.get(run_sounds[start:end], ()):
                        if word not in seen and sum(a != b for a, b in zip(typed, word, strict=True)) == 1:
                            seen.add(word)
                            found.append(Correction(typed, word))
        return found


def _whole_words(chars: str, segmenter: Segmenter) -> list[tuple[int, int]]:
    """Spans of the multi-character words the segmenter found that a dictionary knows."""
    spans, pos = [], 0
    for word in segmenter.cut(chars):
        if len(word) > 1 and segmenter.is_word(word):
            spans.append((pos, pos + len(word)))
        pos += len(word)
    return spans
