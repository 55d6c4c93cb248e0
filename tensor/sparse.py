"""Sparse row gradients for embedding tables, and the embedding lookup that makes them.

An embedding lookup touches a few rows of a possibly huge table. Its gradient, with
``sparse=True``, is a :class:`RowSparseGrad`: the touched row indices plus one value row
each, duplicates summed ("coalesced"). It never allocates a table-sized array; the
sparse-aware optimizers in ``ember.optim`` (``SGD``, ``Adagrad``, ``RowAdagrad``) apply
it to the touched rows only, so an update costs the same on a 10^5- or 10^7-row table.

>>> w = ember.randn(1000, 16, requires_grad=True)
>>> ember.sparse.embedding(w, ember.tensor([[3, 5], [3, 9]]), sparse=True).sum().backward()
>>> w.grad                     # RowSparseGrad(rows=3, shape=(1000, 16), dtype=float32)
>>> w.grad.indices, w.grad.values.shape
(array([3, 5, 9]), (3, 16))

The backward engine stores such a gradient on the leaf as is (it has
``_ember_sparse = True``, the leaf's ``shape``, and ``+`` for accumulation).
"""

from __future__ import annotations

import numpy as np

# a dependency: its CSR product is the fastest CPU coalescing measured, 3-4x the best
# pure-numpy one (benchmarks/sparse_update.py); numpy's add.at stays for other dtypes
import scipy.sparse as _scipy_sparse

from ember._backend import array_module, device_of, to_host
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.autograd.grad_mode import _state

__all__ = ["BagMean", "RowSparseGrad", "bag_mean", "embedding", "coalesce_rows"]

_USE_CSR = True  # the tests switch it off to check the add.at path against it


def _is_cupy(xp) -> bool:
    return getattr(xp, "__name__", "") == "cupy"


def _index_add(xp, target, index, values):
    """``target[index] += values`` with repeated indices accumulated, on any backend."""
    if _is_cupy(xp):
        import cupyx

        cupyx.scatter_add(target, index, values)
    elif hasattr(xp.add, "at"):
        xp.add.at(target, index, values)
    else:  # the test stand-in device: ufunc methods dispatch through __array_ufunc__
        np.add.at(target, index, values)


def coalesce_rows(indices, values):
    """Sum the value rows of repeated indices: returns ``(unique sorted indices, sums)``.

    ``indices`` is a 1-D integer array, ``values`` an array of shape ``(n, ...)``, both on
    one device. Formulations measured on a 20,000 x 128 float32 gradient (rows drawn from
    10,000; benchmarks/sparse_update.py has the current numbers): a scipy CSR product
    built straight from the sort order ~2.5-3.5 ms, flat 1-D ``np.add.at`` ~7-8 ms,
    ``bincount`` ~14 ms, sort + ``reduceat`` ~20 ms, 2-D ``np.add.at`` ~23 ms. So: the CSR
    product for float32/float64, else the flat ``add.at``; on CUDA an atomic scatter.
    """
    xp = array_module(values)
    n = int(indices.shape[0])
    if n == 0:
        return indices.astype(xp.int64), values
    order = xp.argsort(indices, kind="stable")
    s = indices[order]
    first = xp.empty(n, dtype=bool)
    first[0] = True
    xp.not_equal(s[1:], s[:-1], out=first[1:])
    starts = xp.flatnonzero(first)
    rows = s[starts].astype(xp.int64, copy=False)
    m = int(starts.shape[0])
    if m == n:  # no duplicates: just the sorted rows
        return rows, values[order]
    tail = values.shape[1:]
    flat = values.reshape(n, -1)
    if xp is np and _USE_CSR and values.dtype in (np.float32, np.float64):
        # rows of the sorted order are CSR rows: (m x n) selection matrix @ values
        indptr = np.append(starts, n)
        ones = np.ones(n, dtype=values.dtype)
        sel = _scipy_sparse.csr_matrix((ones, order, indptr), shape=(m, n))
        out = np.asarray(sel @ flat, dtype=values.dtype)
    elif xp is np:
        # flat 1-D add.at (numpy's fast path for scalar-indexed accumulation), scattering
        # the values in their original order: no gathered copy of them
        inverse = xp.empty(n, dtype=xp.int64)
        inverse[order] = xp.cumsum(first) - 1
        k = flat.shape[1]
        out = xp.zeros((m, k), dtype=values.dtype)
        pos = (inverse[:, None] * k + xp.arange(k)).reshape(-1)
        xp.add.at(out.reshape(-1), pos, flat.reshape(-1))
    else:
        seg = xp.cumsum(first) - 1
        out = xp.zeros((m, flat.shape[1]), dtype=values.dtype)
        _index_add(xp, out, seg, flat[order])
    return rows, out.reshape((m,) + tail)


