"""One MLP training step (784-512-512-10, ReLU, softmax cross-entropy, batch 128, SGD):
hand-written numpy (the floor), ember, and PyTorch when installed, in one process.

    python benchmarks/engine_mlp.py [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--inner", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))

    import numpy as np
    from _common import blas_info, cpu_stat, interleave, noise_share, summary

    import ember

    rng = np.random.default_rng(0)
    B, sizes, lr = 128, (784, 512, 512, 10), 0.01
    X = rng.standard_normal((B, sizes[0])).astype(np.float32)
    Y = rng.integers(0, sizes[-1], B)
    init = [
        (rng.standard_normal((i, o)).astype(np.float32) * np.float32(np.sqrt(2 / i)), np.zeros(o, np.float32))
        for i, o in zip(sizes[:-1], sizes[1:])
    ]

    # ---- numpy, by hand -----------------------------------------------------------------
    Wn = [(w.copy(), b.copy()) for w, b in init]

    def step_numpy():
        acts = [X]
        h = X
        for k, (w, b) in enumerate(Wn):
            z = h @ w + b
            h = np.maximum(z, 0) if k < len(Wn) - 1 else z
            acts.append(h)
        z = acts[-1]
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        g = p
        g[np.arange(B), Y] -= 1
        g /= B
        for k in reversed(range(len(Wn))):
            w, b = Wn[k]
            a_in = acts[k]
            gw = a_in.T @ g
            gb = g.sum(axis=0)
            if k:
                g = (g @ w.T) * (acts[k] > 0)
            w -= lr * gw
            b -= lr * gb

    # ---- ember ------------------------------------------------------------------------
    We = [(ember.tensor(w, requires_grad=True), ember.tensor(b, requires_grad=True)) for w, b in init]
    Xe, Ye = ember.tensor(X), ember.tensor(Y)
    params = [p for wb in We for p in wb]

    def step_ember():
        h = Xe
        for k, (w, b) in enumerate(We):
            h = h @ w + b
            if k < len(We) - 1:
                h = h.relu()
        logp = h.log_softmax(1)
        loss = -logp.gather(1, Ye.unsqueeze(1)).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with ember.no_grad():
            for p in params:
                p.data -= lr * p.grad.data

    fns = {"numpy": step_numpy, "ember": step_ember}
    try:
        import torch

        torch.set_num_threads(args.threads)
        Wt = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in init]
        Xt, Yt = torch.tensor(X), torch.tensor(Y)
        tparams = [p for wb in Wt for p in wb]

        def step_torch():
            h = Xt
            for k, (w, b) in enumerate(Wt):
                h = h @ w + b
                if k < len(Wt) - 1:
                    h = h.relu()
            loss = torch.nn.functional.cross_entropy(h, Yt)
            for p in tparams:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                for p in tparams:
                    p -= lr * p.grad

        fns["torch"] = step_torch
    except ImportError:
        pass

    for f in fns.values():
        f()
    before = cpu_stat()
    times = interleave(fns, repeats=args.repeats, inner=args.inner)
    noise = noise_share(before, cpu_stat())
    print(f"BLAS: {blas_info()}")
    res = {}
    for name, ts in times.items():
        mn, med = summary(ts)
        res[name] = mn
        print(f"{name:>6}: {mn * 1e3:7.3f} ms/step (min)  {med * 1e3:7.3f} ms/step (median)")
    if noise is not None:
        print(f"other processes used {noise:.0%} of busy CPU time" + ("  [NOISY]" if noise > 0.2 else ""))
    v = f"verdict: ember step = {res['ember'] / res['numpy']:.3f}x hand-written numpy (target <= 1.05x)"
    if "torch" in res:
        v += f", {res['ember'] / res['torch']:.3f}x PyTorch"
    print(v)


if __name__ == "__main__":
    main()
