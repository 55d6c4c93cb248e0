"""``out += a @ b.T`` through the BLAS numpy itself calls, with its ``beta = 1``.

Why: numpy's ``matmul(a, b.T, out=out)`` calls ``sgemm`` with ``beta = 0``, and OpenBLAS
then zeroes ``out`` in a pass of its own before its kernels add the product into it
(perf: 6.4% of `pbg eval`'s CPU at 10^7 edges in that ``memset``). Where ``out`` holds
zeros already (eval's counting clears each block of scores as it reads it), the same
call with ``beta = 1`` adds the product into it with no such pass: bit for bit numpy's
result (the kernels add into zeros either way), 3-14% faster per product on the
development machine of 4 December 2026 (eval's shapes, one and two threads).

The BLAS is found among the libraries loaded in the process (threadpoolctl's list): the
first whose ``cblas_sgemm`` (under any of the names numpy's builds give it) returns
numpy's own bits on a probe product. Where none does (another BLAS build, another
platform), `sgemm_nt_acc` returns False and the caller uses numpy.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

__all__ = ["sgemm_nt_acc"]

_NAMES = ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "cblas_sgemm")
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_lock = threading.Lock()
_fn = None  # the bound cblas_sgemm, False where none matches numpy, None not looked up yet


def _bind(lib):
    for name in _NAMES:
        f = getattr(lib, name, None)
        if f is None:
            continue
        i64, f32, ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
        # int64 for every integer: correct for ILP64 builds, and for LP64 ones on x86-64
        # and arm64 (a 32-bit argument is the low half of its register or stack slot)
        f.argtypes = [ctypes.c_int] * 3 + [i64] * 3 + [f32, ptr, i64, ptr, i64, f32, ptr, i64]
        f.restype = None
        return f
    return None


def _call(f, a, b, out):
    n, d = a.shape
    m = b.shape[0]
    A, B, C = a.ctypes.data, b.ctypes.data, out.ctypes.data
    f(_ROW_MAJOR, _NO_TRANS, _TRANS, n, m, d, 1.0, A, d, B, d, 1.0, C, m)


def _probe(f) -> bool:
    rng = np.random.default_rng(0)
    for n, m, d in ((3, 5, 7), (37, 301, 100), (130, 1000, 64)):
        a = rng.standard_normal((n, d)).astype(np.float32)
        b = rng.standard_normal((m, d)).astype(np.float32)
        out = np.zeros((n, m), np.float32)
        _call(f, a, b, out)
        if not np.array_equal(out, np.matmul(a, b.T)):
            return False
    return True


def _find():
    try:
        from threadpoolctl import threadpool_info

        paths = [i["filepath"] for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # no threadpoolctl, or it cannot list: numpy's path
        return False
    for path in paths:
        try:
            f = _bind(ctypes.CDLL(path))
            if f is not None and _probe(f):
                return f
        except (OSError, ValueError):
            continue
    return False


def sgemm_nt_acc(a, b, out) -> bool:
    """``out += a @ b.T`` for float32 C-contiguous ``a`` (n, d), ``b`` (m, d) and ``out``
    (n, m), through numpy's BLAS with beta = 1;
    returns False (nothing done) where that BLAS is not found or the arrays do not fit."""
    global _fn
    if not all(type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous for x in (a, b, out)):
        return False
    if a.ndim != 2 or b.ndim != 2 or out.shape != (a.shape[0], b.shape[0]) or a.shape[1] != b.shape[1]:
        return False
    if not out.flags.writeable or min(out.shape) == 0 or max(out.shape + a.shape) >= 2**31:
        return False
    if _fn is None:
        with _lock:
            if _fn is None:
                _fn = _find()
    if _fn is False:
        return False
    _call(_fn, a, b, out)
    return True
