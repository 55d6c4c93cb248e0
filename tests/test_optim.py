"""ember.optim: each optimizer against its textbook update written in numpy, sparse
updates touching only the batch's rows, parameter groups, state dicts and schedulers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import optim
from ember.optim import lr_scheduler
from ember.sparse import RowSparseGrad, embedding

STEPS = 5


def _grads(rng, shape, n=STEPS):
    return [rng.standard_normal(shape) for _ in range(n)]


def _run(opt_cls, w0, grads, **kw):
    """Apply ``opt_cls`` for len(grads) steps with the given gradients; return the weights."""
    p = ember.tensor(w0.copy(), requires_grad=True)
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = ember.tensor(g)
        opt.step()
    return p._data


# ---- textbook references (float64 numpy) ---------------------------------------------------


def ref_sgd(w, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    w, b = w.copy(), None
    for g in grads:
        g = -g if maximize else g
        g = g + weight_decay * w
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        w = w - lr * g
    return w


def ref_adam(w, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    w = w.copy()
    m, v, vmax = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    b1, b2 = betas
    for t, g in enumerate(grads, 1):
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        mhat = m / (1 - b1**t)
        vhat = (vmax if amsgrad else v) / (1 - b2**t)
        w = w - lr * mhat / (np.sqrt(vhat) + eps)
    return w


def ref_adagrad(w, grads, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    w, s = w.copy(), np.full_like(w, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        g = g + weight_decay * w
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        w = w - clr * g / (np.sqrt(s) + eps)
    return w


def ref_rmsprop(w, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    w = w.copy()
    s, a, b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        g = g + weight_decay * w
        s = alpha * s + (1 - alpha) * g * g
        if centered:
            a = alpha * a + (1 - alpha) * g
            d = np.sqrt(s - a * a) + eps
        else:
            d = np.sqrt(s) + eps
        if momentum:
            b = momentum * b + g / d
            w = w - lr * b
        else:
            w = w - lr * g / d
    return w


def ref_row_adagrad(w, grads, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10):
    w, s = w.copy(), np.zeros(w.shape[0])
    for t, g in enumerate(grads, 1):
        g = g + weight_decay * w
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + (g * g).mean(axis=1)
        w = w - clr * g / (np.sqrt(s) + eps)[:, None]
    return w


# ---- dense updates match the formulas ---------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.1),
        dict(lr=0.1, weight_decay=0.05),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.1, momentum=0.9, dampening=0.3),
        dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        dict(lr=0.1, momentum=0.5, maximize=True),
    ],
)
def test_sgd_matches_textbook_update(rng, kw):
    w0, grads = rng.standard_normal((4, 3)), _grads(rng, (4, 3))
    np.testing.assert_allclose(
        _run(optim.SGD, w0, grads, **kw), ref_sgd(w0, grads, **kw), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, amsgrad=True, weight_decay=0.1),
    ],
)
def test_adam_matches_textbook_update(rng, kw):
    w0, grads = rng.standard_normal((4, 3)), _grads(rng, (4, 3))
    np.testing.assert_allclose(
        _run(optim.Adam, w0, grads, **kw), ref_adam(w0, grads, **kw), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize(
    "kw", [dict(lr=0.01), dict(lr=0.01, weight_decay=0.3), dict(lr=0.01, weight_decay=0.3, amsgrad=True)]
)
def test_adamw_decouples_weight_decay(rng, kw):
    w0, grads = rng.standard_normal((4, 3)), _grads(rng, (4, 3))
    kw_ref = dict(kw, weight_decay=kw.get("weight_decay", 1e-2))
    np.testing.assert_allclose(
        _run(optim.AdamW, w0, grads, **kw),
        ref_adam(w0, grads, decoupled=True, **kw_ref),
        rtol=1e-10,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.1),
        dict(lr=0.1, lr_decay=0.1),
        dict(lr=0.1, weight_decay=0.05, initial_accumulator_value=0.5, eps=1e-6),
    ],
)
def test_adagrad_matches_textbook_update(rng, kw):
    w0, grads = rng.standard_normal((4, 3)), _grads(rng, (4, 3))
    np.testing.assert_allclose(
        _run(optim.Adagrad, w0, grads, **kw), ref_adagrad(w0, grads, **kw), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.01),
        dict(lr=0.01, centered=True),
        dict(lr=0.01, momentum=0.9),
        dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1, alpha=0.9),
    ],
)
def test_rmsprop_matches_textbook_update(rng, kw):
    w0, grads = rng.standard_normal((4, 3)), _grads(rng, (4, 3))
    np.testing.assert_allclose(
        _run(optim.RMSprop, w0, grads, **kw), ref_rmsprop(w0, grads, **kw), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, lr_decay=0.2, weight_decay=0.01)])
def test_row_adagrad_dense_matches_one_accumulator_per_row(rng, kw):
    w0, grads = rng.standard_normal((6, 4)), _grads(rng, (6, 4))
    np.testing.assert_allclose(
        _run(optim.RowAdagrad, w0, grads, **kw), ref_row_adagrad(w0, grads, **kw), rtol=1e-12, atol=1e-12
    )


def test_row_adagrad_keeps_one_number_per_row():
    p = ember.randn(10, 8, requires_grad=True)
    opt = optim.RowAdagrad([p], lr=0.1)
    p.grad = ember.ones(10, 8)
    opt.step()
    assert opt.state[p]["sum"].shape == (10,)


def test_float32_update_stays_float32(rng):
    p = ember.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    for cls in (optim.SGD, optim.Adam, optim.Adagrad, optim.RMSprop, optim.RowAdagrad):
        opt = cls([p], lr=0.01)
        p.grad = ember.ones(3, 2)
        opt.step()
        assert p.dtype == np.float32


# ---- sparse updates ---------------------------------------------------------------------------


def _sparse_table(rng, rows=50, dim=6, dtype=np.float64):
    return rng.standard_normal((rows, dim)).astype(dtype)


def _lookup_grad(w, batch):
    """Backward of a lookup of ``batch`` rows with upstream gradient = the looked-up values + 1."""
    out = embedding(w, ember.tensor(batch), sparse=True)
    (out * out * 0.5 + out).sum().backward()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.RowAdagrad(ps, lr=0.1),
        lambda ps: optim.RowAdagrad(ps, lr=0.1, weight_decay=0.01),
        lambda ps: optim.Adagrad(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.1),
    ],
)
def test_sparse_update_touches_only_batch_rows(rng, make):
    w0 = _sparse_table(rng)
    w = ember.tensor(w0.copy(), requires_grad=True)
    opt = make([w])
    touched = set()
    for _ in range(3):
        batch = rng.integers(0, 50, size=(4, 3))
        touched |= set(batch.ravel().tolist())
        w.grad = None
        _lookup_grad(w, batch)
        assert isinstance(w.grad, RowSparseGrad)
        opt.step()
    untouched = np.array(sorted(set(range(50)) - touched))
    rows = np.array(sorted(touched))
    assert np.array_equal(w._data[untouched], w0[untouched])  # bit-identical
    assert not np.any(w._data[rows] == w0[rows])


@pytest.mark.parametrize("cls", [optim.Adagrad, optim.RowAdagrad, optim.SGD])
def test_sparse_update_equals_dense_update_of_same_gradient(rng, cls):
    w0 = _sparse_table(rng)
    ws = ember.tensor(w0.copy(), requires_grad=True)
    wd = ember.tensor(w0.copy(), requires_grad=True)
    opt_s, opt_d = cls([ws], lr=0.1), cls([wd], lr=0.1)
    for _ in range(3):
        batch = rng.integers(0, 50, size=7)
        ws.grad = wd.grad = None
        _lookup_grad(ws, batch)
        out = embedding(wd, ember.tensor(batch), sparse=False)
        (out * out * 0.5 + out).sum().backward()
        opt_s.step()
        opt_d.step()
    np.testing.assert_allclose(ws._data, wd._data, rtol=1e-12, atol=1e-14)


def test_row_adagrad_sparse_matches_formula_on_touched_rows(rng):
    w0 = _sparse_table(rng, rows=20, dim=4)
    w = ember.tensor(w0.copy(), requires_grad=True)
    opt = optim.RowAdagrad([w], lr=0.3)
    batch = np.array([2, 5, 2, 11])
    w.grad = None
    embedding(w, ember.tensor(batch), sparse=True).sum().backward()
    opt.step()
    g = np.zeros_like(w0)
    np.add.at(g, batch, 1.0)
    expect = ref_row_adagrad(w0, [g], lr=0.3)
    np.testing.assert_allclose(w._data, expect, rtol=1e-12)
    assert np.array_equal(opt.state[w]["sum"]._data[[0, 1, 3]], np.zeros(3))


def test_dense_optimizers_refuse_sparse_gradients_naming_optimizer_and_parameter():
    w = ember.randn(10, 3, requires_grad=True)
    embedding(w, ember.tensor([1, 2]), sparse=True).sum().backward()
    for cls in (optim.Adam, optim.AdamW, optim.RMSprop):
        opt = cls([("entity_table", w)], lr=0.1)
        with pytest.raises(RuntimeError, match=rf"{cls.__name__} does not support sparse.*entity_table"):
            opt.step()
    with pytest.raises(RuntimeError, match="parameter 0 of param group 0"):
        optim.Adam([w]).step()


def test_sparse_sgd_refuses_momentum_and_adagrad_refuses_weight_decay():
    w = ember.randn(10, 3, requires_grad=True)
    embedding(w, ember.tensor([1, 2]), sparse=True).sum().backward()
    with pytest.raises(RuntimeError, match="momentum=0"):
        optim.SGD([w], lr=0.1, momentum=0.9).step()
    with pytest.raises(RuntimeError, match="weight_decay=0"):
        optim.Adagrad([w], lr=0.1, weight_decay=0.1).step()


def test_sparse_step_on_standin_device_stays_on_device():
    w = ember.randn(30, 4, requires_grad=True).to("standin").detach().requires_grad_()
    opt = optim.RowAdagrad([w], lr=0.1)
    embedding(w, ember.tensor([3, 3, 7], device="standin"), sparse=True).sum().backward()
    opt.step()
    assert w.device == "standin" and opt.state[w]["sum"].device == "standin"


# ---- groups, zero_grad, state dicts -------------------------------------------------------------


def test_param_groups_take_per_group_options_and_defaults():
    a, b = ember.ones(2, requires_grad=True), ember.ones(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1, momentum=0.0)
    a.grad, b.grad = ember.ones(2), ember.ones(2)
    opt.step()
    assert np.allclose(a._data, 0.9) and np.allclose(b._data, 0.0)
    c = ember.ones(2, requires_grad=True)
    opt.add_param_group({"params": c, "momentum": 0.5})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.5
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_zero_grad_sets_none_or_zeros():
    p = ember.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = ember.ones(3)
    opt.zero_grad(set_to_none=False)
    assert np.array_equal(p.grad._data, np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_step_closure_returns_loss():
    p = ember.tensor([2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure)) == 4.0
    assert np.isclose(float(p._data[0]), 1.6)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
        lambda ps: optim.AdamW(ps, lr=0.01),
        lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
        lambda ps: optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
        lambda ps: optim.RowAdagrad(ps, lr=0.1),
    ],
)
def test_state_dict_round_trip_continues_identically(rng, make, tmp_path):
    w0, v0 = rng.standard_normal((5, 3)), rng.standard_normal(3)
    grads = [(rng.standard_normal((5, 3)), rng.standard_normal(3)) for _ in range(6)]

    def params():
        return [ember.tensor(w0.copy(), requires_grad=True), ember.tensor(v0.copy(), requires_grad=True)]

    def steps(opt, ps, gs):
        for gw, gv in gs:
            ps[0].grad, ps[1].grad = ember.tensor(gw), ember.tensor(gv)
            opt.step()

    a = params()
    opt_a = make([{"params": [a[0]]}, {"params": [a[1]], "lr": 0.05}])
    steps(opt_a, a, grads[:3])
    sd = opt_a.state_dict()
    assert sorted(sd["state"]) == [0, 1] and [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    ember.save(sd, tmp_path / "opt.h5")

    b = [ember.tensor(t._data.copy(), requires_grad=True) for t in a]
    opt_b = make([{"params": [b[0]]}, {"params": [b[1]]}])
    opt_b.load_state_dict(ember.load(tmp_path / "opt.h5"))
    assert opt_b.param_groups[1]["lr"] == 0.05
    steps(opt_a, a, grads[3:])
    steps(opt_b, b, grads[3:])
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x._data, y._data)


def test_load_state_dict_refuses_mismatched_groups():
    opt = optim.SGD([ember.ones(2, requires_grad=True)], lr=0.1)
    sd = optim.SGD(
        [ember.ones(2, requires_grad=True), ember.ones(2, requires_grad=True)], lr=0.1
    ).state_dict()
    with pytest.raises(ValueError, match="doesn't match"):
        opt.load_state_dict(sd)


# ---- schedulers: PyTorch's closed forms ---------------------------------------------------------


def _lrs(make, epochs=12, base=0.5):
    opt = optim.SGD([ember.ones(1, requires_grad=True)], lr=base)
    sched = make(opt)
    out = [sched.get_last_lr()[0]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == out[-1]
    return out


@pytest.mark.parametrize(
    "make, closed",
    [
        (lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), lambda e: 0.5 * 0.5 ** (e // 3)),
        (
            lambda o: lr_scheduler.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.1),
            lambda e: 0.5 * 0.1 ** sum(e >= m for m in (2, 5, 9)),
        ),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9), lambda e: 0.5 * 0.9**e),
        (
            lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
            lambda e: 0.01 + (0.5 - 0.01) * (1 + math.cos(math.pi * e / 10)) / 2,
        ),
        (lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)), lambda e: 0.5 / (1 + e)),
        (
            lambda o: lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4),
            lambda e: 0.5 * (0.1 + 0.9 * min(e, 4) / 4),
        ),
    ],
)
def test_scheduler_matches_closed_form(make, closed):
    got = _lrs(make)
    np.testing.assert_allclose(got, [closed(e) for e in range(len(got))], rtol=1e-12)


def test_scheduler_state_dict_resumes():
    opt = optim.SGD([ember.ones(1, requires_grad=True)], lr=1.0)
    s = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        s.step()
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 3
    opt2 = optim.SGD([ember.ones(1, requires_grad=True)], lr=1.0)
    s2 = lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    s2.load_state_dict(sd)
    s.step()
    s2.step()
    assert s.get_last_lr() == s2.get_last_lr() == [0.25]
