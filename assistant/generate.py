"""Generation stage (optional): a model behind an OpenAI-compatible endpoint reads the sources again where the
offline reading is unsure, and its checked sentences are shown.

Which path answers is data (`PATHS`, read top to bottom by `choose_path`) on the understanding stage's signals:

* a confident offline answer (its frame applied with `llm_confident_at` calibrated confidence) is not sent
  (`llm_rephrase_confident` sends it to be rephrased from the reference answer, as before);
* an unsure offline answer is read again (`second_reader`): the model answers from the retrieved sentences and
  annex rows, without the offline answer to copy;
* a declined question for which retrieval has strong evidence (a clause sentence both retrievers rank at the
  top) is sent (`evidence`); any other decline stands.

The answer records the path and why (`Answer.path`, `Answer.path_reason`). Nothing the model writes is shown
before it is checked (`assistant.answer_check`); the prompt is built in `assistant.prompting`; the endpoint is
`assistant.llm_client`. Markers are shown as [n], n = the citation's `marker`, in both modes. Nothing here raises
to the caller; the reason for a fallback is in `Answer.fallback_reason` (an enum value)."""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from langchain_core.messages import BaseMessage, convert_to_openai_messages

# FATAL_FIRST: failures of a first sentence that show the model is not reading the sources (the request is closed)
from .addition import FATAL_FIRST, addition_events, opening_events
from .answer_check import (  # noqa: F401 — re-exported: the checker's public names
    AnswerChecker, SentenceGate, Verdicts, enough_sentences, required_facts,
)
from .checks import CheckFailure, FactBook, FallbackReason, content_words, squeeze
from .config import Config
from .link import ALIASES_FILE
from .llm_client import (  # noqa: F401 — re-exported
    PLACEHOLDER_API_KEY, STREAM_TOTAL_FACTOR, GenerationFailed, ThinkFilter, Upstream, _client, bounded,
    failure_reason, log_failure, strip_think,
)
from .normalize import MAX_QUESTION_CHARS
from .parse import load_corpus
from .profile import NoticeProfile
from .prompting import (  # noqa: F401 — re-exported
    ANSWER_PROMPT, PROMPT_MARGIN_TOKENS, REWRITE_PROMPT, SYSTEM_RULES, PromptContext, Source, annex_body,
    build_context, estimate_tokens, history_messages, marked_reference, question_text, sources_of,
)
from .records import Answer, Citation, Corpus, Grounding, StreamEvent, Turn
from .textfacts import BATCH_WORD, DATE, DIGITS, ITEM_REF, MARKER

log = logging.getLogger(__name__)

STRONG_EVIDENCE_OVERLAP = 0.75  # hand-built groundings only (no rankings): share of the question's content words
AGREE_TOP = 2  # a clause sentence both retrievers rank within this many places is strong evidence
# Offline declines of a false premise or of what is not the notice's (answer.GroundedAnswerer.routes): the decline
# is the answer, whatever retrieval finds (blind11 l2-077: "2021年还有哪些证要取消？" was sent on clause 二's evidence
# and the model answered with clause 二's 今年年底前 — true of 2020, misleading for 2021).
DECLINED_FOR_CAUSE = frozenset({"no_such_clause", "no_such_item", "no_such_batch", "prompt_injection",
                                "subject_not_in_annex", "other_year", "not_about_notice"})


# ---- which path answers -------------------------------------------------------------------------------

class LLMPath(str, Enum):
    OFFLINE = "offline"  # the model is not asked: the offline answer (or decline) stands
    REPHRASE = "rephrase"  # a confident offline answer, rephrased from the reference answer (a setting)
    SECOND_READER = "second_reader"  # an unsure offline answer: the model answers from the sources
    EVIDENCE = "evidence"  # declined offline, but retrieval has strong evidence: the model answers from it

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Signals:
    """What the path is chosen on, for one grounding."""

    answered: bool
    confident: bool  # the frame decided the reading with at least llm_confident_at calibrated probability
    confidence: float | None
    frame: str | None
    long_answer: bool  # the reference answer is longer than the model may write
    strong_evidence: bool
    rephrase_confident: bool  # the setting
    declined_for_cause: bool = False  # the offline answerer declined a false premise or an off-topic question

    def describe(self) -> str:
        conf = "?" if self.confidence is None else f"{self.confidence:.2f}"
        return f"frame {self.frame or '-'} {conf}"


