"""``ember.autograd``: graph nodes, the backward engine, grad modes and gradient checks."""

from __future__ import annotations

from ember.autograd.function import Function, run_backward
from ember.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from ember.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = [
    "Function",
    "backward",
    "grad",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "inference_mode",
    "is_grad_enabled",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
]


def _tensors(x):
    from ember._tensor import Tensor

    if type(x) is Tensor:
        return [x]
    return list(x)


def _default_grads(outputs, grad_outputs):
    from ember._backend import array_module
    from ember._tensor import Tensor, _wrap

    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif type(grad_outputs) is Tensor:
        grad_outputs = [grad_outputs]
    out = []
    for o, g in zip(outputs, grad_outputs):
        if g is None:
            if o.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (got shape {tuple(o.shape)})"
                )
            g = _wrap(array_module(o._data).ones_like(o._data))
        elif type(g) is not Tensor:
            from ember.creation import tensor

            g = tensor(g, dtype=o.dtype, device=o.device)
        out.append(g)
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    >>> x = ember.tensor(3.0, requires_grad=True)
    >>> (g,) = ember.autograd.grad(x ** 3, x, create_graph=True)   # 3x² = 27
    >>> (h,) = ember.autograd.grad(g, x)                           # 6x = 18
    """
    outputs = _tensors(outputs)
    inputs = _tensors(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    for o in outputs:
        if not o.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    if retain_graph is None:
        retain_graph = create_graph
    gs = run_backward(
        outputs,
        _default_grads(outputs, grad_outputs),
        retain_graph,
        create_graph,
        inputs=inputs,
        allow_unused=allow_unused,
    )
    return gs


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulate the gradients of ``tensors`` into the leaves' ``.grad``."""
    tensors = _tensors(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    run_backward(tensors, _default_grads(tensors, grad_tensors), retain_graph, create_graph)


class functional:
    @staticmethod
    def vjp(func, inputs, v=None, create_graph=False):
        inputs = _tensors(inputs)
        out = func(*inputs)
        return out, grad([out], inputs, None if v is None else [v], create_graph=create_graph)

    @staticmethod
    def hvp(func, inputs, v, create_graph=False):
        """Hessian-vector product of a scalar ``func`` at ``inputs`` along ``v``."""
        inputs = _tensors(inputs)
        vs = _tensors(v)
        out = func(*inputs)
        gs = grad([out], inputs, create_graph=True)
        dot = sum((g * vv).sum() for g, vv in zip(gs, vs))
        return out, grad([dot], inputs, create_graph=create_graph)
