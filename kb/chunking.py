"""Chunking made for Chinese guidance text.

Documents are split first on headings and enumerations (一、 / （一） / 1、 / （1）), then on
paragraphs, then on sentence ends (。！？；), and packed into chunks of about `min_chars`..`max_chars`
characters that never cross a document. Each chunk keeps its heading path
("二、应对之策 > 2、人员资质") because a passage like "及时补充培训" means little without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kb.types import Chunk, Document

CHUNKING_VERSION = 2

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_CN_NUM = "一二三四五六七八九十百零〇两"
# Plain-text enumerations and the heading level they stand for (markdown headings use '#').
_ENUMERATIONS = (
    (re.compile(rf"^[{_CN_NUM}]+[、.．]\s*\S"), 2),  # 一、
    (re.compile(rf"^[（(][{_CN_NUM}]+[）)]\s*\S"), 3),  # （一）
    (re.compile(r"^\d{1,2}[、.．](?!\d)\s*\S"), 4),  # 1、 1.
    (re.compile(r"^[（(]\d{1,2}[）)]\s*\S"), 5),  # （1）
)
SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")  # split point after a sentence end (kept with it)
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?$")
# An enumerated line is a heading (not a paragraph) when it is short and does not end a sentence.
_MAX_HEADING_CHARS = 40


@dataclass(frozen=True)
class ChunkingParams:
    min_chars: int = 250
    max_chars: int = 400

    def to_dict(self) -> dict[str, int]:
        return {"version": CHUNKING_VERSION, "min_chars": self.min_chars, "max_chars": self.max_chars}


@dataclass
class _Paragraph:
    text: str
    line: int  # 1-based
    end_line: int
    starts_item: bool = False  # an enumerated item: a preferred split point


@dataclass
class _Section:
    path: tuple[str, ...]
    paragraphs: list[_Paragraph]
    heading_line: int = 0


def chunk_document(doc: Document, params: ChunkingParams | None = None) -> list[Chunk]:
    params = params or ChunkingParams()
    pieces = [
        _Piece([(section.path, text)], line, end, section.heading_line or line)
        for section in _sections(doc)
        for text, line, end in _pack(section.paragraphs, params)
    ]
    merged = _merge_small(pieces, params)
    chunks = []
    for ordinal, piece in enumerate(merged):
        path, text = piece.render()
        heading = " > ".join(path) or piece.section_label()
        chunks.append(
            Chunk(
                chunk_id=f"{doc.doc_id}#{ordinal}",
                doc_id=doc.doc_id,
                ordinal=ordinal,
                title=doc.title,
                heading=heading,
                text=text,
                start_line=piece.first_line,
                end_line=max(piece.end, piece.first_line),
                licences=doc.licences,
                topics=doc.topics,
                source=doc.source_label,
                updated=doc.updated,
            )
        )
    return chunks


@dataclass
class _Piece:
    """Text from one or more neighbouring sections; the chunk's heading path is their common
    prefix and the deeper headings become lines of the text."""

    segments: list[tuple[tuple[str, ...], str]]
    start: int
    end: int
    heading_line: int  # line of the first segment's own heading

    @property
    def first_line(self) -> int:
        """Where the rendered text starts: the first segment's heading when it is shown."""
        return self.heading_line if len(self.segments[0][0]) > len(self.common_path()) else self.start

    def common_path(self) -> tuple[str, ...]:
        paths = [p for p, _ in self.segments]
        common = paths[0]
        for p in paths[1:]:
            n = 0
            while n < min(len(common), len(p)) and common[n] == p[n]:
                n += 1
            common = common[:n]
        return common

    def section_label(self) -> str:
        """For a piece spanning top-level sections: their headings, "一、… / 二、…"."""
        tops: list[str] = []
        for path, _ in self.segments:
            if path and path[0] not in tops:
                tops.append(path[0])
        return " / ".join(tops)

    def render(self) -> tuple[tuple[str, ...], str]:
        common = self.common_path()
        lines: list[str] = []
        shown: tuple[str, ...] = common
        for path, text in self.segments:
            n = 0
            while n < min(len(shown), len(path)) and shown[n] == path[n]:
                n += 1
            lines.extend(path[max(n, len(common)):])
            lines.append(text)
            shown = path
        return common, "\n".join(lines)


