"""Serving-many benchmarks, each figure next to the plain LangChain pipeline measured in the same run.

    python benchmarks/scale.py [--seconds 4] [--pairs 3] [--sizes 1000,10000,100000] [--out results.json]

Sections: index build; warm answer p50/p95; cold `ask` CPU (paired runs); `serve` readiness; HTTP answers/s and
p95 at 1/8/32/64 clients for 1 and 2 workers, direct and through nginx (deploy/nginx.conf); memory per worker;
BM25 at 1k/10k/100k synthetic chunks (rank-bm25 vs bm25s). Loopback only; every load step is bounded in time.
The plain pipeline (benchmarks/baseline.py) is RecursiveCharacterTextSplitter + the same embedding model +
Chroma similarity search, served by the same uvicorn. Results go to stdout as a table and to --out as JSON."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]
os.environ.update(OMP_WAIT_POLICY="passive", HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
                  GRADIO_ANALYTICS_ENABLED="False")

import httpx  # noqa: E402

from services import assistant_env, free_port, nginx, nginx_binary, stop, wait_for  # noqa: E402

QUESTION = "电工证什么时候退出目录？"
QUESTIONS = ["电工证什么时候退出目录？", "美容师是第几批？", "第一批退出的有哪些？", "这个通知是哪个部门发的？",
             "茶艺师还考得了吗？", "森林消防员怎么处理？", "焊工属于第几批？", "文号是多少？"]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


def child_cpu(cmd: list[str], env: dict) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process run to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


# ---- HTTP load ------------------------------------------------------------------------------------------------

async def _load(url: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        async def one_client(n: int) -> None:
            nonlocal errors
            i = n
            while time.perf_counter() < deadline:
                q = QUESTIONS[i % len(QUESTIONS)]
                i += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/api/ask", json={"question": q})
                    if r.status_code != 200:
                        errors += 1
                        continue
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in range(clients)))
        took = time.perf_counter() - start
    return {"clients": clients, "answers_per_s": len(latencies) / took, "p50_ms": pct(latencies, 0.5) * 1000,
            "p95_ms": pct(latencies, 0.95) * 1000, "errors": errors, "answers": len(latencies)}


def _ab(url: str, clients: int, seconds: float, body: Path) -> dict:
    """ApacheBench (Debian's apache2-utils): a C client, so the load generator takes little of the 2 cores."""
    out = subprocess.run(["ab", "-q", "-c", str(clients), "-t", str(seconds), "-n", "1000000", "-s", "30",
                          "-p", str(body), "-T", "application/json", url + "/api/ask"],
                         capture_output=True, text=True).stdout

    def grab(pattern: str, default: float = 0.0) -> float:
        m = re.search(pattern, out, re.M)
        return float(m.group(1)) if m else default

    done = grab(r"^Complete requests:\s+(\d+)")
    failed = grab(r"^Failed requests:\s+(\d+)") + grab(r"^Non-2xx responses:\s+(\d+)")
    return {"clients": clients, "answers_per_s": grab(r"^Requests per second:\s+([\d.]+)"),
            "p50_ms": grab(r"^\s+50%\s+(\d+)"), "p95_ms": grab(r"^\s+95%\s+(\d+)"), "errors": int(failed),
            "answers": int(done - failed), "client": "ab"}


def load_series(url: str, seconds: float, levels=(1, 8, 32, 64)) -> list[dict]:
    asyncio.run(_load(url, 4, 1.0))  # warm-up: caches, keep-alive pools
    if shutil.which("ab"):
        body = Path(tempfile.mkdtemp()) / "ask.json"
        body.write_text(json.dumps({"question": QUESTION}, ensure_ascii=False), encoding="utf-8")
        return [_ab(url, c, seconds, body) for c in levels]
    return [asyncio.run(_load(url, c, seconds)) for c in levels]


def start_server(cmd: list[str], env: dict, log: Path) -> tuple[subprocess.Popen, float]:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    port = cmd[cmd.index("--port") + 1]
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200, 300,
             " ".join(cmd[:4]), proc, log)
    return proc, time.perf_counter() - t


