"""Chinese tokenization for BM25: normalisation, jieba search mode, a domain dictionary,
curated stopwords, optional character bigrams for out-of-vocabulary runs, and query expansion
with domain synonyms.

Why search mode: it emits both the whole word and its dictionary sub-words, so a user's short
word matches the corpus's long one. Measured in ../shared/notes/embedding-model.md: plain `lcut`
made BM25 weak enough that fusion hurt. jieba's own `cut_for_search` only emits sub-words of 2 and
3 characters, which loses 呼叫中心 inside 呼叫中心证 and 许可证 inside 经营许可证; `search_words`
emits dictionary sub-words of every length.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kb.config import DATA_DIR
from kb.normalize import HAN_CHAR, chinese_int, normalize

TOKENIZER_VERSION = 1
USERDICT = DATA_DIR / "userdict.txt"
STOPWORDS = DATA_DIR / "stopwords.txt"
SYNONYMS = DATA_DIR / "synonyms.yaml"
VOCABULARY = DATA_DIR / "vocabulary.yaml"

_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"[\w\u3400-\u9fff]", re.U)
_CN_NUMERAL_RUN = re.compile(r"[零〇一二两三四五六七八九十百千]+")
# 九十天 / 第六十九条 / 五年 / 三个月: a numeral, optionally with 第 before and a unit after.
_CN_NUMBER_TOKEN = re.compile(r"第?([零〇一二两三四五六七八九十百千]+)[个天日年月万条项名人家]?")


def arabic_forms(token: str, numerals: set[str]) -> set[str]:
    """{"90"} for the token 九十天 when 九十 is a whole numeral of the query: the corpus writes
    numbers in digits (提前90日, 1000万元, 第六十九条 as 第69条 in some sources), users often in
    characters. Parts of a longer numeral (十天 inside 九十天) and a lone 一 (一样, 一次) get none."""
    m = _CN_NUMBER_TOKEN.fullmatch(token)
    if not m or m.group(1) not in numerals:
        return set()
    value = chinese_int(m.group(1))
    return {str(value)} if value is not None and (value > 1 or m.group(0) != m.group(1)) else set()


def is_english(text: str) -> bool:
    """More than twice as many Latin letters as Han characters: an English question or FAQ key
    ("Is there a fee for renewing an ICP licence?"), not a Chinese one naming ICP or EDI."""
    return len(_LATIN.findall(text)) > 2 * len(HAN_CHAR.findall(text))


@dataclass(frozen=True)
class QueryTerms:
    """A query as groups of alternatives: a passage matching any member of a group matches it."""

    groups: tuple[tuple[str, ...], ...]

    @property
    def tokens(self) -> list[str]:
        return [t for g in self.groups for t in g]


def load_synonym_groups(path: Path = SYNONYMS) -> tuple[tuple[str, ...], ...]:
    """The synonym groups of synonyms.yaml, normalised; each group's first member is the corpus's
    form. The tokenizer expands queries with them; the chat reads its refusal words from them."""
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return tuple(tuple(normalize(str(w)) for w in g) for g in groups)


class Tokenizer:
    """One jieba instance per Tokenizer (not jieba's global one), so tests can build their own."""

    def __init__(
        self,
        *,
        oov_bigrams: bool = False,
        query_expansion: bool = True,
        userdict: Path = USERDICT,
        stopwords: Path = STOPWORDS,
        synonyms: Path = SYNONYMS,
        vocabulary: Path = VOCABULARY,
    ) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.oov_bigrams = oov_bigrams
        self.query_expansion = query_expansion
        self._paths = {"userdict": userdict, "stopwords": stopwords, "synonyms": synonyms, "vocabulary": vocabulary}
        self.stopwords = frozenset(
            w.strip() for w in stopwords.read_text(encoding="utf-8").splitlines() if w.strip() and not w.startswith("#")
        )
        self.synonym_groups = load_synonym_groups(synonyms)
        self._synonyms: dict[str, set[str]] = {}
        self._corpus_form: dict[str, str] = {}  # word -> its group's first member, the corpus's form
        for group in self.synonym_groups:
            for word in group:
                self._synonyms.setdefault(word, set()).update(group)
                self._corpus_form.setdefault(word, group[0])
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self._jieba.load_userdict(str(userdict))
        # Licence aliases and synonyms are domain words too: keep them whole.
        vocab = yaml.safe_load(vocabulary.read_text(encoding="utf-8"))
        extra = [normalize(a) for lic in vocab["licences"].values() for a in lic.get("aliases", [])]
        self.licence_names = frozenset(extra)
        extra += [w for g in self.synonym_groups for w in g]
        userdict_words = [normalize(line.split()[0]) for line in userdict.read_text(encoding="utf-8").splitlines()
                          if line.strip() and not line.startswith("#")]
        # The domain's own words: what typo correction may write into a message before it is parsed.
        self.domain_words = frozenset(w for w in [*extra, *userdict_words] if len(w) > 1)
        for word in extra:
            # Only pure-Han words: jieba already splits Latin runs ("icp证" -> icp, 证), and a mixed
            # dictionary word would hide "icp" from a corpus that writes "ICP许可证".
            if len(word) > 1 and all(HAN_CHAR.match(ch) for ch in word):
                # No explicit frequency: jieba suggests one high enough to keep the word whole.
                self._jieba.add_word(word)
        self._fingerprint = self._compute_fingerprint()

    # -- indexing ---------------------------------------------------------------------------
    def tokens(self, text: str) -> list[str]:
        """Index tokens of a passage (normalised, search mode, stopwords removed)."""
        words = self.search_words(normalize(text))
        out = [w for w in words if w and _WORD.search(w) and w not in self.stopwords]
        if self.oov_bigrams:
            out.extend(self._oov_bigrams(words))
        return out

    def search_words(self, text: str) -> list[str]:
        """jieba's precise cut, each long word followed by its dictionary sub-words."""
        return [w for word, parts in self._cut_with_parts(text) for w in (*parts, word)]

    def _cut_with_parts(self, text: str) -> list[tuple[str, list[str]]]:
        """(word, its dictionary sub-words) for each word of jieba's precise cut (HMM on)."""
        freq = self._jieba.FREQ
        out: list[tuple[str, list[str]]] = []
        for word in self._jieba.cut(text, HMM=True):
            word = word.strip()
            if not word:
                continue
            parts: list[str] = []
            if len(word) > 2:
                for n in range(2, len(word)):
                    parts.extend(word[i:i + n] for i in range(len(word) - n + 1) if freq.get(word[i:i + n]))
            out.append((word, parts))
        return out

    def cut(self, text: str) -> list[str]:
        """jieba's precise cut of normalised text (HMM on, as for indexing)."""
        return list(self._jieba.cut(text, HMM=True))

    def is_word(self, word: str) -> bool:
        """Whether jieba's dictionary (with the domain words) knows `word`."""
        return bool(self._jieba.FREQ.get(word))

    def _oov_bigrams(self, words: list[str]) -> list[str]:
        """Character bigrams over runs of single Han characters, which is what jieba leaves of
        words it does not know (typos, rare terms)."""
        grams: list[str] = []
        run: list[str] = []
        for w in [*words, ""]:
            if len(w) == 1 and HAN_CHAR.match(w):
                run.append(w)
                continue
            grams.extend(run[i] + run[i + 1] for i in range(len(run) - 1))
            run = []
        return grams

    # -- queries ----------------------------------------------------------------------------
    def query_terms(self, query: str) -> QueryTerms:
        """Query tokens, each expanded with its domain synonyms into a group of alternatives.

        A licence name and its sub-words form one group: 增值电信业务经营许可证 is one thing the
        user named, not eleven (增值, 电信, 业务, 经营许可证, …), and as eleven groups it made BM25
        favour any passage that spells the full name out, which formal questions always do. On
        the tuning split: BM25 hit@3 0.888 -> 0.901 (MRR 0.783 -> 0.780); hybrid hit@1 0.803 ->
        0.816, MRR 0.881 -> 0.888, hit@3 0.974 -> 0.967 (one question); held out hit@3 0.937 ->
        0.944; formal questions 0.731 -> 0.808. Doing the same for every long word lost (tune hit@3
        0.967, BM25 MRR 0.783 -> 0.776): outside licence names the sub-words carry meaning of their
        own."""
        text = normalize(query)
        numerals = set(_CN_NUMERAL_RUN.findall(text))
        cut = self._cut_with_parts(text)  # one jieba pass serves the groups and the OOV bigrams
        units: list[tuple[str, tuple[str, ...]]] = []  # (head word, words searched as one group)
        for word, parts in cut:
            if parts and word in self.licence_names:
                units.append((word, (*parts, word)))
            else:
                units.extend((w, (w,)) for w in (*parts, word))
        if self.oov_bigrams:
            units.extend((g, (g,)) for g in self._oov_bigrams([w for word, parts in cut for w in (*parts, word)]))
        seen: set[str] = set()
        groups: list[tuple[str, ...]] = []
        for head, words in units:
            members = [w for w in words if w and _WORD.search(w) and w not in self.stopwords and w not in seen]
            if not members:
                continue
            group = set(members)
            if self.query_expansion:
                for w in members:
                    group |= self._synonyms.get(w, set())
                    group |= arabic_forms(w, numerals) - seen
            seen |= group
            first = head if head in group else members[-1]
            groups.append(tuple(sorted(group, key=lambda w: (w != first, w))))
        return QueryTerms(tuple(groups))

    def chinese_gloss(self, text: str) -> list[str]:
        """For an English text (more than twice as many Latin letters as Han characters): the
        corpus's Chinese words for its English words (renewing -> 续期, fee -> 费用, licence ->
        许可证), from the synonym groups, in order and once each. None for Chinese or mixed text,
        or when query expansion is off."""
        if not self.query_expansion or not is_english(text):
            return []
        gloss: list[str] = []
        for token in self.tokens(text):
            form = self._corpus_form.get(token, "") if token.isascii() else ""
            if form and not form.isascii() and form not in gloss:
                gloss.append(form)
        return gloss

    def extend(self, terms: QueryTerms, words: list[str]) -> QueryTerms:
        """`terms` plus a group for each word not already in it (a typo's correction, spelling.py),
        expanded with the word's synonyms like any query token. (Merging the typo's own pieces into
        that group instead was measured: tune MRR 0.830 -> 0.823, and more off-topic messages
        answered, because false corrections then raised the coverage too.)"""
        seen = set(terms.tokens)
        groups = list(terms.groups)
        for word in words:
            if word in seen:
                continue
            group = {word} | (self._synonyms.get(word, set()) if self.query_expansion else set())
            seen |= group
            groups.append(tuple(sorted(group, key=lambda w: (w != word, w))))
        return QueryTerms(tuple(groups))

    # -- identity ---------------------------------------------------------------------------
    def _compute_fingerprint(self) -> dict[str, object]:
        import jieba

        files = {name: hashlib.sha256(path.read_bytes()).hexdigest()[:16] for name, path in self._paths.items()}
        return {
            "version": TOKENIZER_VERSION,
            "jieba": jieba.__version__,
            "mode": "search_words",
            "oov_bigrams": self.oov_bigrams,
            "files": files,
        }

    @property
    def fingerprint(self) -> dict[str, object]:
        """What built an index's BM25 side; an index whose fingerprint differs must be rebuilt.
        (query_expansion is query-side only, so it is not part of it.)"""
        return dict(self._fingerprint)


_TOKENIZERS: dict[tuple[bool, bool], Tokenizer] = {}


def get_tokenizer(*, oov_bigrams: bool = False, query_expansion: bool = True) -> Tokenizer:
    """The process-wide tokenizer for these options (jieba's dictionary loads once, ~1 s)."""
    key = (oov_bigrams, query_expansion)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = Tokenizer(oov_bigrams=oov_bigrams, query_expansion=query_expansion)
    return _TOKENIZERS[key]


def clear_cache() -> None:
    _TOKENIZERS.clear()
