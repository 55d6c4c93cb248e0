"""``ember.array_api``: the Python Array API standard (2023.12) over ember's ops.

``Tensor.__array_namespace__()`` returns this module, so standard-conformant consumers
(scipy, scikit-learn with ``array_api_dispatch``) can use ember tensors. It is a thin
mapping of the standard's names and arguments (``axis``, ``keepdims``, ``correction``...)
onto the same ops that ``ember.<name>`` exposes with PyTorch's names; no op lives here.

>>> import ember
>>> xp = ember.tensor([[1.0, 2.0]]).__array_namespace__()
>>> xp.sum(xp.ones((2, 3)), axis=1).tolist()
[3.0, 3.0]
"""

from __future__ import annotations

import builtins

import ember as _e
from ember._tensor import Tensor

__array_api_version__ = "2023.12"

# ---- dtypes -------------------------------------------------------------------------------
bool = _e.bool
int8, int16, int32, int64, uint8 = _e.int8, _e.int16, _e.int32, _e.int64, _e.uint8
float32, float64 = _e.float32, _e.float64
e, pi, inf, nan = 2.718281828459045, 3.141592653589793, float("inf"), float("nan")
newaxis = None


def isdtype(dtype, kind):
    import numpy as np

    dtype = np.dtype(dtype)
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if not isinstance(kind, str):
        return dtype == np.dtype(kind)
    kinds = {
        "bool": "b",
        "signed integer": "i",
        "unsigned integer": "u",
        "integral": "iu",
        "real floating": "f",
        "complex floating": "c",
        "numeric": "iufc",
    }
    return dtype.kind in kinds[kind]


def astype(x, dtype, /, *, copy=True, device=None):
    out = x.to(dtype) if device is None else x.to(device=device, dtype=dtype)
    return _e.clone(out) if copy and out is x else out


def result_type(*arrays_and_dtypes):
    import numpy as np

    return np.result_type(*(a.dtype if isinstance(a, Tensor) else a for a in arrays_and_dtypes))


def can_cast(from_, to, /):
    import numpy as np

    return np.can_cast(from_.dtype if isinstance(from_, Tensor) else from_, to)


# ---- creation -------------------------------------------------------------------------------


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    return _e.asarray(obj, dtype=dtype, device=device, copy=copy)


def zeros(shape, *, dtype=None, device=None):
    return _e.zeros(shape, dtype=dtype, device=device)


def ones(shape, *, dtype=None, device=None):
    return _e.ones(shape, dtype=dtype, device=device)


def empty(shape, *, dtype=None, device=None):
    return _e.empty(shape, dtype=dtype, device=device)


def full(shape, fill_value, *, dtype=None, device=None):
    return _e.full(shape if isinstance(shape, tuple) else (shape,), fill_value, dtype=dtype, device=device)


def zeros_like(x, /, *, dtype=None, device=None):
    return _e.zeros_like(x, dtype=dtype, device=device)


def ones_like(x, /, *, dtype=None, device=None):
    return _e.ones_like(x, dtype=dtype, device=device)


def empty_like(x, /, *, dtype=None, device=None):
    return _e.empty_like(x, dtype=dtype, device=device)


def full_like(x, /, fill_value, *, dtype=None, device=None):
    return _e.full_like(x, fill_value, dtype=dtype, device=device)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    return _e.arange(start, stop, step, dtype=dtype, device=device)


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    if not endpoint:
        return _e.linspace(start, stop, num + 1, dtype=dtype, device=device)[:-1]
    return _e.linspace(start, stop, num, dtype=dtype, device=device)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    if k == 0:
        return _e.eye(n_rows, n_cols, dtype=dtype, device=device)
    import numpy as np

    m = n_rows if n_cols is None else n_cols
    # built on the host, then copied explicitly to the device
    return _e.tensor(np.eye(n_rows, m, k), dtype=dtype or _e.get_default_dtype(), device=device)


def from_dlpack(x, /):
    return _e.from_dlpack(x)


# ---- elementwise ----------------------------------------------------------------------------
abs = _e.abs
add, subtract, multiply, divide = _e.add, _e.sub, _e.mul, _e.div
floor_divide, remainder, pow = _e.floor_divide, _e.remainder, _e.pow
negative, positive = _e.neg, (lambda x, /: x)
exp, expm1, log, log1p, sqrt = _e.exp, _e.expm1, _e.log, _e.log1p, _e.sqrt
sin, cos, tanh, sign = _e.sin, _e.cos, _e.tanh, _e.sign
square = _e.square
maximum, minimum = _e.maximum, _e.minimum
equal, not_equal, less, less_equal, greater, greater_equal = _e.eq, _e.ne, _e.lt, _e.le, _e.gt, _e.ge
logical_and, logical_or, logical_xor, logical_not = (
    _e.logical_and,
    _e.logical_or,
    _e.logical_xor,
    _e.logical_not,
)
isnan, isinf, isfinite = _e.isnan, _e.isinf, _e.isfinite


