"""What the pages show for one answer, computed on the server so that every front end shows the same thing:
numbered source cards (annex items as labelled fields, clauses with their whole text) and the plain-text copy
a helpdesk agent pastes into a reply.

The answerer fills `Citation.marker` and, for annex sources, `Citation.rows`; where it has not (an older answer,
the LLM path), the cards are numbered in citation order and annex fields come from the corpus itself."""
from __future__ import annotations

import re
from urllib.parse import urlencode

from pydantic import BaseModel, Field, computed_field

from assistant.profile import NoticeProfile
from assistant.records import BATCH_LICENSED, Answer, AnnexRow, Citation, Corpus, SourceRow

DOC = "人社厅发〔2020〕80号"
ANNEX_TAB_QUERY = "annex"  # "/?annex=1&batch=第二批" opens the 附件目录 tab with that filter

LICENSED_WORDS = "拟依法调整为准入类职业资格"


class CardRow(BaseModel):
    """Occupations of one annex item that share departments and batch: one block of labelled fields."""

    occupations: list[str]
    departments: str
    batch: str  # 第一批 / 第二批 / 拟依法调整为准入类职业资格
    deadline: str | None = None

    @computed_field
    @property
    def when(self) -> str:
        """批次与时间 in words: "第二批，2020年12月31日前退出" or the 准入类 note."""
        return f"{self.batch}，{self.deadline}退出" if self.deadline else self.batch


class ListEntry(BaseModel):
    """One line of a listed answer as the list card shows it: the annex item with the occupations the line names."""

    item: int
    qualification: str
    rows: list[CardRow] = Field(default_factory=list)


class SourceCard(BaseModel):
    """One numbered source as the pages show it."""

    marker: int
    source: str  # "annex", "notice", or "list": every annex item a listed answer names, one entry each
    label: str  # 附件第1项 / 第二条 / 文头
    quote: str = ""  # the quoted sentence (clauses) or the row as printed (annex)
    item: int | None = None
    qualification: str | None = None  # 类别（职业资格名称）, annex sources
    rows: list[CardRow] = Field(default_factory=list)
    clause: int | None = None
    clause_text: str | None = None  # the whole clause, for "read the whole clause"
    entries: list[ListEntry] = Field(default_factory=list)  # source "list": one per listed annex item, in answer order


def _batch_words(batch: str) -> str:
    """A source row's batch as the pages show it: the answerer's words (the profile's), the 准入类 note shortened."""
    return LICENSED_WORDS if "准入" in batch else batch.strip()


def annex_batch_words(row: AnnexRow, profile: NoticeProfile) -> str:
    """批次 of a row as the pages show it: the profile's 第一批 …, or the 准入类 note."""
    return LICENSED_WORDS if row.is_licensed else profile.batch_word(row.batch)


def rows_from_corpus(rows: list[AnnexRow], profile: NoticeProfile) -> list[CardRow]:
    """Group an item's annex rows (in annex order) by (departments, batch): one CardRow per group; batch words and
    deadlines are the profile's."""
    groups: dict[tuple, CardRow] = {}
    for r in rows:
        key = (r.departments, r.batch)
        if key not in groups:
            groups[key] = CardRow(occupations=[], departments=r.departments_text(),
                                  batch=annex_batch_words(r, profile), deadline=profile.deadline(r.batch))
        if r.occupation not in groups[key].occupations:  # item 25 prints one name twice
            groups[key].occupations.append(r.occupation)
    return list(groups.values())


def _from_source_row(row: SourceRow) -> CardRow:
    return CardRow(occupations=list(row.occupations), departments=row.departments, batch=_batch_words(row.batch),
                   deadline=row.deadline)


def source_cards(answer: Answer, corpus: Corpus, profile: NoticeProfile) -> list[SourceCard]:
    """The answer's citations as cards ordered by marker; markers the answer lacks are given in citation order."""
    used = {c.marker for c in answer.citations if c.marker is not None}
    next_free = 1
    cards = []
    for c in answer.citations:
        marker = c.marker
        if marker is None:
            while next_free in used:
                next_free += 1
            marker = next_free
            used.add(marker)
        cards.append(_card(c, marker, corpus, profile))
    return sorted(cards, key=lambda card: card.marker)


def _card(c: Citation, marker: int, corpus: Corpus, profile: NoticeProfile) -> SourceCard:
    card = SourceCard(marker=marker, source=c.source, label=c.label, quote=(c.quote or "").strip(),
                      item=c.item, clause=c.clause)
    if c.source == "annex" and c.item is not None:
        item_rows = corpus.rows_of_item(c.item)
        card.qualification = c.qualification or (item_rows[0].qualification if item_rows else None)
        if c.rows:
            card.rows = [_from_source_row(r) for r in c.rows]
        else:
            # Only the rows the citation quotes, when it quotes some; otherwise the whole item.
            quoted = [r for r in item_rows if r.occupation in (c.quote or "")]
            card.rows = rows_from_corpus(quoted or item_rows, profile)
    elif c.source == "notice" and c.clause is not None and 0 <= c.clause < len(corpus.clauses):
        card.clause_text = corpus.clause(c.clause).text
    return card


