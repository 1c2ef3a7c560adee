"""The pages as a user sees them: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against the
real app on a loopback port, on phones (390×844, 360×640) and a desktop (1440×900), in light and dark. axe-core
(installed from the npm registry into a cache folder on first use) checks accessibility; screenshots land in
artifacts/ (git-ignored) for a human to look at."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
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
SMALL_PHONE = {"width": 360, "height": 640}
DESKTOP = {"width": 1440, "height": 900}
SIZES = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]
ALL_SIZES = [pytest.param(PHONE, id="390"), pytest.param(SMALL_PHONE, id="360"), pytest.param(DESKTOP, id="1440")]
SCHEMES = [pytest.param("light", id="light"), pytest.param("dark", id="dark")]
SECOND_BATCH = "第二批有哪些？"
AXE_VERSION = "4.14.1"
AXE_DIR = Path(os.environ.get("PNA_AXE_DIR") or Path.home() / ".cache" / "pna-tests" / f"axe-core-{AXE_VERSION}")
MIN_CONTRAST = 4.5
MIN_TARGET = 44  # px, tap targets (WCAG 2.5.5)


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


@pytest.fixture(scope="session")
def axe_script() -> str:
    """axe-core from the npm registry, installed once into a cache folder (PNA_AXE_DIR overrides it)."""
    js = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not js.exists():
        npm = shutil.which("npm")
        assert npm, "the accessibility tests need npm (apt-get install npm; scripts/setup.sh test installs it)"
        AXE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", "--prefix",
                        str(AXE_DIR), f"axe-core@{AXE_VERSION}"], check=True, timeout=600)
    return js.read_text(encoding="utf-8")


@contextmanager
def new_page(browser, base: str, viewport: dict, locale: str = "zh-CN", color_scheme: str = "light",
             allow: tuple[str, ...] = ()):
    phone = viewport["width"] < 500
    context = browser.new_context(locale=locale, viewport=viewport, base_url=base, is_mobile=phone, has_touch=phone,
                                  accept_downloads=True, color_scheme=color_scheme)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    context.set_default_timeout(20_000)
    # Anything that leaves the loopback server is a bug (or a CDN the page should not need): block and record it.
    external: list[str] = []

    def block(route):
        external.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!" + "|".join(re.escape(a) for a in (base, *allow)) + r"|data:|blob:|about:).*"),
                  block)
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
    """The common-question buttons: in the empty chat; later by the input, in a row on a desktop, behind 常见问题 on
    a phone (never twice over)."""
    greeting = page.locator("#pna-chat-root .pna-empty-examples .pna-chip")
    if greeting.count():
        expect(page.locator("#pna-examples")).to_be_hidden()
        expect(page.locator("#pna-chat-root .pna-chips")).to_be_hidden()
        return greeting
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
        expect(page.locator("#pna-examples-menu .pna-chip").first).to_be_hidden()
        expect(page.locator("#pna-chat-root .pna-disclaimer")).to_contain_text("以当地人社部门答复为准")
        assert in_viewport(page, page.locator("#pna-chat-root .pna-disclaimer"))
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
        expect(cards.nth(1).locator(".pna-preview")).to_contain_text("第二批退出")  # a preview while closed
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


def test_a_bare_verdict_leads_together_with_what_it_is_about(browser, served):
    """Presentation of a yes/no lead (the answer text is the answerer's): 是。/ 仍然有效。 is bold with its sentence."""
    base, assistant = served
    answer = Answer(question="电工证还有用吗？", answered=True,
                    answer="仍然有效。退出目录前已发放的职业资格证书继续有效[1]。电工属于第二批。",
                    citations=[Citation(source="notice", clause=4, label="第四条", marker=1,
                                        quote="退出目录前已发放的职业资格证书继续有效。")])
    data = presented(answer, assistant.corpus, assistant.profile)
    with new_page(browser, base, PHONE) as page:
        open_chat(page)
        state = {"v": 1, "draft": "", "turns": [{"question": "电工证还有用吗？", "data": data}]}
        page.evaluate("s => localStorage.setItem('pna-chat:chat', s)", json.dumps(state, ensure_ascii=False))
        page.reload(wait_until="load")
        expect(answered(page, 0).locator(".pna-lead")).to_have_text("仍然有效。退出目录前已发放的职业资格证书继续有效[1]。")


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


# ---- colours, accessibility, tap targets ---------------------------------------------------------------------

# The contrast of every visible piece of text in `root` (WCAG relative luminance), its background composed from
# the element up to the page: [{text, ratio}], lowest first.
CONTRAST_JS = """(selector) => {
  const parse = c => { const m = /rgba?\\(([^)]+)\\)/.exec(c); if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const background = el => { const chain = []; for (let n = el; n; n = n.parentElement) chain.unshift(n);
    let c = [255, 255, 255, 1]; for (const n of chain) { const b = parse(getComputedStyle(n).backgroundColor);
      if (b && b[3] > 0) c = over(b, c); } return c; };
  const out = [];
  for (const root of document.querySelectorAll(selector)) {
    for (const el of root.querySelectorAll("*")) {
      const own = Array.from(el.childNodes).filter(n => n.nodeType === 3 && n.textContent.trim()).map(n => n.textContent.trim()).join("");
      if (!own || !el.getClientRects().length || el.closest(".pna-sr")) continue;
      const style = getComputedStyle(el);
      if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
      const fg = over(parse(style.color), background(el)), bg = background(el);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      out.push({ text: own.slice(0, 30), cls: el.className && el.className.baseVal === undefined ? el.className : el.tagName,
                 ratio: Math.round((a + 0.05) / (b + 0.05) * 100) / 100 });
    }
  }
  return out.sort((x, y) => x.ratio - y.ratio);
}"""


def contrasts(frame, selector: str = "#pna-chat-root") -> list[dict]:
    return frame.evaluate(CONTRAST_JS, selector)


def axe_violations(frame, script: str) -> list[dict]:
    frame.evaluate(script)
    return frame.evaluate("""() => axe.run(document).then(r => r.violations.map(v => ({
        id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " + n.failureSummary)})))""")


def ask_and_wait(page_or_frame, question: str, i: int = 0):
    page_or_frame.locator("#pna-question").fill(question)
    page_or_frame.locator("#pna-send").click()
    t = page_or_frame.locator(f"#pna-chat-root .pna-turn[data-turn='{i}']")
    expect(t.locator(".pna-actions")).to_be_visible(timeout=ANSWER_TIMEOUT)
    return t


@pytest.mark.parametrize("scheme", SCHEMES)
def test_text_contrast_is_at_least_4_5_in_light_and_dark(browser, served, scheme):
    """Answer text, source cards, buttons, statuses: every text ≥ 4.5:1 on its background, in the device's scheme."""
    base, _ = served
    with new_page(browser, base, PHONE, color_scheme=scheme) as page:
        open_chat(page)
        expect(page.locator("#pna-chat-root")).to_have_attribute("data-theme", scheme)
        first = ask_and_wait(page, ELECTRICIAN)
        first.locator("details.pna-card").nth(1).locator("summary").first.click()
        page.locator("#pna-new").click()  # the status line with 撤销
        expect(page.locator("#pna-chat-root .pna-status")).to_be_visible()
        measured = contrasts(page)
        page.locator("#pna-chat-root .pna-status button").click()
        answered(page, 0)
        measured += contrasts(page, "#pna-chat-root, .pna-header")
        assert len(measured) > 30
        low = [m for m in measured if m["ratio"] < MIN_CONTRAST]
        assert low == [], low
        print(f"{scheme}: lowest text contrast {measured[0]['ratio']}:1 ({measured[0]['text']})")
        page.screenshot(path=str(ARTIFACTS / f"chat-phone-{scheme}.png"))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("viewport", ALL_SIZES)
def test_axe_finds_no_violations(browser, served, axe_script, viewport, scheme):
    """axe-core's default rules on the chat (empty and with a long list answer), the annex view, the widget page
    and the host page with the widget open: 0 violations, at every size, light and dark."""
    base, _ = served
    with new_page(browser, base, viewport, color_scheme=scheme) as page:
        found = {}
        open_chat(page)
        found["chat-empty"] = axe_violations(page, axe_script)
        ask_and_wait(page, SECOND_BATCH)
        found["chat-answer"] = axe_violations(page, axe_script)
        page.goto("/?annex=1&batch=第二批", wait_until="load")
        expect(page.locator("#pna-annex-count")).to_have_text("显示 156 / 192 行")
        found["annex"] = axe_violations(page, axe_script)
        page.goto("/widget-demo", wait_until="load")
        page.get_by_role("button", name="政策问答").click()
        widget = page.frame_locator("iframe.pna-w-frame")
        ask_and_wait(widget, ELECTRICIAN)
        found["host-with-widget"] = axe_violations(page, axe_script)
        frame = next(f for f in page.frames if "/widget/" in f.url)
        found["widget"] = axe_violations(frame, axe_script)
        assert {k: v for k, v in found.items() if v} == {}


def test_tap_targets_are_at_least_44_px(browser, served):
    base, _ = served
    with new_page(browser, base, PHONE) as page:
        open_chat(page)
        first = ask_and_wait(page, SECOND_BATCH)
        targets = page.locator("#pna-chat-root").locator(
            "a.pna-ref, .pna-act, .pna-chip, .pna-tool, #pna-send, details.pna-card > summary, .pna-clause summary")
        boxes = [(b["width"], b["height"]) for b in (t.bounding_box() for t in targets.all()) if b]
        assert len(boxes) > 80
        small = [b for b in boxes if b[0] < MIN_TARGET - 0.5 or b[1] < MIN_TARGET - 0.5]
        assert small == []
        # Markers keep the text's line height (the target overlaps the lines around it, it does not push them).
        li = first.locator(".pna-a-text li").first
        assert li.bounding_box()["height"] < 3.5 * 26


# ---- complete sources for lists, long answers ------------------------------------------------------------------

def test_every_listed_item_is_reachable_as_a_source(browser, served):
    base, _ = served
    with new_page(browser, base, PHONE) as page:
        open_chat(page)
        first = ask_and_wait(page, SECOND_BATCH)
        # Folded: 展开全文 shows the rest of the 66 lines.
        unfold = first.locator(".pna-unfold")
        expect(unfold).to_have_attribute("aria-expanded", "false")
        assert first.locator(".pna-fold").bounding_box()["height"] < 420
        unfold.click()
        expect(unfold).to_have_attribute("aria-expanded", "true")
        lines = first.locator(".pna-a-text li")
        expect(lines).to_have_count(66)
        reached = set()
        for k in range(lines.count()):
            line = lines.nth(k)
            item = int(re.match(r"第(\d+)项", line.inner_text()).group(1))
            marker = line.locator("a.pna-ref")
            expect(marker).to_have_count(1)
            if k in (0, 20, 65):  # opening a few: the item's own card, or its entry in the list card
                marker.click()
                card = page.locator("details.pna-card[open]").filter(has=page.locator(f"[data-item='{item}']"))
                if card.count() == 0:
                    card = page.locator("details.pna-card[open]").filter(has_text=f"附件第{item}项")
                expect(card.first).to_be_visible()
                assert page.evaluate("document.activeElement.tagName") == "SUMMARY"  # keyboard users land on it
            reached.add(item)
        assert len(reached) == 66
        list_card = first.locator("details.pna-card-list")
        expect(list_card.locator("li[data-item]")).to_have_count(66)


def test_jump_to_latest(browser, served):
    base, _ = served
    with new_page(browser, base, SMALL_PHONE) as page:
        open_chat(page)
        ask_and_wait(page, SECOND_BATCH)
        ask_and_wait(page, ELECTRICIAN, 1)
        log = page.locator("#pna-chat-root .pna-log")
        latest = page.locator("#pna-latest")
        log.evaluate("n => { n.scrollTop = 0; n.dispatchEvent(new Event('scroll')); }")
        expect(latest).to_be_visible()
        latest.click()
        assert log.evaluate("n => n.scrollHeight - n.scrollTop - n.clientHeight") < 5
        expect(latest).to_be_hidden()
        assert_page_not_scrolled(page)


# ---- asking: stop, errors, empty questions, 新对话 ---------------------------------------------------------------

def test_stop_while_answering_and_busy_enter_says_so(browser, served):
    base, _ = served
    with new_page(browser, base, DESKTOP) as page:
        held = []
        page.route("**/ui/ask/stream", lambda route: held.append(route))  # the answer never comes
        open_chat(page)
        ask(page, ELECTRICIAN)
        send = page.locator("#pna-send")
        expect(send).to_have_text("停止")
        expect(turn(page, 0).locator(".pna-typing .pna-dots")).to_be_visible()
        page.locator("#pna-question").fill("美容师是第几批？")
        page.locator("#pna-question").press("Enter")
        expect(page.locator("#pna-chat-root .pna-status")).to_contain_text("停止")  # not silently ignored
        expect(page.locator("#pna-chat-root .pna-turn")).to_have_count(1)
        send.click()
        expect(turn(page, 0).locator(".pna-error")).to_have_text("已停止回答。")
        expect(send).to_have_text("发送")
        page.unroute("**/ui/ask/stream")
        turn(page, 0).get_by_role("button", name="重试").click()
        expect(answered(page, 0).locator(".pna-lead")).to_contain_text("第二批")
        for route in held:
            try:
                route.abort()
            except Exception:
                pass


def test_server_error_and_rate_limit_are_shown_as_such_and_never_queued(browser, served):
    base, _ = served
    with new_page(browser, base, PHONE) as page:
        calls = []

        def fail(route):
            calls.append(route.request.url)
            if len(calls) == 1:
                route.fulfill(status=500, content_type="application/json", body='{"error": "internal error"}')
            else:
                route.fulfill(status=429, content_type="application/json", headers={"Retry-After": "2"},
                              body='{"error": "too many requests"}')

        page.route("**/ui/ask/stream", fail)
        open_chat(page)
        ask(page, ELECTRICIAN)
        first = turn(page, 0)
        expect(first.locator(".pna-a")).to_have_attribute("data-error", "server")
        expect(first.locator(".pna-error")).to_contain_text("服务器出错")
        status = page.locator("#pna-chat-root .pna-status")
        assert "连不上" not in (status.inner_text() if status.is_visible() else "")
        page.wait_for_timeout(2500)
        assert len(calls) == 1  # no retry by itself
        # A later question is asked at once, not queued behind the failed one; here it is rate limited.
        ask(page, "美容师是第几批？")
        second = turn(page, 1)
        expect(second.locator(".pna-a")).to_have_attribute("data-error", "rate")
        expect(second.locator(".pna-error")).to_contain_text("2 秒")
        expect(first.get_by_role("button", name="重试")).to_have_count(0)  # only the last question offers 重试
        retry = second.locator(".pna-retry")
        expect(retry).to_be_disabled()
        expect(retry).to_be_enabled(timeout=5000)
        assert len(calls) == 2
        page.unroute("**/ui/ask/stream")
        retry.click()
        expect(answered(page, 1).locator(".pna-lead")).to_contain_text("第一批")


def test_empty_or_invisible_questions_get_a_clear_message(page):
    open_chat(page)
    for text in ("\u200b", " \u3000 ", "\u200b\u200d\ufeff"):
        page.locator("#pna-question").fill(text)
        page.locator("#pna-send").click()
        expect(page.locator("#pna-chat-root .pna-status")).to_contain_text("请输入问题内容")
        expect(page.locator("#pna-chat-root .pna-turn")).to_have_count(0)


def test_new_conversation_can_be_undone(page):
    open_chat(page)
    ask(page, ELECTRICIAN)
    answered(page, 0)
    page.locator("#pna-new").click()
    expect(page.locator("#pna-chat-root .pna-turn")).to_have_count(0)
    expect(page.locator("#pna-chat-root .pna-empty")).to_be_visible()
    page.get_by_role("button", name="撤销").click()
    expect(answered(page, 0).locator(".pna-q")).to_have_text(ELECTRICIAN)
    page.reload(wait_until="load")
    answered(page, 0)


# ---- the annex view from an address ----------------------------------------------------------------------------

ANNEX_COLUMN_JS = """(col) => Array.from(document.querySelectorAll("#pna-annex-table .virtual-row"))
    .map(row => (row.querySelectorAll("[role=gridcell]")[col] || {}).innerText || "").map(t => t.trim()).filter(Boolean)"""


def test_annex_filter_from_the_address_shows_only_filtered_rows_every_time(browser, served):
    base, _ = served
    with new_page(browser, base, DESKTOP) as page:
        for k in range(20):
            page.goto("/?annex=1&batch=第二批" + ("&keyword=工" if k % 2 else ""), wait_until="load")
            count = page.locator("#pna-annex-count")
            want = "显示 125 / 192 行" if k % 2 else "显示 156 / 192 行"
            expect(count).to_have_text(want)
            expect(page.locator("#pna-annex-batch input")).to_have_value("第二批")
            page.wait_for_timeout(300)  # a late response would show here
            expect(count).to_have_text(want)
            texts = page.evaluate(ANNEX_COLUMN_JS, 4)  # 批次 of every row the table shows
            assert len(texts) >= 5 and set(texts) == {"第二批"}, (k, set(texts))


def test_annex_search_sort_and_csv(browser, served, tmp_path):
    base, _ = served
    with new_page(browser, base, DESKTOP) as page:
        page.goto("/?annex=1", wait_until="load")
        count = page.locator("#pna-annex-count")
        expect(count).to_have_text("显示 192 / 192 行")
        page.locator("#pna-annex-keyword textarea").fill("电工 第二批")
        expect(count).to_have_text(re.compile(r"显示 [1-9]\d? / 192 行"))
        page.locator("#pna-annex-keyword textarea").fill("厨师")
        expect(count).to_have_text("显示 2 / 192 行")
        expect(page.locator("#pna-annex-table")).to_contain_text("中式烹调师")
        page.locator("#pna-annex-keyword textarea").fill("")
        expect(count).to_have_text("显示 192 / 192 行")
        page.locator("#pna-annex-sort input").click()
        page.get_by_role("option", name="实施部门").click()
        first_dept = page.locator("#pna-annex-table .virtual-row").first.locator("[role=gridcell]").nth(3)
        expect(first_dept).to_have_text(sorted(r.departments_text() for r in served[1].corpus.annex_rows)[0])
        with page.expect_download() as download:
            page.locator("#pna-annex-csv").click()
        path = tmp_path / "annex.csv"
        download.value.save_as(path)
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        assert lines[0] == "序号,职业资格名称,职业（工种）,实施部门（单位）,批次,退出时间" and len(lines) == 193


# ---- the widget: keyboard, storage across sites, options ------------------------------------------------------

def active_in_frame(page) -> str:
    frame = next(f for f in page.frames if "/widget/" in f.url)
    return frame.evaluate("document.hasFocus() ? (document.activeElement.id || document.activeElement.className) : ''")


def test_keyboard_only_asks_opens_a_source_and_opens_and_closes_the_widget(browser, served):
    base, _ = served
    with new_page(browser, base, DESKTOP) as page:
        page.goto("/widget-demo", wait_until="load")
        launcher = page.locator(".pna-w-button")
        for _ in range(30):  # Tab through the host page to the launcher
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.className") == "pna-w-button":
                break
        else:
            pytest.fail("Tab never reached the launcher")
        page.keyboard.press("Enter")
        expect(page.locator(".pna-w-panel")).to_be_visible()
        expect(page.locator(".pna-w-panel")).to_have_attribute("aria-modal", "true")
        # Focus goes into the panel, to the question box, once the chat has loaded.
        page.wait_for_function("() => document.activeElement && document.activeElement.tagName === 'IFRAME'")
        deadline = time.monotonic() + 10
        while active_in_frame(page) != "pna-question" and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert active_in_frame(page) == "pna-question"
        page.keyboard.type("美容师是第几批")
        page.keyboard.press("Enter")
        widget = page.frame_locator("iframe.pna-w-frame")
        expect(widget.locator(".pna-turn[data-turn='0'] .pna-actions")).to_be_visible(timeout=ANSWER_TIMEOUT)
        # Tab to the first source marker and open it with Enter.
        for _ in range(20):
            page.keyboard.press("Tab")
            if "pna-ref" in active_in_frame(page):
                break
        else:
            pytest.fail("Tab never reached a source marker")
        page.keyboard.press("Enter")
        frame = next(f for f in page.frames if "/widget/" in f.url)
        assert frame.evaluate("document.activeElement.tagName") == "SUMMARY"
        assert frame.evaluate("document.activeElement.parentElement.open") is True
        # The dialog keeps focus: many Tabs never reach the host page.
        for _ in range(40):
            page.keyboard.press("Tab")
            host = page.evaluate("document.activeElement.className")
            assert host in ("pna-w-frame", "pna-w-close", "pna-w-trap"), host
        # Esc inside the chat closes the panel and focus returns to the launcher.
        page.evaluate("document.querySelector('.pna-w-frame').focus()")
        frame.evaluate("document.getElementById('pna-question').focus()")
        page.keyboard.press("Escape")
        expect(page.locator(".pna-w-panel")).to_be_hidden()
        expect(launcher).to_be_focused()
        expect(launcher).to_have_attribute("aria-expanded", "false")
        # The launcher comes before the dialog in the page: Tab from it enters the dialog.
        assert page.evaluate("document.querySelector('.pna-w-button').compareDocumentPosition("
                             "document.querySelector('.pna-w-panel')) & Node.DOCUMENT_POSITION_FOLLOWING") != 0


def test_chat_input_is_an_early_tab_stop_with_a_focus_ring(page):
    open_chat(page)
    for n in range(1, 16):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "pna-question":
            break
    else:
        pytest.fail("Tab never reached the question box")
    assert n <= 9, n  # the common questions once (5), the tabs, then the input
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle + ' ' + "
                            "getComputedStyle(document.activeElement).outlineWidth")
    assert outline.startswith("solid") and not outline.endswith(" 0px"), outline


