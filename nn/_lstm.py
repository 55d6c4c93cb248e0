"""The LSTM recurrence of one layer as a single graph node.

Why: an LSTM step composed from ember ops is ~15 nodes per time step, and the eager
per-op cost dominates at the sizes people use. Here the input projection of all time
steps is one GEMM outside (``xg = x @ W_ih.T + b``), and this node runs the
recurrence: one GEMM plus a handful of whole-array updates per step, forward and
backward (BPTT) on raw arrays.

Its output packs ``h_t`` and ``c_t`` side by side, shape (T, B, 2H), because a node
returns one array; the module slices it. When the gradient's own graph is recorded
(``create_graph=True``) the backward re-runs the recurrence with ember ops and
differentiates that, so higher-order gradients stay correct.
"""

from __future__ import annotations

import ember
from ember._backend import array_module
from ember._tensor import _wrap
from ember.autograd import Function, enable_grad, grad, is_grad_enabled


def _sigmoid(xp, a):
    # tanh form: stable for large |a| and a single transcendental call
    return 0.5 * (xp.tanh(0.5 * a) + 1.0)


class LSTMLayer(Function):
    """Inputs: xg (T, B, 4H) projected inputs, h0 (B, H), c0 (B, H), w_hh (4H, H). Gate order i, f, g, o."""

    raw = True
    saves = (0, 1, 2, 3)

    def forward(ctx, xg, h0, c0, w_hh):
        xp = array_module(xg)
        t_len, b, h4 = xg.shape
        hs = h4 // 4
        out = xp.empty((t_len, b, 2 * hs), dtype=xg.dtype)
        acts = xp.empty((t_len, b, h4), dtype=xg.dtype)  # i, f, g, o after their nonlinearities
        tanh_c = xp.empty((t_len, b, hs), dtype=xg.dtype)
        w_t = w_hh.T
        h, c = h0, c0
        for t in range(t_len):
            z = xg[t] + h @ w_t
            a = acts[t]
            a[:, : 2 * hs] = _sigmoid(xp, z[:, : 2 * hs])
            a[:, 2 * hs : 3 * hs] = xp.tanh(z[:, 2 * hs : 3 * hs])
            a[:, 3 * hs :] = _sigmoid(xp, z[:, 3 * hs :])
            c = a[:, hs : 2 * hs] * c + a[:, :hs] * a[:, 2 * hs : 3 * hs]
            tc = xp.tanh(c)
            tanh_c[t] = tc
            h = a[:, 3 * hs :] * tc
            out[t, :, :hs] = h
            out[t, :, hs:] = c
        ctx.acts, ctx.tanh_c, ctx.out = acts, tanh_c, out
        return out

    def backward(ctx, g):
        xg, h0, c0, w_hh = ctx.inputs
        if is_grad_enabled():
            return _recompute_backward(ctx, g)
        xp = array_module(g._data)
        gd = g._data
        acts, tanh_c, out = ctx.acts, ctx.tanh_c, ctx.out
        t_len, b, h4 = acts.shape
        hs = h4 // 4
        w = w_hh._data
        dz = xp.empty_like(acts)
        dh = xp.zeros((b, hs), dtype=gd.dtype)
        dc = xp.zeros((b, hs), dtype=gd.dtype)
        for t in range(t_len - 1, -1, -1):
            a = acts[t]
            i, f, gg, o = a[:, :hs], a[:, hs : 2 * hs], a[:, 2 * hs : 3 * hs], a[:, 3 * hs :]
            c_prev = out[t - 1, :, hs:] if t else c0._data
            tc = tanh_c[t]
            dh = dh + gd[t, :, :hs]
            dc = dc + gd[t, :, hs:] + dh * o * (1.0 - tc * tc)
            d = dz[t]
            d[:, :hs] = dc * gg * i * (1.0 - i)
            d[:, hs : 2 * hs] = dc * c_prev * f * (1.0 - f)
            d[:, 2 * hs : 3 * hs] = dc * i * (1.0 - gg * gg)
            d[:, 3 * hs :] = dh * tc * o * (1.0 - o)
            dh = d @ w
            dc = dc * f
        need = ctx.needs_input_grad
        gw = None
        if need[3]:
            h_prev = xp.concatenate([h0._data[None], out[:-1, :, :hs]], 0)
            gw = _wrap(dz.reshape(-1, h4).T @ h_prev.reshape(-1, hs))
        ctx.acts = ctx.tanh_c = ctx.out = None
        return (
            _wrap(dz) if need[0] else None,
            _wrap(dh) if need[1] else None,
            _wrap(dc) if need[2] else None,
            gw,
        )


def lstm_composite(xg, h0, c0, w_hh):
    """The same recurrence in ember ops (reference and double-backward path)."""
    hs = h0.shape[-1]
    h, c = h0, c0
    outs = []
    for t in range(xg.shape[0]):
        z = xg[t] + ember.matmul(h, w_hh.t())
        i = ember.sigmoid(z[:, :hs])
        f = ember.sigmoid(z[:, hs : 2 * hs])
        gg = ember.tanh(z[:, 2 * hs : 3 * hs])
        o = ember.sigmoid(z[:, 3 * hs :])
        c = f * c + i * gg
        h = o * ember.tanh(c)
        outs.append(ember.cat([h, c], -1))
    return ember.stack(outs, 0)


def _recompute_backward(ctx, g):
    inputs = ctx.inputs
    need = ctx.needs_input_grad
    with enable_grad():
        out = lstm_composite(*inputs)
        wanted = [t for t, n in zip(inputs, need) if n]
        gs = iter(grad([out], wanted, [g], create_graph=True, allow_unused=True))
    return tuple(next(gs) if n else None for n in need)
