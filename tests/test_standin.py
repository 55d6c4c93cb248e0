"""Every op spec runs forward and backward on the stand-in device ("standin": numpy
arrays of a distinct subclass that refuse host arrays and direct numpy calls), gives
the CPU's numbers, and never leaves the device."""

from __future__ import annotations

import numpy as np
import pytest
from op_specs import all_specs

import ember
from ember._standin import DeviceMixError, StandinArray
from ember.autograd import grad

_ALL = all_specs()


def _float_outputs(out):
    out = out if isinstance(out, tuple) else (out,)
    return [o for o in out if isinstance(o, ember.Tensor) and o.is_floating_point()]


def _host(t):
    return np.asarray(t.detach().cpu().numpy())


def _on_standin(t):
    return type(t._data) is StandinArray


def _run(spec, device, second_order):
    """Outputs, first gradients and (smooth specs) second gradients of ``spec`` on ``device``."""
    inputs = spec.inputs(device)
    diff = [t for t in inputs if isinstance(t, ember.Tensor) and t.requires_grad]
    outs = _float_outputs(spec.fn(*inputs))
    rng = np.random.default_rng(1)
    vs = [ember.tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=device) for o in outs]
    live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    gs = grad([o for o, _ in live], diff, [v for _, v in live], create_graph=second_order, allow_unused=True)
    ggs = []
    if second_order:
        used = [(g, x) for g, x in zip(gs, diff) if g is not None and g.requires_grad]
        if used:
            s = sum((g * g).sum() for g, _ in used)
            ggs = grad([s], diff, allow_unused=True)
    return outs, gs, ggs


@pytest.mark.parametrize("spec", [s for _, s in _ALL], ids=[i for i, _ in _ALL])
def test_spec_on_standin_matches_cpu_and_stays_on_device(spec):
    cpu = _run(spec, "cpu", spec.smooth)
    dev = _run(spec, "standin", spec.smooth)
    for what, a, b in zip(("output", "grad", "second-order grad"), cpu, dev):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            if x is None:
                assert y is None, what
                continue
            assert _on_standin(y), f"{what} came back on {y.device}"
            assert y.dtype == x.dtype, what
            np.testing.assert_allclose(_host(y), _host(x), rtol=1e-10, atol=1e-12, err_msg=what)


def test_standin_tensors_report_their_device():
    t = ember.ones(2, 3, device="standin")
    assert t.device == "standin" and _on_standin(t)
    assert ember.tensor([1.0, 2.0]).to("standin").device == "standin"


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a * b,
        lambda a, b: a @ b,
        lambda a, b: ember.cat([a, b]),
        lambda a, b: ember.maximum(a, b),
        lambda a, b: ember.where(a > 0, a, b),
        lambda a, b: a == b,
        lambda a, b: ember.stack([a, b]),
    ],
    ids=["add", "mul", "matmul", "cat", "maximum", "where", "eq", "stack"],
)
def test_mixing_standin_and_cpu_tensors_raises(op):
    a = ember.ones(3, device="standin")
    b = ember.ones(3)
    with pytest.raises((RuntimeError, DeviceMixError), match="device"):
        op(a, b)
    with pytest.raises((RuntimeError, DeviceMixError), match="device"):
        op(b, a)


def test_standin_data_refuses_direct_numpy_calls():
    a = ember.ones(3, device="standin")._data
    with pytest.raises(DeviceMixError, match="array_module"):
        np.sum(a)
    with pytest.raises(DeviceMixError):
        np.concatenate([a, a])
    with pytest.raises(DeviceMixError, match="host"):
        a + np.ones(3)


def test_numpy_of_standin_tensor_asks_for_cpu_first():
    t = ember.ones(3, device="standin")
    with pytest.raises(TypeError, match="cpu"):
        t.numpy()
    assert t.cpu().numpy().tolist() == [1.0, 1.0, 1.0]
    assert t.sum().item() == 3.0


def test_creation_and_random_on_standin():
    for t in (
        ember.zeros(2, device="standin"),
        ember.arange(3, device="standin"),
        ember.rand(2, device="standin"),
        ember.randn(2, 2, device="standin"),
        ember.randint(0, 5, (3,), device="standin"),
        ember.eye(2, device="standin"),
        ember.linspace(0, 1, 3, device="standin"),
        ember.full((2,), 1.5, device="standin"),
        ember.zeros_like(ember.ones(2, device="standin")),
    ):
        assert _on_standin(t)


def test_backward_accumulates_leaf_grads_on_standin():
    x = ember.tensor([1.0, -2.0, 3.0], device="standin", requires_grad=True)
    (x * x).sum().backward()
    (x * 2).sum().backward()
    assert _on_standin(x.grad)
    assert x.grad.cpu().tolist() == [4.0, -2.0, 8.0]
