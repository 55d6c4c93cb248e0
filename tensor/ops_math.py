"""Elementwise ops: arithmetic, unary math, activations, comparisons, ``where``.

Each op is one ``Function``: forward on raw arrays, backward in ember ops right below
it. Binary ops broadcast like numpy; the engine sums gradients back to input shapes.
"""

from __future__ import annotations

import math

import numpy as np

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.dtypes import get_default_dtype
from ember.registry import op, register_method


def _int_like(a) -> bool:
    return not isinstance(a, float) and getattr(a, "dtype", np.dtype(int)).kind in "biu"


_F64 = np.dtype(np.float64)


def _float_result(r, a, b):
    """Undo numpy's promotions to float64 that PyTorch does not make.

    int tensor ⊙ Python float gives the default float dtype, int tensor ⊙ float32 tensor
    stays float32: only a float64 operand makes a float64 result.
    """
    da, db = getattr(a, "dtype", None), getattr(b, "dtype", None)
    if r.dtype != _F64 or da is _F64 or db is _F64:  # (None == dtype is True: np.dtype(None))
        return r
    for d in (da, db):
        if d is not None and d.kind == "f":
            return r.astype(d)
    return r.astype(get_default_dtype())


# ---- arithmetic -----------------------------------------------------------------------


class Add(Function):
    raw = True

    def forward(ctx, a, b):
        r = a + b
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        n = ctx.needs_input_grad
        return (g if n[0] else None), (g if n[1] else None)


class Sub(Function):
    raw = True

    def forward(ctx, a, b):
        r = a - b
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        n = ctx.needs_input_grad
        return (g if n[0] else None), (-g if n[1] else None)


class Mul(Function):
    raw = True
    saves = (0, 1)

    def forward(ctx, a, b):
        r = a * b
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        return (g * b if n[0] else None), (g * a if n[1] else None)


class Div(Function):
    raw = True
    saves = (0, 1)

    def forward(ctx, a, b):
        r = a / b
        if r.dtype == np.float64:
            r = _float_result(r, a, b)
        return r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        ga = g / b if n[0] else None
        gb = -g * a / (b * b) if n[1] else None
        return ga, gb


class Pow(Function):
    raw = True
    saves = (0, 1)
    saves_output = True

    def forward(ctx, a, b):
        xp = array_module(a) if not isinstance(a, (int, float)) else array_module(b)
        if isinstance(b, (int, float)) and b == 2:
            return a * a
        r = xp.power(a, b)
        if r.dtype == np.float64:
            r = _float_result(r, a, b)
        return r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        ga = gb = None
        if n[0]:
            if isinstance(b, (int, float)):
                ga = g * b * (a ** (b - 1)) if b != 2 else g * 2 * a
            else:
                ga = g * b * pow(a, b - 1)
        if n[1]:
            # a Python-scalar base: make it an array of the gradient's dtype and device
            base = a if type(a) is Tensor else _wrap(array_module(g._data).asarray(a, dtype=g.dtype))
            ga_b = ctx.output() * log(base)
            gb = g * ga_b
        return ga, gb


def _raw_floordiv(a, b):
    return a // b


class _NoGrad(Function):
    """Ops with zero or undefined gradient: forward only, never recorded."""

    raw = True

    @classmethod
    def apply(cls, *args, **kwargs):
        raw_args = [a._data if type(a) is Tensor else a for a in args]
        return _wrap(cls.forward(None, *raw_args, **kwargs))


class FloorDivide(_NoGrad):
    def forward(ctx, a, b):
        r = a // b
        return _float_result(r, a, b) if r.dtype is _F64 else r


class Remainder(Function):
    raw = True
    saves = (0, 1)

    def forward(ctx, a, b):
        r = a % b
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        gb = None
        if n[1]:
            gb = -g * floor_divide(a, b)
        return (g if n[0] else None), gb


class Neg(Function):
    raw = True

    def forward(ctx, a):
        return -a

    def backward(ctx, g):
        return -g


# ---- unary math -----------------------------------------------------------------------


