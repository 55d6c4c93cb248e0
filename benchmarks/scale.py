"""The whole pipeline at a size given on the command line, each stage against its bound
and its floor.

Stages, each a whole child process timed with ``os.wait4`` (wall, CPU, peak RSS):
``pbg generate`` -> ``pbg import --partitions P`` -> one epoch of ``pbg train`` ->
``pbg eval --sample S`` (ranked against all entities, filtered) -> ``pbg export --format
parquet`` -> ``pbg predict`` and ``pbg neighbors`` (one query each; their per-query latency
once loaded comes from an in-process loop). Printed per stage: wall, CPU, peak RSS
against the stage's stated memory bound, disk used. Before the import, the import's
compiled kernel is built, or taken from the cache (a line of its own: a user's first
large import builds it once), so that the import stage is what every later one costs.

Floors, measured in the same run:

* import: ``pyarrow.csv`` parsing the same file (CPU time);
* train: the batched products of a step alone (for every chunk, the scores of each side's
  positives against its negatives, and the two gradient products), same shapes, one BLAS
  thread, against the training run's CPU time per batch (all its workers' CPU time over
  its batches: reading edges and checkpoints included);
* eval: the scoring products of the sampled queries against every entity;
* predict/neighbors: a brute-force numpy product of one query against every entity.

    python benchmarks/scale.py                                  # 10^6 edges: a quick check
    python benchmarks/scale.py --edges 1e7 --entities 1e6 --partitions 4
    python benchmarks/scale.py --edges 1e8 --entities 1e7 --partitions 8 --keep /big/dir
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_stat, install_report, noise_share

BIN = Path(sys.executable).parent
MiB = 2**20


def run(cmd, env=None) -> dict:
    """Wall s, CPU s and peak RSS MiB of a child process (and what it waited for)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.stdout.read(), p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    if rc:
        raise SystemExit(f"{' '.join(map(str, cmd[:3]))} failed (exit {rc}):\n{err[-3000:]}")
    return {
        "wall": time.perf_counter() - t0,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss": ru.ru_maxrss / 1024,
        "out": out,
    }


def du(*paths) -> float:
    total = 0
    for p in paths:
        p = Path(p)
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        total += sum(f.stat().st_size for f in files)
    return total / MiB


KERNEL = "from ember.partitioning import native; print(native.kernel(1 << 62) is not None)"
PARSE = textwrap.dedent(
    """
    import sys, pyarrow as pa, pyarrow.csv as csv
    read = csv.ReadOptions(column_names=["lhs", "rel", "rhs"], block_size=16 << 20)
    parse = csv.ParseOptions(delimiter="\\t", quote_char=False)
    conv = csv.ConvertOptions(column_types={c: pa.string() for c in ("lhs", "rel", "rhs")})
    print(sum(b.num_rows for b in csv.open_csv(sys.argv[1], read_options=read, parse_options=parse,
                                                 convert_options=conv)))
    """
)

