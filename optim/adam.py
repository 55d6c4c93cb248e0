"""Adam and AdamW (decoupled weight decay), both with AMSGrad."""

from __future__ import annotations

import math

from ember._backend import array_module
from ember.optim.optimizer import Optimizer, _check_betas, _grad, _moments, _state_tensor


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's formulation::

    g = -grad if maximize else grad;  g += weight_decay * p   (Adam: L2 in the gradient)
    m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   vmax = max(vmax, v) (amsgrad)
    p -= lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        maximize=False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=_check_betas(betas),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
            ),
        )

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        state["exp_avg"] = _state_tensor(xp, w.shape, w.dtype)
        state["exp_avg_sq"] = _state_tensor(xp, w.shape, w.dtype)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _state_tensor(xp, w.shape, w.dtype)

    def _update(self, p, g, state, group):
        w = p._data
        xp = array_module(w)
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        g = _grad(g, w, group, decoupled=self._decoupled)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        _moments(m, v, g, b1, b2)
        if group["amsgrad"]:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = _state_tensor(xp, w.shape, w.dtype)
            vmax = state["max_exp_avg_sq"]._data
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        denom = xp.sqrt(v)
        denom /= math.sqrt(1 - b2**t)
        denom += eps
        w -= (lr / (1 - b1**t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``
    before the Adam step instead of adding ``weight_decay * p`` to the gradient."""

    _decoupled = True

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
    ):
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
