"""`kb check`: validate the corpus before it is indexed.

Problems are reported as `file:line: message` (line numbers of the file, front matter included) so
an editor can jump to them. The vocabularies come from kb/data/vocabulary.yaml.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kb.chunking import heading_level
from kb.ingest import SUPPORTED, iter_corpus_files
from kb.normalize import HAN_CHAR, to_simplified
from kb.vocabulary import load_vocabulary

REQUIRED = ("title", "licences", "topics", "sources", "updated")
OPTIONAL = ("questions", "questions_en", "effective", "superseded_by")
MAX_PARAGRAPH_CHARS = 300
# A `##` section with less text than this (its `###` sub-sections included) is a pointer or a
# closing line ("详见讲外资的文档"), which needs no FAQ key of its own.
MIN_KEYED_SECTION_CHARS = 60

_PHONE = re.compile(
    r"(?<![\d.])(?:"
    r"1[3-9]\d{9}"  # mobile
    r"|0\d{2,3}[- ]?\d{7,8}"  # landline with area code
    r"|[48]00[- ]?\d{3}[- ]?\d{4}"  # 400/800 service numbers
    r"|123\d{2}(?:-\d)?"  # 12300/12381-style government hotlines
    r")(?![\d])"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.I)
_WECHAT = re.compile(r"(?:微信|weixin|wechat|vx|wx|qq)\s*(?:号|id)?\s*[:：]?\s*[A-Za-z0-9_-]{5,}", re.I)
_MOJIBAKE = re.compile(r"\ufffd|锟斤拷|烫烫烫|屯屯屯|[ÃÂ][\u0080-\u00bf]|â€|ï¼|ã€")
# Characters OpenCC changes that are also correct simplified usage in our texts.
_T2S_ALLOWED = set("著乾甦於")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def check_corpus(root: Path, *, vocabulary_path: Path | None = None, today: dt.date | None = None) -> tuple[list[Problem], int]:
    """All problems in the corpus, and the number of files checked."""
    vocab = load_vocabulary(vocabulary_path)
    today = today or dt.date.today()
    problems: list[Problem] = []
    if not root.is_dir():
        return [Problem(str(root), 0, "corpus directory does not exist; pass --corpus DIR")], 0
    files = list(iter_corpus_files(root))
    if not files:
        return [Problem(str(root), 0, f"no documents ({', '.join(SUPPORTED)}) in the corpus")], 0
    titles: dict[str, str] = {}
    ids: dict[str, str] = {}
    doc_ids = {p.relative_to(root).as_posix() for p in files}
    for path in files:
        shown = str(path)
        rel = path.relative_to(root).as_posix()
        key = rel.lower()
        if key in ids:
            problems.append(Problem(shown, 1, f"document id {rel!r} duplicates {ids[key]!r} (ids differ only in case)"))
        ids[key] = rel
        if path.suffix.lower() not in (".md", ".markdown", ".txt", ".html", ".htm"):
            continue  # binary formats: ingestion reports what it cannot read
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            problems.append(Problem(shown, line, f"invalid UTF-8 (byte {exc.start}); save the file as UTF-8"))
            continue
        lines = text.splitlines()
        meta, body_start = _front_matter(lines)
        if path.suffix.lower() in (".md", ".markdown"):
            problems += _check_meta(shown, meta, lines, body_start, vocab, doc_ids, today)
            title = str((meta or {}).get("title") or "").strip()
            if title:
                if title in titles:
                    problems.append(Problem(shown, _key_line(lines, "title"), f"duplicate title, also used by {titles[title]}"))
                titles.setdefault(title, rel)
        allowed_urls = {str(s.get("url")) for s in (meta or {}).get("sources") or [] if isinstance(s, dict) and s.get("url")}
        problems += _check_body(shown, lines, body_start, allowed_urls)
    return problems, len(files)


def _front_matter(lines: list[str]) -> tuple[dict[str, Any] | None, int]:
    """(front matter or None when absent/broken, index of the first body line)."""
    if not lines or lines[0].strip() != "---":
        return None, 0
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            try:
                meta = yaml.safe_load("\n".join(lines[1:i])) or {}
            except yaml.YAMLError:
                return {"__error__": True}, i + 1
            return (meta if isinstance(meta, dict) else {"__error__": True}), i + 1
    return {"__error__": True}, 0


def _key_line(lines: list[str], key: str) -> int:
    for i, line in enumerate(lines, start=1):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return i
    return 1


def _check_meta(path, meta, lines, body_start, vocab, doc_ids, today) -> list[Problem]:
    out: list[Problem] = []
    if meta is None:
        return [Problem(path, 1, "no YAML front matter; start the file with --- and the fields " + ", ".join(REQUIRED))]
    if meta.get("__error__"):
        return [Problem(path, 1, "front matter is not valid YAML (check quoting and the closing ---)")]
    for key in REQUIRED:
        if key not in meta or meta[key] in (None, "", []):
            out.append(Problem(path, _key_line(lines, key) if key in meta else 1, f"missing front matter field '{key}'"))
    for key in meta:
        if key not in REQUIRED + OPTIONAL:
            out.append(Problem(path, _key_line(lines, key), f"unknown front matter field '{key}'; allowed: {', '.join(REQUIRED + OPTIONAL)}"))
    for field, allowed in (("licences", vocab.licences), ("topics", vocab.topics)):
        values = meta.get(field) or []
        if not isinstance(values, list):
            out.append(Problem(path, _key_line(lines, field), f"'{field}' must be a list"))
            continue
        for value in values:
            if str(value) not in allowed:
                out.append(Problem(path, _key_line(lines, field), f"unknown {field[:-1]} '{value}'; allowed: {', '.join(allowed)}"))
    sources = meta.get("sources")
    if sources is not None:
        if not isinstance(sources, list) or not all(isinstance(s, (dict, str)) and s for s in sources):
            out.append(Problem(path, _key_line(lines, "sources"), "'sources' must be a list of {name, url} entries"))
        else:
            for s in sources:
                if isinstance(s, dict) and not s.get("name"):
                    out.append(Problem(path, _key_line(lines, "sources"), "a source without a name"))
    for field in ("updated", "effective"):
        if field in meta and meta[field] not in (None, ""):
            value = meta[field]
            if not isinstance(value, dt.date):
                try:
                    value = dt.date.fromisoformat(str(value))
                except ValueError:
                    out.append(Problem(path, _key_line(lines, field), f"'{field}' must be a date YYYY-MM-DD"))
                    continue
            if field == "updated" and value > today:
                out.append(Problem(path, _key_line(lines, field), f"'updated' {value} is in the future"))
    out += _check_questions(path, meta.get("questions"), lines, body_start)
    out += _check_questions(path, meta.get("questions_en"), lines, body_start, field="questions_en")
    out += _check_sections_have_keys(path, meta.get("questions"), lines, body_start)
    out += _check_english_keys_follow(path, meta.get("questions"), meta.get("questions_en"), lines)
    target = meta.get("superseded_by")
    if target and str(target) not in doc_ids:
        out.append(Problem(path, _key_line(lines, "superseded_by"), f"superseded_by '{target}' is not a document of the corpus"))
    return out


def _check_questions(path: str, questions, lines: list[str], body_start: int, field: str = "questions") -> list[Problem]:
    """`questions` (and `questions_en`): a list whose items are a question, or {q: question,
    section: heading} where the heading is one of the document's heading lines (without the #s).
    A `questions_en` key is English: no Han characters (a Chinese key belongs in `questions`)."""
    if questions is None:
        return []
    line = _key_line(lines, field)
    shape = f"'{field}' must be a list of questions, each a non-empty string or {{q: question, section: heading}}"
    if not isinstance(questions, list):
        return [Problem(path, line, shape)]
    headings = {heading[1] for _, _, heading in _body_lines(lines, body_start) if heading}
    out: list[Problem] = []
    for item in questions:
        if isinstance(item, str) and item.strip():
            q, section = item, None
        elif isinstance(item, dict) and isinstance(item.get("q"), str) and item["q"].strip() and set(item) <= {"q", "section"}:
            q, section = item["q"], item.get("section")
        else:
            out.append(Problem(path, line, f"{shape}; got {item!r}"))
            continue
        q_line = next((i for i, text in enumerate(lines, start=1) if q in text), line)
        if section is not None and not (isinstance(section, str) and section.strip() in headings):
            out.append(Problem(path, q_line, f"question {q!r}: section {section!r} is not a heading of this document; "
                                             "copy the heading line's text without the #s"))
        if field == "questions_en" and HAN_CHAR.search(q):
            out.append(Problem(path, q_line, f"question {q!r} in 'questions_en' has Chinese characters; "
                                             "write it in English, or move a Chinese key to 'questions'"))
    return out


def _named_sections(questions) -> list[str]:
    items = questions if isinstance(questions, list) else []
    return [str(q["section"]).strip() for q in items if isinstance(q, dict) and q.get("section")]


def _check_english_keys_follow(path: str, questions, questions_en, lines: list[str]) -> list[Problem]:
    """A document with English keys has one for every section its Chinese keys name, so an
    English question can reach each passage a Chinese one can."""
    if not isinstance(questions_en, list):
        return []
    english = set(_named_sections(questions_en))
    missing = [s for s in dict.fromkeys(_named_sections(questions)) if s not in english]
    line = _key_line(lines, "questions_en")
    return [Problem(path, line, f"section '{s}' has Chinese keys but no English one in 'questions_en'; add "
                                f"- {{q: <the question in English>, section: {s}}}") for s in missing]


def _check_sections_have_keys(path: str, questions, lines: list[str], body_start: int) -> list[Problem]:
    """The authoring guide's rule: every substantive `##` section has at least one `questions` key
    naming it or one of its `###` sub-sections, so a user's wording finds the passage even when
    the passage is written differently. Exempt: a heading that is itself a question (the FAQ's),
    and a section with under MIN_KEYED_SECTION_CHARS characters of text."""
    named = set(_named_sections(questions))
    sections: list[list[Any]] = []  # [line, heading, the headings inside it, characters of text]
    for number, line, heading in _body_lines(lines, body_start):
        if heading and heading[0] <= 2:
            sections.append([number, heading[1], {heading[1]}, 0])
        elif sections and heading:
            sections[-1][2].add(heading[1])
        elif sections:
            sections[-1][3] += len(line)
    return [
        Problem(path, number, f"section '{text}' has no 'questions' key; add one in users' words: "
                              f"- {{q: <a question it answers>, section: {text}}}")
        for number, text, inside, chars in sections
        if chars >= MIN_KEYED_SECTION_CHARS and not text.endswith(("？", "?")) and not inside & named
    ]


def _body_lines(lines: list[str], body_start: int) -> Iterator[tuple[int, str, tuple[int, str] | None]]:
    """(line number, stripped text, Markdown heading or None) of every non-blank body line outside
    code blocks."""
    in_code = False
    for number in range(body_start + 1, len(lines) + 1):
        line = lines[number - 1].strip()
        if line.startswith("```"):
            in_code = not in_code
            continue
        if line and not in_code:
            yield number, line, heading_level(line) if line.startswith("#") else None


def _check_body(path: str, lines: list[str], body_start: int, allowed_urls: set[str]) -> list[Problem]:
    out: list[Problem] = []
    open_heading: tuple[int, int, str] | None = None  # (line, level, text) of a heading with no text yet
    for number, line, heading in _body_lines(lines, body_start):
        if heading:
            level = heading[0]
            if open_heading and level <= open_heading[1]:
                out.append(Problem(path, open_heading[0], f"empty section '{open_heading[2]}'"))
            open_heading = (number, level, heading[1])
        else:
            open_heading = None
            if len(line) > MAX_PARAGRAPH_CHARS and not line.startswith("|"):
                out.append(Problem(path, number, f"paragraph of {len(line)} characters (max {MAX_PARAGRAPH_CHARS}); split it so it makes a good passage"))
        if _MOJIBAKE.search(line):
            out.append(Problem(path, number, "mojibake (garbled characters from a wrong encoding)"))
        trad = sorted({a for a, b in zip(line, to_simplified(line), strict=False) if a != b and a not in _T2S_ALLOWED})
        if trad:
            out.append(Problem(path, number, f"traditional characters {''.join(trad)}; write the body in simplified Chinese"))
        for pattern, what in ((_PHONE, "phone number"), (_EMAIL, "e-mail address"), (_WECHAT, "WeChat/QQ id")):
            m = pattern.search(line)
            if m:
                out.append(Problem(path, number, f"contact details ({what} '{m.group(0)}') do not belong in guidance"))
        for m in _URL.finditer(line):
            url = m.group(0).rstrip(")）>,，。")
            if url not in allowed_urls:
                out.append(Problem(path, number, f"URL '{url}' in the body; cite it in 'sources' instead"))
    if open_heading:
        out.append(Problem(path, open_heading[0], f"empty section '{open_heading[2]}'"))
    return out
