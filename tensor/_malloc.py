"""Keep freed heap memory in the process (glibc), so training steps stop page-faulting.

With glibc's defaults, every multi-megabyte numpy temporary above the mmap threshold is
returned to the kernel when freed and faults in again on the next step: about 3,000 minor
page faults per CNN training step measured here (PyTorch, whose allocator keeps its
memory, has none), which made a conv step 2.0x PyTorch's instead of 1.4x
(benchmarks/nn_layers.py). ``import ember`` therefore raises ``M_MMAP_THRESHOLD`` to
32 MiB and ``M_TRIM_THRESHOLD`` to 256 MiB, once, for the process. Set the environment
variable ``EMBER_MALLOC=default`` before importing ember to leave the allocator alone.
"""

from __future__ import annotations

import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

tuned = False


def tune_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Apply the tuning (glibc only); returns whether it took effect."""
    global tuned
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        # the process's own symbols: glibc's mallopt when glibc is the C library (no
        # ctypes.util.find_library, which runs ldconfig in a subprocess)
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    tuned = bool(ok)
    return tuned


if os.environ.get("EMBER_MALLOC", "tuned") != "default":
    tune_malloc()