@dataclass(frozen=True)
class PathRule:
    name: str
    when: Callable[[Signals], bool]
    path: LLMPath
    reason: FallbackReason | None = None  # why the offline answer stands, when the model is not asked


# Read top to bottom; the first rule that holds chooses (docs/llm.md, "When the model is asked").
PATHS: tuple[PathRule, ...] = (
    PathRule("long_answer", lambda s: s.answered and s.long_answer, LLMPath.OFFLINE, FallbackReason.LONG_ANSWER),
    PathRule("confident_decline", lambda s: not s.answered and s.confident, LLMPath.OFFLINE,
             FallbackReason.OUTSIDE_NOTICE),
    PathRule("declined_for_cause", lambda s: not s.answered and s.declined_for_cause, LLMPath.OFFLINE,
             FallbackReason.OUTSIDE_NOTICE),
    PathRule("declined_strong_evidence", lambda s: not s.answered and s.strong_evidence, LLMPath.EVIDENCE),
    PathRule("declined", lambda s: not s.answered, LLMPath.OFFLINE, FallbackReason.OUTSIDE_NOTICE),
    PathRule("confident_rephrased", lambda s: s.confident and s.rephrase_confident, LLMPath.REPHRASE),
    PathRule("confident", lambda s: s.confident, LLMPath.OFFLINE, FallbackReason.CONFIDENT_OFFLINE),
    PathRule("unsure", lambda s: True, LLMPath.SECOND_READER),
)


@dataclass(frozen=True)
class PathChoice:
    path: LLMPath
    rule: str
    why: str  # the rule and the signal it read, e.g. "unsure: frame batch 0.62"
    reason: FallbackReason | None = None


def signals_of(grounding: Grounding, config: Config, facts: FactBook | None) -> Signals:
    offline = grounding.offline
    # llm_confident_at = 0: every offline reading counts as confident (the model only rephrases, if asked);
    # 1: none does. Answers from retrieval alone (the extractive route) are never confident.
    confident = config.llm_confident_at <= 0 or (
        bool(grounding.frame_applied) and grounding.confidence is not None
        and grounding.confidence >= config.llm_confident_at and grounding.route != "extractive")
    long_answer = offline.answered and \
        estimate_tokens(marked_reference(offline, facts)) > config.llm_max_answer_tokens
    return Signals(answered=offline.answered, confident=confident, confidence=grounding.confidence,
                   frame=grounding.frame, long_answer=long_answer,
                   strong_evidence=not offline.answered and strong_evidence(grounding),
                   rephrase_confident=config.llm_rephrase_confident,
                   declined_for_cause=any(part in DECLINED_FOR_CAUSE for part in grounding.route.split("+")))


def choose_path(signals: Signals, rules: Iterable[PathRule] = PATHS) -> PathChoice:
    rule = next(r for r in rules if r.when(signals))
    why = f"{rule.name}: {signals.describe()}"
    if rule.name == "declined_strong_evidence":
        why += ", clause evidence ranked first by both retrievers"
    return PathChoice(rule.path, rule.name, why, rule.reason)


def strong_evidence(grounding: Grounding) -> bool:
    """Retrieval found a notice sentence that answers the question: one both retrievers rank at the top
    (`Grounding.agreed_evidence`, set by `Assistant.ground`). A hand-built grounding without rankings falls back
    to most of the question's content words being in one retrieved clause sentence."""
    if grounding.agreed_evidence is not None:
        return bool(grounding.agreed_evidence)
    asked = content_words(squeeze(grounding.standalone_question or grounding.question))
    if len(asked) < 2:
        return False
    for e in grounding.evidence:
        if e.source != "notice" or e.clause is None:
            continue
        flat = squeeze(e.text)
        hits = sum(1 for w in asked if w in flat)
        if hits >= 2 and hits / len(asked) >= STRONG_EVIDENCE_OVERLAP:
            return True
    return False


