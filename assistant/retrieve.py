"""Retrieve stage: BM25 over jieba words and dense vectors from Chroma, fused by reciprocal rank."""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import jieba
from rank_bm25 import BM25Okapi

from .bm25_index import SparseBM25
from .caches import tokens_problem
from .index import ChromaIndex, stored_documents_sha256, to_document
from .records import Evidence

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever

log = logging.getLogger(__name__)

RRF_K = 60
_STOPWORDS = set("的 了 吗 呢 啊 吧 是 在 和 与 及 或 有 我 你 他 这 那 什么 怎么 哪些 哪个 多少 请问 一下 还 要 会 能 可以 嘛 呀 么".split())
_TOKEN = re.compile(r"[\u4e00-\u9fff]+|[a-z0-9]+", re.I)


def tokenize(text: str) -> list[str]:
    """Chinese words for BM25: jieba's search-mode cut (whole words and their parts), minus stop words."""
    tokens = []
    for run in _TOKEN.findall(text.lower()):
        for word in jieba.lcut_for_search(run):
            if word not in _STOPWORDS:
                tokens.append(word)
    return tokens


def token_cache_path(folder: Path | None, units: list[Evidence], dictionary_key: str) -> Path | None:
    """Where the units' BM25 tokens are kept: named by the texts and by the word table that cut them."""
    if folder is None:
        return None
    texts = stored_documents_sha256((u.doc_id, u.text) for u in units)
    return folder / f"bm25-tokens-{dictionary_key}-{texts[:16]}.json"


@dataclass
class HybridRetriever:
    """The corpus units ranked by BM25 ∪ dense, fused with reciprocal rank fusion.

    `pinned` doc ids (rows of occupations the linker recognised) rank first: a lookup by structure beats
    any similarity score. A plain class with a typed `run()`, not a LangChain `BaseRetriever`: that base class
    imports LangChain's tracing stack, half a second of every cold start; `as_langchain()` gives one for chains."""

    units: list[Evidence]
    index: ChromaIndex
    k: int = 5
    candidates: int = 20
    token_cache: Path | None = None  # the units' BM25 tokens, kept beside a folder index by `assistant index`
    # rank-bm25 scores every unit for every query (177 ms at 100k units); from this many units on, the sparse
    # index of bm25s scores only the units sharing a word with the query (0.5 ms at 100k; docs/benchmarks.md)
    sparse_from: int = 5_000
    _bm25: BM25Okapi | None = field(default=None, init=False, repr=False)  # built on the first query
    _by_id: dict[str, Evidence] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {u.doc_id: u for u in self.units}

    def unit_tokens(self) -> list[list[str]]:
        """BM25 tokens of every unit, read from the token cache when it was made for the same texts and words."""
        if self.token_cache is not None and self.token_cache.exists():
            try:
                cached = json.loads(self.token_cache.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                problem = f"unreadable ({type(exc).__name__})"
            else:
                problem = tokens_problem(cached, len(self.units))
                if problem is None:
                    return cached
            log.warning("BM25 token cache %s is corrupt (%s); tokenizing again", self.token_cache.name, problem)
        tokens = [tokenize(u.text) for u in self.units]
        if self.token_cache is not None:
            tmp = self.token_cache.with_name(f".{self.token_cache.name}.{os.getpid()}")
            try:
                tmp.write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
                os.replace(tmp, self.token_cache)
            except OSError as exc:  # a full or read-only disk: no cache, and no temp file left behind
                tmp.unlink(missing_ok=True)
                log.info("BM25 tokens not stored: %s", exc)
        return tokens

    def bm25_ranking(self, query: str, n: int) -> list[tuple[str, float]]:
        if self._bm25 is None:
            tokens = self.unit_tokens()
            self._bm25 = SparseBM25(tokens) if len(tokens) >= self.sparse_from else BM25Okapi(tokens)
        if isinstance(self._bm25, BM25Okapi):
            scores = self._bm25.get_scores(tokenize(query))
            order = sorted(range(len(scores)), key=lambda i: -scores[i])[:n]
            return [(self.units[i].doc_id, float(scores[i])) for i in order if scores[i] > 0]
        return [(self.units[i].doc_id, score) for i, score in self._bm25.top(tokenize(query), n)]

    def dense_ranking(self, query: str, n: int) -> list[tuple[str, float]]:
        """Chroma's ranking; if the vector store fails, retrieval goes on with BM25 alone (and says so in the log)."""
        try:
            return self.index.search(query, n)
        except Exception as exc:  # noqa: BLE001 — chromadb raises many kinds; none may reach the user
            log.warning("dense retrieval unavailable, using BM25 only: %s", exc)
            return []

    def run(self, query: str, k: int | None = None, pinned: list[str] | None = None) -> list[Evidence]:
        k = k or self.k
        fused: dict[str, float] = {}
        for ranking in (self.bm25_ranking(query, self.candidates), self.dense_ranking(query, self.candidates)):
            for rank, (doc_id, _) in enumerate(ranking):
                fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, doc_id in enumerate(pinned or []):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 + 1.0 / (rank + 1)
        best = sorted(fused.items(), key=lambda x: -x[1])[:k]
        return [self._by_id[d].model_copy(update={"score": s}) for d, s in best]

    def as_langchain(self) -> BaseRetriever:
        """This retriever as a LangChain `BaseRetriever` (invoke / batch / chains), made on demand."""
        from langchain_core.retrievers import BaseRetriever

        hybrid = self

        class _LangChainHybrid(BaseRetriever):
            def _get_relevant_documents(self, query: str, *, run_manager=None):
                return [to_document(u) for u in hybrid.run(query)]

        return _LangChainHybrid()
