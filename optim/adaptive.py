"""Adadelta, Adamax, NAdam and RAdam, as PyTorch's (its documented algorithms, step by step).

Each update is whole-array in-place work on the raw arrays (``p._data``), as the other
optimizers in this package; the docstrings give the formulas the code follows.
"""

from __future__ import annotations

import math

from ember._backend import array_module
from ember.optim.optimizer import Optimizer, _check_betas, _grad, _moments, _state_tensor


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), PyTorch's formulation::

        g = -grad if maximize else grad;  g += weight_decay * p
        v = rho v + (1 - rho) g^2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho u + (1 - rho) delta^2
        p -= lr * delta

    ``lr`` scales the step (1.0 is the paper's method). State: ``square_avg`` (v),
    ``acc_delta`` (u), ``step``.

    >>> opt = ember.optim.Adadelta(model.parameters(), lr=1.0, rho=0.9)
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        state["square_avg"] = _state_tensor(xp, w.shape, w.dtype)
        state["acc_delta"] = _state_tensor(xp, w.shape, w.dtype)

    def _update(self, p, g, state, group):
        w = p._data
        xp = array_module(w)
        g = _grad(g, w, group)
        rho, eps = group["rho"], group["eps"]
        state["step"] += 1
        v, u = state["square_avg"]._data, state["acc_delta"]._data
        v *= rho
        v += (1 - rho) * (g * g)
        delta = xp.sqrt(u + eps)
        delta /= xp.sqrt(v + eps)
        delta *= g
        u *= rho
        u += (1 - rho) * (delta * delta)
        delta *= group["lr"]
        w -= delta


class Adamax(Optimizer):
    """Adamax, Adam with the infinity norm (Kingma & Ba, section 7), PyTorch's formulation::

        g = -grad if maximize else grad;  g += weight_decay * p
        m = b1 m + (1 - b1) g
        u = max(b2 u, |g| + eps)
        p -= lr / (1 - b1^t) * m / u

    >>> opt = ember.optim.Adamax(model.parameters(), lr=2e-3)
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, maximize=False):
        super().__init__(
            params,
            dict(lr=lr, betas=_check_betas(betas), eps=eps, weight_decay=weight_decay, maximize=maximize),
        )

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        state["exp_avg"] = _state_tensor(xp, w.shape, w.dtype)
        state["exp_inf"] = _state_tensor(xp, w.shape, w.dtype)

    def _update(self, p, g, state, group):
        w = p._data
        xp = array_module(w)
        g = _grad(g, w, group)
        (b1, b2), eps = group["betas"], group["eps"]
        state["step"] += 1
        t = state["step"]
        m, u = state["exp_avg"]._data, state["exp_inf"]._data
        m *= b1
        m += (1 - b1) * g
        u *= b2
        xp.maximum(u, xp.abs(g) + eps, out=u)
        w -= (group["lr"] / (1 - b1**t)) * m / u


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016), PyTorch's formulation::

        g = -grad if maximize else grad
        g += weight_decay * p                  (or p *= 1 - lr * weight_decay, decoupled)
        mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay));   mu_{t+1} likewise
        prod_t = mu_1 * ... * mu_t
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        d = sqrt(v / (1 - b2^t)) + eps
        p -= lr (1 - mu_t) / (1 - prod_t) * g / d + lr mu_{t+1} / (1 - prod_t mu_{t+1}) * m / d

    >>> opt = ember.optim.NAdam(model.parameters(), lr=2e-3)
    """

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        *,
        maximize=False,
    ):
        if momentum_decay < 0:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=_check_betas(betas),
                eps=eps,
                weight_decay=weight_decay,
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
            ),
        )

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        state["mu_product"] = 1.0
        state["exp_avg"] = _state_tensor(xp, w.shape, w.dtype)
        state["exp_avg_sq"] = _state_tensor(xp, w.shape, w.dtype)

    def _update(self, p, g, state, group):
        w = p._data
        xp = array_module(w)
        g = _grad(g, w, group, decoupled=group["decoupled_weight_decay"])
        lr, (b1, b2), eps, psi = group["lr"], group["betas"], group["eps"], group["momentum_decay"]
        state["step"] += 1
        t = state["step"]
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        state["mu_product"] *= mu
        prod = state["mu_product"]
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        _moments(m, v, g, b1, b2)
        denom = xp.sqrt(v / (1 - b2**t))
        denom += eps
        w -= (lr * (1.0 - mu) / (1.0 - prod)) * g / denom
        w -= (lr * mu_next / (1.0 - prod * mu_next)) * m / denom


class RAdam(Optimizer):
    """Rectified Adam (Liu et al., 2019), PyTorch's formulation::

        g = -grad if maximize else grad
        g += weight_decay * p                  (or p *= 1 - lr * weight_decay, decoupled)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   m_hat = m / (1 - b1^t)
        rho_inf = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        rho_t > 5:  r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                    p -= lr * m_hat * r * sqrt(1 - b2^t) / (sqrt(v) + eps)
        otherwise:  p -= lr * m_hat      (the variance estimate is not yet trustworthy)

    >>> opt = ember.optim.RAdam(model.parameters(), lr=1e-3)
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
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
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
            ),
        )

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        state["exp_avg"] = _state_tensor(xp, w.shape, w.dtype)
        state["exp_avg_sq"] = _state_tensor(xp, w.shape, w.dtype)

    def _update(self, p, g, state, group):
        w = p._data
        xp = array_module(w)
        g = _grad(g, w, group, decoupled=group["decoupled_weight_decay"])
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        _moments(m, v, g, b1, b2)
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2**t / bc2
        if rho_t > 5.0:
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            denom = xp.sqrt(v)
            denom += eps
            w -= (lr / bc1 * r * math.sqrt(bc2)) * m / denom
        else:
            w -= (lr / bc1) * m
