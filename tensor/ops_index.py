"""Indexing: ``x[...]`` get and set, gather/scatter, index_select/index_add, masked_fill,
and the ordering ops (sort, argsort, topk, unique).

Gathers and scatters come in adjoint pairs (``Gather``/``ScatterAlong``,
``IndexSelect``/``IndexAddZeros``, ``Index``/``IndexBackward``): each one's backward is
the other, so gradients of any order stay inside the op library.
"""

from __future__ import annotations

import numpy as np

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.ops_shape import _norm_dim, _share_version
from ember.registry import op, register_method


def _add_at(xp, target, index, values):
    """``target[index] += values`` with repeated indices accumulated."""
    if getattr(xp, "__name__", "") == "cupy":
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        xp.add.at(target, index, values)


def _raw_index(index):
    """Tensor indices → raw arrays, lists → arrays. Returns (index tuple, is_advanced)."""
    if type(index) is not tuple:
        index = (index,)
    out, advanced = [], False
    for i in index:
        if type(i) is Tensor:
            i = i._data
            if i.ndim == 0 and i.dtype.kind in "iu":
                i = int(i)
            else:
                advanced = True
        elif isinstance(i, list):
            i = np.asarray(i)
            advanced = True
        elif not (i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer))):
            advanced = True  # an ndarray / cupy array
        out.append(i)
    return tuple(out), advanced


def _device_index(data, index):
    """Move host index arrays to ``data``'s device (indices given as lists are host-side)."""
    if type(data) is np.ndarray:
        return index
    from ember._backend import device_of, to_device

    dev = device_of(data)
    return tuple(to_device(i, dev) if type(i) is np.ndarray else i for i in index)


class Index(Function):
    """``a[index]``: basic indexing is a view, advanced indexing a copy."""

    raw = True

    def forward(ctx, a, index):
        return a[index]

    def backward(ctx, g):
        return IndexBackward.apply(g, ctx._shapes[0], ctx.inputs[1]), None


