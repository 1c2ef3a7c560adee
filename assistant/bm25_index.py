"""The BM25 backend for large corpora, on `bm25s` (sparse matrix scoring: a query touches only the chunks that
contain its words). Same jieba tokens as `retrieve.tokenize`. `HybridRetriever` uses it from `sparse_from` units on
and keeps rank-bm25 below (this notice's 223 units take well under a millisecond); benchmarks/scale.py compares the
two at 1k/10k/100k chunks (docs/benchmarks.md)."""
from __future__ import annotations

from collections.abc import Sequence


class SparseBM25:
    """BM25 (Okapi, k1=1.5, b=0.75 as rank-bm25's defaults) over pre-tokenized documents."""

    def __init__(self, tokenized_docs: Sequence[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        self._retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in tokenized_docs]
        self._vocab = vocab
        self._retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        self.size = len(ids)

    def top(self, query_tokens: list[str], n: int) -> list[tuple[int, float]]:
        """(document position, score) best first, only documents sharing a word with the query."""
        import numpy as np

        known = [self._vocab[t] for t in query_tokens if t in self._vocab]
        if not known:
            return []
        scores = self._retriever.get_scores(known)
        n = min(n, self.size)
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best])]
        return [(int(i), float(scores[i])) for i in best if scores[i] > 0]
