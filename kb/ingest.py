"""Reading corpus files (.md .txt .html .docx .pdf) into Documents.

A file that cannot be read becomes a warning naming the file; the build goes on without it.
Every converted format is turned into Markdown-like text ("#" headings, one paragraph per
line) so chunking has a single input shape.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kb.chunking import heading_level
from kb.errors import CorpusError
from kb.normalize import clean
from kb.types import Document, Source

SUPPORTED = (".md", ".markdown", ".txt", ".html", ".htm", ".docx", ".pdf")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


@dataclass(frozen=True)
class CorpusScan:
    documents: tuple[Document, ...]
    warnings: tuple[str, ...]
    files: dict[str, str]  # doc_id -> sha256 of every supported file seen (read or not)


class SkipFile(Exception):
    """A file that cannot become a Document; the message says why."""


def iter_corpus_files(root: Path) -> Iterator[Path]:
    """Supported files below root, sorted; README.md and names starting with '_' or '.' are skipped."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        if rel.as_posix() == "README.md" or not path.is_file():
            continue
        if path.suffix.lower() in SUPPORTED:
            yield path


def doc_id_for(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan_corpus(root: Path, *, max_file_mb: float = 20.0) -> CorpusScan:
    """Read every document under root. Raises CorpusError when nothing usable is there."""
    if not root.exists():
        raise CorpusError(f"Corpus directory {root} does not exist; create it or pass --corpus DIR.")
    if not root.is_dir():
        raise CorpusError(f"Corpus path {root} is not a directory; pass --corpus DIR.")
    documents: list[Document] = []
    warnings: list[str] = []
    files: dict[str, str] = {}
    for path in iter_corpus_files(root):
        doc_id = doc_id_for(path, root)
        try:
            if path.stat().st_size > max_file_mb * 1024 * 1024:
                raise SkipFile(f"larger than {max_file_mb:g} MB (max_file_mb); split it or raise the limit")
            data = path.read_bytes()
            files[doc_id] = hashlib.sha256(data).hexdigest()
            doc, notes = read_document(doc_id, path.suffix.lower(), data)
        except SkipFile as exc:
            warnings.append(f"{doc_id}: skipped: {exc}")
            continue
        except OSError as exc:
            warnings.append(f"{doc_id}: skipped: cannot read ({exc.strerror or exc})")
            continue
        warnings.extend(f"{doc_id}: {note}" for note in notes)
        documents.append(doc)
    if not documents:
        found = f"{len(files)} file(s) found but none readable" if files else "no supported files"
        raise CorpusError(
            f"Corpus {root} is empty ({found}; supported: {', '.join(SUPPORTED)}). "
            "Add guidance documents and run `kb build` again."
        )
    return CorpusScan(tuple(documents), tuple(warnings), files)


def read_document(doc_id: str, suffix: str, data: bytes) -> tuple[Document, list[str]]:
    notes: list[str] = []
    if suffix in (".docx",):
        title, body = _docx_to_text(data)
        meta: dict[str, Any] = {}
        fmt = "docx"
    elif suffix == ".pdf":
        title, body = _pdf_to_text(data)
        meta = {}
        fmt = "pdf"
    else:
        text = decode_text(data, notes)
        if suffix in (".html", ".htm"):
            title, body = html_to_text(text)
            meta, fmt = {}, "html"
        elif suffix in (".md", ".markdown"):
            meta, body = split_front_matter(text, notes)
            title, fmt = "", "md"
        else:
            meta, body, title, fmt = {}, text, "", "txt"
    body = clean(body).replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not body.strip():
        raise SkipFile("no text in it (empty, or a scanned image without a text layer)")
    title = str(meta.get("title") or title or first_heading(body) or Path(doc_id).stem).strip()
    # English keys (`questions_en`) are FAQ keys like the Chinese ones: the corpus stays Chinese,
    # but an English question finds its passage through a key in its own language.
    faq = _questions(meta.get("questions")) + _questions(meta.get("questions_en"))
    doc = Document(
        doc_id=doc_id,
        title=clean(title),
        text=body,
        format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        licences=_str_tuple(meta.get("licences")),
        topics=_str_tuple(meta.get("topics")),
        sources=_sources(meta.get("sources")),
        updated=_str(meta.get("updated")),
        questions=tuple(q for q, _ in faq),
        question_sections=tuple(s for _, s in faq),
        effective=_str(meta.get("effective")),
        superseded_by=_str(meta.get("superseded_by")),
    )
    return doc, notes


def decode_text(data: bytes, notes: list[str]) -> str:
    """UTF-8 (with or without BOM); GB18030 as a fallback for legacy Chinese files, with a warning."""
    if b"\x00" in data[:8192]:
        raise SkipFile("binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise SkipFile(
            f"not valid UTF-8 (byte {utf8_error.start}) nor GBK; save it as UTF-8"
        ) from None
    notes.append("not UTF-8; read as GBK/GB18030 — save it as UTF-8 to silence this warning")
    return text


def split_front_matter(text: str, notes: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """YAML front matter between '---' lines at the top; absent or broken front matter -> {}."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        # libyaml's loader when available: the pure-Python one was a third of a 1,000-document rebuild.
        meta = yaml.load(match.group(1), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as exc:
        if notes is not None:
            notes.append(f"front matter is not valid YAML, ignored ({str(exc).splitlines()[0]})")
        return {}, text[match.end():]
    if not isinstance(meta, dict):
        if notes is not None:
            notes.append("front matter is not a mapping, ignored")
        return {}, text[match.end():]
    return meta, text[match.end():]


def front_matter_line_count(text: str) -> int:
    """Lines taken by front matter (so body line numbers can be mapped back to file lines)."""
    match = _FRONT_MATTER.match(text)
    return match.group(0).count("\n") if match else 0


def first_heading(body: str) -> str:
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("#") and (heading := heading_level(line)):
            return heading[1]
    return ""


def html_to_text(html: str) -> tuple[str, str]:
    """Headings and paragraphs of the main content; navigation, scripts, footers and
    related-article lists are dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "aside", "form",
                     "iframe", "svg", "button", "template"]):
        tag.decompose()
    boiler = re.compile(r"nav|menu|footer|related|sidebar|breadcrumb|comment|share|advert|banner|recommend|copyright", re.I)
    for tag in soup.find_all(True):
        if tag.decomposed:  # removed together with an ancestor
            continue
        marks = " ".join([*(tag.get("class") or []), tag.get("id") or "", tag.get("role") or ""])
        if marks.strip() and boiler.search(marks):
            tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    lines: list[str] = []
    for el in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "td", "pre", "blockquote"]):
        if el.find_parent(["p", "li", "td", "blockquote"]) is not None:
            continue  # its text is part of the enclosing block
        text = re.sub(r"\s+", " ", el.get_text(" ", strip=True)).strip()
        if not text:
            continue
        if el.name and el.name[0] == "h":
            lines.append(f"{'#' * int(el.name[1])} {text}")
        else:
            lines.append(text)
    if not lines:  # plain text inside <body> without block tags
        lines = [ln.strip() for ln in root.get_text("\n").splitlines() if ln.strip()]
    h1 = next((ln[2:] for ln in lines if ln.startswith("# ")), "")
    return title or h1, "\n".join(lines)