STEP_FLOOR = textwrap.dedent(
    """
    import sys, time, numpy as np
    from threadpoolctl import threadpool_limits
    b, chunk, nb, nu, d, reps = map(int, sys.argv[1:])
    c = b // chunk
    rng = np.random.default_rng(0)
    a = rng.standard_normal((c, chunk, d), np.float32)
    n = rng.standard_normal((c, nb + nu, d), np.float32)
    g = rng.standard_normal((c, chunk, nb + nu), np.float32)
    best = 1e9
    with threadpool_limits(1, user_api="blas"):
        for _ in range(reps):
            t0 = time.perf_counter()
            for side in range(2):  # each side: scores, and the two gradient products
                np.matmul(a, n.transpose(0, 2, 1))
                np.matmul(g, n)
                np.matmul(g.transpose(0, 2, 1), a)
            best = min(best, time.perf_counter() - t0)
    print(best)
    """
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", default="1e6")
    ap.add_argument("--entities", default="1e5")
    ap.add_argument("--relations", type=int, default=50)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--dimension", type=int, default=100)
    ap.add_argument("--sample", type=int, default=1000, help="test edges pbg eval ranks")
    ap.add_argument("--workers", type=int, default=None, help="Hogwild workers (default: CPU count)")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temp folder)")
    args = ap.parse_args()
    E, N = int(float(args.edges)), int(float(args.entities))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ember-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    pbg = str(BIN / "pbg")
    rows, floors = [], {}
    before = cpu_stat()
    try:
        src = work / "edges.tsv"
        g = run(
            [pbg, "generate", "-n", str(N), "-r", str(args.relations), "-e", str(E), "--seed", "0", str(src)]
        )
        rows.append(("generate", g, None, du(src)))
        ws = work / "edges_pbg"
        shutil.rmtree(ws, ignore_errors=True)
        # the import's compiled kernel as a user has it after a first large import (it is
        # built once, for inputs of 512 MiB or more, and cached): the stage runs with it
        kb = run([sys.executable, "-c", KERNEL])
        kernel = kb["out"].strip() == "True"
        rows.append(("import kernel (once)" if kernel else "import kernel: none", kb, None, 0.0))
        imp = run([pbg, "import", str(src), "--out", str(ws), "--partitions", str(args.partitions)]
                  + ["--test-fraction", "0.001", "--json"])  # fmt: skip
        summary = json.loads(imp["out"])
        # the dictionary grows with the entities: at worst about 180 B a name (its hash
        # table at load 1/4 while it doubles, per-name counts, partition and scratch ids,
        # the names); the rest is constant: bucket buffers 256 MiB, the parse | encode |
        # route pipeline's blocks of 2^20 rows (Arrow and numpy, about 500 MiB), the
        # interpreter and libraries (about 100 MiB)
        rows.append(("import", imp, N * 180 / MiB + 900, du(ws)))
        parse = run([sys.executable, "-c", PARSE, str(src)])
        floors["import"] = (imp["cpu"], parse["cpu"])
        cfg = ws / "config.toml"
        p = ["-p", "num_epochs=1", "-p", f"dimension={args.dimension}"]
        if args.workers:
            p += ["-p", f"workers={args.workers}"]
        tr = run([pbg, "train", str(cfg), *p, "--json"])
        ts = json.loads(tr["out"].strip().splitlines()[-1])
        # what the plan states, plus the interpreter and libraries (about 100 MiB)
        rows.append(("train (1 epoch)", tr, ts["memory_plan_bytes"] / MiB + 128, du(ws / "checkpoints")))
        sizes = summary["entities"]
        largest = -(-sizes["all"] // args.partitions)
        # three partitions (the eval LRU), the score blocks, the sampled queries and filter
        eval_bound = (3 * largest * args.dimension * 4 + 2 * 1000 * largest * 4) / MiB + 400
        ev = run(
            [
                pbg,
                "eval",
                str(cfg),
                "-p",
                f"dimension={args.dimension}",
                "--sample",
                str(args.sample),
                "--json",
            ]
        )
        em = json.loads(ev["out"].strip().splitlines()[-1])
        rows.append((f"eval ({args.sample:,} edges)", ev, eval_bound, 0.0))
        out = work / "export"
        ex = run([pbg, "export", str(cfg), "-p", f"dimension={args.dimension}", "--format", "parquet"]
                 + ["--out", str(out)])  # fmt: skip
        rows.append(("export parquet", ex, largest * (args.dimension * 4 + 64) / MiB + 400, du(out)))
        with open(out / "entities_all.names.txt") as f:
            first = f.readline().rstrip("\n")  # an entity to query
        rel = summary_relation(ws)
        pr = run([pbg, "predict", str(cfg), "--head", first, "--relation", rel, "--json"])
        rows.append(("predict (1 query)", pr, None, 0.0))
        nb = run([pbg, "neighbors", str(cfg), first, "--json"])
        rows.append(("neighbors (1 query)", nb, None, 0.0))
        # -- floors measured in this run
        bs, chunk = 1000, 50
        # CPU time per batch of the whole run (every worker, reading edges, checkpoints,
        # the interpreter's start: everything a user pays), against the products alone
        per_batch = tr["cpu"] / (ts["edges"] / bs)
        fl = run(
            [sys.executable, "-c", STEP_FLOOR, str(bs), str(chunk), "50", "50", str(args.dimension), "30"]
        )
        floors["train step"] = (per_batch, float(fl["out"]))
        floors["eval"] = (ev["cpu"], eval_floor(N, em["count"] // 2, args.dimension))
        lat = query_latency(cfg, first, rel)
        floors["predict query"] = (lat["predict"], lat["brute"])
        floors["neighbors query"] = (lat["neighbors"], lat["brute"])
    finally:
        noise = noise_share(before, cpu_stat())
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"graph: {E:,} edges, {N:,} entities, {args.relations} relations, {args.partitions} partitions, "
          f"dimension {args.dimension}")  # fmt: skip
    print(install_report())
    print(f"{'stage':24}{'wall s':>9}{'CPU s':>9}{'peak RSS MiB':>14}{'bound MiB':>11}{'disk MiB':>10}")
    for name, r, bound, disk in rows:
        b = f"{bound:11,.0f}" if bound else f"{'':>11}"
        print(f"{name:24}{r['wall']:9.1f}{r['cpu']:9.1f}{r['rss']:14,.0f}{b}{disk:10,.0f}")
    print(f"eval: filtered MRR {em['mrr']:.4f} on {em['count']:,} rankings")
    if noise is not None:
        print(f"other processes used {noise:.0%} of the busy CPU time{' (noisy)' if noise > 0.2 else ''}")
    over = [name for name, r, bound, _ in rows if bound and r["rss"] > bound]
    parts = [f"{k} {a / b:.2f}x its floor" for k, (a, b) in floors.items()]
    print("verdict: " + "; ".join(parts) + (f"; over their memory bound: {', '.join(over)}" if over else
                                             "; every stage within its memory bound"))  # fmt: skip


def summary_relation(ws) -> str:
    import pyarrow.parquet as pq

    return pq.read_table(ws / "relations.parquet").column("name")[0].as_py()


def eval_floor(n_entities: int, sample: int, d: int) -> float:
    """CPU seconds of the products the evaluated queries need: both sides, every entity.
    Timed on up to 1,000 queries x 10^6 entities, in slices of 2^15 entities written into
    one reused output (a fresh multi-GiB output would add its page faults to the floor),
    best of three, one BLAS thread as eval's; scaled to the run's sizes."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    q = rng.standard_normal((min(sample, 1000), d), np.float32)
    e = rng.standard_normal((min(n_entities, 1_000_000), d), np.float32)
    step = 1 << 15
    out = np.empty((len(q), step), np.float32)
    best = float("inf")
    with threadpool_limits(1, user_api="blas"):
        for _ in range(3):
            t0 = time.process_time()
            for a in range(0, len(e), step):
                b = min(len(e), a + step)
                np.matmul(q, e[a:b].T, out=out[:, : b - a])
            best = min(best, time.process_time() - t0)
    return best * (2 * sample / len(q)) * (n_entities / len(e))


def query_latency(cfg, name, rel, repeats=5) -> dict:
    """Seconds per query once loaded: predict, neighbors, and numpy brute force."""
    import ember.pbg

    m = ember.pbg.load(cfg)
    m.predict(head=name, relation=rel, top_k=10)  # load the partitions once
    m.neighbors(name, top_k=10, exact=True)
    out = {}
    for key, fn in (
        ("predict", lambda: m.predict(head=name, relation=rel, top_k=10)),
        ("neighbors", lambda: m.neighbors(name, top_k=10, exact=True)),
    ):
        best = 1e9
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[key] = best
    table = np.concatenate([m.partition("all", p) for p in range(m.num_partitions("all"))])
    v = m.embedding(name)
    best = 1e9
    for _ in range(repeats):
        t0 = time.perf_counter()
        s = table @ v
        np.argpartition(-s, 10)[:10]
        best = min(best, time.perf_counter() - t0)
    out["brute"] = best
    return out


if __name__ == "__main__":
    main()
