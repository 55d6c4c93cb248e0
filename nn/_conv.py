"""Convolution and pooling: im2col on a strided view, then one (batched) matrix product.

Why this shape: an eager engine pays per op, so a convolution is a single graph node.
Its forward builds the column matrix from an ``as_strided`` window view of the padded
input (one copy) and multiplies it by the flattened kernel (one GEMM per group, batched).
The backward reuses the saved columns for the weight gradient (one GEMM) and scatters
the column gradient back with ``kh * kw`` strided adds (col2im) for the input gradient.

For higher-order gradients the backward is also available as two differentiable nodes,
``ConvGradInput`` and ``ConvGradWeight``, whose own backwards are convolutions again;
``Conv2d.backward`` uses them when the graph of the gradient is being recorded.
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


def _windows(x, kh, kw, stride, padding, dilation, fill=0.0):
    """A (N, C, Ho, Wo, kh, kw) strided view of the padded input (no copy but the pad)."""
    xp = array_module(x)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    n, c, h, w = x.shape
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    if ho <= 0 or wo <= 0:
        raise RuntimeError(f"kernel size ({kh}x{kw}) with dilation {dilation} is larger than the "
                           f"padded input ({h}x{w})")
    s0, s1, s2, s3 = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, (n, c, ho, wo, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2 * dh, s3 * dw), writeable=False
    )


def _cols(x, kh, kw, params):
    """Column matrix (G, N*Ho*Wo, Cg*kh*kw): the one copy a convolution makes."""
    stride, padding, dilation, groups = params
    v = _windows(x, kh, kw, stride, padding, dilation)
    n, c, ho, wo = v.shape[:4]
    cg = c // groups
    v = v.reshape(n, groups, cg, ho, wo, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    return v.reshape(groups, n * ho * wo, cg * kh * kw), (n, ho, wo)


def _conv_forward(x, w, params, cols=None):
    groups = params[3]
    o, cg, kh, kw = w.shape
    if cols is None:
        cols, (n, ho, wo) = _cols(x, kh, kw, params)
    else:
        cols, (n, ho, wo) = cols
    og = o // groups
    wm = w.reshape(groups, og, cg * kh * kw)
    if groups == 1:
        out = (cols[0] @ wm[0].T)[None]
    else:
        out = cols @ wm.transpose(0, 2, 1)
    # (G, N*Ho*Wo, Og) -> (N, G*Og, Ho, Wo)
    out = out.reshape(groups, n, ho, wo, og).transpose(1, 0, 4, 2, 3).reshape(n, o, ho, wo)
    return out


def _grad_out_matrix(g, groups):
    """(N, O, Ho, Wo) → (G, N*Ho*Wo, Og), the layout of the forward's product."""
    n, o, ho, wo = g.shape
    og = o // groups
    return g.reshape(n, groups, og, ho, wo).transpose(1, 0, 3, 4, 2).reshape(groups, n * ho * wo, og)


def _conv_grad_weight(x, g, w_shape, params, cols=None):
    groups = params[3]
    o, cg, kh, kw = w_shape
    if cols is None:
        cols, _ = _cols(x, kh, kw, params)
    gm = _grad_out_matrix(g, groups)
    if groups == 1:
        gw = (gm[0].T @ cols[0])[None]
    else:
        gw = gm.transpose(0, 2, 1) @ cols  # (G, Og, K)
    return gw.reshape(w_shape)


def _conv_grad_input(g, w, x_shape, params):
    stride, padding, dilation, groups = params
    xp = array_module(g)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, h, wd = x_shape
    o, cg, kh, kw = w.shape
    og = o // groups
    _, _, ho, wo = g.shape
    gm = _grad_out_matrix(g, groups)  # (G, M, Og)
    wm = w.reshape(groups, og, cg * kh * kw)
    gcols = gm[0] @ wm[0] if groups == 1 else gm @ wm  # (G?, M, K)
    # (G, N, Ho, Wo, Cg, kh, kw) -> (kh, kw, N, G, Cg, Ho, Wo): each (i, j) slab is one strided add
    gcols = gcols.reshape(groups, n, ho, wo, cg, kh, kw).transpose(5, 6, 1, 0, 4, 2, 3)
    gx = xp.zeros((n, groups, cg, h + 2 * ph, wd + 2 * pw), dtype=g.dtype)
    for i in range(kh):
        r0 = i * dh
        for j in range(kw):
            c0 = j * dw
            gx[:, :, :, r0:r0 + sh * (ho - 1) + 1:sh, c0:c0 + sw * (wo - 1) + 1:sw] += gcols[i, j]
    gx = gx.reshape(n, c, h + 2 * ph, wd + 2 * pw)
    if ph or pw:
        gx = gx[:, :, ph:ph + h, pw:pw + wd]
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
        out = _conv_forward(x, w, params, cols)
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out

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
            gd = g.data
            if need[0]:
                gx = _wrap(_conv_grad_input(gd, w.data, x.shape, params))
            if need[1]:
                gw = _wrap(_conv_grad_weight(x.data, gd, w.shape, params, ctx.cols[0]))
        if need[2]:
            gb = g.sum((0, 2, 3))
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
        gg = Conv2d.apply(h, w, None, params) if need[0] else None
        gw = ConvGradWeight.apply(h, g, tuple(w.shape), params) if need[1] else None
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

