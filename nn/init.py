"""Weight initialisation, in place and without recording a graph (PyTorch's ``nn.init``).

Samples come from ``ember.random`` (pass ``generator=`` for a private stream) and are
drawn on the tensor's own device and in its own dtype.
"""

from __future__ import annotations

import math

from ember import random as _random
from ember._backend import array_module
from ember.autograd import no_grad

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "eye_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "trunc_normal_",
]


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for an activation (``"relu"`` → √2, ``"tanh"`` → 5/3, ...)."""
    linear = (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    )
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


_calculate_fan_in_and_fan_out = _fan_in_and_fan_out


def _fill_from(tensor, sample):
    with no_grad():
        tensor.copy_(sample)
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    return _fill_from(
        tensor,
        _random.uniform(a, b, tensor.shape, generator=generator, dtype=tensor.dtype, device=tensor.device),
    )


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    return _fill_from(
        tensor,
        _random.normal(
            mean, std, tensor.shape, generator=generator, dtype=tensor.dtype, device=tensor.device
        ),
    )


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal samples redrawn until they fall in [a, b]."""
    x = _random.normal(
        mean, std, tensor.shape, generator=generator, dtype=tensor.dtype, device=tensor.device
    )._data
    xp = array_module(x)
    for _ in range(100):
        bad = (x < a) | (x > b)
        if not bool(bad.any()):
            break
        redo = _random.normal(
            mean, std, tensor.shape, generator=generator, dtype=tensor.dtype, device=tensor.device
        )._data
        x = xp.where(bad, redo, x)
    return _fill_from(tensor, xp.clip(x, a, b))


def constant_(tensor, val: float):
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def eye_(tensor):
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    xp = array_module(tensor._data)
    return _fill_from(tensor, xp.eye(*tensor.shape, dtype=tensor.dtype))


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None
):
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None
):
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """Fill with a (semi-)orthogonal matrix (the tensor is viewed as rows x the rest)."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _random.normal(
        0.0, 1.0, (rows, cols), generator=generator, dtype="float64", device=tensor.device
    )._data
    xp = array_module(flat)
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diagonal(r))  # makes the decomposition unique (uniform over O(n))
    if rows < cols:
        q = q.T
    return _fill_from(tensor, (gain * q).reshape(tensor.shape).astype(tensor.dtype))
