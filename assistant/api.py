"""One process serves everything: the HTTP API (/api/…, /healthz, /docs), the widget (/widget), its demo page
(/widget-demo) and the chat (/). All of it wraps the library API: `Assistant.ask` / `Assistant.stream`."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import re
import time
from collections.abc import Iterator
from importlib import resources
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import anyio

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.sse import format_sse_event
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .assistant import Assistant, __version__
from .caches import CacheCheck, CacheFile
from .config import Config
from .feedback import (MAX_COMMENT_CHARS, UNAVAILABLE_MESSAGE, FeedbackInputError, FeedbackStore,
                       FeedbackUnavailable, idempotency_key)
from .guards import (INTERNAL_ERROR, CloseUnusedRoutes, ContainErrors, RateLimit, StreamGuard, check_rate_limit,
                     open_rate_limit_storage, rate_limit_storage_url, uvicorn_options)
from .headers import SecurityHeaders, check_origins
from .index import IndexBuildError
from .normalize import MAX_QUESTION_CHARS, InputError
from .records import Answer, Citation, StreamEvent, Turn

log = logging.getLogger(__name__)

MAX_HISTORY_TURNS = 50
MAX_BODY_BYTES = 256 * 1024
WIDGET_PATH = "/widget"


# ---- request and response bodies (they also make the OpenAPI page at /docs) ----------------------------

class AskRequest(BaseModel):
    """A question, with the conversation so far for follow-ups ("那它的实施部门呢？")."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"question": "电工证什么时候退出目录？"},
        {"question": "那它的实施部门呢？", "id": "q2", "history": [
            {"role": "user", "content": "电工证什么时候退出目录？"},
            {"role": "assistant", "content": "「电工」列在附件第1项……属于第二批，拟于2020年12月31日前退出目录。"}]},
    ]})

    question: str = Field(description=f"the question, 1–{MAX_QUESTION_CHARS} characters")
    history: list[Turn] = Field(default_factory=list,
                                description="earlier turns, oldest first (at most Config.max_history_turns turns "
                                            "and max_history_chars characters)")
    id: str | int | None = Field(default=None, description="echoed back in the answer")


class ErrorBody(BaseModel):
    error: str


class FeedbackRequest(BaseModel):
    """A rating of one answer, as the API returned it."""

    rating: Literal["up", "down"]
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    answer: str = Field(min_length=1, max_length=20000)
    citations: list[Citation] = Field(default_factory=list, max_length=100)
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)
    id: str | int | None = None
    mode: Literal["offline", "llm"] | None = None


class FeedbackCreated(BaseModel):
    feedback_id: int = Field(description="the stored row")
    token: str = Field(description="the only key that can change this rating later (`POST /ui/feedback` with "
                                   "`feedback_id` and `token`); keep it, it is not shown again")


ERRORS = {400: {"model": ErrorBody, "description": "the request body is not JSON"},
          413: {"model": ErrorBody, "description": "the request body is too large"},
          422: {"model": ErrorBody, "description": "a field is missing, has the wrong type or an invalid value"},
          500: {"model": ErrorBody, "description": "internal error (details are only in the server log)"}}
