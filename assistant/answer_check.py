"""The answer checker: a model's stream cut into sentences (`SentenceGate`), each sentence's markers read in the
sources' spelling, what those sources support, the sentence checks of `assistant.checks`, the annex-wide
contradiction check, and the completeness gate (`AnswerChecker.admit`)."""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from .checks import (
    CheckFailure, FactBook, FallbackReason, Problem, Sentence, SentenceContext, Support, check_sentence,
    batches_in, content_words, counts_in, dates_in, rule_overlap, is_decline, squeeze, states_a_fact,
)
from .llm_client import strip_think
from .prompting import marked_reference, sources_of
from .records import CLAUSE_LABELS, Answer, Citation, Grounding, StreamEvent
from .textfacts import (
    MARKER as _MARKER, MARKER_SPLIT as _MARKER_SPLIT, PAREN_MARKER as _PAREN_MARKER,
    TRAILING_MARKERS as _TRAILING_MARKERS, negated_before, normalise_deadlines as _normalise_deadlines, numeral_value,
)

log = logging.getLogger("assistant.generate")

# Words that say nothing of a clause in particular (every department sentence has them).
_GENERIC_WORDS = frozenset({"实施", "部门", "实施部门", "组织", "组织实施", "负责", "单位", "属于", "列在", "包括", "主管"})
LEAD_COVER = 0.34  # share of the offline lead sentence's content words a generated answer must say
CLAUSE_COVER_OVERLAP = 0.6  # share of an unmarked sentence's content words found in a clause for it to cover it
# A bare yes or no (是 / 不是 / 对 / 不会 …): no fact of its own, true or false by the sentence it leads.
_POLAR = re.compile(r"(是的?|对的?|没错|会的?|不是的?|不对|不会|否|并非如此|不属于|属于)")
_SENTENCE = re.compile(r"[^。！？\n]+[。！？\n]?")


# Batch and deadline words as a model may write them come from the notice profile (FactBook.batches).
_INTRO_TAIL = re.compile(r"包括|包含|有|如|：|:")
_GENERAL_BATCH = re.compile(r"项职业资格|个职业|组织实施的|分批|两批|其他部门")
# After a department name: it heads a list ("人社部负责的有：…", "包含水利部的职业") rather than describing
# the occupation before it.
_INTRODUCES = re.compile(r"(等部门|等单位|等)?(共同)?(负责|组织实施|实施|主管|归口|管理)?(的职业|的工种|的有|的|有|包括|包含|：|:)")
_DEPT_JOINER = re.compile(r"[、和及与]")


def _normal_label(raw: str, numbered: list[str]) -> str:
    """A marker's label in the sources' spelling: 附件 1 → 附件第1项, 第2条 → 第二条, 来源3 / 3 → that source."""
    s = re.sub(r"\s+", "", raw)
    m = re.fullmatch(r"(来源|source)?(\d{1,2})", s, re.I)
    if m:
        n = int(m.group(2))
        return numbered[n - 1] if 1 <= n <= len(numbered) else f"来源{n}"
    m = re.fullmatch(r"附件(第)?(\d{1,3})(项)?", s)
    if m:
        return f"附件第{int(m.group(2))}项"
    m = re.fullmatch(r"(通知)?第([一二三四五六七八九十]|\d{1,2})条", s)
    if m:
        n = int(m.group(2)) if m.group(2).isdigit() else numeral_value(m.group(2))
        return CLAUSE_LABELS[n] if 1 <= n < len(CLAUSE_LABELS) else f"第{n}条"
    if s in ("通知开头", "开头段", "开头"):
        return "开头"
    if s in ("文头", "文尾", "通知文头"):
        return "文头"
    return s



# ---- checking a generated answer ---------------------------------------------------------------------

_ASKS = {
    "batch": re.compile(r"批"),
    "date": re.compile(r"时候|何时|哪天|哪一天|日期|期限|时间|几月|截止|多久|什么时间"),
    "department": re.compile(r"部门|单位|谁管|归谁|归哪|哪个部|谁负责|负责|实施|主管|牵头"),
    "count": re.compile(r"多少|几个|几项|几种|几类|how many", re.I),
}
# A count the answer states: 76项, 29个职业.
_COUNT = re.compile(r"(\d+)\s*(项|个职业|个)")


