"""Mechanical second pass over question-bank labels, against the parsed annex (itself checked against the source).

Usage: python scripts/review_bank.py FILE.jsonl [...] [--fix OUT_DIR]
Reports, per row: a frame not in corpus/frames.json; a subject whose occupation is not an annex name or whose item
differs from the annex; an annex citation not matching the subjects' items; a required batch word that contradicts
the single subject's batch; an answerable row with no required fact or citation. With --fix, rows whose only problem
is a wrong item number for a known occupation get the annex's item (subjects and citations), and rows with errors
that cannot be fixed are dropped; what was changed is printed."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH_WORDS = {"1": ("第一批", "第1批"), "2": ("第二批", "第2批")}


def load_annex():
    by_occ, items = {}, {}
    with (ROOT / "corpus" / "annex.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            by_occ.setdefault(r["occupation"], []).append(r)
            items.setdefault(int(r["item"]), []).append(r)
    return by_occ, items


def review(row: dict, frames: set[str], by_occ: dict, items: dict) -> tuple[list[str], dict | None]:
    problems, fixed = [], json.loads(json.dumps(row))
    if row.get("frame") not in frames:
        problems.append(f"frame {row.get('frame')!r} unknown")
    for key in ("id", "question", "answerable"):
        if key not in row:
            problems.append(f"missing {key}")
    subject_items = set()
    for s in fixed.get("subjects") or []:
        occ, item = s.get("occupation"), s.get("item")
        if occ and occ not in by_occ:
            spaced = {k.replace(" ", ""): k for k in by_occ}.get(occ.replace(" ", ""))
            if spaced:
                problems.append(f"fixable: {occ!r} is written {spaced!r} in the annex")
                s["occupation"] = occ = spaced
        if occ:
            if occ not in by_occ:
                problems.append(f"occupation {occ!r} not in the annex")
                continue
            true_item = int(by_occ[occ][0]["item"])
            if item != true_item:
                problems.append(f"fixable: {occ} is item {true_item}, not {item}")
                old = f"附件第{item}项"
                s["item"] = true_item
                fixed["citations"] = [f"附件第{true_item}项" if c == old else c for c in fixed.get("citations", [])]
            subject_items.add(true_item)
        elif item is not None:
            if item not in items:
                problems.append(f"item {item} not in the annex")
            subject_items.add(item)
    occs = [s["occupation"] for s in row.get("subjects") or [] if s.get("occupation") in by_occ]
    if row.get("answerable") and len(set(occs)) == 1 and row.get("frame") in ("batch", "cert_status"):
        batches = {r["batch"] for r in by_occ[occs[0]]}
        required = {w for alt in row.get("must_contain", []) for w in ([alt] if isinstance(alt, str) else alt)}
        for b, words in BATCH_WORDS.items():
            if b not in batches and any(w in required for w in words) and not any(
                    w in required for bb in batches if bb in BATCH_WORDS for w in BATCH_WORDS[bb]):
                problems.append(f"requires {words[0]} but {occs[0]} is batch {sorted(batches)}")
    if row.get("answerable") and not row.get("must_contain") and not row.get("citations"):
        problems.append("answerable but states no required fact or citation")
    if not row.get("answerable") and row.get("citations"):
        fixed["citations"] = []
    return problems, fixed


def main(argv: list[str]) -> int:
    fix_dir = None
    if "--fix" in argv:
        i = argv.index("--fix")
        fix_dir = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    frames = set(json.loads((ROOT / "corpus" / "frames.json").read_text(encoding="utf-8"))["frames"])
    by_occ, items = load_annex()
    bad_total = 0
    for name in argv:
        path = Path(name)
        kept, dropped, changed = [], 0, 0
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                print(f"{path.name}:{n}: not JSON; dropped")
                dropped += 1
                continue
            problems, fixed = review(row, frames, by_occ, items)
            hard = [p for p in problems if not p.startswith("fixable")]
            if problems:
                print(f"{path.name}:{n} {row.get('id')}: {'; '.join(problems)}")
            if hard:
                dropped += 1
                bad_total += 1
            else:
                changed += bool(problems)
                fixed.setdefault("category", fixed.get("frame"))
                fixed.setdefault("must_not_contain", [])
                fixed.setdefault("history", [])
                kept.append(fixed)
        print(f"{path.name}: {len(kept)} kept, {changed} fixed, {dropped} dropped")
        if fix_dir:
            fix_dir.mkdir(parents=True, exist_ok=True)
            (fix_dir / path.name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept),
                                             encoding="utf-8")
    return 1 if bad_total and not fix_dir else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
