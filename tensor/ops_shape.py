"""Shape ops: views (reshape, transpose, expand, squeeze, ...) and copies (cat, flip, pad, ...).

View ops return tensors that share the input's memory *and* version counter, so an
in-place write through either is seen by backward's saved-tensor checks.
"""

from __future__ import annotations

import builtins
import math

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.registry import op, register_method


def _norm_dim(dim, ndim):
    if dim < -ndim or dim >= builtins.max(ndim, 1):
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-builtins.max(ndim, 1)}, "
            f"{builtins.max(ndim, 1) - 1}], but got {dim})"
        )
    return dim % builtins.max(ndim, 1)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _share_version(out: Tensor, base: Tensor) -> Tensor:
    if type(base) is Tensor:
        if base._vc is None:
            base._vc = [0]
        out._vc = base._vc
    return out


def _view_op(fn):
    """Wrap a view-producing function so its result shares the version counter."""

    def f(input, *args, **kwargs):
        return _share_version(fn(input, *args, **kwargs), input)

    f.__name__ = fn.__name__
    f.__doc__ = fn.__doc__
    return f


class Reshape(Function):
    raw = True

    def forward(ctx, a, shape):
        return a.reshape(shape)

    def backward(ctx, g):
        return g.reshape(ctx._shapes[0])


@op()
@_view_op
def reshape(input, *shape):
    shape = _shape_arg(shape)
    if input.shape == shape:
        return Reshape.apply(input, shape) if input.requires_grad else _wrap(input._data)
    return Reshape.apply(input, shape)


def _view(self, *shape):
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        from ember.dtypes import as_dtype

        return _wrap(self._data.view(as_dtype(shape[0])))
    shape = _shape_arg(shape)
    try:
        array_module(self._data).reshape(self._data, shape)
    except ValueError as e:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {self._data.size}") from e
    if not self._data.flags.c_contiguous and self._data.size > 1 and self._data.ndim > 1:
        raise RuntimeError(
            "view size is not compatible with input tensor's size and stride; use .reshape(...) instead."
        )
    return reshape(self, shape)


@op()
def flatten(input, start_dim=0, end_dim=-1):
    nd = input.ndim
    if nd == 0:
        return reshape(input, (1,))
    s, e = _norm_dim(start_dim, nd), _norm_dim(end_dim, nd)
    shp = input.shape
    new = shp[:s] + (math.prod(shp[s : e + 1]),) + shp[e + 1 :]
    return reshape(input, new)


@op()
def unflatten(input, dim, sizes):
    d = _norm_dim(dim, input.ndim)
    shp = input.shape
    return reshape(input, shp[:d] + tuple(sizes) + shp[d + 1 :])


@op()
def squeeze(input, dim=None):
    shp = input.shape
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {_norm_dim(d, input.ndim) for d in dims} if input.ndim else set()
        new = tuple(s for i, s in enumerate(shp) if not (i in dims and s == 1))
    return reshape(input, new)


@op()
def unsqueeze(input, dim):
    d = _norm_dim(dim, input.ndim + 1)
    shp = input.shape
    return reshape(input, shp[:d] + (1,) + shp[d:])


class Permute(Function):
    raw = True

    def forward(ctx, a, dims):
        return a.transpose(dims)

    def backward(ctx, g):
        dims = ctx.inputs[1]
        inv = [0] * len(dims)
        for i, d in enumerate(dims):
            inv[d] = i
        return permute(g, inv)


@op()
@_view_op
def permute(input, *dims):
    dims = _shape_arg(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {input.ndim} is not "
            f"equal to len(dims) = {len(dims)}"
        )
    dims = tuple(_norm_dim(d, input.ndim) for d in dims)
    return Permute.apply(input, dims)


@op()
def transpose(input, dim0, dim1):
    nd = input.ndim
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        if input.requires_grad:
            return reshape(input, input.shape)
        return _share_version(_wrap(input._data), input)
    d0, d1 = _norm_dim(dim0, nd), _norm_dim(dim1, nd)
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(input, dims)


swapaxes = op("swapaxes")(transpose)
swapdims = op("swapdims")(transpose)


@op()
def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, -1) if input.ndim == 2 else input


@op()
def movedim(input, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    nd = input.ndim
    src = [_norm_dim(s, nd) for s in src]
    dst = [_norm_dim(d, nd) for d in dst]
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, order)


