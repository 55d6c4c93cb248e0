"""Convolution and pooling: im2col by kernel-offset slab copies, then batched GEMMs.

Why this shape: an eager engine pays per op, so a convolution is one graph node. Its
forward copies the padded input into a column tensor (N, G, Cg*kh*kw, rows) with
``kh * kw`` slab copies and multiplies it by the flattened kernel, one GEMM per sample
and group, landing directly in NCHW order. For stride 1 the slabs are contiguous runs of
the flattened padded planes (see ``_cols``). The backward reuses the saved columns for
the weight gradient and scatters the column gradient back with ``kh * kw`` adds (col2im)
for the input gradient.

For higher-order gradients the backward is also available as two differentiable nodes,
``ConvGradInput`` and ``ConvGradWeight``, whose own backwards are convolutions again;
``Conv2d.backward`` uses them when the graph of the gradient is being recorded.

Max pooling combines the same kernel-offset slabs (a running tournament); its backward
and double backward are an adjoint scatter/gather pair. Average pooling is a depthwise
convolution with a constant kernel.
"""

from __future__ import annotations

import ember
from ember._backend import array_module
from ember._tensor import _wrap
from ember.autograd import Function, is_grad_enabled


def _pair(v, name="argument"):
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(a) for a in v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v}")
    return v


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _slabs(shape, kh, kw, stride, dilation, out_hw):
    """For each kernel offset (i, j): the (rows, cols) slices of the padded input it reads."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            yield (
                i,
                j,
                (
                    slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
                    slice(j * dw, j * dw + sw * (wo - 1) + 1, sw),
                ),
            )


def _pad(x, padding, fill=0.0):
    ph, pw = padding
    if not (ph or pw):
        return x
    return array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)


def _out_hw(hw, k, stride, padding, dilation):
    ho = _out_size(hw[0], k[0], stride[0], padding[0], dilation[0])
    wo = _out_size(hw[1], k[1], stride[1], padding[1], dilation[1])
    if ho <= 0 or wo <= 0:
        raise RuntimeError(
            f"kernel size {tuple(k)} with dilation {tuple(dilation)} is larger than the "
            f"padded input {tuple(hw)}"
        )
    return ho, wo


def _flat_padded(x, padding, tail):
    """The zero-padded input with each (n, c) plane flattened, plus ``tail`` zeros after it."""
    xp = array_module(x)
    n, c, h, w = x.shape
    (ph, pw) = padding
    hp, wp = h + 2 * ph, w + 2 * pw
    buf = xp.zeros((n, c, hp * wp + tail), dtype=x.dtype)
    buf[:, :, : hp * wp].reshape(n, c, hp, wp)[:, :, ph : ph + h, pw : pw + w] = x
    return buf, wp


def _cols(x, kh, kw, params):
    """Column tensor (N, G, Cg*kh*kw, Ho*row): the one copy a convolution makes.

    Laid out per sample so that ``weight (G, Og, K) @ cols`` lands directly in NCHW order
    (no transpose of the output). Returns ``(cols, (ho, wo, row))``.

    Stride 1 (the common case) uses the flat-shift trick: on a padded plane flattened
    row-major, kernel offset (i, j) is a constant shift ``i*dh*Wp + j*dw``, so each offset's
    slab is one long contiguous copy. The output grid is then ``Ho x Wp`` (``row = Wp``):
    the extra ``Wp - Wo`` columns are junk that the forward drops and the backward feeds
    zeros. Strided convolutions copy ``Ho x Wo`` slabs (``row = Wo``).
    """
    stride, padding, dilation, groups = params
    xp = array_module(x)
    n, c = x.shape[:2]
    ho, wo = _out_hw(x.shape[2:], (kh, kw), stride, padding, dilation)
    if stride == (1, 1):
        dh, dw = dilation
        flat, wp = _flat_padded(x, padding, (kw - 1) * dw)
        span = ho * wp
        cols = xp.empty((n, c, kh, kw, span), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw
                cols[:, :, i, j] = flat[:, :, off : off + span]
        return cols.reshape(n, groups, (c // groups) * kh * kw, span), (ho, wo, wp)
    xpad = _pad(x, padding)
    cols = xp.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i, j, (rs, cs) in _slabs(xpad.shape, kh, kw, stride, dilation, (ho, wo)):
        cols[:, :, i, j] = xpad[:, :, rs, cs]
    return cols.reshape(n, groups, (c // groups) * kh * kw, ho * wo), (ho, wo, wo)


def _grad_rows(g, row):
    """The output gradient on the column grid: zeros in the junk columns of a stride-1 grid."""
    n, o, ho, wo = g.shape
    if row == wo:
        return g
    ext = array_module(g).empty((n, o, ho, row), dtype=g.dtype)
    ext[..., :wo] = g
    ext[..., wo:] = 0
    return ext


def _conv_forward(x, w, params, cols=None, bias=None):
    groups = params[3]
    o, cg, kh, kw = w.shape
    cols, (ho, wo, row) = _cols(x, kh, kw, params) if cols is None else cols
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    out = (wm @ cols).reshape(x.shape[0], o, ho, row)  # one GEMM per sample and group
    if bias is not None:  # added while the array is still contiguous
        out += bias.reshape(1, -1, 1, 1)
    # a view that skips the junk columns: copying it would cost more than its consumers save
    return out if row == wo else out[..., :wo]


def _conv_grad_weight(x, g, w_shape, params, cols=None, g_rows=None):
    groups = params[3]
    o, cg, kh, kw = w_shape
    cols, (ho, wo, row) = _cols(x, kh, kw, params) if cols is None else cols
    g_rows = _grad_rows(g, row) if g_rows is None else g_rows
    gm = g_rows.reshape(g.shape[0], groups, o // groups, ho * row)
    gw = (gm @ cols.transpose(0, 1, 3, 2)).sum(0)  # (G, Og, K)
    return gw.reshape(w_shape)


def _conv_grad_input(g, w, x_shape, params, g_rows=None):
    stride, padding, dilation, groups = params
    xp = array_module(g)
    (ph, pw) = padding
    n, c, h, wd = x_shape
    o, cg, kh, kw = w.shape
    ho, wo = g.shape[2:]
    wm = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)
    hp, wp = h + 2 * ph, wd + 2 * pw
    if stride == (1, 1):  # col2im by flat shifts (see _cols): kh*kw long contiguous adds
        dh, dw = dilation
        span = ho * wp
        g_rows = _grad_rows(g, wp) if g_rows is None else g_rows
        gcols = (wm @ g_rows.reshape(n, groups, o // groups, span)).reshape(n, c, kh, kw, span)
        flat = xp.zeros((n, c, hp * wp + (kw - 1) * dw), dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw
                flat[:, :, off : off + span] += gcols[:, :, i, j]
        gx = flat[:, :, : hp * wp].reshape(n, c, hp, wp)
    else:
        gm = g.reshape(n, groups, o // groups, ho * wo)
        gcols = (wm @ gm).reshape(n, c, kh, kw, ho, wo)
        gx = xp.zeros((n, c, hp, wp), dtype=g.dtype)
        for i, j, (rs, cs) in _slabs(gx.shape, kh, kw, stride, dilation, (ho, wo)):
            gx[:, :, rs, cs] += gcols[:, :, i, j]
    if ph or pw or gx.base is not None:
        gx = xp.ascontiguousarray(gx[:, :, ph : ph + h, pw : pw + wd])
    return gx


class Conv2d(Function):
    """``conv2d(x, w, b)`` as one node (see the module docstring for the layout)."""

    raw = True
    saves = (0, 1)

    def forward(ctx, x, w, b, params):
        if x.dtype != w.dtype:
            raise RuntimeError(f"conv2d: input dtype {x.dtype} and weight dtype {w.dtype} differ")
        kh, kw = w.shape[2:]
        cols = _cols(x, kh, kw, params)
        need = ctx.needs_input_grad
        ctx.cols = cols if (need and need[1]) else None
        return _conv_forward(x, w, params, cols, b)

    def backward(ctx, g):
        x, w, b, params = ctx.inputs
        need = ctx.needs_input_grad
        gx = gw = gb = None
        if is_grad_enabled():  # recording the gradient's graph: differentiable nodes
            if need[0]:
                gx = ConvGradInput.apply(g, w, tuple(x.shape), params)
            if need[1]:
                gw = ConvGradWeight.apply(x, g, tuple(w.shape), params)
        else:
            gd = g._data
            cols = ctx.cols
            g_rows = None
            if cols is not None and cols[1][2] != cols[1][1]:  # stride-1 grid with junk columns
                cols_arr, (ho, wo, row) = cols
                if need[0] or cols_arr.shape[2] > gd.shape[1] // params[3]:
                    g_rows = _grad_rows(gd, row)  # widen the gradient to the grid
                else:  # fewer column rows than output channels: narrow the columns instead
                    narrow = cols_arr.reshape(cols_arr.shape[:3] + (ho, row))[..., :wo]
                    cols = (narrow.reshape(cols_arr.shape[:3] + (ho * wo,)), (ho, wo, wo))
            if need[0]:
                gx = _wrap(_conv_grad_input(gd, w._data, x.shape, params, g_rows))
            if need[1]:
                gw = _wrap(_conv_grad_weight(x._data, gd, w.shape, params, cols, g_rows))
        if need[2]:
            if is_grad_enabled():
                gb = g.sum((0, 2, 3))
            else:  # contiguous NCHW: reduce the spatial run first, then the batch (fast axes order)
                gd = g._data
                gb = _wrap(gd.reshape(gd.shape[0], gd.shape[1], -1).sum(-1).sum(0))
        ctx.cols = None
        return gx, gw, gb, None


class ConvGradInput(Function):
    """d conv / d x applied to ``g`` (a transposed convolution); linear in ``g`` and ``w``."""

    raw = True

    def forward(ctx, g, w, x_shape, params):
        return _conv_grad_input(g, w, x_shape, params)

    def backward(ctx, h):
        g, w, x_shape, params = ctx.inputs
        need = ctx.needs_input_grad
        # As a transposed convolution with output_padding, ``x_shape`` can be one more row
        # or column than the convolution of ``h`` maps back onto ``g``: the adjoint is that
        # convolution cropped to ``g``, and ``g`` padded with zeros to its grid
        ho, wo = g.shape[2:]
        gh, gwd = _out_hw(h.shape[2:], w.shape[2:], params[0], params[1], params[2])
        gg = gw = None
        if need[0]:
            gg = Conv2d.apply(h, w, None, params)
            if (gh, gwd) != (ho, wo):
                gg = gg[:, :, :ho, :wo]
        if need[1]:
            gfull = g if (gh, gwd) == (ho, wo) else ember.pad(g, (0, gwd - wo, 0, gh - ho))
            gw = ConvGradWeight.apply(h, gfull, tuple(w.shape), params)
        return gg, gw, None, None


class ConvGradWeight(Function):
    """d conv / d w applied to ``g``; linear in ``x`` and ``g``."""

    raw = True

    def forward(ctx, x, g, w_shape, params):
        return _conv_grad_weight(x, g, w_shape, params)

    def backward(ctx, h):
        x, g, w_shape, params = ctx.inputs
        need = ctx.needs_input_grad
        gx = ConvGradInput.apply(g, h, tuple(x.shape), params) if need[0] else None
        gg = Conv2d.apply(x, h, None, params) if need[1] else None
        return gx, gg, None, None


def _same_padding(k, d):
    total = d * (k - 1)
    return total // 2, total - total // 2


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-D convolution (cross-correlation) of ``input`` (N, C, H, W) with ``weight`` (O, C/groups, kh, kw).

    ``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (stride 1).
    """
    if input.ndim == 3:
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(f"conv2d expects a 4-D input and weight, got {input.ndim}-D and {weight.ndim}-D")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    c, o = input.shape[1], weight.shape[0]
    if c % groups or o % groups:
        raise RuntimeError(f"in_channels ({c}) and out_channels ({o}) must be divisible by groups ({groups})")
    if weight.shape[1] * groups != c:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input{list(input.shape)} "
            f"to have {weight.shape[1] * groups} channels, but got {c} channels instead"
        )
    if padding == "valid":
        padding = 0
    elif padding == "same":
        if stride != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        (t, bt), (lf, r) = (_same_padding(k, d) for k, d in zip(weight.shape[2:], dilation))
        if t != bt or lf != r:  # asymmetric: pad explicitly, then convolve unpadded
            input = ember.pad(input, (lf, r, t, bt))
            padding = 0
        else:
            padding = (t, lf)
    params = (stride, _pair(padding, "padding"), dilation, groups)
    return Conv2d.apply(input, weight, bias, params)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-D convolution of ``input`` (N, C, L) with ``weight`` (O, C/groups, k), via ``conv2d``."""
    if input.ndim == 2:
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if isinstance(padding, str):
        pad2 = padding
    else:
        pad2 = (0, padding if isinstance(padding, int) else padding[0])
    s = stride if isinstance(stride, int) else stride[0]
    d = dilation if isinstance(dilation, int) else dilation[0]
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, s), pad2, (1, d), groups)
    return out.squeeze(2)


# ---- pooling ----------------------------------------------------------------------------------


def _max_pool(x, kernel, stride, padding, dilation, want_arg):
    """Window maxima from the kh*kw kernel-offset slabs of the padded input (no window copy).

    With ``want_arg`` also returns, per output, the kernel offset (0..kh*kw-1) of its
    maximum. The slabs are combined as a balanced tournament of whole-array steps
    (compare, maximum, select); ties keep the earlier offset, as PyTorch does.
    """
    xp = array_module(x)
    xpad = _pad(x, padding, fill=-xp.inf)
    ho, wo = _out_hw(x.shape[2:], kernel, stride, padding, dilation)
    slabs = [
        xpad[:, :, rs, cs]
        for _, _, (rs, cs) in _slabs(xpad.shape, kernel[0], kernel[1], stride, dilation, (ho, wo))
    ]
    if not want_arg:
        best = slabs[0].copy()
        for s in slabs[1:]:
            xp.maximum(best, s, out=best)
        return best, None
    if len(slabs) == 4:  # 2x2, the common case: two rounds, the first round's choice is a bool view
        s0, s1, s2, s3 = slabs
        l01, l23 = s1 > s0, s3 > s2
        b01, b23 = xp.maximum(s0, s1), xp.maximum(s2, s3)
        later = b23 > b01
        xp.maximum(b01, b23, out=b01)
        return b01, xp.where(later, l23.view(xp.int8) + xp.int8(2), l01.view(xp.int8))
    code = xp.int8 if len(slabs) < 128 else xp.int64
    items = [(s, code(k)) for k, s in enumerate(slabs)]
    while len(items) > 1:
        nxt = []
        for (ba, aa), (bb, ab) in zip(items[::2], items[1::2]):
            later = bb > ba
            nxt.append((xp.maximum(ba, bb), xp.where(later, ab, aa)))
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    best, arg = items[0]
    if not hasattr(arg, "shape") or arg.shape != best.shape:  # a 1x1 kernel: nothing was compared
        best, arg = best.copy(), xp.zeros(best.shape, dtype=code)
    return best, arg


def _arg_to_indices(arg, x_shape, kernel, stride, padding, dilation):
    """Kernel offsets → flat positions in each (unpadded) input plane: PyTorch's indices."""
    xp = array_module(arg)
    ho, wo = arg.shape[2:]
    a = arg.astype(xp.int64)
    rows = xp.arange(ho)[:, None] * stride[0] + (a // kernel[1]) * dilation[0] - padding[0]
    cols = xp.arange(wo)[None, :] * stride[1] + (a % kernel[1]) * dilation[1] - padding[1]
    return rows * x_shape[3] + cols


class MaxPool2d(Function):
    """Window maximum; the argmax offsets are kept only when a gradient is needed."""

    raw = True

    def forward(ctx, x, kernel, stride, padding, dilation):
        need = ctx.needs_input_grad
        out, ctx.arg = _max_pool(x, kernel, stride, padding, dilation, bool(need and need[0]))
        return out

    def backward(ctx, g):
        x, kernel, stride, padding, dilation = ctx.inputs
        return (
            MaxPoolScatter.apply(g, ctx.arg, tuple(x.shape), (kernel, stride, padding, dilation)),
            None,
            None,
            None,
            None,
        )


class MaxPoolScatter(Function):
    """Route each pooled gradient to the input position its maximum came from."""

    raw = True

    def forward(ctx, g, arg, x_shape, params):
        xp = array_module(g)
        kernel, stride, padding, dilation = params
        n, c, h, w = x_shape
        ph, pw = padding
        disjoint = all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))
        # windows that tile the padded input exactly write every position once: no zero fill
        tiled = all(
            s == d * (k - 1) + 1 and o * s == size + 2 * p
            for k, s, d, o, size, p in zip(kernel, stride, dilation, g.shape[2:], (h, w), padding)
        )
        alloc = xp.empty if tiled else xp.zeros
        gx = alloc((n, c, h + 2 * ph, w + 2 * pw), dtype=g.dtype)
        for i, j, (rs, cs) in _slabs(gx.shape, kernel[0], kernel[1], stride, dilation, g.shape[2:]):
            hit = arg == i * kernel[1] + j
            if disjoint:  # each input position belongs to one window: write in place, no temporary
                xp.multiply(g, hit, out=gx[:, :, rs, cs])
            else:
                gx[:, :, rs, cs] += g * hit
        if ph or pw:
            gx = gx[:, :, ph : ph + h, pw : pw + w]
        return gx

    def backward(ctx, h):
        return MaxPoolGather.apply(h, ctx.inputs[1], ctx.inputs[3]), None, None, None


