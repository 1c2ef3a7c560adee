"""The evaluation harness: the project's question set through the same path users hit, plus two baselines.

Metrics (each case states what a correct answer must contain, cite, or that it must be declined):
- answer accuracy: answerable cases answered with every required fact and no forbidden string;
  declined cases declined (answered=false) without a forbidden string;
- citation accuracy: answerable cases whose citations include every required label;
- refusal precision / recall: "declined" is the positive class;
- evidence recall@k: share of required labels among the top-k retrieved evidence labels, for our pipeline
  (entity-linked hybrid), for hybrid retrieval alone, and for the baselines (plain LangChain chunks + Chroma
  top-k; BM25 alone over the same chunks)."""
from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from .config import REPO_ROOT, Config
from .frames import jsonl_lines
from .records import Turn

DEFAULT_SET = REPO_ROOT / "tests" / "eval" / "questions.jsonl"
K = 3


class EvalCase(BaseModel):
    id: str
    category: str
    question: str
    history: list[Turn] = Field(default_factory=list)
    answerable: bool
    must_contain: list[str | list[str]] = Field(default_factory=list)
    must_not_contain: list[str] = Field(default_factory=list)
    citations: list[str] = Field(default_factory=list)


def load_cases(path: Path) -> list[EvalCase]:
    cases = []
    for n, line in jsonl_lines(path):
        try:
            cases.append(EvalCase.model_validate_json(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: {exc}") from exc
    return cases


@dataclass
class CaseResult:
    case: EvalCase
    answered: bool
    answer: str
    labels: list[str]
    answer_ok: bool
    citation_ok: bool | None  # None for cases that must be declined
    missing: list[str]
    recall: dict[str, float | None] = field(default_factory=dict)  # pipeline name → recall@k
    seconds: float = 0.0
    mode: str = "offline"
    fallback_reason: str | None = None
    route: str = ""


def check_answer(case: EvalCase, answered: bool, text: str, labels: list[str]) -> tuple[bool, bool | None, list[str]]:
    missing = []
    for fact in case.must_contain:
        options = [fact] if isinstance(fact, str) else fact
        if not any(o in text for o in options):
            missing.append("|".join(options))
    forbidden = [s for s in case.must_not_contain if s in text]
    missing += [f"!{s}" for s in forbidden]
    if case.answerable:
        ok = answered and not missing
        cited = all(label in labels for label in case.citations)
        if not cited:
            missing += [f"cite:{l}" for l in case.citations if l not in labels]
        return ok, cited, missing
    return (not answered) and not forbidden, None, missing


def recall(required: list[str], retrieved: list[str]) -> float | None:
    if not required:
        return None
    return sum(1 for label in required if label in retrieved) / len(required)


# ---- the baselines: the plain LangChain pipeline over the raw text -------------------------------


class ChunkBaselines:
    """RecursiveCharacterTextSplitter 500/50 over the raw source; Chroma top-k, and BM25 top-k, over the chunks.

    A chunk carries the labels of every clause, annex item or header fact whose text it contains."""

    def __init__(self, config: Config, embeddings) -> None:
        import chromadb
        from langchain_chroma import Chroma
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        from rank_bm25 import BM25Okapi

        from .parse import load_corpus
        from .retrieve import tokenize

        raw = config.source_path.read_text(encoding="utf-8")
        corpus = load_corpus(config.corpus_dir)
        splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50, add_start_index=True)
        self.chunks = splitter.create_documents([raw])
        line_items = _item_of_each_offset(raw)
        header_marks = [corpus.header.doc_number, "联系单位", "此件主动公开", "印发", "关于做好水平评价类"]
        self.labels: list[list[str]] = []
        for chunk in self.chunks:
            text, start = chunk.page_content, chunk.metadata["start_index"]
            labels = []
            if any(mark in text for mark in header_marks):
                labels.append("文头")
            for clause in corpus.clauses:
                if any(s[:12] in text for s in clause.sentences()):
                    labels.append(clause.label)
            for item in sorted({line_items[i] for i in range(start, start + len(text)) if line_items[i]}):
                labels.append(f"附件第{item}项")
            self.labels.append(labels)
        client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
        self.store = Chroma(collection_name="baseline-chunks", embedding_function=embeddings, client=client,
                            collection_metadata={"hnsw:space": "cosine"})
        self.store.reset_collection()
        ids = [f"chunk-{i}" for i in range(len(self.chunks))]
        for i, chunk in enumerate(self.chunks):
            chunk.metadata["chunk"] = i
        self.store.add_documents(self.chunks, ids=ids)
        self._tokenize = tokenize
        self.bm25 = BM25Okapi([tokenize(c.page_content) for c in self.chunks])

    def dense_labels(self, question: str, k: int = K) -> list[str]:
        hits = self.store.similarity_search(question, k=k)
        return [label for doc in hits for label in self.labels[doc.metadata["chunk"]]]

    def bm25_labels(self, question: str, k: int = K) -> list[str]:
        scores = self.bm25.get_scores(self._tokenize(question))
        best = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
        return [label for i in best for label in self.labels[i]]


def _item_of_each_offset(raw: str) -> list[int]:
    """For every character of the raw text, the annex item of its table row (0 outside the table)."""
    out: list[int] = []
    item = 0
    in_annex = False
    for line in raw.splitlines(keepends=True):
        if line.strip() == "附件":
            in_annex = True
        cells = line.split("\t")
        if in_annex and len(cells) >= 4 and cells[0].strip().isdigit():
            item = int(cells[0])
        current = item if in_annex and "\t" in line and not line.startswith("序号") else 0
        out += [current] * len(line)
    return out


# ---- running ------------------------------------------------------------------------------------


def run_eval(assistant, cases: list[EvalCase], baselines: ChunkBaselines | None, use_llm: bool = False) -> list[CaseResult]:
    results = []
    for case in cases:
        start = time.perf_counter()
        grounding = assistant.ground(case.question, case.history, id=case.id, use_llm=use_llm)
        answer = assistant.llm.run(grounding, case.history) if use_llm else grounding.offline
        seconds = time.perf_counter() - start
        labels = [c.label for c in answer.citations]
        ok, cited, missing = check_answer(case, answer.answered, answer.answer, labels)
        result = CaseResult(case=case, answered=answer.answered, answer=answer.answer, labels=labels, answer_ok=ok,
                            citation_ok=cited, missing=missing, seconds=seconds, mode=answer.mode,
                            fallback_reason=answer.fallback_reason, route=grounding.route)
        if case.answerable and case.citations:
            top = [e.label for e in grounding.evidence[:K]]
            hybrid = [e.label for e in assistant.retriever.run(grounding.standalone_question, k=K)]
            result.recall["linked+hybrid"] = recall(case.citations, top)
            result.recall["hybrid only"] = recall(case.citations, hybrid)
            if baselines:
                query = grounding.standalone_question
                result.recall["baseline: chunks+Chroma"] = recall(case.citations, baselines.dense_labels(query))
                result.recall["baseline: BM25 chunks"] = recall(case.citations, baselines.bm25_labels(query))
        results.append(result)
    return results


def _pct(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.1f}%" if values else "–"


def _mean(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.1f}%" if values else "–"


def summary_table(results: list[CaseResult]) -> str:
    pipelines = sorted({p for r in results for p in r.recall}, key=lambda p: (p.startswith("baseline"), p))
    lines = []
    by_cat: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        by_cat[r.case.category].append(r)
    header = ["category", "n", "answer acc", "citation acc"] + [f"recall@{K} {p}" for p in pipelines]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for cat, rs in sorted(by_cat.items()) + [("ALL", results)]:
        cells = [f"**{cat}**" if cat == "ALL" else cat, str(len(rs)), _pct([r.answer_ok for r in rs]),
                 _pct([r.citation_ok for r in rs if r.citation_ok is not None])]
        for p in pipelines:
            cells.append(_mean([r.recall[p] for r in rs if r.recall.get(p) is not None]))
        lines.append("| " + " | ".join(cells) + " |")
    declined_pred = [r for r in results if not r.answered]
    must_decline = [r for r in results if not r.case.answerable]
    tp = sum(1 for r in declined_pred if not r.case.answerable)
    precision = tp / len(declined_pred) if declined_pred else 0.0
    rec = tp / len(must_decline) if must_decline else 0.0
    times = sorted(r.seconds * 1000 for r in results)
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    lines.append("")
    lines.append(f"- refusal precision: {100 * precision:.1f}% ({tp}/{len(declined_pred)} declined answers should have been declined)")
    lines.append(f"- refusal recall: {100 * rec:.1f}% ({tp}/{len(must_decline)} questions to decline were declined)")
    lines.append(f"- latency per question (warm): p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(times)} questions")
    extractive = [r for r in results if r.route == "extractive"]
    if extractive:
        wrong = sum(1 for r in extractive if not r.answer_ok)
        lines.append(f"- default route (quote the clause both retrievers agree on, else decline): {len(extractive)} "
                     f"questions, {sum(not r.answered for r in extractive)} declined there, {wrong} wrong")
    return "\n".join(lines)


def failures(results: list[CaseResult]) -> str:
    out = []
    for r in results:
        if not r.answer_ok or r.citation_ok is False:
            out.append(f"- {r.case.id} [{r.case.category}] {r.case.question}\n  answered={r.answered} missing={r.missing}\n  "
                       f"→ {r.answer[:200]}")
    return "\n".join(out) or "(none)"


def main(config: Config, args) -> int:
    from .assistant import Assistant

    path = args.eval_set or DEFAULT_SET
    cases = load_cases(path)
    assistant = Assistant.load(config)
    baselines = None if args.no_baselines else ChunkBaselines(config, assistant.retriever.index.embeddings)
    for case in cases[:5]:  # warm the caches the way a running server is warm
        assistant.ground(case.question, case.history)
    runs = [("offline", run_eval(assistant, cases, baselines, use_llm=False))]
    if config.llm_enabled:  # both modes on the same set in the same run, so the difference is visible
        runs.append(("llm", run_eval(assistant, cases, None, use_llm=True)))
    report = []
    for mode, results in runs:
        title = (f"Evaluation of {len(cases)} questions from {path.name}, mode {mode}, "
                 f"embeddings {config.embedding_model}, {time.strftime('%Y-%m-%d %H:%M')}")
        report += [title, "", summary_table(results)]
        if mode == "llm":
            used = sum(r.mode == "llm" for r in results)
            reasons: dict[str, int] = defaultdict(int)
            for r in results:
                if r.fallback_reason:
                    reasons[r.fallback_reason.split(":")[0]] += 1
            report.append(f"- generated answers kept: {used}/{len(results)}; offline fallbacks by reason: "
                          + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"))
        if args.failures:
            report += ["", "Failures:", failures(results)]
        report.append("")
    text = "\n".join(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0