strong_clause_evidence = strong_evidence  # the former name


def agreed_evidence(retriever, query: str, top: int = AGREE_TOP) -> list[str]:
    """Labels of clause sentences that BM25 and the vector search both rank within their first `top` places
    (rank agreement of two independent readers, no score threshold)."""
    try:
        sparse = [d for d, _ in retriever.bm25_ranking(query, top)]
        dense = [d for d, _ in retriever.dense_ranking(query, top)]
    except Exception as exc:  # noqa: BLE001 — no evidence rather than no answer
        log.info("rank agreement not computed: %s", type(exc).__name__)
        return []
    units = {u.doc_id: u for u in retriever.units}
    agreed = [d for d in sparse if d in dense and d in units and units[d].source == "notice"
              and units[d].clause is not None]
    return list(dict.fromkeys(units[d].label for d in agreed))



# ---- notices (one line each, shown when the offline answer replaces generation) ---------------------

_TAIL = "以下为依据通知原文整理的回答。"
_NOTICES = {
    FallbackReason.NOT_CONFIGURED: "未配置生成模型（地址或模型名），",
    FallbackReason.UNREACHABLE: "无法连接生成模型，",
    FallbackReason.CONNECTION_LOST: "与生成模型的连接中断，",
    FallbackReason.TIMEOUT: "生成模型响应超时，",
    FallbackReason.HTTP: "生成模型服务返回错误，",
    FallbackReason.MALFORMED: "生成模型返回的内容无法解析，",
    FallbackReason.EMPTY: "生成模型没有返回内容，",
    FallbackReason.DECLINED: "生成模型未能作答，",
    FallbackReason.NO_CITATIONS: "生成的回答没有标明出处，",
    FallbackReason.REJECTED: "生成的回答未通过与原文的逐句核对，",
    FallbackReason.INCOMPLETE: "生成的回答缺少原文中的关键事实，",
    FallbackReason.OUTSIDE_NOTICE: "问题不在通知范围内，未调用生成模型，",
    FallbackReason.LONG_ANSWER: "回答是较长的列表，未调用生成模型，",
    FallbackReason.CONFIDENT_OFFLINE: "",
    FallbackReason.ERROR: "生成模型出错，",
}


# What the user waits for, shown at once when the model is asked to write the answer itself.
_READING = {
    LLMPath.EVIDENCE: "通知中有与问题相关的条款，正在请生成模型依据原文作答，回答会逐句与原文核对……",
    LLMPath.REPHRASE: "正在请生成模型依据原文组织回答，回答会逐句与原文核对……",
}


def notice_for(reason: FallbackReason | str) -> str:
    try:
        reason = FallbackReason(str(reason).split(":", 1)[0].strip())
    except ValueError:
        reason = FallbackReason.ERROR
    return _NOTICES.get(reason, _NOTICES[FallbackReason.ERROR]) + _TAIL

# ---- the answerer ------------------------------------------------------------------------------------

