"""Answer stage, offline and grounded: route the interpretation to one handler and compose a short cited answer.

Routing is data: `GroundedAnswerer.routes` is an ordered table of (name, condition, handler); the first route whose
condition holds answers, guards (declines) first, then intents, and the extractive answer from retrieval last.
Every fact comes from a parsed record (clause text, annex row, header fact) or the notice profile; the answer says
the direct answer first, then at most two short sentences, with numbered markers [1] that match the sources."""
from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .index import HEADER_LABEL, header_fact_texts
from .link import NO_BATCH, MatchKind, Mentions
from .normalize import normalize
from .profile import NoticeProfile
from .records import (
    BATCH_1, BATCH_2, BATCH_LICENSED, CLAUSE_LABELS, Answer, AnnexRow, Citation, Corpus, Grounding, SourceRow, Turn,
)
from .retrieve import HybridRetriever, tokenize
from .sentences import SentenceRanker
from .understand import (
    ABOUT_NOTICE, ANSWERABLE_WANTS, COUNTED, PROMPT_LEAK, SAME_ITEM, TOPIC_BY_NAME, TOPICS, Interpretation, Topic, Understanding, is_weak,
)

LIST_IN_FULL = 15  # a list of more items than this also gets the annex-tab filter that shows it (annex_filter)
MAX_CITATIONS = 12


@dataclass
class Draft:
    """An answer being composed: sentences with numbered markers, and the sources they rest on, in first-use order."""

    parts: list[str] = field(default_factory=list)
    sources: "OrderedDict[tuple, Citation]" = field(default_factory=OrderedDict)
    answered: bool = True
    follow_ups: list[str] = field(default_factory=list)
    annex_filter: dict[str, str] | None = None

    def cite(self, citation: Citation) -> int:
        key = citation.key()
        if key in self.sources:
            old = self.sources[key]
            if citation.quote and citation.quote not in old.quote:
                self.sources[key] = old.model_copy(update={"quote": f"{old.quote}\n{citation.quote}".strip(),
                                                           "rows": old.rows + [r for r in citation.rows
                                                                               if r not in old.rows]})
        else:
            self.sources[key] = citation.model_copy(update={"marker": len(self.sources) + 1})
        return self.sources[key].marker

    def say(self, text: str, *citations: Citation) -> None:
        """One sentence; its markers go before its closing punctuation (…退出目录[1][2]。)."""
        markers = "".join(f"[{n}]" for n in dict.fromkeys(self.cite(c) for c in citations))
        if markers and text and text[-1] in "。；！？":
            text = text[:-1] + markers + text[-1]
        else:
            text += markers
        if text not in self.parts:  # (the same sentence on the same sources is said once in a message)
            self.parts.append(text)

    def decline(self, text: str) -> "Draft":
        self.answered = False
        self.parts.append(text)
        return self

    def text(self) -> str:
        """The sentences run on; Markdown list lines stand on lines of their own."""
        out, prev_list = "", False
        for part in self.parts:
            is_list = part.startswith("- ")
            if out and (is_list or prev_list):
                out += "\n"
            out += part
            prev_list = is_list
        return out


@dataclass(frozen=True)
class Route:
    """One row of the routing table: when `when` holds, `handler` answers."""

    name: str
    when: Callable[[Interpretation], bool]
    handler: Callable[[Interpretation, Draft, list[str]], list[AnnexRow]]
    guard: bool = False  # a decline


@dataclass(frozen=True)
class Ask:
    """One ask of a message with several: its reading (with the asks before it as context) and its route."""

    q: Interpretation
    route: Route
    names_subject: bool  # names a job, item or qualification of its own (not only one carried from before)


# Where one ask of a message ends and the next begins.
_QUESTION_END = re.compile(r"(?<=[？?])")
# A question about what a clause requires or lists is answered by the whole clause (as much as this many characters).
_ASKS_WHOLE_CLAUSE = re.compile(r"哪些|哪几|几点|什么要求|何要求|要求是什么|规定了什么|都说了|全文|原文|完整")
WHOLE_CLAUSE_CHARS = 400
# "2019年12月，…": a sentence that opens with a time keeps it in any passage quoted from it.
_OPENING_TIME = re.compile(r"\d{4}年(\d{1,2}月)?(\d{1,2}日)?|今年(年底|年内)?前?|(今年)?\d{1,2}月(\d{1,2}日)?前?")