_ASKS_WHY = re.compile(r"为什么|为何|原因|理由|怎么回事|凭什么")


def required_facts(lead: set[tuple[str, object]], question: str, about: set[str] = frozenset()) -> set[tuple[str, object]]:
    """The reference answer's lead facts of the kinds the question asks about: 第几批 / 什么时候 → the batch and its
    deadline (one goes with the other), 哪个部门 → the departments; batch and deadline when it names none of them."""
    kinds = {kind for kind, rx in _ASKS.items() if rx.search(question)}
    if not kinds - {"count"} or kinds & {"batch", "date"}:
        kinds |= {"batch", "date"}
    # The occupation the offline reading took the question to be about, when the question did not name it as the
    # annex does (做假牙的 → 口腔修复体制作工, 中药泡制工 → 中药炮制工): the answer must say which one it is.
    asked = squeeze(question)
    named = {fact for fact in lead if fact[0] == "occupation" and fact[1] in about and len(about) <= 2
             and squeeze(str(fact[1])) not in asked}
    return {fact for fact in lead if fact[0] in kinds} | named


def enough_sentences(offline: Answer) -> int:
    """How many checked sentences make a whole answer: the reference answer's count and one more (2 to 12)."""
    count = len([p for p in re.split(r"[。！？\n]", offline.answer) if p.strip()]) if offline.answered else 1
    return max(2, min(12, count + 1))


def _lead_sentence(text: str) -> str:
    m = re.match(r"[^。！？\n]*[。！？]?", text)
    return m.group(0) if m else text


