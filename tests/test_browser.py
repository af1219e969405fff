"""End-to-end in Debian's Chromium (headless, Playwright with executable_path; no browser download)
against the real app on a loopback port with a small index built with the real model.

One server and one browser per module. Every page records JavaScript dialogs: the payloads in the
hostile corpus document and in typed messages would call alert() and set window.__xss if any of
them ran, so each test ends by asserting that neither happened.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from app_support import CONSULTANT_PASSWORD as PASSWORD
from app_support import XSS_DOC

pytestmark = [
    pytest.mark.browser,
    # Gradio's queue metrics call a pandas API deprecated in pandas 3: noise, not ours.
    pytest.mark.filterwarnings("ignore:::gradio.queueing"),
]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS = Path(__file__).resolve().parent.parent / "docs"
TIMEOUT = 90_000  # ms; the first answer pays for warming the model on a busy 2-core machine

if CHROMIUM is None:
    pytest.skip("no chromium on PATH: run `make browser` (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale="zh-CN")
    context.set_default_timeout(TIMEOUT)
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]

    def on_dialog(dialog):  # noqa: ANN001
        pg.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    yield pg
    assert pg.dialogs == [], f"a script ran: dialogs {pg.dialogs}"  # type: ignore[attr-defined]
    assert pg.evaluate("window.__xss") is None, "an injected script set window.__xss"
    context.close()


def screenshot(pg, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(path, DOCS / f"screenshot-{name}.png")


def send(pg, text: str) -> None:  # noqa: ANN001
    box = pg.locator("#kb-message textarea")
    box.fill(text)
    box.press("Enter")


def last_bot(pg):  # noqa: ANN001
    return pg.locator("#kb-chatbot .message.bot, #kb-chatbot [data-testid=bot]").last


def wait_answer(pg) -> None:  # noqa: ANN001
    """Wait until citations are offered or the not-grounded notice appears: the answer is complete."""
    pg.wait_for_function(
        "() => !document.querySelector('#kb-chatbot .pending') && "
        "(document.querySelector('#kb-cite-pick')?.offsetParent !== null || "
        " document.querySelector('#kb-notice')?.offsetParent !== null)",
        timeout=TIMEOUT,
    )


def pick_option(pg, dropdown: str, label: str) -> None:  # noqa: ANN001
    pg.locator(f"{dropdown} input").click()
    pg.get_by_role("option", name=label).click()
    pg.keyboard.press("Escape")


# -- chat -------------------------------------------------------------------------------------
def test_chat_answer_citation_deadline_ics_and_reset(server, page):
    page.goto(server.url)
    send(page, "我们呼叫中心证续期被驳回了，说材料不齐，证是明年3月15号到期的，还来得及吗")
    expires = date(date.today().year + 1, 3, 15)
    deadline = page.locator("#kb-deadline")
    deadline.get_by_text(f"{expires.year}年3月15日", exact=True).wait_for()
    assert "最晚申请日" in deadline.inner_text() and "已被驳回" in deadline.inner_text()
    assert f"{expires.year - 1}年12月15日" in deadline.inner_text() and "推算" not in deadline.inner_text()
    wait_answer(page)
    answer = last_bot(page).inner_text()
    assert "[1]" in answer and "情况判断" in answer

    # Open citation [1]: the passage and its place in the document are shown.
    page.locator("#kb-cite-pick label").first.click()
    page.locator("#kb-passage-view .kb-hit").wait_for()
    assert page.locator("#kb-passage-view").inner_text().startswith("[1]")
    page.locator("#kb-cited-doc #kb-passage").wait_for(state="attached")

    with page.expect_download() as info:
        page.locator("#kb-ics").click()
    ics = Path(info.value.path()).read_text(encoding="utf-8")
    assert ics.startswith("BEGIN:VCALENDAR") and f"DTSTART;VALUE=DATE:{expires:%Y%m%d}" in ics
    screenshot(page, "chat")

    page.locator("#kb-reset").click()
    page.wait_for_function("() => document.querySelectorAll('#kb-chatbot .message-row').length <= 1")
    assert "告诉我许可证的到期日期" in page.locator("#kb-deadline").inner_text()
    assert not page.locator("#kb-ics").is_visible()
    # The conversation really restarted: a follow-up without a licence is not read as 呼叫中心.
    send(page, "还有两个月到期")
    page.locator("#kb-deadline .kb-deadline-status").wait_for()
    assert "未说明许可证种类" in page.locator("#kb-deadline").inner_text()
    assert "推算的，请以证书上写明的日期为准" in page.locator("#kb-deadline").inner_text()


def test_chat_off_topic_and_too_long_messages(server, page):
    page.goto(server.url)
    send(page, "今天晚上吃什么比较好？推荐一道川菜")
    page.locator("#kb-notice").wait_for()
    assert "没有找到" in page.locator("#kb-notice").inner_text()
    send(page, "续" * (server.app.state.kb_context.settings.max_message_chars + 1))
    page.locator("#kb-chatbot", has_text="消息太长").wait_for()


def test_xss_in_message_and_corpus_stays_text(server, page):
    page.goto(server.url)
    payload = (
        '<img src=x onerror="window.__xss=1;alert(1)"> <script>window.__xss=1;alert(2)</script> '
        "[点我](javascript:window.__xss=1) 安全测试文档里的脚本会执行吗"
    )
    send(page, payload)
    user = page.locator("#kb-chatbot .message.user, #kb-chatbot [data-testid=user]").last
    user.wait_for()
    wait_answer(page)
    assert '<img src=x onerror="window.__xss=1;alert(1)">' in user.inner_text()
    assert "[点我](javascript:window.__xss=1)" in user.inner_text()
    assert page.locator("#kb-chatbot img[src='x']").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.locator("#kb-chatbot script").count() == 0


# -- consultant workspace ---------------------------------------------------------------------
def test_consultant_search_with_filter_highlights_and_opens_document(server, page):
    page.goto(server.url)
    page.get_by_role("tab", name="顾问检索台").click()
    pick_option(page, "#kb-filter-licence", "呼叫中心业务（B24）")
    page.locator("#kb-query textarea").fill("安全测试 续期 材料")
    page.locator("#kb-search").click()
    page.locator("#kb-results .kb-hit").first.wait_for()
    titles = page.locator("#kb-results .kb-hit-title").all_inner_texts()
    assert titles and all(("呼叫中心" in t or "安全测试" in t) for t in titles), titles
    assert page.locator("#kb-results mark").count() > 0
    assert "BM25" in page.locator("#kb-results .kb-hit-meta").first.inner_text()
    # The hostile document is listed with its payloads as visible text.
    results_text = page.locator("#kb-results").inner_text()
    assert "<script>window.__xss=1;alert(1)</script>" in results_text

    xss_index = next(i for i, t in enumerate(titles) if "安全测试" in t)
    page.locator("#kb-pick label").nth(xss_index).click()
    page.locator("#kb-doc #kb-passage").wait_for()
    doc_text = page.locator("#kb-doc").inner_text()
    assert '<img src=x onerror="window.__xss=1;alert(1)">' in doc_text
    assert XSS_DOC in page.locator("#kb-cite textarea").input_value()
    assert page.locator("#kb-doc img").count() == 0 and page.locator("#kb-doc script").count() == 0

    with page.expect_download() as info:
        page.locator("#kb-export-csv").click()
    csv_text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert csv_text.startswith("rank,title,section") and XSS_DOC in csv_text
    with page.expect_download() as info:
        page.locator("#kb-export-md").click()
    assert Path(info.value.path()).read_text(encoding="utf-8").startswith("# 检索结果")

    page.locator("#kb-status", has_text="与 corpus/ 一致").wait_for()
    screenshot(page, "search")


def test_consultant_area_needs_the_password(locked_server, page):
    page.goto(locked_server.url)
    page.get_by_role("tab", name="顾问检索台").click()
    page.locator("#kb-password input").wait_for()
    assert not page.locator("#kb-workspace").is_visible()
    page.locator("#kb-password input").fill("wrong")
    page.locator("#kb-unlock").click()
    page.locator("#kb-lock-msg", has_text="密码不正确").wait_for()
    assert not page.locator("#kb-workspace").is_visible()

    page.locator("#kb-password input").fill(PASSWORD)
    page.locator("#kb-unlock").click()
    page.locator("#kb-workspace").wait_for(state="visible")
    assert not page.locator("#kb-password").is_visible()
    page.locator("#kb-query textarea").fill("续期材料")
    page.locator("#kb-search").click()
    page.locator("#kb-results .kb-hit").first.wait_for()
    # The chat tab stays public on the same server.
    page.get_by_role("tab", name="咨询").click()
    send(page, "呼叫中心证续期需要哪些材料")
    wait_answer(page)
