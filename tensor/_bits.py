"""splitmix64 (Steele, Lea & Flood 2014): the project's one 64-bit mixer.

Used where a seeded, well-spread 64-bit value is needed from an integer without a
per-item Python loop: the trainer's counter-based negative sampler (the same draws on
numpy, cupy and the stand-in device) and the importer's hashing. ``mix64`` is the
output function on Python ints (for seeds and keys), ``mix64_array`` the same on uint64
arrays of any array module, ``splitmix64`` the generator's step (add the golden gamma,
then mix).
"""

from __future__ import annotations

import numpy as np

GAMMA = 0x9E3779B97F4A7C15  # 2^64 / golden ratio, odd: splitmix64's increment
_M64 = (1 << 64) - 1
_C1, _C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def mix64(z: int) -> int:
    """splitmix64's output function on a Python int (mod 2^64)."""
    z &= _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


def mix64_array(x, xp=np):
    """splitmix64's output function on a uint64 array of module ``xp``, in place (the
    array is returned); multiplication wraps mod 2^64."""
    with np.errstate(over="ignore"):
        x ^= x >> xp.uint64(30)
        x *= xp.uint64(_C1)
        x ^= x >> xp.uint64(27)
        x *= xp.uint64(_C2)
        x ^= x >> xp.uint64(31)
    return x


def splitmix64(x) -> np.ndarray:
    """One splitmix64 step of each value of ``x`` (numpy): mix(x + gamma), a new array."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(GAMMA)
    return mix64_array(z)
