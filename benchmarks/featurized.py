"""Featurized entities: the cost of the bag-mean node, and of training a featurized type.

1. One batch's entity rows as bag means, forward and backward (sparse gradient), on a
   feature table of 10^5 x 100 float32: the fused ``ember.sparse.bag_mean`` (one CSR
   product forward, one coalesced RowSparseGrad backward) against the composite
   ``ember.nn.functional.embedding_bag(mode="mean", sparse=True)`` (a gather, an
   index-add and a scaling, each an autograd node), interleaved on the same bags.
2. ``pbg train`` on one graph as a featurized type and as a plain one (the same edges,
   entities, dimension, epochs; BLAS one thread, one worker), interleaved: edges per
   second and peak RSS of each (a child process per run).

Run: ``python benchmarks/featurized.py [--repeats 7] [--docs 20000]``. BENCHMARKING.md's
rules: interleaved repeats, min and median, ratios of minima, /proc/stat noise, BLAS info,
the verdict line last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import blas_info, cpu_stat, install_report, interleave, noise_share, summary

import ember
from ember.nn import functional as F


def bench_op(repeats: int) -> float:
    rng = np.random.default_rng(0)
    rows, dim, bags, mean_len = 100_000, 100, 4_000, 5
    lens = rng.integers(1, 2 * mean_len, bags)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    idx = rng.integers(0, rows, int(offsets[-1])).astype(np.int64)
    w = ember.tensor(rng.standard_normal((rows, dim)).astype(np.float32), requires_grad=True)
    g = ember.tensor(rng.standard_normal((bags, dim)).astype(np.float32))
    starts = ember.tensor(offsets[:-1])

    def fused():
        w.grad = None
        (ember.sparse.bag_mean(w, idx, offsets, sparse=True) * g).sum().backward()

    def composite():
        w.grad = None
        (F.embedding_bag(ember.tensor(idx), w, starts, mode="mean", sparse=True) * g).sum().backward()

    fused()
    a = w.grad.to_dense().numpy()
    composite()
    b = w.grad.to_dense().numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # the same gradient
    before = cpu_stat()
    t = interleave({"fused": fused, "composite": composite}, repeats)
    share = noise_share(before, cpu_stat())
    print(
        f"1. bag means of {bags:,} bags (mean size {lens.mean():.1f}) of a {rows:,} x {dim} table, fwd+bwd:"
    )
    for k, v in t.items():
        mn, md = summary(v)
        print(f"   {k:<10} min {mn * 1e3:7.2f} ms  median {md * 1e3:7.2f} ms")
    ratio = min(t["composite"]) / min(t["fused"])
    print(f"   composite / fused (minima): {ratio:.2f}x; others used {_pct(share)} of the CPU")
    return ratio


def _pct(x):
    return "?" if x is None else f"{100 * x:.0f}%"


def _graph(folder: Path, docs: int) -> dict:
    rng = np.random.default_rng(1)
    topics, vocab = 200, 50
    topic = rng.integers(0, topics, docs)
    words = rng.integers(0, vocab, (docs, 4))
    feats = [f"d{i}\t" + "\t".join(f"w{topic[i]}_{w}" for w in words[i]) for i in range(docs)]
    edges = [f"d{i}\tabout\tt{topic[i]}" for i in range(docs)]
    edges += [
        f"d{i}\tcites\td{j}" for i, j in zip(rng.integers(0, docs, 4 * docs), rng.integers(0, docs, 4 * docs))
    ]
    (folder / "f.tsv").write_text("\n".join(feats) + "\n")
    (folder / "e.tsv").write_text("\n".join(edges) + "\n")
    out = {}
    for featurized in (True, False):
        cfg = folder / f"m{featurized}.toml"
        cfg.write_text(
            f"[entities.doc]\nfeaturized = {str(featurized).lower()}\n[entities.topic]\n"
            '[[relations]]\nname = "about"\nlhs = "doc"\nrhs = "topic"\n'
            '[[relations]]\nname = "cites"\nlhs = "doc"\nrhs = "doc"\n'
        )
        ws = folder / f"ws{featurized}"
        cmd = [
            str(Path(sys.executable).parent / "pbg"),
            "import",
            str(folder / "e.tsv"),
            "--config",
            str(cfg),
        ]
        cmd += ["--out", str(ws)] + (["--features", f"doc={folder / 'f.tsv'}"] if featurized else [])
        subprocess.run(cmd, check=True, capture_output=True)
        out[featurized] = ws / "config.toml"
    return out


_CHILD = """
import json, resource, sys
from ember.pbg.config import load_config
from ember.pbg.train import train
s = train(load_config(sys.argv[1], sys.argv[2:]), log=lambda m: None, progress=False)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"edges_per_s": s["edges_per_s"], "rss_mb": rss}))
"""


def bench_train(repeats: int, docs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfgs = _graph(Path(tmp), docs)
        res = {True: [], False: []}
        before = cpu_stat()
        for r in range(repeats):
            for featurized, cfg in cfgs.items():
                ck = Path(tmp) / f"ck{featurized}{r}"
                p = ["dimension=100", "num_epochs=2", "workers=1", f"checkpoint_path={ck}"]
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(cfg), *p], check=True, capture_output=True, text=True
                ).stdout
                res[featurized].append(json.loads(out.splitlines()[-1]))
        share = noise_share(before, cpu_stat())
    edges = 5 * docs
    print(f"2. pbg train, {docs:,} documents (4 features each), {edges:,} edges, dimension 100, 2 epochs:")
    for featurized, name in ((True, "featurized"), (False, "plain")):
        eps = [x["edges_per_s"] for x in res[featurized]]
        rss = max(x["rss_mb"] for x in res[featurized])
        print(
            f"   {name:<10} edges/s max {max(eps):9,.0f}  median {np.median(eps):9,.0f}  "
            f"peak RSS {rss:6.0f} MB"
        )
    ratio = max(x["edges_per_s"] for x in res[True]) / max(x["edges_per_s"] for x in res[False])
    print(f"   featurized / plain throughput (best runs): {ratio:.2f}; others used {_pct(share)} of the CPU")
    return ratio


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--train-repeats", type=int, default=3)
    ap.add_argument("--docs", type=int, default=20_000)
    args = ap.parse_args()
    print(install_report())
    print(f"BLAS: {blas_info()}; cores {os.cpu_count()}")
    op = bench_op(args.repeats)
    tr = bench_train(args.train_repeats, args.docs)
    print(
        f"verdict: the fused bag mean is {op:.2f}x the composite's speed; featurized training "
        f"runs at {tr:.2f}x plain's edges/s"
    )


if __name__ == "__main__":
    main()
