"""Autograd behaves as PyTorch users expect: accumulation, graph freeing, grad modes,
hooks, ``autograd.grad`` (higher order), user-defined Functions, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.autograd import Function, grad


def leaf(values, dtype=ember.float64):
    return ember.tensor(values, dtype=dtype, requires_grad=True)


def test_backward_accumulates_into_leaf_grad():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_leaf_used_twice_gets_the_sum_of_both_paths():
    x = leaf([2.0])
    (x * x + x.exp()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0 + np.exp(2.0)])


def test_backward_twice_without_retain_graph_raises_pytorch_message():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_non_scalar_backward_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(ember.tensor([1.0, 10.0], dtype=ember.float64))
    assert x.grad.tolist() == [2.0, 20.0]


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.tensor([1.0]).sum().backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x += 1
    with ember.no_grad():
        x.add_(1)  # the optimizer's way
    assert x.tolist() == [2.0, 3.0]


def test_inplace_on_tensor_saved_for_backward_raises_version_error():
    x = leaf([1.0, 2.0])
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_on_saved_input_raises_version_error():
    x = leaf([1.0, 2.0])
    a = x * 1
    y = a * a
    a.mul_(2)
    with pytest.raises(RuntimeError, match="inplace operation"):
        y.sum().backward()


def test_views_share_the_version_counter():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x.exp()
    v = y[0]
    w = y.reshape(4)
    assert v._version == y._version == w._version
    with ember.no_grad():
        v.mul_(2)
    assert y._version == w._version == v._version > 0
    with pytest.raises(RuntimeError, match="inplace operation"):
        y.sum().backward()


def test_inplace_that_backward_does_not_need_is_fine():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.add_(1).mul_(3.0)
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_setitem_under_no_grad_and_under_grad():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    y[0] = 0.0
    y[ember.tensor([False, True, False])] = 5.0
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 2.0]
    with ember.no_grad():
        x[1] = 7.0
    assert x.tolist() == [1.0, 7.0, 3.0]


def test_no_grad_and_enable_grad_nest():
    x = leaf([1.0])
    with ember.no_grad():
        assert not ember.is_grad_enabled()
        assert not (x * 2).requires_grad
        with ember.enable_grad():
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_grad_modes_work_as_decorators():
    x = leaf([1.0])

    @ember.no_grad()
    def f(t):
        return t * 2

    @ember.enable_grad()
    def g(t):
        return t * 2

    @ember.set_grad_enabled(False)
    def h(t):
        return t * 2

    @ember.inference_mode()
    def i(t):
        return t * 2

    assert ember.is_grad_enabled()  # defining h did not switch the mode
    assert not f(x).requires_grad and not h(x).requires_grad and not i(x).requires_grad
    with ember.no_grad():
        assert g(x).requires_grad
    assert ember.is_grad_enabled()


def test_set_grad_enabled_as_call_and_context():
    x = leaf([1.0])
    with ember.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ember.is_grad_enabled()
    ember.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        ember.set_grad_enabled(True)
    with ember.inference_mode():
        assert not (x * 2).requires_grad
    with ember.inference_mode(False):
        assert (x * 2).requires_grad


def test_hooks_on_leaf_and_non_leaf():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(("x", g.tolist())))
    y = x * 3
    h = y.register_hook(lambda g: g * 10)  # a hook may replace the gradient
    y.sum().backward()
    assert x.grad.tolist() == [30.0, 30.0]
    assert seen == [("x", [30.0, 30.0])]
    h.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_retain_grad_keeps_non_leaf_grad():
    x = leaf([1.0, 2.0])
    y = x * x
    y.retain_grad()
    z = x * 2
    (y * 2 + z).sum().backward()
    assert y.grad.tolist() == [2.0, 2.0]
    assert z.grad is None


def test_detach_and_requires_grad_():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    assert d.tolist() == [2.0, 4.0]
    t = ember.tensor([1.0, 2.0])
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_(False)


def test_autograd_grad_returns_without_accumulating():
    x = leaf([1.0, 2.0])
    (g,) = grad((x * x).sum(), x)
    assert g.tolist() == [2.0, 4.0] and x.grad is None


def test_autograd_grad_allow_unused():
    x, u = leaf([1.0]), leaf([2.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        grad(y, [x, u], retain_graph=True)
    gx, gu = grad(y, [x, u], allow_unused=True)
    assert gx.tolist() == [2.0] and gu is None


def test_create_graph_gives_higher_derivatives():
    x = leaf(3.0)
    (g,) = grad(x**3, x, create_graph=True)
    (h,) = grad(g, x, create_graph=True)
    (k,) = grad(h, x)
    assert (g.item(), h.item(), k.item()) == (27.0, 18.0, 6.0)


def test_hessian_vector_product_matches_analytic_hessian():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    A = a @ a.T
    b = rng.standard_normal(4)
    x0, v0 = rng.standard_normal(4), rng.standard_normal(4)
    At, bt = ember.tensor(A, dtype=ember.float64), ember.tensor(b, dtype=ember.float64)

    def f(x):  # 0.5 x'Ax + b'x + sum(sin x): Hessian = A - diag(sin x)
        return 0.5 * (x @ (At @ x)) + (bt * x).sum() + x.sin().sum()

    x = leaf(x0)
    (g,) = grad(f(x), x, create_graph=True)
    (hv,) = grad((g * ember.tensor(v0, dtype=ember.float64)).sum(), x)
    H = A - np.diag(np.sin(x0))
    np.testing.assert_allclose(hv.numpy(), H @ v0, rtol=1e-10)
    _, (hv2,) = ember.autograd.functional.hvp(f, x, ember.tensor(v0, dtype=ember.float64))
    np.testing.assert_allclose(hv2.numpy(), H @ v0, rtol=1e-10)


class Cube(Function):
    calls: list = []

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x, k)
        return x * x * x * k

    @staticmethod
    def backward(ctx, g):
        x, k = ctx.saved_tensors
        Cube.calls.append(ctx.needs_input_grad)
        gx = g * 3 * x * x * k if ctx.needs_input_grad[0] else None
        gk = g * x * x * x if ctx.needs_input_grad[1] else None
        return gx, gk


def test_user_defined_function():
    Cube.calls.clear()
    x, k = leaf([1.0, 2.0]), ember.tensor([2.0, 2.0], dtype=ember.float64)
    y = Cube.apply(x, k)
    assert y.tolist() == [2.0, 16.0] and y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 24.0]
    assert Cube.calls == [(True, False)]
    assert ember.autograd.gradcheck(lambda a, b: Cube.apply(a, b), (leaf([0.5, -1.0]), leaf([1.5, 2.0])))


def test_user_function_backward_not_called_when_no_input_needs_grad():
    Cube.calls.clear()
    x = leaf([1.0])
    y = Cube.apply(ember.tensor([1.0], dtype=ember.float64), ember.tensor([2.0], dtype=ember.float64))
    assert not y.requires_grad
    (x * y).sum().backward()
    assert Cube.calls == []


def test_user_function_saved_tensor_modified_in_place_raises():
    a = leaf([1.0, 2.0]) * 1
    y = Cube.apply(a, ember.tensor([1.0, 1.0], dtype=ember.float64))
    with ember.no_grad():
        a.add_(1)
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()


def test_dtype_mismatch_in_matmul_raises():
    a = ember.ones(2, 2)
    b = ember.ones(2, 2, dtype=ember.float64)
    with pytest.raises(RuntimeError, match="same dtype"):
        a @ b


def test_device_mismatch_raises():
    a = ember.ones(2, 2)
    b = ember.ones(2, 2, device="standin")
    with pytest.raises(RuntimeError, match="same device"):
        a @ b
    with pytest.raises(RuntimeError, match="device"):
        a + b


def test_gradients_keep_the_leaf_dtype():
    x = leaf([1.0, 2.0], dtype=ember.float32)
    (x * 2.5 + 1 / (x + 3) + 2.0**x).sum().backward()
    assert x.grad.dtype == ember.float32


def test_float64_gradients_keep_float64_precision():
    x = leaf([-1.0, 2.0])
    ember.leaky_relu(x, 0.01).sum().backward()
    assert x.grad.tolist() == [0.01, 1.0]


class _Tagged(Function):
    """A raw op whose forward writes into its ctx, waits for another thread to be inside
    the same forward, then reads its own write back."""

    raw = True
    barrier = None

    def forward(ctx, x, tag):
        ctx.tag = tag
        ctx.keep = x
        if _Tagged.barrier is not None:
            _Tagged.barrier.wait(timeout=10)
        return x * 0 + ctx.tag

    def backward(ctx, g):
        return g, None


def test_no_grad_calls_of_one_op_from_two_threads_never_share_a_ctx():
    import threading

    _Tagged.barrier = threading.Barrier(2)
    out = {}

    def run(tag):
        with ember.no_grad():
            out[tag] = _Tagged.apply(ember.zeros(3), tag).tolist()

    try:
        threads = [threading.Thread(target=run, args=(t,)) for t in (1.0, 2.0)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
    finally:
        _Tagged.barrier = None
    # a ctx shared by both calls hands one thread the other's tag
    assert out == {1.0: [1.0, 1.0, 1.0], 2.0: [2.0, 2.0, 2.0]}


def test_a_call_that_records_no_graph_keeps_nothing_alive():
    import weakref

    big = np.ones(1000)
    ref = weakref.ref(big)
    with ember.no_grad():
        _Tagged.apply(big, 1.0)
    del big
    assert ref() is None
