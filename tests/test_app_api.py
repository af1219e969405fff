"""The app's JSON API against a real server (uvicorn, real model, real FAISS) on a loopback port:
answers, searches, documents, bad input of every kind, path traversal, the consultant password,
and that the server keeps serving after all of it."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from app_support import CONSULTANT_PASSWORD as PASSWORD
from app_support import XSS_DOC, AppServer

TODAY = "2026-11-29"
# HTTP headers are latin-1 on the wire: a UTF-8 password travels as its raw bytes.
PASSWORD_HEADER = PASSWORD.encode("utf-8").decode("latin-1")


def call(
    base: str, path: str, *, body: Any = None, raw: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def ask(base: str, message: Any, **extra: Any) -> tuple[int, Any]:
    return call(base, "/api/ask", body={"message": message, "today": TODAY, **extra})


def search(base: str, **params: Any) -> tuple[int, Any]:
    return call(base, "/api/search?" + urllib.parse.urlencode(params, doseq=True))


# -- answers ------------------------------------------------------------------------------------
def test_ask_answers_with_citations_and_deadline(server):
    status, data = ask(server.url, "我们呼叫中心证续期被驳回了，说材料不齐，证是2027年3月15号到期的，还来得及吗")
    assert status == 200, data
    assert data["grounded"] is True
    assert data["situation"]["licence"] == "call-center"
    assert "materials" in data["situation"]["causes"]
    assert data["deadline"]["expires_on"] == "2027-03-15"
    assert data["deadline"]["apply_by"] == "2026-12-15"
    assert data["deadline"]["status"] == "on_time"
    assert data["deadline"]["days_left"] == 16
    assert data["sources"], "a grounded answer cites passages"
    assert any(s["doc_id"] in ("call-center/cause-materials.md", "sub/materials.md") for s in data["sources"])
    assert "[1]" in data["answer"]


def test_ask_off_topic_is_not_grounded(server):
    status, data = ask(server.url, "今天晚上吃什么比较好？推荐一道川菜")
    assert status == 200, data
    assert data["grounded"] is False
    assert data["deadline"] is None


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("", "空"),
        ("   \n\t  ", "空"),
        ("\x00\x00\x01", "空"),
        ("\ud800", "空"),
        ("续" * 100_000, "太长"),
        (12345, "文字"),
        (None, "文字"),
    ],
)
def test_ask_rejects_bad_messages_with_a_clear_message(server, message, words):
    status, data = ask(server.url, message)
    assert status == 400
    assert words in data["error"]


@pytest.mark.parametrize(
    "message",
    [
        "呼叫中心证\x00续期材料不齐怎么办",  # NUL inside
        "呼叫中心证续期\ud83d材料",  # a lone (high) surrogate
        "🙂呼叫中心证续期被驳回了😭 怎么办？",  # emoji
        "ICP证 renewal 续期 Лицензия ライセンス 라이선스",  # mixed scripts
        "<script>alert(1)</script> 呼叫中心证续期 [x](javascript:alert(1)) <img src=x onerror=alert(1)>",
    ],
)
def test_ask_handles_odd_but_valid_messages(server, message):
    status, data = ask(server.url, message)
    assert status == 200, data
    assert isinstance(data["answer"], str) and data["answer"]


def test_ask_rejects_malformed_requests(server):
    assert call(server.url, "/api/ask", raw=b"{not json")[0] == 400
    status, data = call(server.url, "/api/ask", raw=b'["message"]')
    assert status == 400 and "JSON" in data["error"]
    status, data = ask(server.url, "呼叫中心证续期", today="2026-13-45")
    assert status == 400 and "YYYY-MM-DD" in data["error"]
    status, data = call(server.url, "/api/ask", raw=b'{"message": "' + b"a" * 1_100_000 + b'"}')
    assert status == 413 and "太大" in data["error"]


# -- search and documents -----------------------------------------------------------------------
def test_search_with_filters_and_modes(server):
    for mode in ("hybrid", "bm25", "dense"):
        status, data = search(server.url, q="呼叫中心续期材料", mode=mode, top=5, licence="call-center")
        assert status == 200, data
        assert 1 <= len(data["hits"]) <= 5
        assert data["hits"][0]["doc_id"] in ("call-center/cause-materials.md", "sub/materials.md", XSS_DOC)
    status, data = search(server.url, q="有效期 90日", topic="deadlines", top=3)
    assert status == 200 and data["hits"]
    assert all(h["doc_id"] in ("renewal.md", "general/validity-and-lead-time.md") for h in data["hits"])


def test_search_rejects_bad_parameters(server):
    status, data = search(server.url, q="续期", mode="fuzzy")
    assert status == 400 and "hybrid" in data["error"]
    status, data = search(server.url, q="续期", top=0)
    assert status == 400 and "top" in data["error"]
    status, data = search(server.url, q="续期", licence="no-such-licence")
    assert status == 400 and "call-center" in data["error"]
    status, data = search(server.url, q="  ")
    assert status == 400 and "检索词" in data["error"]


def test_document_is_served_by_index_id_only(server):
    status, doc = call(server.url, "/api/document/" + urllib.parse.quote(XSS_DOC))
    assert status == 200
    assert doc["doc_id"] == XSS_DOC and "<script>" in doc["text"]  # raw in JSON; escaped in the UI
    for path in (
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "sub/../../../etc/passwd",
        "....//....//etc/passwd",
        "renewal.md%00.txt",
        "x" * 5000,
    ):
        req = urllib.request.Request(server.url + "/api/document/" + path)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=30)
        assert info.value.code == 404, path
        body = info.value.read().decode()
        assert "root:" not in body
        assert "没有这份文档" in json.loads(body)["error"]


# -- access control -----------------------------------------------------------------------------
def test_consultant_routes_need_the_password(locked_server):
    base = locked_server.url
    for path in ("/api/search?q=续期", "/api/document/renewal.md", "/api/status"):
        status, data = call(base, urllib.parse.quote(path, safe="/?=&"))
        assert status == 401 and "X-KB-Password" in data["error"], path
        status, _ = call(base, urllib.parse.quote(path, safe="/?=&"), headers={"X-KB-Password": "wrong"})
        assert status == 401
    status, data = call(base, "/api/search?q=" + urllib.parse.quote("续期"), headers={"X-KB-Password": PASSWORD_HEADER})
    assert status == 200 and data["hits"]
    status, data = call(base, "/api/status", headers={"Authorization": f"Bearer {PASSWORD_HEADER}"})
    assert status == 200 and data["build_id"]
    # The chat stays public.
    status, data = ask(base, "呼叫中心证续期需要哪些材料")
    assert status == 200 and data["grounded"]


# -- robustness ---------------------------------------------------------------------------------
def test_status_and_concurrent_requests_then_still_serving(server):
    status, data = call(server.url, "/api/status")
    assert status == 200
    assert data["counts"]["documents"] == 7
    assert data["freshness"]["state"] == "fresh"

    def one(i: int) -> int:
        if i % 2:
            return search(server.url, q="续期材料", top=3)[0]
        return ask(server.url, f"ICP证还有{i + 30}天到期，续期来得及吗")[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(one, range(32)))
    assert codes == [200] * 32
    status, data = call(server.url, "/api/health")
    assert status == 200 and data["ok"]
    status, data = call(server.url, "/api/reload", raw=b"")
    assert status == 200 and data["status"] == "unchanged" and data["build_id"]


def test_missing_model_gives_a_clear_message_and_the_app_keeps_serving(app_settings, tmp_path):
    from kb.live import LiveKnowledgeBase

    settings = app_settings.replace(model_dir=tmp_path / "no-model")
    with AppServer(settings, LiveKnowledgeBase(settings, background=True)) as srv:
        status, data = ask(srv.url, "呼叫中心证续期材料不齐怎么办")
        assert status == 503 and "kb prepare-model" in data["error"]
        status, data = search(srv.url, q="续期材料", mode="dense")
        assert status == 503 and "kb prepare-model" in data["error"]
        # Keyword search needs no model and still works; so does the rest of the server.
        status, data = search(srv.url, q="续期材料", mode="bm25")
        assert status == 200 and data["hits"]
        assert call(srv.url, "/api/health")[0] == 200
