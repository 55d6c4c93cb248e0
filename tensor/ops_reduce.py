"""Reductions (sum, mean, max, var, norm, ...), cumulative ops, softmax and log-softmax.

Arguments follow PyTorch: ``dim`` (int, tuple or None for all) and ``keepdim``.
Softmax, log-softmax and logsumexp have a fused, numerically stable forward and a
hand-written backward, because composing them from tiny ops is slow on an eager engine.
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.dtypes import as_dtype, get_default_dtype
from ember.ops_shape import _norm_dim, expand, reshape, sum_to  # noqa: F401  (sum_to re-exported)
from ember.registry import op, register_method

values_indices = namedtuple("values_indices", ["values", "indices"])


def _axes(dim, ndim):
    """PyTorch ``dim`` → numpy ``axis`` (a sorted tuple), or None for all dims."""
    if dim is None:
        return None
    if isinstance(dim, int):
        return (_norm_dim(dim, ndim),) if ndim else None
    dims = tuple(sorted(_norm_dim(d, ndim) for d in dim))
    return dims if dims else None


def _keep_shape(shape, axes):
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _unreduce(g, shape, axes, keepdim):
    """Broadcast a reduced gradient back to the input's shape (differentiably)."""
    if not keepdim:
        g = reshape(g, _keep_shape(shape, axes))
    return expand(g, shape)


class Sum(Function):
    raw = True

    def forward(ctx, a, axes, keepdim, dtype):
        return a.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    def backward(ctx, g):
        _, axes, keepdim, _ = ctx.inputs
        return _unreduce(g, ctx._shapes[0], axes, keepdim)


@op()
def sum(input, dim=None, keepdim=False, *, dtype=None):
    axes = _axes(dim, input.ndim)
    dt = as_dtype(dtype)
    if dt is None and input.dtype.kind == "b":
        dt = np.dtype(np.int64)
    return Sum.apply(input, axes, keepdim, dt)


@op()
def mean(input, dim=None, keepdim=False, *, dtype=None):
    if input.dtype.kind not in "fc" and dtype is None:
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {input.dtype}"
        )
    axes = _axes(dim, input.ndim)
    n = input.numel() if axes is None else math.prod(input.shape[a] for a in axes)
    s = sum(input, dim, keepdim, dtype=dtype)
    return s / n if n else s * float("nan")


class Prod(Function):
    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a, axis, keepdim):
        return a.prod(axis=axis, keepdims=keepdim)

    def backward(ctx, g):
        x = ctx.inputs[0]
        axis, keepdim = ctx.inputs[1], ctx.inputs[2]
        axes = None if axis is None else (axis,)
        out = _unreduce(ctx.output(), x.shape, axes, keepdim)
        gu = _unreduce(g, x.shape, axes, keepdim)
        xd = x._data
        xp = array_module(xd)
        if not bool(xp.any(xd == 0)):
            return gu * out / x
        # with zeros: the product of all the *other* elements, via exclusive cumprods
        ax = 0 if axis is None else axis
        flat = reshape(x, (-1,)) if axis is None else x
        before = _exclusive_cumprod(flat, ax, reverse=False)
        after = _exclusive_cumprod(flat, ax, reverse=True)
        others = before * after
        if axis is None:
            others = reshape(others, x.shape)
        return gu * others


def _exclusive_cumprod(x, dim, reverse):
    from ember.ops_shape import flip, narrow, pad

    if reverse:
        x = flip(x, (dim,))
    n = x.shape[dim]
    shifted = narrow(x, dim, 0, n - 1)
    widths = [0, 0] * (x.ndim - dim - 1) + [1, 0]
    shifted = pad(shifted, widths, value=1.0)
    r = cumprod(shifted, dim)
    return flip(r, (dim,)) if reverse else r


