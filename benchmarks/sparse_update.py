"""Sparse embedding updates: a RowAdagrad step is flat in the table size, and
the coalescing of duplicate rows, compared across formulations.

1. One ``RowAdagrad`` step with a coalesced 10,000-row sparse gradient (dim 128, float32)
   on tables of 10^5, 10^6 and 10^7 rows, interleaved. Target: 10^7 within 1.2x of 10^5.
2. Coalescing a 20,000 x 128 float32 gradient whose rows come from 10,000 ids (uniform,
   and Zipf-skewed as graph degrees are), every formulation interleaved on the same data.

Run: ``python benchmarks/sparse_update.py [--max-rows 10000000] [--repeats 7]``.
The 10^7-row table takes 5.1 GB (plus 40 MB of accumulator). BENCHMARKING.md's rules:
interleaved repeats, min and median, ratios of minima, /proc/stat noise, BLAS info, and
the verdict line last.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np

import ember
from ember import sparse
from ember.optim import RowAdagrad
from ember.sparse import RowSparseGrad, coalesce_rows

DIM = 128


# ---- measurement helpers (BENCHMARKING.md) ---------------------------------------------------


def cpu_stat():
    try:
        with open("/proc/stat") as f:
            parts = [int(p) for p in f.readline().split()[1:]]
    except OSError:
        return None
    t = os.times()
    return sum(parts), sum(parts) - parts[3] - parts[4], t.user + t.system


def noise_share(before, after):
    if before is None or after is None:
        return None
    busy = (after[1] - before[1]) / os.sysconf("SC_CLK_TCK")
    ours = after[2] - before[2]
    return 0.0 if busy <= 0 else max(0.0, (busy - ours) / busy)


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return (
        "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
            f"threads={i.get('num_threads')}"
            for i in threadpool_info()
        )
        or "no BLAS thread pools loaded"
    )


def interleave(fns, repeats):
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def report(title, times, base):
    print(title)
    lo = {k: min(v) for k, v in times.items()}
    for k, v in times.items():
        print(
            f"  {k:<34} min {lo[k] * 1e3:8.3f} ms   median {statistics.median(v) * 1e3:8.3f} ms"
            f"   min/{base} {lo[k] / lo[base]:6.2f}x"
        )
    return lo


# ---- 1. RowAdagrad step vs table size -----------------------------------------------------------


def bench_row_adagrad(sizes, repeats, batch_rows=10_000, steps_per_timing=3):
    rng = np.random.default_rng(0)
    tables, opts, grads = {}, {}, {}
    for n in sizes:
        w = np.empty((n, DIM), dtype=np.float32)
        for s in range(0, n, 1_000_000):  # filled (pages resident), in chunks to bound temporaries
            w[s : s + 1_000_000] = rng.standard_normal((min(1_000_000, n - s), DIM), dtype=np.float32)
        t = ember.from_numpy(w).requires_grad_()  # no copy: one table in memory
        tables[n], opts[n] = t, RowAdagrad([t], lr=0.1)
        t.grad = RowSparseGrad(
            np.arange(batch_rows), np.ones((batch_rows, DIM), np.float32), t.shape, coalesced=True
        )
        opts[n].step()  # state allocated outside the timing
        grads[n] = []
        for _ in range(repeats * steps_per_timing):
            idx = np.sort(rng.choice(n, size=batch_rows, replace=False)).astype(np.int64)
            vals = rng.standard_normal((batch_rows, DIM), dtype=np.float32)
            grads[n].append(RowSparseGrad(idx, vals, t.shape, coalesced=True))

    def step_fn(n):
        it = iter(grads[n])

        def run():
            for _ in range(steps_per_timing):
                tables[n].grad = next(it)
                opts[n].step()

        return run

    fns = {f"{n:>10,} rows": step_fn(n) for n in sizes}
    before = cpu_stat()
    times = interleave(fns, repeats)
    noise = noise_share(before, cpu_stat())
    times = {k: [x / steps_per_timing for x in v] for k, v in times.items()}
    lo = report(
        f"RowAdagrad step, {batch_rows:,}-row sparse gradient, dim {DIM} "
        f"(per step, {steps_per_timing} steps per timing, {repeats} interleaved repeats)",
        times,
        next(iter(fns)),
    )
    first, last = next(iter(fns)), list(fns)[-1]
    return lo[last] / lo[first], f"{last.strip()} / {first.strip()}", noise


# ---- 2. coalescing formulations --------------------------------------------------------------------


def formulations(idx, vals):
    n, d = vals.shape

    def unique_flat_add_at():
        u, inv = np.unique(idx, return_inverse=True)
        out = np.zeros((len(u), d), vals.dtype)
        np.add.at(out.reshape(-1), (inv[:, None] * d + np.arange(d)).reshape(-1), vals.reshape(-1))
        return u, out

    def unique_bincount():
        u, inv = np.unique(idx, return_inverse=True)
        flat = (inv[:, None] * d + np.arange(d)).reshape(-1)
        out = np.bincount(flat, weights=vals.reshape(-1), minlength=len(u) * d)
        return u, out.reshape(len(u), d).astype(vals.dtype)

    def unique_add_at_2d():
        u, inv = np.unique(idx, return_inverse=True)
        out = np.zeros((len(u), d), vals.dtype)
        np.add.at(out, inv, vals)
        return u, out

    def sort_reduceat():
        order = np.argsort(idx, kind="stable")
        s = idx[order]
        starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
        return s[starts], np.add.reduceat(vals[order], starts, axis=0)

    def ember_numpy_sort_flat_add_at():
        saved = sparse._scipy_sparse
        sparse._scipy_sparse = None
        try:
            return coalesce_rows(idx, vals)
        finally:
            sparse._scipy_sparse = saved

    fns = {
        "flat 1-D add.at (unique+inverse)": unique_flat_add_at,
        "flat 1-D add.at (sort, ember)": ember_numpy_sort_flat_add_at,
        "bincount": unique_bincount,
        "2-D add.at (unique+inverse)": unique_add_at_2d,
        "sort + add.reduceat": sort_reduceat,
    }
    if sparse._scipy_sparse is not None:
        import scipy.sparse as sp

        def scipy_csr_from_coo():
            u, inv = np.unique(idx, return_inverse=True)
            m = sp.csr_matrix((np.ones(n, vals.dtype), (inv, np.arange(n))), shape=(len(u), n))
            return u, m @ vals

        fns["scipy CSR product (coo)"] = scipy_csr_from_coo
        fns["scipy CSR product (sort, ember)"] = lambda: coalesce_rows(idx, vals)
    return fns


def bench_coalesce(repeats, n=20_000, ids=10_000, skew=False):
    rng = np.random.default_rng(1)
    idx = (rng.zipf(1.3, n) % ids if skew else rng.integers(0, ids, n)).astype(np.int64)
    vals = rng.standard_normal((n, DIM), dtype=np.float32)
    fns = formulations(idx, vals)
    ref_rows, ref = fns["2-D add.at (unique+inverse)"]()
    for name, fn in fns.items():  # every formulation gives the same answer
        rows, out = fn()
        assert np.array_equal(rows, ref_rows), name
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4, err_msg=name)
    before = cpu_stat()
    times = interleave(fns, repeats)
    noise = noise_share(before, cpu_stat())
    what = "Zipf(1.3)" if skew else "uniform"
    lo = report(
        f"Coalescing {n:,} x {DIM} float32, rows from {ids:,} ids ({what}; "
        f"{len(ref_rows):,} unique), {repeats} interleaved repeats",
        times,
        "flat 1-D add.at (unique+inverse)",
    )
    return lo, noise


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"numpy {np.__version__}; BLAS: {blas_info()}")
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"{env} (no BLAS call on these paths)")
    sizes = [n for n in (100_000, 1_000_000, 10_000_000) if n <= args.max_rows]
    ratio, label, noise1 = bench_row_adagrad(sizes, args.repeats)
    print(f"  noise: other processes used {noise1:.0%} of busy CPU" + (" (NOISY)" if noise1 > 0.2 else ""))
    lo_u, noise2 = bench_coalesce(args.repeats)
    print(f"  noise: other processes used {noise2:.0%} of busy CPU" + (" (NOISY)" if noise2 > 0.2 else ""))
    lo_z, noise3 = bench_coalesce(args.repeats, skew=True)
    print(f"  noise: other processes used {noise3:.0%} of busy CPU" + (" (NOISY)" if noise3 > 0.2 else ""))
    print(
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB "
        f"(bound: the tables, {sum(n * DIM * 4 for n in sizes) / 2**30:.2f} GiB, plus a constant)"
    )

    def best(lo):
        name = min(lo, key=lo.get)
        numpy_only = {k: v for k, v in lo.items() if "scipy" not in k}
        np_name = min(numpy_only, key=numpy_only.get)
        return name, np_name, numpy_only[np_name] / lo[name]

    fast_u, np_u, gain_u = best(lo_u)
    fast_z, np_z, gain_z = best(lo_z)
    used = (
        "scipy CSR product (sort, ember)"
        if sparse._scipy_sparse is not None
        else "flat 1-D add.at (sort, ember)"
    )
    print(
        f"VERDICT: RowAdagrad step {label} = {ratio:.2f}x (target <= 1.2x: "
        f"{'PASS' if ratio <= 1.2 else 'FAIL'}); coalescing fastest: {fast_u} (uniform), "
        f"{fast_z} (Zipf); fastest pure numpy: {np_u}/{np_z}, {gain_u:.1f}x/{gain_z:.1f}x slower; "
        f"ember uses {used} at {lo_u[used] / lo_u[fast_u]:.2f}x/{lo_z[used] / lo_z[fast_z]:.2f}x "
        "of the fastest"
    )


if __name__ == "__main__":
    main()
