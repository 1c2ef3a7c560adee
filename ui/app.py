"""The pages: the full chat (with the 附件目录 browser) at "/" and the compact widget at "/widget/".

The chat itself is a small script of our own (ui/static/chat.js) in a Gradio page: it talks to /ui/ask/stream,
keeps the conversation in the browser (localStorage) so that it survives a reload and a server restart, and shows
each answer with numbered source cards, suggested follow-ups, a plain-text copy button and 👍/👎. Gradio renders
the page around it and the 附件目录 browser. Everything users or the model write reaches the page as text
(the script builds DOM nodes with textContent; it never assigns HTML)."""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from html import escape
from importlib import resources
from pathlib import Path
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
DISCLAIMER = "回答只依据通知原文；如需办理具体业务，请以当地人力资源社会保障部门的答复为准。"

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
footer { display: none !important; }
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
SUMMARY = "人社厅发〔2020〕80号 水平评价类技能人员职业资格退出目录政策问答：哪些职业资格退出、第几批、何时退出、证书是否有效，每个回答附通知原文出处。"
DESCRIPTION = f'<meta name="description" content="{SUMMARY}">'


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
                yield _sse("token", {"text": ev.text, **({"part": ev.part} if ev.part else {})})
            elif ev.kind == "notice":
                yield _sse("notice", {"text": ev.text})
            elif ev.kind == "status":
                yield _sse("status", {"text": ev.text, "state": ev.state})
            elif ev.kind == "offline" and ev.answer is not None:
                yield _sse("offline", presented(ev.answer, corpus, profile))
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
    def ui_static(name: str, request: Request) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, "not found")
        body, version = static_file(name)
        etag = f'"{version}"'
        # The pages ask for ?v=<content hash>: that address never changes content, so it is cached for good;
        # any other request revalidates with the ETag (304 when unchanged).
        cache = ("public, max-age=31536000, immutable" if request.query_params.get("v") == version else "no-cache")
        headers = {"Cache-Control": cache, "ETag": etag}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=STATIC_FILES[name], headers=headers)


@lru_cache(maxsize=None)
def static_file(name: str) -> tuple[bytes, str]:
    """(content, short content hash) of ui/static/<name>, read once per process."""
    body = resources.files("ui").joinpath("static", name).read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:16]


# ---- compression and validators for the pages, scripts and styles --------------------------------------------

COMPRESSIBLE = (b"text/html", b"text/javascript", b"application/javascript", b"text/css", b"application/json")
MIN_COMPRESS_BYTES = 1024


@lru_cache(maxsize=64)
def _compressed(body: bytes, coding: str) -> bytes:
    if coding == "br":
        import brotli
        return brotli.compress(body, quality=5)
    return gzip.compress(body, compresslevel=6, mtime=0)


def _coding(accept: str) -> str | None:
    offered = set()
    for part in accept.split(","):
        name, _, params = part.partition(";")
        q = re.search(r"q=([0-9.]+)", params)
        if not q or float(q.group(1) or 0) > 0:
            offered.add(name.strip().lower())
    if "br" in offered:
        try:
            import brotli  # noqa: F401  (installed with gradio)
            return "br"
        except ImportError:
            pass
    return "gzip" if "gzip" in offered else None


