"""Feedback on answers (👍/👎 with an optional comment), kept in SQLite next to the question, answer and citations.

The chat UI and `POST /api/feedback` write here; `assistant feedback export` reads it back as CSV."""
from __future__ import annotations

import csv
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TextIO

Rating = Literal["up", "down"]
RATINGS = ("up", "down")
MAX_COMMENT_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    rating      TEXT    NOT NULL CHECK (rating IN ('up', 'down')),
    comment     TEXT    NOT NULL DEFAULT '',
    question    TEXT    NOT NULL,
    answer      TEXT    NOT NULL,
    citations   TEXT    NOT NULL DEFAULT '[]',   -- JSON list of {source, clause, item, label, quote}
    answer_id   TEXT,                            -- the Answer's id, when the caller gave one
    mode        TEXT,                            -- offline / llm
    channel     TEXT    NOT NULL DEFAULT ''      -- chat / widget / api
);
"""
CSV_COLUMNS = ["id", "created_at", "updated_at", "rating", "comment", "question", "answer", "citations",
               "citation_labels", "answer_id", "mode", "channel"]


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


class FeedbackStore:
    """A small SQLite table of ratings. Safe to share between threads (one connection per call)."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = Path(db_path)
        self._lock = threading.Lock()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def add(self, *, question: str, answer: str, rating: str, citations: Iterable[Any] | None = None,
            comment: str = "", answer_id: str | int | None = None, mode: str | None = None,
            channel: str = "") -> int:
        """Store one rating; returns its row id (for a comment added later with `set_comment`)."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
        comment = (comment or "").strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment is longer than {MAX_COMMENT_CHARS} characters")
        now = _now()
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute(
                "INSERT INTO feedback (created_at, updated_at, rating, comment, question, answer, citations,"
                " answer_id, mode, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, now, rating, comment, question, answer, _citations_json(citations),
                 None if answer_id is None else str(answer_id), mode, channel),
            )
            return int(cur.lastrowid)

    def update(self, row_id: int, *, rating: str | None = None, comment: str | None = None) -> bool:
        """Change the rating and/or comment of a stored row; False when there is no such row."""
        sets, values = [], []
        if rating is not None:
            if rating not in RATINGS:
                raise ValueError(f"rating must be 'up' or 'down', not {rating!r}")
            sets.append("rating = ?")
            values.append(rating)
        if comment is not None:
            comment = comment.strip()
            if len(comment) > MAX_COMMENT_CHARS:
                raise ValueError(f"comment is longer than {MAX_COMMENT_CHARS} characters")
            sets.append("comment = ?")
            values.append(comment)
        if not sets:
            return self.get(row_id) is not None
        sets.append("updated_at = ?")
        values.append(_now())
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute(f"UPDATE feedback SET {', '.join(sets)} WHERE id = ?", (*values, row_id))
            return cur.rowcount == 1

    def set_comment(self, row_id: int, comment: str) -> bool:
        return self.update(row_id, comment=comment)

    def get(self, row_id: int) -> dict | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM feedback WHERE id = ?", (row_id,)).fetchone()
        return self._as_dict(row) if row else None

    def rows(self) -> list[dict]:
        """All feedback, oldest first; `citations` decoded to a list of dicts."""
        with closing(self._connect()) as db:
            return [self._as_dict(r) for r in db.execute("SELECT * FROM feedback ORDER BY id")]

    def counts(self) -> dict[str, int]:
        with closing(self._connect()) as db:
            got = dict(db.execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating").fetchall())
        return {"up": got.get("up", 0), "down": got.get("down", 0)}

    @staticmethod
    def _as_dict(row: sqlite3.Row) -> dict:
        data = dict(row)
        data["citations"] = json.loads(data["citations"] or "[]")
        return data


def _csv_safe(value: Any) -> Any:
    """Keep spreadsheet programs from running a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(db_path: Path, out: TextIO) -> int:
    """Write every feedback row as CSV (header first) to `out`; returns the number of rows written.

    A missing database is not an error: it means no feedback yet (only the header is written)."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    db_path = Path(db_path)
    if not db_path.exists():
        return 0
    n = 0
    for row in FeedbackStore(db_path).rows():
        row["citation_labels"] = "；".join(c.get("label", "") for c in row["citations"])
        row["citations"] = json.dumps(row["citations"], ensure_ascii=False)
        writer.writerow([_csv_safe(row.get(col)) if row.get(col) is not None else "" for col in CSV_COLUMNS])
        n += 1
    return n
