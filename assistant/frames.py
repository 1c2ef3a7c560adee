"""What a question asks (its frame), learned from the labelled question bank, with a calibrated confidence.

The model follows Rasa's design: patterns and lookup tables are features, not routes. A question becomes
- character 1–3-grams of the question with every linked job span replaced by one placeholder (so the model learns
  how people ask, not which jobs they name) and numbers folded to 0;
- signals: the names of the reviewed patterns that fire (corpus/patterns.json) and what the linker found (a linked
  job and how, an unlinked name, an item, a batch, a clause, a department, a follow-up with history);
and a multinomial logistic regression trained on the bank (scikit-learn, at build time only) decides. Its logits are
divided by a temperature fitted on leave-one-writer-out predictions, so the probability of the predicted frame is a
calibrated confidence. The trained weights are stored as plain arrays beside the index, named by the hash of
everything they were trained from, and read back in milliseconds with numpy alone (no scikit-learn at run time)."""
from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FRAMES_FILE = "frames.json"
BANK_DIR = "bank"
FEATURES_VERSION = "5"  # change when featurize() changes: stored models are then trained again
PLACEHOLDER = "◆"
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


class FrameModelError(RuntimeError):
    """The frame model cannot be trained or read."""


@dataclass(frozen=True)
class FrameGuess:
    frame: str
    confidence: float  # calibrated probability of `frame`
    scores: tuple[tuple[str, float], ...]  # every frame, most probable first

    def second(self) -> tuple[str, float]:
        return self.scores[1] if len(self.scores) > 1 else ("", 0.0)


@dataclass(frozen=True)
class FrameSpec:
    name: str
    wants: tuple[str, ...]
    topics: tuple[str, ...]
    decline: str | None = None
    header: bool = False
    status: bool = False
    # a higher bar for a question written mostly in latin letters, where the bank has one writer of twelve: a
    # frame that declines on its own reading (an injection) is not applied on a thin reading of English
    min_confidence_latin: float | None = None
    # a lower bar for the part of a frame that only adds true sentences to an answer (a named job's certificate
    # status): below min_confidence, a top reading at or above this adds that part and changes nothing else
    add_from: float | None = None


@dataclass(frozen=True)
class FrameTable:
    """corpus/frames.json: the frames and what each sets in an interpretation."""

    frames: dict[str, FrameSpec]
    min_confidence: float

    @classmethod
    def load(cls, path: Path) -> "FrameTable":
        data = json.loads(path.read_text(encoding="utf-8"))
        frames = {name: FrameSpec(name=name, wants=tuple(f.get("wants", ())), topics=tuple(f.get("topics", ())),
                                  decline=f.get("decline"), header=bool(f.get("header")), status=bool(f.get("status")),
                                  min_confidence_latin=f.get("min_confidence_latin"), add_from=f.get("add_from"))
                  for name, f in data["frames"].items()}
        return cls(frames=frames, min_confidence=float(data["min_confidence"]))

    def check(self, known_wants: Iterable[str], known_topics: Iterable[str], bank_frames: Iterable[str]) -> None:
        """Every want and topic a frame sets exists; every frame is reachable from the bank; every bank label is a frame."""
        wants, topics, seen = set(known_wants), set(known_topics), set(bank_frames)
        for f in self.frames.values():
            bad = (set(f.wants) - wants) | (set(f.topics) - topics)
            if bad:
                raise FrameModelError(f"corpus/{FRAMES_FILE}: frame {f.name!r} names unknown wants/topics {sorted(bad)}")
        unknown = seen - set(self.frames)
        if unknown:
            raise FrameModelError(f"the question bank uses frames not in corpus/{FRAMES_FILE}: {sorted(unknown)}")
        unreachable = set(self.frames) - seen
        if unreachable:
            raise FrameModelError(f"frames with no bank question (unreachable): {sorted(unreachable)}")


# ---- features ------------------------------------------------------------------------------------------------

def masked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """The question with each (start, end) job span replaced by the placeholder and numbers folded to 0."""
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:
            continue
        out.append(text[last:start])
        out.append(PLACEHOLDER)
        last = end
    out.append(text[last:])
    return _DIGITS.sub("0", _SPACE.sub(" ", "".join(out)).strip().lower())


DENSE_SCALE = 3.0  # the e5 vector (unit length) against the n-gram block (unit length) and the binary signals


def featurize(text: str, signals: Iterable[str], dense: Sequence[float] | None = None) -> dict[str, float]:
    """Features of one (masked) question: character n-grams, L2-normalised; binary signals; and the question's
    multilingual e5 vector, which carries meaning across languages and wordings the n-grams never saw."""
    grams: dict[str, float] = {}
    padded = f"^{text}$"
    for n in (1, 2, 3):
        for i in range(len(padded) - n + 1):
            g = padded[i:i + n]
            if g.strip():
                grams["c:" + g] = 1.0
    norm = float(np.sqrt(len(grams))) or 1.0
    feats = {k: v / norm for k, v in grams.items()}
    for s in signals:
        feats["s:" + s] = 1.0
    if dense is not None:
        for i, v in enumerate(dense):
            feats[f"e:{i}"] = float(v) * DENSE_SCALE
    return feats


# ---- the model ---------------------------------------------------------------------------------------------

