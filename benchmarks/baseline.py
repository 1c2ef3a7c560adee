"""The plain LangChain pipeline the scale figures are compared with: RecursiveCharacterTextSplitter (500/50) over the
source text, the same embedding model as the assistant, a persisted Chroma store, similarity search top-5.

    python benchmarks/baseline.py build INDEX_DIR          # split, embed, persist
    python benchmarks/baseline.py ask INDEX_DIR QUESTION   # one cold retrieval (what `assistant ask` is paired with)
    BASELINE_INDEX=DIR uvicorn baseline:app_factory --factory   # the same retrieval over HTTP (POST /api/ask)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "corpus" / "notice-2020-80.txt"
COLLECTION = "baseline-chunks"


class Pipeline:
    def __init__(self, index_dir: Path) -> None:
        import chromadb
        from langchain_chroma import Chroma

        sys.path.insert(0, str(ROOT))
        from assistant.embeddings import load_embeddings

        client = chromadb.PersistentClient(path=str(index_dir), settings=chromadb.Settings(anonymized_telemetry=False))
        self.store = Chroma(collection_name=COLLECTION, embedding_function=load_embeddings(), client=client,
                            collection_metadata={"hnsw:space": "cosine"})

    def build(self) -> int:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        chunks = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50).create_documents(
            [SOURCE.read_text(encoding="utf-8")])
        self.store.reset_collection()
        self.store.add_documents(chunks, ids=[f"chunk-{i}" for i in range(len(chunks))])
        return len(chunks)

    def ask(self, question: str) -> list[str]:
        return [d.page_content for d in self.store.similarity_search(question, k=5)]


class Ask(BaseModel):
    question: str


def app_factory():
    from fastapi import FastAPI

    pipeline = Pipeline(Path(os.environ["BASELINE_INDEX"]))
    app = FastAPI()

    @app.post("/api/ask")
    def ask(body: Ask) -> dict:
        return {"question": body.question, "chunks": pipeline.ask(body.question)}

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ready": True}

    return app


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    command, index_dir = sys.argv[1], Path(sys.argv[2])
    pipeline = Pipeline(index_dir)
    if command == "build":
        print(f"{pipeline.build()} chunks")
    else:
        print(pipeline.ask(sys.argv[3])[0][:80])
