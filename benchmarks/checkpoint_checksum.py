"""The cost of verifying a checkpoint file's CRC-32 against reading it.

Writes one partition file (``--rows`` x ``--dim`` float32 embeddings and their Adagrad
state, as the trainer does), then times, interleaved, ``read_h5`` alone and
``checksum`` + ``read_h5`` (what a reader does with a file it did not write itself;
the trainer does not verify again a partition it wrote, unchanged since), both from the
page cache (the checksum's read warms it for h5py's; a cold read costs the disk once
either way).
Then the checksum alone, with the compiled kernels' CRC (where they are built) and with
zlib's, interleaved. Prints min and median of each, their ratio, and the share of CPU
other processes took.

    python benchmarks/checkpoint_checksum.py --rows 1000000 --dim 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import ember.pbg.checkpoint as checkpoint
from ember import _cpu_kernels
from ember.pbg.checkpoint import checksum, read_h5, write_h5


def _cpu():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v), v[3] + v[4]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "embeddings_all_0.v1.h5"
        rng = np.random.default_rng(0)
        emb = rng.standard_normal((args.rows, args.dim), np.float32)
        sums = write_h5(path, {"embeddings": emb, "state": np.zeros(args.rows, np.float32)}, durable=False)
        del emb
        size = os.path.getsize(path)
        plain, checked = [], []
        t0, i0 = _cpu()
        c0 = os.times()
        for _ in range(args.repeats):
            t = time.perf_counter()
            read_h5(path)
            plain.append(time.perf_counter() - t)
            checkpoint._KNOWN.clear()  # a file this process did not write or verify yet
            t = time.perf_counter()
            read_h5(path, sums)  # checksum, then the read
            checked.append(time.perf_counter() - t)
            t = time.perf_counter()
        t1, i1 = _cpu()
        c1 = os.times()
        crc, crc_zlib = [], []
        mode = _cpu_kernels.MODE
        for _ in range(args.repeats):
            t = time.perf_counter()
            checksum(path)
            crc.append(time.perf_counter() - t)
            _cpu_kernels.MODE = "numpy"  # zlib's CRC: what runs without the kernels
            t = time.perf_counter()
            checksum(path)
            crc_zlib.append(time.perf_counter() - t)
            _cpu_kernels.MODE = mode
    total = t1 - t0
    ours = (c1.user + c1.system - c0.user - c0.system) * os.sysconf("SC_CLK_TCK")
    others = max(0.0, (total - (i1 - i0)) - ours) / max(total, 1)
    print(f"file {size / 2**20:,.1f} MiB ({args.rows:,} x {args.dim} float32 + state)")
    print(f"CRC-32 by: {_cpu_kernels.status()} kernels (else zlib)")
    for name, xs in (
        ("read", plain),
        ("checksum+read", checked),
        ("checksum alone", crc),
        ("checksum, zlib", crc_zlib),
    ):
        print(f"{name:15} min {min(xs):.3f} s  median {statistics.median(xs):.3f} s")
    gib = size / 2**30
    print(f"checksum speed: {gib / min(crc):.2f} GiB/s, with zlib's CRC {gib / min(crc_zlib):.2f} GiB/s")
    print(f"others' CPU share during the timings: {others:.0%}{' (noisy)' if others > 0.2 else ''}")
    print(f"verdict: verified read / plain read = {min(checked) / min(plain):.2f}x (min over min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