class MaxPoolGather(Function):
    """Pick, for each pooled position, the input value at its recorded maximum (adjoint of the scatter)."""

    raw = True

    def forward(ctx, h, arg, params):
        xp = array_module(h)
        kernel, stride, padding, dilation = params
        hpad = _pad(h, padding)
        out = xp.zeros(arg.shape, dtype=h.dtype)
        for i, j, (rs, cs) in _slabs(hpad.shape, kernel[0], kernel[1], stride, dilation, arg.shape[2:]):
            sel = arg == i * kernel[1] + j
            out[sel] = hpad[:, :, rs, cs][sel]
        return out

    def backward(ctx, gg):
        h_shape = ctx._shapes[0]
        return MaxPoolScatter.apply(gg, ctx.inputs[1], tuple(h_shape), ctx.inputs[2]), None, None


def max_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    if ceil_mode:
        raise NotImplementedError("max_pool2d(ceil_mode=True) is not supported")
    if input.ndim == 3:
        r = max_pool2d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        return (r[0].squeeze(0), r[1].squeeze(0)) if return_indices else r.squeeze(0)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] else _pair(stride, "stride")
    p = _pair(padding, "padding")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise RuntimeError("pad should be at most half of effective kernel size")
    d = _pair(dilation, "dilation")
    out = MaxPool2d.apply(input, k, s, p, d)
    if not return_indices:
        return out
    _, arg = _max_pool(input._data, k, s, p, d, True)
    return out, _wrap(_arg_to_indices(arg, input.shape, k, s, p, d))


