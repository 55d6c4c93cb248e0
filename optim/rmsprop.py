"""RMSprop (Hinton), plain or centered, with optional momentum."""

from __future__ import annotations

from ember._backend import array_module
from ember.optim.optimizer import Optimizer, _state_tensor


class RMSprop(Optimizer):
    """PyTorch's RMSprop::

    g = -grad if maximize else grad;  g += weight_decay * p
    s = alpha s + (1 - alpha) g^2
    a = alpha a + (1 - alpha) g;  d = sqrt(s - a^2) + eps   (centered)
    d = sqrt(s) + eps                                       (otherwise)
    b = momentum b + g / d;  p -= lr b   (momentum > 0)  |  p -= lr g / d
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        *,
        maximize=False,
    ):
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        super().__init__(
            params,
            dict(
                lr=lr,
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
                maximize=maximize,
            ),
        )

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        state["square_avg"] = _state_tensor(xp, w.shape, w.dtype)
        if group["momentum"] > 0:
            state["momentum_buffer"] = _state_tensor(xp, w.shape, w.dtype)
        if group["centered"]:
            state["grad_avg"] = _state_tensor(xp, w.shape, w.dtype)

    def _update(self, p, g, state, group):
        w = p._data
        xp = array_module(w)
        alpha, eps = group["alpha"], group["eps"]
        wd, momentum = group["weight_decay"], group["momentum"]
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * w
        state["step"] += 1
        s = state["square_avg"]._data
        s *= alpha
        s += (1 - alpha) * (g * g)
        if group["centered"]:
            if "grad_avg" not in state:
                state["grad_avg"] = _state_tensor(xp, w.shape, w.dtype)
            a = state["grad_avg"]._data
            a *= alpha
            a += (1 - alpha) * g
            d = xp.sqrt(s - a * a)
        else:
            d = xp.sqrt(s)
        d += eps
        if momentum > 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = _state_tensor(xp, w.shape, w.dtype)
            b = state["momentum_buffer"]._data
            b *= momentum
            b += g / d
            w -= group["lr"] * b
        else:
            w -= group["lr"] * g / d
