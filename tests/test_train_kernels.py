"""The training step's compiled CPU kernels (`ember._cpu_kernels`) against their numpy twins,
and the trainer's gather node whose uncoalesced gradient RowAdagrad sums as it updates.

The kernel tests skip where no C++ compiler or no pybind11 exists (CI has both); the numpy
path they are compared with runs everywhere.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import ember
from ember import _cpu_kernels
from ember.errors import UserError
from ember.optim import Adagrad, RowAdagrad
from ember.pbg.autodiff import GatherRows
from ember.pbg.batch import BatchTrainer, Partition, Sampler, SharedParams
from ember.pbg.config import parse_config
from ember.pbg.model import Model
from ember.sparse import RowSparseGrad, coalesce_rows

HAVE_CXX = any(shutil.which(c) for c in filter(None, [os.environ.get("CXX"), "c++", "g++", "clang++"]))
try:
    import pybind11  # noqa: F401

    HAVE_PYBIND11 = True
except ImportError:
    HAVE_PYBIND11 = False
needs_kernels = pytest.mark.skipif(
    not (HAVE_CXX and HAVE_PYBIND11), reason="no C++ compiler or no pybind11 (the ext extra)"
)


@pytest.fixture
def numpy_twins(monkeypatch):
    monkeypatch.setattr(_cpu_kernels, "MODE", "numpy")


def _reference_row_adagrad(w, s, idx, g, clr, eps, maximize=False):
    """The numpy twin: coalesce, then RowAdagrad's row step on the unique rows."""
    w, s = w.copy(), s.copy()
    rows, vals = coalesce_rows(idx, -g if maximize else g)
    s_rows = s[rows]
    w[rows] = RowAdagrad._row_step(np, w[rows], vals, s_rows, clr, eps)
    s[rows] = s_rows
    return w, s


@needs_kernels
@pytest.mark.parametrize("dim", [1, 7, 100, 130, 300])  # below, in and above numpy's 8-wide blocks
@pytest.mark.parametrize("maximize", [False, True])
def test_row_adagrad_kernel_equals_coalesce_then_numpy_update(dim, maximize):
    rng = np.random.default_rng(dim)
    n_rows, n = 50, 400  # every row repeated about 8 times, some not at all
    w = rng.standard_normal((n_rows, dim)).astype(np.float32)
    s = rng.uniform(0, 2, n_rows).astype(np.float32)
    idx = rng.integers(0, n_rows - 5, n)
    g = rng.standard_normal((n, dim)).astype(np.float32)
    ref_w, ref_s = _reference_row_adagrad(w, s, idx, g, 0.1, 1e-10, maximize)
    assert _cpu_kernels.row_adagrad_rows_(w, s, idx, g, 0.1, 1e-10, maximize)
    np.testing.assert_allclose(w, ref_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s, ref_s, rtol=1e-6, atol=1e-7)
    assert np.array_equal(w[-5:], ref_w[-5:])  # untouched rows stay as they were


@needs_kernels
def test_row_adagrad_kernel_refuses_rows_out_of_range_and_leaves_the_table():
    w, s = np.ones((4, 3), np.float32), np.zeros(4, np.float32)
    with pytest.raises(IndexError, match="row 4 is out of range for 4 rows"):
        _cpu_kernels.row_adagrad_rows_(w, s, np.array([0, 4]), np.ones((2, 3), np.float32), 0.1, 1e-10)
    with pytest.raises(IndexError, match="row -1"):
        _cpu_kernels.row_adagrad_rows_(w, s, np.array([-1]), np.ones((1, 3), np.float32), 0.1, 1e-10)
    assert (w == 1).all() and (s == 0).all()


