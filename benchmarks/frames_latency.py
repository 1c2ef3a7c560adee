"""Warm answer time with and without the frame model (median over questions, alternating which goes first).

    python benchmarks/frames_latency.py [SET.jsonl] [N]"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant.evaluate import load_cases  # noqa: E402


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "eval" / "blind11.jsonl"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    a = Assistant.load()
    u = a.answerer.understanding
    model = u.frames
    times = {"on": [], "off": []}
    for i, case in enumerate(load_cases(path)[:n]):
        order = ("on", "off") if i % 2 else ("off", "on")
        for mode in order:
            u.frames = model if mode == "on" else None
            started = time.perf_counter()
            a.ask(case.question, [t.model_dump() for t in case.history])
            times[mode].append(time.perf_counter() - started)
    u.frames = model
    on, off = statistics.median(times["on"]) * 1000, statistics.median(times["off"]) * 1000
    print(f"{n} questions: median warm answer {on:.1f} ms with the frame model, {off:.1f} ms without "
          f"(+{on - off:.1f} ms)")
    started = time.perf_counter()
    from assistant.frames import FrameModel
    FrameModel.read(a.config.corpus_dir / "frames-model.npz")
    print(f"reading the stored model: {(time.perf_counter() - started) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