def _docx_to_text(data: bytes) -> tuple[str, str]:
    import io
    import zipfile

    try:
        import docx
    except ImportError:  # pragma: no cover - python-docx is a dependency
        raise SkipFile("python-docx is not installed") from None
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SkipFile(f"not a valid .docx file ({exc})") from None
    lines: list[str] = []
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        m = re.match(r"(?:Heading|标题)\s*(\d)", style)
        if style == "Title":
            lines.append(f"# {text}")
        elif m:
            lines.append(f"{'#' * min(int(m.group(1)) + 1, 6)} {text}")
        else:
            lines.append(text)
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                lines.append(" | ".join(dict.fromkeys(cells)))
    title = (document.core_properties.title or "").strip()
    return title, "\n".join(lines)


def _pdf_to_text(data: bytes) -> tuple[str, str]:
    import io

    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:  # pragma: no cover - pypdf is a dependency
        raise SkipFile("pypdf is not installed") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "")
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise SkipFile(f"not a readable PDF ({exc})") from None
    lines = [ln.strip() for page in pages for ln in page.splitlines() if ln.strip()]
    return title, "\n".join(_join_pdf_lines(lines))


def _join_pdf_lines(lines: list[str]) -> list[str]:
    """PDF text comes in visual lines; glue lines back into paragraphs at sentence ends."""
    out: list[str] = []
    buf = ""
    for line in lines:
        buf += line
        if re.search(r"[。！？；：:!?;]$", line) or len(line) < 20:
            out.append(buf)
            buf = ""
    if buf:
        out.append(buf)
    return out


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _questions(value: Any) -> list[tuple[str, str]]:
    """FAQ keys: each item a question, or {q: question, section: heading it answers}."""
    out = []
    for item in value if isinstance(value, (list, tuple)) else [value] if value else []:
        if isinstance(item, dict):
            q, section = str(item.get("q") or "").strip(), str(item.get("section") or "").strip()
        else:
            q, section = (str(item).strip() if item is not None else ""), ""
        if q:
            out.append((q, section))
    return out


def _str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if v is not None and str(v).strip())
    return (str(value).strip(),)


def _sources(value: Any) -> tuple[Source, ...]:
    out: list[Source] = []
    for item in value if isinstance(value, list) else ([value] if value else []):
        if isinstance(item, dict):
            name = _str(item.get("name") or item.get("title"))
            url = _str(item.get("url"))
            if name or url:
                out.append(Source(name=name or url, url=url))
        elif item:
            out.append(Source(name=str(item).strip()))
    return tuple(out)
