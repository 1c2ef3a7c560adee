"""Feedback on answers (👍/👎 with an optional comment), kept next to the question, answer and citations.

One table behind SQLAlchemy, so the store is a database URL: SQLite (a file under var/) is the embedded default
for one host; PostgreSQL (`postgresql+psycopg://…`) when several hosts or replicas share the ratings. The chat UI
and `POST /api/feedback` write here; `assistant feedback export` reads it back as CSV.

Every call is bounded by `timeout` seconds (default 1 s): a locked, deleted or unreachable database raises
`FeedbackUnavailable` in time for the HTTP layer to answer 503, instead of holding a request for many seconds.

A stored row can be changed only with the token returned when it was created (only its sha256 is kept), so a
sequential row id is no key to anyone else's rating. A create may carry an idempotency key: a retry with the same
key returns the row (and token) of the first post instead of storing a second one, so a post answered 503 after
its commit had already happened (a frozen database that comes back) is never stored twice."""
from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import unicodedata
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar
from urllib.parse import quote

Rating = Literal["up", "down"]
RATINGS = ("up", "down")
MAX_COMMENT_CHARS = 2000
DEFAULT_TIMEOUT = 1.0
CSV_COLUMNS = ["id", "created_at", "updated_at", "rating", "comment", "question", "answer", "citations",
               "citation_labels", "answer_id", "mode", "channel"]
UNAVAILABLE_MESSAGE = "feedback could not be saved: the feedback database is unavailable; please try again later"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{16,200}")  # e.g. a UUID the client makes once per rating
TOKEN_CHARS = 32

T = TypeVar("T")

# Database calls run on these threads so a caller can stop waiting after `timeout` even when a driver blocks
# (a stopped PostgreSQL server, libpq's 2 s minimum connect timeout). Shared by all stores of the process.
_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="feedback-db")


class FeedbackInputError(ValueError):
    """Bad feedback input (rating, comment, idempotency key, text): the HTTP layer answers 422."""


class FeedbackUnavailable(RuntimeError):
    """The feedback database cannot be reached, is locked, or lost its table: nothing was stored."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _citations_json(citations: Iterable[Any] | None) -> str:
    out = []
    for c in citations or []:
        if hasattr(c, "model_dump"):
            c = c.model_dump(mode="json")
        elif not isinstance(c, Mapping):
            raise TypeError(f"a citation must be a Citation or a dict, not {type(c).__name__}")
        out.append(dict(c))
    return json.dumps(out, ensure_ascii=False)


@dataclass(frozen=True)
class NewFeedback:
    """A stored rating: its row id, the token that authorises changing it, and whether this call stored it
    (False: an earlier post with the same idempotency key did)."""

    id: int
    token: str
    stored: bool = True


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_idempotency_key(key: str | None) -> None:
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise FeedbackInputError("an idempotency key is 16–200 letters, digits or ._:- (a random UUID, say)")


def idempotency_key(request) -> str | None:
    """The `Idempotency-Key` header of a request (Starlette/FastAPI), or None; a malformed key is a ValueError."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    check_idempotency_key(key)
    return key


def _token_for(key: str | None) -> str:
    """The row's change token: random, or (with an idempotency key) derived from the key, so that a retry of the
    same post gets the same token back without the token ever being stored."""
    if key is None:
        return secrets.token_urlsafe(24)[:TOKEN_CHARS]
    digest = hmac.new(key.encode("utf-8"), b"pna-feedback-change-token", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:TOKEN_CHARS]


def _check_rating(rating: str) -> None:
    if rating not in RATINGS:
        raise FeedbackInputError(f"rating must be 'up' or 'down', not {rating!r}")


