"""Index stage: corpus records → LangChain Documents → a persisted Chroma collection with a manifest."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from .profile import NoticeProfile
if TYPE_CHECKING:  # chromadb loads only when an index is opened
    from chromadb.api.models.Collection import Collection

from .records import AnnexRow, Corpus, Evidence

log = logging.getLogger(__name__)

COLLECTION = "notice-2020-80"
MANIFEST = "manifest.json"
POINTER = "CURRENT"  # names the build folder under builds/ that is serving; replaced atomically
BUILDS = "builds"
KEEP_BUILDS = 3  # the serving build and the two before it (complete builds only); older ones are removed after a switch
PARTIAL_BUILD_SECONDS = 600  # a build folder without a manifest this old was interrupted (kill -9, full disk): removed
HEADER_LABEL = "文头"
POINTER_CHECK_SECONDS = 1.0  # how often a running process looks at CURRENT (one stat)
# Dense search embeds at most this much of a question: embedding grows with length (a 2,000-character paste took
# 2 s on 2 cores) while a question's meaning sits in its first sentences; BM25 still reads all of it.
DENSE_QUERY_CHARS = 256


class StaleIndexError(RuntimeError):
    """The index is missing, stale or built by another model, and may not be rebuilt."""


class IndexBuildError(RuntimeError):
    """A fresh build failed its own verification; the pointer was not moved."""


def annex_row_text(row: AnnexRow, profile: NoticeProfile) -> str:
    """What a user asks about an occupation, spelled out so both BM25 and vectors can find it; the batch word
    and deadline are the profile's (clause 二)."""
    if row.is_licensed:
        fate = "不按批次退出目录，拟依照法定程序调整为准入类职业资格（拟依法调整为准入类职业资格）"
    else:
        fate = profile.fate(row)
    return (
        f"附件第{row.item}项 {row.qualification}：{row.occupation}。"
        f"实施部门（单位）：{row.departments_text()}。{fate}。"
    )


def header_fact_texts(corpus: Corpus) -> list[tuple[str, str]]:
    h = corpus.header
    return [
        ("doc_number", f"文号（发文字号）：{h.doc_number}"),
        ("title", f"标题：{h.title}"),
        ("issuer", f"发文机关：{h.issuer}"),
        ("recipients", f"主送单位：{h.recipients}"),
        ("issue_date", f"印发日期：{h.issue_date}印发"),
        ("contact", f"联系单位：{h.contact}"),
        ("disclosure", f"公开属性：此件{h.disclosure}"),
        ("annex_title", f"附件：{h.annex_title}（水平评价类76项）"),
    ]


def build_evidence(corpus: Corpus, profile: NoticeProfile) -> list[Evidence]:
    """Every retrievable unit: header facts, clause sentences (keeping their clause number), annex rows."""
    units: list[Evidence] = []
    for key, text in header_fact_texts(corpus):
        units.append(Evidence(doc_id=f"header-{key}", source="notice", label=HEADER_LABEL, text=text))
    for clause in corpus.clauses:
        for i, sentence in enumerate(clause.sentences()):
            units.append(
                Evidence(doc_id=f"clause-{clause.number}-{i}", source="notice", clause=clause.number,
                         label=clause.label, text=sentence)
            )
    for row in corpus.annex_rows:
        units.append(
            Evidence(doc_id=f"annex-{row.position}", source="annex", item=row.item, position=row.position,
                     label=row.label, text=annex_row_text(row, profile))
        )
    return units


def to_document(unit: Evidence) -> Document:
    # Chroma metadata may not hold None: -1 stands for "not applicable".
    meta = {
        "doc_id": unit.doc_id,
        "source": unit.source,
        "label": unit.label,
        "clause": -1 if unit.clause is None else unit.clause,
        "item": -1 if unit.item is None else unit.item,
        "position": -1 if unit.position is None else unit.position,
    }
    return Document(page_content=unit.text, metadata=meta, id=unit.doc_id)


