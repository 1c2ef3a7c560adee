"""What keeps one bad client or one failing request from hurting the others: errors answered on the same
connection, a per-client rate limit shared by all worker processes, framework routes the product does not use
closed, caps and a time limit on answer streams, and uvicorn settings with timeouts for idle, half-sent and unread
connections and a cap on connections per client address."""
from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
import re
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import anyio
from limits import parse as parse_limit
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

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


class SQLiteStorage(Storage):
    """A `limits` storage in one SQLite file, so that every worker process of a host counts the same hits (fixed
    windows: a counter and its expiry per key). Writes are short transactions in WAL mode; durability is not
    needed (synchronous=OFF). Replicas on several hosts share a Redis instead (`redis://…`)."""

    STORAGE_SCHEME = ["pna-sqlite"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = Path(uri.split("://", 1)[1])
        self._local = threading.local()

    @property
    def base_exceptions(self):
        return (sqlite3.Error, OSError)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=0.5, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE IF NOT EXISTS hits (key TEXT PRIMARY KEY, count INTEGER NOT NULL, "
                       "expires REAL NOT NULL)")
            self._local.db = db
        return db

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        db = self._db()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT count, expires FROM hits WHERE key = ?", (key,)).fetchone()
            if row is None or row[1] <= now:
                count, expires = amount, now + expiry
            else:
                count, expires = row[0] + amount, row[1]
            db.execute("INSERT OR REPLACE INTO hits (key, count, expires) VALUES (?, ?, ?)", (key, count, expires))
            if row is None and count == amount and hash(key) % 64 == 0:  # now and then, forget old windows
                db.execute("DELETE FROM hits WHERE expires < ?", (now - 60,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return count

    def get(self, key: str) -> int:
        row = self._db().execute("SELECT count FROM hits WHERE key = ? AND expires > ?", (key, time.time())).fetchone()
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._db().execute("SELECT expires FROM hits WHERE key = ?", (key,)).fetchone()
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        return self._db().execute("DELETE FROM hits").rowcount

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM hits WHERE key = ?", (key,))


def rate_limit_storage_url(config: Config) -> str:
    """The configured rate-limit storage as a `limits` URL; the default is a SQLite file beside the feedback one."""
    if config.rate_limit_storage:
        return config.rate_limit_storage
    return f"pna-sqlite://{Path(config.feedback_db).resolve().parent / 'ratelimit.sqlite3'}"


def open_rate_limit_storage(url: str) -> Storage:
    """A `limits` storage for a URL (pna-sqlite://path, memory://, redis://…); ValueError in one line otherwise."""
    try:
        return storage_from_string(url)
    except Exception as exc:  # noqa: BLE001 — an unknown scheme or a missing client library
        raise ValueError(f"ASSISTANT_RATE_LIMIT_STORAGE {url!r} cannot be used ({str(exc).splitlines()[0]})") from None


class RateLimit:
    """Pure ASGI middleware: at most `Config.rate_limit` requests per client (its address, as uvicorn reports it;
    a forwarded address only from `Config.trusted_proxies`) on the limited paths; more get 429 with Retry-After.

    Counted in `storage` (fixed windows): a SQLite file shared by the worker processes of a host by default, a
    Redis for replicas on several hosts. Without a storage, a moving window in this process's memory. A storage
    that fails lets requests through (logged): nginx `limit_req` is the limit at the edge (deploy/nginx.conf)."""

    def __init__(self, app, limit: str, storage: Storage | None = None) -> None:
        self.app = app
        self.item = parse_limit(limit)
        if storage is None:
            self.limiter = MovingWindowRateLimiter(MemoryStorage())
            self._threads = None
        else:
            self.limiter = FixedWindowRateLimiter(storage)
            self._threads = anyio.CapacityLimiter(4)
        self.text = limit
        self._warned = 0.0

    async def _hit(self, client: str) -> bool:
        if self._threads is None:
            return self.limiter.hit(self.item, client)
        try:
            return await anyio.to_thread.run_sync(self.limiter.hit, self.item, client, limiter=self._threads)
        except Exception as exc:  # noqa: BLE001 — a failing counter must not fail the request
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("rate limit not counted (storage failing: %s); nginx limit_req still applies", exc)
            return True

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_limited(scope):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if await self._hit(client):
            await self.app(scope, receive, send)
            return
        try:
            reset_at = self.limiter.get_window_stats(self.item, client).reset_time
        except Exception:  # noqa: BLE001
            reset_at = time.time() + 1
        retry = max(1, math.ceil(reset_at - time.time()))
        await _send_json(send, 429, {"error": f"too many requests: at most {self.text} from one client; "
                                              f"retry in {retry} s"},
                         [(b"retry-after", str(retry).encode())])


# ---- routes the product does not use ------------------------------------------------------------------

# Gradio serves more than the chat uses. Closed (404), under "/" and under /widget/: the hot-reload event stream,
# uploads and the files they leave, the file and proxy routes, the queue and heartbeat event streams (the pages'
# events all run without the queue and keep no session state), the client API's call routes, media streams,
# monitoring, run history and the vibe editor.
UNUSED_ROUTES = re.compile(
    r"^(?:/widget)?/(?:gradio_api/)?(?:dev/reload|upload(?:_progress)?|file[=/]|proxy=|heartbeat/|queue/|call/|"
    r"stream/|process_recording|component_server|vibe|undo-vibe|run-history|runs\b|mcp|monitoring)")


# The one file the pages hand out through Gradio's file route: the annex table as CSV (ui/app.py annex_csv). With
# uploads closed, Gradio's cache holds only files the app made; the route stays closed for every other name.
APP_FILE = re.compile(r"/(?:gradio_api/)?file=.*/附件目录-\d+行-[0-9a-f]{12}\.csv$")


def is_unused_route(path: str) -> bool:
    return bool(UNUSED_ROUTES.match(path)) and not APP_FILE.search(unquote(path))


class CloseUnusedRoutes:
    """Pure ASGI middleware: 404 for the framework routes the product does not use (UNUSED_ROUTES)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and is_unused_route(scope.get("path", "")):
            await _send_json(send, 404, {"error": "not found"}, [(b"connection", b"close")])
            return
        if scope["type"] == "websocket":  # nothing here speaks websocket
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


# ---- answer streams -------------------------------------------------------------------------------------

STREAM_PATHS = ("/api/ask/stream", "/ui/ask/stream")


class StreamGuard:
    """Pure ASGI middleware for the answer streams (server-sent events): at most `per_client` open at once per
    client (429), at most `limit` per process (503), and each ended after `max_seconds`. Other routes answer at
    once and are not counted."""

    def __init__(self, app, per_client: int = 8, limit: int = 500, max_seconds: float = 120.0) -> None:
        self.app = app
        self.per_client = per_client
        self.limit = limit
        self.max_seconds = max_seconds
        self.open: dict[str, int] = {}
        self.total = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in STREAM_PATHS:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.open.get(client, 0) >= self.per_client:
            await _send_json(send, 429, {"error": f"too many answer streams open from one client (at most "
                                                  f"{self.per_client}); wait for one to finish"},
                             [(b"retry-after", b"1")])
            return
        if self.total >= self.limit:
            await _send_json(send, 503, {"error": "the server is busy; please try again in a moment"},
                             [(b"retry-after", b"1")])
            return
        self.open[client] = self.open.get(client, 0) + 1
        self.total += 1
        state = {"started": False, "ended": False}

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["ended"] = True
            await send(message)

        try:
            with anyio.move_on_after(self.max_seconds) as deadline:
                await self.app(scope, receive, tracking_send)
            if deadline.cancelled_caught:
                log.warning("an answer stream to %s was ended after %g s", client, self.max_seconds)
                if not state["started"]:
                    await _send_json(send, 503, {"error": "the answer took too long; please try again"})
                elif not state["ended"]:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.total -= 1
            left = self.open.get(client, 1) - 1
            if left:
                self.open[client] = left
            else:
                self.open.pop(client, None)


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

    open_per_peer: dict[str, int] = {}  # connections open per peer address, in this process

    def __init__(self, *args, request_timeout: float = 10.0, write_timeout: float = 30.0,
                 per_client: int | None = None, trusted: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self.write_timeout = write_timeout
        self.per_client = per_client
        self.trusted = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)
        self._deadline = None
        self._write_deadline = None
        self._peer: str | None = None

    def connection_made(self, transport):
        super().connection_made(transport)
        peer = (transport.get_extra_info("peername") or ("",))[0]
        if self.per_client and peer and not self._is_trusted(peer):
            if self.open_per_peer.get(peer, 0) >= self.per_client:
                # One address holding this many connections is not a browser: refused at once, so that idle or
                # slow connections from one client cannot fill the server.
                transport.abort()
                return
            self._peer = peer
            self.open_per_peer[peer] = self.open_per_peer.get(peer, 0) + 1
        self._arm()

    def _is_trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    # A client that stops reading: the transport's buffer fills and it pauses our writes. If it does not take the
    # data within write_timeout seconds the connection is dropped (abort: a close would wait for the buffer).
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.write_timeout, self._write_expired)

    def resume_writing(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        super().resume_writing()

    def _write_expired(self) -> None:
        self._write_deadline = None
        if not self.transport.is_closing() or self.transport.get_write_buffer_size():
            self.transport.abort()

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
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        if self._peer is not None:
            left = self.open_per_peer.get(self._peer, 1) - 1
            if left > 0:
                self.open_per_peer[self._peer] = left
            else:
                self.open_per_peer.pop(self._peer, None)
            self._peer = None
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


def guarded_protocol(request_timeout: float, write_timeout: float = 30.0, per_client: int | None = None,
                     trusted: tuple[str, ...] = ()):
    """The protocol factory for uvicorn's `http=` setting (picklable, for worker processes too)."""
    return functools.partial(GuardedProtocol, request_timeout=request_timeout, write_timeout=write_timeout,
                             per_client=per_client, trusted=tuple(trusted))


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's open-files limit (inherited by worker processes) towards `wanted` + headroom, up to
    the hard limit; returns the soft limit in force."""
    try:
        import resource
    except ImportError:  # not on this platform
        return wanted + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + 256 if hard == resource.RLIM_INFINITY else min(hard, wanted + 256)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def uvicorn_options(config: Config) -> dict:
    """Keyword arguments for uvicorn.run / uvicorn.Config from the one Config (also for a multi-worker serve).

    X-Forwarded-For is believed only from `trusted_proxies`; connections are capped at what the open-files limit
    allows (each one is a file descriptor)."""
    concurrency = config.limit_concurrency
    if concurrency is not None:
        files = raise_open_files_limit(concurrency)
        if files < concurrency + 64:
            log.warning("ASSISTANT_LIMIT_CONCURRENCY %d lowered to %d: the open-files limit is %d", concurrency,
                        max(1, files - 64), files)
            concurrency = max(1, files - 64)
    return {
        "host": config.host,
        "port": config.port,
        "proxy_headers": bool(config.trusted_proxies),
        "forwarded_allow_ips": ",".join(config.trusted_proxies) or "",
        "timeout_keep_alive": config.timeout_keep_alive,
        "timeout_graceful_shutdown": 5,
        "limit_concurrency": concurrency,
        "http": guarded_protocol(config.timeout_request, config.timeout_write, config.limit_connections_per_client,
                                 tuple(config.trusted_proxies)),
    }
