"""Parse stage: the scanned notice text → a typed Corpus, and the reviewable files in corpus/."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

from .records import CLAUSE_NUMERALS, AnnexRow, Clause, Corpus, HeaderFacts

SOURCE_NAME = "notice-2020-80.txt"
HEADER_FILE = "header.json"
CLAUSES_FILE = "clauses.json"
ANNEX_FILE = "annex.csv"
ANNEX_COLUMNS = ["position", "item", "qualification", "occupation", "departments", "batch"]

# Artifacts of the scan that carry no content.
_SCANNER_MARK = re.compile(r"^\s*扫描全能王\s*创建\s*$")
_PAGE_NUMBER = re.compile(r"^\s*[—–-]\s*\d+\s*[—–-]\s*$")
_TABLE_HEADER = re.compile(r"^序号\t")
_SENTENCE_END = ("。", "：", ":", "）", ")")


class ParseError(ValueError):
    """The source does not have the shape of the notice."""


class NoticeParser:
    """Turns the notice text as recognised from the scan into a Corpus."""

    def run(self, text: str) -> Corpus:
        lines = [ln for ln in text.splitlines() if not (_SCANNER_MARK.match(ln) or _PAGE_NUMBER.match(ln))]
        try:
            annex_at = next(i for i, ln in enumerate(lines) if ln.strip() == "附件")
        except StopIteration as exc:
            raise ParseError("no 附件 heading found") from exc
        body, annex = lines[:annex_at], lines[annex_at + 1 :]
        paragraphs = _paragraphs(body)
        header, clauses = _header_and_clauses(paragraphs, annex)
        rows = _annex_rows(annex)
        return Corpus(
            header=header,
            clauses=tuple(clauses),
            annex_rows=tuple(rows),
            source_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )


def _paragraphs(lines: list[str]) -> list[str]:
    """Non-empty lines, with a sentence broken across a page break joined back together."""
    paragraphs: list[str] = []
    open_fragment = False
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if open_fragment and paragraphs:
            paragraphs[-1] += line
        else:
            paragraphs.append(line)
        # Body paragraphs end in 。 or ：; anything else was cut by a page break.
        # The bold title (**…**) spans several lines and is joined the same way.
        text = paragraphs[-1]
        if text.startswith("**"):
            open_fragment = not (len(text) > 2 and text.endswith("**"))
        else:
            open_fragment = _is_body_text(text) and not text.endswith(_SENTENCE_END)
    return paragraphs


def _is_body_text(text: str) -> bool:
    return len(text) > 40 or bool(re.match(r"^[一二三四五六]、", text))


def _header_and_clauses(paragraphs: list[str], annex: list[str]) -> tuple[HeaderFacts, list[Clause]]:
    doc_number = _first(paragraphs, r"^\S+〔\d{4}〕\d+号$", "文号")
    title = _first(paragraphs, r"^\*\*.+\*\*$", "标题").strip("*")
    recipients_line = _first(paragraphs, r"^各.+：$", "主送单位")
    start = paragraphs.index(recipients_line) + 1
    body: list[str] = []
    for p in paragraphs[start:]:
        if p.startswith("附件："):
            break
        body.append(p)
    opening = body[0]
    clauses = [Clause(number=0, text=opening)]
    for number in range(1, 7):
        prefix = f"{CLAUSE_NUMERALS[number]}、"
        matches = [p for p in body if p.startswith(prefix)]
        if len(matches) != 1:
            raise ParseError(f"clause {prefix} found {len(matches)} times")
        clauses.append(Clause(number=number, text=matches[0]))

    tail = [ln.strip() for ln in annex if ln.strip() and "\t" not in ln]
    date_line = _first(tail, r"^\d{4}年\d{1,2}月\d{1,2}日印发$", "印发日期")
    issuer = tail[tail.index(date_line) - 1]
    annex_title_line = _first(tail, r"^水平评价类.+安排", "附件标题")
    header = HeaderFacts(
        doc_number=doc_number,
        title=title,
        issuer=issuer,
        recipients=recipients_line.rstrip("："),
        issue_date=date_line.removesuffix("印发"),
        contact=_inner(_first(paragraphs, r"联系单位", "联系单位"), "联系单位："),
        disclosure=_inner(_first(paragraphs, r"^\(此件.+\)$|^（此件.+）$", "公开属性"), "此件"),
        annex_title=re.split(r"\s*[（(]", annex_title_line)[0],
    )
    return header, clauses


def _annex_rows(lines: list[str]) -> list[AnnexRow]:
    rows: list[AnnexRow] = []
    item = 0
    qualification = departments = batch = ""
    for line in lines:
        if "\t" not in line or _TABLE_HEADER.match(line):
            continue
        cells = [c.strip() for c in line.split("\t")] + [""] * 5
        number, name, occupations, dept_cell, batch_cell = cells[:5]
        if number:
            item, qualification = int(number), name
            departments = batch = ""  # merged cells never reach across items
        if not item:
            raise ParseError(f"annex row before the first item: {line!r}")
        departments = dept_cell or departments
        batch = batch_cell or batch
        if not (departments and batch):
            raise ParseError(f"annex item {item} has a blank cell with nothing above it: {line!r}")
        for occupation in occupations.split("、"):
            rows.append(
                AnnexRow(
                    item=item,
                    qualification=qualification,
                    occupation=occupation.strip(),
                    departments=tuple(d.strip() for d in departments.split("、")),
                    batch=batch,
                    position=len(rows) + 1,
                )
            )
    return rows


def _first(paragraphs: list[str], pattern: str, what: str) -> str:
    for p in paragraphs:
        if re.search(pattern, p):
            return p
    raise ParseError(f"{what} not found")


def _inner(text: str, after: str) -> str:
    return re.sub(r"^[（(]|[）)]$", "", text.strip()).split(after, 1)[-1].strip()


# ---- the reviewable files in corpus/ -------------------------------------------------------


def render_corpus_files(corpus: Corpus) -> dict[str, str]:
    """File name → exact text of the parsed corpus as it is kept in corpus/."""
    header = {"source": SOURCE_NAME, "source_sha256": corpus.source_sha256, **corpus.header.model_dump()}
    clauses = [{"clause": c.number, "label": c.label, "text": c.text} for c in corpus.clauses]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ANNEX_COLUMNS)
    for r in corpus.annex_rows:
        writer.writerow([r.position, r.item, r.qualification, r.occupation, "、".join(r.departments), r.batch])
    return {
        HEADER_FILE: json.dumps(header, ensure_ascii=False, indent=2) + "\n",
        CLAUSES_FILE: json.dumps(clauses, ensure_ascii=False, indent=2) + "\n",
        ANNEX_FILE: buf.getvalue(),
    }


def write_corpus(corpus: Corpus, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_corpus_files(corpus).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def parse_source(path: Path) -> Corpus:
    return NoticeParser().run(path.read_text(encoding="utf-8"))


def load_corpus(directory: Path) -> Corpus:
    """Read the parsed corpus files; refuse files that were parsed from another source text."""
    source = directory / SOURCE_NAME
    header = json.loads((directory / HEADER_FILE).read_text(encoding="utf-8"))
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    if header.pop("source_sha256") != sha:
        raise ParseError(
            f"{directory / HEADER_FILE} was parsed from another source text; run `assistant parse` again"
        )
    header.pop("source")
    clauses = json.loads((directory / CLAUSES_FILE).read_text(encoding="utf-8"))
    with (directory / ANNEX_FILE).open(encoding="utf-8", newline="") as fh:
        rows = [
            AnnexRow(
                position=int(r["position"]),
                item=int(r["item"]),
                qualification=r["qualification"],
                occupation=r["occupation"],
                departments=tuple(r["departments"].split("、")),
                batch=r["batch"],
            )
            for r in csv.DictReader(fh)
        ]
    return Corpus(
        header=HeaderFacts(**header),
        clauses=tuple(Clause(number=c["clause"], text=c["text"]) for c in clauses),
        annex_rows=tuple(rows),
        source_sha256=sha,
    )
