"""The ``Optimizer`` base: parameter groups, ``zero_grad``, ``state_dict`` in PyTorch's layout.

Subclasses implement ``_update(p, grad, state, group)`` on raw arrays: ``p._data`` and the
gradient's array are numpy or cupy (``xp = array_module(...)``), and every update is
whole-array in-place work, so a step costs a few array calls per parameter and never
records a graph. A gradient may be a dense Tensor or an ``ember.sparse.RowSparseGrad``;
only optimizers with ``supports_sparse = True`` accept the latter, others refuse it
naming themselves and the parameter.
"""

from __future__ import annotations

import copy

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd import enable_grad

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: ``Optimizer(params, defaults)``.

    ``params`` is an iterable of Tensors, of ``(name, Tensor)`` pairs (as
    ``module.named_parameters()`` yields; names then appear in errors), or of dicts
    (parameter groups, each with ``"params"`` and per-group options overriding
    ``defaults``).

    >>> opt = ember.optim.SGD([{"params": body}, {"params": head, "lr": 1e-3}], lr=0.1)
    """

    supports_sparse = False

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        self._names: dict = {}
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    # ---- groups -----------------------------------------------------------------------
    def add_param_group(self, param_group: dict):
        """Add a group (a dict with ``"params"``); missing options take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        ps = group["params"]
        if isinstance(ps, Tensor):
            ps = [ps]
        elif isinstance(ps, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, "
                "but the ordering of tensors in sets will change between runs"
            )
        plist = []
        for item in ps:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                name, item = item
                self._names[id(item)] = name
            if type(item) is not Tensor:
                raise TypeError(f"optimizer can only optimize Tensors, got {type(item).__name__}")
            if not item.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
            plist.append(item)
        group["params"] = plist
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {k}"
                )
            group.setdefault(k, v)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in plist}) != len(plist) or any(id(p) in seen for p in plist):
            raise ValueError("some parameters appear in more than one parameter group")
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        lr = group.get("lr", 0.0)
        if not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        eps = group.get("eps", 0.0)
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")

    def _param_name(self, p, gi, pi) -> str:
        name = self._names.get(id(p))
        where = f"parameter {name!r}" if name else f"parameter {pi} of param group {gi}"
        return f"{where} (shape {tuple(p.shape)})"

    # ---- gradients and steps --------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True):
        """Drop the gradients (``set_to_none=True``) or zero dense ones in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none or type(g) is not Tensor:
                    p.grad = None
                else:
                    g._data.fill(0)

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue
                sparse = type(grad) is not Tensor and getattr(grad, "_ember_sparse", False)
                if sparse:
                    if not self.supports_sparse:
                        raise RuntimeError(
                            f"{type(self).__name__} does not support sparse gradients, but "
                            f"{self._param_name(p, gi, pi)} has one (from an embedding with "
                            "sparse=True); use SGD, Adagrad or RowAdagrad for it, or sparse=False"
                        )
                    grad = self._sparse_grad(grad)
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                    self._init_state(p, state, group)
                if sparse:
                    self._sparse_update(p, grad, state, group, self._param_name(p, gi, pi))
                else:
                    self._update(p, grad._data, state, group)
                p._bump_version()
        return loss

    def _init_state(self, p, state, group):  # pragma: no cover - per optimizer
        pass

    def _sparse_grad(self, grad):
        """The sparse gradient `_sparse_update` is given: coalesced (unique rows), unless
        the optimizer coalesces as it updates."""
        return grad.coalesce()

    def _update(self, p, g, state, group):  # pragma: no cover - per optimizer
        raise NotImplementedError

    def _sparse_update(self, p, grad, state, group, name):  # pragma: no cover
        raise NotImplementedError

    # ---- state dicts ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``.

        Parameters are numbered across groups in order, as PyTorch does; the state's
        tensors are references (save them with ``ember.save``).
        """
        index, groups, n = {}, [], 0
        for group in self.param_groups:
            g = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                if id(p) not in index:
                    index[id(p)] = n
                    n += 1
                ids.append(index[id(p)])
            g["params"] = ids
            groups.append(g)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict):
        """Restore from ``state_dict()``: per-param state copied onto each param's device
        (floating-point state cast to the param's dtype), group options replaced."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for mine, theirs in zip(self.param_groups, groups, strict=True):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    "of optimizer's group"
                )
        saved_state = state_dict["state"]
        self.state = {}
        for mine, theirs in zip(self.param_groups, groups, strict=True):
            for p, key in zip(mine["params"], theirs["params"], strict=True):
                s = saved_state.get(key, saved_state.get(str(key)))
                if s is not None:
                    self.state[p] = {k: _cast_state(v, p, k) for k, v in s.items()}
            opts = {k: copy.deepcopy(v) for k, v in theirs.items() if k != "params"}
            mine.update(opts)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)


def _cast_state(v, p, key):
    if type(v) is Tensor:
        xp = array_module(p._data)
        src = v._data
        if array_module(src) is not xp:
            from ember._backend import to_device

            src = to_device(src, p.device)
        dtype = p._data.dtype if (src.dtype.kind == "f" and key != "step") else src.dtype
        return _wrap(xp.array(src, dtype=dtype, copy=True))
    return copy.deepcopy(v)


def _state_tensor(xp, shape, dtype, fill=0.0):
    """A state buffer (a Tensor, so that ``opt.state[p]`` reads like PyTorch's)."""
    a = xp.zeros(shape, dtype=dtype) if fill == 0 else xp.full(shape, fill, dtype=dtype)
    return _wrap(a)


def _check_betas(betas):
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    return tuple(betas)


def _grad(g, w, group, decoupled=False):
    """The gradient with ``maximize`` and L2 weight decay applied (a new array if changed);
    ``decoupled``: the decay shrinks the weights instead (AdamW's)."""
    if group["maximize"]:
        g = -g
    wd = group["weight_decay"]
    if wd != 0:
        if decoupled:
            w *= 1 - group["lr"] * wd
        else:
            g = g + wd * w
    return g


def _moments(m, v, g, b1, b2):
    """Adam's running moments, in place: m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2."""
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
