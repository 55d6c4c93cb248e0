"""Compiled CPU kernels for the graph trainer's hot path (C++ through `ember.utils.cpp_extension`).

Why: after the batched score products, a training step's largest cost was the sparse
update of the embedding tables: coalescing the gathered rows' gradients (a sort and a
CSR product) and then RowAdagrad's gather, four (rows, dim) passes and scatter, a dozen
numpy calls over arrays that fall out of cache between them. One compiled pass reads each
gradient row once and each table row once (``benchmarks/train_step.py`` has the numbers).
The same module holds the fused softmax loss's passes, the dot comparator's positives'
gradient, and eval's one-pass counting and filter matching (`tally_rows`, `member_keys`).

Each kernel has a numpy twin, the code that runs where the kernel cannot (cupy, the
stand-in device, float16 tables, no compiler or no pybind11, ``EMBER_TRAIN_KERNEL=numpy``); the
tests hold the two equal. The kernels are built on first use (about 10 s, once: the build
is cached, see `ember.utils.cpp_extension`); a failed build is remembered, and the numpy
path runs (`status()` says why).
"""

from __future__ import annotations

import os
import threading
import zlib
from pathlib import Path

import numpy as np

from ember.errors import UserError

__all__ = [
    "get",
    "status",
    "row_adagrad_rows_",
    "softmax_shift_",
    "softmax_normalize_",
    "addcmul_rows_",
    "member_keys",
    "tally_rows",
    "crc32",
    "crc32_updater",
]

_SOURCE = Path(__file__).with_name("_cpu_kernels.cpp")
_FLAGS = ["-ffp-contract=off"]  # no fused multiply-adds: numpy's rounding, on every CPU
_MODES = ("auto", "cpp", "numpy")
# EMBER_TRAIN_KERNEL: auto (build on first use, numpy where that fails), cpp (a failed build
# is an error), numpy (never build). The tests set MODE to compare the twins.
MODE = os.environ.get("EMBER_TRAIN_KERNEL", "auto").strip().lower() or "auto"
_lock = threading.Lock()
_module = None
_failure: str | None = None


def get(build: bool = True):
    """The compiled module, building it on first use; None where it cannot be had.
    ``build=False``: the module only if it is loaded or built already (None otherwise, and
    a later call may still build it), for work too small to pay for a build."""
    global _module, _failure
    if MODE == "numpy":
        return None
    if MODE not in _MODES:
        raise UserError(f"EMBER_TRAIN_KERNEL must be one of {', '.join(_MODES)}, got {MODE!r}")
    if _module is None and _failure is None:
        with _lock:
            if _module is None and _failure is None:
                try:
                    from ember.utils.cpp_extension import load

                    _module = load("ember_cpu_kernels", [_SOURCE], extra_cflags=_FLAGS, build=build)
                except Exception as e:  # no compiler, no pybind11, a read-only cache: numpy
                    if build:  # (build=False: not built yet, and a later call may build it)
                        _failure = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if _module is None and MODE == "cpp" and build:
        raise UserError(f"EMBER_TRAIN_KERNEL=cpp, but the training kernels could not be built: {_failure}")
    return _module


def status() -> str:
    """'compiled', or why the numpy path runs."""
    if MODE == "numpy":
        return "numpy (EMBER_TRAIN_KERNEL=numpy)"
    return "compiled" if get() is not None else f"numpy ({_failure})"


_F32 = np.dtype(np.float32)


def _plain(a, dtype, ndim) -> bool:
    return type(a) is np.ndarray and a.dtype == dtype and a.ndim == ndim and a.flags.c_contiguous


def row_adagrad_rows_(w, s, idx, g, clr: float, eps: float, maximize: bool = False) -> bool:
    """RowAdagrad on rows ``idx`` of ``w`` (N, d) and ``s`` (N,) from gradient rows ``g``
    (n, d), repeated rows summed first; in place. Returns False (nothing done) unless all
    are float32 host arrays the kernel takes and it is built: the caller then coalesces and
    takes the numpy path (`ember.optim.RowAdagrad`)."""
    if not (
        _plain(w, _F32, 2)
        and _plain(s, _F32, 1)
        and _plain(g, _F32, 2)
        and type(idx) is np.ndarray
        and idx.dtype == np.int64
        and idx.ndim == 1
    ):
        return False
    k = get()
    if k is None:
        return False
    k.row_adagrad_rows(w, s, np.ascontiguousarray(idx), g, float(clr), float(eps), bool(maximize))
    return True


def _ids(a):
    """Integer ids as the kernels take them (int64, contiguous), or None."""
    if type(a) is not np.ndarray or a.dtype.kind not in "iu":
        return None
    return np.ascontiguousarray(a, np.int64)


