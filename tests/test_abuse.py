"""Held under abuse (issue 17): no anonymous client can take the service down, rewrite feedback, fill the disk or
change a stated fact. Everything runs on loopback, bounded in count and time; tests that hold many connections are
marked slow. Separate clients are separate loopback addresses (127.0.x.y)."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import socket
import statistics
import threading
import time
import uuid

import httpx
import pytest

from assistant.api import create_app, mask_url
from assistant.feedback import FeedbackStore
from servers import ALLOWED_ORIGIN, live_app, running
from services import assistant_env, start_replica, stop

TIMEOUT = 60
FEEDBACK = {"rating": "up", "question": "电工证什么时候退出目录？", "answer": "属于第二批。",
            "citations": [{"source": "annex", "item": 1, "label": "附件第1项", "quote": "1 机械设备修理人员 电工"}]}


@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    with live_app(assistant, tmp_path_factory.mktemp("abuse")) as pair:
        yield pair


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served[0], timeout=TIMEOUT) as c:
        yield c


# ---- routes the product does not use, body limits, headers ---------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", "/gradio_api/dev/reload"), ("GET", "/widget/gradio_api/dev/reload"),
    ("GET", "/gradio_api/upload_progress?upload_id=x"), ("GET", "/gradio_api/file=/etc/hostname"),
    ("GET", "/gradio_api/file/etc/hostname"), ("GET", "/gradio_api/heartbeat/abc"),
    ("GET", "/gradio_api/queue/data?session_hash=abc"), ("GET", "/widget/gradio_api/heartbeat/abc"),
    ("POST", "/gradio_api/queue/join"), ("GET", "/gradio_api/proxy=http://127.0.0.1/"),
])
def test_framework_routes_the_product_does_not_use_are_closed(client, method, path):
    started = time.monotonic()
    r = client.request(method, path)
    assert r.status_code == 404 and time.monotonic() - started < 5  # answered at once, never held open


def test_anonymous_uploads_are_refused(client):
    r = client.post("/gradio_api/upload", files={"files": ("x.txt", b"hello " * 1000, "text/plain")})
    assert r.status_code == 404
    assert client.get("/").status_code == 200  # the chat page is still served


def _post_routes(app) -> set[str]:
    """Every POST route of the app, the mounted Gradio apps' included (their path parameters filled in)."""
    from starlette.routing import Mount

    found: set[str] = set()

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif hasattr(route, "original_router"):  # FastAPI's included router (its routes carry its prefix)
                walk(route.original_router.routes, prefix + getattr(route.include_context, "prefix", ""))
            elif "POST" in (getattr(route, "methods", None) or ()):
                path = prefix + route.path
                for name in ("{api_name}", "{event_id}", "{rest:path}", "{path:path}", "{id}"):
                    path = path.replace(name, "x")
                found.add(path)
    walk(app.routes, "")
    return found


def test_a_2_mb_body_to_every_post_route_is_413(assistant, served, client):
    app = create_app(dataclasses.replace(served[1]))
    routes = _post_routes(app)
    assert {"/api/ask", "/api/ask/stream", "/api/feedback", "/ui/ask/stream", "/ui/feedback",
            "/gradio_api/upload", "/gradio_api/run/x", "/widget/gradio_api/run/x"} <= routes
    body = b'{"question": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    for path in sorted(routes):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.status_code)

        def chunks():  # no Content-Length: counted as it arrives
            for i in range(0, len(body), 256 * 1024):
                yield body[i:i + 256 * 1024]
        r = client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (path, "chunked", r.status_code)
    assert client.post("/api/ask", json={"question": "电工是第几批？"}).status_code == 200


