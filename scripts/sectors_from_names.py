"""Seed corpus/sectors.csv with the sector words found in the annex's own names, beside the reviewed rows.

A word of an item or occupation name (a jieba word of the general dictionary, two characters or more, and its first two
characters when those are a word: 建筑安装 → 建筑) is a sector word when it is found in the names of 1–4 items and
nowhere in the notice body (安全, 评价, 技能 are words of the body; 人员, 服务, 制造 of every other name). Its rows are the
annex rows whose names contain it. Rows written by a reviewer (source `reviewed`) are kept as they are; rows of this
script carry source `names` and are rewritten on every run. Run after `assistant parse`, then review the diff.

    python scripts/sectors_from_names.py [corpus_dir]"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import jieba

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.link import SECTORS_FILE, SECTOR_COLUMNS, _fold  # noqa: E402
from assistant.parse import load_corpus  # noqa: E402

MAX_ITEMS = 4


def main() -> int:
    corpus_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "corpus"
    corpus = load_corpus(corpus_dir)
    names: dict[int, str] = {}
    for r in corpus.annex_rows:
        names[r.item] = names.get(r.item, "") + f"{_fold(r.qualification)}|{_fold(r.occupation)}|"
    body = "".join(_fold(c.text) for c in corpus.clauses)
    plain = jieba.Tokenizer()
    plain.initialize()
    words = {w for r in corpus.annex_rows for name in (r.qualification, r.occupation)
             for w in plain.lcut(_fold(name)) if len(w) >= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", w)}
    words |= {w[:2] for w in words if len(w) > 2 and plain.FREQ.get(w[:2])}
    vocabulary = sorted(w for w in words if 1 <= sum(w in n for n in names.values()) <= MAX_ITEMS and w not in body)
    path = corpus_dir / SECTORS_FILE
    kept = []
    if path.exists():
        with path.open(encoding="utf-8", newline="") as fh:
            kept = [r for r in csv.DictReader(fh) if r["source"] != "names"]
    rows = list(kept)
    for w in vocabulary:
        for r in corpus.annex_rows:
            if w in _fold(r.qualification):
                rows.append({"sector": w, "item": str(r.item), "occupation": "", "source": "names"})
                continue
            if w in _fold(r.occupation):
                rows.append({"sector": w, "item": str(r.item), "occupation": _fold(r.occupation), "source": "names"})
    unique: dict[tuple, dict] = {}
    for r in rows:  # a reviewed row stays reviewed when the names give it again
        unique.setdefault((r["sector"], r["item"], r["occupation"]), r)
    unique = list(unique.values())
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, SECTOR_COLUMNS, lineterminator="\n")
        out.writeheader()
        out.writerows(unique)
    print(f"{path}: {len(kept)} reviewed rows, {len(unique) - len(kept)} rows from {len(vocabulary)} name words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
