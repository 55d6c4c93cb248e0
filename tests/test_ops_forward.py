"""Forward values match numpy for every public op, with PyTorch's argument names, and
float32 stays float32 (no silent upcast), Python scalars on either side included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ember

_r = np.random.default_rng(7)
A = _r.standard_normal((3, 4)).astype(np.float32)
B = _r.standard_normal((3, 4)).astype(np.float32)
ROW = _r.standard_normal(4).astype(np.float32)
P = _r.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
V = _r.standard_normal(4).astype(np.float32)
M = _r.standard_normal((4, 2)).astype(np.float32)
SQ = _r.standard_normal((3, 3)).astype(np.float32)
B3 = _r.standard_normal((2, 3, 4)).astype(np.float32)
I = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])
MASK = A > 0
INT = _r.integers(-5, 6, (3, 4))
POSINT = np.array([0, 3, 1, 3, 2])


def T(a):
    return ember.tensor(a) if isinstance(a, np.ndarray) else a


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _f32(x):
    return x.astype(np.float32)


def _erf(x):
    from scipy.special import erf

    return erf(x).astype(x.dtype)


# name -> list of (ember function of tensors, numpy function of arrays, inputs)
CASES = {
    "abs": [(ember.abs, np.abs, (A,))],
    "add": [
        (ember.add, np.add, (A, ROW)),
        (lambda a, b: ember.add(a, b, alpha=2), lambda a, b: a + 2 * b, (A, B)),
    ],
    "sub": [(ember.sub, np.subtract, (A, ROW))],
    "subtract": [(ember.subtract, np.subtract, (A, B))],
    "mul": [(ember.mul, np.multiply, (A, ROW))],
    "multiply": [(ember.multiply, np.multiply, (A, B))],
    "div": [
        (ember.div, np.divide, (A, P)),
        (lambda a, b: ember.div(a, b, rounding_mode="floor"), lambda a, b: np.floor(a / b), (A, P)),
        (lambda a, b: ember.div(a, b, rounding_mode="trunc"), lambda a, b: np.trunc(a / b), (A, P)),
    ],
    "divide": [(ember.divide, np.divide, (A, P))],
    "true_divide": [(ember.true_divide, np.true_divide, (A, P))],
    "floor_divide": [
        (ember.floor_divide, np.floor_divide, (A, P)),
        (ember.floor_divide, np.floor_divide, (INT, 3)),
    ],
    "remainder": [(ember.remainder, np.remainder, (A, P)), (ember.remainder, np.remainder, (INT, 4))],
    "pow": [(ember.pow, np.power, (P, A)), (lambda a: ember.pow(a, 3), lambda a: a**3, (A,))],
    "neg": [(ember.neg, np.negative, (A,))],
    "negative": [(ember.negative, np.negative, (A,))],
    "exp": [(ember.exp, np.exp, (A,))],
    "log": [(ember.log, np.log, (P,))],
    "log1p": [(ember.log1p, np.log1p, (P,))],
    "expm1": [(ember.expm1, np.expm1, (A,))],
    "sqrt": [(ember.sqrt, np.sqrt, (P,))],
    "rsqrt": [(ember.rsqrt, lambda a: 1 / np.sqrt(a), (P,))],
    "square": [(ember.square, np.square, (A,))],
    "sign": [(ember.sign, np.sign, (A,))],
    "sin": [(ember.sin, np.sin, (A,))],
    "cos": [(ember.cos, np.cos, (A,))],
    "tanh": [(ember.tanh, np.tanh, (A,))],
    "sigmoid": [(ember.sigmoid, lambda a: 1 / (1 + np.exp(-a)), (A * 20,))],
    "relu": [(ember.relu, lambda a: np.maximum(a, 0), (A,))],
    "leaky_relu": [
        (lambda a: ember.leaky_relu(a, negative_slope=0.1), lambda a: np.where(a > 0, a, 0.1 * a), (A,))
    ],
    "gelu": [
        (ember.gelu, lambda a: _f32(0.5 * a * (1 + _erf(a / np.sqrt(2)))), (A,)),
        (
            lambda a: ember.gelu(a, approximate="tanh"),
            lambda a: _f32(0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))),
            (A,),
        ),
    ],
    "erf": [(ember.erf, _erf, (A,))],
    "softplus": [
        (ember.softplus, lambda a: np.log1p(np.exp(a)), (A,)),
        (
            lambda a: ember.softplus(a * 30, beta=1.0, threshold=20.0),
            lambda a: np.where(a * 30 > 20, a * 30, np.log1p(np.exp(a * 30))),
            (A,),
        ),
    ],
    "clamp": [
        (lambda a: ember.clamp(a, min=-0.5, max=0.5), lambda a: np.clip(a, -0.5, 0.5), (A,)),
        (lambda a, b: ember.clamp(a, min=b), lambda a, b: np.maximum(a, b), (A, ROW)),
    ],
    "clip": [(lambda a: ember.clip(a, -0.2, 0.3), lambda a: np.clip(a, -0.2, 0.3), (A,))],
    "clamp_min": [(lambda a: ember.clamp_min(a, 0.1), lambda a: np.maximum(a, 0.1), (A,))],
    "clamp_max": [(lambda a: ember.clamp_max(a, 0.1), lambda a: np.minimum(a, 0.1), (A,))],
    "maximum": [(ember.maximum, np.maximum, (A, ROW))],
    "minimum": [(ember.minimum, np.minimum, (A, B))],
    "where": [
        (ember.where, np.where, (MASK, A, B)),
        (lambda m, a: ember.where(m, a, 0.0), lambda m, a: np.where(m, a, np.float32(0)), (MASK, A)),
    ],
    "eq": [(ember.eq, np.equal, (INT, 2))],
    "ne": [(ember.ne, np.not_equal, (INT, 2))],
    "lt": [(ember.lt, np.less, (A, B))],
    "le": [(ember.le, np.less_equal, (A, B))],
    "gt": [(ember.gt, np.greater, (A, ROW))],
    "ge": [(ember.ge, np.greater_equal, (A, 0.0))],
    "logical_and": [(ember.logical_and, np.logical_and, (MASK, A < 0.5))],
    "logical_or": [(ember.logical_or, np.logical_or, (MASK, A < -0.5))],
    "logical_xor": [(ember.logical_xor, np.logical_xor, (MASK, A < 0.5))],
    "logical_not": [(ember.logical_not, np.logical_not, (MASK,))],
    "isnan": [(ember.isnan, np.isnan, (np.array([1.0, np.nan, np.inf], np.float32),))],
    "isinf": [(ember.isinf, np.isinf, (np.array([1.0, np.nan, -np.inf], np.float32),))],
    "isfinite": [(ember.isfinite, np.isfinite, (np.array([1.0, np.nan, np.inf], np.float32),))],
    "allclose": [(ember.allclose, np.allclose, (A, A + 1e-9))],
    "equal": [(ember.equal, np.array_equal, (A, A.copy()))],
    # reductions
    "sum": [
        (ember.sum, np.sum, (A,)),
        (lambda a: ember.sum(a, dim=1, keepdim=True), lambda a: a.sum(1, keepdims=True), (A,)),
        (lambda a: a.sum((0, 2)), lambda a: a.sum((0, 2)), (B3,)),
        (lambda m: m.sum(), lambda m: np.int64(m.sum()), (MASK,)),
    ],
    "mean": [(lambda a: ember.mean(a, -1), lambda a: a.mean(-1), (A,))],
    "prod": [(lambda a: ember.prod(a, 1), lambda a: a.prod(1), (A,))],
    "cumsum": [(lambda a: ember.cumsum(a, dim=1), lambda a: a.cumsum(1), (A,))],
    "cumprod": [(lambda a: ember.cumprod(a, 0), lambda a: a.cumprod(0), (A,))],
    "max": [
        (ember.max, np.max, (A,)),
        (lambda a: ember.max(a, dim=1).values, lambda a: a.max(1), (A,)),
        (lambda a: ember.max(a, 1, keepdim=True).indices, lambda a: a.argmax(1)[:, None], (A,)),
        (lambda a, b: ember.max(a, b), np.maximum, (A, B)),
    ],
    "min": [(ember.min, np.min, (A,)), (lambda a: ember.min(a, 0)[1], lambda a: a.argmin(0), (A,))],
    "amax": [(lambda a: ember.amax(a, (0, 2)), lambda a: a.max((0, 2)), (B3,))],
    "amin": [(lambda a: ember.amin(a, 1, keepdim=True), lambda a: a.min(1, keepdims=True), (A,))],
    "argmax": [
        (ember.argmax, np.argmax, (A,)),
        (lambda a: ember.argmax(a, dim=1), lambda a: a.argmax(1), (A,)),
    ],
    "argmin": [(lambda a: ember.argmin(a, 0, keepdim=True), lambda a: a.argmin(0)[None], (A,))],
    "var": [
        (ember.var, lambda a: a.var(ddof=1), (A,)),
        (lambda a: ember.var(a, 1, correction=0), lambda a: a.var(1), (A,)),
    ],
    "std": [(lambda a: ember.std(a, dim=0, keepdim=True), lambda a: a.std(0, ddof=1, keepdims=True), (A,))],
    "var_mean": [(lambda a: ember.var_mean(a, 1)[0], lambda a: a.var(1, ddof=1), (A,))],
    "std_mean": [(lambda a: ember.std_mean(a, 1)[1], lambda a: a.mean(1), (A,))],
    "logsumexp": [
        (lambda a: ember.logsumexp(a, 1), lambda a: np.log(np.exp(a).sum(1)), (A,)),
        (
            lambda a: ember.logsumexp(a * 1000, 0),
            lambda a: (a * 1000).max(0) + np.log(np.exp(a * 1000 - (a * 1000).max(0)).sum(0)),
            (A,),
        ),
    ],
    "softmax": [(lambda a: ember.softmax(a, dim=-1), lambda a: _softmax(a, -1), (A * 100,))],
    "log_softmax": [(lambda a: ember.log_softmax(a, 0), lambda a: np.log(_softmax(a, 0)), (A,))],
    "norm": [
        (ember.norm, np.linalg.norm, (A,)),
        (lambda a: ember.norm(a, p=1, dim=1), lambda a: np.abs(a).sum(1), (A,)),
        (lambda a: ember.norm(a, p=float("inf"), dim=0), lambda a: np.abs(a).max(0), (A,)),
    ],
    "all": [(lambda m: ember.all(m, dim=1), lambda m: m.all(1), (MASK,))],
    "any": [(ember.any, np.any, (MASK,))],
    "count_nonzero": [(lambda a: ember.count_nonzero(a, 0), lambda a: np.count_nonzero(a, 0), (INT,))],
    # linear algebra
    "matmul": [(ember.matmul, np.matmul, (A, M)), (ember.matmul, np.matmul, (B3, M))],
    "mm": [(ember.mm, np.matmul, (A, M))],
    "bmm": [(ember.bmm, np.matmul, (B3, np.stack([M, M])))],
    "mv": [(ember.mv, np.matmul, (A, V))],
    "dot": [(ember.dot, np.dot, (V, ROW))],
    "vdot": [(ember.vdot, np.vdot, (V, ROW))],
    "inner": [(ember.inner, np.inner, (A, V))],
    "outer": [(ember.outer, np.outer, (V, ROW))],
    "ger": [(ember.ger, np.outer, (V, ROW))],
    "einsum": [
        (lambda a, b: ember.einsum("ij,jk->ik", a, b), lambda a, b: a @ b, (A, M)),
        (lambda a: ember.einsum("ii", a), np.trace, (SQ,)),
    ],
    "tensordot": [(lambda a, b: ember.tensordot(a, b, 1), lambda a, b: np.tensordot(a, b, 1), (A, M))],
    "trace": [(ember.trace, np.trace, (SQ,))],
    "diagonal": [(lambda a: ember.diagonal(a, 1), lambda a: np.diagonal(a, 1), (A,))],
    # shapes
    "reshape": [(lambda a: ember.reshape(a, (4, 3)), lambda a: a.reshape(4, 3), (A,))],
    "flatten": [(lambda a: ember.flatten(a, start_dim=1), lambda a: a.reshape(2, 12), (B3,))],
    "unflatten": [(lambda a: ember.unflatten(a, 1, (2, 2)), lambda a: a.reshape(3, 2, 2), (A,))],
    "squeeze": [(ember.squeeze, np.squeeze, (A[:, None],))],
    "unsqueeze": [(lambda a: ember.unsqueeze(a, dim=-1), lambda a: a[..., None], (A,))],
    "permute": [(lambda a: ember.permute(a, (2, 0, 1)), lambda a: a.transpose(2, 0, 1), (B3,))],
    "transpose": [(lambda a: ember.transpose(a, 0, 2), lambda a: a.swapaxes(0, 2), (B3,))],
    "swapaxes": [(lambda a: ember.swapaxes(a, 0, 1), lambda a: a.T, (A,))],
    "swapdims": [(lambda a: ember.swapdims(a, 0, 1), lambda a: a.T, (A,))],
    "t": [(ember.t, np.transpose, (A,))],
    "movedim": [(lambda a: ember.movedim(a, 0, -1), lambda a: np.moveaxis(a, 0, -1), (B3,))],
    "expand": [(lambda a: ember.expand(a, 3, 4), lambda a: np.broadcast_to(a, (3, 4)), (ROW,))],
    "broadcast_to": [(lambda a: ember.broadcast_to(a, (2, 4)), lambda a: np.broadcast_to(a, (2, 4)), (ROW,))],
    "broadcast_tensors": [
        (lambda a, b: ember.broadcast_tensors(a, b)[1], lambda a, b: np.broadcast_arrays(a, b)[1], (A, ROW))
    ],
    "cat": [(lambda a, b: ember.cat([a, b], dim=1), lambda a, b: np.concatenate([a, b], 1), (A, B))],
    "concat": [(lambda a, b: ember.concat([a, b]), lambda a, b: np.concatenate([a, b]), (A, B))],
    "concatenate": [
        (lambda a, b: ember.concatenate([a, b], 1), lambda a, b: np.concatenate([a, b], 1), (A, B))
    ],
    "stack": [(lambda a, b: ember.stack([a, b], dim=2), lambda a, b: np.stack([a, b], 2), (A, B))],
    "hstack": [(lambda a, b: ember.hstack([a, b]), lambda a, b: np.hstack([a, b]), (A, B))],
    "vstack": [(lambda a, b: ember.vstack([a, b]), lambda a, b: np.vstack([a, b]), (ROW, A))],
    "split": [(lambda a: ember.split(a, [1, 3], dim=1)[1], lambda a: np.split(a, [1], 1)[1], (A,))],
    "chunk": [(lambda a: ember.chunk(a, 2, dim=1)[0], lambda a: a[:, :2], (A,))],
    "unbind": [(lambda a: ember.unbind(a, 1)[2], lambda a: a[:, 2], (A,))],
    "narrow": [(lambda a: ember.narrow(a, 1, 1, 2), lambda a: a[:, 1:3], (A,))],
    "flip": [(lambda a: ember.flip(a, (0, 1)), lambda a: a[::-1, ::-1], (A,))],
    "fliplr": [(ember.fliplr, np.fliplr, (A,))],
    "flipud": [(ember.flipud, np.flipud, (A,))],
    "roll": [
        (lambda a: ember.roll(a, shifts=1, dims=1), lambda a: np.roll(a, 1, 1), (A,)),
        (lambda a: ember.roll(a, 3), lambda a: np.roll(a, 3), (A,)),
    ],
    "tile": [(lambda a: ember.tile(a, (2, 1)), lambda a: np.tile(a, (2, 1)), (A,))],
    "repeat_interleave": [
        (lambda a: ember.repeat_interleave(a, 2, dim=1), lambda a: np.repeat(a, 2, 1), (A,))
    ],
    "pad": [
        (lambda a: ember.pad(a, (1, 2)), lambda a: np.pad(a, ((0, 0), (1, 2))), (A,)),
        (
            lambda a: ember.pad(a, (1, 1, 2, 0), mode="reflect"),
            lambda a: np.pad(a, ((2, 0), (1, 1)), mode="reflect"),
            (A,),
        ),
        (
            lambda a: ember.pad(a, (2, 2), mode="replicate"),
            lambda a: np.pad(a, ((0, 0), (2, 2)), mode="edge"),
            (A,),
        ),
        (
            lambda a: ember.pad(a, (1, 0), mode="circular"),
            lambda a: np.pad(a, ((0, 0), (1, 0)), mode="wrap"),
            (A,),
        ),
    ],
    "contiguous": [(ember.contiguous, lambda a: a, (A,))],
    "clone": [(ember.clone, np.copy, (A,))],
    # indexing and ordering
    "gather": [(lambda a, i: ember.gather(a, 1, i), lambda a, i: np.take_along_axis(a, i, 1), (A[:2], I))],
    "take_along_dim": [
        (lambda a, i: ember.take_along_dim(a, i, dim=1), lambda a, i: np.take_along_axis(a, i, 1), (A[:2], I))
    ],
    "scatter_add": [
        (
            lambda a, i, s: ember.scatter_add(a, 1, i, s),
            lambda a, i, s: _scatter_add(a, i, s),
            (A[:2], I, B[:2]),
        )
    ],
    "scatter": [
        (
            lambda a, i: ember.scatter(a, 0, i[:1, :3], value=5.0),
            lambda a, i: _scatter0(a, i[:1, :3], 5.0),
            (A, I),
        )
    ],
    "index_select": [(lambda a, i: ember.index_select(a, 1, i), lambda a, i: a[:, i], (A, POSINT))],
    "index_add": [
        (
            lambda a, i, s: ember.index_add(a, 0, i, s),
            lambda a, i, s: _index_add(a, i, s),
            (np.tile(A, (2, 1)), POSINT, np.tile(B, (2, 1))[:5]),
        )
    ],
    "addcmul": [
        (
            lambda a, b, c: ember.addcmul(a, b, c, value=0.5),
            lambda a, b, c: a + np.float32(0.5) * b * c,
            (A, B, ROW),
        )
    ],
    "addcdiv": [(lambda a, b, c: ember.addcdiv(a, b, c, value=2), lambda a, b, c: a + 2 * b / c, (A, B, P))],
    "lerp": [
        (lambda a, b: ember.lerp(a, b, 0.25), lambda a, b: a + np.float32(0.25) * (b - a), (A, B)),
        (ember.lerp, lambda a, b, w: a + w * (b - a), (A, B, P)),
    ],
    "index_fill": [
        (
            lambda a: ember.index_fill(a, 1, ember.tensor([0, 3]), 7.0),
            lambda a: np.where(np.isin(np.arange(4), [0, 3]), np.float32(7), a),
            (A,),
        )
    ],
    "masked_fill": [
        (lambda a, m: ember.masked_fill(a, m, -1.0), lambda a, m: np.where(m, np.float32(-1), a), (A, MASK))
    ],
    "masked_select": [(ember.masked_select, lambda a, m: a[m], (A, MASK))],
    "nonzero": [(ember.nonzero, np.argwhere, (INT,))],
    "sort": [
        (lambda a: ember.sort(a, dim=1, descending=True).values, lambda a: -np.sort(-a, 1), (A,)),
        (lambda a: ember.sort(a, 0).indices, lambda a: np.argsort(a, 0), (A,)),
    ],
    "argsort": [
        (lambda a: ember.argsort(a, dim=1), lambda a: np.argsort(a, 1), (A,)),
        (
            lambda a: ember.argsort(a, descending=True, stable=True),
            lambda a: np.argsort(-a, 1, kind="stable"),
            (INT,),
        ),
    ],
    "topk": [
        (lambda a: ember.topk(a, 2, dim=1).values, lambda a: -np.sort(-a, 1)[:, :2], (A,)),
        (lambda a: ember.topk(a, 2, largest=False).indices, lambda a: np.argsort(a, 1)[:, :2], (A,)),
    ],
    "kthvalue": [(lambda a: ember.kthvalue(a, 2, dim=1).values, lambda a: np.sort(a, 1)[:, 1], (A,))],
    "unique": [
        (ember.unique, np.unique, (INT,)),
        (
            lambda a: ember.unique(a, return_counts=True)[1],
            lambda a: np.unique(a, return_counts=True)[1],
            (INT,),
        ),
    ],
    "bincount": [(ember.bincount, np.bincount, (POSINT,))],
    "searchsorted": [
        (
            lambda s, v: ember.searchsorted(s, v, right=True),
            lambda s, v: np.searchsorted(s, v, side="right"),
            (np.sort(V), ROW),
        )
    ],
}


def _scatter_add(a, i, s):
    out = a.copy()
    for r in range(i.shape[0]):
        for c in range(i.shape[1]):
            out[r, i[r, c]] += s[r, c]
    return out


def _scatter0(a, i, v):
    out = a.copy()
    for r in range(i.shape[0]):
        for c in range(i.shape[1]):
            out[i[r, c], c] = v
    return out


def _index_add(a, i, s):
    out = a.copy()
    np.add.at(out, i, s)
    return out


# creation and random ops: covered in test_tensor.py and below
# ---- the Array API's elementwise set, under PyTorch's names ------------------------------
U = _r.uniform(-0.9, 0.9, (3, 4)).astype(np.float32)  # inside asin/acos/atanh's domain
BIG = (P + 1).astype(np.float32)  # acosh's domain
C = (A + 1j * B).astype(np.complex64)
BITS = _r.integers(0, 64, (3, 4)).astype(np.int32)
SHIFT = _r.integers(0, 5, (3, 4)).astype(np.int32)
CASES.update(
    {
        "tan": [(ember.tan, np.tan, (U,))],
        "asin": [(ember.asin, np.arcsin, (U,))],
        "arcsin": [(ember.arcsin, np.arcsin, (U,))],
        "acos": [(ember.acos, np.arccos, (U,))],
        "arccos": [(ember.arccos, np.arccos, (U,))],
        "atan": [(ember.atan, np.arctan, (A,))],
        "arctan": [(ember.arctan, np.arctan, (A,))],
        "atan2": [
            (ember.atan2, np.arctan2, (A, B)),
            (lambda a: ember.atan2(a, 2.0), lambda a: np.arctan2(a, np.float32(2)), (A,)),
        ],
        "arctan2": [(ember.arctan2, np.arctan2, (A, ROW))],
        "sinh": [(ember.sinh, np.sinh, (A,))],
        "cosh": [(ember.cosh, np.cosh, (A,))],
        "asinh": [(ember.asinh, np.arcsinh, (A,))],
        "arcsinh": [(ember.arcsinh, np.arcsinh, (A,))],
        "acosh": [(ember.acosh, np.arccosh, (BIG,))],
        "arccosh": [(ember.arccosh, np.arccosh, (BIG,))],
        "atanh": [(ember.atanh, np.arctanh, (U,))],
        "arctanh": [(ember.arctanh, np.arctanh, (U,))],
        "log2": [(ember.log2, np.log2, (P,))],
        "log10": [(ember.log10, np.log10, (P,))],
        "exp2": [(ember.exp2, np.exp2, (A,))],
        "reciprocal": [
            (ember.reciprocal, np.reciprocal, (P,)),
            (ember.reciprocal, lambda a: _f32(1 / a), (INT + 10,)),
        ],
        "hypot": [(ember.hypot, np.hypot, (A, B))],
        "logaddexp": [(ember.logaddexp, np.logaddexp, (A, B))],
        "logaddexp2": [(ember.logaddexp2, np.logaddexp2, (A, ROW))],
        "copysign": [(ember.copysign, np.copysign, (A, B))],
        "fmod": [
            (ember.fmod, np.fmod, (A * 3, P)),
            (lambda a: ember.fmod(a, -2), lambda a: np.fmod(a, -2), (INT,)),
        ],
        "floor": [(ember.floor, np.floor, (A * 3,)), (ember.floor, np.floor, (INT,))],
        "ceil": [(ember.ceil, np.ceil, (A * 3,))],
        "trunc": [(ember.trunc, np.trunc, (A * 3,))],
        "fix": [(ember.fix, np.trunc, (A * 3,))],
        "round": [
            (ember.round, np.round, (A * 3,)),
            (lambda a: ember.round(a, decimals=2), lambda a: np.round(a, 2), (A,)),
            (ember.round, np.round, (np.array([0.5, 1.5, 2.5, -0.5], np.float32),)),
        ],
        "frac": [(ember.frac, lambda a: a - np.trunc(a), (A * 3,))],
        "signbit": [(ember.signbit, np.signbit, (A,))],
        "nextafter": [(ember.nextafter, np.nextafter, (A, B))],
        "positive": [(ember.positive, np.positive, (A,))],
        "sgn": [(ember.sgn, np.sign, (A,)), (ember.sgn, np.sign, (C,))],
        "real": [(ember.real, np.real, (C,)), (ember.real, np.real, (A,))],
        "imag": [(ember.imag, np.imag, (C,))],
        "conj": [(ember.conj, np.conj, (C,)), (ember.conj, np.conj, (A,))],
        "conj_physical": [(ember.conj_physical, np.conj, (C,))],
        "resolve_conj": [(ember.resolve_conj, lambda c: c, (C,))],
        "angle": [(ember.angle, np.angle, (C,)), (ember.angle, np.angle, (A,))],
        "isreal": [(ember.isreal, np.isreal, (C,))],
        "complex": [(ember.complex, lambda a, b: a + 1j * b, (A, B))],
        "polar": [(ember.polar, lambda r, t: r * np.exp(1j * t), (P, A))],
        "view_as_real": [(ember.view_as_real, lambda c: np.stack([c.real, c.imag], -1), (C,))],
        "view_as_complex": [
            (ember.view_as_complex, lambda a: a[..., 0] + 1j * a[..., 1], (B3[..., :2].copy(),))
        ],
        "bitwise_and": [(ember.bitwise_and, np.bitwise_and, (BITS, SHIFT))],
        "bitwise_or": [(ember.bitwise_or, np.bitwise_or, (BITS, SHIFT))],
        "bitwise_xor": [(ember.bitwise_xor, np.bitwise_xor, (BITS, MASK.astype(np.int32)))],
        "bitwise_not": [(ember.bitwise_not, np.invert, (BITS,)), (ember.bitwise_not, np.invert, (MASK,))],
        "bitwise_left_shift": [(ember.bitwise_left_shift, np.left_shift, (BITS, SHIFT))],
        "bitwise_right_shift": [(ember.bitwise_right_shift, np.right_shift, (BITS, SHIFT))],
        "tril": [(ember.tril, np.tril, (A,)), (lambda a: ember.tril(a, -1), lambda a: np.tril(a, -1), (B3,))],
        "triu": [(ember.triu, np.triu, (A,)), (lambda a: ember.triu(a, 2), lambda a: np.triu(a, 2), (B3,))],
        "diff": [
            (ember.diff, np.diff, (A,)),
            (lambda a: ember.diff(a, n=2, dim=0), lambda a: np.diff(a, 2, 0), (A,)),
            (lambda a, p: ember.diff(a, prepend=p), lambda a, p: np.diff(a, prepend=p), (ROW, V)),
            (ember.diff, np.diff, (MASK,)),
        ],
        "moveaxis": [(lambda a: ember.moveaxis(a, 0, -1), lambda a: np.moveaxis(a, 0, -1), (B3,))],
        "meshgrid": [
            (
                lambda a, b: ember.meshgrid(a, b, indexing="xy")[0],
                lambda a, b: np.meshgrid(a, b)[0],
                (ROW, V[:3]),
            ),
            (
                lambda a, b: ember.meshgrid(a, b, indexing="ij")[1],
                lambda a, b: np.meshgrid(a, b, indexing="ij")[1],
                (ROW, V[:3]),
            ),
        ],
    }
)


NOT_HERE = {
    "arange",
    "asarray",
    "bernoulli",
    "empty",
    "empty_like",
    "eye",
    "from_dlpack",
    "from_numpy",
    "full",
    "full_like",
    "initial_seed",
    "linspace",
    "logspace",
    "manual_seed",
    "multinomial",
    "normal",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "seed",
    "tensor",
    "uniform",
    "zeros",
    "zeros_like",
}


def test_every_public_op_has_a_forward_case():
    missing = sorted(set(ember.registry.PUBLIC_OPS) - set(CASES) - NOT_HERE)
    assert not missing, f"public ops without a forward check: {missing}"


_FLAT = [(f"{name}-{k}", case) for name, cases in CASES.items() for k, case in enumerate(cases)]


def _as_np(x):
    if isinstance(x, ember.Tensor):
        return x.cpu().numpy()
    return np.asarray(x)


@pytest.mark.parametrize("case", [c for _, c in _FLAT], ids=[i for i, _ in _FLAT])
def test_forward_matches_numpy(case):
    fn, ref, args = case
    got = fn(*(T(a) for a in args))
    want = ref(*args)
    if isinstance(got, (bool, np.bool_)):
        assert got == want
        return
    got = _as_np(got)
    want = np.asarray(want)
    assert got.shape == want.shape
    if want.dtype.kind in "fc":
        assert got.dtype == want.dtype, f"dtype {got.dtype}, numpy gives {want.dtype}"
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        assert got.dtype.kind == want.dtype.kind
        np.testing.assert_array_equal(got, want)


# ---- float32 stays float32 ---------------------------------------------------------------

BINARY = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / b,
    lambda a, b: a**b,
    lambda a, b: a // b,
    lambda a, b: a % b,
    lambda a, b: ember.maximum(a, b),
    lambda a, b: ember.minimum(a, b),
    lambda a, b: ember.where(ember.tensor(True), a, b),
]
BIN_IDS = ["add", "sub", "mul", "div", "pow", "floordiv", "mod", "maximum", "minimum", "where"]


@pytest.mark.parametrize("op", BINARY, ids=BIN_IDS)
@pytest.mark.parametrize("scalar", [2, 2.5, True], ids=["int", "float", "bool"])
def test_float32_with_python_scalar_stays_float32(op, scalar):
    x = ember.tensor([1.5, 2.0, 3.0])
    assert op(x, scalar).dtype == ember.float32
    assert op(scalar, x).dtype == ember.float32
    h = ember.tensor([1.5, 2.0], dtype=ember.float16)
    assert op(h, scalar).dtype == ember.float16


@pytest.mark.parametrize("op", BINARY, ids=BIN_IDS)
def test_int_tensor_with_float_gives_float32(op):
    i = ember.tensor([1, 2, 3])
    assert op(i, 2.5).dtype == ember.float32
    assert op(2.5, i).dtype == ember.float32
    assert op(i, ember.tensor([1.0, 2.0, 4.0])).dtype == ember.float32
    assert op(i, ember.tensor([1.0, 2.0, 4.0], dtype=ember.float64)).dtype == ember.float64


@pytest.mark.parametrize(
    "fn",
    [
        ember.exp,
        ember.sigmoid,
        ember.gelu,
        ember.softplus,
        ember.erf,
        ember.mean,
        ember.var,
        ember.norm,
        ember.logsumexp,
        lambda x: ember.softmax(x, -1),
        lambda x: ember.leaky_relu(x),
        lambda x: ember.clamp(x, 0.1, 0.2),
        lambda x: x.masked_fill(x > 0, 1.5),
        lambda x: ember.pad(x, (1, 1), value=0.5),
        ember.rsqrt,
    ],
)
def test_unary_float32_stays_float32(fn):
    x = ember.tensor([[0.5, 1.0, 2.0]], requires_grad=True)
    y = fn(x)
    assert y.dtype == ember.float32
    y.sum().backward()
    assert x.grad.dtype == ember.float32


def test_int_results_follow_pytorch():
    i = ember.tensor([1, 2, 3])
    assert (i + 1).dtype == ember.int64
    assert (i / 2).dtype == ember.float32  # true division of ints gives the default float
    assert ember.tensor([True, False]).sum().dtype == ember.int64


# ---- hypothesis: elementwise ops against numpy on random shapes ---------------------------

_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)
_floats = st.floats(-3, 3, width=32)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shapes=_shapes)
def test_binary_broadcasting_matches_numpy(data, shapes):
    a = data.draw(hnp.arrays(np.float32, shapes.input_shapes[0], elements=_floats))
    b = data.draw(hnp.arrays(np.float32, shapes.input_shapes[1], elements=_floats))
    ta, tb = ember.tensor(a), ember.tensor(b)
    for mine, ref in (
        (ta + tb, a + b),
        (ta * tb, a * b),
        (ta - tb, a - b),
        (ember.maximum(ta, tb), np.maximum(a, b)),
        (ta > tb, a > b),
    ):
        assert mine.shape == ref.shape and mine.dtype == ref.dtype
        np.testing.assert_allclose(mine.numpy(), ref, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    a=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=_floats),
    data=st.data(),
)
def test_reductions_match_numpy(a, data):
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    keepdim = data.draw(st.booleans())
    t = ember.tensor(a)
    for mine, ref in (
        (t.sum(dim, keepdim=keepdim), a.sum(dim, keepdims=keepdim)),
        (t.mean(dim, keepdim=keepdim), a.mean(dim, keepdims=keepdim)),
        (t.amax(dim, keepdim=keepdim), a.max(dim, keepdims=keepdim)),
        (t.logsumexp(dim, keepdim=keepdim), np.log(np.exp(a.astype(np.float64)).sum(dim, keepdims=keepdim))),
    ):
        assert mine.shape == ref.shape and mine.dtype == ember.float32
        np.testing.assert_allclose(mine.numpy(), ref, rtol=1e-5, atol=1e-5)
    if a.shape[dim] > 1:
        np.testing.assert_allclose(
            t.var(dim, correction=1, keepdim=keepdim).numpy(),
            a.var(dim, ddof=1, keepdims=keepdim),
            rtol=1e-4,
            atol=1e-5,
        )


def test_other_creation_and_random_ops():
    np.testing.assert_allclose(ember.logspace(0, 2, 3).numpy(), [1, 10, 100], rtol=1e-6)
    assert sorted(ember.randperm(5).tolist()) == [0, 1, 2, 3, 4]
    b = ember.bernoulli(ember.full((1000,), 0.3))
    assert set(b.unique().tolist()) <= {0.0, 1.0} and 0.2 < b.mean().item() < 0.4
    m = ember.multinomial(ember.tensor([0.0, 1.0, 0.0]), 2, replacement=True)
    assert m.tolist() == [1, 1]
    x = ember.zeros(2, 3, dtype=ember.float64)
    assert ember.rand_like(x).dtype == ember.float64 and ember.randn_like(x).shape == (2, 3)
    ember.manual_seed(1)
    s = ember.initial_seed()
    assert s == 1 and isinstance(ember.seed(), int)
