"""kb status / kb.freshness: the live index against the corpus on disk and the settings."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from kb.cli import main
from kb.errors import CorpusError
from kb.freshness import index_status
from kb.indexer import build_index
from kb.store import BUILDS

HASH_MODEL = "test/hash-embedder"


@pytest.fixture
def settings(hash_settings):
    # The manifest records the embedder's name; configure the same one so only the corpus differs.
    return hash_settings.replace(model=HASH_MODEL)


def run_status(settings, *args: str):
    env = {"KB_MODEL": HASH_MODEL, "KB_CORPUS": str(settings.corpus), "KB_INDEX": str(settings.index),
           "KB_CHUNK_MIN_CHARS": str(settings.chunk_min_chars)}
    return CliRunner().invoke(main, ["status", *args], env=env)


def test_fresh_after_a_build(settings, hash_embedder):
    report = build_index(settings, embedder=hash_embedder)
    st = index_status(settings)
    assert st.state == "fresh" and st.exit_code == 0
    assert st.build_id == report.build_id and st.created_at
    assert (st.added, st.changed, st.removed, st.parameters) == ([], [], [], [])
    result = run_status(settings)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("fresh: ") and report.build_id in result.output


def test_stale_lists_added_changed_and_removed_files(settings, hash_embedder):
    build_index(settings, embedder=hash_embedder)
    corpus = settings.corpus
    (corpus / "fees.txt").write_text("续期不收费，代理费是服务费。", encoding="utf-8")
    (corpus / "sub" / "new.md").write_text("# 新文档\n\n年报每年报送。", encoding="utf-8")
    (corpus / "annual.html").unlink()
    (corpus / "_draft.md").write_text("# 草稿\n\n不进索引。", encoding="utf-8")  # ignored like the indexer does
    st = index_status(settings)
    assert st.state == "stale" and st.exit_code == 1
    assert st.added == ["sub/new.md"] and st.changed == ["fees.txt"] and st.removed == ["annual.html"]
    assert "kb build" in st.message

    result = run_status(settings)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("stale: ")
    assert "     added  sub/new.md" in lines and "   changed  fees.txt" in lines and "   removed  annual.html" in lines

    data = json.loads(run_status(settings, "--json").output)
    assert data["state"] == "stale" and data["changed"] == ["fees.txt"]

    build_index(settings, embedder=hash_embedder)
    assert index_status(settings).state == "fresh"


def test_a_touched_but_identical_file_is_still_fresh(settings, hash_embedder):
    build_index(settings, embedder=hash_embedder)
    path = settings.corpus / "fees.txt"
    path.write_bytes(path.read_bytes())  # new mtime, same content: the hash decides
    assert index_status(settings).state == "fresh"


def test_changed_build_parameters_make_it_stale_and_say_which(settings, hash_embedder):
    build_index(settings, embedder=hash_embedder)
    st = index_status(settings.replace(chunk_max_chars=300, model="other/model"))
    assert st.state == "stale" and not st.changed
    joined = " | ".join(st.parameters)
    assert "chunking" in joined and "max_chars=300" in joined
    assert "model: index has 'test/hash-embedder', settings want 'other/model'" in joined
    st = index_status(settings.replace(oov_bigrams=True))
    assert st.state == "stale" and st.parameters == ["tokenizer differs (oov_bigrams)"]


def test_missing_and_broken_index_exit_2(settings, hash_embedder):
    assert index_status(settings).state == "missing"
    result = run_status(settings)
    assert result.exit_code == 2 and result.output.startswith("missing: ") and "kb build" in result.output

    report = build_index(settings, embedder=hash_embedder)
    build = settings.index / BUILDS / report.build_id
    chunks = build / "chunks.jsonl"
    chunks.write_bytes(chunks.read_bytes()[:10])
    st = index_status(settings)
    assert st.state == "broken" and st.build_id == report.build_id and "truncated" in st.message
    assert run_status(settings).exit_code == 2

    shutil.rmtree(build)  # CURRENT points at a build that is gone
    st = index_status(settings)
    assert st.state == "broken" and "kb build" in st.message
    assert json.loads(run_status(settings, "--json").output)["state"] == "broken"


def test_checksums_are_verified_only_when_asked(settings, hash_embedder):
    report = build_index(settings, embedder=hash_embedder)
    chunks = settings.index / BUILDS / report.build_id / "chunks.jsonl"
    data = chunks.read_bytes()
    chunks.write_bytes(data.replace("续期".encode(), "续办".encode(), 1))  # same size, other bytes
    assert index_status(settings).state == "fresh"
    st = index_status(settings, verify_hashes=True)
    assert st.state == "broken" and "checksum" in st.message


def test_a_missing_corpus_is_a_clear_error(settings, hash_embedder, tmp_path):
    build_index(settings, embedder=hash_embedder)
    with pytest.raises(CorpusError, match="does not exist"):
        index_status(settings.replace(corpus=tmp_path / "nope"))
    result = CliRunner().invoke(main, ["status", "--corpus", str(tmp_path / "nope"), "--index", str(settings.index)])
    assert result.exit_code == 1 and "Error: Corpus directory" in result.output