SSE_RESPONSE = {
    "description": "`text/event-stream`: `event: token` / `data: {\"text\": …, \"part\": …}` deltas (whole "
                   "sentences; joined, they are the final answer's text), then one `event: answer` with the Answer "
                   "JSON; `event: error` / `data: {\"error\": …}` if the answer fails part-way. With generation on "
                   "also `event: status` (`{\"text\", \"state\"}`: what the user waits for), `event: offline` (the "
                   "checked offline answer, whole, while the model reads) and `event: notice` (the offline answer "
                   "follows instead of a generated one); docs/llm.md, \"Streaming\".",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
API_ENDPOINTS = {"/api/ask": "POST", "/api/ask/stream": "POST", "/api/feedback": "POST"}


# ---- errors as {"error": "..."} --------------------------------------------------------------------

def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _where(loc: tuple) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def describe_validation_error(errors: list[dict]) -> tuple[int, str]:
    """FastAPI/pydantic errors → (status, one readable sentence)."""
    if not errors:
        return 422, "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return 400, "request body is not valid JSON"
    loc = tuple(first.get("loc", ()))
    if loc in (("body",), ()) and first.get("type") in ("missing", "model_attributes_type", "dict_type"):
        return 422, "request body must be a JSON object"
    if len(loc) >= 2 and loc[:2] == ("body", "id"):
        return 422, "id: must be a string, an integer or null"
    where = _where(loc)
    msg = first.get("msg", "is invalid")
    if first.get("type") == "string_type":
        msg = "must be a string"
    elif first.get("type") == "missing":
        msg = "is required"
    elif first.get("type") == "too_long" and where == "history":
        msg = f"has more than {MAX_HISTORY_TURNS} turns"
    elif first.get("type") == "literal_error" and where.endswith(".role"):
        msg = "must be 'user' or 'assistant'"
    elif first.get("type") in ("model_type", "model_attributes_type") and where.startswith("history["):
        msg = "must be an object {\"role\": \"user\"|\"assistant\", \"content\": str}"
    elif first.get("type") == "list_type":
        msg = "must be a list"
    return 422, f"{where or 'request'}: {msg}"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        status, message = describe_validation_error(list(exc.errors()))
        return _error(status, message)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError):
        return _error(422, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(FeedbackInputError)
    async def _feedback_input(request: Request, exc: FeedbackInputError):
        return _error(422, str(exc))

    @app.exception_handler(FeedbackUnavailable)
    async def _feedback_down(request: Request, exc: FeedbackUnavailable):
        log.warning("feedback not stored: %s", exc)
        return _error(503, UNAVAILABLE_MESSAGE)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, INTERNAL_ERROR)


