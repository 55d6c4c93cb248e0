"""A chain whose other operand is a Python scalar, ``y = y * 1.0001 + 0.0001``: what users
write all the time. Per-op time of ember (without and with a graph + backward) against
the numpy floor, on a 16-element float32 tensor, interleaved.

    python benchmarks/scalar_chain.py [--steps 100] [--repeats 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import blas_info, cpu_stat, interleave, noise_share, summary

import ember


def chain(y, steps):
    for _ in range(steps):
        y = y * 1.0001 + 0.0001
    return y


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--inner", type=int, default=50)
    args = ap.parse_args()
    n = args.steps
    data = np.random.default_rng(0).standard_normal(16).astype(np.float32)

    def run_numpy():
        chain(data, n)

    def run_ember():
        chain(ember.tensor(data), n)

    def run_ember_grad():
        x = ember.tensor(data, requires_grad=True)
        chain(x, n).sum().backward()

    fns = {"numpy": run_numpy, "ember": run_ember, "ember+grad": run_ember_grad}
    for f in fns.values():  # warm up
        f()
    assert chain(ember.tensor(data), 3).dtype == ember.float32  # the scalar never widens float32
    before = cpu_stat()
    times = interleave(fns, repeats=args.repeats, inner=args.inner)
    noise = noise_share(before, cpu_stat())
    print(f"BLAS: {blas_info()}")
    print(f"ops per chain: {2 * n} (a mul and an add by a Python float per step), 16-element float32")
    res = {}
    for name, ts in times.items():
        mn, med = summary(ts)
        res[name] = mn / (2 * n) * 1e6
        print(f"{name:>10}: {res[name]:6.2f} us/op (min)  {med / (2 * n) * 1e6:6.2f} us/op (median)")
    if noise is not None:
        print(f"other processes used {noise:.0%} of busy CPU time" + ("  [NOISY]" if noise > 0.2 else ""))
    print(
        f"verdict: ember {res['ember']:.2f} us/op forward = {res['ember'] / res['numpy']:.2f}x numpy; "
        f"with graph and backward {res['ember+grad']:.2f} us/op (target: no slower than before issue 12)"
    )


if __name__ == "__main__":
    main()