class GroundedAnswerer:
    """Routes an interpretation to its handler; the handler composes the cited answer from the records."""

    def __init__(self, corpus: Corpus, understanding: Understanding, retriever: HybridRetriever,
                 profile: NoticeProfile) -> None:
        self.corpus = corpus
        self.understanding = understanding
        self.linker = understanding.linker
        self.retriever = retriever
        self.profile = profile
        self.rows_by_occupation = understanding.rows_by_occupation
        self.header = dict(header_fact_texts(corpus))
        self.max_item = max(corpus.item_numbers())
        self.sentences: SentenceRanker | None = None  # the trained sentence ranker (assistant/sentences.py), if current
        self.routes = self.build_routes()

    # ---- the routing table -------------------------------------------------------------------------

    def build_routes(self) -> list[Route]:
        R = Route
        return [
            R("no_such_clause", lambda q: bool(self._bad_clauses(q)) and not q.mentions.has_subject(),
              self.decline_no_such_clause, guard=True),
            R("no_such_item", lambda q: bool(self._bad_items(q)), self.decline_no_such_item, guard=True),
            R("no_such_batch", lambda q: NO_BATCH in q.mentions.batches, self.decline_no_such_batch, guard=True),
            R("prompt_injection", lambda q: q.injection and (not q.has_anchor() or bool(PROMPT_LEAK.search(q.text))
                                                             or q.frame_applied and q.frame == "decline_injection"),
              self.decline_injection, guard=True),
            # (also when the question is read as asking about a job the annex lacks and other jobs are named only
            # as context: 育婴员我知道在名单里，家政服务员在不在？)
            R("subject_not_in_annex", lambda q: bool(q.mentions.unlinked) and (
                not q.mentions.occupations or q.compared_to_linked
                or "unlinked_asked" in q.flags), self.decline_unlinked, guard=True),
            # (a wrong year in a question about the notice's own date is a false premise the header answers)
            # (a certificate's own earlier year is context where what is asked is whether certificates stay valid:
            # clause 四 speaks of every certificate issued before the withdrawal)
            R("other_year", lambda q: bool(self._other_years(q)) and not (
                q.mentions.occupations or q.mentions.items or "issue_date" in q.header_facts) and not (
                q.frame_applied and q.frame in ("validity", "cert_status")
                and all(y.isdigit() and int(y) < self.profile.year for y in self._other_years(q))) and not (
                q.frame_applied and q.frame == "students"),  # 明年毕业: clause 三 speaks of students until they finish
              self.decline_other_year, guard=True),
            R("practical_matter", lambda q: (q.unsupported or q.intent == "practical") and not (
                q.mentions.occupations or q.mentions.items),
              self.decline_practical, guard=True),
            R("not_about_notice", lambda q: q.intent == "offtopic" and not q.has_anchor(), self.decline_offtopic,
              guard=True),
            R("header_fact", lambda q: bool(q.header_facts) and (
                not q.mentions.has_subject() or bool(ABOUT_NOTICE.search(q.text))), self.answer_header),
            R("practical_about_job", lambda q: (q.unsupported or q.intent == "practical") and bool(
                q.mentions.occupations) and not (q.wants & ANSWERABLE_WANTS), self.decline_practical, guard=True),
            # (会计从业资格证是第二批吗: a batch named beside a job the annex lacks is no list of that batch)
            R("unnamed_job", lambda q: q.frame_applied and q.frame == "decline_not_in_annex" and not (
                q.mentions.occupations or q.mentions.items or q.mentions.departments),
              self.ask_which_job, guard=True),
            # 第一批里跟制冷有关的有哪些, 建筑类的有几个: a list narrowed by words of the annex's names
            R("sectors", lambda q: bool(q.mentions.sectors) and "sector" in q.flags and bool({"list", "count"} & q.wants)
              and not (q.mentions.items or q.mentions.departments)
              and not any(s.kind == MatchKind.EXACT for s in q.mentions.subjects)
              and all(any(w in o for w in q.mentions.sectors) for o in q.mentions.occupations), self.answer_sectors),
            R("occupations", lambda q: bool(q.mentions.occupations), self.answer_occupations),
            R("items", lambda q: bool(q.mentions.items), self.answer_items),
            # what the notice body says: the sentence the trained ranker is sure of, else the route after this one
            R("notice_sentence", lambda q: q.frame_applied and q.frame == "notice_content", self.answer_notice_sentence),
            # 哪些要调整为准入类, 准入类和水平评价类按什么分, 改成准入类谁负责: the licensing group as a whole
            R("licensing", lambda q: q.frame_applied and q.frame == "licensing" and not (
                q.mentions.occupations or q.mentions.items or q.mentions.departments
                or any(b in (BATCH_1, BATCH_2) for b in q.mentions.batches)), self.answer_licensing),
            # (俺这证要退出了，报名费能退不: the withdrawal is the premise, the exam fee the ask — the topic answers)
            R("own_job_unnamed", lambda q: "own_job" in q.flags and bool(
                {"batch", "deadline", "departments"} & q.wants
                or "withdrawn" in q.wants and not any(t.specific for t in q.topics)) and not (
                q.mentions.departments or q.mentions.batches), self.ask_which_job),
            R("specific_topic", lambda q: any(t.specific for t in q.topics) and not ({"list", "count"} & q.wants),
              self.answer_topics),
            R("departments", lambda q: bool(q.mentions.departments), self.answer_departments),
            R("mixed_items", lambda q: "mixed" in q.flags, self.answer_mixed_items),
            R("overview", lambda q: len([b for b in q.mentions.batches if b in (BATCH_1, BATCH_2)]) >= 2 and (
                bool({"count", "compare"} & q.wants) or "overview_why" in q.flags),
              self.answer_overview),
            R("batches", lambda q: bool(q.mentions.batches), self.answer_batches),
            R("clauses", lambda q: bool(q.mentions.clauses), self.answer_clauses),
            R("topics", lambda q: bool(q.topics), self.answer_topics),
            R("counts", lambda q: "overview" in q.flags or "count" in q.wants and bool(COUNTED.search(q.text)),
              self.answer_overview),
            R("practical_matter_late", lambda q: q.unsupported or q.intent == "practical", self.decline_practical,
              guard=True),
            R("extractive", lambda q: True, self.answer_from_retrieval),
        ]

    def route(self, q: Interpretation) -> Route:
        return next(r for r in self.routes if r.when(q))

    # ---- the stage -----------------------------------------------------------------------------------

    def run(self, question: str, history: list[Turn], id=None) -> Grounding:
        interp = self.understanding.run(question, history)
        route = self.route(interp)
        # a message declined as a whole for what it asks (fees, other years, off topic …) is not split into asks
        # that would each look answerable; a subject the annex lacks is declined in its own ask
        parts = self.sub_questions(question, history, interp) if not route.guard or \
            route.name == "subject_not_in_annex" else []
        if parts:  # "它们最晚什么时候退出？第二批呢？": each ask answered in turn, one answer, one set of markers
            draft, rows, used = self.compose_parts(parts)
            route = replace(route, name="+".join(a.route.name for a in parts))
        else:
            draft, rows, used = self.compose(interp, route)
        standalone = interp.text if not interp.context_from else f"{interp.context_from} {interp.text}"
        pinned = self.pinned_evidence(draft, rows, used)
        evidence = self.retriever.run(standalone, pinned=pinned)
        answer = Answer(id=id, question=question, answer=draft.text(), answered=draft.answered,
                        citations=list(draft.sources.values())[:MAX_CITATIONS], follow_ups=draft.follow_ups[:3],
                        annex_filter=draft.annex_filter)
        return Grounding(question=question, standalone_question=standalone, evidence=evidence, rows=rows,
                         offline=answer, route=route.name, frame=interp.frame, confidence=float(interp.confidence),
                         frame_applied=interp.frame_applied)

    def compose(self, q: Interpretation, route: Route | None = None) -> tuple[Draft, list[AnnexRow], list[str]]:
        d, used = Draft(), []
        rows = (route or self.route(q)).handler(q, d, used) or []
        return d, rows, used

    def sub_questions(self, question: str, history: list[Turn], whole: Interpretation | None = None) -> list[Ask]:
        """The asks of a message with two to four questions, each read with the ones before it as context, when
        they ask different things (another subject, batch, topic or route); [] when it is one ask, or when a part
        is one no rule reads (then the message is read as a whole). The jobs are those the whole message names:
        a part read alone may take a role word for a job (要update HR record) that the message names beside one."""
        parts = [p.strip() for p in _QUESTION_END.split(question) if len(p.strip().strip("？?")) >= 2]
        if not 2 <= len(parts) <= 4:
            return []
        named = set(whole.mentions.occupations) if whole is not None else set()
        turns, asks, keys = list(history), [], []
        for n, part in enumerate(parts):
            q = self.understanding.run(part, turns)
            own = self.understanding.read(normalize(part))  # what the part names of its own, without context
            stray = set(own.mentions.occupations) - named  # (jobs carried from the history stay)
            if named and stray & set(q.mentions.occupations):
                q = replace(q, mentions=_only_jobs(q.mentions, set(q.mentions.occupations) - stray))
            turns = turns + [Turn(role="user", content=part)]
            asks.append(Ask(q, self.route(q), bool(own.mentions.subjects or own.mentions.occupations
                                                   or own.mentions.items)))
            # what the first ask is about (with its context), and what each later one names of its own
            read = q if n == 0 else own
            m = read.mentions
            key = (m.occupations, m.items, m.batches, m.departments, m.clauses, tuple(s.span for s in m.unlinked),
                   tuple(t.name for t in read.topics), read.header_facts)
            if n == 0 or any(key):
                keys.append(key)
        if any(a.route.name == "extractive" for a in asks):
            return []
        return asks if len(set(keys)) >= 2 else []

    def compose_parts(self, asks: list[Ask]) -> tuple[Draft, list[AnnexRow], list[str]]:
        d, used, rows, answered = Draft(), [], [], False
        declined_subject = False
        for ask in _merged(asks):
            if declined_subject and not ask.names_subject:
                continue  # "X 是否列入？如列入，属于哪一批？": an ask that only goes on about a declined subject
            declined_subject = declined_subject or ask.route.name == "subject_not_in_annex"
            d.answered = True
            rows += ask.route.handler(ask.q, d, used) or []
            answered = answered or d.answered
        d.answered = answered  # a message is answered when one of its asks is; a declined ask says so in its place
        d.follow_ups = list(dict.fromkeys(d.follow_ups))
        return d, [r for i, r in enumerate(rows) if r not in rows[:i]], used

    @staticmethod
    def pinned_evidence(draft: Draft, rows: list[AnnexRow], used: list[str]) -> list[str]:
        """Evidence the answer rests on, first one unit per citation in the answer's order, then the rest."""
        row_ids = [f"annex-{r.position}" for r in rows]
        first = []
        for c in draft.sources.values():
            if c.source == "annex":
                ids = [f"annex-{r.position}" for r in rows if r.item == c.item]
            elif c.clause is None:
                ids = [u for u in used if u.startswith("header-")]
            else:
                ids = [u for u in used if u.startswith(f"clause-{c.clause}-")]
            first += ids[:1]
        return list(dict.fromkeys(first + row_ids + used))

    # ---- conditions ----------------------------------------------------------------------------------

    def _bad_clauses(self, q: Interpretation) -> list[int]:
        return [n for n in q.mentions.clauses if not 0 <= n <= len(self.corpus.clauses) - 1]

    def _bad_items(self, q: Interpretation) -> list[int]:
        return [n for n in q.mentions.items if not 1 <= n <= self.max_item]

    def _other_years(self, q: Interpretation) -> list[str]:
        """Years the question names that the notice does not speak of; 明年/后年 count from the notice's year."""
        known = {str(self.profile.year), str(self.profile.year - 1)}
        relative = {"明年": 1, "后年": 2, "下一年": 1, "next year": 1}
        named = [y for y in re.findall(r"(20\d\d)年?", q.text) if y not in known]
        return named + [str(self.profile.year + n) for w, n in relative.items() if w in q.text.lower()]

    # ---- sources -------------------------------------------------------------------------------------

    def row_citation(self, item: int, rows: list[AnnexRow]) -> Citation:
        groups: "OrderedDict[tuple, list[AnnexRow]]" = OrderedDict()
        for r in rows:
            groups.setdefault((r.departments, r.batch), []).append(r)
        card = [SourceRow(occupations=list(dict.fromkeys(r.occupation for r in g)), departments=g[0].departments_text(),
                          batch=self.profile.batch_word(g[0].batch), deadline=self.profile.deadline(g[0].batch))
                for g in groups.values()]
        qualification = self.corpus.rows_of_item(item)[0].qualification
        quote = "；".join(f"{'、'.join(c.occupations)}（实施部门：{c.departments}；批次：{c.batch}"
                         + (f"，拟于{c.deadline}退出" if c.deadline else "") + "）" for c in card)
        return Citation(source="annex", item=item, label=f"附件第{item}项", quote=f"{item} {qualification}：{quote}",
                        qualification=qualification, rows=card)

    def clause_citation(self, number: int, keys: tuple[str, ...] = ()) -> Citation:
        clause = self.corpus.clause(number)
        sentences = [s for s in clause.sentences() if not keys or any(k in s for k in keys)]
        return Citation(source="notice", clause=number, label=clause.label,
                        quote=_clean("".join(sentences) or clause.text))

    def clause_sentence_ids(self, number: int, keys: tuple[str, ...]) -> list[str]:
        return [f"clause-{number}-{i}" for i, s in enumerate(self.corpus.clause(number).sentences())
                if any(k in s for k in keys)]

    def batch_citations(self, rows: list[AnnexRow], used: list[str]) -> list[Citation]:
        """The clause sentences that state the batches (二) and the 准入类 adjustment (二, 六) of these rows."""
        keys = [f"{b.word}退出" for b in self.profile.batches if any(r.batch == b.batch for r in rows)]
        licensed = any(r.is_licensed for r in rows)
        if licensed:
            keys.append("调整为准入类")
        out = [self.clause_citation(2, tuple(keys))] if keys else []
        used += self.clause_sentence_ids(2, tuple(keys))
        if licensed:
            out.append(self.clause_citation(6, ("调整为准入类",)))
            used += self.clause_sentence_ids(6, ("调整为准入类",))
        return out

    @property
    def F(self) -> dict[str, str]:  # noqa: N802 — the profile's suggested questions, short for the handlers
        return self.profile.follow_ups

    def follow(self, d: Draft, *questions: str) -> None:
        d.follow_ups += [q for q in questions if q not in d.follow_ups]

    # ---- declines ------------------------------------------------------------------------------------

    def _where_to_ask(self) -> str:
        return f"可向{self.profile.ask_elsewhere}咨询。"

    def decline_no_such_clause(self, q, d, used):
        d.decline(f"通知正文只有开头和第一条至第{CLAUSE_LABELS[-1][1]}条，没有第{self._bad_clauses(q)[0]}条。")
        self.follow(d, self.F["clause_two"])

    def decline_no_such_item(self, q, d, used):
        d.decline(f"附件只有第1项至第{self.max_item}项，没有第{self._bad_items(q)[0]}项。")

    def decline_no_such_batch(self, q, d, used):
        words = "、".join(b.word for b in self.profile.batches)
        d.answered = False
        d.say(f"通知只安排了{words}退出，没有其他批次。", self.clause_citation(2, tuple(f"{b.word}退出" for b in self.profile.batches)))
        self.follow(d, self.F["first_batch_when"], self.F["second_batch_when"])

    def decline_injection(self, q, d, used):
        d.decline("我只依据通知原文回答，不能改变回答规则。")

    def decline_unlinked(self, q, d, used):
        """Subjects the annex does not list, declined by name; a near annex name is said to be a different one."""
        d.answered = False
        for s in q.mentions.unlinked[:3]:
            d.parts.append(self.not_in_annex(s.name, s.near))
        d.parts.append("通知没有涉及它，我不按相近的职业推测。" if len(q.mentions.unlinked) == 1
                       else "通知没有涉及它们，我不按相近的职业推测。")
        self.follow(d, self.F["licensed"], self.F["first_batch"])

    def not_in_annex(self, name: str, near: tuple[str, ...]) -> str:
        if near:
            rows = [self.rows_by_occupation[n][0] for n in near if n in self.rows_by_occupation]
            named = "、".join(f"附件第{r.item}项有「{r.occupation}」" for r in rows)
            return f"{named}，但没有「{name}」；"
        return f"附件所列职业中没有「{name}」；"

    def decline_other_year(self, q, d, used):
        d.decline(f"这份通知只涉及{self.profile.year}年的退出安排，没有涉及{self._other_years(q)[0]}年的情况。"
                  + self._where_to_ask())

    def decline_practical(self, q, d, used):
        d.decline("这份通知没有涉及工资、费用、报名、考试安排等具体事项。" + self._where_to_ask())
        self.follow(d, self.F["validity"], self.F["future"])

    def decline_offtopic(self, q, d, used):
        d.decline(f"这个问题不在{self.profile.short_name}的范围内，我无法回答。")
        self.follow(d, self.F["example_job"], self.F["validity"])

    def ask_which_job(self, q, d, used):
        d.decline("我没能从问题中确定是附件中的哪个职业，不能替您猜它的批次。请告诉我职业（工种）名称，或在“附件目录”中查找。")
        self.follow(d, self.F["example_job"], self.F["first_batch"])

    # ---- answers -------------------------------------------------------------------------------------

    def answer_header(self, q, d, used):
        h = self.corpus.header
        values = {
            "doc_number": f"这份通知的文号是{h.doc_number}。",
            "issue_date": f"这份通知于{h.issue_date}印发。",
            "contact": f"通知注明的联系单位是{h.contact}。",
            "issuer": f"发文机关是{h.issuer}。",
            "recipients": f"通知的主送单位是：{h.recipients}。",
            "disclosure": f"通知注明“此件{h.disclosure}”。",
            "title": f"通知的标题是《{h.title}》。",
            "annex_title": f"附件是《{h.annex_title}》，列出水平评价类{self.max_item}项职业资格的职业、实施部门和批次。",
        }
        for fact in q.header_facts:
            d.say(values[fact], Citation(source="notice", clause=None, label=HEADER_LABEL, quote=self.header[fact]))
            used.append(f"header-{fact}")
        self.follow(d, self.F["summary"], self.F["first_batch_when"])

    def answer_occupations(self, q, d, used):
        m = q.mentions
        if m.occupations and SAME_ITEM.search(q.text) and q.context_from:
            items = tuple(dict.fromkeys(self.rows_by_occupation[o][0].item for o in m.occupations))
            return self.answer_items(replace(q, mentions=replace(m, occupations=(), items=items)), d, used)
        weak = [s for s in m.subjects if s.linked and is_weak(s.kind)]
        for s in weak:
            names = "、".join(f"「{n}」" for n in s.occupations)
            d.parts.append(f"按附件中的{names}理解您说的「{s.name}」：")
        rows: list[AnnexRow] = []
        # occupations that share item, departments and batch are one sentence
        groups: "OrderedDict[tuple, list[str]]" = OrderedDict()
        for name in m.occupations:
            row = self.rows_by_occupation[name][0]
            groups.setdefault((row.item, row.departments, row.batch), []).append(name)
            rows += self.rows_by_occupation[name]
        single = len(m.occupations) == 1 and not m.unlinked
        strong = all(s.kind in (MatchKind.EXACT, MatchKind.ALIAS, MatchKind.ABBREVIATION)
                     for s in m.subjects if s.linked) and not weak
        asserted = [b for b in m.batches if b != NO_BATCH]
        if single and strong and asserted and not q.injection and "category" not in q.wants:
            actual = {r.batch for r in rows}
            d.parts.append("是的，" if set(asserted) <= actual else "不是。")
        status = "status" in q.flags and any(not r.is_licensed for r in rows)
        if status:
            # what people ask first about their certificate: what happens to the one they hold, then when the
            # qualification leaves the catalogue, then how skills are evaluated afterwards
            self.say_status(d, "、".join(n for n in m.occupations if not self.rows_by_occupation[n][0].is_licensed),
                            used)
        for (item, _, batch), names in groups.items():
            item_rows = [r for r in rows if r.item == item and r.occupation in names]
            cite = self.row_citation(item, item_rows)
            batch_cites = self.batch_citations(item_rows, used)
            who = "、".join(names)
            if status and q.frame_applied:  # the row's item goes with the batch sentence; departments are not asked
                d.say(f"{who}列在附件第{item}项，{self.profile.fate(item_rows[0])}。", cite, *batch_cites)
                continue
            d.say(f"{who}{self.profile.fate(item_rows[0])}。", cite, *batch_cites)
            dup = "（附件中两行同名）" if len(self.rows_by_occupation[names[0]]) > 1 else ""
            d.say(f"{'它' if len(names) == 1 else '它们'}列在附件第{item}项「{item_rows[0].qualification}」{dup}，"
                  f"实施部门为{item_rows[0].departments_text()}。", cite)
        if len(groups) >= 2 and ({"compare", "batch", "deadline"} & q.wants):
            same = len({b for (_, _, b) in groups}) == 1
            d.parts.append("批次相同。" if same else "批次不同。")
        if len(groups) >= 2 and "departments" in q.wants:
            same = len({dep for (_, dep, _) in groups}) == 1
            d.parts.append("实施部门相同。" if same else "实施部门不同。")
        if any(r.is_licensed for r in rows) and ("category" in q.wants or len(groups) == 1):
            d.say("与公共安全、人身健康、生命财产安全等密切相关的职业拟依法调整为准入类职业资格。",
                  *self.batch_citations([r for r in rows if r.is_licensed], used))
            if q.frame_applied and q.frame == "licensing":  # 保安员改为准入类要修改法律吗: what clause 六 asks for
                self.say_law_revision(d, used)
        withdrawn = [r for r in rows if not r.is_licensed]
        if withdrawn and "category" in q.wants:
            # 评茶员证书属于水平评价类还是准入类: every annex row is a 水平评价类 qualification (clause 二), except the
            # rows to become 准入类, said above
            names = "、".join(dict.fromkeys(r.occupation for r in withdrawn))
            d.say(f"{names}是水平评价类技能人员职业资格，按通知分批退出目录，不是准入类。",
                  self.clause_citation(2, ("水平评价类",)))
            used += self.clause_sentence_ids(2, ("水平评价类",))
        extra = [t for t in q.topics if t.name in ("validity", "exam", "students", "future")
                 and not (status and t.name == "validity")]
        if withdrawn and extra:
            for t in extra[:2]:
                if status and t.name == "future":
                    self.say_short_future(d, used)
                else:
                    self.say_topic(d, t, used, q.text)
        for s in m.unlinked[:2]:
            d.parts.append(self.not_in_annex(s.name, s.near) + "通知没有涉及它。")
        if q.unsupported:
            d.answered = False
            d.parts.append("您问的其他事项（如工资、费用、报名、考试安排）通知没有涉及。")
        first = rows[0]
        self.follow(d, self.F["validity"], self.F["future"], self.F["same_item"].format(item=first.item))
        return rows

    def answer_items(self, q, d, used):
        rows: list[AnnexRow] = []
        for item in q.mentions.items:
            item_rows = self.corpus.rows_of_item(item)
            groups: "OrderedDict[tuple, list[AnnexRow]]" = OrderedDict()
            for r in item_rows:
                groups.setdefault((r.departments, r.batch), []).append(r)
            cite = self.row_citation(item, item_rows)
            batch_cites = self.batch_citations(item_rows, used)
            distinct = _names(item_rows)
            if len(groups) == 1:
                g = item_rows
                d.say(f"附件第{item}项「{g[0].qualification}」包括{len(item_rows)}个职业：{'、'.join(distinct)}，{self.profile.fate(g[0])}，"
                      f"实施部门为{g[0].departments_text()}。", cite, *batch_cites)
            else:
                d.say(f"附件第{item}项「{item_rows[0].qualification}」包括{len(item_rows)}个职业（{self.batch_summary(item_rows)}）：",
                      cite, *batch_cites)
                for (_, _), g in groups.items():
                    names = "、".join(_names(g))
                    d.parts.append(f"- {names}：{self.profile.fate(g[0])}；实施部门为{g[0].departments_text()}")
            for dept in q.mentions.departments:
                negated = "negated" in q.flags
                chosen = [r for r in item_rows if (dept in r.departments) != bool(negated)]
                names = "、".join(dict.fromkeys(r.occupation for r in chosen)) or "没有"
                d.parts.append(f"\n其中实施部门{'不包含' if negated else '包含'}{dept}的：{names}。")
            rows += item_rows
        self.follow(d, self.F["validity"], self.F["licensed"])
        return rows

    def answer_departments(self, q, d, used):
        rows: list[AnnexRow] = []
        batches = [b for b in q.mentions.batches if b != NO_BATCH]
        departments = [[x] for x in q.mentions.departments]
        if len(q.mentions.departments) >= 2 and "jointly" in q.flags:
            departments = [list(q.mentions.departments)]  # 共同负责: rows naming all of them
        # 除人社部外还有哪些部门: rows that name another department besides the one named
        excluding = "except" in q.flags and len(q.mentions.departments) == 1
        for depts in departments:
            dept = "、".join(depts) if len(depts) == 1 else "、".join(depts) + "（同时负责）"
            of_dept = [r for r in self.corpus.annex_rows
                       if (set(r.departments) - set(depts) if excluding else all(x in r.departments for x in depts))]
            dept_rows = [r for r in of_dept if not batches or r.batch in batches]
            if excluding:
                dept = f"{dept}以外的部门"
            scope = "".join(self.profile.batch_word(b) for b in batches)
            if not dept_rows:
                d.parts.append(f"附件中没有由{dept}实施的{scope}职业。")
                if not of_dept:
                    continue
                # 工信部的职业有第一批的吗 → none: what it does have, with their batches, answers the question
                dept_rows, scope, batches = of_dept, "", []
            by_item: "OrderedDict[int, list[AnnexRow]]" = OrderedDict()
            for r in dept_rows:
                by_item.setdefault(r.item, []).append(r)
            count = len(dept_rows)
            cites = [self.row_citation(item, g) for item, g in by_item.items()]
            d.say(f"附件中实施部门包含{dept}的{scope}职业共{count}个，涉及{len(by_item)}项（{self.batch_summary(dept_rows)}）：",
                  *cites[: MAX_CITATIONS - 2])
            self.list_items(d, by_item, show_batch=not batches, show_departments=excluding)
            if len(by_item) > LIST_IN_FULL:
                d.annex_filter = {"department": depts[0]}
            rows += dept_rows
        if rows:
            for c in self.batch_citations(rows, used):
                d.cite(c)
        self.follow(d, self.F["validity"], self.F["first_batch"])
        return rows

    def answer_sectors(self, q, d, used):
        """The rows corpus/sectors.csv gives for the question's sector words, narrowed by the batches and departments
        it names; said to be a lookup by sector (the notice classifies no sectors)."""
        m = q.mentions
        batches = [b for b in m.batches if b != NO_BATCH]
        words = "、".join(f"「{w}」" for w in m.sectors)
        named = [r for r in self.linker.sector_annex_rows(m.sectors) if all(x in r.departments for x in m.departments)]
        chosen = [r for r in named if not batches or r.batch in batches]
        scope = "".join(self.profile.batch_word(b) for b in batches)
        if not chosen:
            d.parts.append(f"附件中与{words}有关的职业没有{scope}的。")
            chosen, batches, scope = named, [], ""
            if not chosen:
                return []
        by_item: "OrderedDict[int, list[AnnexRow]]" = OrderedDict()
        for r in chosen:
            by_item.setdefault(r.item, []).append(r)
        count = len(chosen)
        cites = [self.row_citation(item, g) for item, g in by_item.items()]
        d.say(f"附件中与{words}有关的{scope}职业共{count}个，涉及{len(by_item)}项"
              f"（{self.batch_summary(chosen)}）：", *cites[: MAX_CITATIONS - 2])
        self.list_items(d, by_item, show_batch=not batches)
        d.parts.append("（通知没有按行业划分职业：这是按职业名称和行业对照表查找的结果，可能不全。）")
        for c in self.batch_citations(chosen, used):
            d.cite(c)
        self.follow(d, self.F["validity"], self.F["first_batch"])
        return chosen

    def list_items(self, d: Draft, by_item: "OrderedDict[int, list[AnnexRow]]", show_batch: bool,
                   show_departments: bool = False) -> None:
        """A Markdown list, one line per item (the helpdesk pastes whole lists)."""
        lines = []
        for item, g in by_item.items():
            def label(r: AnnexRow) -> str:
                notes = ([self.profile.batch_word(r.batch)] if show_batch else []) + (
                    [r.departments_text()] if show_departments else [])
                return r.occupation + (f"（{'；'.join(notes)}）" if notes else "")
            names = "、".join(label(r) for r in dict((r.occupation, r) for r in g).values())
            names = names.replace(*_same_name(g))
            lines.append(f"- 第{item}项 {g[0].qualification}：{names}")
        d.parts += lines  # the helpdesk pastes whole lists; the first sentence already gives the count

    def batch_summary(self, rows: list[AnnexRow]) -> str:
        parts = []
        for batch in (BATCH_1, BATCH_2, BATCH_LICENSED):
            names = [r for r in rows if r.batch == batch]  # rows, as the notice counts them (two rows share a name)
            if names:
                when = self.profile.deadline(batch)
                parts.append(f"{self.profile.batch_word(batch)}{len(names)}个" + (f"，拟于{when}退出" if when else ""))
        return "；".join(parts)

    def answer_batches(self, q, d, used):
        rows: list[AnnexRow] = []
        wants = q.wants
        only_when = ("deadline" in wants or "withdrawn" in wants or "batch" in wants) and not ({"list", "count"} & wants)
        for batch in q.mentions.batches:
            batch_rows = [r for r in self.corpus.annex_rows if r.batch == batch]
            by_item: "OrderedDict[int, list[AnnexRow]]" = OrderedDict()
            for r in batch_rows:
                by_item.setdefault(r.item, []).append(r)
            if batch == BATCH_LICENSED:
                names = "、".join(dict.fromkeys(r.occupation for r in batch_rows))
                d.say(f"拟依照法定程序调整为准入类职业资格的职业共{len(batch_rows)}个：{names}。"
                      "它们与公共安全、人身健康、生命财产安全等密切相关，不分批退出，而是依法调整为准入类职业资格。",
                      *self.batch_citations(batch_rows, used), *[self.row_citation(i, g) for i, g in by_item.items()])
                if "deadline" in wants:  # 准入类的调整什么时候完成: clause 二 sets one time for all of its work
                    d.say("通知第二条要求上述有关工作于今年年底前完成。", self.clause_citation(2, ("年底前完成",)))
                    used += self.clause_sentence_ids(2, ("年底前完成",))
            else:
                info = self.profile.batch(batch)
                d.say(f"{info.word}是{info.organiser}组织实施的{info.items}项职业资格（涉及{info.occupations}个职业），"
                      f"拟于{info.deadline}退出目录。",
                      self.clause_citation(2, (f"{info.word}退出",)))
                used += self.clause_sentence_ids(2, (f"{info.word}退出",))
                if not only_when:
                    d.parts.append(f"附件中标为{info.word}的有{len(by_item)}项：")
                    self.list_items(d, by_item, show_batch=False)
                    if len(by_item) > LIST_IN_FULL:
                        d.annex_filter = {"batch": batch}
                    for item, g in list(by_item.items())[: MAX_CITATIONS - 1]:
                        d.cite(self.row_citation(item, g))
            rows += batch_rows
        self.follow(d, self.F["validity"], self.F["licensed"])
        return rows

    def answer_licensing(self, q, d, used):
        """The notice withdraws 水平评价类 qualifications (clause 二); the rows to become 准入类 instead, listed, with
        why (clause 二) and what the bodies concerned must do (clause 六: revise the laws)."""
        d.say("通知安排的是水平评价类技能人员职业资格分批退出目录。", self.clause_citation(2, ("水平评价类",)))
        used += self.clause_sentence_ids(2, ("水平评价类",))
        wants = q.wants | ({"deadline"} if any(t.name == "schedule" for t in q.topics) else set())
        rows = self.answer_batches(replace(q, wants=frozenset(wants),
                                           mentions=replace(q.mentions, batches=(BATCH_LICENSED,))), d, used)
        self.say_law_revision(d, used)
        return rows

    def say_law_revision(self, d: Draft, used: list[str]) -> None:
        """Clause 六: the bodies concerned revise the laws for the rows to become 准入类."""
        d.say("通知第六条要求有关单位配合修订相关法律法规，依法调整为准入类职业资格。",
              self.clause_citation(6, ("法律法规",)))
        used += self.clause_sentence_ids(6, ("法律法规",))

    def answer_clauses(self, q, d, used):
        for n in q.mentions.clauses:
            clause = self.corpus.clause(n)
            asked = re.sub(rf"第\s*\S{{1,3}}\s*条|{CLAUSE_LABELS[n]}|通知|说了什么|讲了什么|主要内容|内容", "", q.text)
            best = self.best_passage(asked, [n])
            # "提出了哪些要求", "主要由哪些主体": the clause as a whole answers, not its best phrase
            whole = bool(_ASKS_WHOLE_CLAUSE.search(asked)) or asked.count("？") + asked.count("?") >= 2
            lead = best[3] if best and best[0] >= 2 and not whole else self.clause_summary(
                n, limit=WHOLE_CLAUSE_CHARS if whole else 160)
            d.say(f"通知{clause.label}：{lead}。", Citation(source="notice", clause=n, label=clause.label,
                                                         quote=_clean(clause.text)))
            used += [f"clause-{n}-{i}" for i in range(len(clause.sentences()))][:3]
        self.follow(d, self.F["validity"], self.F["future"])

    def clause_summary(self, n: int, limit: int = 160) -> str:
        """A clause in its own words, as much as fits: its heading, then its sentences."""
        out = ""
        for sentence in self.corpus.clause(n).sentences():
            part = _plain(sentence)
            if out and len(out) + len(part) > limit:
                break
            out += part
        return out.rstrip("。")

    def say_topic(self, d: Draft, t: Topic, used: list[str], question: str = "") -> None:
        """The topic's lead line, or the passage of the topic's clauses that carries more of what the question
        asks (保证政策不断线 for 会断线吗), in the notice's words."""
        lead = self.lead(t)
        clauses = [t.clause] + [n for n, _ in t.also]
        cites = [self.clause_citation(t.clause, t.sentence_keys)]
        used += self.clause_sentence_ids(t.clause, t.sentence_keys)
        for number, keys in t.also:
            cites.append(self.clause_citation(number, keys))
            used += self.clause_sentence_ids(number, keys)
        d.say(lead, *cites)
        best = self.best_passage(question, clauses, known=lead) if question and t.specific else None
        if best:
            score, number, index, passage = best
            if score >= 2 and passage not in lead:
                d.say(passage + "。", Citation(source="notice", clause=number, label=CLAUSE_LABELS[number],
                                              quote=_clean(self.corpus.clause(number).sentences()[index])))
                used.append(f"clause-{number}-{index}")

    def say_status(self, d: Draft, who: str, used: list[str]) -> None:
        """A named job's certificate: clause 四's rule said of that job's certificates."""
        t = TOPIC_BY_NAME["validity"]
        used += self.clause_sentence_ids(t.clause, t.sentence_keys)
        d.say(f"{who}：退出目录前已发放的职业资格证书继续有效，可作为持证者职业能力水平的证明。",
              self.clause_citation(t.clause, t.sentence_keys))

    def say_short_future(self, d: Draft, used: list[str]) -> None:
        """After the withdrawal, in one short sentence of clauses 一 and 五."""
        t = TOPIC_BY_NAME["future"]
        cites = [self.clause_citation(t.clause, t.sentence_keys)]
        used += self.clause_sentence_ids(t.clause, t.sentence_keys)
        for number, keys in t.also:
            cites.append(self.clause_citation(number, keys))
            used += self.clause_sentence_ids(number, keys)
        d.say("退出后改由用人单位和社会培训评价组织开展职业技能等级认定、颁发职业技能等级证书。", *cites)

    def lead(self, t: Topic) -> str:
        if t.name == "schedule":  # the batches and deadlines come from clause 二 through the profile
            parts = "，".join(f"{b.word}拟于{b.deadline}退出" for b in self.profile.batches)
            return f"{self.profile.year}年底前分批退出目录：{parts}；有关工作请于年底前完成。"
        return t.lead

    @staticmethod
    def overlap(question: str, text: str, known: str = "") -> int:
        """Characters of the question's content words (two characters or more) that the text contains and the
        `known` text (what the answer already says) does not."""
        return sum(len(w) for w in {w for w in tokenize(question) if len(w) >= 2} if w in text and w not in known)

    def best_passage(self, question: str, clauses: list[int], width: int = 3,
                     known: str = "") -> tuple[int, int, int, str] | None:
        """(score, clause, sentence index, passage): the run of at most `width` comma phrases of these clauses that
        shares the most content words with the question; None when no run shares a word."""
        best = None
        for n in clauses:
            sentences = self.corpus.clause(n).sentences()
            for index, sentence in enumerate(sentences):
                if n and index == 0 and len(sentences) > 1:
                    continue  # a numbered clause opens with its heading: a title, not an answer
                phrases = [p for p in re.split(r"[，；。]", _plain(sentence)) if p]
                for i in range(len(phrases)):
                    for j in range(i + 1, min(len(phrases), i + width) + 1):
                        passage = "，".join(phrases[i:j])
                        if i > 0 and _OPENING_TIME.fullmatch(phrases[0]):
                            passage = f"{phrases[0]}，{passage}"  # the time the sentence opens with goes along
                        score = self.overlap(question, passage, known)
                        # the shortest run with the best score: no padding phrases
                        if score and (best is None or score > best[0] or score == best[0] and len(passage) < len(best[3])):
                            best = (score, n, index, passage)
        return best

    def answer_topics(self, q, d, used):
        topics = [t for t in q.topics if t.specific] + [t for t in q.topics if not t.specific]
        for t in topics[:2]:
            self.say_topic(d, t, used, q.text)
        others = {"validity": self.F["validity"], "exam": self.F["exam"], "future": self.F["future"],
                  "law": self.F["licensed"]}
        self.follow(d, *[v for k, v in others.items() if k not in {t.name for t in topics}])

    def answer_overview(self, q, d, used):
        rows = self.corpus.annex_rows
        b1, b2 = self.profile.batch(BATCH_1), self.profile.batch(BATCH_2)
        licensed = [r for r in rows if r.is_licensed]
        d.say(f"附件列出水平评价类{self.max_item}项职业资格。", Citation(source="notice", clause=None, label=HEADER_LABEL,
                                                                 quote=self.header["annex_title"]))
        d.say(f"按通知第二条，{b1.word}{b1.items}项（涉及{b1.occupations}个职业）拟于{b1.deadline}退出，"
              f"{b2.word}{b2.items}项（涉及{b2.occupations}个职业）拟于{b2.deadline}退出；"
              f"另有{len(licensed)}个职业拟依法调整为准入类职业资格。",
              self.clause_citation(2, (f"{b1.word}退出", f"{b2.word}退出")))
        d.parts.append(f"两批合计{b1.occupations + b2.occupations}个职业（{b1.occupations}+{b2.occupations}）。"
                       f"注意：{b1.items}+{b2.items}={b1.items + b2.items}项多于附件的{self.max_item}项，"
                       f"因为第{self.mixed_items_text()}项的同一项中既有第一批又有第二批的职业。")
        used += self.clause_sentence_ids(2, (f"{b1.word}退出", f"{b2.word}退出")) + ["header-annex_title"]
        self.follow(d, self.F["first_batch"], self.F["licensed"])

    def mixed_items(self) -> list[int]:
        return [i for i in self.corpus.item_numbers()
                if len({r.batch for r in self.corpus.rows_of_item(i)} & {BATCH_1, BATCH_2}) == 2]

    def mixed_items_text(self) -> str:
        return "、".join(str(i) for i in self.mixed_items())

    def answer_mixed_items(self, q, d, used):
        rows: list[AnnexRow] = []
        items = [i for i in self.corpus.item_numbers() if len({r.batch for r in self.corpus.rows_of_item(i)}) >= 2]
        cites = [self.row_citation(i, self.corpus.rows_of_item(i)) for i in items]
        d.say(f"附件中有{len(items)}项的职业分属不同批次，批次要按职业看：", *cites[:MAX_CITATIONS - 1])
        for item in items:
            item_rows = self.corpus.rows_of_item(item)
            groups: "OrderedDict[str, list[str]]" = OrderedDict()
            for r in item_rows:
                groups.setdefault(self.profile.batch_word(r.batch), []).append(r.occupation)
            d.parts.append(f"- 第{item}项 {item_rows[0].qualification}：" + "；".join(
                f"{w} {'、'.join(dict.fromkeys(n))}" for w, n in groups.items()))
            rows += item_rows
        return rows

    def answer_notice_sentence(self, q, d, used):
        """The notice sentence the trained ranker is sure answers (quoted, cited); otherwise the next route answers.
        What a clause named by number says as a whole (第一条讲的是啥) is that clause in its own words."""
        if q.mentions.clauses and any(t.name == "summary" for t in q.topics):
            return self.answer_clauses(q, d, used)
        if not self.say_sentence(q, d, used):
            return next(r for r in self.routes if r.name != "notice_sentence" and r.when(q)).handler(q, d, used)

    def say_sentence(self, q, d, used) -> bool:
        # a question the frame model is sure asks what the notice body says is not declined for want of a sure
        # sentence: the best one is quoted (a notice sentence, cited, states no fact about another job)
        floor = NOTICE_SENTENCE_FLOOR if q.frame_applied and q.frame == "notice_content" else None
        pick = self.sentences.pick(q.text, floor) if self.sentences is not None else None
        if pick is None:
            return False
        u = pick.unit
        d.say(f"通知{u.label}：{pick.text.rstrip('。；：')}。", Citation(
            source="notice", clause=u.clause, label=u.label, quote=_clean("".join(x.sentence for x in pick.units))))
        used += [f"clause-{x.clause}-{x.index}" for x in pick.units]
        self.follow(d, self.F["validity"], self.F["future"])
        return True

    def answer_from_retrieval(self, q, d, used):
        """No rule recognised the question: quote the best clause sentence when the two retrievers agree on it,
        decline when they do not (a rank test, not a raw score: the embedding scores sit in a narrow band). The
        trained sentence ranker's sentence, when it is sure, goes first (also where the retrievers do not agree, if
        the frame model took the question for an answerable one)."""
        hits = [e for e in self.confident_clause_hits(q.text) if self.overlap(q.text, e.text) >= 2]
        best = self.best_passage(q.text, list(range(len(self.corpus.clauses))))
        distinctive = best and any(len(w) >= 2 and w in best[3] and self._sentence_frequency(w) == 1
                                   for w in tokenize(q.text))
        table = self.understanding.frame_table
        answerable = q.frame_applied and table is not None and q.frame in table.frames and not table.frames[q.frame].decline
        if not (q.injection or q.declines_by_meaning) and (hits or distinctive or answerable) \
                and self.say_sentence(q, d, used):
            return
        if q.injection or q.declines_by_meaning or not (hits or distinctive):
            return self.decline_offtopic(q, d, used)
        if hits:
            e = hits[0]
            number, index = e.clause, int(e.doc_id.rsplit("-", 1)[1])
            best = self.best_passage(q.text, [number]) or best
        _, number, index, passage = best
        sentence = self.corpus.clause(number).sentences()[index]
        d.say(f"通知{CLAUSE_LABELS[number]}：{passage}。", Citation(source="notice", clause=number,
                                                                label=CLAUSE_LABELS[number], quote=_clean(sentence)))
        used.append(f"clause-{number}-{index}")
        self.follow(d, self.F["validity"], self.F["future"])

    def _sentence_frequency(self, word: str) -> int:
        return sum(word in s for c in self.corpus.clauses for s in c.sentences())

    def confident_clause_hits(self, text: str, depth: int = 3):
        """Clause sentences both retrievers rank among their first `depth` of all documents."""
        bm25 = [doc for doc, _ in self.retriever.bm25_ranking(text, depth) if doc.startswith("clause-")]
        dense = [doc for doc, _ in self.retriever.dense_ranking(text, depth) if doc.startswith("clause-")]
        agreed = [doc for doc in bm25 if doc in dense]
        by_id = {u.doc_id: u for u in self.retriever.units}
        return [by_id[doc] for doc in agreed]


