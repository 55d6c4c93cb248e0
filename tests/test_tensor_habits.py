"""PyTorch habits on the Tensor: ``.data``, ``contiguous()``, ``type()``, in-place samplers,
fills, scatters and the fused pointwise updates that optimizers and training loops write."""

from __future__ import annotations

import numpy as np
import pytest

import ember

# ---- .data --------------------------------------------------------------------------------


def test_data_is_a_detached_tensor_sharing_storage():
    p = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = p.data
    assert type(d) is ember.Tensor and not d.requires_grad and d.grad_fn is None
    d.add_(1.0)  # the PyTorch idiom p.data.add_(...) writes into p
    assert np.array_equal(p.detach().numpy(), [2.0, 3.0, 4.0])
    assert p.requires_grad and p.is_leaf


def test_data_inplace_is_not_seen_by_autograd_version_checks():
    # as torch: .data has its own version counter, so an update through it does not make
    # a backward that saved p fail (that is the difference from detach())
    p = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (p * p).sum()
    p.data.mul_(10.0)
    y.backward()
    assert np.allclose(p.grad.numpy(), [20.0, 40.0])  # the saved p is the same storage
    q = ember.tensor([1.0, 2.0], requires_grad=True)
    z = (q * q).sum()
    q.detach().mul_(10.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


def test_grad_data_zero_and_data_assignment():
    p = ember.tensor([1.0, 2.0], requires_grad=True)
    (p * 3).sum().backward()
    p.grad.data.zero_()
    assert np.array_equal(p.grad.numpy(), [0.0, 0.0])
    p.data = ember.tensor([5.0, 6.0, 7.0])
    assert p.shape == (3,) and p.requires_grad and p.is_leaf
    p.grad = None
    (p * p).sum().backward()
    assert np.allclose(p.grad.numpy(), [10.0, 12.0, 14.0])


def test_data_setter_refuses_a_raw_array_and_an_integer_tensor_on_a_grad_tensor():
    p = ember.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="has to be a tensor"):
        p.data = np.zeros(2, np.float32)
    with pytest.raises(RuntimeError, match="floating point"):
        p.data = ember.tensor([1, 2])


def test_optimizer_style_update_through_data_under_no_grad():
    w = ember.ones(3, requires_grad=True)
    (w * ember.tensor([1.0, 2.0, 3.0])).sum().backward()
    with ember.no_grad():
        w.data -= 0.5 * w.grad.data
    assert np.allclose(w.detach().numpy(), [0.5, 0.0, -0.5])
    assert w.requires_grad and w.is_leaf


# ---- contiguous / type --------------------------------------------------------------------


def test_contiguous_copies_a_transposed_view_so_view_works():
    x = ember.arange(6.0).reshape(2, 3)
    t = x.t()
    assert not t.is_contiguous()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        t.view(-1)
    c = t.contiguous()
    assert c.is_contiguous() and np.array_equal(c.view(-1).numpy(), [0, 3, 1, 4, 2, 5])
    assert x.contiguous() is x  # no copy when already contiguous


def test_contiguous_is_differentiable():
    x = ember.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (x.t().contiguous().view(-1) * ember.arange(6.0, dtype=ember.float64)).sum().backward()
    assert np.array_equal(x.grad.numpy(), [[0, 2, 4], [1, 3, 5]])


def test_contiguous_refuses_other_memory_formats():
    with pytest.raises(ValueError, match="C order only"):
        ember.zeros(1, 2, 2, 2).contiguous(memory_format="channels_last")


@pytest.mark.parametrize(
    "dtype,name",
    [
        ("float32", "FloatTensor"),
        ("float64", "DoubleTensor"),
        ("float16", "HalfTensor"),
        ("int64", "LongTensor"),
        ("int32", "IntTensor"),
        ("uint8", "ByteTensor"),
        ("bool", "BoolTensor"),
    ],
)
def test_type_names_as_torch(dtype, name):
    t = ember.zeros(2, dtype=getattr(ember, dtype))
    assert t.type() == f"ember.{name}"


def test_type_casts_with_a_dtype_or_a_name():
    x = ember.tensor([1.5, 2.5])
    assert x.type(ember.float32) is x
    assert x.type(ember.int64).dtype == np.int64
    assert x.type("ember.DoubleTensor").dtype == np.float64
    assert x.type("torch.LongTensor").tolist() == [1, 2]
    with pytest.raises(ValueError, match="invalid type"):
        x.type("numpy.FloatTensor")


