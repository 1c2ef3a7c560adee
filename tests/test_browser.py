"""The pages as a user sees them: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against the
real app on a loopback port, on a phone (390×844) and a desktop (1440×900). Screenshots land in artifacts/
(git-ignored) for a human to look at."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from assistant.api import create_app
from assistant.config import REPO_ROOT
from assistant.feedback import FeedbackStore
from assistant.records import Answer, Citation
from servers import live_app, service_assistant
from ui.cards import presented

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                      "(apt-get install chromium); CI installs it"),
]

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWER_TIMEOUT = 30_000  # ms: one streamed answer, first-call warm-up included
ELECTRICIAN = "电工证什么时候退出目录？"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
SIZES = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]


@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    with live_app(assistant, tmp_path_factory.mktemp("browser")) as pair:
        yield pair


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield b
        b.close()


@contextmanager
def new_page(browser, base: str, viewport: dict, locale: str = "zh-CN"):
    phone = viewport["width"] < 500
    context = browser.new_context(locale=locale, viewport=viewport, base_url=base, is_mobile=phone, has_touch=phone,
                                  accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    context.set_default_timeout(20_000)
    # Anything that leaves the loopback server is a bug (or a CDN the page should not need): block and record it.
    external: list[str] = []

    def block(route):
        external.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!" + re.escape(base) + r"|data:|blob:|about:).*"), block)
    pg = context.new_page()
    pg.external = external
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture()
def page(browser, served):
    with new_page(browser, served[0], DESKTOP) as pg:
        yield pg


def open_chat(page: Page, path: str = "/") -> None:
    page.goto(path, wait_until="load")
    expect(page.locator("#pna-question")).to_be_visible()


def ask(page: Page, question: str) -> None:
    page.locator("#pna-question").fill(question)
    page.locator("#pna-send").click()


def turn(page: Page, i: int):
    return page.locator(f"#pna-chat-root .pna-turn[data-turn='{i}']")


def answered(page: Page, i: int):
    """Turn i once its answer is complete (the copy/feedback row appears last)."""
    t = turn(page, i)
    expect(t.locator(".pna-actions")).to_be_visible(timeout=ANSWER_TIMEOUT)
    return t


def in_viewport(page: Page, locator) -> bool:
    box = locator.bounding_box()
    vp = page.viewport_size
    return box is not None and box["y"] >= 0 and box["x"] >= 0 and box["y"] + box["height"] <= vp["height"] + 0.5 \
        and box["x"] + box["width"] <= vp["width"] + 0.5


def common_questions(page: Page):
    """The common-question buttons above the input: in a row on a desktop, behind 常见问题 on a phone."""
    row = page.locator("#pna-chat-root .pna-chips .pna-chip")
    if row.first.is_visible():
        return row
    page.locator("#pna-examples").click()
    menu = page.locator("#pna-examples-menu .pna-chip")
    expect(menu.first).to_be_visible()
    return menu


def assert_page_not_scrolled(page: Page) -> None:
    assert page.evaluate("window.scrollY") == 0 and page.evaluate("window.scrollX") == 0


# ---- the core flow ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("viewport", SIZES)
def test_core_flow_without_scrolling_the_page(browser, served, viewport):
    """Ask, read the first sentence, open a source, ask a follow-up, copy: all in the first screen."""
    base, assistant = served
    name = "phone" if viewport is PHONE else "desktop"
    with new_page(browser, base, viewport) as page:
        open_chat(page)
        title = page.locator(".pna-header h1")
        expect(title).to_contain_text("职业资格退出目录政策问答")
        assert title.bounding_box()["height"] < 40  # one line
        for control in (page.locator("#pna-question"), page.locator("#pna-send"), page.locator("#pna-new"),
                        page.locator("#pna-export")):
            assert in_viewport(page, control), control
        for chip in common_questions(page).all():
            assert in_viewport(page, chip), chip
        if viewport is PHONE:
            page.locator("#pna-examples").click()  # close the list again
        expect(page.locator("#pna-examples-menu .pna-chip").first).to_be_hidden()
        page.screenshot(path=str(ARTIFACTS / f"chat-{name}-empty.png"))

        ask(page, ELECTRICIAN)
        first = answered(page, 0)
        lead = first.locator(".pna-lead")
        expect(lead).to_have_text(re.compile(r"第二批.*2020年12月31日前"))
        assert in_viewport(page, lead)
        # The first source is open, as labelled fields; the others are closed.
        cards = first.locator("details.pna-card")
        expect(cards).to_have_count(2)
        expect(cards.nth(0)).to_have_attribute("open", "")
        fields = cards.nth(0).locator("dl")
        for label, value in (("序号", "1"), ("类别（职业资格名称）", "机械设备修理人员"), ("职业", "电工"),
                             ("实施部门", "应急管理部、人力资源和社会保障部"), ("批次与时间", "第二批，2020年12月31日前退出")):
            expect(fields.locator("dt", has_text=label).first).to_be_visible()
            expect(fields.locator("dd", has_text=value).first).to_be_visible()
        expect(cards.nth(1)).not_to_have_attribute("open", "")
        cards.nth(1).locator("summary").first.click()  # [2] 第二条: the quoted sentence, the whole clause on request
        quote = cards.nth(1).locator("blockquote")
        expect(quote).to_contain_text("第二批退出")
        assert in_viewport(page, quote)
        cards.nth(1).locator(".pna-clause summary").click()
        expect(cards.nth(1).locator(".pna-clause p")).to_contain_text("二、今年年底前")
        page.screenshot(path=str(ARTIFACTS / f"chat-{name}-answer.png"))

        # Copy: the answer and its numbered sources as plain text.
        first.locator(".pna-copy").click()
        expect(first.locator(".pna-copy")).to_have_text("已复制")
        copied = page.evaluate("navigator.clipboard.readText()")
        expected = presented(assistant.ask(ELECTRICIAN), assistant.corpus, assistant.profile)["plain"]
        assert copied == expected
        assert "[1] 附件第1项「机械设备修理人员」：电工" in copied and "[2] 第二条：「" in copied and "*" not in copied

        # A suggested follow-up under the answer: one tap asks it.
        follow_ups = first.locator(".pna-followup")
        assert follow_ups.count() >= 2
        nxt = follow_ups.first
        question = nxt.inner_text()
        assert in_viewport(page, nxt)
        nxt.click()
        second = answered(page, 1)
        expect(second.locator(".pna-q")).to_have_text(question)
        # The new answer is shown from its start: its question at the top of the chat.
        log_top = page.locator("#pna-chat-root .pna-log").bounding_box()["y"]
        assert abs(second.bounding_box()["y"] - log_top) < 24
        assert in_viewport(page, second.locator(".pna-lead"))
        assert_page_not_scrolled(page)
        page.screenshot(path=str(ARTIFACTS / f"chat-{name}-follow-up.png"))

        # A reload keeps the conversation.
        page.reload(wait_until="load")
        answered(page, 1)
        expect(turn(page, 0).locator(".pna-q")).to_have_text(ELECTRICIAN)
        expect(turn(page, 0).locator(".pna-lead")).to_contain_text("第二批")
        assert_page_not_scrolled(page)
        assert page.external == []


def seeded_answer(assistant) -> dict:
    """A hand-built answer in the shape the answerer is moving to: markers, follow-ups, a summarised list."""
    answer = Answer(
        question="第二批有哪些？", answered=True,
        answer="第二批共66项职业资格（涉及156个职业），拟于2020年12月31日前退出目录[1]。\n- 例如电工[2]\n- 如[附件第1项]",
        citations=[Citation(source="notice", clause=2, label="第二条", marker=1,
                            quote="其他部门（单位）组织实施的 66 项职业资格（涉及 156 个职业）拟于 12 月 31 日前第二批退出。"),
                   Citation(source="annex", item=1, label="附件第1项", marker=2,
                            quote="1 机械设备修理人员 电工 应急管理部、人力资源和社会保障部 2")],
        follow_ups=["退出目录前发的证书还有效吗？", "退出后怎么评价技能？"], annex_filter={"batch": "2"})
    return presented(answer, assistant.corpus, assistant.profile)


def test_follow_ups_markers_and_the_annex_link_of_an_answer(browser, served):
    base, assistant = served
    with new_page(browser, base, PHONE) as page:
        open_chat(page)
        state = {"v": 1, "draft": "", "turns": [{"question": "第二批有哪些？", "data": seeded_answer(assistant)}]}
        page.evaluate("s => localStorage.setItem('pna-chat:chat', s)", json.dumps(state, ensure_ascii=False))
        page.reload(wait_until="load")
        first = answered(page, 0)
        expect(first.locator(".pna-a-text li")).to_have_count(2)
        # A marker naming its source, as generated answers write them, is numbered like the cards.
        expect(first.locator(".pna-a-text li").nth(1)).to_have_text("如[2]")
        # A marker opens its source card.
        expect(first.locator("details.pna-card").nth(1)).not_to_have_attribute("open", "")
        first.locator(".pna-ref", has_text="[2]").last.click()
        expect(first.locator("details.pna-card").nth(1)).to_have_attribute("open", "")
        expect(first.locator("details.pna-card").nth(1)).to_contain_text("机械设备修理人员")
        # Suggested follow-ups are asked with one tap, against the real assistant.
        chips = first.locator(".pna-followup")
        expect(chips).to_have_text(["退出目录前发的证书还有效吗？", "退出后怎么评价技能？"])
        chips.first.click()
        second = answered(page, 1)
        expect(second.locator(".pna-lead")).to_contain_text("继续有效")
        assert_page_not_scrolled(page)
        # The summarised list links to the annex tab, filtered to that batch; the conversation stays.
        with page.expect_navigation(url="**annex=1**", timeout=ANSWER_TIMEOUT):  # a new page load, not a tab switch
            turn(page, 0).locator(".pna-annex-link a").click()
        expect(page.locator("#pna-annex-count")).to_have_text("显示 156 / 192 行", timeout=ANSWER_TIMEOUT)
        page.screenshot(path=str(ARTIFACTS / "annex-from-answer-phone.png"))
        page.get_by_role("tab", name="智能问答").click()
        answered(page, 1)


# ---- the conversation outlives the server ------------------------------------------------------------------

@contextmanager
def serve_on(app, port: int):
    """The app under uvicorn on 127.0.0.1:`port` (a port chosen by the test, so that it can come back there)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1,
                                           timeout_keep_alive=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_conversation_survives_a_server_restart_and_a_question_asked_while_it_is_down(browser, assistant, tmp_path):
    served = service_assistant(assistant, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with new_page(browser, base, PHONE) as page:
        with serve_on(create_app(served), port):
            open_chat(page)
            ask(page, ELECTRICIAN)
            answered(page, 0)
        # The server is gone. The page stays, and a question asked now is kept, with a message in Chinese.
        ask(page, "美容师是第几批？")
        status = page.locator("#pna-chat-root .pna-status")
        expect(status).to_have_text("暂时连不上服务器。您的问题已保留，连接恢复后会自动发送。", timeout=ANSWER_TIMEOUT)
        expect(turn(page, 1).locator(".pna-q")).to_have_text("美容师是第几批？")
        expect(turn(page, 1).locator(".pna-typing")).to_have_text("等待连接，恢复后自动发送…")
        page.screenshot(path=str(ARTIFACTS / "chat-phone-offline.png"))
        with serve_on(create_app(served), port):
            # Back: the kept question is sent by itself, the earlier answer is still there.
            second = answered(page, 1)
            expect(second.locator(".pna-lead")).to_contain_text("第一批")
            expect(status).to_have_text("已重新连接。")
            expect(turn(page, 0).locator(".pna-lead")).to_contain_text("第二批")
            page.reload(wait_until="load")
            answered(page, 1)
            expect(turn(page, 0).locator(".pna-q")).to_have_text(ELECTRICIAN)
            body = page.locator("body").inner_text()
            assert not re.search(r"Connection|error|Error|lost", body), body


# ---- helpdesk: export -------------------------------------------------------------------------------------

def test_export_downloads_the_whole_conversation_as_plain_text(browser, served, tmp_path):
    base, assistant = served
    with new_page(browser, base, DESKTOP) as page:
        open_chat(page)
        ask(page, ELECTRICIAN)
        answered(page, 0)
        ask(page, "今天天气怎么样")
        answered(page, 1)
        with page.expect_download() as download:
            page.locator("#pna-export").click()
        assert download.value.suggested_filename.startswith("政策问答对话记录-")
        assert download.value.suggested_filename.endswith(".txt")
        path = tmp_path / "export.txt"
        download.value.save_as(path)
        text = path.read_text(encoding="utf-8-sig")
        assert text.startswith("职业资格退出目录政策问答（人社厅发〔2020〕80号）对话记录\n导出时间：")
        electrician = presented(assistant.ask(ELECTRICIAN), assistant.corpus, assistant.profile)["plain"]
        weather = presented(assistant.ask("今天天气怎么样"), assistant.corpus, assistant.profile)["plain"]
        assert f"问1：{ELECTRICIAN}\n答：{electrician}\n\n问2：今天天气怎么样\n答：{weather}\n" in text
        assert "*" not in text and "<" not in text


# ---- safety, feedback, the annex tab, language ---------------------------------------------------------------

def test_user_text_is_shown_literally_never_run(page):
    open_chat(page)
    payload = "<img src=x onerror=alert(1)> **粗** [链接](javascript:alert(2)) `代码` www.example.com\n1. 列表\n# 标题"
    ask(page, payload)
    answered(page, 0)
    expect(turn(page, 0).locator(".pna-q .pna-bubble")).to_have_text(payload)
    chat = page.locator("#pna-chat-root")
    assert chat.locator("img, script, strong, code, h1").count() == 0
    assert chat.locator("a").count() == turn(page, 0).locator("a.pna-ref, .pna-annex-link a").count()
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_feedback_is_stored_with_the_answer(page, served):
    _, assistant = served
    open_chat(page)
    ask(page, ELECTRICIAN)
    first = answered(page, 0)
    before = len(FeedbackStore(assistant.config.feedback_db).rows())
    first.get_by_role("button", name="没用").click()
    note = first.locator(".pna-comment textarea")
    expect(note).to_be_visible()
    expect(first.get_by_role("button", name="没用")).to_have_attribute("aria-pressed", "true")
    note.fill("希望同时说明证书是否有效")
    first.get_by_role("button", name="提交说明").click()
    expect(first.locator(".pna-feedback-status")).to_have_text("已收到您的补充说明，谢谢！")
    rows = FeedbackStore(assistant.config.feedback_db).rows()
    assert len(rows) == before + 1
    row = rows[-1]
    assert (row["question"], row["rating"], row["comment"], row["channel"]) == (
        ELECTRICIAN, "down", "希望同时说明证书是否有效", "chat")
    assert "第二批" in row["answer"] and "附件第1项" in [c["label"] for c in row["citations"]]


def test_annex_tab_lists_and_filters_the_annex(page):
    open_chat(page)
    page.get_by_role("tab", name="附件目录").click()
    count = page.locator("#pna-annex-count")
    expect(count).to_have_text("显示 192 / 192 行")
    table = page.locator("#pna-annex-table")
    expect(table).to_contain_text("职业资格名称")
    expect(page.locator("#pna-annex-by-batch")).to_contain_text("第一批")
    expect(page.locator("#pna-annex-by-dept")).to_contain_text("人力资源和社会保障部")

    page.locator("#pna-annex-keyword textarea").fill("美容")
    expect(count).to_have_text(re.compile(r"显示 [1-9]\d? / 192 行"))
    expect(table).to_contain_text("美容师")
    expect(table).not_to_contain_text("电工")

    page.locator("#pna-annex-keyword textarea").fill("")
    page.locator("#pna-annex-dept input").click()
    page.get_by_role("option", name=re.compile("^国家中医药管理局")).click()
    expect(count).to_have_text("显示 3 / 192 行")
    expect(table).to_contain_text("中医")
    page.screenshot(path=str(ARTIFACTS / "annex.png"), full_page=True)


ENGLISH = re.compile(r"[A-Za-z]{3,}")  # any English word (the one allowed is "HTTP API", a name)


@pytest.mark.parametrize("path", ["/", "/widget/"])
def test_pages_are_chinese_even_for_an_english_browser(browser, served, path):
    with new_page(browser, served[0], DESKTOP, locale="en-US") as page:
        open_chat(page, path)
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        if path == "/":
            page.get_by_role("tab", name="附件目录").click()
            expect(page.locator("#pna-annex-count")).to_be_visible()
        page.wait_for_timeout(500)
        visible = page.locator("body").inner_text().replace("HTTP API", "")
        labels = " ".join(page.eval_on_selector_all(
            "[aria-label], [title], [placeholder], [alt]",
            "els => els.map(e => ['aria-label', 'title', 'placeholder', 'alt'].map(a => e.getAttribute(a))"
            ".filter(Boolean).join(' '))"))
        assert ENGLISH.findall(visible) == []
        assert ENGLISH.findall(labels) == []


# ---- the widget --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("viewport", [pytest.param(PHONE, id="phone"), pytest.param({"width": 1100, "height": 780},
                                                                                    id="desktop")])
