"""Everyday PyTorch one-liners, written as a PyTorch user writes them (``import ember as
torch``), each against the result numpy gives. A row is ``(call, numpy reference)``; the
call receives ``torch`` (ember) and the inputs as tensors, the reference the same inputs as
arrays. Outputs are compared by value and dtype kind (and shape), tuples element-wise."""

from __future__ import annotations

import numpy as np
import pytest

import ember as torch
import ember.nn.functional as F

_r = np.random.default_rng(12)
A = _r.standard_normal((3, 4)).astype(np.float32)
B = _r.standard_normal((3, 4)).astype(np.float32)
P = _r.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
V = _r.standard_normal(4).astype(np.float32)
M = _r.standard_normal((4, 5)).astype(np.float32)
SQ = _r.standard_normal((3, 3)).astype(np.float32)
B3 = _r.standard_normal((2, 3, 4)).astype(np.float32)
C3 = _r.standard_normal((2, 4, 5)).astype(np.float32)
I = np.array([2, 0, 1])
L = np.array([[1, 0, 3], [2, 2, 0]])
MASK = A > 0


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _log_softmax(x, axis):
    return (
        x
        - x.max(axis, keepdims=True)
        - np.log(np.exp(x - x.max(axis, keepdims=True)).sum(axis, keepdims=True))
    )


