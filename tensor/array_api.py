"""``ember.array_api``: the Python Array API standard (2024.12) over ember's ops.

``Tensor.__array_namespace__()`` returns this module, so standard-conformant consumers
(scipy, scikit-learn with ``array_api_dispatch``) can use ember tensors. It is a thin
mapping of the standard's names and arguments (``axis``, ``keepdims``, ``correction``,
``x1``/``x2``...) onto the same ops that ``ember.<name>`` exposes with PyTorch's names;
no computation lives here beyond argument translation. Functions built from
differentiable ops stay differentiable. The ``linalg`` and ``fft`` extensions are
``ember.array_api.linalg`` and ``ember.array_api.fft``.

Where the standard and PyTorch disagree, this namespace follows the standard: ``axis=()``
reduces nothing, ``sum(int8)`` gives int64, ``vecdot(int8, int8)`` gives int8, ``meshgrid``
defaults to ``indexing='xy'``. One deliberate difference from the standard on the array
object: ``Tensor.size`` is PyTorch's method (``x.size()`` is the shape), not the
standard's element-count attribute; use ``math.prod(x.shape)``.

>>> import ember
>>> xp = ember.tensor([[1.0, 2.0]]).__array_namespace__()
>>> xp.sum(xp.ones((2, 3)), axis=1).tolist()
[3.0, 3.0]
"""

from __future__ import annotations

import builtins
import math
import sys
import types
from collections import namedtuple

import numpy as np

import ember as _e
from ember import dtypes as _dt
from ember._backend import CPU, Device, device_of, module_for
from ember._tensor import Tensor, _wrap

__array_api_version__ = "2024.12"
_VERSIONS = ("2021.12", "2022.12", "2023.12", "2024.12")


def _namespace(api_version=None):
    """What ``Tensor.__array_namespace__(api_version=...)`` returns: this module."""
    if api_version is not None and api_version not in _VERSIONS:
        raise ValueError(f"Unsupported API version {api_version!r}; ember.array_api implements {_VERSIONS}")
    return sys.modules[__name__]


# ---- dtypes and constants ------------------------------------------------------------------------
bool = _dt.bool_
int8, int16, int32, int64 = _dt.int8, _dt.int16, _dt.int32, _dt.int64
uint8, uint16, uint32, uint64 = _dt.uint8, _dt.uint16, _dt.uint32, _dt.uint64
float32, float64 = _dt.float32, _dt.float64
complex64, complex128 = _dt.complex64, _dt.complex128
e, pi, inf, nan = math.e, math.pi, math.inf, math.nan
newaxis = None
finfo, iinfo = _dt.finfo, _dt.iinfo

_KINDS = {
    "bool": "b",
    "signed integer": "i",
    "unsigned integer": "u",
    "integral": "iu",
    "real floating": "f",
    "complex floating": "c",
    "numeric": "iufc",
}


def isdtype(dtype, kind):
    """Whether ``dtype`` is of ``kind`` (a dtype, a kind name, or a tuple of them)."""
    dtype = np.dtype(dtype)
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        try:
            return dtype.kind in _KINDS[kind]
        except KeyError:
            raise ValueError(f"isdtype: unknown kind {kind!r}; expected one of {sorted(_KINDS)}") from None
    return dtype == np.dtype(kind)


def _dtype(x):
    return x.dtype if isinstance(x, Tensor) else x


def result_type(*arrays_and_dtypes):
    """The dtype that the standard's type promotion gives (Python scalars are weak)."""
    if not arrays_and_dtypes:
        raise ValueError("at least one array or dtype is required")
    return np.result_type(*(_dtype(a) for a in arrays_and_dtypes))


def can_cast(from_, to, /):
    return builtins.bool(np.can_cast(_dtype(from_), to))


def astype(x, dtype, /, *, copy=True, device=None):
    out = x.to(dtype) if device is None else x.to(device=device, dtype=dtype)
    return _e.clone(out) if copy and out is x else out


# ---- the inspection namespace --------------------------------------------------------------------


