"""``ember.cuda``: is a GPU usable, how many, synchronise, memory statistics."""

from __future__ import annotations

from ember._backend import cuda_available, cupy_module


def is_available() -> bool:
    """True when cupy is installed and at least one CUDA GPU answers."""
    return cuda_available()


def device_count() -> int:
    return cupy_module().cuda.runtime.getDeviceCount() if cuda_available() else 0


def synchronize(device=None) -> None:
    """Wait for all work queued on the GPU (a no-op without one)."""
    if cuda_available():
        cupy_module().cuda.Device(device or 0).synchronize()


def memory_allocated() -> int:
    """Bytes currently held by ember's (cupy's) memory pool on the GPU."""
    return cupy_module().get_default_memory_pool().used_bytes() if cuda_available() else 0


def memory_reserved() -> int:
    return cupy_module().get_default_memory_pool().total_bytes() if cuda_available() else 0


def empty_cache() -> None:
    if cuda_available():
        cupy_module().get_default_memory_pool().free_all_blocks()
