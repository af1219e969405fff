import errno
import json
import shutil
from pathlib import Path

import pytest

from kb.chunking import ChunkingParams, chunk_document, chunk_has_section
from kb.engine import KnowledgeBase
from kb.errors import (
    BuildLockedError,
    CorpusError,
    IndexCorruptError,
    IndexIncompatibleError,
    IndexMissingError,
    KBError,
)
from kb.indexer import build_index, build_lock
from kb.store import BUILDS, current_build_id, load_index
from kb.types import Document


def open_kb(settings, embedder):
    return KnowledgeBase.open(settings=settings, embedder=embedder)


def test_build_writes_a_complete_build_and_a_pointer(hash_settings, hash_embedder):
    report = build_index(hash_settings, embedder=hash_embedder)
    index = hash_settings.index
    assert current_build_id(index) == report.build_id
    build = index / BUILDS / report.build_id
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    for key in ("format_version", "model", "tokenizer", "bm25", "chunking", "corpus", "files", "dense", "counts"):
        assert key in manifest
    assert manifest["model"] == {"name": "test/hash-embedder", "dim": 64, "prepared_from": ""}
    assert manifest["dense"]["kind"] == "flat"
    assert set(manifest["corpus"]["files"]) == {"annual.html", "fees.txt", "renewal.md", "sub/materials.md"}
    assert {"chunks.jsonl", "documents.jsonl", "entries.jsonl", "dense.faiss"} <= set(manifest["files"])
    assert report.documents == 4 and report.chunks >= 6
    # the FAQ question of renewal.md is an extra entry pointing at one of its chunks
    assert report.entries == report.chunks + 1


def test_a_question_naming_a_section_points_at_that_sections_chunk(hash_settings, hash_embedder):
    renewal = hash_settings.corpus / "renewal.md"
    text = renewal.read_text(encoding="utf-8")
    question = "证快到期了什么时候申请续期"
    for section in ("二、过期的后果", "一、提前90日申请"):
        renewal.write_text(text.replace(f"  - {question}\n", f"  - q: {question}\n    section: {section}\n"), encoding="utf-8")
        build_index(hash_settings, embedder=hash_embedder)
        index = load_index(hash_settings.index)
        (entry,) = [e for e in index.entries if e.kind == "question"]
        assert entry.text == question
        assert section in index.chunks[entry.chunk].heading
        assert index.documents["renewal.md"]["question_sections"] == [section]


def test_english_keys_are_entries_of_the_section_they_name(hash_settings, hash_embedder):
    renewal = hash_settings.corpus / "renewal.md"
    question = "When should we apply to renew?"
    text = renewal.read_text(encoding="utf-8").replace(
        "questions:\n", f"questions_en:\n  - q: {question}\n    section: 二、过期的后果\nquestions:\n", 1)
    renewal.write_text(text, encoding="utf-8")
    build_index(hash_settings, embedder=hash_embedder)
    index = load_index(hash_settings.index)
    keys = {e.text: e for e in index.entries if e.kind == "question"}
    assert set(keys) == {"证快到期了什么时候申请续期", question}
    assert "二、过期的后果" in index.chunks[keys[question].chunk].heading


def test_a_question_naming_a_long_section_points_at_its_first_chunk(hash_settings, hash_embedder):
    renewal = hash_settings.corpus / "renewal.md"
    general = "先把审批意见逐条列出来，对照原来提交的材料找到对应位置，弄清是缺了、错了还是不清楚。" * 3
    specific = "营业执照副本和法定代表人身份证明要重新彩色扫描，扫描件不能缺页，并加盖公章。" * 3
    long_section = "## 三、补办的办法\n\n" + "\n\n".join([general] * 4 + [specific])
    question = "营业执照副本和法定代表人身份证明扫描件怎么重新扫描"  # closest by far to the section's last chunk
    text = renewal.read_text(encoding="utf-8").replace(
        "  - 证快到期了什么时候申请续期\n", f"  - q: {question}\n    section: 三、补办的办法\n"
    )
    renewal.write_text(text + "\n" + long_section + "\n", encoding="utf-8")
    build_index(hash_settings, embedder=hash_embedder)
    index = load_index(hash_settings.index)
    section_chunks = [i for i, c in enumerate(index.chunks) if c.heading.startswith("三、补办的办法")]
    assert len(section_chunks) >= 2  # the section is spread over several chunks
    (entry,) = [e for e in index.entries if e.kind == "question"]
    assert entry.chunk == section_chunks[0]


def test_a_named_sub_section_is_found_inside_a_merged_chunk():
    text = "## 二、补救办法\n\n### 1、逐项核对\n\n把审批意见一条条列出来。\n\n### 2、重新整理\n\n全套材料重新整理一遍。\n"
    doc = Document(doc_id="a.md", title="材料被退回", text=text, format="md", sha256="")
    (chunk,) = chunk_document(doc, ChunkingParams(250, 400))  # short sections merge into one chunk
    assert chunk_has_section(chunk, "二、补救办法")
    assert chunk_has_section(chunk, "2、重新整理")
    assert not chunk_has_section(chunk, "3、按说明填表")


