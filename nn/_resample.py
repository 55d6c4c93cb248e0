"""Transposed convolutions, adaptive pooling and interpolation (``nn.functional``'s side).

Why this shape: each is built on something already fused or on matrix products, so none
adds a Python loop over pixels.

* A transposed convolution *is* the input-gradient of a convolution: it runs as
  ``ConvGradInput`` (``ember.nn._conv``), whose own backward is a convolution again, so it
  is as fast as ``conv2d``'s backward and differentiable to any order.
* Adaptive average pooling and (bi)linear interpolation are separable: each output is a
  weighted sum over a rectangle (or a 2x2 neighbourhood) of the input, with the weights
  a product of a row factor and a column factor. So ``out = A_h @ x @ A_w^T`` with two
  small dense matrices built once per call: two batched GEMMs, differentiable through
  ``matmul``.
* Adaptive max pooling is separable too (a max over a rectangle is the max over its
  rows of the max over its columns): one reduction per output row and per output column.
* Nearest interpolation is an ``index_select`` per spatial dimension.
"""

from __future__ import annotations

import math

import numpy as np

import ember
from ember._backend import array_module
from ember._tensor import _wrap
from ember.nn._conv import ConvGradInput, _pair


def _ntuple(v, n, name):
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(a) for a in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v}")
    return v


# ---- transposed convolutions ----------------------------------------------------------------


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution ("deconvolution") of ``input`` (N, C_in, H, W) with
    ``weight`` (C_in, C_out / groups, kH, kW), as ``torch.nn.functional.conv_transpose2d``:
    the gradient of ``conv2d`` with respect to its input. The output has
    ``H_out = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1``.

    >>> F.conv_transpose2d(ember.ones(1, 1, 2, 2), ember.ones(1, 1, 2, 2), stride=2).shape
    (1, 1, 4, 4)
    """
    if input.ndim == 3:
        out = conv_transpose2d(
            input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups, dilation
        )
        return out.squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(
            f"conv_transpose2d expects a 4-D input and weight, got {input.ndim}-D and {weight.ndim}-D"
        )
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    dilation, output_padding = _pair(dilation, "dilation"), _pair(output_padding, "output_padding")
    n, c_in, h, w = input.shape
    if weight.shape[0] != c_in:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(input.shape)} "
            f"to have {weight.shape[0]} channels, but got {c_in} channels instead"
        )
    if c_in % groups:
        raise RuntimeError(f"in_channels ({c_in}) must be divisible by groups ({groups})")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise RuntimeError(
                "output padding must be smaller than either stride or dilation, but got "
                f"output_padding={output_padding}, stride={stride}, dilation={dilation}"
            )
    kh, kw = weight.shape[2:]
    c_out = weight.shape[1] * groups
    ho = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    wo = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    if ho <= 0 or wo <= 0:
        raise RuntimeError(f"conv_transpose2d: the output size ({ho}, {wo}) is too small (padding too large)")
    if input.dtype != weight.dtype:
        raise RuntimeError(
            f"conv_transpose2d: input dtype {input.dtype} and weight dtype {weight.dtype} differ"
        )
    params = (stride, padding, dilation, groups)
    out = ConvGradInput.apply(input, weight, (n, c_out, ho, wo), params)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution of ``input`` (N, C_in, L) with ``weight`` (C_in, C_out / groups, k),
    through ``conv_transpose2d`` on a height-1 image."""
    if input.ndim == 2:
        out = conv_transpose1d(
            input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups, dilation
        )
        return out.squeeze(0)
    if input.ndim != 3 or weight.ndim != 3:
        raise RuntimeError(
            f"conv_transpose1d expects a 3-D input and weight, got {input.ndim}-D and {weight.ndim}-D"
        )

    def one(v, name):
        return _ntuple(v, 1, name)[0]

    out = conv_transpose2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, one(stride, "stride")),
        (0, one(padding, "padding")),
        (0, one(output_padding, "output_padding")),
        groups,
        (1, one(dilation, "dilation")),
    )
    return out.squeeze(2)