def softmax_shift_(x, pos, pos_ids, neg_ids, chunk: int, diag: bool):
    """Mask and max-shift softmax scores ``x`` (N, k) in place, chunk by chunk: an entry is
    masked where its negative's id (``neg_ids`` (C, k)) is the positive's own
    (``pos_ids`` (N,)) or, with ``diag``, where it is the chunk's diagonal; returns the
    row maxima ``m`` (with ``pos``) after writing ``(masked ? -inf : x) - m``. None
    (nothing done) where the kernel does not take the arrays (see `ember.pbg.model.Softmax`)."""
    if not (_plain(x, _F32, 2) and _plain(pos, _F32, 1)):
        return None
    pos_ids, neg_ids = _ids(pos_ids), _ids(neg_ids)
    k = get() if pos_ids is not None and neg_ids is not None else None
    if k is None:
        return None
    return k.softmax_shift_(x, pos, pos_ids, neg_ids.reshape(len(neg_ids), -1), int(chunk), bool(diag))


def softmax_normalize_(e, epos):
    """``z = epos + e.sum(-1)`` and ``e /= z[:, None]`` in place (``e`` (N, k) float32, the
    exp of `softmax_shift_`'s output); returns ``z``."""
    return get().softmax_normalize_(e, np.ascontiguousarray(epos, np.float32))


def addcmul_rows_(y, s, x, base) -> bool:
    """``y[i] = base[i] + s[i] * x[i]`` for the rows of ``y`` and ``x`` (n, d) float32, the
    product rounded first as numpy's ``base + s[:, None] * x`` rounds it. ``base`` is (n, d)
    or (C, B, d) with C * B == n, its rows of any strides (a slice of a larger gradient), or
    ``y`` itself: no temporary for the product or the slice. Returns False (nothing done)
    where the kernel does not take the arrays (see `ember.pbg.model.Dot`)."""
    if not (
        _plain(y, _F32, 2)
        and _plain(s, _F32, 1)
        and _plain(x, _F32, 2)
        and type(base) is np.ndarray
        and base.dtype == _F32
        and base.ndim in (2, 3)
    ):
        return False
    base = base[None] if base.ndim == 2 else base
    if base.shape[2] > 1 and base.strides[2] != _F32.itemsize:
        return False
    k = get()
    if k is None:
        return False
    k.addcmul_rows_(y, s, x, base)
    return True


def member_keys(keep, rel, num_rel: int, queries):
    """Per edge, whether its key ``keep * num_rel + rel`` is among ``queries`` (sorted,
    unique int64), in one pass: a bool array, or None where the kernel does not take the
    arrays (see `ember.pbg.eval._matches`)."""
    keep, rel, queries = _ids(keep), _ids(rel), _ids(queries)
    if keep is None or rel is None or queries is None or keep.ndim != 1:
        return None
    k = get()
    return None if k is None else k.member_keys(keep, rel, int(num_rel), queries)


def tally_rows(S, pos, clear: bool = False):
    """Per row of candidate scores ``S`` (n, m) float32: how many beat ``pos`` (n,), how
    many beat or tie it, and how many entries of ``S`` are not finite, in one pass; None
    where the kernel does not take the arrays (see `ember.pbg.eval.tally`). ``clear``:
    ``S`` is zero afterwards, each piece cleared once counted (where None is returned,
    ``S`` is left as it was)."""
    if not (_plain(S, _F32, 2) and _plain(pos, _F32, 1)) or (clear and not S.flags.writeable):
        return None
    k = get()
    return None if k is None else k.tally_rows(S, pos, bool(clear))


def crc32_updater():
    """The function ``(data, crc) -> crc`` that updates a running CRC-32 (zlib's) with a
    buffer of bytes: the kernels' (carry-less multiplication where the CPU has it: a
    482 MiB file's checksum, read included, 0.21 -> 0.09 s on the development machine of
    4 December 2026, ``benchmarks/checkpoint_checksum.py``) if they are built already
    (`pbg train` and `pbg eval` build them; a checksum never waits for a build), else
    ``zlib.crc32``. Look it up once for a file, not per block."""
    k = get(build=False)
    if k is None:
        return zlib.crc32
    update = k.crc32_update
    return lambda data, crc=0: int(update(np.frombuffer(data, np.uint8), int(crc) & 0xFFFFFFFF))


def crc32(data, crc: int = 0) -> int:
    """``zlib.crc32(data, crc)``, by `crc32_updater`'s function."""
    return crc32_updater()(data, crc)
