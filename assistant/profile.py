"""The per-notice profile: what is particular to this notice, in one place next to the corpus.

Batches, their deadlines and counts are read from clause 二 of the parsed notice; the rest (scope wording, where to
ask instead, name forms that are levels rather than modifiers, quirks) from `corpus/profile.json`. A second notice
would be a second profile, not code edits.

Every field of profile.json that states a fact is checked against the notice when the profile is loaded (and by
`assistant parse` / `parse --check`), like annex.csv: the notice number, the year (the issue date's: clause 二 says
"今年"), the scope wording, where to ask instead, and every number and quoted name in the quirks. A field the notice
does not support is refused with one line naming the field. Word lists (level words, heads, generic subjects) and
the suggested questions state no fact and are not checked."""
from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .parse import CorpusIntegrityError
from .records import BATCH_1, BATCH_2, BATCH_LICENSED, AnnexRow, Corpus

PROFILE_FILE = "profile.json"
_CN_ORDINAL = {"一": 1, "二": 2, "三": 3}


class ProfileError(CorpusIntegrityError):
    """The profile or the clause it is read from does not say what the answerer needs, or profile.json states a
    fact the notice does not support."""


class BatchInfo(BaseModel):
    """One withdrawal batch as clause 二 states it."""

    model_config = ConfigDict(frozen=True)

    batch: str  # the 批次 cell value of its annex rows: "1" or "2"
    word: str  # 第一批
    deadline: str  # 2020年9月30日前
    items: int  # 项职业资格 the clause counts
    occupations: int  # 个职业 the clause counts
    organiser: str  # who organises them, as the clause says (人力资源社会保障部门和有关部门)
    sentence: str  # the clause sentence, as parsed


class NoticeProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    notice: str
    short_name: str
    year: int
    covered: str
    ask_elsewhere: str
    level_words: tuple[str, ...]
    certificate_heads: tuple[str, ...]
    occupation_heads: tuple[str, ...]
    generic_subjects: frozenset[str]
    quirks: dict[str, str]
    follow_ups: dict[str, str]  # suggested next questions, by what they ask
    batches: tuple[BatchInfo, ...]
    licensed_word: str = "拟依照法定程序调整为准入类职业资格"
    # words that report what was heard (网传, 传闻): jieba tags some as nouns, but before a name they modify nothing
    report_words: tuple[str, ...] = ()
    # words for people at work (职工, 员工): a span that ends with one (退休职工, 很多员工) names people, not a job
    person_words: tuple[str, ...] = ()

    @classmethod
    def load(cls, corpus: Corpus, corpus_dir: Path) -> "NoticeProfile":
        path = corpus_dir / PROFILE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{path}: cannot be read ({exc})") from exc
        if not isinstance(data, dict):
            raise ProfileError(f"{path}: not a JSON object")
        verify_profile(data, corpus, path)
        data["generic_subjects"] = frozenset(data.get("generic_subjects", ()))
        try:
            return cls(**data, batches=batches_of_clause_two(corpus, data["year"]))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ProfileError):
                raise
            raise ProfileError(f"{path}: {str(exc).splitlines()[0]}") from None

    def batch(self, batch: str) -> BatchInfo | None:
        return next((b for b in self.batches if b.batch == batch), None)

    def batch_word(self, batch: str) -> str:
        info = self.batch(batch)
        return info.word if info else self.licensed_word

    def fate(self, row: AnnexRow) -> str:
        """What happens to an annex row, in the words of the answer: 属于第二批，拟于2020年12月31日前退出目录."""
        info = self.batch(row.batch)
        if info is None:
            return "不分批退出，" + self.licensed_word
        return f"属于{info.word}，拟于{info.deadline}退出目录"

    def deadline(self, batch: str) -> str | None:
        info = self.batch(batch)
        return info.deadline if info else None


_BATCH_SENTENCE = re.compile(
    r"([^。，]*?)组织实施的\s*(\d+)\s*项职业资格（涉及\s*(\d+)\s*个职业）拟于\s*(\d+)\s*月\s*(\d+)\s*日前第([一二三])批退出")


def batches_of_clause_two(corpus: Corpus, year: int) -> tuple[BatchInfo, ...]:
    found = []
    for sentence in corpus.clause(2).sentences():
        m = _BATCH_SENTENCE.search(sentence)
        if m:
            organiser, items, occupations, month, day, ordinal = m.groups()
            n = _CN_ORDINAL[ordinal]
            found.append(BatchInfo(batch={1: BATCH_1, 2: BATCH_2}[n], word=f"第{ordinal}批",
                                   deadline=f"{year}年{int(month)}月{int(day)}日前", items=int(items),
                                   occupations=int(occupations), sentence=sentence,
                                   organiser=re.sub(r"\s+", "", organiser)))
    if {b.batch for b in found} != {BATCH_1, BATCH_2}:
        raise ProfileError("clause 二 does not state the two batches with their deadlines")
    assert BATCH_LICENSED  # rows of the third kind have no batch entry: they are not withdrawn
    return tuple(sorted(found, key=lambda b: b.batch))


