"""Models in PyTorch-BigGraph's sense: score = comparator(operator(lhs), rhs).

Three small registries, so a new model is one small class:

* ``OPERATORS`` map an entity embedding with a relation's parameters
  (``none``, ``translation``, ``diagonal``, ``linear``, ``affine``,
  ``complex_diagonal``, ``rotate``);
* ``COMPARATORS`` prepare the two sides and compare them, rowwise for positives and as
  one batched matrix product per chunk for negatives (``dot``, ``cos``, ``l2``,
  ``squared_l2``);
* ``LOSSES`` turn positive and negative scores into a loss (``ranking``, ``logistic``,
  ``softmax``).

Every part is written on raw arrays (numpy or cupy, picked with ``array_module``) with a
hand-written vector-Jacobian product beside its forward: the trainer fuses a whole
chunked batch into one autograd node (`ChunkedLoss`), because an eager engine pays per op.
For tests and for composing by hand, `apply_operator`, `compare` and `loss_of` expose each
part as an ember op.

Both directions of every edge are scored, each with its own parameters (PyTorch-BigGraph's
"dynamic relations", and the reciprocal relations of Lacroix et al.): the *rhs side*
predicts the rhs from ``op_r(lhs)`` and corrupts the rhs; the *lhs side* predicts the lhs
from ``op'_r(rhs)`` and corrupts the lhs. The operator is always applied to the side
that is kept, so negatives are shared by a whole chunk whatever its edges' relations.
"""

from __future__ import annotations

import math

import numpy as np

from ember._backend import array_module, device_of, to_device

OPERATORS: dict[str, type] = {}
COMPARATORS: dict[str, type] = {}
LOSSES: dict[str, type] = {}


def _register(registry: dict, kind: str):
    """Class decorator adding a model part to ``registry`` under its ``name``: the
    registries are the only list of names (the config validates against them)."""

    def deco(cls):
        if not cls.name:
            raise ValueError(f"a {kind} class needs a name: {cls.__qualname__}")
        if cls.name in registry:
            raise ValueError(
                f"{kind} {cls.name!r} is already registered (by {registry[cls.name].__qualname__}); "
                "choose another name"
            )
        registry[cls.name] = cls
        return cls

    return deco


def register_operator(cls):
    """Register an `Operator` subclass under ``cls.name`` (an error if the name is taken)."""
    return _register(OPERATORS, "operator")(cls)


def register_comparator(cls):
    """Register a `Comparator` subclass under ``cls.name`` (an error if the name is taken)."""
    return _register(COMPARATORS, "comparator")(cls)


def register_loss(cls):
    """Register a `Loss` subclass under ``cls.name`` (an error if the name is taken)."""
    return _register(LOSSES, "loss")(cls)


# =========================================================================== operators
class Operator:
    """Maps embeddings ``x`` (N, d) with per-edge parameters ``th`` (N, p) to (N, d).

    A subclass is one operator in both embedding layouts: PyTorch-BigGraph's (what
    checkpoints, exports and predict use) and, for complex operators, the trainer's
    interleaved one (``interleaved=True``: complex coordinates stored as (re, im) pairs,
    see `Model`). It says:

    * ``num_params()`` and ``init(R, xp, dtype)``: the (R, p) parameter table (identity);
    * ``forward(x, th)`` and ``backward(x, th, gy)`` -> (gx, gth);
    * ``permute_params(rows, perm)``: its parameter rows when the embedding coordinates
      are permuted by ``perm`` (a layout change);
    * ``named_parameters(row)``: one relation's row as PBG's named parameters (export).
    """

    name = ""
    complex = False  # treats an embedding as d/2 complex numbers (needs an even d)

    def __init__(self, dim: int, interleaved: bool = False):
        self.dim = dim
        self.interleaved = interleaved and self.complex

    def num_params(self) -> int:
        return 0

    def init(self, num_relations, xp, dtype):
        return xp.zeros((num_relations, self.num_params()), dtype)

    def forward(self, x, th):
        return x

    def backward(self, x, th, gy):
        return gy, None

    def permute_params(self, rows, perm):
        """Parameter vectors laid out like an embedding move with its coordinates."""
        return rows[:, perm] if self.num_params() else rows

    def named_parameters(self, row) -> list[tuple[str, object]]:
        return [(self.name, row)] if self.num_params() else []


@register_operator
class NoneOperator(Operator):
    name = "none"


@register_operator
class Translation(Operator):
    """TransE: x + t."""

    name = "translation"

    def num_params(self):
        return self.dim

    def forward(self, x, th):
        return x + th

    def backward(self, x, th, gy):
        return gy, gy


@register_operator
class Diagonal(Operator):
    """DistMult: x * w."""

    name = "diagonal"

    def num_params(self):
        return self.dim

    def init(self, num_relations, xp, dtype):
        return xp.ones((num_relations, self.dim), dtype)

    def forward(self, x, th):
        return x * th

    def backward(self, x, th, gy):
        return gy * th, gy * x


