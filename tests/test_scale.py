"""Serving many, on real components on loopback: a Chroma server (`chroma run`) as the shared index, two
`assistant serve` replicas behind Debian's nginx with deploy/nginx.conf (round-robin, SSE unbuffered, limits),
feedback from both replicas in one PostgreSQL, and `assistant serve --workers 2`."""
from __future__ import annotations

import re
import shutil
import threading

import httpx
import pytest

from assistant import Assistant, Config
from fake_llm import FakeLLM, Reply
from services import (assistant_env, chroma_server, create_database, nginx, nginx_binary, postgres, start_replica,
                      stop)

ELECTRICIAN = "电工证什么时候退出目录？"
FOLLOW_UP = "那它的实施部门呢？"


def test_index_served_by_a_chroma_server(tmp_path):
    """ASSISTANT_CHROMA_URL: the index is built into `chroma run` once; a second Assistant (another replica)
    finds it fresh there and answers from it, with no index folder of its own."""
    with chroma_server(tmp_path) as url:
        if url is None:
            pytest.skip("the chroma command (chromadb's server) is not installed")
        first = Assistant.load(Config(chroma_url=url, index_dir=tmp_path / "unused-1"))
        assert first.index_state.status == "built"
        second = Assistant.load(Config(chroma_url=url, index_dir=tmp_path / "unused-2",
                                       rebuild_stale_index=False))
        assert second.index_state.status == "fresh"
        assert second.index_state.count == first.index_state.count
        assert not (tmp_path / "unused-1").exists() and not (tmp_path / "unused-2").exists()
        hits = second.retriever.index.search("美容师属于第几批", 5)
        assert any(doc_id.startswith("annex-") for doc_id, _ in hits)
        answer = second.ask("美容师是第几批？")
        assert answer.answered and "第一批" in answer.answer


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, index_dir, assistant):
    """Two replicas (one worker each) sharing a built index read-only and one PostgreSQL feedback database,
    behind nginx with deploy/nginx.conf."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (scripts/setup.sh installs Debian's nginx)")
    work = tmp_path_factory.mktemp("deploy")
    with postgres() as pg:
        if isinstance(pg, str):
            pytest.skip(pg)
        feedback_url = create_database(pg, "feedback_replicas")
        # The session's index is built already (the `assistant` fixture): it is the build artifact. Each replica
        # gets its own copy (chromadb writes to its folder even when only reading) and may never rebuild it.
        replicas = []
        try:
            for name in ("a", "b"):
                copy = work / f"index-{name}"
                shutil.copytree(index_dir, copy)
                env = assistant_env(ASSISTANT_INDEX_DIR=str(copy), ASSISTANT_REBUILD_STALE_INDEX="false",
                                    ASSISTANT_FEEDBACK_URL=feedback_url)
                replicas.append(start_replica(name, work, env))
            with nginx([r.port for r in replicas], work) as proxy:
                yield {"proxy": proxy, "replicas": replicas, "work": work, "feedback_url": feedback_url}
        finally:
            for r in replicas:
                stop(r.proc)


def _served_by(replica_logs, before: dict[str, int]) -> list[str]:
    """Which replicas logged a POST /api/ask since `before` (uvicorn's access log)."""
    hit = []
    for r in replica_logs:
        text = r.log.read_text(errors="replace")
        if "POST /api/ask" in text[before[r.name]:]:
            hit.append(r.name)
    return hit


def test_a_conversation_across_replicas_resolves_its_follow_up(deployment):
    """Round-robin sends the two turns to different replicas; the follow-up still resolves, because the
    history travels with the request and no replica keeps conversation state."""
    proxy, replicas = deployment["proxy"], deployment["replicas"]
    with httpx.Client(base_url=proxy, timeout=60) as client:
        before = {r.name: len(r.log.read_text(errors="replace")) for r in replicas}
        first = client.post("/api/ask", json={"question": ELECTRICIAN})
        after_first = {r.name: len(r.log.read_text(errors="replace")) for r in replicas}
        first_by = _served_by(replicas, before)
        history = [{"role": "user", "content": ELECTRICIAN},
                   {"role": "assistant", "content": first.json()["answer"]}]
        second = client.post("/api/ask", json={"question": FOLLOW_UP, "history": history})
        second_by = _served_by(replicas, after_first)
    assert first.status_code == 200 and second.status_code == 200
    assert first_by and second_by and first_by != second_by, (first_by, second_by)
    body = second.json()
    assert body["answered"] is True
    assert "应急管理部" in body["answer"] and "人力资源和社会保障部" in body["answer"]
    assert any(c["label"] == "附件第1项" for c in body["citations"])


def test_requests_alternate_between_replicas(deployment):
    proxy, replicas = deployment["proxy"], deployment["replicas"]
    seen = []
    with httpx.Client(base_url=proxy, timeout=60) as client:
        for _ in range(4):
            before = {r.name: len(r.log.read_text(errors="replace")) for r in replicas}
            assert client.post("/api/ask", json={"question": "美容师是第几批？"}).status_code == 200
            seen += _served_by(replicas, before)
    assert set(seen) == {"a", "b"} and seen[0] != seen[1]


class GatedLLM(FakeLLM):
    """The scripted model stops mid-answer until the test opens the gate (or 30 s pass)."""

    gate = threading.Event()

    def sleep(self, seconds: float) -> None:
        self.gate.wait(min(seconds, 30))


def test_sse_events_arrive_one_by_one_through_nginx(tmp_path, index_dir, assistant):
    """A generated answer's first words reach the client through nginx while the model is still writing: the
    model is held mid-answer until the client has read a token event, so a buffering proxy would leave the
    client with nothing and the gate would only open on its 30 s timeout (the test then fails)."""
    answer = "电工属于第二批，拟于2020年12月31日前退出目录[附件第1项]。"
    with GatedLLM() as llm:
        llm.script(Reply.stall(30, content=answer))
        env = assistant_env(ASSISTANT_INDEX_DIR=str(index_dir), ASSISTANT_REBUILD_STALE_INDEX="false",
                            ASSISTANT_FEEDBACK_DB=str(tmp_path / "fb.sqlite3"), ASSISTANT_LLM_ENABLED="true",
                            ASSISTANT_LLM_BASE_URL=llm.base_url, ASSISTANT_LLM_MODEL="fake",
                            ASSISTANT_LLM_TIMEOUT="60")
        replica = start_replica("llm", tmp_path, env)
        try:
            with nginx([replica.port], tmp_path) as proxy:
                events: list[str] = []
                token_before_gate = None
                with httpx.stream("POST", proxy + "/api/ask/stream", json={"question": ELECTRICIAN},
                                  timeout=60) as r:
                    assert r.status_code == 200
                    assert r.headers["content-type"].startswith("text/event-stream")
                    for line in r.iter_lines():
                        if line.startswith("event: "):
                            events.append(line[7:])
                            if line == "event: token" and token_before_gate is None:
                                token_before_gate = not GatedLLM.gate.is_set()
                                GatedLLM.gate.set()  # the model may finish now
        finally:
            GatedLLM.gate.set()
            stop(replica.proc)
    assert token_before_gate is True, "no token event reached the client while the model was still writing"
    assert events[-1] == "answer" and "token" in events


def test_proxy_limits_and_health(deployment):
    proxy = deployment["proxy"]
    big = b'{"question": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    r = httpx.post(proxy + "/api/ask", content=big, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 413
    health = httpx.get(proxy + "/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["ready"] is True


def test_feedback_from_both_replicas_lands_in_one_database(deployment):
    """Replicas share the PostgreSQL feedback table: 40 ratings posted through nginx (so to both replicas)
    are all there, once each."""
    from assistant.feedback import FeedbackStore

    proxy = deployment["proxy"]
    with httpx.Client(base_url=proxy, timeout=60) as client:
        ids = [client.post("/api/feedback", json={"rating": "up", "question": f"问题{n}", "answer": "回答"}
                           ).json()["feedback_id"] for n in range(40)]
    store = FeedbackStore(deployment["feedback_url"], timeout=30)
    rows = {r["id"]: r["question"] for r in store.rows()}
    assert len(set(ids)) == 40
    assert all(rows[i] == f"问题{n}" for n, i in enumerate(ids))
    store.close()


def _chat_turn(base: str, question: str, history: list[dict]) -> str:
    """One turn of the chat page as chat.js does it: POST /ui/ask/stream, read the event stream to its end."""
    text = ""
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", base + "/ui/ask/stream", json={"question": question, "history": history}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                text += line + "\n"
    return text


def test_the_chat_needs_no_sticky_session_through_nginx(deployment):
    """The chat page keeps its conversation in the browser and sends it with each question, so its turns may land
    on either replica: a follow-up asked through the proxy, again and again, still resolves."""
    proxy = deployment["proxy"]
    history = [{"role": "user", "content": "美容师是第几批？"}, {"role": "assistant", "content": "美容师属于第一批。"}]
    for _ in range(6):
        first = _chat_turn(proxy, "美容师是第几批？", [])
        assert "event: answer" in first and "第一批" in first
        follow = _chat_turn(proxy, "那它的实施部门呢？", history)
        assert "event: answer" in follow and "人力资源和社会保障部" in follow and "附件第57项" in follow


def test_a_replica_that_goes_down_is_taken_out_of_rotation(deployment):
    """Passive health checks (open-source nginx): a refused connection marks the replica failed for
    fail_timeout and the request is retried on the other replica, so clients see no error."""
    proxy, replicas = deployment["proxy"], deployment["replicas"]
    stop(replicas[1].proc)  # stays down: this is the last test that uses the deployment
    with httpx.Client(base_url=proxy, timeout=60) as client:
        codes = [client.post("/api/ask", json={"question": "美容师是第几批？"}).status_code for _ in range(6)]
    assert codes == [200] * 6


def test_serve_with_two_workers(tmp_path, index_dir, assistant):
    """`assistant serve --workers 2`: two worker processes, each with its own Assistant, behind one port; the
    configuration (here the index folder and the feedback file) reaches both; concurrent answers all succeed."""
    from concurrent.futures import ThreadPoolExecutor

    from services import wait_for

    env = assistant_env(ASSISTANT_INDEX_DIR=str(index_dir), ASSISTANT_REBUILD_STALE_INDEX="false",
                        ASSISTANT_FEEDBACK_DB=str(tmp_path / "fb.sqlite3"))
    replica = start_replica("workers", tmp_path, env, "--workers", "2")
    try:
        # The first worker answers /healthz while the second may still be loading.
        wait_for(lambda: replica.log.read_text(errors="replace").count("Application startup complete") == 2,
                 180, "the second worker", replica.proc, replica.log)
        log = replica.log.read_text(errors="replace")
        assert len(set(re.findall(r"Started server process \[(\d+)\]", log))) == 2

        def ask(_):
            r = httpx.post(replica.url + "/api/ask", json={"question": ELECTRICIAN}, timeout=60,
                           headers={"Connection": "close"})
            return r.status_code, r.json().get("answered")

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(ask, range(16))) == {(200, True)}
        r = httpx.post(replica.url + "/api/feedback", json={"rating": "up", "question": "q", "answer": "a"},
                       timeout=30)
        assert r.status_code == 201
        assert (tmp_path / "fb.sqlite3").exists()  # the worker got the parent's feedback setting
    finally:
        stop(replica.proc)
