"""The model's parts as autograd nodes: the fused loss of a chunked batch, and each part
(operator, comparator, loss) as an ember op.

Why one node for a whole batch: its forward is a handful of whole-array products whose
backward is known in closed form (`ember.pbg.model.batch_loss` computes both); as
separate ember ops a step would be dozens of nodes, and an eager engine pays per op.
`apply_operator`, `compare` and `loss_of` expose each part as an ember op, for tests and
for composing by hand.
"""

from __future__ import annotations

import numpy as np

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd import Function
from ember.pbg.model import COMPARATORS, LOSSES, OPERATORS, _scatter_rows, batch_loss
from ember.sparse import RowSparseGrad

__all__ = ["ChunkedLoss", "ChunkedLossRows", "GatherRows", "apply_operator", "compare", "loss_of"]


class GatherRows(Function):
    """``table[ids]`` (float16 rows upcast to float32) plus the type's global
    embedding ``glob`` (or None): the trainer's lookup of a step's rows, as one node.

    Its table gradient is an *uncoalesced* `RowSparseGrad` (the rows' gradient as the step
    made it, repeated ids and all): `ember.optim.RowAdagrad` sums the repeats inside the
    pass that applies them, so no sort, no CSR product and no coalesced copy come between
    the backward and the update. ``glob`` gets the sum of the rows' gradients. ``table``
    is a leaf (a sparse gradient cannot flow into another node), as the trainer's per-step
    leaves are."""

    raw = True

    def forward(ctx, table, glob, ids):
        xp = array_module(table)
        rows = xp.take(table, ids, axis=0)
        if rows.dtype == np.float16:  # float16 tables: float32 arithmetic and gradients
            rows = rows.astype(np.float32)
        if glob is not None:
            rows += glob
        ctx.ids, ctx.shape = ids, table.shape
        return rows

    def backward(ctx, g):
        need_table, need_glob = ctx.needs_input_grad[:2]
        gtable = RowSparseGrad(ctx.ids, g._data, ctx.shape) if need_table else None
        return gtable, _wrap(g._data.sum(0)) if need_glob else None, None


class ChunkedLoss(Function):
    """`batch_loss` as one autograd node: inputs ``lhs``, ``rhs``, ``lhs_cand``,
    ``rhs_cand``, ``theta_r``, ``theta_l`` (arrays or tensors) and ``plan``; the gradient
    computed in the forward is scaled by the upstream gradient in backward."""

    raw = True

    def forward(ctx, lhs, rhs, lhs_cand, rhs_cand, theta_r, theta_l, plan):
        total, ctx.grads = batch_loss(plan, lhs, rhs, lhs_cand, rhs_cand, theta_r, theta_l)
        return total

    def backward(ctx, g):
        return tuple(None if gi is None else g * _wrap(gi) for gi in ctx.grads) + (None,)


class ChunkedLossRows(Function):
    """`ChunkedLoss` on rows gathered by ``ember.sparse.embedding``: one gathered tensor
    per embedding table (``rows_b`` is None when both sides share one table).

    ``plan.layout`` maps each of lhs, rhs, lhs_cand, rhs_cand to a list of segments
    ``(table, start, stop, shape)``: which rows tensor (0 or 1) and which slice of it (a
    part made of two segments, candidates drawn from both tables, is their concatenation
    along the candidates' axis). The backward writes the parts' gradients into one array
    per table, which the embedding turns into a single coalesced `RowSparseGrad`: one
    gather, one coalesce and one optimizer step per table.
    """

    raw = True

    def forward(ctx, rows_a, rows_b, theta_r, theta_l, plan):
        tables = (rows_a, rows_b)
        xp = array_module(rows_a)

        def part(segments):
            views = [tables[k][a:b].reshape(shape) for k, a, b, shape in segments]
            return views[0] if len(views) == 1 else xp.concatenate(views, axis=1)

        parts = [None if lay is None else part(lay) for lay in plan.layout]
        bufs = [None if t is None else xp.empty_like(t) for t in tables]
        out = []  # a part that is one slice of one table: batch_loss writes its gradient there
        for lay in plan.layout:
            if lay is not None and len(lay) == 1:
                k, a, b, shape = lay[0]
                out.append(bufs[k][a:b].reshape(shape))  # a view: contiguous rows
            else:
                out.append(None)
        total, grads = batch_loss(plan, *parts, theta_r, theta_l, out=out)
        for lay, g, dst in zip(plan.layout, grads[:4], out):
            if lay is None or dst is not None:
                continue
            at = 0  # candidates from both tables: each segment's slice of their gradient
            for k, a, b, shape in lay:
                buf = bufs[k][a:b]
                if g is None:
                    buf[...] = 0
                else:
                    buf.reshape(shape)[...] = g[:, at : at + shape[1]]  # no copy of the strided slice first
                    at += shape[1]
        ctx.grads = bufs + grads[4:]
        return total

    def backward(ctx, g):
        if type(g._data) is np.ndarray and g._data.shape == () and g._data == 1:
            # loss.backward(): the gradients as computed, not a (rows, dim) pass multiplying by 1
            return tuple(None if gi is None else _wrap(gi) for gi in ctx.grads) + (None,)
        return tuple(None if gi is None else g * _wrap(gi) for gi in ctx.grads) + (None,)


