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
MANIFEST_FILE = "manifest.json"
# Every corpus file an answer may rest on, in the order they are checked: the three parsed from the source, then
# the reviewed tables the linker and answer checks read. Whichever of these exist are hashed into the manifest.
DERIVED_FILES = (HEADER_FILE, CLAUSES_FILE, ANNEX_FILE)
CURATED_FILES = ("aliases.csv", "cues.csv", "sectors.csv", "profile.json", "intents.csv", "patterns.json",
                 "frames.json")  # reviewed by people; answers rest on them
BANK_GLOB = "bank/*.jsonl"  # the labelled question bank the frame model is trained from (hashed too)


def _declared(directory: Path, recorded: dict | None = None) -> tuple[str, ...]:
    """The corpus files the manifest covers: the fixed ones, and every bank file present or recorded."""
    bank = {p.relative_to(directory).as_posix() for p in directory.glob(BANK_GLOB)}
    bank |= {n for n in (recorded or {}) if n.startswith("bank/")}
    return DERIVED_FILES + CURATED_FILES + tuple(sorted(bank))

# Artifacts of the scan that carry no content.
_SCANNER_MARK = re.compile(r"^\s*扫描全能王\s*创建\s*$")
_PAGE_NUMBER = re.compile(r"^\s*[—–-]\s*\d+\s*[—–-]\s*$")
_TABLE_HEADER = re.compile(r"^序号\t")
_SENTENCE_END = ("。", "：", ":", "）", ")")


class ParseError(ValueError):
    """The source does not have the shape of the notice."""


class CorpusIntegrityError(ParseError):
    """A corpus file differs from the source or from the manifest: one line naming the file (and row)."""


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
        writer.writerow(_annex_cells(r))
    return {
        HEADER_FILE: json.dumps(header, ensure_ascii=False, indent=2) + "\n",
        CLAUSES_FILE: json.dumps(clauses, ensure_ascii=False, indent=2) + "\n",
        ANNEX_FILE: buf.getvalue(),
    }


