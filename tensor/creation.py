"""Creating tensors, moving them between devices and dtypes, copying them."""

from __future__ import annotations

import numpy as np

from ember import _backend
from ember._backend import CPU, Device, array_module, device_of, module_for, to_device
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.dtypes import as_dtype, default_complex_dtype, get_default_dtype
from ember.registry import op, register_method


def _device(device) -> Device:
    if device is None:
        return CPU
    return device if isinstance(device, Device) else Device(device)


def _as_array(data, dtype=None, device=None, copy=True):
    """Turn Python data / numpy / cupy / Tensor into an array on ``device`` with ``dtype``."""
    dtype = as_dtype(dtype)
    if type(data) is Tensor:
        data = data._data
    if isinstance(data, (list, tuple)) and data and any(type(x) is Tensor for x in _flat(data)):
        data = [x.tolist() if type(x) is Tensor else x for x in data]
    src_dev = None
    try:
        src_dev = device_of(data)
    except TypeError:
        pass
    if src_dev is not None:  # already an array of some backend
        target = _device(device) if device is not None else src_dev
        arr = to_device(data, target)
        if arr is data and copy:
            arr = arr.copy()
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
        return arr
    host = np.asarray(data)
    if dtype is None:
        if host.dtype == np.float64 and not isinstance(data, np.ndarray):
            dtype = get_default_dtype()  # Python floats → float32, never a silent float64
        elif host.dtype == np.complex128 and not isinstance(data, np.ndarray):
            dtype = default_complex_dtype()  # Python complex → complex64, as torch
        elif host.dtype.kind == "i" and host.dtype != np.int64:
            dtype = np.dtype(np.int64)
        elif host.dtype.kind == "U" or host.dtype == object:
            raise TypeError(f"can't convert data of type {host.dtype} to a tensor")
    if dtype is not None:
        host = host.astype(dtype, copy=False)
    target = _device(device)
    if target.type == "cpu":
        return np.array(host, copy=True) if copy else host
    return to_device(host, target)


def _flat(seq):
    for x in seq:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