def test_security_headers_on_pages_api_and_widget(client):
    for path in ("/", "/docs", "/healthz", "/widget-demo", "/widget/"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "default-src 'self'" in csp and "object-src 'none'" in csp
        ancestors = csp.split("frame-ancestors", 1)[1]
        if path.startswith("/widget/"):
            assert ALLOWED_ORIGIN in ancestors  # the helpdesk's site may frame the widget
        else:
            assert ancestors.strip() == "'self'" and r.headers["x-frame-options"] == "SAMEORIGIN"
    r = client.post("/api/ask", json={"question": "电工是第几批？"})
    assert r.headers["x-content-type-options"] == "nosniff"


def test_frame_ancestors_are_configurable(assistant, tmp_path):
    config = assistant.config.model_copy(update={"frame_ancestors": ["https://portal.example.gov.cn"],
                                                 "feedback_db": tmp_path / "f.sqlite3"})
    with running(create_app(dataclasses.replace(assistant, config=config), mount_ui=False)) as base:
        csp = httpx.get(base + "/widget.js", timeout=TIMEOUT).headers["content-security-policy"]
        assert "https://portal.example.gov.cn" not in csp  # only /widget/… may be framed by it
        from assistant.headers import security_headers

        widget = dict(security_headers("/widget/", "'self' https://portal.example.gov.cn"))
        assert widget[b"content-security-policy"].endswith(b"frame-ancestors 'self' https://portal.example.gov.cn")
    from pydantic import ValidationError

    from assistant.config import Config

    with pytest.raises(ValidationError, match="is not an origin"):
        Config(frame_ancestors=["*"])


def test_docs_load_nothing_from_another_host(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert "cdn" not in page.text and "https://" not in page.text.replace("https://fastapi", "")
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = client.get(f"/docs-assets/{name}")
        assert r.status_code == 200 and len(r.content) > 10_000
    assert client.get("/docs-assets/../../etc/passwd").status_code == 404


# ---- feedback ----------------------------------------------------------------------------------------------

def test_a_second_client_cannot_change_another_clients_feedback(served):
    base, assistant = served
    store = FeedbackStore(assistant.config.feedback_db)
    alice = httpx.Client(base_url=base, timeout=TIMEOUT, transport=httpx.HTTPTransport(local_address="127.0.3.1"))
    mallory = httpx.Client(base_url=base, timeout=TIMEOUT, transport=httpx.HTTPTransport(local_address="127.0.3.2"))
    with alice, mallory:
        api_row = alice.post("/api/feedback", json={**FEEDBACK, "comment": "有用"}).json()
        ui_row = alice.post("/ui/feedback", json={**FEEDBACK, "channel": "chat"}).json()
        for row in (api_row, ui_row):
            for guess in ({}, {"token": "0" * 32}, {"token": api_row["token"] if row is ui_row else ui_row["token"]}):
                r = mallory.post("/ui/feedback", json={"feedback_id": row["feedback_id"], "rating": "down",
                                                       "comment": "", **guess})
                assert r.status_code == 404
            assert store.get(row["feedback_id"])["rating"] == "up"
        assert store.get(api_row["feedback_id"])["comment"] == "有用"
        r = alice.post("/ui/feedback", json={"feedback_id": ui_row["feedback_id"], "token": ui_row["token"],
                                             "comment": "补充"})
        assert r.status_code == 200 and store.get(ui_row["feedback_id"])["comment"] == "补充"


def test_a_retried_feedback_post_is_stored_once(served, client):
    _, assistant = served
    store = FeedbackStore(assistant.config.feedback_db)
    before = len(store.rows())
    key = str(uuid.uuid4())
    first = client.post("/api/feedback", json=FEEDBACK, headers={"Idempotency-Key": key})
    again = client.post("/api/feedback", json=FEEDBACK, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    ui_key = str(uuid.uuid4())
    ui = [client.post("/ui/feedback", json={**FEEDBACK, "channel": "widget"}, headers={"Idempotency-Key": ui_key})
          for _ in range(3)]
    assert len({r.json()["feedback_id"] for r in ui}) == 1
    assert len(store.rows()) == before + 2
    bad = client.post("/api/feedback", json=FEEDBACK, headers={"Idempotency-Key": "1"})
    assert bad.status_code == 422 and "idempotency key" in bad.json()["error"]


# ---- /healthz ----------------------------------------------------------------------------------------------

def test_healthz_masks_credentials_in_every_url(assistant, tmp_path):
    config = assistant.config.model_copy(update={
        "llm_base_url": "https://svc:hunter2@llm.example.org/v1?api_key=SECRET123&region=cn",
        "feedback_db": tmp_path / "f.sqlite3"})
    with running(create_app(dataclasses.replace(assistant, config=config), mount_ui=False)) as base:
        r = httpx.get(base + "/healthz", timeout=TIMEOUT)
    assert r.status_code == 200
    assert "hunter2" not in r.text and "SECRET123" not in r.text
    assert r.json()["llm"]["base_url"] == "https://svc:***@llm.example.org/v1?api_key=***&region=cn"
    assert mask_url("postgresql+psycopg://fb:pw@db:5432/fb") == "postgresql+psycopg://fb:***@db:5432/fb"
    assert mask_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


@pytest.fixture()
def own_index(assistant, tmp_path):
    """An Assistant over a copy of the session's index folder (its cache files may be damaged here)."""
    from assistant import Assistant

    index_dir = tmp_path / "index"
    shutil.copytree(assistant.config.index_dir, index_dir)
    config = assistant.config.model_copy(update={"index_dir": index_dir, "feedback_db": tmp_path / "f.sqlite3"})
    return Assistant.load(config)


@pytest.mark.parametrize("damage", ["tokens-empty", "vectors-shape", "words-garbage"])
def test_healthz_is_503_while_a_cache_file_it_loaded_is_corrupt(own_index, monkeypatch, damage):
    import assistant.api as api

    monkeypatch.setattr(api, "HEALTH_PROBE_SECONDS", 0.0)
    index_dir = own_index.config.index_dir
    with running(create_app(own_index, mount_ui=False)) as base:
        assert httpx.get(base + "/healthz", timeout=TIMEOUT).json()["probe"]["ok"] is True
        kind, how = damage.split("-")
        pattern = {"tokens": "bm25-tokens-*.json", "vectors": "intent-exemplars-*.json", "words": "words-*.sqlite"}
        [path] = list(index_dir.glob(pattern[kind]))
        saved = path.read_bytes()
        if how == "empty":
            path.write_text("[]")
        elif how == "shape":
            path.write_text(json.dumps([[0.1, 0.2, 0.3]] * 3))
        else:
            path.write_bytes(b"not a database" * 100)
        r = httpx.get(base + "/healthz", timeout=TIMEOUT)
        assert r.status_code == 503 and r.json()["ready"] is False
        assert path.name in r.json()["probe"]["caches"]
        if kind != "words":  # the word table is read from its file as questions come: those fail until it is back
            assert httpx.post(base + "/api/ask", json={"question": "电工是第几批？"},
                              timeout=TIMEOUT).status_code == 200
        path.write_bytes(saved)
        assert httpx.get(base + "/healthz", timeout=TIMEOUT).status_code == 200


def test_caches_of_the_wrong_shape_are_not_answered_from(own_index):
    """What made every question a 500: an empty token cache and exemplar vectors of the wrong shape, found at load."""
    from assistant import Assistant

    index_dir = own_index.config.index_dir
    [tokens] = index_dir.glob("bm25-tokens-*.json")
    [vectors] = index_dir.glob("intent-exemplars-*.json")
    tokens.write_text("[]")
    vectors.write_text(json.dumps([[1.0, 0.0]] * 2))
    again = Assistant.load(own_index.config)
    answer = again.ask("电工证什么时候退出目录？")
    assert answer.answered and "第二批" in answer.answer
    assert len(json.loads(tokens.read_text())) == len(again.retriever.units)  # made again


# ---- answer streams ----------------------------------------------------------------------------------------

def _slow_stream_app(seconds: float):
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from assistant.guards import StreamGuard

    async def stream(request):
        async def body():
            for _ in range(int(seconds * 10)):
                yield b"event: token\ndata: {}\n\n"
                await asyncio.sleep(0.1)
        return StreamingResponse(body(), media_type="text/event-stream")
    app = Starlette(routes=[Route("/ui/ask/stream", stream, methods=["POST"])])
    return StreamGuard(app, per_client=3, limit=5, max_seconds=6)


def test_answer_streams_are_capped_per_client_and_in_time(tmp_path):
    with running(_slow_stream_app(30)) as base:
        one = [httpx.Client(base_url=base, timeout=10, transport=httpx.HTTPTransport(local_address="127.0.4.1"))
               for _ in range(4)]
        others = [httpx.Client(base_url=base, timeout=10,
                               transport=httpx.HTTPTransport(local_address=f"127.0.4.{n}")) for n in (2, 3, 4)]
        try:
            contexts = [c.stream("POST", "/ui/ask/stream") for c in one[:3]]  # kept: a dropped one closes
            held = [cm.__enter__() for cm in contexts]
            assert [r.status_code for r in held] == [200, 200, 200]
            assert one[3].post("/ui/ask/stream").status_code == 429  # a fourth from the same client
            contexts += [others[0].stream("POST", "/ui/ask/stream"), others[1].stream("POST", "/ui/ask/stream")]
            second, third = contexts[3].__enter__(), contexts[4].__enter__()
            assert (second.status_code, third.status_code) == (200, 200)
            assert others[2].post("/ui/ask/stream").status_code == 503  # five open in all
            started = time.monotonic()
            for r in held + [second, third]:
                r.read()  # each is ended by the server after max_seconds, not after 30 s
            assert time.monotonic() - started < 15
            assert one[3].post("/ui/ask/stream").status_code == 200  # the slots are free again
        finally:
            for c in one + others:
                c.close()


# ---- trusted proxies and the shared rate limit -------------------------------------------------------------

def test_forwarded_addresses_are_believed_only_from_configured_proxies(assistant):
    from pydantic import ValidationError

    from assistant.guards import uvicorn_options

    plain = uvicorn_options(assistant.config)
    assert plain["proxy_headers"] is False  # no proxy configured: X-Forwarded-For is ignored, even from 127.0.0.1
    behind = uvicorn_options(assistant.config.model_copy(update={"trusted_proxies": ["10.1.2.3", "10.8.0.0/16"]}))
    assert behind["proxy_headers"] is True and behind["forwarded_allow_ips"] == "10.1.2.3,10.8.0.0/16"
    from assistant.config import Config

    with pytest.raises(ValidationError, match="not an IP address"):
        Config(trusted_proxies=["nginx.local"])


@pytest.mark.slow
def test_two_workers_together_admit_at_most_the_limit_per_client(tmp_path):
    env = assistant_env(ASSISTANT_RATE_LIMIT="40/minute", ASSISTANT_FEEDBACK_DB=str(tmp_path / "f.sqlite3"),
                        ASSISTANT_INDEX_DIR=str(tmp_path / "index"))
    replica = start_replica("limited", tmp_path, env, "--workers", "2", timeout=300)
    try:
        def send(n: int) -> int:
            # one client (127.0.0.1) that also claims to be many others: no proxy is trusted, so it is not believed
            with httpx.Client(timeout=30) as c:
                return c.post(replica.url + "/api/ask", json={"question": "电工是第几批？"},
                              headers={"X-Forwarded-For": f"10.0.{n % 250}.{n % 7}"}).status_code
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(send, range(150)))
        assert statuses.count(200) == 40 and statuses.count(429) == 110, statuses
        with httpx.Client(timeout=30, transport=httpx.HTTPTransport(local_address="127.0.5.1")) as c:
            other = c.post(replica.url + "/api/ask", json={"question": "电工是第几批？"})
        assert other.status_code == 200  # another client has its own count
        log = replica.log.read_text(errors="replace")
        assert "10.0." not in log  # a claimed address never reaches the access log
    finally:
        stop(replica.proc)


# ---- held connections ----------------------------------------------------------------------------------------

def test_a_reader_that_stalls_is_dropped_after_the_write_timeout():
    """A client that asks for something large and stops reading is dropped after ASSISTANT_TIMEOUT_WRITE seconds
    (asyncio pauses the server's writes; a close would wait for the buffer forever, so the connection is aborted)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from assistant.guards import guarded_protocol

    big = b"x" * (20 * 1024 * 1024)

    async def large(request):
        return Response(big, media_type="application/octet-stream")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/large", large)]), log_level="warning",
                                           http=guarded_protocol(10, 1.0, 100)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(4)  # reads nothing for longer than the write timeout
        stalled.settimeout(5)
        got, ended = 0, False
        try:
            while chunk := stalled.recv(1 << 20):
                got += len(chunk)
            ended = True
        except ConnectionResetError:
            ended = True
        except TimeoutError:
            pass
        assert ended and got < len(big)  # dropped by the server part-way, not served to a reader that stalled
        stalled.close()
        reader = socket.create_connection(("127.0.0.1", port))  # a reader that keeps up gets it all
        reader.sendall(b"GET /large HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        total = 0
        while chunk := reader.recv(1 << 20):
            total += len(chunk)
        assert total > len(big)
        reader.close()
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


async def _attack(port: int, big_asset: str, counts: dict, stop_at: float) -> None:
    """1,100 connections from 110 loopback addresses that try to hold the server: streams never read, a large
    asset never read, the hot-reload stream; plus 200 slow-header connections from one address."""
    async def hold(n: int, request: bytes, kind: str) -> None:
        local = (f"127.0.{10 + n // 100}.{1 + n % 100 // 10 * 10 + n % 10}", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local, limit=1024)
            writer.transport.set_write_buffer_limits(0)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        except OSError:
            counts["refused"] += 1
            return
        counts["opened"] += 1
        writer.write(request)
        writer.transport.pause_reading()  # never read while the attack lasts: the server's writes back up
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        writer.transport.resume_reading()
        closed = False
        try:  # then: has the server closed it (it must have, one way or another), or is it still held?
            while True:
                if await asyncio.wait_for(reader.read(65536), 3) == b"":
                    closed = True
                    break
        except (asyncio.TimeoutError, TimeoutError):
            pass
        except (ConnectionError, OSError):
            closed = True
        counts["closed_by_server" if closed else "held_to_end"] += 1
        counts[f"{kind}_closed" if closed else f"{kind}_held"] += 1
        writer.close()

    async def slow_header(n: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.9.9", 0))
        except OSError:
            counts["slow_refused"] += 1
            return
        counts["slow_opened"] += 1
        try:
            for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
                if time.monotonic() > stop_at:
                    break
                writer.write(bytes([ch]))
                await writer.drain()
                await asyncio.sleep(1)
                if reader.at_eof():
                    break
        except (ConnectionError, OSError):
            pass
        counts["slow_closed"] += 1
        writer.close()

    question = '{"question": "第一批有哪些职业？"}'.encode()
    streams = (b"POST /ui/ask/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(question), question))
    asset = f"GET {big_asset} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    reload = b"GET /gradio_api/dev/reload HTTP/1.1\r\nHost: x\r\n\r\n"
    tasks = []
    for n in range(1100):
        tasks.append(hold(n, [streams, asset, reload][n % 3], ["stream", "asset", "reload"][n % 3]))
        if n % 50 == 0:
            await asyncio.sleep(0.05)  # about 1,100 in a few seconds
    tasks += [slow_header(n) for n in range(200)]
    await asyncio.gather(*tasks)


@pytest.mark.slow
def test_held_connections_do_not_take_the_service_down(tmp_path):
    env = assistant_env(ASSISTANT_FEEDBACK_DB=str(tmp_path / "f.sqlite3"), ASSISTANT_TIMEOUT_WRITE="5",
                        ASSISTANT_INDEX_DIR=str(tmp_path / "index"))
    replica = start_replica("held", tmp_path, env, timeout=300)
    try:
        import gradio

        folder = os.path.join(os.path.dirname(gradio.__file__), "templates", "frontend", "assets")
        largest = max(os.listdir(folder), key=lambda name: os.path.getsize(os.path.join(folder, name)))
        big_asset = f"/assets/{largest}"  # megabytes: a reader that stalls holds the server's writes
        assert httpx.get(replica.url + big_asset, timeout=30).status_code == 200
        normal_requests = (("GET", "/healthz", None), ("POST", "/api/ask", {"question": "电工是第几批？"}),
                           ("GET", "/ui/static/chat.js", None))
        # the same requests on this machine with no attack: the yardstick of the latency under attack (a shared,
        # noisy machine is slow for both; a fixed bar alone would measure the machine, not the service)
        calm = []
        with httpx.Client(base_url=replica.url, timeout=10) as normal:
            for _ in range(8):
                for method, path, body in normal_requests:
                    t0 = time.monotonic()
                    assert normal.request(method, path, json=body).status_code == 200
                    calm.append(time.monotonic() - t0)
                time.sleep(0.1)
        calm_p95 = statistics.quantiles(calm, n=20)[-1]
        counts = {k: 0 for k in ("opened", "refused", "held_to_end", "closed_by_server", "slow_opened",
                                 "slow_refused", "slow_closed", "stream_closed", "stream_held", "asset_closed",
                                 "asset_held", "reload_closed", "reload_held")}
        duration = 40.0
        stop_at = time.monotonic() + duration
        attack = threading.Thread(target=lambda: asyncio.run(_attack(replica.port, big_asset, counts, stop_at)),
                                  daemon=True)
        attack.start()
        time.sleep(5)  # the connections are open
        latencies, errors = [], []
        with httpx.Client(base_url=replica.url, timeout=10) as normal:
            while time.monotonic() < stop_at - 5:
                for method, path, body in normal_requests:
                    t0 = time.monotonic()
                    try:
                        r = normal.request(method, path, json=body)
                        if r.status_code != 200:
                            errors.append((path, r.status_code))
                    except httpx.HTTPError as exc:
                        errors.append((path, type(exc).__name__))
                    latencies.append(time.monotonic() - t0)
                time.sleep(0.1)
        attack.join(timeout=60)
        p95 = statistics.quantiles(latencies, n=20)[-1]
        figures = {**counts, "normal_requests": len(latencies), "errors": len(errors), "p95_ms": round(p95 * 1000),
                   "calm_p95_ms": round(calm_p95 * 1000)}
        (tmp_path / "figures.json").write_text(json.dumps(figures))
        print("held-connection figures:", json.dumps(figures))
        assert errors == [] and p95 < max(0.5, 4 * calm_p95), figures
        assert counts["opened"] + counts["refused"] == 1100
        # the answer streams and the hot-reload requests were all closed by the server long before the end (a
        # stalled reader of a large asset is dropped after the write timeout: test_a_reader_that_stalls_…; here
        # the figure is reported, since how much of an asset the kernel buffers hold varies)
        assert counts["stream_held"] == 0 and counts["reload_held"] == 0, figures
        assert counts["slow_opened"] + counts["slow_refused"] == 200
    finally:
        stop(replica.proc)
