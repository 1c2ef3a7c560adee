"""Understand stage: what a question (with its history) is about and what it asks.

Subjects first: the linker finds every span that names a job, qualification or certificate and says how it was
linked (exact, alias, abbreviation, typo, cue, none). Then what is asked: the frame model trained on the question
bank (assistant/frames.py) decides, reading the reviewed patterns (corpus/patterns.json: attribute cues, topics,
header facts, flags) and the links as features; the patterns then fill its slots (which topic, which header fact).
Below the frame model's calibrated confidence threshold the pattern reading stands. A follow-up borrows the subject
of an earlier turn only when it names none of its own."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .frames import FrameGuess, FrameModel, FrameTable, masked
from .intents import DECLINE_INTENTS, IntentClassifier
from .link import EntityLinker, MatchKind, Mentions, SubjectLink, chinese_number, is_cjk
from .config import REPO_ROOT
from .normalize import latin_share, normalize
from .profile import NoticeProfile
from .records import AnnexRow, Corpus, Turn

PATTERNS_FILE = "patterns.json"


def _compiled(spec: dict) -> re.Pattern:
    return re.compile(spec["pattern"], re.I if spec.get("ignore_case") else 0)


def load_patterns(path: Path) -> dict:
    """corpus/patterns.json: the reviewed pattern tables, compiled (a bad pattern names itself)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return {
            "wants": {k: _compiled(v) for k, v in data["wants"].items()},
            "flags": {k: _compiled(v) for k, v in data["flags"].items()},
            "header_facts": [(h["name"], _compiled(h)) for h in data["header_facts"]],
            "topics": [Topic(name=t["name"], pattern=_compiled(t), clause=int(t["clause"]),
                             sentence_keys=tuple(t["sentence_keys"]), lead=t["lead"],
                             also=tuple((int(n), tuple(k)) for n, k in t.get("also", ())),
                             specific=bool(t.get("specific", True))) for t in data["topics"]],
        }
    except (KeyError, re.error) as exc:
        raise ValueError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class Topic:
    """A subject of the notice body, found by its words, answered by its lead line and the sentences that carry it."""

    name: str
    pattern: re.Pattern
    clause: int
    sentence_keys: tuple[str, ...]  # a sentence is quoted when it contains one of these
    lead: str  # the direct answer, in plain words
    also: tuple[tuple[int, tuple[str, ...]], ...] = ()  # further (clause, sentence keys) the topic rests on
    specific: bool = True  # answers a question about an occupation too (已发的证还有效吗)


_P = load_patterns(REPO_ROOT / "corpus" / PATTERNS_FILE)
_WANTS_RE: dict[str, re.Pattern] = _P["wants"]
_F: dict[str, re.Pattern] = _P["flags"]
_UNSUPPORTED, _INJECTION, PROMPT_LEAK, _FOLLOW_UP = _F["unsupported"], _F["injection"], _F["prompt_leak"], _F["follow_up"]
_OTHER_BATCH, SAME_ITEM, _THAT_BODY, _NARROWING = _F["other_batch"], _F["same_item"], _F["that_body"], _F["narrowing"]
_COMPARED_TO, _HOLDS, _ALSO, _LISTING, _YES_NO = _F["compared_to"], _F["holds"], _F["also"], _F["listing"], _F["yes_no"]
COUNTED, ABOUT_NOTICE = _F["counted"], _F["about_notice"]
_HEADER_RE: list[tuple[str, re.Pattern]] = _P["header_facts"]
HEADER_INTENTS = frozenset(k for k, _ in _HEADER_RE)
TOPICS: list[Topic] = _P["topics"]
TOPIC_BY_NAME = {t.name: t for t in TOPICS}
WANT_NAMES = frozenset(_WANTS_RE)
# What the notice can tell about an occupation; a question asking none of these about one is a practical matter.
ANSWERABLE_WANTS = frozenset({"batch", "deadline", "departments", "item", "category", "withdrawn", "validity", "future",
                              "students", "compare", "list", "count", "exam"})