def _max_pool_with_indices(x, kernel, stride, padding, dilation):
    """Window maxima and, for each, its flat position in the (unpadded) input plane."""
    xp = array_module(x)
    kh, kw = kernel
    v = _windows(x, kh, kw, stride, padding, dilation, fill=-xp.inf)
    n, c, ho, wo = v.shape[:4]
    flat = v.reshape(n, c, ho, wo, kh * kw)
    arg = flat.argmax(-1)
    out = xp.take_along_axis(flat, arg[..., None], -1)[..., 0]
    i, j = arg // kw, arg % kw
    rows = xp.arange(ho)[:, None] * stride[0] + i * dilation[0] - padding[0]
    cols = xp.arange(wo)[None, :] * stride[1] + j * dilation[1] - padding[1]
    return out, rows * x.shape[3] + cols


class MaxPool2d(Function):
    """Window maximum; the argmax positions are kept only when a gradient is needed."""

    raw = True

    def forward(ctx, x, kernel, stride, padding, dilation):
        need = ctx.needs_input_grad
        if not (need and need[0]):
            xp = array_module(x)
            return _windows(x, kernel[0], kernel[1], stride, padding, dilation, fill=-xp.inf).max(axis=(4, 5))
        out, ctx.indices = _max_pool_with_indices(x, kernel, stride, padding, dilation)
        return out

    def backward(ctx, g):
        x = ctx.inputs[0]
        kernel, stride, dilation = ctx.inputs[1], ctx.inputs[2], ctx.inputs[4]
        disjoint = all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))
        return MaxPoolScatter.apply(g, ctx.indices, tuple(x.shape), disjoint), None, None, None, None


class MaxPoolScatter(Function):
    """Route each pooled gradient to the input position its maximum came from."""

    raw = True

    def forward(ctx, g, indices, x_shape, disjoint):
        xp = array_module(g)
        n, c, h, w = x_shape
        plane = (xp.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
        ctx.flat = (indices + plane).reshape(-1)
        if disjoint:  # windows do not overlap: every input position is hit at most once
            out = xp.zeros(n * c * h * w, dtype=g.dtype)
            out[ctx.flat] = g.reshape(-1)
        else:
            out = xp.bincount(ctx.flat, weights=g.reshape(-1), minlength=n * c * h * w).astype(g.dtype)
        return out.reshape(x_shape)

    def backward(ctx, h):
        g_shape = ctx._shapes[0]
        return ember.index_select(h.reshape(-1), 0, _wrap(ctx.flat)).reshape(g_shape), None, None, None


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
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
    _, idx = _max_pool_with_indices(input.data, k, s, p, d)
    return out, _wrap(idx.astype("int64"))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = k if stride is None else (stride if isinstance(stride, int) else stride[0])
    p = padding if isinstance(padding, int) else padding[0]
    d = dilation if isinstance(dilation, int) else dilation[0]
    r = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    return (r[0].squeeze(-2), r[1].squeeze(-2)) if return_indices else r.squeeze(-2)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None):
    """Window mean, computed as a depthwise convolution with a constant kernel."""
    if ceil_mode:
        raise NotImplementedError("avg_pool2d(ceil_mode=True) is not supported")
    if input.ndim == 3:
        return avg_pool2d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode,
                          count_include_pad, divisor_override).squeeze(0)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] else _pair(stride, "stride")
    p = _pair(padding, "padding")
    c = input.shape[1]
    xp = array_module(input.data)
    ones = _wrap(xp.ones((c, 1) + k, dtype=input.dtype))
    total = Conv2d.apply(input, ones, None, (s, p, (1, 1), c))
    if divisor_override:
        return total * (1.0 / divisor_override)
    if count_include_pad or p == (0, 0):
        return total * (1.0 / (k[0] * k[1]))
    plane = xp.ones((1, 1) + tuple(input.shape[2:]), dtype=input.dtype)
    counts = _conv_forward(plane, xp.ones((1, 1) + k, dtype=input.dtype), (s, p, (1, 1), 1))
    return total * _wrap(1.0 / counts)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True):
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = k if stride is None else (stride if isinstance(stride, int) else stride[0])
    p = padding if isinstance(padding, int) else padding[0]
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad).squeeze(-2)