class BodySizeLimit:
    """Pure ASGI middleware: a request body (any method, any path: the API, the chat's routes, Gradio's) larger
    than `limit` bytes gets a 413 JSON error and the connection is closed; a body to /api/… or /ui/… that is not
    UTF-8 gets a 400 naming the first bad byte.

    The (small) body is read up front and replayed, so chunked uploads are bounded too. Pure ASGI rather than
    @app.middleware("http"), which would also sit in front of Gradio's streaming routes."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = JSONResponse({"error": f"request body is larger than {self.limit // 1024} KiB"},
                                 status_code=413, headers={"Connection": "close"})
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await too_large(scope, receive, send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:  # JSON is UTF-8 (RFC 8259): say where it is not, rather than "error parsing the body"
            if scope["path"].startswith(("/api/", "/ui/")):
                body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await _error(400, f"request body is not valid UTF-8 (byte 0x{body[exc.start]:02X} at byte {exc.start + 1})")(
                scope, receive, send)
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# ---- SSE -------------------------------------------------------------------------------------------

def _sse(event: str, data: dict) -> bytes:
    return format_sse_event(event=event, data_str=json.dumps(data, ensure_ascii=False))


def _sse_stream(first: StreamEvent, rest: Iterator[StreamEvent]) -> Iterator[bytes]:
    """`token` {"text"} events, then one `answer` event with Answer.to_dict(); `error` {"error"} on a failure."""
    events = iter([first])
    sent_answer = False
    try:
        for source in (events, rest):
            for ev in source:
                if ev.kind == "token":
                    yield _sse("token", {"text": ev.text, **({"part": ev.part} if ev.part else {})})
                elif ev.kind == "answer" and ev.answer is not None:
                    yield _sse("answer", ev.answer.to_dict())
                    sent_answer = True
                elif ev.kind == "offline" and ev.answer is not None:
                    yield _sse("offline", ev.answer.to_dict())
                elif ev.kind == "status":
                    yield _sse("status", {"text": ev.text, "state": ev.state})
                elif ev.kind == "notice":
                    yield _sse("notice", {"text": ev.text})
        if not sent_answer:
            yield _sse("error", {"error": "internal error: the answer stream ended without an answer"})
    except Exception:
        log.exception("streaming an answer failed")
        yield _sse("error", {"error": "internal error: the assistant could not finish the answer"})


# ---- the app ---------------------------------------------------------------------------------------

def _ui_file(name: str) -> str:
    return resources.files("ui").joinpath(name).read_text(encoding="utf-8")


def _versions() -> dict[str, str]:
    import fastapi
    import gradio

    return {"assistant": __version__, "python": platform.python_version(), "fastapi": fastapi.__version__,
            "gradio": gradio.__version__}


def _answering_runner(config: Config):
    """Offline answering is pure CPU under the GIL: more threads at once only add switching (measured on 2 cores:
    88 → 157 answers/s at 8 clients with 2 threads instead of 40), so it runs on `answer_threads` threads.
    With an LLM the threads mostly wait on the network, so they keep the default pool."""
    import functools

    import anyio

    limiter = None if config.llm_enabled else anyio.CapacityLimiter(config.answer_threads)

    async def run(func, *args, **kwargs):
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=limiter)

    return run


def _install_middleware(app: FastAPI, config: Config) -> None:
    """Outermost last: security headers → errors contained → CORS (so a 429 is readable cross-origin) → rate
    limit (closed routes count too) → body checks (413 on every route) → unused framework routes closed →
    answer-stream caps."""
    app.add_middleware(StreamGuard, per_client=config.stream_per_client, limit=config.stream_limit,
                       max_seconds=config.stream_max_seconds)
    app.add_middleware(CloseUnusedRoutes)
    app.add_middleware(BodySizeLimit, limit=config.max_body_bytes)
    if config.rate_limit:
        check_rate_limit(config.rate_limit)
        storage = open_rate_limit_storage(rate_limit_storage_url(config))
        app.add_middleware(RateLimit, limit=config.rate_limit, storage=storage)
    if config.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.allowed_origins), allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type", "Idempotency-Key"],
                           max_age=600)
    app.add_middleware(ContainErrors)
    if config.frame_ancestors is not None:
        frame_origins = list(config.frame_ancestors)
        check_origins(frame_origins)  # at start-up, in one line
    else:  # the CORS origins, less what a frame-ancestors list cannot hold ("*")
        frame_origins = [o for o in config.allowed_origins if _is_origin(o)]
    app.add_middleware(SecurityHeaders, frame_origins=list(frame_origins))


def _is_origin(origin: str) -> bool:
    try:
        check_origins([origin])
    except ValueError:
        return False
    return True


# ---- /healthz ------------------------------------------------------------------------------------------

HEALTH_PROBE_SECONDS = 5.0  # a probe answer is reused this long: /healthz stays cheap when polled often
PROBE_QUESTION = "电工证什么时候退出目录？"  # when the profile names no example question
_SECRET_QUERY = re.compile(r"(?i)(key|token|secret|passw|auth|sig)")


def mask_url(url: str) -> str:
    """A URL with its password (and any query value that looks like a key or token) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}" if user else host
    query = "&".join(
        f"{k}=***" if _SECRET_QUERY.search(k) else (f"{k}={v}" if v or "=" in pair else k)
        for pair in parts.query.split("&") if pair for k, _, v in [pair.partition("=")])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def masked(value):
    """Every string in a health body that holds a URL, masked (mask_url)."""
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


