"""cupy fast paths: fused kernels for the optimizer updates that dominate graph training.

Used only where the array module is cupy (``engaged(xp)``); numpy and the test stand-in
take the ordinary ``xp`` code in ``ember.optim``, so there is one code path everywhere
else. Each kernel is compiled lazily (the first call on a GPU) and cached.

Why these: a sparse Adagrad step written with ``xp`` ops is a gather of the touched
rows, four or five elementwise passes over ``(rows, dim)`` and a scatter back, each one
a kernel launch and a round trip through device memory. The kernels below read the
gradient once and the table rows once and write them once:

* ``adagrad_dense_``  -- ``s += g^2; w -= clr g / (sqrt(s) + eps)``, one elementwise pass;
* ``adagrad_rows_``   -- the same on the rows ``idx`` of ``w`` and ``s`` (gather, update
  and scatter fused; the rows are unique, so threads never collide);
* ``row_adagrad_``    -- RowAdagrad: one reduction kernel for ``sum(g^2)`` per row, the
  row accumulators updated with a few ``(rows,)``-sized ops, then one fused pass that
  updates the table rows in place (``idx`` given) or the whole table (``idx=None``).

Supported dtypes: tables float32 or float16 (half-precision storage), gradients and
accumulators float32. Anything else returns False and the caller takes the ``xp`` path.

The semantics of every kernel are also written in ``xp`` code (``_EMULATED``): the tests
swap them in on the stand-in device to check the Python-side dispatch, and the GPU tests
compare the real kernels against them.
"""

from __future__ import annotations

import numpy as np

_TABLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
_F32 = np.dtype(np.float32)


def is_cupy(xp) -> bool:
    return getattr(xp, "__name__", "") == "cupy"


def engaged(xp) -> bool:
    """True when the fast paths should run for arrays of module ``xp`` (cupy only)."""
    return is_cupy(xp)


# --------------------------------------------------------------------------- kernels
# CUDA source of each kernel: ElementwiseKernel params use cupy's type placeholders
# (T: table dtype, S/G: float32); float16 goes through float for the arithmetic.
_SOURCES = {
    "adagrad_dense": (
        "elementwise",
        "G g, float32 clr, float32 eps",
        "T w, S s",
        "float gg = (float)g; float acc = (float)s + gg * gg; s = (S)acc; "
        "w = (T)((float)w - clr * gg / (sqrtf(acc) + eps));",
    ),
    "adagrad_rows": (
        "elementwise",
        "raw int64 idx, G g, int64 dim, float32 clr, float32 eps",
        "raw T w, raw S s",
        "long long p = idx[i / dim] * dim + i % dim; float gg = (float)g; "
        "float acc = (float)s[p] + gg * gg; s[p] = (S)acc; "
        "w[p] = (T)((float)w[p] - clr * gg / (sqrtf(acc) + eps));",
    ),
    "row_sumsq": (  # sum of squares over the last axis, accumulated in float32
        "reduction",
        "G g",
        "float32 y",
        "(float)g * (float)g",
    ),
    "row_update_dense": (  # w (rows, dim) -= clr g / (sqrt(srow[row]) + eps)
        "elementwise",
        "G g, raw S srow, int64 dim, float32 clr, float32 eps",
        "T w",
        "w = (T)((float)w - clr * (float)g / (sqrtf((float)srow[i / dim]) + eps));",
    ),
    "row_update_rows": (  # the same on rows idx of w (unique rows)
        "elementwise",
        "raw int64 idx, G g, raw S srow, int64 dim, float32 clr, float32 eps",
        "raw T w",
        "long long r = i / dim; long long p = idx[r] * dim + i % dim; "
        "w[p] = (T)((float)w[p] - clr * (float)g / (sqrtf((float)srow[r]) + eps));",
    ),
}

_compiled: dict = {}


def _compile(name):
    from ember._backend import cupy_module

    cp = cupy_module()
    kind, in_p, out_p, body = _SOURCES[name]
    if kind == "elementwise":
        return cp.ElementwiseKernel(in_p, out_p, body, f"ember_{name}")
    # reduction: map, sum, store; identity 0
    return cp.ReductionKernel(
        in_p, out_p, body, "a + b", "y = a", "0", f"ember_{name}", reduce_type="float32"
    )


