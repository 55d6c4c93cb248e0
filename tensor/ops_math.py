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
from ember.ops_shape import tril, triu
from ember.registry import op, register_method


def _int_like(a) -> bool:
    return not isinstance(a, float) and getattr(a, "dtype", np.dtype(int)).kind in "biu"


_F64 = np.dtype(np.float64)
_F32 = np.dtype(np.float32)


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


def _real_result(r, a):
    """Unary math of an integer/bool array gives the default float dtype, as torch (numpy
    gives float16 for 8-bit ints and float64 for wide ones); called for those two results."""
    d = getattr(a, "dtype", None)
    if d is None or d.kind not in "biu":
        return r
    return r.astype(get_default_dtype())


def _as_float(a):
    """Integer/bool input to a float-only formula: compute in the default float dtype."""
    return a.astype(get_default_dtype()) if a.dtype.kind in "biu" else a


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

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)

        def apply(*args, **kwargs):
            raw_args = [a._data if type(a) is Tensor else a for a in args]
            return _wrap(cls.forward(cls, *raw_args, **kwargs))  # ctx: the class (its attributes)

        # a plain function per class (not a bound classmethod): it can carry its own docstring
        apply.__name__ = apply.__qualname__ = f"{cls.__name__}.apply"
        cls.apply = staticmethod(apply)


