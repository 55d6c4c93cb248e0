"""``ember.nn.functional``: the stateless side of the layers (PyTorch's ``F``).

Hot paths have one fused ``Function`` each (``linear``, ``cross_entropy``, the
convolutions in ``ember.nn._conv``, the LSTM in ``ember.nn._lstm``): a forward on raw
arrays and a hand-written backward in ember ops, because an eager engine pays per op.
Everything else is composed from ember ops and differentiates through them.
"""

from __future__ import annotations

import math

import numpy as np

import ember
from ember import random as _random
from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd import Function, no_grad
from ember.nn._conv import avg_pool1d, avg_pool2d, conv1d, conv2d, max_pool1d, max_pool2d
from ember.nn._resample import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    conv_transpose1d,
    conv_transpose2d,
    interpolate,
    upsample,
)
from ember.ops_index import IndexAddZeros

__all__ = [
    # activations
    "relu",
    "relu6",
    "gelu",
    "tanh",
    "sigmoid",
    "silu",
    "elu",
    "leaky_relu",
    "softplus",
    "softmax",
    "log_softmax",
    "hardtanh",
    "logsigmoid",
    # layers
    "linear",
    "bilinear",
    "dropout",
    "layer_norm",
    "batch_norm",
    "embedding",
    "embedding_bag",
    "conv1d",
    "conv2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "interpolate",
    "upsample",
    "group_norm",
    "cosine_similarity",
    "pairwise_distance",
    "pad",
    "normalize",
    "one_hot",
    "scaled_dot_product_attention",
    # losses
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "margin_ranking_loss",
    "kl_div",
]

# ---- activations ------------------------------------------------------------------------

relu = ember.relu
gelu = ember.gelu
tanh = ember.tanh
sigmoid = ember.sigmoid
softmax = ember.softmax
log_softmax = ember.log_softmax
leaky_relu = ember.leaky_relu
softplus = ember.softplus
pad = ember.pad


def relu6(input):
    return ember.clamp(input, 0.0, 6.0)


def hardtanh(input, min_val=-1.0, max_val=1.0):
    return ember.clamp(input, min_val, max_val)


def silu(input):
    return input * ember.sigmoid(input)


def elu(input, alpha=1.0):
    # expm1 of min(x, 0): the branch not taken never overflows (no inf * 0 in the gradient)
    return ember.where(input > 0, input, alpha * ember.expm1(ember.clamp_max(input, 0.0)))


def logsigmoid(input):
    return -ember.softplus(-input)


# ---- linear layers ----------------------------------------------------------------------


