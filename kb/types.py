"""The plain data that flows between modules: Document -> Chunk -> Hit (-> Answer in answer.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Source:
    name: str
    url: str = ""


@dataclass(frozen=True)
class Document:
    doc_id: str  # path relative to the corpus root, with "/" separators
    title: str
    text: str  # body text (Markdown for .md; headings as "#" lines for converted formats)
    format: str  # md, txt, html, docx, pdf
    sha256: str  # of the file bytes
    licences: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    updated: str = ""
    questions: tuple[str, ...] = ()
    # Parallel to `questions`: the heading of the section the question points at ("" = the passage
    # whose vector is closest). Front matter: `- {q: 问题, section: 二、补救办法}`.
    question_sections: tuple[str, ...] = ()
    effective: str = ""
    superseded_by: str = ""

    @property
    def source_label(self) -> str:
        """What a citation names as the document's source."""
        return "；".join(s.name for s in self.sources) or self.doc_id


@dataclass(frozen=True)
class Chunk:
    chunk_id: str  # "<doc_id>#<ordinal>"
    doc_id: str
    ordinal: int
    title: str
    heading: str  # heading path, "二、应对之策 > 2、人员资质"; "" before the first heading
    text: str
    start_line: int  # 1-based lines of Document.text this chunk was cut from
    end_line: int
    licences: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    source: str = ""
    updated: str = ""

    def context_text(self) -> str:
        """Title and heading path before the passage: what is embedded and BM25-indexed."""
        head = " > ".join(part for part in (self.title, self.heading) if part)
        return f"{head}\n{self.text}" if head else self.text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["licences"] = list(self.licences)
        data["topics"] = list(self.topics)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        data = dict(data)
        data["licences"] = tuple(data.get("licences", ()))
        data["topics"] = tuple(data.get("topics", ()))
        return cls(**data)


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float  # fused score (RRF), only comparable within one result list
    confidence: float  # 0..1, comparable across queries: how well the passage matches the query
    chunk: Chunk
    scores: dict[str, float] = field(default_factory=dict)  # per method: dense, bm25, coverage
    matched_terms: tuple[str, ...] = ()  # query terms (after expansion) found in the passage

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id

    @property
    def title(self) -> str:
        return self.chunk.title

    @property
    def heading(self) -> str:
        return self.chunk.heading

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def source(self) -> str:
        return self.chunk.source

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `kb search --json`."""
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "confidence": round(self.confidence, 4),
            "doc_id": self.chunk.doc_id,
            "chunk_id": self.chunk.chunk_id,
            "title": self.chunk.title,
            "source": self.chunk.source,
            "heading": self.chunk.heading,
            "text": self.chunk.text,
            "updated": self.chunk.updated,
            "lines": [self.chunk.start_line, self.chunk.end_line],
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "matched_terms": list(self.matched_terms),
        }


@dataclass(frozen=True)
class SearchFilters:
    licences: tuple[str, ...] = ()  # keep chunks of documents tagged with any of these
    topics: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.licences or self.topics or self.doc_ids)

    def accepts(self, chunk: Chunk) -> bool:
        if self.licences and not set(self.licences) & set(chunk.licences):
            return False
        if self.topics and not set(self.topics) & set(chunk.topics):
            return False
        return not self.doc_ids or chunk.doc_id in self.doc_ids