@dataclass
class FrameModel:
    classes: tuple[str, ...]
    vocabulary: dict[str, int]
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)
    temperature: float = 1.0
    key: str = ""

    def logits(self, feats: dict[str, float]) -> np.ndarray:
        z = self.intercept.copy()
        for name, value in feats.items():
            j = self.vocabulary.get(name)
            if j is not None:
                z += self.coef[:, j] * value
        return z

    def predict(self, text: str, signals: Iterable[str], dense: Sequence[float] | None = None) -> FrameGuess:
        z = self.logits(featurize(text, signals, dense)) / self.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)
        scores = tuple((self.classes[i], float(p[i])) for i in order)
        return FrameGuess(frame=scores[0][0], confidence=scores[0][1], scores=scores)

    # -- storage: plain arrays, no pickle --
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        names = sorted(self.vocabulary, key=self.vocabulary.get)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez(fh, coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                                classes=np.array(self.classes),
                     vocabulary=np.frombuffer("\n".join(names).encode("utf-8"), dtype=np.uint8),
                                temperature=np.array(self.temperature), key=np.array(self.key))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> "FrameModel":
        try:
            with np.load(path, allow_pickle=False) as z:
                names = z["vocabulary"].tobytes().decode("utf-8").split("\n")
                model = cls(classes=tuple(str(c) for c in z["classes"]), vocabulary={n: i for i, n in enumerate(names)},
                            coef=z["coef"], intercept=z["intercept"], temperature=float(z["temperature"]),
                            key=str(z["key"]))
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise FrameModelError(f"{path} is not a frame model ({exc or type(exc).__name__})") from None
        if model.coef.shape != (len(model.classes), len(names)) or model.intercept.shape != (len(model.classes),) \
                or not np.isfinite(model.coef).all() or model.temperature <= 0:
            raise FrameModelError(f"{path} is damaged (shapes or values do not fit)")
        return model


@dataclass(frozen=True)
class Example:
    text: str  # masked question
    signals: tuple[str, ...]
    frame: str
    writer: str
    dense: tuple[float, ...] | None = None


def fit(examples: Sequence[Example], c: float = 4.0, temperature: float = 1.0, key: str = "") -> FrameModel:
    """A multinomial logistic regression over the examples' features (scikit-learn, deterministic)."""
    try:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise FrameModelError(f"training the frame model needs scikit-learn ({exc})") from None
    vec = DictVectorizer(sort=True)
    x = vec.fit_transform([featurize(e.text, e.signals, e.dense) for e in examples])
    y = [e.frame for e in examples]
    clf = LogisticRegression(C=c, max_iter=1000, tol=1e-3)
    clf.fit(x, y)
    vocabulary = {name: i for i, name in enumerate(vec.feature_names_)}
    return FrameModel(classes=tuple(clf.classes_), vocabulary=vocabulary, coef=clf.coef_.astype(np.float32),
                      intercept=clf.intercept_.astype(np.float32), temperature=temperature, key=key)


def held_out_logits(examples: Sequence[Example], c: float = 4.0,
                    folds: int | None = None) -> list[tuple[str, str, np.ndarray, tuple[str, ...]]]:
    """(writer, gold frame, logits, classes) of every example, from a model trained without its writer: one model
    per writer (leave-one-writer-out), or per group of writers when `folds` is given (cheaper, for calibration)."""
    writers = sorted({e.writer for e in examples})
    groups = [writers[i::folds] for i in range(folds)] if folds else [[w] for w in writers]
    out = []
    for group in groups:
        model = fit([e for e in examples if e.writer not in group], c=c)
        for e in examples:
            if e.writer in group:
                out.append((e.writer, e.frame, model.logits(featurize(e.text, e.signals, e.dense)), model.classes))
    return out


def fit_temperature(held: Sequence[tuple[str, str, np.ndarray, tuple[str, ...]]]) -> float:
    """The temperature that minimises the negative log-likelihood of held-out predictions (grid search)."""
    best, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 41)):
        nll = 0.0
        for _, gold, z, classes in held:
            zz = z / t
            zz = zz - zz.max()
            logp = zz - np.log(np.exp(zz).sum())
            nll -= float(logp[classes.index(gold)]) if gold in classes else -np.log(1e-6)
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def bank_files(corpus_dir: Path) -> list[Path]:
    return sorted((corpus_dir / BANK_DIR).glob("*.jsonl"))


def jsonl_lines(path: Path):
    """(line number, text) of every non-blank line of a JSON-lines file (the bank and the evaluation sets)."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            yield n, line


def read_bank(corpus_dir: Path) -> list[dict]:
    rows = []
    for path in bank_files(corpus_dir):
        for n, line in jsonl_lines(path):
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise FrameModelError(f"{path}:{n}: not JSON ({exc})") from None
    return rows


def model_key(corpus_dir: Path, *extra: bytes) -> str:
    """What a stored model was trained from: the bank, the frame table, the pattern and alias tables, the features."""
    h = hashlib.sha256(FEATURES_VERSION.encode())
    for path in bank_files(corpus_dir) + [corpus_dir / n for n in (FRAMES_FILE, "patterns.json", "aliases.csv", "cues.csv",
                                                                   "sectors.csv")]:
        h.update(path.name.encode())
        h.update(path.read_bytes() if path.exists() else b"")
    for e in extra:
        h.update(e if isinstance(e, bytes) else str(e).encode())
    return h.hexdigest()[:16]


def accuracy_by_writer(held: Sequence[tuple[str, str, np.ndarray, tuple[str, ...]]]) -> dict[str, float]:
    hits: dict[str, list[int]] = {}
    for writer, gold, z, classes in held:
        hits.setdefault(writer, []).append(int(classes[int(np.argmax(z))] == gold))
    return {w: sum(v) / len(v) for w, v in hits.items()}
