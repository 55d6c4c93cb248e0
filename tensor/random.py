"""Seeded random numbers: ``ember.manual_seed``, ``ember.Generator`` and the samplers.

A Generator holds one seed and makes one bit generator per device lazily (numpy's
PCG64 on the CPU, cupy's on a GPU), so CPU runs are reproducible from the seed alone.
"""

from __future__ import annotations

import numpy as np

from ember._backend import CPU, Device
from ember._tensor import _wrap
from ember.dtypes import as_dtype, get_default_dtype
from ember.registry import op


class Generator:
    """A source of random numbers: ``g = ember.Generator().manual_seed(0)``."""

    def __init__(self, device="cpu"):
        self.device = Device(device) if not isinstance(device, Device) else device
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self._rngs: dict = {}

    def manual_seed(self, seed: int):
        self._seed = int(seed)
        self._rngs.clear()
        return self

    def seed(self) -> int:
        self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        rng = self._rng(CPU)
        return {"seed": self._seed, "cpu": rng.bit_generator.state}

    def set_state(self, state):
        self._seed = state["seed"]
        self._rngs.clear()
        self._rng(CPU).bit_generator.state = state["cpu"]

    def _rng(self, device: Device):
        key = str(device)
        rng = self._rngs.get(key)
        if rng is None:
            if device.type == "cuda":
                from ember._backend import cupy_module

                cp = cupy_module()
                with cp.cuda.Device(device.index):
                    rng = cp.random.default_rng(self._seed)
            else:  # cpu, and the stand-in device (sampled on the host, then moved)
                rng = np.random.default_rng(self._seed)
            self._rngs[key] = rng
        return rng


default_generator = Generator()


@op()
def manual_seed(seed: int) -> Generator:
    """Seed ember's default generator (every sampler that is not given a generator)."""
    return default_generator.manual_seed(seed)


@op()
def seed() -> int:
    return default_generator.seed()


@op()
def initial_seed() -> int:
    return default_generator.initial_seed()


def _sample(kind, size, generator, dtype, device, requires_grad, **kw):
    from ember.creation import _device, _size

    dev = _device(device)
    gen = generator or default_generator
    rng = gen._rng(dev)
    shape = _size(size)
    dt = as_dtype(dtype) or (get_default_dtype() if kind != "integers" else np.dtype(np.int64))
    if kind == "random":
        arr = rng.random(shape, dtype=dt) if dt in (np.float32, np.float64) else rng.random(shape).astype(dt)
    elif kind == "standard_normal":
        if dt in (np.float32, np.float64):
            arr = rng.standard_normal(shape, dtype=dt)
        else:
            arr = rng.standard_normal(shape).astype(dt)
    elif kind == "integers":
        arr = rng.integers(kw["low"], kw["high"], shape, dtype=dt)
    else:
        raise ValueError(kind)
    if dev.type == "standin":
        from ember._standin import from_host

        arr = from_host(arr)
    t = _wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples on [0, 1)."""
    return _sample("random", size, generator, dtype, device, requires_grad)


@op()
def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    return _sample("standard_normal", size, generator, dtype, device, requires_grad)


@op()
def randint(low, high=None, size=(), *, generator=None, dtype=None, device=None):
    """Integers on [low, high)."""
    if high is None:
        low, high = 0, low
    elif isinstance(high, (tuple, list)):  # randint(high, size), as PyTorch allows
        low, high, size = 0, low, high
    return _sample(
        "integers", (tuple(size),), generator, dtype or np.int64, device, False, low=low, high=high
    )


@op()
def normal(mean=0.0, std=1.0, size=(), *, generator=None, dtype=None, device=None, requires_grad=False):
    t = _sample("standard_normal", (tuple(size),), generator, dtype, device, False)
    t._data *= std
    t._data += mean
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def uniform(low=0.0, high=1.0, size=(), *, generator=None, dtype=None, device=None, requires_grad=False):
    t = _sample("random", (tuple(size),), generator, dtype, device, False)
    t._data *= high - low
    t._data += low
    if requires_grad:
        t.requires_grad_(True)
    return t


@op()
def randperm(n, *, generator=None, dtype=None, device=None):
    from ember.creation import _device

    dev = _device(device)
    rng = (generator or default_generator)._rng(dev)
    arr = rng.permutation(n).astype(as_dtype(dtype) or np.int64)
    if dev.type == "standin":
        from ember._standin import from_host

        arr = from_host(arr)
    return _wrap(arr)


@op()
def rand_like(input, *, generator=None, dtype=None, device=None):
    return rand(input.shape, generator=generator, dtype=dtype or input.dtype, device=device or input.device)


@op()
def randn_like(input, *, generator=None, dtype=None, device=None):
    return randn(input.shape, generator=generator, dtype=dtype or input.dtype, device=device or input.device)


@op()
def bernoulli(input, p=None, *, generator=None):
    """Samples 0/1 with probabilities ``input`` (or the scalar ``p``)."""
    u = rand(input.shape, generator=generator, dtype=input.dtype, device=input.device)
    prob = input._data if p is None else p
    return _wrap((u._data < prob).astype(input.dtype))


@op()
def multinomial(input, num_samples, replacement=False, *, generator=None):
    rng = (generator or default_generator)._rng(CPU)
    probs = np.asarray(input.detach().cpu()._data, dtype=np.float64)
    single = probs.ndim == 1
    probs = probs.reshape(-1, probs.shape[-1])
    probs = probs / probs.sum(axis=1, keepdims=True)
    out = np.stack([rng.choice(probs.shape[1], num_samples, replace=replacement, p=row) for row in probs])
    out = out[0] if single else out
    return _wrap(out.astype(np.int64)).to(input.device)