class AnswerChecker:
    """Reads generated sentences: their [label] markers in the sources' spelling, what those sources support,
    and whether the sentence may be shown (`judge`)."""

    def __init__(self, facts: FactBook, grounding: Grounding, clause_texts: dict[str, str] | None = None,
                 reference: bool = True) -> None:
        """`reference`: the model was given the offline answer to rephrase (it must then say all of it); without
        it (the model reads the sources itself) it must still say the lead facts of the kinds asked."""
        self.facts = facts
        self.grounding = grounding
        self.sources = sources_of(grounding)
        self.clause_texts = clause_texts or {}
        self.strong = False  # set by the answerer: the model may answer what the offline answerer declined
        # What the offline answer's lead sentence states (batches, deadlines, departments): nothing is shown until
        # the generated sentences have said it too, so a true but incomplete answer never replaces a complete one.
        self.required: set[tuple[str, object]] = set()
        self.lead_words: frozenset[str] = frozenset()
        if grounding.offline.answered:
            lead = _lead_sentence(marked_reference(grounding.offline, facts))
            if not reference:  # the model did not see the offline answer: it must still say as much as its lead
                self.lead_words = content_words(squeeze(_MARKER.sub("", lead)))
            self.required = required_facts(self.facts_of(lead), grounding.question,
                                           {r.occupation for r in grounding.rows})
            # Asked who implements one or two named jobs: every department of theirs (森林消防员 is 应急管理部 and
            # 国家林业和草原局; "归应急管理部管" alone is not the answer), whatever the reference answer's lead says.
            names = {r.occupation for r in grounding.rows}
            if _ASKS["department"].search(grounding.question) and 0 < len(names) <= 2:
                self.required |= {("department", d) for r in grounding.rows for d in r.departments}
        if grounding.offline.answered and reference:
            # A clause the lead sentence rests on (第六条 for "why is it not withdrawn") must be cited too; 第二条
            # only gives the deadlines, which the batch and date facts already stand for.
            self.required |= {("label", lab) for lab in re.findall(r"\[(第[一三四五六]条|开头|附件第\d+项)\]", lead)}
            # Every occupation the reference answer names: a list copied only in part (the first items of an annex
            # item, the qualifications without their occupations) is true but not the answer.
            self.required |= {fact for fact in self.facts_of(grounding.offline.answer) if fact[0] == "occupation"}
            if _ASKS_WHY.search(grounding.question):  # the reason is in the clauses the reference answer cites
                self.required |= {("label", c.label) for c in grounding.offline.citations
                                  if c.source == "notice" and c.clause is not None}

    def covered_labels(self, sentence: Sentence) -> set[str]:
        """Sources a sentence covers: those it cites; for a sentence without markers, only the annex items whose
        number, qualification or occupations it names (a clause's reason is covered only by citing it)."""
        if not sentence.inferred:
            return set(sentence.labels)
        plain = sentence.plain
        covered = set()
        for label in sentence.labels:
            src = self.sources.get(label)
            if src is None:
                continue
            if src.source == "notice" and src.clause is not None:
                # a clause is covered by a sentence that mostly says what the clause says
                if rule_overlap(plain, squeeze(self.clause_texts.get(label, src.quote))) >= CLAUSE_COVER_OVERLAP:
                    covered.add(label)
                continue
            if src.source != "annex" or src.item is None:
                continue
            rows = self.facts.by_item.get(src.item, [])
            names = {squeeze(r.occupation) for r in rows} | {squeeze(r.qualification) for r in rows}
            if f"第{src.item}项" in plain or any(n and n in plain for n in names):
                covered.add(label)
        return covered

    def facts_of(self, text: str) -> set[tuple[str, object]]:
        flat = squeeze(_MARKER.sub("", text))
        return ({("batch", b) for b in batches_in(flat, skip_negated=True)} | {("date", d) for d in dates_in(flat)}
                | {("department", d) for d in self.facts.departments_in(flat)}
                | {("occupation", n) for _, _, n in self.facts.names_in(flat) if n}
                | {("count", f"{m.group(1)}{m.group(2)}") for m in _COUNT.finditer(flat)})

    # -- citations ---------------------------------------------------------------------------------

    def citations(self, text: str) -> tuple[str, list[Citation], list[str]]:
        """(text with unknown markers removed and known ones in [label] form, citations in order, dropped labels)."""
        sources = self.sources
        numbered = list(sources)
        cited: "OrderedDict[str, Citation]" = OrderedDict()
        dropped: list[str] = []

        def fix(m: re.Match) -> str:
            raw = m.group(1)
            parts = [p for p in _MARKER_SPLIT.split(raw) if p]
            labels = [_normal_label(p, numbered) for p in parts]
            known = [lab for lab in labels if lab in sources]
            looks_like_citation = bool(known) or any(
                re.fullmatch(r"(附件第\d+项|第\S{1,3}条|开头|文头|来源\d+)", lab) for lab in labels)
            if not looks_like_citation:
                return m.group(0)  # an ordinary bracket, e.g. [注]
            dropped.extend(lab for lab in labels if lab not in sources)
            for lab in known:
                cited.setdefault(lab, sources[lab].citation())
            return "".join(f"[{lab}]" for lab in dict.fromkeys(known))

        cleaned = _MARKER.sub(fix, _PAREN_MARKER.sub(r"[\1]", text))
        # [1][2][附件第67项][第二条] read as the same sources twice: each once, in order
        cleaned = re.sub(r"(?:\[[^\[\]]+\])+", lambda m: "".join(dict.fromkeys(re.findall(r"\[[^\[\]]+\]", m.group(0)))),
                         cleaned)
        cleaned = re.sub(r"[ \t]+([。，；！？])", r"\1", cleaned)
        cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
        return cleaned, list(cited.values()), dropped

    def support(self, labels: Iterable[str]) -> Support:
        """What the cited sources state, with what follows from them (an annex item's deadline …)."""
        out = Support()
        for label in labels:
            src = self.sources.get(label)
            if src is None:
                continue
            if src.source == "annex" and src.item is not None:
                out.add_rows(self.facts.by_item.get(src.item, []) or [r for r in self.grounding.rows if r.item == src.item],
                             self.facts.batches)
                out.add_text(src.quote, self.facts, clause=False)
            else:
                whole = self.clause_texts.get(label, "")
                out.add_text(f"{src.quote}\n{whole}", self.facts, clause=src.clause is not None)
        labels = set(labels)
        if out.items:  # counts of what is cited: "有5项", "共12个职业"
            out.numbers |= {str(len(out.items)), str(len(out.occupations))}
            out.counts |= {(str(len(out.items)), "项"), (str(len(out.occupations)), "个")}
        offline = self.grounding.offline
        if labels and labels <= {c.label for c in offline.citations}:
            # Counts the offline answer derived from these same sources (第二批12个 …) may be repeated.
            flat = squeeze(offline.answer)
            out.numbers |= {str(int(d)) for d in re.findall(r"\d+", flat)}
            out.counts |= counts_in(flat)
        return out

    # -- one sentence ---------------------------------------------------------------------------------

    def judge(self, raw: str) -> tuple[Sentence, list[Citation], Problem | None]:
        """The sentence as it would be shown, its citations, and the first problem (None: it may be shown)."""
        cleaned, citations, dropped = self.citations(_markers_before_stop(raw.strip()))
        if dropped:
            log.info("removed citations of unretrieved sources: %s", ", ".join(dict.fromkeys(dropped)))
        inferred = False
        if not citations and not dropped and self.grounding.offline.answered and not self.strong \
                and not is_decline(cleaned) and states_a_fact(squeeze(_MARKER.sub("", cleaned)), self.facts):
            # A small model often drops the markers of the reference answer it rephrases: such a sentence is held
            # to the reference answer's sources, and cites them when it passes.
            citations = [self.sources[c.label].citation() for c in self.grounding.offline.citations
                         if c.label in self.sources]
            if citations:
                cleaned = _with_markers(cleaned, [c.label for c in citations])
                inferred = True
        labels = tuple(c.label for c in citations)
        sentence = Sentence(cleaned, labels, inferred)
        g = self.grounding
        ctx = SentenceContext(
            question=g.question + "\n" + g.standalone_question, support=self.support(labels), facts=self.facts,
            cited=bool(labels), offline_answered=g.offline.answered and not self.strong,
            grounded_names=list(dict.fromkeys(r.occupation for r in g.rows)),
        )
        problem = check_sentence(sentence, ctx)
        if problem is None:
            contradicted = self.contradictions(sentence.plain)
            if contradicted:
                problem = Problem(CheckFailure.CONTRADICTS_ANNEX, contradicted[0])
        if problem is None and len(labels) > 1:
            # No citation on a sentence its source does not support ([第二条] on a department sentence): a cited
            # source the sentence does not rest on is dropped, when the sentence passes without it.
            keep = tuple(lab for lab in labels if self.rests_on(sentence.plain, lab))
            if keep and len(keep) < len(labels):
                text = re.sub(r"\[([^\[\]]+)\]",
                              lambda m: "" if m.group(1) in labels and m.group(1) not in keep else m.group(0), cleaned)
                pruned = Sentence(text, keep, inferred)
                if check_sentence(pruned, replace(ctx, support=self.support(keep))) is None:
                    sentence, citations = pruned, [c for c in citations if c.label in keep]
        return sentence, citations, problem

    def rests_on(self, plain: str, label: str) -> bool:
        """Whether a sentence says something of this source: an annex item it names (number, qualification,
        occupation) or whose batch, deadline or department it states; a clause whose date, batch word or count it
        states, or with a third of whose words it says its claim."""
        src = self.sources.get(label)
        if src is None:
            return False
        said = self.facts_of(plain)
        if src.source == "annex" and src.item is not None:
            rows = self.facts.by_item.get(src.item, []) or [r for r in self.grounding.rows if r.item == src.item]
            names = {squeeze(r.occupation) for r in rows} | {squeeze(r.qualification) for r in rows}
            if f"第{src.item}项" in plain or any(n and n in plain for n in names):
                return True
            support = Support()
            support.add_rows(rows, self.facts.batches)
            stated = ({("batch", b) for b in support.row_batches} | {("date", d) for d in support.row_dates}
                      | {("department", d) for d in support.departments})
            return bool(said & stated)
        text = squeeze(f"{src.quote}\n{self.clause_texts.get(label, '')}")
        if src.clause is None:  # the header: kept when cited
            return True
        source_facts = self.facts_of(text)
        if {f for f in said if f[0] in ("date", "batch", "count")} & source_facts:
            return True
        bare = plain
        for rx in (self.facts.name_re, self.facts.department_re):
            if rx is not None:
                bare = rx.sub("", bare)  # names are the annex's, not the clause's claim
        words = {w for w in content_words(bare) if w not in _GENERIC_WORDS}
        return bool(words) and sum(1 for w in words if w in text) / len(words) >= 1 / 3

    def admit(self, raw: str, v: Verdicts) -> Iterator[StreamEvent]:
        """Token events for one generated sentence: none when it fails a check or has no fact of its own yet."""
        if not raw.strip():
            if "\n" in raw and v.shown:
                v.separator = "\n"
            return
        ends_line = raw.endswith("\n")
        bare = squeeze(_MARKER.sub("", raw)).rstrip("。！!，,")
        if _POLAR.fullmatch(bare):  # 是 / 不是 leading a correction: shown with the sentence it leads, if it agrees
            v.polar = bare
            return
        sentence, citations, problem = self.judge(raw)
        if not sentence.plain:
            return  # markers alone
        if problem is not None:
            v.problems.append(problem)
            log.info("dropped a generated sentence: %s", problem)
            return
        if not sentence.labels and not is_decline(sentence.plain):
            v.held.append(sentence.text)
            return
        if is_decline(sentence.plain) and not sentence.labels:
            v.declines += 1
        else:
            v.answers += 1
        for c in citations:
            v.citations.setdefault(c.label, c)
        lead = ""
        if v.polar is not None and v.answers == 1 and self.polar_agrees(v.polar, sentence.plain):
            lead = v.polar + "，"
        v.polar = None
        v.pending.append(v.separator + "".join(v.held) + lead + sentence.text)
        v.held, v.separator = [], "\n" if ends_line else ""
        v.covered |= self.facts_of(sentence.plain) | {("label", lab) for lab in self.covered_labels(sentence)}
        v.said += sentence.plain
        if self.required <= v.covered and self.lead_said(v.said):
            # the answer so far says what the reference answer's lead sentence says
            text = "".join(v.pending)
            # Lines of a list do not count toward the cap, full sentences do.
            v.sentences += sum(1 for t in v.pending if re.search(r"[。！？!?]\s*$", t))
            v.pending = []
            v.shown.append(text)
            yield StreamEvent(kind="token", text=text)

    def verify(self, text: str) -> Verdicts:
        """A whole generated text through the sentence gate, as the stream would show it (for tests and tools)."""
        v = Verdicts()
        gate = SentenceGate()
        for raw in gate.feed(strip_think(text)) + gate.flush():
            list(self.admit(raw, v))
        return v

    def lead_said(self, said: str) -> bool:
        """At least a third of the content words of the offline answer's lead sentence are in what was said so far:
        an answer without checkable facts (a notice's background, a rule) that says less than the offline one does
        not replace it (real model: "今年年底前拟分批退出" for the offline answer's 2019年12月国务院常务会议决定…)."""
        if not self.lead_words:
            return True
        return sum(1 for w in self.lead_words if w in said) / len(self.lead_words) >= LEAD_COVER

    def polar_agrees(self, polar: str, sentence: str) -> bool:
        """Whether a bare 是/不是 is true of the question, read against the checked sentence it leads and the
        offline answer: the offline answer opens with the same polarity, or the sentence restates (是) or
        corrects (不是) a batch, date or department the question states."""
        negative = polar.startswith(("不", "没", "否", "并非"))
        offline = self.grounding.offline
        opening = squeeze(_MARKER.sub("", offline.answer))[:4] if offline.answered else ""
        if opening.startswith(("不是", "不属于", "没有", "否", "并非", "不会")):
            return negative
        if opening.startswith(("是的", "是，", "对", "会")):
            return not negative
        asked = self.facts_of(self.grounding.question)
        said = self.facts_of(sentence)
        for kind in ("batch", "date", "department"):
            q = {v for k, v in asked if k == kind}
            s = {v for k, v in said if k == kind}
            if q and s:
                return negative == (not (q & s))
        return False

    # -- facts ---------------------------------------------------------------------------------------

    def contradictions(self, text: str) -> list[str]:
        """Statements about an occupation that the annex contradicts, as short secret-free phrases."""
        facts = self.facts
        if facts.name_re is None:
            return []
        plain = _normalise_deadlines(_MARKER.sub("", text))
        problems: list[str] = []
        grounded_names = list(dict.fromkeys(r.occupation for r in self.grounding.rows))
        sentences_without_names = []
        for sm in _SENTENCE.finditer(plain):
            sentence = sm.group(0)
            hits = [(m.start(), m.end(), facts.spelling_to_name.get(m.group(0)))
                    for m in facts.name_re.finditer(sentence)]
            anchors = [(s, e, n) for s, e, n in hits if n is not None]  # qualification names only mask
            if not anchors:
                sentences_without_names.append(sentence)
                continue
            prefix = sentence[:anchors[0][0]]
            for i, (start, end, name) in enumerate(anchors):
                stop = anchors[i + 1][0] if i + 1 < len(anchors) else len(sentence)
                segment, carried = sentence[end:stop], ""
                cut = max(segment.rfind("，"), segment.rfind("；"))
                if cut >= 0 and i + 1 < len(anchors) and _INTRO_TAIL.search(segment[cut + 1:]):
                    segment, carried = segment[:cut], segment[cut + 1:]  # "…，第二批包括" is about the next name
                problems += self._check_segment(name, segment, prefix)
                prefix = carried
            problems += self._check_listings(sentence, anchors)
        if len(grounded_names) == 1 and not problems:
            name = grounded_names[0]
            allowed = {r.batch for r in facts.by_name.get(name, [])} or {r.batch for r in self.grounding.rows}
            for sentence in sentences_without_names:
                if _GENERAL_BATCH.search(sentence):  # 第二条's own sentence about a whole batch
                    continue
                said = self._batches(sentence)
                if said and not (said & allowed):
                    problems.append(self._batch_problem(name, said, allowed))
        return list(dict.fromkeys(problems))

    def _check_listings(self, sentence: str, anchors: list[tuple[int, int, str]]) -> list[str]:
        """Occupations listed under a department ("实施部门包含水利部的职业：A、B") must have it."""
        if self.facts.department_re is None:
            return []
        problems = []
        events = [(m.start(), m.end(), "dept", self.facts.department_of[m.group(0)])
                  for m in self.facts.department_re.finditer(sentence)
                  if not negated_before(sentence[:m.start()])]
        events += [(s, e, "name", n) for s, e, n in anchors]
        group: list[str] = []
        last_end = -1
        listing: set[str] = set()
        for start, end, kind, value in sorted(events):
            if kind == "dept":
                joined = last_end >= 0 and _DEPT_JOINER.fullmatch(sentence[last_end:start] or "、") is not None
                group = group + [value] if group and joined else [value]
                last_end = end
                if _INTRODUCES.match(sentence, end):
                    listing = set(group)
                continue
            last_end = -1
            rows = self.facts.by_name.get(value, [])
            allowed = {d for r in rows for d in r.departments}
            if listing and rows and not (listing & allowed):
                problems.append(f"{value} 被列在{'、'.join(sorted(listing))}名下（附件：{'、'.join(sorted(allowed))}）")
        return problems

    def _batches(self, segment: str) -> set[str]:
        """Batch values the segment says (not after a negation), in the profile's words."""
        return self.facts.batches.batches_said(segment, negated_before)

    def _deadlines(self, segment: str) -> set[str]:
        """Batch values whose deadline the segment says (9月30日 → the batch clause 二 gives that date)."""
        return self.facts.batches.deadlines_said(segment, negated_before)

    def _batch_problem(self, name: str, said: set[str], allowed: set[str]) -> str:
        words = self.facts.batches.name
        return (f"{name} 被说成{'/'.join(words(b) for b in sorted(said))}"
                f"（附件：{'/'.join(words(b) for b in sorted(allowed))}）")

    def _check_segment(self, name: str, segment: str, prefix: str) -> list[str]:
        rows = self.facts.by_name.get(name, [])
        if not rows:
            return []
        problems = []
        batches = {r.batch for r in rows}
        said = self._batches(segment)
        if not said and prefix:
            said = self._batches(prefix)
        if said and not (said & batches):
            problems.append(self._batch_problem(name, said, batches))
        dates = self._deadlines(segment)
        if not dates and prefix:
            dates = self._deadlines(prefix)
        if dates and not (dates & batches):
            vocab = self.facts.batches
            right = "/".join(vocab.date_words(b) for b in sorted(batches) if b in vocab.dates) or "不退出目录"
            problems.append(f"{name} 的退出期限被说成{'/'.join(vocab.date_words(d) for d in sorted(dates))}"
                            f"（附件：{right}）")
        if self.facts.department_re is not None:
            allowed = {d for r in rows for d in r.departments}
            for m in self.facts.department_re.finditer(segment):
                dept = self.facts.department_of[m.group(0)]
                if _INTRODUCES.match(segment, m.end()):  # "人社部负责的有：…" is about what follows
                    continue
                if dept not in allowed and not negated_before(segment[:m.start()]):
                    problems.append(f"{name} 的实施部门被说成{dept}（附件：{'、'.join(sorted(allowed))}）")
        return problems