# ---- in-place samplers --------------------------------------------------------------------


def test_samplers_fill_in_place_with_the_right_distribution():
    g = ember.Generator().manual_seed(0)
    x = ember.empty(20000, dtype=ember.float64)
    buf = x._data
    x.uniform_(-2.0, 3.0, generator=g)
    assert x._data is buf and -2.0 <= x.min().item() and x.max().item() < 3.0
    assert abs(x.mean().item() - 0.5) < 0.05
    x.normal_(1.0, 2.0, generator=g)
    assert abs(x.mean().item() - 1.0) < 0.06 and abs(x.std().item() - 2.0) < 0.06
    x.exponential_(4.0, generator=g)
    assert x.min().item() >= 0 and abs(x.mean().item() - 0.25) < 0.01
    x.bernoulli_(0.3, generator=g)
    assert set(np.unique(x.numpy())) == {0.0, 1.0} and abs(x.mean().item() - 0.3) < 0.02
    x.random_(3, 7, generator=g)
    assert set(np.unique(x.numpy())) == {3.0, 4.0, 5.0, 6.0}
    x.random_(4, generator=g)  # one argument: [0, to)
    assert set(np.unique(x.numpy())) == {0.0, 1.0, 2.0, 3.0}


def test_samplers_are_reproducible_with_a_seeded_generator():
    a = ember.empty(5).normal_(generator=ember.Generator().manual_seed(3))
    b = ember.empty(5).normal_(generator=ember.Generator().manual_seed(3))
    assert np.array_equal(a.numpy(), b.numpy())


def test_bernoulli_with_a_tensor_of_probabilities():
    p = ember.tensor([0.0, 1.0, 0.0, 1.0])
    assert ember.empty(4).bernoulli_(p).tolist() == [0.0, 1.0, 0.0, 1.0]


def test_random_defaults_stay_exact_in_the_dtype():
    x = ember.empty(1000, dtype=ember.float32).random_(generator=ember.Generator().manual_seed(1))
    v = x.numpy()
    assert np.all(v == np.round(v)) and v.min() >= 0 and v.max() <= 2**24
    b = ember.empty(50, dtype=ember.uint8).random_()
    assert b.dtype == np.uint8


def test_sampler_errors_are_pytorch_like():
    with pytest.raises(RuntimeError, match="from=3 > to=1"):
        ember.empty(2).uniform_(3, 1)
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        ember.empty(2).normal_(0, -1)
    with pytest.raises(RuntimeError, match="lambda > 0.0"):
        ember.empty(2).exponential_(0)
    with pytest.raises(RuntimeError, match="p to be in"):
        ember.empty(2).bernoulli_(1.5)
    with pytest.raises(RuntimeError, match="floating point"):
        ember.zeros(2, dtype=ember.int64).normal_()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        ember.zeros(2, requires_grad=True).uniform_()


def test_init_of_a_parameter_under_no_grad_keeps_it_a_leaf():
    w = ember.zeros(3, 4, requires_grad=True)
    with ember.no_grad():
        w.uniform_(-0.1, 0.1)
    assert w.is_leaf and w.requires_grad and w.abs().max().item() <= 0.1


def test_overwriting_a_non_leaf_cuts_its_graph():
    a = ember.ones(3, requires_grad=True)
    y = a * 2
    y.normal_()
    assert y.grad_fn is None and not y.requires_grad


# ---- scatters and fills -------------------------------------------------------------------


def test_scatter_inplace_as_torch_docs_example():
    src = ember.arange(1.0, 11.0).reshape(2, 5)
    index = ember.tensor([[0, 1, 2, 0]])
    out = ember.zeros(3, 5, dtype=src.dtype).scatter_(0, index, src)
    assert out.tolist() == [[1, 0, 0, 4, 0], [0, 2, 0, 0, 0], [0, 0, 3, 0, 0]]
    out2 = ember.full((2, 4), 2.0).scatter_(1, ember.tensor([[2], [3]]), 1.23, reduce="multiply")
    np.testing.assert_allclose(out2.numpy(), [[2, 2, 2.46, 2], [2, 2, 2, 2.46]], rtol=1e-6)
    out3 = ember.full((2, 4), 2.0).scatter_(1, ember.tensor([[2], [3]]), 1.23, reduce="add")
    np.testing.assert_allclose(out3.numpy(), [[2, 2, 3.23, 2], [2, 2, 2, 3.23]], rtol=1e-6)
    with pytest.raises(ValueError, match="'add' or 'multiply'"):
        ember.zeros(2).scatter_(0, ember.tensor([0]), 1.0, reduce="max")


