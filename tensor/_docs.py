"""Docstrings of the public ops whose functions are made by machinery (``Function.apply``,
aliases, factories), kept in one table as PyTorch keeps ``torch/_torch_docs.py``.

``attach()`` (run once when the engine loads) gives each ``ember.<name>`` whose own
docstring has no example the entry below. Each entry starts with the signature, as
``help(torch.<name>)`` does; the examples are run by ``tests/test_docstrings.py``.
"""

from __future__ import annotations

_UNARY = """{name}(input) -> Tensor

{what}

Elementwise; the result has ``input``'s shape and dtype{ints}. {grad}

>>> {example}
"""


def _unary(name, what, example, grad="Differentiable.", keeps_ints=False):
    ints = (
        " (integers stay integers)"
        if keeps_ints
        else (" (an integer or bool input gives the default float dtype, float32)")
    )
    return _UNARY.format(name=name, what=what, example=example, grad=grad, ints=ints)


_BINARY = """{name}(input, other) -> Tensor

{what}

Elementwise, broadcasting ``input`` and ``other`` (tensors or Python numbers) to a common
shape. The result dtype follows type promotion: two tensors promote (int8 with int16
gives int16, float32 with float64 gives float64); a Python number never widens a
tensor's dtype (float32 stays float32), and an integer tensor with a Python float gives
the default float dtype. {grad}

>>> {example}
"""


def _binary(name, what, example, grad="Differentiable in both arguments."):
    return _BINARY.format(name=name, what=what, example=example, grad=grad)


_NOGRAD = "Not differentiable (piecewise constant): the result does not require grad."