def test_second_build_is_a_no_op_and_changes_are_incremental(hash_settings, hash_embedder):
    first = build_index(hash_settings, embedder=hash_embedder)
    again = build_index(hash_settings, embedder=hash_embedder)
    assert again.up_to_date and again.build_id == first.build_id
    corpus = hash_settings.corpus
    (corpus / "fees.txt").write_text("办理许可证不收费\n\n行政机关办理续期不收取任何费用，代理费不是规费。", encoding="utf-8")
    (corpus / "new.md").write_text("# 新文档\n\n年报每年第一季度报送，逾期会进不良名单。", encoding="utf-8")
    (corpus / "annual.html").unlink()
    third = build_index(hash_settings, embedder=hash_embedder)
    assert not third.up_to_date
    assert third.added == ["new.md"] and third.changed == ["fees.txt"] and third.removed == ["annual.html"]
    assert third.reused >= first.chunks - 3
    assert third.embedded <= 3


def test_incremental_and_full_builds_give_the_same_results(hash_settings, hash_embedder, tmp_path):
    build_index(hash_settings, embedder=hash_embedder)
    (hash_settings.corpus / "fees.txt").write_text("许可证续期不收费，代理机构收的是服务费。", encoding="utf-8")
    build_index(hash_settings, embedder=hash_embedder)
    full_settings = hash_settings.replace(index=tmp_path / "full")
    build_index(full_settings, embedder=hash_embedder)
    a, b = open_kb(hash_settings, hash_embedder), open_kb(full_settings, hash_embedder)
    for q in ("续期要提前多少天", "收费吗", "呼叫中心材料", "年报没报"):
        assert [h.to_dict() for h in a.search(q, 5)] == [h.to_dict() for h in b.search(q, 5)]


def test_old_builds_are_pruned_keeping_live_and_previous(hash_settings, hash_embedder):
    ids = [build_index(hash_settings, embedder=hash_embedder, force=True).build_id for _ in range(4)]
    remaining = sorted(p.name for p in (hash_settings.index / BUILDS).iterdir())
    assert remaining == sorted(ids[-2:])


def test_full_disk_during_build_keeps_the_live_index(hash_settings, hash_embedder, monkeypatch):
    live = build_index(hash_settings, embedder=hash_embedder).build_id
    import kb.indexer as indexer

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(indexer, "write_jsonl", disk_full)
    with pytest.raises(KBError, match="No space left.*live index is unchanged"):
        build_index(hash_settings, embedder=hash_embedder, force=True)
    assert current_build_id(hash_settings.index) == live
    assert not list((hash_settings.index / BUILDS).glob(".*.tmp"))
    assert open_kb(hash_settings, hash_embedder).search("续期", 1)


def test_interrupted_build_leaves_the_live_index_and_the_next_build_works(hash_settings, hash_embedder):
    live = build_index(hash_settings, embedder=hash_embedder).build_id
    (hash_settings.corpus / "fees.txt").write_text("改过的内容：续期不收费。", encoding="utf-8")

    class Interrupting:
        name, dim = hash_embedder.name, hash_embedder.dim

        def encode_passages(self, texts, progress=None):
            raise KeyboardInterrupt

        encode_queries = encode_passages

    with pytest.raises(KeyboardInterrupt):
        build_index(hash_settings, embedder=Interrupting())
    assert current_build_id(hash_settings.index) == live
    assert build_index(hash_settings, embedder=hash_embedder).changed == ["fees.txt"]


def test_a_second_build_is_refused_while_one_holds_the_lock(hash_settings, hash_embedder):
    with build_lock(hash_settings.index):
        with pytest.raises(BuildLockedError, match="Another build is running"):
            build_index(hash_settings, embedder=hash_embedder)


def test_empty_or_missing_corpus_fails_without_touching_the_index(hash_settings, hash_embedder, tmp_path):
    live = build_index(hash_settings, embedder=hash_embedder).build_id
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError):
        build_index(hash_settings.replace(corpus=empty), embedder=hash_embedder)
    with pytest.raises(CorpusError, match="does not exist"):
        build_index(hash_settings.replace(corpus=tmp_path / "missing"), embedder=hash_embedder)
    assert current_build_id(hash_settings.index) == live


