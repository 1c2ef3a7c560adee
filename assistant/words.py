"""The tokenizer's dictionary: jieba's words plus the notice's names, built once and stored beside the index.

jieba keeps its word → frequency table (350,000 words and all their prefixes) in memory and loads it on first use:
0.6 s of CPU on this machine, a quarter of a cold `assistant ask`; the linker then added the notice's names one by
one. Stored once in a sqlite file, the same table is read word by word as text needs it (a question needs a few
dozen lookups, the whole notice a few thousand), so segmentation is exactly jieba's and the load is gone."""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jieba

log = logging.getLogger(__name__)

jieba.setLogLevel(60)  # jieba prints its dictionary loading to stderr otherwise

NAME_FREQUENCY = 2000  # what the notice's names weigh against jieba's words: enough to keep a name in one piece
_ABSENT = object()
_CACHE_LIMIT = 500_000  # looked-up words kept in memory; a long-running server starts over past this


class StoredFrequencies(dict):
    """jieba's FREQ table backed by a sqlite file: a word is read on first use and kept (None when absent).
    Words added later (jieba.add_word) are kept apart, so trimming the kept lookups never loses them."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._added: dict[str, int] = {}
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.total = int(self._db.execute("SELECT value FROM meta WHERE key = 'total'").fetchone()[0])

    def __setitem__(self, word: str, freq: int) -> None:
        self._added[word] = freq

    def _lookup(self, word: str):
        if word in self._added:
            return self._added[word]
        value = dict.get(self, word, _ABSENT)
        if value is _ABSENT:
            with self._lock:
                row = self._db.execute("SELECT freq FROM freq WHERE word = ?", (word,)).fetchone()
            value = None if row is None else row[0]
            if dict.__len__(self) > _CACHE_LIMIT:
                dict.clear(self)
            dict.__setitem__(self, word, value)
        return value

    def __contains__(self, word: object) -> bool:
        return self._lookup(word) is not None

    def __getitem__(self, word: str) -> int:
        value = self._lookup(word)
        if value is None:
            raise KeyError(word)
        return value

    def get(self, word: str, default=None):
        value = self._lookup(word)
        return default if value is None else value


def dictionary_key(words: list[str]) -> str:
    """What the stored table depends on: jieba's version and dictionary file, and the names added to it."""
    digest = hashlib.sha256()
    dict_file = Path(jieba.__file__).with_name("dict.txt")
    digest.update(f"{jieba.__version__}\t{dict_file.stat().st_size}\t{NAME_FREQUENCY}\n".encode())
    for word in sorted(set(words)):
        digest.update(word.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def _store(path: Path, tokenizer: jieba.Tokenizer) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as db:
        db.execute("CREATE TABLE freq (word TEXT PRIMARY KEY, freq INTEGER NOT NULL) WITHOUT ROWID")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.executemany("INSERT INTO freq VALUES (?, ?)", tokenizer.FREQ.items())
        db.execute("INSERT INTO meta VALUES ('total', ?)", (str(tokenizer.total),))
    db.close()
    os.replace(tmp, path)


@dataclass(frozen=True)
class WordTable:
    status: str  # "stored" (read from the folder), "built" (made and stored there), "added" (in memory only)
    key: str  # what the segmentation depends on; caches of tokens name it


def use_dictionary(names: Iterable[str], folder: Path | None) -> WordTable:
    """Make jieba's global tokenizer (used by the linker, BM25 and the answer checks) know `names`.

    With a folder: the stored table for these names when there is one ("stored"), else jieba's own table plus the
    names, which is then stored there for the next process ("built"). Without a folder, or when the folder cannot
    be written (a read-only index), the names are added in memory ("added")."""
    names = list(names)
    key = dictionary_key(names)
    path = folder / f"words-{key}.sqlite" if folder else None
    tokenizer = jieba.dt
    if path is not None and path.exists():
        try:
            table = StoredFrequencies(path)
        except sqlite3.Error as exc:
            log.warning("word table %s unreadable (%s); loading jieba's dictionary", path, exc)
        else:
            with tokenizer.lock:
                tokenizer.FREQ, tokenizer.total, tokenizer.initialized = table, table.total, True
            return WordTable("stored", key)
    tokenizer.check_initialized()
    for word in names:
        tokenizer.add_word(word, freq=NAME_FREQUENCY)
    if path is None or isinstance(tokenizer.FREQ, StoredFrequencies):
        return WordTable("added", key)
    try:
        _store(path, tokenizer)
    except (OSError, sqlite3.Error) as exc:
        log.info("word table not stored: %s", exc)
        return WordTable("added", key)
    return WordTable("built", key)