BLOCK_THIRD_PARTY_STORAGE = """(() => { if (window.top === window) return;
  const deny = { get() { throw new DOMException("third-party storage is blocked", "SecurityError"); } };
  try { Object.defineProperty(window, "localStorage", deny); Object.defineProperty(window, "sessionStorage", deny); }
  catch (e) {} })();"""


@pytest.fixture(scope="module")
def host_site():
    """Another site for embedding: a plain HTTP server on loopback, addressed as http://localhost:<port> (the
    assistant is http://127.0.0.1:<port>, so the two are different sites). Tests put their pages in `pages`."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = pages.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


def host_page(widget_base: str, attrs: str = "") -> str:
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>另一个网站</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main><h1>另一个网站</h1>'
            f'<button id="host-button" style="position:fixed;right:20px;bottom:20px">本站按钮</button></main>'
            f'<script src="{widget_base}/widget.js" defer {attrs}></script></body></html>')


def test_widget_embedded_cross_site_keeps_the_conversation_across_a_host_reload(browser, served, host_site):
    """The host page at http://localhost:<port>, the assistant at http://127.0.0.1:<port> (two sites); the frame's
    own storage throws, as in a browser that blocks third-party storage."""
    base, _ = served
    host, pages = host_site
    with new_page(browser, base, DESKTOP, allow=(host,)) as page:
        page.context.add_init_script(BLOCK_THIRD_PARTY_STORAGE)
        pages["/host"] = host_page(base, 'data-offset-y="90"')
        page.goto(host + "/host", wait_until="load")
        launcher = page.locator(".pna-w-button")
        box = launcher.bounding_box()
        assert abs(box["y"] + box["height"] - (DESKTOP["height"] - 90)) < 1  # offset clears the host's own button
        launcher.click()
        widget = page.frame_locator("iframe.pna-w-frame")
        ask_and_wait(widget, ELECTRICIAN)
        frame = next(f for f in page.frames if "/widget/" in f.url)
        with pytest.raises(Exception):
            frame.evaluate("localStorage.length")  # really blocked
        kept = page.evaluate("Object.keys(localStorage)")
        assert any(k.startswith("pna-widget:" + base) for k in kept), kept
        page.reload(wait_until="load")
        page.locator(".pna-w-button").click()
        first = widget.locator(".pna-turn[data-turn='0']")
        expect(first.locator(".pna-q")).to_have_text(ELECTRICIAN, timeout=ANSWER_TIMEOUT)
        expect(first.locator(".pna-lead")).to_contain_text("第二批")


def test_widget_without_any_storage_still_answers(browser, served, host_site):
    base, _ = served
    host, pages = host_site
    with new_page(browser, base, PHONE, allow=(host,)) as page:
        page.context.add_init_script(BLOCK_THIRD_PARTY_STORAGE)
        pages["/host"] = host_page(base, 'data-storage="frame"')
        page.goto(host + "/host", wait_until="load")
        page.locator(".pna-w-button").click()
        ask_and_wait(page.frame_locator("iframe.pna-w-frame"), "美容师是第几批？")


@pytest.mark.parametrize("forced, device", [("dark", "light"), ("light", "dark")])
def test_widget_theme_can_be_forced_to_match_the_host(browser, served, host_site, forced, device):
    base, _ = served
    host, pages = host_site
    with new_page(browser, base, PHONE, color_scheme=device, allow=(host,)) as page:
        pages["/host"] = host_page(base, f'data-theme="{forced}" data-position="left"')
        page.goto(host + "/host", wait_until="load")
        page.locator(".pna-w-button").click()
        widget = page.frame_locator("iframe.pna-w-frame")
        expect(widget.locator("#pna-chat-root")).to_have_attribute("data-theme", forced)
        ask_and_wait(widget, ELECTRICIAN)
        frame = next(f for f in page.frames if "/widget/" in f.url)
        measured = contrasts(frame)
        assert [m for m in measured if m["ratio"] < MIN_CONTRAST] == []
        page.screenshot(path=str(ARTIFACTS / f"widget-phone-forced-{forced}.png"))


def test_documented_iframe_snippet_fits_a_360_px_phone(browser, served, host_site):
    base, _ = served
    docs = (REPO_ROOT / "docs" / "widget.md").read_text(encoding="utf-8")
    snippet = re.search(r"```html\n(<iframe[\s\S]+?</iframe>)\n```", docs).group(1)
    snippet = snippet.replace("https://assistant.example.org", base)
    host, pages = host_site
    with new_page(browser, base, SMALL_PHONE, allow=(host,)) as page:
        pages["/host"] = (f'<!doctype html><html lang="zh-CN"><head><meta name="viewport" content="width=device-width, '
                          f'initial-scale=1"><style>body{{margin:8px}}</style></head><body>{snippet}</body></html>')
        page.goto(host + "/host", wait_until="load")
        frame = page.locator("iframe")
        box = frame.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"] and box["height"] <= SMALL_PHONE["height"]
        assert page.evaluate("document.documentElement.scrollWidth") <= SMALL_PHONE["width"]
        expect(page.frame_locator("iframe").locator("#pna-question")).to_be_visible()


# ---- issue 19: the offline answer first, the model's checked addition after it ------------------------------------

def offline_first_body(assistant, addition: str | None, end: bool = True) -> str:
    """The /ui/ask/stream events of an unsure answer read again by the model (assistant/addition.py), scripted from
    the real offline answer: its sentences, the offline event, the status line, then the addition and the end."""
    from assistant.addition import ADDED, READING
    from assistant.generate import sentences_of
    from ui.app import _sse

    offline = assistant.ask(ELECTRICIAN)
    corpus, profile = assistant.corpus, assistant.profile
    out = [_sse("token", {"text": s, "part": "offline"}) for s in sentences_of(offline.answer)]
    out += [_sse("offline", presented(offline, corpus, profile)), _sse("status", {"text": READING, "state": "reading"})]
    if end:
        final = offline
        if addition:
            cite = Citation(source="notice", clause=4, label="第四条", quote="退出目录前已发放的职业资格证书继续有效。",
                            marker=len(offline.citations) + 1)
            final = offline.model_copy(update={"answer": offline.answer + "\n" + addition, "addition": addition,
                                               "citations": offline.citations + [cite], "mode": "llm"})
            out.append(_sse("token", {"text": "\n" + addition, "part": "addition"}))
        out += [_sse("status", {"text": ADDED if addition else "生成模型复核后没有原文中的补充。", "state": "done"}),
                _sse("answer", presented(final, corpus, profile))]
    return b"".join(out).decode("utf-8")


@pytest.mark.parametrize("viewport", SIZES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_an_offline_first_answer_shows_the_models_addition_apart_and_announces_it(browser, served, assistant,
                                                                                  viewport, scheme):
    base, _ = served
    addition = f"退出目录前已经发放的职业资格证书继续有效[{len(assistant.ask(ELECTRICIAN).citations) + 1}]。"
    with new_page(browser, base, viewport, color_scheme=scheme) as page:
        page.route("**/ui/ask/stream", lambda route: route.fulfill(
            status=200, content_type="text/event-stream", body=offline_first_body(assistant, addition)))
        open_chat(page)
        ask(page, ELECTRICIAN)
        t = answered(page, 0)
        expect(t.locator(".pna-lead")).to_contain_text("第二批")
        section = t.get_by_role("region", name="生成模型的补充（已与通知原文逐句核对）")
        expect(section).to_contain_text("继续有效")
        expect(t.locator(".pna-fold")).not_to_contain_text("继续有效")  # the offline answer and the addition apart
        expect(t.locator(".pna-progress-done")).to_contain_text("核对")
        live = page.locator("#pna-chat-root .pna-sr[aria-live='polite']")
        expect(live).to_contain_text("继续有效")
        expect(t.locator(".pna-a")).not_to_have_attribute("aria-busy", "true")
        ARTIFACTS.mkdir(exist_ok=True)
        size = "phone" if viewport == PHONE else "desktop"
        page.screenshot(path=str(ARTIFACTS / f"addition-{size}-{scheme}.png"))  # for a human to look at
        low = [m for m in contrasts(page) if m["ratio"] < MIN_CONTRAST]  # the addition readable in this scheme too
        assert low == [], low


def test_a_stream_that_breaks_while_the_model_reads_keeps_the_offline_answer(browser, served, assistant):
    base, _ = served
    with new_page(browser, base, PHONE) as page:
        page.route("**/ui/ask/stream", lambda route: route.fulfill(
            status=200, content_type="text/event-stream", body=offline_first_body(assistant, None, end=False)))
        open_chat(page)
        ask(page, ELECTRICIAN)
        t = answered(page, 0)  # no error: the checked offline answer, already shown, stands
        expect(t.locator(".pna-lead")).to_contain_text("第二批")
        expect(t.locator(".pna-error")).to_have_count(0)
        expect(t.locator(".pna-sources")).to_be_visible()
