"""Leave-one-writer-out for the sentence ranker (assistant/sentences.py): for each writer of the question bank, the
frame model and the sentence ranker are trained on the other writers only, and that writer's questions are scored

(a) top-1 sentence: on the writer's notice_content questions with a labelled answer sentence, whether the ranker's
    first sentence answers (holds a must_contain alternative, in a cited clause), against the sentence of today's
    `best_passage` over all clauses;
(b) end to end: the writer's notice_content questions (or, with --all, every question of the writer) through
    Assistant.ask, scored with evaluate.check_answer, without the ranker (today) and with it.

    python benchmarks/sentences_lowo.py [--writers w01,w02] [--all] [--markdown FILE] [--failures FILE.jsonl]"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant import sentences as S  # noqa: E402
from assistant.config import Config  # noqa: E402
from assistant.frames import fit, read_bank  # noqa: E402
from assistant.learn import C, examples  # noqa: E402
from lowo import score  # noqa: E402  (benchmarks/lowo.py: the same end-to-end scoring)


def pct(v: list[bool]) -> float:
    return sum(v) / len(v) if v else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writers")
    ap.add_argument("--all", action="store_true", help="end to end on every question of the writer, not only notice_content")
    ap.add_argument("--markdown")
    ap.add_argument("--failures")
    args = ap.parse_args()
    a = Assistant.load(Config())
    answerer, u = a.answerer, a.answerer.understanding
    full_frames, table = u.frames, u.frame_table
    rows = read_bank(a.config.corpus_dir)
    writers = sorted({r["writer"] for r in rows})
    if args.writers:
        writers = [w for w in writers if w in args.writers.split(",")]
    embeddings = u.intents.embeddings
    vectors = S.embed_units(a.corpus, embeddings)
    featurizer = S.Featurizer(a.corpus, vectors, embeddings.embed_query)
    sentence_ex = S.examples(featurizer, rows)
    content_ex = [e for e in sentence_ex if e.frame == "notice_content"]
    # today's passage (best_passage over every clause) for the same questions
    at = {(x.clause, x.index): i for i, x in enumerate(featurizer.units)}
    everything = list(range(len(a.corpus.clauses)))
    u.frames = None
    frame_ex = examples(u, rows)
    results, all_fails = [], []
    for w in writers:
        started = time.time()
        ranker = S.SentenceRanker(a.corpus, S.fit([e for e in sentence_ex if e.writer != w], vectors),
                                  embeddings.embed_query)
        mine = [e for e in content_ex if e.writer == w]
        firsts = [ranker.ranked(e.question)[0][0] for e in mine]
        top_ranker = [bool(e.y[at[(f.clause, f.index)]]) for e, f in zip(mine, firsts)]
        top_today = []
        for e in mine:
            best = answerer.best_passage(e.question, everything)
            top_today.append(bool(best and e.y[at[(best[1], best[2])]]))
        asked = [r for r in rows if r["writer"] == w and (args.all or r["frame"] == "notice_content")]
        u.frames, u.frame_table = fit([e for e in frame_ex if e.writer != w], c=C,
                                      temperature=full_frames.temperature), table
        answerer.sentences = None
        before, _ = score(a, asked)
        answerer.sentences = ranker
        after, fails = score(a, asked)
        content = [r["frame"] == "notice_content" for r in asked]
        res = {"writer": w, "top1_n": len(mine), "top1_today": pct(top_today), "top1_ranker": pct(top_ranker),
               "nc_n": sum(content), "nc_before": pct([b for b, c in zip(before, content) if c]),
               "nc_after": pct([x for x, c in zip(after, content) if c]),
               "all_n": len(asked), "all_before": pct(before), "all_after": pct(after),
               "changed": sum(b != x for b, x in zip(before, after))}
        results.append(res)
        all_fails += [{**f, "writer": w} for f in fails]
        print(json.dumps(res), f"[{time.time() - started:.0f} s]", flush=True)
    u.frames = full_frames

    def row(name, key_before, key_after, n_key):
        b = [r[key_before] for r in results]
        x = [r[key_after] for r in results]
        wb, wx = min(results, key=lambda r: r[key_before]), min(results, key=lambda r: r[key_after])
        return (f"| {name} | {sum(r[n_key] for r in results)} | {statistics.mean(b):.1%} | {statistics.mean(x):.1%} | "
                f"{wb[key_before]:.1%} ({wb['writer']}) | {wx[key_after]:.1%} ({wx['writer']}) |")

    lines = ["| writer | top-1 n | top-1 best_passage | top-1 ranker | notice_content n | end to end before | after |"
             + (" all n | all before | all after |" if args.all else ""), "|---|---|---|---|---|---|---|"
             + ("---|---|---|" if args.all else "")]
    for r in results:
        lines.append(f"| {r['writer']} | {r['top1_n']} | {r['top1_today']:.1%} | {r['top1_ranker']:.1%} | {r['nc_n']} | "
                     f"{r['nc_before']:.1%} | {r['nc_after']:.1%} |"
                     + (f" {r['all_n']} | {r['all_before']:.1%} | {r['all_after']:.1%} |" if args.all else ""))
    lines += ["", "| measure | questions | mean before | mean after | worst writer before | worst writer after |",
              "|---|---|---|---|---|---|",
              row("top-1 sentence (best_passage → ranker)", "top1_today", "top1_ranker", "top1_n"),
              row("notice_content end to end", "nc_before", "nc_after", "nc_n")]
    if args.all:
        lines.append(row("every question end to end", "all_before", "all_after", "all_n"))
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    if args.failures:
        Path(args.failures).write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in all_fails),
                                       encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
