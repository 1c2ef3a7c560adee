"""Training the frame model from the question bank (corpus/bank/*.jsonl), and measuring it writer by writer.

`assistant train` (and `assistant index`) writes corpus/frames-model.npz, named inside by the hash of everything
it was trained from (frames.model_key). On load a model whose key no longer matches the bank and tables is trained
again (a few seconds) with one line on stderr; nothing is downloaded."""
from __future__ import annotations

import logging
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .frames import (
    FRAMES_FILE, Example, FrameModel, FrameModelError, FrameTable, accuracy_by_writer, fit, fit_temperature,
    held_out_logits, model_key, read_bank,
)
from .normalize import normalize
from .records import Turn

MODEL_FILE = "frames-model.npz"
C = 4.0  # inverse regularisation, chosen by leave-one-writer-out frame accuracy (docs/evaluation.md)


def embedding_name(understanding) -> str:
    """Which vectors the model was trained with (part of its key): none, or the embedding class."""
    return type(understanding.intents.embeddings).__name__ if understanding.intents is not None else "none"


def examples(understanding, rows: list[dict], cache_dir: Path | None = None) -> list[Example]:
    """Bank rows as training examples: the question read by the understand stage without a frame model. The
    questions' vectors are kept in `cache_dir` (default: the `ASSISTANT_TRAIN_CACHE` folder, else none), keyed by
    the embedding and the exact text, so that training again after a change of the tables embeds only new text."""
    cache = _VectorCache(cache_dir or _default_cache(), embedding_name(understanding))
    out = []
    for r in rows:
        history = [Turn.model_validate(t) for t in r.get("history") or []]
        q = understanding.read(normalize(r["question"]))
        text, signals = understanding.frame_input(q, history)
        dense = cache.get(q.text)
        if dense is None:
            dense = understanding.dense(q)
            cache.put(q.text, dense)
        out.append(Example(text=text, signals=signals, frame=r["frame"], writer=r.get("writer") or r["id"].split("-")[0],
                           dense=tuple(dense) if dense is not None else None))
    cache.save()
    return out


def _default_cache() -> Path | None:
    folder = os.environ.get("ASSISTANT_TRAIN_CACHE")
    return Path(folder) if folder else None


class _VectorCache:
    """Question text → vector, one npz file per embedding; no folder, or one that cannot be written, keeps nothing."""

    def __init__(self, folder: Path | None, embedding: str) -> None:
        self.path = folder / f"bank-vectors-{embedding}.npz" if folder else None
        self.vectors: dict[str, list[float]] = {}
        self.changed = False
        if self.path and self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    self.vectors = {t: list(v) for t, v in zip(data["texts"].tolist(), data["vectors"])}
            except (OSError, ValueError, KeyError) as e:
                print(f"assistant: ignoring the vector cache {self.path}: {e}", file=sys.stderr)

    def get(self, text: str) -> list[float] | None:
        return self.vectors.get(text)

    def put(self, text: str, vector: list[float] | None) -> None:
        if vector is not None and self.path:
            self.vectors[text] = list(vector)
            self.changed = True

    def save(self) -> None:
        if not (self.path and self.changed and self.vectors):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            texts = list(self.vectors)
            np.savez(self.path.with_suffix(".tmp.npz"), texts=np.array(texts),
                     vectors=np.array([self.vectors[t] for t in texts], dtype=np.float64))
            os.replace(self.path.with_suffix(".tmp.npz"), self.path)
        except OSError as e:
            print(f"assistant: the vector cache was not written ({e})", file=sys.stderr)


def train(understanding, corpus_dir: Path, out: Path | None = None, calibrate: bool = True) -> FrameModel:
    """Train on the whole bank, fit the temperature on leave-one-writer-out predictions, store the arrays."""
    rows = read_bank(corpus_dir)
    if not rows:
        raise FrameModelError(f"no question bank in {corpus_dir / 'bank'}")
    table = FrameTable.load(corpus_dir / FRAMES_FILE)
    from .understand import TOPIC_BY_NAME, WANT_NAMES
    table.check(WANT_NAMES, TOPIC_BY_NAME, (r["frame"] for r in rows))
    ex = examples(understanding, rows)
    temperature = 1.0
    if calibrate and len({e.writer for e in ex}) >= 3:
        temperature = fit_temperature(held_out_logits(ex, c=C, folds=3))
    model = fit(ex, c=C, temperature=temperature, key=model_key(corpus_dir, embedding_name(understanding)))
    model.save(out or corpus_dir / MODEL_FILE)
    return model


def load_frames(understanding, corpus_dir: Path) -> FrameModel | None:
    """The stored model when it was trained from the present bank and tables. A missing, stale or damaged model
    is not trained here (that takes minutes on a small machine): one line on stderr, and the pattern reading
    answers until `assistant train` or `assistant index` trains it again."""
    path = corpus_dir / MODEL_FILE
    if not (corpus_dir / "bank").is_dir():
        return None
    try:
        model = FrameModel.read(path) if path.exists() else None
    except FrameModelError as exc:
        print(f"{exc}; answering with the pattern reading until `assistant train`.", file=sys.stderr)
        return None
    if model is None or model.key != model_key(corpus_dir, embedding_name(understanding)):
        state = "is missing" if model is None else "was trained from another question bank or tables"
        print(f"{path} {state}; answering with the pattern reading until `assistant train`.", file=sys.stderr)
        return None
    return model


def is_current(understanding, corpus_dir: Path) -> bool:
    path = corpus_dir / MODEL_FILE
    try:
        return path.exists() and FrameModel.read(path).key == model_key(corpus_dir, embedding_name(understanding))
    except FrameModelError:
        return False


@dataclass
class WriterReport:
    writer: str
    n: int
    frame_acc: float


def leave_one_writer_out(understanding, corpus_dir: Path, c: float = C) -> tuple[list[WriterReport], dict]:
    """Frame accuracy of each writer's questions under a model trained on the other writers; per-frame recall."""
    rows = read_bank(corpus_dir)
    ex = examples(understanding, rows)
    held = held_out_logits(ex, c=c)
    by_writer = accuracy_by_writer(held)
    counts = Counter(e.writer for e in ex)
    per_frame: dict[str, list[int]] = defaultdict(list)
    for _, gold, z, classes in held:
        per_frame[gold].append(int(classes[int(np.argmax(z))] == gold))
    return ([WriterReport(w, counts[w], by_writer[w]) for w in sorted(by_writer)],
            {f: sum(v) / len(v) for f, v in sorted(per_frame.items())})
