"""Retrieve stage: BM25 over jieba words and dense vectors from Chroma, fused by reciprocal rank."""
from __future__ import annotations

import logging
import re

import jieba
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr
from rank_bm25 import BM25Okapi

from .index import ChromaIndex, to_document
from .records import Evidence

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


class HybridRetriever(BaseRetriever):
    """A LangChain retriever over the corpus units: BM25 ∪ dense, fused with reciprocal rank fusion.

    `pinned` doc ids (rows of occupations the linker recognised) rank first: a lookup by structure beats
    any similarity score."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    units: list[Evidence]
    index: ChromaIndex
    k: int = 5
    candidates: int = 20
    _bm25: BM25Okapi | None = PrivateAttr(default=None)
    _by_id: dict[str, Evidence] = PrivateAttr()

    def model_post_init(self, __context) -> None:
        self._bm25 = None  # built on the first query: a cold answer from the annex needs no BM25
        self._by_id = {u.doc_id: u for u in self.units}

    def bm25_ranking(self, query: str, n: int) -> list[tuple[str, float]]:
        if self._bm25 is None:
            self._bm25 = BM25Okapi([tokenize(u.text) for u in self.units])
        scores = self._bm25.get_scores(tokenize(query))
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:n]
        return [(self.units[i].doc_id, float(scores[i])) for i in order if scores[i] > 0]

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

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [to_document(u) for u in self.run(query)]