def max_pool1d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = k if stride is None else (stride if isinstance(stride, int) else stride[0])
    p = padding if isinstance(padding, int) else padding[0]
    d = dilation if isinstance(dilation, int) else dilation[0]
    r = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    return (r[0].squeeze(-2), r[1].squeeze(-2)) if return_indices else r.squeeze(-2)


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override=None,
):
    """Window mean, computed as a depthwise convolution with a constant kernel."""
    if ceil_mode:
        raise NotImplementedError("avg_pool2d(ceil_mode=True) is not supported")
    if input.ndim == 3:
        return avg_pool2d(
            input.unsqueeze(0), kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        ).squeeze(0)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] else _pair(stride, "stride")
    p = _pair(padding, "padding")
    c = input.shape[1]
    xp = array_module(input._data)
    ones = _wrap(xp.ones((c, 1) + k, dtype=input.dtype))
    total = Conv2d.apply(input, ones, None, (s, p, (1, 1), c))
    if divisor_override:
        return total * (1.0 / divisor_override)
    if count_include_pad or p == (0, 0):
        return total * (1.0 / (k[0] * k[1]))
    plane = xp.ones((1, 1) + tuple(input.shape[2:]), dtype=input.dtype)
    counts = _conv_forward(plane, xp.ones((1, 1) + k, dtype=input.dtype), (s, p, (1, 1), 1))
    return total * _wrap(1.0 / counts)


def avg_pool1d(
    input, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True
):
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = k if stride is None else (stride if isinstance(stride, int) else stride[0])
    p = padding if isinstance(padding, int) else padding[0]
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad).squeeze(-2)
