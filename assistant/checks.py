"""Sentence checks for generated answers: each sentence is shown only when everything it states is in the
sources it cites.

A generated sentence is read as (its words, the [label]s it cites). Every check is a small function taking the
sentence and a `SentenceContext` (what the cited sources say, with the facts derivable from them: an annex item's
batch gives its deadline, clause 二 gives the batch counts …) and returning a `Problem` or None. The reasons are a
`CheckFailure` enum; the answer-level fallback reasons are `FallbackReason`.

The annex-wide contradiction check (`FactBook`, `contradictions`) stays as a second line: it knows every
occupation, so it catches a wrong batch said about an occupation the sentence did not cite."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path

from .link import Lexicon
from .profile import NoticeProfile
from .records import BATCH_1, BATCH_2, BATCH_LICENSED, AnnexRow, Corpus
from .textfacts import (
    BATCH_WORD as _BATCH_WORD, CN_NUM as _CN_NUM, DATE as _DATE, DIGITS as _DIGITS, ITEM_REF as _ITEM_REF,
    MARKER as _MARKER, chinese_number, dates_in, negated_before, negated_near, squeeze,
)


class FallbackReason(str, Enum):
    """Why the offline answer stands instead of a generated one (Answer.fallback_reason, as its value)."""

    NOT_CONFIGURED = "llm_not_configured"
    UNREACHABLE = "llm_unreachable"
    CONNECTION_LOST = "llm_connection_lost"
    TIMEOUT = "llm_timeout"
    HTTP = "llm_http"
    MALFORMED = "llm_malformed"
    EMPTY = "llm_empty"
    ERROR = "llm_error"
    DECLINED = "llm_declined"  # the model declined what the notice answers
    NO_CITATIONS = "llm_no_citations"  # nothing cited for a factual answer
    REJECTED = "llm_rejected"  # every sentence failed a check (the first failure is logged and in the notice)
    INCOMPLETE = "llm_incomplete"  # the checked sentences leave out the batch, deadline or department of the answer
    OUTSIDE_NOTICE = "llm_outside_notice"  # declined offline and no strong clause evidence: not asked at all
    LONG_ANSWER = "llm_long_answer"  # the reference answer (a long list) is longer than the model may write: not asked
    CONFIDENT_OFFLINE = "llm_confident_offline"  # the offline reading is confident: not asked (llm_rephrase_confident)
    NOTHING_ADDED = "llm_nothing_added"  # the second reader's checked sentences say nothing the offline answer lacks

    def __str__(self) -> str:
        return self.value


class CheckFailure(str, Enum):
    """Why one generated sentence was not shown."""

    NOT_CHINESE = "not_chinese"
    REPEATS_QUESTION = "repeats_question"
    UNCITED_FACT = "uncited_fact"
    UNSUPPORTED_NUMBER = "unsupported_number"
    UNSUPPORTED_DATE = "unsupported_date"
    UNSUPPORTED_BATCH = "unsupported_batch"
    UNSUPPORTED_ITEM = "unsupported_item"
    UNSUPPORTED_DEPARTMENT = "unsupported_department"
    UNSUPPORTED_ORGANISATION = "unsupported_organisation"
    UNSUPPORTED_OCCUPATION = "unsupported_occupation"
    UNKNOWN_OCCUPATION = "unknown_occupation"
    UNSUPPORTED_RULE = "unsupported_rule"
    NEGATION_FLIP = "negation_flip"
    CONTRADICTS_ANNEX = "contradicts_annex"
    DECLINES_ANSWERABLE = "declines_answerable"
    NOT_AN_ANSWER = "not_an_answer"  # a bare 是/不是/好的, or the prompt's own headings echoed back

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Problem:
    failure: CheckFailure
    detail: str  # short, for logs and the notice line: what was not supported

    def __str__(self) -> str:
        return f"{self.failure.value}: {self.detail}"


# ---- batch words and deadlines, from the notice profile -----------------------------------------------------

class BatchVocabulary:
    """How text names each batch of the notice profile and its deadline: 第一批 / 第1批 / 首批 and 9月30日 /
    九月三十日, all built from the profile's batches (clause 二), so another clause 二 gives other patterns."""

    def __init__(self, profile: NoticeProfile) -> None:
        self.profile = profile
        self.names: dict[str, str] = {b.batch: b.word for b in profile.batches}
        self.names[BATCH_LICENSED] = "准入类"
        self.deadlines: dict[str, str] = {b.batch: b.deadline for b in profile.batches}
        self.dates: dict[str, tuple[int, int]] = {}
        self.year: dict[str, str] = {}
        self.batch_patterns: list[tuple[re.Pattern, str]] = []
        self.deadline_patterns: list[tuple[re.Pattern, str]] = []
        ordinals: set[int] = set()
        for b in profile.batches:
            m = _DEADLINE_PARTS.search(b.deadline)
            if m is None:
                raise ValueError(f"the profile's deadline of batch {b.batch} is not a date: {b.deadline}")
            year, month, day = (int(g) if g else None for g in m.groups())
            self.dates[b.batch] = (month, day)
            if year:
                self.year[b.batch] = str(year)
            forms = [re.escape(b.word)]
            n = _ordinal(b.word)
            if n:
                ordinals.add(n)
                forms.append(f"第{n}批")
                if n == 1:
                    forms.append("首批")
            self.batch_patterns.append((re.compile("|".join(forms)), b.batch))
            self.deadline_patterns.append((re.compile(
                rf"(?<!\d)0?{month}月0?{day}日|{chinese_number(month)}月{chinese_number(day)}日"), b.batch))
        # A batch the notice does not have (第三批) is recognised too, so that saying it is caught.
        self.batch_patterns.append((re.compile(r"第([一二三四五六七八九十]|\d)批"), ""))
        self.batch_patterns.append((re.compile(r"准入类"), BATCH_LICENSED))
        self._ordinals = ordinals

    def name(self, batch: str) -> str:
        return self.names.get(batch, f"第{batch}批")

    def date_words(self, batch: str) -> str:
        """9月30日, as a problem line names a deadline."""
        month, day = self.dates[batch]
        return f"{month}月{day}日"

    def batches_said(self, text: str, negated: Callable[[str], bool]) -> set[str]:
        """Batch values named in the text, except those after a negation (`negated` reads the text before)."""
        found = set()
        for rx, value in self.batch_patterns:
            for m in rx.finditer(text):
                if negated(text[:m.start()]):
                    continue
                if value:
                    found.add(value)
                    continue
                n = _ordinal(m.group(0))
                if n not in self._ordinals:
                    found.add(str(n))
        return found

    def deadlines_said(self, text: str, negated: Callable[[str], bool]) -> set[str]:
        return {value for rx, value in self.deadline_patterns for m in rx.finditer(text)
                if not negated(text[:m.start()])}


