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

from ember._tensor import Tensor, _wrap
from ember.autograd.grad_mode import _state

_new = object.__new__

_FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Specify retain_graph=True on the first backward call if you "
    "need to do so."
)


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
    # a ctx that records no graph needs no input's gradient (instances of nodes override it)
    needs_input_grad = ()
    # ember ops list the positional inputs that backward reads (for version checks)
    saves: tuple = ()
    saves_output = False

    # defaults on the class, so that creating a node sets only what it must
    _hooks = None
    _retain = None
    _saved = None
    _freed = False
    inputs = None

    # ---- construction -------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op: ``Op.apply(*inputs)`` (ember's own ops get a faster ``apply``)."""
        return cls._apply_user(args, kwargs)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.raw and "apply" not in cls.__dict__ and _default_apply(cls):
            # ember's own ops: a plain function (not a bound classmethod), so that it can
            # be a Tensor method directly and a call costs one Python frame
            cls.apply = staticmethod(_make_raw_apply(cls))

    @classmethod
    def _apply_user(cls, args, kwargs):
        """User-defined Functions: forward sees Tensors (under no_grad) and returns one."""
        requires = _state.enabled and any(type(a) is Tensor and a.requires_grad for a in args)
        ctx = _new(cls)
        ctx.needs_input_grad = tuple(requires and type(a) is Tensor and a.requires_grad for a in args)
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
        out = _wrap(out._data, True, ctx)  # a fresh tensor: never rebind a caller's
        ctx.inputs = args
        ctx._next = tuple((a.grad_fn or a) if n else None for a, n in zip(args, ctx.needs_input_grad))
        return out

    def _save_output(self, out):
        self._out = out._data
        if out._vc is None:
            out._vc = [0]
        self._out_vc = out._vc
        self._out_version = out._vc[0]

    @property
    def _shapes(self):
        """Input shapes (None for non-tensor arguments)."""
        return tuple(a._data.shape if type(a) is Tensor else None for a in self.inputs)

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
        args = self.inputs
        k = 0
        versions = self._versions
        for i in self.saves:
            a = args[i]
            if type(a) is Tensor:
                vc = a._vc
                if vc is not None and vc[0] != versions[k]:
                    _raise_modified(self, a, versions[k])
                k += 1

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


def _default_apply(cls) -> bool:
    """True unless a base class between ``cls`` and Function overrides ``apply`` by hand."""
    for k in cls.__mro__[1:]:
        if "apply" in k.__dict__:
            f = k.__dict__["apply"]
            return k is Function or getattr(getattr(f, "__func__", f), "_generated", False)
    return True


def _make_raw_apply(cls):
    """The ``apply`` of one ember op (``raw = True``): unwrap tensors, run forward, link."""

    def apply(*args, **kwargs):
        # The hot path of every ember op: unwrap, and find whether a graph is needed.
        # One- and two-argument calls (almost all of them) skip the generic loop, and a
        # call that records nothing runs forward on a fresh ctx that is never linked into a
        # graph (``_new(cls)``: no __init__, ~0.1 us). Fresh, not shared: a forward may
        # write state into its ctx and read it back, and Hogwild threads run the same op
        # at once; a shared ctx would also keep the last call's arrays alive.
        n_args = len(args)
        if n_args == 2:
            a, b = args
            if type(a) is Tensor:
                ra, ga = a._data, a.requires_grad
            else:
                ra, ga = a, False
            if type(b) is Tensor:
                rb, gb = b._data, b.requires_grad
                if type(a) is Tensor and type(ra) is not type(rb):
                    _raise_device_mismatch(a, b)
            else:
                rb, gb = b, False
            if not (ga or gb) or not _state.enabled:
                return _wrap(cls.forward(_new(cls), ra, rb, **kwargs))
            raw = (ra, rb)
        elif n_args == 1:
            a = args[0]
            if type(a) is not Tensor:
                return _wrap(cls.forward(_new(cls), a, **kwargs))
            if not a.requires_grad or not _state.enabled:
                return _wrap(cls.forward(_new(cls), a._data, **kwargs))
            raw = (a._data,)
        else:
            raw = []
            requires = False
            for a in args:
                if type(a) is Tensor:
                    raw.append(a._data)
                    if a.requires_grad:
                        requires = True
                else:
                    raw.append(a)
            if not requires or not _state.enabled:
                return _wrap(cls.forward(_new(cls), *raw, **kwargs))
        ctx = _new(cls)
        ctx.needs_input_grad = needs = tuple([type(a) is Tensor and a.requires_grad for a in args])
        out = _wrap(ctx.forward(*raw, **kwargs), True, ctx)
        ctx.inputs = args
        ctx._next = tuple([(a.grad_fn or a) if n else None for a, n in zip(args, needs)])
        if cls.saves:
            ctx._versions = tuple([args[i]._version for i in cls.saves if type(args[i]) is Tensor])
        if cls.saves_output:
            ctx._save_output(out)
        return out

    apply.__name__ = apply.__qualname__ = f"{cls.__name__}.apply"
    apply._generated = True
    return apply


def _raise_device_mismatch(a, b):
    raise RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, "
        f"{a.device} and {b.device}!"
    )


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
    from ember.ops_reduce import sum_to

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


def run_backward(
    roots,
    root_grads,
    retain_graph=False,
    create_graph=False,
    inputs=None,
    allow_unused=False,
    accumulate=True,
):
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
        roots_set = set(stack)
        walk = list(stack)
        get = deps.get
        while walk:
            node = walk.pop()
            if node._freed:
                raise RuntimeError(_FREED)
            for e in node._next:
                if e is None or type(e) is Tensor:
                    continue
                c = get(e)
                if c is None:
                    deps[e] = 1
                    if e not in roots_set:
                        walk.append(e)
                else:
                    deps[e] = c + 1
        ready = [n for n in stack if n not in deps]
        while ready:
            node = ready.pop()
            g = pending.pop(node)
            if node._hooks is not None:
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
            if node.saves:
                node._check_versions()
            grads = type(node).backward(node, g)  # staticmethod (PyTorch style) or plain
            if type(grads) is not tuple:
                grads = (grads,)
            node_inputs = node.inputs
            i = -1
            for e in node._next:
                i += 1
                if e is None:
                    continue
                gi = grads[i]
                if gi is None:
                    continue
                if type(gi) is Tensor:
                    shape = node_inputs[i]._data.shape
                    if gi._data.shape != shape:
                        gi = _sum_to(gi, shape)
                elif not hasattr(gi, "_ember_sparse"):
                    gi = _wrap(gi)
                if type(e) is Tensor:
                    _deliver_leaf(e, gi, captures, accumulate, handed_out)
                    continue
                prev = pending.get(e)
                pending[e] = gi if prev is None else prev + gi
                left = deps[e] - 1
                deps[e] = left
                if not left:
                    ready.append(e)
            if not retain_graph:
                node._freed = True
                node.inputs = None
                node._saved = None
                node._out = None
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