class IndexBackward(Function):
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeats accumulate)."""

    raw = True

    def forward(ctx, g, shape, index):
        xp = array_module(g)
        z = xp.zeros(shape, dtype=g.dtype)
        _, advanced = _raw_index(index)
        if advanced:
            _add_at(xp, z, index, g)
        else:
            z[index] = g
        return z

    def backward(ctx, gg):
        return Index.apply(gg, ctx.inputs[2]), None, None


def _scatter_into_zeros(g, shape, index):
    return IndexBackward.apply(g, shape, index)


def _getitem(self, index):
    raw, advanced = _raw_index(index)
    raw = _device_index(self._data, raw)
    if len(raw) == 1:
        raw = raw[0] if not isinstance(raw[0], tuple) else raw
    out = Index.apply(self, raw)
    if not advanced:
        _share_version(out, self)
    return out


class IndexPut(Function):
    """``out = a.copy(); out[index] = v`` (the functional form of ``a[index] = v``)."""

    raw = True

    def forward(ctx, a, index, v):
        out = a.copy()
        out[index] = v
        return out

    def backward(ctx, g):
        index = ctx.inputs[1]
        n = ctx.needs_input_grad
        ga = gv = None
        if n[0]:
            xp = array_module(g._data)
            mask = xp.ones(ctx._shapes[0], dtype=g.dtype)
            mask[index] = 0
            ga = g * _wrap(mask)
        if n[2]:
            gv = g[index]
        return ga, None, gv


def _setitem(self, index, value):
    raw, _ = _raw_index(index)
    xp = array_module(self._data)
    raw = _device_index(self._data, raw)
    if len(raw) == 1:
        raw = raw[0]
    from ember.autograd.grad_mode import _state

    needs_graph = _state.enabled and (self.requires_grad or (type(value) is Tensor and value.requires_grad))
    if not needs_graph:
        v = value._data if type(value) is Tensor else value
        if type(value) is Tensor and type(v) is not type(self._data):
            raise RuntimeError(f"index_put: value is on {value.device} but the tensor is on {self.device}")
        self._data[raw] = v
        self._bump_version()
        return
    self._check_inplace()
    out = IndexPut.apply(self, raw, value)
    xp.copyto(self._data, out._data)
    self._bump_version()
    self.grad_fn = out.grad_fn
    self.requires_grad = True


register_method("__getitem__", _getitem)
register_method("__setitem__", _setitem)


# ---- gather / scatter along a dim ---------------------------------------------------------


class Gather(Function):
    raw = True

    def forward(ctx, a, dim, index):
        return array_module(a).take_along_axis(a, index, axis=dim)

    def backward(ctx, g):
        dim, index = ctx.inputs[1], ctx.inputs[2]
        return ScatterAlong.apply(g, dim, index, ctx._shapes[0]), None, None


class ScatterAlong(Function):
    """Zeros of ``shape`` with ``src`` added along ``dim`` at ``index`` (repeats accumulate)."""

    raw = True

    def forward(ctx, src, dim, index, shape):
        xp = array_module(src)
        z = xp.zeros(shape, dtype=src.dtype)
        idx = list(xp.indices(index.shape, sparse=True))
        idx[dim] = index
        _add_at(xp, z, tuple(idx), src)
        return z

    def backward(ctx, g):
        dim, index = ctx.inputs[1], ctx.inputs[2]
        return Gather.apply(g, dim, index), None, None, None


def _index_data(index):
    return index._data if type(index) is Tensor else index


def _scatter_along(g, dim, index, shape):
    return ScatterAlong.apply(g, dim, _index_data(index), tuple(shape))


@op()
def gather(input, dim, index):
    d = _norm_dim(dim, input.ndim)
    idx = _index_data(index)
    if idx.ndim != input.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    return Gather.apply(input, d, idx)


@op()
def take_along_dim(input, indices, dim=None):
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    d = _norm_dim(dim, input.ndim)
    idx = _index_data(indices)
    xp = array_module(input._data)
    shape = list(
        np.broadcast_shapes(
            tuple(s if i != d else 1 for i, s in enumerate(input.shape)),
            tuple(s if i != d else 1 for i, s in enumerate(idx.shape)),
        )
    )
    ishape = list(shape)
    ishape[d] = idx.shape[d]
    xshape = list(shape)
    xshape[d] = input.shape[d]
    x = input.expand(tuple(xshape)) if tuple(xshape) != input.shape else input
    return Gather.apply(x, d, xp.broadcast_to(idx, tuple(ishape)))


@op()
def scatter_add(input, dim, index, src):
    d = _norm_dim(dim, input.ndim)
    return input + ScatterAlong.apply(src, d, _index_data(index), input.shape)


@op()
def scatter(input, dim, index, src=None, value=None):
    """Out-of-place ``scatter``: ``out[index[i][j]][j] = src[i][j]`` (dim 0), last write wins."""
    d = _norm_dim(dim, input.ndim)
    idx = _index_data(index)
    xp = array_module(input._data)
    grid = list(xp.indices(idx.shape, sparse=True))
    grid[d] = idx
    grid = tuple(grid)
    if src is None:
        src = value
    if type(src) is Tensor:
        s = src[tuple(slice(0, n) for n in idx.shape)]
    else:
        s = src
    return IndexPut.apply(input, grid, s)


class IndexSelect(Function):
    raw = True

    def forward(ctx, a, dim, index):
        return array_module(a).take(a, index, axis=dim)

    def backward(ctx, g):
        dim, index = ctx.inputs[1], ctx.inputs[2]
        return IndexAddZeros.apply(g, dim, index, ctx._shapes[0]), None, None


class IndexAddZeros(Function):
    """Zeros of ``shape`` with slices of ``src`` added at ``index`` along ``dim``."""

    raw = True

    def forward(ctx, src, dim, index, shape):
        xp = array_module(src)
        z = xp.zeros(shape, dtype=src.dtype)
        if dim == 0:
            _add_at(xp, z, index, src)
        else:
            zt = xp.moveaxis(z, dim, 0)
            _add_at(xp, zt, index, xp.moveaxis(src, dim, 0))
        return z

    def backward(ctx, g):
        dim, index = ctx.inputs[1], ctx.inputs[2]
        return IndexSelect.apply(g, dim, index), None, None, None


@op()
def index_select(input, dim, index):
    idx = _index_data(index)
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    return IndexSelect.apply(input, _norm_dim(dim, input.ndim), idx)


@op()
def index_add(input, dim, index, source, *, alpha=1):
    d = _norm_dim(dim, input.ndim)
    if alpha != 1:
        source = source * alpha
    return input + IndexAddZeros.apply(source, d, _index_data(index), input.shape)


@op()
def masked_fill(input, mask, value):
    from ember.ops_math import where

    v = value if type(value) is Tensor else _wrap(array_module(input._data).asarray(value, dtype=input.dtype))
    return where(mask, v.to(input.dtype), input)


@op()
def masked_select(input, mask):
    m = _index_data(mask)
    return input[_wrap(array_module(input._data).broadcast_to(m, input.shape))]


@op()
def nonzero(input, *, as_tuple=False):
    xp = array_module(input._data)
    nz = xp.nonzero(input._data)
    if as_tuple:
        return tuple(_wrap(i.astype(np.int64, copy=False)) for i in nz)
    return _wrap(xp.stack(nz, axis=1).astype(np.int64, copy=False) if nz else xp.zeros((0, 0), np.int64))


@op()
def diagonal(input, offset=0, dim1=0, dim2=1):
    xp = array_module(input._data)
    n1, n2 = input.shape[dim1], input.shape[dim2]
    i = xp.arange(max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2)))
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    from ember.ops_shape import movedim

    x = movedim(input, (dim1, dim2), (-2, -1))
    return x[(Ellipsis, _wrap(rows), _wrap(cols))]


# ---- ordering ---------------------------------------------------------------------------------


def _sort_indices(a, dim, descending, stable):
    xp = array_module(a)
    if descending:
        if a.dtype.kind == "f":  # NaNs stay last, as in an ascending sort
            idx = xp.argsort(-a, axis=dim, kind="stable" if stable else None)
        else:
            # stable descending for any dtype (negating would overflow int8's -128 and wrap
            # unsigned ints): ascending-sort the reversed array, reverse, map the indices back
            n = a.shape[dim] if a.ndim else 1
            rev = xp.argsort(xp.flip(a, axis=dim), axis=dim, kind="stable")
            idx = (n - 1) - xp.flip(rev, axis=dim)
    else:
        idx = xp.argsort(a, axis=dim, kind="stable" if stable else None)
    return idx.astype(np.int64, copy=False)


@op()
def sort(input, dim=-1, descending=False, stable=False):
    from ember.ops_reduce import values_indices

    d = _norm_dim(dim, input.ndim)
    idx = _sort_indices(input._data, d, descending, stable)
    return values_indices(Gather.apply(input, d, idx), _wrap(idx))


@op()
def argsort(input, dim=-1, descending=False, stable=False):
    return _wrap(_sort_indices(input._data, _norm_dim(dim, input.ndim), descending, stable))


@op()
def topk(input, k, dim=-1, largest=True, sorted=True):
    from ember.ops_reduce import values_indices

    d = _norm_dim(dim, input.ndim)
    n = input.shape[d]
    if not 0 <= k <= n:
        raise RuntimeError(f"selected index k out of range: k={k} for a dimension of size {n}")
    a = input._data
    xp = array_module(a)
    key = -a if largest else a
    if k < n:
        part = xp.argpartition(key, k - 1, axis=d)
        part = xp.take(part, xp.arange(k), axis=d)
    else:
        part = xp.broadcast_to(
            xp.arange(n).reshape([-1 if i == d else 1 for i in range(a.ndim)]), a.shape
        ).copy()
    if sorted:
        order = xp.argsort(xp.take_along_axis(key, part, axis=d), axis=d, kind="stable")
        part = xp.take_along_axis(part, order, axis=d)
    part = part.astype(np.int64, copy=False)
    return values_indices(Gather.apply(input, d, part), _wrap(part))


@op()
def kthvalue(input, k, dim=-1, keepdim=False):
    from ember.ops_reduce import values_indices

    d = _norm_dim(dim, input.ndim)
    vals, idx = sort(input, d)
    v = vals.narrow(d, k - 1, 1)
    i = idx.narrow(d, k - 1, 1)
    if not keepdim:
        v, i = v.squeeze(d), i.squeeze(d)
    return values_indices(v, i)


def _unique(xp, data, **kwargs):
    # every NaN is its own value (as torch and the Array API); cupy's unique has no equal_nan
    try:
        return xp.unique(data, equal_nan=False, **kwargs)
    except TypeError:
        return xp.unique(data, **kwargs)


@op()
def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    xp = array_module(input._data)
    res = _unique(xp, input._data, return_inverse=return_inverse, return_counts=return_counts, axis=dim)
    if not (return_inverse or return_counts):
        return _wrap(res)
    out = [_wrap(res[0])]
    k = 1
    if return_inverse:
        out.append(_wrap(res[k].reshape(input.shape if dim is None else -1).astype(np.int64)))
        k += 1
    if return_counts:
        out.append(_wrap(res[k].astype(np.int64)))
    return tuple(out)


def unique_all(input):
    """(values, first indices, inverse indices (input's shape), counts) of the flattened input."""
    xp = array_module(input._data)
    flat = input._data.reshape(-1)
    vals, first, inv, counts = _unique(xp, flat, return_index=True, return_inverse=True, return_counts=True)
    i64 = np.int64
    return (
        _wrap(vals),
        _wrap(first.astype(i64, copy=False)),
        _wrap(inv.reshape(input.shape).astype(i64, copy=False)),
        _wrap(counts.astype(i64, copy=False)),
    )


@op()
def bincount(input, weights=None, minlength=0):
    xp = array_module(input._data)
    w = None if weights is None else weights._data
    return _wrap(xp.bincount(input._data, weights=w, minlength=minlength))


@op()
def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None, sorter=None):
    """Indices where ``values`` would be inserted into the innermost dim of ``sorted_sequence``
    to keep it sorted.

    ``side='left'`` (or ``right=False``, the default) gives the first suitable index,
    ``'right'`` the last. ``sorter`` holds indices that sort an unsorted 1-D sequence.
    A 1-D sequence takes values of any shape; an N-D one searches row by row (its
    leading dims must equal ``values``'). Returns int64 (int32 with ``out_int32``).

    >>> ember.searchsorted(ember.tensor([1, 3, 5]), ember.tensor([3, 6])).tolist()
    [1, 3]
    """
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"side can only be 'left' or 'right' but got {side!r}")
        if right and side == "left":
            raise RuntimeError(
                "side and right can't be set to opposites, got side of left while right was True"
            )
        right = side == "right"
    seq = sorted_sequence._data
    xp = array_module(seq)
    v = values._data if type(values) is Tensor else xp.asarray(values)
    if sorter is not None:
        seq = xp.take_along_axis(seq, _index_data(sorter), axis=-1)
    which = "right" if right else "left"
    dt = np.int32 if out_int32 else np.int64
    if seq.ndim <= 1:
        return _wrap(xp.asarray(xp.searchsorted(seq, v, side=which)).astype(dt))
    if seq.shape[:-1] != v.shape[:-1]:
        raise RuntimeError(
            f"searchsorted: boundaries tensor should have the same leading dimensions as the input, got "
            f"{tuple(seq.shape)} and {tuple(v.shape)}"
        )
    rows_s, rows_v = seq.reshape(-1, seq.shape[-1]), v.reshape(-1, v.shape[-1])
    out = xp.stack([xp.searchsorted(r, q, side=which) for r, q in zip(rows_s, rows_v)])
    return _wrap(out.reshape(v.shape).astype(dt))