def test_corrupt_truncated_and_missing_index_files_are_refused_clearly(hash_settings, hash_embedder):
    report = build_index(hash_settings, embedder=hash_embedder)
    build = hash_settings.index / BUILDS / report.build_id
    chunks = build / "chunks.jsonl"
    original = chunks.read_bytes()
    chunks.write_bytes(original.replace("续期".encode(), "续办".encode(), 1))
    with pytest.raises(IndexCorruptError, match="checksum.*kb build"):
        open_kb(hash_settings, hash_embedder)
    chunks.write_bytes(original[: len(original) // 2])
    with pytest.raises(IndexCorruptError, match="truncated.*kb build"):
        open_kb(hash_settings, hash_embedder)
    chunks.write_bytes(original)
    (build / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="manifest"):
        open_kb(hash_settings, hash_embedder)
    shutil.rmtree(hash_settings.index)
    with pytest.raises(IndexMissingError, match="kb build"):
        open_kb(hash_settings, hash_embedder)


def test_index_built_with_another_model_is_refused(hash_settings, hash_embedder):
    build_index(hash_settings, embedder=hash_embedder)
    with pytest.raises(IndexIncompatibleError, match="built with model 'test/hash-embedder'.*kb build"):
        KnowledgeBase.open(settings=hash_settings)  # configured: the default e5 model


def test_a_broken_live_build_is_replaced_by_the_next_build(hash_settings, hash_embedder):
    report = build_index(hash_settings, embedder=hash_embedder)
    (hash_settings.index / BUILDS / report.build_id / "manifest.json").unlink()
    fresh = build_index(hash_settings, embedder=hash_embedder)
    assert not fresh.up_to_date
    assert open_kb(hash_settings, hash_embedder).build_id == fresh.build_id


def test_build_ids_are_never_reused(hash_settings: Path, hash_embedder):
    ids = {build_index(hash_settings, embedder=hash_embedder, force=True).build_id for _ in range(3)}
    assert len(ids) == 3


# -- incremental == full, with the real model (appended for the living-index work) ---------------
REAL_DOCS = ("general/fees.md",)
EQUIVALENCE_QUERIES = (
    "续期要提前多少天申请", "办理许可证收费吗", "年报没报会怎样", "呼叫中心人员不够会影响续期吗", "ICP证怎么续期",
    "续期材料有哪些", "过期了还能续吗", "代理机构收费", "社保人数要求", "备案和许可证的区别",
)


def test_incremental_and_full_builds_agree_with_the_real_model(tmp_path, corpus_copy):
    from kb.chunking import ChunkingParams, chunk_document
    from kb.config import load_settings
    from kb.ingest import scan_corpus

    real_corpus = Path(__file__).resolve().parent.parent / "corpus"
    for rel in REAL_DOCS:
        dest = corpus_copy / "real" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real_corpus / rel, dest)
    settings = load_settings({"corpus": corpus_copy, "index": tmp_path / "incremental"})
    first = build_index(settings)
    assert first.embedded > 0 and first.reused == 0

    def embed_keys(corpus):
        params = ChunkingParams(settings.chunk_min_chars, settings.chunk_max_chars)
        docs = scan_corpus(corpus).documents
        return ([c.context_text() for d in docs for c in chunk_document(d, params)]
                + [q for d in docs for q in d.questions])

    before = set(embed_keys(corpus_copy))
    # Edit one paragraph of one document, add one, remove one.
    fees = corpus_copy / "real/general/fees.md"
    text = fees.read_text(encoding="utf-8")
    paragraph = next(p for p in text.split("\n\n") if len(p) > 60 and not p.startswith(("#", "---", "title")))
    fees.write_text(text.replace(paragraph, paragraph + "另外，代理机构的服务费一般按项目计价，应签书面合同。"), encoding="utf-8")
    (corpus_copy / "real/extra.md").write_text(
        "# 续期前的自查\n\n提交续期申请前，先核对营业执照、经营范围与许可证记载是否一致，再检查年报是否按时报送。\n",
        encoding="utf-8",
    )
    (corpus_copy / "annual.html").unlink()
    after = embed_keys(corpus_copy)
    incremental = build_index(settings)
    assert (incremental.added, incremental.changed, incremental.removed) == (
        ["real/extra.md"], ["real/general/fees.md"], ["annual.html"]
    )
    assert incremental.embedded == len([k for k in after if k not in before]) > 0
    assert incremental.reused == len([k for k in after if k in before]) > 0

    full_settings = settings.replace(index=tmp_path / "full")
    full = build_index(full_settings)
    assert full.reused == 0 and full.embedded == incremental.embedded + incremental.reused
    assert (full.documents, full.chunks, full.entries) == (incremental.documents, incremental.chunks, incremental.entries)
    a, b = KnowledgeBase.open(settings=settings), KnowledgeBase.open(settings=full_settings)
    for query in EQUIVALENCE_QUERIES:
        for mode in ("hybrid", "dense", "bm25"):
            ha, hb = a.search(query, 5, mode=mode), b.search(query, 5, mode=mode)
            assert [(h.doc_id, h.chunk.chunk_id) for h in ha] == [(h.doc_id, h.chunk.chunk_id) for h in hb], (query, mode)
            for x, y in zip(ha, hb, strict=True):
                assert x.score == pytest.approx(y.score, abs=1e-5)
                assert x.scores == pytest.approx(y.scores, abs=1e-4) and x.confidence == pytest.approx(y.confidence, abs=1e-4)
