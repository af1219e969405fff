"""The synthetic corpora of the rebuild benchmark: distinct documents and chunks, readable."""

from __future__ import annotations

from kb.bench_rebuild import edit_one_document, make_variants
from kb.chunking import chunk_document
from kb.ingest import scan_corpus


def test_variants_are_distinct_documents_with_distinct_chunks(corpus_copy, tmp_path):
    dest = tmp_path / "scaled"
    assert make_variants(corpus_copy, dest, 5) == 5  # two .md sources -> three variant folders
    scan = scan_corpus(dest)
    assert len(scan.documents) == 5 and not scan.warnings
    titles = [d.title for d in scan.documents]
    assert len(set(titles)) == 5 and all("版）" in t for t in titles)
    chunks = [c.context_text() for d in scan.documents for c in chunk_document(d)]
    assert len(set(chunks)) == len(chunks)
    assert scan.documents[0].licences  # front matter survives the rewrite
    doc_id = edit_one_document(dest, "补充说明。")
    assert scan_corpus(dest).files[doc_id] != scan.files[doc_id]
