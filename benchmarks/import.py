"""Benchmark `pbg import` against the floor: a bare pyarrow.csv parse of the same file.

Generate a 10^7-edge graph (10^8 with ``--edges 1e8``)
with `ember.datasets`, then time, as whole child processes and interleaved
(parse, import, parse, import, ...):

* ``parse``  - ``python -c`` that streams the file through ``pyarrow.csv.open_csv``
  (multi-threaded, string columns) and counts rows: what any importer here must pay;
* ``import`` - ``pbg import FILE --out DIR --partitions N --format F --overwrite``, with
  the import's compiled kernel (``ember.partitioning.native``; built once before the
  timed runs, in a fresh cache folder, and its build time printed);
* ``numpy``  - the same import on the pure-numpy path (``EMBER_IMPORT_KERNEL=numpy``);
* ``baseline`` - with ``--baseline PYTHON``, the same import by another install (e.g.
  main's venv, or the branch's first commit), in the same interleaved loop.

For each: min and median wall time and CPU time (the child's user+sys), edges/s,
edges per CPU-second, peak RSS of the child (``os.wait4``), and the ratios of the
minima to the parse's, wall and CPU (issue 13's target: import CPU <= 3x parse CPU at
10^7 edges). The share
of the machine's CPU used by other processes is read from ``/proc/stat``. With
``--with-pbg``, PyTorch-BigGraph 1.0.0's own importer (from the venv that
``../shared/pbg-baseline/run_pbg.sh`` builds) runs on a prefix of the same file
(it manages ~10k edges/s), and so does ours, for a ratio. The verdict line is last.

    python benchmarks/import.py                     # 10^7 edges
    python benchmarks/import.py --edges 1e5 --repeats 2   # smoke check
    python benchmarks/import.py --edges 1e8 --entities 1e7 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

PARSE_SCRIPT = textwrap.dedent(
    """
    import sys
    import pyarrow as pa, pyarrow.csv as csv
    path = sys.argv[1]
    read = csv.ReadOptions(column_names=["lhs", "rel", "rhs"], block_size=16 << 20)
    parse = csv.ParseOptions(delimiter="\\t", quote_char=False)
    convert = csv.ConvertOptions(column_types={c: pa.string() for c in ("lhs", "rel", "rhs")})
    rows = 0
    for batch in csv.open_csv(path, read_options=read, parse_options=parse,
                              convert_options=convert):
        rows += batch.num_rows
    print(rows)
    """
)

PBG_CONFIG = textwrap.dedent(
    """
    def get_torchbiggraph_config():
        return dict(
            entity_path={entity_path!r},
            edge_paths=[{edge_path!r}],
            checkpoint_path={checkpoint_path!r},
            entities={{"all": {{"num_partitions": {partitions}}}}},
            relations=[{{"name": "all_edges", "lhs": "all", "rhs": "all",
                         "operator": "complex_diagonal"}}],
            dynamic_relations=True,
            dimension=100,
            global_emb=False,
        )
    """
)


def count(text: str) -> int:
    return int(float(text))


# --------------------------------------------------------------------------- measuring
def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat, or (0, 0)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def run_child(cmd: list[str], env=None, timeout: float | None = None) -> dict:
    """Run ``cmd`` as a child: wall seconds, CPU seconds and peak RSS of that child.

    The child is reaped with ``os.wait4`` so that its own rusage is read (RUSAGE_CHILDREN
    would give the maximum over every child so far). Output goes to temporary files.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if timer is not None:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
        out.seek(0)
        err.seek(0)
        return dict(
            rc=proc.returncode,
            timed_out=proc.returncode == -9 and timeout is not None and wall >= timeout,
            wall_s=wall,
            cpu_s=ru.ru_utime + ru.ru_stime,
            rss_mib=ru.ru_maxrss / 1024,  # KiB on Linux
            stdout=out.read(),
            stderr=err.read(),
        )


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def summarize(name: str, runs: list[dict], edges: int) -> dict:
    walls = [r["wall_s"] for r in runs]
    cpus = [r["cpu_s"] for r in runs]
    s = dict(
        name=name,
        runs=len(runs),
        min_s=min(walls),
        median_s=statistics.median(walls),
        min_cpu_s=min(cpus),
        median_cpu_s=statistics.median(cpus),
        edges_per_s=edges / min(walls),
        edges_per_cpu_s=edges / min(cpus) if min(cpus) else float("nan"),
        peak_rss_mib=max(r["rss_mib"] for r in runs),
    )
    print(
        f"{name:>8}: wall min {s['min_s']:.3f} s median {s['median_s']:.3f} s; CPU min "
        f"{s['min_cpu_s']:.2f} s median {s['median_cpu_s']:.2f} s; "
        f"{fmt_rate(s['edges_per_s'])} edges/s  {fmt_rate(s['edges_per_cpu_s'])} edges/CPU-s  "
        f"peak RSS {s['peak_rss_mib']:.0f} MiB  ({len(runs)} runs)"
    )
    return s