def write_corpus(corpus: Corpus, directory: Path) -> list[Path]:
    """The parsed files, then the manifest that ties them and the reviewed tables to the source."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_corpus_files(corpus).items():
        path = directory / name
        _write_atomically(path, text)
        written.append(path)
    check_profile(directory, corpus)  # a reviewed profile.json must agree with the notice before it is recorded
    manifest = directory / MANIFEST_FILE
    _write_atomically(manifest, render_manifest(directory))
    written.append(manifest)
    return written


def _write_atomically(path: Path, text: str) -> None:
    # A reader never sees half a file: write beside it, then rename over it.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_manifest(directory: Path) -> str:
    """corpus/manifest.json: sha256 of the source and of every corpus file present among the declared ones."""
    files = {name: _sha256(directory / name) for name in _declared(directory) if (directory / name).exists()}
    manifest = {"source": SOURCE_NAME, "source_sha256": _sha256(directory / SOURCE_NAME), "files": files}
    return json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"


def parse_source(path: Path) -> Corpus:
    return NoticeParser().run(path.read_text(encoding="utf-8"))


def _shown(path: Path) -> str:
    """The path as the operator typed it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def verify_corpus(directory: Path, parsed: Corpus | None = None) -> str:
    """Check corpus/ against the source and the manifest; returns the manifest's sha256.

    Raises CorpusIntegrityError with one line naming the first file (and row) that differs. The annex rows,
    header and clauses are re-derived from the source text and compared field by field, so an edit is named
    precisely; the manifest hashes then cover the reviewed tables (aliases, cues, profile) and the rest."""
    fix = "run `assistant parse` to rewrite corpus/ from the source"
    source = directory / SOURCE_NAME
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.exists():
        raise CorpusIntegrityError(f"{_shown(manifest_path)} is missing; {fix}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        recorded = dict(manifest["files"])
        source_sha = manifest["source_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorpusIntegrityError(f"{_shown(manifest_path)} is not a corpus manifest ({exc}); {fix}") from None
    if _sha256(source) != source_sha:
        raise CorpusIntegrityError(
            f"{_shown(source)} differs from the text {_shown(manifest_path)} was made from; {fix}")
    parsed = parsed or parse_source(source)
    _compare_annex(directory / ANNEX_FILE, parsed, fix)
    fresh = render_corpus_files(parsed)
    for name in (HEADER_FILE, CLAUSES_FILE):
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != fresh[name]:
            raise CorpusIntegrityError(f"{_shown(path)}: {_first_difference(path, fresh[name])}; {fix}")
    check_profile(directory, parsed)  # named by its field, before the hash check would only say "changed"
    for name in _declared(directory, recorded):
        path = directory / name
        if name not in recorded:
            if path.exists():
                raise CorpusIntegrityError(f"{_shown(path)} is not in {_shown(manifest_path)}; {fix}")
            continue
        if not path.exists():
            raise CorpusIntegrityError(f"{_shown(path)} is missing (it is in {_shown(manifest_path)}); {fix}")
        if _sha256(path) != recorded[name]:
            raise CorpusIntegrityError(
                f"{_shown(path)} was changed after `assistant parse` (sha256 differs from {_shown(manifest_path)}); "
                f"review it, then {fix}")
    return hashlib.sha256(manifest_path.read_bytes()).hexdigest()


def check_profile(directory: Path, corpus: Corpus) -> None:
    """profile.json's facts against the notice (profile.verify_profile); ProfileError, one line, when they differ."""
    from .profile import PROFILE_FILE, ProfileError, verify_profile

    path = directory / PROFILE_FILE
    if not path.exists():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{_shown(path)}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{_shown(path)}: not a JSON object")
    verify_profile(data, corpus, Path(_shown(path)))


def _compare_annex(path: Path, parsed: Corpus, fix: str) -> None:
    if not path.exists():
        raise CorpusIntegrityError(f"{_shown(path)} is missing; {fix}")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ANNEX_COLUMNS:
            raise CorpusIntegrityError(f"{_shown(path)}: the header is not {','.join(ANNEX_COLUMNS)}; {fix}")
        on_disk = list(reader)
    expected = [_annex_cells(r) for r in parsed.annex_rows]
    for number, (cells, want) in enumerate(zip(on_disk, expected), 1):
        if cells == want:
            continue
        for column, got, truth in zip(ANNEX_COLUMNS, cells + [""] * len(want), want):
            if got != truth:
                raise CorpusIntegrityError(
                    f"{_shown(path)} row {number} ({want[3]}): {column} {got!r} differs from the source ({truth!r}); "
                    f"{fix}")
        raise CorpusIntegrityError(f"{_shown(path)} row {number} ({want[3]}): extra cells; {fix}")
    if len(on_disk) != len(expected):
        raise CorpusIntegrityError(
            f"{_shown(path)} has {len(on_disk)} rows, the source has {len(expected)}; {fix}")


def _first_difference(path: Path, expected: str) -> str:
    if not path.exists():
        return "missing"
    got = path.read_text(encoding="utf-8").splitlines()
    for number, (a, b) in enumerate(zip(got, expected.splitlines()), 1):
        if a != b:
            return f"line {number} {a.strip()[:60]!r} differs from the source ({b.strip()[:60]!r})"
    return "its length differs from a fresh parse of the source"


def _annex_cells(r: AnnexRow) -> list[str]:
    return [str(r.position), str(r.item), r.qualification, r.occupation, "、".join(r.departments), r.batch]


def load_corpus(directory: Path) -> Corpus:
    """Read the parsed corpus files after checking them against the source and the manifest.

    A file that differs is an error (CorpusIntegrityError), never silently re-parsed: an answer must not rest on
    a file that nobody can tie to the notice."""
    directory = Path(directory)
    try:
        return _load_verified(directory)
    except (UnicodeDecodeError, csv.Error, KeyError, TypeError) as exc:
        # Bytes that are not UTF-8, or a file that lost its shape: still one line, never a traceback.
        raise CorpusIntegrityError(f"{_shown(directory)}: a corpus file cannot be read ({exc}); "
                                   "run `assistant parse` to rewrite corpus/ from the source") from None


def _load_verified(directory: Path) -> Corpus:
    source = directory / SOURCE_NAME
    parsed = parse_source(source)
    manifest_sha = verify_corpus(directory, parsed)
    header = json.loads((directory / HEADER_FILE).read_text(encoding="utf-8"))
    sha = header.pop("source_sha256")
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
        manifest_sha256=manifest_sha,
    )
