"""What keeps one bad client or one failing request from hurting the others: errors answered on the same
connection, a per-client rate limit, and uvicorn settings with timeouts for idle and half-sent connections."""
from __future__ import annotations

import functools
import json
import logging
import math
import time

from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from .config import Config

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error: the assistant could not answer; the server log has the details"


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class ContainErrors:
    """Pure ASGI middleware: an exception becomes a complete 500 JSON response, and goes no further.

    Starlette's outermost error middleware answers a 500 and then re-raises, and uvicorn closes a connection whose
    application raised: the client's next request on that kept-alive connection is then reset. Catching here,
    inside that middleware, ends the request normally, so the connection stays usable."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001 — any failure of one request stays that request's
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if not started:
                await _send_json(send, 500, {"error": INTERNAL_ERROR})
            else:  # part of a body went out: end it; the client sees a short body, the server goes on
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def is_limited(scope) -> bool:
    """The public API, and every action of the chat and the widget (Gradio's POSTs); not pages, assets or /healthz."""
    path, method = scope.get("path", ""), scope.get("method", "GET")
    if method == "OPTIONS":
        return False
    return path.startswith("/api/") or method == "POST"


class RateLimit:
    """Pure ASGI middleware: at most `Config.rate_limit` requests per client (its address, as uvicorn reports it
    behind a trusted proxy) on the limited paths; more get 429 with Retry-After. A moving window from `limits`."""

    def __init__(self, app, limit: str) -> None:
        self.app = app
        self.item = parse_limit(limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.text = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_limited(scope):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.limiter.hit(self.item, client):
            await self.app(scope, receive, send)
            return
        reset_at = self.limiter.get_window_stats(self.item, client).reset_time
        retry = max(1, math.ceil(reset_at - time.time()))
        await _send_json(send, 429, {"error": f"too many requests: at most {self.text} from one client; "
                                              f"retry in {retry} s"},
                         [(b"retry-after", str(retry).encode())])


def check_rate_limit(limit: str | None) -> None:
    """Fail at start-up, in one line, on a limit `limits` cannot read."""
    if limit:
        try:
            parse_limit(limit)
        except ValueError as exc:
            raise ValueError(f"ASSISTANT_RATE_LIMIT {limit!r} is not a rate limit like '300/minute' ({exc})") from None


# ---- uvicorn ---------------------------------------------------------------------------------------

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # httptools not installed: the pure-Python parser
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol


class GuardedProtocol(_BaseProtocol):
    """uvicorn's HTTP protocol with a deadline for each request to arrive complete (head and body).

    uvicorn closes idle kept-alive connections (timeout_keep_alive) but waits forever for a connection that sends
    nothing or half a request; this closes those after `request_timeout` seconds. A module-level class (not one
    made in a function) so that uvicorn can hand it to worker processes."""

    def __init__(self, *args, request_timeout: float = 10.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self._deadline = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        # The first bytes of the next request on a kept-alive connection start its deadline.
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()
        super().data_received(data)

    if hasattr(_BaseProtocol, "on_message_complete"):
        def on_message_complete(self) -> None:  # httptools: the whole request has arrived
            self._disarm()
            super().on_message_complete()

    if hasattr(_BaseProtocol, "handle_events"):
        def handle_events(self) -> None:  # h11: disarm once a request is complete
            super().handle_events()
            if self.cycle is not None and not self.cycle.more_body:
                self._disarm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete or self.cycle.more_body:
            if not self.transport.is_closing():
                self.transport.close()


def guarded_protocol(request_timeout: float):
    """The protocol factory for uvicorn's `http=` setting (picklable, for worker processes too)."""
    return functools.partial(GuardedProtocol, request_timeout=request_timeout)


def uvicorn_options(config: Config) -> dict:
    """Keyword arguments for uvicorn.run / uvicorn.Config from the one Config (also for a multi-worker serve)."""
    return {
        "host": config.host,
        "port": config.port,
        "proxy_headers": True,
        "timeout_keep_alive": config.timeout_keep_alive,
        "timeout_graceful_shutdown": 5,
        "limit_concurrency": config.limit_concurrency,
        "http": guarded_protocol(config.timeout_request),
    }
