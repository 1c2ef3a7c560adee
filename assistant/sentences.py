"""Which sentence of the notice body answers a question: a ranker trained on the question bank, with a calibrated
probability that its first sentence is the answer.

The units are the body's sentences (the opening paragraph and clauses 一…六, as `Clause.sentences()` cuts them).
Each (question, sentence) pair is described by a few general features: the e5 cosine similarity as a z-score and as a
rank among the units (the scores sit in a narrow band, so no raw score is ever a test), the BM25 score and rank, the
content words shared (the answer stage's `overlap`), IDF-weighted character bigrams shared, and whether a topic
cue of corpus/patterns.json that the question fires points at the sentence's clause or carries one of its key words, and
whether the question names the sentence's clause by number (第一条…).
A pointwise logistic regression (scikit-learn, at training time only) scores every unit; two numbers fitted on
writer-grouped held-out predictions (Platt scaling of the best score and its margin over the second) turn the best
score into the probability that the best sentence answers. The answer stage quotes that sentence when the probability
reaches `min_probability`, stored with the weights; otherwise today's route answers.

Labels come from the bank: a sentence answers a question when it contains one of the question's `must_contain`
alternatives and its clause is one the question cites. The weights, the calibration, the threshold and the units'
e5 vectors are stored as plain arrays in corpus/sentences-model.npz, named by the hash of the bank, the notice body,
the pattern table, the features and the embedding model: a stale or missing model is not used (one stderr line)."""
from __future__ import annotations

import hashlib
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .frames import bank_files, read_bank
from .link import named_clauses
from .normalize import normalize
from .records import CLAUSE_LABELS, Corpus
from .retrieve import tokenize
from .understand import TOPICS

MODEL_FILE = "sentences-model.npz"
FEATURES_VERSION = "3"
FEATURES = ("cos_z", "cos_gap", "cos_rank", "bm25", "bm25_rank", "overlap", "overlap_log", "bigrams", "bigram_rank",
            "topic_clause", "topic_key", "heading", "named_clause")
# Bank frames whose answers are clause sentences; notice_content first of all.
TRAIN_FRAMES = ("notice_content", "future", "validity", "exam", "students", "licensing")
# The probability is calibrated on the questions the answer stage asks the ranker about.
CALIBRATE_FRAMES = ("notice_content",)
C = 1.0  # inverse regularisation of the unit scorer
MIN_PROBABILITY = 0.5  # quote the best sentence when it answers more likely than not (held-out calibrated)
_CJK = re.compile(r"[\u3400-\u9fff]+")


class SentenceModelError(RuntimeError):
    """The sentence model cannot be trained or read."""


@dataclass(frozen=True)
class Unit:
    clause: int
    index: int  # sentence index within the clause (the index's clause-{clause}-{index} document)
    sentence: str  # as Clause.sentences() gives it
    text: str  # for reading and quoting: the scan's spaces around numbers removed, without the clause numeral

    @property
    def label(self) -> str:
        return CLAUSE_LABELS[self.clause]


def clean(sentence: str) -> str:
    """The scan's spaces around numbers removed (as the answer stage's _clean)."""
    return re.sub(r"\s*(\d+)\s*", r"\1", sentence)


def units_of(corpus: Corpus) -> list[Unit]:
    out = []
    for clause in corpus.clauses:
        for i, s in enumerate(clause.sentences()):
            out.append(Unit(clause.number, i, s, re.sub(r"^[一二三四五六七八九十]+、", "", clean(s))))
    return out


def overlap(question: str, text: str) -> int:
    """Characters of the question's content words (two characters or more) that the text contains."""
    return sum(len(w) for w in {w for w in tokenize(question) if len(w) >= 2} if w in text)


def _bigrams(text: str) -> set[str]:
    return {run[i:i + 2] for run in _CJK.findall(text) for i in range(len(run) - 1)}


def _rank_feature(scores: np.ndarray) -> np.ndarray:
    """1 / (1 + rank) among the units (ties share the better rank); 0 where the score is not positive."""
    order = (-scores).argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(len(scores))
    for i in range(len(scores)):  # ties: the best rank of equal scores
        ranks[i] = min(ranks[j] for j in np.flatnonzero(scores == scores[i]))
    return np.where(scores > 0, 1.0 / (1.0 + ranks), 0.0)