class RowSparseGrad:
    """A gradient that holds only some rows of a table: ``indices`` (1-D int64) and
    ``values`` (``(len(indices),) + shape[1:]``), raw numpy/cupy arrays on one device.

    ``coalesced`` says the indices are unique and sorted. ``a + b`` concatenates and
    coalesces (or, with a dense Tensor, returns a dense Tensor). ``to_dense()`` builds
    the full table: the slow path, for tests and for mixing with dense gradients.
    """

    _ember_sparse = True
    is_sparse = True
    __slots__ = ("indices", "values", "shape", "coalesced")

    def __init__(self, indices, values, shape, *, coalesced=False):
        if type(indices) is Tensor:
            indices = indices._data
        if type(values) is Tensor:
            values = values._data
        xp = array_module(values)
        indices = indices.reshape(-1)
        if indices.dtype != xp.int64:
            indices = indices.astype(xp.int64)
        shape = tuple(int(s) for s in shape)
        if values.shape != (indices.shape[0],) + shape[1:]:
            raise ValueError(
                f"RowSparseGrad: values of shape {tuple(values.shape)} do not match "
                f"{indices.shape[0]} indices of a table of shape {shape}"
            )
        self.indices = indices
        self.values = values
        self.shape = shape
        self.coalesced = coalesced

    # ---- metadata -------------------------------------------------------------------
    @property
    def dtype(self):
        return self.values.dtype

    @property
    def device(self):
        return device_of(self.values)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def nnz_rows(self) -> int:
        return int(self.indices.shape[0])

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def __repr__(self):
        return (
            f"RowSparseGrad(rows={self.nnz_rows}, shape={self.shape}, "
            f"dtype={self.dtype}, device='{self.device}'" + ("" if self.coalesced else ", uncoalesced") + ")"
        )

    # ---- operations -----------------------------------------------------------------
    def coalesce(self) -> RowSparseGrad:
        """Unique sorted rows, duplicates summed (self when already coalesced)."""
        if self.coalesced:
            return self
        rows, vals = coalesce_rows(self.indices, self.values)
        return RowSparseGrad(rows, vals, self.shape, coalesced=True)

    def clone(self) -> RowSparseGrad:
        return RowSparseGrad(self.indices.copy(), self.values.copy(), self.shape, coalesced=self.coalesced)

    def detach(self) -> RowSparseGrad:
        return self

    def to_dense(self) -> Tensor:
        xp = array_module(self.values)
        out = xp.zeros(self.shape, dtype=self.values.dtype)
        if self.coalesced:
            out[self.indices] = self.values
        else:
            _index_add(xp, out, self.indices, self.values)
        return _wrap(out)

    def __add__(self, other):
        if other is None or (isinstance(other, (int, float)) and other == 0):
            return self
        if isinstance(other, RowSparseGrad):
            if other.shape != self.shape:
                raise RuntimeError(f"cannot add sparse gradients of shapes {self.shape} and {other.shape}")
            xp = array_module(self.values)
            idx = xp.concatenate([self.indices, other.indices])
            vals = xp.concatenate([self.values, other.values.astype(self.values.dtype, copy=False)])
            return RowSparseGrad(idx, vals, self.shape).coalesce()
        if type(other) is Tensor:
            if tuple(other.shape) != self.shape:
                raise RuntimeError(
                    f"cannot add a sparse gradient of shape {self.shape} to a dense one of "
                    f"shape {tuple(other.shape)}"
                )
            out = other._data.copy()
            vals = self.values.astype(out.dtype, copy=False)
            if self.coalesced:
                out[self.indices] += vals
            else:
                _index_add(array_module(out), out, self.indices, vals)
            return _wrap(out)
        return NotImplemented

    __radd__ = __add__

    def __mul__(self, scalar):
        if not isinstance(scalar, (int, float)):
            return NotImplemented
        return RowSparseGrad(self.indices, self.values * scalar, self.shape, coalesced=self.coalesced)

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1


# ---- the embedding lookup --------------------------------------------------------------