def test_row_adagrad_kernel_declines_what_it_does_not_take():
    f32 = np.zeros((4, 3), np.float32)
    s = np.zeros(4, np.float32)
    idx, g = np.array([1, 1]), np.ones((2, 3), np.float32)
    for args in (
        (f32.astype(np.float64), s, idx, g.astype(np.float64)),  # float64 table
        (f32.astype(np.float16), s, idx, g),  # float16 table
        (f32, s, idx.astype(np.int32), g),  # int32 ids
        (np.asfortranarray(np.zeros((4, 3), np.float32)), s, idx, g),  # not C-contiguous
        (f32, s, idx, np.ones((3, 2), np.float32).T),  # a transposed gradient
    ):
        assert _cpu_kernels.row_adagrad_rows_(*args, 0.1, 1e-10) is False
    assert (f32 == 0).all() and (s == 0).all()


def test_row_adagrad_kernels_off_says_so(numpy_twins):
    assert _cpu_kernels.get() is None
    assert _cpu_kernels.status() == "numpy (EMBER_TRAIN_KERNEL=numpy)"
    w, s = np.zeros((2, 2), np.float32), np.zeros(2, np.float32)
    assert not _cpu_kernels.row_adagrad_rows_(w, s, np.array([0]), np.ones((1, 2), np.float32), 0.1, 1e-10)


def _sparse_steps(kernels: bool, monkeypatch, coalesced: bool, dtype=np.float32, **opts):
    monkeypatch.setattr(_cpu_kernels, "MODE", "auto" if kernels else "numpy")
    rng = np.random.default_rng(3)
    table = ember.tensor(rng.standard_normal((30, 8)).astype(dtype), requires_grad=True)
    opt = RowAdagrad([table], lr=0.2, **opts)
    for _ in range(4):
        idx = rng.integers(0, 30, 25)
        g = RowSparseGrad(idx, rng.standard_normal((25, 8)).astype(np.float32), table.shape)
        table.grad = g.coalesce() if coalesced else g
        opt.step()
    return table._data, opt.state[table]["sum"]._data


