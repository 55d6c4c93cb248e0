"""Numerical gradient checks: compare autograd's Jacobian with central differences."""

from __future__ import annotations

import numpy as np


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(func, inputs):
    from ember._tensor import Tensor

    out = _as_tuple(func(*inputs))
    return tuple(o for o in out if type(o) is Tensor and o.dtype.kind == "f")


def _flat_outputs(func, inputs):
    return np.concatenate([np.asarray(o._data, np.float64).reshape(-1) for o in _outputs(func, inputs)])


def _numeric_jacobians(func, inputs, eps):
    """One (n_out_total, n_in) matrix per differentiable input, by central differences."""
    from ember.autograd.grad_mode import no_grad

    jacs = []
    with no_grad():
        base = _outputs(func, inputs)
        n_out = sum(o.numel() for o in base)
        for t in inputs:
            if not getattr(t, "requires_grad", False):
                jacs.append(None)
                continue
            flat = t._data.reshape(-1)
            J = np.zeros((n_out, flat.size))
            for j in range(flat.size):
                orig = flat[j].item()
                flat[j] = orig + eps
                plus = _flat_outputs(func, inputs)
                flat[j] = orig - eps
                minus = _flat_outputs(func, inputs)
                flat[j] = orig
                J[:, j] = (plus - minus) / (2 * eps)
            jacs.append(J)
    return jacs


def _analytic_jacobians(func, inputs):
    from ember.autograd import grad
    from ember.creation import zeros_like

    outs = _outputs(func, inputs)
    diff_inputs = [t for t in inputs if getattr(t, "requires_grad", False)]
    n_out = sum(o.numel() for o in outs)
    jacs = [np.zeros((n_out, t.numel())) for t in diff_inputs]
    row = 0
    for o in outs:
        if not o.requires_grad:
            row += o.numel()
            continue
        for k in range(o.numel()):
            go = zeros_like(o)
            go._data.reshape(-1)[k] = 1
            gs = grad([o], diff_inputs, [go], retain_graph=True, allow_unused=True)
            for J, g in zip(jacs, gs):
                if g is not None:
                    J[row + k] = np.asarray(g._data, np.float64).reshape(-1)
        row += o.numel()
    it = iter(jacs)
    return [next(it) if getattr(t, "requires_grad", False) else None for t in inputs]


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """True if autograd's gradients of ``func`` at ``inputs`` match finite differences.

    Inputs that require grad should be float64; ``func`` returns a tensor or a tuple.
    """
    from ember._tensor import Tensor

    inputs = _as_tuple(inputs)
    for t in inputs:
        if type(t) is Tensor and t.requires_grad and t.dtype != np.float64:
            import warnings

            warnings.warn(
                f"gradcheck input of dtype {t.dtype} is not float64: the check is imprecise", stacklevel=2
            )
    numeric = _numeric_jacobians(func, inputs, eps)
    analytic = _analytic_jacobians(func, inputs)
    for i, (n, a) in enumerate(zip(numeric, analytic)):
        if n is None:
            continue
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            if raise_exception:
                err = np.abs(a - n).max()
                raise GradcheckError(
                    f"Jacobian mismatch for input {i} (max abs error {err:.3g}):\n"
                    f"numerical:\n{n}\nanalytical:\n{a}"
                )
            return False
    return True


def gradgradcheck(
    func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0
):
    """Check second derivatives: gradcheck of ``v ↦ d<func(x), v>/dx`` in x and v."""
    from ember.autograd import grad
    from ember.creation import tensor

    inputs = _as_tuple(inputs)
    outs = _outputs(func, inputs)
    rng = np.random.default_rng(seed)
    if grad_outputs is None:
        grad_outputs = tuple(
            tensor(rng.standard_normal(o.shape), dtype=np.float64, requires_grad=True) for o in outs
        )
    grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if getattr(t, "requires_grad", False)]

    def first_derivative(*args):
        from ember.autograd.grad_mode import enable_grad

        xs, vs = args[:n_in], args[n_in:]
        # gradcheck evaluates this under no_grad for its finite differences; the first
        # derivative itself still needs a graph
        with enable_grad():
            o = _outputs(func, xs)
            gs = grad(list(o), [xs[i] for i in diff_idx], list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(
        first_derivative,
        tuple(inputs) + tuple(grad_outputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
    )


class GradcheckError(RuntimeError):
    pass