# Flags of a question's wording the answer stage reads (it never reads the raw text for them).
READ_FLAGS = ("except", "jointly", "mixed", "own_job", "overview", "overview_why", "negated", "sector")
# Flags the frame model sets: status — a named job's certificate status is asked (clause 四 said of that job)
_CORE_HEADER = frozenset({"doc_number", "issuer", "issue_date"})  # what a document is cited by
_CONTENT_POS = frozenset("nvail")  # jieba POS: nouns, verbs, adjectives, idioms, fixed phrases
_LAST_CLAUSE = re.compile(r"[，,。？?！!；;]")
# Frames that ask about the notice, not about a job: an unlinked span in such a question is no subject.
NOTICE_LEVEL_FRAMES = frozenset({"validity", "future", "exam", "students", "notice_fact", "notice_content", "count"})


@dataclass(frozen=True)
class Interpretation:
    text: str  # normalised question
    mentions: Mentions
    wants: frozenset[str]
    topics: tuple[Topic, ...]
    header_facts: tuple[str, ...]
    unsupported: bool  # asks a practical matter the notice does not cover
    injection: bool
    intent: str | None = None  # by meaning (nearest exemplars), when the cue patterns found none
    compared_to_linked: bool = False  # the first subject is unlinked and a linked one is only its yardstick
    context_from: str | None = None  # the earlier question a follow-up was resolved against
    frame: str | None = None  # what is asked, by the trained frame model (corpus/frames.json)
    confidence: float = 0.0  # calibrated probability of `frame`
    frame_applied: bool = False  # the frame decided the fields above (confidence reached the table's minimum)
    flags: frozenset[str] = frozenset()  # the READ_FLAGS patterns (corpus/patterns.json) the question's words fire

    def has_anchor(self) -> bool:
        m = self.mentions
        return bool(m.has_subject() or m.batches or m.clauses or self.header_facts or self.topics)

    @property
    def linked_subjects(self):
        return tuple(s for s in self.mentions.subjects if s.linked)

    @property
    def declines_by_meaning(self) -> bool:
        return self.intent in DECLINE_INTENTS


_CLAUSE_ENDS = frozenset("，。？！；,.?!;")


def _apart(text: str, m: Mentions) -> bool:
    """No linked subject stands in the same clause (between punctuation) as a subject the annex lacks."""
    folded = "".join(text.split()).lower()  # the linker's positions are in the text without spaces

    def clause(s: SubjectLink) -> int:
        return sum(ch in _CLAUSE_ENDS for ch in folded[: s.start])

    unlinked = {clause(s) for s in m.subjects if not s.linked}
    return bool(unlinked) and not unlinked & {clause(s) for s in m.subjects if s.linked}