NOTICE_SENTENCE_FLOOR = 0.2  # the sentence ranker's probability enough under an applied notice_content frame


# Routes whose handlers read only the interpretation's fields (not the ask's own words): their asks can be merged.
_MERGED_ROUTES = frozenset({"occupations", "items", "departments", "batches", "header_fact", "subject_not_in_annex",
                            "licensing"})


def _union(*seqs):
    return tuple(dict.fromkeys(x for seq in seqs for x in seq))


def _only_jobs(m: Mentions, named: set[str]) -> Mentions:
    """A part's mentions with only the jobs the whole message names (and the spans the annex lacks)."""
    subjects = tuple(s for s in m.subjects if not s.linked or set(s.occupations) <= named)
    return replace(m, occupations=tuple(o for o in m.occupations if o in named), subjects=subjects,
                   fuzzy=tuple(f for f in m.fuzzy if f[1] in named))


def _merged(asks: list[Ask]) -> list[Ask]:
    """Asks of one message that take the same route are answered once, with what each asks (电工哪批？还有效吗？):
    the handler would otherwise say the same job's, header's or decline's sentences once for each ask."""
    groups: "OrderedDict[str, list[Ask]]" = OrderedDict()
    for n, a in enumerate(asks):
        groups.setdefault(a.route.name if a.route.name in _MERGED_ROUTES else str(n), []).append(a)
    out = []
    for same in groups.values():
        if len(same) == 1:
            out += same
            continue
        qs = [a.q for a in same]
        ms = [q.mentions for q in qs]
        seen, subjects = set(), []
        for s in (s for m in ms for s in m.subjects):
            if s.name not in seen:
                seen.add(s.name)
                subjects.append(s)
        m = replace(ms[0], occupations=_union(*(m.occupations for m in ms)), items=_union(*(m.items for m in ms)),
                    departments=_union(*(m.departments for m in ms)), batches=_union(*(m.batches for m in ms)),
                    clauses=_union(*(m.clauses for m in ms)), fuzzy=_union(*(m.fuzzy for m in ms)),
                    sectors=_union(*(m.sectors for m in ms)), subjects=tuple(subjects),
                    unknown_names=_union(*(m.unknown_names for m in ms)))
        q = replace(qs[0], mentions=m, wants=frozenset().union(*(q.wants for q in qs)),
                    topics=_union(*(q.topics for q in qs)), header_facts=_union(*(q.header_facts for q in qs)),
                    flags=frozenset().union(*(q.flags for q in qs)), unsupported=all(q.unsupported for q in qs))
        out.append(Ask(q, same[0].route, any(a.names_subject for a in same)))
    return out


def _names(rows: list[AnnexRow]) -> list[str]:
    """The rows' occupation names in order; a name printed on two rows (item 25 of the scan) is said once, marked."""
    counts = Counter(r.occupation for r in rows)
    return [n + ("（附件中两行同名）" if counts[n] > 1 else "") for n in dict.fromkeys(r.occupation for r in rows)]


def _same_name(rows: list[AnnexRow]) -> tuple[str, str]:
    """(name, name marked) for a name printed on two of these rows, for a list line; ("", "") when none."""
    twice = [n for n, k in Counter(r.occupation for r in rows).items() if k > 1]
    return (twice[0], twice[0] + "（附件中两行同名）") if twice else ("", "")


def _plain(sentence: str) -> str:
    """A clause sentence as an answer: without its clause numeral and the scan's spaces."""
    return re.sub(r"^[一二三四五六七八九十]+、", "", _clean(sentence))


def _clean(sentence: str) -> str:
    """A clause sentence for reading: the scan's spaces around numbers removed."""
    return re.sub(r"\s*(\d+)\s*", r"\1", sentence)


__all__ = ["GroundedAnswerer", "Route", "Draft", "TOPICS", "TOPIC_BY_NAME"]
