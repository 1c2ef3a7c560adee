"""Intents by meaning: the nearest reviewable exemplar questions (corpus/intents.csv) under the bundled embeddings.

Cue patterns find the intents whose words a question uses; this finds a new phrasing of a known intent. The
embedding model's cosine scores sit in a narrow band, so a raw score is never the test: an intent is taken only
when the nearest exemplars agree on it (the two nearest share the intent, or the nearest beats every exemplar of
another intent by a margin calibrated on the development set, see `calibrate`)."""
from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from .caches import vectors_problem

log = logging.getLogger(__name__)

EXEMPLARS_FILE = "intents.csv"
# Intents that are declines: matters the notice does not cover, and talk that is not about it at all.
DECLINE_INTENTS = frozenset({"practical", "offtopic"})
DEFAULT_MARGIN = 0.02  # calibrated on tests/eval/questions.jsonl (docs/evaluation.md, "Intent margin")


@dataclass(frozen=True)
class IntentGuess:
    intent: str | None  # None: the neighbours do not agree
    similarity: float  # of the nearest exemplar
    margin: float  # nearest exemplar minus the nearest exemplar of another intent
    neighbour: str  # the nearest exemplar question, for review


class IntentClassifier:
    def __init__(self, embeddings: Embeddings, exemplars: Path, cache_dir: Path | None = None,
                 margin: float = DEFAULT_MARGIN) -> None:
        self.embeddings = embeddings
        self.margin = margin
        with exemplars.open(encoding="utf-8", newline="") as fh:
            rows = [(r["intent"].strip(), r["question"].strip()) for r in csv.DictReader(fh) if r["question"].strip()]
        self.labels = [r[0] for r in rows]
        self.questions = [r[1] for r in rows]
        self.vectors = self._vectors(cache_dir, exemplars.read_bytes())

    def _vectors(self, cache_dir: Path | None, data: bytes) -> np.ndarray:
        """Exemplar vectors, embedded once per exemplar file and model and kept beside the index."""
        key = hashlib.sha256(data + type(self.embeddings).__name__.encode()).hexdigest()[:16]
        path = cache_dir / f"intent-exemplars-{key}.json" if cache_dir else None
        self.cache_path = path
        if path and path.exists():
            try:
                cached = json.loads(path.read_text())
                if vectors_problem(cached, len(self.questions)) is None:  # a wrong shape fails every question
                    return _unit(np.array(cached, dtype=np.float32))
            except (OSError, ValueError):
                pass
            log.warning("intent exemplar cache %s unreadable or of the wrong shape; embedding again", path)
        vectors = np.array([self.embeddings.embed_query(q) for q in self.questions], dtype=np.float32)
        if path:
            tmp = path.with_suffix(".tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(vectors.round(6).tolist()))
                tmp.replace(path)
            except OSError as exc:  # a read-only index folder only costs the embedding time
                tmp.unlink(missing_ok=True)
                log.info("intent exemplar cache not written: %s", exc)
        return _unit(vectors)

    def scores(self, question: str) -> list[tuple[str, float, str]]:
        """(intent, similarity, exemplar) of every exemplar, nearest first."""
        v = _unit(np.array([self.embeddings.embed_query(question)], dtype=np.float32))[0]
        sims = self.vectors @ v
        order = np.argsort(-sims)
        return [(self.labels[i], float(sims[i]), self.questions[i]) for i in order]

    def classify(self, question: str) -> IntentGuess:
        ranked = self.scores(question)
        (top, s1, q1), (second, _, _) = ranked[0], ranked[1]
        other = next(s for label, s, _ in ranked if label != top)
        margin = s1 - other
        agreed = top == second or margin >= self.margin
        return IntentGuess(intent=top if agreed else None, similarity=s1, margin=margin, neighbour=q1)


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)
