"""The HTTP API, end to end: the real app under uvicorn on a loopback port, a real Assistant, httpx as the client."""
from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from assistant.api import MAX_BODY_BYTES, _sse_stream, create_app
from assistant.feedback import FeedbackStore
from assistant.records import Answer, StreamEvent
from servers import ALLOWED_ORIGIN, live_app, running

TIMEOUT = httpx.Timeout(60.0, connect=5.0)
ELECTRICIAN = "电工证什么时候退出目录？"


@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    """(base URL, the Assistant it serves): the full app, chat and widget included."""
    with live_app(assistant, tmp_path_factory.mktemp("api")) as pair:
        yield pair


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served[0], timeout=TIMEOUT, follow_redirects=False) as c:
        yield c


def parse_sse(text: str) -> list[tuple[str, dict]]:
    """`event:`/`data:` blocks → [(event, parsed JSON data)], as a browser's EventSource would see them."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        events.append((name, json.loads("\n".join(data))))
    return events


# ---- answers -------------------------------------------------------------------------------------------

def test_ask_returns_the_answer_contract(client):
    r = client.post("/api/ask", json={"question": ELECTRICIAN, "id": "q-1"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) >= {"id", "question", "answer", "answered", "citations", "mode"}
    assert body["id"] == "q-1" and body["question"] == ELECTRICIAN
    assert body["answered"] is True and body["mode"] == "offline"
    assert "第二批" in body["answer"] and "2020年12月31日" in body["answer"]
    labels = [c["label"] for c in body["citations"]]
    assert "附件第1项" in labels
    for c in body["citations"]:
        assert set(c) == {"source", "clause", "item", "label", "quote", "marker", "qualification", "rows"}
        assert c["quote"] and f"[{c['marker']}]" in body["answer"]


def test_ask_matches_the_library_answer(client, served):
    _, assistant = served
    r = client.post("/api/ask", json={"question": "美容师是第几批？", "id": 7})
    assert r.json() == assistant.ask("美容师是第几批？", id=7).to_dict()


def test_follow_up_uses_history(client):
    first = client.post("/api/ask", json={"question": ELECTRICIAN}).json()
    history = [{"role": "user", "content": ELECTRICIAN}, {"role": "assistant", "content": first["answer"]}]
    r = client.post("/api/ask", json={"question": "那它的实施部门呢？", "history": history})
    assert r.status_code == 200, r.text
    assert "应急管理部" in r.json()["answer"]


def test_stream_sends_tokens_then_the_answer(client):
    with client.stream("POST", "/api/ask/stream", json={"question": ELECTRICIAN, "id": 3}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        events = parse_sse(r.read().decode("utf-8"))
    kinds = [name for name, _ in events]
    assert kinds[-1] == "answer" and kinds.count("answer") == 1
    assert set(kinds[:-1]) == {"token"} and len(kinds) >= 2
    answer = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "token") == answer["answer"]
    assert answer["id"] == 3 and "第二批" in answer["answer"]
    assert "附件第1项" in [c["label"] for c in answer["citations"]]
    # The streamed answer is the same JSON as the plain endpoint's.
    assert answer == client.post("/api/ask", json={"question": ELECTRICIAN, "id": 3}).json()


def test_stream_follow_up_uses_history(client):
    history = [{"role": "user", "content": "美容师是第几批？"}, {"role": "assistant", "content": "第一批。"}]
    with client.stream("POST", "/api/ask/stream", json={"question": "那它的实施部门呢？", "history": history}) as r:
        events = parse_sse(r.read().decode("utf-8"))
    assert "人力资源和社会保障部" in events[-1][1]["answer"]


def test_parallel_requests_all_get_their_own_answer(client):
    questions = [ELECTRICIAN, "美容师是第几批？", "第一批有哪些？", "国家中医药管理局负责哪些职业？"] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(lambda q: client.post("/api/ask", json={"question": q, "id": q}).json(), questions))
    for q, body in zip(questions, bodies):
        assert body["id"] == q and body["question"] == q and body["answered"] is True


# ---- bad requests: 4xx with {"error": "..."} saying what is wrong ------------------------------------------

@pytest.mark.parametrize("body, status, says", [
    ({"question": ""}, 422, "question is empty"),
    ({"question": "   "}, 422, "question is empty"),
    ({"question": 42}, 422, "question: must be a string"),
    ({"question": ["电工"]}, 422, "question: must be a string"),
    ({}, 422, "question: is required"),
    ({"question": "问" * 2001}, 422, "longer than 2000 characters"),
    ([1, 2], 422, "request body must be a JSON object"),
    ({"question": "电工呢", "history": "电工证"}, 422, "history: must be a list"),
    ({"question": "电工呢", "history": [{"role": "bot", "content": "x"}]}, 422,
     "history[0].role: must be 'user' or 'assistant'"),
    ({"question": "电工呢", "history": [{"role": "user"}]}, 422, "history[0].content: is required"),
    ({"question": "电工呢", "history": ["电工证"]}, 422, "history[0]: must be an object"),
    ({"question": "电工呢", "history": [{"role": "user", "content": "x"}] * 51}, 422, "history has 51 turns; at most 50"),
    ({"question": "电工呢", "id": {"x": 1}}, 422, "id: must be a string, an integer or null"),
])
@pytest.mark.parametrize("path", ["/api/ask", "/api/ask/stream"])
def test_bad_requests_say_what_is_wrong(client, path, body, status, says):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert says in r.json()["error"]
    assert set(r.json()) == {"error"}


def test_body_that_is_not_json(client):
    r = client.post("/api/ask", content="question=电工".encode(), headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"error": "request body is not valid JSON"}


def test_body_that_is_too_large(client):
    r = client.post("/api/ask", content=b'{"question": "' + b"a" * MAX_BODY_BYTES + b'"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]


def test_chunked_body_that_is_too_large(client):
    def chunks():
        yield b'{"question": "'
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"a" * 4096
        yield b'"}'

    r = client.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_wrong_method_and_unknown_endpoint(client):
    r = client.get("/api/ask")
    assert r.status_code == 405 and "use POST" in r.json()["error"]
    r = client.post("/api/nothing-here", json={})
    assert r.status_code == 404 and r.json() == {"error": "no such API endpoint: /api/nothing-here"}


# ---- internal failures: 5xx JSON, no stack trace -------------------------------------------------------

@pytest.fixture(scope="module")
def broken_base(assistant, tmp_path_factory):
    """An app whose Assistant lost its answerer, so that answering fails inside the server."""
    tmp = tmp_path_factory.mktemp("broken")
    config = assistant.config.model_copy(update={"feedback_db": tmp / "fb.sqlite3"})
    broken = dataclasses.replace(assistant, config=config, answerer=None)
    with running(create_app(broken, mount_ui=False)) as base:
        yield base


@pytest.mark.parametrize("path", ["/api/ask", "/api/ask/stream"])
def test_internal_failure_is_a_json_500_without_a_traceback(broken_base, path):
    r = httpx.post(broken_base + path, json={"question": ELECTRICIAN}, timeout=TIMEOUT)
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error.startswith("internal error")
    assert "Traceback" not in r.text and "AttributeError" not in r.text and ".py" not in r.text


def test_a_failure_mid_stream_ends_with_an_error_event():
    def failing():
        yield StreamEvent(kind="token", text="第二")
        raise RuntimeError("model connection dropped: secret detail")

    events = failing()
    first = next(events)
    out = b"".join(_sse_stream(first, events)).decode("utf-8")
    parsed = parse_sse(out)
    assert [name for name, _ in parsed] == ["token", "error"]
    assert parsed[-1][1]["error"].startswith("internal error") and "secret" not in out


def test_a_stream_without_an_answer_ends_with_an_error_event():
    out = parse_sse(b"".join(_sse_stream(StreamEvent(kind="token", text="x"), iter(()))).decode("utf-8"))
    assert [name for name, _ in out] == ["token", "error"]
    answer = Answer(question="q", answer="a", answered=True)
    out = parse_sse(b"".join(_sse_stream(StreamEvent(kind="answer", answer=answer), iter(()))).decode("utf-8"))
    assert out == [("answer", answer.to_dict())]


# ---- readiness, docs, pages ----------------------------------------------------------------------------

def test_healthz_reports_readiness(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["ready"] is True
    assert h["index"]["documents"] > 0 and h["index"]["embedding_model"]
    assert h["corpus"]["annex_rows"] == 192
    assert h["llm"]["enabled"] is False and h["llm"]["configured"] is False
    assert set(h["versions"]) >= {"assistant", "python", "fastapi", "gradio"}
    assert h["feedback"]["enabled"] is True and h["feedback"]["available"] is True
    assert "api_key" not in json.dumps(h)


def test_openapi_docs_are_served(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    spec = client.get("/openapi.json").json()
    assert {"/api/ask", "/api/ask/stream", "/api/feedback", "/healthz"} <= set(spec["paths"])
    ask = spec["paths"]["/api/ask"]["post"]
    assert {"200", "422", "500"} <= set(ask["responses"])
    assert "text/event-stream" in spec["paths"]["/api/ask/stream"]["post"]["responses"]["200"]["content"]


def test_chat_widget_and_demo_pages_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "gradio" in r.text.lower()
    r = client.get("/widget")
    assert r.status_code == 307 and r.headers["location"].endswith("/widget/")
    r = client.get("/widget/")
    assert r.status_code == 200 and "gradio" in r.text.lower()
    r = client.get("/widget-demo")
    assert r.status_code == 200 and 'src="/widget.js"' in r.text
    r = client.get("/widget.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert 'new URL("widget/", script.src)' in r.text


# ---- CORS ----------------------------------------------------------------------------------------------

def test_cors_allows_the_configured_origin(client):
    pre = client.options("/api/ask", headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in pre.headers["access-control-allow-methods"]
    r = client.post("/api/ask", json={"question": ELECTRICIAN}, headers={"Origin": ALLOWED_ORIGIN})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "access-control-allow-credentials" not in r.headers


def test_cors_refuses_other_origins(client):
    evil = "https://evil.example.com"
    pre = client.options("/api/ask", headers={"Origin": evil, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 400
    assert "access-control-allow-origin" not in pre.headers
    r = client.post("/api/ask", json={"question": ELECTRICIAN}, headers={"Origin": evil})
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_headers_when_no_origin_is_configured(assistant, tmp_path):
    config = assistant.config.model_copy(update={"allowed_origins": [], "feedback_db": tmp_path / "fb.sqlite3"})
    with running(create_app(dataclasses.replace(assistant, config=config), mount_ui=False)) as base:
        r = httpx.post(base + "/api/ask", json={"question": ELECTRICIAN}, headers={"Origin": ALLOWED_ORIGIN},
                       timeout=TIMEOUT)
        assert r.status_code == 200
        assert not any(h.startswith("access-control-") for h in r.headers)
        pre = httpx.options(base + "/api/ask", headers={"Origin": ALLOWED_ORIGIN,
                                                        "Access-Control-Request-Method": "POST"}, timeout=TIMEOUT)
        assert "access-control-allow-origin" not in pre.headers


# ---- feedback over HTTP ----------------------------------------------------------------------------------

def test_feedback_endpoint_stores_the_rating(client, served):
    _, assistant = served
    answer = client.post("/api/ask", json={"question": ELECTRICIAN, "id": "fb-1"}).json()
    r = client.post("/api/feedback", json={"rating": "down", "comment": "想知道证书是否还有效", **{
        k: answer[k] for k in ("question", "answer", "citations", "id", "mode")}})
    assert r.status_code == 201, r.text
    row_id = r.json()["feedback_id"]
    row = FeedbackStore(assistant.config.feedback_db).get(row_id)
    assert (row["rating"], row["comment"], row["channel"], row["answer_id"]) == (
        "down", "想知道证书是否还有效", "api", "fb-1")
    assert [c["label"] for c in row["citations"]] == [c["label"] for c in answer["citations"]]


@pytest.mark.parametrize("body, says", [
    ({"rating": "meh", "question": "q", "answer": "a"}, "rating:"),
    ({"rating": "up", "question": "", "answer": "a"}, "question:"),
    ({"rating": "up", "question": "q", "answer": "a", "comment": "长" * 2001}, "comment:"),
])
def test_feedback_endpoint_refuses_bad_input(client, body, says):
    r = client.post("/api/feedback", json=body)
    assert r.status_code == 422 and says in r.json()["error"]


# ---- `assistant serve` ------------------------------------------------------------------------------------

def test_assistant_serve_runs_the_whole_service(index_dir, tmp_path):
    """The CLI's `assistant serve` (→ assistant.api.serve) in its own process, stopped with SIGTERM."""
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ASSISTANT_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--index-dir", str(index_dir),
                             "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                health = httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "assistant serve did not answer /healthz within 90 s"
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["ready"] is True
        r = httpx.post(base + "/api/ask", json={"question": ELECTRICIAN}, timeout=TIMEOUT)
        assert "第二批" in r.json()["answer"]
        assert httpx.get(base + "/", timeout=TIMEOUT).status_code == 200
        assert httpx.get(base + "/widget/", timeout=TIMEOUT).status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert (tmp_path / "fb.sqlite3").exists()


