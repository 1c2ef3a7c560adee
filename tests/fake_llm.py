"""A scripted OpenAI-compatible chat endpoint for tests: POST /v1/chat/completions, plain and streamed (SSE).

Stdlib only (http.server in a background thread), bound to 127.0.0.1 on a free port. Each request takes the
next scripted `Reply` (or the default one) and is recorded, headers and JSON body, so a test can look at the
prompt the assistant sent.

    with FakeLLM() as llm:
        llm.script(Reply.text("电工属于第二批[附件第1项]。"))
        config = Config(llm_enabled=True, llm_base_url=llm.base_url, llm_model="fake", ...)
"""
from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Literal

Kind = Literal["text", "status", "garbage", "stall"]


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    text:    a completion whose content is `content` (streamed in `chunk`-character pieces, `delay` s apart).
    status:  an HTTP error with an OpenAI-style JSON error body.
    garbage: HTTP 200 whose body (or, streamed, whose `data:` lines) is not JSON.
    stall:   sleep `seconds` first (streamed: after sending `content`), then answer `content` normally.
    """

    kind: Kind
    content: str = ""
    status: int = 200
    seconds: float = 0.0
    chunk: int = 4
    delay: float = 0.0

    @classmethod
    def text(cls, content: str, chunk: int = 4, delay: float = 0.0) -> "Reply":
        return cls("text", content=content, chunk=chunk, delay=delay)

    @classmethod
    def empty(cls) -> "Reply":
        return cls("text", content="")

    @classmethod
    def http(cls, status: int = 500) -> "Reply":
        return cls("status", status=status)

    @classmethod
    def garbage(cls, body: str = "<html><body>502 Bad Gateway — upstream model crashed</body></html>") -> "Reply":
        return cls("garbage", content=body)

    @classmethod
    def stall(cls, seconds: float, content: str = "") -> "Reply":
        return cls("stall", content=content, seconds=seconds)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    def text(self) -> str:
        """All message contents, joined: what the model was shown."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


@dataclass
class FakeLLM:
    """The server; use as a context manager. `script()` queues replies; `requests` records what came in."""

    default: Reply = field(default_factory=lambda: Reply.text("（默认回复）"))
    chooser: Callable[[Request], Reply | None] | None = None  # picks a reply per request, before the queue
    requests: list[Request] = field(default_factory=list)
    # Requests whose client closed the connection while the reply was still being generated (a cancelled
    # upstream request: a real server stops generating for it).
    abandoned: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> "FakeLLM":
        with self._lock:
            self._queue.clear()
            self._queue.extend(replies)
            self.requests.clear()
            self.abandoned.clear()
        return self

    def next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.chooser is not None:
                chosen = self.chooser(request)
                if chosen is not None:
                    return chosen
            return self._queue.popleft() if self._queue else self.default

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- serving ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake LLM is not running"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "FakeLLM":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-llm-{self.port}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()  # releases stalled handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sleep(self, seconds: float) -> None:
        """A stall that ends early when the server shuts down."""
        self._closing.wait(seconds)

    def wait_for_abandoned(self, count: int = 1, within: float = 5.0) -> bool:
        """True once `count` requests were abandoned by their client (polled; bounded by `within` seconds)."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            if len(self.abandoned) >= count:
                return True
            time.sleep(0.02)
        return len(self.abandoned) >= count


def _client_left(conn: socket.socket, seconds: float, closing: threading.Event) -> bool:
    """Wait up to `seconds`; True as soon as the client closes its end of the connection."""
    end = time.monotonic() + seconds
    while not closing.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return False
        readable, _, _ = select.select([conn], [], [], min(0.05, left))
        if readable:
            try:
                if conn.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
    return False


def _completion(model: str, content: str) -> dict:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(model: str, delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection; a stream ends when the connection closes

        def log_message(self, format, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            request = Request(path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=body)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                fake.requests.append(request)
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                return
            self._request = request
            reply = fake.next_reply(request)
            model = body.get("model", "fake")
            try:
                if reply.kind == "status":
                    self._json(reply.status, {"error": {"message": f"scripted HTTP {reply.status}",
                                                        "type": "server_error", "code": reply.status}})
                elif reply.kind == "garbage":
                    self._garbage(reply, request.stream)
                elif request.stream:
                    self._stream(reply, model)
                else:
                    if reply.kind == "stall":
                        fake.sleep(reply.seconds)
                    self._json(200, _completion(model, reply.content))
            except (BrokenPipeError, ConnectionResetError):
                fake.abandoned.append(request)  # the client gave up while the reply was being written

        def _json(self, status: int, data: dict) -> None:
            payload = json.dumps(data, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _garbage(self, reply: Reply, stream: bool) -> None:
            self.send_response(200)
            if stream:
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(f"data: {reply.content}\n\n".encode("utf-8"))
                self.wfile.write(b"data: {not json at all\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
            else:
                payload = reply.content.encode("utf-8")
                self.send_header("Content-Type", "application/json")  # claims JSON, is not
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        def _sse(self, data: dict | str) -> None:
            text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
            self.wfile.write(f"data: {text}\n\n".encode("utf-8"))
            self.wfile.flush()

        def _stream(self, reply: Reply, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self._sse(_chunk(model, {"role": "assistant", "content": ""}))
            content, step = reply.content, max(1, reply.chunk)
            if reply.kind == "stall":
                if content:  # some tokens, then silence
                    self._sse(_chunk(model, {"content": content}))
                if _client_left(self.connection, reply.seconds, fake._closing):
                    fake.abandoned.append(self._request)
                    return
                self._sse(_chunk(model, {}, finish="stop"))
                self._sse("[DONE]")
                return
            for start in range(0, len(content), step):
                self._sse(_chunk(model, {"content": content[start:start + step]}))
                if reply.delay and _client_left(self.connection, reply.delay, fake._closing):
                    fake.abandoned.append(self._request)
                    return
            self._sse(_chunk(model, {}, finish="stop"))
            self._sse("[DONE]")

    return Handler
