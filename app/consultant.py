"""The consultants' workspace: search with filters, open documents, copy citations, export, index panel.

Every handler takes the session's `unlocked` state and refuses when a password is configured and the
session has not given it: hiding the column in the browser is convenience, the check is here,
because Gradio's event endpoints can be called without the page.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

import gradio as gr

from app.context import MAX_TOP_K, MODES, AppContext, friendly_error, log
from app.render import (
    citation_label,
    citation_text,
    document_html,
    md_escape,
    results_csv,
    results_html,
    results_markdown,
    scroll_js,
    status_markdown,
    user_text,
)
from kb.types import Hit, SearchFilters
from kb.vocabulary import load_vocabulary

LOCKED = "检索台需要顾问密码：请先在上方输入密码并点击「解锁」。"
_FAILED_UNLOCK_DELAY_S = 0.5  # slows down guessing without bothering a person who mistyped


def filter_choices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    vocab = load_vocabulary()
    licences = [(lic.label, lid) for lid, lic in vocab.licences.items()]
    topics = [(label, tid) for tid, label in vocab.topics.items()]
    return licences, topics


def document_choices(ctx: AppContext) -> list[tuple[str, str]]:
    docs = ctx.kb().index.documents
    return sorted(((f"{d.get('title', doc_id)}（{doc_id}）", doc_id) for doc_id, d in docs.items()), key=lambda c: c[1])


def run_search(
    ctx: AppContext, query: str, mode_label: str, top_k: Any, licences: Any, topics: Any, docs: Any
) -> tuple[list[Hit], str]:
    """(hits, error in Chinese or "")."""
    text, error = user_text(query, ctx.settings.max_message_chars)
    if error:
        return [], error.replace("消息", "检索词")
    mode = MODES.get(mode_label, "hybrid")
    try:
        k = max(1, min(MAX_TOP_K, int(top_k)))
    except (TypeError, ValueError):
        k = 10
    filters = SearchFilters(
        licences=tuple(licences or ()), topics=tuple(topics or ()), doc_ids=tuple(docs or ())
    )
    try:
        return ctx.kb().search(text, k, mode=mode, filters=filters), ""
    except Exception as exc:  # noqa: BLE001 - one failed search must not break the page
        return [], friendly_error(exc)


def build_consultant_tab(ctx: AppContext) -> dict[str, Any]:
    """Lay out the tab inside the current Blocks context; returns the components others need."""
    locked = ctx.consultant_locked
    unlocked = gr.State(not locked)
    hits_state = gr.State([])
    lic_choices, topic_choices = filter_choices()

    with gr.Column(visible=locked, elem_id="kb-lock") as lock_box:
        gr.Markdown("### 顾问检索台\n此区域仅供顾问使用，请输入顾问密码。")
        with gr.Row():
            password = gr.Textbox(label="顾问密码", type="password", elem_id="kb-password", scale=4)
            unlock_btn = gr.Button("解锁", variant="primary", elem_id="kb-unlock", scale=1)
        lock_msg = gr.Markdown("", elem_id="kb-lock-msg")

    with gr.Column(visible=not locked, elem_id="kb-workspace") as workspace:
        with gr.Row():
            query = gr.Textbox(label="检索词", placeholder="例如：人员社保 续期 材料", scale=4, elem_id="kb-query")
            mode = gr.Radio(list(MODES), value="混合", label="检索方式", scale=2, elem_id="kb-mode")
            top_k = gr.Slider(1, MAX_TOP_K, value=10, step=1, label="结果数", scale=1, elem_id="kb-topk")
        with gr.Row():
            f_lic = gr.Dropdown(lic_choices, multiselect=True, label="许可证", elem_id="kb-filter-licence")
            f_topic = gr.Dropdown(topic_choices, multiselect=True, label="主题", elem_id="kb-filter-topic")
            f_doc = gr.Dropdown([], multiselect=True, label="文档", elem_id="kb-filter-doc")
        search_btn = gr.Button("检索", variant="primary", elem_id="kb-search")
        results = gr.HTML("", elem_id="kb-results")
        with gr.Row():
            csv_btn = gr.DownloadButton("导出 CSV", visible=False, size="sm", elem_id="kb-export-csv")
            md_btn = gr.DownloadButton("导出 Markdown", visible=False, size="sm", elem_id="kb-export-md")
        pick = gr.Radio([], label="打开结果（点击查看整篇文档）", elem_id="kb-pick")
        cite = gr.Textbox(label="引用（可复制）", buttons=["copy"], interactive=False, elem_id="kb-cite")
        doc_view = gr.HTML("", elem_id="kb-doc")
        with gr.Accordion("索引状态", open=True):
            status_md = gr.Markdown("", elem_id="kb-status")
            with gr.Row():
                refresh_btn = gr.Button("刷新状态", size="sm", elem_id="kb-refresh")
                reload_btn = gr.Button("重新加载索引", size="sm", elem_id="kb-reload")
            reload_msg = gr.Markdown("", elem_id="kb-reload-msg")

    # -- handlers ---------------------------------------------------------------------------
    def panel(is_unlocked: bool):
        if not is_unlocked:
            return "", gr.update()
        try:
            return status_markdown(ctx.live.status()), gr.update(choices=document_choices(ctx))
        except Exception as exc:  # noqa: BLE001
            return md_escape(friendly_error(exc)), gr.update()

    def unlock(given: str, is_unlocked: bool):
        if ctx.password_ok(given):
            md, docs = panel(True)
            return True, gr.update(visible=False), gr.update(visible=True), "", gr.update(value=""), md, docs
        time.sleep(_FAILED_UNLOCK_DELAY_S)
        log.info("Consultant unlock refused (wrong password)")  # never the password itself
        return (
            is_unlocked, gr.update(visible=True), gr.update(visible=is_unlocked),
            "❌ 密码不正确，请重试。", gr.update(value=""), gr.update(), gr.update(),
        )

    def search(q, mode_label, k, lic, topic, docs, is_unlocked):
        if not is_unlocked:
            return [], LOCKED, gr.update(choices=[], value=None), gr.update(visible=False), gr.update(visible=False), "", ""
        hits, error = run_search(ctx, q, mode_label, k, lic, topic, docs)
        if error:
            return [], f'<div class="kb-empty">{escape(error)}</div>', gr.update(choices=[], value=None), \
                gr.update(visible=False), gr.update(visible=False), "", ""
        text = q.strip()
        csv_path = ctx.write_file("kb-search.csv", results_csv(hits)) if hits else None
        md_path = ctx.write_file("kb-search.md", results_markdown(hits, text, mode_label)) if hits else None
        choices = [(citation_label(h.rank, h), str(i)) for i, h in enumerate(hits)]
        return (
            hits,
            results_html(hits, text),
            gr.update(choices=choices, value=None),
            gr.update(value=csv_path, visible=bool(hits)),
            gr.update(value=md_path, visible=bool(hits)),
            "",
            "",
        )

    def open_result(choice, hits, is_unlocked):
        if not is_unlocked or choice is None:
            return "", ""
        try:
            hit = hits[int(choice)]
        except (ValueError, IndexError, TypeError):
            return "", ""
        doc = ctx.kb().document(hit.doc_id)
        return citation_text(hit), document_html(doc, hit, hit.matched_terms)

    def reload(is_unlocked: bool):
        if not is_unlocked:
            return LOCKED, ""
        try:
            result = ctx.live.reload()
        except Exception as exc:  # noqa: BLE001
            return md_escape(friendly_error(exc)), gr.update()
        words = {"swapped": "✅ 已切换到新的索引构建", "unchanged": "索引没有变化", "refused": "❌ 新的构建无法使用，继续使用当前索引"}
        msg = f"{words.get(result.status, result.status)}：`{result.build_id}`"
        if result.reason:
            msg += f"（{md_escape(result.reason)}）"
        md, _ = panel(True)
        return msg, md

    unlock_btn.click(
        unlock, [password, unlocked], [unlocked, lock_box, workspace, lock_msg, password, status_md, f_doc],
        api_visibility="private",
    )
    password.submit(
        unlock, [password, unlocked], [unlocked, lock_box, workspace, lock_msg, password, status_md, f_doc],
        api_visibility="private",
    )
    search_outputs = [hits_state, results, pick, csv_btn, md_btn, cite, doc_view]
    search_inputs = [query, mode, top_k, f_lic, f_topic, f_doc, unlocked]
    search_btn.click(search, search_inputs, search_outputs, api_visibility="private")
    query.submit(search, search_inputs, search_outputs, api_visibility="private")
    pick.change(open_result, [pick, hits_state, unlocked], [cite, doc_view], api_visibility="private").then(
        None, js=scroll_js("#kb-doc")
    )
    refresh_btn.click(panel, [unlocked], [status_md, f_doc], api_visibility="private")
    reload_btn.click(reload, [unlocked], [reload_msg, status_md], api_visibility="private")
    return {"unlocked": unlocked, "panel": panel, "status_md": status_md, "f_doc": f_doc}