@dataclass(frozen=True)
class IndexState:
    status: str  # "fresh", "built", "rebuilt"
    count: int
    manifest: dict
    build: str = ""  # the build folder serving


class _Build:
    """One build opened for serving or checking. Chroma's embedded store rewrites its own files even when it only
    reads (a reader re-persists the vector segment, in no fixed byte order), so Chroma runs on a private copy in a
    temporary folder: the build folder stays byte for byte what was verified, and any process can check it by hash.
    A build is about a megabyte, so the copy costs a millisecond; a corpus too large to copy belongs on a Chroma
    server (`RemoteChromaIndex`)."""

    def __init__(self, path: Path) -> None:
        # chromadb loads here, not at import time: commands that never open the index do not pay for it. Serving
        # talks to the collection directly: langchain-chroma (and the LangChain retriever and tracing modules it
        # imports) would double the CPU of a cold answer, and it is needed only to write a build.
        import chromadb

        self.path = path
        self.id = path.name
        self.workdir = Path(tempfile.mkdtemp(prefix=f"assistant-index-{self.id}-"))
        shutil.copytree(path, self.workdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST))
        self.client = chromadb.PersistentClient(path=str(self.workdir),
                                                settings=chromadb.Settings(anonymized_telemetry=False))
        self.collection = self.client.get_collection(COLLECTION)
        # Closed and removed when the last search using the collection is done (a switched-from build may still be
        # answering a question in another thread), or at exit.
        weakref.finalize(self.collection, _release, self.client, self.workdir)

    @property
    def manifest(self) -> dict | None:
        try:
            return json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def _release(client, workdir: Path) -> None:
    try:
        client.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _nearest(collection: Collection, vector, k: int) -> list[tuple[str, float]]:
    """(doc id, cosine similarity) of the k nearest units, best first (the collection's space is cosine)."""
    found = collection.query(query_embeddings=[vector], n_results=k, include=["metadatas", "distances"])
    return [(meta["doc_id"], 1.0 - float(distance)) for meta, distance in zip(found["metadatas"][0],
                                                                          found["distances"][0])]


def _write_build(folder: Path, embeddings: Embeddings, docs: list[Document]) -> None:
    """Write a Chroma store of `docs` into `folder` and close it, so that no byte of it changes afterwards."""
    import chromadb
    from langchain_chroma import Chroma

    client = chromadb.PersistentClient(path=str(folder), settings=chromadb.Settings(anonymized_telemetry=False))
    try:
        store = Chroma(collection_name=COLLECTION, embedding_function=embeddings, client=client,
                       collection_metadata={"hnsw:space": "cosine"})
        store.add_documents(docs, ids=[d.id for d in docs])
    finally:
        client.close()


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:
        return 0.0


