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


def test_rebuild_suite_runs_on_a_small_corpus_and_its_table_shows_the_numbers(corpus_copy, real_settings, tmp_path):
    """The whole suite with the real model (tiny scales), and `kb bench`'s text table of its result."""
    from kb.bench import format_markdown, rebuild_lines
    from kb.bench_rebuild import run

    settings = real_settings.replace(corpus=corpus_copy, index=tmp_path / "index", chunk_min_chars=30)
    result = run(settings, scale=2, documents=5, workdir=tmp_path / "work")
    names = [case["name"] for case in result["cases"]]
    assert names == ["default", "x2", "5docs"]
    default, _, large = result["cases"]
    assert large["documents"] == 5 and default["incremental_embedded"] >= 1
    assert all(live["seconds"] is not None and not live["errors"] for live in result["save_to_live"])
    table = "\n".join(rebuild_lines(result))
    assert f"| 5docs: 5 docs, {large['chunks']} chunks" in table
    assert f"{default['full_s']:.1f} s |" in table and "+ embedding ≈" in table
    assert f"{large['incremental_s']:.2f} s ({large['incremental_embedded']} embedded" in table
    assert table.count("Save → live with `kb watch` running") == 2 and "not seen" not in table
    assert rebuild_lines({"skipped": "no module"}) == ["", "Rebuild suite skipped: no module."]
    # `kb bench --suite rebuild` prints the table alone, without the empty table of other numbers.
    report = {"machine": {"cpus": 2, "load_avg_start": [0.5], "load_avg_end": [0.7], "torch_threads": 2},
              "settings": {"query_quantize": True}, "memory": {"end": {"rss_mb": 1.0, "peak_rss_mb": 1.0}},
              "rebuild": result}
    text = format_markdown(report)
    assert table in text and "| other |" not in text