class _OperatorOp(Function):
    raw = True

    def forward(ctx, x, theta, rel, op):
        ctx.x, ctx.theta, ctx.rel, ctx.op = x, theta, rel, op
        return op.forward(x, theta[rel])

    def backward(ctx, g):
        xp = array_module(ctx.x)
        gx, gth = ctx.op.backward(ctx.x, ctx.theta[ctx.rel], g._data)
        gtheta = None
        if gth is not None:
            gtheta = _wrap(_scatter_rows(xp, ctx.theta, ctx.rel, gth))
        return _wrap(gx), gtheta, None, None


def apply_operator(name: str, x: Tensor, theta: Tensor, rel) -> Tensor:
    """``operator(x)`` with each row's relation parameters ``theta[rel]``, as an ember op."""
    return _OperatorOp.apply(x, theta, rel, OPERATORS[name](x.shape[1]))


class _CompareOp(Function):
    raw = True

    def forward(ctx, a, b, cmp, batched):
        ap, ctx.ca = cmp.prepare(a)
        bp, ctx.cb = cmp.prepare(b.reshape(-1, b.shape[-1]))
        bp = bp.reshape(b.shape)
        ctx.ap, ctx.bp, ctx.cmp, ctx.batched = ap, bp, cmp, batched
        if batched:
            return cmp.neg(ap, bp)
        return cmp.pos(ap, bp)

    def backward(ctx, g):
        cmp = ctx.cmp
        if ctx.batched:
            ga, gb = cmp.neg_backward(ctx.ap, ctx.bp, g._data)
        else:
            ga, gb = cmp.pos_backward(ctx.ap, ctx.bp, g._data)
        gb = cmp.prepare_backward(ctx.cb, gb.reshape(-1, gb.shape[-1])).reshape(gb.shape)
        return _wrap(cmp.prepare_backward(ctx.ca, ga)), _wrap(gb), None, None


def compare(name: str, a: Tensor, b: Tensor) -> Tensor:
    """Comparator scores as an ember op: rowwise for 2-d ``a``, ``b`` (N, d) -> (N,);
    batched for 3-d ``a`` (C, b, d) and ``b`` (C, k, d) -> (C, b, k)."""
    cmp = COMPARATORS[name]()
    if a.ndim == 3:
        return _CompareOp.apply(a, b, cmp, True)
    return _CompareOp.apply(a, b, cmp, False)


class _LossOp(Function):
    raw = True

    def forward(ctx, pos, neg, weight, loss):
        value, ctx.gpos, ctx.gneg = loss(pos, neg, weight)
        return value

    def backward(ctx, g):
        return g * _wrap(ctx.gpos), g * _wrap(ctx.gneg), None, None


def loss_of(name: str, pos: Tensor, neg: Tensor, weight=None, margin: float = 0.1) -> Tensor:
    """The summed loss of positive scores (N,) against negative scores (N, k)."""
    return _LossOp.apply(pos, neg, weight, LOSSES[name](margin))