def build_kernel(python: str, env: dict) -> float | None:
    """Build the import's kernel in ``env``'s cache folder (a child process, as a first
    ``pbg import`` would): the first-call compile time, or None if it cannot be built."""
    code = "from ember.partitioning import native; native.kernel(1 << 62)"
    env = {**env, "EMBER_IMPORT_KERNEL": "cpp"}
    r = run_child([python, "-c", code], env=env)
    if r["rc"] != 0:
        print(f"kernel: not built ({r['stderr'].strip().splitlines()[-1:]}); 'import' runs the numpy path")
        return None
    print(f"kernel: built in {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU-s (once; cached after)")
    return r["wall_s"]


def threadpool_report() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    import numpy  # noqa: F401 - load its BLAS so that threadpool_info sees it

    infos = threadpool_info()
    return (
        "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} "
            f"threads={i.get('num_threads')}"
            for i in infos
        )
        or "no native thread pools loaded"
    )


# --------------------------------------------------------------------------- PBG
def pbg_venv(args) -> str | None:
    venv = args.pbg_venv or os.path.join(os.environ.get("TMPDIR", "/tmp"), "pbg-venv")
    exe = os.path.join(venv, "bin", "torchbiggraph_import_from_tsv")
    return exe if os.access(exe, os.X_OK) else None


