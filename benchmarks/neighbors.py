"""Nearest neighbours through the `pbg index` (faiss IVF) against today's exact search, at
10^6 or 10^7 entities of dimension 100 with cluster structure.

The embeddings are synthetic: ``entities / 1000`` cluster centres (standard normal) and
each entity a centre plus 1.2x standard-normal noise, written once to a ``.npy`` file in
``--workdir`` and read back one partition at a time. In one run:

* **build**: `ember.pbg.index.build_from_partitions` (the code `pbg index` runs) in a
  subprocess reading the partitions with plain reads, so its peak RSS (its own ``ru_maxrss``)
  is the build's memory: one partition plus the index, printed beside the table's size;
* **latency**: a single query (one entity's neighbours, as `pbg neighbors` asks) and a
  batch of ``--queries``, through the index (memory-mapped, as `open_index` loads it) and
  through the exact path (`ember.pbg.predict._stream_topk` over the partitions held in
  memory, the blocked product `EmbeddingModel.neighbors(exact=True)` runs), interleaved
  A B A B, min and median of ``--repeats``;
* **recall@10** of the index against the exact answer on the batch queries (entities
  themselves, each left out of its own answer), with the default nprobe (the smallest
  of 1, 2, 3, 4, 6, 8, ... whose recall on a 256-entity sample reached 0.95 while building).

``--compare hnswlib,usearch`` also builds those libraries' HNSW graphs on the same data
(in subprocesses) and prints their build time, peak RSS, latency and recall at several
``ef`` values: the evidence for choosing faiss IVF.

    python benchmarks/neighbors.py --entities 1000000
    python benchmarks/neighbors.py --entities 10000000 --repeats 3 --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import blas_info, cpu_stat, interleave, noise_share, summary

NOISE = 1.2


def make_data(path: Path, n: int, d: int, seed: int = 0) -> None:
    """Write (n, d) float32 clustered embeddings to ``path`` (.npy), in blocks."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(10, n // 1000), d)).astype(np.float32)
    mm = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), "w+", np.float32, (n, d))
    for lo in range(0, n, 500_000):
        hi = min(n, lo + 500_000)
        x = centers[rng.integers(0, len(centers), hi - lo)]
        x += NOISE * rng.standard_normal((hi - lo, d), dtype=np.float32)
        mm[lo:hi] = x
    mm.flush()
    del mm
    os.replace(path.with_suffix(".tmp.npy"), path)


def read_rows(path: Path, lo: int, hi: int, d: int) -> np.ndarray:
    """Rows lo..hi of the .npy by plain reads (anonymous memory, not a file mapping)."""
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        base = f.tell()
    return np.fromfile(path, np.float32, (hi - lo) * d, offset=base + lo * d * 4).reshape(hi - lo, d)