class Linear(Function):
    """``y = x @ w.T + b`` as one node: one GEMM forward, two backward (leading dims flattened)."""

    raw = True
    saves = (0, 1)

    def forward(ctx, x, w, b):
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        y = x2 @ w.T
        if b is not None:
            y += b
        return y.reshape(x.shape[:-1] + (w.shape[0],)) if x.ndim != 2 else y

    def backward(ctx, g):
        x, w, _ = ctx.inputs
        need = ctx.needs_input_grad
        gx = gw = gb = None
        if need[0]:
            gx = ember.matmul(g, w)
        if need[1] or need[2]:
            g2 = g.reshape(-1, g.shape[-1])
            if need[1]:
                gw = ember.matmul(g2.t(), x.reshape(-1, x.shape[-1]))
            if need[2]:
                gb = g2.sum(0)
        return gx, gw, gb


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (``weight`` is ``(out_features, in_features)``)."""
    return Linear.apply(input, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """``y[..., k] = input1 @ weight[k] @ input2 + bias[k]``."""
    y = ember.einsum("...i,kij,...j->...k", input1, weight, input2)
    return y if bias is None else y + bias


# ---- regularisation and normalisation -----------------------------------------------------


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, generator=None):
    """Zero elements with probability ``p`` and scale the rest by ``1/(1-p)`` (training only)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    u = _random.rand(*input.shape, generator=generator, dtype=input.dtype, device=input.device)._data
    keep = (u >= p).astype(input.dtype)
    keep *= 1.0 / (1.0 - p)
    return input * _wrap(keep)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the trailing ``normalized_shape`` dims (biased variance), then scale/shift."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    if tuple(input.shape[input.ndim - len(dims) :]) != tuple(normalized_shape):
        raise RuntimeError(
            f"Given normalized_shape={list(normalized_shape)}, expected input with shape "
            f"[*, {', '.join(map(str, normalized_shape))}], but got input of size {list(input.shape)}"
        )
    xc = input - input.mean(dims, keepdim=True)
    y = xc * ember.rsqrt((xc * xc).mean(dims, keepdim=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Normalise each channel (dim 1) by batch statistics (training) or running ones (eval).

    In training the running buffers are updated in place: ``(1-momentum)*old +
    momentum*batch``, with the unbiased batch variance, as PyTorch does.
    """
    if input.ndim < 2:
        raise ValueError(f"expected at least 2D input (got {input.ndim}D input)")
    dims = (0,) + tuple(range(2, input.ndim))
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {list(input.shape)}"
            )
        mean = input.mean(dims, keepdim=True)
        xc = input - mean
        var = (xc * xc).mean(dims, keepdim=True)
        if running_mean is not None:
            with no_grad():
                m = momentum
                running_mean._data *= 1 - m
                running_mean._data += m * mean._data.reshape(-1)
                running_mean._bump_version()
                running_var._data *= 1 - m
                running_var._data += (m * n / (n - 1)) * var._data.reshape(-1)
                running_var._bump_version()
        y = xc * ember.rsqrt(var + eps)
    else:
        if running_mean is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        y = (input - running_mean.reshape(shape)) * ember.rsqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Group normalisation (Wu & He): the channels (dim 1) of each sample are split into
    ``num_groups`` groups, each normalised over its channels and spatial positions (biased
    variance), then scaled and shifted per channel by ``weight`` and ``bias``.

    >>> F.group_norm(ember.randn(2, 6, 4, 4), 3).shape
    (2, 6, 4, 4)
    """
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(
            f"Expected number of channels in input to be divisible by num_groups, but got input of shape "
            f"{list(input.shape)} and num_groups={num_groups}"
        )
    x = input.reshape(n, num_groups, -1)
    xc = x - x.mean(-1, keepdim=True)
    y = (xc * ember.rsqrt((xc * xc).mean(-1, keepdim=True) + eps)).reshape(input.shape)
    shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (after broadcasting):
    ``x1 . x2 / max(||x1|| * ||x2||, eps)``, as ``torch.nn.functional.cosine_similarity``.

    >>> F.cosine_similarity(ember.tensor([[1.0, 0.0]]), ember.tensor([[1.0, 1.0]]))
    tensor([0.7071])
    """
    dot = (x1 * x2).sum(dim)
    n1 = (x1 * x1).sum(dim)
    n2 = (x2 * x2).sum(dim)
    return dot / ember.sqrt(ember.clamp_min(n1 * n2, eps * eps))


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """The p-norm of ``x1 - x2 + eps`` over the last dimension, as PyTorch's."""
    return ember.norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    return input / ember.clamp_min(ember.norm(input, p, dim, keepdim=True), eps)


def one_hot(tensor, num_classes: int = -1):
    idx = tensor._data
    xp = array_module(idx)
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    return _wrap((idx[..., None] == xp.arange(num_classes)).astype(xp.int64))


# ---- embeddings -----------------------------------------------------------------------------


def _indices(input):
    idx = input._data if type(input) is Tensor else input
    xp = array_module(idx)
    idx = xp.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding indices must be integers, got {idx.dtype}")
    return idx


def _padding(padding_idx, num_embeddings):
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError("Padding_idx must be within num_embeddings")
    return padding_idx % num_embeddings


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
):
    """Rows of ``weight`` at integer ``input``: shape ``input.shape + (dim,)``.

    The lookup is ``ember.sparse.embedding``: with ``sparse=True`` the weight's gradient
    is a ``RowSparseGrad`` holding only the touched rows. ``padding_idx`` rows receive no
    gradient; ``max_norm`` renormalises the looked-up rows in place first.
    """
    if scale_grad_by_freq:
        raise NotImplementedError("embedding(scale_grad_by_freq=True) is not supported")
    from ember.sparse import embedding as lookup

    return lookup(
        weight,
        _indices(input),
        sparse=sparse,
        padding_idx=padding_idx,
        max_norm=max_norm,
        norm_type=norm_type,
    )


def embedding_bag(
    input,
    weight,
    offsets=None,
    max_norm=None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights=None,
    include_last_offset: bool = False,
    padding_idx=None,
):
    """Sum or mean of embedding rows per bag.

    Bags are the rows of a 2-D ``input``, or slices of a 1-D ``input`` starting at
    ``offsets``. Entries equal to ``padding_idx`` are left out (also from a mean's
    count); an empty bag gives zeros.
    """
    if mode not in ("sum", "mean"):
        raise NotImplementedError(f"embedding_bag mode {mode!r} (supported: 'sum', 'mean')")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError("embedding_bag: per_sample_weights was only supported for mode='sum'")
    idx = _indices(input)
    xp = array_module(idx)
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None")
        n_bags, length = idx.shape
        bag = xp.repeat(xp.arange(n_bags), length)
        idx = idx.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        starts = _indices(offsets).reshape(-1)
        if include_last_offset:
            ends, starts = starts[1:], starts[:-1]
        else:
            ends = xp.concatenate([starts[1:], xp.asarray([idx.shape[0]], dtype=starts.dtype)])
        n_bags = starts.shape[0]
        bag = xp.repeat(xp.arange(n_bags), (ends - starts).astype(xp.int64))
        idx = idx[: bag.shape[0]] if include_last_offset else idx
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    padding_idx = _padding(padding_idx, weight.shape[0])
    if padding_idx is not None:
        keep = xp.nonzero(idx != padding_idx)[0]
        idx, bag = idx[keep], bag[keep]
        if psw is not None:
            psw = psw[_wrap(keep)]
    rows = embedding(_wrap(idx), weight, max_norm=max_norm, norm_type=norm_type, sparse=sparse)
    if psw is not None:
        rows = rows * psw.unsqueeze(1)
    out = IndexAddZeros.apply(rows, 0, bag, (n_bags, weight.shape[1]))
    if mode == "mean":
        counts = xp.bincount(bag, minlength=n_bags).astype(weight.dtype)
        out = out * _wrap((1.0 / xp.maximum(counts, 1.0))[:, None])
    return out


# ---- attention --------------------------------------------------------------------------------


def _additive_mask(mask, dtype):
    """A boolean mask (True = blocked) or a float mask → an additive float mask."""
    if mask is None:
        return None
    m = mask._data if type(mask) is Tensor else mask
    xp = array_module(m)
    if m.dtype.kind == "b":
        return _wrap(xp.where(m, -xp.inf, 0.0).astype(dtype))
    return mask if type(mask) is Tensor else _wrap(m.astype(dtype))


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale=None,
    generator=None,
    return_weights: bool = False,
):
    """``softmax(q @ k^T * scale + mask) @ v``; a boolean ``attn_mask`` is True where *allowed*.

    (PyTorch's convention here: for ``scaled_dot_product_attention`` True means "take
    part", unlike ``MultiheadAttention``'s masks.)
    """
    d = query.shape[-1]
    scores = ember.matmul(query, key.transpose(-2, -1)) * (scale if scale is not None else 1.0 / math.sqrt(d))
    if is_causal:
        xp = array_module(scores._data)
        L, S = scores.shape[-2], scores.shape[-1]
        scores = scores + _additive_mask(_wrap(xp.triu(xp.ones((L, S), dtype=bool), 1)), scores.dtype)
    if attn_mask is not None:
        if attn_mask.dtype.kind == "b":
            attn_mask = ember.logical_not(attn_mask)
        scores = scores + _additive_mask(attn_mask, scores.dtype)
    w = ember.softmax(scores, -1)
    if dropout_p > 0.0:
        w = dropout(w, dropout_p, True, generator=generator)
    out = ember.matmul(w, value)
    return (out, w) if return_weights else out


