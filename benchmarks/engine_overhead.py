"""Per-op forward+backward overhead on a 16-element tensor: numpy floor, ember, PyTorch.

A chain of elementwise ops (mul, add, tanh, mul, sigmoid, sub, exp, ...) is run forward
and then backward; time per op = total / number of ops. Hand-written numpy (forward and
the matching backward formulas) is the floor. PyTorch runs when installed (optional).

    python benchmarks/engine_overhead.py [--ops 60] [--repeats 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import blas_info, cpu_stat, interleave, noise_share, summary

import ember


def numpy_chain(x0, n):
    # forward, keeping what backward needs
    saved = []
    x = x0
    for i in range(n):
        k = i % 4
        if k == 0:
            saved.append(x)
            x = x * 1.01
        elif k == 1:
            x = x + 0.5
        elif k == 2:
            x = np.tanh(x)
            saved.append(x)
        else:
            x = x * x0
            saved.append(x0)
    g = np.ones_like(x)
    gx0 = np.zeros_like(x0)
    for i in reversed(range(n)):
        k = i % 4
        if k == 0:
            saved.pop()
            g = g * 1.01
        elif k == 1:
            pass
        elif k == 2:
            y = saved.pop()
            g = g * (1 - y * y)
        else:
            saved.pop()
            gx0 = gx0 + g  # (approximation of the x0 branch; same op count)
            g = g * x0
    return g, gx0


def framework_chain(x0, n, tanh):
    x = x0
    for i in range(n):
        k = i % 4
        if k == 0:
            x = x * 1.01
        elif k == 1:
            x = x + 0.5
        elif k == 2:
            x = tanh(x)
        else:
            x = x * x0
    x.sum().backward()
    return x0.grad


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ops", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--inner", type=int, default=200)
    args = ap.parse_args()
    n = args.ops
    rng = np.random.default_rng(0)
    data = rng.standard_normal(16).astype(np.float32)

    def run_numpy():
        numpy_chain(data, n)

    def run_ember():
        x0 = ember.tensor(data, requires_grad=True)
        framework_chain(x0, n, ember.tanh)

    fns = {"numpy": run_numpy, "ember": run_ember}
    try:
        import torch

        torch.set_num_threads(1)

        def run_torch():
            x0 = torch.tensor(data, requires_grad=True)
            framework_chain(x0, n, torch.tanh)

        fns["torch"] = run_torch
    except ImportError:
        pass

    for f in fns.values():  # warm up
        f()
    before = cpu_stat()
    times = interleave(fns, repeats=args.repeats, inner=args.inner)
    noise = noise_share(before, cpu_stat())
    print(f"BLAS: {blas_info()}")
    print(f"ops per chain: {n} (forward + backward), 16-element float32 tensor")
    res = {}
    for name, ts in times.items():
        mn, med = summary(ts)
        res[name] = mn / n * 1e6
        print(f"{name:>6}: {mn / n * 1e6:6.2f} us/op (min)  {med / n * 1e6:6.2f} us/op (median)")
    if noise is not None:
        print(f"other processes used {noise:.0%} of busy CPU time" + ("  [NOISY]" if noise > 0.2 else ""))
    verdict = f"verdict: ember {res['ember']:.2f} us/op = {res['ember'] / res['numpy']:.2f}x numpy"
    if "torch" in res:
        verdict += (
            f", {res['ember'] / res['torch']:.2f}x PyTorch ({res['torch']:.2f} us/op); target <= 1.0x PyTorch"
        )
    else:
        verdict += "; PyTorch not installed (target: <= PyTorch's ~4.7 us/op)"
    print(verdict)


if __name__ == "__main__":
    main()