for _name in (
    "gather",
    "take_along_dim",
    "scatter_add",
    "scatter",
    "index_select",
    "index_add",
    "masked_fill",
    "masked_select",
    "nonzero",
    "diagonal",
    "sort",
    "argsort",
    "topk",
    "kthvalue",
    "unique",
    "bincount",
):
    register_method(_name, globals()[_name])


def _index_add_(self, dim, index, source, *, alpha=1):
    """In place; under no_grad a direct accumulate (what optimizers and samplers use)."""
    from ember.autograd.grad_mode import _state

    if not _state.enabled or not (self.requires_grad or source.requires_grad):
        d = _norm_dim(dim, self.ndim)
        xp = array_module(self._data)
        src = source._data * alpha if alpha != 1 else source._data
        tgt = self._data if d == 0 else xp.moveaxis(self._data, d, 0)
        _add_at(xp, tgt, _index_data(index), src if d == 0 else xp.moveaxis(src, d, 0))
        self._bump_version()
        return self
    from ember.ops_math import _inplace

    return _inplace(index_add)(self, dim, index, source, alpha=alpha)


def _masked_fill_(self, mask, value):
    from ember.ops_math import _inplace

    return _inplace(masked_fill)(self, mask, value)


def _scatter_add_(self, dim, index, src):
    from ember.ops_math import _inplace

    return _inplace(scatter_add)(self, dim, index, src)


register_method("index_add_", _index_add_)
register_method("masked_fill_", _masked_fill_)
register_method("scatter_add_", _scatter_add_)
