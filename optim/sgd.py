"""Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from ember._tensor import _wrap
from ember.optim.optimizer import Optimizer, required


class SGD(Optimizer):
    """PyTorch's SGD::

        g = -grad if maximize else grad;  g += weight_decay * p
        b = g (first step) | momentum * b + (1 - dampening) * g
        g = g + momentum * b (nesterov) | b (momentum) | g
        p -= lr * g

    Sparse gradients (``embedding(..., sparse=True)``) are applied to the touched rows
    only; they need ``momentum=0`` and ``weight_decay=0`` (a momentum buffer or decay
    would touch every row), as in PyTorch.
    """

    supports_sparse = True

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        *,
        maximize=False,
    ):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )

    def _update(self, p, g, state, group):
        w = p._data
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * w
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = buf = _wrap(g.copy())
                b = buf._data
            else:
                b = buf._data
                b *= momentum
                b += (1 - group["dampening"]) * g
            g = g + momentum * b if group["nesterov"] else b
        w -= lr * g

    def _sparse_update(self, p, grad, state, group, name):
        if group["momentum"] != 0 or group["weight_decay"] != 0:
            raise RuntimeError(
                f"SGD: {name} has a sparse gradient, which needs momentum=0 and weight_decay=0 "
                f"(got momentum={group['momentum']}, weight_decay={group['weight_decay']})"
            )
        step = grad.values * (group["lr"] if group["maximize"] else -group["lr"])
        p._data[grad.indices] += step.astype(p._data.dtype, copy=False)  # rows are unique
