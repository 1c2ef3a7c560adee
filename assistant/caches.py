"""The cache files kept beside a folder index (BM25 tokens, intent exemplar vectors, the word table): what a sound
one looks like. A loader that finds a cache of the wrong shape makes it again instead of answering from it;
/healthz checks the files the process loaded and is 503 while one of them is corrupt on disk."""
from __future__ import annotations

import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path


def tokens_problem(data: object, units: int) -> str | None:
    """Why `data` is not the BM25 tokens of `units` units (a list of lists of words), or None."""
    if not isinstance(data, list):
        return f"not a list but {type(data).__name__}"
    if len(data) != units:
        return f"{len(data)} token lists for {units} units"
    for i, tokens in enumerate(data):
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            return f"entry {i} is not a list of words"
    if units and not any(data):
        return "every token list is empty"
    return None


def vectors_problem(data: object, rows: int) -> str | None:
    """Why `data` is not `rows` vectors of one length (finite numbers, not all zero), or None."""
    if not isinstance(data, list) or len(data) != rows:
        return f"{len(data) if isinstance(data, list) else type(data).__name__} vectors for {rows} exemplars"
    width = None
    for i, row in enumerate(data):
        if not isinstance(row, list) or not row:
            return f"vector {i} is not a list of numbers"
        if width is None:
            width = len(row)
        if len(row) != width:
            return f"vector {i} has {len(row)} numbers, the first has {width}"
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in row):
            return f"vector {i} holds something that is not a finite number"
        if not any(row):
            return f"vector {i} is all zeros"
    return None


def word_table_problem(path: Path) -> str | None:
    """Why the stored word table at `path` cannot be read, or None."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                return "fails its integrity check"
            total = db.execute("SELECT value FROM meta WHERE key = 'total'").fetchone()
            words = db.execute("SELECT count(*) FROM freq").fetchone()[0]
        db.close()
    except sqlite3.Error as exc:
        return f"is not a sound word table ({exc})"
    if not total or not str(total[0]).isdigit() or int(total[0]) <= 0 or not words:
        return "holds no words"
    return None


@dataclass
class CacheFile:
    path: Path
    kind: str  # "tokens", "vectors", "words"
    expected: int = 0  # units (tokens) or exemplars (vectors)


@dataclass
class CacheCheck:
    """The cache files a loaded Assistant read; `problem()` reads each again when it changed on disk."""

    files: list[CacheFile] = field(default_factory=list)
    _seen: dict[Path, tuple[tuple[int, int, int], str | None]] = field(default_factory=dict)

    def problem(self) -> str | None:
        for f in self.files:
            try:
                st = os.stat(f.path)
            except FileNotFoundError:
                continue  # removed: the next process makes it again
            except OSError as exc:
                return f"index cache {f.path.name} cannot be read ({exc.strerror})"
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            seen = self._seen.get(f.path)
            if seen is None or seen[0] != stamp:
                seen = (stamp, self._check(f))
                self._seen[f.path] = seen
            if seen[1]:
                return f"index cache {f.path.name} is corrupt: {seen[1]}; delete it or run `assistant index`"
        return None

    @staticmethod
    def _check(f: CacheFile) -> str | None:
        if f.kind == "words":
            return word_table_problem(f.path)
        try:
            data = json.loads(f.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"not JSON ({type(exc).__name__})"
        if f.kind == "tokens":
            return tokens_problem(data, f.expected)
        return vectors_problem(data, f.expected)