class Expand(Function):
    raw = True

    def forward(ctx, a, shape):
        return array_module(a).broadcast_to(a, shape)

    def backward(ctx, g):
        return sum_to(g, ctx._shapes[0])


@op()
@_view_op
def expand(input, *sizes):
    sizes = _shape_arg(sizes)
    shp = input.shape
    lead = len(sizes) - len(shp)
    if lead < 0:
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
            f"number of dimensions in the tensor ({len(shp)})"
        )
    full = tuple(shp[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return Expand.apply(input, full)


@op()
def broadcast_to(input, shape):
    return expand(input, tuple(shape))


def expand_as(self, other):
    return expand(self, other.shape)


@op()
def broadcast_tensors(*tensors):
    shape = array_module(tensors[0]._data).broadcast_shapes(*(t.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


class SumTo(Function):
    raw = True

    def forward(ctx, a, shape):
        return _sum_to_raw(a, shape)

    def backward(ctx, g):
        return expand(g, ctx._shapes[0])


def _sum_to_raw(a, shape):
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and a.shape[i + lead] != 1
    )
    r = a.sum(axis=axes, keepdims=True) if axes else a
    if lead:
        r = r.reshape(shape)
    return r


def sum_to(g, shape):
    """Sum ``g`` down to ``shape`` (undoes broadcasting; used by the autograd engine)."""
    if g.shape == tuple(shape):
        return g
    return SumTo.apply(g, tuple(shape))


# ---- joining and splitting -------------------------------------------------------------


class Cat(Function):
    raw = True

    def forward(ctx, dim, *arrays):
        ctx.sizes = [a.shape[dim] for a in arrays]
        return array_module(arrays[0]).concatenate(arrays, axis=dim)

    def backward(ctx, g):
        dim = ctx.inputs[0]
        return (None,) + tuple(split(g, ctx.sizes, dim))


def _check_devices(tensors, what):
    kinds = {type(t._data) for t in tensors}
    if len(kinds) > 1:
        devs = sorted({str(t.device) for t in tensors})
        raise RuntimeError(f"{what}: expected all tensors to be on the same device, but found {devs}")


@op()
def cat(tensors, dim=0):
    tensors = [t for t in tensors]
    if not tensors:
        raise RuntimeError("cat expects a non-empty list of tensors")
    _check_devices(tensors, "cat")
    nd = tensors[0].ndim
    if nd == 0:
        raise RuntimeError("zero-dimensional tensor cannot be concatenated")
    return Cat.apply(_norm_dim(dim, nd), *tensors)


concat = op("concat")(cat)
concatenate = op("concatenate")(cat)


@op()
def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shp = tensors[0].shape
    for t_ in tensors:
        if t_.shape != shp:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shp)} and {list(t_.shape)}"
            )
    d = _norm_dim(dim, len(shp) + 1)
    return cat([unsqueeze(t_, d) for t_ in tensors], d)


@op()
def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


@op()
def vstack(tensors):
    return cat([t_ if t_.ndim > 1 else reshape(t_, (1, -1)) for t_ in tensors], 0)


class Slice(Function):
    """``a[index]`` for basic (view) indexing; backward scatters into zeros."""

    raw = True

    def forward(ctx, a, index):
        return a[index]

    def backward(ctx, g):
        from ember.ops_index import _scatter_into_zeros

        return _scatter_into_zeros(g, ctx._shapes[0], ctx.inputs[1])


@op()
def split(tensor, split_size_or_sections, dim=0):
    d = _norm_dim(dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError("split expects split_size be non-negative")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                f"dimension {d}), but got split_sizes={sizes}"
            )
    out, start = [], 0
    lead = (slice(None),) * d
    for s in sizes:
        out.append(_share_version(Slice.apply(tensor, lead + (slice(start, start + s),)), tensor))
        start += s
    return tuple(out)