# ---- profile.json against the notice ------------------------------------------------------------------

_PLACE_PREFIXES = ("当地", "所在地", "本地", "各地", "各级")  # "ask your local …": the body itself must be in the notice
_BODY_ENDINGS = ("部门", "部", "厅", "局", "司", "委员会", "中心", "机构", "单位")
_YEAR = re.compile(r"(\d{4})")


def notice_text(corpus: Corpus) -> str:
    """Everything the notice says (header, clauses, annex rows), without whitespace, to look phrases up in."""
    h = corpus.header
    parts = [h.doc_number, h.title, h.issuer, h.recipients, h.issue_date, h.contact, h.disclosure, h.annex_title]
    parts += [c.text for c in corpus.clauses]
    parts += [f"{r.qualification}{r.occupation}{'、'.join(r.departments)}" for r in corpus.annex_rows]
    return re.sub(r"\s+", "", "".join(parts))


def _field(path: Path, name: str, message: str) -> ProfileError:
    return ProfileError(f"{path}: \"{name}\" {message}; the notice is the source of every fact (edit it back)")


def verify_profile(data: dict, corpus: Corpus, path: Path = Path(PROFILE_FILE)) -> None:
    """Raise ProfileError (one line naming the field) when a fact-bearing field of profile.json is not what the
    notice says."""
    text = notice_text(corpus)
    header = corpus.header
    notice = data.get("notice")
    if notice != header.doc_number:
        raise _field(path, "notice", f"is {notice!r}, the notice's number is {header.doc_number!r}")
    short = data.get("short_name")
    if not isinstance(short, str) or header.doc_number not in short:
        raise _field(path, "short_name", f"({short!r}) does not contain the notice's number {header.doc_number}")
    issued = _YEAR.search(header.issue_date)
    numbered = _YEAR.search(header.doc_number)
    year = data.get("year")
    if issued is None or isinstance(year, bool) or year != int(issued.group(1)):
        raise _field(path, "year", f"is {year!r}; the notice was issued on {header.issue_date} "
                                   "and its deadlines fall in that year (clause 二: 今年)")
    if numbered is not None and int(numbered.group(1)) != year:
        raise _field(path, "year", f"is {year!r}, the notice's number says {numbered.group(1)}")
    covered = data.get("covered")
    if not isinstance(covered, str) or not covered or re.sub(r"\s+|的", "", covered) not in text:
        raise _field(path, "covered", f"({covered!r}) is not what the notice is about in its own words")
    ask = data.get("ask_elsewhere")
    body = ask
    if isinstance(body, str):
        for prefix in _PLACE_PREFIXES:
            body = body.removeprefix(prefix)
    if not isinstance(body, str) or not body.endswith(_BODY_ENDINGS) or body not in text:
        raise _field(path, "ask_elsewhere", f"({ask!r}) is not a body the notice names")
    quirks = data.get("quirks") or {}
    if not isinstance(quirks, dict):
        raise _field(path, "quirks", "is not an object")
    for key, value in quirks.items():
        problem = _quirk_problem(str(value), corpus, text)
        if problem:
            raise _field(path, f"quirks.{key}", problem)


def _quirk_problem(value: str, corpus: Corpus, text: str) -> str | None:
    """A quirk may only use numbers the notice states (counts of clause 二, item numbers, the annex's item count)
    and quote names the annex lists; "第N项「X」…两次" must be a repeated row."""
    rows = corpus.annex_rows
    items = {r.item for r in rows}
    known = {len(items), len(rows)} | {int(n) for n in re.findall(r"\d+", text)}
    for number in re.findall(r"\d+", re.sub(r"第\d+项", "", value)):
        if int(number) not in known:
            return f"states the number {number}, which the notice does not"
    names = {r.occupation for r in rows} | {r.qualification for r in rows}
    for name in re.findall(r"「([^」]+)」", value):
        if name not in names:
            return f"quotes 「{name}」, which the annex does not list"
    for item, name in re.findall(r"第(\d+)项「([^」]+)」", value):
        listed = [r for r in rows if r.item == int(item) and name in (r.occupation, r.qualification)]
        if not listed:
            return f"says 「{name}」 is in item {item}; the annex does not list it there"
        if "两次" in value and sum(r.occupation == name for r in rows if r.item == int(item)) != 2:
            return f"says 「{name}」 is listed twice in item {item}; the annex does not"
    return None