_STOPS = "。！？!?\n"


def _markers_before_stop(sentence: str) -> str:
    """…退出目录。[附件第1项] → …退出目录[附件第1项]。 (markers a model put after the full stop)."""
    m = _TRAILING_MARKERS.match(sentence)
    return f"{m.group(1)}{m.group(3).strip()}{m.group(2)}" if m else sentence


def _with_markers(sentence: str, labels: list[str]) -> str:
    m = re.match(r"^(.*?)([。！？!?]?)(\s*)$", sentence, re.S)
    return f"{m.group(1)}{''.join(f'[{lab}]' for lab in labels)}{m.group(2)}{m.group(3)}"


class SentenceGate:
    """Cuts a stream of text pieces into sentences: up to a full stop and the [label] markers right after it.
    A sentence is released only when what follows it is known not to be one of its markers."""

    def __init__(self) -> None:
        self.buffer = ""

    def feed(self, piece: str) -> list[str]:
        self.buffer += piece
        out = []
        while True:
            cut = self._cut()
            if cut is None:
                return out
            out.append(self.buffer[:cut])
            self.buffer = self.buffer[cut:]

    def flush(self) -> list[str]:
        rest, self.buffer = self.buffer, ""
        return [rest] if rest.strip() else []

    def _cut(self) -> int | None:
        text = self.buffer
        m = re.search(f"[{_STOPS}]", text)
        if m is None:
            return None
        end = m.end()
        if m.group(0) == "\n":
            return end  # a marker on the next line belongs to that line
        while True:
            rest = text[end:]
            stripped = rest.lstrip(" \t")
            if not stripped:
                return None  # a marker may still follow
            if stripped[0] not in "[【":
                return end
            close = re.match(r"[\[【][^\[\]【】\n]{0,40}[\]】]", stripped)
            if close is None:
                if len(stripped) > 42 or "\n" in stripped:
                    return end  # an ordinary bracket, not a marker
                return None
            end += len(rest) - len(stripped) + close.end()