@register_operator
class Linear(Operator):
    """RESCAL: M x, one d x d matrix per relation (stored flat)."""

    name = "linear"
    bias = False

    def num_params(self):
        return self.dim * self.dim + (self.dim if self.bias else 0)

    def init(self, num_relations, xp, dtype):
        d = self.dim
        th = xp.zeros((num_relations, self.num_params()), dtype)
        th[:, : d * d] = xp.eye(d, dtype=dtype).reshape(-1)
        return th

    def _m(self, th):
        d = self.dim
        return th[:, : d * d].reshape(-1, d, d)

    def forward(self, x, th):
        xp = array_module(x)
        y = xp.matmul(self._m(th), x[:, :, None])[:, :, 0]
        if self.bias:
            y = y + th[:, self.dim * self.dim :]
        return y

    def backward(self, x, th, gy):
        xp = array_module(x)
        gx = xp.matmul(gy[:, None, :], self._m(th))[:, 0, :]
        gm = (gy[:, :, None] * x[:, None, :]).reshape(len(x), -1)
        gth = xp.concatenate([gm, gy], axis=1) if self.bias else gm
        return gx, gth

    def permute_params(self, rows, perm):
        d = self.dim
        out = rows.copy()  # M -> P M P^T, the bias like an embedding
        out[:, : d * d] = rows[:, : d * d].reshape(-1, d, d)[:, perm][:, :, perm].reshape(len(rows), -1)
        if self.bias:
            out[:, d * d : d * d + d] = rows[:, d * d : d * d + d][:, perm]
        return out

    def named_parameters(self, row):
        d = self.dim
        out = [("linear_transformation", row[: d * d].reshape(d, d))]
        return out + [("translation", row[d * d : d * d + d])] if self.bias else out


@register_operator
class Affine(Linear):
    """M x + b."""

    name = "affine"
    bias = True


def _as_complex(xp, a):
    """View a real (N, d) array as (N, d/2) complex numbers (interleaved re, im)."""
    a = xp.ascontiguousarray(a)
    return a.view(xp.complex64 if a.dtype == xp.float32 else xp.complex128)


def _as_real(xp, z):
    return z.view(xp.float32 if z.dtype == xp.complex64 else xp.float64)


