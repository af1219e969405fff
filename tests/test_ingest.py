import io
from pathlib import Path

import pytest

from kb.errors import CorpusError
from kb.ingest import read_document, scan_corpus


def test_fixture_corpus_reads_every_format(corpus_copy: Path):
    scan = scan_corpus(corpus_copy)
    ids = sorted(d.doc_id for d in scan.documents)
    assert ids == ["annual.html", "fees.txt", "renewal.md", "sub/materials.md"]
    docs = {d.doc_id: d for d in scan.documents}
    assert docs["renewal.md"].title == "续期的基本规则"
    assert docs["renewal.md"].licences == ("vats",)
    assert docs["renewal.md"].updated == "2026-11-28"
    assert docs["sub/materials.md"].title == "呼叫中心续期材料清单"  # first heading, no front matter
    assert docs["fees.txt"].title == "fees"  # file name


def test_html_keeps_headings_and_paragraphs_and_drops_boilerplate(corpus_copy: Path):
    doc, _ = read_document("annual.html", ".html", (corpus_copy / "annual.html").read_bytes())
    assert doc.title == "年报怎么报"
    assert "## 没报的后果" in doc.text
    assert "第一季度" in doc.text
    for junk in ("tracking", "导航菜单", "相关文章", "版权所有", "color:red"):
        assert junk not in doc.text


def test_docx_headings_and_paragraphs(tmp_path: Path):
    import docx

    d = docx.Document()
    d.add_heading("年报指南", level=1)
    d.add_paragraph("每年第一季度报送上一年度的经营信息。")
    buf = io.BytesIO()
    d.save(buf)
    doc, _ = read_document("x.docx", ".docx", buf.getvalue())
    assert "## 年报指南" in doc.text and "第一季度" in doc.text


def test_gbk_file_is_read_with_a_warning(corpus_copy: Path):
    (corpus_copy / "gbk.txt").write_bytes("许可证续期要提前九十日申请。".encode("gbk"))
    scan = scan_corpus(corpus_copy)
    assert any(d.doc_id == "gbk.txt" and "九十日" in d.text for d in scan.documents)
    assert any(w.startswith("gbk.txt:") and "GBK" in w for w in scan.warnings)


def test_binary_empty_and_broken_files_warn_and_the_rest_is_read(corpus_copy: Path):
    (corpus_copy / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (corpus_copy / "empty.md").write_text("---\ntitle: 空\n---\n\n", encoding="utf-8")
    (corpus_copy / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (corpus_copy / "broken.docx").write_bytes(b"PK not a zip")
    scan = scan_corpus(corpus_copy)
    assert len(scan.documents) == 4
    warned = {w.split(":")[0] for w in scan.warnings}
    assert {"binary.txt", "empty.md", "broken.pdf", "broken.docx"} <= warned


def test_huge_file_is_skipped_with_a_warning(corpus_copy: Path):
    (corpus_copy / "huge.txt").write_text("续期" * 600_000, encoding="utf-8")
    scan = scan_corpus(corpus_copy, max_file_mb=1)
    assert "huge.txt" not in {d.doc_id for d in scan.documents}
    assert any(w.startswith("huge.txt: skipped") and "MB" in w for w in scan.warnings)


def test_missing_and_empty_corpus_are_clear_errors(tmp_path: Path):
    with pytest.raises(CorpusError, match="does not exist"):
        scan_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("# not a document", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty"):
        scan_corpus(tmp_path / "empty")


def test_invalid_front_matter_is_a_warning_not_a_crash(corpus_copy: Path):
    (corpus_copy / "bad.md").write_text("---\ntitle: [unclosed\n---\n\n正文内容在这里。", encoding="utf-8")
    scan = scan_corpus(corpus_copy)
    assert any(d.doc_id == "bad.md" and "正文内容" in d.text for d in scan.documents)
    assert any(w.startswith("bad.md:") and "YAML" in w for w in scan.warnings)