class HealthProbe:
    """A real question answered end to end (understanding, retrieval, the answer and its citations) at most every
    HEALTH_PROBE_SECONDS, and the cache files the process loaded checked on disk."""

    def __init__(self, assistant: Assistant, run) -> None:
        self.assistant = assistant
        self.run = run
        self.checked_at = 0.0
        self.result: dict = {}
        self.lock = asyncio.Lock()
        profile = getattr(getattr(assistant, "answerer", None), "profile", None)
        self.question = (getattr(profile, "follow_ups", None) or {}).get("example_job") or PROBE_QUESTION
        self.caches = CacheCheck(_cache_files(assistant))

    async def check(self) -> dict:
        async with self.lock:
            if time.monotonic() - self.checked_at < HEALTH_PROBE_SECONDS and self.result:
                return self.result
            result: dict = {"question": self.question}
            started = time.perf_counter()
            try:
                answer = await self.run(self.assistant.ask, self.question)
                result["ok"] = bool(answer.answered and answer.citations)
                if not result["ok"]:
                    result["error"] = "the probe question was not answered with sources"
            except Exception as exc:  # noqa: BLE001 — whatever fails here fails every answer: report it
                log.error("health probe failed", exc_info=exc)
                result.update(ok=False, error=f"answering fails: {type(exc).__name__}")
            result["ms"] = round((time.perf_counter() - started) * 1000, 1)
            problem = await anyio.to_thread.run_sync(self.caches.problem)
            result["caches"] = problem or "ok"
            if problem:
                result["ok"] = False
            self.result, self.checked_at = result, time.monotonic()
            return result


def _cache_files(assistant: Assistant) -> list[CacheFile]:
    files: list[CacheFile] = []
    retriever = getattr(assistant, "retriever", None)
    if retriever is not None and retriever.token_cache is not None:
        files.append(CacheFile(retriever.token_cache, "tokens", len(retriever.units)))
    understanding = getattr(getattr(assistant, "answerer", None), "understanding", None)
    intents = getattr(understanding, "intents", None)
    if getattr(intents, "cache_path", None) is not None:
        files.append(CacheFile(intents.cache_path, "vectors", len(intents.questions)))
    linker = getattr(understanding, "linker", None)
    key = getattr(getattr(linker, "dictionary", None), "key", None)
    if key and not assistant.config.chroma_url:
        path = assistant.config.index_dir / f"words-{key}.sqlite"
        if path.exists():
            files.append(CacheFile(path, "words"))
    return files


# ---- /docs without a CDN ---------------------------------------------------------------------------------

DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8",
               "favicon.png": "image/png"}


def _docs_asset(name: str) -> bytes | None:
    """swagger-ui's files as the fastapi-offline package ships them (no CDN: the page works offline)."""
    try:
        return resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


def _install_docs(app: FastAPI) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        if _docs_asset("swagger-ui-bundle.js") is None:
            return HTMLResponse("<!doctype html><title>HTTP API</title><p>The interactive page needs the "
                                "fastapi-offline package. The API is described in docs/http-api.md and in "
                                '<a href="/openapi.json">/openapi.json</a>.</p>', status_code=503)
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title + " · docs",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Response:
        data = _docs_asset(name) if name in DOCS_ASSETS else None
        if data is None:
            return _error(404, "not found")
        return Response(data, media_type=DOCS_ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})


