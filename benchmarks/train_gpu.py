"""Benchmark `pbg train` on the GPU against the CPU (targets: 2 M edges/s, < 10% GPU idle).

Same workspace, same config (ComplEx = complex_diagonal + dot, dimension 100, 50 batch +
50 uniform negatives per positive, softmax loss, lr 0.1), run as whole child processes
through the public CLI, interleaved (CPU, GPU, CPU, GPU, ...):

    pbg train CONFIG -p device=cpu  -p ... --json
    pbg train CONFIG -p device=cuda -p ... --json
    pbg eval  CONFIG -p ... --json          (filtered MRR against all entities)

and reads the JSON-lines statistics the trainer writes into its checkpoint folder
(``training_stats.jsonl``, one line per trained bucket). Prints CPU edges/s, GPU edges/s,
their ratio, the fraction of the GPU run's wall time the GPU waited for partition/edge
transfers (the sum of the lines' ``transfer_wait_seconds``, which the device trainer logs
for every bucket it swaps through ``ember.pbg.device.PartitionSwapper``; the CPU run logs
none), and the filtered MRR of both (each evaluated on its own device). Targets:
>= 2M edges/s on one H100 with the partitions resident; transfer wait < 10% of the epoch.

Without a GPU (``ember.cuda.is_available()`` false) it prints a note and exits 0;
``--cpu-only`` still runs the CPU half, to check the plumbing.

    python benchmarks/train_gpu.py                        # 1M-edge synthetic graph
    python benchmarks/train_gpu.py --partitions 4         # swaps every bucket
    python benchmarks/train_gpu.py --edges 1e5 --repeats 1 --cpu-only   # smoke check
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_EDGES_PER_S = 2e6
TARGET_WAIT = 0.10


def _run(cmd) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"{' '.join(cmd[:3])} failed (exit {p.returncode})")
    return p.stdout


def prepare(args, tmp: Path) -> Path:
    """A workspace: a synthetic graph (or ``--data`` with train/valid/test TSVs)."""
    if args.data:
        d = Path(args.data)
        files = {
            s: next(p for p in (d / f"{s}.tsv", d / f"{s}.tsv.gz") if p.exists())
            for s in ("train", "valid", "test")
        }
    else:
        all_ = tmp / "all.tsv"
        _run(
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
            ]
        )
        lines = all_.read_text().splitlines(keepends=True)
        hold = max(1000, len(lines) // 100)
        files = {}
        for s, ls in (
            ("train", lines[: -2 * hold]),
            ("valid", lines[-2 * hold : -hold]),
            ("test", lines[-hold:]),
        ):
            files[s] = tmp / f"{s}.tsv"
            files[s].write_text("".join(ls))
    ws = tmp / "ws"
    _run(
        [
            "pbg",
            "import",
            str(files["train"]),
            "--valid",
            str(files["valid"]),
            "--test",
            str(files["test"]),
            "--out",
            str(ws),
            "--partitions",
            str(args.partitions),
            "--drop-unseen",
        ]
    )
    return ws / "config.toml"


def one_run(cfg: Path, ck: Path, device: str, args) -> dict:
    shutil.rmtree(ck, ignore_errors=True)
    p = [
        f"device={device}",
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
        "eval_fraction=0",
        f"dtype={args.dtype}",
    ]
    params = [x for kv in p for x in ("-p", kv)]
    t0 = time.perf_counter()
    s = json.loads(_run(["pbg", "train", str(cfg), *params, "--json"]).strip().splitlines()[-1])
    wall = time.perf_counter() - t0
    lines = [json.loads(x) for x in (ck / "training_stats.jsonl").read_text().splitlines() if x.strip()]
    waits = [x["transfer_wait_seconds"] for x in lines if "transfer_wait_seconds" in x]
    m = json.loads(
        _run(["pbg", "eval", str(cfg), *params, "--device", device, "--json"]).strip().splitlines()[-1]
    )
    return {
        "edges_per_s": s["edges_per_s"],
        "edges": s["edges"],
        "train_s": s["seconds"],
        "process_wall_s": wall,
        "bucket_s": sum(x.get("seconds", 0) for x in lines),
        "wait_fraction": (sum(waits) / s["seconds"]) if waits and s["seconds"] else None,
        "mrr": m.get("mrr"),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="folder with train/valid/test .tsv(.gz)")
    ap.add_argument("--edges", default="1e6")
    ap.add_argument("--entities", default="1e5")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument(
        "--cpu-only", action="store_true", help="run the CPU half even without a GPU (plumbing check)"
    )
    args = ap.parse_args(argv)

    import ember

    gpu = ember.cuda.is_available()
    if not gpu and not args.cpu_only:
        print(
            "note: no usable CUDA GPU (ember.cuda.is_available() is false: cupy missing or "
            "no device); GPU benchmark skipped. Install ember[gpu] on a GPU machine, or "
            "run with --cpu-only to check the CPU half."
        )
        return 0
    devices = ["cpu", "cuda"] if gpu else ["cpu"]
    tmp = Path(tempfile.mkdtemp(prefix="ember-bench-gpu-"))
    try:
        cfg = prepare(args, tmp)
        print(
            f"data: {args.data or 'synthetic ' + args.edges + ' edges'}, "
            f"{args.partitions} partition(s), {args.epochs} epochs, dtype {args.dtype}"
        )
        if gpu:
            cp = ember._backend.cupy_module()
            props = cp.cuda.runtime.getDeviceProperties(0)
            print(f"GPU: {props['name'].decode()} (cupy {cp.__version__})")
        runs = {d: [] for d in devices}
        for _ in range(args.repeats):
            for d in devices:  # interleaved: drifts in machine load hit both alike
                runs[d].append(one_run(cfg, tmp / f"ck-{d}", d, args))
        best = {d: max(rs, key=lambda r: r["edges_per_s"]) for d, rs in runs.items()}
        for d, r in best.items():
            wf = r["wait_fraction"]
            every = ", ".join(f"{x['edges_per_s']:,.0f}" for x in runs[d])
            print(
                f"{d:5} {r['edges_per_s']:>14,.0f} edges/s (best of {args.repeats}; "
                f"all: {every})  "
                f"filtered MRR {r['mrr']:.4f}  transfer wait "
                + ("not logged" if wf is None else f"{wf:.1%} of wall")
            )
        if gpu:
            c, g = best["cpu"], best["cuda"]
            ratio = g["edges_per_s"] / c["edges_per_s"]
            print(f"ratio GPU/CPU {ratio:.1f}x;  MRR difference {g['mrr'] - c['mrr']:+.4f}")
            ok = g["edges_per_s"] >= TARGET_EDGES_PER_S and (
                g["wait_fraction"] is not None and g["wait_fraction"] < TARGET_WAIT
            )
            print(
                f"verdict: {'MET' if ok else 'NOT MET'} (targets: >= {TARGET_EDGES_PER_S:,.0f}"
                f" edges/s, transfer wait < {TARGET_WAIT:.0%})"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
