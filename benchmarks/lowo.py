"""Leave-one-writer-out, end to end: for each writer of the question bank, the frame model is trained on the other
writers only and that writer's questions go through the whole offline pipeline (Assistant.ask); each answer is
scored like any evaluation set (required facts, citations, declines). The pattern reading alone (no frame model)
is scored on the same questions for comparison.

    python benchmarks/lowo.py [--markdown docs/runs/FILE.md] [--writers w01,w02] [--failures FILE.jsonl]"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant.config import Config  # noqa: E402
from assistant.evaluate import EvalCase, check_answer  # noqa: E402
from assistant.frames import fit, read_bank  # noqa: E402
from assistant.learn import C, examples  # noqa: E402
from assistant.normalize import normalize  # noqa: E402


def score(a: Assistant, rows: list[dict], reads: list[dict] | None = None) -> tuple[list[bool], list[dict]]:
    """Each row's answer scored; failures described; with `reads`, every row's frame reading appended to it (what a
    per-frame threshold would change, read from held-out writers)."""
    oks, fails = [], []
    for r in rows:
        case = EvalCase.model_validate({**r, "category": r.get("category") or r["frame"]})
        ans = a.ask(case.question, history=[t.model_dump() for t in case.history])
        ok, _, missing = check_answer(case, ans.answered, ans.answer, [c.label for c in ans.citations])
        oks.append(ok)
        if reads is not None:
            q = a.answerer.understanding.run(normalize(case.question), list(case.history))
            reads.append({"id": r["id"], "writer": r["writer"], "gold": r["frame"], "answerable": r.get("answerable", True),
                          "frame": q.frame, "confidence": round(q.confidence, 3), "applied": q.frame_applied, "ok": ok})
        if not ok:
            g = a.answerer
            q = g.understanding.run(normalize(case.question), list(case.history))
            fails.append({"id": r["id"], "frame": r["frame"], "question": r["question"], "missing": missing,
                          "answer": ans.answer[:200], "read": f"{q.frame}:{q.confidence:.2f}",
                          "applied": q.frame_applied, "route": g.route(q).name})
    return oks, fails


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--markdown")
    ap.add_argument("--writers")
    ap.add_argument("--failures")
    ap.add_argument("--reads", help="write every held-out question's frame reading and result (JSON lines)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the pattern-only run")
    ap.add_argument("--thresholds", help="also score at these min_confidence values (comma-separated): the choice "
                                         "of the table's min_confidence by held-out writers")
    args = ap.parse_args()
    a = Assistant.load(Config())
    u = a.answerer.understanding
    full_model, table = u.frames, u.frame_table
    rows = read_bank(a.config.corpus_dir)
    writers = sorted({r["writer"] for r in rows})
    if args.writers:
        writers = [w for w in writers if w in args.writers.split(",")]
    u.frames = None
    ex = examples(u, rows)
    results, all_fails, reads = [], [], []
    sweep: dict[float, list[float]] = defaultdict(list)
    per_frame: dict[str, list[bool]] = defaultdict(list)
    for w in writers:
        started = time.time()
        mine = [r for r in rows if r["writer"] == w]
        u.frames = None
        base = None if args.no_baseline else score(a, mine)[0]
        u.frames = fit([e for e in ex if e.writer != w], c=C, temperature=full_model.temperature if full_model else 1.0)
        u.frame_table = table
        for t in [float(x) for x in args.thresholds.split(",")] if args.thresholds else []:
            u.frame_table = replace(table, min_confidence=t)
            sweep[t].append(sum(score(a, mine)[0]) / len(mine))
        u.frame_table = table
        oks, fails = score(a, mine, reads if args.reads else None)
        for r, ok in zip(mine, oks):
            per_frame[r["frame"]].append(ok)
        all_fails += [{**f, "writer": w} for f in fails]
        results.append((w, len(mine), sum(base) / len(base) if base else None, sum(oks) / len(mine)))
        print(f"{w}: {len(mine)} questions, patterns only {_pct(results[-1][2])}, frame model (trained without {w}) "
              f"{results[-1][3]:.1%}  [{time.time() - started:.0f} s]", flush=True)
    u.frames = full_model
    mean = statistics.mean(r[3] for r in results)
    worst = min(results, key=lambda r: r[3])
    base_mean = statistics.mean(r[2] for r in results) if all(r[2] is not None for r in results) else None
    lines = ["| writer | questions | patterns only | frame model, trained without the writer |", "|---|---|---|---|"]
    lines += [f"| {w} | {n} | {_pct(b)} | {f:.1%} |" for w, n, b, f in results]
    lines.append(f"| **mean** | {sum(r[1] for r in results)} | {_pct(base_mean)} | **{mean:.1%}** |")
    lines.append(f"| **worst writer** | | | **{worst[3]:.1%}** ({worst[0]}) |")
    lines += ["", "| frame | questions | answer accuracy (held-out writer) |", "|---|---|---|"]
    lines += [f"| {f} | {len(v)} | {sum(v) / len(v):.1%} |" for f, v in sorted(per_frame.items())]
    if sweep:
        lines += ["", "| min_confidence | mean | worst writer |", "|---|---|---|"]
        lines += [f"| {t} | {statistics.mean(v):.1%} | {min(v):.1%} |" for t, v in sorted(sweep.items())]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    if args.reads:
        Path(args.reads).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reads), encoding="utf-8")
    if args.failures:
        Path(args.failures).write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in all_fails),
                                       encoding="utf-8")
    return 0


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


if __name__ == "__main__":
    sys.exit(main())