# ---- adaptive pooling -------------------------------------------------------------------------


def _bins(n_in, n_out):
    """PyTorch's adaptive bins: output i covers [floor(i n_in / n_out), ceil((i+1) n_in / n_out))."""
    return [((i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)) for i in range(n_out)]


def _avg_matrix(n_in, n_out, xp, dtype):
    m = np.zeros((n_out, n_in))
    for i, (a, b) in enumerate(_bins(n_in, n_out)):
        m[i, a:b] = 1.0 / (b - a)
    return _wrap(xp.asarray(m.astype(dtype)))


def _output_size(output_size, spatial, n):
    size = (
        _ntuple(output_size, n, "output_size") if not isinstance(output_size, (tuple, list)) else output_size
    )
    if len(size) != n:
        raise ValueError(f"output_size must have {n} elements, got {output_size}")
    out = tuple(s if o is None else int(o) for o, s in zip(size, spatial))
    if any(o <= 0 for o in out):
        raise ValueError(f"output_size must be positive, got {output_size}")
    return out


def _check_spatial(input, n, name):
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"{name}: expected {n + 1}D or {n + 2}D input, got {input.ndim}D")
    if any(s == 0 for s in input.shape[-n:]):
        raise ValueError(f"{name}: input of size {list(input.shape)} has an empty spatial dimension")


