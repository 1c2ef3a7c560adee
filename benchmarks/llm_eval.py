"""Generated answers measured against any OpenAI-compatible endpoint, per evaluation set.

    python benchmarks/llm_eval.py --base-url http://127.0.0.1:8080/v1 --model qwen \
        --set tests/eval/questions.jsonl --set tests/eval/holdout.jsonl --limit 20 --out var/llm_eval.jsonl

Reports per set: share of answers in `llm` mode (overall, and where the offline answer is correct), which path
answered (offline / rephrase / second_reader / evidence, and the rule that chose it), the answers where the model
**added** something the offline answer lacked (a fact, source or sentence not in it; to be audited by reading them)
or **fixed** an offline failure (offline wrong, final right), accuracy of what the user ends up with (against the
offline answerer's on the same cases), fallback reasons, sentences dropped by each check, wrong facts shown, time to
the first shown sentence (any token, the offline answer's included) and total time.

"Wrong facts shown" is an audit independent of the sentence checks: a shown answer is wrong when it contains a
string the case forbids, names a batch or deadline other than the case's expected one, states a number or date
that neither the notice nor the offline answer has, answers a question that must be declined, or is contradicted
by the annex. Every record (question, raw model output, shown text, dropped sentences) goes to --out, so the
figures can be checked by reading them."""
from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.assistant import Assistant  # noqa: E402
from assistant.checks import batches_in, dates_in, squeeze  # noqa: E402
from assistant.config import Config  # noqa: E402
from assistant.evaluate import EvalCase, check_answer, load_cases  # noqa: E402

MARKER = re.compile(r"\[[^\[\]]{1,40}\]")


def added_facts(shown: str, offline: str, checker) -> list[str]:
    """What a shown answer states that the offline answer does not: batches, dates, numbers, departments,
    occupations, and sentences none of whose content words the offline answer has (a candidate list, audited by
    hand: a restatement in other words is not an addition)."""
    if checker is None or not shown:
        return []
    new = sorted({f"{k}:{v}" for k, v in checker.facts_of(shown) - checker.facts_of(offline)})
    flat_offline = squeeze(MARKER.sub("", offline))
    from assistant.checks import content_words

    for sentence in re.findall(r"[^。！？\n]+[。！？]?", MARKER.sub("", shown)):
        words = content_words(squeeze(sentence))
        if words and sum(w in flat_offline for w in words) / len(words) < 0.5:
            new.append(f"sentence:{sentence.strip()[:40]}")
    return new


