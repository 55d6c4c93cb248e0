"""C++ extensions: the worked example's speed and the binding's call overhead.

1. RMSNorm forward+backward on a (4096, 512) float32 batch: composed from ember ops
   against the fused C++ op of examples/cpp_rms_norm.py (docs/cpp_extensions.md).
2. Call overhead of a trivial C++ function that takes a 16-element float32 array and
   returns its first element, bound with pybind11 (what ember.utils.cpp_extension uses)
   against the same function through ctypes on the array's pointer (the plain C ABI
   alternative), and a Python function doing the same (the floor).

    python benchmarks/cpp_extension.py [--repeats 7]

Needs a C++ compiler and pybind11 (pip install -e ".[ext]"); builds are cached.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))
from _common import blas_info, cpu_stat, interleave, noise_share, summary

import ember
from ember.utils.cpp_extension import load_inline

C_FIRST = 'extern "C" float first(const float* x, long n) { return n ? x[0] : 0.0f; }\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    import cpp_rms_norm as ex  # builds (or loads) the example extension

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 512)).astype(np.float32)
    w = rng.standard_normal(512).astype(np.float32)
    xf, wf = ember.tensor(x, requires_grad=True), ember.tensor(w, requires_grad=True)
    xc, wc = ember.tensor(x, requires_grad=True), ember.tensor(w, requires_grad=True)
    g = ember.ones(4096, 512)

    def composed():
        ex.rms_norm_composed(xc, wc).backward(g)
        xc.grad = wc.grad = None

    def fused():
        ex.rms_norm(xf, wf).backward(g)
        xf.grad = wf.grad = None

    # ---- call overhead: pybind11 vs ctypes vs Python -----------------------------------------
    pb = load_inline(
        "bench_first_ext",
        "float first(ember::array<float> x) { return x.size() ? x.data()[0] : 0.0f; }",
        functions=["first"],
    )
    tmp = Path(tempfile.mkdtemp(prefix="ember-ctypes-"))
    (tmp / "first.cpp").write_text(C_FIRST)
    so = tmp / "libfirst.so"
    subprocess.run(["g++", "-O3", "-shared", "-fPIC", str(tmp / "first.cpp"), "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.first.restype = ctypes.c_float
    lib.first.argtypes = [ctypes.c_void_p, ctypes.c_long]
    small = np.ones(16, np.float32)
    n_calls = 20000

    def call_pybind():
        f = pb.first
        for _ in range(n_calls):
            f(small)

    def call_ctypes():
        f = lib.first
        for _ in range(n_calls):
            f(small.ctypes.data, small.size)

    def call_python():
        def f(a):
            return a[0]

        for _ in range(n_calls):
            f(small)

    for fn in (composed, fused, call_pybind, call_ctypes, call_python):
        fn()
    before = cpu_stat()
    t_op = interleave({"composed": composed, "fused C++": fused}, repeats=args.repeats, inner=3)
    t_call = interleave(
        {"pybind11": call_pybind, "ctypes": call_ctypes, "python": call_python}, repeats=args.repeats
    )
    noise = noise_share(before, cpu_stat())
    print(f"BLAS: {blas_info()}")
    print("RMSNorm forward+backward, (4096, 512) float32:")
    res = {}
    for name, ts in t_op.items():
        mn, med = summary(ts)
        res[name] = mn
        print(f"  {name:>10}: {mn * 1e3:7.2f} ms (min)  {med * 1e3:7.2f} ms (median)")
    print("call overhead of a 16-element array argument:")
    calls = {}
    for name, ts in t_call.items():
        mn, med = summary(ts)
        calls[name] = mn / n_calls * 1e6
        print(f"  {name:>10}: {calls[name]:6.3f} us/call (min)  {med / n_calls * 1e6:6.3f} us/call (median)")
    if noise is not None:
        print(f"other processes used {noise:.0%} of busy CPU time" + ("  [NOISY]" if noise > 0.2 else ""))
    os.remove(so)
    print(
        f"verdict: fused C++ RMSNorm {res['composed'] / res['fused C++']:.2f}x faster than composed "
        "ember ops "
        f"(target > 1x); pybind11 call {calls['pybind11']:.2f} us vs ctypes {calls['ctypes']:.2f} us"
    )


if __name__ == "__main__":
    main()
