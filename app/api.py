"""JSON routes beside the Gradio UI, for scripts and the load test.

    POST /api/ask              {"message": "...", "today": "YYYY-MM-DD"?}  -> Answer.to_dict()   (public)
    GET  /api/search?q=&mode=&top=&licence=&topic=&doc=                   -> {"hits": [...]}     (consultant)
    GET  /api/document/{doc_id}                                             -> the document        (consultant)
    GET  /api/status                                                        -> index panel data    (consultant)
    POST /api/reload                                                        -> reload result       (consultant)
    GET  /api/health                                                        -> {"ok", "build_id"}  (public)

"consultant" routes need the `X-KB-Password` header (or `Authorization: Bearer ...`) when
KB_CONSULTANT_PASSWORD is set, exactly like the consultant tab; the chat route is public like the chat.

Errors are JSON `{"error": "<Chinese message saying what to do>"}` with a 4xx/5xx status; a failing
request never takes the server down. Work runs in worker threads behind `API_CONCURRENCY`: on two
cores more parallel searches only contend for the CPU (the embedder already serialises on a lock),
while waiting requests cost no thread; beyond `API_BACKLOG` waiting requests the API answers 503
at once instead of queueing without bound.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from app.context import MAX_TOP_K, AppContext, friendly_error, log
from app.render import user_text
from kb.errors import KBError
from kb.types import SearchFilters
from kb.vocabulary import load_vocabulary

API_CONCURRENCY = 4
API_BACKLOG = 256
MAX_BODY_BYTES = 1_000_000
MAX_DOC_ID_CHARS = 500
SEARCH_MODES = ("hybrid", "bm25", "dense")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Gate:
    """At most API_CONCURRENCY requests compute at once; at most API_BACKLOG wait."""

    def __init__(self) -> None:
        self.limiter = anyio.CapacityLimiter(API_CONCURRENCY)
        self.waiting = 0

    async def run(self, fn: Any, *args: Any) -> Any:
        if self.waiting >= API_BACKLOG:
            raise ApiError(503, "服务繁忙，请稍后重试。")
        self.waiting += 1
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)
        finally:
            self.waiting -= 1


def _require_consultant(ctx: AppContext, request: Request) -> None:
    if not ctx.consultant_locked:
        return
    given = request.headers.get("x-kb-password", "")
    auth = request.headers.get("authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    try:  # HTTP headers arrive as latin-1; a UTF-8 password (e.g. Chinese) is sent as its raw bytes
        given = given.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    if not ctx.password_ok(given):
        raise ApiError(401, "此接口仅供顾问使用：请在请求头 X-KB-Password 中提供顾问密码。")


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"请求体太大（{len(body)} 字节），上限 {MAX_BODY_BYTES} 字节。")
    try:
        data = json.loads(body.decode("utf-8", "replace") or "null")
    except ValueError:
        raise ApiError(400, '请求体不是合法的 JSON，请发送形如 {"message": "……"} 的内容。') from None
    if not isinstance(data, dict):
        raise ApiError(400, '请求体应是 JSON 对象，例如 {"message": "呼叫中心证明年3月到期"}。')
    return data


def _today(value: Any) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ApiError(400, f"today 应为 YYYY-MM-DD 格式的日期，收到的是 {str(value)[:40]!r}。") from None


def _ids(values: list[str], valid: dict[str, Any], name: str) -> tuple[str, ...]:
    unknown = [v for v in values if v not in valid]
    if unknown:
        raise ApiError(400, f"未知的{name}：{', '.join(unknown)[:200]}；可选：{', '.join(valid)}。")
    return tuple(values)


def create_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api")
    gate = _Gate()

    @router.post("/ask")
    async def ask(request: Request) -> JSONResponse:
        data = await _json_body(request)
        message, error = user_text(data.get("message"), ctx.settings.max_message_chars)
        if error:
            raise ApiError(400, error)
        today = _today(data.get("today"))

        def work() -> dict[str, Any]:
            from kb.conversation import Conversation

            return ctx.kb().ask(message, Conversation(), today=today).to_dict()

        return JSONResponse(await gate.run(work))

    @router.get("/search")
    async def search(request: Request) -> JSONResponse:
        _require_consultant(ctx, request)
        params = request.query_params
        query, error = user_text(params.get("q", ""), ctx.settings.max_message_chars)
        if error:
            raise ApiError(400, error.replace("消息", "检索词"))
        mode = params.get("mode", "hybrid")
        if mode not in SEARCH_MODES:
            raise ApiError(400, f"未知的检索方式 {mode[:40]!r}；可选：{', '.join(SEARCH_MODES)}。")
        try:
            top = int(params.get("top", "10"))
        except ValueError:
            raise ApiError(400, f"top 应为 1 到 {MAX_TOP_K} 之间的整数。") from None
        if not 1 <= top <= MAX_TOP_K:
            raise ApiError(400, f"top 应为 1 到 {MAX_TOP_K} 之间的整数。")
        vocab = load_vocabulary()
        filters = SearchFilters(
            licences=_ids(params.getlist("licence"), dict(vocab.licences), "许可证"),
            topics=_ids(params.getlist("topic"), dict(vocab.topics), "主题"),
            doc_ids=tuple(params.getlist("doc")),
        )

        def work() -> dict[str, Any]:
            kb = ctx.kb()
            hits = kb.search(query, top, mode=mode, filters=filters)
            return {"query": query, "mode": mode, "build_id": kb.build_id, "hits": [h.to_dict() for h in hits]}

        return JSONResponse(await gate.run(work))

    @router.get("/document/{doc_id:path}")
    async def document(doc_id: str, request: Request) -> JSONResponse:
        _require_consultant(ctx, request)
        # Only ids present in the index are served (a dict lookup, never a path on disk), so
        # "../../etc/passwd" is simply an unknown id.
        doc = ctx.kb().document(doc_id) if len(doc_id) <= MAX_DOC_ID_CHARS else None
        if doc is None:
            raise ApiError(404, f"没有这份文档：{doc_id[:100]!r}。文档 id 是 corpus/ 下的相对路径，可从检索结果的 doc_id 得到。")
        return JSONResponse(doc)

    @router.get("/status")
    async def status(request: Request) -> JSONResponse:
        _require_consultant(ctx, request)
        return JSONResponse(await gate.run(ctx.live.status))

    @router.post("/reload")
    async def reload(request: Request) -> JSONResponse:
        _require_consultant(ctx, request)
        result = await gate.run(ctx.live.reload)
        return JSONResponse(result.to_dict() if hasattr(result, "to_dict") else dict(result))

    @router.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"ok": True, "build_id": ctx.kb().build_id})

    return router


def install(app: FastAPI, ctx: AppContext) -> None:
    app.include_router(create_router(ctx))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(KBError)
    async def _kb_error(request: Request, exc: KBError) -> JSONResponse:
        status = 400 if type(exc).__name__ == "InputError" else 503
        return _error(status, friendly_error(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("Request %s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return _error(500, friendly_error(exc))
