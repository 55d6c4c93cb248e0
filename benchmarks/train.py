"""Benchmark `pbg train` against the real PyTorch-BigGraph 1.0.0 (target: 2x its throughput).

Same data, same config (ComplEx = complex_diagonal + dot, dim 100, batch 1000, 50 batch +
50 uniform negatives, softmax loss, lr 0.1, 1 partition unless ``--partitions``), run as
whole child processes, interleaved (PBG, ember, PBG, ember, ...):

* PBG through ``../shared/pbg-baseline/run_pbg.sh`` (its own venv; ``--fast-import``
  and ``--hogwild-delay 0`` so that neither its slow importer nor its start-up delay
  counts against it); its figures come from the runner's ``result.json``;
* ember: ``pbg train CONFIG -p ... --json`` on a workspace imported once beforehand,
  CPU time and peak RSS of the child from ``os.wait4``, then ``pbg eval`` for the
  filtered MRR (ranked against all entities, both sides, as the runner's evaluator).

Prints edges/s (wall, and per CPU-second of the process tree), peak RSS, filtered MRR,
the ratios of the best runs, the share of CPU other processes used, and the verdict
last. Without a usable PBG venv the PBG side is skipped with a note.

Measured here (2 cores, 2% of the CPU taken by others; README install, with the compiled
CPU kernels):

    1M-edge synthetic (100k entities), 3 epochs, 1 partition, 2 runs each (best):
      PBG    91k edges/s wall,  56k per CPU-s, RSS 443 MB, filtered MRR 0.114
      ember 275k edges/s wall, 166k per CPU-s, RSS 289 MB, filtered MRR 0.141
      verdict: 3.01x wall, 2.99x per CPU-s

    python benchmarks/train.py                              # 1M-edge synthetic graph
    python benchmarks/train.py --data ../shared/data/wordnet30_wn18rr_k3 --epochs 5
    python benchmarks/train.py --edges 1e5 --repeats 1      # smoke check
    python benchmarks/train.py --skip-pbg --baseline /tmp/old/.venv/bin/pbg  # two ember installs
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

sys.path.insert(0, str(Path(__file__).parent))
import numpy  # noqa: F401  (loaded, so that blas_info sees its BLAS)
from _common import blas_info, cpu_stat, install_report, noise_share

RUNNER = Path(__file__).resolve().parents[2] / "shared" / "pbg-baseline" / "run_pbg.sh"  # ../shared
TARGET = 2.0  # at least 2x PBG's training throughput


def _plain_tsv(src: Path, dst: Path) -> Path:
    """PBG's importer wants plain TSV: decompress .gz once."""
    if src.suffix == ".gz":
        with gzip.open(src, "rb") as f, open(dst, "wb") as g:
            shutil.copyfileobj(f, g)
        return dst
    return src


