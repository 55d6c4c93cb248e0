"""Dtypes: numpy dtype objects, shared by numpy and cupy. float32 is the default."""

from __future__ import annotations

import builtins as _builtins

import numpy as np

bool_ = np.dtype(np.bool_)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64

_BY_NAME = {
    "bool": bool_,
    "int8": int8,
    "int16": int16,
    "int32": int32,
    "int64": int64,
    "uint8": uint8,
    "float16": float16,
    "float32": float32,
    "float64": float64,
    "half": float16,
    "float": float32,
    "double": float64,
    "long": int64,
    "int": int32,
    "short": int16,
}
SUPPORTED = frozenset(_BY_NAME.values())

_default = float32


def get_default_dtype():
    return _default


def set_default_dtype(d):
    global _default
    d = as_dtype(d)
    if d.kind != "f":
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default = d


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
    dt = np.dtype(d)
    if dt not in SUPPORTED:
        raise TypeError(f"unsupported dtype {dt}; ember supports {sorted(str(x) for x in SUPPORTED)}")
    return dt


def is_floating_point(d) -> bool:
    return np.dtype(d).kind == "f"
