"""Graph nodes and the backward engine.

Every differentiable op is one ``Function`` subclass whose ``forward`` and ``backward``
sit next to each other. A call ``Op.apply(*args)`` creates one node (the ctx) per op
*only when a gradient is needed*; otherwise the op is a bare array call plus a wrapper.

Two flavours of ``forward``:

* ember's own ops (``Function`` subclasses with ``raw = True``) receive raw arrays
  (numpy/cupy) and return one raw array: the cheapest possible forward;
* user-defined functions (the public ``ember.autograd.Function``, ``raw = False``)
  receive Tensors and return a Tensor, as in PyTorch.

``backward(ctx, grad)`` always receives and returns Tensors and is written with ember
ops, so with ``create_graph=True`` the gradient is itself differentiable.
Summing a gradient back to a broadcast input's shape happens in exactly one place: the
engine (``_run``), never in an op.
"""

from __future__ import annotations

import weakref

from ember._tensor import Tensor, _wrap
from ember.autograd.grad_mode import _state

_FREED = "Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Specify retain_graph=True on the first backward call if you need to do so."


class Function:
    """A node of the autograd graph: subclass and define ``forward`` and ``backward``.

    Inside both, ``ctx`` is the node itself. Useful attributes:

    ``ctx.needs_input_grad``   tuple of bools, one per positional argument
    ``ctx.save_for_backward``  stash tensors; read them back with ``ctx.saved_tensors``
                               (a clear error if one was modified in place since)

    Example (a user-defined op)::

        class Cube(ember.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x * x

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return grad * 3 * x * x

        y = Cube.apply(x)
    """

    raw = False
    # ember ops list the positional inputs that backward reads (for version checks)
    saves: tuple = ()
    saves_output = False

    __slots__ = (
        "__dict__", "needs_input_grad", "inputs", "_next", "_shapes", "_versions",
        "_out", "_out_vc", "_out_version", "_hooks", "_retain", "_saved", "_freed",
    )

    # ---- construction -------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        requires = False
        if _state.enabled:
            for a in args:
                if type(a) is Tensor and a.requires_grad:
                    requires = True
                    break
        if cls.raw:
            raw_args = [a.data if type(a) is Tensor else a for a in args]
            ctx = cls.__new__(cls)
            if not requires:
                ctx.needs_input_grad = _NONE_NEEDED
                return _wrap(ctx.forward(*raw_args, **kwargs))
            ctx.needs_input_grad = tuple(type(a) is Tensor and a.requires_grad for a in args)
            out = _wrap(ctx.forward(*raw_args, **kwargs), True, ctx)
        else:
            ctx = cls.__new__(cls)
            ctx.needs_input_grad = tuple(
                requires and type(a) is Tensor and a.requires_grad for a in args
            )
            ctx._saved = None
            prev = _state.enabled
            _state.enabled = False
            try:
                out = cls.forward(ctx, *args, **kwargs)
            finally:
                _state.enabled = prev
            if type(out) is not Tensor:
                raise TypeError(f"{cls.__name__}.forward must return a Tensor, got {type(out).__name__}")
            if not requires:
                return out
            out = _wrap(out.data, True, ctx)  # a fresh tensor: never rebind a caller's
        ctx._link(args, out)
        return out

    def _link(self, args, out):
        self.inputs = args
        self._next = tuple(
            (a.grad_fn or a) if need else None
            for a, need in zip(args, self.needs_input_grad)
        )
        self._shapes = tuple(a.data.shape if type(a) is Tensor else None for a in args)
        saves = self.saves
        if saves:
            self._versions = tuple(args[i]._version for i in saves if type(args[i]) is Tensor)
        if self.saves_output:
            self._out = out.data
            if out._vc is None:
                out._vc = [0]
            self._out_vc = out._vc
            self._out_version = out._vc[0]
        self._hooks = None
        self._retain = None
        self._freed = False

    # ---- what backward may read ---------------------------------------------------
    def output(self) -> Tensor:
        """The op's output, as a tensor that is part of the graph (for double backward)."""
        if self._out_vc[0] != self._out_version:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: the output of {type(self).__name__} is at version "
                f"{self._out_vc[0]}; expected version {self._out_version} instead."
            )
        return _wrap(self._out, True, self)

    def save_for_backward(self, *tensors):
        self._saved = tuple((t, t._version if type(t) is Tensor else None) for t in tensors)

    @property
    def saved_tensors(self):
        if self._saved is None:
            if getattr(self, "_freed", False):
                raise RuntimeError(_FREED)
            return ()
        for t, v in self._saved:
            if type(t) is Tensor and t._version != v:
                _raise_modified(self, t, v)
        return tuple(t for t, _ in self._saved)

    def mark_non_differentiable(self, *tensors):  # accepted for PyTorch compatibility
        pass

    def _check_versions(self):
        if self.saves:
            args = self.inputs
            for i, v in zip((i for i in self.saves if type(args[i]) is Tensor), self._versions):
                if args[i]._version != v:
                    _raise_modified(self, args[i], v)

    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(ctx, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def next_functions(self):
        return tuple((e if isinstance(e, Function) else None) for e in (self._next or ()))

    def name(self):
        return type(self).__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"


_NONE_NEEDED = ()


def _raise_modified(node, t, v):
    raise RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: a tensor of shape {tuple(t.shape)} used by "
        f"{type(node).__name__} is at version {t._version}; expected version {v} instead. "
        "Clone it before modifying it in place."
    )


