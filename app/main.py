"""The web app: a Gradio UI (chat + consultant workspace) mounted on FastAPI beside JSON routes.

    build_app(settings, live=None)  -> gr.Blocks (queue configured)
    create_server(settings, live=None) -> FastAPI (JSON API + the UI at /)
    serve(settings)                 -> runs it with uvicorn on settings.host:settings.port

The app holds no retrieval logic: every request asks `live.get()` for the current build once
and uses that `KnowledgeBase` throughout, so a hot reload never splits a request across builds.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from app.chat import build_chat_tab
from app.consultant import build_consultant_tab
from app.context import AppContext, LiveLike, log
from app.render import CSS
from kb.config import Settings

# Gradio's queue, chosen deliberately for a CPU-only box with few cores:
# - default_concurrency_limit=4: every event (a streamed answer, a search) is CPU-bound work on the
#   same cores and the embedding model serialises on a lock, so running more than a few at once
#   adds latency for all of them and memory, not throughput; 4 still lets a short search go
#   through while answers stream.
# - max_size=64: a bounded queue; when it is full Gradio tells the user the server is busy right
#   away, instead of letting a burst pile up minutes of waiting work.
QUEUE_CONCURRENCY = 4
QUEUE_MAX_SIZE = 64


def _context(settings: Settings, live: LiveLike | None) -> AppContext:
    if live is None:
        from kb.live import LiveKnowledgeBase

        live = LiveKnowledgeBase(settings, background=True)
    return AppContext(settings=settings, live=live)


def _blocks(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="续证助手", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown("## 续证助手 · 增值电信业务 / 网络文化经营许可证续期")
        with gr.Tabs():
            with gr.Tab("咨询", id="chat", elem_id="kb-tab-chat"):
                build_chat_tab(ctx)
            with gr.Tab("顾问检索台", id="consultant", elem_id="kb-tab-consultant"):
                parts = build_consultant_tab(ctx)
        # Fill the index panel and the document filter when a page opens (an unlocked session only).
        demo.load(parts["panel"], [parts["unlocked"]], [parts["status_md"], parts["f_doc"]], api_visibility="private")
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def build_app(settings: Settings, live: LiveLike | None = None) -> gr.Blocks:
    """The Gradio UI alone (e.g. for `demo.launch()` while developing)."""
    return _blocks(_context(settings, live))


def create_server(settings: Settings, live: LiveLike | None = None) -> Any:
    """FastAPI app with the JSON API under /api and the Gradio UI at /."""
    from fastapi import FastAPI

    from app import api

    ctx = _context(settings, live)
    server = FastAPI(title="续证助手 API", docs_url=None, redoc_url=None, openapi_url=None)
    api.install(server, ctx)  # routes first: the Gradio mount at "/" would otherwise shadow them
    demo = _blocks(ctx)
    server = gr.mount_gradio_app(server, demo, path="/", css=CSS, ssr_mode=False, footer_links=[])
    server.state.kb_context = ctx
    return server


def serve(settings: Settings) -> None:
    """Start the app on settings.host:settings.port (127.0.0.1:7860 by default)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = create_server(settings)
    ctx: AppContext = server.state.kb_context
    # Load the model and touch the index before the first visitor, not during their first question.
    ctx.kb().search("续期", 1)
    log.info("Serving build %s on http://%s:%d", ctx.kb().build_id, settings.host, settings.port)
    # access_log=False: query strings (search terms) are things people typed; keep them out of logs.
    uvicorn.run(server, host=settings.host, port=settings.port, access_log=False, log_level="warning")
