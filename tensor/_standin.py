"""A stand-in accelerator for tests on machines without a GPU.

Arrays on the ``standin`` device are numpy arrays of a distinct subclass. They behave
like cupy arrays do towards numpy: operators and methods work, but

* mixing them with host (plain numpy) arrays in one operation raises, as mixing
  ``cpu`` and ``cuda`` tensors must, and
* calling a *numpy function* on them directly (``np.sum(x)`` instead of going through
  the array module ``xp`` that ``array_module`` returns) raises, which proves that a
  code path does not quietly fall back to the host.

``xp`` is the stand-in's array module: it mirrors numpy and returns stand-in arrays.
"""

from __future__ import annotations

import threading
import types

import numpy as np

_local = threading.local()


class DeviceMixError(RuntimeError):
    pass


def _via_xp() -> bool:
    return getattr(_local, "depth", 0) > 0


def _host(x):
    return x.view(np.ndarray) if isinstance(x, StandinArray) else x


def _wrap(x):
    if type(x) is np.ndarray:
        return x.view(StandinArray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(StandinArray)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _check_operands(values, what):
    for v in values:
        if type(v) is np.ndarray and v.ndim > 0:
            raise DeviceMixError(
                f"{what}: mixes a host (cpu) array of shape {v.shape} with standin-device data"
            )


class StandinArray(np.ndarray):
    """An ndarray that claims to live on another device."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _check_operands(inputs, f"numpy.{ufunc.__name__}")
        out = kwargs.get("out")
        if out is not None:
            _check_operands(out, f"numpy.{ufunc.__name__}(out=)")
            kwargs["out"] = tuple(_host(o) for o in out)
        result = getattr(ufunc, method)(*(_host(i) for i in inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        if not _via_xp():
            raise DeviceMixError(
                f"numpy.{func.__name__} called directly on standin-device data "
                "(use the array module from ember's array_module())"
            )
        return _wrap(func._implementation(*_unwrap_all(args), **_unwrap_kwargs(kwargs)))

    def __array__(self, dtype=None, copy=None):
        if not _via_xp():
            raise DeviceMixError(
                "implicit conversion of standin-device data to a host numpy array; "
                "use .cpu() / .numpy() explicitly"
            )
        a = self.view(np.ndarray)
        return a if dtype is None else a.astype(dtype)

    def get(self):
        """Copy to the host, as ``cupy.ndarray.get`` does."""
        return np.array(self.view(np.ndarray))

    def tolist(self):
        raise DeviceMixError("tolist() on standin-device data; copy to the host first")

    def item(self, *args):
        raise DeviceMixError("item() on standin-device data; copy to the host first")


def _unwrap_all(args):
    return tuple(_unwrap(a) for a in args)


def _unwrap(a):
    if isinstance(a, StandinArray):
        return a.view(np.ndarray)
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(v) for v in a)
    if type(a) is np.ndarray and a.ndim > 0:
        raise DeviceMixError(f"mixes a host (cpu) array of shape {a.shape} with standin-device data")
    return a


def _unwrap_kwargs(kwargs):
    return {k: _unwrap(v) for k, v in kwargs.items()}


def _wrap_callable(fn):
    def call(*args, **kwargs):
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            return _wrap(fn(*_unwrap_all(args), **_unwrap_kwargs(kwargs)))
        finally:
            _local.depth -= 1

    call.__name__ = getattr(fn, "__name__", "call")
    return call


class _Ufunc:
    """A ufunc whose call and methods (``at``, ``reduce``...) return stand-in arrays, as
    cupy's ufuncs do (``cupy.add.at``)."""

    def __init__(self, ufunc):
        self._ufunc = ufunc
        self._call = _wrap_callable(ufunc)
        self.__name__ = ufunc.__name__

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __getattr__(self, name):
        value = getattr(self._ufunc, name)
        return _wrap_callable(value) if callable(value) else value


class _Namespace(types.SimpleNamespace):
    """Mirrors a numpy (sub)module; functions return stand-in arrays."""

    def __init__(self, module):
        super().__init__()
        object.__setattr__(self, "_module", module)

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if isinstance(value, types.ModuleType):
            value = _Namespace(value)
        elif isinstance(value, np.ufunc):
            value = _Ufunc(value)
        elif callable(value) and not isinstance(value, type):
            value = _wrap_callable(value)
        object.__setattr__(self, name, value)
        return value


xp = _Namespace(np)
xp.__name__ = "ember.standin"
xp.ndarray = StandinArray


def from_host(a) -> StandinArray:
    return np.array(a).view(StandinArray)