class LLMAnswerer:
    """`run()` / `stream()` answer from a Grounding, asking the configured endpoint where `choose_path` says so;
    `rewrite()` turns a follow-up into a standalone question that carries no fact the user did not say. All
    fall back instead of raising."""

    def __init__(self, config: Config, corpus: Corpus | None = None, profile: NoticeProfile | None = None) -> None:
        self.config = config
        self.timeout = float(config.llm_timeout)
        corpus = corpus or load_corpus(config.corpus_dir)
        # Batch words and deadlines are the profile's (clause 二): the checker recognises and compares those.
        self.profile = profile or NoticeProfile.load(corpus, config.corpus_dir)
        # The whole annex, so a generated text is checked for every occupation it names, not only the asked one.
        self._facts = FactBook.of(corpus, config.corpus_dir / ALIASES_FILE, self.profile)
        self._clauses = {c.label: c.text for c in corpus.clauses}

    def __repr__(self) -> str:  # never shows the key
        return f"LLMAnswerer(base_url={self.config.llm_base_url!r}, model={self.config.llm_model!r})"

    # -- plumbing ----------------------------------------------------------------------------------

    def configured(self) -> bool:
        return bool(self.config.llm_base_url and self.config.llm_model)

    def upstream(self, messages: list[BaseMessage], max_tokens: int) -> Upstream:
        if not self.configured():
            raise GenerationFailed(FallbackReason.NOT_CONFIGURED)
        key = self.config.llm_api_key.get_secret_value() if self.config.llm_api_key else ""
        client = _client(self.config.llm_base_url, key or PLACEHOLDER_API_KEY, self.timeout)
        return Upstream(client, self.config.llm_model, convert_to_openai_messages(messages),
                        float(self.config.llm_temperature), max_tokens)

    def choose(self, grounding: Grounding) -> PathChoice:
        return choose_path(signals_of(grounding, self.config, self._facts))

    def checker(self, grounding: Grounding, path: LLMPath = LLMPath.REPHRASE) -> AnswerChecker:
        checker = AnswerChecker(self._facts, grounding, self._clauses, reference=path is LLMPath.REPHRASE)
        checker.strong = path is LLMPath.EVIDENCE
        return checker

    def messages(self, grounding: Grounding, turns: Iterable[Turn], path: LLMPath = LLMPath.REPHRASE
                 ) -> list[BaseMessage]:
        """The prompt, within the configured context window less the answer's tokens."""
        question = question_text(grounding)
        budget = (self.config.llm_context_tokens - self.config.llm_max_answer_tokens - PROMPT_MARGIN_TOKENS
                  - estimate_tokens(SYSTEM_RULES) - estimate_tokens(question))
        history = history_messages(turns, budget_tokens=max(0, budget // 4))
        budget -= sum(estimate_tokens(m.content) + 4 for m in history)
        context = build_context(grounding, self._facts, budget_tokens=max(0, budget),
                                reference=path is LLMPath.REPHRASE)
        return ANSWER_PROMPT.format_messages(context=context.sources, reference=context.reference, history=history,
                                             question=question)

    # -- public --------------------------------------------------------------------------------------

    def run(self, grounding: Grounding, turns: Iterable[Turn] = ()) -> Answer:
        """The generated, verified Answer; the offline answer (with fallback_reason) when that fails."""
        final = None
        for event in self.stream(grounding, turns):
            if event.kind == "answer":
                final = event.answer
        return final if final is not None else fallback(grounding, FallbackReason.ERROR)

    def stream(self, grounding: Grounding, turns: Iterable[Turn] = (),
               prepare: Callable[[Grounding], Grounding] | None = None) -> Iterator[StreamEvent]:
        """The events of one answer (docs/llm.md, "Streaming"). Something true comes first, before the model is
        asked: the offline answer (an unsure one, read again by the model: `assistant.addition`), or a status line
        saying what the user waits for (a decline sent on strong evidence, a rephrasing), or, when the model is
        not asked, the notice and the offline answer. `prepare` (the follow-up rewrite) runs after those events."""
        choice = self.choose(grounding)
        if choice.path is LLMPath.OFFLINE:
            yield from self._fallback_events(grounding, choice.reason or FallbackReason.OUTSIDE_NOTICE, choice)
            return
        yield from self.opening(grounding, choice)
        if prepare is not None:
            grounding = prepare(grounding)

        def generated() -> Iterator[str]:
            upstream = self.upstream(self.messages(grounding, turns, choice.path), self.config.llm_max_answer_tokens)
            yield from bounded(upstream, gap=self.timeout, total=self.total_timeout)

        yield from self.checked(grounding, generated(), choice, opened=True)

    @property
    def total_timeout(self) -> float:
        return float(self.config.llm_total_timeout or self.timeout * STREAM_TOTAL_FACTOR)

    def opening(self, grounding: Grounding, choice: PathChoice) -> Iterator[StreamEvent]:
        """The events shown before the model is asked (at once: nothing is waited for)."""
        if choice.path is LLMPath.SECOND_READER:
            offline = fallback(grounding, FallbackReason.NOTHING_ADDED, choice).model_copy(
                update={"fallback_reason": None, "path_reason": f"{choice.why}; the model is reading"})
            yield from opening_events(offline, sentences_of(offline.answer))
        else:
            yield StreamEvent(kind="status", state="reading", text=_READING[choice.path])

    def checked(self, grounding: Grounding, pieces: Iterator[str], choice: PathChoice | None = None,
                opened: bool = False) -> Iterator[StreamEvent]:
        """The events for a model's output arriving as `pieces` (from the endpoint, or a recorded output replayed
        by benchmarks/llm_eval.py --replay); `opened`: the opening events were already sent."""
        choice = choice or self.choose(grounding)
        offline = grounding.offline
        if choice.path is LLMPath.OFFLINE:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
            yield from self._fallback_events(grounding, choice.reason or FallbackReason.OUTSIDE_NOTICE, choice)
            return
        if not opened:
            yield from self.opening(grounding, choice)
        if choice.path is LLMPath.SECOND_READER:
            log.info("asking the model to read again (%s)", choice.why)
            yield from addition_events(self.checker(grounding, choice.path), grounding, pieces,
                                       Numbering.seeded(offline.citations), choice.why, choice.path.value)
            return
        log.info("asking the model (%s)", choice.why)
        checker = self.checker(grounding, choice.path)
        verdicts = Verdicts()
        think = ThinkFilter()
        gate = SentenceGate()
        numbering = Numbering()
        failure: FallbackReason | None = None
        raw_parts: list[str] = []
        shown: list[str] = []

        def admit(raw: str) -> Iterator[StreamEvent]:
            nonlocal failure
            before = len(verdicts.problems)
            for event in checker.admit(raw, verdicts):
                text = numbering.apply(event.text, verdicts.citations)
                shown.append(text)
                yield StreamEvent(kind="token", text=text, part="answer")
            if not shown and len(verdicts.problems) > before and verdicts.problems[-1].failure in FATAL_FIRST:
                failure = FallbackReason.REJECTED  # the model is not reading the sources: no use waiting

        try:
            enough = enough_sentences(offline)
            for piece in pieces:
                if not raw_parts:
                    log.debug("first generated piece")  # benchmarks/llm_eval.py times the gate from here
                raw_parts.append(piece)
                for raw in gate.feed(think.feed(piece)):
                    if verdicts.sentences < enough and failure is None:
                        yield from admit(raw)
                if verdicts.sentences >= enough or failure is not None:
                    # As long as the reference answer (and one more): a small model that goes on tends to
                    # recite its prompt. Stopping here also closes the request, so the server stops too.
                    break
            else:
                for raw in gate.feed(think.flush()) + gate.flush():
                    if failure is None:
                        yield from admit(raw)
        except Exception as exc:  # noqa: BLE001 — every failure becomes the offline answer
            failure = failure_reason(exc)
            log_failure(failure, exc)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:  # the caller left early: closes the upstream request too
                close()
        log.debug("raw generated text: %s", "".join(raw_parts))
        if shown:
            # What was shown stands, even when the stream broke off later: the user never sees it replaced.
            if failure is not None:
                log.info("generation stopped early (%s); keeping the %d checked sentences shown",
                         failure.value, len(shown))
            answered = not verdicts.declines or verdicts.answers > 0
            answered = answered and (offline.answered or verdicts.answers > 0)
            answer = Answer(id=offline.id, question=grounding.question, answer="".join(shown), answered=answered,
                            citations=numbering.citations(verdicts.citations.values()), mode="llm",
                            follow_ups=offline.follow_ups if offline.answered else [],
                            path=choice.path.value, path_reason=choice.why)
            yield StreamEvent(kind="answer", answer=answer)
            return
        reason = failure or verdicts.reason()
        if verdicts.problems:
            log.info("generated answer not used (%s): %s", reason.value, "; ".join(map(str, verdicts.problems[:3])))
        yield from self._fallback_events(grounding, reason, choice)

    def _fallback_events(self, grounding: Grounding, reason: FallbackReason, choice: PathChoice | None = None
                         ) -> Iterator[StreamEvent]:
        """The notice first (at once: nothing is waited for), then the offline answer a whole sentence a token."""
        final = fallback(grounding, reason, choice)
        yield StreamEvent(kind="notice", text=notice_for(reason))
        for sentence in sentences_of(final.answer):  # a client that only shows tokens still gets the whole answer
            yield StreamEvent(kind="token", text=sentence, part="offline")
        yield StreamEvent(kind="answer", answer=final)

    def rewrite(self, question: str, history: Iterable[Turn | dict] | None = None) -> str:
        """A follow-up as a standalone question, written by the model; the question unchanged when there is no
        history, no endpoint, anything goes wrong, or the rewrite states a fact the user did not say."""
        turns = [t if isinstance(t, Turn) else Turn.model_validate(t) for t in (history or [])]
        if not turns or not question.strip() or not self.configured():
            return question
        try:
            messages = REWRITE_PROMPT.format_messages(history=history_messages(turns, 1500), question=question)
            upstream = self.upstream(messages, max_tokens=128)
            raw = "".join(bounded(upstream, gap=self.timeout, total=min(self.timeout * 2, self.total_timeout)))
        except Exception as exc:  # noqa: BLE001
            log_failure(failure_reason(exc), exc, what="rewriting a follow-up", instead="the question as asked")
            return question
        kept, why = guard_rewrite(clean_rewrite(question, raw), question, turns, self._facts)
        if kept is None:
            if why != "unchanged":
                log.info("rewrite dropped (%s)", why)
            return question
        return kept


def fallback(grounding: Grounding, reason: FallbackReason, choice: PathChoice | None = None) -> Answer:
    """The offline answer, marked with why generation did not give the answer."""
    update = {"mode": "offline", "fallback_reason": FallbackReason(reason).value}
    if choice is not None:
        update.update(path=LLMPath.OFFLINE.value if choice.path is LLMPath.OFFLINE else choice.path.value,
                      path_reason=choice.why)
    return grounding.offline.model_copy(update=update)


_WHOLE_SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?]+(?:\[\d+\])*[」”]?\n?|\n)|[^。！？!?\n]+$")