def _kernel(name):
    k = _compiled.get(name)
    if k is None:
        k = _compiled[name] = _compile(name)
    return k


# --------------------------------------------------------- the same, in xp code
# Each emulation takes the kernel's arguments in the kernel's order (inputs, then
# outputs) and updates the outputs in place, as the CUDA kernel does.
def _em_adagrad_dense(g, clr, eps, w, s):
    gg = g.astype(_F32)
    s += gg * gg
    w[...] = (w.astype(_F32) - clr * gg / (_sqrt(s) + eps)).astype(w.dtype)


def _em_adagrad_rows(idx, g, dim, clr, eps, w, s):
    gg = g.astype(_F32)
    acc = s[idx] + gg * gg
    s[idx] = acc
    w[idx] = (w[idx].astype(_F32) - clr * gg / (_sqrt(acc) + eps)).astype(w.dtype)


def _em_row_sumsq(g, axis):
    gg = g.astype(_F32)
    return (gg * gg).sum(axis=axis)


def _em_row_update_dense(g, srow, dim, clr, eps, w):
    std = _sqrt(srow) + eps
    w[...] = (w.astype(_F32) - clr * g.astype(_F32) / std[:, None]).astype(w.dtype)


def _em_row_update_rows(idx, g, srow, dim, clr, eps, w):
    std = _sqrt(srow) + eps
    w[idx] = (w[idx].astype(_F32) - clr * g.astype(_F32) / std[:, None]).astype(w.dtype)


def _sqrt(a):
    from ember._backend import array_module

    return array_module(a).sqrt(a)


_EMULATED = {
    "adagrad_dense": _em_adagrad_dense,
    "adagrad_rows": _em_adagrad_rows,
    "row_sumsq": _em_row_sumsq,
    "row_update_dense": _em_row_update_dense,
    "row_update_rows": _em_row_update_rows,
}


# --------------------------------------------------------------------------- dispatch
def _ok(w, g, s) -> bool:
    return (
        w.dtype in _TABLE_DTYPES
        and g.dtype == _F32
        and s.dtype == _F32
        and w.flags.c_contiguous
        and s.flags.c_contiguous
    )


def adagrad_dense_(xp, w, g, s, clr, eps) -> bool:
    """Dense Adagrad in place; False (nothing done) when the fast path does not apply."""
    if not engaged(xp) or not _ok(w, g, s) or g.shape != w.shape or s.shape != w.shape:
        return False
    _kernel("adagrad_dense")(xp.ascontiguousarray(g), np.float32(clr), np.float32(eps), w, s)
    return True


def adagrad_rows_(xp, w, idx, g, s, clr, eps) -> bool:
    """Sparse Adagrad on the unique rows ``idx`` of ``w`` (2-D) and ``s`` in place."""
    if (
        not engaged(xp)
        or not _ok(w, g, s)
        or w.ndim != 2
        or s.shape != w.shape
        or g.shape != (len(idx), w.shape[1])
    ):
        return False
    if len(idx) == 0:
        return True
    _kernel("adagrad_rows")(
        idx.astype(np.int64, copy=False),
        xp.ascontiguousarray(g),
        np.int64(w.shape[1]),
        np.float32(clr),
        np.float32(eps),
        w,
        s,
    )
    return True


def row_adagrad_(xp, w, g, s, clr, eps, idx=None) -> bool:
    """RowAdagrad in place on a 2-D table ``w`` with one accumulator per row ``s``:
    all rows (``idx=None``, ``g`` shaped like ``w``) or the unique rows ``idx``."""
    if not engaged(xp) or not _ok(w, g, s) or w.ndim != 2 or s.shape != w.shape[:1]:
        return False
    n = w.shape[0] if idx is None else len(idx)
    if g.shape != (n, w.shape[1]):
        return False
    if n == 0:
        return True
    g = xp.ascontiguousarray(g)
    dim = w.shape[1]
    ms = _kernel("row_sumsq")(g, axis=1)
    ms /= dim
    args = (np.int64(dim), np.float32(clr), np.float32(eps))
    if idx is None:
        s += ms
        _kernel("row_update_dense")(g, s, *args, w)
    else:
        idx = idx.astype(np.int64, copy=False)
        srow = s[idx]
        srow += ms
        s[idx] = srow
        _kernel("row_update_rows")(idx, g, srow, *args, w)
    return True
