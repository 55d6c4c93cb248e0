"""Losses of ember.nn: values against numpy formulas written here, gradients by gradcheck (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(1)


def t64(*shape, grad=True):
    return ember.tensor(RNG.standard_normal(shape), dtype=ember.float64, requires_grad=grad)


def np_(t):
    return t.detach().numpy()


def reduce_np(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def log_softmax_np(x, axis=1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


REDUCTIONS = ["none", "mean", "sum"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("loss", "ref"),
    [
        (nn.MSELoss, lambda d: d * d),
        (nn.L1Loss, np.abs),
        (nn.SmoothL1Loss, lambda d: np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5)),
        (nn.HuberLoss, lambda d: np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5)),
    ],
    ids=["mse", "l1", "smooth_l1", "huber"],
)
def test_regression_losses_match_numpy_and_gradcheck(loss, ref, reduction):
    x, y = t64(3, 4), t64(3, 4)
    x._data *= 2
    fn = loss(reduction=reduction)
    np.testing.assert_allclose(np_(fn(x, y)), reduce_np(ref(np_(x) - np_(y)), reduction), rtol=1e-12)
    assert gradcheck(fn, (x, y))


def test_smooth_l1_beta_and_huber_delta():
    x, y = t64(20), t64(20)
    x._data *= 3
    d = np_(x) - np_(y)
    beta = 0.5
    ref = np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta).mean()
    np.testing.assert_allclose(np_(F.smooth_l1_loss(x, y, beta=beta)), ref, rtol=1e-12)
    delta = 2.0
    ref = np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta)).sum()
    np.testing.assert_allclose(np_(F.huber_loss(x, y, "sum", delta)), ref, rtol=1e-12)
    assert gradcheck(lambda a: F.smooth_l1_loss(a, y, beta=beta), (x,))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="different to the input size"):
        F.mse_loss(ember.zeros(3), ember.zeros(3, 1))


def ce_ref(x, t, weight=None, ignore_index=-100, eps=0.0, reduction="mean"):
    n, c = x.shape
    logp = log_softmax_np(x)
    w = np.ones(c) if weight is None else weight
    valid = t != ignore_index
    tc = np.where(valid, t, 0)
    nll = -logp[np.arange(n), tc] * w[tc] * valid
    smooth = -(logp * w).sum(1) * valid
    loss = (1 - eps) * nll + eps / c * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (w[tc] * valid).sum()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_class_indices_with_ignore_index_weight_and_smoothing(reduction, eps, weighted):
    x = t64(6, 4)
    t = np.array([0, 3, -100, 1, 3, -100])
    w = np.array([0.5, 1.0, 2.0, 1.5]) if weighted else None
    wt = None if w is None else ember.tensor(w, dtype=ember.float64)
    fn = nn.CrossEntropyLoss(weight=wt, ignore_index=-100, reduction=reduction, label_smoothing=eps)
    got = fn(x, ember.tensor(t))
    np.testing.assert_allclose(np_(got), ce_ref(np_(x), t, w, -100, eps, reduction), rtol=1e-10)
    assert gradcheck(lambda a: fn(a, ember.tensor(t)), (x,))
    if reduction == "none":
        assert got.shape == (6,) and float(got[2]) == 0.0


def test_cross_entropy_custom_ignore_index_and_spatial_inputs():
    x = t64(2, 3, 2, 2)
    t = np.array([[[0, 2], [1, 7]], [[7, 0], [2, 2]]])
    got = F.cross_entropy(x, ember.tensor(t), ignore_index=7, reduction="none")
    flat_x = np_(x).transpose(0, 2, 3, 1).reshape(-1, 3)
    ref = ce_ref(flat_x, t.reshape(-1), ignore_index=7, reduction="none").reshape(2, 2, 2)
    np.testing.assert_allclose(np_(got), ref, rtol=1e-10)
    assert gradcheck(lambda a: F.cross_entropy(a, ember.tensor(t), ignore_index=7), (x,))


def test_cross_entropy_with_probability_targets():
    x = t64(4, 3)
    p = np.abs(RNG.standard_normal((4, 3)))
    p /= p.sum(1, keepdims=True)
    target = ember.tensor(p, dtype=ember.float64, requires_grad=True)
    w = np.array([1.0, 2.0, 0.5])
    got = F.cross_entropy(x, target, weight=ember.tensor(w, dtype=ember.float64), label_smoothing=0.1)
    q = (p * 0.9 + 0.1 / 3) * w
    np.testing.assert_allclose(np_(got), -(q * log_softmax_np(np_(x))).sum(1).mean(), rtol=1e-10)
    assert gradcheck(lambda a, b: F.cross_entropy(a, b, reduction="sum"), (x, target))


def test_cross_entropy_is_stable_for_huge_logits_and_twice_differentiable():
    x = ember.tensor([[1000.0, 0.0, -1000.0]], dtype=ember.float64, requires_grad=True)
    loss = F.cross_entropy(x, ember.tensor([1]))
    assert float(loss) == pytest.approx(1000.0)
    loss.backward()
    np.testing.assert_allclose(np_(x.grad), [[1.0, -1.0, 0.0]], atol=1e-12)
    twice = lambda a: F.cross_entropy(a, ember.tensor([2, 0]), label_smoothing=0.1)
    assert gradgradcheck(twice, (t64(2, 3),))


def test_cross_entropy_float32_stays_float32():
    out = F.cross_entropy(ember.randn(3, 4), ember.tensor([0, 1, 2]))
    assert out.dtype == np.float32


def test_cross_entropy_out_of_range_target_is_an_error():
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(ember.randn(2, 3), ember.tensor([0, 3]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_matches_numpy(reduction):
    logp = t64(5, 3)
    t = np.array([2, 0, -100, 1, 1])
    w = np.array([1.0, 3.0, 0.5])
    got = F.nll_loss(logp, ember.tensor(t), weight=ember.tensor(w, dtype=ember.float64), reduction=reduction)
    valid = t != -100
    tc = np.where(valid, t, 0)
    loss = -np_(logp)[np.arange(5), tc] * w[tc] * valid
    ref = {"none": loss, "sum": loss.sum(), "mean": loss.sum() / (w[tc] * valid).sum()}[reduction]
    np.testing.assert_allclose(np_(got), ref, rtol=1e-12)
    assert gradcheck(
        lambda a: nn.NLLLoss(ember.tensor(w, dtype=ember.float64), reduction=reduction)(a, ember.tensor(t)),
        (logp,),
    )


def test_log_softmax_plus_nll_equals_cross_entropy():
    x, t = t64(4, 5), ember.tensor([4, 0, 2, 2])
    via_nll = F.nll_loss(F.log_softmax(x, 1), t)
    np.testing.assert_allclose(np_(via_nll), np_(F.cross_entropy(x, t)), rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_numpy_and_clamps_logs(reduction):
    p = ember.tensor(RNG.uniform(0.05, 0.95, (3, 4)), dtype=ember.float64, requires_grad=True)
    y = ember.tensor(RNG.integers(0, 2, (3, 4)).astype(float), dtype=ember.float64)
    w = ember.tensor(RNG.uniform(0.5, 2, (4,)), dtype=ember.float64)
    got = nn.BCELoss(weight=w, reduction=reduction)(p, y)
    ref = -(np_(y) * np.log(np_(p)) + (1 - np_(y)) * np.log(1 - np_(p))) * np_(w)
    np.testing.assert_allclose(np_(got), reduce_np(ref, reduction), rtol=1e-12)
    assert gradcheck(lambda a: F.binary_cross_entropy(a, y, w, reduction=reduction), (p,))
    edge = F.binary_cross_entropy(ember.tensor([0.0, 1.0]), ember.tensor([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(np_(edge), [100.0, 100.0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_numpy_with_pos_weight(reduction):
    x, y = t64(3, 4), ember.tensor(RNG.uniform(0, 1, (3, 4)), dtype=ember.float64)
    pw = ember.tensor([1.0, 2.0, 0.5, 3.0], dtype=ember.float64)
    got = nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=pw)(x, y)
    s = 1 / (1 + np.exp(-np_(x)))
    ref = -(np_(pw) * np_(y) * np.log(s) + (1 - np_(y)) * np.log(1 - s))
    np.testing.assert_allclose(np_(got), reduce_np(ref, reduction), rtol=1e-10)
    assert gradcheck(
        lambda a: F.binary_cross_entropy_with_logits(a, y, reduction=reduction, pos_weight=pw), (x,)
    )


def test_bce_with_logits_is_stable_for_large_logits():
    x = ember.tensor([-500.0, 500.0, 0.0], requires_grad=True)
    y = ember.tensor([1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(np_(loss), [500.0, 500.0, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(np_(x.grad), [-1.0, 1.0, -0.5], rtol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_ranking_loss_matches_numpy(reduction):
    a, b = t64(6), t64(6)
    y = ember.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0], dtype=ember.float64)
    got = nn.MarginRankingLoss(margin=0.3, reduction=reduction)(a, b, y)
    ref = np.maximum(0, -np_(y) * (np_(a) - np_(b)) + 0.3)
    np.testing.assert_allclose(np_(got), reduce_np(ref, reduction), rtol=1e-12)
    assert gradcheck(lambda p, q: F.margin_ranking_loss(p, q, y, 0.3, reduction), (a, b))


def test_invalid_reduction_is_refused():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.l1_loss(ember.zeros(2), ember.zeros(2), reduction="avg")
