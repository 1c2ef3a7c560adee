"""Typed records that flow through the pipeline: parse → index → retrieve → answer → present."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CLAUSE_LABELS = ["开头", "第一条", "第二条", "第三条", "第四条", "第五条", "第六条"]
CLAUSE_NUMERALS = ["", "一", "二", "三", "四", "五", "六"]

# 批次 cell values exactly as the annex prints them.
BATCH_1 = "1"
BATCH_2 = "2"
BATCH_LICENSED = "拟依照法定程序调整为准入类职业资格"
Batch = Literal["1", "2", "拟依照法定程序调整为准入类职业资格"]


class HeaderFacts(BaseModel):
    """Facts printed around the body of the notice (文头 and 文尾)."""

    model_config = ConfigDict(frozen=True)

    doc_number: str  # 文号
    title: str
    issuer: str  # 发文机关
    recipients: str  # 主送单位
    issue_date: str  # 印发日期, as printed
    contact: str  # 联系单位
    disclosure: str  # 公开属性
    annex_title: str


class Clause(BaseModel):
    """The opening paragraph (number 0) or one of the numbered clauses 一、…六、 (1–6), verbatim."""

    model_config = ConfigDict(frozen=True)

    number: int = Field(ge=0, le=6)
    text: str

    @property
    def label(self) -> str:
        return CLAUSE_LABELS[self.number]

    def sentences(self) -> list[str]:
        """Split at 。 keeping the full stop; used for index documents and quotes."""
        parts, current = [], ""
        for ch in self.text:
            current += ch
            if ch in "。；":
                parts.append(current)
                current = ""
        if current.strip():
            parts.append(current)
        return [p.strip() for p in parts if p.strip()]


class AnnexRow(BaseModel):
    """One occupation (职业/工种) of the annex table, with the cells it inherits from above filled in."""

    model_config = ConfigDict(frozen=True)

    item: int = Field(ge=1, le=76)  # 序号
    qualification: str  # 职业资格名称
    occupation: str  # 职业（工种）
    departments: tuple[str, ...]  # 实施部门（单位）
    batch: Batch  # 批次, as printed
    position: int  # order of the row in the annex, 1-based, so duplicates stay distinct

    @property
    def is_licensed(self) -> bool:
        """True for rows to be adjusted to 准入类 by law rather than withdrawn."""
        return self.batch == BATCH_LICENSED

    @property
    def label(self) -> str:
        return f"附件第{self.item}项"

    def departments_text(self) -> str:
        return "、".join(self.departments)

    def quote(self) -> str:
        """The row as the annex prints it, for a citation."""
        return f"{self.item} {self.qualification} {self.occupation} {self.departments_text()} {self.batch}"


class Corpus(BaseModel):
    """The whole parsed notice."""

    model_config = ConfigDict(frozen=True)

    header: HeaderFacts
    clauses: tuple[Clause, ...]
    annex_rows: tuple[AnnexRow, ...]
    source_sha256: str
    manifest_sha256: str = ""  # sha256 of corpus/manifest.json when loaded from corpus/; the index records it

    def clause(self, number: int) -> Clause:
        return self.clauses[number]

    def rows_of_item(self, item: int) -> list[AnnexRow]:
        return [r for r in self.annex_rows if r.item == item]

    def item_numbers(self) -> list[int]:
        return sorted({r.item for r in self.annex_rows})


class SourceRow(BaseModel):
    """One line of an annex source card: occupations of an item that share departments and batch."""

    occupations: list[str]
    departments: str
    batch: str  # 第一批 / 第二批 / 拟依照法定程序调整为准入类职业资格
    deadline: str | None = None  # 2020年9月30日前 …; None for 准入类 rows


class Citation(BaseModel):
    source: Literal["notice", "annex"]
    clause: int | None = None
    item: int | None = None
    label: str
    quote: str = ""
    marker: int | None = None  # the [n] that refers to this source in the answer text, 1-based
    qualification: str | None = None  # annex sources: 职业资格名称 of the item
    rows: list[SourceRow] = Field(default_factory=list)  # annex sources: the labelled fields of a source card

    def key(self) -> tuple:
        return (self.source, self.clause, self.item, self.label)


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class Answer(BaseModel):
    """What the assistant returns for one question; `to_dict()` is the JSON contract."""

    id: str | int | None = None
    question: str
    answer: str
    answered: bool
    citations: list[Citation] = Field(default_factory=list)
    mode: Literal["offline", "llm"] = "offline"
    fallback_reason: str | None = None
    follow_ups: list[str] = Field(default_factory=list)  # suggested next questions, from the answer's own subject
    annex_filter: dict[str, str] | None = None  # a long list summarised: the annex-tab filter that shows it whole
    # With generation on: which path was chosen for this answer (generate.LLMPath: offline, rephrase,
    # second_reader, evidence) and why (a short phrase naming the signal: the frame's confidence, the evidence …).
    path: str | None = None
    path_reason: str | None = None
    # An unsure offline answer read again by the model (the second reader): the checked sentences it added, each
    # stating a cited fact the offline answer lacks. They end `answer` (after a line break); None: nothing added.
    addition: str | None = None

    def to_dict(self) -> dict:
        data = self.model_dump(mode="json")
        for key in ("fallback_reason", "path", "path_reason", "addition"):
            if data[key] is None:
                del data[key]
        return data


class Evidence(BaseModel):
    """One retrieved source: a clause sentence, a header fact or an annex row, with its rank scores."""

    model_config = ConfigDict(frozen=True)

    doc_id: str
    source: Literal["notice", "annex"]
    clause: int | None = None
    item: int | None = None
    position: int | None = None  # annex row position, for annex evidence
    label: str
    text: str
    score: float = 0.0  # fused score, higher is better

    def citation(self, quote: str | None = None) -> Citation:
        return Citation(source=self.source, clause=self.clause, item=self.item, label=self.label,
                        quote=quote if quote is not None else self.text)


class Grounding(BaseModel):
    """Everything an answerer may rest on for one question: what the offline pipeline understood and found.

    The LLM answerer (when configured) receives this; the offline answer is its fallback."""

    question: str  # as asked
    standalone_question: str  # normalised, with follow-up context resolved
    evidence: list[Evidence]
    rows: list[AnnexRow]  # annex rows the question is about (linked occupations/items)
    offline: Answer
    route: str = ""  # the routing-table row that answered offline (answer.GroundedAnswerer.routes)
    # What the understanding stage made of the question (understand.Interpretation): the frame, its calibrated
    # probability, and whether it decided the reading. None: not known (a Grounding built by hand).
    frame: str | None = None
    confidence: float | None = None
    frame_applied: bool | None = None
    # A follow-up rewritten by the model, kept only when it resolves references and carries no fact the user did
    # not say (generate.guard_rewrite); used for retrieval and shown to the model, never answered offline.
    rewritten_question: str | None = None
    # Labels of notice sentences both retrievers (BM25 and vectors) rank at the top for the question: evidence by
    # rank agreement, not by a similarity threshold. None: not computed.
    agreed_evidence: list[str] | None = None


class StreamEvent(BaseModel):
    """A piece of a streamed answer: text deltas, then exactly one final `answer` event (docs/llm.md, "Streaming").

    token:   whole sentences; joined, the tokens are the final answer's text. `part` says whose: "offline" (the
             answer checked against the notice), "addition" (the model's checked addition), "answer" (the model's
             checked answer, where it replaces the offline one).
    offline: the offline answer, whole (`answer`), as soon as its sentences are out, while the model still reads.
    status:  one line on what is going on (`state`: "reading" while the model is asked, "done" when it is over).
    notice:  one line: what follows is the offline answer instead of a generated one.
    answer:  the final Answer."""

    kind: Literal["token", "answer", "notice", "status", "offline"]
    text: str = ""
    answer: Answer | None = None
    part: Literal["offline", "addition", "answer"] | None = None
    state: Literal["reading", "done"] | None = None
