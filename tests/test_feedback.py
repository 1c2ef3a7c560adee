"""Feedback is stored with its question, answer and citations, and exported as CSV a spreadsheet can open safely.

The same tests run against SQLite (the embedded default) and a real PostgreSQL server on loopback (what several
hosts share). A failing database — locked, deleted, unreachable, hung — is a 503 with a feedback-specific message
and /healthz says feedback is unavailable; never a 500, never a lost row that was reported as stored."""
from __future__ import annotations

import csv
import dataclasses
import io
import socket
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from assistant.api import create_app
from assistant.feedback import (CSV_COLUMNS, UNAVAILABLE_MESSAGE, FeedbackStore, FeedbackUnavailable, _csv_safe,
                                database_url, export_csv)
from assistant.records import Citation
from servers import running
from services import create_database, postgres

CITATIONS = [
    Citation(source="annex", item=1, label="附件第1项", quote="1 机械设备修理人员 电工 应急管理部、人力资源和社会保障部 2"),
    {"source": "notice", "clause": 2, "item": None, "label": "第二条", "quote": "……拟于 12 月 31 日前第二批退出。"},
]
FEEDBACK = {"rating": "up", "question": "电工证什么时候退出目录？", "answer": "属于第二批。",
            "citations": [{"source": "annex", "item": 1, "label": "附件第1项", "quote": "1 机械设备修理人员 电工"}]}


@pytest.fixture(scope="session")
def pg_server():
    with postgres() as pg:
        if isinstance(pg, str):
            pytest.skip(pg)
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """Where a fresh store lives: a SQLite file path, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return tmp_path / "sub" / "feedback.sqlite3"
    pg = request.getfixturevalue("pg_server")
    return create_database(pg, f"fb_{uuid.uuid4().hex[:12]}")


@pytest.fixture()
def store(target):
    s = FeedbackStore(target)
    yield s
    s.close()


def test_add_stores_question_answer_and_citations(store):
    row_id = store.add(question="电工证什么时候退出目录？", answer="属于第二批。", rating="up", citations=CITATIONS,
                       answer_id="q1", mode="offline", channel="chat")
    [row] = store.rows()
    assert row["id"] == row_id
    assert (row["question"], row["answer"], row["rating"], row["comment"]) == (
        "电工证什么时候退出目录？", "属于第二批。", "up", "")
    assert [c["label"] for c in row["citations"]] == ["附件第1项", "第二条"]
    assert row["citations"][0]["quote"].startswith("1 机械设备修理人员")
    assert (row["answer_id"], row["mode"], row["channel"]) == ("q1", "offline", "chat")
    assert row["created_at"].endswith("+00:00")


def test_comment_and_changed_rating_update_the_same_row(store):
    created = store.create(question="美容师是第几批？", answer="第一批。", rating="up")
    assert store.update(created.id, token=created.token, rating="down")
    assert store.set_comment(created.id, "  应该写明退出时间  ", token=created.token)
    [row] = store.rows()
    assert (row["rating"], row["comment"]) == ("down", "应该写明退出时间")
    assert store.counts() == {"up": 0, "down": 1}
    assert store.set_comment(created.id + 100, "no such row", token=created.token) is False


def test_only_the_token_returned_at_creation_changes_a_row(store):
    mine = store.create(question="美容师是第几批？", answer="第一批。", rating="up", comment="有用")
    other = store.create(question="电工证呢？", answer="第二批。", rating="up")
    assert len(mine.token) >= 32 and mine.token != other.token
    for token in (other.token, "", "x" * 32, mine.token[:-1]):
        assert store.update(mine.id, token=token, rating="down", comment="改掉") is False
    row = store.get(mine.id)
    assert (row["rating"], row["comment"]) == ("up", "有用")
    assert "token_sha256" not in row and mine.token not in str(store.rows())  # only a hash is kept


def test_a_retry_with_the_same_idempotency_key_stores_one_row(store):
    key = uuid.uuid4().hex
    first = store.create(question="q", answer="a", rating="up", idempotency_key=key)
    again = store.create(question="q", answer="a", rating="up", idempotency_key=key)
    assert (again.id, again.token, first.stored, again.stored) == (first.id, first.token, True, False)
    third = store.create(question="q", answer="a", rating="up", idempotency_key=uuid.uuid4().hex)
    assert third.id != first.id and len(store.rows()) == 2
    with pytest.raises(ValueError, match="idempotency key"):
        store.create(question="q", answer="a", rating="up", idempotency_key="short")


def test_concurrent_retries_with_one_key_store_one_row(target):
    stores = [FeedbackStore(target, timeout=10) for _ in range(4)]
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda n: stores[n % 4].create(question="q", answer="a", rating="up",
                                                            idempotency_key=key), range(16)))
    assert len({m.id for m in made}) == 1 and sum(m.stored for m in made) == 1
    assert len(stores[0].rows()) == 1
    for s in stores:
        s.close()


def test_a_post_that_committed_after_its_timeout_is_not_stored_again_on_retry(target):
    """Commit-then-timeout: the first post is answered 'unavailable' although its row committed (a database that
    froze after the commit, say); the client's retry with the same key finds that row instead of adding one."""
    store = FeedbackStore(target, timeout=0.5)
    key = uuid.uuid4().hex
    real_insert = store._bounded

    def commit_then_time_out(work, timeout=None):
        result = real_insert(work, timeout=5)  # the row commits ...
        raise FeedbackUnavailable("the feedback database did not answer within 0.5 s")  # ... the caller hears 503
    store._bounded = commit_then_time_out
    with pytest.raises(FeedbackUnavailable):
        store.create(question="q", answer="a", rating="down", idempotency_key=key)
    store._bounded = real_insert
    retried = store.create(question="q", answer="a", rating="down", idempotency_key=key)
    assert retried.stored is False
    assert [r["id"] for r in store.rows()] == [retried.id]
    store.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"rating": "meh"}, "rating must be 'up' or 'down'"),
    ({"rating": "up", "comment": "长" * 2001}, "longer than 2000"),
])
def test_invalid_feedback_is_refused(store, kwargs, message):
    with pytest.raises(ValueError, match=message):
        store.add(question="q", answer="a", **kwargs)
    assert store.rows() == []