def sentences_of(text: str) -> list[str]:
    """A text cut after each full stop or line break, nothing lost: what a stream shows, one sentence a token."""
    return [m.group(0) for m in _WHOLE_SENTENCE.finditer(text) if m.group(0)]


class Numbering:
    """[label] markers of checked sentences as [n], n given in order of first use (the offline answer's scheme)."""

    def __init__(self) -> None:
        self.numbers: "OrderedDict[str, int]" = OrderedDict()

    @classmethod
    def seeded(cls, citations: Iterable[Citation]) -> "Numbering":
        """Numbering that goes on from an answer's own markers (the second reader's addition to the offline one)."""
        numbering = cls()
        for c in sorted((c for c in citations if c.marker is not None), key=lambda c: c.marker):
            numbering.numbers.setdefault(c.label, c.marker)
        return numbering

    def _next(self) -> int:
        return max(self.numbers.values(), default=0) + 1

    def apply(self, text: str, labels: Iterable[str]) -> str:
        known = set(labels)

        def number(m: re.Match) -> str:
            label = m.group(1)
            if label not in known:
                return m.group(0)
            n = self.numbers[label] if label in self.numbers else self.numbers.setdefault(label, self._next())
            return f"[{n}]"

        return re.sub(r"\[([^\[\]]+)\]", number, text)

    def citations(self, cited: Iterable[Citation]) -> list[Citation]:
        cited = list(cited)
        for c in cited:
            if c.label not in self.numbers:
                self.numbers[c.label] = self._next()
        return sorted((c.model_copy(update={"marker": self.numbers[c.label]}) for c in cited), key=lambda c: c.marker)