@op()
def tensor(data, *, dtype=None, device=None, requires_grad=False):
    """tensor(data, *, dtype=None, device=None, requires_grad=False) -> Tensor

    A new tensor holding a copy of ``data`` (nested lists, numbers, numpy arrays, tensors).
    Without ``dtype``: Python floats give the default float dtype (float32, never float64),
    ints int64, bools bool, complex numbers complex64; a numpy array keeps its dtype.

    >>> ember.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    """
    t = _wrap(_as_array(data, dtype, device))
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False) -> Tensor

    Like ``tensor``, but shares memory with ``obj`` (a tensor or numpy array) when no dtype or
    device conversion is needed and ``copy`` is not True.

    >>> import numpy as np
    >>> a = np.zeros(2, dtype=np.float32)
    >>> t = ember.asarray(a)
    >>> a[0] = 5.0
    >>> t.tolist()
    [5.0, 0.0]
    """
    if type(obj) is Tensor and dtype is None and device is None and not copy:
        return obj
    t = _wrap(_as_array(obj, dtype, device, copy=bool(copy)))
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def from_numpy(ndarray):
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return _wrap(ndarray)


@op()
def from_dlpack(ext, *, device=None, copy=None):
    """A tensor sharing memory with any DLPack producer (numpy, cupy, PyTorch, JAX, ...).

    ``device`` places the result there (a copy when it differs from the producer's);
    ``copy=True`` always copies, ``copy=False`` never does (a BufferError if it must).

    >>> import numpy as np
    >>> ember.from_dlpack(np.arange(3)).tolist()
    [0, 1, 2]
    """
    dev_type, dev_id = ext.__dlpack_device__()
    if int(dev_type) == 1:  # kDLCPU
        arr = np.from_dlpack(ext, copy=copy) if copy is not None else np.from_dlpack(ext)
    else:
        arr = _backend.cupy_module().from_dlpack(ext)
        if copy:
            arr = arr.copy()
    if device is not None:
        target = _device(device)
        if target != device_of(arr):
            if copy is False:
                raise BufferError(f"from_dlpack(copy=False): the data is on {device_of(arr)}, not {target}")
            arr = to_device(arr, target)
    return _wrap(arr)


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _filled(fn_name, size, dtype, device, requires_grad, fill=None):
    xp = module_for(_device(device))
    dt = as_dtype(dtype) or get_default_dtype()
    if fill is None:
        arr = getattr(xp, fn_name)(_size(size), dtype=dt)
    else:
        arr = xp.full(_size(size), fill, dtype=dt)
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _filled("zeros", size, dtype, device, requires_grad)


@op()
def ones(*size, dtype=None, device=None, requires_grad=False):
    return _filled("ones", size, dtype, device, requires_grad)


@op()
def empty(*size, dtype=None, device=None, requires_grad=False):
    return _filled("empty", size, dtype, device, requires_grad)


@op()
def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = np.bool_
        elif isinstance(fill_value, int):
            dtype = np.int64
        elif isinstance(fill_value, complex):
            dtype = default_complex_dtype()
    return _filled("full", (tuple(size),), dtype, device, requires_grad, fill=fill_value)


@op()
def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return zeros(
        input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad
    )


@op()
def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return ones(
        input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad
    )


@op()
def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    return empty(
        input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad
    )


@op()
def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    return full(
        input.shape,
        fill_value,
        dtype=dtype or input.dtype,
        device=device or input.device,
        requires_grad=requires_grad,
    )


@op()
def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if dtype is None:
        integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if integral else get_default_dtype()
    xp = module_for(_device(device))
    t = _wrap(xp.arange(start, end, step, dtype=as_dtype(dtype)))
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    xp = module_for(_device(device))
    t = _wrap(xp.linspace(start, end, steps, dtype=as_dtype(dtype) or get_default_dtype()))
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def logspace(start, end, steps, base=10.0, *, dtype=None, device=None):
    xp = module_for(_device(device))
    return _wrap(xp.logspace(start, end, steps, base=base, dtype=as_dtype(dtype) or get_default_dtype()))


@op()
def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    xp = module_for(_device(device))
    t = _wrap(xp.eye(n, m, dtype=as_dtype(dtype) or get_default_dtype()))
    if requires_grad:
        t.requires_grad_(True)
    return t


# ---- dtype and device moves (differentiable) --------------------------------------------


class Cast(Function):
    raw = True

    def forward(ctx, a, dtype):
        return a.astype(dtype)

    def backward(ctx, g):
        src = ctx.inputs[0].dtype
        return (g if g.dtype == src else Cast.apply(g, src)), None


class ToDevice(Function):
    raw = True

    def forward(ctx, a, device):
        return to_device(a, device)

    def backward(ctx, g):
        return ToDevice.apply(g, device_of(ctx.inputs[0]._data)), None


class Clone(Function):
    raw = True

    def forward(ctx, a):
        return a.copy()

    def backward(ctx, g):
        return g


@op()
def clone(input):
    return Clone.apply(input)


def _parse_to(args, kwargs):
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    for a in args:
        if type(a) is Tensor:
            device, dtype = a.device, a.dtype
        elif isinstance(a, Device) or (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda", "standin")):
            device = a
        else:
            dtype = a
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    return (None if device is None else _device(device)), as_dtype(dtype), copy


def _to(self, *args, **kwargs):
    """``x.to("cuda")``, ``x.to(ember.float64)``, ``x.to(other)``: a copy only when needed."""
    device, dtype, copy = _parse_to(args, kwargs)
    out = self
    if device is not None and device != self.device:
        out = ToDevice.apply(out, device)
    if dtype is not None and dtype != out.dtype:
        out = Cast.apply(out, dtype)
    if copy and out is self:
        out = clone(self)
    return out


def _copy_(self, src, non_blocking=False):
    """Copy ``src`` into this tensor's memory (broadcasting, casting, across devices)."""
    s = src._data if type(src) is Tensor else src
    try:
        src_dev = device_of(s)
    except TypeError:
        src_dev = CPU
        s = np.asarray(s)
    if src_dev != self.device:
        s = to_device(s, self.device)
    from ember.autograd.grad_mode import _state

    if _state.enabled and (self.requires_grad or (type(src) is Tensor and src.requires_grad)):
        self._check_inplace()
        from ember.ops_math import _inplace

        # the old value gets no gradient: it is overwritten
        def _copy(dst, source):
            return source.to(dst.dtype).expand(dst.shape)

        return _inplace(_copy)(self, src if type(src) is Tensor else _wrap(s))
    array_module(self._data).copyto(self._data, s, casting="unsafe")
    self._bump_version()
    return self


def _zero_(self):
    self._check_inplace()
    self._data.fill(0)
    self._bump_version()
    return self


def _fill_(self, value):
    self._check_inplace()
    self._data.fill(value.item() if type(value) is Tensor else value)
    self._bump_version()
    return self


def _to_device(self, device, /, *, stream=None):
    """The Array API's ``x.to_device(device)``: ``x.to(device)`` (``stream`` is accepted, unused)."""
    return _to(self, device)


register_method("to", _to)
register_method("to_device", _to_device)
register_method("cpu", lambda self: _to(self, "cpu"))


def _cuda(self, device=None):
    if isinstance(device, str):
        return _to(self, device)
    return _to(self, Device("cuda", device))


register_method("cuda", _cuda)
register_method("clone", clone)
register_method("copy_", _copy_)
register_method("zero_", _zero_)
register_method("fill_", _fill_)
register_method("float", lambda self: _to(self, np.float32))
register_method("double", lambda self: _to(self, np.float64))
register_method("half", lambda self: _to(self, np.float16))
register_method("long", lambda self: _to(self, np.int64))
register_method("int", lambda self: _to(self, np.int32))
register_method("bool", lambda self: _to(self, np.bool_))
register_method("type_as", lambda self, other: _to(self, other.dtype))
register_method(
    "new_zeros",
    lambda self, *size, dtype=None, device=None, requires_grad=False: zeros(
        *size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad
    ),
)
register_method(
    "new_ones",
    lambda self, *size, dtype=None, device=None, requires_grad=False: ones(
        *size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad
    ),
)
register_method(
    "new_empty",
    lambda self, *size, dtype=None, device=None, requires_grad=False: empty(
        *size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad
    ),
)
register_method(
    "new_full",
    lambda self, size, fill_value, dtype=None, device=None, requires_grad=False: full(
        size, fill_value, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad
    ),
)
register_method(
    "new_tensor",
    lambda self, data, dtype=None, device=None, requires_grad=False: tensor(
        data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad
    ),
)