_DEADLINE_PARTS = re.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日")


def _ordinal(word: str) -> int | None:
    m = re.search(r"第([一二三四五六七八九十]|\d{1,2})批", word)
    if not m:
        return None
    n = m.group(1)
    return int(n) if n.isdigit() else _CN_NUM[n]


# ---- the annex facts ------------------------------------------------------------------------------------

class FactBook:
    """What the annex says about every occupation, and the patterns to find names in generated text."""

    @classmethod
    def of(cls, corpus: Corpus, aliases_path: Path, profile: NoticeProfile) -> "FactBook":
        """The whole annex, with the department short names and occupation aliases of the project's alias table
        and the batch words and deadlines of the notice profile."""
        lexicon = Lexicon.from_corpus(corpus, aliases_path)
        aliases = {form: next(iter(ds)) for form, ds in lexicon.departments.items() if len(ds) == 1}
        book = cls(corpus.annex_rows, profile, sorted({r.qualification for r in corpus.annex_rows}), aliases)
        book.occupation_forms = {form: set(names) for form, names in lexicon.occupations.items()}
        book.notice_text = squeeze(" ".join([c.text for c in corpus.clauses] + list(corpus.header.model_dump().values())))
        return book

    def __init__(self, rows: Iterable[AnnexRow], profile: NoticeProfile, qualifications: Iterable[str] = (),
                 department_aliases: dict[str, str] | None = None) -> None:
        rows = list(rows)
        self.batches = BatchVocabulary(profile)
        self.by_name: dict[str, list[AnnexRow]] = {}
        self.by_item: dict[int, list[AnnexRow]] = {}
        for row in rows:
            self.by_name.setdefault(row.occupation, []).append(row)
            self.by_item.setdefault(row.item, []).append(row)
        self.qualifications = set(qualifications) | {r.qualification for r in rows}
        spellings: dict[str, str] = {}
        for name in self.by_name:
            for form in _name_forms(name):
                spellings.setdefault(form, name)
        self.spelling_to_name = spellings
        masks = [q for q in self.qualifications if q not in spellings]
        # Longest first, so 森林消防员 wins over 消防员 and 电工器材制造人员 masks 电工.
        alternatives = sorted(list(spellings) + masks, key=len, reverse=True)
        self.name_re = re.compile("|".join(re.escape(a) for a in alternatives)) if alternatives else None
        departments = {d for rs in self.by_name.values() for r in rs for d in r.departments}
        dept_forms = {d: d for d in departments}
        # Short names (人社部, 卫健委 …) come from the project's one alias table, corpus/aliases.csv.
        dept_forms.update({a: d for a, d in (department_aliases or {}).items() if d in departments})
        self.department_of = dept_forms
        self.department_re = re.compile(
            "|".join(re.escape(d) + "(?!门|办公厅)" for d in sorted(dept_forms, key=len, reverse=True))
        ) if dept_forms else None
        self.occupation_forms: dict[str, set[str]] = {}  # aliases too (厨师 → 中式烹调师 …), from the Lexicon
        self.notice_text = ""

    def departments_in(self, text: str) -> set[str]:
        if self.department_re is None:
            return set()
        return {self.department_of[m.group(0)] for m in self.department_re.finditer(text)}

    def names_in(self, text: str) -> list[tuple[int, int, str | None]]:
        """(start, end, occupation or None for a qualification name) for each name in the text."""
        if self.name_re is None:
            return []
        return [(m.start(), m.end(), self.spelling_to_name.get(m.group(0))) for m in self.name_re.finditer(text)]


