"""``Parameter``: a leaf tensor that a ``Module`` registers as one of its weights.

The engine tests ``type(t) is Tensor`` on its hot paths (that check is what keeps an op
call cheap), so a parameter cannot be a Tensor *subclass*. ``Parameter(data)`` therefore
returns a plain leaf ``Tensor`` that requires grad and is remembered in a registry;
``isinstance(t, Parameter)`` consults that registry, so module code reads as in PyTorch.
"""

from __future__ import annotations

import weakref

from ember._tensor import Tensor, _wrap

_PARAMS: dict = {}  # id(tensor) -> weakref to it (ids are reused, so the ref is compared)


def _forget(key):
    def drop(_ref):
        _PARAMS.pop(key, None)

    return drop


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        ref = _PARAMS.get(id(obj))
        return ref is not None and ref() is obj


class Parameter(metaclass=_ParameterMeta):
    """A trainable tensor: ``Parameter(ember.zeros(3))`` shares the data, requires grad.

    >>> w = Parameter(ember.randn(2, 3))
    >>> isinstance(w, Parameter), type(w) is ember.Tensor, w.requires_grad
    (True, True, True)
    """

    def __new__(cls, data=None, requires_grad=True):
        from ember.creation import empty

        if data is None:
            data = empty(0)
        if type(data) is not Tensor:
            data = Tensor(data)
        t = _wrap(data._data)
        if requires_grad:
            t.requires_grad_(True)
        key = id(t)
        _PARAMS[key] = weakref.ref(t, _forget(key))
        return t


def is_parameter(obj) -> bool:
    return isinstance(obj, Parameter)
