"""The registry of op specs that the gradient and device tests walk.

``SPECS`` maps the name of every differentiable ``Function`` in the op library
(``ember.registry.differentiable_ops()``) to sample calls that exercise it;
``COMPOSITES`` does the same for public functions built from several Functions.
A spec holds its inputs as numpy arrays: float arrays become float64 tensors that
require grad, every other array (indices, masks) a constant tensor on the same device,
so one spec runs unchanged on the CPU, the stand-in device and a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import ember
from ember.ops_index import IndexBackward
from ember.ops_shape import sum_to

_rng = np.random.default_rng(20240601)


def rn(*shape):
    """Standard normal values."""
    return _rng.standard_normal(shape)


def pos(*shape):
    """Positive values away from 0 (log, sqrt, division)."""
    return _rng.uniform(0.5, 2.0, shape)


def away(*shape):
    """Values at least 0.2 away from 0 (kinks at 0: abs, relu...)."""
    return _rng.uniform(0.2, 1.5, shape) * _rng.choice([-1.0, 1.0], shape)


def distinct(*shape):
    """Values at least 0.1 apart (no ties for max, sort, topk)."""
    n = int(np.prod(shape, dtype=int))
    return (_rng.permutation(n) * 0.37 - 0.5 * n * 0.37 + _rng.uniform(0, 0.05, n)).reshape(shape)


@dataclass
class Spec:
    """``fn(*tensors)`` on ``args``; ``smooth`` specs also get a second-derivative check."""

    fn: object
    args: tuple
    smooth: bool = True
    id: str = ""
    tol: dict = field(default_factory=dict)

    def inputs(self, device="cpu"):
        out = []
        for a in self.args:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                out.append(ember.tensor(a, dtype=ember.float64, device=device, requires_grad=True))
            elif isinstance(a, np.ndarray):
                out.append(ember.tensor(a, device=device))
            else:
                out.append(a)
        return tuple(out)


def S(fn, *args, smooth=True, id="", **tol):
    return Spec(fn, args, smooth, id, tol)


def K(fn, *args, id="", **tol):
    """A spec with a kink (abs, relu, max, sort...): first derivatives only."""
    return Spec(fn, args, False, id, tol)


_B = np.array([[True, False, True], [False, True, True]])
_IDX = np.array([2, 0, 2])

SPECS: dict[str, list[Spec]] = {
    # ---- arithmetic, with broadcasting and Python scalars on either side
    "Add": [
        S(lambda a, b: a + b, rn(2, 3), rn(2, 3), id="same"),
        S(lambda a, b: a + b, rn(2, 3), rn(3), id="bcast-row"),
        S(lambda a, b: a + b, rn(2, 1), rn(1, 3), id="bcast-outer"),
        S(lambda a, b: a + b, rn(), rn(2), id="0d"),
        S(lambda a: 2.5 + a, rn(3), id="rscalar"),
        S(lambda a, b: ember.add(a, b, alpha=2), rn(3), rn(3), id="alpha"),
    ],
    "Sub": [
        S(lambda a, b: a - b, rn(2, 3), rn(3), id="bcast"),
        S(lambda a: 1.5 - a, rn(2, 2), id="rscalar"),
        S(lambda a: a - 1, rn(2), id="scalar"),
    ],
    "Mul": [
        S(lambda a, b: a * b, rn(2, 3), rn(2, 1), id="bcast"),
        S(lambda a: 3 * a, rn(2), id="rscalar"),
        S(lambda a: a * a, rn(3), id="same-tensor"),
        S(lambda a: ember.square(a), rn(2, 2), id="square"),
    ],
    "Div": [
        S(lambda a, b: a / b, rn(2, 3), pos(3), id="bcast"),
        S(lambda a: 2.0 / a, pos(3), id="rscalar"),
        S(lambda a: a / 4, rn(3), id="scalar"),
    ],
    "Pow": [
        S(lambda a, b: a**b, pos(2, 3), rn(2, 3), id="tensor-exp"),
        S(lambda a, b: a**b, pos(2, 3), rn(3), id="bcast"),
        S(lambda a: a**3, rn(2, 2), id="int-exp"),
        S(lambda a: a**2, rn(3), id="square"),
        S(lambda a: a**0.5, pos(3), id="sqrt"),
        S(lambda a: 2.0**a, rn(3), id="rpow"),
        S(lambda a: ember.pow(a, -1.5), pos(2), id="neg-exp"),
    ],
    "Remainder": [
        S(lambda a, b: a % b, np.array([2.3, -1.7, 4.1]), np.array([0.7, 0.9, 1.3]), id="tensor"),
        S(lambda a: a % 1.5, np.array([2.3, -1.7, 4.1]), id="scalar"),
    ],
    "Neg": [S(lambda a: -a, rn(2, 3)), S(lambda a: ember.neg(a), rn(), id="0d")],
    # ---- unary math
    "Exp": [S(ember.exp, rn(2, 3)), S(lambda a: a.exp(), rn(), id="0d")],
    "Log": [S(ember.log, pos(2, 3))],
    "Log1p": [S(ember.log1p, pos(2, 3))],
    "Expm1": [S(ember.expm1, rn(2, 3))],
    "Sqrt": [S(ember.sqrt, pos(2, 3))],
    "Rsqrt": [S(ember.rsqrt, pos(2, 3))],
    "Abs": [K(ember.abs, away(2, 3)), K(lambda a: abs(a), away(3), id="builtin")],
    "Sin": [S(ember.sin, rn(2, 3))],
    "Cos": [S(ember.cos, rn(2, 3))],
    "Tanh": [S(ember.tanh, rn(2, 3))],
    "Sigmoid": [
        S(ember.sigmoid, rn(2, 3)),
        S(ember.sigmoid, np.array([-30.0, -8.0, 8.0, 30.0]), id="saturated"),
    ],
    "Erf": [S(ember.erf, rn(2, 3))],
    "Tan": [S(ember.tan, rn(2, 3) * 0.5), S(lambda a: a.tan(), rn(), id="method-0d")],
    "Asin": [
        S(ember.asin, _rng.uniform(-0.8, 0.8, (2, 3))),
        S(ember.arcsin, _rng.uniform(-0.8, 0.8, 3), id="arc"),
    ],
    "Acos": [S(ember.acos, _rng.uniform(-0.8, 0.8, (2, 3)))],
    "Atan": [S(ember.atan, rn(2, 3)), S(lambda a: a.arctan(), rn(3), id="method")],
    "Sinh": [S(ember.sinh, rn(2, 3))],
    "Cosh": [S(ember.cosh, rn(2, 3))],
    "Asinh": [S(ember.asinh, rn(2, 3))],
    "Acosh": [S(ember.acosh, pos(2, 3) + 1.0)],
    "Atanh": [S(ember.atanh, _rng.uniform(-0.8, 0.8, (2, 3)))],
    "Log2": [S(ember.log2, pos(2, 3))],
    "Log10": [S(ember.log10, pos(2, 3))],
    "Exp2": [S(ember.exp2, rn(2, 3))],
    "Reciprocal": [S(ember.reciprocal, away(2, 3)), S(lambda a: a.reciprocal(), away(3), id="method")],
    "Atan2": [
        S(ember.atan2, rn(2, 3), away(2, 3)),
        S(ember.arctan2, rn(2, 3), away(3), id="bcast"),
        S(lambda a: ember.atan2(a, 2.0), rn(3), id="scalar"),
    ],
    "Hypot": [S(ember.hypot, away(2, 3), away(2, 3)), S(lambda a: ember.hypot(a, 1.5), rn(3), id="scalar")],
    "LogAddExp": [
        S(ember.logaddexp, rn(2, 3), rn(2, 3)),
        S(ember.logaddexp, rn(2, 3), rn(3), id="bcast"),
        S(lambda a: ember.logaddexp2(a, 0.5), rn(3), id="base2"),
    ],
    "Copysign": [
        K(ember.copysign, away(2, 3), away(2, 3)),
        K(lambda a: ember.copysign(a, -1.0), away(3), id="scalar"),
    ],
    "Fmod": [
        K(lambda a, b: ember.fmod(a, b), np.array([2.3, -1.7, 4.1]), np.array([0.7, 0.9, -1.3]), id="tensor"),
        K(lambda a: ember.fmod(a, 1.5), np.array([2.3, -1.7, 4.1]), id="scalar"),
    ],
    "Relu": [K(ember.relu, away(2, 3))],
    "LeakyRelu": [
        K(ember.leaky_relu, away(2, 3)),
        K(lambda a: ember.leaky_relu(a, 0.2), away(4), id="slope"),
    ],
    "Gelu": [S(ember.gelu, rn(2, 3)), S(lambda a: ember.gelu(a, approximate="tanh"), rn(2, 3), id="tanh")],
    "Softplus": [
        S(ember.softplus, rn(2, 3)),
        S(
            lambda a: ember.softplus(a, beta=2.0, threshold=3.0),
            np.array([-1.0, 0.3, 1.2, 2.5]),
            id="beta-threshold",
        ),
    ],
    "Clamp": [
        K(lambda a: ember.clamp(a, -0.5, 0.5), away(2, 3), id="both"),
        K(lambda a: ember.clamp(a, min=0.1), away(2, 3), id="min"),
        K(lambda a: ember.clamp_max(a, 0.1), away(2, 3), id="max"),
        K(lambda a: a.clip(-0.3, 0.4), away(5), id="clip"),
    ],
    "Maximum": [
        K(ember.maximum, distinct(2, 3), distinct(2, 3)),
        K(ember.maximum, distinct(2, 3), distinct(3), id="bcast"),
        K(lambda a: ember.maximum(a, 0.1), away(4), id="scalar"),
    ],
    "Minimum": [
        K(ember.minimum, distinct(2, 3), distinct(2, 1), id="bcast"),
        K(lambda a: ember.minimum(a, 0.1), away(4), id="scalar"),
    ],
    "Where": [
        S(ember.where, _B, rn(2, 3), rn(2, 3)),
        S(ember.where, _B, rn(3), rn(2, 1), id="bcast"),
        S(lambda c, a: ember.where(c, a, 0.0), _B, rn(2, 3), id="scalar-other"),
        S(lambda c, a: a.where(c, 1.0), _B, rn(2, 3), id="method"),
    ],
    # ---- reductions
    "Sum": [
        S(ember.sum, rn(2, 3), id="all"),
        S(lambda a: a.sum(1), rn(2, 3), id="dim"),
        S(lambda a: a.sum(-1, keepdim=True), rn(2, 3), id="keepdim"),
        S(lambda a: ember.sum(a, dim=(0, 2)), rn(2, 3, 2), id="dims"),
        S(lambda a: a.sum(), rn(), id="0d"),
    ],
    "Prod": [
        S(ember.prod, pos(2, 3), id="all"),
        S(lambda a: a.prod(1, keepdim=True), rn(2, 3), id="dim-keepdim"),
        S(lambda a: a.prod(0), rn(3, 2), id="dim0"),
        K(lambda a: a.prod(1), np.array([[0.0, 2.0, 3.0], [1.5, 0.0, 0.0]]), id="zeros"),
        K(lambda a: a.prod(), np.array([0.5, 0.0, 3.0]), id="zero-all"),
    ],
    "CumSum": [S(lambda a: ember.cumsum(a, 1), rn(2, 3)), S(lambda a: a.cumsum(dim=0), rn(3, 2), id="dim0")],
    "CumProd": [
        S(lambda a: ember.cumprod(a, 1), pos(2, 3) * np.sign(rn(2, 3))),
        S(lambda a: a.cumprod(-1), away(4), id="1d"),
    ],
    "AMax": [
        K(ember.max, distinct(2, 3), id="max-all"),
        K(lambda a: a.min(), distinct(2, 3), id="min-all"),
        K(lambda a: ember.amax(a, dim=(0, 2)), distinct(2, 3, 2), id="amax-dims"),
        K(lambda a: ember.amin(a, 1, keepdim=True), distinct(2, 3), id="amin-keepdim"),
        K(ember.max, np.array([1.0, 3.0, 3.0, 2.0]), id="ties"),
    ],
    "MaxDim": [
        K(lambda a: ember.max(a, dim=1).values, distinct(2, 3), id="max"),
        K(lambda a: a.min(0, keepdim=True)[0], distinct(3, 2), id="min-keepdim"),
        K(lambda a: a.max(-1)[0], distinct(2, 2, 3), id="3d"),
    ],
    "LogSumExp": [
        S(lambda a: ember.logsumexp(a, 1), rn(2, 3)),
        S(lambda a: a.logsumexp((0, 1), keepdim=True), rn(2, 3), id="dims-keepdim"),
        S(lambda a: ember.logsumexp(a), rn(3), id="all"),
    ],
    "Softmax": [S(lambda a: ember.softmax(a, -1), rn(2, 3)), S(lambda a: a.softmax(0), rn(3, 2), id="dim0")],
    "LogSoftmax": [
        S(lambda a: ember.log_softmax(a, -1), rn(2, 3)),
        S(lambda a: a.log_softmax(dim=1), rn(2, 3, 2), id="3d"),
    ],
    "Norm2": [
        S(ember.norm, rn(2, 3), id="all"),
        S(lambda a: ember.norm(a, dim=1, keepdim=True), rn(2, 3), id="dim"),
        S(lambda a: a.norm(2, dim=0), rn(3, 2), id="p2"),
    ],
    # ---- linear algebra
    "MatMul": [
        S(lambda a, b: a @ b, rn(2, 3), rn(3, 2), id="2d"),
        S(lambda a, b: a @ b, rn(3), rn(3, 2), id="1d-2d"),
        S(lambda a, b: a @ b, rn(2, 3), rn(3), id="2d-1d"),
        S(lambda a, b: a @ b, rn(3), rn(3), id="1d-1d"),
        S(lambda a, b: ember.matmul(a, b), rn(2, 1, 2, 3), rn(2, 3, 2), id="batch-bcast"),
        S(lambda a, b: a @ b, rn(3), rn(2, 3, 2), id="1d-batch"),
    ],
    "Einsum": [
        S(lambda a, b: ember.einsum("ij,jk->ik", a, b), rn(2, 3), rn(3, 2), id="mm"),
        S(lambda a, b: ember.einsum("bij,bjk->bik", a, b), rn(2, 2, 3), rn(2, 3, 2), id="bmm"),
        S(lambda a, b: ember.einsum("i,j", a, b), rn(2), rn(3), id="implicit-outer"),
        S(lambda a: ember.einsum("ij->", a), rn(2, 3), id="sum"),
        S(lambda a, b: ember.einsum("...ij,...j->...i", a, b), rn(2, 2, 3), rn(3), id="ellipsis"),
        S(lambda a: ember.einsum("ii->i", a), rn(3, 3), id="diagonal"),
        S(lambda a, b: ember.einsum("ij,kj->ik", a, b), rn(2, 3), rn(2, 3), id="list"),
    ],
    # ---- shapes
    "Reshape": [
        S(lambda a: a.reshape(3, 2), rn(2, 3)),
        S(lambda a: a.view(-1), rn(2, 3), id="view"),
        S(lambda a: ember.flatten(a, 1), rn(2, 3, 2), id="flatten"),
        S(lambda a: a.unsqueeze(1).squeeze(), rn(2, 3), id="un-squeeze"),
    ],
    "Permute": [
        S(lambda a: a.permute(2, 0, 1), rn(2, 3, 2)),
        S(lambda a: a.T, rn(2, 3), id="T"),
        S(lambda a: a.mT, rn(2, 2, 3), id="mT"),
        S(lambda a: ember.transpose(a, 0, 1), rn(2, 3), id="transpose"),
    ],
    "Expand": [
        S(lambda a: a.expand(2, 3, 4), rn(3, 1)),
        S(lambda a: ember.broadcast_to(a, (2, 3)), rn(3), id="broadcast_to"),
        S(lambda a: a.expand(-1, 3), rn(2, 1), id="minus-one"),
    ],
    "SumTo": [
        S(lambda a: sum_to(a, (3,)), rn(2, 3), id="lead"),
        S(lambda a: sum_to(a, (2, 1)), rn(2, 3), id="keep"),
    ],
    "Cat": [
        S(lambda a, b: ember.cat([a, b], 0), rn(2, 3), rn(1, 3), id="dim0"),
        S(lambda a, b: ember.cat((a, b), dim=-1), rn(2, 3), rn(2, 1), id="dim-1"),
    ],
    "Slice": [
        S(lambda a: ember.split(a, 2, 1)[1], rn(2, 3), id="split"),
        S(lambda a: a.narrow(0, 1, 2), rn(3, 2), id="narrow"),
    ],
    "Flip": [S(lambda a: ember.flip(a, (0, 1)), rn(2, 3)), S(lambda a: a.flip(-1), rn(3), id="1d")],
    "Roll": [
        S(lambda a: ember.roll(a, 1, 1), rn(2, 3)),
        S(lambda a: a.roll((1, -1), (0, 1)), rn(2, 3), id="multi"),
        S(lambda a: ember.roll(a, 2), rn(2, 3), id="flat"),
    ],
    "Pad": [
        S(lambda a: ember.pad(a, (1, 2)), rn(2, 3), id="constant"),
        S(lambda a: ember.pad(a, (1, 1, 0, 1), value=2.0), rn(2, 3), id="constant-2d"),
        S(lambda a: ember.pad(a, (2, 1), mode="reflect"), rn(2, 4), id="reflect"),
        S(lambda a: ember.pad(a, (1, 2, 1, 0), mode="replicate"), rn(2, 3), id="replicate"),
        S(lambda a: ember.pad(a, (1, 2), mode="circular"), rn(2, 3), id="circular"),
    ],
    # ---- indexing
    "Index": [
        S(lambda a: a[1], rn(3, 2), id="int"),
        S(lambda a: a[:, 1:], rn(2, 3), id="slice"),
        S(lambda a: a[..., None, ::2], rn(2, 3), id="ellipsis-none-step"),
        S(lambda a, i: a[i], rn(3, 2), _IDX, id="int-tensor-repeats"),
        S(lambda a: a[[0, 2], 1], rn(3, 2), id="list"),
        S(lambda a, m: a[m], rn(2, 3), _B, id="bool-mask"),
        S(lambda a, i: a[:, i], rn(2, 3), _IDX, id="advanced-dim1"),
    ],
    "IndexBackward": [
        S(lambda g, i: IndexBackward.apply(g, (4, 2), i._data), rn(3, 2), _IDX, id="advanced"),
        S(lambda g: IndexBackward.apply(g, (2, 3), (slice(None), slice(1, None))), rn(2, 2), id="basic"),
    ],
    "IndexPut": [
        S(lambda x, v: _set(x, 1, v), rn(3, 2), rn(2), id="row"),
        S(lambda x, v, m: _set(x, m, v), rn(2, 3), rn(4), _B, id="bool"),
        S(lambda x, v, i: _set(x, i, v), rn(4, 2), rn(2, 2), np.array([3, 0]), id="advanced"),
        S(lambda x: _set(x, (slice(None), 0), 0.0), rn(2, 3), id="constant"),
        S(
            lambda x, v, i: ember.scatter(x, 1, i, v),
            rn(2, 3),
            rn(2, 2),
            np.array([[0, 2], [1, 0]]),
            id="scatter",
        ),
    ],
    "Gather": [
        S(lambda a, i: ember.gather(a, 1, i), rn(2, 3), np.array([[0, 2, 2], [1, 1, 0]])),
        S(lambda a, i: a.gather(0, i), rn(3, 2), np.array([[2, 0]]), id="dim0"),
    ],
    "ScatterAlong": [
        S(lambda a, i, s: ember.scatter_add(a, 1, i, s), rn(2, 3), np.array([[0, 2, 0], [1, 1, 2]]), rn(2, 3))
    ],
    "IndexSelect": [
        S(lambda a, i: ember.index_select(a, 0, i), rn(3, 2), _IDX),
        S(lambda a, i: a.index_select(1, i), rn(2, 3), _IDX, id="dim1"),
    ],
    "IndexAddZeros": [
        S(lambda a, i, s: ember.index_add(a, 0, i, s), rn(3, 2), _IDX, rn(3, 2)),
        S(lambda a, i, s: ember.index_add(a, 1, i, s, alpha=2.0), rn(2, 3), _IDX, rn(2, 3), id="dim1-alpha"),
    ],
    "Tril": [S(lambda a: ember.tril(a), rn(3, 4)), S(lambda a: a.tril(1), rn(2, 3, 3), id="batch-k")],
    "Triu": [S(lambda a: ember.triu(a, -1), rn(3, 3)), S(lambda a: a.triu(), rn(2, 4), id="method")],
    # ---- ember.linalg (inputs kept well-conditioned; symmetric ones built inside the function)
    "Inv": [
        S(lambda a: LA.inv(a + _I3(a) * 3), rn(3, 3)),
        S(lambda a: LA.inv(a + _I3(a) * 3), rn(2, 3, 3), id="batch"),
    ],
    "Det": [
        S(lambda a: LA.det(a + _I3(a) * 2), rn(3, 3)),
        S(lambda a: LA.det(a + _I3(a) * 2), rn(2, 3, 3), id="batch"),
    ],
    "LogAbsDet": [S(lambda a: LA.slogdet(a + _I3(a) * 2).logabsdet, rn(2, 3, 3))],
    "Solve": [
        S(lambda a, b: LA.solve(a + _I3(a) * 3, b), rn(3, 3), rn(3, 2), id="matrix"),
        S(lambda a, b: LA.solve(a + _I3(a) * 3, b), rn(2, 3, 3), rn(3), id="vector-bcast"),
        S(lambda a, b: LA.solve(a + _I3(a) * 3, b, left=False), rn(3, 3), rn(2, 3), id="right"),
    ],
    "Cholesky": [
        S(lambda a: LA.cholesky(a @ a.mT + _I3(a)), rn(3, 3)),
        S(lambda a: LA.cholesky(a @ a.mT + _I3(a), upper=True), rn(2, 3, 3), id="upper-batch"),
    ],
    "QR": [
        S(lambda a: LA.qr(a), rn(3, 3), id="square"),
        S(lambda a: LA.qr(a), rn(4, 2), id="tall"),
        S(lambda a: LA.qr(a), rn(2, 4), id="wide"),
        S(lambda a: LA.qr(a).R, rn(2, 3, 2), id="batch-R"),
    ],
    "Eigh": [
        S(lambda a: _sign_free_eigh(a + a.mT), rn(3, 3)),
        S(lambda a: LA.eigvalsh(a + a.mT), rn(2, 3, 3), id="eigvalsh-batch"),
    ],
    "SVD": [
        S(lambda a: _sign_free_svd(a), rn(3, 3), id="square"),
        S(lambda a: _sign_free_svd(a), rn(4, 2), id="tall"),
        S(lambda a: _sign_free_svd(a), rn(2, 4), id="wide"),
        S(lambda a: LA.svdvals(a), rn(2, 3, 2), id="svdvals"),
    ],
    "BagMean": [
        # bags [1, 2], [] (zeros, no gradient), [2, 5, 0], [5, 5] (a row twice counts twice)
        S(
            lambda w, i, o: ember.sparse.bag_mean(w, i, o),
            rn(6, 3),
            np.array([1, 2, 2, 5, 0, 5, 5]),
            np.array([0, 2, 2, 5, 7]),
        ),
        S(
            lambda w, i, o: ember.sparse.bag_mean(w * w, i, o),
            rn(4, 2),
            np.array([3, 1, 3]),
            np.array([0, 2, 3]),
            id="non-leaf",
        ),
    ],
    # ---- dtype, device, copies
    "Cast": [S(lambda a: a.float().double(), rn(2, 3), eps=1e-3, atol=1e-3)],
    "ToDevice": [S(lambda a: (a.to("standin") * 2).to(a.device), rn(2, 3))],
    "Clone": [S(lambda a: a.clone() * 1, rn(2, 3))],
}


LA = ember.linalg


def _I3(a):
    """The 3x3 identity on ``a``'s device (specs run on the CPU and on other devices)."""
    return ember.eye(3, dtype=a.dtype, device=a.device)


