"""Index stage: corpus records → LangChain Documents → a persisted Chroma collection with a manifest."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from .records import AnnexRow, Corpus, Evidence

log = logging.getLogger(__name__)

COLLECTION = "notice-2020-80"
MANIFEST = "manifest.json"
HEADER_LABEL = "文头"


class StaleIndexError(RuntimeError):
    """The index is missing, stale or built by another model, and may not be rebuilt."""


def annex_row_text(row: AnnexRow) -> str:
    """What a user asks about an occupation, spelled out so both BM25 and vectors can find it."""
    if row.is_licensed:
        fate = "不按批次退出目录，拟依照法定程序调整为准入类职业资格（拟依法调整为准入类职业资格）"
    else:
        fate = f"属于{row.batch_words}，拟于{row.deadline}退出目录"
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


def build_evidence(corpus: Corpus) -> list[Evidence]:
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
                     label=row.label, text=annex_row_text(row))
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


class ChromaIndex:
    """The persisted Chroma collection of the corpus, and the manifest that says what built it."""

    def __init__(self, index_dir: Path, embeddings: Embeddings, embedding_model: str,
                 chroma_url: str | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.embeddings = embeddings
        self.embedding_model = embedding_model
        self.chroma_url = chroma_url
        import chromadb  # here, not at import time: commands that never open the index do not pay for it
        from langchain_chroma import Chroma

        if chroma_url:
            # A Chroma server (`chroma run`) shared by every replica; the manifest lives in the collection's
            # metadata there, so replicas agree on what is built without a shared disk.
            from urllib.parse import urlsplit

            url = urlsplit(chroma_url)
            self._client = chromadb.HttpClient(
                host=url.hostname or "localhost", port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https", settings=chromadb.Settings(anonymized_telemetry=False))
        else:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(self.index_dir), settings=chromadb.Settings(anonymized_telemetry=False)
            )
        self.store = Chroma(
            collection_name=COLLECTION,
            embedding_function=embeddings,
            client=self._client,
            collection_metadata={"hnsw:space": "cosine"},
        )

    @property
    def manifest_path(self) -> Path:
        return self.index_dir / MANIFEST

    def expected_manifest(self, corpus: Corpus, units: list[Evidence]) -> dict:
        digest = hashlib.sha256()
        for u in units:
            digest.update(f"{u.doc_id}\t{u.text}\n".encode("utf-8"))
        return {
            "collection": COLLECTION,
            "corpus_sha256": corpus.source_sha256,
            "documents_sha256": digest.hexdigest(),
            "embedding_model": self.embedding_model,
            "count": len(units),
        }

    def current_manifest(self) -> dict | None:
        if self.chroma_url:
            raw = (self.store._collection.metadata or {}).get(MANIFEST)
            return json.loads(raw) if raw else None
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def problem(self, corpus: Corpus, units: list[Evidence]) -> str | None:
        """Why the index on disk cannot be used as it is, or None when it is fresh."""
        current = self.current_manifest()
        if current is None:
            return f"no index at {self.index_dir}"
        expected = self.expected_manifest(corpus, units)
        for key in ("embedding_model", "corpus_sha256", "documents_sha256"):
            if current.get(key) != expected[key]:
                return f"index at {self.index_dir} was built with another {key.replace('_', ' ')}"
        if self.store._collection.count() != expected["count"]:
            return f"index at {self.index_dir} holds {self.store._collection.count()} documents, expected {expected['count']}"
        return None

    def ensure(self, corpus: Corpus, units: list[Evidence], rebuild: bool = True, force: bool = False) -> IndexState:
        problem = "rebuild forced" if force else self.problem(corpus, units)
        if problem is None:
            return IndexState("fresh", len(units), self.current_manifest() or {})
        if not rebuild:
            raise StaleIndexError(f"{problem}; run `assistant index` to build it")
        log.warning("building the index: %s", problem)
        had_index = self.current_manifest() is not None
        self.store.reset_collection()
        docs = [to_document(u) for u in units]
        self.store.add_documents(docs, ids=[d.id for d in docs])
        manifest = {**self.expected_manifest(corpus, units), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if self.chroma_url:
            self.store._collection.modify(metadata={MANIFEST: json.dumps(manifest)})
        else:
            self.manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                          encoding="utf-8")
        return IndexState("rebuilt" if had_index else "built", len(units), manifest)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Dense search: (doc_id, cosine similarity) best first."""
        vector = self.embeddings.embed_query(query)
        hits = self.store.similarity_search_by_vector_with_relevance_scores(vector, k=k)
        return [(doc.metadata["doc_id"], 1.0 - float(distance)) for doc, distance in hits]