def _disk_problem(exc: BaseException) -> str | None:
    """'the disk is full' / 'it is read-only' / 'permission denied' when `exc` (an OSError, or the sqlite or chromadb
    error that wraps one) says so; None for any other failure."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return "the file system is read-only"
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    text = str(exc).lower()
    if "disk is full" in text or "no space left" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "the file system is read-only"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return None


def _file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file of a build but its manifest: the sqlite database, the vectors and the graph."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def stored_documents_sha256(pairs) -> str:
    """One digest of (doc id, text) pairs in id order: what the collection must give back."""
    digest = hashlib.sha256()
    for doc_id, text in sorted(pairs):
        digest.update(f"{doc_id}\t{text}\n".encode("utf-8"))
    return digest.hexdigest()


def sqlite_problem(path: Path) -> str | None:
    """`PRAGMA integrity_check` on chroma.sqlite3, read-only; None when sound."""
    if not path.exists():
        return "chroma.sqlite3 is missing"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            result = db.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.Error as exc:
        return f"chroma.sqlite3 is not a sound database ({exc})"
    return None if result == "ok" else f"chroma.sqlite3 fails its integrity check ({result})"


class ChromaIndex:
    """The persisted Chroma collection of the corpus, built aside and switched to atomically.

    Layout: `index/builds/<build id>/` holds one complete Chroma store and its manifest; `index/CURRENT` names the
    build that serves. A build is verified (files, sqlite integrity, document count, a probe query) before the
    pointer moves, so a reader never sees a half-built or failed store. A running process looks at the pointer
    at most once a second and moves to a new build only after verifying it; otherwise it keeps the old one."""

    def __init__(self, index_dir: Path, embeddings: Embeddings, embedding_model: str,
                 check_seconds: float = POINTER_CHECK_SECONDS) -> None:
        self.index_dir = Path(index_dir)
        self.embeddings = embeddings
        self.embedding_model = embedding_model
        self.check_seconds = check_seconds
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexBuildError(f"cannot use the index folder {self.index_dir}: {_disk_problem(exc)}") from None
        self._build: _Build | None = None
        self._expected: dict | None = None  # what the loaded corpus needs; set by ensure()
        self._probe: tuple[str, str] | None = None  # (text, doc id) a verified build must find first
        self._pointer_seen: tuple[int, int] | None = None
        self._next_check = 0.0
        self._switch_lock = threading.Lock()
        self.rejected: str | None = None  # why the last build named by CURRENT was not taken
        self.dense_error: str | None = None  # the last dense-search failure, None after a success

    # -- where things are ----------------------------------------------------------------------------------

    @property
    def pointer_path(self) -> Path:
        return self.index_dir / POINTER

    @property
    def manifest_path(self) -> Path:
        """The serving build's manifest (the pointer's build when nothing is open yet)."""
        build = self._build.path if self._build else self._named_build()
        return (build or self.index_dir) / MANIFEST

    @property
    def collection(self) -> Collection:
        if self._build is None:
            named = self._named_build()
            if named is None:
                raise StaleIndexError(f"no index at {self.index_dir}; run `assistant index` to build it")
            self._build = _Build(named)
        return self._build.collection

    @property
    def build_id(self) -> str:
        return self._build.id if self._build else ""

    def _named_build(self) -> Path | None:
        try:
            name = self.pointer_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not name or "/" in name or name.startswith("."):
            return None
        return self.index_dir / BUILDS / name

    # -- what the corpus needs ------------------------------------------------------------------------------

    def expected_manifest(self, corpus: Corpus, units: list[Evidence]) -> dict:
        digest = hashlib.sha256()
        for u in units:
            digest.update(f"{u.doc_id}\t{u.text}\n".encode("utf-8"))
        return {
            "collection": COLLECTION,
            "corpus_sha256": corpus.source_sha256,
            "corpus_manifest_sha256": corpus.manifest_sha256,
            "documents_sha256": digest.hexdigest(),
            "stored_documents_sha256": stored_documents_sha256((u.doc_id, u.text) for u in units),
            "embedding_model": self.embedding_model,
            "count": len(units),
        }

    def current_manifest(self) -> dict | None:
        named = self._build.path if self._build else self._named_build()
        if named is None:
            return None
        try:
            return json.loads((named / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _expect(self, corpus: Corpus, units: list[Evidence]) -> None:
        self._expected = self.expected_manifest(corpus, units)
        probe = next((u for u in units if u.source == "annex"), units[0])
        self._probe = (probe.text, probe.doc_id)

    # -- verification ------------------------------------------------------------------------------------

    def build_problem(self, folder: Path, opened: _Build | None = None) -> str | None:
        """Why the build in `folder` cannot serve the loaded corpus, or None. Checks, cheapest first: manifest,
        file hashes, sqlite integrity, document count, a probe query that must find its own row first."""
        where = f"index build {folder.name}" if folder.name else f"index at {folder}"
        if not folder.is_dir():
            return f"{where} is missing"
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return f"{where} has no readable manifest (a partial build)"
        expected = self._expected or {}
        for key in ("embedding_model", "corpus_sha256", "corpus_manifest_sha256", "documents_sha256"):
            if key in expected and manifest.get(key) != expected[key]:
                return f"{where} was built with another {key.replace('_', ' ').replace('sha256', '').strip()}"
        recorded = manifest.get("files") or {}
        actual = _file_hashes(folder)
        for name, sha in recorded.items():
            if name not in actual:
                return f"{where} lost {name}"
            if actual[name] != sha:
                return f"{where}: {name} changed after it was built (corrupt)"
        if not recorded:
            return f"{where} has no file hashes in its manifest (built by an older version)"
        broken = sqlite_problem(folder / "chroma.sqlite3")
        if broken:
            return f"{where}: {broken}"
        try:
            build = opened or _Build(folder)
            count = build.collection.count()
            if expected and count != expected["count"]:
                return f"{where} holds {count} documents, expected {expected['count']}"
            stored = build.collection.get(include=["documents"])
            if expected and stored_documents_sha256(zip(stored["ids"], stored["documents"])) != expected.get(
                    "stored_documents_sha256"):
                return f"{where}: the documents read back differ from the corpus"
            if self._probe is not None:
                text, doc_id = self._probe
                # the probe's stored vector must find its own row first: the graph search works (the model that
                # made the vectors is the manifest's)
                vector = build.collection.get(ids=[doc_id], include=["embeddings"])["embeddings"]
                hits = _nearest(build.collection, vector[0], 1) if len(vector) else []
                if not hits or hits[0][0] != doc_id:
                    return f"{where} failed its probe query (did not find {doc_id} first)"
        except Exception as exc:  # noqa: BLE001 — chromadb raises many kinds; each means "cannot serve"
            return f"{where} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
        return None

    def problem(self, corpus: Corpus, units: list[Evidence]) -> str | None:
        """Why the index the pointer names cannot be used as it is, or None when it is fresh and sound."""
        self._expect(corpus, units)
        named = self._named_build()
        if named is None:
            return f"no index at {self.index_dir}"
        opened = self._build if self._build and self._build.path == named else None
        if opened is None and (named / MANIFEST).is_file():
            try:
                opened = _Build(named)
            except Exception:  # noqa: BLE001 — build_problem names why it cannot be opened
                opened = None
        problem = self.build_problem(named, opened)
        if problem is None and opened is not None:
            self._build = opened  # the build just verified serves: it is not opened a second time
        return problem

    # -- building -----------------------------------------------------------------------------------------

    def ensure(self, corpus: Corpus, units: list[Evidence], rebuild: bool = True, force: bool = False) -> IndexState:
        problem = "rebuild forced" if force else self.problem(corpus, units)
        self._expect(corpus, units)
        if problem is None:
            named = self._named_build()
            if self._build is None or self._build.path != named:
                self._build = _Build(named)
            self._remember_pointer()
            return IndexState("fresh", len(units), self.current_manifest() or {}, self._build.id)
        if not rebuild:
            raise StaleIndexError(f"{problem}; run `assistant index` to build it")
        had_index = self._named_build() is not None
        # One line for the operator: what was wrong, and that a new build is made beside it.
        log.warning("building the index aside: %s", problem)
        build = self.build(corpus, units)
        return IndexState("rebuilt" if had_index else "built", len(units), build.manifest or {}, build.id)

    def build(self, corpus: Corpus, units: list[Evidence]) -> _Build:
        """A complete new build in its own folder, verified, then the pointer moved to it (atomic rename).

        A disk that is full or read-only is an IndexBuildError in one line; nothing of the attempt is left."""
        try:
            return self._build_once(corpus, units)
        except IndexBuildError:
            raise
        except Exception as exc:
            problem = _disk_problem(exc)
            if problem is None:
                raise
            raise IndexBuildError(f"cannot write the index at {self.index_dir}: {problem}; the index serving "
                                  "before (if any) is unchanged") from None

    def _build_once(self, corpus: Corpus, units: list[Evidence]) -> _Build:
        self._expect(corpus, units)
        build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        folder = self.index_dir / BUILDS / build_id
        folder.mkdir(parents=True)
        try:
            _write_build(folder, self.embeddings, [to_document(u) for u in units])
            manifest = {**self._expected, "build": build_id, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "files": _file_hashes(folder)}
            # The manifest is written last, so a folder without one is partial.
            (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            build = _Build(folder)
            problem = self.build_problem(folder, build)
            if problem:
                raise IndexBuildError(f"the new build failed verification: {problem}")
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        tmp = self.index_dir / f".{POINTER}.{build_id}"
        try:
            tmp.write_text(build_id + "\n", encoding="utf-8")
            os.replace(tmp, self.pointer_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._build = build
        self.rejected = None
        self._remember_pointer()
        self._prune()
        return build

    def _prune(self) -> None:
        """Keep the serving build and the KEEP_BUILDS newest complete ones (rollback copies). A folder without a
        manifest is a build that was interrupted: it is not counted, and is removed once it is old enough not to be
        a build still being written by another process. Stray pointer temp files go the same way."""
        now = time.time()
        folders = [p for p in (self.index_dir / BUILDS).iterdir() if p.is_dir()]
        complete = sorted((p for p in folders if (p / MANIFEST).is_file()), key=lambda p: p.name)
        keep = {p.name for p in complete[-KEEP_BUILDS:]} | {self.build_id}
        for old in folders:
            if old.name in keep:
                continue
            if (old / MANIFEST).is_file() or _age(old, now) > PARTIAL_BUILD_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        for tmp in self.index_dir.glob(f".{POINTER}.*"):
            if _age(tmp, now) > PARTIAL_BUILD_SECONDS:
                tmp.unlink(missing_ok=True)

    # -- live switch --------------------------------------------------------------------------------------

    def _pointer_stat(self) -> tuple[int, int] | None:
        try:
            st = self.pointer_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def _remember_pointer(self) -> None:
        self._pointer_seen = self._pointer_stat()
        self._next_check = time.monotonic() + self.check_seconds

    def refresh(self, force: bool = False) -> None:
        """Move to the build CURRENT names if it changed and verifies; otherwise keep serving the old one.

        Called before each search (one clock read; one stat a second). Only one thread verifies; the others go on
        with the build they have, so there is no gap."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        if not self._switch_lock.acquire(blocking=False):
            return
        try:
            self._next_check = now + self.check_seconds
            seen = self._pointer_stat()
            if seen == self._pointer_seen and not force:
                return
            self._pointer_seen = seen
            named = self._named_build()
            if named is None or (self._build is not None and named == self._build.path):
                return
            try:
                candidate = _Build(named)
            except Exception as exc:  # noqa: BLE001
                candidate, problem = None, f"index build {named.name} cannot be opened ({type(exc).__name__})"
            else:
                problem = self.build_problem(named, candidate)
            if problem:
                self.rejected = problem
                log.warning("keeping index build %s: %s", self.build_id or "-", problem)
                return
            previous = self._build.id if self._build else "-"
            self._build, self.rejected = candidate, None
            log.warning("switched from index build %s to %s", previous, candidate.id)
        finally:
            self._switch_lock.release()

    # -- serving ------------------------------------------------------------------------------------------

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Dense search: (doc_id, cosine similarity) best first. A failure is remembered for /healthz."""
        self.refresh()
        try:
            vector = self.embeddings.embed_query(query[:DENSE_QUERY_CHARS])
            hits = _nearest(self.collection, vector, k)
        except Exception as exc:
            self.dense_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            raise
        self.dense_error = None
        return hits

    def serving(self) -> dict:
        """What is actually serving, for /healthz: build, documents counted now, and whether vectors work."""
        self.refresh()
        info: dict = {"build": self.build_id, "pointer": (self._named_build() or Path("")).name}
        try:
            info["documents"] = self.collection.count()
            if self._probe is not None:
                self.search(self._probe[0], 1)
            info["vector_search"] = "ok"
        except Exception as exc:  # noqa: BLE001
            info.setdefault("documents", 0)
            self.dense_error = self.dense_error or f"{type(exc).__name__}"
            info["vector_search"] = "degraded"
            info["vector_error"] = self.dense_error
        if self.rejected:
            info["rejected"] = self.rejected
        return info


class RemoteChromaIndex(ChromaIndex):
    """The corpus collection on a Chroma server (`chroma run`) that every replica shares.

    There is no folder and no pointer: the manifest lives in the collection's metadata, so replicas agree on what
    is built without a shared disk; a stale collection is rebuilt in place by whoever finds it stale first."""

    def __init__(self, url: str, embeddings: Embeddings, embedding_model: str) -> None:
        from urllib.parse import urlsplit

        import chromadb
        from langchain_chroma import Chroma

        self.index_dir = Path(".")
        self.embeddings = embeddings
        self.embedding_model = embedding_model
        self.url = url
        parts = urlsplit(url)
        client = chromadb.HttpClient(host=parts.hostname or "localhost",
                                     port=parts.port or (443 if parts.scheme == "https" else 8000),
                                     ssl=parts.scheme == "https", settings=chromadb.Settings(anonymized_telemetry=False))
        self._remote = Chroma(collection_name=COLLECTION, embedding_function=embeddings, client=client,
                              collection_metadata={"hnsw:space": "cosine"})
        self._build = None
        self._expected = None
        self._probe = None
        self.rejected = None
        self.dense_error = None

    @property
    def collection(self) -> Collection:
        return self._remote._collection  # langchain-chroma writes the collection; searches use it directly

    @property
    def build_id(self) -> str:
        return (self.current_manifest() or {}).get("built_at", "")

    def current_manifest(self) -> dict | None:
        raw = (self._remote._collection.metadata or {}).get(MANIFEST)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def problem(self, corpus: Corpus, units: list[Evidence]) -> str | None:
        self._expect(corpus, units)
        manifest = self.current_manifest()
        if manifest is None:
            return f"no index on the Chroma server at {self.url}"
        for key in ("corpus_sha256", "documents_sha256", "embedding_model", "count"):
            if manifest.get(key) != self._expected.get(key):
                return f"the index on {self.url} was built for another {key.replace('_', ' ')}"
        if self._remote._collection.count() != len(units):
            return f"the index on {self.url} holds {self._remote._collection.count()} documents, not {len(units)}"
        return None

    def ensure(self, corpus: Corpus, units: list[Evidence], rebuild: bool = True, force: bool = False) -> IndexState:
        problem = "rebuild forced" if force else self.problem(corpus, units)
        if problem is None:
            return IndexState("fresh", len(units), self.current_manifest() or {}, self.build_id)
        if not rebuild:
            raise StaleIndexError(f"{problem}; run `assistant index` to build it")
        had_index = self.current_manifest() is not None
        log.warning("building the index: %s", problem)
        self._remote.reset_collection()
        docs = [to_document(u) for u in units]
        self._remote.add_documents(docs, ids=[d.id for d in docs])
        manifest = {**self._expected, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._remote._collection.modify(metadata={MANIFEST: json.dumps(manifest)})
        return IndexState("rebuilt" if had_index else "built", len(units), manifest, self.build_id)

    def refresh(self, force: bool = False) -> None:
        """Nothing to follow: the server's collection is the one index."""

    def _named_build(self) -> Path | None:
        return None


def open_index(index_dir: Path, embeddings: Embeddings, embedding_model: str,
               chroma_url: str | None = None) -> ChromaIndex:
    """The index a configuration names: build folders under index_dir, or a Chroma server's collection."""
    if chroma_url:
        return RemoteChromaIndex(chroma_url, embeddings, embedding_model)
    return ChromaIndex(index_dir, embeddings, embedding_model)