def _name_forms(name: str) -> list[str]:
    forms = [name, re.sub(r"\s+", "", name)]
    bare = re.sub(r"[()（）\s]", "", name)
    forms += [bare, re.sub(r"\(([^)]*)\)\s*", r"（\1）", name)]
    return list(dict.fromkeys(f for f in forms if f))


# ---- facts in a piece of text -------------------------------------------------------------------------------

def batches_in(text: str, skip_negated: bool = False) -> set[str]:
    """Batch values (the annex's 批次 spelling; other numbers as their digits) of the batch words in the text."""
    found = set()
    for m in _BATCH_WORD.finditer(text):
        if skip_negated and negated_before(text[:m.start()]):
            continue
        if m.group(2):
            found.add(BATCH_LICENSED)
            continue
        word = m.group(1)
        n = 1 if word is None else (int(word) if word.isdigit() else _CN_NUM.get(word, 0))
        found.add({1: BATCH_1, 2: BATCH_2}.get(n, str(n)))
    return found


_ENUMERATOR = re.compile(r"^\s*[（(]?\d{1,2}[.、．)）]\s*")


def _bare(text: str) -> str:
    text = _ENUMERATOR.sub("", text)
    return _ITEM_REF.sub(" ", _BATCH_WORD.sub(" ", _DATE.sub(lambda m: f" {m.group(1) or ''} ", text)))


def numbers_in(text: str) -> set[str]:
    """Digit runs, without those of dates (checked as dates) and of batch words and item numbers (their own checks)
    and a list item's own number (1. / 2、)."""
    return {str(int(d)) for d in _DIGITS.findall(_bare(text))}


_COUNTED = re.compile(r"(\d+)(项|个|条|家|类|人|年)")


def counts_in(text: str) -> set[tuple[str, str]]:
    """Numbers with what they count: 14项 and 29个 are different facts (clause 二: 14 项职业资格, 涉及 29 个职业)."""
    return {(str(int(n)), unit) for n, unit in _COUNTED.findall(_bare(text))}