_LIST_LINE = re.compile(r"^\s*(?:[-*+•・]|\d+[.)、])\s*(?:附件)?第(\d{1,3})项(.*)$")


def listed_items(text: str) -> list[tuple[int, str]]:
    """(item, rest of the line) of each list line of an answer that names an annex item ("- 第1项 机械设备修理人员：电工")."""
    out, seen = [], set()
    for line in (text or "").split("\n"):
        m = _LIST_LINE.match(line)
        if m and int(m.group(1)) not in seen:
            seen.add(int(m.group(1)))
            out.append((int(m.group(1)), m.group(2)))
    return out


def list_card(answer: Answer, cards: list[SourceCard], corpus: Corpus, profile: NoticeProfile) -> SourceCard | None:
    """A listed answer names more annex items than it cites (answers cite at most a dozen sources): one more card
    listing every item the list names, with its occupations, departments, batch and time, so that each listed line
    has a source. None when the answer lists fewer than two items."""
    listed = listed_items(answer.answer)
    if len(listed) < 2:
        return None
    entries = []
    for item, line in listed:
        item_rows = corpus.rows_of_item(item)
        if not item_rows:
            continue
        named = [r for r in item_rows if r.occupation in line]
        entries.append(ListEntry(item=item, qualification=item_rows[0].qualification,
                                 rows=rows_from_corpus(named or item_rows, profile)))
    if len(entries) < 2:
        return None
    marker = max((c.marker for c in cards), default=0) + 1
    return SourceCard(marker=marker, source="list", label=f"附件所列各项（{len(entries)}项）", entries=entries,
                      quote="；".join(f"第{e.item}项 {e.qualification}" for e in entries))


def annex_link(answer: Answer, profile: NoticeProfile) -> str | None:
    """The 附件目录 address that shows a summarised list whole, from `Answer.annex_filter`."""
    f = answer.annex_filter or {}
    params: dict[str, str] = {}
    if f.get("batch"):
        batch = LICENSED_WORDS if f["batch"] == BATCH_LICENSED else profile.batch_word(f["batch"])
        params["batch"] = batch
    for key in ("department", "keyword"):
        if f.get(key):
            params[key] = f[key]
    if not params:
        return None
    return "./?" + urlencode({ANNEX_TAB_QUERY: "1", **params})


# ---- plain text --------------------------------------------------------------------------------------

_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_BULLET = re.compile(r"(?m)^(\s*)[-*+]\s+")
_HEADING = re.compile(r"(?m)^\s*#{1,6}\s+")
_CODE = re.compile(r"`([^`\n]*)`")


def plain_answer_text(text: str) -> str:
    """The answer text without Markdown: emphasis and code marks dropped, links as "text（address）", bullets as ・."""
    out = _LINK.sub(lambda m: f"{m.group(1)}（{m.group(2)}）", text or "")
    out = _BOLD.sub(r"\2", out)
    out = _CODE.sub(r"\1", out)
    out = _HEADING.sub("", out)
    out = _BULLET.sub(r"\1・", out)
    return out.replace("**", "").strip()


def card_text(card: SourceCard) -> str:
    """One source as a line of plain text: "[1] 附件第1项 机械设备修理人员：电工（…）" or "[2] 第二条：「…」"."""
    head = f"[{card.marker}] {card.label}"
    if card.source == "annex" and card.rows:
        parts = []
        for row in card.rows:
            parts.append(f"{'、'.join(row.occupations)}（实施部门：{row.departments}；{row.when}）")
        qualification = f"「{card.qualification}」" if card.qualification else ""
        return f"{head}{qualification}：{'；'.join(parts)}"
    if card.source == "list" and card.entries:
        parts = []
        for entry in card.entries:
            rows = "；".join(f"{'、'.join(r.occupations)}（实施部门：{r.departments}；{r.when}）" for r in entry.rows)
            parts.append(f"第{entry.item}项「{entry.qualification}」{rows}")
        return f"{head}：" + "".join("\n    " + p for p in parts)
    quote = " ".join(card.quote.split())
    return f"{head}：「{quote}」" if quote else head


def plain_text(answer: Answer, cards: list[SourceCard]) -> str:
    """The answer and its numbered sources as plain text, for pasting into a reply."""
    text = plain_answer_text(answer.answer)
    for card in cards:  # a generated answer names its sources ([第二条]); the copy numbers them like the list below
        text = text.replace(f"[{card.label}]", f"[{card.marker}]")
    lines = [text]
    if cards:
        lines += ["", f"依据（{DOC}）："] + [card_text(card) for card in cards]
    return "\n".join(lines)


def presented(answer: Answer, corpus: Corpus, profile: NoticeProfile) -> dict:
    """What the chat pages receive for one answer: the JSON contract plus cards, plain text and the annex link."""
    cards = source_cards(answer, corpus, profile)
    listed = list_card(answer, cards, corpus, profile)
    if listed is not None:
        cards.append(listed)
    return {
        "answer": answer.to_dict(),
        "cards": [card.model_dump(mode="json") for card in cards],
        "plain": plain_text(answer, cards),
        "annex_link": annex_link(answer, profile),
    }
