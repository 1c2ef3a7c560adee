"""Answer length of the offline answerer on the evaluation sets: median characters by kind of question, and the most
citations in one answer. Kinds come from what each case expects, not from the answer:
- occupation: answerable, expects an annex citation, not a list or count question;
- clause: answerable, expects only clause citations (第N条, 开头);
- decline: must be declined.

    python benchmarks/answer_length.py [tests/eval/questions.jsonl ...]

Run it on two checkouts (PYTHONPATH=<checkout>) to compare before and after."""
from __future__ import annotations

import os
import re
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from assistant import Assistant  # noqa: E402
from assistant.config import REPO_ROOT  # noqa: E402
from assistant.evaluate import load_cases  # noqa: E402

CLAUSE = re.compile(r"^(第[一二三四五六]条|开头)$")


def kind(case) -> str | None:
    if not case.answerable:
        return "decline"
    if case.category in ("list", "list_count", "count"):
        return None
    if any(c.startswith("附件") for c in case.citations):
        return "occupation"
    if case.citations and all(CLAUSE.match(c) for c in case.citations):
        return "clause"
    return None


def main(paths: list[Path]) -> None:
    a = Assistant.load()
    lengths: dict[str, list[int]] = {"occupation": [], "clause": [], "decline": []}
    most = 0
    for path in paths:
        for case in load_cases(path):
            answer = a.ask(case.question, case.history)
            most = max(most, len(answer.citations))
            k = kind(case)
            if k:
                lengths[k].append(len(re.sub(r"\[\d+\]", "", answer.answer)))
    print(f"sets: {', '.join(p.name for p in paths)}")
    for k, values in lengths.items():
        print(f"{k}: median {statistics.median(values):.0f} characters over {len(values)} answers")
    print(f"most citations in one answer: {most}")


if __name__ == "__main__":
    default = [REPO_ROOT / "tests" / "eval" / n for n in ("questions.jsonl", "holdout.jsonl", "holdout2.jsonl")]
    main([Path(p) for p in sys.argv[1:]] or default)