# ---- what a sentence's cited sources support -----------------------------------------------------------------

@dataclass
class Support:
    """Facts stated by, or derivable from, a set of cited sources."""

    text: str = ""  # the quotes, scan spacing removed
    numbers: set[str] = field(default_factory=set)
    counts: set[tuple[str, str]] = field(default_factory=set)  # (number, unit) as the sources count
    dates: set[tuple[int, int]] = field(default_factory=set)
    batches: set[str] = field(default_factory=set)
    items: set[int] = field(default_factory=set)
    departments: set[str] = field(default_factory=set)
    occupations: set[str] = field(default_factory=set)
    clause_text: str = ""  # the notice clauses among them (rules are stated there, never in annex rows)
    row_batches: set[str] = field(default_factory=set)  # batches of the cited annex items alone
    row_dates: set[tuple[int, int]] = field(default_factory=set)

    def add_text(self, text: str, facts: FactBook, clause: bool) -> None:
        flat = squeeze(text)
        self.text += flat + "\n"
        if clause:
            self.clause_text += flat + "\n"
        self.numbers |= {str(int(d)) for d in _DIGITS.findall(flat)}
        self.counts |= counts_in(flat)
        self.dates |= dates_in(flat)
        self.batches |= batches_in(flat)
        self.departments |= facts.departments_in(flat)
        self.occupations |= {n for _, _, n in facts.names_in(flat) if n}
        if "今年" in flat:  # the notice is of 2020: its 今年 is 2020
            self.numbers.add("2020")

    def add_rows(self, rows: Iterable[AnnexRow], vocabulary: BatchVocabulary) -> None:
        for r in rows:
            self.items.add(r.item)
            self.numbers.add(str(r.item))
            self.occupations.add(r.occupation)
            self.departments |= set(r.departments)
            self.batches.add(r.batch)
            self.row_batches.add(r.batch)
            words = vocabulary.profile.batch_word(r.batch)
            self.text += squeeze(f"{r.qualification}{r.occupation}{r.departments_text()}{words}") + "\n"
            if r.batch in vocabulary.dates:  # clause 二 gives each batch its deadline
                self.dates.add(vocabulary.dates[r.batch])
                self.row_dates.add(vocabulary.dates[r.batch])
                if r.batch in vocabulary.year:
                    self.numbers.add(vocabulary.year[r.batch])
                self.text += squeeze(vocabulary.deadlines[r.batch]) + "\n"


@dataclass
class SentenceContext:
    """Everything the checks of one sentence need."""

    question: str
    support: Support
    facts: FactBook
    cited: bool  # the sentence cites at least one known source
    offline_answered: bool  # the notice answers the question (offline reading)
    grounded_names: list[str] = field(default_factory=list)  # occupations the question is about


@dataclass(frozen=True)
class Sentence:
    text: str  # as it will be shown: markers in [label] form
    labels: tuple[str, ...]  # known sources it cites
    inferred: bool = False  # the model wrote no marker: the labels are the reference answer's sources

    @property
    def plain(self) -> str:
        """The words only: markers removed, scan spacing squeezed."""
        return squeeze(_MARKER.sub("", self.text))


# ---- the checks --------------------------------------------------------------------------------------------------