def _rss_mb() -> float:
    """This process's resident memory now (VmRSS), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bounds(n: int, parts: int) -> list[tuple[int, int]]:
    cuts = np.linspace(0, n, parts + 1).astype(int)
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))


# ------------------------------------------------------------------ child processes
def child_build_faiss(args) -> dict:
    import faiss

    from ember.pbg.index import build_from_partitions

    b = bounds(args.entities, args.partitions)
    parts = lambda: (read_rows(args.data, lo, hi, args.dim) for lo, hi in b)
    t0 = time.perf_counter()
    index, facts = build_from_partitions(parts, [hi - lo for lo, hi in b], args.dim, args.metric)
    wall = time.perf_counter() - t0
    faiss.write_index(index, str(args.out))
    return {"seconds": wall, "facts": facts}


def child_build_hnsw(args) -> dict:
    lib, (lo_all, hi_all) = args.lib, (0, args.entities)
    x = read_rows(args.data, lo_all, hi_all, args.dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12  # cos as inner product
    t0 = time.perf_counter()
    if lib == "hnswlib":
        import hnswlib

        idx = hnswlib.Index(space="ip", dim=args.dim)
        idx.init_index(max_elements=len(x), M=16, ef_construction=100)
        idx.set_num_threads(os.cpu_count() or 1)
        idx.add_items(x)
        wall = time.perf_counter() - t0
        idx.save_index(str(args.out))
    else:
        from usearch.index import Index

        idx = Index(ndim=args.dim, metric="ip", connectivity=16, expansion_add=100)
        idx.add(np.arange(len(x)), x, threads=os.cpu_count() or 1)
        wall = time.perf_counter() - t0
        idx.save(str(args.out))
    return {"seconds": wall}


def run_child(kind: str, args, out: Path, lib: str = "") -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--lib",
        lib,
        "--data",
        str(args.data),
        "--out",
        str(out),
        "--entities",
        str(args.entities),
        "--dim",
        str(args.dim),
        "--partitions",
        str(args.partitions),
        "--metric",
        args.metric,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{kind} build failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the exact baseline
class _Table:
    """What `_stream_topk` needs of a model: partitions in memory with squared norms."""

    def __init__(self, args):
        self.parts = []
        for lo, hi in bounds(args.entities, args.partitions):
            e = read_rows(args.data, lo, hi, args.dim)
            self.parts.append((e, np.einsum("ij,ij->i", e, e)))

    def partition_sizes(self, etype):
        return [len(e) for e, _ in self.parts]

    def _cached(self, etype, p):
        return self.parts[p]

    def rows(self, ids):
        sizes = np.cumsum([0] + self.partition_sizes(None))
        p = np.searchsorted(sizes, ids, "right") - 1
        return np.stack([self.parts[pp][0][i - sizes[pp]] for pp, i in zip(p, ids)])


def exact(table, q_ids, k, metric):
    from ember.pbg.predict import _Metric, _stream_topk

    vec = table.rows(q_ids)
    res = _stream_topk(
        table, None, vec, k, np.arange(len(q_ids)), np.asarray(q_ids, np.int64), comparator=_Metric(metric)
    )
    return [i for _, i in res]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entities", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--metric", default="cos", choices=["cos", "dot", "l2"])
    ap.add_argument("--queries", type=int, default=1000, help="Batch size (and recall sample).")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--workdir", type=Path, help="Keeps the data between runs (default: a temp folder).")
    ap.add_argument("--compare", default="", help="Also build these HNSW libraries: hnswlib,usearch.")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--lib", default="", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = child_build_faiss(args) if args.child == "faiss" else child_build_hnsw(args)
        # the child's own peak RSS (RUSAGE_CHILDREN would give the largest child's)
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return

    import faiss

    from ember.pbg.index import NeighborIndex

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ember-neighbors-")
        args.workdir = Path(tmp.name)
    args.workdir.mkdir(parents=True, exist_ok=True)
    n, d, k = args.entities, args.dim, 10
    args.data = args.workdir / f"emb_{n}_{d}.npy"
    table_mb = n * d * 4 / 2**20
    print(f"entities {n:,}, dimension {d}, {args.partitions} partitions, metric {args.metric}")
    print(f"table {table_mb:,.0f} MiB float32; BLAS: {blas_info()}; faiss {faiss.__version__}")
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, cpus {os.cpu_count()}")
    if not args.data.is_file():
        t0 = time.perf_counter()
        make_data(args.data, n, d)
        print(f"data written in {time.perf_counter() - t0:.1f} s")

    c0 = cpu_stat()
    build = run_child("faiss", args, args.workdir / "ivf.faiss")
    f = build["facts"]
    print(
        f"\nbuild (faiss IVF, the `pbg index` code): {build['seconds']:.1f} s "
        f"(train {f['seconds']['train']:.1f} s, add + exact sample {f['seconds']['add']:.1f} s), "
        f"nlist {f['nlist']:,}, nprobe {f['nprobe']} "
        f"(sample recall@10 {f['measured_recall']['recall']:.3f}); "
        f"peak RSS {build['peak_rss_mb']:,.0f} MiB vs table {table_mb:,.0f} MiB"
    )
    c1 = cpu_stat()
    print(f"  other processes took {noise_share(c0, c1):.0%} of the busy CPU during the build")

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    raw = faiss.read_index(str(args.workdir / "ivf.faiss"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    ann = NeighborIndex(raw, {"metric": args.metric})
    raw.nprobe = f["nprobe"]
    t_open = time.perf_counter() - t0
    print(f"index opened (memory-mapped) in {t_open * 1e3:.0f} ms, {raw.ntotal:,} vectors")
    rss1 = _rss_mb()
    table = _Table(args)
    rss2 = _rss_mb()
    print(
        f"index opened: RSS +{rss1 - rss0:,.0f} MiB; exact baseline's partitions in memory: "
        f"RSS +{rss2 - rss1:,.0f} MiB"
    )

    rng = np.random.default_rng(1)
    q_ids = rng.choice(n, args.queries, replace=False)
    qv = table.rows(q_ids)
    single = int(q_ids[0])

    t0 = time.perf_counter()
    truth = exact(table, q_ids, k, args.metric)
    t_truth = time.perf_counter() - t0
    got = ann.search(qv, k, exclude=q_ids)
    recall = float(np.mean([len(set(t.tolist()) & set(g.tolist())) / k for t, (_, g) in zip(truth, got)]))
    print(f"recall@10 at the default nprobe {f['nprobe']}: {recall:.4f} ({args.queries} queries)")
    sweep = {}
    for npr in sorted({max(1, f["nprobe"] // 2), f["nprobe"], min(f["nlist"], f["nprobe"] * 2)}):
        raw.nprobe = npr
        g = ann.search(qv, k, exclude=q_ids)
        sweep[npr] = float(
            np.mean([len(set(t.tolist()) & set(x.tolist())) / k for t, (_, x) in zip(truth, g)])
        )
    raw.nprobe = f["nprobe"]
    print("  nprobe sweep: " + ", ".join(f"{p}: {r:.4f}" for p, r in sweep.items()))

    c0 = cpu_stat()
    fns = {
        "exact single": lambda: exact(table, [single], k, args.metric),
        "index single": lambda: ann.search(qv[:1], k, exclude=q_ids[:1]),
    }
    ts = interleave(fns, repeats=args.repeats, inner=3)
    fnb = {
        "exact batch": lambda: exact(table, q_ids, k, args.metric),
        "index batch": lambda: ann.search(qv, k, exclude=q_ids),
    }
    tb = interleave(fnb, repeats=args.repeats) if args.repeats > 1 else {}
    if not tb:
        tb = {"exact batch": [t_truth], "index batch": interleave({"i": fnb["index batch"]}, 3)["i"]}
    c1 = cpu_stat()
    noise = noise_share(c0, c1)
    print(f"\nlatency, min / median of {args.repeats} interleaved runs (others took {noise:.0%} of the CPU):")
    res = {}
    for name, t in {**ts, **tb}.items():
        lo, med = summary(t)
        res[name] = lo
        per = f", {lo / args.queries * 1e3:.3f} ms per query" if "batch" in name else ""
        print(f"  {name:<13} {lo * 1e3:10.2f} ms / {med * 1e3:10.2f} ms{per}")
    s_single = res["exact single"] / res["index single"]
    s_batch = res["exact batch"] / res["index batch"]

    rows = []
    for lib in [x for x in args.compare.split(",") if x]:
        r = run_child("hnsw", args, args.workdir / f"{lib}.bin", lib)
        xq = qv / (np.linalg.norm(qv, axis=1, keepdims=True) + 1e-12)
        if lib == "hnswlib":
            import hnswlib

            idx = hnswlib.Index(space="ip", dim=d)
            idx.load_index(str(args.workdir / f"{lib}.bin"))

            def search(q, ef, idx=idx):
                idx.set_ef(ef)
                return idx.knn_query(q, k=k + 1)[0]
        else:
            from usearch.index import Index

            idx = Index.restore(str(args.workdir / f"{lib}.bin"))

            def search(q, ef, idx=idx):
                idx.expansion_search = ef
                return np.atleast_2d(idx.search(q, k + 1).keys)

        for ef in (64, 128, 256):
            ids = search(xq, ef)
            rec = np.mean(
                [
                    len(set(t.tolist()) & set(x[x != qi][:k].tolist())) / k
                    for t, x, qi in zip(truth, ids, q_ids)
                ]
            )
            tt = interleave(
                {"s": lambda ef=ef, xq=xq: search(xq[:1], ef), "b": lambda ef=ef, xq=xq: search(xq, ef)}, 3
            )
            rows.append((lib, ef, r["seconds"], r["peak_rss_mb"], rec, min(tt["s"]), min(tt["b"])))
        del idx
    if rows:
        print("\nHNSW libraries on the same data (M=16, ef_construction=100, cos):")
        for lib, ef, sec, mb, rec, t1, tbt in rows:
            print(
                f"  {lib:<8} ef {ef:<4} build {sec:7.1f} s  peak RSS {mb:7,.0f} MiB  "
                f"recall@10 {rec:.4f}  single {t1 * 1e3:6.2f} ms  batch {tbt * 1e3:8.1f} ms"
            )
    if tmp is not None:
        tmp.cleanup()
    ok = recall >= 0.95 and min(s_single, s_batch) >= 10
    print(
        f"\nverdict: {n:,} entities: recall@10 {recall:.3f} (target >= 0.95), index vs exact "
        f"{s_single:.0f}x faster single, {s_batch:.0f}x batch (target >= 10x), "
        f"build {build['seconds']:.0f} s, "
        f"peak build RSS {build['peak_rss_mb']:,.0f} MiB for a {table_mb:,.0f} MiB table"
        f"{'' if noise is None or noise < 0.2 else ' [noisy]'}: {'MET' if ok else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