# (id, ember call on tensors, numpy reference on arrays, inputs)
ROWS = [
    # ---- creation ----
    ("zeros", lambda t: t.zeros(2, 3), lambda: np.zeros((2, 3), np.float32), ()),
    ("zeros-tuple", lambda t: t.zeros((2, 3)), lambda: np.zeros((2, 3), np.float32), ()),
    ("ones-dtype", lambda t: t.ones(2, dtype=t.int64), lambda: np.ones(2, np.int64), ()),
    ("full", lambda t: t.full((2, 2), 7.0), lambda: np.full((2, 2), 7.0, np.float32), ()),
    ("arange", lambda t: t.arange(5), lambda: np.arange(5), ()),
    ("arange-float", lambda t: t.arange(0, 1, 0.25), lambda: np.arange(0, 1, 0.25, dtype=np.float32), ()),
    ("linspace", lambda t: t.linspace(0, 1, 5), lambda: np.linspace(0, 1, 5, dtype=np.float32), ()),
    ("logspace", lambda t: t.logspace(0, 2, 3), lambda: np.logspace(0, 2, 3, dtype=np.float32), ()),
    ("eye", lambda t: t.eye(3), lambda: np.eye(3, dtype=np.float32), ()),
    ("eye-rect", lambda t: t.eye(2, 3), lambda: np.eye(2, 3, dtype=np.float32), ()),
    ("tensor-list", lambda t: t.tensor([[1, 2], [3, 4]]), lambda: np.array([[1, 2], [3, 4]]), ()),
    ("tensor-float", lambda t: t.tensor([1.0, 2.0]), lambda: np.array([1.0, 2.0], np.float32), ()),
    ("tensor-bool", lambda t: t.tensor([True, False]), lambda: np.array([True, False]), ()),
    ("from_numpy", lambda t: t.from_numpy(np.arange(3.0)), lambda: np.arange(3.0), ()),
    ("zeros_like", lambda t, a: t.zeros_like(a), lambda a: np.zeros_like(a), (A,)),
    ("ones_like", lambda t, a: t.ones_like(a), lambda a: np.ones_like(a), (A,)),
    ("full_like", lambda t, a: t.full_like(a, 3), lambda a: np.full_like(a, 3), (A,)),
    ("empty-shape", lambda t: t.empty(2, 3).shape, lambda: (2, 3), ()),
    ("new_zeros", lambda t, a: a.new_zeros(2), lambda a: np.zeros(2, np.float32), (A,)),
    ("new_ones", lambda t, a: a.new_ones((2, 2)), lambda a: np.ones((2, 2), np.float32), (A,)),
    ("new_full", lambda t, a: a.new_full((2,), 5.0), lambda a: np.full(2, 5.0, np.float32), (A,)),
    ("new_tensor", lambda t, a: a.new_tensor([1, 2]), lambda a: np.array([1.0, 2.0], np.float32), (A,)),
    ("randn-shape", lambda t: t.randn(4, 5).shape, lambda: (4, 5), ()),
    ("rand-range", lambda t: bool(((t.rand(100) >= 0) & (t.rand(100) < 1)).all()), lambda: True, ()),
    ("randint-range", lambda t: int(t.randint(3, 6, (50,)).min()) >= 3, lambda: True, ()),
    ("randperm-sorted", lambda t: t.sort(t.randperm(6))[0], lambda: np.arange(6), ()),
    ("clone", lambda t, a: a.clone(), lambda a: a.copy(), (A,)),
    # ---- metadata ----
    ("size", lambda t, a: a.size(), lambda a: (3, 4), (A,)),
    ("size-dim", lambda t, a: a.size(1), lambda a: 4, (A,)),
    ("shape", lambda t, a: a.shape[0], lambda a: 3, (A,)),
    ("numel", lambda t, a: a.numel(), lambda a: 12, (A,)),
    ("dim", lambda t, a: a.dim(), lambda a: 2, (A,)),
    ("ndim", lambda t, a: a.ndim, lambda a: 2, (A,)),
    ("dtype", lambda t, a: a.dtype == t.float32, lambda a: True, (A,)),
    ("is_floating_point", lambda t, a: a.is_floating_point(), lambda a: True, (A,)),
    ("torch.is_tensor", lambda t, a: t.is_tensor(a), lambda a: True, (A,)),
    ("torch.numel", lambda t, a: t.numel(a), lambda a: 12, (A,)),
    ("element_size", lambda t, a: a.element_size(), lambda a: 4, (A,)),
    ("type", lambda t, a: a.type(), lambda a: "ember.FloatTensor", (A,)),
    ("is_contiguous", lambda t, a: a.t().is_contiguous(), lambda a: False, (A,)),
    ("len", lambda t, a: len(a), lambda a: 3, (A,)),
    ("item", lambda t, a: a[0, 0].item(), lambda a: float(a[0, 0]), (A,)),
    ("tolist", lambda t, a: a[0].tolist(), lambda a: a[0].tolist(), (A,)),
    ("numpy", lambda t, a: a.numpy(), lambda a: a, (A,)),
    ("device", lambda t, a: str(a.device), lambda a: "cpu", (A,)),
    # ---- dtype and device ----
    ("float", lambda t, a: a.float(), lambda a: a.astype(np.float32), (L,)),
    ("double", lambda t, a: a.double(), lambda a: a.astype(np.float64), (A,)),
    ("long", lambda t, a: a.long(), lambda a: a.astype(np.int64), (A,)),
    ("int", lambda t, a: a.int(), lambda a: a.astype(np.int32), (A,)),
    ("bool", lambda t, a: a.bool(), lambda a: a.astype(bool), (A,)),
    ("half", lambda t, a: a.half().float(), lambda a: a.astype(np.float16).astype(np.float32), (A,)),
    ("to-dtype", lambda t, a: a.to(t.float64), lambda a: a.astype(np.float64), (A,)),
    ("to-device", lambda t, a: a.to("cpu"), lambda a: a, (A,)),
    ("cpu", lambda t, a: a.cpu(), lambda a: a, (A,)),
    ("type-cast", lambda t, a: a.type(t.int64), lambda a: a.astype(np.int64), (A,)),
    ("type_as", lambda t, a, b: a.type_as(b), lambda a, b: a.astype(np.int64), (A, L)),
    # ---- arithmetic ----
    ("add", lambda t, a, b: a + b, lambda a, b: a + b, (A, B)),
    ("add-scalar", lambda t, a: a + 1, lambda a: a + np.float32(1), (A,)),
    ("radd", lambda t, a: 1 + a, lambda a: np.float32(1) + a, (A,)),
    ("add-alpha", lambda t, a, b: t.add(a, b, alpha=2), lambda a, b: a + 2 * b, (A, B)),
    ("sub", lambda t, a, b: a - b, lambda a, b: a - b, (A, B)),
    ("rsub", lambda t, a: 1 - a, lambda a: np.float32(1) - a, (A,)),
    ("mul", lambda t, a, b: a * b, lambda a, b: a * b, (A, B)),
    ("mul-broadcast", lambda t, a, v: a * v, lambda a, v: a * v, (A, V)),
    ("div", lambda t, a, p: a / p, lambda a, p: a / p, (A, P)),
    ("rdiv", lambda t, p: 1 / p, lambda p: np.float32(1) / p, (P,)),
    ("div-int-true", lambda t, a: t.tensor([3, 4]) / 2, lambda a: np.array([1.5, 2.0], np.float32), (A,)),
    ("floordiv", lambda t, a: t.tensor([7, -7]) // 2, lambda a: np.array([3, -4]), (A,)),
    ("mod", lambda t, a: t.tensor([7, -7]) % 3, lambda a: np.array([1, 2]), (A,)),
    ("neg", lambda t, a: -a, lambda a: -a, (A,)),
    ("pow", lambda t, p: p**2, lambda p: p**2, (P,)),
    ("pow-method", lambda t, p: p.pow(0.5), lambda p: p**0.5, (P,)),
    ("rpow", lambda t, a: 2**a, lambda a: np.float32(2) ** a, (A,)),
    ("abs", lambda t, a: a.abs(), lambda a: np.abs(a), (A,)),
    ("exp", lambda t, a: t.exp(a), lambda a: np.exp(a), (A,)),
    ("log", lambda t, p: t.log(p), lambda p: np.log(p), (P,)),
    ("log1p", lambda t, p: p.log1p(), lambda p: np.log1p(p), (P,)),
    ("expm1", lambda t, a: a.expm1(), lambda a: np.expm1(a), (A,)),
    ("sqrt", lambda t, p: p.sqrt(), lambda p: np.sqrt(p), (P,)),
    ("rsqrt", lambda t, p: p.rsqrt(), lambda p: 1 / np.sqrt(p), (P,)),
    ("sin", lambda t, a: t.sin(a), lambda a: np.sin(a), (A,)),
    ("cos", lambda t, a: a.cos(), lambda a: np.cos(a), (A,)),
    ("tanh", lambda t, a: a.tanh(), lambda a: np.tanh(a), (A,)),
    ("sigmoid", lambda t, a: t.sigmoid(a), lambda a: 1 / (1 + np.exp(-a)), (A,)),
    ("relu", lambda t, a: t.relu(a), lambda a: np.maximum(a, 0), (A,)),
    ("sign", lambda t, a: a.sign(), lambda a: np.sign(a), (A,)),
    ("square", lambda t, a: a.square(), lambda a: a * a, (A,)),
    ("clamp", lambda t, a: a.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), (A,)),
    ("clamp-min", lambda t, a: a.clamp(min=0), lambda a: np.maximum(a, 0), (A,)),
    ("clamp-max", lambda t, a: t.clamp(a, max=0.1), lambda a: np.minimum(a, np.float32(0.1)), (A,)),
    ("clip", lambda t, a: a.clip(-1, 1), lambda a: np.clip(a, -1, 1), (A,)),
    ("maximum", lambda t, a, b: t.maximum(a, b), lambda a, b: np.maximum(a, b), (A, B)),
    ("minimum", lambda t, a, b: a.minimum(b), lambda a, b: np.minimum(a, b), (A, B)),
    ("max-binary", lambda t, a, b: t.max(a, b), lambda a, b: np.maximum(a, b), (A, B)),
    (
        "erf",
        lambda t, a: t.erf(a),
        lambda a: np.vectorize(__import__("math").erf)(a).astype(np.float32),
        (A,),
    ),
    ("addcmul", lambda t, a, b, p: t.addcmul(a, b, p, value=0.5), lambda a, b, p: a + 0.5 * b * p, (A, B, P)),
    ("addcdiv", lambda t, a, b, p: a.addcdiv(b, p, value=2), lambda a, b, p: a + 2 * b / p, (A, B, P)),
    ("lerp", lambda t, a, b: t.lerp(a, b, 0.3), lambda a, b: a + np.float32(0.3) * (b - a), (A, B)),
    ("lerp-tensor", lambda t, a, b, p: a.lerp(b, p), lambda a, b, p: a + p * (b - a), (A, B, P)),
    # ---- comparison and logic ----
    ("gt", lambda t, a, b: a > b, lambda a, b: a > b, (A, B)),
    ("ge-scalar", lambda t, a: a >= 0, lambda a: a >= 0, (A,)),
    ("lt", lambda t, a, b: t.lt(a, b), lambda a, b: a < b, (A, B)),
    ("le", lambda t, a, b: a.le(b), lambda a, b: a <= b, (A, B)),
    ("eq", lambda t, a: a.eq(a), lambda a: np.ones_like(a, bool), (A,)),
    ("ne", lambda t, a, b: a != b, lambda a, b: a != b, (A, B)),
    ("logical_and", lambda t, a, b: t.logical_and(a > 0, b > 0), lambda a, b: (a > 0) & (b > 0), (A, B)),
    ("and-op", lambda t, a, b: (a > 0) & (b > 0), lambda a, b: (a > 0) & (b > 0), (A, B)),
    ("or-op", lambda t, a, b: (a > 0) | (b > 0), lambda a, b: (a > 0) | (b > 0), (A, B)),
    ("invert", lambda t, a: ~(a > 0), lambda a: ~(a > 0), (A,)),
    ("logical_not", lambda t, a: t.logical_not(a > 0), lambda a: ~(a > 0), (A,)),
    ("isnan", lambda t: t.isnan(t.tensor([1.0, float("nan")])), lambda: np.array([False, True]), ()),
    ("isinf", lambda t: t.isinf(t.tensor([1.0, float("inf")])), lambda: np.array([False, True]), ()),
    ("isfinite", lambda t: t.isfinite(t.tensor([1.0, float("inf")])), lambda: np.array([True, False]), ()),
    ("allclose", lambda t, a: t.allclose(a, a * (1 + 1e-7)), lambda a: True, (A,)),
    ("equal", lambda t, a: t.equal(a, a.clone()), lambda a: True, (A,)),
    ("where", lambda t, a, b: t.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b), (A, B)),
    ("where-scalar", lambda t, a: t.where(a > 0, a, 0.0), lambda a: np.where(a > 0, a, np.float32(0)), (A,)),
    ("any", lambda t, a: (a > 2).any(), lambda a: np.any(a > 2), (A,)),
    ("all-dim", lambda t, a: (a > -5).all(dim=1), lambda a: np.all(a > -5, axis=1), (A,)),
    ("count_nonzero", lambda t, a: t.count_nonzero(a > 0), lambda a: np.count_nonzero(a > 0), (A,)),
    # ---- reductions ----
    ("sum", lambda t, a: a.sum(), lambda a: a.sum(), (A,)),
    ("sum-dim", lambda t, a: a.sum(dim=1), lambda a: a.sum(1), (A,)),
    ("sum-keepdim", lambda t, a: t.sum(a, 0, keepdim=True), lambda a: a.sum(0, keepdims=True), (A,)),
    ("sum-dims", lambda t, b3: b3.sum((0, 2)), lambda b3: b3.sum((0, 2)), (B3,)),
    ("mean", lambda t, a: a.mean(), lambda a: a.mean(), (A,)),
    ("mean-dim", lambda t, a: a.mean(-1), lambda a: a.mean(-1), (A,)),
    ("prod", lambda t, p: p.prod(1), lambda p: p.prod(1), (P,)),
    ("std", lambda t, a: a.std(), lambda a: a.std(ddof=1), (A,)),
    ("std-unbiased", lambda t, a: a.std(unbiased=False), lambda a: a.std(), (A,)),
    ("var-dim", lambda t, a: a.var(0), lambda a: a.var(0, ddof=1), (A,)),
    ("var-correction", lambda t, a: t.var(a, 1, correction=0), lambda a: a.var(1), (A,)),
    ("max", lambda t, a: a.max(), lambda a: a.max(), (A,)),
    ("max-dim", lambda t, a: a.max(dim=1), lambda a: (a.max(1), a.argmax(1)), (A,)),
    ("max-dim-values", lambda t, a: t.max(a, 0).values, lambda a: a.max(0), (A,)),
    ("min-dim-indices", lambda t, a: a.min(1).indices, lambda a: a.argmin(1), (A,)),
    ("amax", lambda t, a: a.amax(1), lambda a: a.max(1), (A,)),
    ("amin", lambda t, a: t.amin(a, (0, 1)), lambda a: a.min(), (A,)),
    ("argmax", lambda t, a: a.argmax(), lambda a: np.int64(a.argmax()), (A,)),
    ("argmax-keepdim", lambda t, a: a.argmax(dim=1, keepdim=True), lambda a: a.argmax(1)[:, None], (A,)),
    ("argmin", lambda t, a: t.argmin(a, 0), lambda a: a.argmin(0), (A,)),
    ("logsumexp", lambda t, a: t.logsumexp(a, 1), lambda a: np.log(np.exp(a).sum(1)), (A,)),
    ("cumsum", lambda t, a: a.cumsum(0), lambda a: a.cumsum(0), (A,)),
    ("cumprod", lambda t, p: t.cumprod(p, 1), lambda p: p.cumprod(1), (P,)),
    ("norm", lambda t, a: a.norm(), lambda a: np.linalg.norm(a), (A,)),
    ("norm-p1-dim", lambda t, a: t.norm(a, p=1, dim=1), lambda a: np.abs(a).sum(1), (A,)),
    (
        "norm-keepdim",
        lambda t, a: a.norm(dim=1, keepdim=True),
        lambda a: np.linalg.norm(a, axis=1)[:, None],
        (A,),
    ),
    ("var_mean", lambda t, a: t.var_mean(a, 1), lambda a: (a.var(1, ddof=1), a.mean(1)), (A,)),
    ("std_mean", lambda t, a: t.std_mean(a), lambda a: (a.std(ddof=1), a.mean()), (A,)),
    ("trace", lambda t, s: t.trace(s), lambda s: np.trace(s), (SQ,)),
    # ---- shapes ----
    ("view", lambda t, a: a.view(4, 3), lambda a: a.reshape(4, 3), (A,)),
    ("view-minus1", lambda t, a: a.view(-1), lambda a: a.reshape(-1), (A,)),
    ("view-contiguous", lambda t, a: a.t().contiguous().view(-1), lambda a: a.T.reshape(-1), (A,)),
    ("reshape", lambda t, a: a.reshape(2, -1), lambda a: a.reshape(2, -1), (A,)),
    ("reshape-tuple", lambda t, a: t.reshape(a, (6, 2)), lambda a: a.reshape(6, 2), (A,)),
    ("view_as", lambda t, a, b3: a.view_as(b3[0]), lambda a, b3: a, (A, B3)),
    ("flatten", lambda t, b3: b3.flatten(), lambda b3: b3.reshape(-1), (B3,)),
    ("flatten-1", lambda t, b3: t.flatten(b3, 1), lambda b3: b3.reshape(2, -1), (B3,)),
    ("unflatten", lambda t, a: a.unflatten(1, (2, 2)), lambda a: a.reshape(3, 2, 2), (A,)),
    ("t", lambda t, a: a.t(), lambda a: a.T, (A,)),
    ("T", lambda t, a: a.T, lambda a: a.T, (A,)),
    ("mT", lambda t, b3: b3.mT, lambda b3: b3.transpose(0, 2, 1), (B3,)),
    ("transpose", lambda t, b3: b3.transpose(0, 2), lambda b3: b3.transpose(2, 1, 0), (B3,)),
    ("permute", lambda t, b3: b3.permute(2, 0, 1), lambda b3: b3.transpose(2, 0, 1), (B3,)),
    ("permute-tuple", lambda t, b3: t.permute(b3, (1, 2, 0)), lambda b3: b3.transpose(1, 2, 0), (B3,)),
    ("swapaxes", lambda t, b3: b3.swapaxes(0, 1), lambda b3: b3.swapaxes(0, 1), (B3,)),
    ("movedim", lambda t, b3: t.movedim(b3, 0, -1), lambda b3: np.moveaxis(b3, 0, -1), (B3,)),
    ("unsqueeze", lambda t, a: a.unsqueeze(1), lambda a: a[:, None], (A,)),
    ("unsqueeze-neg", lambda t, v: t.unsqueeze(v, -1), lambda v: v[:, None], (V,)),
    ("squeeze", lambda t, a: a[:, :1].squeeze(), lambda a: a[:, 0], (A,)),
    ("squeeze-dim", lambda t, a: a[None].squeeze(0), lambda a: a, (A,)),
    ("expand", lambda t, v: v.expand(3, 4), lambda v: np.broadcast_to(v, (3, 4)), (V,)),
    ("expand-minus1", lambda t, a: a[:, :1].expand(-1, 5), lambda a: np.broadcast_to(a[:, :1], (3, 5)), (A,)),
    ("expand_as", lambda t, v, a: v.expand_as(a), lambda v, a: np.broadcast_to(v, a.shape), (V, A)),
    ("repeat", lambda t, v: v.repeat(2, 1), lambda v: np.tile(v, (2, 1)), (V,)),
    ("tile", lambda t, a: t.tile(a, (1, 2)), lambda a: np.tile(a, (1, 2)), (A,)),
    ("repeat_interleave", lambda t, v: v.repeat_interleave(2), lambda v: np.repeat(v, 2), (V,)),
    ("cat", lambda t, a, b: t.cat([a, b], 0), lambda a, b: np.concatenate([a, b], 0), (A, B)),
    ("cat-dim1", lambda t, a, b: t.cat((a, b), dim=1), lambda a, b: np.concatenate([a, b], 1), (A, B)),
    ("concat", lambda t, a, b: t.concat([a, b]), lambda a, b: np.concatenate([a, b]), (A, B)),
    ("stack", lambda t, a, b: t.stack([a, b]), lambda a, b: np.stack([a, b]), (A, B)),
    ("stack-dim", lambda t, a, b: t.stack([a, b], dim=2), lambda a, b: np.stack([a, b], 2), (A, B)),
    ("hstack", lambda t, a, b: t.hstack([a, b]), lambda a, b: np.hstack([a, b]), (A, B)),
    ("vstack", lambda t, a, b: t.vstack([a, b]), lambda a, b: np.vstack([a, b]), (A, B)),
    ("chunk", lambda t, a: a.chunk(2, dim=1), lambda a: tuple(np.split(a, 2, 1)), (A,)),
    ("split-size", lambda t, a: a.split(2), lambda a: (a[:2], a[2:]), (A,)),
    ("split-sections", lambda t, a: t.split(a, [1, 3], dim=1), lambda a: (a[:, :1], a[:, 1:]), (A,)),
    ("unbind", lambda t, a: a.unbind(0), lambda a: tuple(a), (A,)),
    ("narrow", lambda t, a: a.narrow(1, 1, 2), lambda a: a[:, 1:3], (A,)),
    ("flip", lambda t, a: a.flip(0), lambda a: a[::-1], (A,)),
    ("flip-dims", lambda t, a: t.flip(a, [0, 1]), lambda a: a[::-1, ::-1], (A,)),
    ("fliplr", lambda t, a: t.fliplr(a), lambda a: a[:, ::-1], (A,)),
    ("roll", lambda t, a: a.roll(1, 1), lambda a: np.roll(a, 1, 1), (A,)),
    ("roll-flat", lambda t, a: t.roll(a, 2), lambda a: np.roll(a, 2), (A,)),
    ("broadcast_to", lambda t, v: t.broadcast_to(v, (2, 4)), lambda v: np.broadcast_to(v, (2, 4)), (V,)),
    ("diagonal", lambda t, s: s.diagonal(), lambda s: np.diagonal(s), (SQ,)),
    # ---- indexing ----
    ("index-int", lambda t, a: a[1], lambda a: a[1], (A,)),
    ("index-slice", lambda t, a: a[:, 1:3], lambda a: a[:, 1:3], (A,)),
    ("index-step", lambda t, a: a[::2], lambda a: a[::2], (A,)),
    ("index-ellipsis", lambda t, b3: b3[..., 0], lambda b3: b3[..., 0], (B3,)),
    ("index-none", lambda t, a: a[None, :, None].shape, lambda a: (1, 3, 1, 4), (A,)),
    ("index-tensor", lambda t, a, i: a[i], lambda a, i: a[i], (A, I)),
    ("index-mask", lambda t, a, m: a[m], lambda a, m: a[m], (A, MASK)),
    ("index-pair", lambda t, a, i: a[i, i], lambda a, i: a[i, i], (A, I)),
    ("index-list", lambda t, a: a[[0, 2]], lambda a: a[[0, 2]], (A,)),
    ("index_select", lambda t, a, i: a.index_select(0, i), lambda a, i: a[i], (A, I)),
    ("gather", lambda t, a, l: a.gather(1, l.t()), lambda a, l: np.take_along_axis(a, l.T, 1), (A, L)),
    (
        "take_along_dim",
        lambda t, a, l: t.take_along_dim(a, l.t(), 1),
        lambda a, l: np.take_along_axis(a, l.T, 1),
        (A, L),
    ),
    (
        "masked_fill",
        lambda t, a, m: a.masked_fill(m, 0.0),
        lambda a, m: np.where(m, np.float32(0), a),
        (A, MASK),
    ),
    ("masked_select", lambda t, a, m: t.masked_select(a, m), lambda a, m: a[m], (A, MASK)),
    ("nonzero", lambda t, m: m.nonzero(), lambda m: np.argwhere(m), (MASK,)),
    ("nonzero-tuple", lambda t, m: t.nonzero(m, as_tuple=True), lambda m: np.nonzero(m), (MASK,)),
    (
        "index_fill",
        lambda t, a: a.index_fill(1, t.tensor([0, 2]), -1.0),
        lambda a: np.where(np.isin(np.arange(4), [0, 2]), np.float32(-1), a),
        (A,),
    ),
    (
        "scatter",
        lambda t, a, l: t.zeros(3, 4).scatter(1, l.t()[:, :1], 1.0),
        lambda a, l: _scatter_rows(l.T[:, :1]),
        (A, L),
    ),
    (
        "scatter_add",
        lambda t, a: t.zeros(3).scatter_add(0, t.tensor([0, 0, 2]), t.ones(3)),
        lambda a: np.array([2.0, 0.0, 1.0], np.float32),
        (A,),
    ),
    (
        "index_add",
        lambda t, a: t.zeros(3, 4).index_add(0, t.tensor([0, 0]), a[:2]),
        lambda a: np.stack([a[0] + a[1], np.zeros(4, np.float32), np.zeros(4, np.float32)]),
        (A,),
    ),
    ("sort", lambda t, a: a.sort(1), lambda a: (np.sort(a, 1), np.argsort(a, 1)), (A,)),
    ("sort-desc", lambda t, a: t.sort(a, descending=True).values, lambda a: -np.sort(-a, -1), (A,)),
    ("argsort", lambda t, a: a.argsort(0), lambda a: np.argsort(a, 0), (A,)),
    ("topk", lambda t, a: a.topk(2).values, lambda a: -np.sort(-a, 1)[:, :2], (A,)),
    ("topk-indices", lambda t, a: t.topk(a, 1, dim=0).indices, lambda a: a.argmax(0)[None], (A,)),
    ("kthvalue", lambda t, a: a.kthvalue(2, 1).values, lambda a: np.sort(a, 1)[:, 1], (A,)),
    ("unique", lambda t: t.unique(t.tensor([3, 1, 3, 2])), lambda: np.array([1, 2, 3]), ()),
    ("bincount", lambda t: t.bincount(t.tensor([0, 2, 2])), lambda: np.array([1, 0, 2]), ()),
    (
        "searchsorted",
        lambda t: t.searchsorted(t.tensor([1, 3, 5]), t.tensor([2, 5])),
        lambda: np.array([1, 2]),
        (),
    ),
    # ---- linear algebra ----
    ("matmul-op", lambda t, a, m: a @ m, lambda a, m: a @ m, (A, M)),
    ("matmul", lambda t, a, m: t.matmul(a, m), lambda a, m: a @ m, (A, M)),
    ("mm", lambda t, a, m: a.mm(m), lambda a, m: a @ m, (A, M)),
    ("mv", lambda t, a, v: t.mv(a, v), lambda a, v: a @ v, (A, V)),
    ("bmm", lambda t, b3, c3: t.bmm(b3, c3), lambda b3, c3: b3 @ c3, (B3, C3)),
    ("matmul-batched", lambda t, b3, m: b3 @ m, lambda b3, m: b3 @ m, (B3, M)),
    ("dot", lambda t, v: t.dot(v, v), lambda v: v @ v, (V,)),
    ("vdot", lambda t, v: v.vdot(v), lambda v: v @ v, (V,)),
    ("inner", lambda t, a, v: t.inner(a, v), lambda a, v: a @ v, (A, V)),
    ("outer", lambda t, v: t.outer(v, v), lambda v: np.outer(v, v), (V,)),
    ("ger", lambda t, v: v.ger(v), lambda v: np.outer(v, v), (V,)),
    ("einsum", lambda t, a, m: t.einsum("ij,jk->ik", a, m), lambda a, m: a @ m, (A, M)),
    ("einsum-batch", lambda t, b3, c3: t.einsum("bij,bjk->bik", b3, c3), lambda b3, c3: b3 @ c3, (B3, C3)),
    ("tensordot", lambda t, a, m: t.tensordot(a, m, dims=1), lambda a, m: np.tensordot(a, m, 1), (A, M)),
    # ---- softmax family and nn.functional ----
    ("softmax", lambda t, a: t.softmax(a, dim=1), lambda a: _softmax(a, 1), (A,)),
    ("softmax-method", lambda t, a: a.softmax(-1), lambda a: _softmax(a, -1), (A,)),
    ("log_softmax", lambda t, a: F.log_softmax(a, dim=0), lambda a: _log_softmax(a, 0), (A,)),
    ("F.relu", lambda t, a: F.relu(a), lambda a: np.maximum(a, 0), (A,)),
    (
        "F.leaky_relu",
        lambda t, a: F.leaky_relu(a, 0.1),
        lambda a: np.where(a > 0, a, np.float32(0.1) * a),
        (A,),
    ),
    ("F.elu", lambda t, a: F.elu(a), lambda a: np.where(a > 0, a, np.expm1(a)), (A,)),
    ("F.silu", lambda t, a: F.silu(a), lambda a: a / (1 + np.exp(-a)), (A,)),
    ("F.softplus", lambda t, a: F.softplus(a), lambda a: np.log1p(np.exp(a)), (A,)),
    ("F.hardtanh", lambda t, a: F.hardtanh(a), lambda a: np.clip(a, -1, 1), (A,)),
    ("F.relu6", lambda t, a: F.relu6(a * 10), lambda a: np.clip(a * 10, 0, 6), (A,)),
    ("F.logsigmoid", lambda t, a: F.logsigmoid(a), lambda a: -np.log1p(np.exp(-a)), (A,)),
    (
        "F.normalize",
        lambda t, a: F.normalize(a, dim=1),
        lambda a: a / np.linalg.norm(a, axis=1, keepdims=True),
        (A,),
    ),
    ("F.one_hot", lambda t: F.one_hot(t.tensor([0, 2]), 3), lambda: np.array([[1, 0, 0], [0, 0, 1]]), ()),
    ("F.pad", lambda t, a: F.pad(a, (1, 1)), lambda a: np.pad(a, ((0, 0), (1, 1))), (A,)),
    (
        "F.pad-value",
        lambda t, a: F.pad(a, (0, 1, 1, 0), value=2.0),
        lambda a: np.pad(a, ((1, 0), (0, 1)), constant_values=2),
        (A,),
    ),
    ("F.linear", lambda t, a, m: F.linear(a, m.t()), lambda a, m: a @ m, (A, M)),
    ("F.mse_loss", lambda t, a, b: F.mse_loss(a, b), lambda a, b: ((a - b) ** 2).mean(), (A, B)),
    (
        "F.l1_loss-sum",
        lambda t, a, b: F.l1_loss(a, b, reduction="sum"),
        lambda a, b: np.abs(a - b).sum(),
        (A, B),
    ),
    (
        "F.cross_entropy",
        lambda t, a: F.cross_entropy(a, t.tensor([0, 3, 1])),
        lambda a: -_log_softmax(a, 1)[[0, 1, 2], [0, 3, 1]].mean(),
        (A,),
    ),
    (
        "F.nll_loss",
        lambda t, a: F.nll_loss(F.log_softmax(a, 1), t.tensor([1, 1, 2])),
        lambda a: -_log_softmax(a, 1)[[0, 1, 2], [1, 1, 2]].mean(),
        (A,),
    ),
    (
        "F.bce_with_logits",
        lambda t, a, p: F.binary_cross_entropy_with_logits(a, p / 2),
        lambda a, p: (np.maximum(a, 0) - a * p / 2 + np.log1p(np.exp(-np.abs(a)))).mean(),
        (A, P),
    ),
    (
        "F.cosine_similarity",
        lambda t, a, b: F.cosine_similarity(a, b),
        lambda a, b: (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1),
        (A, B),
    ),
    (
        "F.kl_div",
        lambda t, a: F.kl_div(F.log_softmax(a, 1), t.full((3, 4), 0.25), reduction="batchmean"),
        lambda a: np.float32((0.25 * (np.log(0.25) - _log_softmax(a, 1))).sum() / 3),
        (A,),
    ),
    ("F.dropout-eval", lambda t, a: F.dropout(a, 0.5, training=False), lambda a: a, (A,)),
    (
        "F.interpolate",
        lambda t, a: F.interpolate(a[None, None], scale_factor=2),
        lambda a: a.repeat(2, 0).repeat(2, 1)[None, None],
        (A,),
    ),
    (
        "F.adaptive_avg_pool2d",
        lambda t, b3: F.adaptive_avg_pool2d(b3[None], 1),
        lambda b3: b3.mean((1, 2)).reshape(1, 2, 1, 1),
        (B3,),
    ),
    (
        "F.avg_pool2d",
        lambda t, b3: F.avg_pool2d(b3[None], 2),
        lambda b3: b3[:, :2].reshape(2, 1, 2, 2, 2).mean((2, 4))[None],
        (B3,),
    ),
    (
        "F.max_pool2d",
        lambda t, b3: F.max_pool2d(b3[None], 2),
        lambda b3: b3[:, :2].reshape(2, 1, 2, 2, 2).max((2, 4))[None],
        (B3,),
    ),
    # ---- in place ----
    ("add_", lambda t, a, b: a.clone().add_(b), lambda a, b: a + b, (A, B)),
    ("add_-alpha", lambda t, a, b: a.clone().add_(b, alpha=-0.5), lambda a, b: a - 0.5 * b, (A, B)),
    ("mul_", lambda t, a: a.clone().mul_(2), lambda a: a * 2, (A,)),
    ("sub_", lambda t, a, b: a.clone().sub_(b), lambda a, b: a - b, (A, B)),
    ("div_", lambda t, a, p: a.clone().div_(p), lambda a, p: a / p, (A, P)),
    ("iadd", lambda t, a, b: _iop(a.clone(), b), lambda a, b: a + b, (A, B)),
    ("zero_", lambda t, a: a.clone().zero_(), lambda a: np.zeros_like(a), (A,)),
    ("fill_", lambda t, a: a.clone().fill_(3.0), lambda a: np.full_like(a, 3.0), (A,)),
    ("clamp_", lambda t, a: a.clone().clamp_(min=0), lambda a: np.maximum(a, 0), (A,)),
    ("copy_", lambda t, a, b: a.clone().copy_(b), lambda a, b: b, (A, B)),
    (
        "masked_fill_",
        lambda t, a, m: a.clone().masked_fill_(m, 1.0),
        lambda a, m: np.where(m, np.float32(1), a),
        (A, MASK),
    ),
    (
        "addcmul_",
        lambda t, a, b, p: a.clone().addcmul_(b, p, value=2),
        lambda a, b, p: a + 2 * b * p,
        (A, B, P),
    ),
    ("addcdiv_", lambda t, a, b, p: a.clone().addcdiv_(b, p), lambda a, b, p: a + b / p, (A, B, P)),
    ("lerp_", lambda t, a, b: a.clone().lerp_(b, 0.5), lambda a, b: a + np.float32(0.5) * (b - a), (A, B)),
    (
        "scatter_",
        lambda t, a: t.zeros(2, 3).scatter_(1, t.tensor([[2], [0]]), 5.0),
        lambda a: np.array([[0, 0, 5], [5, 0, 0]], np.float32),
        (A,),
    ),
    (
        "index_fill_",
        lambda t, a: a.clone().index_fill_(0, t.tensor([1]), 0.0),
        lambda a: np.where(np.arange(3)[:, None] == 1, np.float32(0), a),
        (A,),
    ),
    ("uniform_-range", lambda t: bool((t.empty(100).uniform_(2, 3) >= 2).all()), lambda: True, ()),
    ("normal_-shape", lambda t: t.empty(2, 3).normal_().shape, lambda: (2, 3), ()),
    ("data-add_", lambda t, a: _data_add(t, a), lambda a: a + 1, (A,)),
    ("detach", lambda t, a: a.detach(), lambda a: a, (A,)),
    ("requires_grad_", lambda t, a: a.clone().requires_grad_().requires_grad, lambda a: True, (A,)),
]