# ---- main ---------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0, help="per load level")
    ap.add_argument("--pairs", type=int, default=3, help="paired cold runs")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: build,warm,cold,http,bm25")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "cpu": _cpu_model(), "kernel": platform.release()}}
    work = Path(tempfile.mkdtemp(prefix="pna-bench-"))
    py = sys.executable
    # The per-client rate limit is off: every request of the load comes from one address (127.0.0.1).
    env = assistant_env(PYTHONPATH=f"{ROOT}:{ROOT / 'benchmarks'}", ASSISTANT_RATE_LIMIT="")
    ours_index, base_index = work / "index", work / "baseline-index"

    # Index build: our index (Assistant's units) vs the plain pipeline's chunks, each in a fresh process.
    if skip >= {"cold", "warm", "http"}:
        pass  # nothing below needs the two indexes
    else:
        ours_build = child_cpu([py, "-m", "assistant.cli", "index", "--index-dir", str(ours_index)], env)
        base_build = child_cpu([py, "benchmarks/baseline.py", "build", str(base_index)], env)
        results["index_build"] = {"ours_wall_s": ours_build[1], "baseline_wall_s": base_build[1],
                                  "ours_cpu_s": ours_build[0], "baseline_cpu_s": base_build[0]}
        _show("index build", results["index_build"])

    if "cold" not in skip:
        pairs = []
        for _ in range(args.pairs):  # alternate, so load from other work on the machine hits both alike
            ours = child_cpu([py, "-m", "assistant.cli", "ask", QUESTION, "--index-dir", str(ours_index)], env)
            base = child_cpu([py, "benchmarks/baseline.py", "ask", str(base_index), QUESTION], env)
            pairs.append({"ours_cpu_s": ours[0], "baseline_cpu_s": base[0], "ours_wall_s": ours[1],
                          "baseline_wall_s": base[1]})
        results["cold_ask"] = {"pairs": pairs,
                               "ours_cpu_s_median": statistics.median(p["ours_cpu_s"] for p in pairs),
                               "baseline_cpu_s_median": statistics.median(p["baseline_cpu_s"] for p in pairs)}
        _show("cold ask", {k: v for k, v in results["cold_ask"].items() if k != "pairs"})

    if "warm" not in skip:
        code = ("import sys,time,json;sys.path[:0]=[%r,%r];import baseline;from assistant import Assistant,Config;"
                "from assistant.evaluate import DEFAULT_SET, load_cases;from pathlib import Path;"
                "a=Assistant.load(Config(index_dir=Path(%r)));b=baseline.Pipeline(Path(%r));"
                "qs=[c.question for c in load_cases(DEFAULT_SET)];o=[];p=[]\n"
                "for q in qs:\n t=time.perf_counter();a.ask(q);o.append(time.perf_counter()-t)\n"
                " t=time.perf_counter();b.ask(q);p.append(time.perf_counter()-t)\n"
                "print(json.dumps({'ours':o,'baseline':p}))") % (str(ROOT), str(ROOT / "benchmarks"),
                                                                 str(ours_index), str(base_index))
        out = subprocess.run([py, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        results["warm_answer"] = {f"{who}_{q}_ms": pct(data[who], p) * 1000 for who in ("ours", "baseline")
                                  for q, p in (("p50", 0.5), ("p95", 0.95))}
        results["warm_answer"]["questions"] = len(data["ours"])
        _show("warm answer (first time each question)", results["warm_answer"])

    if "http" not in skip:
        results["http"] = http_section(py, env, work, ours_index, base_index, args.seconds)
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    if "bm25" not in skip:
        results["bm25"] = bm25_section([int(s) for s in args.sizes.split(",")])

    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


def http_section(py, env, work: Path, ours_index: Path, base_index: Path, seconds: float) -> dict:
    out: dict = {"levels": [], "memory_mb": {}, "readiness_s": {}}
    for workers in (1, 2):
        for who in ("ours", "baseline"):
            port = free_port()
            if who == "ours":
                cmd = [py, "-m", "assistant.cli", "serve", "--port", str(port), "--index-dir", str(ours_index),
                       "--workers", str(workers)]
                e = {**env, "ASSISTANT_REBUILD_STALE_INDEX": "false",
                     "ASSISTANT_FEEDBACK_DB": str(work / "fb.sqlite3")}
            else:
                cmd = [py, "-m", "uvicorn", "baseline:app_factory", "--factory", "--port", str(port),
                       "--workers", str(workers), "--log-level", "warning", "--timeout-worker-healthcheck", "120"]
                e = {**env, "BASELINE_INDEX": str(base_index)}
            proc, ready = start_server(cmd, e, work / f"{who}-{workers}.log")
            try:
                pids = children(proc.pid) if workers > 1 else [proc.pid]
                pids = [p for p in pids if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]
                out["readiness_s"][f"{who}_{workers}w"] = ready
                url = f"http://127.0.0.1:{port}"
                for level in load_series(url, seconds):
                    out["levels"].append({"who": who, "workers": workers, "via": "direct", **level})
                    _show(f"{who} {workers}w direct", level)
                out["memory_mb"][f"{who}_{workers}w"] = [round(rss_mb(p)) for p in pids]
                if nginx_binary():
                    with nginx([port], work) as proxy:
                        for level in load_series(proxy, seconds):
                            out["levels"].append({"who": who, "workers": workers, "via": "nginx", **level})
                            _show(f"{who} {workers}w nginx", level)
            finally:
                stop(proc)
    return out


def bm25_section(sizes: list[int]) -> list[dict]:
    """Synthetic chunks in the corpus's words: ingest rate and query p50, rank-bm25 vs bm25s."""
    from rank_bm25 import BM25Okapi

    from assistant.bm25_index import SparseBM25
    from assistant.parse import load_corpus
    from assistant.index import build_evidence
    from assistant.profile import NoticeProfile
    from assistant.retrieve import tokenize

    rng = random.Random(80)
    corpus = load_corpus(ROOT / "corpus")
    units = build_evidence(corpus, NoticeProfile.load(corpus, ROOT / "corpus"))
    vocab = sorted({t for u in units for t in tokenize(u.text)})
    vocab += [f"词{i}" for i in range(20000)]  # a larger corpus has a larger vocabulary
    queries = [tokenize(q) for q in QUESTIONS]
    out = []
    for n in sizes:
        docs = [[rng.choice(vocab) for _ in range(rng.randint(15, 40))] for _ in range(n)]
        row: dict = {"chunks": n}
        for name, build, query in (
                ("rank_bm25", BM25Okapi, lambda idx, q: sorted(range(n), key=idx.get_scores(q).__getitem__)[-20:]),
                ("bm25s", SparseBM25, lambda idx, q: idx.top(q, 20))):
            t = time.perf_counter()
            index = build(docs)
            row[f"{name}_ingest_per_s"] = n / (time.perf_counter() - t)
            times = []
            for q in queries * 3:
                t = time.perf_counter()
                query(index, q)
                times.append(time.perf_counter() - t)
            row[f"{name}_query_p50_ms"] = statistics.median(times) * 1000
            del index
        row.update(_chroma_vectors(n, rng))
        out.append(row)
        _show(f"bm25 {n}", row)
    return out


def _chroma_vectors(n: int, rng: random.Random, dim: int = 384) -> dict:
    """Chroma (the vector side of retrieval) at n chunks: random unit vectors of the bundled model's size stand in
    for embeddings, so this measures the store, not the model (embedding 100k chunks takes hours on 2 cores)."""
    import chromadb
    import numpy as np

    gen = np.random.default_rng(rng.randrange(1 << 30))
    vectors = gen.standard_normal((n, dim)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        client = chromadb.PersistentClient(path=tmp, settings=chromadb.Settings(anonymized_telemetry=False))
        col = client.create_collection("synthetic", metadata={"hnsw:space": "cosine"})
        t = time.perf_counter()
        for start in range(0, n, 5000):
            end = min(n, start + 5000)
            col.add(ids=[str(i) for i in range(start, end)], embeddings=vectors[start:end],
                    documents=[f"chunk {i}" for i in range(start, end)])
        ingest = n / (time.perf_counter() - t)
        times = []
        for q in vectors[: 24]:
            t = time.perf_counter()
            col.query(query_embeddings=[q], n_results=20)
            times.append(time.perf_counter() - t)
    return {"chroma_ingest_per_s": ingest, "chroma_query_p50_ms": statistics.median(times) * 1000}


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _show(name: str, data: dict) -> None:
    print(f"{name:40s} " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in data.items()), flush=True)




def markdown(results: dict) -> str:
    """The tables of docs/benchmarks.md from a results file: python benchmarks/scale.py --report FILE…"""
    lines = []
    http = results.get("http")
    if http:
        lines += ["| workers | via | clients | ours answers/s | plain answers/s | ratio | ours p95 ms | plain p95 ms"
                  " | ratio | ours errors |", "|---|---|---|---|---|---|---|---|---|---|"]
        rows = {(r["who"], r["workers"], r["via"], r["clients"]): r for r in http["levels"]}
        for (who, w, via, c), r in rows.items():
            if who != "ours":
                continue
            b = rows.get(("baseline", w, via, c))
            ratio = lambda x, y: f"{x / y:.2f}" if b and y else "–"  # noqa: E731
            lines.append(f"| {w} | {via} | {c} | {r['answers_per_s']:.0f} | "
                         f"{b['answers_per_s']:.0f} | {ratio(r['answers_per_s'], b['answers_per_s'])} | "
                         f"{r['p95_ms']:.0f} | {b['p95_ms']:.0f} | {ratio(r['p95_ms'], b['p95_ms'])} | {r['errors']} |"
                         if b else f"| {w} | {via} | {c} | {r['answers_per_s']:.0f} | – | – | {r['p95_ms']:.0f} | – | – |"
                         f" {r['errors']} |")
    for row in results.get("bm25", []):
        lines.append(f"bm25 {row}")
    return "\n".join(lines)


def _report_main(paths: list[str]) -> None:
    for p in paths:
        print(markdown(json.loads(Path(p).read_text(encoding="utf-8"))))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report"]:
        _report_main(sys.argv[2:])
    else:
        main()