class Capture(logging.Handler):
    """Collects the generator's log lines of one question: dropped sentences and the raw model text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.dropped: list[str] = []
        self.raw: list[str] = []
        self.first_piece: float | None = None  # monotonic time of the model's first output

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg == "first generated piece":
            self.first_piece = time.monotonic()
        elif msg.startswith("dropped a generated sentence: "):
            self.dropped.append(msg.removeprefix("dropped a generated sentence: "))
        elif msg.startswith("raw generated text: "):
            self.raw.append(msg.removeprefix("raw generated text: "))


def wrong_facts(case: EvalCase, shown: str, answered: bool, offline_text: str, notice_text: str,
                checker) -> list[str]:
    """Facts in the shown text that are wrong for this case (see the module docstring)."""
    text = MARKER.sub("", shown)
    text = re.sub(r"(^|\n)\s*\d{1,2}[.、．)）]\s*", r"\1", text)  # a list's own numbering is not a fact
    flat = squeeze(text)
    wrong = [f"forbidden:{s}" for s in case.must_not_contain if s in text]
    if not case.answerable and answered:
        wrong.append("answered a question that must be declined")
    expected = " ".join(o for fact in case.must_contain for o in ([fact] if isinstance(fact, str) else fact))
    clauses = checker.clause_texts if checker is not None else {}
    for sentence in re.findall(r"[^。！？\n]+[。！？]?(?:\[[^\]]+\])*", shown):
        cited = re.findall(r"\[([^\]]+)\]", sentence)
        plain = squeeze(MARKER.sub("", sentence))
        # a sentence quoting a cited clause word for word states that clause, not an answer about the case
        if any(plain.rstrip("。") in squeeze(clauses.get(label, "")) for label in cited if label in clauses):
            continue
        for label, found, allowed in (
            ("batch", batches_in(plain, skip_negated=True), batches_in(squeeze(expected + offline_text))),
            ("date", dates_in(plain), dates_in(squeeze(expected + offline_text + notice_text))),
        ):
            if allowed and found - allowed:
                wrong.append(f"{label}:{sorted(found - allowed)}")
    known_numbers = set(re.findall(r"\d+", squeeze(notice_text + offline_text + expected + case.question)))
    invented = [n for n in re.findall(r"\d+", flat) if n not in known_numbers]
    if invented:
        wrong.append(f"numbers:{invented}")
    if checker is not None:
        wrong += [f"annex:{p}" for p in checker.contradictions(text)]
    return wrong


def pick(cases: list[EvalCase], limit: int | None) -> list[EvalCase]:
    """An even spread over the set (every k-th case), so each category is represented."""
    if not limit or limit >= len(cases):
        return cases
    step = len(cases) / limit
    return [cases[int(i * step)] for i in range(limit)]


def run_set(assistant: Assistant, path: Path, limit: int | None, out, recorded: dict | None = None) -> dict:
    """Every picked case through the LLM path; with `recorded` ({(set, id): raw output}), the recorded outputs
    are replayed through the current checks instead of asking the endpoint (times are then not measured)."""
    cases = pick(load_cases(path), limit)
    if recorded is not None:
        cases = [c for c in load_cases(path) if (path.name, c.id) in recorded]
    notice_text = assistant.llm._facts.notice_text if assistant.llm._facts else ""
    capture = Capture()
    gen_log = logging.getLogger("assistant.generate")
    gen_log.addHandler(capture)
    gen_log.setLevel(logging.DEBUG)
    rows = []
    try:
        for case in cases:
            capture.dropped.clear()
            capture.raw.clear()
            capture.first_piece = None
            history = [t.model_dump() for t in case.history]
            offline = assistant.ask(case.question, history, use_llm=False)
            off_ok, _, _ = check_answer(case, offline.answered, offline.answer, [c.label for c in offline.citations])
            start = time.monotonic()
            first = None
            first_event = None
            shown = ""
            final = None
            if recorded is not None:
                grounding = assistant.ground(case.question, history, use_llm=False)
                raw = recorded[(path.name, case.id)]
                pieces = [raw[i:i + 4] for i in range(0, len(raw or ""), 4)]  # as a stream delivers it
                events = assistant.llm.checked(grounding, iter(pieces))
            else:
                events = assistant.stream(case.question, history, use_llm=True)
            gate_wait = None
            first_model = None  # the first sentence the model wrote that was shown (an addition or its answer)
            first_part = None
            kinds = []
            for event in events:
                now = time.monotonic() - start
                if first_event is None:
                    first_event = now
                kinds.append(event.kind if event.kind != "token" else f"token:{event.part or '-'}")
                if event.kind == "token":
                    if first is None:
                        first, first_part = now, event.part
                    if event.part in ("addition", "answer") and first_model is None:
                        first_model = now
                        if capture.first_piece is not None:
                            gate_wait = time.monotonic() - capture.first_piece
                    shown += event.text
                elif event.kind == "answer":
                    final = event.answer
            total = time.monotonic() - start
            ok, cited, missing = check_answer(case, final.answered, final.answer, [c.label for c in final.citations])
            checker = None
            if final.mode == "llm":
                grounding = assistant.ground(case.question, history, use_llm=False)
                checker = assistant.llm.checker(grounding)
            # What the model wrote and the user saw: the addition after the offline answer, or its whole answer.
            model_text = final.addition or (shown if final.mode == "llm" else "")
            wrong = wrong_facts(case, model_text, final.answered, offline.answer, notice_text, checker) \
                if final.mode == "llm" else []
            adds = added_facts(model_text, offline.answer, checker) if final.mode == "llm" else []
            row = {"set": path.name, "id": case.id, "category": case.category, "question": case.question,
                   "mode": final.mode, "path": final.path, "path_reason": final.path_reason,
                   "fallback_reason": final.fallback_reason, "answered": final.answered,
                   "added": adds, "fixed": bool(final.mode == "llm" and ok and not off_ok),
                   "offline": offline.answer, "first_event_s": None if first_event is None else round(first_event, 2),
                   "correct": ok, "offline_correct": off_ok, "missing": missing, "wrong_facts": wrong,
                   "first_shown_s": None if first is None else round(first, 2), "total_s": round(total, 2),
                   "first_shown_part": first_part, "events": compact(kinds), "addition": final.addition,
                   "first_model_sentence_s": None if first_model is None else round(first_model, 2),
                   "first_shown_after_first_token_s": None if gate_wait is None or final.mode != "llm"
                   else round(gate_wait, 2),
                   "shown": shown, "raw": capture.raw[-1] if capture.raw else None, "dropped": list(capture.dropped)}
            if recorded is not None:
                row["first_shown_s"] = row["total_s"] = row["first_shown_after_first_token_s"] = None
                row["first_event_s"] = row["first_model_sentence_s"] = None
            rows.append(row)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            print(f"{case.id} {final.mode:7} {final.path or '-':13} {'ok ' if ok else 'BAD'} {total:5.1f}s "
                  f"{final.fallback_reason or ''} {'WRONG ' + str(wrong) if wrong else ''}", file=sys.stderr, flush=True)
    finally:
        gen_log.removeHandler(capture)
    return summarise(path.name, rows)


def compact(kinds: list[str]) -> list[str]:
    """Event kinds in order, repeats folded: ["token:offline×2", "offline", "status", …]."""
    out: list[list] = []
    for k in kinds:
        if out and out[-1][0] == k:
            out[-1][1] += 1
        else:
            out.append([k, 1])
    return [k if n == 1 else f"{k}×{n}" for k, n in out]


def summarise(name: str, rows: list[dict]) -> dict:
    n = len(rows)
    llm = [r for r in rows if r["mode"] == "llm"]
    off_ok = [r for r in rows if r["offline_correct"]]
    firsts = sorted(r["first_shown_s"] for r in llm if r["first_shown_s"] is not None)
    firsts_all = sorted(r["first_shown_s"] for r in rows if r["first_shown_s"] is not None)
    sent = [r for r in rows if r.get("path") and r["path"] != "offline"]
    gated = sorted(r["first_shown_after_first_token_s"] for r in llm
                   if r.get("first_shown_after_first_token_s") is not None)
    totals = sorted(r["total_s"] for r in rows if r["total_s"] is not None)
    dropped = Counter(d.split(":", 1)[0] for r in rows for d in r["dropped"])
    return {
        "set": name, "questions": n,
        "llm_share": len(llm) / n if n else 0.0,
        "llm_share_where_offline_correct": (sum(r["mode"] == "llm" for r in off_ok) / len(off_ok)) if off_ok else 0.0,
        "accuracy": sum(r["correct"] for r in rows) / n if n else 0.0,
        "offline_accuracy": len(off_ok) / n if n else 0.0,
        "fallback_reasons": dict(Counter(r["fallback_reason"] for r in rows if r["fallback_reason"])),
        "dropped_sentences": dict(dropped),
        "wrong_facts_shown": sum(1 for r in rows if r["wrong_facts"]),
        "paths": dict(Counter(r.get("path") or "-" for r in rows)),
        "path_rules": dict(Counter((r.get("path_reason") or "-").split(":", 1)[0] for r in rows)),
        "sent_to_model": len(sent),
        "added_candidates": sum(1 for r in rows if r.get("added")),
        "fixed_offline_failure": sum(1 for r in rows if r.get("fixed")),
        "first_shown_s_median_all": statistics.median(firsts_all) if firsts_all else None,
        "first_shown_s_median_sent": _median([r["first_shown_s"] for r in sent]),
        "first_shown_s_max_sent": max((r["first_shown_s"] for r in sent if r["first_shown_s"] is not None), default=None),
        "first_event_s_max_sent": max((r["first_event_s"] for r in sent if r.get("first_event_s") is not None),
                                      default=None),
        "additions_shown": sum(1 for r in rows if r.get("addition")),
        "total_s_median_sent": statistics.median(r["total_s"] for r in sent) if sent and sent[0]["total_s"] is not None
        else None,
        "first_shown_s_median": statistics.median(firsts) if firsts else None,
        "first_shown_s_p90": firsts[int(0.9 * (len(firsts) - 1))] if firsts else None,
        "total_s_median": statistics.median(totals) if totals else None,
        "first_shown_after_first_token_s_median": statistics.median(gated) if gated else None,
        "total_s_sum": round(sum(totals), 1) if totals else None,
    }


def table(summaries: list[dict]) -> str:
    head = ("| set | n | sent to the model | llm mode | added (candidates) / fixed | llm mode where offline correct | "
            "accuracy (offline) | wrong facts shown | "
            "first shown sentence, median / p90 | total, median | fallback reasons | dropped sentences |")
    lines = [head, "|" + "---|" * 12]
    for s in summaries:
        lines.append(
            f"| {s['set']} | {s['questions']} | {s['sent_to_model']} | {s['llm_share']:.0%} | "
            f"{s['added_candidates']} / {s['fixed_offline_failure']} | {s['llm_share_where_offline_correct']:.0%} | "
            f"{s['accuracy']:.1%} ({s['offline_accuracy']:.1%}) | {s['wrong_facts_shown']} | "
            f"{_s(s['first_shown_s_median'])} / {_s(s['first_shown_s_p90'])} "
            f"({_s(s['first_shown_after_first_token_s_median'])} after the first token) | {_s(s['total_s_median'])} | "
            f"{_counts(s['fallback_reasons'])} | {_counts(s['dropped_sentences'])} |")
    return "\n".join(lines)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _s(x) -> str:
    return "–" if x is None else f"{x:.1f} s"


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "–"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:9/v1", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1")
    ap.add_argument("--model", default="replay")
    ap.add_argument("--set", action="append", type=Path, dest="sets",
                    help="evaluation set (repeatable); default: questions, holdout, holdout2")
    ap.add_argument("--limit", type=int, default=None, help="at most this many questions per set, evenly spread")
    ap.add_argument("--timeout", type=float, default=None, help="seconds without output before giving up")
    ap.add_argument("--confident-at", type=float, default=None, help="ASSISTANT_LLM_CONFIDENT_AT for this run")
    ap.add_argument("--rephrase-confident", action="store_true", help="send confident answers to be rephrased")
    ap.add_argument("--no-frame-model", action="store_true",
                    help="the pattern reading alone: no calibrated confidence, so every answer counts as unsure")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "llm_eval.jsonl")
    ap.add_argument("--replay", type=Path, default=None,
                    help="a previous --out file: re-check its recorded raw outputs with the current checks, no endpoint")
    args = ap.parse_args(argv)
    recorded = None
    if args.replay:
        recorded = {}
        for line in args.replay.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                recorded[(r["set"], r["id"])] = r["raw"] or ""
    default = ("questions.jsonl", "holdout.jsonl", "holdout2.jsonl")
    if recorded:  # replay the sets the recording has, in its order
        default = tuple(dict.fromkeys(name for name, _ in recorded))
    sets = args.sets or [ROOT / "tests" / "eval" / n for n in default]
    flags = {"llm_enabled": True, "llm_base_url": args.base_url, "llm_model": args.model}
    if args.timeout:
        flags["llm_timeout"] = args.timeout
    if args.confident_at is not None:
        flags["llm_confident_at"] = args.confident_at
    if args.rephrase_confident:
        flags["llm_rephrase_confident"] = True
    if args.no_frame_model:
        flags["frame_model"] = False
    assistant = Assistant.load(Config(**flags))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summaries = []
    with args.out.open("w", encoding="utf-8") as out:
        for path in sets:
            summaries.append(run_set(assistant, path, args.limit, out, recorded))
    print(table(summaries))
    print(json.dumps(summaries, ensure_ascii=False, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