# ---- losses -------------------------------------------------------------------------------


def _reduce(loss, reduction: str):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_same_shape(input, target, name):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"{name}: Using a target size ({tuple(target.shape)}) that is different to the input "
            f"size ({tuple(input.shape)}) is not supported; please ensure they have the same size."
        )


def mse_loss(input, target, reduction: str = "mean"):
    _check_same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction: str = "mean"):
    _check_same_shape(input, target, "l1_loss")
    return _reduce(ember.abs(input - target), reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    """``0.5 d²/beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``."""
    _check_same_shape(input, target, "smooth_l1_loss")
    if beta == 0.0:
        return l1_loss(input, target, reduction)
    d = input - target
    ad = ember.abs(d)
    return _reduce(ember.where(ad < beta, (0.5 / beta) * d * d, ad - 0.5 * beta), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0):
    """``0.5 d²`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    _check_same_shape(input, target, "huber_loss")
    d = input - target
    ad = ember.abs(d)
    return _reduce(ember.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta)), reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction: str = "mean"):
    """``max(0, -target * (input1 - input2) + margin)``."""
    return _reduce(ember.relu(-target * (input1 - input2) + margin), reduction)


class _BCE(Function):
    """Pointwise binary cross-entropy on probabilities, as PyTorch's kernel: each log is
    clamped at -100 (so 0 and 1 give finite losses) and the input gradient is
    ``(x - t) / max(x (1 - x), 1e-12)`` (finite at 0 and 1, where the composed clamped logs
    would give 0 * inf)."""

    def forward(ctx, x, t):
        ctx.save_for_backward(x, t)
        xd, td = x._data, t._data
        xp = array_module(xd)
        with np.errstate(divide="ignore"):
            lx = xp.maximum(xp.log(xd), -100.0)
            l1x = xp.maximum(xp.log1p(-xd), -100.0)
        return _wrap((-(td * lx + (1 - td) * l1x)).astype(xd.dtype, copy=False))

    def backward(ctx, g):
        x, t = ctx.saved_tensors
        gx = gt = None
        if ctx.needs_input_grad[0]:
            gx = g * (x - t) / ember.clamp_min(x * (1 - x), 1e-12)
        if ctx.needs_input_grad[1]:
            # d/dt = log(1 - x) - log(x), with the forward's clamps
            with np.errstate(divide="ignore"):
                gt = g * (ember.clamp_min(ember.log1p(-x), -100.0) - ember.clamp_min(ember.log(x), -100.0))
        return gx, gt


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
    """Binary cross-entropy on probabilities ``input`` in [0, 1]: ``-(t log x + (1 - t)
    log(1 - x))``, each log clamped at -100 as in PyTorch, so 0 and 1 stay finite, and so
    does the gradient ``(x - t) / max(x (1 - x), 1e-12)``."""
    _check_same_shape(input, target, "binary_cross_entropy")
    if type(target) is not Tensor:
        target = ember.tensor(target, dtype=input.dtype, device=input.device)
    loss = _BCE.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None):
    """Sigmoid + BCE in the stable form ``(1-t) x + (1 + (pw-1) t) softplus(-x)``."""
    _check_same_shape(input, target, "binary_cross_entropy_with_logits")
    sp = ember.softplus(-input, 1.0, 50.0)
    if pos_weight is None:
        loss = (1 - target) * input + sp
    else:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _class_weights(xp, target, weight, ignore_index, n_classes, dtype):
    """Per-row weight of the target class (0 for ignored rows), and the clipped targets."""
    valid = target != ignore_index
    t = xp.where(valid, target, 0)
    if xp.any((t < 0) | (t >= n_classes)):
        bad = int(t[(t < 0) | (t >= n_classes)][0])
        raise IndexError(f"Target {bad} is out of bounds (number of classes {n_classes}).")
    w = valid.astype(dtype) if weight is None else weight[t] * valid
    return t, w


class CrossEntropy(Function):
    """Log-softmax + NLL over rows of ``x`` (N, C) in one node.

    The loss is ``-sum_c q[n, c] log p[n, c]`` with a constant target distribution ``q``
    (one-hot or given probabilities, smoothed and class-weighted), so the gradient is
    ``softmax(x) * q.sum(1) - q`` — written with the ``softmax`` op so it differentiates
    again.
    """

    raw = True
    saves = (0,)

    def forward(ctx, x, target, weight, ignore_index, eps, reduction, probs):
        xp = array_module(x)
        n, c = x.shape
        shifted = x - x.max(1, keepdims=True)
        logp = shifted - xp.log(xp.exp(shifted).sum(1, keepdims=True))
        if probs:
            q = target * (1.0 - eps) + eps / c if eps else target.astype(x.dtype, copy=True)
            if weight is not None:
                q = q * weight
            denom = n
        else:
            t, wt = _class_weights(xp, target, weight, ignore_index, c, x.dtype)
            q = xp.zeros((n, c), dtype=x.dtype)
            q[xp.arange(n), t] = (1.0 - eps) * wt
            if eps:
                valid = (target != ignore_index).astype(x.dtype)[:, None]
                q += (eps / c) * (valid if weight is None else valid * weight)
            denom = wt.sum()
        q = q.astype(x.dtype, copy=False)
        loss = -(q * logp).sum(1)
        ctx.q, ctx.qsum = q, q.sum(1, keepdims=True)
        if reduction == "none":
            ctx.scale = None
            return loss
        ctx.scale = 1.0 / denom if reduction == "mean" else 1.0
        return xp.asarray(loss.sum() * ctx.scale, dtype=x.dtype)

    def backward(ctx, g):
        x, weight = ctx.inputs[0], ctx.inputs[2]
        eps, probs = ctx.inputs[4], ctx.inputs[6]
        gl = g.reshape(-1, 1) if ctx.scale is None else g * float(ctx.scale)
        gx = gt = None
        if ctx.needs_input_grad[0]:
            gx = (ember.softmax(x, 1) * _wrap(ctx.qsum) - _wrap(ctx.q)) * gl
        if probs and ctx.needs_input_grad[1]:
            gt = -(1.0 - eps) * ember.log_softmax(x, 1) * gl
            if weight is not None:
                gt = gt * weight
        return gx, gt, None, None, None, None, None


def _classes_last(input, target, probs):
    """(N, C, d1, ...) → (N*d1*..., C); targets likewise. Returns the 'none' output shape too."""
    if input.ndim == 1:
        return input.unsqueeze(0), (target.unsqueeze(0) if probs else target.reshape(1)), ()
    if input.ndim == 2:
        return input, target, (input.shape[0],)
    c = input.shape[1]
    out_shape = (input.shape[0],) + tuple(input.shape[2:])
    x = ember.movedim(input, 1, -1).reshape(-1, c)
    t = ember.movedim(target, 1, -1).reshape(-1, c) if probs else target.reshape(-1)
    return x, t, out_shape


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """Cross-entropy of logits ``input`` (N, C, ...) against class indices or probabilities.

    Class-index targets honour ``ignore_index``; ``mean`` divides by the summed weights
    of the counted targets. Probability targets (same shape as ``input``) average over N.

    >>> F.cross_entropy(ember.tensor([[2.0, 0.5]]), ember.tensor([0]))
    tensor(0.2014)
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    probs = target.dtype.kind == "f"
    if probs:
        _check_same_shape(input, target, "cross_entropy")
    x, t, out_shape = _classes_last(input, target, probs)
    tdata = t if probs else t._data
    w = None if weight is None else weight._data
    out = CrossEntropy.apply(
        x, tdata if not probs else t, w, ignore_index, float(label_smoothing), reduction, probs
    )
    if reduction == "none":
        return out.reshape(out_shape)
    return out


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
):
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at class ``target``."""
    x, t, out_shape = _classes_last(input, target, False)
    xp = array_module(x._data)
    n, c = x.shape
    tt, wt = _class_weights(xp, t._data, None if weight is None else weight._data, ignore_index, c, x.dtype)
    q = xp.zeros((n, c), dtype=x.dtype)
    q[xp.arange(n), tt] = wt
    loss = -(x * _wrap(q)).sum(1)
    if reduction == "none":
        return loss.reshape(out_shape)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / float(wt.sum())
    raise ValueError(f"{reduction} is not a valid value for reduction")


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
    """Kullback-Leibler divergence with ``input`` given as log-probabilities, pointwise
    ``target * (log(target) - input)`` (0 where ``target`` is 0), or with
    ``log_target=True`` ``exp(target) * (target - input)``, as PyTorch's ``kl_div``.

    ``reduction``: ``"batchmean"`` (the sum divided by the batch size, the mathematical
    KL divergence per sample), ``"sum"``, ``"mean"`` (over every element, as PyTorch, which
    warns that it is not the KL divergence) or ``"none"``.

    >>> F.kl_div(F.log_softmax(logits, 1), target_probs, reduction="batchmean")
    """
    if size_average is not None or reduce is not None:
        raise ValueError(
            "size_average and reduce are deprecated in PyTorch and not supported: use reduction="
        )
    if log_target:
        loss = ember.exp(target) * (target - input)
    else:
        # target * log(target) with 0 where target == 0 (and no 0 * inf in the gradient)
        safe = ember.where(target > 0, target, ember.ones_like(target))
        loss = target * (ember.log(safe) - input)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)