class Understanding:
    """The understand stage: a typed Interpretation of one question with its history."""

    def __init__(self, corpus: Corpus, linker: EntityLinker, profile: NoticeProfile,
                 intents: IntentClassifier | None = None, frames: FrameModel | None = None,
                 frame_table: FrameTable | None = None) -> None:
        self.corpus = corpus
        self.linker = linker
        self.profile = profile
        self.intents = intents
        self.frames = frames
        self.frame_table = frame_table
        self.rows_by_occupation: dict[str, list[AnnexRow]] = {}
        for row in corpus.annex_rows:
            self.rows_by_occupation.setdefault(row.occupation, []).append(row)
        self._batch_counts = {str(n): b.batch for b in profile.batches for n in (b.items, b.occupations)}
        # what may be glued to an annex name without naming another job: level and certificate words, particles
        glue = sorted(set(profile.level_words) | set(profile.certificate_heads) | set("嘅的个那这我俺级"), key=len,
                      reverse=True)
        self._GLUE = re.compile("|".join(map(re.escape, glue)))
        self._JOB_HEADS = tuple(profile.occupation_heads)
        self._max_item = max(corpus.item_numbers())
        self._QUALIFICATION_HEADS = ("职业资格", "资格", "执照", "执业证")
        # every character run of the notice (body, header, annex): a content word outside it is a matter the notice
        # never speaks of (年审, 落户, 通过率) — how many a question has is a signal of the frame model
        self._notice_text = re.sub(r"\s+", "", "".join(c.text for c in corpus.clauses) + "".join(
            r.occupation + r.qualification + "".join(r.departments) for r in corpus.annex_rows))

    def novel_words(self, text: str) -> list[str]:
        """Content words of the question (nouns, verbs, adjectives, idioms; two characters or more) the notice never
        uses."""
        import jieba.posseg

        return [w for w, pos in jieba.posseg.lcut(text) if len(w) >= 2 and pos[:1] in _CONTENT_POS
                and is_cjk(w) and w not in self._notice_text]

    def run(self, question: str, history: list[Turn]) -> Interpretation:
        current = self.read(normalize(question))
        # the frame is read from this turn (with a signal that there is history) and decides what it asks before
        # the follow-up is resolved, so "who implements that one?" carries the earlier job for the asked attribute
        return self.resolve(self.decide(current, self.guess_frame(current, history)), history)

    # ---- the frame: learned from the question bank, patterns and links are its features --------------------

    def dense(self, q: Interpretation) -> list[float] | None:
        """The question's e5 vector (the same call, and cache entry, the exemplar intents use)."""
        return self.intents.embeddings.embed_query(q.text) if self.intents is not None else None

    def frame_input(self, q: Interpretation, history: list[Turn]) -> tuple[str, tuple[str, ...]]:
        """The masked question and the signals the frame model reads (assistant/frames.py)."""
        m = q.mentions
        spans = []
        lowered = q.text.lower()
        forms = [s.span for s in m.subjects if s.linked] + list(m.occupations) + list(m.departments)
        for form in forms:
            start = lowered.find(form.lower()) if form else -1
            if start >= 0:
                spans.append((start, start + len(form)))
        signals = [f"want:{w}" for w in sorted(q.wants)] + [f"topic:{t.name}" for t in q.topics]
        signals += [f"header:{h}" for h in q.header_facts]
        kinds = sorted({s.kind.value for s in m.subjects})
        signals += [f"link:{k}" for k in kinds]
        if m.occupations:
            signals.append("jobs:1" if len(m.occupations) == 1 else "jobs:2+")
        if m.unlinked:
            signals.append("unlinked")
            if any(s.name.endswith(("师", "员", "工")) for s in m.unlinked):
                signals.append("unlinked:head")
        for name, present in (("items", m.items), ("batches", m.batches), ("clauses", m.clauses),
                              ("departments", m.departments), ("sectors", m.sectors and "sector" in q.flags)):
            if present:
                signals.append(name)
        if any(n > self._max_item or n < 1 for n in m.items):
            signals.append("items:bad")
        if any(c > 6 for c in m.clauses):
            signals.append("clauses:bad")
        if "none" in m.batches:
            signals.append("batches:bad")
        for flag, present in (("unsupported", q.unsupported), ("injection", q.injection),
                              ("prompt_leak", bool(PROMPT_LEAK.search(q.text))), ("follow_up", bool(_FOLLOW_UP.search(q.text))),
                              ("about_notice", bool(ABOUT_NOTICE.search(q.text))), ("holds", bool(_HOLDS.search(q.text))),
                              ("yes_no", bool(_YES_NO.search(q.text))), ("compared", q.compared_to_linked)):
            if present:
                signals.append(flag)
        novel = self.novel_words(q.text)
        signals += [f"novel:{k}" for k in (1, 2, 3) if len(novel) >= k]
        last = _LAST_CLAUSE.split(q.text.rstrip("？?。！!～~ "))[-1]
        if any(w in last for w in novel):
            signals.append("novel:last")
        if q.intent:
            signals.append(f"exemplar:{q.intent}")
        if any(t.role == "user" for t in history):
            signals.append("history")
        return masked(q.text, spans), tuple(signals)

    def guess_frame(self, q: Interpretation, history: list[Turn]) -> FrameGuess | None:
        if self.frames is None:
            return None
        text, signals = self.frame_input(q, history)
        return self.frames.predict(text, signals, self.dense(q))

    def reread_unlinked(self, m: Mentions, notice_level: bool) -> Mentions:
        """Unlinked spans of a question the frame model reads as answerable (not as a job the annex lacks):
        - an annex name with only level, certificate or particle words glued to it (钳工高级证, 嘅钳工,
          企业人力资源管理师三级) is that occupation;
        - a span that does not end like a job name (那本, 电梯, 换成职业技能等级) is no subject;
        - in a question about the notice itself, no unlinked job-like span is a subject (下个月, 我们单位同事).
        A span that ends like a job name (电焊工, 医疗美容师) stays unlinked and is declined by name, and so does
        another qualification system (法律职业资格) in any question."""
        kept, occupations = [], list(m.occupations)
        for s in m.subjects:
            if s.linked:
                kept.append(s)
                continue
            inside = [n for n in s.near if n in s.name and not self._GLUE.sub("", s.name.replace(n, "", 1))]
            if len(inside) == 1:
                kept.append(replace(s, kind=MatchKind.ALIAS, occupations=(inside[0],), near=()))
                occupations.append(inside[0])
            elif s.name in m.sectors:
                continue  # 有哪些化工职业: a sector the list is narrowed by, not a job
            elif any(h in s.span for h in self._QUALIFICATION_HEADS) or not notice_level and s.name.endswith(
                    self._JOB_HEADS):
                kept.append(s)  # (法律职业资格 is another qualification system, declined by name even here)
        kept_t = tuple(kept)
        return replace(m, subjects=kept_t, occupations=tuple(dict.fromkeys(occupations)),
                       unknown_names=tuple(s.name for s in kept_t if not s.linked))

    def decide(self, q: Interpretation, guess: FrameGuess | None) -> Interpretation:
        """The frame model's reading sets what is asked when its calibrated confidence reaches the table's minimum;
        below it, the pattern reading stands. Hard guards (no such item, clause or batch) stay rules."""
        if guess is None or self.frame_table is None:
            return q
        q = replace(q, frame=guess.frame, confidence=guess.confidence)
        spec = self.frame_table.frames.get(guess.frame)
        if spec is None:
            return q
        if guess.confidence < self.frame_table.min_confidence:
            if spec.status and spec.add_from is not None and guess.confidence >= spec.add_from:
                return replace(q, flags=q.flags | {"status"})  # (only adds the named job's certificate status)
            return q
        if spec.min_confidence_latin is not None and latin_share(q.text) >= 0.5 and (
                guess.confidence < spec.min_confidence_latin):
            return q
        wants, topics, m = set(q.wants), list(q.topics), q.mentions
        intent = q.intent if q.intent not in DECLINE_INTENTS else None
        if spec.decline == "practical":
            return replace(q, unsupported=True, intent="practical", wants=frozenset(), frame_applied=True,
                           topics=(), header_facts=())
        if spec.decline == "offtopic":
            return replace(q, intent="offtopic", topics=(), header_facts=(), wants=frozenset(), frame_applied=True)
        if spec.decline == "injection":
            return replace(q, injection=True, frame_applied=True)
        if spec.decline == "not_in_annex" and m.occupations and all(is_weak(s.kind) for s in m.subjects if s.linked):
            # the job asked about is not in the annex, and the only links are guesses (a near sound, a shorter
            # name, a described task): the guess is not taken as the job asked about
            unlinked = tuple(replace(s, kind=MatchKind.NONE, near=s.occupations, occupations=())
                             if s.linked else s for s in m.subjects)
            m = replace(m, occupations=(), fuzzy=(), subjects=unlinked, unknown_names=tuple(s.name for s in unlinked))
            return replace(q, mentions=m, frame_applied=True)
        if spec.decline == "not_in_annex" and m.unlinked and _apart(q.text, m):
            # 育婴员我知道在名单里，家政服务员在不在？ — the job asked about is the one the annex lacks; the linked
            # ones stand in other clauses, as context (焊工和电工分别是第几批 asks both: answered and declined)
            return replace(q, frame_applied=True, flags=q.flags | {"unlinked_asked"})
        if spec.decline in ("not_in_annex", "false_premise"):
            return replace(q, frame_applied=True)  # the linker's and the guards' findings decline it
        # an answerable frame: what the patterns took for a practical matter or an injection is not one
        wants |= set(spec.wants)
        if (spec.topics or spec.header or guess.frame in ("notice_content", "licensing")) and not m.clauses:
            wants -= {"list", "count"}  # (a clause named by number is asked about as a whole: 第三条提出了哪些要求)
        for name in reversed(spec.topics):
            t = TOPIC_BY_NAME[name]
            if t in topics:
                topics.remove(t)
            topics.insert(0, t)
        if not spec.status and guess.frame not in ("validity", "future", "exam", "students", "notice_content",
                                                   "notice_fact", "licensing"):
            # an attribute of a job, a list or a count: the notice-body topics the patterns saw are not the ask
            topics = [t for t in topics if not t.specific] if (m.occupations or m.items or m.batches
                                                                or m.departments) else topics
        if m.unlinked:
            m = self.reread_unlinked(m, notice_level=guess.frame in NOTICE_LEVEL_FRAMES)
        header = q.header_facts if spec.header or guess.frame in ("notice_fact", "notice_content") else ()
        if guess.frame == "notice_fact" and not set(header) - _CORE_HEADER - {"title"}:
            # 落款单位和日期, 印发年份和具体日期, 80号文全文: the document's core facts together, whichever was asked
            header = tuple(dict.fromkeys(header + tuple(sorted(_CORE_HEADER))))
        flags = q.flags - {"own_job"} if guess.frame in NOTICE_LEVEL_FRAMES else q.flags
        flags = flags | {"status"} if spec.status else flags
        return replace(q, wants=frozenset(wants), topics=tuple(topics), intent=intent, unsupported=False,
                       header_facts=header, flags=flags,
                       injection=q.injection and bool(PROMPT_LEAK.search(q.text)), mentions=m, frame_applied=True)

    def read(self, text: str) -> Interpretation:
        mentions = self.linker.run(text)
        # A count the notice gives for a batch (14项, 156个职业) names that batch.
        counted = [self._batch_counts[n] for n in _F["count_of_batch"].findall(text) if n in self._batch_counts]
        if counted:
            mentions = replace(mentions, batches=tuple(dict.fromkeys(mentions.batches + tuple(counted))),
                               departments=())
        wants = frozenset(k for k, rx in _WANTS_RE.items() if rx.search(text))
        if mentions.roles and set(mentions.occupations) <= set(mentions.roles) and not wants & ANSWERABLE_WANTS:
            # 我是德资企业的HR。请问本通知是由哪个机关发布的: the role word is who asks; nothing is asked of that job
            mentions = replace(mentions, occupations=(), roles=())
        if len(mentions.occupations) >= 2 and _F["joined"].search(text):
            wants |= {"compare"}
        has_subject = mentions.has_subject()
        topics = tuple(t for t in TOPICS if t.pattern.search(text))
        header = tuple(k for k, rx in _HEADER_RE if rx.search(text))
        if "annex_title" in header:
            header = tuple(h for h in header if h != "title")
        if "issue_date" in header and not _F["asks_who"].search(text):
            header = tuple(h for h in header if h != "issuer")  # 是8月份发的吧 asks when, not who
        if (has_subject or mentions.batches) and not ABOUT_NOTICE.search(text):
            header = tuple(h for h in header if h not in ("title", "disclosure", "issuer", "recipients"))
        intent = None
        asks_something_known = bool(wants & (ANSWERABLE_WANTS - {"count"}) or COUNTED.search(text) or topics or header or mentions.batches
                                    or mentions.clauses or mentions.items)
        if self.intents is not None:
            guess = self.intents.classify(text).intent
            if guess in DECLINE_INTENTS and not asks_something_known:
                intent = guess
            elif guess and guess not in DECLINE_INTENTS and not (topics or header) and not (
                    wants & {"count", "list", "batch", "departments", "item"}):
                if guess in TOPIC_BY_NAME:
                    intent, topics = guess, (TOPIC_BY_NAME[guess],)
                elif guess in HEADER_INTENTS and ABOUT_NOTICE.search(text):
                    intent, header = guess, (guess,)
        subjects = mentions.subjects
        unlinked = [s for s in subjects if not s.linked]
        linked = [s for s in subjects if s.linked]
        # (three or more jobs named are a list to answer one by one, not a job and its yardstick)
        listing = bool(_LISTING.search(text)) or len(subjects) >= 3
        # The subject asked about is the unlinked one and the linked names are only its yardstick or premise:
        # "X 跟 Y 一样吗", "Y 第二批，X 是否也…", "持有 X 证书，是否涉及" with Y an annex name.
        # "我司HR持有中级经济师证书": a role named outside any job span (HR, an alias) holds the certificate asked
        # about; with no linked job span, the unlinked certificate is the subject.
        held = bool(unlinked and not linked and mentions.occupations and _HOLDS.search(text[:unlinked[0].start]))
        compared = held or bool(unlinked and linked and not listing and (
            _COMPARED_TO.search(text) or _ALSO.search(text) or (
                any(s.span != s.name for s in unlinked) and not any(s.span != s.name for s in linked)
                # (a job described in words, 装空调修空调的, is the one the unlinked name tries to say)
                and not any(s.kind is MatchKind.CUE for s in linked) and _YES_NO.search(text))))
        return Interpretation(
            text=text, mentions=mentions, wants=wants, topics=topics, header_facts=header,
            flags=frozenset(f for f in READ_FLAGS if _F[f].search(text)),
            unsupported=any(not any(t.pattern.fullmatch(m.group()) for t in TOPICS) for m in _UNSUPPORTED.finditer(text)),
            injection=bool(_INJECTION.search(text)),
            intent=intent, compared_to_linked=compared,
        )

    def resolve(self, current: Interpretation, history: list[Turn]) -> Interpretation:
        """A follow-up borrows the subject (and, when it asks nothing new, the question) of an earlier turn.

        A subject named in the current turn always wins: a new name, even one the annex lacks, is never
        replaced by the one carried from history."""
        users = [t.content for t in history if t.role == "user"]
        if not users:
            return current
        m = current.mentions
        body = _THAT_BODY.search(current.text)
        if body and not (m.departments or m.subjects or m.occupations or m.items):
            # 这个单位还负责哪些…: the department(s) of the job the conversation was about; 第一个单位: the first
            ordinal = chinese_number(body.group(1)[1:-1]) if body.group(1).startswith("第") else None
            for earlier in reversed(users):
                pm = self.read(normalize(earlier)).mentions
                depts = tuple(dict.fromkeys(d for o in pm.occupations for r in self.rows_by_occupation.get(o, [])
                                            for d in r.departments)) or pm.departments
                if ordinal and ordinal <= len(depts):
                    depts = (depts[ordinal - 1],)
                if depts:
                    return replace(current, mentions=replace(m, departments=depts), context_from=earlier)
        described = _F["described_job"].search(current.text)
        if described and not (m.subjects or m.occupations or m.items or m.departments):
            # 我老婆是做保洁的，她的证呢: a job described in this turn that the annex does not name is the subject;
            # the job of an earlier turn is never answered in its place
            gone = SubjectLink(span=described.group(0), name=described.group(0), kind=MatchKind.NONE,
                               start=described.start())
            return replace(current, mentions=replace(m, subjects=(gone,), unknown_names=(gone.name,)))
        names_own_subject = bool(m.subjects or m.occupations or m.items)
        same_item = bool(SAME_ITEM.search(current.text)) and not names_own_subject
        if _OTHER_BATCH.search(current.text) and not m.batches:
            needs_subject = True
        else:
            needs_subject = False
        needs_subject = needs_subject or same_item or not (names_own_subject or m.departments or m.batches or m.clauses
                                          or current.header_facts) and (
            current.wants or _FOLLOW_UP.search(current.text) or SAME_ITEM.search(current.text))
        if current.frame_applied and current.frame in NOTICE_LEVEL_FRAMES and not (
                same_item or _FOLLOW_UP.search(current.text)):
            # 退出后怎么评价技能？ after a job: a question about the notice that does not point back at the job is
            # answered for the notice, not led by the earlier job's batch
            needs_subject = False
        needs_question = (m.has_subject() or m.batches) and not m.unlinked and not (current.wants - {"withdrawn"}) and (
            len(current.text) <= 14 or _FOLLOW_UP.search(current.text)) and not current.topics
        narrows = bool(_NARROWING.match(current.text)) and not names_own_subject
        if narrows and not m.departments:
            needs_subject = True  # 它们的实施部门一样吗？ — the subject of the earlier turn, whatever it was
        if not (needs_subject or needs_question or narrows):
            return current
        for earlier in reversed(users):
            prev = self.read(normalize(earlier))
            pm = prev.mentions
            if _OTHER_BATCH.search(current.text) and len(set(pm.batches)) == 1:
                others = tuple(b.batch for b in self.profile.batches if b.batch not in pm.batches)
                return replace(current, mentions=replace(m, batches=others), context_from=earlier)
            if narrows and (pm.items or pm.batches) and not pm.occupations:
                items = pm.items or tuple(dict.fromkeys(self.rows_by_occupation[o][0].item for o in pm.occupations))
                return replace(current, mentions=replace(m, items=items, batches=m.batches or pm.batches),
                               context_from=earlier)
            if needs_subject and (pm.occupations or pm.items):
                # 森林的那个呢？ after 消防员: a part of another name in the same item picks that occupation.
                items = set(pm.items) | {self.rows_by_occupation[o][0].item for o in pm.occupations}
                neighbours = {r.occupation for r in self.corpus.annex_rows if r.item in items} - set(pm.occupations)
                picked = self.linker.by_name_parts(current.text, among=neighbours) if neighbours else None
                if picked:
                    return replace(current, mentions=replace(m, occupations=(picked[1],)), context_from=earlier)
            if needs_subject and (pm.has_subject() or pm.batches):
                carried = tuple(s for s in pm.subjects if s.linked)
                return replace(current, mentions=replace(
                    m, occupations=pm.occupations, items=pm.items, departments=pm.departments,
                    batches=m.batches if same_item else pm.batches, fuzzy=pm.fuzzy, subjects=carried),
                    context_from=earlier)
            if needs_question and (prev.wants or prev.topics):
                return replace(current, wants=current.wants | prev.wants,
                               topics=current.topics or prev.topics, context_from=earlier)
            if pm.unlinked and needs_subject:  # the earlier subject is not in the annex: it is declined again
                return replace(current, mentions=replace(m, subjects=pm.unlinked), context_from=earlier)
        return current


def is_weak(kind: MatchKind) -> bool:
    """Links a reader must be told about (按附件中的「X」理解…), and that never get a yes or no: anything but the
    annex's own name and a reviewed alias."""
    return kind in (MatchKind.ABBREVIATION, MatchKind.TYPO, MatchKind.CUE)