def test_concurrent_posts_lose_nothing(target):
    """Two stores on one database (two worker processes, or two hosts) and 8 threads each: every row a writer was
    told it stored is there, each once, with its own text."""
    stores = [FeedbackStore(target, timeout=30) for _ in range(2)]  # the deadline is not what this test is about

    def rate(n: int) -> int:
        return stores[n % 2].add(question=f"问题{n}", answer=f"回答{n}", rating="up" if n % 3 else "down",
                                 comment=f"第{n}条")

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(rate, range(200)))
    assert len(set(ids)) == 200
    rows = stores[0].rows()
    assert len(rows) == 200
    assert {r["id"]: r["question"] for r in rows} == {i: f"问题{n}" for n, i in enumerate(ids)}
    assert stores[1].counts() == {"up": 133, "down": 67}
    for s in stores:
        s.close()


def test_export_csv_writes_header_and_rows(store, target):
    store.add(question="电工证什么时候退出目录？", answer="属于第二批，\n拟于2020年12月31日前退出。", rating="up",
              citations=CITATIONS, comment="有用")
    store.add(question="=HYPERLINK(\"http://x\")", answer="-1+1", rating="down", comment="@SUM(A1)")
    out = io.StringIO()
    assert export_csv(target, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0].keys()) == CSV_COLUMNS
    first, second = rows
    assert first["answer"] == "属于第二批，\n拟于2020年12月31日前退出。"  # newlines survive quoting
    assert first["citation_labels"] == "附件第1项；第二条"
    assert '"label": "附件第1项"' in first["citations"]
    assert (first["rating"], first["comment"]) == ("up", "有用")
    # Cells a spreadsheet would run as formulas are prefixed with a quote.
    assert second["question"].startswith("'=")
    assert second["answer"] == "'-1+1"
    assert second["comment"] == "'@SUM(A1)"