@op()
def prod(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if dim is not None:
        dim = _norm_dim(dim, input.ndim)
    return Prod.apply(input, dim, keepdim)


class CumSum(Function):
    raw = True

    def forward(ctx, a, dim):
        return array_module(a).cumsum(a, axis=dim, dtype=a.dtype if a.dtype.kind == "f" else None)

    def backward(ctx, g):
        return _reverse_cumsum(g, ctx.inputs[1])


def _reverse_cumsum(x, d):
    """Sums from the end: out[i] = sum over j >= i of x[j] (the adjoint of cumsum)."""
    from ember.ops_shape import flip

    return flip(cumsum(flip(x, (d,)), d), (d,))


@op()
def cumsum(input, dim, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    out = CumSum.apply(input, _norm_dim(dim, input.ndim))
    # numpy accumulates small ints in int64/uint64; an explicit dtype is the result's, as torch
    return out if dtype is None or out.dtype == input.dtype else out.to(input.dtype)


class CumProd(Function):
    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a, dim):
        return array_module(a).cumprod(a, axis=dim)

    def backward(ctx, g):
        x, d = ctx.inputs[0], ctx.inputs[1]
        # d y_j / d x_i = y_j / x_i for j >= i (inputs without zeros)
        return _reverse_cumsum(g * ctx.output(), d) / x


@op()
def cumprod(input, dim, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    out = CumProd.apply(input, _norm_dim(dim, input.ndim))
    return out if dtype is None or out.dtype == input.dtype else out.to(input.dtype)


# ---- max / min ------------------------------------------------------------------------


class AMax(Function):
    """max/min over dims; the gradient is shared evenly among tied extrema."""

    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a, axes, keepdim, largest):
        return a.max(axis=axes, keepdims=keepdim) if largest else a.min(axis=axes, keepdims=keepdim)

    def backward(ctx, g):
        x = ctx.inputs[0]
        axes, keepdim = ctx.inputs[1], ctx.inputs[2]
        y = _unreduce(ctx.output(), x.shape, axes, keepdim).detach()
        mask = (x._data == y._data).astype(g.dtype)
        count = mask.sum(axis=axes, keepdims=True)
        w = _wrap(mask / count)
        return _unreduce(g, x.shape, axes, keepdim) * w


class MaxDim(Function):
    """max/min along one dim with indices; the gradient goes to the returned index."""

    raw = True

    def forward(ctx, a, dim, keepdim, largest):
        xp = array_module(a)
        idx = xp.argmax(a, axis=dim) if largest else xp.argmin(a, axis=dim)
        idx_k = xp.expand_dims(idx, dim)
        vals = xp.take_along_axis(a, idx_k, axis=dim)
        ctx.indices = idx_k
        if not keepdim:
            vals = vals.squeeze(dim)
        return vals

    def backward(ctx, g):
        from ember.ops_index import _scatter_along

        dim, keepdim = ctx.inputs[1], ctx.inputs[2]
        if not keepdim:
            g = g.unsqueeze(dim)
        return _scatter_along(g, dim, ctx.indices, ctx._shapes[0])


def _max_min(input, dim, keepdim, largest, other=None):
    if isinstance(dim, Tensor):  # max(a, b) is elementwise
        from ember.ops_math import maximum, minimum

        return maximum(input, dim) if largest else minimum(input, dim)
    if input.numel() == 0:
        raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() == 0.")
    if dim is None:
        return AMax.apply(input, None, False, largest)
    d = _norm_dim(dim, input.ndim)
    xp = array_module(input._data)
    vals = MaxDim.apply(input, d, keepdim, largest)
    a = input._data
    idx = xp.argmax(a, axis=d) if largest else xp.argmin(a, axis=d)
    if keepdim:
        idx = xp.expand_dims(idx, d)
    return values_indices(vals, _wrap(idx.astype(np.int64, copy=False)))


@op()
def max(input, dim=None, keepdim=False):
    return _max_min(input, dim, keepdim, True)


@op()
def min(input, dim=None, keepdim=False):
    return _max_min(input, dim, keepdim, False)


@op()
def amax(input, dim=(), keepdim=False):
    return AMax.apply(input, _axes(dim if dim != () else None, input.ndim), keepdim, True)


@op()
def amin(input, dim=(), keepdim=False):
    return AMax.apply(input, _axes(dim if dim != () else None, input.ndim), keepdim, False)


@op()
def argmax(input, dim=None, keepdim=False):
    xp = array_module(input._data)
    if dim is None:
        r = xp.argmax(input._data)
        return _wrap(xp.asarray(r, dtype=np.int64).reshape((1,) * input.ndim if keepdim else ()))
    d = _norm_dim(dim, input.ndim)
    return _wrap(xp.argmax(input._data, axis=d, keepdims=keepdim).astype(np.int64, copy=False))


@op()
def argmin(input, dim=None, keepdim=False):
    xp = array_module(input._data)
    if dim is None:
        r = xp.argmin(input._data)
        return _wrap(xp.asarray(r, dtype=np.int64).reshape((1,) * input.ndim if keepdim else ()))
    d = _norm_dim(dim, input.ndim)
    return _wrap(xp.argmin(input._data, axis=d, keepdims=keepdim).astype(np.int64, copy=False))


# ---- statistics -------------------------------------------------------------------------


@op()
def var(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    if unbiased is not None:
        correction = 1 if unbiased else 0
    axes = _axes(dim, input.ndim)
    n = input.numel() if axes is None else math.prod(input.shape[a] for a in axes)
    mu = mean(input, dim, keepdim=True)
    d = input - mu
    return sum(d * d, dim, keepdim) / builtins.max(n - correction, 0)


@op()
def std(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    from ember.ops_math import sqrt

    return sqrt(var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased))


@op()
def var_mean(input, dim=None, *, correction=1, keepdim=False):
    return var(input, dim, correction=correction, keepdim=keepdim), mean(input, dim, keepdim)


@op()
def std_mean(input, dim=None, *, correction=1, keepdim=False):
    return std(input, dim, correction=correction, keepdim=keepdim), mean(input, dim, keepdim)


class LogSumExp(Function):
    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a, axes, keepdim):
        xp = array_module(a)
        m = a.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        r = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        return r if keepdim else (r.reshape(()) if axes is None else r.squeeze(axes))

    def backward(ctx, g):
        from ember.ops_math import exp

        x = ctx.inputs[0]
        axes, keepdim = ctx.inputs[1], ctx.inputs[2]
        y = _unreduce(ctx.output(), x.shape, axes, keepdim)
        return _unreduce(g, x.shape, axes, keepdim) * exp(x - y)


@op()
def logsumexp(input, dim=None, keepdim=False):
    return LogSumExp.apply(input, _axes(dim, input.ndim), keepdim)


class Softmax(Function):
    raw = True
    saves_output = True

    def forward(ctx, a, dim):
        xp = array_module(a)
        e = xp.exp(a - a.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        return e

    def backward(ctx, g):
        y = ctx.output()
        d = ctx.inputs[1]
        return y * (g - sum(g * y, d, keepdim=True))


class LogSoftmax(Function):
    raw = True
    saves_output = True

    def forward(ctx, a, dim):
        xp = array_module(a)
        s = a - a.max(axis=dim, keepdims=True)
        s -= xp.log(xp.exp(s).sum(axis=dim, keepdims=True))
        return s

    def backward(ctx, g):
        from ember.ops_math import exp

        y = ctx.output()
        d = ctx.inputs[1]
        return g - exp(y) * sum(g, d, keepdim=True)


def _softmax_dim(input, dim):
    if dim is None:
        dim = 0 if input.ndim in (0, 1, 3) else 1  # PyTorch's legacy implicit choice
    return _norm_dim(dim, input.ndim) if input.ndim else None


@op()
def softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return Softmax.apply(input, _softmax_dim(input, dim))


@op()
def log_softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return LogSoftmax.apply(input, _softmax_dim(input, dim))


# ---- norms --------------------------------------------------------------------------------


class Norm2(Function):
    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a, axes, keepdim):
        xp = array_module(a)
        return xp.sqrt((a * a).sum(axis=axes, keepdims=keepdim))

    def backward(ctx, g):
        x = ctx.inputs[0]
        axes, keepdim = ctx.inputs[1], ctx.inputs[2]
        y = _unreduce(ctx.output(), x.shape, axes, keepdim)
        # the subgradient 0 at the origin, as PyTorch: divide by 1 where the norm is 0
        safe = y + (y.detach() == 0).to(y.dtype)
        return _unreduce(g, x.shape, axes, keepdim) * x / safe


@op()
def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    from ember.ops_math import abs as _abs

    if dtype is not None:
        input = input.to(dtype)
    axes = _axes(dim, input.ndim)
    if p in ("fro", 2, 2.0):
        return Norm2.apply(input, axes, keepdim)
    if p in (1, 1.0):
        return sum(_abs(input), dim, keepdim)
    if p in (float("inf"), "inf"):
        return AMax.apply(_abs(input), axes, keepdim, True)
    if p in (float("-inf"), "-inf"):
        return AMax.apply(_abs(input), axes, keepdim, False)
    if p == 0:
        return sum((input != 0).to(input.dtype), dim, keepdim)
    if isinstance(p, (int, float)):
        return sum(_abs(input) ** p, dim, keepdim) ** (1.0 / p)
    raise ValueError(f"norm: unsupported p={p!r}")


@op()
def all(input, dim=None, keepdim=False):
    return _wrap(array_module(input._data).all(input._data, axis=_axes(dim, input.ndim), keepdims=keepdim))


@op()
def any(input, dim=None, keepdim=False):
    return _wrap(array_module(input._data).any(input._data, axis=_axes(dim, input.ndim), keepdims=keepdim))


@op()
def count_nonzero(input, dim=None):
    return _wrap(
        array_module(input._data).count_nonzero(input._data, axis=_axes(dim, input.ndim)).astype(np.int64)
    )


def _default_float():
    return get_default_dtype()


for _name in (
    "sum",
    "mean",
    "prod",
    "cumsum",
    "cumprod",
    "max",
    "min",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "var",
    "std",
    "logsumexp",
    "softmax",
    "log_softmax",
    "norm",
    "all",
    "any",
    "count_nonzero",
):
    register_method(_name, globals()[_name])