def prepare_data(args, tmp: Path) -> dict:
    if args.data:
        d = Path(args.data)
        files = {
            s: next(p for p in (d / f"{s}.tsv", d / f"{s}.tsv.gz") if p.exists())
            for s in ("train", "valid", "test")
        }
        return {s: _plain_tsv(p, tmp / f"{s}.tsv") for s, p in files.items()}
    all_ = tmp / "all.tsv"
    subprocess.run(
        [
            "pbg",
            "generate",
            "-n",
            str(int(float(args.entities))),
            "-r",
            "20",
            "-e",
            str(int(float(args.edges))),
            "--seed",
            "0",
            str(all_),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    lines = all_.read_text().splitlines(keepends=True)
    n_hold = max(1000, len(lines) // 100)
    out = {"train": lines[: -2 * n_hold], "valid": lines[-2 * n_hold : -n_hold], "test": lines[-n_hold:]}
    paths = {}
    for s, ls in out.items():
        paths[s] = tmp / f"{s}.tsv"
        paths[s].write_text("".join(ls))
    return paths


def run_child(cmd, env=None) -> tuple[int, str, float, float, float]:
    """(rc, stdout, wall s, CPU s of the child tree, peak RSS MB) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    out, err = "", ""
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out = p.stdout.read()
    err = p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        sys.stderr.write(err[-3000:])
    return p.returncode, out, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def ember_run(cfg: Path, ck: Path, args, pbg: str = "pbg") -> dict:
    shutil.rmtree(ck, ignore_errors=True)
    p = [
        f"num_epochs={args.epochs}",
        f"checkpoint_path={ck}",
        "dimension=100",
        "batch_size=1000",
        "num_batch_negs=50",
        "num_uniform_negs=50",
        "loss_fn=softmax",
        "comparator=dot",
        "lr=0.1",
        "relation_lr=0.1",
        "init_scale=0.001",
        f"workers={args.workers}",
        "eval_fraction=0",
    ]
    params = [x for kv in p for x in ("-p", kv)]
    rc, out, wall, cpu, rss = run_child([pbg, "train", str(cfg), *params, "--json"])
    if rc:
        raise SystemExit(f"pbg train failed (exit {rc})")
    s = json.loads(out.strip().splitlines()[-1])
    rc, out, *_ = run_child([pbg, "eval", str(cfg), *params, "--json"])
    m = json.loads(out.strip().splitlines()[-1]) if rc == 0 else {}
    return {
        "edges_per_s": s["edges"] / wall,
        "core_edges_per_s": s["edges_per_s"],
        "edges_per_cpu_s": s["edges"] / cpu,
        "peak_rss_mb": rss,
        "mrr": m.get("mrr"),
        "hits10": m.get("hits@10"),
        "wall_s": wall,
    }


def pbg_run(paths, args, work: Path) -> dict | None:
    cmd = [
        str(RUNNER),
        "--train",
        str(paths["train"]),
        "--valid",
        str(paths["valid"]),
        "--test",
        str(paths["test"]),
        "--dim",
        "100",
        "--partitions",
        str(args.partitions),
        "--epochs",
        str(args.epochs),
        "--batch",
        "1000",
        "--batch-negs",
        "50",
        "--uniform-negs",
        "50",
        "--loss",
        "softmax",
        "--lr",
        "0.1",
        "--fast-import",
        "--hogwild-delay",
        "0",
        "--no-pbg-eval",
        "--work",
        str(work),
        "--label",
        "bench",
    ]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    shutil.rmtree(work, ignore_errors=True)
    rc, out, *_ = run_child(cmd)
    res = work / "result.json"
    if rc or not res.exists():
        return None
    r = json.loads(res.read_text())
    return {
        "edges_per_s": r.get("train_edges_per_s"),
        "core_edges_per_s": r.get("core_edges_per_s"),
        "edges_per_cpu_s": r.get("train_edges_per_cpu_s"),
        "peak_rss_mb": r.get("train_peak_rss_mb") or r.get("peak_rss_mb"),
        "peak_pss_mb": r.get("train_peak_tree_pss_mb"),
        "mrr": r.get("mrr"),
        "hits10": r.get("hits10"),
        "wall_s": r.get("train_s"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder with train/valid/test .tsv[.gz]")
    ap.add_argument("--entities", default="1e5")
    ap.add_argument("--edges", default="1e6")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-pbg", action="store_true")
    ap.add_argument(
        "--baseline",
        metavar="PBG",
        help="the `pbg` command of another ember install (e.g. an older checkout's venv/bin/pbg), "
        "run interleaved with this one on the same workspace",
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-train-"))
    try:
        paths = prepare_data(args, tmp)
        ws = tmp / "ws"
        subprocess.run(
            [
                "pbg",
                "import",
                str(paths["train"]),
                "--valid",
                str(paths["valid"]),
                "--test",
                str(paths["test"]),
                "--out",
                str(ws),
                "--partitions",
                str(args.partitions),
                "--drop-unseen",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        n_train = sum(1 for _ in open(paths["train"]))
        print(
            f"data: {args.data or 'synthetic'}: {n_train:,} train edges; {args.epochs} "
            f"epochs, {args.partitions} partition(s), {args.workers} workers"
        )
        print(f"BLAS: {blas_info()}")
        print(install_report())
        pbg_ok = not args.skip_pbg and RUNNER.exists()
        if not pbg_ok:
            print("note: PBG skipped (--skip-pbg, or the runner is missing)")
        runs = {"pbg": [], "ember": []}
        if args.baseline:
            runs["baseline"] = []
        before = cpu_stat()
        for _ in range(args.repeats):
            if pbg_ok:
                r = pbg_run(paths, args, tmp / "pbg")
                if r is None:
                    print("note: PBG could not run (venv install or run failed); skipped")
                    pbg_ok = False
                else:
                    runs["pbg"].append(r)
            runs["ember"].append(ember_run(ws / "config.toml", tmp / "ck", args))
            if args.baseline:
                runs["baseline"].append(ember_run(ws / "config.toml", tmp / "ck", args, args.baseline))
        noise = noise_share(before, cpu_stat())
        print(f"{'run':8}{'edges/s':>12}{'core e/s':>12}{'e/CPU-s':>12}{'RSS MB':>9}{'MRR':>8}{'H@10':>8}")
        for name, rs in runs.items():
            for r in rs:
                print(
                    f"{name:8}{r['edges_per_s'] or 0:>12,.0f}{r['core_edges_per_s'] or 0:>12,.0f}"
                    f"{r['edges_per_cpu_s'] or 0:>12,.0f}{r['peak_rss_mb'] or 0:>9,.0f}"
                    f"{r['mrr'] or 0:>8.4f}{r['hits10'] or 0:>8.4f}"
                )
        print(
            f"other processes used {noise:.0%} of the busy CPU time"
            + (" (noisy)" if noise and noise > 0.2 else "")
            if noise is not None
            else ""
        )
        best = {k: max(rs, key=lambda r: r["edges_per_s"] or 0) for k, rs in runs.items() if rs}
        e = best["ember"]
        if "baseline" in best:
            b = best["baseline"]
            cpu_best = max(r["edges_per_cpu_s"] for r in runs["ember"])
            cpu_base = max(r["edges_per_cpu_s"] for r in runs["baseline"])
            print(
                f"ember/baseline install ({args.baseline}): {cpu_best / cpu_base:.2f}x edges per "
                f"CPU-s, {e['edges_per_s'] / b['edges_per_s']:.2f}x edges/s wall (best runs); "
                f"filtered MRR {e['mrr']:.4f} vs {b['mrr']:.4f}"
            )
        if "pbg" in best:
            p = best["pbg"]
            wall = e["edges_per_s"] / p["edges_per_s"]
            cpu = e["edges_per_cpu_s"] / p["edges_per_cpu_s"]
            print(
                f"verdict: ember/PBG throughput {wall:.2f}x wall, {cpu:.2f}x per CPU-s "
                f"(target >= {TARGET:.0f}x: {'MET' if wall >= TARGET else 'NOT MET'}); "
                f"filtered MRR {e['mrr']:.4f} vs {p['mrr']:.4f} "
                f"({'>=' if e['mrr'] >= p['mrr'] else '<'} PBG); peak RSS "
                f"{e['peak_rss_mb']:.0f} vs {p['peak_rss_mb']:.0f} MB"
            )
        else:
            vs = ""
            if "baseline" in best:
                ours = max(r["edges_per_cpu_s"] for r in runs["ember"])
                base = max(r["edges_per_cpu_s"] for r in runs["baseline"])
                vs = f"; {ours / base:.2f}x the baseline install per CPU-s"
            print(
                f"verdict: PBG not run; ember {e['edges_per_s']:,.0f} edges/s wall, "
                f"{e['edges_per_cpu_s']:,.0f} per CPU-s, filtered MRR {e['mrr']:.4f}{vs}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