@dataclass
class Verdicts:
    """What the gate let through so far, and why the rest was dropped."""

    shown: list[str] = field(default_factory=list)
    citations: "OrderedDict[str, Citation]" = field(default_factory=OrderedDict)
    held: list[str] = field(default_factory=list)  # sentences without facts, shown with the next cited one
    pending: list[str] = field(default_factory=list)  # checked sentences waiting until the lead facts are said
    covered: set = field(default_factory=set)  # facts of the reference answer's lead sentence said so far
    sentences: int = 0  # sentences shown
    problems: list[Problem] = field(default_factory=list)
    answers: int = 0  # cited sentences shown
    declines: int = 0  # "the notice does not cover this" sentences shown
    separator: str = ""  # a line break to put before the next shown sentence
    polar: str | None = None  # a bare 是/不是 waiting for the sentence it leads
    said: str = ""  # the checked sentences' words so far (pending and shown)

    def text(self) -> str:
        return "".join(self.shown)

    def reason(self) -> FallbackReason:
        """Why nothing was shown."""
        failures = {p.failure for p in self.problems}
        if self.pending:
            return FallbackReason.INCOMPLETE
        if not failures:
            return FallbackReason.NO_CITATIONS if self.held else FallbackReason.EMPTY
        if failures == {CheckFailure.DECLINES_ANSWERABLE}:
            return FallbackReason.DECLINED
        if failures <= {CheckFailure.UNCITED_FACT}:
            return FallbackReason.NO_CITATIONS
        return FallbackReason.REJECTED