class Featurizer:
    """The features of every unit for one question; unit vectors are given (stored with the model) or embedded."""

    def __init__(self, corpus: Corpus, unit_vectors: np.ndarray | None = None,
                 embed_query: Callable[[str], Sequence[float]] | None = None) -> None:
        from rank_bm25 import BM25Okapi

        self.units = units_of(corpus)
        self.bm25 = BM25Okapi([tokenize(u.text) or ["∅"] for u in self.units])
        grams = [_bigrams(u.text) for u in self.units]
        self.unit_grams = grams
        n = len(self.units)
        df: dict[str, int] = {}
        for g in grams:
            for b in g:
                df[b] = df.get(b, 0) + 1
        self.idf = {b: math.log((n + 1) / (d + 0.5)) for b, d in df.items()}
        self.unit_vectors = unit_vectors
        self.embed_query = embed_query

    def matrix(self, question: str) -> np.ndarray:
        n = len(self.units)
        x = np.zeros((n, len(FEATURES)))
        if self.unit_vectors is not None and self.embed_query is not None:
            v = np.asarray(self.embed_query(question), dtype=np.float64)
            cos = self.unit_vectors @ (v / max(np.linalg.norm(v), 1e-9))
            sd = float(cos.std()) or 1.0
            x[:, 0] = (cos - cos.mean()) / sd
            x[:, 1] = (cos - cos.max()) / sd
            x[:, 2] = _rank_feature(cos - cos.min() + 1e-6)
        bm = np.asarray(self.bm25.get_scores(tokenize(question)), dtype=np.float64)
        if bm.max() > 0:
            x[:, 3] = bm / bm.max()
            x[:, 4] = _rank_feature(bm)
        asked = {w for w in tokenize(question) if len(w) >= 2}
        total = sum(len(w) for w in asked) or 1
        q_grams = {b for b in _bigrams(question) if b in self.idf}
        q_weight = math.fsum(self.idf[b] for b in q_grams) or 1.0  # fsum: the same in every process
        big = np.zeros(n)
        fired = [t for t in TOPICS if t.pattern.search(question)]
        named = set(named_clauses(question))  # 第一条把这项改革定性为什么: the sentence is in clause 一
        for i, u in enumerate(self.units):
            shared = sum(len(w) for w in asked if w in u.text)
            x[i, 5] = shared / total
            x[i, 6] = math.log1p(shared)
            big[i] = math.fsum(self.idf[b] for b in q_grams & self.unit_grams[i]) / q_weight
            x[i, 9] = float(any(u.clause == t.clause or any(u.clause == c for c, _ in t.also) for t in fired))
            x[i, 10] = float(any(k in u.sentence for t in fired for k in t.sentence_keys + tuple(
                k for _, ks in t.also for k in ks)))
            x[i, 11] = float(u.clause > 0 and u.index == 0)
            x[i, 12] = float(u.clause in named)
        x[:, 7] = big
        x[:, 8] = _rank_feature(big)
        return x


# Two sentences of one clause whose scores are this close (logits) are quoted together: the ranker cannot tell
# which of them answers (measured on the bank's notice_content questions: within 1.0, the second holds a required
# fact the first lacks in about one pair in five, and is only extra words in about one in three).
PAIR_MARGIN = 1.0


@dataclass(frozen=True)
class Pick:
    unit: Unit
    probability: float  # calibrated: that this sentence answers the question
    units: tuple[Unit, ...] = ()  # what is quoted: the sentence; a clause's heading with the sentence after it

    @property
    def text(self) -> str:
        return "".join(u.text for u in self.units or (self.unit,))


