"""The pages: the full chat (with the 附件目录 browser) at "/" and the compact widget at "/widget/".

The chat itself is a small script of our own (ui/static/chat.js) in a Gradio page: it talks to /ui/ask/stream,
keeps the conversation in the browser (localStorage) so that it survives a reload and a server restart, and shows
each answer with numbered source cards, suggested follow-ups, a plain-text copy button and 👍/👎. Gradio renders
the page around it and the 附件目录 browser. Everything users or the model write reaches the page as text
(the script builds DOM nodes with textContent; it never assigns HTML)."""
from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from typing import Any, Literal

import gradio as gr
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.sse import format_sse_event
from pydantic import BaseModel, Field

from assistant.config import Config
from assistant.feedback import MAX_COMMENT_CHARS, FeedbackStore, idempotency_key
from assistant.normalize import MAX_QUESTION_CHARS, normalize
from assistant.profile import NoticeProfile
from assistant.records import BATCH_LICENSED, AnnexRow, Citation, Turn

from .cards import ANNEX_TAB_QUERY, DOC, LICENSED_WORDS, annex_batch_words, presented

log = logging.getLogger(__name__)

TITLE = "职业资格退出目录政策问答"
EXAMPLES = [
    "电工证什么时候退出目录？",
    "美容师是第几批？",
    "第一批有哪些？",
    "退出目录前发的证书还有效吗？",
    "国家中医药管理局负责哪些职业？",
]
WIDGET_EXAMPLES = EXAMPLES[:3]
MAX_HISTORY_TURNS = 20  # the last 10 exchanges are enough to resolve a follow-up
WIDGET_PATH = "/widget"
UI_PREFIX = "/ui"
STATIC_FILES = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}

ALL = "全部"


def batch_choices(profile: NoticeProfile) -> dict[str, str]:
    """The batch filter's words → batch codes: the profile's batches (from clause 二), then the 准入类 note."""
    return {**{b.word: b.batch for b in profile.batches}, LICENSED_WORDS: BATCH_LICENSED}

ANNEX_HEADERS = ["序号", "职业资格名称", "职业（工种）", "实施部门（单位）", "批次", "退出时间"]

CSS = """
.pna-header { margin: 0 !important; }
.pna-header h1 { font-size: 1.15rem; margin: 0; line-height: 1.4; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.pna-header h1 small { font-size: .8rem; font-weight: 400; color: var(--body-text-color-subdued); margin-left: .5em; }
.pna-footer { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
"""
# Gradio scopes the CSS given to it to its .contain element; layout of the page itself is in static/chat.css.
WIDGET_CSS = """
footer { display: none !important; }
"""
SANS = ["system-ui", "-apple-system", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "sans-serif"]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
# Put first in <head> by the server (see ZhPage): Gradio picks its own labels' language from navigator.language,
# so the page says zh-CN before Gradio's script reads it, whatever the browser's language.
HEAD_SCRIPT = """<script>(function(){try{var p=Navigator.prototype;
Object.defineProperty(p,"language",{get:function(){return "zh-CN";},configurable:true});
Object.defineProperty(p,"languages",{get:function(){return ["zh-CN","zh"];},configurable:true});}catch(e){}})();</script>"""
DESCRIPTION = '<meta name="description" content="人社厅发〔2020〕80号 水平评价类技能人员职业资格退出目录 政策问答">'


def chat_root(channel: Literal["chat", "widget"], examples: list[str]) -> str:
    """The element chat.js fills; its data- attributes configure it."""
    data = json.dumps(examples, ensure_ascii=False).replace("&", "&amp;").replace('"', "&quot;")
    return (f'<div id="pna-chat-root" class="pna-chat pna-chat-{channel}" data-channel="{channel}" '
            f'data-examples="{data}" data-doc="{DOC}" data-title="{TITLE}">'
            '<p class="pna-loading">正在加载对话…</p></div>')


# ---- the chat's HTTP endpoints (used by chat.js, same origin) --------------------------------------------

class UiAskRequest(BaseModel):
    question: str = Field(description=f"the question, 1–{MAX_QUESTION_CHARS} characters")
    history: list[Turn] = Field(default_factory=list, max_length=50)


class UiFeedback(BaseModel):
    """A 👍/👎 on an answer shown in the chat, or a change to one already stored (feedback_id)."""

    channel: Literal["chat", "widget"] = "chat"
    feedback_id: int | None = None
    token: str | None = Field(default=None, max_length=100)  # returned when the rating was stored; needed to change it
    rating: Literal["up", "down"] | None = None
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    question: str = Field(default="", max_length=MAX_QUESTION_CHARS)
    answer: str = Field(default="", max_length=20000)
    citations: list[Citation] = Field(default_factory=list, max_length=100)
    id: str | int | None = None
    mode: Literal["offline", "llm"] | None = None


