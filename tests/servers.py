"""A real server for the HTTP and browser tests: the whole app (API + chat + widget) under uvicorn, in a
background thread, on a free loopback port. No project code is mocked."""
from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # tests stay on loopback

import uvicorn  # noqa: E402

from assistant import Assistant  # noqa: E402
from assistant.api import create_app  # noqa: E402

ALLOWED_ORIGIN = "https://helpdesk.example.org"
STARTUP_TIMEOUT = 60.0


@contextmanager
def running(app, timeout: float = STARTUP_TIMEOUT) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:<free port> until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the server is handed the bound socket: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2,
                                           timeout_keep_alive=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server stopped while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the test server did not start within {timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def service_assistant(assistant: Assistant, tmp: Path) -> Assistant:
    """The session's loaded Assistant with serving settings for tests: a CORS origin and a scratch feedback DB."""
    config = assistant.config.model_copy(update={
        "allowed_origins": [ALLOWED_ORIGIN],
        # the sites that may frame the widget: the CORS origin, and the browser tests' host site on loopback
        # (http://localhost:<any port>, a different site from the assistant's http://127.0.0.1)
        "frame_ancestors": [ALLOWED_ORIGIN, "http://localhost:*"],
        "feedback_db": tmp / "feedback.sqlite3",
    })
    return dataclasses.replace(assistant, config=config)


@contextmanager
def live_app(assistant: Assistant, tmp: Path) -> Iterator[tuple[str, Assistant]]:
    """The full app (API, chat at "/", widget at "/widget") around a real Assistant; yields (base URL, assistant)."""
    served = service_assistant(assistant, tmp)
    with running(create_app(served)) as base:
        yield base, served