# ---- with an LLM configured that cannot be reached ---------------------------------------------------------

@pytest.fixture(scope="module")
def unreachable_llm_base(assistant, tmp_path_factory):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    config = assistant.config.model_copy(update={
        "llm_enabled": True, "llm_base_url": f"http://127.0.0.1:{dead}/v1", "llm_model": "test-model",
        "llm_timeout": 5.0, "feedback_db": tmp_path_factory.mktemp("llm") / "fb.sqlite3"})
    with running(create_app(dataclasses.replace(assistant, config=config), mount_ui=False)) as base:
        yield base


def test_unreachable_llm_falls_back_to_the_offline_answer(unreachable_llm_base):
    base = unreachable_llm_base
    health = httpx.get(base + "/healthz", timeout=TIMEOUT).json()
    assert health["llm"] == {"enabled": True, "model": "test-model", "base_url": health["llm"]["base_url"],
                             "configured": True}
    body = httpx.post(base + "/api/ask", json={"question": ELECTRICIAN}, timeout=TIMEOUT).json()
    assert body["mode"] == "offline" and body["fallback_reason"].startswith("llm_")
    assert "第二批" in body["answer"]
    with httpx.stream("POST", base + "/api/ask/stream", json={"question": ELECTRICIAN}, timeout=TIMEOUT) as r:
        assert r.status_code == 200
        events = parse_sse(r.read().decode("utf-8"))
    kinds = [name for name, _ in events]
    assert "notice" in kinds and kinds[-1] == "answer"
    after_notice = [data["text"] for name, data in events[kinds.index("notice") + 1:] if name == "token"]
    assert "".join(after_notice) == events[-1][1]["answer"] == body["answer"]
    assert events[-1][1]["fallback_reason"] == body["fallback_reason"]
