"""Dtypes: numpy dtype objects, shared by numpy and cupy. float32 is the default.

Every dtype of the Array API standard is here: bool, int8/16/32/64, uint8/16/32/64,
float16/32/64 and complex64/128 (with PyTorch's aliases ``half``, ``float``, ``double``,
``short``, ``int``, ``long``, ``cfloat``, ``cdouble``). ``finfo`` and ``iinfo`` describe
a floating-point or integer dtype as ``torch.finfo`` / ``torch.iinfo`` do.
"""

from __future__ import annotations

import builtins as _builtins

import numpy as np

bool_ = np.dtype(np.bool_)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
uint16 = np.dtype(np.uint16)
uint32 = np.dtype(np.uint32)
uint64 = np.dtype(np.uint64)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
complex64 = np.dtype(np.complex64)
complex128 = np.dtype(np.complex128)
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64
cfloat, cdouble = complex64, complex128

_BY_NAME = {
    "bool": bool_,
    "int8": int8,
    "int16": int16,
    "int32": int32,
    "int64": int64,
    "uint8": uint8,
    "uint16": uint16,
    "uint32": uint32,
    "uint64": uint64,
    "float16": float16,
    "float32": float32,
    "float64": float64,
    "complex64": complex64,
    "complex128": complex128,
    "half": float16,
    "float": float32,
    "double": float64,
    "cfloat": complex64,
    "cdouble": complex128,
    "long": int64,
    "int": int32,
    "short": int16,
}
SUPPORTED = frozenset(_BY_NAME.values())

_default = float32


def get_default_dtype():
    """The dtype of tensors made from Python floats (float32 unless changed)."""
    return _default


def set_default_dtype(d):
    """Set the default floating-point dtype (float16, float32 or float64), as torch does."""
    global _default
    d = as_dtype(d)
    if d.kind != "f":
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default = d


def default_complex_dtype():
    """The complex dtype paired with the default float: complex64 for float32, else complex128."""
    return complex128 if _default == float64 else complex64


def as_dtype(d):
    """Normalise ``ember.float32`` / ``"float32"`` / ``numpy.float32`` / Python types."""
    if d is None:
        return None
    if isinstance(d, str):
        try:
            return _BY_NAME[d]
        except KeyError:
            raise TypeError(f"unknown dtype {d!r}; expected one of {sorted(_BY_NAME)}") from None
    if d is bool:
        return bool_
    if d is _builtins.float:
        return _default
    if d is _builtins.int:
        return int64
    if d is complex:
        return default_complex_dtype()
    try:
        dt = np.dtype(d)
    except TypeError:
        raise TypeError(f"{d!r} is not a dtype") from None
    if dt not in SUPPORTED:
        raise TypeError(f"unsupported dtype {dt}; ember supports {sorted(str(x) for x in SUPPORTED)}")
    return dt


def is_floating_point(d) -> bool:
    return np.dtype(d).kind == "f"


def is_complex(d) -> bool:
    return np.dtype(d).kind == "c"


def _dtype_of(type_or_tensor):
    if hasattr(type_or_tensor, "dtype") and not isinstance(type_or_tensor, np.dtype):
        return np.dtype(type_or_tensor.dtype)
    return as_dtype(type_or_tensor)


class finfo:
    """Machine limits of a floating-point (or complex) dtype, as ``torch.finfo``.

    ``finfo(dtype=None)`` describes the default dtype. Attributes: ``bits``, ``eps``
    (the gap between 1.0 and the next float), ``max``, ``min`` (= -max), ``tiny`` and its
    alias ``smallest_normal`` (the smallest positive normal number), ``resolution``
    (10**-precision) and ``dtype`` (for a complex dtype, its real component's dtype).

    >>> ember.finfo(ember.float32).eps
    1.1920928955078125e-07
    """

    __slots__ = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype")

    def __init__(self, type=None):
        d = _default if type is None else _dtype_of(type)
        if d.kind not in "fc":
            raise TypeError(f"finfo(): {d} is not a floating point or complex dtype; use iinfo for integers")
        fi = np.finfo(d)
        self.dtype = np.dtype(fi.dtype)
        self.bits = _builtins.int(fi.bits)
        self.eps = _builtins.float(fi.eps)
        self.max = _builtins.float(fi.max)
        self.min = _builtins.float(fi.min)
        self.tiny = self.smallest_normal = _builtins.float(fi.smallest_normal)
        self.resolution = 10.0 ** -_builtins.int(fi.precision)

    def __repr__(self):
        return (
            f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, eps={self.eps}, "
            f"smallest_normal={self.smallest_normal}, tiny={self.tiny}, dtype={self.dtype})"
        )


class iinfo:
    """Limits of an integer dtype, as ``torch.iinfo``: ``bits``, ``min``, ``max``, ``dtype``.

    >>> ember.iinfo(ember.uint8).max
    255
    """

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, type):
        d = _dtype_of(type)
        if d.kind not in "iu":
            raise TypeError(f"iinfo(): {d} is not an integer dtype; use finfo for floating point")
        ii = np.iinfo(d)
        self.bits, self.min, self.max = _builtins.int(ii.bits), _builtins.int(ii.min), _builtins.int(ii.max)
        self.dtype = d

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, bits={self.bits}, dtype={self.dtype})"
