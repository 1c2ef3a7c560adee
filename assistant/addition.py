"""The second reader, offline first (issue 19): an unsure offline answer is streamed at once, whole sentences, as
the answer checked against the notice; the model then reads the sources, and only its sentences that pass every
check **and** state a cited fact the offline answer lacks are shown, after it, as an addition. A copy or a
paraphrase of the offline answer adds nothing and is not shown.

Events, in order (docs/llm.md, "Streaming"):

    token (part "offline") × the offline answer's sentences   — the first event, before the model is asked
    offline {the offline Answer}                               — the whole checked answer, with its citations
    status (state "reading")                                   — what the user is waiting for
    token (part "addition") × the sentences that add something — the first one after a line break
    status (state "done")                                      — what the model added, or that it added nothing
    answer {the final Answer}                                  — the tokens joined; citations[].marker = the [n]

The events before the model is asked are `opening_events`; the rest is `addition_events`."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .answer_check import AnswerChecker, SentenceGate
from .checks import CheckFailure, FallbackReason, Problem, content_words, is_decline, squeeze
from .llm_client import ThinkFilter, failure_reason, log_failure
from .records import Answer, Citation, Grounding, StreamEvent
from .textfacts import MARKER

log = logging.getLogger("assistant.generate")

# A sentence without a new typed fact (batch, date, department, occupation, count) adds something only when at
# least this share of its content words is not in the offline answer, and it rests on a clause the offline answer
# does not cite: a paraphrase of the offline answer (or of the clause it quotes) is not an addition.
NEW_WORDS_SHARE = 0.5
MAX_ADDITIONS = 3  # checked sentences that add something; then the request is closed
# The first factual sentence failing one of these shows the model is not reading the sources: stop there.
FATAL_FIRST = frozenset({
    CheckFailure.UNSUPPORTED_DATE, CheckFailure.UNSUPPORTED_BATCH, CheckFailure.UNSUPPORTED_ITEM,
    CheckFailure.UNSUPPORTED_DEPARTMENT, CheckFailure.CONTRADICTS_ANNEX, CheckFailure.NOT_CHINESE,
})
_POLAR = re.compile(r"(是的?|对的?|没错|会的?|不是的?|不对|不会|否|并非如此|不属于|属于)")

READING = "以上是依据通知原文核对的回答。正在请生成模型复核原文，如有原文中的补充，将列在下方。"
ADDED = "以上补充由生成模型依据原文写出，已逐句与通知原文核对。"
NOTHING = {
    FallbackReason.NOTHING_ADDED: "生成模型复核后没有原文中的补充，以上回答即为依据通知原文的回答。",
    FallbackReason.TIMEOUT: "生成模型未能及时复核，以上回答即为依据通知原文的回答。",
}
NOTHING_OTHERWISE = "生成模型没有可核对的补充，以上回答即为依据通知原文的回答。"


def opening_events(offline: Answer, sentences: list[str]) -> Iterator[StreamEvent]:
    """What is shown before the model is asked: the offline answer, a whole sentence a token, then whole (with its
    citations), then what the user is waiting for."""
    for sentence in sentences:
        yield StreamEvent(kind="token", text=sentence, part="offline")
    yield StreamEvent(kind="offline", answer=offline)
    yield StreamEvent(kind="status", state="reading", text=READING)


@dataclass
class AdditionGate:
    """Admits a generated sentence when it passes every check (`AnswerChecker.judge`) and adds a cited fact."""

    checker: AnswerChecker
    offline: Answer
    shown: list[str] = field(default_factory=list)
    citations: dict[str, Citation] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    copies: int = 0  # checked sentences that said nothing the offline answer lacks
    factual: int = 0  # sentences with a fact judged so far (shown, copies and dropped)
    stop: FallbackReason | None = None  # set when there is no use reading on

    def __post_init__(self) -> None:
        self._offline_facts = self.checker.facts_of(self.offline.answer)
        self._offline_plain = squeeze(MARKER.sub("", self.offline.answer))
        self._offline_labels = {c.label for c in self.offline.citations}

    @property
    def done(self) -> bool:
        return self.stop is not None or len(self.shown) >= MAX_ADDITIONS

    def admit(self, raw: str) -> tuple[str, list] | None:
        """(the sentence as shown with [label] markers, its citations) when it may be shown as an addition."""
        bare = squeeze(MARKER.sub("", raw)).rstrip("。！!，,")
        if not bare or _POLAR.fullmatch(bare):
            return None  # a bare 是/不是: the offline answer has already answered it
        sentence, citations, problem = self.checker.judge(raw)
        if not sentence.plain:
            return None
        if problem is not None:
            self.problems.append(problem)
            log.info("dropped a generated sentence: %s", problem)
            if self.factual == 0 and problem.failure in FATAL_FIRST:
                self.stop = FallbackReason.REJECTED  # not reading the sources: no use waiting for more
            self.factual += 1
            return None
        if not sentence.labels or is_decline(sentence.plain):
            return None  # cites nothing, or declines: nothing to add to an answer
        self.factual += 1
        why = self.adds(sentence.plain, sentence.labels)
        if not why:
            self.copies += 1
            log.info("not shown: says nothing the offline answer lacks: %s", sentence.text[:60])
            if self.copies > MAX_ADDITIONS:
                self.stop = FallbackReason.NOTHING_ADDED  # copying the offline answer: no use reading on
            return None
        log.info("addition (%s): %s", why, sentence.text[:60])
        for c in citations:
            self.citations.setdefault(c.label, c)
        self.shown.append(sentence.text)
        return sentence.text, citations

    def adds(self, plain: str, labels: tuple[str, ...]) -> str:
        """What the sentence states that the offline answer does not ("" for nothing): a batch, date, department,
        occupation or count it lacks, or a rule from a clause it does not cite, in words it does not use."""
        new = sorted(f"{kind} {value}" for kind, value in self.checker.facts_of(plain) - self._offline_facts)
        if new:
            return ", ".join(new)
        words = content_words(plain)
        if not words:
            return ""
        unsaid = sum(1 for w in words if w not in self._offline_plain) / len(words)
        fresh = [lab for lab in labels if lab not in self._offline_labels and self.checker.rests_on(plain, lab)]
        if unsaid >= NEW_WORDS_SHARE and fresh:
            return f"rule of {'、'.join(fresh)} ({unsaid:.0%} new words)"
        return ""

    def reason(self, failure: FallbackReason | None) -> FallbackReason:
        """Why nothing was added."""
        if failure is not None:
            return failure
        if self.stop is not None:
            return self.stop
        if self.copies:
            return FallbackReason.NOTHING_ADDED
        if self.problems:
            return FallbackReason.REJECTED
        return FallbackReason.EMPTY


def addition_events(checker: AnswerChecker, grounding: Grounding, pieces: Iterator[str], numbering, why: str,
                    path: str) -> Iterator[StreamEvent]:
    """The model's output, `pieces`, read after the opening events: the sentences that add something as `token`
    events (part "addition"), then a `status` line and the final `answer`. `numbering` turns [label] into [n],
    seeded with the offline answer's markers."""
    offline = grounding.offline
    gate = AdditionGate(checker, offline)
    think, sentences = ThinkFilter(), SentenceGate()
    failure: FallbackReason | None = None
    shown: list[str] = []

    def admit(raw: str) -> Iterator[StreamEvent]:
        if gate.done:
            return
        admitted = gate.admit(raw)
        if admitted is None:
            return
        text = numbering.apply(admitted[0], [c.label for c in admitted[1]]).strip()
        shown.append(text)
        yield StreamEvent(kind="token", text=("\n" if len(shown) == 1 else "") + text, part="addition")

    raw_parts: list[str] = []
    try:
        for piece in pieces:
            if not raw_parts:
                log.debug("first generated piece")
            raw_parts.append(piece)
            for raw in sentences.feed(think.feed(piece)):
                yield from admit(raw)
            if gate.done:
                break  # closes the request below: the server stops generating
        else:
            for raw in sentences.feed(think.flush()) + sentences.flush():
                yield from admit(raw)
    except Exception as exc:  # noqa: BLE001 — the offline answer is already shown; it stands
        failure = failure_reason(exc)
        log_failure(failure, exc, instead="the offline answer shown")
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    log.debug("raw generated text: %s", "".join(raw_parts))
    if shown:
        addition = "".join(shown)
        cited = list(offline.citations) + numbering.citations(
            [c for lab, c in gate.citations.items() if lab not in {o.label for o in offline.citations}])
        final = offline.model_copy(update={
            "answer": offline.answer + "\n" + addition, "citations": sorted(cited, key=lambda c: c.marker or 0),
            "mode": "llm", "fallback_reason": None, "addition": addition, "path": path,
            "path_reason": f"{why}; the model added {len(shown)} checked sentence{'s' if len(shown) > 1 else ''}"})
        yield StreamEvent(kind="status", state="done", text=ADDED)
        yield StreamEvent(kind="answer", answer=final)
        return
    reason = gate.reason(failure)
    if gate.problems:
        log.info("nothing added (%s): %s", reason.value, "; ".join(map(str, gate.problems[:3])))
    final = offline.model_copy(update={
        "mode": "offline", "fallback_reason": reason.value, "path": path,
        "path_reason": f"{why}; the model added nothing ({reason.value}), the offline answer stands"})
    yield StreamEvent(kind="status", state="done", text=NOTHING.get(reason, NOTHING_OTHERWISE))
    yield StreamEvent(kind="answer", answer=final)