def _clean_comment(comment: str | None) -> str:
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise FeedbackInputError(f"comment is longer than {MAX_COMMENT_CHARS} characters")
    return comment


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL for a URL or a SQLite file path (the embedded default)."""
    text = str(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def feedback_target(config) -> str | Path:
    """Where a configuration keeps feedback: ASSISTANT_FEEDBACK_URL when set, else the SQLite file feedback_db."""
    return getattr(config, "feedback_url", None) or config.feedback_db


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class FeedbackStore:
    """The feedback table at a database URL (or a SQLite file path). Safe to share between threads.

    Nothing connects at construction: the table is created on first use, so a store made while its database is
    down starts working when the database comes back."""

    def __init__(self, target: str | Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        import sqlalchemy as sa  # SQLAlchemy loads only where feedback is used (serve, export), not for `ask`

        self.url = database_url(target)
        self.timeout = timeout
        url = sa.engine.make_url(self.url)
        self.backend = url.get_backend_name()
        self.db_path: Path | None = Path(url.database) if self.backend == "sqlite" and url.database else None
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._table = _table(sa)
        self._probe_table = _probe_table(sa, self._table.metadata)
        if self.backend == "sqlite":
            if self.db_path is None:
                raise ValueError("a SQLite feedback URL needs a file path (sqlite:////path/to/feedback.sqlite3)")
            # The engine opens the file in read-write mode without creating it: a feedback file deleted under a
            # running server is reported as unavailable rather than silently replaced by an empty one.
            self.engine = sa.create_engine(
                f"sqlite:///file:{quote(str(self.db_path))}?mode=rw&uri=true",
                # Wait for another writer (a worker process) for most of the deadline before giving up.
                connect_args={"timeout": max(0.1, timeout * 0.9), "check_same_thread": False},
            )
            _begin_immediately(self.engine)
        elif self.backend == "postgresql":
            self.engine = sa.create_engine(
                self.url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_timeout=timeout,
                connect_args={"connect_timeout": 2,  # libpq's minimum; the 1 s deadline is kept by _bounded
                              "options": f"-c statement_timeout={int(timeout * 1000)} -c lock_timeout=500"},
            )
        else:
            self.engine = sa.create_engine(self.url, pool_pre_ping=True)

    @classmethod
    def from_config(cls, config) -> "FeedbackStore":
        return cls(feedback_target(config), timeout=getattr(config, "feedback_timeout", DEFAULT_TIMEOUT))

    def __repr__(self) -> str:
        return f"FeedbackStore({_redacted(self.url)!r})"

    # ---- bounded database access ---------------------------------------------------------------------

    def _bounded(self, work: Callable[[], T], timeout: float | None = None) -> T:
        """Run `work` against the database, or raise FeedbackUnavailable after `timeout` seconds or on any
        database error. Bad input (ValueError) is raised before this point and passes through unchanged."""
        from sqlalchemy.exc import SQLAlchemyError

        def run() -> T:
            self._ensure_schema()
            return work()

        timeout = self.timeout if timeout is None else timeout
        future = _EXECUTOR.submit(run)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout as exc:
            future.cancel()
            raise FeedbackUnavailable(f"the feedback database did not answer within {timeout:g} s") from exc
        except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
            raise FeedbackUnavailable(f"the feedback database is unavailable: {_short(exc)}") from exc

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            if self.backend == "sqlite":
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
                # Create the file once (the engine itself never creates it), in WAL mode: commits are short
                # appends, so several worker processes queue only briefly for the write lock.
                with sqlite3.connect(self.db_path, timeout=0.5) as db:
                    db.execute("PRAGMA journal_mode=WAL")
                db.close()
            with self.engine.begin() as db:
                if self.backend == "postgresql":
                    # Replicas starting together would race to create the table; one creates, the others wait.
                    db.exec_driver_sql("SELECT pg_advisory_xact_lock(802080)")
                from sqlalchemy.schema import CreateTable

                db.execute(CreateTable(self._table, if_not_exists=True))
                db.execute(CreateTable(self._probe_table, if_not_exists=True))
                _add_missing_columns(db, self._table)
            self._schema_ready = True

    # ---- writes ----------------------------------------------------------------------------------------

    def add(self, *, question: str, answer: str, rating: str, citations: Iterable[Any] | None = None,
            comment: str = "", answer_id: str | int | None = None, mode: str | None = None,
            channel: str = "", idempotency_key: str | None = None) -> int:
        """Store one rating; returns its row id (`create` also returns the token that can change it)."""
        return self.create(question=question, answer=answer, rating=rating, citations=citations, comment=comment,
                           answer_id=answer_id, mode=mode, channel=channel, idempotency_key=idempotency_key).id

    def create(self, *, question: str, answer: str, rating: str, citations: Iterable[Any] | None = None,
               comment: str = "", answer_id: str | int | None = None, mode: str | None = None,
               channel: str = "", idempotency_key: str | None = None) -> NewFeedback:
        """Store one rating and return its id and change token. With an idempotency key, a row already stored
        under the same key is returned instead (stored=False): retries never duplicate."""
        from sqlalchemy.exc import IntegrityError

        _check_rating(rating)
        check_idempotency_key(idempotency_key)
        if any("\x00" in (text or "") for text in (question, answer, comment)):
            raise FeedbackInputError("feedback text contains a NUL character")
        comment = _clean_comment(comment)
        now = _now()
        token = _token_for(idempotency_key)
        key_hash = None if idempotency_key is None else _sha256(idempotency_key)
        values = dict(created_at=now, updated_at=now, rating=rating, comment=comment, question=question,
                      answer=answer, citations=_citations_json(citations),
                      answer_id=None if answer_id is None else str(answer_id), mode=mode, channel=channel,
                      token_sha256=_sha256(token), idempotency_sha256=key_hash)
        table = self._table

        def earlier(db) -> int | None:
            return db.execute(table.select().with_only_columns(table.c.id)
                              .where(table.c.idempotency_sha256 == key_hash)).scalar()

        def insert() -> NewFeedback:
            if key_hash is not None:
                with self.engine.begin() as db:  # SQLite: BEGIN IMMEDIATE, so a concurrent retry waits here
                    found = earlier(db)
                    if found is not None:
                        return NewFeedback(int(found), token, stored=False)
                    try:
                        return NewFeedback(int(db.execute(table.insert().values(**values)).inserted_primary_key[0]),
                                           token)
                    except IntegrityError:
                        pass  # the same key committed by a concurrent request (PostgreSQL): answered below
                with self.engine.connect() as db:
                    found = earlier(db)
                if found is None:
                    raise FeedbackUnavailable("the feedback row could not be stored")
                return NewFeedback(int(found), token, stored=False)
            with self.engine.begin() as db:
                return NewFeedback(int(db.execute(table.insert().values(**values)).inserted_primary_key[0]), token)

        return self._bounded(insert)

    def update(self, row_id: int, *, token: str | None, rating: str | None = None,
               comment: str | None = None) -> bool:
        """Change the rating and/or comment of a stored row; False when there is no such row or `token` is not
        the row's change token. `token=None` skips the check (for an operator's own tools, never for a client)."""
        changes: dict[str, str] = {}
        if rating is not None:
            _check_rating(rating)
            changes["rating"] = rating
        if comment is not None:
            changes["comment"] = _clean_comment(comment)
        table = self._table
        where = table.c.id == row_id
        if token is not None:
            if not isinstance(token, str) or not token:
                return False
            where = where & (table.c.token_sha256 == _sha256(token))
        if not changes:
            def exists() -> bool:
                with self.engine.connect() as db:
                    return db.execute(table.select().with_only_columns(table.c.id).where(where)).first() is not None

            return self._bounded(exists)
        changes["updated_at"] = _now()

        def update() -> bool:
            with self.engine.begin() as db:
                return db.execute(table.update().where(where).values(**changes)).rowcount == 1

        return self._bounded(update)

    def set_comment(self, row_id: int, comment: str, *, token: str | None) -> bool:
        return self.update(row_id, token=token, comment=comment)

    # ---- reads -----------------------------------------------------------------------------------------

    def get(self, row_id: int) -> dict | None:
        table = self._table

        def get() -> dict | None:
            with self.engine.connect() as db:
                row = db.execute(table.select().where(table.c.id == row_id)).mappings().first()
            return _as_dict(row) if row else None

        return self._bounded(get)

    def rows(self) -> list[dict]:
        """All feedback, oldest first; `citations` decoded to a list of dicts."""
        table = self._table

        def rows() -> list[dict]:
            with self.engine.connect() as db:
                return [_as_dict(r) for r in db.execute(table.select().order_by(table.c.id)).mappings()]

        # An export may be long: it gets more time than a request does.
        return self._bounded(rows, timeout=max(self.timeout, 60.0))

    def counts(self) -> dict[str, int]:
        import sqlalchemy as sa

        table = self._table

        def counts() -> dict[str, int]:
            with self.engine.connect() as db:
                got = dict(db.execute(sa.select(table.c.rating, sa.func.count()).group_by(table.c.rating)).all())
            return {"up": got.get("up", 0), "down": got.get("down", 0)}

        return self._bounded(counts)

    def health(self) -> dict:
        """For /healthz: whether a rating can be stored right now, by a real write: one probe row is rewritten
        and committed (a full disk, a read-only file, a lost table or a locked database fail here)."""
        table = self._probe_table

        def probe() -> None:
            with self.engine.begin() as db:
                db.execute(table.delete())
                db.execute(table.insert().values(id=1, checked_at=_now(), pad=secrets.token_hex(512)))

        body: dict[str, Any] = {"enabled": True, "backend": self.backend}
        try:
            self._bounded(probe)
            body["available"] = True
        except FeedbackUnavailable as exc:
            body.update(available=False, error=str(exc))
        return body

    def close(self) -> None:
        self.engine.dispose()


def _begin_immediately(engine) -> None:
    """SQLite transactions take the write lock when they begin (BEGIN IMMEDIATE), so concurrent writers queue on
    the busy timeout instead of failing at once when a deferred transaction tries to upgrade (the documented
    SQLAlchemy recipe for pysqlite)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _table(sa):
    """The feedback table; the same columns as the SQLite schema of earlier versions, so old files still work."""
    metadata = sa.MetaData()
    return sa.Table(
        "feedback", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Text, nullable=False),  # ISO 8601, UTC
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("rating", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("citations", sa.Text, nullable=False, server_default="[]"),  # JSON list of citations
        sa.Column("answer_id", sa.Text),  # the Answer's id, when the caller gave one
        sa.Column("mode", sa.Text),  # offline / llm
        sa.Column("channel", sa.Text, nullable=False, server_default=""),  # chat / widget / api
        sa.Column("token_sha256", sa.Text),  # sha256 of the token that may change the row (returned at creation)
        sa.Column("idempotency_sha256", sa.Text),  # sha256 of the client's idempotency key; unique (index)
        sa.CheckConstraint("rating IN ('up', 'down')", name="feedback_rating"),
        sqlite_autoincrement=True,
    )