def clip(x, /, min=None, max=None):
    if min is None and max is None:
        return x
    return _e.clamp(x, min, max)


def where(condition, x1, x2, /):
    return _e.where(condition, x1, x2)


# ---- statistics -------------------------------------------------------------------------------


def sum(x, /, *, axis=None, dtype=None, keepdims=False):
    return _e.sum(x, axis, keepdims, dtype=dtype)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    if isinstance(axis, tuple):
        for a in sorted((d % x.ndim for d in axis), reverse=True):
            x = _e.prod(x, a, True, dtype=dtype)
            dtype = None
        return x if keepdims else _e.squeeze(x, axis)
    return _e.prod(x, axis, keepdims, dtype=dtype)


def mean(x, /, *, axis=None, keepdims=False):
    return _e.mean(x, axis, keepdims)


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _e.var(x, axis, correction=correction, keepdim=keepdims)


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    return _e.std(x, axis, correction=correction, keepdim=keepdims)


def max(x, /, *, axis=None, keepdims=False):
    return _e.amax(x, () if axis is None else axis, keepdims)


def min(x, /, *, axis=None, keepdims=False):
    return _e.amin(x, () if axis is None else axis, keepdims)


def argmax(x, /, *, axis=None, keepdims=False):
    return _e.argmax(x, axis, keepdims)


def argmin(x, /, *, axis=None, keepdims=False):
    return _e.argmin(x, axis, keepdims)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    if axis is None:
        axis = 0
    out = _e.cumsum(x, axis, dtype=dtype)
    if include_initial:
        widths = [0, 0] * (x.ndim - 1 - axis % x.ndim) + [1, 0]
        out = _e.pad(out, widths)
    return out


def all(x, /, *, axis=None, keepdims=False):
    return _e.all(x, axis, keepdims)


def any(x, /, *, axis=None, keepdims=False):
    return _e.any(x, axis, keepdims)


# ---- linear algebra ----------------------------------------------------------------------------
matmul = _e.matmul


def matrix_transpose(x, /):
    return x.mT


def vecdot(x1, x2, /, *, axis=-1):
    return _e.sum(x1 * x2, axis)


def tensordot(x1, x2, /, *, axes=2):
    return _e.tensordot(x1, x2, axes)


# ---- shapes ---------------------------------------------------------------------------------------


def reshape(x, /, shape, *, copy=None):
    out = _e.reshape(x, tuple(shape))
    return _e.clone(out) if copy else out


def permute_dims(x, /, axes):
    return _e.permute(x, tuple(axes))


def expand_dims(x, /, *, axis=0):
    return _e.unsqueeze(x, axis)


def squeeze(x, /, axis):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return _e.squeeze(x, axes)


def broadcast_to(x, /, shape):
    return _e.broadcast_to(x, tuple(shape))


def broadcast_arrays(*arrays):
    return list(_e.broadcast_tensors(*arrays))


def concat(arrays, /, *, axis=0):
    if axis is None:
        return _e.cat([_e.flatten(a) for a in arrays], 0)
    return _e.cat(list(arrays), axis)


def stack(arrays, /, *, axis=0):
    return _e.stack(list(arrays), axis)


def flip(x, /, *, axis=None):
    return _e.flip(x, tuple(range(x.ndim)) if axis is None else axis)


def roll(x, /, shift, *, axis=None):
    return _e.roll(x, shift, axis)


def tile(x, repetitions, /):
    return _e.tile(x, tuple(repetitions))


def take(x, indices, /, *, axis=None):
    if axis is None:
        return _e.index_select(_e.flatten(x), 0, indices)
    return _e.index_select(x, axis, indices)


# ---- sorting and searching ------------------------------------------------------------------------


def sort(x, /, *, axis=-1, descending=False, stable=True):
    return _e.sort(x, axis, descending, stable).values


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    return _e.argsort(x, axis, descending, stable)


def nonzero(x, /):
    return _e.nonzero(x, as_tuple=True)


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    return _e.searchsorted(x1, x2, right=side == "right")


def unique_values(x, /):
    return _e.unique(x)


def unique_counts(x, /):
    return _e.unique(x, return_counts=True)


def unique_inverse(x, /):
    return _e.unique(x, return_inverse=True)
