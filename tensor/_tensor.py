"""The Tensor: an array (numpy or cupy) plus what autograd needs to know about it."""

from __future__ import annotations

import numpy as np

from ember import _backend
from ember._backend import array_module, device_of
from ember.registry import op

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

    def is_complex(self):
        return self.data.dtype.kind == "c"

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

    def __complex__(self):
        return complex(self.item())

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
        if dtype is not None and np.dtype(dtype) != host.dtype:
            return host.astype(dtype)
        return host.copy() if copy else host

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        kw = {
            k: v
            for k, v in (("max_version", max_version), ("dl_device", dl_device), ("copy", copy))
            if v is not None
        }
        if stream is not None:
            kw["stream"] = stream
        return self._data.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __array_namespace__(self, api_version=None):
        from ember import array_api

        return array_api._namespace(api_version)

    # ---- autograd -----------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad and self._data.dtype.kind != "f":
            if self._data.dtype.kind == "c":  # ember deliberately differs from torch here
                raise RuntimeError(
                    "ember does not differentiate complex tensors (no Wirtinger calculus yet): "
                    "complex ops compute forward only; split into real and imaginary parts to differentiate"
                )
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

    # ---- PyTorch habits: type(), in-place samplers and fills, fused pointwise updates ----
    def type(self, dtype=None, non_blocking=False):
        """``x.type()``: the type name, ``'ember.FloatTensor'`` (``'ember.cuda.FloatTensor'``
        on a GPU), as ``torch.Tensor.type()``. ``x.type(ember.float64)`` or
        ``x.type('ember.DoubleTensor')`` (``'torch.DoubleTensor'`` is accepted too) casts;
        it returns ``x`` itself when the dtype is already that one.

        >>> ember.zeros(2).type()
        'ember.FloatTensor'
        >>> ember.zeros(2).type(ember.int64).dtype
        dtype('int64')
        """
        if dtype is None:
            name = _TYPE_NAMES.get(np.dtype(self._data.dtype))
            if name is None:
                raise TypeError(f"no ember tensor type name for dtype {self._data.dtype}")
            dev = self.device.type
            return f"ember.{name}" if dev == "cpu" else f"ember.{dev}.{name}"
        if isinstance(dtype, str):
            dtype = _dtype_of_type_name(dtype)
        if np.dtype(dtype) == self._data.dtype:
            return self
        return self.to(dtype)

    def _overwrite(self, raw):
        """Write ``raw`` (broadcast, cast) into this tensor's buffer: a value that does not
        depend on the old one, so any graph the tensor had is cut (as ``_inplace`` does)."""
        self._check_inplace()
        xp = array_module(self._data)
        xp.copyto(self._data, raw, casting="unsafe")
        self._bump_version()
        if self.grad_fn is not None:
            from ember.autograd.grad_mode import _state

            if _state.enabled:
                self.grad_fn = None
                self.requires_grad = False
        return self

    def _float_sample(self, kind, generator, name):
        from ember import random as _random

        if self._data.dtype.kind != "f":
            raise RuntimeError(f"{name} expects a floating point tensor, got {self._data.dtype}")
        fn = _random.rand if kind == "uniform" else _random.randn
        return fn(self.shape, generator=generator, dtype=self._data.dtype, device=self.device)._data

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        """Fill with samples of U[a, b), in place (``from``/``to`` in PyTorch's docs)."""
        if not a <= b:
            raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
        u = self._float_sample("uniform", generator, "uniform_")
        return self._overwrite(u * (b - a) + a)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Fill with samples of N(mean, std**2), in place."""
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        z = self._float_sample("normal", generator, "normal_")
        return self._overwrite(z * std + mean)

    def exponential_(self, lambd=1.0, *, generator=None):
        """Fill with samples of the exponential distribution of rate ``lambd``, in place."""
        if not lambd > 0:
            raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
        xp = array_module(self._data)
        u = self._float_sample("uniform", generator, "exponential_")
        return self._overwrite(-xp.log1p(-u) / lambd)

    def bernoulli_(self, p=0.5, *, generator=None):
        """Fill with 0/1 samples, 1 with probability ``p`` (a number or a tensor that
        broadcasts to this one), in place."""
        from ember import random as _random

        prob = p._data if type(p) is Tensor else p
        xp = array_module(self._data)
        if xp.any((xp.asarray(prob) < 0) | (xp.asarray(prob) > 1)):
            raise RuntimeError("bernoulli_ expects p to be in [0, 1]")
        u = _random.rand(self.shape, generator=generator, dtype=np.float64, device=self.device)._data
        return self._overwrite(u < prob)

    def random_(self, from_=0, to=None, *, generator=None):
        """Fill with integers drawn uniformly from ``[from_, to)``, in place.

        As PyTorch's: ``random_(to)`` (one argument) draws from ``[0, to)``; ``random_()``
        from ``[0, 2**(mantissa bits + 1)]`` for floating dtypes (every such integer is
        exact in the dtype), ``[0, max]`` for integer dtypes narrower than int64 and
        ``[0, max)`` for int64, ``{0, 1}`` for bool.
        """
        from ember import random as _random

        dt = np.dtype(self._data.dtype)
        if to is None and from_ != 0:
            from_, to = 0, from_
        if to is None:
            if dt.kind == "b":
                to = 2
            elif dt.kind == "f":
                to = 2 ** (np.finfo(dt).nmant + 1) + 1
            elif dt.kind in "iu":
                top = int(np.iinfo(dt).max)
                to = top + 1 if top < np.iinfo(np.int64).max else top
            else:
                raise RuntimeError(f"random_ is not implemented for dtype {dt}")
        if not from_ < to:
            raise RuntimeError(
                f"random_ expects 'from' to be less than 'to', but got from={from_} >= to={to}"
            )
        r = _random.randint(from_, to, self.shape, generator=generator, device=self.device)._data
        return self._overwrite(r)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        """In-place ``scatter``: ``self[index[i][j]][j] = src[i][j]`` (``dim=0``), a number
        ``src``/``value`` fills. ``reduce='add'`` or ``'multiply'`` combines instead of
        overwriting (as PyTorch; no gradient with ``'multiply'``)."""
        from ember import ops_index
        from ember.ops_math import _inplace

        if src is None:
            src = value
        if src is None:
            raise TypeError("scatter_() missing 1 required argument: 'src' (or 'value')")
        if reduce is None:
            return _inplace(ops_index.scatter)(self, dim, index, src)
        if reduce == "add":
            if type(src) is not Tensor:
                idx = index._data if type(index) is Tensor else index
                src = _wrap(array_module(self._data).full(idx.shape, src, dtype=self._data.dtype))
            return _inplace(ops_index.scatter_add)(self, dim, index, src)
        if reduce == "multiply":
            from ember.autograd.grad_mode import _state

            self._check_inplace()
            if _state.enabled and (self.requires_grad or (type(src) is Tensor and src.requires_grad)):
                raise RuntimeError("scatter_ with reduce='multiply' has no gradient (as in PyTorch)")
            xp = array_module(self._data)
            idx = index._data if type(index) is Tensor else index
            d = dim % self._data.ndim
            grid = list(xp.indices(idx.shape, sparse=True))
            grid[d] = idx
            s = src._data[tuple(slice(0, n) for n in idx.shape)] if type(src) is Tensor else src
            s = xp.broadcast_to(xp.asarray(s, dtype=self._data.dtype), idx.shape)
            np.multiply.at(self._data, tuple(grid), s)
            self._bump_version()
            return self
        raise ValueError(f"reduce argument must be either 'add' or 'multiply', got {reduce!r}")

    def scatter_add_(self, dim, index, src):
        from ember import ops_index
        from ember.ops_math import _inplace

        return _inplace(ops_index.scatter_add)(self, dim, index, src)

    def index_fill(self, dim, index, value):
        return index_fill(self, dim, index, value)

    def index_fill_(self, dim, index, value):
        """Fill the slices ``index`` along ``dim`` with ``value``, in place."""
        from ember.ops_math import _inplace

        return _inplace(index_fill)(self, dim, index, value)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return addcdiv(self, tensor1, tensor2, value=value)

    def lerp(self, end, weight):
        return lerp(self, end, weight)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        """``self += value * tensor1 * tensor2``, in place."""
        return self._fused_(addcmul, tensor1, tensor2, value)

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        """``self += value * tensor1 / tensor2``, in place."""
        return self._fused_(addcdiv, tensor1, tensor2, value)

    def lerp_(self, end, weight):
        """``self += weight * (end - self)``, in place."""
        return self._fused_(lerp, end, weight, None)

    def _fused_(self, fn, a, b, value):
        from ember.autograd.grad_mode import _state

        if _state.enabled and (
            self.requires_grad
            or (type(a) is Tensor and a.requires_grad)
            or (type(b) is Tensor and b.requires_grad)
        ):
            from ember.ops_math import _inplace

            return _inplace(fn)(self, a, b) if value is None else _inplace(fn)(self, a, b, value=value)
        # no graph to record (an optimizer step): whole-array work on the raw buffers
        self._check_inplace()
        d = self._data
        ra = a._data if type(a) is Tensor else a
        rb = b._data if type(b) is Tensor else b
        if fn is lerp:
            r = d + rb * (ra - d)
        elif fn is addcmul:
            r = d + value * (ra * rb) if value != 1 else d + ra * rb
        else:
            r = d + value * (ra / rb) if value != 1 else d + ra / rb
        if r.shape != d.shape:
            raise RuntimeError(
                f"output with shape {list(d.shape)} doesn't match the broadcast shape {list(r.shape)}"
            )
        array_module(d).copyto(d, r, casting="unsafe")
        self._bump_version()
        return self

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


# ---- PyTorch habits: the out-of-place fused pointwise ops, and type names ---------------------


@op()
def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2`` (broadcasting), differentiable in all three.

    >>> ember.addcmul(ember.zeros(2), ember.tensor([1., 2.]), ember.tensor([3., 4.]), value=0.5)
    tensor([1.5, 4.0])
    """
    prod = tensor1 * tensor2
    return input + (prod if value == 1 else prod * value)