# ---- the engine ------------------------------------------------------------------------

def _sum_to(g: Tensor, shape) -> Tensor:
    """Undo broadcasting: sum ``g`` down to ``shape`` (the one place this happens)."""
    from ember.ops_reduce import sum_to  # noqa: PLC0415  (ops import this module)

    return sum_to(g, shape)


def _accumulate_leaf(t: Tensor, g, handed_out: set):
    if t._hooks:
        for hook in t._hooks:
            r = hook(g)
            if r is not None:
                g = r
    if t.grad is None:
        # never share one gradient object between two leaves, nor keep a read-only view
        if id(g) in handed_out or not _owns(g):
            g = g.clone() if hasattr(g, "clone") else g
        handed_out.add(id(g))
        t.grad = g
    else:
        # sparse + dense is dense; a Tensor on the left cannot take a sparse operand
        t.grad = t.grad + g if type(g) is Tensor else g + t.grad
    if t._post_hooks:
        for hook in t._post_hooks:
            hook(t)


def _owns(g) -> bool:
    data = getattr(g, "data", None)
    if data is None:
        return True  # sparse gradients own their buffers
    flags = getattr(data, "flags", None)
    base = getattr(data, "base", None)
    return base is None and (flags is None or getattr(flags, "writeable", True))


def run_backward(roots, root_grads, retain_graph=False, create_graph=False, inputs=None,
                 allow_unused=False, accumulate=True):
    """Backpropagate from ``roots``. With ``inputs`` returns their gradients (``autograd.grad``)."""
    captures = None
    if inputs is not None:
        captures = {}
        for t in inputs:
            key = t.grad_fn if t.grad_fn is not None else t
            captures[id(key)] = None
    # dependency counts over the graph reachable from the roots
    deps: dict = {}
    pending: dict = {}
    handed_out: set = set()
    stack = []
    prev_mode = _state.enabled
    _state.enabled = create_graph
    try:
        for r, g in zip(roots, root_grads):
            node = r.grad_fn
            if node is None:
                if not r.requires_grad:
                    raise RuntimeError(
                        "element 0 of tensors does not require grad and does not have a grad_fn"
                    )
                _deliver_leaf(r, g, captures, accumulate, handed_out)
                continue
            if node in pending:
                pending[node] = pending[node] + g
            else:
                pending[node] = g
                stack.append(node)
        seen = set(stack)
        walk = list(stack)
        while walk:
            node = walk.pop()
            if node._freed:
                raise RuntimeError(_FREED)
            for e in node._next:
                if e is not None and type(e) is not Tensor:
                    deps[e] = deps.get(e, 0) + 1
                    if e not in seen:
                        seen.add(e)
                        walk.append(e)
        ready = [n for n in stack if n not in deps]
        while ready:
            node = ready.pop()
            g = pending.pop(node)
            if node._hooks:
                for hook in node._hooks:
                    r = hook(g)
                    if r is not None:
                        g = r
            if node._retain is not None:
                t = node._retain()
                if t is not None:
                    t.grad = g if create_graph else g.detach()
            if captures is not None and id(node) in captures:
                captures[id(node)] = g
            node._check_versions()
            grads = node.backward(g)
            if type(grads) is not tuple:
                grads = (grads,)
            for e, gi, shape in zip(node._next, grads, node._shapes):
                if e is None or gi is None:
                    continue
                if type(gi) is not Tensor and not hasattr(gi, "_ember_sparse"):
                    gi = _wrap(gi)
                if gi.shape != shape:
                    gi = _sum_to(gi, shape)
                if type(e) is Tensor:
                    _deliver_leaf(e, gi, captures, accumulate, handed_out)
                    continue
                if e in pending:
                    pending[e] = pending[e] + gi
                else:
                    pending[e] = gi
                deps[e] -= 1
                if deps[e] == 0:
                    ready.append(e)
            if not retain_graph:
                node._release()
    finally:
        _state.enabled = prev_mode
    if captures is None:
        return None
    out = []
    for t in inputs:
        key = t.grad_fn if t.grad_fn is not None else t
        g = captures[id(key)]
        if g is None and not allow_unused:
            raise RuntimeError(
                "One of the differentiated Tensors appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior."
            )
        out.append(g)
    return tuple(out)


def _deliver_leaf(t, g, captures, accumulate, handed_out):
    if captures is not None:
        if id(t) in captures:
            prev = captures[id(t)]
            captures[id(t)] = g if prev is None else prev + g
        return
    if accumulate:
        _accumulate_leaf(t, g, handed_out)


def _release(self):
    self._freed = True
    self.inputs = None
    self._saved = None
    self._out = None


Function._release = _release


class BackwardHook:
    """Holder so a non-leaf tensor's ``retain_grad`` does not keep the tensor alive."""

    @staticmethod
    def retain(t: Tensor):
        t.grad_fn._retain = weakref.ref(t)
