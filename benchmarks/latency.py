"""Latency of the offline answerer: load time, and warm per-question latency over the evaluation questions.

    python benchmarks/latency.py [--rounds 5]

Prints medians and p95 over all rounds; the machine is shared, so compare medians, not single runs."""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from assistant import Assistant, Config  # noqa: E402
from assistant.evaluate import DEFAULT_SET, load_cases  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cases = load_cases(DEFAULT_SET)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        Assistant.load(Config(index_dir=Path(tmp)))
        cold_build = time.perf_counter() - start
    start = time.perf_counter()
    assistant = Assistant.load()
    warm_load = time.perf_counter() - start

    first_time: list[float] = []  # each question new to the process (its query embedding not yet cached)
    repeated: list[float] = []  # the same questions again, as a helpdesk re-asks common ones
    retrieval: list[float] = []
    for round_ in range(args.rounds):
        for case in cases:
            t = time.perf_counter()
            assistant.ask(case.question, case.history)
            (first_time if round_ == 0 else repeated).append((time.perf_counter() - t) * 1000)
        for case in cases:
            t = time.perf_counter()
            assistant.retriever.run(case.question)
            retrieval.append((time.perf_counter() - t) * 1000)
    print(f"questions: {len(cases)} × {args.rounds} rounds, CPU cores: {os.cpu_count()}")
    print(f"load with index build (empty index dir): {cold_build:.2f} s")
    print(f"load with a fresh index on disk:         {warm_load:.2f} s")
    for name, values in (("ask, question new to the process", first_time), ("ask, question asked before", repeated)):
        if values:
            print(f"{name}: p50 {statistics.median(values):.1f} ms, p95 {percentile(values, 0.95):.1f} ms, "
                  f"max {max(values):.1f} ms")
    print(f"hybrid retrieval alone (embeddings cached): p50 {statistics.median(retrieval):.1f} ms, "
          f"p95 {percentile(retrieval, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