def test_widget_demo_page_embeds_the_widget(browser, served, viewport):
    base, assistant = served
    name = "phone" if viewport is PHONE else "desktop"
    with new_page(browser, base, viewport) as page:
        page.goto("/widget-demo", wait_until="load")
        expect(page.get_by_role("heading", name="某市人力资源和社会保障局")).to_be_visible()
        launcher = page.get_by_role("button", name="政策问答")
        expect(launcher).to_have_attribute("aria-expanded", "false")
        assert page.locator("iframe.pna-w-frame").get_attribute("src") is None  # nothing loaded before first open
        launcher.click()
        expect(page.locator(".pna-w-panel")).to_be_visible()
        widget = page.frame_locator("iframe.pna-w-frame")
        widget.locator(".pna-empty .pna-chip", has_text="美容师是第几批？").click()  # an example in the empty chat
        first = widget.locator(".pna-turn[data-turn='0']")
        expect(first.locator(".pna-actions")).to_be_visible(timeout=ANSWER_TIMEOUT)
        expect(first.locator(".pna-lead")).to_contain_text("第一批")
        expect(first.locator("details.pna-card").first).to_contain_text("附件第57项")
        first.get_by_role("button", name="没用").click()
        comment = first.locator(".pna-comment textarea")
        expect(comment).to_be_visible()
        # The launcher never covers the panel: not its comment box, not its input.
        panel = page.locator(".pna-w-panel").bounding_box()
        if launcher.is_visible():
            button = launcher.bounding_box()
            assert button["y"] >= panel["y"] + panel["height"] or button["x"] >= panel["x"] + panel["width"] \
                or button["y"] + button["height"] <= panel["y"], (button, panel)
        for target in (comment, widget.locator("#pna-question"), widget.locator("#pna-send")):
            box = target.bounding_box()
            hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).className",
                                [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
            assert hit == "pna-w-frame", hit
        page.screenshot(path=str(ARTIFACTS / f"widget-{name}.png"))
        assert FeedbackStore(assistant.config.feedback_db).rows()[-1]["channel"] == "widget"
        page.get_by_role("button", name="关闭").click()
        expect(launcher).to_have_attribute("aria-expanded", "false")
        expect(page.locator(".pna-w-panel")).to_be_hidden()
        expect(launcher).to_be_visible()


def test_pages_load_nothing_from_other_hosts(page):
    """No CDN, font service or analytics: the pages work on a network that only reaches the assistant."""
    for path in ("/", "/widget/", "/widget-demo"):
        page.goto(path, wait_until="load")
        expect(page.locator("body")).to_be_visible()
        page.wait_for_timeout(1500)
    assert page.external == []
