"""The pages as a user sees them: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against the
real app on a loopback port. Screenshots land in artifacts/ (git-ignored) for a human to look at."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.config import REPO_ROOT
from assistant.feedback import FeedbackStore
from servers import live_app

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


@pytest.fixture()
def page(browser, served):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}, base_url=served[0])
    context.set_default_timeout(20_000)
    # Anything that leaves the loopback server is a bug (or a CDN the page should not need): block and record it.
    external: list[str] = []

    def block(route):
        external.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!" + re.escape(served[0]) + r"|data:|blob:|about:).*"), block)
    pg = context.new_page()
    pg.external = external
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def ask(page: Page, question: str) -> None:
    box = page.locator("#pna-question textarea")
    box.fill(question)
    page.locator("#pna-send").click()


def bot_messages(page: Page):
    """The assistant's answers, without the collapsible 出处 messages that follow them."""
    sources = page.get_by_role("button", name=re.compile(r"^出处（"))
    return page.locator("#pna-chatbot [data-testid='bot']").filter(has_not=sources)


def open_chat(page: Page) -> None:
    page.goto("/", wait_until="load")
    expect(page.locator("#pna-question textarea")).to_be_visible()


def test_chat_streams_an_answer_with_its_sources(page):
    open_chat(page)
    expect(page.get_by_role("heading", name="职业资格退出目录政策问答")).to_be_visible()
    ask(page, ELECTRICIAN)
    chat = page.locator("#pna-chatbot")
    expect(bot_messages(page).first).to_contain_text("第二批", timeout=ANSWER_TIMEOUT)
    sources = chat.get_by_text(re.compile(r"出处（\d+）：.*附件第1项"))
    expect(sources).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(chat).not_to_contain_text("机械设备修理人员 电工 应急管理部")  # quotes start folded
    # The plain-text copy of the answer with its sources (for pasting into a reply) is filled when it is done.
    page.get_by_text("复制回答（含出处，纯文本）").click()
    plain = page.locator("#pna-plain textarea")
    expect(plain).to_have_value(re.compile(r"第二批[\s\S]*【附件第1项】1 机械设备修理人员 电工"), timeout=ANSWER_TIMEOUT)
    sources.click()
    quote = chat.get_by_text("1 机械设备修理人员 电工 应急管理部、人力资源和社会保障部 2")
    expect(quote).to_be_visible()
    page.wait_for_timeout(600)  # let the unfolding transition finish before the screenshot
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

    # A follow-up resolves "它" through the history the page keeps.
    ask(page, "那它的实施部门呢？")
    expect(bot_messages(page)).to_have_count(2, timeout=ANSWER_TIMEOUT)
    expect(bot_messages(page).last).to_contain_text("应急管理部", timeout=ANSWER_TIMEOUT)

    # 新对话 clears the conversation.
    page.locator("#pna-new").click()
    expect(bot_messages(page)).to_have_count(0)


def test_example_questions_are_asked_on_click(page):
    open_chat(page)
    page.get_by_role("button", name="美容师是第几批？").click()
    expect(bot_messages(page).first).to_contain_text("第一批", timeout=ANSWER_TIMEOUT)
    expect(page.locator("#pna-chatbot [data-testid='user']").first).to_have_text("美容师是第几批？")


def test_user_text_is_shown_literally_never_run(page):
    open_chat(page)
    payload = "<img src=x onerror=alert(1)> **粗** [链接](javascript:alert(2)) `代码` www.example.com\n1. 列表\n# 标题"
    ask(page, payload)
    user = page.locator("#pna-chatbot [data-testid='user']").first
    expect(user).to_have_text(re.compile(r"^\s*" + re.escape(payload).replace("\\\n", r"\s*") + r"\s*$"))
    expect(bot_messages(page).first).not_to_have_text("…", timeout=ANSWER_TIMEOUT)
    chat = page.locator("#pna-chatbot")
    markup = ".message-content :is(img, a, strong, code, ol, ul, h1, script)"
    assert chat.locator(markup).count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []


def test_feedback_is_stored_with_the_answer(page, served):
    _, assistant = served
    open_chat(page)
    ask(page, ELECTRICIAN)
    expect(page.locator("#pna-chatbot").get_by_text(re.compile("出处（"))).to_be_visible(timeout=ANSWER_TIMEOUT)
    before = len(FeedbackStore(assistant.config.feedback_db).rows())
    page.locator("#pna-chatbot button[aria-label='踩'], #pna-chatbot button[aria-label='Dislike']").first.click()
    expect(page.locator("#pna-feedback textarea")).to_be_visible()
    page.locator("#pna-feedback textarea").fill("希望同时说明证书是否有效")
    page.get_by_role("button", name="提交说明").click()
    expect(page.locator("#pna-feedback-status")).to_contain_text("已收到")
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


def test_widget_demo_page_embeds_the_widget(page):
    page.set_viewport_size({"width": 1100, "height": 780})
    page.goto("/widget-demo", wait_until="load")
    expect(page.get_by_role("heading", name="某市人力资源和社会保障局")).to_be_visible()
    launcher = page.get_by_role("button", name="政策问答")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    assert page.locator("iframe.pna-w-frame").get_attribute("src") is None  # nothing loaded before first open
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    widget = page.frame_locator("iframe.pna-w-frame")
    widget.get_by_text("美容师是第几批？").click()  # an example inside the empty chat
    expect(widget.locator("[data-testid='bot']").first).to_contain_text("第一批", timeout=ANSWER_TIMEOUT)
    expect(widget.get_by_text(re.compile(r"出处（\d+）：附件第57项"))).to_be_visible(timeout=ANSWER_TIMEOUT)
    page.screenshot(path=str(ARTIFACTS / "widget.png"))
    page.get_by_role("button", name="关闭").click()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(page.locator(".pna-w-panel")).to_be_hidden()


def test_pages_load_nothing_from_other_hosts(page):
    """No CDN, font service or analytics: the pages work on a network that only reaches the assistant."""
    for path in ("/", "/widget/", "/widget-demo"):
        page.goto(path, wait_until="load")
        expect(page.locator("body")).to_be_visible()
        page.wait_for_timeout(1500)
    assert page.external == []
