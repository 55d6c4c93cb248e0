"""Array backends and devices: numpy on the CPU, cupy on CUDA GPUs.

Code picks the array module with one helper, ``array_module(x)``, never with
``if gpu:`` forks. cupy is imported lazily, the first time a CUDA device is asked for,
so users without a GPU never pay for (or notice) it.

A third backend exists for tests: ``ember._backend.standin`` makes numpy arrays of a
distinct subclass that behave as a foreign device ("standin"), so that the CPU-only test
suite can prove that no code path mixes devices or silently falls back to the host.
"""

from __future__ import annotations

import numpy as np

_cupy = None  # the cupy module once imported, False when unavailable
_cupy_error: str | None = None


def _import_cupy():
    """Import cupy once; remember why it failed so the error can say which."""
    global _cupy, _cupy_error
    if _cupy is None:
        try:
            import cupy

            try:
                n = cupy.cuda.runtime.getDeviceCount()
            except Exception as e:  # driver missing, no device
                _cupy, _cupy_error = False, f"cupy is installed but no CUDA GPU is usable ({e})"
            else:
                if n == 0:
                    _cupy, _cupy_error = False, "cupy is installed but no CUDA GPU was found"
                else:
                    _cupy = cupy
        except ImportError:
            _cupy = False
            _cupy_error = (
                "cupy is not installed: install the GPU extra "
                "(pip install 'ember[gpu]') on a machine with a CUDA GPU"
            )
    return _cupy


def cupy_module():
    """The cupy module, or a one-line RuntimeError saying why CUDA is unavailable."""
    cp = _import_cupy()
    if not cp:
        raise RuntimeError(f"CUDA device requested but {_cupy_error}")
    return cp


def cuda_available() -> bool:
    return bool(_import_cupy())


class Device:
    """A device: ``cpu``, ``cuda:N`` or (tests only) ``standin``. Compares equal to its string."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda", "standin"):
            raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if idx:
            if not idx.isdigit():
                raise ValueError(f"bad device index in {spec!r}")
            index = int(idx)
        if kind == "cuda" and index is None:
            index = 0
        if kind != "cuda" and index not in (None, 0):
            raise ValueError(f"device {kind!r} has no index {index}")
        self.type, self.index = kind, (index if kind == "cuda" else None)

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except (ValueError, TypeError):
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


CPU = Device("cpu")


def array_module(a):
    """The array module (numpy, cupy or the stand-in) that owns array ``a``."""
    if type(a) is np.ndarray:
        return np
    return _array_module_slow(a)


def _array_module_slow(a):
    if isinstance(a, standin.StandinArray):
        return standin.xp
    if isinstance(a, (np.ndarray, np.generic)):
        return np
    cp = _cupy
    if cp and isinstance(a, cp.ndarray):
        return cp
    raise TypeError(f"not an array of a known backend: {type(a).__name__}")


def device_of(a) -> Device:
    if type(a) is np.ndarray:
        return CPU
    xp = _array_module_slow(a)
    if xp is np:
        return CPU
    if xp is standin.xp:
        return STANDIN
    return Device("cuda", a.device.id)


def module_for(device: Device):
    """The array module that allocates on ``device`` (imports cupy if needed)."""
    if device.type == "cpu":
        return np
    if device.type == "standin":
        return standin.xp
    cp = cupy_module()
    n = cp.cuda.runtime.getDeviceCount()
    if device.index >= n:
        raise RuntimeError(f"CUDA device {device.index} requested but only {n} GPU(s) present")
    return cp


def to_host(a, copy: bool = False) -> np.ndarray:
    """Array ``a`` as a host numpy array: a device array is copied over; a host array is
    returned as it is (``copy=True``: always a new array the caller may keep)."""
    if type(a) is np.ndarray:
        return np.array(a) if copy else a
    if isinstance(a, np.generic):
        return np.asarray(a)
    return to_device(a, CPU)


def to_device(a, device: Device):
    """Copy array ``a`` to ``device`` (no copy when it is already there)."""
    src = device_of(a)
    if src == device:
        return a
    if device.type == "cpu":
        if src.type == "standin":
            return np.array(a.view(np.ndarray))
        return a.get()
    if device.type == "standin":
        host = a.get() if src.type == "cuda" else a
        return standin.from_host(host)
    cp = cupy_module()
    with cp.cuda.Device(device.index):
        if src.type == "standin":
            a = a.view(np.ndarray)
        return cp.asarray(a)


from ember import _standin as standin  # noqa: E402  (needs Device defined first)

STANDIN = Device("standin")