def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive bins to an (oH, oW) output (``None`` keeps a size);
    input (N, C, H, W) or (C, H, W).

    >>> F.adaptive_avg_pool2d(ember.ones(2, 3, 7, 5), 1).shape
    (2, 3, 1, 1)
    """
    _check_spatial(input, 2, "adaptive_avg_pool2d")
    h, w = input.shape[-2:]
    oh, ow = _output_size(output_size, (h, w), 2)
    if h % oh == 0 and w % ow == 0:  # equal bins: a reshape and a mean
        lead = input.shape[:-2]
        return input.reshape(*lead, oh, h // oh, ow, w // ow).mean((-3, -1))
    xp = array_module(input._data)
    ah = _avg_matrix(h, oh, xp, input.dtype)
    aw = _avg_matrix(w, ow, xp, input.dtype)
    return ember.matmul(ember.matmul(ah, input), aw.t())


def adaptive_avg_pool1d(input, output_size):
    """Average over adaptive bins of the last dimension to ``output_size``; input (N, C, L) or (C, L)."""
    _check_spatial(input, 1, "adaptive_avg_pool1d")
    (ol,) = _output_size(output_size, input.shape[-1:], 1)
    length = input.shape[-1]
    if length % ol == 0:
        return input.reshape(*input.shape[:-1], ol, length // ol).mean(-1)
    a = _avg_matrix(length, ol, array_module(input._data), input.dtype)
    return ember.matmul(input, a.t())


def _adaptive_max_dim(x, dim, n_out):
    n_in = x.shape[dim]
    if n_in % n_out == 0:
        shape = x.shape[:dim] + (n_out, n_in // n_out) + x.shape[dim + 1 :]
        return x.reshape(shape).amax(dim + 1)
    parts = [x.narrow(dim, a, b - a).amax(dim, keepdim=True) for a, b in _bins(n_in, n_out)]
    return ember.cat(parts, dim)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over PyTorch's adaptive bins to an (oH, oW) output; input (N, C, H, W) or (C, H, W)."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d(return_indices=True) is not supported in ember")
    _check_spatial(input, 2, "adaptive_max_pool2d")
    oh, ow = _output_size(output_size, input.shape[-2:], 2)
    nd = input.ndim
    return _adaptive_max_dim(_adaptive_max_dim(input, nd - 2, oh), nd - 1, ow)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max over adaptive bins of the last dimension; input (N, C, L) or (C, L)."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool1d(return_indices=True) is not supported in ember")
    _check_spatial(input, 1, "adaptive_max_pool1d")
    (ol,) = _output_size(output_size, input.shape[-1:], 1)
    return _adaptive_max_dim(input, input.ndim - 1, ol)


# ---- interpolation ----------------------------------------------------------------------------

_MODES = {"nearest": None, "linear": 1, "bilinear": 2, "nearest-exact": None}


def _linear_matrix(n_in, n_out, align_corners, scale, xp, dtype):
    """(n_out, n_in) weights of 1-D linear interpolation, PyTorch's source coordinates."""
    d = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = d * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((d + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1.0 - lam)
    np.add.at(m, (np.arange(n_out), i1), lam)
    return _wrap(xp.asarray(m.astype(dtype)))


def _nearest_index(n_in, n_out, scale, exact, xp):
    d = np.arange(n_out, dtype=np.float64)
    src = np.floor((d + 0.5) * scale) if exact else np.floor(d * scale)
    return _wrap(xp.asarray(np.minimum(src.astype(np.int64), n_in - 1)))


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias=False,
):
    """Resize the spatial dimensions of ``input`` (N, C, *spatial), as
    ``torch.nn.functional.interpolate``: to ``size`` or by ``scale_factor``.

    Modes: ``"nearest"`` (source ``floor(dst * in / out)``, PyTorch's legacy rule; any
    number of spatial dimensions), ``"nearest-exact"`` (``floor((dst + 0.5) * in / out)``),
    ``"linear"`` (3-D input) and ``"bilinear"`` (4-D input), with ``align_corners`` as in
    PyTorch (``False``: half-pixel centres, sources clamped at 0; ``True``: the corner
    pixels of input and output coincide). A given ``scale_factor`` sets the source
    coordinates' scale (``1 / scale_factor``) unless ``recompute_scale_factor=True``.

    >>> F.interpolate(ember.arange(4.0).reshape(1, 1, 2, 2), scale_factor=2, mode="bilinear").shape
    (1, 1, 4, 4)
    """
    if mode not in _MODES and mode not in ("bicubic", "trilinear", "area"):
        raise ValueError(f"interpolate: unknown mode {mode!r}")
    if mode not in _MODES:
        raise NotImplementedError(
            f"interpolate: mode {mode!r} is not implemented in ember "
            "(nearest, nearest-exact, linear and bilinear are)"
        )
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not implemented in ember")
    n_sp = input.ndim - 2
    if n_sp < 1:
        raise ValueError(
            f"interpolate: expected an input with at least 3 dims (N, C, *spatial), got {input.ndim}D"
        )
    want = _MODES[mode]
    if want is not None and n_sp != want:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {want + 2}D input")
    if want is None and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    spatial = input.shape[2:]
    if size is not None:
        out = _ntuple(size, n_sp, "size")
        scales = [s / o for s, o in zip(spatial, out)]
    else:
        sf = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * n_sp
        if len(sf) != n_sp:
            raise ValueError(f"scale_factor must have {n_sp} elements, got {scale_factor}")
        out = tuple(int(math.floor(s * f)) for s, f in zip(spatial, sf))
        scales = [s / o for s, o in zip(spatial, out)] if recompute_scale_factor else [1.0 / f for f in sf]
    if any(o <= 0 for o in out):
        raise ValueError(f"interpolate: output size {out} must be positive")
    xp = array_module(input._data)
    x = input
    if want is None:
        exact = mode == "nearest-exact"
        for k, (n_in, n_out, sc) in enumerate(zip(spatial, out, scales)):
            if n_in != n_out or sc != 1.0:
                x = x.index_select(2 + k, _nearest_index(n_in, n_out, sc, exact, xp))
        return x
    ac = bool(align_corners)
    if n_sp == 1:
        a = _linear_matrix(spatial[0], out[0], ac, scales[0], xp, input.dtype)
        return ember.matmul(x, a.t())
    ah = _linear_matrix(spatial[0], out[0], ac, scales[0], xp, input.dtype)
    aw = _linear_matrix(spatial[1], out[1], ac, scales[1], xp, input.dtype)
    return ember.matmul(ember.matmul(ah, x), aw.t())


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated in PyTorch in favour of ``interpolate``; the same call."""
    return interpolate(input, size, scale_factor, mode, align_corners)
