"""Ember: n-dimensional tensors on numpy (CPU) or cupy (CUDA), with reverse-mode autodiff.

>>> import ember
>>> x = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> y = (x @ x).relu().sum()
>>> y.backward()
>>> x.grad
tensor([[ 7., 11.],
        [ 9., 13.]])

The API follows PyTorch's names and semantics (``dim``, ``keepdim``, ``no_grad``...);
``ember.nn`` and ``ember.optim`` hold layers and optimizers.

Importing is light: ``import ember`` (and so ``import ember.partitioning`` or the ``pbg``
command line) loads no part of the engine. The engine (tensors, autograd, ops, ``nn``,
``optim``) is loaded the first time one of its names is used (PEP 562 ``__getattr__``),
so ``ember.tensor(...)`` and ``from ember import nn`` work as usual and only code that
computes pays for the import.
"""

import importlib as _importlib

from ember import _malloc, errors  # _malloc tunes the allocator once, on import

__version__ = "0.1.0"

# Subpackages and modules reachable as attributes; each loads on first use.
_SUBMODULES = frozenset(
    {
        "array_api",
        "autograd",
        "creation",
        "cuda",
        "dtypes",
        "fft",
        "linalg",
        "nn",
        "ops_index",
        "ops_linalg",
        "ops_math",
        "ops_reduce",
        "ops_shape",
        "optim",
        "random",
        "registry",
        "serialization",
        "sparse",
        "utils",
        # the graph system's subpackages (light: they load the engine only if they use it)
        "cli",
        "datasets",
        "partitioning",
        "pbg",
    }
)

_engine_state = "unloaded"  # -> "loading" -> "loaded"


def _load_engine() -> None:
    """Bind the engine's public names into this module (once)."""
    global _engine_state
    if _engine_state != "unloaded":
        return
    _engine_state = "loading"
    from ember import creation, ops_index, ops_linalg, ops_math, ops_reduce, ops_shape
    from ember import random
    from ember._backend import Device
    from ember._tensor import Tensor
    from ember.autograd import (
        enable_grad,
        inference_mode,
        is_grad_enabled,
        no_grad,
        set_grad_enabled,
    )
    from ember.dtypes import (
        bool_,
        cdouble,
        cfloat,
        complex64,
        complex128,
        double,
        finfo,
        iinfo,
        uint16,
        uint32,
        uint64,
        float16,
        float32,
        float64,
        get_default_dtype,
        half,
        int8,
        int16,
        int32,
        int64,
        long,
        set_default_dtype,
        short,
        uint8,
    )
    from ember.dtypes import float as float_
    from ember.dtypes import int as int_
    from ember.random import Generator, default_generator
    from ember.registry import PUBLIC_OPS
    from ember.serialization import load, save

    from ember import _docs

    _docs.attach(PUBLIC_OPS)
    g = globals()
    g.update(PUBLIC_OPS)
    g.update(
        device=Device,
        Tensor=Tensor,
        bool=bool_,
        float=float_,
        int=int_,
        double=double,
        float16=float16,
        float32=float32,
        float64=float64,
        half=half,
        int8=int8,
        int16=int16,
        int32=int32,
        int64=int64,
        long=long,
        short=short,
        uint8=uint8,
        uint16=uint16,
        uint32=uint32,
        uint64=uint64,
        complex64=complex64,
        complex128=complex128,
        cfloat=cfloat,
        cdouble=cdouble,
        finfo=finfo,
        iinfo=iinfo,
        is_complex=lambda t: t.dtype.kind == "c",
        get_default_dtype=get_default_dtype,
        set_default_dtype=set_default_dtype,
        enable_grad=enable_grad,
        inference_mode=inference_mode,
        is_grad_enabled=is_grad_enabled,
        no_grad=no_grad,
        set_grad_enabled=set_grad_enabled,
        Generator=Generator,
        default_generator=default_generator,
        load=load,
        save=save,
        is_tensor=lambda obj: type(obj) is Tensor,
        is_floating_point=lambda t: t.dtype.kind == "f",
        numel=lambda t: t.numel(),
    )
    # as `import torch` brings torch.nn and torch.optim; they are built on everything above
    for name in ("autograd", "creation", "random", "cuda", "sparse", "nn", "optim"):
        _importlib.import_module(f"ember.{name}")
    _engine_state = "loaded"


def __getattr__(name: str):
    # a private or dunder name is never the engine's: let the import system look for a
    # submodule of that name (``from ember import _standin``) without loading anything
    if name.startswith("_"):
        raise AttributeError(f"module 'ember' has no attribute {name!r}")
    if name in _SUBMODULES:
        return _importlib.import_module(f"ember.{name}")
    if _engine_state == "unloaded":
        _load_engine()
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module 'ember' has no attribute {name!r}")


def __dir__():
    _load_engine()
    return sorted(set(globals()) | _SUBMODULES)