@op()
def chunk(input, chunks, dim=0):
    n = input.shape[_norm_dim(dim, input.ndim)]
    size = -(-n // chunks) if n else 1
    return split(input, size, dim)


@op()
def unbind(input, dim=0):
    d = _norm_dim(dim, input.ndim)
    if input.shape[d] == 0:
        return ()
    return tuple(squeeze(p, d) for p in split(input, 1, d))


@op()
def narrow(input, dim, start, length):
    d = _norm_dim(dim, input.ndim)
    idx = (slice(None),) * d + (slice(start, start + length),)
    return _share_version(Slice.apply(input, idx), input)


# ---- reordering and repetition --------------------------------------------------------


class Flip(Function):
    raw = True

    def forward(ctx, a, dims):
        return array_module(a).flip(a, axis=dims)

    def backward(ctx, g):
        return flip(g, ctx.inputs[1])


@op()
def flip(input, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return Flip.apply(input, tuple(_norm_dim(d, input.ndim) for d in dims))


@op()
def fliplr(input):
    return flip(input, (1,))


@op()
def flipud(input):
    return flip(input, (0,))


class Roll(Function):
    raw = True

    def forward(ctx, a, shifts, dims):
        return array_module(a).roll(a, shifts, axis=dims)

    def backward(ctx, g):
        shifts, dims = ctx.inputs[1], ctx.inputs[2]
        neg = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
        return roll(g, neg, dims)


@op()
def roll(input, shifts, dims=None):
    if dims is None:
        flat = Roll.apply(flatten(input), shifts, 0)
        return reshape(flat, input.shape)
    if isinstance(shifts, (list, tuple)):
        shifts, dims = tuple(shifts), tuple(dims)
    return Roll.apply(input, shifts, dims)


@op()
def tile(input, dims):
    dims = tuple(dims)
    nd = builtins.max(len(dims), input.ndim)
    dims = (1,) * (nd - len(dims)) + dims
    x = reshape(input, (1,) * (nd - input.ndim) + input.shape)
    # tile = expand on interleaved unit axes, then merge: differentiable through expand
    inter = []
    expanded = []
    for r, s in zip(dims, x.shape):
        inter += [1, s]
        expanded += [r, s]
    y = expand(reshape(x, inter), expanded)
    return reshape(y, tuple(r * s for r, s in zip(dims, x.shape)))


def _repeat_method(self, *sizes):
    sizes = _shape_arg(sizes)
    if len(sizes) < self.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"
        )
    return tile(self, sizes)


@op()
def repeat_interleave(input, repeats, dim=None):
    if dim is None:
        input, dim = flatten(input), 0
    d = _norm_dim(dim, input.ndim)
    if isinstance(repeats, int):
        shp = input.shape
        y = unsqueeze(input, d + 1)
        y = expand(y, shp[: d + 1] + (repeats,) + shp[d + 1 :])
        return reshape(y, shp[:d] + (shp[d] * repeats,) + shp[d + 1 :])
    from ember.ops_index import index_select

    reps = repeats._data if type(repeats) is Tensor else repeats
    xp = array_module(input._data)
    idx = xp.repeat(xp.arange(input.shape[d]), reps)
    return index_select(input, d, _wrap(idx))


class Pad(Function):
    raw = True

    def forward(ctx, a, widths, mode, value):
        xp = array_module(a)
        if mode == "constant":
            return xp.pad(a, widths, mode="constant", constant_values=value)
        return xp.pad(a, widths, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])

    def backward(ctx, g):
        widths, mode = ctx.inputs[1], ctx.inputs[2]
        if mode == "constant":
            idx = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(widths))
            return g[idx]
        # non-constant modes: the adjoint of numpy.pad, applied by padding an index map
        xp = array_module(g._data)
        shape = ctx._shapes[0]
        ids = xp.arange(math.prod(shape)).reshape(shape)
        src = Pad.forward(None, ids, widths, mode, 0)
        from ember.ops_index import index_add

        zeros = _wrap(xp.zeros(math.prod(shape), dtype=g.dtype))
        return reshape(index_add(zeros, 0, _wrap(src.reshape(-1)), flatten(g)), shape)


@op()
def pad(input, pad, mode="constant", value=0.0):
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad mode {mode!r}; expected constant, reflect, replicate or circular")
    n = len(pad) // 2
    if n > input.ndim:
        raise RuntimeError("Padding length too large")
    widths = [(0, 0)] * input.ndim
    for i in range(n):  # PyTorch order: last dim first
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(input, tuple(widths), mode, value)


@op()
def contiguous(input, memory_format=None):
    """``input`` itself when its memory is C-contiguous, else a contiguous copy
    (differentiable), so that ``x.t().contiguous().view(-1)`` works as in PyTorch."""
    if memory_format is not None and str(memory_format) not in (
        "contiguous_format",
        "torch.contiguous_format",
    ):
        raise ValueError(
            f"ember stores tensors in C order only: memory_format={memory_format!r} is not supported"
        )
    if input._data.flags.c_contiguous:
        return input
    from ember.creation import clone

    return clone(input)