@dataclass
class SentenceModel:
    weights: np.ndarray  # (features,), on the raw features
    bias: float
    platt: np.ndarray  # (3,): best score, margin over the second, intercept
    min_probability: float
    unit_vectors: np.ndarray | None  # (units, dim), the e5 passage vectors of the units
    key: str = ""

    def scores(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights + self.bias

    def probability(self, scores: np.ndarray) -> float:
        top, second = np.sort(scores)[::-1][:2] if len(scores) > 1 else (scores[0], scores[0])
        z = self.platt[0] * top + self.platt[1] * (top - second) + self.platt[2]
        return float(1.0 / (1.0 + math.exp(-z)))

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        vectors = self.unit_vectors if self.unit_vectors is not None else np.zeros((0, 0))
        with tmp.open("wb") as fh:
            np.savez(fh, weights=self.weights, bias=np.array(self.bias), platt=self.platt,
                     min_probability=np.array(self.min_probability), unit_vectors=vectors.astype(np.float32),
                     features=np.array(FEATURES), key=np.array(self.key))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> "SentenceModel":
        try:
            with np.load(path, allow_pickle=False) as z:
                if tuple(str(f) for f in z["features"]) != FEATURES:
                    raise SentenceModelError(f"{path} has other features")
                vectors = z["unit_vectors"]
                model = cls(weights=z["weights"].astype(np.float64), bias=float(z["bias"]),
                            platt=z["platt"].astype(np.float64), min_probability=float(z["min_probability"]),
                            unit_vectors=vectors.astype(np.float64) if vectors.size else None, key=str(z["key"]))
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise SentenceModelError(f"{path} is not a sentence model ({exc or type(exc).__name__})") from None
        if model.weights.shape != (len(FEATURES),) or model.platt.shape != (3,) or not np.isfinite(model.weights).all():
            raise SentenceModelError(f"{path} is damaged (shapes or values do not fit)")
        return model


class SentenceRanker:
    """The trained model over the notice's sentences: `pick(question)` is the best sentence when it is likely
    enough to answer, else None."""

    def __init__(self, corpus: Corpus, model: SentenceModel,
                 embed_query: Callable[[str], Sequence[float]] | None = None) -> None:
        self.model = model
        self.features = Featurizer(corpus, model.unit_vectors, embed_query)
        if model.unit_vectors is not None and len(model.unit_vectors) != len(self.features.units):
            raise SentenceModelError("the sentence model was trained on another notice body")

    def ranked(self, question: str) -> tuple[list[Unit], float]:
        """Every unit, best first, and the calibrated probability that the first answers. A question that names
        clauses by number (第一条讲的是啥) is answered from those clauses: only their units are ranked."""
        units, p, _ = self.ranked_with_gap(question)
        return units, p

    def ranked_with_gap(self, question: str) -> tuple[list[Unit], float, float]:
        """As ranked, with the score gap between the first and the second unit."""
        x = self.features.matrix(question)
        s = self.model.scores(x)
        keep = x[:, FEATURES.index("named_clause")] > 0  # the units of the clauses the question names
        idx = np.flatnonzero(keep) if keep.any() else np.arange(len(s))
        order = idx[np.argsort(-s[idx], kind="stable")]
        gap = float(s[order[0]] - s[order[1]]) if len(order) > 1 else math.inf
        return [self.features.units[i] for i in order], self.model.probability(s[idx]), gap

    def pick(self, question: str, min_probability: float | None = None) -> Pick | None:
        """The best sentence when it is likely enough to answer (the model's threshold unless another is given). A
        numbered clause's heading is a title, not an answer (as in the answer stage's best_passage): it is quoted
        with the sentence that follows it."""
        units, p, gap = self.ranked_with_gap(question)
        if p < (self.model.min_probability if min_probability is None else min_probability):
            return None
        top = units[0]
        quoted = (top,)
        if top.clause > 0 and top.index == 0:
            quoted += tuple(u for u in self.features.units if u.clause == top.clause and u.index == 1)
        elif len(units) > 1 and units[1].clause == top.clause and gap <= PAIR_MARGIN:
            # two sentences of one clause the ranker cannot tell apart (鉴定中心以后怎么办: clause 六 says one thing
            # of the ministry's centres and another of the other units'): both, in the notice's order
            quoted = tuple(sorted((top, units[1]), key=lambda u: u.index))
        return Pick(top, p, quoted)


# ---- training ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    writer: str
    frame: str
    question: str  # normalised, as the answer stage sees it
    x: np.ndarray  # (units, features)
    y: np.ndarray  # (units,) 1 where the unit answers


def labels(units: list[Unit], row: dict) -> np.ndarray:
    """1 for each unit holding one of the question's must_contain alternatives, in a clause the question cites."""
    cited = {CLAUSE_LABELS.index(c) for c in row.get("citations") or () if c in CLAUSE_LABELS}
    alts = {clean(normalize(a)).replace(" ", "") for fact in row.get("must_contain") or ()
            for a in ([fact] if isinstance(fact, str) else fact)}
    alts |= {clean(a).replace(" ", "") for fact in row.get("must_contain") or ()
             for a in ([fact] if isinstance(fact, str) else fact)}
    alts.discard("")
    return np.array([float(u.clause in cited and any(a in clean(u.sentence).replace(" ", "") for a in alts))
                     for u in units])


def examples(featurizer: Featurizer, rows: list[dict], frames: Sequence[str] = TRAIN_FRAMES) -> list[Example]:
    out = []
    for r in rows:
        if r.get("frame") not in frames or not r.get("answerable", True):
            continue
        y = labels(featurizer.units, r)
        if y.any():
            q = normalize(r["question"])
            out.append(Example(r.get("writer") or r["id"].split("-")[0], r["frame"], q, featurizer.matrix(q), y))
    return out


def fit_scorer(ex: Sequence[Example], c: float = C) -> tuple[np.ndarray, float]:
    """Weights and bias of the pointwise logistic regression (standardised inside, returned on raw features)."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([e.x for e in ex])
    y = np.concatenate([e.y for e in ex])
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    clf.fit((x - mean) / sd, y)
    w = clf.coef_[0] / sd
    return w, float(clf.intercept_[0] - (mean * clf.coef_[0] / sd).sum())


def held_out(ex: Sequence[Example], c: float = C,
             frames: Sequence[str] = CALIBRATE_FRAMES) -> list[tuple[str, float, float, bool]]:
    """(writer, best score, margin, best is right) of every example of these frames, from a scorer trained without
    its writer."""
    out = []
    for w in sorted({e.writer for e in ex}):
        weights, bias = fit_scorer([e for e in ex if e.writer != w], c)
        for e in ex:
            if e.writer == w and e.frame in frames:
                s = e.x @ weights + bias
                order = np.argsort(-s, kind="stable")
                out.append((w, float(s[order[0]]), float(s[order[0]] - s[order[1]]), bool(e.y[order[0]])))
    return out


def fit_platt(held: Sequence[tuple[str, float, float, bool]]) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[h[1], h[2]] for h in held])
    y = np.array([int(h[3]) for h in held])
    if len(set(y)) < 2:  # all right or all wrong: a constant probability
        p = min(max(float(y.mean()), 1e-3), 1 - 1e-3)
        return np.array([0.0, 0.0, math.log(p / (1 - p))])
    clf = LogisticRegression(C=100.0, max_iter=2000).fit(x, y)
    return np.array([clf.coef_[0][0], clf.coef_[0][1], clf.intercept_[0]])


def fit(ex: Sequence[Example], unit_vectors: np.ndarray | None, key: str = "", c: float = C,
        min_probability: float = MIN_PROBABILITY) -> SentenceModel:
    """The scorer on all examples, calibrated on leave-one-writer-out predictions (deterministic)."""
    if len({e.writer for e in ex}) < 2:
        raise SentenceModelError("training the sentence model needs questions of two writers or more")
    weights, bias = fit_scorer(ex, c)
    return SentenceModel(weights=weights, bias=bias, platt=fit_platt(held_out(ex, c)),
                         min_probability=min_probability, unit_vectors=unit_vectors, key=key)


def model_key(corpus_dir: Path, embedding: str) -> str:
    """What a stored model was trained from: the bank, the notice body, the topic cues, the features, the embedding."""
    h = hashlib.sha256(f"sentences {FEATURES_VERSION} {FEATURES} {TRAIN_FRAMES} {CALIBRATE_FRAMES} {C} {MIN_PROBABILITY}".encode())
    for path in bank_files(corpus_dir) + [corpus_dir / "clauses.json", corpus_dir / "patterns.json"]:
        h.update(path.name.encode())
        h.update(path.read_bytes() if path.exists() else b"")
    h.update(embedding.encode())
    return h.hexdigest()[:16]


def embed_units(corpus: Corpus, embeddings) -> np.ndarray | None:
    if embeddings is None:
        return None
    v = np.asarray(embeddings.embed_documents([u.text for u in units_of(corpus)]), dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def train(corpus: Corpus, corpus_dir: Path, embeddings=None, out: Path | None = None) -> SentenceModel:
    """Train from the bank and store corpus/sentences-model.npz."""
    vectors = embed_units(corpus, embeddings)
    featurizer = Featurizer(corpus, vectors, embeddings.embed_query if embeddings is not None else None)
    ex = examples(featurizer, read_bank(corpus_dir))
    model = fit(ex, vectors, key=model_key(corpus_dir, type(embeddings).__name__ if embeddings else "none"))
    model.save(out or corpus_dir / MODEL_FILE)
    return model


def is_current(corpus_dir: Path, embeddings=None) -> bool:
    try:
        return SentenceModel.read(corpus_dir / MODEL_FILE).key == model_key(
            corpus_dir, type(embeddings).__name__ if embeddings else "none")
    except SentenceModelError:
        return False


def load_ranker(corpus: Corpus, corpus_dir: Path, embeddings=None) -> SentenceRanker | None:
    """The stored ranker when it was trained from the present bank and notice; else None with one stderr line
    (answers then pick their passage as before, until `assistant train`)."""
    path = corpus_dir / MODEL_FILE
    if not (corpus_dir / "bank").is_dir():
        return None
    try:
        model = SentenceModel.read(path) if path.exists() else None
        if model is not None and model.key == model_key(corpus_dir, type(embeddings).__name__ if embeddings else "none"):
            return SentenceRanker(corpus, model, embeddings.embed_query if embeddings is not None else None)
        state = "is missing" if model is None else "was trained from another question bank or notice"
    except SentenceModelError as exc:
        state = f"cannot be used ({exc})"
    print(f"{path} {state}; notice passages are picked by word overlap until `assistant train`.", file=sys.stderr)
    return None