def _sign_free_eigh(a):
    """Eigenvalues and V*V: eigenvectors are defined up to sign, their squares are not."""
    w, v = LA.eigh(a)
    return w, v * v


def _sign_free_svd(a):
    """S and the sign-free products U_ik V_jk (each singular pair is defined up to a joint sign)."""
    u, s, vh = LA.svd(a, full_matrices=False)
    return s, u[..., :, None, :] * vh.mT[..., None, :, :]


def _set(x, index, v):
    """``y = x * 1; y[index] = v``: setitem on a non-leaf under grad."""
    y = x * 1
    y[index] = v
    return y


COMPOSITES: dict[str, list[Spec]] = {
    "mean": [
        S(ember.mean, rn(2, 3), id="all"),
        S(lambda a: a.mean((0, 2), keepdim=True), rn(2, 3, 2), id="dims-keepdim"),
    ],
    "var": [
        S(ember.var, rn(2, 3), id="all"),
        S(lambda a: ember.var(a, 1, correction=0), rn(2, 3), id="correction0"),
        S(lambda a: a.var(0, keepdim=True), rn(3, 2), id="keepdim"),
    ],
    "std": [S(ember.std, rn(2, 3), id="all"), S(lambda a: a.std(dim=1), rn(2, 3), id="dim")],
    "var_mean": [S(lambda a: ember.var_mean(a, 1), rn(2, 3))],
    "std_mean": [S(lambda a: ember.std_mean(a, 0), rn(3, 2))],
    "norm": [
        K(lambda a: ember.norm(a, p=1), away(2, 3), id="p1"),
        K(lambda a: ember.norm(a, p=float("inf"), dim=1), distinct(2, 3), id="inf"),
        S(lambda a: ember.norm(a, p=3, dim=0), pos(3, 2), id="p3"),
    ],
    "softmax": [S(lambda a: ember.softmax(a, dim=1), rn(2, 3, 2))],
    "log_softmax": [S(lambda a: ember.log_softmax(a, 0), rn(3))],
    "einsum": [S(lambda a, b, c: ember.einsum("ij,jk,k->i", a, b, c), rn(2, 3), rn(3, 2), rn(2))],
    "tensordot": [S(lambda a, b: ember.tensordot(a, b, 1), rn(2, 3), rn(3, 2))],
    "dot": [S(ember.dot, rn(3), rn(3))],
    "mv": [S(ember.mv, rn(2, 3), rn(3))],
    "bmm": [S(ember.bmm, rn(2, 2, 3), rn(2, 3, 2))],
    "inner": [S(ember.inner, rn(2, 3), rn(3))],
    "outer": [S(ember.outer, rn(3), rn(2))],
    "trace": [S(ember.trace, rn(3, 3))],
    "diagonal": [S(lambda a: ember.diagonal(a, 1), rn(3, 4))],
    "pad": [
        S(lambda a: ember.pad(a, (1, 1), mode="reflect"), rn(3), id="reflect-1d"),
        S(lambda a: ember.pad(a, (0, 0, 2, 1), mode="circular"), rn(3, 2), id="circular-dim0"),
    ],
    "tile": [S(lambda a: ember.tile(a, (2, 1, 2)), rn(2, 3))],
    "repeat": [S(lambda a: a.repeat(2, 2), rn(2, 3))],
    "repeat_interleave": [
        S(lambda a: ember.repeat_interleave(a, 2, dim=0), rn(2, 3), id="int"),
        S(lambda a, r: a.repeat_interleave(r, dim=1), rn(2, 3), np.array([1, 0, 3]), id="tensor"),
    ],
    "take_along_dim": [
        S(lambda a, i: ember.take_along_dim(a, i, 1), rn(2, 3), np.array([[2], [0]]), id="dim"),
        S(lambda a, i: ember.take_along_dim(a, i), rn(2, 3), np.array([5, 0, 5]), id="flat"),
    ],
    "scatter_add": [
        S(lambda a, i, s: a.scatter_add(0, i, s), rn(3, 2), np.array([[2, 0], [2, 2]]), rn(2, 2))
    ],
    "index_add": [S(lambda a, s, i: a.index_add(0, i, s), rn(4, 2), rn(3, 2), _IDX)],
    "masked_fill": [
        S(lambda a, m: ember.masked_fill(a, m, 0.5), rn(2, 3), _B, id="scalar"),
        S(lambda a, m, v: a.masked_fill(m, v), rn(2, 3), _B, rn(), id="tensor-value"),
    ],
    "masked_select": [S(lambda a, m: ember.masked_select(a, m), rn(2, 3), _B)],
    "addcmul": [
        S(lambda a, b, c: ember.addcmul(a, b, c, value=0.5), rn(2, 3), rn(2, 3), rn(3)),
        S(lambda a, b, c: (a * 1).addcmul_(b, c, value=-2), rn(2, 3), rn(2, 3), rn(2, 3), id="inplace"),
    ],
    "addcdiv": [
        S(lambda a, b, c: ember.addcdiv(a, b, c, value=3), rn(2, 3), rn(2, 3), pos(2, 3)),
        S(lambda a, b, c: (a * 1).addcdiv_(b, c), rn(3), rn(3), pos(3), id="inplace"),
    ],
    "lerp": [
        S(lambda a, b: ember.lerp(a, b, 0.3), rn(2, 3), rn(2, 3), id="scalar-weight"),
        S(lambda a, b, w: ember.lerp(a, b, w), rn(2, 3), rn(3), rn(2, 3), id="tensor-weight"),
        S(lambda a, b, w: (a * 1).lerp_(b, w), rn(2, 3), rn(2, 3), rn(2, 3), id="inplace"),
    ],
    "index_fill": [
        S(lambda a, i: ember.index_fill(a, 1, i, -1.5), rn(2, 4), np.array([0, 2]), id="number"),
        S(lambda a, i, v: (a * 1).index_fill_(0, i, v), rn(3, 2), np.array([1]), rn(), id="inplace-tensor"),
    ],
    "topk": [
        K(lambda a: ember.topk(a, 2).values, distinct(2, 4), id="largest"),
        K(lambda a: a.topk(2, dim=0, largest=False)[0], distinct(3, 2), id="smallest"),
    ],
    "kthvalue": [K(lambda a: ember.kthvalue(a, 2, 1).values, distinct(2, 3))],
    "sort": [
        K(lambda a: ember.sort(a, descending=True).values, distinct(2, 3)),
        K(lambda a: a.sort(0)[0], distinct(3, 2), id="dim0"),
    ],
    "max": [K(lambda a, b: ember.max(a, b), distinct(2, 3), distinct(3), id="elementwise")],
    "cat": [S(lambda a, b, c: ember.cat([a, b, c], 1), rn(2, 1), rn(2, 2), rn(2, 3))],
    "stack": [
        S(lambda a, b: ember.stack([a, b], 1), rn(2, 3), rn(2, 3)),
        S(lambda a, b: ember.stack((a, b), -1), rn(3), rn(3), id="last"),
    ],
    "hstack": [S(lambda a, b: ember.hstack([a, b]), rn(2, 1), rn(2, 2))],
    "vstack": [S(lambda a, b: ember.vstack([a, b]), rn(3), rn(2, 3))],
    "split": [
        S(lambda a: ember.split(a, [1, 2], 1), rn(2, 3), id="sections"),
        S(lambda a: a.split(2), rn(3, 2), id="size"),
    ],
    "chunk": [S(lambda a: ember.chunk(a, 2, 1), rn(2, 3))],
    "unbind": [S(lambda a: ember.unbind(a, 1), rn(2, 3))],
    "flip": [S(lambda a: ember.fliplr(a) + ember.flipud(a), rn(3, 3))],
    "roll": [S(lambda a: ember.roll(a, -1, 0), rn(3, 2))],
    "movedim": [S(lambda a: ember.movedim(a, 0, -1), rn(2, 3, 2))],
    "squeeze": [S(lambda a: ember.squeeze(a, (0, 2)), rn(1, 3, 1))],
    "unflatten": [S(lambda a: ember.unflatten(a, 1, (2, 2)), rn(3, 4))],
    "where": [S(lambda a, b: ember.where(a > b, a, b * 2), distinct(2, 3), distinct(3))],
    "maximum": [K(lambda a: ember.maximum(a, a.flip(0)), distinct(4))],
    "minimum": [K(lambda a: ember.minimum(0.0, a), away(4))],
    "getitem": [
        S(lambda a: a[1:, 0], rn(3, 2), id="basic"),
        S(lambda a, i, j: a[i, j], rn(3, 3), np.array([0, 2, 2]), np.array([1, 1, 0]), id="advanced-pair"),
        S(lambda a, m: a[m] * 2, rn(2, 3), _B, id="bool"),
        S(lambda a, m: a[m[0]], rn(3, 2), _B, id="bool-dim0"),
    ],
    "setitem": [
        S(lambda x, v: _set(x, (slice(None), slice(1, 3)), v), rn(2, 4), rn(2, 2), id="slice"),
        S(lambda x, v: _set(x * x, x > 0, v), rn(2, 3), rn(), id="bool-broadcast"),
    ],
    "inplace": [
        S(lambda x, y: (x * 1).mul_(y).add_(1.0), rn(2, 3), rn(3), id="mul_-add_"),
        S(lambda x: _iadd(x), rn(2, 2), id="iadd"),
    ],
    "leaky_relu": [K(lambda a: ember.leaky_relu(a, negative_slope=0.3), away(2, 3))],
    "cumsum": [S(lambda a: ember.cumsum(a, -1) * ember.cumsum(a, 0), rn(2, 3))],
    "softplus": [S(lambda a: ember.softplus(a * 10), rn(3))],
    "sum_to_broadcast": [S(lambda a, b: (a * b).sum(), rn(3, 1, 2), rn(4, 1))],
    "frac": [S(lambda a: ember.frac(a * 3), _rng.uniform(0.1, 0.3, 4))],
    "positive": [S(lambda a: ember.positive(a) * 2, rn(3))],
    "meshgrid": [
        S(lambda a, b: ember.meshgrid(a, b, indexing="ij"), rn(2), rn(3), id="ij"),
        S(lambda a, b, c: ember.meshgrid(a, b, c, indexing="xy"), rn(2), rn(3), rn(2), id="xy"),
    ],
    "diff": [
        S(lambda a: ember.diff(a), rn(2, 4), id="n1"),
        S(lambda a, p: ember.diff(a, n=2, dim=0, prepend=p), rn(3, 2), rn(1, 2), id="n2-prepend"),
    ],
    "moveaxis": [S(lambda a: ember.moveaxis(a, (0, 1), (2, 0)), rn(2, 3, 2))],
    "linalg.pinv": [
        S(lambda a: LA.pinv(a), rn(3, 2), id="tall"),
        S(lambda a: LA.pinv(a), rn(2, 3), id="wide"),
    ],
    "linalg.lstsq": [S(lambda a, b: LA.lstsq(a, b).solution, rn(4, 2), rn(4, 3))],
    "linalg.vector_norm": [
        S(lambda a: LA.vector_norm(a), rn(2, 3), id="2"),
        S(lambda a: LA.vector_norm(a, 3, dim=1, keepdim=True), pos(2, 3), id="p3"),
        K(lambda a: LA.vector_norm(a, float("inf"), dim=0), distinct(3, 2), id="inf"),
        K(lambda a: LA.vector_norm(a, 1), away(4), id="1"),
    ],
    "linalg.matrix_norm": [
        S(lambda a: LA.matrix_norm(a), rn(2, 3), id="fro"),
        S(lambda a: LA.matrix_norm(a, "nuc"), rn(3, 2), id="nuc"),
        S(lambda a: LA.matrix_norm(a, 2), rn(2, 3, 2), id="spectral"),
        S(lambda a: LA.matrix_norm(a, -2, keepdim=True), rn(3, 3), id="-2-keepdim"),
        K(lambda a: LA.matrix_norm(a, 1), distinct(3, 3), id="1"),
        K(lambda a: LA.matrix_norm(a, float("-inf"), dim=(0, 1)), distinct(3, 2), id="-inf"),
    ],
    "linalg.norm": [
        S(lambda a: LA.norm(a), rn(2, 3), id="flat"),
        S(lambda a: LA.norm(a, 2), rn(2, 2), id="2d-ord"),
    ],
    "linalg.matrix_power": [
        S(lambda a: LA.matrix_power(a, 3), rn(2, 2), id="3"),
        S(lambda a: LA.matrix_power(a + _I3(a) * 3, -2), rn(3, 3), id="-2"),
    ],
    "linalg.multi_dot": [S(lambda a, b, c: LA.multi_dot([a, b, c]), rn(3), rn(3, 2), rn(2, 2))],
    "linalg.cross": [
        S(lambda a, b: LA.cross(a, b), rn(2, 3), rn(3), id="bcast"),
        S(lambda a, b: LA.cross(a, b, dim=0), rn(3, 2), rn(3, 2), id="dim0"),
    ],
    "linalg.vecdot": [S(lambda a, b: LA.vecdot(a, b), rn(2, 3), rn(3))],
    "linalg.det": [S(lambda a: LA.det(a @ a.mT + _I3(a)), rn(3, 3), id="spd")],
    "fft.fftshift": [S(lambda a: ember.fft.fftshift(a) * ember.fft.ifftshift(a, dim=0), rn(3, 4))],
}


def _iadd(x):
    y = x * 2
    y += x
    return y


def all_specs():
    """(test id, spec) for every spec of both tables."""
    out = []
    for table in (SPECS, COMPOSITES):
        for name, specs in table.items():
            for k, s in enumerate(specs):
                out.append((f"{name}-{s.id or k}", s))
    return out
