"""``ember.cuda``: is a GPU usable, how many, synchronise, memory statistics, streams and
events, pinned host memory, and user-written kernels.

Everything here imports cupy lazily. Without cupy or a GPU the queries answer
``False``/``0``, ``synchronize`` and ``empty_cache`` do nothing, ``pinned_empty`` gives an
ordinary numpy array, and asking for a ``Stream``/``Event``/``current_device`` is a clear
error (as it is in PyTorch).

Writing a GPU op of one's own (see ``docs/gpu.md``): compile an ``ElementwiseKernel`` with
``elementwise_kernel(...)`` (lazy, cached) and call it from the ``forward``/``backward``
of an ``ember.autograd.Function`` when the input lives on the GPU; elsewhere run the same
formula with ember ops. ``ScaledSoftplus`` below is the worked example.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ember import ops_math
from ember._backend import array_module, cuda_available, cupy_module
from ember._tensor import _wrap
from ember.autograd import Function

__all__ = [
    "is_available",
    "device_count",
    "current_device",
    "synchronize",
    "memory_allocated",
    "memory_reserved",
    "max_memory_allocated",
    "reset_peak_memory_stats",
    "empty_cache",
    "Stream",
    "Event",
    "stream",
    "current_stream",
    "pinned_empty",
    "elementwise_kernel",
    "ScaledSoftplus",
    "scaled_softplus",
]


def is_available() -> bool:
    """True when cupy is installed and at least one CUDA GPU answers."""
    return cuda_available()


def device_count() -> int:
    return cupy_module().cuda.runtime.getDeviceCount() if cuda_available() else 0


def current_device() -> int:
    """Index of the selected GPU; a RuntimeError saying why when there is none."""
    return cupy_module().cuda.runtime.getDevice()


def synchronize(device=None) -> None:
    """Wait for all work queued on the GPU (a no-op without one)."""
    if cuda_available():
        cupy_module().cuda.Device(device or 0).synchronize()


# ------------------------------------------------------------------------- memory
def memory_allocated() -> int:
    """Bytes currently held by ember's (cupy's) memory pool on the GPU."""
    return cupy_module().get_default_memory_pool().used_bytes() if cuda_available() else 0


def memory_reserved() -> int:
    return cupy_module().get_default_memory_pool().total_bytes() if cuda_available() else 0


_peak = {"bytes": 0, "installed": False}


def _track_peak():
    """Route cupy's allocations through a thin wrapper of the default pool that records
    the pool's high-water mark: usage only grows at an allocation, so checking there is
    exact. Installed on the first peak query or reset (one Python call per allocation)."""
    if _peak["installed"] or not cuda_available():
        return
    cp = cupy_module()
    pool = cp.get_default_memory_pool()

    def malloc(nbytes):
        mem = pool.malloc(nbytes)
        used = pool.used_bytes()
        if used > _peak["bytes"]:
            _peak["bytes"] = used
        return mem

    cp.cuda.set_allocator(malloc)
    _peak["bytes"] = pool.used_bytes()
    _peak["installed"] = True


def max_memory_allocated() -> int:
    """Peak of ``memory_allocated()`` since the last ``reset_peak_memory_stats()`` (or
    since the first call of either: call ``reset_peak_memory_stats()`` before the work
    you measure). 0 without a GPU."""
    if not cuda_available():
        return 0
    _track_peak()
    return max(_peak["bytes"], memory_allocated())


def reset_peak_memory_stats() -> None:
    """Start a new peak measurement at the current usage."""
    if cuda_available():
        _track_peak()
        _peak["bytes"] = memory_allocated()


def empty_cache() -> None:
    if cuda_available():
        cupy_module().get_default_memory_pool().free_all_blocks()


# ---------------------------------------------------------------- streams, events
class Stream:
    """A CUDA stream (thin wrapper of ``cupy.cuda.Stream``). ``with stream:`` or
    ``with ember.cuda.stream(s):`` makes it current, so that ember ops run on it.

    >>> copy = ember.cuda.Stream()
    >>> with copy:
    ...     dev = host_tensor.to("cuda")
    >>> ember.cuda.current_stream().wait_stream(copy)
    """

    def __init__(self, device=None, priority=0, *, _wrap=None):
        cp = cupy_module()
        if _wrap is not None:
            self.cupy_stream = _wrap
        else:
            with cp.cuda.Device(device or 0):
                extra = {"priority": priority} if priority else {}
                self.cupy_stream = cp.cuda.Stream(non_blocking=True, **extra)
        self._ctx = []

    def synchronize(self) -> None:
        self.cupy_stream.synchronize()

    def query(self) -> bool:
        """True when all work queued on this stream has finished."""
        return self.cupy_stream.done

    def record_event(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event) -> None:
        """Make future work on this stream wait for ``event`` (does not block the host)."""
        self.cupy_stream.wait_event(event.cupy_event)

    def wait_stream(self, other) -> None:
        self.wait_event(other.record_event())

    def __enter__(self):
        self._ctx.append(self.cupy_stream.__enter__())
        return self

    def __exit__(self, *exc):
        self._ctx.pop()
        return self.cupy_stream.__exit__(*exc)

    def __eq__(self, other):
        return isinstance(other, Stream) and self.cupy_stream == other.cupy_stream

    def __hash__(self):
        return hash(self.cupy_stream)

    def __repr__(self):
        return f"<ember.cuda.Stream ptr={self.cupy_stream.ptr:#x}>"


def current_stream(device=None) -> Stream:
    cp = cupy_module()
    with cp.cuda.Device(device or 0):
        return Stream(_wrap=cp.cuda.get_current_stream())


@contextlib.contextmanager
def stream(s):
    """Context that makes ``s`` the current stream; ``stream(None)`` does nothing."""
    if s is None:
        yield None
        return
    with s:
        yield s


class Event:
    """A CUDA event (thin wrapper of ``cupy.cuda.Event``): mark a point in a stream,
    wait for it, time between two of them."""

    def __init__(self, enable_timing=False, blocking=False):
        self.cupy_event = cupy_module().cuda.Event(block=blocking, disable_timing=not enable_timing)

    def record(self, stream=None) -> None:
        self.cupy_event.record(None if stream is None else stream.cupy_stream)

    def wait(self, stream=None) -> None:
        (stream or current_stream()).wait_event(self)

    def query(self) -> bool:
        return self.cupy_event.done

    def synchronize(self) -> None:
        self.cupy_event.synchronize()

    def elapsed_time(self, end) -> float:
        """Milliseconds from this event to ``end`` (both recorded, timing enabled)."""
        return cupy_module().cuda.get_elapsed_time(self.cupy_event, end.cupy_event)


# ------------------------------------------------------------------- host memory
def pinned_empty(shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised numpy array in page-locked (pinned) host memory, so that
    host<->GPU copies from/to it run at full bandwidth and asynchronously. Without a GPU
    it is an ordinary numpy array. The memory lives as long as the array does."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not cuda_available():
        return np.empty(shape, dtype)
    count = int(np.prod(shape, dtype=np.int64))
    mem = cupy_module().cuda.alloc_pinned_memory(max(count * dtype.itemsize, 1))
    return np.frombuffer(mem, dtype, count).reshape(shape)


# ------------------------------------------------------------------ user kernels
class elementwise_kernel:
    """A ``cupy.ElementwiseKernel`` compiled on first use and cached, so that a module
    can define its kernels at import time on machines without a GPU.

    >>> double = ember.cuda.elementwise_kernel("T x", "T y", "y = 2 * x", "double")
    >>> y = double(x._data)          # x on the GPU: a cupy array
    """

    def __init__(self, in_params, out_params, operation, name, **options):
        self.args = (in_params, out_params, operation, name)
        self.options = options
        self._kernel = None

    def __call__(self, *args, **kwargs):
        if self._kernel is None:
            self._kernel = cupy_module().ElementwiseKernel(*self.args, **self.options)
        return self._kernel(*args, **kwargs)


# softplus(beta x) * scale / beta, stable; its derivative scale * sigmoid(beta x)
_softplus_fwd = elementwise_kernel(
    "T x, float32 scale, float32 beta",
    "T y",
    "float z = beta * (float)x; y = (T)(scale * (fmaxf(z, 0.f) + log1pf(expf(-fabsf(z)))) / beta);",
    "ember_scaled_softplus_fwd",
)
_softplus_bwd = elementwise_kernel(
    "T x, T g, float32 scale, float32 beta",
    "T dx",
    "float z = beta * (float)x; dx = (T)((float)g * scale / (1.f + expf(-z)));",
    "ember_scaled_softplus_bwd",
)


def _on_gpu(a) -> bool:
    return getattr(array_module(a), "__name__", "") == "cupy"


class ScaledSoftplus(Function):
    """``scale * softplus(beta * x) / beta`` as one fused GPU kernel each way; the same
    formula in ember ops on the CPU (and the test stand-in), where it is differentiable
    twice. The recipe for a user-written GPU op::

        class ScaledSoftplus(ember.autograd.Function):
            @staticmethod
            def forward(ctx, x, scale, beta):
                ctx.save_for_backward(x); ctx.scale, ctx.beta = scale, beta
                if on the GPU: return ember.tensor-wrap(kernel(x._data, scale, beta))
                else:          return ember ops
            @staticmethod
            def backward(ctx, g): ...the same split
    """

    @staticmethod
    def forward(ctx, x, scale=1.0, beta=1.0):
        ctx.save_for_backward(x)
        ctx.scale, ctx.beta = float(scale), float(beta)
        if _on_gpu(x._data):
            return _as_tensor(_softplus_fwd(x._data, np.float32(scale), np.float32(beta)))
        return _softplus_ops(x, ctx.scale, ctx.beta)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if _on_gpu(x._data):
            return _as_tensor(
                _softplus_bwd(
                    x._data, g._data.astype(x.dtype, copy=False), np.float32(ctx.scale), np.float32(ctx.beta)
                )
            )
        return g * (ctx.scale * ops_math.sigmoid(x * ctx.beta))


def _softplus_ops(x, scale, beta):
    return ops_math.softplus(x * beta) * (scale / beta)


_as_tensor = _wrap


def scaled_softplus(x, scale=1.0, beta=1.0):
    """``scale * softplus(beta x) / beta``: a fused kernel on the GPU, ember ops elsewhere."""
    return ScaledSoftplus.apply(x, scale, beta)