# ---- triangles, grids, differences -------------------------------------------------------


class Tril(Function):
    raw = True

    def forward(ctx, a, k):
        return array_module(a).tril(a, k)

    def backward(ctx, g):
        return tril(g, ctx.inputs[1]), None


class Triu(Function):
    raw = True

    def forward(ctx, a, k):
        return array_module(a).triu(a, k)

    def backward(ctx, g):
        return triu(g, ctx.inputs[1]), None


@op()
def tril(input, diagonal=0):
    """The lower triangle of the matrices in ``input`` (``(*, m, n)``): elements above the
    ``diagonal``-th diagonal are zeroed (``diagonal=1`` keeps one more, ``-1`` one less).

    >>> ember.tril(ember.ones(2, 3)).tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    """
    if input.ndim < 2:
        raise RuntimeError("tril: input tensor must have at least 2 dimensions")
    return Tril.apply(input, int(diagonal))


@op()
def triu(input, diagonal=0):
    """The upper triangle of the matrices in ``input`` (``(*, m, n)``): elements below the
    ``diagonal``-th diagonal are zeroed.

    >>> ember.triu(ember.ones(2, 3)).tolist()
    [[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    """
    if input.ndim < 2:
        raise RuntimeError("triu: input tensor must have at least 2 dimensions")
    return Triu.apply(input, int(diagonal))


@op()
def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors: N inputs of sizes n1..nN give N tensors of shape
    (n1, ..., nN) (``indexing='ij'``, torch's default) or (n2, n1, n3, ...) (``'xy'``,
    Cartesian, the Array API's default). Each output is an expanded view; differentiable.

    >>> xs, ys = ember.meshgrid(ember.arange(2), ember.arange(3), indexing="ij")
    >>> xs.shape
    (2, 3)
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be one of 'xy' or 'ij', but received: {indexing}")
    for t_ in tensors:
        if t_.ndim > 1:
            raise RuntimeError(f"meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t_.ndim}D")
    flat = [reshape(t_, (-1,)) for t_ in tensors]
    n = len(flat)
    swap = indexing == "xy" and n >= 2
    if swap:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(f.shape[0] for f in flat)
    out = []
    for i, f in enumerate(flat):
        view = [1] * n
        view[i] = shape[i]
        out.append(expand(reshape(f, view), shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


@op()
def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim``: ``out[i] = input[i + 1] - input[i]``.

    ``prepend``/``append`` tensors are concatenated along ``dim`` first. The dim shrinks by
    ``n``. Booleans differ by ``!=``, as torch. Differentiable.

    >>> ember.diff(ember.tensor([1, 4, 9, 16])).tolist()
    [3, 5, 7]
    """
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = _norm_dim(dim, input.ndim)
    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        hi, lo = narrow(x, d, 1, m - 1), narrow(x, d, 0, m - 1)
        x = hi != lo if x.dtype.kind == "b" else hi - lo
    return x


moveaxis = op("moveaxis")(movedim)


# ---- Tensor methods ---------------------------------------------------------------------

for _name in (
    "reshape",
    "flatten",
    "unflatten",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
    "swapaxes",
    "swapdims",
    "t",
    "movedim",
    "expand",
    "broadcast_to",
    "split",
    "chunk",
    "unbind",
    "narrow",
    "flip",
    "fliplr",
    "flipud",
    "roll",
    "tile",
    "repeat_interleave",
    "tril",
    "triu",
    "diff",
    "moveaxis",
):
    register_method(_name, globals()[_name])
register_method("view", _view)
register_method("view_as", lambda self, other: _view(self, other.shape))
register_method("reshape_as", lambda self, other: reshape(self, other.shape))
register_method("expand_as", expand_as)
register_method("repeat", _repeat_method)
register_method("contiguous", contiguous)
register_method("is_contiguous", lambda self: bool(self._data.flags.c_contiguous))
register_method("T", property(lambda self: permute(self, tuple(reversed(range(self.ndim))))))
register_method("mT", property(lambda self: transpose(self, -2, -1)))
register_method("mH", property(lambda self: _conj(transpose(self, -2, -1))))
register_method("H", property(lambda self: _conj(transpose(self, 0, 1)) if self.ndim == 2 else _bad_H(self)))


def _conj(x):
    from ember.ops_math import conj

    return conj(x)


def _bad_H(x):
    raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got {x.ndim}-D tensor.")