class _Info:
    """What ``__array_namespace_info__()`` returns: devices, default dtypes, capabilities."""

    __module__ = __name__

    def capabilities(self):
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self):
        return CPU

    def devices(self):
        out = [CPU]
        if _e.cuda.is_available():
            out += [Device("cuda", i) for i in range(_e.cuda.device_count())]
        return out

    def default_dtypes(self, *, device=None):
        return {
            "real floating": _dt.get_default_dtype(),
            "complex floating": _dt.default_complex_dtype(),
            "integral": int64,
            "indexing": int64,
        }

    def dtypes(self, *, device=None, kind=None):
        every = {
            "bool": bool,
            "int8": int8,
            "int16": int16,
            "int32": int32,
            "int64": int64,
            "uint8": uint8,
            "uint16": uint16,
            "uint32": uint32,
            "uint64": uint64,
            "float32": float32,
            "float64": float64,
            "complex64": complex64,
            "complex128": complex128,
        }
        if kind is None:
            return every
        return {n: d for n, d in every.items() if isdtype(d, kind)}


def __array_namespace_info__():
    return _Info()


# ---- creation ------------------------------------------------------------------------------------


def _scalar_dtype(value):
    if isinstance(value, builtins.bool):
        return bool
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return _dt.get_default_dtype()
    if isinstance(value, complex):
        return _dt.default_complex_dtype()
    return None


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """An array from ``obj``; ``copy=False`` never copies (ValueError if it would have to)."""
    if isinstance(obj, Tensor):
        want_dtype = _dt.as_dtype(dtype) if dtype is not None else obj.dtype
        want_device = Device(device) if device is not None else obj.device
        needs_copy = want_dtype != obj.dtype or want_device != obj.device
        if copy is False and needs_copy:
            raise ValueError("asarray(copy=False): a copy would be needed to change the dtype or device")
        if not needs_copy and not copy:
            return obj
        out = obj.to(device=want_device, dtype=want_dtype)
        return _e.clone(out) if out is obj else out
    if copy is False:
        try:
            dev = device_of(obj)
        except TypeError:
            dev = None
        if dev is None and not hasattr(obj, "__array__") and not hasattr(obj, "__buffer__"):
            raise ValueError("asarray(copy=False): a Python object always needs a copy")
        t = _e.asarray(obj, dtype=dtype, device=device, copy=False)
        if dev is not None and t._data is not obj and not np.shares_memory(_host(t._data), _host(obj)):
            raise ValueError("asarray(copy=False): a copy would be needed")
        return t
    if dtype is None:
        dtype = _scalar_dtype(obj)
    return _e.asarray(obj, dtype=dtype, device=device, copy=copy)


def _host(a):
    return a.view(np.ndarray) if isinstance(a, np.ndarray) else a


def _shape(shape):
    return (shape,) if isinstance(shape, int) else tuple(shape)


def zeros(shape, *, dtype=None, device=None):
    return _e.zeros(_shape(shape), dtype=dtype, device=device)


def ones(shape, *, dtype=None, device=None):
    return _e.ones(_shape(shape), dtype=dtype, device=device)


def empty(shape, *, dtype=None, device=None):
    return _e.empty(_shape(shape), dtype=dtype, device=device)


def full(shape, fill_value, *, dtype=None, device=None):
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if dtype is None:
        dtype = _scalar_dtype(fill_value)
    return _e.full(_shape(shape), fill_value, dtype=dtype, device=device)


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
    if dtype is None and builtins.any(isinstance(v, complex) for v in (start, stop)):
        dtype = _dt.default_complex_dtype()
    if not endpoint:
        if num == 0:
            return _e.linspace(start, stop, 0, dtype=dtype, device=device)
        return _e.linspace(start, stop, num + 1, dtype=dtype, device=device)[:-1]
    return _e.linspace(start, stop, num, dtype=dtype, device=device)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    if k == 0:
        return _e.eye(n_rows, n_cols, dtype=dtype, device=device)
    xp = module_for(Device(device) if device is not None else CPU)
    return _wrap(xp.eye(n_rows, n_cols, k, dtype=_dt.as_dtype(dtype) or _dt.get_default_dtype()))


def from_dlpack(x, /, *, device=None, copy=None):
    return _e.from_dlpack(x, device=device, copy=copy)