@pytest.mark.parametrize("coalesced", [False, True])
@pytest.mark.parametrize("opts", [{}, {"maximize": True}, {"weight_decay": 0.01}, {"lr_decay": 0.1}])
def test_row_adagrad_takes_uncoalesced_gradients_as_their_coalesced_sum(monkeypatch, coalesced, opts):
    """Whatever path runs (kernel, numpy twin, coalesced or not), the update is the dense one."""
    w, s = _sparse_steps(True, monkeypatch, coalesced, **opts)
    w_np, s_np = _sparse_steps(False, monkeypatch, coalesced, **opts)
    np.testing.assert_allclose(w, w_np, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(s, s_np, rtol=1e-6, atol=1e-7)
    # the dense reference: the same gradients as dense tables (untouched rows do not move)
    monkeypatch.setattr(_cpu_kernels, "MODE", "numpy")
    rng = np.random.default_rng(3)
    table = ember.tensor(rng.standard_normal((30, 8)).astype(np.float32), requires_grad=True)
    opt = RowAdagrad([table], lr=0.2, **opts)
    for _ in range(4):
        idx = rng.integers(0, 30, 25)
        g = RowSparseGrad(idx, rng.standard_normal((25, 8)).astype(np.float32), table.shape)
        table.grad = g.to_dense()
        opt.step()
    if "weight_decay" not in opts:  # a dense weight decay moves every row; sparse, the touched ones
        np.testing.assert_allclose(w, table._data, rtol=1e-5, atol=1e-6)


def test_row_adagrad_float16_table_takes_the_numpy_path(monkeypatch):
    w16, s16 = _sparse_steps(True, monkeypatch, False, dtype=np.float16)
    w32, _ = _sparse_steps(True, monkeypatch, False)
    assert w16.dtype == np.float16 and s16.dtype == np.float16
    np.testing.assert_allclose(w16.astype(np.float32), w32, atol=3e-3)


def test_plain_adagrad_still_coalesces_before_its_fancy_index_update():
    t = ember.tensor(np.zeros((4, 2), np.float32), requires_grad=True)
    t.grad = RowSparseGrad(np.array([1, 1]), np.ones((2, 2), np.float32), t.shape)
    Adagrad([t], lr=1.0).step()
    # one coalesced row of 2s: s = 4, w = -2 / 2 (an uncoalesced pair would give -1 / 1 twice)
    np.testing.assert_allclose(t._data[1], [-1.0, -1.0])
    assert (t._data[[0, 2, 3]] == 0).all()


# ---- the trainer's gather node -----------------------------------------------------------------


def test_gather_rows_forward_is_rows_plus_global_and_float16_upcasts():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((6, 3)).astype(np.float16)
    glob = np.float32([1, 2, 3])
    ids = np.array([5, 0, 5])
    out = GatherRows.apply(ember.tensor(table, requires_grad=True), ember.tensor(glob), ids)
    assert out.dtype == ember.float32
    np.testing.assert_array_equal(out._data, table[ids].astype(np.float32) + glob)


def test_gather_rows_gradients_match_finite_differences():
    """float64: the table's gradient (an uncoalesced RowSparseGrad, densified) and the global
    embedding's against central differences of sum(up * rows)."""
    rng = np.random.default_rng(1)
    table0, glob0 = rng.standard_normal((5, 3)), rng.standard_normal(3)
    ids = np.array([4, 1, 4, 4, 0])
    up = rng.standard_normal((5, 3))

    def f(t, g):
        return float((up * (t[ids] + g)).sum())

    table = ember.tensor(table0, dtype=ember.float64, requires_grad=True)
    glob = ember.tensor(glob0, dtype=ember.float64, requires_grad=True)
    (GatherRows.apply(table, glob, ids) * ember.tensor(up)).sum().backward()
    assert isinstance(table.grad, RowSparseGrad) and not table.grad.coalesced
    assert table.grad.indices.tolist() == ids.tolist()  # repeats kept: the optimizer sums them
    eps = 1e-6
    for x0, analytic, which in ((table0, table.grad.to_dense()._data, 0), (glob0, glob.grad._data, 1)):
        numeric = np.zeros_like(x0)
        for k in np.ndindex(x0.shape):
            hi, lo = x0.copy(), x0.copy()
            hi[k] += eps
            lo[k] -= eps
            args_hi = (hi, glob0) if which == 0 else (table0, hi)
            args_lo = (lo, glob0) if which == 0 else (table0, lo)
            numeric[k] = (f(*args_hi) - f(*args_lo)) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_gather_rows_without_a_global_embedding_or_a_table_gradient():
    table = ember.tensor(np.ones((3, 2), np.float32))  # no grad wanted
    glob = ember.tensor(np.zeros(2, np.float32), requires_grad=True)
    GatherRows.apply(table, glob, np.array([0, 2])).sum().backward()
    assert table.grad is None
    np.testing.assert_array_equal(glob.grad._data, [2.0, 2.0])
    t = ember.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    GatherRows.apply(t, None, np.array([1])).sum().backward()
    np.testing.assert_array_equal(t.grad.to_dense()._data, [[0, 0], [1, 1], [0, 0]])


# ---- a whole training step, compiled against the numpy twins ----------------------------------


def _steps(kernels: bool, monkeypatch, n_steps=6):
    monkeypatch.setattr(_cpu_kernels, "MODE", "auto" if kernels else "numpy")
    n, r, dim = 400, 3, 16
    cfg = parse_config(
        {
            "entities": {"e": {"num_partitions": 1}},
            "relations": [
                {"name": f"r{i}", "lhs": "e", "rhs": "e", "operator": "complex_diagonal"} for i in range(r)
            ],
            "dimension": dim,
            "num_batch_negs": 10,
            "num_uniform_negs": 10,
            "batch_size": 100,
            "lr": 0.1,
            "entity_path": "unused",
            "edge_paths": ["unused"],
            "checkpoint_path": "unused",
        }
    )
    model = Model(["complex_diagonal"] * r, "dot", "softmax", dim, r, fast_layout=True)
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((n, dim)).astype(np.float32) * np.float32(0.1)
    part = Partition("e", 0, emb, np.zeros(n, np.float32), 0.1)
    theta = [ember.tensor(t, requires_grad=True) for t in model.init_relations(np, np.float32)]
    params = SharedParams(theta, {"e": ember.tensor(np.zeros(dim, np.float32), requires_grad=True)}, 0.1)
    bt = BatchTrainer(model, cfg, params, np, workers=1, all_negs_relations=[False] * r)
    sampler = Sampler(np, 0, 1)
    out = []
    for _ in range(n_steps):  # few entities: many repeated rows in every step
        lhs, rhs, rel = rng.integers(0, n, 100), rng.integers(0, n, 100), rng.integers(0, r, 100)
        out.append(bt.step(part, part, lhs, rhs, rel, None, sampler))
    return part.emb, part.state, [t._data for t in theta], params.glob["e"]._data, np.array(out)


@needs_kernels
def test_training_steps_with_the_kernels_equal_the_numpy_twins(monkeypatch):
    compiled = _steps(True, monkeypatch)
    assert _cpu_kernels.get() is not None
    twins = _steps(False, monkeypatch)
    for a, b in zip(compiled, twins):
        for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
    assert not np.array_equal(compiled[0], _steps(False, monkeypatch, n_steps=1)[0])  # steps moved it


# ---- the softmax loss with its masking fused ------------------------------------------------


def _masked_case(rng, c=4, b=5, u=6, batch_negs=True, n_ids=12):
    ids = rng.integers(0, n_ids, c * b)  # few ids: many negatives equal their positive
    parts = ([ids.reshape(c, b)] if batch_negs else []) + [rng.integers(0, n_ids, (c, u))]
    neg_ids = np.concatenate(parts, axis=1)
    k = neg_ids.shape[1]
    neg = (rng.standard_normal((c * b, k)) * 3).astype(np.float32)
    pos = (rng.standard_normal(c * b) * 3).astype(np.float32)
    return pos, neg, ids, neg_ids, b


def _twin(loss, pos, neg, ids, neg_ids, b, batch_negs, weight):
    from ember.pbg.model import BatchPlan, Model

    model = Model("none", "dot", "softmax", 2, 1)
    c = len(neg_ids)
    cand = neg_ids[:, b:] if batch_negs else neg_ids
    plan = BatchPlan(model, np.zeros(c * b, np.int64), b, ids, ids, cand, cand, batch_negs=batch_negs)
    x = neg.copy()
    np.putmask(x.reshape(c, b, -1), plan.masks["rhs"], -np.inf)
    return loss(pos, x, weight)


@needs_kernels
@pytest.mark.parametrize("batch_negs", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("c", [4, 3])  # 20 rows, four at a time; 15: three more alone
def test_fused_masked_softmax_equals_masking_then_the_numpy_loss(batch_negs, weighted, c):
    from ember.pbg.model import Softmax

    rng = np.random.default_rng(7)
    pos, neg, ids, neg_ids, b = _masked_case(rng, c=c, batch_negs=batch_negs)
    weight = rng.uniform(0.5, 2, len(pos)).astype(np.float32) if weighted else None
    loss = Softmax()
    want = _twin(loss, pos, neg, ids, neg_ids, b, batch_negs, weight)
    x = neg.copy()
    got = loss.masked(pos, x, ids, neg_ids, b, batch_negs, weight)
    assert got is not None
    assert weighted or got[2] is x  # the scores' array became their gradient (then weighted)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    masked = np.isinf(_twin(lambda p, n, w: (n,), pos, neg, ids, neg_ids, b, batch_negs, None)[0])
    gneg = got[2]
    assert masked.any() and (gneg[masked] == 0).all()  # masked negatives: no gradient
    if batch_negs:  # the chunk's diagonal (the positive itself) is always masked
        assert (gneg.reshape(len(neg_ids), b, -1)[:, np.arange(b), np.arange(b)] == 0).all()


@needs_kernels
def test_fused_masked_softmax_propagates_nan_as_numpy_does():
    from ember.pbg.model import Softmax

    rng = np.random.default_rng(8)
    pos, neg, ids, neg_ids, b = _masked_case(rng)
    neg[3, -1] = np.nan
    neg_ids[:, -1] = -1  # that negative is not masked
    loss, gpos, gneg = Softmax().masked(pos, neg.copy(), ids, neg_ids, b, True)
    assert np.isnan(loss) and np.isnan(gpos[3]) and np.isfinite(np.delete(gpos, 3)).all()


def test_fused_masked_softmax_declines_without_the_kernels(numpy_twins):
    from ember.pbg.model import Softmax

    pos, neg, ids, neg_ids, b = _masked_case(np.random.default_rng(9))
    x = neg.copy()
    assert Softmax().masked(pos, x, ids, neg_ids, b, True) is None
    assert np.array_equal(x, neg)  # untouched: the caller masks and calls the loss


@needs_kernels
def test_fused_masked_softmax_refuses_mismatched_shapes():
    pos, neg, ids, neg_ids, b = _masked_case(np.random.default_rng(10))
    with pytest.raises(ValueError, match="do not match"):
        _cpu_kernels.softmax_shift_(neg, pos, ids, neg_ids[:-1], b, True)
    with pytest.raises(ValueError, match="do not match"):
        _cpu_kernels.softmax_shift_(neg, pos, ids, neg_ids, 3, True)  # 20 rows are not chunks of 3


# ---- the positives' gradient added to the negatives' ------------------------------------------


def _addcmul_case(rng, n, d, c):
    s = rng.standard_normal(n).astype(np.float32)
    x = rng.standard_normal((n, d)).astype(np.float32)
    wide = rng.standard_normal((c, n // c + 3, d)).astype(np.float32)
    return s, x, wide[:, 1 : 1 + n // c]  # rows of a wider array: strided, not contiguous


@needs_kernels
@pytest.mark.parametrize("d", [1, 7, 100])
@pytest.mark.parametrize("base_kind", ["strided", "flat", "in place"])
def test_addcmul_rows_equals_numpys_product_then_sum(d, base_kind):
    rng = np.random.default_rng(11)
    n, c = 12, 3
    s, x, base = _addcmul_case(rng, n, d, c)
    y = np.full((n, d), np.nan, np.float32)
    if base_kind == "flat":
        base = np.ascontiguousarray(base.reshape(n, d))
    elif base_kind == "in place":
        y[...] = base.reshape(n, d)
        base = y
    want = base.reshape(n, d) + s[:, None] * x  # numpy's rounding: the product, then the sum
    assert _cpu_kernels.addcmul_rows_(y, s, x, base)
    assert np.array_equal(y, want)  # IEEE products and sums, no fused multiply-add: exact


@needs_kernels
def test_addcmul_rows_declines_what_it_does_not_take_and_refuses_mismatched_shapes():
    rng = np.random.default_rng(12)
    s, x, base = _addcmul_case(rng, 12, 5, 3)
    y = np.zeros((12, 5), np.float32)
    assert not _cpu_kernels.addcmul_rows_(y, s, x.astype(np.float64), base)
    assert not _cpu_kernels.addcmul_rows_(y, s, x[:, ::-1], base)  # x not contiguous
    assert not _cpu_kernels.addcmul_rows_(y, s, x, base[..., ::-1])  # row not contiguous
    assert (y == 0).all()  # nothing written
    with pytest.raises(ValueError, match="do not match"):
        _cpu_kernels.addcmul_rows_(y, s[:-1], x, base)
    with pytest.raises(ValueError, match="do not match"):
        _cpu_kernels.addcmul_rows_(y, s, x, base[:2])  # 8 base rows for 12


@pytest.mark.parametrize("kernels", [True, False])
@pytest.mark.parametrize("with_gb3", [True, False])
def test_dot_positives_gradient_added_equals_the_generic_comparators(monkeypatch, kernels, with_gb3):
    from ember.pbg.model import Comparator, Dot

    if kernels and not (HAVE_CXX and HAVE_PYBIND11):
        pytest.skip("no C++ compiler or no pybind11 (the ext extra)")
    monkeypatch.setattr(_cpu_kernels, "MODE", "auto" if kernels else "numpy")
    rng = np.random.default_rng(13)
    n, d, c = 20, 6, 4
    a, b = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(2))
    g, _, gb3 = _addcmul_case(rng, n, d, c)
    ga = rng.standard_normal((n, d)).astype(np.float32)
    gb3 = gb3 if with_gb3 else None
    want = (ga + g[:, None] * b, g[:, None] * a + (gb3.reshape(n, d) if with_gb3 else 0))
    generic = Comparator.pos_backward_add(Dot(), a, b, g, ga.copy(), gb3)
    got = Dot().pos_backward_add(a, b, g, ga.copy(), gb3)
    for x, y, z in zip(got, generic, want):
        assert np.array_equal(x, y) and np.array_equal(x, z)


def test_train_kernel_mode_is_checked_and_cpp_means_compiled_or_an_error(monkeypatch):
    monkeypatch.setattr(_cpu_kernels, "MODE", "fast")
    with pytest.raises(UserError, match="EMBER_TRAIN_KERNEL must be one of auto, cpp, numpy"):
        _cpu_kernels.get()
    monkeypatch.setattr(_cpu_kernels, "MODE", "cpp")
    monkeypatch.setattr(_cpu_kernels, "_module", None)
    monkeypatch.setattr(_cpu_kernels, "_failure", "CppExtensionError: no compiler")
    with pytest.raises(UserError, match="could not be built: CppExtensionError: no compiler"):
        _cpu_kernels.get()
    monkeypatch.setattr(_cpu_kernels, "MODE", "auto")
    assert _cpu_kernels.get() is None
    assert _cpu_kernels.status() == "numpy (CppExtensionError: no compiler)"


@needs_kernels
def test_crc32_kernel_equals_zlib_at_every_length_and_running_crc():
    import zlib

    assert _cpu_kernels.get() is not None
    rng = np.random.default_rng(7)
    # below, at and around the folded path's 64-byte minimum and its 16-byte steps
    for n in [*range(0, 260), 1000, 4096, (1 << 16) + 7, (1 << 20) + 63]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        for crc in (0, 1, 0x12345678, 0xFFFFFFFF):
            assert _cpu_kernels.crc32(data, crc) == zlib.crc32(data, crc), (n, crc)
    # a running CRC over pieces of any sizes is the CRC of the whole, as zlib's is
    data = rng.integers(0, 256, 100_003, dtype=np.uint8).tobytes()
    crc, at = 0, 0
    for size in (1, 63, 64, 65, 4097, 30_000):
        crc = _cpu_kernels.crc32(memoryview(data)[at : at + size], crc)
        at += size
    assert _cpu_kernels.crc32(data[at:], crc) == zlib.crc32(data)


def test_crc32_is_zlibs_with_the_kernels_off(numpy_twins):
    import zlib

    data = bytes(range(256)) * 5
    assert _cpu_kernels.crc32(data, 99) == zlib.crc32(data, 99)


def test_kernels_without_a_build_are_none_and_a_later_call_may_still_build(monkeypatch, tmp_path):
    import zlib

    from ember.utils import cpp_extension

    monkeypatch.setattr(_cpu_kernels, "MODE", "auto")
    monkeypatch.setattr(_cpu_kernels, "_module", None)
    monkeypatch.setattr(_cpu_kernels, "_failure", None)
    monkeypatch.setattr(cpp_extension, "_LOADED", {})
    monkeypatch.setenv("EMBER_EXTENSIONS_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(cpp_extension, "_compile", lambda *a, **k: pytest.fail("build=False compiled"))
    assert _cpu_kernels.get(build=False) is None
    assert _cpu_kernels._failure is None  # not remembered as a failure: a later get() builds
    assert not (tmp_path / "empty-cache").exists()  # and nothing was made on the way
    data = bytes(range(256)) * 5
    assert _cpu_kernels.crc32(data, 7) == zlib.crc32(data, 7)