@op()
def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2`` (broadcasting), differentiable in all three.

    >>> ember.addcdiv(ember.ones(2), ember.tensor([1., 2.]), ember.tensor([2., 4.]))
    tensor([1.5, 1.5])
    """
    if type(tensor1) is Tensor and type(tensor2) is Tensor:
        if tensor1._data.dtype.kind in "iub" and tensor2._data.dtype.kind in "iub":
            raise RuntimeError(
                "Integer division with addcdiv is no longer supported; use ember.floor_divide (as in PyTorch)"
            )
    q = tensor1 / tensor2
    return input + (q if value == 1 else q * value)


@op()
def lerp(input, end, weight):
    """Linear interpolation ``input + weight * (end - input)``; ``weight`` is a number or
    a tensor (broadcasting), and gradients flow to every tensor argument.

    >>> ember.lerp(ember.zeros(3), ember.full((3,), 10.0), 0.25)
    tensor([2.5, 2.5, 2.5])
    """
    return input + weight * (end - input)


@op()
def index_fill(input, dim, index, value):
    """A copy of ``input`` whose slices ``index`` along ``dim`` hold ``value`` (a number or a
    0-d tensor); differentiable in ``input`` (and a tensor ``value``).

    >>> ember.index_fill(ember.zeros(2, 3), 1, ember.tensor([0, 2]), -1.0)
    tensor([[-1.,  0., -1.],
            [-1.,  0., -1.]])
    """
    from ember.ops_index import masked_fill

    xp = array_module(input._data)
    nd = input._data.ndim
    if not -max(nd, 1) <= dim < max(nd, 1):
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-max(nd, 1)}, "
            f"{max(nd, 1) - 1}], but got {dim})"
        )
    d = dim % max(nd, 1)
    idx = index._data if type(index) is Tensor else xp.asarray(index)
    if idx.ndim > 1:
        raise IndexError("index_fill_(): Index is supposed to be a vector")
    if idx.dtype.kind not in "iu":
        raise IndexError(f"index_fill_(): Expected dtype int64 for index, got {idx.dtype}")
    if type(value) is Tensor and value._data.ndim != 0:
        raise RuntimeError(
            "index_fill_ only supports a 0-dimensional value tensor, but got tensor with "
            f"{value._data.ndim} dimension(s)."
        )
    size = input._data.shape[d] if nd else 1
    mask = xp.zeros(size, dtype=bool)
    mask[idx] = True
    if nd:
        mask = mask.reshape((size,) + (1,) * (nd - 1 - d))
    else:
        mask = mask.reshape(())
    return masked_fill(input, _wrap(mask), value)


_TYPE_NAMES = {
    np.dtype(np.float32): "FloatTensor",
    np.dtype(np.float64): "DoubleTensor",
    np.dtype(np.float16): "HalfTensor",
    np.dtype(np.complex64): "ComplexFloatTensor",
    np.dtype(np.complex128): "ComplexDoubleTensor",
    np.dtype(np.int64): "LongTensor",
    np.dtype(np.int32): "IntTensor",
    np.dtype(np.int16): "ShortTensor",
    np.dtype(np.int8): "CharTensor",
    np.dtype(np.uint8): "ByteTensor",
    np.dtype(np.bool_): "BoolTensor",
}
_DTYPE_OF_NAME = {v: k for k, v in _TYPE_NAMES.items()}


def _dtype_of_type_name(name: str):
    parts = name.split(".")
    if len(parts) not in (2, 3) or parts[0] not in ("ember", "torch") or parts[-1] not in _DTYPE_OF_NAME:
        raise ValueError(f"invalid type: {name!r} (expected e.g. 'ember.FloatTensor' or 'ember.LongTensor')")
    if len(parts) == 3 and parts[1] != "cuda":
        raise ValueError(f"invalid type: {name!r}")
    return _DTYPE_OF_NAME[parts[-1]]