def _scatter_rows(idx):
    out = np.zeros((3, 4), np.float32)
    out[np.arange(3)[:, None], idx] = 1.0
    return out


def _iop(a, b):
    a += b
    return a


def _data_add(t, a):
    p = a.clone().requires_grad_()
    p.data.add_(1.0)
    return p.detach()


def _to_tensor(x):
    return torch.tensor(x) if isinstance(x, np.ndarray) else x


def _compare(got, ref, name):
    if isinstance(ref, tuple):
        if all(isinstance(r, int) for r in ref):  # a shape
            assert tuple(got) == ref, f"{name}: {tuple(got)} != {ref}"
            return
        assert len(got) == len(ref), name
        for g, r in zip(got, ref):
            _compare(g, r, name)
        return
    if isinstance(got, (torch.Tensor, np.ndarray)):
        g = got.detach().numpy() if isinstance(got, torch.Tensor) else got
        r = np.asarray(ref)
        assert g.shape == r.shape, f"{name}: shape {g.shape} != {r.shape}"
        assert g.dtype.kind == r.dtype.kind or (g.dtype.kind in "iu" and r.dtype.kind in "iu"), (
            f"{name}: dtype {g.dtype} vs {r.dtype}"
        )
        if g.dtype.kind == "f":
            assert g.dtype == (r.dtype if r.dtype.kind == "f" else g.dtype), (
                f"{name}: dtype {g.dtype} vs {r.dtype}"
            )
            np.testing.assert_allclose(g, r, rtol=2e-5, atol=2e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(g, r, err_msg=name)
        return
    if isinstance(ref, float):
        assert got == pytest.approx(ref, rel=1e-6), name
        return
    assert got == ref, f"{name}: {got!r} != {ref!r}"


def test_the_table_is_a_couple_of_hundred_distinct_one_liners():
    names = [r[0] for r in ROWS]
    assert len(names) == len(set(names)) and len(names) >= 200


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_one_liner(row):
    name, call, ref, inputs = row
    got = call(torch, *[_to_tensor(x) for x in inputs])
    _compare(got, ref(*[np.array(x) for x in inputs]), name)
