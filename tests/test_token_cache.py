"""The BM25 token cache: reuse for unchanged texts, a file per tokenizer, corrupt files ignored."""

from __future__ import annotations

from kb.indexer import build_index
from kb.token_cache import TokenCache


def split(text: str) -> list[str]:
    return text.split()


def test_tokens_are_reused_saved_and_pruned_to_the_texts_used(tmp_path):
    cache = TokenCache(tmp_path, {"jieba": "0.42.1"})
    assert cache.tokens("续期 申请", split) == ["续期", "申请"] and cache.misses == 1
    cache.tokens("过期 作废", split)
    cache.save()
    again = TokenCache(tmp_path, {"jieba": "0.42.1"})
    assert again.tokens("续期 申请", lambda _t: ["never called"]) == ["续期", "申请"] and again.hits == 1
    again.save()  # only the text used by this build survives
    assert TokenCache(tmp_path, {"jieba": "0.42.1"}).tokens("过期 作废", lambda _t: ["recomputed"]) == ["recomputed"]
    # Another tokenizer fingerprint never sees these tokens.
    assert TokenCache(tmp_path, {"jieba": "0.43"}).tokens("续期 申请", lambda _t: ["other"]) == ["other"]


def test_a_corrupt_cache_is_ignored(tmp_path):
    cache = TokenCache(tmp_path, {"v": 1})
    cache.path.write_text("{not json", encoding="utf-8")
    assert TokenCache(tmp_path, {"v": 1}).tokens("续期 申请", split) == ["续期", "申请"]


def test_builds_write_and_reuse_the_token_cache(hash_settings, hash_embedder):
    build_index(hash_settings, embedder=hash_embedder)
    files = list((hash_settings.index / "cache").glob("tokens-*.json"))
    assert len(files) == 1 and files[0].stat().st_size > 100
    files[0].write_text("[]", encoding="utf-8")  # valid JSON, wrong shape: ignored, rebuilt
    report = build_index(hash_settings, embedder=hash_embedder, force=True)
    assert report.chunks > 0 and files[0].stat().st_size > 100
