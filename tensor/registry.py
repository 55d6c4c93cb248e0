"""Where ops are registered: the public ``ember.<name>`` functions and Tensor methods.

``op()`` marks a function as part of the public op library (``ember.<name>``);
``register_method`` binds a Tensor method. ``differentiable_ops()`` lists every
``Function`` subclass so that the tests can prove each one has a gradient check.
"""

from __future__ import annotations

PUBLIC_OPS: dict = {}


def op(name: str | None = None):
    def deco(fn):
        PUBLIC_OPS[name or fn.__name__] = fn
        return fn

    return deco


def register_method(name: str, fn):
    import types

    from ember._tensor import Tensor

    if isinstance(fn, types.MethodType):  # e.g. a Function's bound ``apply``: make it bind self
        bound = fn

        def fn(self, *args, **kwargs):
            return bound(self, *args, **kwargs)

    setattr(Tensor, name, fn)


def differentiable_ops() -> dict:
    """Every ember op that records a graph node: name -> Function subclass."""
    from ember.autograd.function import Function

    found = {}
    todo = list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        # the engine's op library: modules directly under ember (layers and models test their own)
        if (
            cls.raw
            and cls.__module__.count(".") == 1
            and cls.__module__.startswith("ember.")
            and not cls.__name__.startswith("_")
        ):
            if cls.backward is not Function.backward:
                found[cls.__name__] = cls
    return found
