"""Keep freed heap memory in the process (glibc), so training steps stop page-faulting.

With glibc's defaults, every multi-megabyte numpy temporary above the mmap threshold is
returned to the kernel when freed and faults in again on the next step: about 3,000 minor
page faults per CNN training step measured here (PyTorch, whose allocator keeps its
memory, has none), which made a conv step 2.0x PyTorch's instead of 1.4x
(benchmarks/nn_layers.py). ``import ember`` therefore raises ``M_MMAP_THRESHOLD`` to
32 MiB and ``M_TRIM_THRESHOLD`` to 256 MiB, once, for the process. Set the environment
variable ``EMBER_MALLOC=default`` before importing ember to leave the allocator alone.

Huge pages: numpy asks the kernel for transparent huge pages (``madvise``) on every array
of 4 MiB or more. That pays for the few long-lived, randomly read arrays (a dictionary's
hash table, an embedding table: fewer TLB misses) and costs for streaming temporaries,
whose fresh 2 MiB pages are each zeroed (and, where memory is fragmented, compacted
first: four paired `pbg import`s of 10^7 edges took 3.4-3.7 CPU-s with them, 2.5-3.0
without). `pbg import`
therefore starts numpy with ``NUMPY_MADVISE_HUGEPAGE=0`` and asks for huge pages, with
`huge_pages`, for its long-lived tables only.
"""

from __future__ import annotations

import functools
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_MADV_HUGEPAGE = 14  # Linux's value on every architecture
_PAGE = 4096

tuned = False


@functools.cache
def _libc():
    """The C library's symbols (Linux), or None. The process's own symbols: no
    ctypes.util.find_library, which runs ldconfig in a subprocess."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Apply the tuning (glibc only); returns whether it took effect."""
    global tuned
    libc = _libc()
    try:
        ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    except AttributeError:  # no C library, or not glibc (musl, ...): nothing to tune
        return False
    tuned = bool(ok)
    return tuned


def huge_pages(a):
    """Ask the kernel to back the (new, not yet written) array ``a`` with transparent
    huge pages, as numpy does for every large array unless ``NUMPY_MADVISE_HUGEPAGE=0``;
    returns ``a``. Nothing happens for arrays under 4 MiB, off Linux, or where THP is off
    (the advice is then ignored)."""
    libc = _libc()
    if a.nbytes >= 4 << 20 and libc is not None:
        start = a.ctypes.data
        lo, hi = -(-start // _PAGE) * _PAGE, (start + a.nbytes) // _PAGE * _PAGE  # whole pages
        libc.madvise(lo, hi - lo, _MADV_HUGEPAGE)  # advice: an error (EINVAL without THP) is ignored
    return a


if os.environ.get("EMBER_MALLOC", "tuned") != "default":
    tune_malloc()
