"""Adagrad, and RowAdagrad: one accumulator per embedding row (PyTorch-BigGraph's optimizer).

Both accept sparse row gradients (``embedding(..., sparse=True)``) and then read and
write only the touched rows: a gather, a few whole-array ops on ``(rows, dim)`` and a
scatter, so a step costs the same on a 10^5- or a 10^7-row table
(``benchmarks/sparse_update.py``). Adagrad coalesces the gradient first (unique rows, so
plain fancy-index assignment is exact); RowAdagrad takes it as it comes and, on the CPU,
sums repeated rows inside one compiled pass that also updates them (`ember._cpu_kernels`),
else coalesces and takes the numpy path.
"""

from __future__ import annotations

import numpy as np

from ember import _cpu_kernels, _kernels
from ember._backend import array_module
from ember.optim.optimizer import Optimizer, _state_tensor


def _values(w, grad):
    """A sparse gradient's rows in the table's dtype, except that a half-precision table
    keeps float32 gradients (float16 storage, float32 arithmetic and state)."""
    g = grad.values
    if w.dtype == np.float16 and g.dtype == np.float32:
        return g
    return g.astype(w.dtype, copy=False)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's formulation::

        g = -grad if maximize else grad;  g += weight_decay * p
        clr = lr / (1 + (t - 1) lr_decay)
        s += g^2   (s starts at initial_accumulator_value)
        p -= clr g / (sqrt(s) + eps)

    A sparse gradient updates ``s`` and ``p`` on its rows only (``weight_decay`` must be
    0 then, as in PyTorch: decaying every row is a dense update).
    """

    supports_sparse = True

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        *,
        maximize=False,
    ):
        if lr_decay < 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if initial_accumulator_value < 0.0:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
                maximize=maximize,
            ),
        )

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        state["sum"] = _state_tensor(xp, w.shape, w.dtype, group["initial_accumulator_value"])

    def _clr(self, state, group):
        state["step"] += 1
        return group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])

    def _dense_step(self, p, g, state, group):
        """The table, its array module, the signed and decayed gradient, and this step's lr."""
        w = p._data
        if group["maximize"]:
            g = -g
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * w
        return w, array_module(w), g, self._clr(state, group)

    def _update(self, p, g, state, group):
        w, xp, g, clr = self._dense_step(p, g, state, group)
        s = state["sum"]._data
        if _kernels.adagrad_dense_(xp, w, g, s, clr, group["eps"]):  # cupy: one fused pass
            return
        s += g * g
        std = xp.sqrt(s)
        std += group["eps"]
        w -= clr * g / std

    def _sparse_update(self, p, grad, state, group, name):
        if group["weight_decay"] != 0:
            raise RuntimeError(
                f"Adagrad: {name} has a sparse gradient, which needs weight_decay=0 "
                f"(got {group['weight_decay']}); RowAdagrad decays the touched rows only"
            )
        w = p._data
        xp = array_module(w)
        idx, g = grad.indices, _values(w, grad)
        if group["maximize"]:
            g = -g
        clr = self._clr(state, group)
        s = state["sum"]._data
        if _kernels.adagrad_rows_(xp, w, idx, g, s, clr, group["eps"]):  # cupy: fused rows
            return
        rows = s[idx]
        rows += g * g
        s[idx] = rows
        std = xp.sqrt(rows)
        std += group["eps"]
        w[idx] -= clr * g / std


class RowAdagrad(Adagrad):
    """Adagrad with one accumulator per row of each parameter (PyTorch-BigGraph)::

        g = -grad if maximize else grad;  g += weight_decay * p   (touched rows only if sparse)
        clr = lr / (1 + (t - 1) lr_decay)
        s[r] += mean(g[r]^2)               (mean over the row's elements)
        p[r] -= clr g[r] / (sqrt(s[r]) + eps)

    The state is one number per row (``state[p]["sum"]``, shape ``(rows,)``): 1/dim of
    Adagrad's memory, which is what makes huge embedding tables trainable. A sparse
    gradient touches only its rows; a dense one updates all rows. 1-D parameters get one
    accumulator per element (plain Adagrad).

    >>> opt = ember.optim.RowAdagrad([table], lr=0.1)
    """

    def _init_state(self, p, state, group):
        xp, w = array_module(p._data), p._data
        state["step"] = 0
        rows = w.shape[:1] if w.ndim else ()
        state["sum"] = _state_tensor(xp, rows, w.dtype, group["initial_accumulator_value"])

    @staticmethod
    def _row_step(xp, w_rows, g, s_rows, clr, eps):
        """New rows of the parameter, and of the accumulator (updated in place)."""
        if g.ndim > 1:
            # one temporary for g*g and then clr*g/std: the (rows, dim) arrays are the cost
            t = xp.multiply(g, g)
            s_rows += t.reshape(t.shape[0], -1).mean(axis=1)
            std = xp.sqrt(s_rows)
            std += eps
            xp.multiply(g, clr, out=t)
            t /= std.reshape(std.shape + (1,) * (g.ndim - 1))
            return xp.subtract(w_rows, t, out=t)
        s_rows += g * g
        std = xp.sqrt(s_rows)
        std += eps
        return w_rows - clr * g / std

    def _update(self, p, g, state, group):
        w, xp, g, clr = self._dense_step(p, g, state, group)
        if _kernels.row_adagrad_(xp, w, g, state["sum"]._data, clr, group["eps"]):
            return  # cupy: a row reduction and one fused update pass
        w[...] = self._row_step(xp, w, g, state["sum"]._data, clr, group["eps"])

    def _sparse_grad(self, grad):
        return grad  # repeated rows are summed in `_sparse_update`, fused with the update on CPU

    def _sparse_update(self, p, grad, state, group, name):
        w = p._data
        xp = array_module(w)
        clr = self._clr(state, group)
        s = state["sum"]._data
        plain = group["weight_decay"] == 0
        # CPU (float32): the rows' coalesce, gather, update and scatter in one compiled pass
        eps, maximize = group["eps"], group["maximize"]
        if plain and _cpu_kernels.row_adagrad_rows_(w, s, grad.indices, _values(w, grad), clr, eps, maximize):
            return
        grad = grad.coalesce()
        idx, g = grad.indices, _values(w, grad)
        if group["maximize"]:
            g = -g
        if plain and _kernels.row_adagrad_(xp, w, g, s, clr, group["eps"], idx):
            return  # cupy: gather, update and scatter of the rows fused in one pass
        w_rows = w[idx]  # the only rows read or written: cost independent of the table size
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * w_rows
        s_rows = s[idx]
        w[idx] = self._row_step(xp, w_rows, g, s_rows, clr, group["eps"])
        s[idx] = s_rows