def test_scatter_add_inplace_accumulates_repeated_indices():
    x = ember.zeros(3).scatter_add_(0, ember.tensor([0, 0, 2]), ember.tensor([1.0, 2.0, 5.0]))
    assert x.tolist() == [3.0, 0.0, 5.0]


def test_index_fill_and_masked_fill_inplace():
    x = ember.ones(3, 4)
    x.index_fill_(1, ember.tensor([0, 3]), -1.0)
    assert x.tolist() == [[-1, 1, 1, -1]] * 3
    x.masked_fill_(x < 0, 9.0)
    assert x.tolist() == [[9, 1, 1, 9]] * 3
    with pytest.raises(IndexError, match="Index is supposed to be a vector"):
        x.index_fill_(0, ember.tensor([[0]]), 1.0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.index_fill_(2, ember.tensor([0]), 1.0)


def test_fill_zero_copy_clamp_inplace_keep_the_buffer():
    x = ember.tensor([-2.0, 0.5, 3.0])
    buf = x._data
    x.clamp_(-1.0, 1.0)
    assert x.tolist() == [-1.0, 0.5, 1.0]
    x.copy_(ember.tensor([7, 8, 9]))  # casts
    assert x.tolist() == [7.0, 8.0, 9.0] and x.dtype == np.float32
    x.fill_(2.5)
    assert x.tolist() == [2.5] * 3
    x.zero_()
    assert x.tolist() == [0.0] * 3 and x._data is buf


# ---- fused pointwise updates --------------------------------------------------------------


def test_addcmul_addcdiv_lerp_match_numpy_in_and_out_of_place():
    r = np.random.default_rng(0)
    a, b, c = (r.standard_normal((2, 3)).astype(np.float32) for _ in range(3))
    c = np.abs(c) + 0.5
    A, B, C = ember.tensor(a), ember.tensor(b), ember.tensor(c)
    np.testing.assert_allclose(A.addcmul(B, C, value=0.3).numpy(), a + 0.3 * b * c, rtol=1e-6)
    np.testing.assert_allclose(ember.addcdiv(A, B, C, value=-2).numpy(), a - 2 * b / c, rtol=1e-6)
    np.testing.assert_allclose(A.lerp(B, 0.75).numpy(), a + 0.75 * (b - a), rtol=1e-6)
    x = A.clone()
    x.addcmul_(B, C, value=0.3).addcdiv_(B, C).lerp_(B, C)
    y = a + 0.3 * b * c
    y = y + b / c
    y = y + c * (b - y)
    np.testing.assert_allclose(x.numpy(), y, rtol=1e-5)
    assert x.dtype == np.float32


def test_adam_style_update_with_fused_methods_under_no_grad():
    p = ember.ones(4, requires_grad=True)
    g = ember.tensor([1.0, -2.0, 3.0, -4.0])
    m, v = ember.zeros(4), ember.zeros(4)
    with ember.no_grad():
        m.mul_(0.9).add_(g, alpha=0.1)
        v.mul_(0.999).addcmul_(g, g, value=0.001)
        p.addcdiv_(m, v.sqrt().add_(1e-8), value=-0.01)
    gn = g.numpy()
    expect = 1 - 0.01 * (0.1 * gn) / (np.sqrt(0.001 * gn * gn) + 1e-8)
    np.testing.assert_allclose(p.detach().numpy(), expect, rtol=1e-5)
    assert p.is_leaf


def test_fused_inplace_shape_mismatch_is_an_error():
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        ember.zeros(3).addcmul_(ember.ones(2, 3), ember.ones(3))


def test_addcdiv_refuses_integer_division():
    with pytest.raises(RuntimeError, match="Integer division"):
        ember.addcdiv(ember.zeros(2), ember.tensor([1, 2]), ember.tensor([1, 2]))