def numbered(text: str, citations: list[Citation]) -> tuple[str, list[Citation]]:
    """A checked text with its [label] markers as [n] and its citations numbered the same, in order of first use."""
    numbering = Numbering()
    text = numbering.apply(text, [c.label for c in citations])
    return text, numbering.citations(citations)


# ---- a follow-up rewritten: references resolved, no fact added -------------------------------------------

_REWRITE_PREFIX = re.compile(r"^(改写后的(独立)?问题|独立问题|问题|改写|答)[:：]\s*")


def clean_rewrite(question: str, raw: str) -> str:
    """The first line of a rewrite, without labels or quotes; the question itself when it looks wrong."""
    text = strip_think(raw or "").strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _REWRITE_PREFIX.sub("", line)
    line = line.strip("「」“”\"'` ")
    too_long = len(line) > min(max(3 * len(question), len(question) + 80), MAX_QUESTION_CHARS)
    if not line or too_long or MARKER.search(line):
        return question
    return line


def rewrite_facts(text: str, facts: FactBook | None) -> dict[str, set[str]]:
    """The facts a question states: batch words, dates, items, departments, numbers, occupations."""
    flat = squeeze(text)
    out = {
        "batch": {m.group(0) for m in BATCH_WORD.finditer(flat)},
        "date": {f"{int(m.group(2))}月{int(m.group(3))}日" for m in DATE.finditer(flat)},
        "item": {m.group(1) for m in ITEM_REF.finditer(flat)},
        # numbers other than those of batch words, dates and items (compared as such)
        "number": {str(int(d)) for d in DIGITS.findall(ITEM_REF.sub(" ", BATCH_WORD.sub(" ", DATE.sub(" ", flat))))},
        "department": set(), "occupation": set(),
    }
    if facts is not None:
        out["department"] = facts.departments_in(flat)
        out["occupation"] = {n for _, _, n in facts.names_in(flat) if n}
    return out