class _Embedding(Function):
    """``weight[indices]`` (rows); backward is an index-add, or a RowSparseGrad."""

    raw = True

    def forward(ctx, weight, indices, padding_idx, sparse):
        ctx.flat = indices.reshape(-1)
        ctx.wshape = weight.shape
        ctx.padding_idx = padding_idx
        ctx.sparse = sparse  # only ever true for a leaf weight
        return array_module(weight).take(weight, indices, axis=0)

    def backward(ctx, g):
        shape = ctx.wshape
        flat = ctx.flat
        g2 = g.reshape((flat.shape[0],) + tuple(shape[1:]))
        keep = None
        if ctx.padding_idx is not None:
            keep = array_module(flat).flatnonzero(flat != ctx.padding_idx)
            flat = flat[keep]
        # a sparse gradient cannot be differentiated again: create_graph takes the dense path
        if ctx.sparse and not _state.enabled:
            vals = g2._data if keep is None else g2._data[keep]
            return RowSparseGrad(flat, vals, shape).coalesce(), None, None, None
        if keep is not None:
            g2 = g2[_wrap(keep)]
        return _RowsAdd.apply(g2, flat, shape), None, None, None


class _RowsAdd(Function):
    """Zeros of ``shape`` with the rows of ``src`` added at ``rows`` (the dense gradient);
    its backward is the lookup again, so double backward works."""

    raw = True

    def forward(ctx, src, rows, shape):
        xp = array_module(src)
        out = xp.zeros(shape, dtype=src.dtype)
        _index_add(xp, out, rows, src)
        ctx.rows = rows
        return out

    def backward(ctx, gg):
        return _Embedding.apply(gg, ctx.rows, None, False), None, None


def embedding(weight, indices, *, sparse=False, padding_idx=None, max_norm=None, norm_type=2.0):
    """Rows of ``weight`` (``(num_embeddings, dim)``) picked by integer ``indices``.

    The result has shape ``indices.shape + (dim,)``. Rows at ``padding_idx`` get no
    gradient. With ``max_norm``, looked-up rows whose ``norm_type``-norm exceeds it are
    rescaled in place first (as PyTorch does). With ``sparse=True`` and a leaf
    ``weight``, the gradient is a coalesced :class:`RowSparseGrad`.

    >>> out = embedding(w, ember.tensor([1, 4, 1]), sparse=True)   # (3, dim)
    """
    if type(weight) is not Tensor:
        raise TypeError(f"embedding(): weight must be a Tensor, got {type(weight).__name__}")
    xp = array_module(weight._data)
    idx = indices._data if type(indices) is Tensor else indices
    if isinstance(idx, (list, tuple, int)):
        idx = xp.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding(): indices must be integers, got dtype {idx.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding(): weight must be 2-D, got shape {tuple(weight.shape)}")
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"padding_idx {padding_idx} out of range for {num} embeddings")
        if padding_idx < 0:
            padding_idx += num
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    # a sparse gradient can only land on a leaf: it cannot flow into another op's backward
    return _Embedding.apply(weight, idx, padding_idx, bool(sparse) and weight.grad_fn is None)


