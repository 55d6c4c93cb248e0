"""ember.sparse: the embedding lookup, its dense and sparse row gradients, coalescing."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import ember
from ember import sparse
from ember.sparse import RowSparseGrad, coalesce_rows, embedding


def _dense_reference(rows, dim, batches, upstream):
    """Gradient of sum(upstream_i * W[batch_i]) over lookups, as a numpy index-add."""
    g = np.zeros((rows, dim))
    for b, u in zip(batches, upstream, strict=True):
        np.add.at(g, b.reshape(-1), u.reshape(-1, dim))
    return g


def test_lookup_shape_is_indices_shape_plus_dim(rng):
    w = ember.tensor(rng.standard_normal((10, 4)))
    idx = rng.integers(0, 10, size=(2, 3, 5))
    out = embedding(w, ember.tensor(idx))
    assert out.shape == (2, 3, 5, 4)
    assert np.array_equal(out._data, w._data[idx])


@pytest.mark.parametrize("use_sparse", [False, True])
def test_gradient_equals_index_add_reference(rng, use_sparse):
    w = ember.tensor(rng.standard_normal((20, 3)), requires_grad=True)
    idx = rng.integers(0, 20, size=(4, 6))
    up = rng.standard_normal((4, 6, 3))
    (embedding(w, ember.tensor(idx), sparse=use_sparse) * ember.tensor(up)).sum().backward()
    expect = _dense_reference(20, 3, [idx], [up])
    if use_sparse:
        assert isinstance(w.grad, RowSparseGrad)
        np.testing.assert_allclose(w.grad.to_dense()._data, expect, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_allclose(w.grad._data, expect, rtol=1e-12, atol=1e-15)


def test_sparse_gradient_holds_only_touched_rows_coalesced(rng):
    w = ember.randn(1000, 8, requires_grad=True)
    idx = np.array([[7, 3, 7], [500, 3, 7]])
    embedding(w, ember.tensor(idx), sparse=True).sum().backward()
    g = w.grad
    assert isinstance(g, RowSparseGrad) and g._ember_sparse
    assert g.shape == (1000, 8) and g.dtype == np.float32 and g.device == "cpu"
    assert g.coalesced and g.indices.dtype == np.int64
    assert np.array_equal(g.indices, [3, 7, 500])  # unique, sorted
    assert g.values.shape == (3, 8)
    assert np.array_equal(g.values[:, 0], [2.0, 3.0, 1.0])  # duplicates summed


def test_sparse_backward_never_allocates_a_table_sized_array():
    rows, dim = 400_000, 32  # 51 MB table
    w = ember.zeros(rows, dim, requires_grad=True)
    idx = ember.tensor(np.arange(0, rows, 997)[:300])
    out = embedding(w, idx, sparse=True)
    tracemalloc.start()
    out.sum().backward()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < rows * dim * 4 / 50, f"backward peaked at {peak} bytes"
    assert w.grad.values.shape == (300, dim)


def test_accumulates_over_two_lookups_in_one_graph(rng):
    w = ember.tensor(rng.standard_normal((30, 4)), requires_grad=True)
    a, b = rng.integers(0, 30, size=5), rng.integers(0, 30, size=(2, 3))
    ua, ub = rng.standard_normal((5, 4)), rng.standard_normal((2, 3, 4))
    loss = (embedding(w, ember.tensor(a), sparse=True) * ember.tensor(ua)).sum() + (
        embedding(w, ember.tensor(b), sparse=True) * ember.tensor(ub)
    ).sum()
    loss.backward()
    assert isinstance(w.grad, RowSparseGrad) and w.grad.coalesced
    assert np.array_equal(w.grad.indices, np.unique(np.concatenate([a, b.ravel()])))
    np.testing.assert_allclose(w.grad.to_dense()._data, _dense_reference(30, 4, [a, b], [ua, ub]))


def test_accumulates_across_backward_calls_and_with_dense_gradients(rng):
    w = ember.tensor(rng.standard_normal((10, 2)), requires_grad=True)
    embedding(w, ember.tensor([1, 2]), sparse=True).sum().backward()
    embedding(w, ember.tensor([2, 3]), sparse=True).sum().backward()
    assert isinstance(w.grad, RowSparseGrad)
    assert np.array_equal(w.grad.indices, [1, 2, 3]) and np.array_equal(w.grad.values[:, 0], [1, 2, 1])
    (w * 1.0).sum().backward()  # a dense gradient joins: the sum is dense
    assert type(w.grad) is ember.Tensor
    assert np.array_equal(w.grad._data[:5, 0], [1, 2, 3, 2, 1])
    w.grad = None
    (w * 1.0).sum().backward()
    embedding(w, ember.tensor([0]), sparse=True).sum().backward()  # dense first, then sparse
    assert np.array_equal(w.grad._data[:2, 0], [2, 1])


@pytest.mark.parametrize("use_sparse", [False, True])
def test_padding_idx_rows_get_no_gradient(use_sparse):
    w = ember.ones(6, 3, requires_grad=True)
    out = embedding(w, ember.tensor([[0, 2], [2, 5]]), sparse=use_sparse, padding_idx=2)
    assert np.array_equal(out._data[0, 1], [1, 1, 1])  # the lookup itself is unchanged
    out.sum().backward()
    dense = w.grad.to_dense()._data if use_sparse else w.grad._data
    assert np.array_equal(dense[:, 0], [1, 0, 0, 0, 0, 1])
    if use_sparse:
        assert 2 not in w.grad.indices.tolist()


def test_negative_padding_idx_counts_from_the_end():
    w = ember.ones(4, 2, requires_grad=True)
    embedding(w, ember.tensor([3, 1]), padding_idx=-1).sum().backward()
    assert np.array_equal(w.grad._data[:, 0], [0, 1, 0, 0])


def test_max_norm_renormalizes_looked_up_rows_in_place():
    w = ember.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], requires_grad=True)
    embedding(w, ember.tensor([0, 1]), max_norm=1.0)
    norms = np.linalg.norm(w._data, axis=1)
    np.testing.assert_allclose(norms[:2], [1.0, 0.5], rtol=1e-6)
    assert norms[2] == 10.0  # not looked up: untouched


def test_sparse_flag_on_non_leaf_weight_falls_back_to_dense(rng):
    base = ember.tensor(rng.standard_normal((5, 2)), requires_grad=True)
    embedding(base * 2.0, ember.tensor([1, 1]), sparse=True).sum().backward()
    assert type(base.grad) is ember.Tensor
    assert np.array_equal(base.grad._data[:, 0], [0, 4, 0, 0, 0])


def test_double_backward_through_dense_gradient(rng):
    w = ember.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    y = (embedding(w, ember.tensor([0, 2, 2])) ** 2).sum()
    (gw,) = ember.autograd.grad(y, [w], create_graph=True)
    gw.sum().backward()
    assert np.array_equal(w.grad._data[:, 0], [2, 0, 4, 0])


def test_lookup_and_gradient_on_standin_device():
    w = ember.randn(8, 3).to("standin").requires_grad_()
    out = embedding(w, ember.tensor([1, 5, 1], device="standin"), sparse=True)
    assert out.device == "standin"
    out.sum().backward()
    assert w.grad.device == "standin" and w.grad.to_dense().device == "standin"
    w.grad = None
    embedding(w, ember.tensor([1, 5, 1], device="standin")).sum().backward()
    assert w.grad.device == "standin"


# ---- RowSparseGrad and coalescing ----------------------------------------------------------------


def test_coalesce_sums_duplicates_and_sorts(rng):
    idx = rng.integers(0, 50, size=300)
    vals = rng.standard_normal((300, 5)).astype(np.float32)
    rows, sums = coalesce_rows(idx, vals)
    expect = np.zeros((50, 5), np.float64)
    np.add.at(expect, idx, vals.astype(np.float64))
    assert np.array_equal(rows, np.unique(idx))
    np.testing.assert_allclose(sums, expect[rows], rtol=1e-5, atol=1e-5)
    assert sums.dtype == np.float32


def test_coalesce_by_add_at_gives_the_csr_products_result(rng, monkeypatch):
    idx = rng.integers(0, 40, size=200)
    vals = rng.standard_normal((200, 3, 2))
    with_scipy = coalesce_rows(idx, vals)
    monkeypatch.setattr(sparse, "_USE_CSR", False)
    without = coalesce_rows(idx, vals)
    assert np.array_equal(with_scipy[0], without[0])
    np.testing.assert_allclose(with_scipy[1], without[1], rtol=1e-12, atol=1e-12)
    assert without[1].shape == (len(without[0]), 3, 2)


def test_row_sparse_grad_addition_and_dense_conversion():
    a = RowSparseGrad(np.array([4, 1]), np.ones((2, 2)), (6, 2))
    b = RowSparseGrad(np.array([1, 5]), 2 * np.ones((2, 2)), (6, 2))
    c = a + b
    assert c.coalesced and np.array_equal(c.indices, [1, 4, 5])
    assert np.array_equal(c.values[:, 0], [3, 1, 2])
    d = a + ember.ones(6, 2)
    assert type(d) is ember.Tensor and np.array_equal(d._data[:, 0], [1, 2, 1, 1, 2, 1])
    assert np.array_equal(a.to_dense()._data[:, 1], [0, 1, 0, 0, 1, 0])
    with pytest.raises(RuntimeError, match="shapes"):
        a + RowSparseGrad(np.array([0]), np.ones((1, 2)), (7, 2))
    with pytest.raises(ValueError, match="do not match"):
        RowSparseGrad(np.array([0, 1]), np.ones((3, 2)), (6, 2))


# ---- bag_mean: the mean of bags of rows (featurized entities) ---------------------------
_BAG_IDX = np.array([3, 1, 3, 7, 0, 7, 7, 2])
_BAG_OFF = np.array([0, 3, 3, 4, 8])  # bags [3, 1, 3], [], [7], [0, 7, 7, 2]


def _bag_reference(w, idx, off):
    return np.stack(
        [w[idx[a:b]].mean(0) if b > a else np.zeros(w.shape[1], w.dtype) for a, b in zip(off, off[1:])]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_bag_mean_is_the_mean_of_each_bag_a_repeated_row_counting_twice(rng, dtype):
    w = rng.standard_normal((9, 4)).astype(dtype)
    out = ember.sparse.bag_mean(ember.tensor(w), _BAG_IDX, _BAG_OFF)
    assert out.shape == (4, 4) and out.dtype == dtype
    tol = 1e-3 if dtype == np.float16 else 1e-6
    np.testing.assert_allclose(out.numpy(), _bag_reference(w, _BAG_IDX, _BAG_OFF), rtol=tol, atol=tol)


@pytest.mark.parametrize("device", ["cpu", "standin"])
def test_bag_mean_sparse_gradient_is_g_over_bag_size_per_occurrence(rng, device):
    w0 = rng.standard_normal((9, 4))
    g = rng.standard_normal((4, 4))
    dense = ember.tensor(w0, device=device, requires_grad=True)
    out = ember.sparse.bag_mean(
        dense, ember.tensor(_BAG_IDX, device=device), ember.tensor(_BAG_OFF, device=device)
    )
    (out * ember.tensor(g, device=device)).sum().backward()
    sp = ember.tensor(w0, device=device, requires_grad=True)
    out = ember.sparse.bag_mean(
        sp, ember.tensor(_BAG_IDX, device=device), ember.tensor(_BAG_OFF, device=device), sparse=True
    )
    assert out.device == device
    (out * ember.tensor(g, device=device)).sum().backward()
    grad = sp.grad
    assert isinstance(grad, RowSparseGrad) and grad.coalesced and grad.device == device
    np.testing.assert_array_equal(ember.tensor(grad.indices).cpu().numpy(), [0, 1, 2, 3, 7])
    # by hand: row 3 gets 2 * g[0] / 3, row 7 gets g[2] / 1 + 2 * g[3] / 4
    expect = np.zeros_like(w0)
    expect[3] = 2 * g[0] / 3
    expect[1] = g[0] / 3
    expect[7] = g[2] + 2 * g[3] / 4
    expect[0] = expect[2] = g[3] / 4
    np.testing.assert_allclose(grad.to_dense().cpu().numpy(), expect, atol=1e-12)
    np.testing.assert_allclose(dense.grad.cpu().numpy(), expect, atol=1e-12)


def test_bag_mean_refuses_bad_offsets_and_indices():
    w = ember.randn(5, 2)
    with pytest.raises(ValueError, match="offsets must run from 0 to len"):
        ember.sparse.bag_mean(w, np.array([1, 2]), np.array([0, 1]))
    with pytest.raises(TypeError, match="must be integers"):
        ember.sparse.bag_mean(w, np.array([1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="indices must be 1-D"):
        ember.sparse.bag_mean(w, np.array([[1]]), np.array([0, 1]))
    with pytest.raises(TypeError, match="weight must be a Tensor"):
        ember.sparse.bag_mean(np.zeros((5, 2)), np.array([1]), np.array([0, 1]))