@pytest.mark.parametrize("cell", [
    "=1+1", "+1", "-1", "@SUM(A1)", " =1+1", "  +cmd", "\n=1", "\r\n-2", "\t=1", "\u3000=1", "\u00a0@x",
    "＝1+1", "＋1", "－1", "＠SUM(A1)", " ＝HYPERLINK(\"x\")", "\t", "\rabc",
    "\u2003=1+1", "\u200b=1+1", "\u200b\u2003 @x", "\x0b=1", "\x0c-1", "\x00=1", "\ufeff+1", "\u2028=1", "\x0babc",
])
def test_formula_variants_are_neutralised(cell, store, target):
    assert _csv_safe(cell) == "'" + cell
    if "\x00" in cell:  # refused by the store (PostgreSQL text cannot hold it); see the test below
        return
    store.add(question=cell, answer="回答", rating="up", comment=cell.strip() or "x")
    out = io.StringIO()
    export_csv(target, out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["question"] == "'" + cell


def test_text_with_a_nul_character_is_refused_as_bad_input(store):
    with pytest.raises(ValueError, match="NUL"):
        store.add(question="a\x00b", answer="a", rating="up")


def test_a_cell_longer_than_a_spreadsheet_holds_is_cut_with_a_marker(store, target):
    from assistant.feedback import EXCEL_CELL_CHARS

    long_answer = "长" * 40_000
    store.add(question="q", answer=long_answer, rating="up")
    out = io.StringIO()
    export_csv(target, out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(row["answer"]) == EXCEL_CELL_CHARS
    assert row["answer"].startswith("长" * 1000) and "40000" in row["answer"][-100:]
    assert _csv_safe("=" + "x" * 40_000).startswith("'=")


@pytest.mark.parametrize("cell", ["电工证什么时候退出？", "1-2", "a=b", "第二批 = 66项", "", "e-mail@x"])
def test_ordinary_text_is_exported_unchanged(cell):
    assert _csv_safe(cell) == cell


def test_export_without_a_database_writes_only_the_header(tmp_path):
    out = io.StringIO()
    assert export_csv(tmp_path / "none.sqlite3", out) == 0
    assert out.getvalue().strip() == ",".join(CSV_COLUMNS)
    assert not (tmp_path / "none.sqlite3").exists()


def test_an_existing_sqlite_file_of_the_earlier_schema_still_works(tmp_path):
    """Feedback files written before the SQLAlchemy store (plain sqlite3, same table) are read and extended."""
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as old:
        old.executescript("""CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
            comment TEXT NOT NULL DEFAULT '', question TEXT NOT NULL, answer TEXT NOT NULL,
            citations TEXT NOT NULL DEFAULT '[]', answer_id TEXT, mode TEXT, channel TEXT NOT NULL DEFAULT '');
            INSERT INTO feedback (created_at, updated_at, rating, question, answer)
            VALUES ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'down', '旧问题', '旧回答');""")
    old.close()
    store = FeedbackStore(db)
    store.add(question="新问题", answer="新回答", rating="up")
    assert [(r["id"], r["question"]) for r in store.rows()] == [(1, "旧问题"), (2, "新问题")]


def test_cli_exports_feedback(tmp_path, monkeypatch, capsys):
    """`assistant feedback export -o FILE` writes what the chat stored."""
    from assistant.cli import main

    db = tmp_path / "fb.sqlite3"
    FeedbackStore(db).add(question="第一批有哪些？", answer="……", rating="down", comment="太长")
    monkeypatch.setenv("ASSISTANT_FEEDBACK_DB", str(db))
    out = tmp_path / "feedback.csv"
    assert main(["feedback", "export", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [(r["question"], r["rating"], r["comment"]) for r in rows] == [("第一批有哪些？", "down", "太长")]
    assert "wrote 1 feedback rows" in capsys.readouterr().err


def test_cli_exports_from_a_database_url(pg_server, tmp_path, monkeypatch):
    """ASSISTANT_FEEDBACK_URL wins over the SQLite file: the export reads the shared PostgreSQL table."""
    from assistant.cli import main

    url = create_database(pg_server, f"fb_{uuid.uuid4().hex[:12]}")
    FeedbackStore(url).add(question="美容师是第几批？", answer="第一批。", rating="up")
    monkeypatch.setenv("ASSISTANT_FEEDBACK_URL", url)
    monkeypatch.setenv("ASSISTANT_FEEDBACK_DB", str(tmp_path / "unused.sqlite3"))
    out = tmp_path / "feedback.csv"
    assert main(["feedback", "export", "-o", str(out)]) == 0
    assert [r["question"] for r in csv.DictReader(out.open(encoding="utf-8", newline=""))] == ["美容师是第几批？"]
    assert not (tmp_path / "unused.sqlite3").exists()


def test_export_from_an_unreachable_database_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    monkeypatch.setenv("ASSISTANT_FEEDBACK_URL", f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/x")
    assert main(["feedback", "export", "-o", str(tmp_path / "out.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("assistant: error: the feedback database is unavailable") and "Traceback" not in err


def test_url_of_a_path_is_sqlite(tmp_path):
    assert database_url(tmp_path / "x.sqlite3") == f"sqlite:///{tmp_path / 'x.sqlite3'}"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


# ---- a failing store: 503 within the deadline, /healthz says so -----------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


class SilentServer:
    """Accepts TCP connections on loopback and never answers: a database host that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture()
def api_with_store(assistant, tmp_path):
    """The HTTP API (no UI) around the session's Assistant and a given feedback store."""
    def start(store: FeedbackStore):
        config = assistant.config.model_copy(update={"feedback_db": tmp_path / "unused.sqlite3"})
        return running(create_app(dataclasses.replace(assistant, config=config), mount_ui=False, feedback=store))
    return start


def _assert_feedback_unavailable(base: str) -> None:
    r = httpx.post(base + "/api/feedback", json=FEEDBACK, timeout=10)
    assert r.status_code == 503, r.text
    assert r.json() == {"error": UNAVAILABLE_MESSAGE}
    health = httpx.get(base + "/healthz", timeout=10)
    assert health.status_code == 200  # answers still work: replicas stay in the proxy's rotation
    assert health.json()["feedback"]["available"] is False
    assert health.json()["ready"] is True
    # The connection survives and answers still come.
    assert httpx.post(base + "/api/ask", json={"question": "电工证什么时候退出目录？"}, timeout=30).status_code == 200


def test_a_locked_sqlite_database_is_a_503(api_with_store, tmp_path):
    db = tmp_path / "fb.sqlite3"
    store = FeedbackStore(db)
    store.add(question="先存一条", answer="a", rating="up")
    with api_with_store(store) as base:
        assert httpx.get(base + "/healthz", timeout=10).json()["feedback"] == {
            "enabled": True, "backend": "sqlite", "available": True}
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
        try:
            _assert_feedback_unavailable(base)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        r = httpx.post(base + "/api/feedback", json=FEEDBACK, timeout=10)
        assert r.status_code == 201  # the lock is gone: storing works again
        assert httpx.get(base + "/healthz", timeout=10).json()["feedback"]["available"] is True
    assert [row["question"] for row in store.rows()] == ["先存一条", FEEDBACK["question"]]


def test_a_deleted_sqlite_database_is_a_503_and_not_silently_recreated(api_with_store, tmp_path):
    folder = tmp_path / "var"
    store = FeedbackStore(folder / "fb.sqlite3")
    store.add(question="q", answer="a", rating="up")
    store.engine.dispose()  # a running server would hold no open file either between requests
    with api_with_store(store) as base:
        for name in ("fb.sqlite3", "fb.sqlite3-wal", "fb.sqlite3-shm"):
            (folder / name).unlink(missing_ok=True)
        _assert_feedback_unavailable(base)
    assert not (folder / "fb.sqlite3").exists()


def test_an_unreachable_postgresql_is_a_503(api_with_store):
    store = FeedbackStore(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/feedback")
    with api_with_store(store) as base:
        _assert_feedback_unavailable(base)


def test_a_hung_database_host_is_a_503_at_the_deadline(api_with_store):
    """The host accepts the connection and never answers: the request still gets its 503 (after the store's
    1 s deadline; the figure is in docs/benchmarks.md), not a hang until the driver gives up."""
    silent = SilentServer()
    try:
        store = FeedbackStore(f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/feedback")
        with api_with_store(store) as base:
            _assert_feedback_unavailable(base)
    finally:
        silent.close()


def test_a_postgresql_server_that_stops_and_comes_back(api_with_store, pg_server):
    """Ratings stored before a database outage are kept; during it the API says 503; after it, storing resumes
    without restarting the assistant (the pool reconnects)."""
    url = create_database(pg_server, f"fb_{uuid.uuid4().hex[:12]}")
    store = FeedbackStore(url)
    with api_with_store(store) as base:
        assert httpx.post(base + "/api/feedback", json=FEEDBACK, timeout=10).status_code == 201
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=postgres",
                             autocommit=True) as admin:
            dbname = url.rsplit("/", 1)[1]
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
            try:
                _assert_feedback_unavailable(base)
            finally:
                admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        assert httpx.post(base + "/api/feedback", json=FEEDBACK, timeout=10).status_code == 201
        assert httpx.get(base + "/healthz", timeout=10).json()["feedback"]["available"] is True
    assert len(store.rows()) == 2


def test_store_errors_name_no_sql_or_user_text(tmp_path):
    store = FeedbackStore(f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{_closed_port()}/feedback")
    with pytest.raises(FeedbackUnavailable) as caught:
        store.add(question="私密问题", answer="a", rating="up")
    assert "私密问题" not in str(caught.value) and "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(store)
