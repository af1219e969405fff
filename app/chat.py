"""The public chat: streamed answers, citations that open their passage, the deadline box, the .ics.

One `Conversation` per browser session lives in a `gr.State`; 「重新开始」 replaces it. Nothing the
user types is logged or written to disk (the .ics download holds dates and the licence name only).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.context import AppContext, friendly_error
from app.render import citation_label, deadline_html, document_html, md_escape, passage_html, scroll_js, user_text

EXAMPLES = [
    "我们呼叫中心证续期被驳回了，说材料不齐，证是明年3月15号到期的，还来得及吗",
    "ICP证还有两个月到期，现在申请续期还来得及吗？",
    "公司股东变了没去报备，呼叫中心证续期会受影响吗",
    "网络文化经营许可证上个月已经过期了，怎么办",
    "续期需要准备哪些材料？",
]
WELCOME = (
    "您好，我是续证助手。请描述您的情况：**哪种许可证**、**续期遇到了什么问题**、**证件哪天到期**。"
    "我会根据知识库给出应对措施和时间提醒，每条建议都注明出处。"
)
NOT_GROUNDED = "⚠️ 知识库中没有找到与这个问题直接相关的内容，以上回复不是依据知识库条文作出的。"


def new_conversation() -> Any:
    from kb.conversation import Conversation

    return Conversation()


def _estimated_from(situation: Any) -> str | None:
    """What an expiry was worked out from (the user's words, or the issue date and the validity),
    unless the user gave the exact date."""
    if situation.expires_on is None or situation.date_precision == "day":
        return None
    if situation.issued_on is not None:
        return f"发证日期“{situation.date_text}”和有效期"
    return f"“{situation.date_text}”"


def _citation_update(hits: list) -> dict:
    choices = [(citation_label(n, hit), str(n)) for n, hit in enumerate(hits, start=1)]
    return gr.update(choices=choices, value=None, visible=bool(choices))


def build_chat_tab(ctx: AppContext) -> dict[str, Any]:
    conversation = gr.State(None)
    hits_state = gr.State([])

    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                value=[{"role": "assistant", "content": WELCOME}],
                label="续证助手",
                height=520,
                elem_id="kb-chatbot",
                # Markdown from the corpus and users is sanitised by Gradio (DOMPurify); no custom
                # tags are let through either.
                sanitize_html=True,
                allow_tags=False,
                feedback_options=None,
                buttons=["copy"],
            )
            with gr.Row():
                message = gr.Textbox(
                    placeholder=f"描述您的许可证情况（最多 {ctx.settings.max_message_chars} 字），按回车发送",
                    show_label=False, scale=5, elem_id="kb-message", max_lines=6,
                )
                send = gr.Button("发送", variant="primary", scale=1, elem_id="kb-send")
            gr.Examples(EXAMPLES, inputs=[message], label="示例问题")
            reset = gr.Button("重新开始", elem_id="kb-reset")
        with gr.Column(scale=2):
            notice = gr.Markdown("", visible=False, elem_id="kb-notice", elem_classes=["kb-notice"])
            gr.Markdown("#### 时间提醒")
            deadline_box = gr.HTML(deadline_html(None), elem_id="kb-deadline")
            ics = gr.DownloadButton("下载日历提醒（.ics）", visible=False, elem_id="kb-ics")
            gr.Markdown("#### 查看引用")
            cite_pick = gr.Radio([], label="点击引用 [n] 查看原文段落", visible=False, elem_id="kb-cite-pick")
            passage = gr.HTML("", elem_id="kb-passage-view")
            cited_doc = gr.HTML("", elem_id="kb-cited-doc")

    outputs = [chatbot, message, conversation, hits_state, notice, deadline_box, ics, cite_pick, passage, cited_doc]

    def respond(text: str, history: list, conv: Any):
        history = list(history or [])
        clean, error = user_text(text, ctx.settings.max_message_chars)
        if error:
            shown = md_escape(text[:200] + ("…" if len(text or "") > 200 else "")) if isinstance(text, str) else ""
            if shown.strip():
                history.append({"role": "user", "content": shown})
            history.append({"role": "assistant", "content": f"⚠️ {error}"})
            yield history, gr.update(), conv, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        conv = conv if conv is not None else new_conversation()
        # The user's own words are shown as typed: escaped, so Markdown/HTML in them stays text.
        history.append({"role": "user", "content": md_escape(clean)})
        history.append({"role": "assistant", "content": "正在查找相关条文…"})
        yield history, "", conv, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        answer = None
        try:
            kb = ctx.kb()
            for answer in kb.ask_stream(clean, conv):
                history[-1] = {"role": "assistant", "content": answer.markdown}
                if not answer.complete:
                    yield history, gr.skip(), conv, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), \
                        gr.skip()
        except Exception as exc:  # noqa: BLE001 - the session must survive a failed request
            history[-1] = {"role": "assistant", "content": f"⚠️ {md_escape(friendly_error(exc))}"}
            yield history, gr.skip(), conv, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if answer is None:
            return
        kind = getattr(answer, "kind", "answer")
        if kind == "reset":  # the user typed 「重新开始」: same as the button
            yield (history, *restart(conv)[1:])
            return
        hits = list(answer.hits)
        notes = []
        if not answer.grounded and kind in ("answer", "offtopic"):
            notes.append(NOT_GROUNDED)
        if getattr(answer, "notice", ""):
            notes.append(md_escape(answer.notice))
        ics_text = answer.ics()
        ics_path = ctx.write_file("renewal-deadlines.ics", ics_text) if ics_text else None
        yield (
            history,
            gr.skip(),
            conv,
            hits,
            gr.update(value="\n\n".join(notes), visible=bool(notes)),
            deadline_html(answer.deadline, answer.situation.applied, _estimated_from(answer.situation),
                          answer.situation.filed),
            gr.update(value=ics_path, visible=bool(ics_path)),
            _citation_update(hits),
            "",
            "",
        )

    def open_citation(choice: Any, hits: list):
        try:
            n = int(choice)
            hit = hits[n - 1]
        except (TypeError, ValueError, IndexError):
            return "", ""
        doc = ctx.kb().document(hit.doc_id)
        return passage_html(hit, n), document_html(doc, hit, hit.matched_terms)

    def restart(conv: Any):
        if conv is not None:
            conv.reset()
        return (
            [{"role": "assistant", "content": WELCOME}], "", conv, [], gr.update(value="", visible=False),
            deadline_html(None), gr.update(value=None, visible=False), _citation_update([]), "", "",
        )

    # Trigger mode "once": a second Enter while an answer streams is ignored, so one session never
    # runs two turns on its Conversation at the same time.
    send.click(respond, [message, chatbot, conversation], outputs, trigger_mode="once", api_visibility="private")
    message.submit(respond, [message, chatbot, conversation], outputs, trigger_mode="once", api_visibility="private")
    cite_pick.change(open_citation, [cite_pick, hits_state], [passage, cited_doc], api_visibility="private").then(
        None, js=scroll_js("#kb-cited-doc")
    )
    reset.click(restart, [conversation], outputs, api_visibility="private")
    return {"chatbot": chatbot}
