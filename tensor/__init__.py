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
"""

from __future__ import annotations

from ember import _malloc, errors
from ember._backend import Device as device
from ember._tensor import Tensor
from ember.dtypes import (
    bool_ as bool,
    double,
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
from ember.dtypes import float as float
from ember.dtypes import int as int
from ember import autograd
from ember.autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from ember import ops_math, ops_shape, ops_reduce, ops_linalg, ops_index, creation, random
from ember.random import Generator, default_generator
from ember.registry import PUBLIC_OPS as _PUBLIC_OPS
from ember import cuda
from ember import sparse
from ember.serialization import load, save

globals().update(_PUBLIC_OPS)

is_tensor = lambda obj: type(obj) is Tensor


def is_floating_point(t) -> bool:
    return t.dtype.kind == "f"


def numel(t) -> int:
    return t.numel()


__version__ = "0.1.0"

del annotations

# as `import torch` brings torch.nn and torch.optim; they are built on everything above
from ember import nn, optim
