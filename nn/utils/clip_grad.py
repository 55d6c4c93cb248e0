"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (in place, no graph)."""

from __future__ import annotations

import math

from ember._backend import array_module
from ember._tensor import Tensor, _wrap

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _params(parameters):
    if type(parameters) is Tensor:
        return [parameters]
    return [p for p in parameters if p.grad is not None]


def _grad_values(g):
    """The stored numbers of a gradient: a dense tensor's array, or a sparse one's values."""
    if type(g) is Tensor:
        return g._data
    values = getattr(g, "values", None)
    values = values() if callable(values) else values
    return values._data if type(values) is Tensor else values


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
):
    """Scale all gradients so that their joint ``norm_type``-norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor). Sparse row gradients are
    handled through their values.
    """
    params = _params(parameters)
    if not params:
        from ember.creation import tensor

        return tensor(0.0)
    norm_type = float(norm_type)
    arrays = [_grad_values(p.grad) for p in params]
    xp = array_module(arrays[0])
    if math.isinf(norm_type):
        total = max(xp.abs(a).max() if a.size else xp.asarray(0.0) for a in arrays)
    else:
        total = sum((xp.abs(a.astype(xp.float64)) ** norm_type).sum() for a in arrays) ** (1.0 / norm_type)
    total_f = float(total)
    if error_if_nonfinite and not math.isfinite(total_f):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
            "anyway, set `error_if_nonfinite=False`"
        )
    coef = max_norm / (total_f + 1e-6)
    if coef < 1.0:
        for p, a in zip(params, arrays):
            a *= a.dtype.type(coef)
            if type(p.grad) is Tensor:
                p.grad._bump_version()
    return _wrap(xp.asarray(total_f, dtype=arrays[0].dtype))


def clip_grad_value_(parameters, clip_value: float, foreach=None):
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for p in _params(parameters):
        a = _grad_values(p.grad)
        xp = array_module(a)
        xp.clip(a, -clip_value, clip_value, out=a)
        if type(p.grad) is Tensor:
            p.grad._bump_version()