def guard_rewrite(rewritten: str, question: str, turns: Iterable[Turn], facts: FactBook | None) -> tuple[str | None, str]:
    """(the rewrite, "") when it only resolves references, else (None, why it was dropped).

    A batch, date, item, department or number in the rewrite must be in the user's own turns (the question
    included); an occupation must be named somewhere in the conversation. The model may place a job in the wrong
    item or batch: such a rewrite is dropped, never used for retrieval, the prompt or the answer."""
    turns = list(turns)
    if not rewritten or rewritten == question:
        return None, "unchanged"
    said_by_user = rewrite_facts("\n".join([t.content for t in turns if t.role == "user"] + [question]), facts)
    in_conversation = rewrite_facts("\n".join([t.content for t in turns] + [question]), facts)
    found = rewrite_facts(rewritten, facts)
    for kind in ("batch", "date", "item", "department", "number"):
        extra = found[kind] - said_by_user[kind]
        if kind == "batch":  # 第一批 said as 第1批 is the same batch
            extra = {b for b in extra if _batch_value(b) not in {_batch_value(x) for x in said_by_user[kind]}}
        if extra:
            return None, f"{kind} not said by the user: {'、'.join(sorted(extra))}"
    extra = found["occupation"] - in_conversation["occupation"]
    if extra:
        return None, f"occupation not in the conversation: {'、'.join(sorted(extra))}"
    return rewritten, ""


def _batch_value(word: str) -> str:
    from .checks import batches_in

    return next(iter(batches_in(word)), word)


