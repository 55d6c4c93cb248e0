"""Tensor basics: dtypes, devices, conversions, DLPack, creation functions, seeded RNG."""

from __future__ import annotations

import numpy as np
import pytest

import ember

DTYPES = [
    ember.bool,
    ember.int8,
    ember.int16,
    ember.int32,
    ember.int64,
    ember.uint8,
    ember.float16,
    ember.float32,
    ember.float64,
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_round_trips(dtype, device):
    t = ember.tensor([0, 1, 1], dtype=dtype, device=device)
    assert t.dtype == dtype and t.device == device
    assert t.cpu().numpy().dtype == dtype
    assert ember.zeros(2, dtype=dtype).dtype == dtype


def test_default_dtype_is_float32():
    assert ember.tensor([1.0, 2.0]).dtype == ember.float32
    assert ember.tensor(1.5).dtype == ember.float32
    assert ember.zeros(2).dtype == ember.float32
    assert ember.rand(2).dtype == ember.float32
    assert ember.arange(0, 1, 0.5).dtype == ember.float32
    assert ember.tensor([1, 2]).dtype == ember.int64
    assert ember.tensor([True]).dtype == ember.bool
    assert ember.tensor(np.zeros(2)).dtype == ember.float64  # numpy's dtype is kept


def test_device_parsing():
    assert ember.device("cpu").type == "cpu"
    d = ember.device("cuda:1")
    assert (d.type, d.index, str(d)) == ("cuda", 1, "cuda:1")
    assert ember.device("cuda") == "cuda:0"
    with pytest.raises(ValueError, match="unknown device"):
        ember.device("tpu")
    with pytest.raises(ValueError):
        ember.device("cuda:x")


@pytest.mark.skipif(ember.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_one_line_error_saying_why():
    for make in (
        lambda: ember.zeros(2, device="cuda"),
        lambda: ember.ones(2).cuda(),
        lambda: ember.ones(2).to("cuda:0"),
    ):
        with pytest.raises(RuntimeError) as e:
            make()
        msg = str(e.value)
        assert "\n" not in msg and "CUDA" in msg
        assert "not installed" in msg or "no CUDA GPU" in msg


@pytest.mark.gpu
@pytest.mark.skipif(not ember.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_round_trip():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0" and y.is_cuda
    (y * y).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_to_cpu_numpy_item_tolist(device):
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert x.to(ember.float64).dtype == ember.float64
    assert x.to("cpu").device == "cpu"
    assert x.to(device) is x
    assert x.cpu().numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x[1, 0].item() == 3.0 and isinstance(x[1, 0].item(), float)
    assert ember.tensor(3).item() == 3
    other = ember.zeros(1, dtype=ember.float64, device=device)
    assert x.to(other).dtype == ember.float64
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()


def test_numpy_refuses_tensors_requiring_grad():
    x = ember.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0]


def test_dlpack_round_trip_with_numpy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = ember.from_dlpack(a)
    assert t.shape == (2, 3) and t.dtype == ember.float32
    a[0, 0] = 42.0  # shares memory
    assert t[0, 0].item() == 42.0
    back = np.from_dlpack(t)
    np.testing.assert_array_equal(back, a)
    assert ember.from_dlpack(t).tolist() == t.tolist()


def test_from_numpy_shares_memory():
    a = np.zeros(3)
    t = ember.from_numpy(a)
    a[1] = 5.0
    assert t.tolist() == [0.0, 5.0, 0.0] and t.dtype == ember.float64
    with pytest.raises(TypeError):
        ember.from_numpy([1, 2])


def test_creation_functions(device):
    kw = {"device": device}
    assert ember.tensor([[1, 2]], **kw).shape == (1, 2)
    assert ember.asarray([1.0, 2.0], **kw).tolist() == [1.0, 2.0]
    assert ember.zeros(2, 3, **kw).tolist() == [[0.0] * 3] * 2
    assert ember.ones((2,), **kw).tolist() == [1.0, 1.0]
    assert ember.full((2,), 7, **kw).dtype == ember.int64
    assert ember.full((2,), 7.5, **kw).tolist() == [7.5, 7.5]
    assert ember.empty(2, 2, **kw).shape == (2, 2)
    x = ember.ones(2, 3, dtype=ember.float64, **kw)
    for like in (ember.zeros_like, ember.ones_like, ember.empty_like):
        y = like(x)
        assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device)
    assert ember.full_like(x, 2.0).tolist() == [[2.0] * 3] * 2
    assert ember.arange(5, **kw).tolist() == [0, 1, 2, 3, 4]
    assert ember.arange(1, 7, 2, **kw).tolist() == [1, 3, 5]
    np.testing.assert_allclose(ember.linspace(0, 1, 5, **kw).cpu().numpy(), np.linspace(0, 1, 5))
    assert ember.eye(2, 3, **kw).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert ember.rand(2, 3, **kw).shape == (2, 3)
    assert ember.randn(4, **kw).shape == (4,)
    r = ember.randint(0, 10, (50,), **kw)
    assert r.dtype == ember.int64 and 0 <= r.min().item() and r.max().item() < 10
    assert ember.randint(3, (4,), **kw).max().item() < 3  # randint(high, size)
    n = ember.normal(5.0, 0.1, (1000,), **kw)
    assert abs(n.mean().item() - 5.0) < 0.05
    u = ember.uniform(-2.0, -1.0, (100,), **kw)
    assert -2.0 <= u.min().item() and u.max().item() < -1.0


def test_tensor_requires_grad_and_asarray_shares():
    t = ember.tensor([1.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf
    assert ember.asarray(t) is t
    assert ember.tensor(t)._data is not t._data  # tensor() always copies


def test_manual_seed_reproduces():
    ember.manual_seed(123)
    a = ember.randn(5).tolist(), ember.rand(3).tolist(), ember.randint(0, 100, (4,)).tolist()
    ember.manual_seed(123)
    b = ember.randn(5).tolist(), ember.rand(3).tolist(), ember.randint(0, 100, (4,)).tolist()
    assert a == b


def test_generator_objects_are_independent_and_reproducible():
    g1 = ember.Generator().manual_seed(7)
    g2 = ember.Generator().manual_seed(7)
    assert ember.randn(4, generator=g1).tolist() == ember.randn(4, generator=g2).tolist()
    ember.manual_seed(0)
    x = ember.rand(3, generator=g1).tolist()
    assert ember.rand(3, generator=g2).tolist() == x
    assert g1.initial_seed() == 7


def test_shape_metadata():
    x = ember.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.dim() == 3
    assert x.numel() == 24 and x.size(1) == 3 and len(x) == 2
    assert ember.is_tensor(x) and ember.is_floating_point(x)


def test_repr_mentions_dtype_when_not_default():
    assert "float64" in repr(ember.zeros(2, dtype=ember.float64))