def _renorm_rows(weight, idx, max_norm, norm_type):
    """PyTorch's ``embedding_renorm_``: scale rows above ``max_norm`` down to it, in place."""
    w = weight._data
    xp = array_module(w)
    rows = xp.unique(idx.reshape(-1))
    sub = w[rows]
    if norm_type == float("inf"):
        norms = xp.abs(sub).max(axis=1)
    else:
        norms = (xp.abs(sub) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    big = norms > max_norm
    if bool(big.any()):
        scale = (max_norm / (norms[big] + 1e-7)).astype(w.dtype)
        w[rows[big]] = sub[big] * scale[:, None]
        weight._bump_version()


# ---- the mean of bags of rows ----------------------------------------------------------


def _bag_segments(xp, offsets, total):
    """The bag of every entry of a bags' flat index array: ``offsets`` (n+1) are where
    each bag starts (and the end); a search, not ``repeat``, so cupy needs no host copy
    of the lengths."""
    return xp.searchsorted(offsets[1:], xp.arange(total, dtype=offsets.dtype), side="right")


def bag_mean_array(weight, indices, offsets, *, seg=None, inv=None):
    """`bag_mean`'s forward on raw arrays (numpy, cupy, the stand-in), no autograd: what
    code that only reads a trained table calls, so that it computes the very numbers
    training did. float16 rows are summed in float32 and the means rounded back."""
    xp = array_module(weight)
    n = int(offsets.shape[0]) - 1
    if inv is None:
        lens = offsets[1:] - offsets[:-1]
        inv = (1.0 / xp.maximum(lens, 1)).astype(weight.dtype)
    if seg is None:
        seg = _bag_segments(xp, offsets, int(indices.shape[0]))
    tail = weight.shape[1:]
    if xp is np and weight.dtype in (np.float32, np.float64):
        # rows of the (bags x table rows) CSR matrix are the bags: one product that reads
        # only the rows the bags name, no gathered copy of them
        mat = _scipy_sparse.csr_matrix((inv[seg], indices, offsets), shape=(n, weight.shape[0]))
        flat = weight.reshape(weight.shape[0], -1)
        return np.asarray(mat @ flat, dtype=weight.dtype).reshape((n,) + tail)
    acc = np.float32 if weight.dtype == np.float16 else weight.dtype
    out = xp.zeros((n,) + tail, dtype=acc)
    _index_add(xp, out, seg, xp.take(weight, indices, axis=0).astype(acc, copy=False))
    out *= inv.astype(acc).reshape((n,) + (1,) * len(tail))
    return out.astype(weight.dtype, copy=False)


class BagMean(Function):
    """Row ``b`` of the result is the mean of ``weight[indices[offsets[b]:offsets[b+1]]]``
    (an empty bag gives zeros). Backward sends ``g[b] / |bag b|`` to every occurrence of
    a row in bag ``b``: with ``sparse`` (and a leaf weight) as one coalesced
    `RowSparseGrad` over the touched rows, else as a dense, differentiable index-add.

    One node for a whole batch of bags: on numpy (float32/float64) the forward is one
    sparse (bags x rows) @ weight product, which reads only the referenced rows."""

    raw = True

    def forward(ctx, weight, indices, offsets, sparse):
        xp = array_module(weight)
        total = int(indices.shape[0])
        lens = offsets[1:] - offsets[:-1]
        inv = (1.0 / xp.maximum(lens, 1)).astype(weight.dtype)
        seg = _bag_segments(xp, offsets, total)
        ctx.indices, ctx.seg, ctx.inv, ctx.wshape = indices, seg, inv, weight.shape
        ctx.sparse = sparse
        return bag_mean_array(weight, indices, offsets, seg=seg, inv=inv)

    def backward(ctx, g):
        xp = array_module(g._data)
        inv = ctx.inv.astype(g.dtype, copy=False).reshape((-1,) + (1,) * (g.ndim - 1))
        if ctx.sparse and not _state.enabled:
            vals = xp.take(g._data * inv, ctx.seg, axis=0)
            return RowSparseGrad(ctx.indices, vals, ctx.wshape).coalesce(), None, None, None
        # create_graph (or a dense weight): ember ops, so that it differentiates again
        per_entry = _Embedding.apply(g * _wrap(inv), ctx.seg, None, False)
        return _RowsAdd.apply(per_entry, ctx.indices, ctx.wshape), None, None, None


def bag_mean(weight, indices, offsets, *, sparse=False):
    """The mean of each bag of ``weight``'s rows: bag ``b`` is
    ``indices[offsets[b]:offsets[b + 1]]`` (``offsets``: n+1 non-decreasing integers from
    0 to ``len(indices)``, as ``include_last_offset=True`` in PyTorch's
    ``embedding_bag``); the result has shape ``(n,) + weight.shape[1:]``. A row listed
    twice in a bag counts twice. With ``sparse=True`` and a leaf ``weight``, the gradient
    is a coalesced :class:`RowSparseGrad` of the rows the bags touch.

    >>> w = ember.randn(10, 4, requires_grad=True)
    >>> bag_mean(w, ember.tensor([1, 2, 7]), ember.tensor([0, 2, 3]), sparse=True).shape
    (2, 4)
    """
    if type(weight) is not Tensor:
        raise TypeError(f"bag_mean(): weight must be a Tensor, got {type(weight).__name__}")
    xp = array_module(weight._data)
    idx = indices._data if type(indices) is Tensor else xp.asarray(indices)
    off = offsets._data if type(offsets) is Tensor else xp.asarray(offsets)
    if idx.dtype.kind not in "iu" or off.dtype.kind not in "iu":
        raise TypeError(
            f"bag_mean(): indices and offsets must be integers, got dtypes {idx.dtype} and {off.dtype}"
        )
    if idx.ndim != 1 or off.ndim != 1 or off.shape[0] < 1:
        raise ValueError(
            f"bag_mean(): indices must be 1-D and offsets 1-D with at least one entry, got shapes "
            f"{tuple(idx.shape)} and {tuple(off.shape)}"
        )
    if weight.ndim < 1:
        raise ValueError("bag_mean(): weight must have at least one dimension")
    ends = to_host(off[-1:] if off.shape[0] else off)
    first = to_host(off[:1])
    if int(first[0]) != 0 or int(ends[0]) != idx.shape[0]:
        raise ValueError(
            f"bag_mean(): offsets must run from 0 to len(indices) = {idx.shape[0]}, got "
            f"{int(first[0])} .. {int(ends[0])}"
        )
    return BagMean.apply(
        weight,
        idx.astype(xp.int64, copy=False),
        off.astype(xp.int64, copy=False),
        bool(sparse) and weight.grad_fn is None,
    )
