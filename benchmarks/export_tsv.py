"""TSV export: the block formatter against one Python ``%.9f`` per value, interleaved.

Random embeddings (``--rows`` x ``--dim`` float32, scale 0.3 as trained ones are), the
same names; each repeat runs the reference (``np.char.mod`` per 20,000-row block, as the
exporter did) and the block formatter, checks the bytes are identical, and times both.
Prints min and median, values per second, the ratio of the minima, and the share of CPU
other processes took.

    python benchmarks/export_tsv.py --rows 200000 --dim 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from ember.pbg.export import _fmt_rows, _tsv_bytes


def _cpu():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v), v[3] + v[4]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    emb = (rng.standard_normal((args.rows, args.dim)) * 0.3).astype(np.float32)
    names = [f"entity_{i}" for i in range(args.rows)]
    ref, new = [], []
    t0, i0 = _cpu()
    c0 = os.times()
    for _ in range(args.repeats):
        t = time.perf_counter()
        a = _fmt_rows(names, emb).encode("utf-8")
        ref.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = _tsv_bytes(names, emb)
        new.append(time.perf_counter() - t)
        assert a == b, "the block formatter's bytes differ from the reference"
        del a, b
    t1, i1 = _cpu()
    c1 = os.times()
    total = t1 - t0
    ours = (c1.user + c1.system - c0.user - c0.system) * os.sysconf("SC_CLK_TCK")
    others = max(0.0, (total - (i1 - i0)) - ours) / max(total, 1)
    n = args.rows * args.dim
    for name, xs in (("per value (reference)", ref), ("blocks (ours)", new)):
        rate = n / min(xs) / 1e6
        print(f"{name:22} min {min(xs):.2f} s  median {statistics.median(xs):.2f} s  {rate:.1f} M values/s")
    noisy = " (noisy)" if others > 0.2 else ""
    print(f"others' CPU share: {others:.0%}{noisy}; bytes identical in every repeat")
    print(f"verdict: blocks are {min(ref) / min(new):.1f}x the per-value formatting (min over min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