_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def check_language(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """Answers are in Chinese: a sentence with more Latin letters than Chinese characters is not shown."""
    plain = s.plain
    cjk = len(_CJK.findall(plain))
    latin = sum(len(w) for w in _LATIN_WORD.findall(plain))
    if latin and latin >= cjk:
        return Problem(CheckFailure.NOT_CHINESE, plain[:30])
    return None


_PUNCT = re.compile(r"[\s\W_]+")
# Characters that turn a question into a statement without adding anything to it (是/的/了 …, 吗 dropped).
_FUNCTION_CHARS = set("是的了吗呢吧啊呀也都还就会能可以要需得着过在有和与及或这那它其该此您你我们请问")
_QUESTION_END = re.compile(r"[？?]\s*$")


def check_not_a_repeat(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """A sentence that repeats the question (or asks one) is not an answer."""
    plain = _MARKER.sub("", s.text).strip()
    if _QUESTION_END.search(plain):
        return Problem(CheckFailure.REPEATS_QUESTION, plain[:30])
    said, asked = _PUNCT.sub("", plain), _PUNCT.sub("", ctx.question)
    if not said or not asked:
        return None
    new = [ch for ch in said if ch not in asked and ch not in _FUNCTION_CHARS]
    if not new:
        return Problem(CheckFailure.REPEATS_QUESTION, plain[:30])
    return None


_RULE = re.compile(
    r"作废|失效|无效|有效|吊销|注销|撤销|重新考试|重考|重新(参加|鉴定|认定|申请|办理)|补考|换证|换发|补发|"
    r"退费|退回|退还|费用|收费|免费|报名费|交费|缴费|考试费|罚款|处罚|不能|不得|不可|不再|不予|无需|不需|不用|禁止|严禁|必须|应当|需要|须|"
    r"可以|可作为|继续|仍然|照常|停止|暂停|取消|认可|承认|发证|颁发|发放"
)
# Words the notice never uses for what happens to a certificate, exam or fee: asserting one is inventing a rule.
_INVENTED_RULE = re.compile(r"作废|失效|无效|吊销|注销|撤销|重新考试|重考|补考|换证|换发|补发|罚款|处罚|免费")
# Facts that need a source even without a number in them.
_FACT_WORD = re.compile(r"退出|批|实施部门|部门|期限|准入|目录|证书|鉴定|考试|发放|有效|费用")


def states_a_fact(plain: str, facts: FactBook) -> bool:
    """The sentence says something a source must back: a number, date, batch, item, department, occupation or rule."""
    return bool(numbers_in(plain) or dates_in(plain) or batches_in(plain) or _ITEM_REF.search(plain)
                or facts.departments_in(plain) or any(n for _, _, n in facts.names_in(plain))
                or _RULE.search(plain) or _FACT_WORD.search(plain))


def check_cited(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """A sentence stating a fact cites a source it rests on."""
    if ctx.cited or is_decline(s.plain):
        return None
    if states_a_fact(s.plain, ctx.facts):
        return Problem(CheckFailure.UNCITED_FACT, s.plain[:30])
    return None


def check_numbers(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """Every number is in the cited sources, and a number that counts something counts the same thing there."""
    missing = sorted(numbers_in(s.plain) - ctx.support.numbers)
    if missing:
        return Problem(CheckFailure.UNSUPPORTED_NUMBER, "、".join(missing))
    miscounted = sorted(f"{n}{unit}" for n, unit in counts_in(s.plain) - ctx.support.counts)
    return Problem(CheckFailure.UNSUPPORTED_NUMBER, "、".join(miscounted)) if miscounted else None


def check_dates(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """Dates are the cited sources' dates; a sentence citing annex items speaks of those items' deadlines only."""
    plain = s.plain
    allowed = ctx.support.row_dates if ctx.support.items and not s.inferred else ctx.support.dates
    for m in _DATE.finditer(plain):
        month_day = (int(m.group(2)), int(m.group(3)))
        if month_day not in allowed or (m.group(1) and m.group(1) not in ctx.support.numbers):
            return Problem(CheckFailure.UNSUPPORTED_DATE, m.group(0))
    return None


def check_batches(s: Sentence, ctx: SentenceContext) -> Problem | None:
    said = batches_in(s.plain, skip_negated=True)
    # A sentence citing annex items speaks of their batches (not of the other batch clause 二 also names).
    allowed = ctx.support.row_batches if ctx.support.items and not s.inferred else ctx.support.batches
    extra = said - allowed
    if extra:
        return Problem(CheckFailure.UNSUPPORTED_BATCH, "、".join(sorted(extra)))
    return None


def check_items(s: Sentence, ctx: SentenceContext) -> Problem | None:
    for m in _ITEM_REF.finditer(s.plain):
        if int(m.group(1)) not in ctx.support.items:
            return Problem(CheckFailure.UNSUPPORTED_ITEM, m.group(0))
    return None


def check_departments(s: Sentence, ctx: SentenceContext) -> Problem | None:
    plain = s.plain
    facts = ctx.facts
    if facts.department_re is None:
        return None
    for m in facts.department_re.finditer(plain):
        dept = facts.department_of[m.group(0)]
        if m.group(0) in ctx.support.text:  # spelled as the source spells it (人力资源社会保障部职业能力建设司)
            continue
        if dept not in ctx.support.departments and not negated_before(plain[:m.start()]):
            return Problem(CheckFailure.UNSUPPORTED_DEPARTMENT, dept)
    return None


_ORG_SUFFIX = re.compile(r"(委员会|办公厅|办公室|总署|中心|协会|总会|学会|部|委|局|厅|署)(?!门|分)")
_ORG_STOP = re.compile(r"[由的在是和与及向经为从对将被等其由或、，,。；：:（）()「」“”\s\d]|[A-Za-z]")
_GENERIC_ORGS = {"有关部", "相关部", "各部", "本部", "内部", "全部", "外部", "局部", "总部", "中部", "西部", "东部",
                 "北部", "南部", "头部", "干部", "部"}


def check_organisations(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """An issuing or implementing body named in a sentence must be named by its sources (no invented bodies)."""
    plain = s.plain
    facts = ctx.facts
    dept_spans = [(m.start(), m.end()) for m in facts.department_re.finditer(plain)] if facts.department_re else []
    for m in _ORG_SUFFIX.finditer(plain):
        end = m.end()
        if any(a < end <= b for a, b in dept_spans):
            continue  # a known department: check_departments
        start = m.start()
        while start > 0 and start > m.start() - 12 and not _ORG_STOP.match(plain[start - 1]):
            start -= 1
        name = plain[start:end]
        if len(name) < 3 or name in _GENERIC_ORGS or not _CJK.match(name):
            continue
        if name not in ctx.support.text:
            return Problem(CheckFailure.UNSUPPORTED_ORGANISATION, name)
    return None


def check_occupations(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """Annex occupations in a sentence are those of its sources or of the question."""
    asked = squeeze(ctx.question)
    for _, _, name in ctx.facts.names_in(s.plain):
        if name is None or name in ctx.support.occupations or name in ctx.grounded_names:
            continue
        if any(form in asked for form in _name_forms(name)):
            continue
        return Problem(CheckFailure.UNSUPPORTED_OCCUPATION, name)
    return None


_OCC_SPLIT = re.compile(r"[、，,；;：:。！？!?\s和与及或等的是为在了「」“”《》()（）\[\]【】如像例]")
_OCC_END = re.compile(r"(员|师|工)$")
_GENERIC_PEOPLE = re.compile(r"^(人员|技能人员|工作人员|从业人员|技术人员|专业技术人员|管理人员|学员|员工|职工|技工|技师|高级技师|"
                             r"劳动者|考生|持证人员|社会|技能|职业|相关人员|有关人员|务工|用工|人工|分工|完工|开工|加工|施工|"
                             r"教师|老师|医师|律师|会计师|工程师)$")
_ENDS_LIKE_A_CLAUSE = re.compile(r"(退出|属于|列在|包括|包含|涉及|负责|组织|实施|认定|评价|证书|资格|目录|批)")


_JOB_END = re.compile(r"(员|师|工)(?![作程业种匠资厂具艺会期伤龄号序位人商贸农科学院校])")
_LEADING_VERB = re.compile(r"^.*(属于|包括|包含|涉及|还有|就是|即|是|为|有|如|像|叫|称|指|在|对|把|被|由|从|向|给|让)")


def job_words(text: str) -> list[str]:
    """Words that end like a job name (…员/…师/…工), each the run of Chinese characters before that ending,
    cut after a verb or preposition (属于、是、包括 …): 起重机装卸货操作工属于第二批 → 起重机装卸货操作工."""
    words = []
    for run in _OCC_SPLIT.split(text):
        for m in _JOB_END.finditer(run):
            word = _LEADING_VERB.sub("", run[:m.end()])
            if 2 <= len(word) <= 12 and all(_CJK.match(c) for c in word):
                words.append(word)
    return words


def check_known_occupations(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """A job name (…员/…师/…工) that is neither an annex occupation (or alias) nor in the question nor in the
    cited sources is an invented occupation."""
    facts = ctx.facts
    plain = facts.name_re.sub("、", s.plain) if facts.name_re else s.plain  # annex names are check_occupations'
    asked = squeeze(ctx.question)
    for word in job_words(plain):
        if _GENERIC_PEOPLE.match(word) or _ENDS_LIKE_A_CLAUSE.search(word[:-1]):
            continue
        if word in facts.occupation_forms or word in asked or word in ctx.support.text or word in facts.notice_text:
            continue
        return Problem(CheckFailure.UNKNOWN_OCCUPATION, word)
    return None


# Content words for the rule-support overlap: jieba words of two or more characters, minus words that carry no
# claim (the notice's name, connectives) and the names of occupations (checked on their own).
_STOP = {"通知", "附件", "根据", "规定", "按照", "依据", "相关", "有关", "这个", "这些", "那么", "以及", "或者", "如果", "已经",
         "我们", "你们", "他们", "可以", "需要", "进行", "问题", "情况", "方面", "内容", "具体", "其中", "对于", "关于",
         "目前", "之后", "以后", "之前", "以前", "说明", "表示", "指出", "明确", "要求",
         # the notice's own subject, in nearly every sentence: sharing them says nothing about a rule
         "退出", "目录", "职业", "资格", "职业资格", "证书", "通知", "技能", "人员", "水平", "评价", "技能人员"}
RULE_OVERLAP_THRESHOLD = 0.5  # calibrated on the real model's outputs (docs/llm.md)


@lru_cache(maxsize=4096)
def content_words(text: str) -> frozenset[str]:
    import jieba

    words = set()
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        for w in jieba.lcut(run):
            if len(w) >= 2 and w not in _STOP:
                words.add(w)
    return frozenset(words)


def rule_overlap(sentence: str, quote: str) -> float:
    words = content_words(sentence)
    if not words:
        return 1.0
    return sum(1 for w in words if w in quote) / len(words)


def check_rule_supported(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """A sentence asserting a rule (证书作废, 需重新考试, 不能退费 …) rests on a cited clause that says it."""
    plain = s.plain
    rule = _RULE.search(plain)
    if not rule or is_decline(plain):
        return None
    invented = [m.group(0) for m in _INVENTED_RULE.finditer(plain) if m.group(0) not in ctx.support.text]
    if invented:
        return Problem(CheckFailure.UNSUPPORTED_RULE, invented[0])
    quote = ctx.support.clause_text
    if not quote:
        return Problem(CheckFailure.UNSUPPORTED_RULE, f"{rule.group(0)}（未引用条款）")
    # Names of occupations and departments are checked elsewhere; the rule is what is left.
    bare = plain
    if ctx.facts.name_re is not None:
        bare = ctx.facts.name_re.sub("", bare)
    if ctx.facts.department_re is not None:
        bare = ctx.facts.department_re.sub("", bare)
    overlap = rule_overlap(bare, quote)
    if overlap < RULE_OVERLAP_THRESHOLD:
        return Problem(CheckFailure.UNSUPPORTED_RULE, f"{rule.group(0)}（与所引条款重合{overlap:.0%}）")
    return None


# Rule words whose negation reverses a rule. 退出 is not among them: whether an occupation is withdrawn is the
# annex's (check_withdrawal), and "不退出目录" is true of the 准入类 rows that clause 二 says are withdrawn otherwise.
_POLAR = re.compile(r"有效|继续|退回|退还|发放|颁发|认定|认可|取得|收取|鉴定|考试")


def _polarities(text: str, word: str) -> set[bool]:
    """For each occurrence of `word`: is it negated (a negator within the three characters before it)?"""
    return {negated_near(text, m.start()) for m in re.finditer(re.escape(word), text)}


def check_negation(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """A rule word negated in the sentence but only affirmed by its clause (or the reverse) is a flipped rule."""
    quote = ctx.support.clause_text
    if not quote:
        return None
    plain = s.plain
    for m in _POLAR.finditer(plain):
        word = m.group(0)
        said = _polarities(plain, word)
        source = _polarities(quote, word)
        if source and said and not (said & source):
            return Problem(CheckFailure.NEGATION_FLIP, word)
    return None


_DECLINE = re.compile(
    r"未涉及|没有涉及|并未涉及|不涉及|未提及|没有提及|没有提到|未作(出)?规定|没有(作出)?(相关|具体)?规定|没有相关(内容|信息|规定)|"
    r"无法回答|不能回答|无法(确定|判断|提供)|不在[^。？！\n]{0,16}范围|无从回答|只能依据|"
    r"(通知|附件|文件)[^。？！\n]{0,20}中(并)?没有|没有第[一二三四五六七八九十\d]{1,3}(批|条|项)"
)


def is_decline(text: str) -> bool:
    return bool(_DECLINE.search(text))


def check_not_declining(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """A model that says the notice does not cover what the notice answers is not believed."""
    if ctx.offline_answered and is_decline(s.plain):
        return Problem(CheckFailure.DECLINES_ANSWERABLE, s.plain[:30])
    return None


_WITHDRAWN = re.compile(r"退出")


def check_withdrawal(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """Occupations to become 准入类 are not withdrawn: a sentence saying one of them 退出 is contradicted by the annex.
    The occupations are those the sentence names, or else those of the annex items it cites."""
    plain = s.plain
    named = [n for _, _, n in ctx.facts.names_in(plain) if n]
    if named:
        rows = [r for n in named for r in ctx.facts.by_name.get(n, [])]
    else:
        rows = [r for item in ctx.support.items for r in ctx.facts.by_item.get(item, [])]
    if not rows or not all(r.is_licensed for r in rows):
        return None
    for m in _WITHDRAWN.finditer(plain):
        if not negated_before(plain[:m.start()], reach=2):
            return Problem(CheckFailure.CONTRADICTS_ANNEX, f"{'、'.join(dict.fromkeys(r.occupation for r in rows))} 不退出目录")
    return None


_PROMPT_ECHO = re.compile(r"【(来源|参考答案|核对结论|要求)】|引用时在句末|方括号中的标签|职业资格：[^。]*；职业：|必须遵守以下规则|只能使用下面列出的标签")


# A source line of the prompt copied: "[第二条] 二、今年年底前…" (a label, then a space or the clause's own numeral).
_SOURCE_LINE = re.compile(r"\s*\[[^\[\]]+\](?:\s+|\s*[一二三四五六]、)")
_CLAUSE_NUMBER = re.compile(r"\s*[一二三四五六]、")


def check_is_an_answer(s: Sentence, ctx: SentenceContext) -> Problem | None:
    """A fragment (是的 / 不是 / 好的) says nothing checkable, and the prompt's own wording is not an answer."""
    plain = _MARKER.sub("", s.text)
    if _PROMPT_ECHO.search(plain) or _SOURCE_LINE.match(s.text) or _CLAUSE_NUMBER.match(plain):
        return Problem(CheckFailure.NOT_AN_ANSWER, plain[:30])  # the prompt's sources listed back, not an answer
    if len(_CJK.findall(plain)) < 4 and not states_a_fact(squeeze(plain), ctx.facts):
        return Problem(CheckFailure.NOT_AN_ANSWER, plain[:30])
    return None


SentenceCheck = Callable[[Sentence, SentenceContext], "Problem | None"]

# Order matters only for which reason is reported first.
SENTENCE_CHECKS: tuple[SentenceCheck, ...] = (
    check_language, check_is_an_answer, check_not_a_repeat, check_not_declining, check_cited, check_dates, check_batches, check_items,
    check_numbers, check_departments, check_organisations, check_occupations, check_known_occupations,
    check_withdrawal, check_rule_supported, check_negation,
)


def check_sentence(s: Sentence, ctx: SentenceContext, checks: Iterable[SentenceCheck] = SENTENCE_CHECKS) -> Problem | None:
    """The first problem of a sentence, or None when it may be shown."""
    for check in checks:
        problem = check(s, ctx)
        if problem is not None:
            return problem
    return None