def create_app(assistant: Assistant, *, mount_ui: bool = True, feedback: FeedbackStore | None = None) -> FastAPI:
    """The whole service around one loaded Assistant. `mount_ui=False` gives the HTTP API alone."""
    config: Config = assistant.config
    app = FastAPI(
        title="人社厅发〔2020〕80号 政策问答 HTTP API",
        version=__version__,
        description="Answers questions on 人社厅发〔2020〕80号 and its annex, each with the clauses and annex rows "
                    "it rests on. The chat is at `/`, the embeddable widget at `/widget`.",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )
    _install_docs(app)
    _install_error_handlers(app)
    _install_middleware(app, config)
    store = feedback
    if store is None:
        try:
            store = FeedbackStore.from_config(config)
        except Exception:
            log.exception("feedback store unavailable; ratings are not stored")
    app.state.assistant = assistant
    app.state.feedback = store
    run_answering = _answering_runner(config)

    @app.post("/api/ask", response_model=Answer, response_model_exclude_none=False, responses=ERRORS,
              summary="Answer one question", tags=["answers"])
    async def ask(request: AskRequest) -> JSONResponse:
        """The answer with its citations: the same JSON as `assistant ask --json`."""
        checked = assistant.check(request.question, request.history, request.id)  # 422 before any work
        answer = await run_answering(assistant.ask, checked.question, checked.history, id=checked.id)
        return JSONResponse(answer.to_dict())

    @app.post("/api/ask/stream", responses={200: SSE_RESPONSE, **ERRORS},
              summary="Answer one question as server-sent events", tags=["answers"])
    async def ask_stream(request: AskRequest) -> StreamingResponse:
        """`event: token` with `{"text"}` deltas, then one `event: answer` with the same JSON as `/api/ask`;
        `event: error` with `{"error"}` if the answer fails part-way. Bad requests get a 4xx JSON error instead."""
        checked = assistant.check(request.question, request.history, request.id)  # 422, never a broken stream
        events = assistant.stream(checked.question, checked.history, id=checked.id)
        # Runs the grounding now: its errors become a 4xx/5xx, not a broken stream.
        first = await run_answering(next, events, None)
        if first is None:
            raise RuntimeError("the assistant produced no stream events")
        return StreamingResponse(_sse_stream(first, events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/api/feedback", status_code=201, response_model=FeedbackCreated,
              responses={**ERRORS, 200: {"model": FeedbackCreated,
                                         "description": "already stored by an earlier post with this Idempotency-Key"},
                         503: {"model": ErrorBody, "description": "the feedback database is unavailable"}},
              summary="Rate an answer", tags=["feedback"])
    def post_feedback(request: FeedbackRequest, http: Request) -> JSONResponse:
        """👍 (`up`) or 👎 (`down`) on an answer, with an optional comment; stored with the answer and its citations.

        Send an `Idempotency-Key` header (a random UUID made once per rating) and retry with the same key after a
        timeout or a 503: the rating is stored once, and the retry gets the same `feedback_id` and `token`."""
        if store is None:
            raise StarletteHTTPException(503, "feedback storage is not available")
        created = store.create(question=request.question, answer=request.answer, rating=request.rating,
                               citations=request.citations, comment=request.comment, answer_id=request.id,
                               mode=request.mode, channel="api", idempotency_key=idempotency_key(http))
        return JSONResponse({"feedback_id": created.id, "token": created.token},
                            status_code=201 if created.stored else 200)

    probe = HealthProbe(assistant, run_answering)

    @app.get("/healthz", summary="Readiness", tags=["service"],
             responses={503: {"description": "loaded, but the index or the corpus is empty, the probe question is "
                                             "not answered, or a cache file is corrupt"}})
    async def healthz() -> JSONResponse:
        """200 when answers can be served: a probe question answered end to end with sources (cached for a few
        seconds), the cache files the process loaded sound on disk, corpus and index sizes, the index build
        serving, whether vector search works ("vector search degraded": answers then rest on BM25 alone),
        embedding model, LLM settings, feedback storage (tested by a real write), versions. URLs are shown with
        their credentials masked."""
        health = await anyio.to_thread.run_sync(assistant.health)
        llm = dict(health.get("llm", {}))
        llm["configured"] = bool(llm.get("enabled") and llm.get("model") and llm.get("base_url"))
        answered = await probe.check()
        ready = health.get("corpus", {}).get("annex_rows", 0) > 0 and (
            health["index"].get("documents", 0) > 0 or health["index"].get("vector_search") == "degraded"
        ) and answered["ok"]
        status = health.get("status", "ok") if ready else "unavailable"
        feedback_health = (await anyio.to_thread.run_sync(store.health) if store is not None
                           else {"enabled": False, "available": False})
        body = {**health, "status": status, "ready": ready, "llm": llm, "probe": answered,
                "feedback": feedback_health, "versions": _versions()}
        if config.chroma_url:
            body["index"]["chroma_url"] = config.chroma_url
        return JSONResponse(masked(body), status_code=200 if ready else 503)

    @app.get("/widget.js", include_in_schema=False)
    def widget_script() -> Response:
        """The one-line embed: a floating button that opens /widget/ in a panel (docs/widget.md)."""
        return Response(_ui_file("static/widget.js"), media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/widget-demo", response_class=HTMLResponse, include_in_schema=False)
    def widget_demo() -> HTMLResponse:
        """A stand-in customer page that embeds the widget with widget.js."""
        return HTMLResponse(_ui_file("widget_demo.html"))

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
                   include_in_schema=False)
    def api_fallback(rest: str, request: Request) -> JSONResponse:
        # Keeps unknown /api/… paths and wrong methods away from the UI mounted at "/".
        path = f"/api/{rest}"
        if path in API_ENDPOINTS:
            return JSONResponse({"error": f"{request.method} is not allowed here; use {API_ENDPOINTS[path]}"},
                                status_code=405, headers={"Allow": API_ENDPOINTS[path]})
        return _error(404, f"no such API endpoint: {path}")

    if mount_ui:
        _mount_ui(app, assistant, config, store)
    return app


def _mount_ui(app: FastAPI, assistant: Assistant, config: Config, store: FeedbackStore | None) -> None:
    from ui.app import mount

    @app.get(WIDGET_PATH, include_in_schema=False)
    def widget_slash() -> RedirectResponse:
        # Gradio serves the mounted page at "/widget/"; its relative asset URLs need the slash.
        return RedirectResponse(WIDGET_PATH + "/", status_code=307)

    mount(app, assistant, config, store)  # the chat's endpoints under /ui/, the widget, the chat at "/"


WORKER_CONFIG_ENV = "PNA_SERVE_CONFIG"  # the parent's Config (flags included), as JSON, for worker processes


def app_from_environment() -> FastAPI:
    """uvicorn's app factory for `serve --workers N`: each worker process loads its own Assistant from the
    configuration the parent handed down and serves the whole app."""
    raw = os.environ.get(WORKER_CONFIG_ENV)
    config = Config(**json.loads(raw)) if raw else Config()
    return create_app(Assistant.load(config))


def _prepare_index(config: Config) -> None:
    """Make the index, word table and exemplar vectors ready once, before the workers open them (what
    `assistant index` does: no BM25, no UI)."""
    Assistant.prepare(config, rebuild=config.rebuild_stale_index)


def serve(config: Config, workers: int = 1) -> None:
    """Load the Assistant (building a missing index) and serve everything on config.host:config.port.

    With workers > 1 the index is made ready once in a short-lived child process, then uvicorn starts that many
    worker processes sharing the port, each with its own Assistant (the API is stateless per request)."""
    import uvicorn

    common = dict(log_level="info", **uvicorn_options(config))
    if workers <= 1:
        assistant = Assistant.load(config)
        app = create_app(assistant)
        log.warning("serving on http://%s:%s/ (API docs at /docs, widget at %s)", config.host, config.port,
                    WIDGET_PATH)
        uvicorn.run(app, **common)
        return
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=_prepare_index, args=(config,))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise IndexBuildError("the index could not be prepared for the workers (see the message above)")
    data = config.model_dump(mode="json")
    if config.llm_api_key is not None:
        data["llm_api_key"] = config.llm_api_key.get_secret_value()
    os.environ[WORKER_CONFIG_ENV] = json.dumps(data, ensure_ascii=False)
    log.warning("serving on http://%s:%s/ with %d workers (API docs at /docs, widget at %s)", config.host,
                config.port, workers, WIDGET_PATH)
    log.info("the chat, the widget and the API keep no per-process state; queued Gradio components would need "
             "sticky sessions (docs/deploy.md)")
    # A worker loads its Assistant (model, index) before it answers uvicorn's health pings; on a busy machine
    # that takes longer than uvicorn's 5 s default, which would restart the worker again and again.
    uvicorn.run("assistant.api:app_from_environment", factory=True, workers=workers,
                timeout_worker_healthcheck=120, **common)