class Exp(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        return array_module(a).exp(a)

    def backward(ctx, g):
        return g * ctx.output()


class Log(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        return array_module(a).log(a)

    def backward(ctx, g):
        return g / ctx.inputs[0]


class Log1p(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        return array_module(a).log1p(a)

    def backward(ctx, g):
        return g / (ctx.inputs[0] + 1)


class Expm1(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        return array_module(a).expm1(a)

    def backward(ctx, g):
        return g * (ctx.output() + 1)


class Sqrt(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        return array_module(a).sqrt(a)

    def backward(ctx, g):
        return g / (ctx.output() * 2)


class Rsqrt(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        return 1 / array_module(a).sqrt(a)

    def backward(ctx, g):
        y = ctx.output()
        return g * (y * y * y) * -0.5


class Abs(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        return array_module(a).abs(a)

    def backward(ctx, g):
        return g * sign(ctx.inputs[0])


class Sign(_NoGrad):
    def forward(ctx, a):
        return array_module(a).sign(a)


class Sin(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        return array_module(a).sin(a)

    def backward(ctx, g):
        return g * cos(ctx.inputs[0])


class Cos(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        return array_module(a).cos(a)

    def backward(ctx, g):
        return g * -sin(ctx.inputs[0])


class Tanh(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        return array_module(a).tanh(a)

    def backward(ctx, g):
        y = ctx.output()
        return g * (1 - y * y)


class Sigmoid(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        xp = array_module(a)
        # exp of a non-positive number only: no overflow for large |a|
        e = xp.exp(-xp.abs(a))
        return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)

    def backward(ctx, g):
        y = ctx.output()
        return g * y * (1 - y)


class Relu(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        return array_module(a).maximum(a, 0)

    def backward(ctx, g):
        return g * (ctx.output() > 0)


class LeakyRelu(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a, negative_slope=0.01):
        ctx.slope = negative_slope
        xp = array_module(a)
        return xp.where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False)

    def backward(ctx, g):
        a = ctx.inputs[0]
        # the slope in g's dtype: where(.., 1.0, slope) of two Python floats is float32
        xp = array_module(g._data)
        return g * _wrap(xp.where(a._data > 0, 1.0, ctx.slope).astype(g.dtype, copy=False))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)


class Gelu(Function):
    """GELU; ``approximate='none'`` uses erf, ``'tanh'`` the tanh formula."""

    raw = True
    saves = (0,)

    def forward(ctx, a, approximate="none"):
        ctx.approximate = approximate
        xp = array_module(a)
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (a + 0.044715 * a * a * a)
            return (0.5 * a * (1 + xp.tanh(inner))).astype(a.dtype, copy=False)
        return (0.5 * a * (1 + _erf(xp, a * _INV_SQRT_2))).astype(a.dtype, copy=False)

    def backward(ctx, g):
        x = ctx.inputs[0]
        if ctx.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
            t = tanh(inner)
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
        cdf = 0.5 * (1 + erf(x * _INV_SQRT_2))
        pdf = exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + x * pdf)


def _erf(xp, x):
    """erf at full precision: scipy's ufunc when present, cupyx on the GPU, else math.erf."""
    if getattr(xp, "__name__", "") == "cupy":
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        scipy_erf = None
    if xp is np:
        if scipy_erf is not None:
            return scipy_erf(x).astype(x.dtype, copy=False)
        return np.vectorize(math.erf, otypes=[x.dtype])(x)
    # another device without an erf: compute on the host and copy back, both explicitly
    from ember._backend import CPU, device_of, to_device

    return to_device(_erf(np, to_device(x, CPU)), device_of(x))


class Erf(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        return _erf(array_module(a), a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return g * exp(-(x * x)) * (2 / math.sqrt(math.pi))


class Softplus(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a, beta=1.0, threshold=20.0):
        ctx.beta, ctx.threshold = beta, threshold
        xp = array_module(a)
        z = a * beta
        # log1p(exp(z)) computed stably; linear above the threshold, as PyTorch
        soft = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / beta
        return xp.where(z > threshold, a, soft).astype(a.dtype, copy=False)

    def backward(ctx, g):
        x = ctx.inputs[0]
        z = x * ctx.beta
        return g * where(z > ctx.threshold, 1.0, sigmoid(z)).to(g.dtype)


class Clamp(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        ctx.lo, ctx.hi = min, max
        return array_module(a).clip(a, min, max)

    def backward(ctx, g):
        x = ctx.inputs[0]
        lo, hi = ctx.lo, ctx.hi
        lo = lo._data if type(lo) is Tensor else lo
        hi = hi._data if type(hi) is Tensor else hi
        xd = x._data
        keep = (xd >= lo) if lo is not None else True
        if hi is not None:
            keep = keep & (xd <= hi)
        return g * _wrap(array_module(xd).asarray(keep, dtype=g.dtype))


class _Extremum(Function):
    """Elementwise maximum/minimum; ties split the gradient evenly, as PyTorch does."""

    raw = True
    saves = (0, 1)
    largest = True

    def forward(ctx, a, b):
        xp = array_module(a if not isinstance(a, (int, float)) else b)
        r = xp.maximum(a, b) if ctx.largest else xp.minimum(a, b)
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        ad = a._data if type(a) is Tensor else a
        bd = b._data if type(b) is Tensor else b
        wins = (ad > bd) if ctx.largest else (ad < bd)
        wa = _wrap(array_module(g._data).asarray(wins + 0.5 * (ad == bd), dtype=g.dtype))
        n = ctx.needs_input_grad
        return (g * wa if n[0] else None), (g * (1 - wa) if n[1] else None)


class Maximum(_Extremum):
    largest = True


class Minimum(_Extremum):
    largest = False


class Where(Function):
    raw = True
    saves = (0,)

    def forward(ctx, cond, a, b):
        xp = array_module(cond)
        r = xp.where(cond, a, b)
        if r.dtype == np.float64:
            r = _float_result(r, a, b)
        return r

    def backward(ctx, g):
        cond = ctx.inputs[0]
        c = cond._data if type(cond) is Tensor else cond
        n = ctx.needs_input_grad
        cmask = _wrap(array_module(g._data).asarray(c, dtype=g.dtype))
        return None, (g * cmask if n[1] else None), (g * (1 - cmask) if n[2] else None)


# ---- comparisons and logic (non-differentiable, return bool) -------------------------


def _compare(ufunc_name):
    def fn(input, other):
        a = input._data if type(input) is Tensor else input
        b = other._data if type(other) is Tensor else other
        xp = array_module(a) if type(input) is Tensor else array_module(b)
        _check_same_device(input, other)
        return _wrap(getattr(xp, ufunc_name)(a, b))

    fn.__name__ = ufunc_name
    return fn


def _check_same_device(a, b):
    if type(a) is Tensor and type(b) is Tensor and type(a._data) is not type(b._data):
        raise RuntimeError(
            f"Expected all tensors to be on the same device, but found at least two devices, "
            f"{a.device} and {b.device}!"
        )


eq = op("eq")(_compare("equal"))
ne = op("ne")(_compare("not_equal"))
lt = op("lt")(_compare("less"))
le = op("le")(_compare("less_equal"))
gt = op("gt")(_compare("greater"))
ge = op("ge")(_compare("greater_equal"))
logical_and = op("logical_and")(_compare("logical_and"))
logical_or = op("logical_or")(_compare("logical_or"))
logical_xor = op("logical_xor")(_compare("logical_xor"))


@op()
def logical_not(input):
    return _wrap(array_module(input._data).logical_not(input._data))


@op()
def isnan(input):
    return _wrap(array_module(input._data).isnan(input._data))


@op()
def isinf(input):
    return _wrap(array_module(input._data).isinf(input._data))


@op()
def isfinite(input):
    return _wrap(array_module(input._data).isfinite(input._data))


@op()
def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    xp = array_module(input._data)
    return bool(xp.allclose(input._data, _data(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


@op()
def equal(input, other):
    return input.shape == other.shape and bool(array_module(input._data).all(input._data == other._data))


def _data(x):
    return x._data if type(x) is Tensor else x


# ---- public functions -----------------------------------------------------------------


def _binary(fn_cls):
    # Function.apply itself refuses two tensors on different devices: no wrapper layer
    return fn_cls.apply


_add = _binary(Add)


@op()
def add(input, other, *, alpha=1):
    if alpha != 1:
        return _add(input, mul(other, alpha))
    return _add(input, other)


sub = op("sub")(_binary(Sub))
subtract = op("subtract")(sub)
mul = op("mul")(_binary(Mul))
multiply = op("multiply")(mul)
_div = _binary(Div)


@op()
def div(input, other, *, rounding_mode=None):
    if rounding_mode is None:
        return _div(input, other)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        q = _div(input, other)
        return _wrap(array_module(q._data).trunc(q._data).astype(q.dtype, copy=False))
    raise ValueError(
        f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found {rounding_mode!r}"
    )


divide = op("divide")(div)
true_divide = op("true_divide")(_div)
floor_divide = op("floor_divide")(FloorDivide.apply)
remainder = op("remainder")(_binary(Remainder))
fmod = remainder
pow = op("pow")(_binary(Pow))
neg = op("neg")(Neg.apply)
negative = op("negative")(neg)
exp = op("exp")(Exp.apply)
log = op("log")(Log.apply)
log1p = op("log1p")(Log1p.apply)
expm1 = op("expm1")(Expm1.apply)
sqrt = op("sqrt")(Sqrt.apply)
rsqrt = op("rsqrt")(Rsqrt.apply)
abs = op("abs")(Abs.apply)
sign = op("sign")(Sign.apply)
sin = op("sin")(Sin.apply)
cos = op("cos")(Cos.apply)
tanh = op("tanh")(Tanh.apply)
sigmoid = op("sigmoid")(Sigmoid.apply)
relu = op("relu")(Relu.apply)
erf = op("erf")(Erf.apply)


@op()
def square(input):
    return Mul.apply(input, input)


@op()
def leaky_relu(input, negative_slope=0.01):
    return LeakyRelu.apply(input, negative_slope=negative_slope)


@op()
def gelu(input, approximate="none"):
    return Gelu.apply(input, approximate=approximate)


@op()
def softplus(input, beta=1.0, threshold=20.0):
    return Softplus.apply(input, beta=beta, threshold=threshold)


@op()
def clamp(input, min=None, max=None):
    return Clamp.apply(input, min=_data(min), max=_data(max))


clip = op("clip")(clamp)


@op()
def clamp_min(input, min):
    return Clamp.apply(input, min=_data(min))


@op()
def clamp_max(input, max):
    return Clamp.apply(input, max=_data(max))


maximum = op("maximum")(_binary(Maximum))
minimum = op("minimum")(_binary(Minimum))


@op()
def where(condition, input=None, other=None):
    if input is None and other is None:
        from ember.ops_index import nonzero

        return nonzero(condition, as_tuple=True)
    return Where.apply(condition, input, other)


# ---- Tensor methods and operators -----------------------------------------------------


def _r(fn):
    return lambda self, other: fn(other, self)


register_method("__add__", _add)
register_method("__radd__", _r(_add))
register_method("__sub__", sub)
register_method("__rsub__", _r(sub))
register_method("__mul__", mul)
register_method("__rmul__", _r(mul))
register_method("__truediv__", _div)
register_method("__rtruediv__", _r(_div))
register_method("__floordiv__", floor_divide)
register_method("__rfloordiv__", _r(floor_divide))
register_method("__mod__", remainder)
register_method("__rmod__", _r(remainder))
register_method("__pow__", pow)
register_method("__rpow__", _r(pow))
register_method("__neg__", neg)
register_method("__pos__", lambda self: self)
register_method("__abs__", abs)
register_method("__eq__", eq)
register_method("__ne__", ne)
register_method("__lt__", lt)
register_method("__le__", le)
register_method("__gt__", gt)
register_method("__ge__", ge)
register_method("__and__", lambda a, b: _bitwise(a, b, "bitwise_and"))
register_method("__or__", lambda a, b: _bitwise(a, b, "bitwise_or"))
register_method("__xor__", lambda a, b: _bitwise(a, b, "bitwise_xor"))
register_method("__invert__", lambda a: _wrap(array_module(a._data).invert(a._data)))


def _bitwise(a, b, name):
    return _wrap(getattr(array_module(a._data), name)(a._data, _data(b)))


for _name in (
    "add",
    "sub",
    "subtract",
    "mul",
    "multiply",
    "div",
    "divide",
    "true_divide",
    "floor_divide",
    "remainder",
    "fmod",
    "pow",
    "neg",
    "negative",
    "exp",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "rsqrt",
    "abs",
    "sign",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "erf",
    "square",
    "clamp",
    "clip",
    "clamp_min",
    "clamp_max",
    "maximum",
    "minimum",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "isnan",
    "isinf",
    "isfinite",
    "allclose",
    "equal",
):
    register_method(_name, globals()[_name])

register_method("greater", gt)
register_method("less", lt)
register_method("where", lambda self, condition, other: where(condition, self, other))


# ---- in-place variants ----------------------------------------------------------------


def _inplace(fn):
    """``x.op_(...)``: compute ``op`` and write the result into ``x``'s own buffer.

    Under ``no_grad`` (optimizer steps) it is a plain in-place array write. With grad
    enabled the tensor takes the new node as its ``grad_fn`` (its old value lives on in
    the graph), and the version counter makes any backward that saved the old value
    fail loudly instead of computing a wrong gradient.
    """

    def method(self, *args, **kwargs):
        self._check_inplace()
        if _grad_enabled() and (self.requires_grad or _any_requires_grad(args, kwargs)):
            # the new node may save its input: give it the old value, in its own buffer,
            # at the same place in the graph, since self's buffer is overwritten below
            old = _wrap(self._data.copy(), self.requires_grad, self.grad_fn)
            result = fn(old, *args, **kwargs)
        else:
            result = fn(self, *args, **kwargs)
        data = self._data
        r = result._data
        if r.shape != data.shape:
            raise RuntimeError(
                f"output with shape {list(data.shape)} doesn't match the broadcast shape {list(r.shape)}"
            )
        xp = array_module(data)
        xp.copyto(data, r, casting="unsafe")
        self._bump_version()
        if result.grad_fn is not None:
            result.grad_fn._retarget(self)
            self.grad_fn = result.grad_fn
            self.requires_grad = True
        elif self.grad_fn is not None and _grad_enabled():
            self.grad_fn = None  # overwritten by a constant: no gradient flows to the old value
            self.requires_grad = False
        return self

    return method


def _any_requires_grad(args, kwargs):
    for a in (*args, *kwargs.values()):
        if type(a) is Tensor and a.requires_grad:
            return True
    return False


def _grad_enabled():
    from ember.autograd.grad_mode import _state

    return _state.enabled


def _retarget(node, t):
    """The output of ``node`` is now ``t`` (an in-place op): re-point saved-output checks."""
    if node.saves_output:
        if t._vc is None:
            t._vc = [0]
        node._out_vc = t._vc
        node._out_version = t._vc[0]
        node._out = t._data


Function._retarget = _retarget

for _name in (
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "neg",
    "exp",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "rsqrt",
    "abs",
    "sign",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "square",
    "clamp",
    "clamp_min",
    "clamp_max",
    "remainder",
    "floor_divide",
    "maximum",
    "minimum",
):
    register_method(_name + "_", _inplace(globals()[_name]))
register_method("__iadd__", _inplace(_add))
register_method("__isub__", _inplace(sub))
register_method("__imul__", _inplace(mul))
register_method("__itruediv__", _inplace(_div))
register_method("__ipow__", _inplace(pow))
register_method("clip_", _inplace(clamp))
register_method("leaky_relu_", _inplace(leaky_relu))