class Compress:
    """ASGI middleware for GET responses that are HTML, JavaScript, CSS or JSON (the pages, chat.js, widget.js,
    Gradio's assets and config): br or gzip when the browser accepts it, `Vary: Accept-Encoding`, and an ETag where
    the response has none (a 304 answers a matching If-None-Match). Event streams and /api/ pass untouched."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope["method"] != "GET"
                or scope["path"].startswith(("/api/", "/gradio_api/queue"))):
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope.get("headers") or [])
        coding = _coding(request_headers.get(b"accept-encoding", b"").decode("latin-1"))
        if_none_match = request_headers.get(b"if-none-match", b"").decode("latin-1")
        start: dict | None = None
        chunks: list[bytes] = []

        async def wrapped(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                kind = headers.get(b"content-type", b"").split(b";")[0].strip()
                if message.get("status") == 200 and kind in COMPRESSIBLE and b"content-encoding" not in headers:
                    start = message  # hold it: the body and its length change
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                await self._finish(start, b"".join(chunks), coding, if_none_match, send)
            else:
                await send(message)

        await self.app(scope, receive, wrapped)

    @staticmethod
    async def _finish(start: dict, body: bytes, coding: str | None, if_none_match: str, send) -> None:
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length",)]
        names = {k.lower() for k, _ in headers}
        etag = dict((k.lower(), v) for k, v in headers).get(b"etag")
        if etag is None:
            etag = b'W/"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
            headers.append((b"etag", etag))
        tags = {t.strip() for t in if_none_match.split(",") if t.strip()}
        if etag.decode("latin-1") in tags or etag.decode("latin-1").removeprefix("W/") in tags:
            await send({**start, "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if b"vary" not in names:
            headers.append((b"vary", b"Accept-Encoding"))
        else:
            headers = [(k, v + b", Accept-Encoding"
                        if k.lower() == b"vary" and b"accept-encoding" not in v.lower() else v) for k, v in headers]
        if coding and len(body) >= MIN_COMPRESS_BYTES:
            body = _compressed(body, coding)
            headers.append((b"content-encoding", coding.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


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
                body = self.rewrite(b"".join(chunks), _page_url(scope))
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await self.app(scope, receive, wrapped)

    def rewrite(self, body: bytes, url: str = "") -> bytes:
        if b"<gradio-app" not in body:  # only Gradio's pages: not /docs, not the widget demo
            return body
        body = body.replace(b'lang="en"', b'lang="zh-CN"', 1)
        # Gradio's link-preview tags ("Gradio", "Click to try out the app!", og:url "{url}") give way to ours.
        body = _SOCIAL_META.sub(b"", body)
        at = body.find(b"<head>")
        if at >= 0:
            body = body[:at + 6] + self.head + social_meta(url).encode() + body[at + 6:]
        return body


_SOCIAL_META = re.compile(rb'<meta\s+(?:property="og:[^"]*"|name="twitter:[^"]*")\s+content="[^"]*"\s*/?>\s*')


def _page_url(scope) -> str:
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1")
    if not host or not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", host):
        return ""
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"


def social_meta(url: str) -> str:
    """What a link preview (WeChat, a chat app, a search engine) shows for the pages: title, summary, address."""
    tags = [("property", "og:type", "website"), ("property", "og:locale", "zh_CN"),
            ("property", "og:site_name", TITLE), ("property", "og:title", f"{TITLE} · {DOC}"),
            ("property", "og:description", SUMMARY), ("name", "twitter:card", "summary"),
            ("name", "twitter:title", f"{TITLE} · {DOC}"), ("name", "twitter:description", SUMMARY)]
    if url:
        tags.insert(0, ("property", "og:url", url))
    return "".join(f'<meta {kind}="{name}" content="{escape(value)}">' for kind, name, value in tags)


def page_head() -> str:
    css, js = static_file("chat.css")[1], static_file("chat.js")[1]
    return (HEAD_SCRIPT + DESCRIPTION + '<meta name="theme-color" content="#1d4ed8">' +
            f'<link rel="stylesheet" href="{UI_PREFIX}/static/chat.css?v={css}">'
            f'<script src="{UI_PREFIX}/static/chat.js?v={js}" defer></script>')


# ---- the annex browser ----------------------------------------------------------------------------

def _annex_frame(rows: list[AnnexRow], profile: NoticeProfile) -> pd.DataFrame:
    return pd.DataFrame(
        [[r.item, r.qualification, r.occupation, r.departments_text(), annex_batch_words(r, profile),
          profile.deadline(r.batch) or "—"] for r in rows],
        columns=ANNEX_HEADERS,
    )


SORTS = {"序号（附件顺序）": "item", "批次与退出时间": "batch", "实施部门": "department", "职业资格名称": "qualification",
         "职业": "occupation"}
DEFAULT_SORT = next(iter(SORTS))
_WORD_SPLIT = re.compile(r"[\s\u3000,，、;；/]+")


def load_aliases(path: Path | None) -> dict[str, tuple[str, ...]]:
    """The chat's reviewed alias table (corpus/aliases.csv): what a word users type (厨师) names in the annex
    (中式烹调师, 西式烹调师), so that the annex search understands the words the chat does."""
    out: dict[str, list[str]] = {}
    if path is None or not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        for rec in csv.DictReader(fh):
            alias, target = normalize(rec.get("alias") or ""), normalize(rec.get("target") or "")
            if alias and target and (rec.get("kind") or "").strip() != "none":
                out.setdefault(alias, [])
                if target not in out[alias]:
                    out[alias].append(target)
    return {k: tuple(v) for k, v in out.items()}


def search_words(keyword: str) -> list[str]:
    """The words of a search: split at spaces (half- or full-width) and list punctuation first, then each word
    normalised (繁体/全角 folded) — so "电工 第二批" is two words, not "电工第二批"."""
    return [w for w in (normalize(part) for part in _WORD_SPLIT.split(keyword or "")) if w]


def filter_annex(rows: tuple[AnnexRow, ...], profile: NoticeProfile, keyword: str = "", batch: str = ALL,
                 department: str = ALL, aliases: dict[str, tuple[str, ...]] | None = None,
                 sort: str = DEFAULT_SORT) -> list[AnnexRow]:
    """Rows matching all of: each keyword word (in 序号, names, departments or batch; 繁体/全角 allowed; an alias
    of the chat's matches what it names), a batch, a department; in the order `sort` names (SORTS)."""
    words = search_words(keyword)
    want_batch = batch_choices(profile).get(batch)
    aliases = aliases or {}
    out = []
    for r in rows:
        if want_batch and r.batch != want_batch:
            continue
        if department and department != ALL and department not in r.departments:
            continue
        hay = normalize(f"{r.item} 第{r.item}项 {r.qualification} {r.occupation} {r.departments_text()} "
                        f"{annex_batch_words(r, profile)}")
        if all((w in hay) or (w.isdigit() and int(w) == r.item) or any(t in hay for t in aliases.get(w, ()))
               for w in words):
            out.append(r)
    return sort_annex(out, profile, sort)


def sort_annex(rows: list[AnnexRow], profile: NoticeProfile, sort: str = DEFAULT_SORT) -> list[AnnexRow]:
    key = SORTS.get(sort, "item")
    order = {code: i for i, code in enumerate(batch_choices(profile).values())}
    keys = {
        "item": lambda r: (r.item,),
        "batch": lambda r: (order.get(r.batch, 99), r.item),
        "department": lambda r: (r.departments_text(), r.item),
        "qualification": lambda r: (r.qualification, r.item),
        "occupation": lambda r: (r.occupation, r.item),
    }
    return sorted(rows, key=keys[key])  # stable: rows of one item keep the annex order


def annex_csv(rows: list[AnnexRow], profile: NoticeProfile) -> Path:
    """The rows as a CSV file with its header row (UTF-8 with BOM, so that Excel reads the Chinese), in a scratch
    folder; one file per distinct content."""
    frame = _annex_frame(rows, profile)
    text = frame.to_csv(index=False, lineterminator="\r\n")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "pna-annex-csv"
    folder.mkdir(exist_ok=True)
    path = folder / f"附件目录-{len(rows)}行-{digest}.csv"
    if not path.exists():
        path.write_text("\ufeff" + text, encoding="utf-8", newline="")
    return path


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
    aliases = load_aliases(Path(assistant.config.corpus_dir) / "aliases.csv")
    intro, batch_df, dept_df = annex_summary(rows, profile)
    counts = Counter(d for r in rows for d in r.departments)
    dept_choices = [(ALL, ALL)] + [(f"{d}（{n}）", d) for d, n in sorted(counts.items(), key=lambda x: -x[1])]

    gr.Markdown(intro)
    with gr.Row():
        keyword = gr.Textbox(label="关键词（可用空格分隔多个词）", placeholder="职业、职业资格名称、部门、批次或序号，如：电工 第二批",
                             scale=3, elem_id="pna-annex-keyword")
        batch = gr.Dropdown([ALL, *batch_choices(profile)], value=ALL, label="批次", scale=2,
                            elem_id="pna-annex-batch")
        department = gr.Dropdown(dept_choices, value=ALL, label="实施部门", scale=2, elem_id="pna-annex-dept")
        sort = gr.Dropdown(list(SORTS), value=DEFAULT_SORT, label="排序", scale=2, elem_id="pna-annex-sort")
    with gr.Row():
        shown = gr.Markdown(f"显示 {len(rows)} / {len(rows)} 行", elem_id="pna-annex-count")
        download = gr.DownloadButton("下载表格（含表头）", value=str(annex_csv(list(rows), profile)), size="sm",
                                     scale=0, min_width=160, elem_id="pna-annex-csv")
        reset = gr.Button("重置筛选", scale=0, min_width=100, size="sm", elem_id="pna-annex-reset")
    table = gr.Dataframe(_annex_frame(list(rows), profile), interactive=False, wrap=True, max_height=560,
                         column_widths=["6%", "20%", "17%", "29%", "13%", "15%"], datatype="str",
                         buttons=["fullscreen"], elem_id="pna-annex-table", show_label=False)
    with gr.Accordion("统计：按批次、按实施部门", open=True):
        with gr.Row():
            gr.Dataframe(batch_df, interactive=False, show_label=False, elem_id="pna-annex-by-batch")
            gr.Dataframe(dept_df, interactive=False, show_label=False, max_height=1000,
                         elem_id="pna-annex-by-dept")

    def update(kw: str, b: str, d: str, order: str = DEFAULT_SORT):
        found = filter_annex(rows, profile, kw, b, d, aliases, order)
        note = f"显示 {len(found)} / {len(rows)} 行" + ("" if found else "：没有符合条件的职业，请换个关键词或放宽筛选。")
        return _annex_frame(found, profile), note, str(annex_csv(found, profile))

    # The page address sets the filters on load and shows their rows in the same response. Change events would fire
    # once per filter set, each with the filters after it not yet set, and the last response to arrive won (all 192
    # rows under 第二批 in 4 of 24 loads). So the menus answer `.input` (the user's own choice) only, and the keyword
    # (whose `.input` Gradio ties to key events, which IME and paste input lack) keeps `.change` but is set last, and
    # only when the address gives one: its change then carries the filters already set, and shows the same rows.
    for control in (keyword.change, batch.input, department.input, sort.input):
        control(update, [keyword, batch, department, sort], [table, shown, download], queue=False,
                api_visibility="private", trigger_mode="always_last")
    reset.click(lambda: ("", ALL, ALL, DEFAULT_SORT, *update("", ALL, ALL)), None,
                [keyword, batch, department, sort, table, shown, download], queue=False, api_visibility="private")
    return keyword, batch, department, sort, table, shown, download, update


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
                keyword, batch, department, sort, table, shown, download, show_rows = _annex_tab(assistant)
                gr.Markdown(DISCLAIMER, elem_classes=["pna-footer"])

        def on_load(request: gr.Request):
            query = dict(request.query_params) if request is not None else {}
            open_annex, kw, b, d = annex_request(query, batch_choices(assistant.profile))
            if not open_annex:
                return (gr.update(),) * 8
            known = {name for row in assistant.corpus.annex_rows for name in row.departments}
            d = d if d in known else ALL
            order = query.get("sort", DEFAULT_SORT)
            order = order if order in SORTS else DEFAULT_SORT
            # The filters and the rows they select, in one response; the keyword last (see _annex_tab).
            return (gr.Tabs(selected="annex"), b, d, order, *show_rows(kw, b, d, order), kw or gr.update())

        demo.load(on_load, None, [tabs, batch, department, sort, table, shown, download, keyword], queue=False,
                  api_visibility="private")
    demo.queue(default_concurrency_limit=8)
    return demo


def build_widget(assistant, config: Config, store: FeedbackStore | None = None) -> gr.Blocks:
    """The compact chat for a small floating panel (about 380×600 px, full screen on a phone) on another site."""
    with gr.Blocks(title=f"{TITLE}（小窗）", fill_height=True, analytics_enabled=False) as demo:
        gr.HTML(chat_root("widget", WIDGET_EXAMPLES), js_on_load=None, elem_id="pna-chat-host")
    return demo


def theme() -> gr.themes.Base:
    """Gradio's Soft theme in blue, with label and button colours dark enough for 4.5:1 on their backgrounds
    (Soft's blue-500 labels on blue-100 measure 3.0:1)."""
    return gr.themes.Soft(primary_hue="blue", neutral_hue="slate", font=SANS, font_mono=MONO).set(
        color_accent="*primary_700",
        block_label_text_color="*primary_800", block_title_text_color="*primary_800",
        block_label_text_color_dark="*neutral_50", block_title_text_color_dark="*neutral_50",
        button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
        button_primary_background_fill_dark="*primary_700", button_primary_text_color="white",
        button_primary_text_color_dark="white")


def mount_kwargs(widget: bool = False) -> dict[str, Any]:
    """What gradio 6 takes at mount time rather than in Blocks(): theme, CSS, footer."""
    return {
        # System fonts only: the default theme fonts come from Google Fonts, unreachable in some networks.
        "theme": theme(),
        "css": WIDGET_CSS if widget else CSS,
        # No developer links for the workers who use the chat: Gradio's settings panel (English) and the API docs.
        "footer_links": [],
        "run_history": False,
        "ssr_mode": False,
        "show_error": False,
    }


def mount(app: FastAPI, assistant, config: Config, store: FeedbackStore | None) -> None:
    """Everything the pages need on `app`: the chat endpoints, the widget at /widget/ and the chat at "/"."""
    store = _store(config, store)
    add_ui_routes(app, assistant, store)
    app.add_middleware(ZhPage, head=page_head())
    app.add_middleware(Compress)  # outside ZhPage: it compresses the rewritten page
    # Order matters: the more specific mount first, "/" last (it matches everything not matched before).
    gr.mount_gradio_app(app, build_widget(assistant, config, store), path=WIDGET_PATH, **mount_kwargs(widget=True))
    gr.mount_gradio_app(app, build_chat(assistant, config, store), path="/", **mount_kwargs(widget=False))
