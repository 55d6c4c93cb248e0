"""ember.cuda and the cupy fast paths.

Without a GPU: the queries answer sensibly, GPU-only objects refuse clearly, the example
custom op falls back to ember ops (on the CPU and the stand-in device), and the optimizer
dispatch into ``ember._kernels`` is checked by swapping in the kernels' ``xp`` emulations
on the stand-in device. Tests marked ``gpu`` run the real kernels (``pytest -m gpu``).
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import _kernels, optim
from ember._standin import StandinArray
from ember.autograd import gradcheck
from ember.sparse import RowSparseGrad

HAS_GPU = ember.cuda.is_available()
no_gpu = pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a GPU")


# ---- queries and objects without a GPU -------------------------------------------------
@no_gpu
def test_queries_without_a_gpu_answer_zero_and_do_nothing():
    assert ember.cuda.device_count() == 0
    assert ember.cuda.memory_allocated() == ember.cuda.max_memory_allocated() == 0
    ember.cuda.reset_peak_memory_stats()
    ember.cuda.synchronize()
    ember.cuda.empty_cache()


@no_gpu
@pytest.mark.parametrize(
    "make", [ember.cuda.Stream, ember.cuda.Event, ember.cuda.current_device, ember.cuda.current_stream]
)
def test_gpu_objects_without_a_gpu_are_a_clear_error(make):
    with pytest.raises(RuntimeError, match="CUDA device requested but cupy"):
        make()


def test_stream_none_is_a_no_op_context():
    with ember.cuda.stream(None) as s:
        assert s is None


def test_pinned_empty_is_a_host_array_of_the_shape_and_dtype():
    a = ember.cuda.pinned_empty((3, 4), np.float16)
    assert type(a) is np.ndarray and a.shape == (3, 4) and a.dtype == np.float16
    a[...] = 1
    assert ember.cuda.pinned_empty(5).shape == (5,)


# ---- the custom-kernel example falls back to ember ops ---------------------------------
def _softplus_ref(x, scale, beta):
    z = beta * x
    return scale * (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / beta


@pytest.mark.parametrize("device", ["cpu", "standin"])
def test_scaled_softplus_without_gpu_uses_ember_ops_and_stays_on_device(device):
    x0 = np.linspace(-8, 8, 33).astype(np.float32)
    x = ember.tensor(x0, device=device, requires_grad=True)
    y = ember.cuda.scaled_softplus(x, 2.0, 0.5)
    y.sum().backward()
    if device == "standin":
        assert type(y._data) is StandinArray and type(x.grad._data) is StandinArray
    np.testing.assert_allclose(y.detach().cpu().numpy(), _softplus_ref(x0, 2.0, 0.5), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.detach().cpu().numpy(), 2.0 / (1 + np.exp(-0.5 * x0)), rtol=1e-5)


def test_scaled_softplus_fallback_passes_gradcheck_twice_differentiable():
    x = ember.tensor(np.random.default_rng(0).standard_normal(6), dtype=ember.float64, requires_grad=True)
    assert gradcheck(lambda t: ember.cuda.scaled_softplus(t, 1.5, 2.0), (x,))
    (g,) = ember.autograd.grad(ember.cuda.scaled_softplus(x, 1.5, 2.0).sum(), [x], create_graph=True)
    assert g.requires_grad  # ember-op backward: a Hessian-vector product is possible


def test_elementwise_kernel_compiles_lazily():
    k = ember.cuda.elementwise_kernel("T x", "T y", "y = 2 * x", "ember_test_double")
    assert k._kernel is None  # defining a kernel never needs a GPU


# ---- optimizer dispatch into the fused kernels (emulated on the stand-in) --------------
@pytest.fixture
def emulated_kernels(monkeypatch):
    """Make the stand-in device take the cupy fast paths, with each kernel replaced by
    its xp emulation; returns the names of the kernels called, in order."""
    calls = []

    def kernel(name):
        def run(*args, **kwargs):
            calls.append(name)
            return _kernels._EMULATED[name](*args, **kwargs)

        return run

    monkeypatch.setattr(_kernels, "engaged", lambda xp: xp is ember._backend.standin.xp)
    monkeypatch.setattr(_kernels, "_kernel", kernel)
    return calls


def _no_kernels(monkeypatch):
    def refuse(name):
        raise AssertionError(f"kernel {name} used off the GPU")

    monkeypatch.setattr(_kernels, "_kernel", refuse)


def _step(cls, device, w0, grads, dtype=np.float32, **kw):
    w = ember.tensor(w0.astype(dtype), device=device, requires_grad=True)
    opt = cls([w], lr=0.1, **kw)
    if dtype == np.float16:  # half-precision table, float32 optimizer state
        rows = w0.shape[:1] if cls is optim.RowAdagrad else w0.shape
        opt.state[w] = {"step": 0, "sum": ember.zeros(*rows, device=device)}
    for g in grads:
        if isinstance(g, tuple):
            idx, vals = g
            w.grad = RowSparseGrad(
                ember.tensor(idx, device=device)._data,
                ember.tensor(vals, device=device)._data,
                w.shape,
                coalesced=True,
            )
        else:
            w.grad = ember.tensor(g.astype(dtype), device=device)
        opt.step()
    return w, opt


def _grads(rng, sparse, shape=(20, 6), steps=3):
    out = []
    for _ in range(steps):
        if sparse:
            idx = np.sort(rng.choice(shape[0], 7, replace=False))
            out.append((idx, rng.standard_normal((7, shape[1])).astype(np.float32)))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out


_CASES = [
    (optim.RowAdagrad, True, ["row_sumsq", "row_update_rows"]),
    (optim.RowAdagrad, False, ["row_sumsq", "row_update_dense"]),
    (optim.Adagrad, True, ["adagrad_rows"]),
    (optim.Adagrad, False, ["adagrad_dense"]),
]


@pytest.mark.parametrize(
    "cls,sparse,kernels",
    _CASES,
    ids=["rowadagrad-sparse", "rowadagrad-dense", "adagrad-sparse", "adagrad-dense"],
)
def test_optimizer_takes_fused_path_when_engaged_and_matches_xp_path(
    cls, sparse, kernels, emulated_kernels, monkeypatch, rng
):
    w0 = rng.standard_normal((20, 6)).astype(np.float32)
    grads = _grads(rng, sparse)
    fast, fopt = _step(cls, "standin", w0, grads)
    assert emulated_kernels == kernels * len(grads)
    assert type(fast._data) is StandinArray and type(fopt.state[fast]["sum"]._data) is StandinArray
    _no_kernels(monkeypatch)
    ref, ropt = _step(cls, "cpu", w0, grads)
    np.testing.assert_allclose(fast.detach().cpu().numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        fopt.state[fast]["sum"].detach().cpu().numpy(), ropt.state[ref]["sum"].numpy(), rtol=1e-6
    )


@pytest.mark.parametrize("cls", [optim.RowAdagrad, optim.Adagrad])
def test_half_precision_table_with_float32_state_takes_fused_path(cls, emulated_kernels, rng):
    w0 = rng.standard_normal((20, 6)).astype(np.float32)
    grads = _grads(rng, True)
    w, opt = _step(cls, "standin", w0, grads, dtype=np.float16)
    assert emulated_kernels and w.dtype == ember.float16
    assert opt.state[w]["sum"].dtype == ember.float32
    ref, _ = _step(cls, "cpu", w0, grads)
    np.testing.assert_allclose(w.detach().cpu().numpy(), ref.detach().numpy(), atol=2e-2)


def test_unsupported_dtypes_and_weight_decay_take_the_xp_path(emulated_kernels, rng):
    w0 = rng.standard_normal((20, 6))
    _step(optim.RowAdagrad, "standin", w0, _grads(rng, False), dtype=np.float64)
    _step(optim.RowAdagrad, "standin", w0.astype(np.float32), _grads(rng, True), weight_decay=0.1)
    assert emulated_kernels == []


def test_cpu_never_reaches_the_kernels(monkeypatch, rng):
    _no_kernels(monkeypatch)
    for cls, sparse, _ in _CASES:
        _step(cls, "cpu", rng.standard_normal((20, 6)).astype(np.float32), _grads(rng, sparse))


def test_every_kernel_has_an_emulation_and_a_source():
    assert set(_kernels._SOURCES) == set(_kernels._EMULATED)


# ---- on a real GPU ---------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("cls,sparse,kernels", _CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gpu_fused_kernels_match_cpu(cls, sparse, kernels, dtype, rng):
    w0 = rng.standard_normal((300, 40)).astype(np.float32)
    grads = _grads(rng, sparse, (300, 40))
    fast, fopt = _step(cls, "cuda", w0, grads, dtype=dtype)
    ref, ropt = _step(cls, "cpu", w0, grads, dtype=dtype)
    tol = 1e-5 if dtype == np.float32 else 2e-3
    np.testing.assert_allclose(
        fast.detach().cpu().numpy().astype(np.float32),
        ref.detach().numpy().astype(np.float32),
        atol=tol,
        rtol=tol,
    )
    np.testing.assert_allclose(
        fopt.state[fast]["sum"].detach().cpu().numpy(), ropt.state[ref]["sum"].numpy(), rtol=1e-4
    )


@pytest.mark.gpu
def test_gpu_scaled_softplus_kernel_matches_ember_ops():
    x0 = np.linspace(-30, 30, 1001).astype(np.float32)
    x = ember.tensor(x0, device="cuda", requires_grad=True)
    y = ember.cuda.scaled_softplus(x, 2.0, 0.5)
    y.sum().backward()
    np.testing.assert_allclose(y.detach().cpu().numpy(), _softplus_ref(x0, 2.0, 0.5), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.detach().cpu().numpy(), 2.0 / (1 + np.exp(-0.5 * x0)), rtol=1e-5)


@pytest.mark.gpu
def test_gpu_streams_events_pinned_and_peak_memory():
    cuda = ember.cuda
    assert cuda.current_device() == 0
    cuda.reset_peak_memory_stats()
    base = cuda.memory_allocated()
    host = cuda.pinned_empty((1 << 20,), np.float32)
    host[...] = 3
    s = cuda.Stream()
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    with cuda.stream(s):
        start.record(s)
        dev = ember.tensor(host, device="cuda")
        end.record(s)
    cuda.current_stream().wait_stream(s)
    end.synchronize()
    assert start.elapsed_time(end) >= 0 and s.query()
    assert float(dev.sum().item()) == 3 * (1 << 20)
    assert cuda.max_memory_allocated() >= base + host.nbytes
    del dev
    cuda.reset_peak_memory_stats()
    assert cuda.max_memory_allocated() == cuda.memory_allocated()
