"""The Tensor: an array (numpy or cupy) plus what autograd needs to know about it."""

from __future__ import annotations

import numpy as np

from ember import _backend
from ember._backend import array_module, device_of

_ndarray = np.ndarray


class Tensor:
    """An n-dimensional array on a device, optionally recording a graph for autograd.

    ``ember.tensor([[1., 2.], [3., 4.]], requires_grad=True)`` makes one; ops make the
    rest. As in PyTorch, ``.data`` is a tensor that shares this one's storage, detached
    from the graph (``p.data.add_(u)``, ``p.grad.data.zero_()``, ``p.data = t``). The raw
    numpy/cupy array is ``._data``: engine code (ops, optimizers, the graph trainer) reads
    and writes it directly, since a wrapper per access would cost a Python object on every
    op; ``.numpy()`` is the public way to get a host array.
    """

    __slots__ = (
        "_data",
        "requires_grad",
        "grad",
        "grad_fn",
        "_vc",
        "_hooks",
        "_post_hooks",
        "__weakref__",
    )
    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to us

    def __init__(self, data, *, requires_grad=False, dtype=None, device=None):
        from ember.creation import _as_array

        self._data = _as_array(data, dtype=dtype, device=device)
        self.requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._vc = None
        self._hooks = None
        self._post_hooks = None
        if requires_grad:
            self.requires_grad_(True)

    # ---- storage ------------------------------------------------------------------
    @property
    def data(self):
        """A tensor sharing this one's storage, cut from the graph, with its own version
        counter (as ``torch.Tensor.data``: in-place changes through it are invisible to
        autograd, which is what an optimizer step wants; use ``detach()`` to have them
        checked). Assigning ``t.data = other`` swaps in ``other``'s storage (any shape or
        dtype), keeping ``t``'s graph identity, ``requires_grad`` and ``grad``."""
        return _wrap(self._data)

    @data.setter
    def data(self, value):
        if type(value) is not Tensor:
            raise TypeError(
                f"Variable data has to be a tensor, but got {type(value).__name__} "
                "(wrap an array with ember.asarray first)"
            )
        if value._data.dtype.kind not in "fc" and self.requires_grad:
            raise RuntimeError(
                f"data set to a tensor of dtype {value._data.dtype} on a tensor that requires grad: "
                "only floating point tensors can require gradients"
            )
        self._data = value._data

    # ---- metadata -----------------------------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    def size(self, dim=None):
        return self._data.shape if dim is None else self._data.shape[dim]

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def numel(self):
        return int(self._data.size)

    def nelement(self):
        return int(self._data.size)

    def element_size(self):
        return self._data.itemsize

    @property
    def device(self):
        return device_of(self._data)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def _version(self):
        vc = self._vc
        return vc[0] if vc else 0

    @property
    def xp(self):
        """The array module (numpy or cupy) that owns this tensor's data."""
        return array_module(self._data)

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def __len__(self):
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if not self._data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__

    # ---- conversion ---------------------------------------------------------------
    def numpy(self, *, force=False):
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        if type(self._data) is not _ndarray:
            if not force:
                raise TypeError(
                    f"can't convert {self.device} tensor to numpy. Use Tensor.cpu() to copy "
                    "the tensor to host memory first."
                )
            return _backend.to_device(self._data, _backend.CPU)
        return self._data

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return _backend.to_device(self._data, _backend.CPU).reshape(()).item()

    def tolist(self):
        return _backend.to_device(self._data, _backend.CPU).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} elements is ambiguous")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        host = self.numpy(force=True) if type(self._data) is not _ndarray else self._data
        return host if dtype is None else host.astype(dtype)

    def __dlpack__(self, *args, **kwargs):
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __array_namespace__(self, api_version=None):
        from ember import array_api

        return array_api

    # ---- autograd -----------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self._data.dtype})"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """A tensor sharing this one's data (and version counter), cut from the graph."""
        t = _wrap(self._data)
        if self._vc is None:
            self._vc = [0]
        t._vc = self._vc
        return t

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into each leaf's ``.grad``."""
        from ember.autograd.function import run_backward

        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (this tensor has "
                    f"shape {tuple(self.shape)}); pass gradient= to backward()"
                )
            gradient = _wrap(array_module(self._data).ones_like(self._data))
        elif type(gradient) is not Tensor:
            gradient = Tensor(gradient, dtype=self.dtype, device=self.device)
        if gradient.shape != self.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output has shape {tuple(gradient.shape)} and output has "
                f"shape {tuple(self.shape)}"
            )
        if retain_graph is None:
            retain_graph = create_graph
        if inputs is not None:
            from ember.autograd import grad as _grad

            inputs = [inputs] if type(inputs) is Tensor else list(inputs)
            gs = _grad(
                [self],
                inputs,
                [gradient],
                retain_graph=retain_graph,
                create_graph=create_graph,
                allow_unused=True,
            )
            for t, g in zip(inputs, gs):
                if g is not None:
                    t.grad = g if t.grad is None else t.grad + g
            return
        run_backward([self], [gradient], retain_graph, create_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new grad."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self.grad_fn._hooks is None:
                self.grad_fn._hooks = []
            hooks = self.grad_fn._hooks
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_hooks is None:
            self._post_hooks = []
        self._post_hooks.append(hook)
        return _RemovableHandle(self._post_hooks, hook)

    def retain_grad(self):
        if self.grad_fn is None:
            return
        import weakref

        self.grad_fn._retain = weakref.ref(self)

    # ---- in-place machinery ---------------------------------------------------------
    def _bump_version(self):
        vc = self._vc
        if vc is None:
            self._vc = [1]
        else:
            vc[0] += 1

    def _check_inplace(self):
        from ember.autograd.grad_mode import _state

        if self.requires_grad and self.grad_fn is None and _state.enabled:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")

    def __repr__(self):
        from ember._format import format_tensor

        return format_tensor(self)

    __str__ = __repr__


class _RemovableHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


_new = object.__new__


def _wrap(data, requires_grad=False, grad_fn=None):
    """Fast internal constructor: ``data`` must already be an array of a known backend."""
    if type(data) is not _ndarray:
        data = _coerce(data)
    t = _new(Tensor)
    t._data = data
    t.requires_grad = requires_grad
    t.grad = None
    t.grad_fn = grad_fn
    t._vc = None
    t._hooks = None
    t._post_hooks = None
    return t


def _coerce(data):
    # numpy ufuncs on 0-d arrays return numpy scalars; keep everything an array
    if isinstance(data, np.generic):
        return np.asarray(data)
    return data