def meshgrid(*arrays, indexing="xy"):
    return list(_e.meshgrid(*arrays, indexing=indexing)) if arrays else []


def tril(x, /, *, k=0):
    return _e.tril(x, k)


def triu(x, /, *, k=0):
    return _e.triu(x, k)


# ---- elementwise ---------------------------------------------------------------------------------
abs = _e.abs
acos, acosh, asin, asinh, atan, atanh = _e.acos, _e.acosh, _e.asin, _e.asinh, _e.atan, _e.atanh
atan2 = _e.atan2
add, subtract, multiply, divide = _e.add, _e.sub, _e.mul, _e.true_divide
floor_divide, remainder, pow = _e.floor_divide, _e.remainder, _e.pow
bitwise_and, bitwise_or, bitwise_xor = _e.bitwise_and, _e.bitwise_or, _e.bitwise_xor
bitwise_left_shift, bitwise_right_shift = _e.bitwise_left_shift, _e.bitwise_right_shift
bitwise_invert = _e.bitwise_not
ceil, floor, trunc = _e.ceil, _e.floor, _e.trunc
conj, real, imag = _e.conj, _e.real, _e.imag
copysign, hypot, nextafter, signbit = _e.copysign, _e.hypot, _e.nextafter, _e.signbit
cos, cosh, sin, sinh, tan, tanh = _e.cos, _e.cosh, _e.sin, _e.sinh, _e.tan, _e.tanh
exp, expm1, log, log1p, log2, log10 = _e.exp, _e.expm1, _e.log, _e.log1p, _e.log2, _e.log10
logaddexp = _e.logaddexp
sqrt, square, sign, reciprocal = _e.sqrt, _e.square, _e.sign, _e.reciprocal
maximum, minimum = _e.maximum, _e.minimum
negative, positive = _e.neg, _e.positive
equal, not_equal, less, less_equal, greater, greater_equal = _e.eq, _e.ne, _e.lt, _e.le, _e.gt, _e.ge
logical_and, logical_or, logical_xor, logical_not = (
    _e.logical_and,
    _e.logical_or,
    _e.logical_xor,
    _e.logical_not,
)
isnan, isinf, isfinite = _e.isnan, _e.isinf, _e.isfinite


def round(x, /):
    return _e.round(x)


def clip(x, /, min=None, max=None):
    """``x`` limited to [min, max] (either may be None, a scalar or an array); keeps x's dtype."""
    if min is None and max is None:
        return x
    out = _e.clamp(x, min, max)
    return out if out.dtype == x.dtype else out.to(x.dtype)


def where(condition, x1, x2, /):
    return _e.where(condition, x1, x2)


# ---- statistics ----------------------------------------------------------------------------------


def _none_reduced(fn, x, keepdims, **kw):
    """``axis=()`` reduces nothing: reduce a new unit axis, so dtype rules still apply."""
    return fn(_e.unsqueeze(x, -1), -1, False, **kw)


def sum(x, /, *, axis=None, dtype=None, keepdims=False):
    if axis == ():
        return _none_reduced(_e.sum, x, keepdims, dtype=dtype)
    return _e.sum(x, axis, keepdims, dtype=dtype)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    if axis == ():
        return _none_reduced(_e.prod, x, keepdims, dtype=dtype)
    if isinstance(axis, tuple):
        axes = sorted({d % x.ndim for d in axis}, reverse=True)
        if len(axes) == x.ndim:
            out = _e.prod(x, None, False, dtype=dtype)
            return _e.reshape(out, (1,) * x.ndim) if keepdims else out
        for a in axes:
            x = _e.prod(x, a, True, dtype=dtype)
            dtype = None
        return x if keepdims else _e.squeeze(x, tuple(axes))
    return _e.prod(x, axis, keepdims, dtype=dtype)


def mean(x, /, *, axis=None, keepdims=False):
    if axis == ():
        return _none_reduced(_e.mean, x, keepdims)
    return _e.mean(x, axis, keepdims)


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    if axis == ():
        return _e.var(_e.unsqueeze(x, -1), -1, correction=correction, keepdim=False)
    return _e.var(x, axis, correction=correction, keepdim=keepdims)


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    if axis == ():
        return _e.std(_e.unsqueeze(x, -1), -1, correction=correction, keepdim=False)
    return _e.std(x, axis, correction=correction, keepdim=keepdims)