def _merge_small(pieces: list[_Piece], params: ChunkingParams) -> list[_Piece]:
    """Neighbouring pieces merge while one of them is under min_chars and the result stays
    within max_chars: a run of one-paragraph sub-points ("1、… 2、… 3、…") becomes one passage
    under its parent heading, and short neighbouring sections share a passage, each keeping its
    heading as a line of the text. Measured on the eval's tuning split: merging across sections
    (min 250) lifts hybrid passage hit@3 from 0.724 to 0.789 at an unchanged doc@3."""
    out: list[_Piece] = []
    for piece in pieces:
        if out:
            prev = out[-1]
            candidate = _Piece(prev.segments + piece.segments, prev.start, piece.end, prev.heading_line)
            small = len(prev.render()[1]) < params.min_chars or len(piece.render()[1]) < params.min_chars
            if small and len(candidate.render()[1]) <= params.max_chars:
                out[-1] = candidate
                continue
        out.append(piece)
    return out


def chunk_has_section(chunk: Chunk, section: str) -> bool:
    """Whether the section headed `section` (a heading line's text) starts in or runs through the
    chunk: a heading on the chunk's path (a chunk of merged sections has several: "三、A / 四、B"),
    or a sub-heading line inside its text (merged pieces keep theirs as lines: "2、缺少…")."""
    if any(section in (p.strip() for p in path.split(" > ")) for path in chunk.heading.split(" / ")):
        return True
    return section in (line.strip() for line in chunk.text.splitlines())


def heading_level(line: str) -> tuple[int, str] | None:
    """(level, heading text) when the line is a heading: '#' Markdown or a short enumeration."""
    m = _MD_HEADING.match(line)
    if m:
        return len(m.group(1)), m.group(2).strip()
    if len(line) <= _MAX_HEADING_CHARS and not re.search(r"[。！？；!?;，,：:]$", line):
        for pattern, level in _ENUMERATIONS:
            if pattern.match(line):
                return level, line.strip()
    return None


def _is_item(line: str) -> bool:
    stripped = re.sub(r"^([-*+]|\d+[.)])\s+", "", line)
    return any(p.match(stripped) for p, _ in _ENUMERATIONS) or stripped != line


def _sections(doc: Document) -> list[_Section]:
    sections: list[_Section] = [_Section((), [])]
    stack: list[tuple[int, str]] = []
    for number, raw in enumerate(doc.text.split("\n"), start=1):
        line = raw.strip()
        if not line or _TABLE_RULE.match(line):
            continue
        heading = heading_level(line)
        if heading:
            level, text = heading
            if level == 1 and text == doc.title and not stack:
                continue  # the document title is already on every chunk
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            sections.append(_Section(tuple(t for _, t in stack), [], number))
            continue
        sections[-1].paragraphs.append(_Paragraph(line, number, number, _is_item(line)))
    return [s for s in sections if s.paragraphs]


def _split_long(par: _Paragraph, max_chars: int) -> list[_Paragraph]:
    """A paragraph longer than max_chars is split at sentence ends, then at commas, then hard."""
    if len(par.text) <= max_chars:
        return [par]
    sentences = [s for s in SENTENCE_END.split(par.text) if s]
    out: list[_Paragraph] = []
    for sentence in sentences:
        while len(sentence) > max_chars:
            cut = max(sentence.rfind(ch, 0, max_chars) for ch in "，,、：:")
            cut = cut + 1 if cut > max_chars // 3 else max_chars
            out.append(_Paragraph(sentence[:cut], par.line, par.end_line))
            sentence = sentence[cut:]
        if sentence:
            out.append(_Paragraph(sentence, par.line, par.end_line))
    # Re-join consecutive sentences greedily so pieces are not needlessly small.
    merged: list[_Paragraph] = []
    for piece in out:
        if merged and len(merged[-1].text) + len(piece.text) <= max_chars:
            merged[-1] = _Paragraph(merged[-1].text + piece.text, par.line, par.end_line)
        else:
            merged.append(piece)
    if merged:
        merged[0].starts_item = par.starts_item
    return merged


def _pack(paragraphs: list[_Paragraph], params: ChunkingParams) -> list[tuple[str, int, int]]:
    units = [u for p in paragraphs for u in _split_long(p, params.max_chars)]
    chunks: list[list[_Paragraph]] = []
    for unit in units:
        current = chunks[-1] if chunks else None
        size = sum(len(u.text) + 1 for u in current) if current else 0
        fits = current is not None and size + len(unit.text) <= params.max_chars
        # Start a new chunk at an enumerated item once the current one is big enough, so each
        # numbered point tends to be its own passage.
        if fits and unit.starts_item and size >= params.min_chars:
            fits = False
        if fits:
            current.append(unit)
        else:
            chunks.append([unit])
    # A tail shorter than min_chars joins its predecessor when that stays near the limit.
    if len(chunks) >= 2:
        tail = sum(len(u.text) for u in chunks[-1])
        prev = sum(len(u.text) + 1 for u in chunks[-2])
        if tail < params.min_chars and prev + tail <= params.max_chars * 1.2:
            chunks[-2].extend(chunks.pop())
    return [("\n".join(u.text for u in c), c[0].line, c[-1].end_line) for c in chunks]