class FloorDivide(_NoGrad):
    def forward(ctx, a, b):
        r = a // b
        if r.dtype.kind == "f":
            # numpy's divmod-based a // b is NaN for inf // finite and -1 for 1 // -inf; the
            # standard (and floor(a / b)) give +-inf and -0 there
            xp = array_module(r)
            special = xp.isinf(a) | xp.isinf(b)
            if special.any():
                r = xp.where(special, xp.floor(xp.true_divide(a, b)), r)
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
        r = array_module(a).exp(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g * ctx.output()


class Log(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).log(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g / ctx.inputs[0]


class Log1p(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).log1p(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g / (ctx.inputs[0] + 1)


class Expm1(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        if a.dtype.kind == "c":
            return _complex_expm1(array_module(a), a)
        r = array_module(a).expm1(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g * (ctx.output() + 1)


def _complex_expm1(xp, z):
    """expm1 of complex z = x + iy, accurate near 0 (numpy's loses the small real part and
    gets the C99 special values wrong): e^x cos y - 1 = expm1(x) cos y - 2 sin^2(y / 2) and
    e^x sin y; infinities and NaNs take exp(z) - 1, whose special values are C99's."""
    special = ~xp.isfinite(z)
    any_special = bool(special.any())
    if any_special:
        z, w = xp.where(special, 0, z), z
    x, y = z.real, z.imag
    s = xp.sin(y * 0.5)
    out = xp.empty(z.shape, dtype=z.dtype)
    out.real = (xp.expm1(x) * xp.cos(y) - 2 * s * s) + 0.0  # + 0.0: expm1(-0 + 0j) is +0, not -0
    out.imag = xp.exp(x) * xp.sin(y)
    if any_special:
        out[special] = xp.exp(w[special]) - 1
    return out


class Sqrt(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        r = array_module(a).sqrt(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g / (ctx.output() * 2)


class Rsqrt(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        r = 1 / array_module(a).sqrt(a)
        return r if r.dtype is _F32 else _real_result(r, a)

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
        r = array_module(a).sin(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g * cos(ctx.inputs[0])


class Cos(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).cos(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g * -sin(ctx.inputs[0])


class Tanh(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        r = array_module(a).tanh(a)
        if r.dtype is _F32:
            return r
        return _complex_tanh_at_inf(array_module(a), a, r) if r.dtype.kind == "c" else _real_result(r, a)

    def backward(ctx, g):
        y = ctx.output()
        return g * (1 - y * y)


def _complex_tanh_at_inf(xp, z, r):
    """tanh(+inf + iy) for finite y is 1 with the sign of y on the zero imaginary part (the
    standard); numpy (as C99) signs it by sin(2y)."""
    m = xp.isposinf(z.real) & xp.isfinite(z.imag)
    if m.any():
        one = xp.empty(z.shape, dtype=r.dtype)
        one.real = 1
        one.imag = xp.copysign(0, z.imag)
        r = xp.where(m, one, r)
    return r


class Sigmoid(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        a = _as_float(a)
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
        a = _as_float(a)
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
        a = _as_float(a)
        return _erf(array_module(a), a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return g * exp(-(x * x)) * (2 / math.sqrt(math.pi))


class Softplus(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a, beta=1.0, threshold=20.0):
        ctx.beta, ctx.threshold = beta, threshold
        a = _as_float(a)
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


# ---- more elementwise math: trigonometry, logs, rounding, complex parts, bits ----------
#
# The rest of the Array API's elementwise set under PyTorch's names. Smooth functions are
# Functions with a backward written in ember ops (so they have second derivatives);
# piecewise-constant ones (floor, ceil, round, trunc, signbit, nextafter) and the bitwise
# ops have no gradient and record nothing, as ``sign`` and ``floor_divide`` above.

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


class Tan(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        r = array_module(a).tan(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        y = ctx.output()
        return g * (1 + y * y)


class Asin(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).arcsin(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return g * rsqrt(1 - x * x)


class Acos(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).arccos(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return -g * rsqrt(1 - x * x)


class Atan(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).arctan(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return g / (1 + x * x)


class Sinh(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).sinh(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g * cosh(ctx.inputs[0])


class Cosh(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).cosh(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g * sinh(ctx.inputs[0])


class Asinh(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).arcsinh(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return g * rsqrt(x * x + 1)


class Acosh(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).arccosh(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return g * rsqrt(x * x - 1)


class Atanh(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).arctanh(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        x = ctx.inputs[0]
        return g / (1 - x * x)


class Log2(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).log2(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g / (ctx.inputs[0] * _LN2)


class Log10(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        r = array_module(a).log10(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g / (ctx.inputs[0] * _LN10)


class Exp2(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        r = array_module(a).exp2(a)
        return r if r.dtype is _F32 else _real_result(r, a)

    def backward(ctx, g):
        return g * ctx.output() * _LN2


class Reciprocal(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        if a.dtype.kind in "biu":  # as torch: the reciprocal of an integer is a float
            a = a.astype(get_default_dtype())
        return 1 / a

    def backward(ctx, g):
        y = ctx.output()
        return -g * y * y


class Atan2(Function):
    raw = True
    saves = (0, 1)

    def forward(ctx, a, b):
        r = array_module(a if not isinstance(a, (int, float)) else b).arctan2(a, b)
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        r2 = a * a + b * b
        return (g * b / r2 if n[0] else None), (-g * a / r2 if n[1] else None)


class Hypot(Function):
    raw = True
    saves = (0, 1)
    saves_output = True

    def forward(ctx, a, b):
        r = array_module(a if not isinstance(a, (int, float)) else b).hypot(a, b)
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        y = ctx.output()
        return (g * a / y if n[0] else None), (g * b / y if n[1] else None)


class LogAddExp(Function):
    raw = True
    saves = (0, 1)
    saves_output = True

    def forward(ctx, a, b):
        r = array_module(a if not isinstance(a, (int, float)) else b).logaddexp(a, b)
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        y = ctx.output()
        return (g * exp(a - y) if n[0] else None), (g * exp(b - y) if n[1] else None)


class Copysign(Function):
    """``|a|`` with the sign of ``b``; the gradient flows to ``a`` only (0 at a == 0, as torch)."""

    raw = True
    saves = (0, 1)

    def forward(ctx, a, b):
        r = array_module(a if not isinstance(a, (int, float)) else b).copysign(a, b)
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        xp = array_module(g._data)
        bd = b._data if type(b) is Tensor else b
        s = xp.sign(a._data) * xp.copysign(1.0, bd)
        return g * _wrap(xp.asarray(s, dtype=g.dtype)), None


class Fmod(Function):
    """C's ``fmod``: the remainder of truncated division, with the sign of the dividend."""

    raw = True
    saves = (0, 1)

    def forward(ctx, a, b):
        r = array_module(a if not isinstance(a, (int, float)) else b).fmod(a, b)
        return _float_result(r, a, b) if r.dtype is _F64 else r

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        gb = None
        if n[1]:
            q = _data(a) / _data(b)
            gb = -g * _wrap(array_module(g._data).asarray(array_module(g._data).trunc(q), dtype=g.dtype))
        return (g if n[0] else None), gb


class _Rounding(_NoGrad):
    """floor/ceil/trunc: an integer input is returned as it is (a copy), as torch does."""

    ufunc = "floor"

    def forward(ctx, a):
        if a.dtype.kind in "biu":
            return a.copy()
        return getattr(array_module(a), ctx.ufunc)(a)


class Floor(_Rounding):
    ufunc = "floor"


class Ceil(_Rounding):
    ufunc = "ceil"


class Trunc(_Rounding):
    ufunc = "trunc"


class Round(_NoGrad):
    def forward(ctx, a, decimals=0):
        if a.dtype.kind in "biu" and decimals >= 0:
            return a.copy()
        return array_module(a).round(a, decimals)


class Signbit(_NoGrad):
    def forward(ctx, a):
        return array_module(a).signbit(a)


class Nextafter(_NoGrad):
    def forward(ctx, a, b):
        return array_module(a if not isinstance(a, (int, float)) else b).nextafter(a, b)


def _complex_part(name):
    def part(input):
        d = input._data
        if d.dtype.kind != "c":
            if name == "real":
                return input  # torch.real of a real tensor is the tensor itself
            raise RuntimeError(f"{name} is not implemented for tensors with non-complex dtypes.")
        return _wrap(getattr(array_module(d), name)(d))

    part.__name__ = name
    return part


real = op("real")(_complex_part("real"))
imag = op("imag")(_complex_part("imag"))


@op()
def conj(input):
    if input._data.dtype.kind != "c":
        return input  # the conjugate of a real tensor is the tensor itself, as torch
    return _wrap(array_module(input._data).conj(input._data))


conj_physical = op("conj_physical")(conj)
resolve_conj = op("resolve_conj")(lambda input: input)


@op()
def angle(input):
    d = input._data
    r = array_module(d).angle(d)
    if d.dtype.kind in "biu":
        r = r.astype(get_default_dtype())
    return _wrap(r.astype(np.result_type(d.dtype, np.float16)) if d.dtype.kind == "f" else r)


@op()
def complex(real, imag):
    if real.dtype != imag.dtype or real.dtype.kind != "f" or real.dtype == np.float16:
        raise RuntimeError(
            f"complex(): expected both inputs to be float32 or float64 of the same dtype, "
            f"got {real.dtype} and {imag.dtype}"
        )
    _check_same_device(real, imag)
    return _wrap(real._data + 1j * imag._data.astype(np.result_type(real.dtype, np.complex64)))


@op()
def polar(abs, angle):
    xp = array_module(abs._data)
    return complex(_wrap(abs._data * xp.cos(angle._data)), _wrap(abs._data * xp.sin(angle._data)))


@op()
def view_as_real(input):
    if input._data.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    xp = array_module(input._data)
    return _wrap(xp.stack([input._data.real, input._data.imag], axis=-1))


@op()
def view_as_complex(input):
    if input.shape[-1:] != (2,) or input.dtype not in (np.float32, np.float64):
        raise RuntimeError("view_as_complex: expected a float32/float64 tensor whose last dimension is 2")
    d = input._data
    return _wrap(d[..., 0] + 1j * d[..., 1].astype(np.result_type(d.dtype, np.complex64)))


@op()
def isreal(input):
    d = input._data
    xp = array_module(d)
    return _wrap(xp.imag(d) == 0 if d.dtype.kind == "c" else xp.ones(d.shape, dtype=bool))


def _bitwise_check(name, *xs):
    for x in xs:
        d = getattr(x, "dtype", None)
        if d is not None and d.kind not in "biu":
            raise RuntimeError(f'"{name}" not implemented for {d}: bitwise ops take integer or bool tensors')
        if isinstance(x, float):
            raise TypeError(f"{name}(): a Python float is not an integer or bool operand")


def _bitwise_binary(ufunc, name):
    def fn(input, other):
        _bitwise_check(name, input, other)
        _check_same_device(input, other)
        a, b = _data(input), _data(other)
        xp = array_module(a) if type(input) is Tensor else array_module(b)
        if name in ("bitwise_left_shift", "bitwise_right_shift"):
            for x in (a, b):
                if getattr(x, "dtype", np.dtype(int)).kind == "b":
                    raise RuntimeError(f'"{name}" not implemented for bool')
        return _wrap(getattr(xp, ufunc)(a, b))

    fn.__name__ = name
    return fn


bitwise_and = op("bitwise_and")(_bitwise_binary("bitwise_and", "bitwise_and"))
bitwise_or = op("bitwise_or")(_bitwise_binary("bitwise_or", "bitwise_or"))
bitwise_xor = op("bitwise_xor")(_bitwise_binary("bitwise_xor", "bitwise_xor"))
bitwise_left_shift = op("bitwise_left_shift")(_bitwise_binary("left_shift", "bitwise_left_shift"))
bitwise_right_shift = op("bitwise_right_shift")(_bitwise_binary("right_shift", "bitwise_right_shift"))


@op()
def bitwise_not(input):
    _bitwise_check("bitwise_not", input)
    return _wrap(array_module(input._data).invert(input._data))


tan = op("tan")(Tan.apply)
asin = op("asin")(Asin.apply)
acos = op("acos")(Acos.apply)
atan = op("atan")(Atan.apply)
sinh = op("sinh")(Sinh.apply)
cosh = op("cosh")(Cosh.apply)
asinh = op("asinh")(Asinh.apply)
acosh = op("acosh")(Acosh.apply)
atanh = op("atanh")(Atanh.apply)
arcsin, arccos, arctan = op("arcsin")(asin), op("arccos")(acos), op("arctan")(atan)
arcsinh, arccosh, arctanh = op("arcsinh")(asinh), op("arccosh")(acosh), op("arctanh")(atanh)
log2 = op("log2")(Log2.apply)
log10 = op("log10")(Log10.apply)
exp2 = op("exp2")(Exp2.apply)
reciprocal = op("reciprocal")(Reciprocal.apply)
atan2 = op("atan2")(_binary(Atan2))
arctan2 = op("arctan2")(atan2)
hypot = op("hypot")(_binary(Hypot))
logaddexp = op("logaddexp")(_binary(LogAddExp))
copysign = op("copysign")(_binary(Copysign))
fmod = op("fmod")(_binary(Fmod))
floor = op("floor")(Floor.apply)
ceil = op("ceil")(Ceil.apply)
trunc = op("trunc")(Trunc.apply)
fix = op("fix")(trunc)
signbit = op("signbit")(Signbit.apply)
nextafter = op("nextafter")(Nextafter.apply)


@op()
def round(input, *, decimals=0):
    return Round.apply(input, decimals=decimals)


@op()
def positive(input):
    return input


@op()
def frac(input):
    return input - trunc(input)


@op()
def logaddexp2(input, other):
    return logaddexp(input * _LN2, other * _LN2) / _LN2


@op()
def sgn(input):
    return sign(input)


_MORE_MATH = (
    "tan asin acos atan sinh cosh asinh acosh atanh arcsin arccos arctan arcsinh arccosh arctanh "
    "log2 log10 exp2 reciprocal atan2 arctan2 hypot logaddexp logaddexp2 copysign fmod floor ceil "
    "trunc fix round signbit nextafter positive frac sgn conj conj_physical resolve_conj "
    "angle isreal bitwise_and bitwise_or bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift"
).split()
_MORE_INPLACE = (
    "tan asin acos atan sinh cosh asinh acosh atanh log2 log10 exp2 reciprocal atan2 hypot "
    "copysign fmod floor ceil trunc round frac bitwise_and bitwise_or bitwise_xor bitwise_not "
    "bitwise_left_shift bitwise_right_shift"
).split()


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
register_method("__and__", bitwise_and)
register_method("__rand__", _r(bitwise_and))
register_method("__or__", bitwise_or)
register_method("__ror__", _r(bitwise_or))
register_method("__xor__", bitwise_xor)
register_method("__rxor__", _r(bitwise_xor))
register_method("__lshift__", bitwise_left_shift)
register_method("__rlshift__", _r(bitwise_left_shift))
register_method("__rshift__", bitwise_right_shift)
register_method("__rrshift__", _r(bitwise_right_shift))
register_method("__invert__", bitwise_not)
for _name in _MORE_MATH:
    register_method(_name, globals()[_name])
register_method("real", property(real))
register_method("imag", property(imag))


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
register_method("__ifloordiv__", _inplace(floor_divide))
register_method("__imod__", _inplace(remainder))
register_method("__iand__", _inplace(bitwise_and))
register_method("__ior__", _inplace(bitwise_or))
register_method("__ixor__", _inplace(bitwise_xor))
register_method("__ilshift__", _inplace(bitwise_left_shift))
register_method("__irshift__", _inplace(bitwise_right_shift))
for _name in _MORE_INPLACE:
    register_method(_name + "_", _inplace(globals()[_name]))

register_method("tril_", _inplace(tril))
register_method("triu_", _inplace(triu))
register_method("leaky_relu_", _inplace(leaky_relu))