@register_operator
class ComplexDiagonal(Operator):
    """ComplEx: the embedding is d/2 complex numbers, each multiplied by one complex
    parameter w (``th``: d reals laid out like an embedding).

    PyTorch-BigGraph's layout keeps real parts in the first half of a row and imaginary
    parts in the second; products are then written into one output with ``out=`` (no
    concatenate: this op is on the hot path). The interleaved layout stores (re, im)
    pairs, so a row *is* a complex64 array and the product and both gradients are one
    complex multiply each (y = x w, dx = dy conj(w), dw = dy conj(x)) instead of a dozen
    real passes.
    """

    name = "complex_diagonal"
    complex = True

    def num_params(self):
        return self.dim

    def init(self, num_relations, xp, dtype):
        th = xp.zeros((num_relations, self.dim), dtype)
        if self.interleaved:
            th[:, 0::2] = 1
        else:
            th[:, : self.dim // 2] = 1
        return th

    def weights(self, th):
        """The complex parameters: a complex array (interleaved) or (real, imag) halves."""
        if self.interleaved:
            return _as_complex(array_module(th), th)
        h = self.dim // 2
        return th[:, :h], th[:, h:]

    def forward(self, x, th):
        xp = array_module(x)
        w = self.weights(th)
        if self.interleaved:
            return _as_real(xp, _as_complex(xp, x) * w)
        h = self.dim // 2
        re, im = x[:, :h], x[:, h:]
        wr, wi = w
        y = xp.empty_like(x)
        xp.multiply(re, wr, out=y[:, :h])
        y[:, :h] -= im * wi
        xp.multiply(re, wi, out=y[:, h:])
        y[:, h:] += im * wr
        return y

    def _backward(self, x, w, gy):
        """(gx, dL/dw) for complex weights ``w``; dL/dw as a complex array (interleaved)
        or as one (N, d) array of (real half, imaginary half)."""
        xp = array_module(x)
        if self.interleaved:
            gc = _as_complex(xp, gy)
            return _as_real(xp, gc * w.conj()), gc * _as_complex(xp, x).conj()
        h = self.dim // 2
        wr, wi = w
        re, im, gr, gi = x[:, :h], x[:, h:], gy[:, :h], gy[:, h:]
        gx = xp.empty_like(x)
        xp.multiply(gr, wr, out=gx[:, :h])
        gx[:, :h] += gi * wi
        xp.multiply(gi, wr, out=gx[:, h:])
        gx[:, h:] -= gr * wi
        gw = xp.empty_like(gy)
        xp.multiply(gr, re, out=gw[:, :h])
        gw[:, :h] += gi * im
        xp.multiply(gi, re, out=gw[:, h:])
        gw[:, h:] -= gr * im
        return gx, gw

    def backward(self, x, th, gy):
        gx, gw = self._backward(x, self.weights(th), gy)
        return gx, _as_real(array_module(x), gw) if self.interleaved else gw

    def named_parameters(self, row):
        h = self.dim // 2
        return [("real", row[:h]), ("imag", row[h:])]


@register_operator
class Rotate(ComplexDiagonal):
    """RotatE: multiply by unit complex numbers exp(i * phase), one phase per complex
    coordinate (d/2 per relation, the same in both layouts)."""

    name = "rotate"

    def num_params(self):
        return self.dim // 2

    def init(self, num_relations, xp, dtype):
        return xp.zeros((num_relations, self.dim // 2), dtype)

    def weights(self, th):
        xp = array_module(th)
        if not self.interleaved:
            return xp.cos(th), xp.sin(th)
        w = xp.empty(th.shape, xp.complex64 if th.dtype == xp.float32 else xp.complex128)
        w.real = xp.cos(th)
        w.imag = xp.sin(th)
        return w

    def backward(self, x, th, gy):
        w = self.weights(th)
        gx, gw = self._backward(x, w, gy)
        if self.interleaved:
            return gx, (gw * w.conj()).imag  # d/dphase of exp(i phase)
        (wr, wi), h = w, self.dim // 2
        return gx, gw[:, h:] * wr - gw[:, :h] * wi

    def permute_params(self, rows, perm):
        return rows  # a phase per complex coordinate: the pairs move, not the phases

    def named_parameters(self, row):
        return [("phase", row)]


# =========================================================================== comparators
class Comparator:
    """Prepare both sides, then compare: ``pos(a, b)`` rowwise (N,), and ``neg(a3, n3)``
    with a3 (C, b, d) and n3 (C, k, d) as one batched matmul giving (C, b, k), written
    into ``out`` (C, b, k) when one is given (evaluation reuses one block of scores)."""

    name = ""

    def prepare(self, x):
        return x, None

    def prepare_backward(self, cache, g):
        return g

    def pos(self, a, b):
        # one pass, no (N, d) product: 3-4x faster than (a * b).sum(-1) at (1000, 100)
        return array_module(a).einsum("...d,...d->...", a, b)

    def pos_backward(self, a, b, g):
        return g[:, None] * b, g[:, None] * a

    def pos_backward_add(self, a, b, g, ga, gb3=None):
        """`pos_backward`'s gradients with the negatives' added: ``ga`` (N, d) to the first
        and, where given, ``gb3`` (C, B, d) with C * B == N to the second (the batch's own
        positives serving as its negatives). ``ga`` may be overwritten."""
        pa, pb = self.pos_backward(a, b, g)
        pa += ga
        if gb3 is not None:
            pb.reshape(gb3.shape)[...] += gb3
        return pa, pb

    def neg(self, a3, n3, out=None):
        xp = array_module(a3)
        return xp.matmul(a3, n3.transpose(0, 2, 1), out=out)

    def neg_backward(self, a3, n3, g):
        xp = array_module(a3)
        return xp.matmul(g, n3), xp.matmul(g.transpose(0, 2, 1), a3)


@register_comparator
class Dot(Comparator):
    name = "dot"

    def pos_backward_add(self, a, b, g, ga, gb3=None):
        # one compiled pass per side, where numpy makes the (N, d) product, then adds it
        from ember import _cpu_kernels

        if _cpu_kernels.addcmul_rows_(ga, g, b, ga):
            gb = np.empty(a.shape, np.float32)  # the kernel took ga: host float32 arrays
            if gb3 is None or not _cpu_kernels.addcmul_rows_(gb, g, a, gb3):
                np.multiply(g[:, None], a, out=gb)
                if gb3 is not None:
                    gb.reshape(gb3.shape)[...] += gb3
            return ga, gb
        return super().pos_backward_add(a, b, g, ga, gb3)


@register_comparator
class Cos(Comparator):
    """Dot product of unit vectors."""

    name = "cos"

    def prepare(self, x):
        xp = array_module(x)
        norm = xp.sqrt((x * x).sum(-1, keepdims=True)) + 1e-12
        y = x / norm
        return y, (y, norm)

    def prepare_backward(self, cache, g):
        y, norm = cache
        return (g - y * (g * y).sum(-1, keepdims=True)) / norm


@register_comparator
class SquaredL2(Comparator):
    """Minus the squared Euclidean distance, the negatives from |a|^2 + |n|^2 - 2 a.n."""

    name = "squared_l2"

    def pos(self, a, b):
        diff = a - b
        return -(diff * diff).sum(-1)

    def pos_backward(self, a, b, g):
        gd = (-2 * g)[:, None] * (a - b)
        return gd, -gd

    def neg(self, a3, n3, out=None):
        xp = array_module(a3)
        d2 = xp.matmul(a3, n3.transpose(0, 2, 1), out=out)
        d2 *= -2
        d2 += (a3 * a3).sum(-1)[:, :, None]
        d2 += (n3 * n3).sum(-1)[:, None, :]
        xp.maximum(d2, 0, out=d2)
        return xp.negative(d2, out=d2)

    def neg_backward(self, a3, n3, g):
        xp = array_module(a3)
        ga = -2 * (g.sum(-1)[:, :, None] * a3 - xp.matmul(g, n3))
        gn = -2 * (g.sum(1)[:, :, None] * n3 - xp.matmul(g.transpose(0, 2, 1), a3))
        return ga, gn


@register_comparator
class L2(SquaredL2):
    """Minus the Euclidean distance."""

    name = "l2"
    _eps = 1e-30

    def _dist(self, sq):
        xp = array_module(sq)
        return xp.sqrt(xp.maximum(-sq, self._eps))

    def pos(self, a, b):
        return -self._dist(super().pos(a, b))

    def pos_backward(self, a, b, g):
        # score = -sqrt(D) with D = -squared_l2: dscore/dsquared = 0.5 / sqrt(D)
        return super().pos_backward(a, b, g * 0.5 / self._dist(super().pos(a, b)))

    def neg(self, a3, n3, out=None):
        s = super().neg(a3, n3, out)  # -max(D, 0); then -sqrt(max(D, eps)) in place, as _dist
        xp = array_module(s)
        xp.negative(s, out=s)
        xp.maximum(s, self._eps, out=s)
        xp.sqrt(s, out=s)
        return xp.negative(s, out=s)

    def neg_backward(self, a3, n3, g):
        return super().neg_backward(a3, n3, g * 0.5 / self._dist(super().neg(a3, n3)))


class Biased(Comparator):
    """PyTorch-BigGraph's ``bias = true``: the first coordinate of each (prepared) side is
    a bias, withheld from the base comparator and added to the score:
    ``score(a, b) = base(a[1:], b[1:]) + a[0] + b[0]``, negatives alike.

    For a base whose negatives are one plain product (dot, cos) the batched scores are
    ``[1, a[1:]] @ n.T + a[0]``: one full-width product, whose transposed product gives
    the negatives' bias gradient too, instead of products and gradient copies on slices.
    """

    bias = True

    def __init__(self, base: Comparator):
        self.base = base
        self.name = base.name
        self._plain_prepare = type(base).prepare is Comparator.prepare
        self._plain_neg = (
            type(base).neg is Comparator.neg and type(base).neg_backward is Comparator.neg_backward
        )

    def prepare(self, x):
        if self._plain_prepare:
            return x, None
        xp = array_module(x)
        rest, cache = self.base.prepare(x[..., 1:])
        y = xp.empty_like(x)
        y[..., :1] = x[..., :1]
        y[..., 1:] = rest
        return y, cache

    def prepare_backward(self, cache, g):
        if self._plain_prepare:
            return g
        out = g.copy()
        out[..., 1:] = self.base.prepare_backward(cache, g[..., 1:])
        return out

    def pos(self, a, b):
        return self.base.pos(a[:, 1:], b[:, 1:]) + a[:, 0] + b[:, 0]

    def pos_backward(self, a, b, g):
        xp = array_module(a)
        ga, gb = xp.empty_like(a), xp.empty_like(b)
        ga[:, 1:], gb[:, 1:] = self.base.pos_backward(a[:, 1:], b[:, 1:], g)
        ga[:, 0] = g
        gb[:, 0] = g
        return ga, gb

    @staticmethod
    def _one_first(a3):
        a1 = a3.copy()
        a1[..., 0] = 1
        return a1

    def neg(self, a3, n3, out=None):
        if self._plain_neg:
            s = self.base.neg(self._one_first(a3), n3, out)
        else:
            s = self.base.neg(a3[..., 1:], n3[..., 1:], out)
            s += n3[..., 0][:, None, :]
        s += a3[..., 0][:, :, None]
        return s

    def neg_backward(self, a3, n3, g):
        if self._plain_neg:
            ga, gn = self.base.neg_backward(self._one_first(a3), n3, g)
            ga[..., 0] = g.sum(-1)  # gn[..., 0] is already g.sum(1): the ones column
            return ga, gn
        xp = array_module(a3)
        ga, gn = xp.empty_like(a3), xp.empty_like(n3)
        ga[..., 1:], gn[..., 1:] = self.base.neg_backward(a3[..., 1:], n3[..., 1:], g)
        ga[..., 0] = g.sum(-1)
        gn[..., 0] = g.sum(1)
        return ga, gn


# =========================================================================== losses
class Loss:
    """``__call__(pos (N,), neg (N, k), weight (N,) or None)`` -> (loss, gpos, gneg).

    Losses are summed over edges, as PyTorch-BigGraph does. Masked negatives are -inf
    and contribute neither loss nor gradient. The gradient is computed with the loss
    because training always wants both, and it costs a fraction of the forward.
    """

    name = ""

    def __init__(self, margin: float = 0.1):
        self.margin = margin


def _weighted(xp, loss_rows, gpos, gneg, weight):
    if weight is not None:
        loss_rows = loss_rows * weight
        gpos = gpos * weight
        gneg = gneg * weight[:, None]
    return loss_rows.sum(), gpos, gneg


@register_loss
class Softmax(Loss):
    """Cross-entropy of the positive against its negatives: -pos + logsumexp(pos, negs)."""

    name = "softmax"

    def __call__(self, pos, neg, weight=None):
        xp = array_module(pos)
        m = xp.maximum(pos, neg.max(-1) if neg.shape[1] else pos)
        epos = xp.exp(pos - m)
        eneg = xp.subtract(neg, m[:, None])
        xp.exp(eneg, out=eneg)  # in place: the (N, k) arrays are this loss's whole cost
        z = epos + eneg.sum(-1)
        loss_rows = xp.log(z) + m - pos
        eneg /= z[:, None]
        return _weighted(xp, loss_rows, epos / z - 1, eneg, weight)

    def masked(self, pos, neg, pos_ids, neg_ids, chunk, diag, weight=None):
        """`__call__` on chunked scores ``neg`` (N, k, overwritten with their gradient)
        whose masked negatives are named by ids (as `BatchPlan` names them): the compiled
        masking and max-shift, numpy's exp, the compiled normalisation, the same numbers
        as masking ``neg`` and calling. None where the kernels do not run (then do that).

        Why: the loss is a handful of passes over (N, k) scores, and the mask another
        array built and applied; two compiled passes around exp replace them."""
        from ember import _cpu_kernels

        m = _cpu_kernels.softmax_shift_(neg, pos, pos_ids, neg_ids, chunk, diag)
        if m is None:
            return None
        epos = np.exp(pos - m)
        np.exp(neg, out=neg)
        z = _cpu_kernels.softmax_normalize_(neg, epos)
        loss_rows = np.log(z) + m - pos
        return _weighted(np, loss_rows, epos / z - 1, neg, weight)


@register_loss
class Ranking(Loss):
    """Margin ranking: sum over negatives of max(0, margin - pos + neg)."""

    name = "ranking"

    def __call__(self, pos, neg, weight=None):
        xp = array_module(pos)
        viol = self.margin - pos[:, None] + neg
        active = viol > 0
        gneg = active.astype(pos.dtype)
        loss_rows = xp.where(active, viol, 0).sum(-1)
        return _weighted(xp, loss_rows, -gneg.sum(-1), gneg, weight)


def _softplus(xp, x):
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(xp, x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


@register_loss
class Logistic(Loss):
    """Binary cross-entropy: softplus(-pos) + the mean over negatives of softplus(neg)."""

    name = "logistic"

    def __call__(self, pos, neg, weight=None):
        xp = array_module(pos)
        k = max(neg.shape[1], 1)
        loss_rows = _softplus(xp, -pos) + _softplus(xp, neg).sum(-1) / k
        return _weighted(xp, loss_rows, -_sigmoid(xp, -pos), _sigmoid(xp, neg) / k, weight)


# =========================================================================== the model
class _Mixed(Operator):
    """Stands for several operator kinds in one model (one per relation): what code
    that asks a model's ``operator`` for its traits sees. Applying it needs each row's
    relation, so the model does that (`Model.transform`)."""

    name = "mixed"

    def __init__(self, dim, ops, width, interleaved):
        self.dim, self.ops, self.width = dim, ops, width
        self.complex = any(op.complex for op in ops)
        self.interleaved = interleaved

    def num_params(self):
        return self.width


class Model:
    """The parts of one model plus its relation parameter tables.

    ``theta[0]`` (R, p) parametrises the rhs side's operator (applied to lhs),
    ``theta[1]`` the lhs side's (applied to rhs).

    ``operator`` is one name, or one per relation (PBG's non-dynamic ``relations`` list
    with different operators): then ``p`` is the widest kind's parameter count, a
    relation's row uses its first ``num_params()`` columns (the rest stay zero), and each
    batch applies each kind to its own rows (`Model.transform`).

    ``bias``: PBG's bias coordinate (`Biased`); ``relation_weights`` (R,): each edge's
    loss is multiplied by its relation's weight (PBG's ``relations[i].weight``).
    """

    def __init__(
        self,
        operator,
        comparator: str,
        loss_fn: str,
        dim: int,
        num_relations: int,
        margin: float = 0.1,
        regularization_coef: float = 0.0,
        *,
        fast_layout: bool = False,
        bias: bool = False,
        relation_weights=None,
        regularizer: str = "N3",
    ):
        from ember.errors import ConfigError

        names = [operator] * num_relations if isinstance(operator, str) else list(operator)
        if len(names) != num_relations:
            raise ConfigError(f"relations: {len(names)} operators for {num_relations} relation types")
        kinds = list(dict.fromkeys(names)) or ["none"]
        for what, reg, name in [("operator", OPERATORS, k) for k in kinds] + [
            ("comparator", COMPARATORS, comparator),
            ("loss_fn", LOSSES, loss_fn),
        ]:
            if name not in reg:
                raise ConfigError(f"{what}: unknown {name!r}; choose one of {sorted(reg)}")
        # fast_layout: complex operators work on interleaved (re, im) pairs; the trainer
        # converts at its boundaries (to_internal / to_public) so that checkpoints,
        # export and predict always see PyTorch-BigGraph's (real half, imaginary half).
        # Real operators mixed in work on either layout: their parameters are permuted
        # like the embeddings (`_convert`).
        fast = fast_layout and any(OPERATORS[k].complex for k in kinds)
        self.interleaved = fast
        self.ops = {k: OPERATORS[k](dim, interleaved=fast) for k in kinds}
        for k, op in self.ops.items():
            if op.complex and dim % 2:
                raise ConfigError(f"dimension: {k} needs an even dimension, got {dim}")
        self.rel_ops = names
        self.width = max(op.num_params() for op in self.ops.values())
        if len(kinds) == 1:
            self.operator = self.ops[kinds[0]]
            self._kind = None
        else:
            self.operator = _Mixed(dim, list(self.ops.values()), self.width, fast)
            self._kind = np.array([kinds.index(k) for k in names], np.int64)
            self._kinds = kinds
        self.comparator = COMPARATORS[comparator]()
        if bias:
            self.comparator = Biased(self.comparator)
        self.loss = LOSSES[loss_fn](margin)
        self.dim = dim
        self.num_relations = num_relations
        # the N3 regularizer is the only one (the config refuses a coefficient without it)
        self.regularization_coef = regularization_coef if regularizer == "N3" else 0.0
        self.rel_weight = None
        if relation_weights is not None and any(w != 1 for w in relation_weights):
            self.rel_weight = np.asarray(relation_weights, np.float32)

    def _rel_weight_on(self, like):
        """``rel_weight`` on the device of ``like`` (copied there once)."""
        from ember._backend import device_of, to_device

        dev = device_of(like)
        cache = self.__dict__.setdefault("_rel_weight_dev", {})
        if dev not in cache:
            cache[dev] = to_device(self.rel_weight, dev)
        return cache[dev]

    @property
    def operator_names(self):
        """The operator name, or the list of one per relation when they differ (the
        checkpoint manifest's ``operators``)."""
        return self.operator.name if self._kind is None else list(self.rel_ops)

    def init_relations(self, xp, dtype):
        if self._kind is None:
            return [self.operator.init(self.num_relations, xp, dtype) for _ in range(2)]
        out = []
        for _ in range(2):
            th = xp.zeros((self.num_relations, self.width), dtype)
            for k, op in self.ops.items():
                rows = xp.asarray(self._rows_of(k))
                th[rows, : op.num_params()] = op.init(len(rows), xp, dtype)
            out.append(th)
        return out

    # -- operators per relation ------------------------------------------------------
    def op_groups(self, rel):
        """[(operator, row indices or None for all rows)] of a batch's relation ids."""
        if self._kind is None:
            return [(self.operator, None)]
        xp = array_module(rel)
        dev = device_of(rel)  # the kind table copied once per device, not once per batch
        cache = self.__dict__.setdefault("_kind_on", {})
        if dev not in cache:
            cache[dev] = to_device(self._kind, dev)
        kind = cache[dev][rel]
        out = []
        for i, k in enumerate(self._kinds):
            idx = xp.flatnonzero(kind == i)
            if len(idx):
                out.append((self.ops[k], idx))
        return out

    def _op_forward(self, x, rel, theta, groups=None):
        """``operator_rel(x)`` row by row; returns (y, what `_op_backward` needs)."""
        if self._kind is None:
            th = theta[rel]
            return self.operator.forward(x, th), th
        xp = array_module(x)
        groups = self.op_groups(rel) if groups is None else groups
        y = xp.empty_like(x)
        saved = []
        for op, idx in groups:
            th = theta[rel[idx], : op.num_params()]
            y[idx] = op.forward(x[idx], th)
            saved.append(th)
        return y, (groups, saved)

    def _op_backward(self, x, saved, gy):
        """(gx, gth (N, p) or None) of `_op_forward`."""
        if self._kind is None:
            return self.operator.backward(x, saved, gy)
        xp = array_module(x)
        groups, ths = saved
        gx = xp.empty_like(x)
        gth = xp.zeros((len(x), self.width), x.dtype) if self.width else None
        for (op, idx), th in zip(groups, ths):
            gxi, gthi = op.backward(x[idx], th, gy[idx])
            gx[idx] = gxi
            if gthi is not None and op.num_params():
                gth[idx, : op.num_params()] = gthi
        return gx, gth

    def transform(self, x, rel, theta):
        """Each row of ``x`` (N, d) through its relation's operator, with the parameter
        table ``theta`` (R, p) of one side (``rel``: (N,) relation ids)."""
        return self._op_forward(x, rel, theta)[0]

    def relation_row(self, r: int, row):
        """(operator name, the parameters of relation ``r``) from its table row."""
        op = self.ops[self.rel_ops[r]]
        return op.name, row[: op.num_params()]

    def relation_parameters(self, r: int, row) -> list[tuple[str, object]]:
        """Relation ``r``'s parameters, from its table row in PBG's layout, as PBG's named
        parameters (``[("real", ...), ("imag", ...)]`` for ComplEx, ...)."""
        op = self.ops[self.rel_ops[r]]
        return op.named_parameters(row[: op.num_params()])

    # -- layouts ----------------------------------------------------------------------
    @property
    def complex(self) -> bool:
        return self.operator.complex

    def _perm(self, public_to_internal: bool):
        d, h = self.dim, self.dim // 2
        perm = list(range(d))
        perm[0::2], perm[1::2] = range(h), range(h, d)
        if public_to_internal:
            return perm
        inv = [0] * d
        for i, p in enumerate(perm):
            inv[p] = i
        return inv

    def _convert(self, x, what, public_to_internal, out=None):
        if out is not None:  # written into out (of any float dtype): the embeddings' rows
            if what == "theta":
                raise ValueError("_convert: out= is for embeddings")
            if not self.interleaved:
                out[...] = x
                return out
        if not self.interleaved:
            return x
        xp = array_module(x)
        if what != "theta" and x.shape[-1] % 2 == 0:
            # two strided copies of halves: ~9x faster than x[..., perm], whose result is
            # not even C-ordered (8 MiB of rows: 0.8 against 7.2 ms with its C copy)
            h = x.shape[-1] // 2
            out = xp.empty(x.shape, x.dtype) if out is None else out
            if public_to_internal:  # internal (re0, im0, re1, im1, ...) <- public (re..., im...)
                out[..., 0::2], out[..., 1::2] = x[..., :h], x[..., h:]
            else:
                out[..., :h], out[..., h:] = x[..., 0::2], x[..., 1::2]
            return out
        perm = self._perm(public_to_internal)
        if what != "theta":
            if out is not None:
                out[...] = x[..., perm]
                return out
            return x[..., perm]
        # relation parameters: each operator kind permutes its own columns of its rows
        out = x.copy()
        for k, op in self.ops.items():
            p = op.num_params()
            if not p:
                continue
            rows = slice(None) if self._kind is None else xp.asarray(self._rows_of(k))
            out[rows, :p] = op.permute_params(x[rows, :p], perm)
        return out

    def _rows_of(self, kind: str) -> list[int]:
        return [r for r, n in enumerate(self.rel_ops) if n == kind]

    def to_internal(self, x, what="embeddings", out=None):
        """Rows (or relation parameters) in PBG's layout -> this model's layout; ``out``:
        an array of the rows' shape the converted rows are written into (returned)."""
        return self._convert(x, what, True, out)

    def to_public(self, x, what="embeddings"):
        """This model's layout -> PBG's layout (for checkpoints)."""
        return self._convert(x, what, False)

    # -- scoring against candidate sets (evaluation, prediction) -----------------
    def score_candidates(self, keep, rel, theta, cands, side: str, out=None):
        """Scores (N, M) of each edge's kept entity ``keep`` (N, d) with relation ``rel``
        against every candidate (M, d); ``side`` is the side being predicted. ``out``: an
        (N, M) float32 array to write them into (returned), instead of a new one."""
        return self.score_queries(self.queries(keep, rel, theta, side), cands, out)

    def queries(self, keep, rel, theta, side: str):
        """The queries of `score_candidates`, operator applied and prepared (N, d): made
        once for queries scored against many slices of candidates."""
        th = theta[0 if side == "rhs" else 1]
        return self.comparator.prepare(self.transform(keep, rel, th))[0]

    def score_queries(self, q, cands, out=None, zeroed=False):
        """`score_candidates` of prepared queries ``q`` (`queries`). ``zeroed``: ``out``
        holds zeros, and a comparator whose scores are one product (dot, cos) adds it into
        ``out`` (`ember._blas`: no pass zeroing it first); the same bits either way."""
        c, _ = self.comparator.prepare(cands)
        if zeroed and out is not None and type(self.comparator).neg is Comparator.neg:
            from ember._blas import sgemm_nt_acc

            if sgemm_nt_acc(q, c, out):
                return out
        return self.comparator.neg(q[None], c[None], None if out is None else out[None])[0]

    def score_pos(self, lhs, rhs, rel, theta, side: str):
        """Scores (N,) of the edges themselves, from the given side."""
        keep, other = (lhs, rhs) if side == "rhs" else (rhs, lhs)
        th = theta[0 if side == "rhs" else 1]
        a, _ = self.comparator.prepare(self.transform(keep, rel, th))
        b, _ = self.comparator.prepare(other)
        return self.comparator.pos(a, b)


def batch_loss(plan, lhs, rhs, lhs_cand, rhs_cand, theta_r, theta_l, out=None):
    """The loss of a whole chunked batch, both sides, and its gradient with respect to
    each input (raw arrays): ``(total, [g_lhs, g_rhs, g_lhs_cand, g_rhs_cand, g_theta_r,
    g_theta_l])``, a gradient None where an input gets none.

    ``lhs``, ``rhs`` (N, d) are the positives' embeddings; ``lhs_cand``, ``rhs_cand``
    (C, u, d) the uniform candidates shared by each chunk (or None); ``theta_r``,
    ``theta_l`` the relation tables of the two sides. ``plan`` (`BatchPlan`) holds the
    rest: relation ids, chunk size, masks, edge weights. The gradient is computed with
    the loss because training always wants both, at a fraction of the forward's cost.
    Nothing here leaves the arrays' device: the positives' score sums stay there too
    (``plan.pos_sum``), read by the trainer once per bucket. ``out`` (optional): four
    arrays shaped like ``lhs``, ``rhs``, ``lhs_cand``, ``rhs_cand`` (or None each) that
    receive those gradients, the two sides' summed straight into them, and are returned
    as them: no new array and no copy of it for the caller to make.
    """
    xp = array_module(lhs)
    model: Model = plan.model
    grads = [None] * 6
    total = xp.zeros((), lhs.dtype)
    for side, keep, other, cand, theta, ki, oi, ti in (
        ("rhs", lhs, rhs, rhs_cand, theta_r, 0, 1, 4),
        ("lhs", rhs, lhs, lhs_cand, theta_l, 1, 0, 5),
    ):
        if side in plan.disabled:
            continue
        loss, gkeep, gother, gcand, gth = _side(xp, model, plan, side, keep, other, cand, theta)
        total = total + loss
        for i, g in ((ki, gkeep), (oi, gother), (ti, gth), (3 - (side == "lhs"), gcand)):
            if g is not None:
                dst = out[i] if out is not None and i < 4 else None
                grads[i] = g if grads[i] is None else xp.add(grads[i], g, out=dst)
    coef = model.regularization_coef
    if coef:
        for i, x in ((0, lhs), (1, rhs)):
            r, g = _n3(xp, x, model.complex, model.interleaved)
            total = total + coef * r
            grads[i] = grads[i] + coef * g if grads[i] is not None else coef * g
    for i, dst in enumerate(out or ()):
        if dst is not None and grads[i] is not dst:
            dst[...] = 0 if grads[i] is None else grads[i]
            grads[i] = dst
    return total, grads


def _n3(xp, x, complex_, interleaved=False):
    """N3 (Lacroix et al. 2018): sum of cubed moduli, and its gradient."""
    if interleaved:  # moduli of (re, im) pairs
        mod = xp.abs(_as_complex(xp, x))
        g = 3 * (x.reshape(len(x), -1, 2) * mod[:, :, None]).reshape(x.shape)
        return (mod**3).sum(), g
    if complex_:  # moduli of (real half, imaginary half) pairs
        h = x.shape[1] // 2
        mod = xp.sqrt(x[:, :h] ** 2 + x[:, h:] ** 2)
        g = xp.empty_like(x)
        xp.multiply(x[:, :h], mod, out=g[:, :h])
        xp.multiply(x[:, h:], mod, out=g[:, h:])
        g *= 3
        return (mod**3).sum(), g
    a = xp.abs(x)
    return (a**3).sum(), 3 * a * x


def _side(xp, model, plan, side, keep, other, cand, theta):
    """Loss and gradients of one side: predict ``other`` from ``op(keep)``."""
    cmp = model.comparator
    n, d = keep.shape
    b = plan.chunk
    c = n // b
    y, saved = model._op_forward(keep, plan.rel, theta, plan.op_groups)
    a, ca = cmp.prepare(y)
    o, co = cmp.prepare(other)
    pos = cmp.pos(a, o)
    plan.pos_sum[side] = pos.sum()  # score statistics for the per-bucket log, on the device
    parts = []
    if plan.batch_negs:
        parts.append(o.reshape(c, b, d))
    if cand is not None:
        cp, cc = cmp.prepare(cand.reshape(-1, d))
        parts.append(cp.reshape(cand.shape))
    if parts:
        n3 = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=1)
        a3 = a.reshape(c, b, d)
        neg = cmp.neg(a3, n3)
        k = neg.shape[2]
        out = None
        if type(model.loss) is Softmax:  # the masking fused into the loss (CPU, compiled)
            out = model.loss.masked(
                pos, neg.reshape(n, k), *plan.mask_ids[side], b, plan.batch_negs, plan.weight
            )
        if out is None:
            xp.putmask(neg, plan.masks[side], -math.inf)
            out = model.loss(pos, neg.reshape(n, k), plan.weight)
        loss, gpos, gneg = out
        gneg = gneg.reshape(c, b, k)
        ga3, gn3 = cmp.neg_backward(a3, n3, gneg)
        ga, go = cmp.pos_backward_add(a, o, gpos, ga3.reshape(n, d), gn3[:, :b] if plan.batch_negs else None)
    else:
        loss, gpos, _ = model.loss(pos, xp.zeros((n, 0), pos.dtype), plan.weight)
        ga, go = cmp.pos_backward(a, o, gpos)
    gcand = None
    if parts:
        if cand is not None:
            gc = gn3[:, (b if plan.batch_negs else 0) :]
            if cc is not None:
                gc = cmp.prepare_backward(cc, gc.reshape(-1, d)).reshape(cand.shape)
            gcand = gc
    gkeep, gth = model._op_backward(keep, saved, cmp.prepare_backward(ca, ga))
    gother = cmp.prepare_backward(co, go)
    gtheta = None
    if gth is not None and theta.shape[1]:
        gtheta = _scatter_rows(xp, theta, plan.rel, gth, plan.__dict__)
    return loss, gkeep, gother, gcand, gtheta


def _scatter_rows(xp, like, rows, vals, cache=None):
    """A table shaped ``like`` with ``vals`` summed into ``rows`` (a coalescing sort and a
    CSR product, several times faster than ``add.at`` on repeated rows). ``cache`` (a
    dict): where both sides of a batch share the one-hot matrix of its relations."""
    from ember.sparse import coalesce_rows

    if len(like) <= 64:  # few relations: a one-hot (R, N) @ (N, p) product is cheaper still
        key = ("_onehot", len(like), vals.dtype)
        onehot = cache.get(key) if cache is not None else None
        if onehot is None:
            onehot = (rows[None, :] == xp.arange(len(like))[:, None]).astype(vals.dtype)
            if cache is not None:
                cache[key] = onehot
        return onehot @ vals
    out = xp.zeros_like(like)
    r, v = coalesce_rows(rows, vals)
    out[r] = v
    return out


class BatchPlan:
    """What the fused loss needs besides embeddings: relation ids, chunking, masks.

    ``lhs_ids``/``rhs_ids`` (N,) and ``lhs_cand_ids``/``rhs_cand_ids`` (C, u) are the
    entity ids the masks compare: a negative equal to the positive's own entity is
    masked (-inf) out of that positive's negatives. The batch negatives always include
    the positive itself (the chunk's diagonal), so that one is always masked.
    """

    def __init__(
        self,
        model,
        rel,
        chunk,
        lhs_ids,
        rhs_ids,
        lhs_cand_ids=None,
        rhs_cand_ids=None,
        batch_negs=True,
        weight=None,
        disabled=(),
    ):
        xp = array_module(rel)
        self.model, self.rel, self.chunk = model, rel, chunk
        if model.rel_weight is not None:  # relations[i].weight scales its edges' losses
            w = model._rel_weight_on(rel)[rel]
            weight = w if weight is None else weight * w
        self.batch_negs, self.weight, self.disabled = batch_negs, weight, tuple(disabled)
        self.op_groups = model.op_groups(rel)  # the rows of each operator kind, both sides
        self.pos_sum = {}
        n = len(rel)
        c = n // chunk
        # side -> (the positives' ids (N,), their chunk's negatives' ids (C, k))
        self.mask_ids = {}
        for side, ids, cand in (("rhs", rhs_ids, rhs_cand_ids), ("lhs", lhs_ids, lhs_cand_ids)):
            parts = []
            if batch_negs:
                parts.append(ids.reshape(c, chunk))
            if cand is not None:
                parts.append(cand)
            if parts:
                neg_ids = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=1)
                self.mask_ids[side] = (ids, neg_ids)
        self._masks = None

    @property
    def masks(self) -> dict:
        """side -> the (C, chunk, k) boolean mask of the negatives that are the positive's own
        entity (-inf in the scores); made on first use (the compiled softmax needs none)."""
        if self._masks is None:
            xp = array_module(self.rel)
            chunk, self._masks = self.chunk, {}
            for side, (ids, neg_ids) in self.mask_ids.items():
                c = len(neg_ids)
                mask = ids.reshape(c, chunk, 1) == neg_ids[:, None, :]
                if self.batch_negs:  # the diagonal, even where the ids differ (no duplicates)
                    mask[:, xp.arange(chunk), xp.arange(chunk)] = True
                self._masks[side] = mask
        return self._masks