def _probe_table(sa, metadata):
    """One row rewritten by /healthz: a real write, so a full disk or a read-only database shows there."""
    return sa.Table("feedback_probe", metadata, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("checked_at", sa.Text, nullable=False), sa.Column("pad", sa.Text, nullable=False))


def _add_missing_columns(db, table) -> None:
    """Files and databases of earlier versions lack the change-token and idempotency columns: add them (they are
    NULL for old rows, which then cannot be changed through the HTTP API)."""
    import sqlalchemy as sa

    have = {c["name"] for c in sa.inspect(db).get_columns(table.name)}
    for column in ("token_sha256", "idempotency_sha256"):
        if column not in have:
            db.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column} TEXT")
    db.exec_driver_sql(f"CREATE UNIQUE INDEX IF NOT EXISTS feedback_idempotency ON {table.name} (idempotency_sha256)")


def _as_dict(row: Mapping) -> dict:
    data = dict(row)
    data.pop("token_sha256", None)
    data.pop("idempotency_sha256", None)
    data["citations"] = json.loads(data["citations"] or "[]")
    return data


def _short(exc: BaseException) -> str:
    """The driver's first line, without SQL or parameters (they may hold user text)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:200]


# The signs that start a formula, including the full-width forms (＝＋－＠) that some spreadsheet programs also
# treat as formula starts. Whatever precedes the first of them that is blank, invisible or a control character
# (spaces of every width, zero-width characters, BOM, NUL, VT, FF …) is skipped by some program, so it counts too.
_FORMULA_SIGNS = "=+-@＝＋－＠"
EXCEL_CELL_CHARS = 32_767  # the most a spreadsheet cell holds (Excel, LibreOffice)
TRUNCATED = "…[truncated: {n} characters in all; the full text is in the database]"


def _skipped(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def _csv_safe(value: Any) -> Any:
    """Keep spreadsheet programs from running a cell as a formula (CSV injection): a cell whose first character
    that is not blank, invisible or a control character starts a formula, or that begins with a control
    character, gets a leading quote. A cell longer than a spreadsheet cell holds is cut, with a marker that says
    how long it was."""
    if not isinstance(value, str) or not value:
        return value
    first = next((ch for ch in value if not _skipped(ch)), "")
    if first in _FORMULA_SIGNS and first or unicodedata.category(value[0]) == "Cc" and value[0] != "\n":
        value = "'" + value
    if len(value) > EXCEL_CELL_CHARS:
        marker = TRUNCATED.format(n=len(value))
        value = value[:EXCEL_CELL_CHARS - len(marker)] + marker
    return value


def export_csv(target: str | Path, out: TextIO) -> int:
    """Write every feedback row as CSV (header first) to `out`; returns the number of rows written.

    A SQLite file that does not exist is not an error: it means no feedback yet (only the header is written)."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    url = database_url(target)
    if url.startswith("sqlite:"):
        from sqlalchemy.engine import make_url

        path = make_url(url).database
        if not path or not Path(path).exists():
            return 0
    store = FeedbackStore(url)
    try:
        rows = store.rows()
    finally:
        store.close()
    for row in rows:
        row["citation_labels"] = "；".join(c.get("label", "") for c in row["citations"])
        row["citations"] = json.dumps(row["citations"], ensure_ascii=False)
        writer.writerow([_csv_safe(row.get(col)) if row.get(col) is not None else "" for col in CSV_COLUMNS])
    return len(rows)