def _sse(event: str, data: dict) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, ensure_ascii=False))


def add_ui_routes(app: FastAPI, assistant, store: FeedbackStore | None) -> None:
    """POST /ui/ask/stream, POST /ui/feedback and GET /ui/static/{chat.js,chat.css}."""
    corpus, profile = assistant.corpus, assistant.profile

    @app.post(UI_PREFIX + "/ask/stream", include_in_schema=False)
    def ui_ask_stream(request: UiAskRequest) -> StreamingResponse:
        # The same door check as the API (a lone surrogate or a bad history is a 4xx before the stream starts);
        # the chat keeps only the recent turns a follow-up needs, so a long conversation is never refused.
        checked = assistant.check(request.question, request.history[-MAX_HISTORY_TURNS:])
        events = assistant.stream(checked.question, checked.history)
        first = next(events, None)  # grounding runs now: its failure is a clean 500, not a broken stream

        def body() -> Iterator[bytes]:
            done = False
            try:
                for ev in ([first] if first is not None else []):
                    yield from _event(ev)
                    done = done or ev.kind == "answer"
                for ev in events:
                    yield from _event(ev)
                    done = done or ev.kind == "answer"
            except Exception:
                log.exception("streaming an answer to the chat failed")
            if not done:
                yield _sse("error", {"error": "answer failed"})

        def _event(ev) -> Iterator[bytes]:
            if ev.kind == "token":
                yield _sse("token", {"text": ev.text})
            elif ev.kind == "notice":
                yield _sse("notice", {"text": ev.text})
            elif ev.kind == "answer" and ev.answer is not None:
                yield _sse("answer", presented(ev.answer, corpus, profile))

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post(UI_PREFIX + "/feedback", include_in_schema=False)
    def ui_feedback(request: UiFeedback, http: Request) -> JSONResponse:
        if store is None:
            raise HTTPException(503, "feedback storage is not available")
        if request.feedback_id is not None:
            # Only the token returned with the row changes it (issue 17): row ids are sequential.
            if not request.token or not store.update(request.feedback_id, token=request.token,
                                                     rating=request.rating, comment=request.comment):
                raise HTTPException(404, "no such feedback, or the token does not match it")
            return JSONResponse({"feedback_id": request.feedback_id, "token": request.token})
        if request.rating is None or not request.question or not request.answer:
            raise HTTPException(422, "a new rating needs rating, question and answer")
        created = store.create(question=request.question, answer=request.answer, rating=request.rating,
                               citations=request.citations, comment=request.comment or "", answer_id=request.id,
                               mode=request.mode, channel=request.channel, idempotency_key=idempotency_key(http))
        return JSONResponse({"feedback_id": created.id, "token": created.token})

    @app.get(UI_PREFIX + "/static/{name}", include_in_schema=False)
    def ui_static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, "not found")
        text = resources.files("ui").joinpath("static", name).read_text(encoding="utf-8")
        return Response(text, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


class ZhPage:
    """ASGI middleware for the HTML pages Gradio serves: `lang="zh-CN"` on <html>, and our <head> additions
    (locale, the chat's script and styles) first in <head>, before Gradio's own scripts run."""

    def __init__(self, app, head: str) -> None:
        self.app = app
        self.head = head.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith(("/api/", UI_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        chunks: list[bytes] = []

        async def wrapped(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if headers.get(b"content-type", b"").startswith(b"text/html"):
                    start = message  # hold it: the length changes
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = self.rewrite(b"".join(chunks))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await self.app(scope, receive, wrapped)

    def rewrite(self, body: bytes) -> bytes:
        if b"<gradio-app" not in body:  # only Gradio's pages: not /docs, not the widget demo
            return body
        body = body.replace(b'lang="en"', b'lang="zh-CN"', 1)
        at = body.find(b"<head>")
        if at >= 0:
            body = body[:at + 6] + self.head + body[at + 6:]
        return body


def page_head() -> str:
    return (HEAD_SCRIPT + DESCRIPTION +
            f'<link rel="stylesheet" href="{UI_PREFIX}/static/chat.css">'
            f'<script src="{UI_PREFIX}/static/chat.js" defer></script>')


# ---- the annex browser ----------------------------------------------------------------------------

def _annex_frame(rows: list[AnnexRow], profile: NoticeProfile) -> pd.DataFrame:
    return pd.DataFrame(
        [[r.item, r.qualification, r.occupation, r.departments_text(), annex_batch_words(r, profile),
          profile.deadline(r.batch) or "—"] for r in rows],
        columns=ANNEX_HEADERS,
    )


def filter_annex(rows: tuple[AnnexRow, ...], profile: NoticeProfile, keyword: str = "", batch: str = ALL,
                 department: str = ALL) -> list[AnnexRow]:
    """Rows matching all of: a keyword (in 序号, names or departments; 繁体/全角 allowed), a batch, a department."""
    words = normalize(keyword or "").split()
    want_batch = batch_choices(profile).get(batch)
    out = []
    for r in rows:
        if want_batch and r.batch != want_batch:
            continue
        if department and department != ALL and department not in r.departments:
            continue
        hay = (f"{r.item} 第{r.item}项 {r.qualification} {r.occupation} {r.departments_text()} "
               f"{annex_batch_words(r, profile)}")
        if all((w in hay) or (w.isdigit() and int(w) == r.item) for w in words):
            out.append(r)
    return out


def annex_summary(rows: tuple[AnnexRow, ...], profile: NoticeProfile) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    items = len({r.item for r in rows})
    schedule = "，".join(f"{b.word}拟于{b.deadline}退出" for b in profile.batches)
    intro = (f"附件《水平评价类技能人员职业资格退出目录安排》共 **{items}** 项职业资格、**{len(rows)}** 行职业（工种）。"
             f"批次以附件所列为准：{schedule}。")
    by_batch = []
    for words, code in batch_choices(profile).items():
        batch_rows = [r for r in rows if r.batch == code]
        by_batch.append([words, len({r.item for r in batch_rows}), len(batch_rows),
                         profile.deadline(code) or "—" if batch_rows else "—"])
    batch_df = pd.DataFrame(by_batch, columns=["批次", "涉及项数", "职业行数", "退出时间"])
    counts = Counter(d for r in rows for d in r.departments)
    dept_df = pd.DataFrame(
        [[d, len({r.item for r in rows if d in r.departments}), n] for d, n in counts.most_common()],
        columns=["实施部门（单位）", "涉及项数", "职业行数"])
    return intro, batch_df, dept_df


def _annex_tab(assistant) -> tuple:
    rows, profile = assistant.corpus.annex_rows, assistant.profile
    intro, batch_df, dept_df = annex_summary(rows, profile)
    counts = Counter(d for r in rows for d in r.departments)
    dept_choices = [(ALL, ALL)] + [(f"{d}（{n}）", d) for d, n in sorted(counts.items(), key=lambda x: -x[1])]

    gr.Markdown(intro)
    with gr.Row():
        keyword = gr.Textbox(label="关键词", placeholder="职业、职业资格名称、部门或序号，如：电工", scale=3,
                             elem_id="pna-annex-keyword")
        batch = gr.Dropdown([ALL, *batch_choices(profile)], value=ALL, label="批次", scale=2,
                            elem_id="pna-annex-batch")
        department = gr.Dropdown(dept_choices, value=ALL, label="实施部门", scale=2, elem_id="pna-annex-dept")
        reset = gr.Button("重置", scale=1, size="sm")
    shown = gr.Markdown(f"显示 {len(rows)} / {len(rows)} 行", elem_id="pna-annex-count")
    table = gr.Dataframe(_annex_frame(list(rows), profile), interactive=False, wrap=True, max_height=560,
                         column_widths=["6%", "20%", "17%", "29%", "13%", "15%"], datatype="str",
                         buttons=["copy", "fullscreen"], elem_id="pna-annex-table", show_label=False)
    with gr.Accordion("统计：按批次、按实施部门", open=True):
        with gr.Row():
            gr.Dataframe(batch_df, interactive=False, show_label=False, elem_id="pna-annex-by-batch")
            gr.Dataframe(dept_df, interactive=False, show_label=False, max_height=1000,
                         elem_id="pna-annex-by-dept")

    def update(kw: str, b: str, d: str):
        found = filter_annex(rows, profile, kw, b, d)
        note = f"显示 {len(found)} / {len(rows)} 行" + ("" if found else "：没有符合条件的职业，请换个关键词或放宽筛选。")
        return _annex_frame(found, profile), note

    for control in (keyword.change, batch.change, department.change):
        control(update, [keyword, batch, department], [table, shown], queue=False, api_visibility="private",
                trigger_mode="always_last")
    reset.click(lambda: ("", ALL, ALL), None, [keyword, batch, department], queue=False, api_visibility="private")
    return keyword, batch, department, table, shown, update


# ---- the pages ------------------------------------------------------------------------------------

def _store(config: Config, store: FeedbackStore | None) -> FeedbackStore | None:
    if store is not None:
        return store
    try:
        return FeedbackStore(config.feedback_db)
    except Exception:  # a read-only disk must not take the chat down; ratings are then not offered
        log.exception("feedback store at %s unavailable", config.feedback_db)
        return None


def annex_request(query: dict[str, str], batches: dict[str, str]) -> tuple[bool, str, str, str]:
    """(open the annex tab?, keyword, batch, department) from the page address, e.g. ?annex=1&batch=第二批."""
    if not query.get(ANNEX_TAB_QUERY):
        return False, "", ALL, ALL
    batch = query.get("batch", ALL)
    return (True, query.get("keyword", "")[:100], batch if batch in batches else ALL,
            query.get("department", ALL)[:50] or ALL)


def build_chat(assistant, config: Config, store: FeedbackStore | None = None) -> gr.Blocks:
    """The full page: 智能问答 (chat.js) and 附件目录 (annex browser, which the address can open filtered)."""
    with gr.Blocks(title=f"{TITLE} · {DOC}", fill_width=False, analytics_enabled=False) as demo:
        gr.HTML(f"<h1>{TITLE}<small>依据{DOC}及附件作答，附原文出处</small></h1>", elem_classes=["pna-header"],
                js_on_load=None)
        with gr.Tabs(selected="chat", elem_id="pna-tabs") as tabs:
            with gr.Tab("智能问答", id="chat"):
                gr.HTML(chat_root("chat", EXAMPLES), js_on_load=None, elem_id="pna-chat-host")
            with gr.Tab("附件目录", id="annex"):
                keyword, batch, department, table, shown, show_rows = _annex_tab(assistant)
        gr.Markdown("回答只依据通知原文；如需办理具体业务，请以当地人力资源社会保障部门的答复为准。"
                    "　[HTTP API 文档](/docs)", elem_classes=["pna-footer"])

        def on_load(request: gr.Request):
            query = dict(request.query_params) if request is not None else {}
            open_annex, kw, b, d = annex_request(query, batch_choices(assistant.profile))
            if not open_annex:
                return (gr.update(),) * 6
            known = {name for row in assistant.corpus.annex_rows for name in row.departments}
            d = d if d in known else ALL
            # Setting the filters from here does not run their change events: the rows are shown here too.
            return (gr.Tabs(selected="annex"), kw, b, d) + tuple(show_rows(kw, b, d))

        demo.load(on_load, None, [tabs, keyword, batch, department, table, shown], queue=False,
                  api_visibility="private")
    demo.queue(default_concurrency_limit=8)
    return demo


def build_widget(assistant, config: Config, store: FeedbackStore | None = None) -> gr.Blocks:
    """The compact chat for a small floating panel (about 380×600 px, full screen on a phone) on another site."""
    with gr.Blocks(title=f"{TITLE}（小窗）", fill_height=True, analytics_enabled=False) as demo:
        gr.HTML(chat_root("widget", WIDGET_EXAMPLES), js_on_load=None, elem_id="pna-chat-host")
    return demo


def mount_kwargs(widget: bool = False) -> dict[str, Any]:
    """What gradio 6 takes at mount time rather than in Blocks(): theme, CSS, footer."""
    return {
        # System fonts only: the default theme fonts come from Google Fonts, unreachable in some networks.
        "theme": gr.themes.Soft(primary_hue="blue", neutral_hue="slate", font=SANS, font_mono=MONO),
        "css": WIDGET_CSS if widget else CSS,
        "footer_links": [] if widget else ["settings"],
        "run_history": False,
        "ssr_mode": False,
        "show_error": False,
    }


def mount(app: FastAPI, assistant, config: Config, store: FeedbackStore | None) -> None:
    """Everything the pages need on `app`: the chat endpoints, the widget at /widget/ and the chat at "/"."""
    store = _store(config, store)
    add_ui_routes(app, assistant, store)
    app.add_middleware(ZhPage, head=page_head())
    # Order matters: the more specific mount first, "/" last (it matches everything not matched before).
    gr.mount_gradio_app(app, build_widget(assistant, config, store), path=WIDGET_PATH, **mount_kwargs(widget=True))
    gr.mount_gradio_app(app, build_chat(assistant, config, store), path="/", **mount_kwargs(widget=False))
