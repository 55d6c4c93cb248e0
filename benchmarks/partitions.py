"""Quality and memory by number of partitions: Ember and PyTorch-BigGraph 1.0 side by side.

For each partition count (default 1, 2, 4, 8) and seed, on the same train/valid/test split
(default WordNet-k3, bundled with ember), with PyTorch-BigGraph's config (ComplEx =
complex_diagonal + dot, dimension 100, 50 batch + 50 uniform negatives, softmax, lr 0.1,
no global embedding: PBG cannot have one with dynamic relations) and, for Ember, its own
default too (global_emb on, negative_partitions = auto):

* Ember: ``pbg import --partitions P`` once, then ``pbg train`` and ``pbg eval`` (filtered
  MRR ranked against all entities), peak RSS of the training process;
* PyTorch-BigGraph through ``../shared/pbg-baseline/run_pbg.sh --partitions P`` (its numpy
  evaluator ranks against all entities, filtered, as ours does); it draws its own seeds.

Prints, per system/config and partition count, the mean and spread of filtered MRR over
the seeds and the peak RSS, then the loss from 1 partition to the most, last.

    python benchmarks/partitions.py                               # WordNet-k3, 3 seeds
    python benchmarks/partitions.py --partitions 1,4 --seeds 1 --epochs 5   # a quick look
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_stat, install_report, noise_share

BIN = Path(sys.executable).parent
RUNNER = Path(__file__).resolve().parents[2] / "shared" / "pbg-baseline" / "run_pbg.sh"
PBG_CONFIG = ["dimension=100", "batch_size=1000", "num_batch_negs=50", "num_uniform_negs=50"]
PBG_CONFIG += ["loss_fn=softmax", "comparator=dot", "lr=0.1", "relation_lr=0.1", "eval_fraction=0"]


def run(cmd) -> tuple[str, float, float]:
    """(stdout, wall s, peak RSS MiB) of a child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.stdout.read(), p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd[0]} failed:\n{err[-3000:]}")
    return out, time.perf_counter() - t0, ru.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder with train/valid/test .tsv[.gz] (default: WordNet-k3)")
    ap.add_argument("--partitions", default="1,2,4,8")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-pbg", action="store_true")
    args = ap.parse_args()
    if args.data:
        data = Path(args.data)
    else:
        from ember.datasets import real_graph

        data = Path(real_graph("wordnet_k3").train).parent
    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-parts-"))
    try:
        files = {}
        for s in ("train", "valid", "test"):
            src = next(p for p in (data / f"{s}.tsv", data / f"{s}.tsv.gz") if p.exists())
            files[s] = tmp / f"{s}.tsv"
            with (
                gzip.open(src, "rb") if src.suffix == ".gz" else open(src, "rb") as f,
                open(files[s], "wb") as g,
            ):
                shutil.copyfileobj(f, g)
        parts = [int(p) for p in args.partitions.split(",")]
        systems = {"ember (PBG config)": ["global_emb=false"], "ember (default)": []}
        res = {name: {p: [] for p in parts} for name in [*systems, "PyTorch-BigGraph"]}
        pbg_ok = not args.skip_pbg and RUNNER.exists()
        print(f"data: {data}; {args.epochs} epochs, {args.seeds} seeds, {args.workers} workers")
        print(install_report())
        before = cpu_stat()
        for p in parts:
            ws = tmp / f"ws{p}"
            imp = [str(BIN / "pbg"), "import", str(files["train"]), "--valid", str(files["valid"])]
            run([*imp, "--test", str(files["test"]), "--out", str(ws), "--partitions", str(p)])
            for seed in range(1, args.seeds + 1):
                for name, extra in systems.items():
                    ck = tmp / "ck"
                    shutil.rmtree(ck, ignore_errors=True)
                    kv = [*PBG_CONFIG, *extra, f"num_epochs={args.epochs}", f"workers={args.workers}"]
                    kv += [f"seed={seed}", f"checkpoint_path={ck}"]
                    ps = [x for k in kv for x in ("-p", k)]
                    _, _, rss = run([str(BIN / "pbg"), "train", str(ws / "config.toml"), *ps, "--json"])
                    out, _, _ = run([str(BIN / "pbg"), "eval", str(ws / "config.toml"), *ps, "--json"])
                    res[name][p].append((json.loads(out.strip().splitlines()[-1])["mrr"], rss))
                if pbg_ok:
                    work = tmp / "pbg"
                    shutil.rmtree(work, ignore_errors=True)
                    cmd = [str(RUNNER), "--train", str(files["train"]), "--valid", str(files["valid"])]
                    cmd += ["--test", str(files["test"]), "--dim", "100", "--partitions", str(p)]
                    cmd += [
                        "--epochs",
                        str(args.epochs),
                        "--workers",
                        str(args.workers),
                        "--hogwild-delay",
                        "0",
                    ]
                    cmd += ["--fast-import", "--no-pbg-eval", "--work", str(work), "--label", f"p{p}s{seed}"]
                    run(cmd)
                    r = json.loads((work / "result.json").read_text())
                    res["PyTorch-BigGraph"][p].append(
                        (r["mrr"], r.get("train_peak_rss_mb") or r["peak_rss_mb"])
                    )
        noise = noise_share(before, cpu_stat())
        print(f"{'system':22}" + "".join(f"{f'{p} part.':>22}" for p in parts))
        for name, by in res.items():
            if not any(by.values()):
                continue
            cells = []
            for p in parts:
                m = np.array([x[0] for x in by[p]])
                rss = max(x[1] for x in by[p])
                cells.append(f"{m.mean():.4f} +-{m.std():.4f} {rss:4.0f}MB")
            print(f"{name:22}" + "".join(f"{c:>22}" for c in cells))
        if noise is not None:
            print(f"other processes used {noise:.0%} of the busy CPU time{' (noisy)' if noise > 0.2 else ''}")
        last = max(parts)
        losses = [
            f"{name} {np.mean([x[0] for x in by[min(parts)]]) - np.mean([x[0] for x in by[last]]):+.4f}"
            for name, by in res.items()
            if any(by.values())
        ]
        print(f"verdict: MRR lost from {min(parts)} to {last} partitions: " + ", ".join(losses))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