def max(x, /, *, axis=None, keepdims=False):
    if axis == ():
        return _e.clone(x)
    return _e.amax(x, () if axis is None else axis, keepdims)


def min(x, /, *, axis=None, keepdims=False):
    if axis == ():
        return _e.clone(x)
    return _e.amin(x, () if axis is None else axis, keepdims)


def _cumulative(fn, fill, x, axis, dtype, include_initial):
    if axis is None:
        if x.ndim != 1:
            raise ValueError("axis must be given for an array of more than one dimension")
        axis = 0
    axis = axis % builtins.max(x.ndim, 1)
    out = fn(x, axis, dtype=dtype)
    if include_initial:
        widths = [0, 0] * (x.ndim - 1 - axis) + [1, 0]
        out = _e.pad(out, widths, value=fill)
    return out


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    return _cumulative(_e.cumsum, 0, x, axis, dtype, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    return _cumulative(_e.cumprod, 1, x, axis, dtype, include_initial)


def all(x, /, *, axis=None, keepdims=False):
    if axis == ():
        return _e.ne(x, 0) if x.dtype != bool else _e.clone(x)
    return _e.all(x, axis, keepdims)


def any(x, /, *, axis=None, keepdims=False):
    if axis == ():
        return _e.ne(x, 0) if x.dtype != bool else _e.clone(x)
    return _e.any(x, axis, keepdims)


def diff(x, /, *, axis=-1, n=1, prepend=None, append=None):
    return _e.diff(x, n, axis, prepend, append)


# ---- searching -----------------------------------------------------------------------------------


def argmax(x, /, *, axis=None, keepdims=False):
    return _e.argmax(x, axis, keepdims)


def argmin(x, /, *, axis=None, keepdims=False):
    return _e.argmin(x, axis, keepdims)


def count_nonzero(x, /, *, axis=None, keepdims=False):
    out = _e.count_nonzero(x, axis)
    if keepdims:
        axes = range(x.ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
        shape = list(x.shape)
        for a in axes:
            shape[a % x.ndim] = 1
        out = _e.reshape(out, tuple(shape))
    return out


def nonzero(x, /):
    if x.ndim == 0:
        raise ValueError("nonzero is not defined for zero-dimensional arrays")
    return _e.nonzero(x, as_tuple=True)


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    return _e.searchsorted(x1, x2, side=side, sorter=sorter)


# ---- linear algebra ------------------------------------------------------------------------------


def matmul(x1, x2, /):
    """``x1 @ x2`` with the standard's type promotion (``ember.matmul`` wants one dtype, as torch)."""
    if isinstance(x1, Tensor) and isinstance(x2, Tensor) and x1.dtype != x2.dtype:
        dt = result_type(x1, x2)
        x1, x2 = x1.to(dt), x2.to(dt)
    return _e.matmul(x1, x2)


def matrix_transpose(x, /):
    if x.ndim < 2:
        raise ValueError("matrix_transpose needs an array of at least two dimensions")
    return x.mT


def vecdot(x1, x2, /, *, axis=-1):
    if axis >= 0:
        axis -= builtins.max(x1.ndim, x2.ndim)
    if -axis > builtins.min(x1.ndim, x2.ndim):
        raise ValueError(f"vecdot: axis {axis} is out of range for shapes {x1.shape} and {x2.shape}")
    return _e.linalg.vecdot(x1, x2, dim=axis)


def tensordot(x1, x2, /, *, axes=2):
    return _e.tensordot(x1, x2, axes)


# ---- manipulation --------------------------------------------------------------------------------


def reshape(x, /, shape, *, copy=None):
    shape = tuple(shape)
    if copy is False and not _reshape_is_view(x, shape):
        raise ValueError("reshape(copy=False): this reshape needs a copy")
    out = _e.reshape(x, shape)
    return _e.clone(out) if copy else out


def _reshape_is_view(x, shape):
    try:
        v = x._data.view()
        v.shape = shape
        return True
    except (AttributeError, ValueError):
        return False


def permute_dims(x, /, axes):
    return _e.permute(x, tuple(axes))


def expand_dims(x, /, axis=0):
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise IndexError(f"expand_dims: axis {axis} is out of range for an array of {x.ndim} dimensions")
    return _e.unsqueeze(x, axis)


def squeeze(x, /, axis):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"cannot squeeze axis {a} of size {x.shape[a]}")
    if len({a % x.ndim for a in axes}) != len(axes):
        raise ValueError(f"squeeze: repeated axis in {axis}")
    return _e.squeeze(x, axes)


def broadcast_to(x, /, shape):
    return _e.broadcast_to(x, tuple(shape))


def broadcast_arrays(*arrays):
    return list(_e.broadcast_tensors(*arrays))


def concat(arrays, /, *, axis=0):
    arrays = list(arrays)
    dt = result_type(*arrays)
    arrays = [a if a.dtype == dt else a.to(dt) for a in arrays]
    if axis is None:
        return _e.cat([_e.flatten(a) for a in arrays], 0)
    return _e.cat(arrays, axis)


def stack(arrays, /, *, axis=0):
    arrays = list(arrays)
    dt = result_type(*arrays)
    return _e.stack([a if a.dtype == dt else a.to(dt) for a in arrays], axis)


def unstack(x, /, *, axis=0):
    return _e.unbind(x, axis)


def flip(x, /, *, axis=None):
    return _e.flip(x, tuple(range(x.ndim)) if axis is None else axis)


def roll(x, /, shift, *, axis=None):
    if isinstance(shift, tuple) and axis is not None and not isinstance(axis, tuple):
        axis = (axis,) * len(shift)
    if isinstance(axis, tuple) and isinstance(shift, int):
        shift = (shift,) * len(axis)
    return _e.roll(x, shift, axis)


def moveaxis(x, source, destination, /):
    return _e.movedim(x, source, destination)


def repeat(x, repeats, /, *, axis=None):
    return _e.repeat_interleave(x, repeats, dim=axis)


def tile(x, repetitions, /):
    return _e.tile(x, tuple(repetitions))


def take(x, indices, /, *, axis=None):
    if axis is None:
        if x.ndim != 1:
            raise ValueError("take: axis must be given for an array of more than one dimension")
        axis = 0
    return _e.index_select(x, axis, indices)


def take_along_axis(x, indices, /, *, axis=-1):
    return _e.take_along_dim(x, indices, axis)


# ---- sorting and sets ----------------------------------------------------------------------------


def sort(x, /, *, axis=-1, descending=False, stable=True):
    return _e.sort(x, axis, descending, stable).values


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    return _e.argsort(x, axis, descending, stable)


UniqueAllResult = namedtuple("UniqueAllResult", ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def unique_all(x, /):
    from ember.ops_index import unique_all as _unique_all

    return UniqueAllResult(*_unique_all(x))


def unique_counts(x, /):
    return UniqueCountsResult(*_e.unique(x, return_counts=True))


def unique_inverse(x, /):
    return UniqueInverseResult(*_e.unique(x, return_inverse=True))


def unique_values(x, /):
    return _e.unique(x)


# ---- extensions ----------------------------------------------------------------------------------


def _extension(name, doc, members):
    mod = types.ModuleType(f"{__name__}.{name}", doc)
    for k, v in members.items():
        setattr(mod, k, v)
    mod.__all__ = sorted(members)
    sys.modules[mod.__name__] = mod
    return mod


def _la_cholesky(x, /, *, upper=False):
    return _e.linalg.cholesky(x, upper=upper)


def _la_cross(x1, x2, /, *, axis=-1):
    if x1.ndim != x2.ndim and axis >= 0:
        raise ValueError("cross: a non-negative axis needs inputs of the same number of dimensions")
    if axis >= 0:
        axis -= x1.ndim
    if x1.shape[axis] != 3 or x2.shape[axis] != 3:
        raise ValueError(f"cross: axis {axis} must have size 3, got {x1.shape} and {x2.shape}")
    return _e.linalg.cross(x1, x2, dim=axis)


def _la_eigh(x, /):
    return _e.linalg.eigh(x)


def _la_matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return _e.linalg.matrix_norm(x, ord, (-2, -1), keepdims)


def _la_matrix_rank(x, /, *, rtol=None):
    return _e.linalg.matrix_rank(x, rtol=rtol)


def _la_pinv(x, /, *, rtol=None):
    return _e.linalg.pinv(x, rtol=rtol)


def _la_qr(x, /, *, mode="reduced"):
    return _e.linalg.qr(x, mode=mode)


def _la_svd(x, /, *, full_matrices=True):
    return _e.linalg.svd(x, full_matrices=full_matrices)


def _la_trace(x, /, *, offset=0, dtype=None):
    d = _e.linalg.diagonal(x, offset=offset)
    if dtype is None and x.dtype.kind in "iu" and x.dtype.itemsize < 8:
        dtype = int64 if x.dtype.kind == "i" else uint64
    return _e.sum(d, -1, dtype=dtype)


def _la_vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    if axis == ():
        return _e.linalg.vector_norm(_e.unsqueeze(x, -1), ord, -1, False)
    return _e.linalg.vector_norm(x, ord, axis, keepdims)


def _la_diagonal(x, /, *, offset=0):
    return _e.linalg.diagonal(x, offset=offset)


def _la_solve(x1, x2, /):
    if x1.dtype != x2.dtype:
        dt = result_type(x1, x2)
        x1, x2 = x1.to(dt), x2.to(dt)
    return _e.linalg.solve(x1, x2)


def _la_matrix_power(x, n, /):
    return _e.linalg.matrix_power(x, n)


linalg = _extension(
    "linalg",
    "The Array API's linalg extension over ``ember.linalg``.",
    {
        "cholesky": _la_cholesky,
        "cross": _la_cross,
        "det": lambda x, /: _e.linalg.det(x),
        "diagonal": _la_diagonal,
        "eigh": _la_eigh,
        "eigvalsh": lambda x, /: _e.linalg.eigvalsh(x),
        "inv": lambda x, /: _e.linalg.inv(x),
        "matmul": matmul,
        "matrix_norm": _la_matrix_norm,
        "matrix_power": _la_matrix_power,
        "matrix_rank": _la_matrix_rank,
        "matrix_transpose": matrix_transpose,
        "outer": lambda x1, x2, /: _e.outer(x1, x2),
        "pinv": _la_pinv,
        "qr": _la_qr,
        "slogdet": lambda x, /: _e.linalg.slogdet(x),
        "solve": _la_solve,
        "svd": _la_svd,
        "svdvals": lambda x, /: _e.linalg.svdvals(x),
        "tensordot": tensordot,
        "trace": _la_trace,
        "vecdot": vecdot,
        "vector_norm": _la_vector_norm,
    },
)


def _fft1(name):
    fn = getattr(_e.fft, name)

    def transform(x, /, *, n=None, axis=-1, norm="backward"):
        return fn(x, n, axis, norm)

    transform.__name__ = name
    return transform


def _fftn(name):
    fn = getattr(_e.fft, name)

    def transform(x, /, *, s=None, axes=None, norm="backward"):
        return fn(x, s, axes, norm)

    transform.__name__ = name
    return transform


def _fftfreq(n, /, *, d=1.0, dtype=None, device=None):
    return _e.fft.fftfreq(n, d, dtype=dtype, device=device)


def _rfftfreq(n, /, *, d=1.0, dtype=None, device=None):
    return _e.fft.rfftfreq(n, d, dtype=dtype, device=device)


def _fftshift(x, /, *, axes=None):
    return _e.fft.fftshift(x, axes)


def _ifftshift(x, /, *, axes=None):
    return _e.fft.ifftshift(x, axes)


fft = _extension(
    "fft",
    "The Array API's fft extension over ``ember.fft``.",
    {
        **{n: _fft1(n) for n in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft")},
        **{n: _fftn(n) for n in ("fftn", "ifftn", "rfftn", "irfftn")},
        "fftfreq": _fftfreq,
        "rfftfreq": _rfftfreq,
        "fftshift": _fftshift,
        "ifftshift": _ifftshift,
    },
)
