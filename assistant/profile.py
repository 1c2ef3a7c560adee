"""The per-notice profile: what is particular to this notice, in one place next to the corpus.

Batches, their deadlines and counts are read from clause 二 of the parsed notice; the rest (scope wording, where to
ask instead, name forms that are levels rather than modifiers, quirks) from `corpus/profile.json`. A second notice
would be a second profile, not code edits."""
from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .records import BATCH_1, BATCH_2, BATCH_LICENSED, AnnexRow, Corpus

PROFILE_FILE = "profile.json"
_CN_ORDINAL = {"一": 1, "二": 2, "三": 3}


class ProfileError(ValueError):
    """The profile or the clause it is read from does not say what the answerer needs."""


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

    @classmethod
    def load(cls, corpus: Corpus, corpus_dir: Path) -> "NoticeProfile":
        path = corpus_dir / PROFILE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{path}: cannot be read ({exc})") from exc
        data["generic_subjects"] = frozenset(data.get("generic_subjects", ()))
        return cls(**data, batches=batches_of_clause_two(corpus, data["year"]))

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
