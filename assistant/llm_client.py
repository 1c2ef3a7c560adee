"""The endpoint client: one streamed chat completion from an OpenAI-compatible server, bounded in time and
cancellable from another thread, and the reasons a request fails, as `FallbackReason`s."""
from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from functools import lru_cache

from .checks import FallbackReason

log = logging.getLogger("assistant.generate")

PLACEHOLDER_API_KEY = "not-needed"  # local vLLM / Ollama accept any key; the OpenAI client insists on one
STREAM_TOTAL_FACTOR = 4  # a stream may run this many timeouts in all, as long as it never stalls for one

# ---- failures ----------------------------------------------------------------------------------------

class GenerationFailed(Exception):
    """Generation gave nothing usable; `reason` is the fallback reason."""

    def __init__(self, reason: FallbackReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def failure_reason(exc: BaseException) -> FallbackReason:
    """A short, secret-free reason for an exception raised while talking to the endpoint."""
    if isinstance(exc, GenerationFailed):
        return exc.reason
    import httpx
    import openai

    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return FallbackReason.TIMEOUT
    if isinstance(exc, openai.APIStatusError):
        return FallbackReason.HTTP
    if isinstance(exc, openai.APIConnectionError):
        return FallbackReason.UNREACHABLE
    if isinstance(exc, (httpx.ConnectError, ConnectionRefusedError)):
        return FallbackReason.UNREACHABLE
    if isinstance(exc, (httpx.TransportError, ConnectionError)):
        return FallbackReason.CONNECTION_LOST
    if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError, ValueError, KeyError, TypeError,
                        AttributeError, IndexError, UnicodeDecodeError)):
        return FallbackReason.MALFORMED
    return FallbackReason.ERROR


# ---- talking to the endpoint -------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _client(base_url: str, api_key: str, timeout: float):
    """One OpenAI client per endpoint setting, so its HTTP connection pool is reused across questions."""
    import openai

    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


class Upstream:
    """One streamed chat completion that can be cancelled from another thread: `close()` closes the HTTP
    response, so the server sees the client leave and stops generating."""

    def __init__(self, client, model: str, messages: list[dict], temperature: float, max_tokens: int) -> None:
        self._args = dict(model=model, messages=messages, temperature=temperature, max_tokens=max_tokens, stream=True)
        self._client = client
        self._stream = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def pieces(self) -> Iterator[str]:
        stream = self._client.chat.completions.create(**self._args)
        with self._lock:
            self._stream = stream
            if self._closed.is_set():
                stream.close()
                return
        try:
            for chunk in stream:
                if self._closed.is_set():
                    return
                if not chunk.choices:
                    continue
                content = chunk.choices[0].delta.content
                if content:
                    if not isinstance(content, str):
                        raise GenerationFailed(FallbackReason.MALFORMED)
                    yield content
        finally:
            stream.close()

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 — closing a socket the reader is using may raise there; nothing to do
                pass


def _pump(upstream: Upstream, out: "queue.Queue") -> None:
    """Worker thread: pieces of output into `out`, then ("done", None) or ("error", exc)."""
    try:
        for piece in upstream.pieces():
            out.put(("piece", piece))
        out.put(("done", None))
    except BaseException as exc:  # noqa: BLE001 — handed to the caller's thread, classified there
        out.put(("error", exc))


def bounded(upstream: Upstream, gap: float, total: float) -> Iterator[str]:
    """The upstream's pieces, each within `gap` seconds of the last and all within `total` seconds.

    The request runs in a daemon thread, so a stalled socket never holds up the caller past the deadline; on a
    deadline, an error, or the caller leaving early, the upstream request is closed."""
    out: queue.Queue = queue.Queue()
    worker = threading.Thread(target=_pump, args=(upstream, out), name="llm-call", daemon=True)
    worker.start()
    end = time.monotonic() + total
    try:
        while True:
            wait = min(gap, end - time.monotonic())
            if wait <= 0:
                raise GenerationFailed(FallbackReason.TIMEOUT)
            try:
                kind, value = out.get(timeout=wait)
            except queue.Empty:
                raise GenerationFailed(FallbackReason.TIMEOUT) from None
            if kind == "piece":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        upstream.close()



_THINK = re.compile(r"<think>.*?(</think>|$)", re.S)


def strip_think(text: str) -> str:
    """Reasoning models (Qwen3, DeepSeek-R1) may emit <think>…</think> first; the answer is what follows."""
    return _THINK.sub("", text)


class ThinkFilter:
    """Holds back a leading <think>…</think> block while streaming, so the user sees only the answer."""

    def __init__(self) -> None:
        self.buffer = ""
        self.state = "start"  # start → (thinking →) passing

    def feed(self, piece: str) -> str:
        if self.state == "passing":
            return piece
        self.buffer += piece
        if self.state == "start":
            head = self.buffer.lstrip()
            if head.startswith("<think>"):
                self.state = "thinking"
            elif "<think>".startswith(head):
                return ""  # could still become <think>
            else:
                self.state, out, self.buffer = "passing", self.buffer, ""
                return out
        if self.state == "thinking" and "</think>" in self.buffer:
            out = self.buffer.split("</think>", 1)[1].lstrip()
            self.state, self.buffer = "passing", ""
            return out
        return ""

    def flush(self) -> str:
        out = "" if self.state == "thinking" else self.buffer
        self.buffer = ""
        return out



def log_failure(reason: FallbackReason, exc: BaseException, what: str = "generating an answer",
                 instead: str = "the offline answer") -> None:
    """One warning line: the reason and the exception's class, never request details (they may carry a key)."""
    log.warning("%s with the LLM failed (%s: %s); using %s", what, reason.value, type(exc).__name__, instead)
