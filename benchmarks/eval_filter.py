"""Eval's filter (`ember.pbg.eval._filters`): the compiled one-pass matching of every known
edge against a sample's queries, against its numpy twin, on the same workspace.

The filtered setting needs, for each sampled test edge, the other true edges sharing its
(head, relation) or (relation, tail): `_filters` streams every bucket of every split and
keeps the matches. Both paths run interleaved (``EMBER_TRAIN_KERNEL``'s modes ``auto``
and ``numpy``), CPU seconds of this process; the two filters must be equal. Prints min
and median of each, their ratio, and the share of CPU other processes took; the verdict
last.

    python benchmarks/eval_filter.py --edges 1e7                  # generated and imported here
    python benchmarks/eval_filter.py --workspace DIR/edges_pbg    # e.g. scale.py --keep DIR
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import blas_info, cpu_stat, install_report, noise_share, summary

from ember import _cpu_kernels
from ember.partitioning.workspace import Workspace
from ember.pbg import eval as E


def _workspace(args, tmp: Path) -> Path:
    if args.workspace:
        return Path(args.workspace)
    pbg = str(Path(sys.executable).with_name("pbg"))
    n, e = int(float(args.edges)) // 10, int(float(args.edges))
    src = tmp / "edges.tsv"
    gen = [pbg, "generate", "-n", str(n), "-r", "50", "-e", str(e), str(src)]
    subprocess.run(gen, check=True, stdout=subprocess.DEVNULL)
    out = tmp / "edges_pbg"
    subprocess.run(
        [pbg, "import", str(src), "--out", str(out), "--partitions", "4", "--test-fraction", "0.001"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    src.unlink()
    return out


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", help="an imported workspace (default: generate one)")
    ap.add_argument("--edges", default="1e6", help="edges of the generated graph")
    ap.add_argument("--sample", type=int, default=1000, help="sampled test edges (as pbg eval --sample)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="eval_filter_"))
    try:
        ws = Workspace.open(_workspace(args, tmp))
        edges = E._global_edges(ws, "test")
        args.sample = min(args.sample, len(edges["lhs"]))
        picked = np.sort(np.random.default_rng(0).choice(len(edges["lhs"]), args.sample, replace=False))
        sample = {k: v[picked] for k, v in edges.items()}
        num_rel = len(ws.relation_names)
        known = sum(ws.num_edges(s) for s in E.SPLITS)
        _cpu_kernels.MODE = "auto"
        status = _cpu_kernels.status()
        print(f"workspace {ws.root}: {known:,} known edges, {num_rel} relations")
        print(f"{args.sample:,} sampled test edges as queries")
        print(f"kernels: {status}; BLAS: {blas_info()}")
        print(install_report())
        cpu, wall, filters = {"compiled": [], "numpy": []}, {"compiled": [], "numpy": []}, {}
        before = cpu_stat()
        for _ in range(args.repeats):
            for name, mode in (("compiled", "auto"), ("numpy", "numpy")):
                _cpu_kernels.MODE = mode
                f, w, c = _timed(lambda: E._filters(ws, "test", sample, num_rel, edges))
                wall[name].append(w)
                cpu[name].append(c)
                filters[name] = f
        after = cpu_stat()
        _cpu_kernels.MODE = "auto"
        a, b = filters["compiled"], filters["numpy"]
        same = all(np.array_equal(a[s].key, b[s].key) and np.array_equal(a[s].other, b[s].other) for s in a)
        kept = sum(len(a[s].key) for s in a)
        for name in cpu:
            (cmin, cmed), (wmin, wmed) = summary(cpu[name]), summary(wall[name])
            cpu_s = f"CPU s min {cmin:.3f} median {cmed:.3f}"
            print(f"{name:9s} {cpu_s}; wall s min {wmin:.3f} median {wmed:.3f}")
        noise = noise_share(before, after)
        print(f"other processes used {0 if noise is None else noise:.0%} of the busy CPU time")
        ratio = min(cpu["numpy"]) / min(cpu["compiled"])
        print(
            f"verdict: filter of {args.sample:,} queries over {known:,} known edges ({kept:,} kept): "
            f"compiled {min(cpu['compiled']):.3f} CPU-s, {ratio:.2f}x faster than numpy; "
            f"the same filters: {'yes' if same else 'NO'}"
        )
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