DOCS = {
    # ---- arithmetic --------------------------------------------------------------------------
    "add": """add(input, other, *, alpha=1) -> Tensor

``input + alpha * other``, elementwise with broadcasting.

Args:
    input: a tensor (or a Python number).
    other: a tensor or a Python number.
    alpha: the multiplier of ``other``.

Type promotion as ``torch.add``: two tensors promote to a common dtype; a Python
number never widens a float32 tensor. Differentiable in both arguments.

>>> ember.add(ember.tensor([1.0, 2.0]), ember.tensor([10.0, 20.0]), alpha=2)
tensor([21., 42.])
""",
    "sub": _binary(
        "sub",
        "``input - other``. ``subtract`` is the same function.",
        "ember.sub(ember.tensor([5, 7]), 2)\ntensor([3, 5])",
    ),
    "mul": _binary(
        "mul",
        "``input * other``. ``multiply`` is the same function.",
        "ember.mul(ember.tensor([1.0, 2.0]), ember.tensor([[3.0], [4.0]])).tolist()\n"
        "[[3.0, 6.0], [4.0, 8.0]]",
    ),
    "true_divide": _binary(
        "true_divide",
        "True division ``input / other``; integer inputs give the default float dtype.",
        "ember.true_divide(ember.tensor([1, 3]), 2)\ntensor([0.5, 1.5])",
        grad="Differentiable in both arguments.",
    ),
    "div": """div(input, other, *, rounding_mode=None) -> Tensor

``input / other`` elementwise with broadcasting; ``divide`` is the same function.

Args:
    input, other: tensors or Python numbers.
    rounding_mode: None (true division; integers give the default float dtype),
        ``'trunc'`` (round toward zero) or ``'floor'`` (round down, as ``floor_divide``).

Differentiable when ``rounding_mode`` is None.

>>> ember.div(ember.tensor([7.0, -7.0]), 2, rounding_mode="trunc")
tensor([ 3., -3.])
""",
    "floor_divide": _binary(
        "floor_divide",
        "``input // other``: the quotient rounded down (Python's ``//``). For floats,\n"
        "``inf // x`` is +-inf and ``x // inf`` is a signed zero, as ``floor(input / other)``.",
        "ember.floor_divide(ember.tensor([7, -7]), 2)\ntensor([ 3, -4])",
        grad=_NOGRAD,
    ),
    "remainder": _binary(
        "remainder",
        "Python's ``%``: ``input - floor(input / other) * other``, with the sign of ``other``.\n"
        "(``fmod`` keeps the sign of ``input`` instead.)",
        "ember.remainder(ember.tensor([-3, 3]), 2)\ntensor([1, 1])",
    ),
    "fmod": _binary(
        "fmod",
        "C's ``fmod``: the remainder of truncated division, with the sign of ``input``.\n"
        "(``remainder`` keeps the sign of ``other`` instead.)",
        "ember.fmod(ember.tensor([-3.0, 3.0]), 2)\ntensor([-1.,  1.])",
    ),
    "pow": """pow(input, exponent) -> Tensor

``input ** exponent`` elementwise; either may be a Python number (``pow(2, x)`` is 2**x).

Broadcasts; type promotion as the other arithmetic ops (an integer tensor to a negative
integer power raises, as numpy). Differentiable in both arguments (the exponent's
gradient needs a positive base).

>>> ember.pow(ember.tensor([1.0, 2.0, 3.0]), 2)
tensor([1., 4., 9.])
""",
    "neg": _unary(
        "neg",
        "``-input``. ``negative`` is the same function.",
        "ember.neg(ember.tensor([1, -2]))\ntensor([-1,  2])",
        keeps_ints=True,
    ),
    "square": """square(input) -> Tensor

``input * input``, elementwise; keeps ``input``'s dtype. Differentiable.

>>> ember.square(ember.tensor([-2, 3]))
tensor([4, 9])
""",
    "reciprocal": _unary(
        "reciprocal", "``1 / input``.", "ember.reciprocal(ember.tensor([2.0, 4.0]))\ntensor([0.50, 0.25])"
    ),
    "positive": """positive(input) -> Tensor

``+input``: returns ``input`` itself (as ``torch.positive``).

>>> ember.positive(ember.tensor([-1, 2]))
tensor([-1,  2])
""",
    # ---- exponentials and logarithms ---------------------------------------------------------
    "exp": _unary(
        "exp",
        "The exponential ``e ** input``.",
        "ember.exp(ember.tensor([0.0, 1.0]))\ntensor([1.0000, 2.7183])",
    ),
    "exp2": _unary("exp2", "``2 ** input``.", "ember.exp2(ember.tensor([0.0, 3.0]))\ntensor([1., 8.])"),
    "expm1": _unary(
        "expm1",
        "``exp(input) - 1``, accurate for small inputs.",
        "ember.expm1(ember.tensor([0.0]))\ntensor([0.])",
    ),
    "log": _unary(
        "log",
        "The natural logarithm (NaN below 0, -inf at 0).",
        "ember.log(ember.tensor([1.0, 2.718281828]))\ntensor([0., 1.])",
    ),
    "log2": _unary("log2", "The base-2 logarithm.", "ember.log2(ember.tensor([1.0, 8.0]))\ntensor([0., 3.])"),
    "log10": _unary(
        "log10", "The base-10 logarithm.", "ember.log10(ember.tensor([1.0, 100.0]))\ntensor([0., 2.])"
    ),
    "log1p": _unary(
        "log1p",
        "``log(1 + input)``, accurate for small inputs.",
        "ember.log1p(ember.tensor([0.0]))\ntensor([0.])",
    ),
    "logaddexp": _binary(
        "logaddexp",
        "``log(exp(input) + exp(other))``, computed without overflow.",
        "ember.logaddexp(ember.tensor([0.0]), ember.tensor([0.0]))\ntensor([0.6931])",
    ),
    "logaddexp2": _binary(
        "logaddexp2",
        "``log2(2 ** input + 2 ** other)``, computed without overflow.",
        "ember.logaddexp2(ember.tensor([1.0]), ember.tensor([1.0]))\ntensor([2.])",
    ),
    "sqrt": _unary(
        "sqrt", "The square root (NaN below 0).", "ember.sqrt(ember.tensor([4.0, 9.0]))\ntensor([2., 3.])"
    ),
    "rsqrt": _unary("rsqrt", "``1 / sqrt(input)``.", "ember.rsqrt(ember.tensor([4.0]))\ntensor([0.5])"),
    # ---- trigonometry ------------------------------------------------------------------------
    "sin": _unary("sin", "The sine (radians).", "ember.sin(ember.tensor([0.0]))\ntensor([0.])"),
    "cos": _unary("cos", "The cosine (radians).", "ember.cos(ember.tensor([0.0]))\ntensor([1.])"),
    "tan": _unary("tan", "The tangent (radians).", "ember.tan(ember.tensor([0.0]))\ntensor([0.])"),
    "asin": _unary(
        "asin",
        "The inverse sine, in [-pi/2, pi/2] (NaN outside [-1, 1]); ``arcsin`` is the same function.",
        "ember.asin(ember.tensor([1.0]))\ntensor([1.5708])",
    ),
    "acos": _unary(
        "acos",
        "The inverse cosine, in [0, pi] (NaN outside [-1, 1]); ``arccos`` is the same function.",
        "ember.acos(ember.tensor([1.0]))\ntensor([0.])",
    ),
    "atan": _unary(
        "atan",
        "The inverse tangent, in (-pi/2, pi/2); ``arctan`` is the same function.",
        "ember.atan(ember.tensor([1.0]))\ntensor([0.7854])",
    ),
    "atan2": _binary(
        "atan2",
        "The angle of the point (other, input): ``atan(input / other)`` in the right quadrant,\n"
        "in [-pi, pi]; ``arctan2`` is the same function.",
        "ember.atan2(ember.tensor([1.0]), ember.tensor([-1.0]))\ntensor([2.3562])",
    ),
    "hypot": _binary(
        "hypot",
        "``sqrt(input**2 + other**2)``, without intermediate overflow.",
        "ember.hypot(ember.tensor([3.0]), ember.tensor([4.0]))\ntensor([5.])",
    ),
    "sinh": _unary("sinh", "The hyperbolic sine.", "ember.sinh(ember.tensor([0.0]))\ntensor([0.])"),
    "cosh": _unary("cosh", "The hyperbolic cosine.", "ember.cosh(ember.tensor([0.0]))\ntensor([1.])"),
    "tanh": _unary("tanh", "The hyperbolic tangent.", "ember.tanh(ember.tensor([0.0]))\ntensor([0.])"),
    "asinh": _unary(
        "asinh",
        "The inverse hyperbolic sine; ``arcsinh`` is the same function.",
        "ember.asinh(ember.tensor([0.0]))\ntensor([0.])",
    ),
    "acosh": _unary(
        "acosh",
        "The inverse hyperbolic cosine (NaN below 1); ``arccosh`` is the same function.",
        "ember.acosh(ember.tensor([1.0]))\ntensor([0.])",
    ),
    "atanh": _unary(
        "atanh",
        "The inverse hyperbolic tangent (+-inf at +-1, NaN outside); ``arctanh`` is the same function.",
        "ember.atanh(ember.tensor([0.0]))\ntensor([0.])",
    ),
    # ---- activations and special functions ---------------------------------------------------
    "sigmoid": _unary(
        "sigmoid",
        "The logistic function ``1 / (1 + exp(-input))``, computed without overflow.",
        "ember.sigmoid(ember.tensor([0.0]))\ntensor([0.5])",
    ),
    "relu": _unary(
        "relu",
        "``max(input, 0)``; keeps integer dtypes.",
        "ember.relu(ember.tensor([-1.0, 2.0]))\ntensor([0., 2.])",
        grad="Differentiable (gradient 0 at 0, as torch).",
        keeps_ints=True,
    ),
    "erf": _unary("erf", "The error function.", "ember.erf(ember.tensor([0.0]))\ntensor([0.])"),
    "gelu": """gelu(input, approximate='none') -> Tensor

The Gaussian error linear unit ``x * Phi(x)`` (Phi the standard normal CDF), elementwise.

Args:
    approximate: ``'none'`` (exact, with erf) or ``'tanh'`` (the tanh approximation).

Keeps ``input``'s float dtype. Differentiable.

>>> ember.gelu(ember.tensor([0.0]))
tensor([0.])
""",
    "leaky_relu": """leaky_relu(input, negative_slope=0.01) -> Tensor

``input`` where positive, ``negative_slope * input`` elsewhere. Differentiable.

>>> ember.leaky_relu(ember.tensor([-1.0, 2.0]), 0.1)
tensor([-0.1,  2.0])
""",
    "softplus": """softplus(input, beta=1.0, threshold=20.0) -> Tensor

``log(1 + exp(beta * input)) / beta``, computed stably; linear (``input``) where
``beta * input > threshold``, as torch. Differentiable.

>>> ember.softplus(ember.tensor([0.0]))
tensor([0.6931])
""",
    # ---- rounding, signs, steps --------------------------------------------------------------
    "abs": _unary(
        "abs",
        "The absolute value (a complex input gives its real magnitude).",
        "ember.abs(ember.tensor([-1.5, 2.0]))\ntensor([1.5, 2.0])",
        grad="Differentiable (subgradient 0 at 0).",
        keeps_ints=True,
    ),
    "sign": _unary(
        "sign",
        "-1, 0 or 1 by the sign of ``input`` (``z / |z|`` for complex); keeps the dtype.",
        "ember.sign(ember.tensor([-2, 0, 3]))\ntensor([-1,  0,  1])",
        grad=_NOGRAD,
        keeps_ints=True,
    ),
    "sgn": """sgn(input) -> Tensor

``sign`` extended to complex numbers: ``z / |z|`` (0 at 0); for real input, ``sign``.

>>> ember.sgn(ember.tensor([-2.0, 0.0]))
tensor([-1.,  0.])
""",
    "signbit": """signbit(input) -> Tensor

True where the sign bit is set (negative numbers, -0.0 and negative NaNs), as a bool tensor.

>>> ember.signbit(ember.tensor([-0.0, 0.0, -1.0]))
tensor([ True, False,  True])
""",
    "copysign": _binary(
        "copysign",
        "``|input|`` with the sign of ``other`` (including the sign of zeros).",
        "ember.copysign(ember.tensor([1.0, -2.0]), -1.0)\ntensor([-1., -2.])",
        grad="Differentiable in ``input`` (0 at input == 0); ``other`` gets no gradient.",
    ),
    "nextafter": """nextafter(input, other) -> Tensor

The next floating-point value after ``input`` toward ``other``, elementwise (broadcasting).

Not differentiable.

>>> ember.nextafter(ember.tensor([1.0]), ember.tensor([2.0])).item() > 1.0
True
""",
    "floor": """floor(input) -> Tensor

The largest integer <= each element; an integer or bool input is returned as a copy, in its
own dtype. """
    + _NOGRAD
    + """

>>> ember.floor(ember.tensor([-1.5, 1.5]))
tensor([-2.,  1.])
""",
    "ceil": """ceil(input) -> Tensor

The smallest integer >= each element; an integer or bool input is returned as a copy. """
    + _NOGRAD
    + """

>>> ember.ceil(ember.tensor([-1.5, 1.5]))
tensor([-1.,  2.])
""",
    "trunc": """trunc(input) -> Tensor

Each element rounded toward zero (``fix`` is the same function); integers are returned as
a copy. """
    + _NOGRAD
    + """

>>> ember.trunc(ember.tensor([-1.5, 1.5]))
tensor([-1.,  1.])
""",
    "round": """round(input, *, decimals=0) -> Tensor

Each element rounded to ``decimals`` decimal places, halves to even (as torch and numpy:
0.5 -> 0, 1.5 -> 2). Integers are returned as a copy when ``decimals >= 0``. Complex
inputs round both parts. """
    + _NOGRAD
    + """

>>> ember.round(ember.tensor([0.5, 1.5, 2.567]), decimals=0)
tensor([0., 2., 3.])
""",
    "frac": """frac(input) -> Tensor

The fractional part ``input - trunc(input)`` (with ``input``'s sign). Differentiable
(gradient 1).

>>> ember.frac(ember.tensor([-1.25, 2.5]))
tensor([-0.25,  0.50])
""",
    "clamp": """clamp(input, min=None, max=None) -> Tensor

Each element limited to ``[min, max]``; ``min``/``max`` may be numbers or tensors
(broadcast) and at least one must be given. ``clip`` is the same function.

Differentiable in ``input`` (gradient 1 inside the range, 0 where clamped).

>>> ember.clamp(ember.tensor([-2.0, 0.5, 3.0]), -1, 1)
tensor([-1.0,  0.5,  1.0])
""",
    "clamp_min": """clamp_min(input, min) -> Tensor

``clamp(input, min=min)``: elements below ``min`` become ``min``. Differentiable.

>>> ember.clamp_min(ember.tensor([-2.0, 3.0]), 0)
tensor([0., 3.])
""",
    "clamp_max": """clamp_max(input, max) -> Tensor

``clamp(input, max=max)``: elements above ``max`` become ``max``. Differentiable.

>>> ember.clamp_max(ember.tensor([-2.0, 3.0]), 0)
tensor([-2.,  0.])
""",
    "maximum": _binary(
        "maximum",
        "The larger of ``input`` and ``other`` elementwise (NaN if either is NaN).",
        "ember.maximum(ember.tensor([1, 5]), ember.tensor([3, 2]))\ntensor([3, 5])",
        grad="Differentiable; at ties each argument gets half the gradient, as torch.",
    ),
    "minimum": _binary(
        "minimum",
        "The smaller of ``input`` and ``other`` elementwise (NaN if either is NaN).",
        "ember.minimum(ember.tensor([1, 5]), ember.tensor([3, 2]))\ntensor([1, 2])",
        grad="Differentiable; at ties each argument gets half the gradient, as torch.",
    ),
    "where": """where(condition, input, other) -> Tensor

``input`` where ``condition`` is True, else ``other`` (tensors or numbers, broadcast
together). With ``condition`` alone it is ``nonzero(condition, as_tuple=True)``.

The result dtype promotes ``input`` and ``other``. Differentiable in ``input`` and ``other``.

>>> ember.where(ember.tensor([True, False]), ember.tensor([1.0, 2.0]), 0.0)
tensor([1., 0.])
""",
    # ---- complex numbers ---------------------------------------------------------------------
    "real": """real(input) -> Tensor

The real part of a complex tensor (float32 for complex64, float64 for complex128); a real
tensor is returned as it is. Also the property ``Tensor.real``.

>>> ember.real(ember.tensor([1 + 2j]))
tensor([1.])
""",
    "imag": """imag(input) -> Tensor

The imaginary part of a complex tensor; a real tensor raises, as torch. Also the property
``Tensor.imag``.

>>> ember.imag(ember.tensor([1 + 2j]))
tensor([2.])
""",
    "conj": """conj(input) -> Tensor

The complex conjugate; a real tensor is returned as it is. ``conj_physical`` is the same
function (ember has no lazy conjugate bit, so ``resolve_conj`` is the identity).

>>> ember.conj(ember.tensor([1 + 2j]))
tensor([1.-2.j], dtype=ember.complex64)
""",
    "resolve_conj": """resolve_conj(input) -> Tensor

Returns ``input``: ember's conjugates are always materialised (torch's lazy conjugate bit
does not exist here).

>>> ember.resolve_conj(ember.tensor([1.0])).tolist()
[1.0]
""",
    "angle": """angle(input) -> Tensor

The argument (phase) of each complex element, in [-pi, pi]; for real input 0 or pi
(integers give the default float dtype).

>>> ember.angle(ember.tensor([-1.0, 1.0]))
tensor([3.1416, 0.0000])
""",
    "isreal": """isreal(input) -> Tensor

True where an element's imaginary part is zero (always True for real dtypes).

>>> ember.isreal(ember.tensor([1 + 0j, 1j]))
tensor([ True, False])
""",
    "complex": """complex(real, imag) -> Tensor

A complex tensor ``real + 1j * imag`` from two float32 (-> complex64) or float64
(-> complex128) tensors of the same dtype.

>>> ember.complex(ember.tensor([1.0]), ember.tensor([2.0]))
tensor([1.+2.j], dtype=ember.complex64)
""",
    "polar": """polar(abs, angle) -> Tensor

The complex tensor ``abs * (cos(angle) + 1j * sin(angle))``.

>>> ember.polar(ember.tensor([2.0]), ember.tensor([0.0]))
tensor([2.+0.j], dtype=ember.complex64)
""",
    "view_as_real": """view_as_real(input) -> Tensor

A complex tensor ``(*)`` as a real one ``(*, 2)`` holding (real, imaginary) pairs (a copy in
ember, not a view).

>>> ember.view_as_real(ember.tensor([1 + 2j])).tolist()
[[1.0, 2.0]]
""",
    "view_as_complex": """view_as_complex(input) -> Tensor

A real float32/float64 tensor ``(*, 2)`` of (real, imaginary) pairs as a complex tensor
``(*)`` (a copy in ember, not a view).

>>> ember.view_as_complex(ember.tensor([[1.0, 2.0]]))
tensor([1.+2.j], dtype=ember.complex64)
""",
    # ---- bits --------------------------------------------------------------------------------
    "bitwise_and": """bitwise_and(input, other) -> Tensor

The bitwise AND of integer or bool tensors (logical AND for bool), broadcasting; also
``input & other``. A float operand raises.

>>> ember.bitwise_and(ember.tensor([12]), ember.tensor([10]))
tensor([8])
""",
    "bitwise_or": """bitwise_or(input, other) -> Tensor

The bitwise OR of integer or bool tensors, broadcasting; also ``input | other``.

>>> ember.bitwise_or(ember.tensor([12]), 3)
tensor([15])
""",
    "bitwise_xor": """bitwise_xor(input, other) -> Tensor

The bitwise XOR of integer or bool tensors, broadcasting; also ``input ^ other``.

>>> ember.bitwise_xor(ember.tensor([12]), 10)
tensor([6])
""",
    "bitwise_not": """bitwise_not(input) -> Tensor

The bitwise NOT of an integer tensor (two's complement: ``~x == -x - 1``), logical NOT for
bool; also ``~input``.

>>> ember.bitwise_not(ember.tensor([0, 5]))
tensor([-1, -6])
""",
    "bitwise_left_shift": """bitwise_left_shift(input, other) -> Tensor

``input << other`` for integer tensors (bits shifted out are lost), broadcasting.

>>> ember.bitwise_left_shift(ember.tensor([1, 3]), 2)
tensor([ 4, 12])
""",
    "bitwise_right_shift": """bitwise_right_shift(input, other) -> Tensor

``input >> other`` for integer tensors (arithmetic shift: the sign is kept), broadcasting.

>>> ember.bitwise_right_shift(ember.tensor([16, -16]), 2)
tensor([ 4, -4])
""",
    # ---- comparisons and logic ---------------------------------------------------------------
    "eq": """eq(input, other) -> Tensor

``input == other`` elementwise (broadcasting; ``other`` may be a number), as a bool tensor.

>>> ember.eq(ember.tensor([1, 2]), 2)
tensor([False,  True])
""",
    "ne": """ne(input, other) -> Tensor

``input != other`` elementwise, as a bool tensor.

>>> ember.ne(ember.tensor([1, 2]), 2)
tensor([ True, False])
""",
    "lt": """lt(input, other) -> Tensor

``input < other`` elementwise, as a bool tensor (``less`` on tensors).

>>> ember.lt(ember.tensor([1, 2]), 2)
tensor([ True, False])
""",
    "le": """le(input, other) -> Tensor

``input <= other`` elementwise, as a bool tensor.

>>> ember.le(ember.tensor([1, 3]), 2)
tensor([ True, False])
""",
    "gt": """gt(input, other) -> Tensor

``input > other`` elementwise, as a bool tensor (``greater`` on tensors).

>>> ember.gt(ember.tensor([1, 3]), 2)
tensor([False,  True])
""",
    "ge": """ge(input, other) -> Tensor

``input >= other`` elementwise, as a bool tensor.

>>> ember.ge(ember.tensor([1, 2]), 2)
tensor([False,  True])
""",
    "logical_and": """logical_and(input, other) -> Tensor

Elementwise AND of the truth values (nonzero is True), as a bool tensor.

>>> ember.logical_and(ember.tensor([1, 0, 2]), ember.tensor([1, 1, 0]))
tensor([ True, False, False])
""",
    "logical_or": """logical_or(input, other) -> Tensor

Elementwise OR of the truth values (nonzero is True), as a bool tensor.

>>> ember.logical_or(ember.tensor([1, 0, 0]), ember.tensor([0, 0, 3]))
tensor([ True, False,  True])
""",
    "logical_xor": """logical_xor(input, other) -> Tensor

Elementwise XOR of the truth values (nonzero is True), as a bool tensor.

>>> ember.logical_xor(ember.tensor([1, 0]), ember.tensor([1, 1]))
tensor([False,  True])
""",
    "logical_not": """logical_not(input) -> Tensor

Elementwise NOT of the truth values (zero becomes True), as a bool tensor.

>>> ember.logical_not(ember.tensor([0, 2]))
tensor([ True, False])
""",
    "isnan": """isnan(input) -> Tensor

True where an element is NaN (for complex: either part), as a bool tensor.

>>> ember.isnan(ember.tensor([1.0, float("nan")]))
tensor([False,  True])
""",
    "isinf": """isinf(input) -> Tensor

True where an element is +inf or -inf, as a bool tensor.

>>> ember.isinf(ember.tensor([1.0, float("-inf")]))
tensor([False,  True])
""",
    "isfinite": """isfinite(input) -> Tensor

True where an element is neither infinite nor NaN, as a bool tensor.

>>> ember.isfinite(ember.tensor([1.0, float("inf")]))
tensor([ True, False])
""",
    "allclose": """allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool

True when ``|input - other| <= atol + rtol * |other|`` for every element (broadcasting);
NaNs compare equal only with ``equal_nan``.

>>> ember.allclose(ember.tensor([1.0]), ember.tensor([1.0 + 1e-9]))
True
""",
    "equal": """equal(input, other) -> bool

True when both tensors have the same shape and the same elements.

>>> ember.equal(ember.tensor([1, 2]), ember.tensor([1, 2]))
True
""",
    # ---- reductions --------------------------------------------------------------------------
    "sum": """sum(input, dim=None, keepdim=False, *, dtype=None) -> Tensor

The sum of the elements of ``input`` over ``dim``.

Args:
    input: the tensor.
    dim: an int or a tuple of ints; None sums over every element.
    keepdim: keep each reduced dimension with size 1.
    dtype: cast ``input`` to this dtype first (e.g. to avoid overflow).

Bool and integer inputs sum to int64 (unsigned ones to uint64), floats keep their
dtype. Shape: ``input``'s with the reduced dims removed (size 1 with ``keepdim``).
Differentiable.

>>> ember.sum(ember.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1)
tensor([3., 7.])
""",
    "mean": """mean(input, dim=None, keepdim=False, *, dtype=None) -> Tensor

The arithmetic mean over ``dim`` (an int, a tuple, or None for every element).

``input`` must be floating point or complex (an integer tensor raises unless ``dtype`` is
given, as torch); the result keeps that dtype. Differentiable.

>>> ember.mean(ember.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=0)
tensor([2., 3.])
""",
    "prod": """prod(input, dim=None, keepdim=False, *, dtype=None) -> Tensor

The product of the elements over ``dim`` (an int, or None for every element).

Integer and bool inputs multiply in int64 (unsigned ones in uint64); ``dtype`` casts
first. Differentiable (also where
``input`` has zeros).

>>> ember.prod(ember.tensor([[1, 2], [3, 4]]), dim=1)
tensor([ 2, 12])
""",
    "max": """max(input, dim=None, keepdim=False) -> Tensor or (values, indices)

``max(input)``: the largest element (a 0-d tensor). ``max(input, dim)``: a named tuple
``(values, indices)`` of the largest elements along ``dim`` and their positions (int64).
``max(input, other)`` with a tensor ``other`` is ``maximum``. NaN propagates.

Differentiable: the whole-tensor form shares the gradient among tied maxima; the ``dim``
form sends it to the returned index.

>>> ember.max(ember.tensor([[1, 5], [7, 2]]), dim=1)
values_indices(values=tensor([5, 7]), indices=tensor([1, 0]))
""",
    "min": """min(input, dim=None, keepdim=False) -> Tensor or (values, indices)

As ``max``, for the smallest elements (``min(input, other)`` is ``minimum``).

>>> ember.min(ember.tensor([[1, 5], [7, 2]]), dim=1).values
tensor([1, 2])
""",
    "amax": """amax(input, dim=(), keepdim=False) -> Tensor

The largest elements over ``dim`` (an int or tuple; ``()``, the default, means every
dimension, as torch). No indices; the gradient is shared evenly among ties.

>>> ember.amax(ember.tensor([[1, 5], [7, 2]]), dim=0)
tensor([7, 5])
""",
    "amin": """amin(input, dim=(), keepdim=False) -> Tensor

The smallest elements over ``dim`` (``()`` means every dimension). The gradient is shared
evenly among ties.

>>> ember.amin(ember.tensor([[1, 5], [7, 2]]), dim=0)
tensor([1, 2])
""",
    "argmax": """argmax(input, dim=None, keepdim=False) -> Tensor

The index (int64) of the largest element along ``dim``, or in the flattened tensor when
``dim`` is None. The first index wins among ties.

>>> ember.argmax(ember.tensor([[1, 5], [7, 2]]), dim=1)
tensor([1, 0])
""",
    "argmin": """argmin(input, dim=None, keepdim=False) -> Tensor

The index (int64) of the smallest element along ``dim`` (flattened when None).

>>> ember.argmin(ember.tensor([[1, 5], [7, 2]]), dim=1)
tensor([0, 1])
""",
    "all": """all(input, dim=None, keepdim=False) -> Tensor

True when every element over ``dim`` (an int, tuple, or None for all) is nonzero; a bool
tensor.

>>> ember.all(ember.tensor([[1, 0], [1, 1]]), dim=1)
tensor([False,  True])
""",
    "any": """any(input, dim=None, keepdim=False) -> Tensor

True when some element over ``dim`` is nonzero; a bool tensor.

>>> ember.any(ember.tensor([[0, 0], [1, 0]]), dim=1)
tensor([False,  True])
""",
    "count_nonzero": """count_nonzero(input, dim=None) -> Tensor

The number of nonzero elements over ``dim`` (an int, tuple, or None for all), int64.

>>> ember.count_nonzero(ember.tensor([[0, 1], [2, 3]]), dim=1)
tensor([1, 2])
""",
    "cumsum": """cumsum(input, dim, *, dtype=None) -> Tensor

Running sums along ``dim``: ``out[i] = input[0] + ... + input[i]``. Integer and bool
inputs accumulate in int64 (unsigned ones in uint64); with ``dtype`` the input is cast
first and the result has that dtype. Differentiable.

>>> ember.cumsum(ember.tensor([1, 2, 3]), 0)
tensor([1, 3, 6])
""",
    "cumprod": """cumprod(input, dim, *, dtype=None) -> Tensor

Running products along ``dim``. Differentiable (for inputs without zeros).

>>> ember.cumprod(ember.tensor([1, 2, 3]), 0)
tensor([1, 2, 6])
""",
    "var": """var(input, dim=None, *, correction=1, keepdim=False, unbiased=None) -> Tensor

The variance over ``dim``: ``sum((x - mean)**2) / (N - correction)``.

Args:
    dim: an int, a tuple, or None for every element.
    correction: Bessel's correction; 1 (the default) is the unbiased sample variance,
        0 the population variance. ``unbiased=True/False`` is the older spelling of 1/0.
    keepdim: keep reduced dims with size 1.

Differentiable.

>>> ember.var(ember.tensor([1.0, 2.0, 3.0, 4.0]))
tensor(1.6667)
""",
    "std": """std(input, dim=None, *, correction=1, keepdim=False, unbiased=None) -> Tensor

The standard deviation, ``sqrt(var(...))`` with the same arguments. Differentiable.

>>> ember.std(ember.tensor([1.0, 3.0]), correction=0)
tensor(1.)
""",
    "var_mean": """var_mean(input, dim=None, *, correction=1, keepdim=False) -> (Tensor, Tensor)

``(var(input, dim, ...), mean(input, dim, ...))`` as one call.

>>> [t.item() for t in ember.var_mean(ember.tensor([1.0, 3.0]))]
[2.0, 2.0]
""",
    "std_mean": """std_mean(input, dim=None, *, correction=1, keepdim=False) -> (Tensor, Tensor)

``(std(input, dim, ...), mean(input, dim, ...))`` as one call.

>>> [t.item() for t in ember.std_mean(ember.tensor([1.0, 3.0]), correction=0)]
[1.0, 2.0]
""",
    "logsumexp": """logsumexp(input, dim=None, keepdim=False) -> Tensor

``log(sum(exp(input), dim))`` computed stably (the maximum is subtracted first).
Differentiable (its gradient is the softmax).

>>> ember.logsumexp(ember.tensor([0.0, 0.0]), 0)
tensor(0.6931)
""",
    "softmax": """softmax(input, dim=None, dtype=None) -> Tensor

``exp(x) / sum(exp(x), dim)`` along ``dim``, computed stably; each slice sums to 1.
``dtype`` casts first. (``dim=None`` uses torch's legacy choice: 0 for 0-, 1- and 3-D
inputs, else 1.) Differentiable.

>>> ember.softmax(ember.tensor([0.0, 0.0]), dim=0)
tensor([0.5, 0.5])
""",
    "log_softmax": """log_softmax(input, dim=None, dtype=None) -> Tensor

``log(softmax(input, dim))`` computed stably in one pass. Differentiable.

>>> ember.log_softmax(ember.tensor([0.0, 0.0]), dim=0)
tensor([-0.6931, -0.6931])
""",
    "norm": """norm(input, p='fro', dim=None, keepdim=False, dtype=None) -> Tensor

The ``p``-norm of ``input`` over ``dim`` (every element when None), as ``torch.norm``:
``'fro'`` and 2 the Euclidean norm, 1 the sum of |x|, ``inf``/``-inf`` the largest/smallest
|x|, 0 the count of nonzeros, any other number p ``sum(|x|**p) ** (1/p)``. For matrix
norms see ``ember.linalg.matrix_norm``. Differentiable (gradient 0 at the origin).

>>> ember.norm(ember.tensor([3.0, 4.0]))
tensor(5.)
""",
    # ---- shapes ------------------------------------------------------------------------------
    "reshape": """reshape(input, *shape) -> Tensor

``input`` with a new shape holding the same elements in row-major order; one dimension may
be -1 (inferred). A view when possible (sharing memory and the version counter), else a
copy. Differentiable.

>>> ember.reshape(ember.arange(6), (2, 3))
tensor([[0, 1, 2],
        [3, 4, 5]])
""",
    "flatten": """flatten(input, start_dim=0, end_dim=-1) -> Tensor

The dims ``start_dim..end_dim`` merged into one (a 0-d input becomes 1-D). Differentiable.

>>> ember.flatten(ember.zeros(2, 3, 4), 1).shape
(2, 12)
""",
    "unflatten": """unflatten(input, dim, sizes) -> Tensor

Dimension ``dim`` split into ``sizes`` (their product must equal its size; one may be
-1). Differentiable.

>>> ember.unflatten(ember.zeros(2, 12), 1, (3, 4)).shape
(2, 3, 4)
""",
    "squeeze": """squeeze(input, dim=None) -> Tensor

Dimensions of size 1 removed: all of them (``dim=None``) or those among ``dim`` (an int or
tuple; dims of other sizes are left alone, as torch). Differentiable.

>>> ember.squeeze(ember.zeros(2, 1, 3, 1), 1).shape
(2, 3, 1)
""",
    "unsqueeze": """unsqueeze(input, dim) -> Tensor

A dimension of size 1 inserted at ``dim`` (in ``[-input.ndim - 1, input.ndim]``).
Differentiable.

>>> ember.unsqueeze(ember.zeros(2, 3), 0).shape
(1, 2, 3)
""",
    "permute": """permute(input, *dims) -> Tensor

The dimensions reordered: output dim i is input dim ``dims[i]``. A view. Differentiable.

>>> ember.permute(ember.zeros(2, 3, 4), (2, 0, 1)).shape
(4, 2, 3)
""",
    "transpose": """transpose(input, dim0, dim1) -> Tensor

``dim0`` and ``dim1`` swapped (a view); ``swapaxes`` and ``swapdims`` are the same
function. Differentiable.

>>> ember.transpose(ember.zeros(2, 3), 0, 1).shape
(3, 2)
""",
    "t": """t(input) -> Tensor

The transpose of a matrix (0-D and 1-D inputs are returned as they are); more than two
dims raise. Differentiable.

>>> ember.t(ember.zeros(2, 3)).shape
(3, 2)
""",
    "movedim": """movedim(input, source, destination) -> Tensor

Dimension(s) ``source`` moved to position(s) ``destination`` (ints or sequences); the
others keep their order. ``moveaxis`` is the same function. Differentiable.

>>> ember.movedim(ember.zeros(2, 3, 4), 0, -1).shape
(3, 4, 2)
""",
    "expand": """expand(input, *sizes) -> Tensor

A view of ``input`` broadcast to ``sizes`` (-1 keeps a dimension; new leading dims may be
added). No memory is copied. Differentiable (the gradient is summed back).

>>> ember.expand(ember.tensor([[1], [2]]), 2, 3)
tensor([[1, 1, 1],
        [2, 2, 2]])
""",
    "broadcast_to": """broadcast_to(input, shape) -> Tensor

``input`` broadcast to ``shape`` (``expand`` with a tuple). Differentiable.

>>> ember.broadcast_to(ember.tensor([1, 2]), (2, 2))
tensor([[1, 2],
        [1, 2]])
""",
    "broadcast_tensors": """broadcast_tensors(*tensors) -> tuple of Tensors

The tensors expanded to their common broadcast shape. Differentiable.

>>> [t.shape for t in ember.broadcast_tensors(ember.zeros(2, 1), ember.zeros(3))]
[(2, 3), (2, 3)]
""",
    "cat": """cat(tensors, dim=0) -> Tensor

The tensors joined along the existing dimension ``dim`` (they must match elsewhere).
``concat`` and ``concatenate`` are the same function. Differentiable.

>>> ember.cat([ember.zeros(2, 3), ember.ones(1, 3)]).shape
(3, 3)
""",
    "stack": """stack(tensors, dim=0) -> Tensor

Equal-shaped tensors joined along a new dimension ``dim``. Differentiable.

>>> ember.stack([ember.zeros(2, 3), ember.ones(2, 3)], dim=1).shape
(2, 2, 3)
""",
    "hstack": """hstack(tensors) -> Tensor

The tensors joined column-wise: along dim 1, or dim 0 for 1-D tensors. Differentiable.

>>> ember.hstack([ember.tensor([1, 2]), ember.tensor([3])])
tensor([1, 2, 3])
""",
    "vstack": """vstack(tensors) -> Tensor

The tensors joined row-wise (1-D tensors become rows first). Differentiable.

>>> ember.vstack([ember.tensor([1, 2]), ember.tensor([3, 4])])
tensor([[1, 2],
        [3, 4]])
""",
    "split": """split(tensor, split_size_or_sections, dim=0) -> tuple of Tensors

Views of consecutive pieces along ``dim``: of size ``split_size_or_sections`` (an int; the
last piece may be smaller) or of the listed sizes (which must sum to the dim's size).
Differentiable.

>>> [p.tolist() for p in ember.split(ember.arange(5), 2)]
[[0, 1], [2, 3], [4]]
""",
    "chunk": """chunk(input, chunks, dim=0) -> tuple of Tensors

At most ``chunks`` pieces of equal size (the last may be smaller) along ``dim``.
Differentiable.

>>> [p.tolist() for p in ember.chunk(ember.arange(5), 2)]
[[0, 1, 2], [3, 4]]
""",
    "unbind": """unbind(input, dim=0) -> tuple of Tensors

The slices of ``input`` along ``dim``, with that dimension removed (an empty tuple for a
dimension of size 0). Differentiable.

>>> [t.tolist() for t in ember.unbind(ember.tensor([[1, 2], [3, 4]]))]
[[1, 2], [3, 4]]
""",
    "narrow": """narrow(input, dim, start, length) -> Tensor

The view ``input[..., start:start + length, ...]`` along ``dim``. Differentiable.

>>> ember.narrow(ember.arange(5), 0, 1, 3)
tensor([1, 2, 3])
""",
    "flip": """flip(input, dims) -> Tensor

The elements reversed along each of ``dims`` (an int or sequence). A copy. Differentiable.

>>> ember.flip(ember.tensor([[1, 2], [3, 4]]), (0, 1))
tensor([[4, 3],
        [2, 1]])
""",
    "fliplr": """fliplr(input) -> Tensor

``flip(input, (1,))``: the columns in reverse order. Differentiable.

>>> ember.fliplr(ember.tensor([[1, 2]]))
tensor([[2, 1]])
""",
    "flipud": """flipud(input) -> Tensor

``flip(input, (0,))``: the rows in reverse order. Differentiable.

>>> ember.flipud(ember.tensor([[1], [2]]))
tensor([[2],
        [1]])
""",
    "roll": """roll(input, shifts, dims=None) -> Tensor

The elements shifted cyclically by ``shifts`` along ``dims`` (ints or matching
sequences); with ``dims=None`` the flattened tensor is rolled and reshaped back.
Differentiable.

>>> ember.roll(ember.tensor([1, 2, 3]), 1)
tensor([3, 1, 2])
""",
    "tile": """tile(input, dims) -> Tensor

``input`` repeated ``dims[i]`` times along each dimension (missing leading entries count
as 1; extra ones add dimensions). ``Tensor.repeat`` is the method form. Differentiable.

>>> ember.tile(ember.tensor([1, 2]), (2,))
tensor([1, 2, 1, 2])
""",
    "repeat_interleave": """repeat_interleave(input, repeats, dim=None) -> Tensor

Each element repeated ``repeats`` times along ``dim`` (an int, or a tensor with one count
per element); ``dim=None`` works on the flattened input. Differentiable.

>>> ember.repeat_interleave(ember.tensor([1, 2]), 2)
tensor([1, 1, 2, 2])
""",
    "pad": """pad(input, pad, mode='constant', value=0.0) -> Tensor

``input`` padded: ``pad`` lists (before, after) widths starting from the *last* dimension,
as ``torch.nn.functional.pad``: ``(left, right)`` pads the last dim, ``(left, right, top,
bottom)`` the last two. ``mode``: ``'constant'`` (with ``value``), ``'reflect'``,
``'replicate'`` or ``'circular'``. Differentiable.

>>> ember.pad(ember.tensor([1, 2]), (1, 2))
tensor([0, 1, 2, 0, 0])
""",
    "contiguous": """contiguous(input) -> Tensor

``input`` with its elements contiguous in memory (see ``Tensor.contiguous``).

>>> ember.contiguous(ember.tensor([1, 2])).tolist()
[1, 2]
""",
    # ---- indexing and ordering ---------------------------------------------------------------
    "gather": """gather(input, dim, index) -> Tensor

Values picked along ``dim`` by ``index`` (int64, same number of dims as ``input``):
``out[i][j] = input[index[i][j]][j]`` for dim 0. The output has ``index``'s shape.
Differentiable in ``input`` (repeated indices accumulate).

>>> ember.gather(ember.tensor([[1, 2], [3, 4]]), 1, ember.tensor([[1], [0]]))
tensor([[2],
        [3]])
""",
    "take_along_dim": """take_along_dim(input, indices, dim=None) -> Tensor

``gather`` with broadcasting of the other dims (as numpy's ``take_along_axis``); with
``dim=None`` both are flattened. Differentiable.

>>> ember.take_along_dim(ember.tensor([[10, 30, 20]]), ember.tensor([[0, 2]]), 1)
tensor([[10, 20]])
""",
    "scatter_add": """scatter_add(input, dim, index, src) -> Tensor

A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (out-of-place form of
``Tensor.scatter_add_``): ``out[index[i][j]][j] += src[i][j]`` for dim 0; repeated indices
accumulate. Differentiable in ``input`` and ``src``.

>>> ember.scatter_add(ember.zeros(3), 0, ember.tensor([0, 0, 2]), ember.tensor([1.0, 2.0, 3.0]))
tensor([3., 0., 3.])
""",
    "index_select": """index_select(input, dim, index) -> Tensor

The entries of ``input`` along ``dim`` at the positions of the 1-D int64 ``index`` (a
copy). Differentiable (repeated indices accumulate).

>>> ember.index_select(ember.tensor([[1, 2], [3, 4]]), 0, ember.tensor([1, 1]))
tensor([[3, 4],
        [3, 4]])
""",
    "index_add": """index_add(input, dim, index, source, *, alpha=1) -> Tensor

A copy of ``input`` with ``alpha * source`` added to the slices at ``index`` along ``dim``
(repeats accumulate). Differentiable in ``input`` and ``source``.

>>> ember.index_add(ember.zeros(3), 0, ember.tensor([0, 0]), ember.tensor([1.0, 2.0]))
tensor([3., 0., 0.])
""",
    "masked_fill": """masked_fill(input, mask, value) -> Tensor

A copy of ``input`` with ``value`` (a number or 0-d tensor) where the bool ``mask``
(broadcast) is True. Differentiable in ``input`` (and a tensor ``value``).

>>> ember.masked_fill(ember.tensor([1.0, 2.0]), ember.tensor([True, False]), 0.0)
tensor([0., 2.])
""",
    "masked_select": """masked_select(input, mask) -> Tensor

A 1-D tensor of the elements of ``input`` where the bool ``mask`` (broadcast) is True.
Differentiable.

>>> ember.masked_select(ember.tensor([1, 2, 3]), ember.tensor([True, False, True]))
tensor([1, 3])
""",
    "nonzero": """nonzero(input, *, as_tuple=False) -> Tensor or tuple of Tensors

The indices of the nonzero elements: an int64 tensor of shape (count, input.ndim), or with
``as_tuple=True`` one 1-D index tensor per dimension (usable as ``x[idx]``).

>>> ember.nonzero(ember.tensor([0, 3, 0, 4]))
tensor([[1],
        [3]])
""",
    "diagonal": """diagonal(input, offset=0, dim1=0, dim2=1) -> Tensor

The diagonal of the 2-D slices over ``dim1`` and ``dim2`` (``offset > 0`` above the main
diagonal, ``< 0`` below), as a new last dimension. Differentiable.

>>> ember.diagonal(ember.tensor([[1, 2], [3, 4]]))
tensor([1, 4])
""",
    "sort": """sort(input, dim=-1, descending=False, stable=False) -> (values, indices)

The elements sorted along ``dim``, as a named tuple of the values and their original
int64 indices. NaNs sort last. ``stable=True`` keeps equal elements in their order (also
when descending). Differentiable in ``values``.

>>> ember.sort(ember.tensor([3, 1, 2]))
values_indices(values=tensor([1, 2, 3]), indices=tensor([1, 2, 0]))
""",
    "argsort": """argsort(input, dim=-1, descending=False, stable=False) -> Tensor

The int64 indices that sort ``input`` along ``dim`` (``sort(...).indices``).

>>> ember.argsort(ember.tensor([3, 1, 2]), descending=True)
tensor([0, 2, 1])
""",
    "topk": """topk(input, k, dim=-1, largest=True, sorted=True) -> (values, indices)

The ``k`` largest (``largest=False``: smallest) elements along ``dim`` and their int64
indices; in order when ``sorted``. Differentiable in ``values``.

>>> ember.topk(ember.tensor([1, 5, 3, 4]), 2).values
tensor([5, 4])
""",
    "kthvalue": """kthvalue(input, k, dim=-1, keepdim=False) -> (values, indices)

The ``k``-th smallest element (1-based) along ``dim`` and its index. Differentiable in
``values``.

>>> ember.kthvalue(ember.tensor([3, 1, 2]), 2).values
tensor(2)
""",
    "unique": """unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None)
    -> Tensor or tuple

The distinct elements of ``input`` (flattened, or the distinct slices along ``dim``),
sorted. ``return_inverse`` adds, for each input element, the index of its value in the
result (input's shape); ``return_counts`` adds each value's count. NaNs are all distinct.

>>> ember.unique(ember.tensor([3, 1, 3]), return_counts=True)
(tensor([1, 3]), tensor([1, 2]))
""",
    "bincount": """bincount(input, weights=None, minlength=0) -> Tensor

The count of each value in a 1-D non-negative int tensor (or the sum of ``weights`` at
each value); the length is ``max(input) + 1`` or ``minlength``.

>>> ember.bincount(ember.tensor([0, 2, 2]))
tensor([1, 0, 2])
""",
    # ---- linear algebra ----------------------------------------------------------------------
    "matmul": """matmul(input, other) -> Tensor

The matrix product with numpy/torch rules: 1-D x 1-D is a dot product, 2-D x 2-D a
matrix product, a 1-D operand is a vector (prepended/appended dim removed after), and
leading batch dims broadcast: ``(b, n, k) @ (k, m) -> (b, n, m)``. Both operands must
have the same dtype. Also ``input @ other``. Differentiable.

>>> ember.matmul(ember.tensor([[1.0, 2.0]]), ember.tensor([[3.0], [4.0]]))
tensor([[11.]])
""",
    "mm": """mm(input, mat2) -> Tensor

The product of two 2-D matrices ``(n, k) @ (k, m) -> (n, m)`` (no broadcasting).
Differentiable.

>>> ember.mm(ember.eye(2), ember.tensor([[1.0, 2.0], [3.0, 4.0]])).tolist()
[[1.0, 2.0], [3.0, 4.0]]
""",
    "bmm": """bmm(input, mat2) -> Tensor

Batched matrix products of 3-D tensors: ``(b, n, k) @ (b, k, m) -> (b, n, m)``.
Differentiable.

>>> ember.bmm(ember.zeros(2, 3, 4), ember.zeros(2, 4, 5)).shape
(2, 3, 5)
""",
    "mv": """mv(input, vec) -> Tensor

The product of a matrix ``(n, m)`` and a vector ``(m,)``: ``(n,)``. Differentiable.

>>> ember.mv(ember.eye(2), ember.tensor([1.0, 2.0]))
tensor([1., 2.])
""",
    "dot": """dot(input, other) -> Tensor

The dot product of two 1-D tensors of the same size (a 0-d tensor). ``vdot`` is the same
function for real tensors. Differentiable.

>>> ember.dot(ember.tensor([1.0, 2.0]), ember.tensor([3.0, 4.0]))
tensor(11.)
""",
    "inner": """inner(input, other) -> Tensor

The inner product over the last dimension: ``sum(input * other, -1)`` with broadcasting.
Differentiable.

>>> ember.inner(ember.tensor([1.0, 2.0]), ember.tensor([3.0, 4.0]))
tensor(11.)
""",
    "outer": """outer(input, vec2) -> Tensor

The outer product of two 1-D tensors: ``out[i, j] = input[i] * vec2[j]``. ``ger`` is the
same function. Differentiable.

>>> ember.outer(ember.tensor([1, 2]), ember.tensor([1, 10]))
tensor([[ 1, 10],
        [ 2, 20]])
""",
    "einsum": """einsum(equation, *operands) -> Tensor

The Einstein summation named by ``equation`` (e.g. ``'ij,jk->ik'``; ``...`` broadcasts;
without ``->`` the output holds the indices that occur once, sorted). Operands may also
be given as one list. Differentiable in every operand (repeated indices too).

>>> ember.einsum("ij,j->i", ember.eye(2), ember.tensor([1.0, 2.0]))
tensor([1., 2.])
""",
    "tensordot": """tensordot(a, b, dims=2) -> Tensor

The sum of products over the last ``dims`` dimensions of ``a`` and the first ``dims`` of
``b`` (an int), or over the listed pairs ``dims=([a dims], [b dims])`` (negative dims
count from the end). The output has a's free dims, then b's. Differentiable.

>>> ember.tensordot(ember.ones(2, 3, 4), ember.ones(4, 3, 5), ([-1, -2], [0, 1])).shape
(2, 5)
""",
    "trace": """trace(input) -> Tensor

The sum of the main diagonal of a 2-D tensor. Differentiable.

>>> ember.trace(ember.tensor([[1.0, 2.0], [3.0, 4.0]]))
tensor(5.)
""",
    # ---- creation ----------------------------------------------------------------------------
    "zeros": """zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor

A tensor of zeros of shape ``size`` (ints or one sequence), in ``dtype`` (default float32)
on ``device`` (``'cpu'``, ``'cuda[:N]'``).

>>> ember.zeros(2, 3).shape
(2, 3)
""",
    "ones": """ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor

A tensor of ones of shape ``size`` in ``dtype`` (default float32) on ``device``.

>>> ember.ones(2, dtype=ember.int64)
tensor([1, 1])
""",
    "empty": """empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor

An uninitialised tensor of shape ``size`` (its values are whatever memory held).

>>> ember.empty(2, 3).shape
(2, 3)
""",
    "full": """full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor

A tensor of shape ``size`` filled with ``fill_value``. Without ``dtype``, a bool fill
gives bool, an int int64, a float the default float dtype, a complex the default complex
dtype (complex64).

>>> ember.full((2,), 7)
tensor([7, 7])
""",
    "zeros_like": """zeros_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor

Zeros with ``input``'s shape (and its dtype and device unless given).

>>> ember.zeros_like(ember.tensor([1, 2]))
tensor([0, 0])
""",
    "ones_like": """ones_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor

Ones with ``input``'s shape (and its dtype and device unless given).

>>> ember.ones_like(ember.tensor([1, 2]))
tensor([1, 1])
""",
    "empty_like": """empty_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor

An uninitialised tensor with ``input``'s shape (and its dtype and device unless given).

>>> ember.empty_like(ember.zeros(2, 3)).shape
(2, 3)
""",
    "full_like": """full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor

``fill_value`` in ``input``'s shape (and its dtype and device unless given).

>>> ember.full_like(ember.tensor([1, 2]), 5)
tensor([5, 5])
""",
    "arange": """arange(start=0, end, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor

The values ``start, start + step, ...`` below ``end`` (``arange(n)`` is 0..n-1). All-int
arguments give int64, otherwise the default float dtype.

>>> ember.arange(1, 7, 2)
tensor([1, 3, 5])
""",
    "linspace": """linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor

``steps`` evenly spaced values from ``start`` to ``end`` inclusive (default float32).

>>> ember.linspace(0, 1, 5)
tensor([0.00, 0.25, 0.50, 0.75, 1.00])
""",
    "logspace": """logspace(start, end, steps, base=10.0, *, dtype=None, device=None) -> Tensor

``steps`` values ``base ** linspace(start, end, steps)``.

>>> ember.logspace(0, 2, 3)
tensor([  1.,  10., 100.])
""",
    "eye": """eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor

The ``(n, m)`` identity matrix (``m`` defaults to ``n``): ones on the diagonal.

>>> ember.eye(2)
tensor([[1., 0.],
        [0., 1.]])
""",
    "from_numpy": """from_numpy(ndarray) -> Tensor

A CPU tensor sharing memory with the numpy array (writes through either are seen by
both); its dtype is the array's.

>>> import numpy as np
>>> ember.from_numpy(np.array([1, 2], dtype=np.int32))
tensor([1, 2], dtype=ember.int32)
""",
    "clone": """clone(input) -> Tensor

A copy of ``input`` with its own memory, still in the graph (differentiable).

>>> ember.clone(ember.tensor([1, 2]))
tensor([1, 2])
""",
    # ---- random sampling ---------------------------------------------------------------------
    "rand": """rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor

Samples uniform on [0, 1) of shape ``size`` (default float32), from ``generator`` or the
default generator (``ember.manual_seed`` seeds it).

>>> ember.rand(2, 3).shape
(2, 3)
""",
    "randn": """randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor

Standard normal samples (mean 0, variance 1) of shape ``size`` (default float32).

>>> ember.randn(4).shape
(4,)
""",
    "randint": """randint(low=0, high, size, *, generator=None, dtype=None, device=None) -> Tensor

Integers drawn uniformly from [low, high) (int64 by default); ``randint(high, size)`` as
torch.

>>> bool(((ember.randint(3, 7, (10,)) >= 3) & (ember.randint(3, 7, (10,)) < 7)).all())
True
""",
    "normal": """normal(mean=0.0, std=1.0, size=(), *, generator=None, dtype=None, device=None,
       requires_grad=False) -> Tensor

Normal samples with the given (scalar) ``mean`` and ``std``, of shape ``size``.

>>> ember.normal(2.0, 0.5, (3,)).shape
(3,)
""",
    "uniform": """uniform(low=0.0, high=1.0, size=(), *, generator=None, dtype=None, device=None,
        requires_grad=False) -> Tensor

Samples uniform on [low, high) of shape ``size``.

>>> bool((ember.uniform(-1.0, 1.0, (5,)).abs() <= 1).all())
True
""",
    "randperm": """randperm(n, *, generator=None, dtype=None, device=None) -> Tensor

A random permutation of 0..n-1 (int64 by default).

>>> sorted(ember.randperm(4).tolist())
[0, 1, 2, 3]
""",
    "rand_like": """rand_like(input, *, generator=None, dtype=None, device=None) -> Tensor

``rand`` with ``input``'s shape (and dtype and device unless given).

>>> ember.rand_like(ember.zeros(2, 2)).shape
(2, 2)
""",
    "randn_like": """randn_like(input, *, generator=None, dtype=None, device=None) -> Tensor

``randn`` with ``input``'s shape (and dtype and device unless given).

>>> ember.randn_like(ember.zeros(2, 2)).shape
(2, 2)
""",
    "multinomial": """multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor

``num_samples`` indices drawn for each row of non-negative weights ``input`` (1-D or 2-D;
rows need not sum to 1), without replacement unless ``replacement``. int64.

>>> ember.multinomial(ember.tensor([0.0, 1.0]), 1).tolist()
[1]
""",
    "scatter": """scatter(input, dim, index, src=None, value=None) -> Tensor

A copy of ``input`` with ``src[i][j]`` (or the number ``value``) written at
``index[i][j]`` along ``dim`` (``out[index[i][j]][j] = src[i][j]`` for dim 0); the last
write wins for repeated indices. Differentiable in ``input`` and ``src``.

>>> ember.scatter(ember.zeros(3), 0, ember.tensor([2, 0]), ember.tensor([5.0, 7.0]))
tensor([7., 0., 5.])
""",
    "bernoulli": """bernoulli(input, p=None, *, generator=None) -> Tensor

0/1 samples (in ``input``'s dtype) that are 1 with probability ``input`` elementwise (or
with the number ``p``).

>>> ember.bernoulli(ember.tensor([0.0, 1.0])).tolist()
[0.0, 1.0]
""",
    "manual_seed": """manual_seed(seed) -> Generator

Seed ember's default generator (every sampler not given a ``generator``) and return it;
the same seed gives the same samples.

>>> _ = ember.manual_seed(0); a = ember.rand(2)
>>> _ = ember.manual_seed(0); bool((ember.rand(2) == a).all())
True
""",
    "seed": """seed() -> int

Seed the default generator from a non-deterministic source and return that seed.

>>> isinstance(ember.seed(), int)
True
""",
    "initial_seed": """initial_seed() -> int

The seed the default generator was last seeded with.

>>> ember.manual_seed(3) is not None and ember.initial_seed() == 3
True
""",
}


def attach(public_ops):
    """Give each public op without a docstring its entry of ``DOCS`` (aliases share one)."""
    for name, fn in public_ops.items():
        doc = DOCS.get(name)
        if doc is None or (fn.__doc__ and ">>>" in fn.__doc__):
            continue  # an op's own docstring with an example wins
        try:
            fn.__doc__ = doc
        except (AttributeError, TypeError):  # a builtin: leave it
            pass
