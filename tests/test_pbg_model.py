"""Operators, comparators, losses and the fused chunked loss: gradients checked
numerically (float64) and scores checked against a direct numpy computation."""

import numpy as np
import pytest

import ember
from ember.autograd import gradcheck
from ember.pbg.autodiff import ChunkedLoss, apply_operator, compare, loss_of
from ember.pbg.model import (
    COMPARATORS,
    LOSSES,
    OPERATORS,
    BatchPlan,
    Biased,
    Model,
)

D = 6


def t(a, grad=True):
    return ember.tensor(np.asarray(a, np.float64), dtype=ember.float64, requires_grad=grad)


def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_gradients_match_finite_differences(name):
    r = rng()
    op = OPERATORS[name](D)
    theta = op.init(3, np, np.float64) + 0.3 * r.standard_normal((3, op.num_params()))
    x, th = t(r.standard_normal((5, D))), t(theta, grad=op.num_params() > 0)
    rel = np.array([0, 2, 1, 2, 0])
    assert gradcheck(lambda x, th: apply_operator(name, x, th, rel), (x, th))


def _numpy_operator(name, x, th):
    if name == "none":
        return x
    if name == "translation":
        return x + th
    if name == "diagonal":
        return x * th
    if name in ("linear", "affine"):
        y = np.einsum("nij,nj->ni", th[:, : D * D].reshape(-1, D, D), x)
        return y + th[:, D * D :] if name == "affine" else y
    h = D // 2  # PBG's layout: real parts, then imaginary parts
    z = x[:, :h] + 1j * x[:, h:]
    w = th[:, :h] + 1j * th[:, h:] if name == "complex_diagonal" else np.exp(1j * th)
    y = z * w
    return np.concatenate([y.real, y.imag], axis=1)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_equals_numpy(name):
    r = rng()
    op = OPERATORS[name](D)
    theta = r.standard_normal((3, op.num_params()))
    x = r.standard_normal((5, D))
    rel = np.array([0, 2, 1, 2, 0])
    got = apply_operator(name, t(x, False), t(theta, False), rel).numpy()
    np.testing.assert_allclose(got, _numpy_operator(name, x, theta[rel]), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_init_is_identity(name):
    op = OPERATORS[name](D)
    x = rng().standard_normal((4, D))
    th = op.init(2, np, np.float64)[[0, 1, 1, 0]]
    np.testing.assert_allclose(op.forward(x, th), x, atol=1e-12)


def _numpy_compare(name, a, b):
    """Rowwise score of a (..., d) with b (..., d)."""
    if name == "dot":
        return (a * b).sum(-1)
    if name == "cos":
        return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    d2 = ((a - b) ** 2).sum(-1)
    return -d2 if name == "squared_l2" else -np.sqrt(d2)


@pytest.mark.parametrize("name", sorted(COMPARATORS))
def test_comparator_gradients_rowwise_and_batched(name):
    r = rng()
    a, b = t(r.standard_normal((4, D))), t(r.standard_normal((4, D)))
    assert gradcheck(lambda a, b: compare(name, a, b), (a, b))
    a3, n3 = t(r.standard_normal((2, 3, D))), t(r.standard_normal((2, 4, D)))
    assert gradcheck(lambda a, n: compare(name, a, n), (a3, n3))


@pytest.mark.parametrize("name", sorted(COMPARATORS))
def test_comparator_scores_equal_numpy(name):
    r = rng()
    a, b = r.standard_normal((4, D)), r.standard_normal((4, D))
    got = compare(name, t(a, False), t(b, False)).numpy()
    np.testing.assert_allclose(got, _numpy_compare(name, a, b), rtol=1e-9)
    a3, n3 = r.standard_normal((2, 3, D)), r.standard_normal((2, 4, D))
    got = compare(name, t(a3, False), t(n3, False)).numpy()
    want = _numpy_compare(name, a3[:, :, None, :], n3[:, None, :, :])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("name", sorted(COMPARATORS))
def test_comparator_negatives_written_into_out_equal_a_fresh_array(name, bias):
    """``neg(..., out=)`` (evaluation's reused block of scores) writes into ``out`` and
    returns it, with the very bits of the scores ``neg`` returns fresh."""
    cmp = Biased(COMPARATORS[name]()) if bias else COMPARATORS[name]()
    r = rng()
    a3 = r.standard_normal((2, 5, D)).astype(np.float32)
    n3 = r.standard_normal((2, 7, D)).astype(np.float32)
    a3, _ = cmp.prepare(a3)
    n3, _ = cmp.prepare(n3)
    want = cmp.neg(a3, n3)
    out = np.full((2, 5, 7), np.nan, np.float32)
    got = cmp.neg(a3, n3, out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    model = Model("none", name, "softmax", D, 1, bias=bias)
    keep, cands = r.standard_normal((3, D)).astype(np.float32), r.standard_normal((4, D)).astype(np.float32)
    buf = np.empty(12, np.float32)
    theta = [np.zeros((1, model.width), np.float32)] * 2
    got = model.score_candidates(keep, np.zeros(3, np.int64), theta, cands, "rhs", buf.reshape(3, 4))
    np.testing.assert_array_equal(
        got, model.score_candidates(keep, np.zeros(3, np.int64), theta, cands, "rhs")
    )
    assert np.shares_memory(got, buf)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients_match_finite_differences(name):
    r = rng()
    pos, neg = t(r.standard_normal(4)), t(r.standard_normal((4, 5)))
    w = np.array([1.0, 0.5, 2.0, 1.0])
    assert gradcheck(lambda p, n: loss_of(name, p, n, w, margin=0.5), (pos, neg))


def _numpy_loss(name, pos, neg, margin):
    if name == "softmax":
        s = np.concatenate([pos[:, None], neg], axis=1)
        return (np.log(np.exp(s).sum(1)) - pos).sum()
    if name == "ranking":
        return np.maximum(0, margin - pos[:, None] + neg).sum()
    sp = lambda x: np.log1p(np.exp(x))
    return (sp(-pos) + sp(neg).mean(1)).sum()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_equals_numpy_and_ignores_masked_negatives(name):
    r = rng()
    pos, neg = r.standard_normal(4), r.standard_normal((4, 5))
    got = float(loss_of(name, t(pos, False), t(neg, False), margin=0.5).item())
    assert got == pytest.approx(_numpy_loss(name, pos, neg, 0.5), rel=1e-9)
    if name != "logistic":  # logistic averages over k, so a masked column changes the mean
        masked = np.concatenate([neg, np.full((4, 1), -np.inf)], axis=1)
        got = float(loss_of(name, t(pos, False), t(masked, False), margin=0.5).item())
        assert got == pytest.approx(_numpy_loss(name, pos, neg, 0.5), rel=1e-9)


def _chunked_inputs(r, n=6, chunk=3, u=2, op="complex_diagonal"):
    model = Model(op, "dot", "softmax", D, 3)
    rel = r.integers(0, 3, n)
    lhs_ids, rhs_ids = r.permutation(10)[:n], r.permutation(10)[:n]
    cand_l, cand_r = r.integers(0, 10, (n // chunk, u)), r.integers(0, 10, (n // chunk, u))
    plan = BatchPlan(model, rel, chunk, lhs_ids, rhs_ids, cand_l, cand_r)
    th = [x + 0.2 * r.standard_normal(x.shape) for x in model.init_relations(np, np.float64)]
    ins = [
        r.standard_normal((n, D)),
        r.standard_normal((n, D)),
        r.standard_normal((n // chunk, u, D)),
        r.standard_normal((n // chunk, u, D)),
        *th,
    ]
    return model, plan, ins


@pytest.mark.parametrize("op", ["complex_diagonal", "translation", "linear"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("cmp", ["dot", "cos", "l2"])
def test_fused_chunked_loss_gradients(op, loss, cmp):
    r = rng()
    model, plan, ins = _chunked_inputs(r, op=op)
    model.comparator, model.loss = COMPARATORS[cmp](), LOSSES[loss](0.5)
    model.regularization_coef = 0.01
    assert gradcheck(lambda *xs: ChunkedLoss.apply(*xs, plan=plan), tuple(t(x) for x in ins))


def test_fused_chunked_loss_equals_direct_numpy():
    """Each positive against its chunk's other positives and the chunk's uniform
    candidates, both sides, true positives excluded: softmax loss summed."""
    r = rng()
    model, plan, ins = _chunked_inputs(r)
    lhs, rhs, cl, cr, th_r, th_l = ins
    rel, chunk = plan.rel, plan.chunk
    got = float(ChunkedLoss.apply(*[t(x, False) for x in ins], plan=plan).item())
    want = 0.0
    for side in ("rhs", "lhs"):
        keep, other, cand, th = (lhs, rhs, cr, th_r) if side == "rhs" else (rhs, lhs, cl, th_l)
        a = _numpy_operator("complex_diagonal", keep, th[rel])
        for i in range(len(rel)):
            c = i // chunk
            cands = np.concatenate([other[c * chunk : (c + 1) * chunk], cand[c]])
            scores = cands @ a[i]
            keep_mask = ~plan.masks[side][c, i % chunk]
            s = np.concatenate([[a[i] @ other[i]], scores[keep_mask]])
            want += np.log(np.exp(s).sum()) - s[0]
    assert got == pytest.approx(want, rel=1e-9)


def test_n3_regularizer_is_the_sum_of_cubed_complex_moduli():
    r = rng()
    model, plan, ins = _chunked_inputs(r)
    base = float(ChunkedLoss.apply(*[t(x, False) for x in ins], plan=plan).item())
    model.regularization_coef = 0.5
    reg = float(ChunkedLoss.apply(*[t(x, False) for x in ins], plan=plan).item())
    mod3 = sum((np.abs(x[:, : D // 2] + 1j * x[:, D // 2 :]) ** 3).sum() for x in ins[:2])
    assert reg - base == pytest.approx(0.5 * mod3, rel=1e-9)


def test_rows_variant_matches_the_fused_loss_on_one_shared_table():
    """ChunkedLossRows (one gathered tensor per table, as the trainer uses with
    ember.sparse.embedding) gives the same loss and gradients as ChunkedLoss."""
    from ember.pbg.autodiff import ChunkedLossRows

    r = rng()
    model, plan, ins = _chunked_inputs(r)
    parts = ins[:4]
    rows = np.concatenate([p.reshape(-1, D) for p in parts])
    layout, off = [], 0
    for p in parts:
        layout.append([(0, off, off + len(p.reshape(-1, D)), p.shape)])
        off += len(p.reshape(-1, D))
    plan.layout = layout
    a_ins = [t(x) for x in ins]
    ChunkedLoss.apply(*a_ins, plan=plan).backward()
    rows_t, th = t(rows), [t(x) for x in ins[4:]]
    ChunkedLossRows.apply(rows_t, None, *th, plan=plan).backward()
    want = np.concatenate([x.grad.numpy().reshape(-1, D) for x in a_ins[:4]])
    np.testing.assert_allclose(rows_t.grad.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(th[0].grad.numpy(), a_ins[4].grad.numpy(), rtol=1e-12)


def test_candidates_drawn_from_two_tables_are_one_concatenated_block():
    """A part made of two segments (uniform candidates drawn half from each partition of a
    bucket, negative_partitions = "bucket") is the concatenation of the two along the
    candidates' axis, and each table gets back its slice of the gradient."""
    from ember.pbg.autodiff import ChunkedLossRows

    r = rng()
    model, plan, ins = _chunked_inputs(r)
    lhs, rhs, lc, rc = ins[:4]
    C, U, _ = rc.shape
    ua = U // 2
    # table 0 holds lhs, lhs candidates and the first half of the rhs candidates; table 1 the rest
    a_parts = [lhs, lc, rc[:, :ua]]
    b_parts = [rhs, rc[:, ua:]]
    rows_a = np.concatenate([x.reshape(-1, D) for x in a_parts])
    rows_b = np.concatenate([x.reshape(-1, D) for x in b_parts])
    n, nl = len(lhs), lc.size // D
    plan.layout = [
        [(0, 0, n, lhs.shape)],
        [(1, 0, n, rhs.shape)],
        [(0, n, n + nl, lc.shape)],
        [(0, n + nl, n + nl + C * ua, (C, ua, D)), (1, n, n + C * (U - ua), (C, U - ua, D))],
    ]
    a_ins = [t(x) for x in ins]
    ChunkedLoss.apply(*a_ins, plan=plan).backward()
    ta, tb, th = t(rows_a), t(rows_b), [t(x) for x in ins[4:]]
    loss = ChunkedLossRows.apply(ta, tb, *th, plan=plan)
    loss.backward()
    g = [x.grad.numpy() for x in a_ins[:4]]
    want_a = np.concatenate([g[0].reshape(-1, D), g[2].reshape(-1, D), g[3][:, :ua].reshape(-1, D)])
    want_b = np.concatenate([g[1].reshape(-1, D), g[3][:, ua:].reshape(-1, D)])
    np.testing.assert_allclose(ta.grad.numpy(), want_a, rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), want_b, rtol=1e-12)