def run_pbg(args, tsv: str, work: str, edges_in_prefix: int, ours_cmd) -> dict | None:
    exe = pbg_venv(args)
    if exe is None:
        print(
            "pbg: skipped - no PyTorch-BigGraph venv with torchbiggraph_import_from_tsv "
            f"(looked in {args.pbg_venv or '$TMPDIR/pbg-venv'}); run "
            "../shared/pbg-baseline/run_pbg.sh once to build it (pip: torch + "
            "torchbiggraph==1.0.0), or pass --pbg-venv"
        )
        return None
    prefix = os.path.join(work, "pbg_prefix.tsv")
    with open(tsv, "rb") as src, open(prefix, "wb") as dst:
        for _, line in zip(range(edges_in_prefix), src, strict=False):
            dst.write(line)
    pbg_dir = os.path.join(work, "pbg")
    shutil.rmtree(pbg_dir, ignore_errors=True)
    os.makedirs(pbg_dir)
    config = os.path.join(pbg_dir, "config.py")
    with open(config, "w") as f:
        f.write(
            PBG_CONFIG.format(
                entity_path=pbg_dir,
                edge_path=os.path.join(pbg_dir, "edges_partitioned"),
                checkpoint_path=os.path.join(pbg_dir, "model"),
                partitions=args.partitions,
            )
        )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [exe, "--lhs-col=0", "--rel-col=1", "--rhs-col=2", config, prefix]
    print(f"pbg: PyTorch-BigGraph importer on the first {edges_in_prefix:,} edges ...")
    theirs = run_child(cmd, env=env, timeout=args.pbg_timeout)
    if theirs["rc"] != 0:
        why = "timed out" if theirs.get("timed_out") else f"exit {theirs['rc']}"
        print(f"pbg: failed ({why}): {theirs['stderr'].strip()[-500:]}")
        return None
    ours = run_child(ours_cmd(prefix, os.path.join(work, "ours_prefix")))
    if ours["rc"] != 0:
        print(f"pbg: our import of the prefix failed: {ours['stderr'].strip()[-500:]}")
        return None
    p = summarize("pbg", [theirs], edges_in_prefix)
    o = summarize("ours", [ours], edges_in_prefix)
    p["speedup"] = p["min_s"] / o["min_s"]
    print(f"pbg: ours is {p['speedup']:.1f}x faster on the same {edges_in_prefix:,} edges")
    return p


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=count, default=10**7, help="edges (1e7, 1e8, ...)")
    ap.add_argument("--entities", type=count, default=None, help="default: edges / 10")
    ap.add_argument("--relations", type=count, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--format", choices=["hdf5", "arrow"], default="hdf5")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each, interleaved")
    ap.add_argument("--workdir", default=None, help="default: a temporary folder")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--with-pbg", action="store_true", help="also run PBG 1.0.0's importer")
    ap.add_argument("--pbg-venv", default=None, help="default: $TMPDIR/pbg-venv")
    ap.add_argument(
        "--pbg-edges",
        type=count,
        default=10**6,
        help="prefix of the file given to PBG (it does ~10k edges/s)",
    )
    ap.add_argument("--pbg-timeout", type=float, default=900)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument(
        "--baseline",
        default=None,
        metavar="PYTHON",
        help="also time the import of another install (its python), interleaved",
    )
    ap.add_argument("--no-numpy", action="store_true", help="skip the numpy-path arm")
    args = ap.parse_args(argv)
    entities = args.entities or max(1, args.edges // 10)

    from ember.datasets import SyntheticGraph, write_graph

    work = args.workdir or tempfile.mkdtemp(prefix="ember-bench-import-")
    os.makedirs(work, exist_ok=True)
    tsv = os.path.join(work, "edges.tsv")
    result: dict = dict(
        edges=args.edges,
        entities=entities,
        relations=args.relations,
        partitions=args.partitions,
        format=args.format,
    )
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; BLAS: {threadpool_report()}")
        for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if var in os.environ:
                print(f"note: {var}={os.environ[var]} is set (it slows a current numpy)")
        graph = SyntheticGraph(entities, args.relations, args.edges, seed=args.seed)
        gen = write_graph(graph, tsv)
        result["generate"] = dict(seconds=gen.seconds, edges_per_s=gen.edges_per_s, bytes=gen.bytes)
        print(
            f"generated {gen.edges:,} edges, {entities:,} entities, {args.relations} "
            f"relations: {gen.bytes / 2**20:.0f} MiB in {gen.seconds:.2f} s "
            f"({fmt_rate(gen.edges_per_s)} edges/s)"
        )

        ext_dir = os.path.join(work, "extensions")  # a fresh cache: the build is timed
        env = {**os.environ, "EMBER_EXTENSIONS_DIR": ext_dir}
        result["kernel_build_s"] = build_kernel(sys.executable, env)

        def import_cmd(path, out, python=sys.executable):
            return [
                python,
                "-m",
                "ember.cli.main",
                "import",
                path,
                "--out",
                out,
                "--partitions",
                str(args.partitions),
                "--format",
                args.format,
                "--overwrite",
            ]

        parse_cmd = [sys.executable, "-c", PARSE_SCRIPT, tsv]
        ours_cmd = import_cmd(tsv, os.path.join(work, "workspace"))
        arms = [("parse", parse_cmd, env), ("import", ours_cmd, env)]
        if not args.no_numpy:
            arms.append(("numpy", ours_cmd, {**env, "EMBER_IMPORT_KERNEL": "numpy"}))
        if args.baseline:
            base_cmd = import_cmd(tsv, os.path.join(work, "workspace_base"), args.baseline)
            arms.append(("baseline", base_cmd, {**os.environ, "EMBER_IMPORT_KERNEL": "numpy"}))
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in arms}
        import_error = None
        busy0, total0 = cpu_times()
        for i in range(args.repeats):
            for name, cmd, arm_env in arms:
                if name == "import" and import_error:
                    continue
                r = run_child(cmd, env=arm_env)
                if r["rc"] != 0:
                    if name == "parse":
                        raise SystemExit(f"the pyarrow parse failed: {r['stderr']}")
                    if name != "import":
                        raise SystemExit(f"the {name} import failed: {r['stderr'].strip()[-500:]}")
                    import_error = r["stderr"].strip().splitlines()[-1:] or [f"exit {r['rc']}"]
                    print(f" import: failed (exit {r['rc']}): {import_error[0]}")
                    continue
                if name == "parse" and int(r["stdout"].strip()) != args.edges:
                    raise SystemExit(f"the parse counted {r['stdout'].strip()} rows, not {args.edges}")
                runs[name].append(r)
                print(
                    f"  run {i + 1} {name:>6}: {r['wall_s']:.3f} s, "
                    f"{r['cpu_s']:.2f} CPU-s, {r['rss_mib']:.0f} MiB"
                )
        busy1, total1 = cpu_times()
        ours_cpu = sum(r["cpu_s"] for rs in runs.values() for r in rs)
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        noise = None
        if total1 > total0:
            others = max(0.0, (busy1 - busy0) / tick - ours_cpu)
            noise = others / ((total1 - total0) / tick)
            print(
                f"machine: other processes used {noise:.0%} of the CPU during the timed "
                f"runs{' (NOISY)' if noise > 0.2 else ''}"
            )
        result["noise_share"] = noise

        parse = summarize("parse", runs["parse"], args.edges)
        result["parse"] = parse
        ratio = cpu_ratio = None
        for name in runs:
            if name == "parse" or not runs[name]:
                continue
            s = result[name] = summarize(name, runs[name], args.edges)
            s["ratio"] = s["min_s"] / parse["min_s"]
            s["cpu_ratio"] = s["min_cpu_s"] / parse["min_cpu_s"]
            print(f"  {name}/parse (minima): wall {s['ratio']:.2f}x, CPU {s['cpu_ratio']:.2f}x")
        if "import" in result:
            ratio, cpu_ratio = result["import"]["ratio"], result["import"]["cpu_ratio"]
            result["ratio"], result["cpu_ratio"] = ratio, cpu_ratio
            for other in ("numpy", "baseline"):
                if other in result:
                    x = result[other]["min_cpu_s"] / result["import"]["min_cpu_s"]
                    print(f"  {other}/import CPU (minima): {x:.2f}x")

        pbg = None
        if args.with_pbg:
            pbg = run_pbg(args, tsv, work, min(args.pbg_edges, args.edges), import_cmd)
            result["pbg"] = pbg

        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1, default=str)

        # ---- verdict: last line, against the import's targets
        parts = []
        if ratio is None:
            parts.append(f"import UNAVAILABLE ({import_error[0] if import_error else '?'})")
        else:
            ok = cpu_ratio <= 3.0
            parts.append(f"import/parse CPU {cpu_ratio:.2f}x (target <= 3x: {'PASS' if ok else 'FAIL'})")
            parts.append(f"wall {ratio:.2f}x")
            if "baseline" in result:
                parts.append(f"baseline/parse CPU {result['baseline']['cpu_ratio']:.2f}x")
            if "numpy" in result:
                parts.append(f"numpy path/parse CPU {result['numpy']['cpu_ratio']:.2f}x")
            parts.append(f"{fmt_rate(result['import']['edges_per_s'])} edges/s")
            rss = result["import"]["peak_rss_mib"]
            if args.edges >= 10**8:
                parts.append(
                    f"peak RSS {rss:.0f} MiB (target < 4096 at 1e8 edges: {'PASS' if rss < 4096 else 'FAIL'})"
                )
            else:
                parts.append(f"peak RSS {rss:.0f} MiB (4 GiB target is for 1e8 edges)")
        if args.with_pbg:
            parts.append(f"vs PBG {pbg['speedup']:.0f}x faster" if pbg else "PBG skipped")
        if noise is not None and noise > 0.2:
            parts.append("NOISY machine")
        print(
            f"VERDICT edges={args.edges:.0e} partitions={args.partitions} "
            f"format={args.format}: " + "; ".join(parts)
        )
        return 0 if ratio is not None else 1
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            print(f"kept {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
