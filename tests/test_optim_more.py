"""Adadelta, Adamax, NAdam, RAdam and LBFGS against their published algorithms (written out
here in numpy, step by step), and the schedulers against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import optim
from ember.optim import lr_scheduler as S

_r = np.random.default_rng(3)
W0 = _r.standard_normal((3, 4))
A = _r.standard_normal((4, 4))


def _grad_np(w):
    # d/dw of sum((w A)^2) + sum(w^3)
    return 2 * (w @ A) @ A.T + 3 * w**2


def _run_ember(cls, steps, **kw):
    w = ember.tensor(W0.copy(), requires_grad=True)
    opt = cls([w], **kw)
    for _ in range(steps):
        opt.zero_grad()
        (((w @ ember.tensor(A)) ** 2).sum() + (w**3).sum()).backward()
        opt.step()
    return w.detach().numpy(), opt


def _adadelta(steps, lr, rho=0.9, eps=1e-6, wd=0.0, maximize=False):
    w, v, u = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for _ in range(steps):
        g = _grad_np(w)
        g = -g if maximize else g
        g = g + wd * w
        v = rho * v + (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        w = w - lr * delta
    return w


def _adamax(steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    w, m, u = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t in range(1, steps + 1):
        g = _grad_np(w) + wd * w
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        w = w - lr / (1 - b1**t) * m / u
    return w


def _nadam(steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, psi=4e-3, decoupled=False):
    w, m, v, prod = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), 1.0
    for t in range(1, steps + 1):
        g = _grad_np(w)
        if decoupled:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_hat = v / (1 - b2**t)
        m_hat = mu1 * m / (1 - prod * mu1) + (1 - mu) * g / (1 - prod)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def _radam(steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    rho_inf = 2 / (1 - b2) - 1
    rectified = []
    for t in range(1, steps + 1):
        g = _grad_np(w)
        if decoupled:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            l_t = np.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
            r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            w = w - lr * m_hat * l_t * r_t
            rectified.append(True)
        else:
            w = w - lr * m_hat
            rectified.append(False)
    return w, rectified


@pytest.mark.parametrize(
    "kw",
    [dict(lr=0.5), dict(lr=1.0, rho=0.8, weight_decay=0.1, maximize=True)],
    ids=["plain", "rho-wd-maximize"],
)
def test_adadelta_follows_its_algorithm(kw):
    got, opt = _run_ember(optim.Adadelta, 8, **kw)
    ref = _adadelta(
        8,
        kw["lr"],
        rho=kw.get("rho", 0.9),
        wd=kw.get("weight_decay", 0.0),
        maximize=kw.get("maximize", False),
    )
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    assert opt.state[opt.param_groups[0]["params"][0]]["step"] == 8


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adamax_follows_its_algorithm(wd):
    got, _ = _run_ember(optim.Adamax, 8, lr=0.01, weight_decay=wd)
    np.testing.assert_allclose(got, _adamax(8, 0.01, wd=wd), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_nadam_follows_its_algorithm(wd, decoupled):
    got, _ = _run_ember(optim.NAdam, 8, lr=0.01, weight_decay=wd, decoupled_weight_decay=decoupled)
    np.testing.assert_allclose(got, _nadam(8, 0.01, wd=wd, decoupled=decoupled), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.1, True)])
def test_radam_follows_its_algorithm_through_the_rectification_switch(wd, decoupled):
    got, _ = _run_ember(optim.RAdam, 8, lr=0.01, weight_decay=wd, decoupled_weight_decay=decoupled)
    ref, rectified = _radam(8, 0.01, wd=wd, decoupled=decoupled)
    assert not rectified[0] and rectified[-1]  # both branches of the algorithm are exercised
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_new_optimizers_keep_float32_and_refuse_bad_options():
    for cls in (optim.Adadelta, optim.Adamax, optim.NAdam, optim.RAdam):
        w = ember.ones(3, requires_grad=True)
        opt = cls([w])
        (w * w).sum().backward()
        opt.step()
        assert w.dtype == np.float32 and w.is_leaf
    with pytest.raises(ValueError, match="Invalid rho value"):
        optim.Adadelta([ember.ones(1, requires_grad=True)], rho=1.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adamax([ember.ones(1, requires_grad=True)], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.NAdam([ember.ones(1, requires_grad=True)], lr=-1)
    with pytest.raises(ValueError, match="momentum_decay"):
        optim.NAdam([ember.ones(1, requires_grad=True)], momentum_decay=-1)


def test_state_dict_round_trip_continues_identically():
    a, opt_a = _run_ember(optim.NAdam, 3, lr=0.01)
    w = ember.tensor(a.copy(), requires_grad=True)
    opt = optim.NAdam([w], lr=0.01)
    opt.load_state_dict(opt_a.state_dict())
    assert opt.state[w]["step"] == 3 and math.isclose(
        opt.state[w]["mu_product"], opt_a.state_dict()["state"][0]["mu_product"]
    )


# ---- LBFGS ----------------------------------------------------------------------------------


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _lbfgs_run(steps, **kw):
    x = ember.tensor([-1.5, 2.0], dtype=ember.float64, requires_grad=True)
    opt = optim.LBFGS([x], **kw)

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(steps)]
    return x.detach().numpy(), opt, losses


def test_lbfgs_with_strong_wolfe_minimises_rosenbrock():
    x, opt, losses = _lbfgs_run(10, lr=1, line_search_fn="strong_wolfe", max_iter=20)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-5)
    assert losses[0] > 1 and losses[-1] < 1e-9
    assert opt.state[opt._params[0]]["func_evals"] < 150


def test_lbfgs_without_line_search_converges_with_a_small_lr():
    x, _, _ = _lbfgs_run(30, lr=0.1, max_iter=50)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-3)


def test_lbfgs_first_iteration_is_a_scaled_gradient_step():
    # the algorithm's first direction is -g, with step lr * min(1, 1 / |g|_1)
    x0 = np.array([-1.5, 2.0])
    g = np.array([-2 * (1 - x0[0]) - 400 * x0[0] * (x0[1] - x0[0] ** 2), 200 * (x0[1] - x0[0] ** 2)])
    x, _, _ = _lbfgs_run(1, lr=0.5, max_iter=1)
    np.testing.assert_allclose(x, x0 - 0.5 * min(1, 1 / np.abs(g).sum()) * g, rtol=1e-12)


def test_lbfgs_two_loop_recursion_is_exact_on_a_quadratic():
    # on a strictly convex quadratic, L-BFGS with an exact-enough line search converges
    # in about n iterations (n = 4 here)
    rng = np.random.default_rng(0)
    m = rng.standard_normal((4, 4))
    H = m @ m.T + 4 * np.eye(4)
    b = rng.standard_normal(4)
    x = ember.zeros(4, dtype=ember.float64, requires_grad=True)
    opt = optim.LBFGS(
        [x], line_search_fn="strong_wolfe", max_iter=12, tolerance_grad=1e-12, tolerance_change=1e-15
    )
    Ht, bt = ember.tensor(H), ember.tensor(b)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (x @ (Ht @ x)) - bt @ x
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(H, b), rtol=1e-8, atol=1e-10)


def test_lbfgs_trains_a_multi_tensor_model():
    ember.manual_seed(0)
    X = ember.randn(64, 3, dtype=ember.float64)
    true_w = ember.tensor([[1.0], [-2.0], [0.5]], dtype=ember.float64)
    y = X @ true_w + 0.3
    lin = ember.nn.Linear(3, 1).double()
    opt = optim.LBFGS(lin.parameters(), line_search_fn="strong_wolfe", tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = ember.nn.functional.mse_loss(lin(X), y)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(lin.weight.detach().numpy().reshape(-1), [1.0, -2.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(lin.bias.detach().numpy(), [0.3], atol=1e-6)


def test_lbfgs_errors():
    x = ember.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires a closure"):
        optim.LBFGS([x]).step()
    with pytest.raises(ValueError, match="strong_wolfe"):
        optim.LBFGS([x], line_search_fn="backtracking")
    with pytest.raises(ValueError, match="per-parameter options"):
        optim.LBFGS([{"params": [x]}, {"params": [ember.zeros(1, requires_grad=True)]}])


# ---- schedulers -----------------------------------------------------------------------------


def _opt(lr=0.1, cls=optim.SGD, **kw):
    return cls([ember.zeros(1, requires_grad=True)], lr=lr, **kw)


def _lrs(opt, sched, n, metrics=None):
    out = []
    for i in range(n):
        opt.step()
        sched.step(metrics[i]) if metrics is not None else sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_constant_and_polynomial_closed_forms():
    o = _opt()
    assert _lrs(o, S.ConstantLR(o, factor=0.5, total_iters=3), 5) == pytest.approx(
        [0.05, 0.05, 0.1, 0.1, 0.1]
    )
    o = _opt()
    got = _lrs(o, S.PolynomialLR(o, total_iters=4, power=2.0), 6)
    assert got == pytest.approx([0.1 * (1 - min(e, 4) / 4) ** 2 for e in range(1, 7)])


def test_cosine_warm_restarts_periods_grow_by_t_mult():
    o = _opt(1.0)
    got = _lrs(o, S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.0), 9)
    # periods: [0, 2), [2, 6), [6, 14): the rate restarts at 1.0 at epochs 2 and 6
    t_cur = [1, 0, 1, 2, 3, 0, 1, 2, 3]
    t_i = [2, 4, 4, 4, 4, 8, 8, 8, 8]
    assert got == pytest.approx([(1 + math.cos(math.pi * c / t)) / 2 for c, t in zip(t_cur, t_i)])


def test_one_cycle_rises_then_anneals_and_cycles_momentum():
    o = _opt(cls=optim.SGD, momentum=0.9)
    sched = S.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=0.3)
    assert o.param_groups[0]["lr"] == pytest.approx(1.0 / 25) and o.param_groups[0]["momentum"] == 0.95
    lrs, moms = [], []
    for _ in range(9):
        o.step()
        sched.step()
        lrs.append(o.param_groups[0]["lr"])
        moms.append(o.param_groups[0]["momentum"])
    assert lrs[1] == pytest.approx(1.0) and moms[1] == pytest.approx(0.85)  # the peak at step 2 = 0.3*10-1
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4) and moms[-1] == pytest.approx(0.95)
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:]))
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()
        sched.step()


def test_one_cycle_drives_adams_beta1_and_refuses_optimizers_without_momentum():
    o = _opt(cls=optim.Adam)
    S.OneCycleLR(o, max_lr=0.01, epochs=2, steps_per_epoch=5)
    assert o.param_groups[0]["betas"][0] == 0.95
    with pytest.raises(ValueError, match="must support momentum"):
        S.OneCycleLR(_opt(cls=optim.Adagrad), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(_opt(), max_lr=0.1)


def test_sequential_lr_hands_over_at_milestones():
    o = _opt(1.0)
    warm = S.LinearLR(o, start_factor=0.25, total_iters=4)
    decay = S.ExponentialLR(o, gamma=0.5)
    sched = S.SequentialLR(o, [warm, decay], milestones=[4])
    assert o.param_groups[0]["lr"] == pytest.approx(0.25)
    got = _lrs(o, sched, 7)
    assert got == pytest.approx([0.4375, 0.625, 0.8125, 1.0, 0.5, 0.25, 0.125])
    with pytest.raises(ValueError, match="one more than the number"):
        S.SequentialLR(o, [warm, decay], milestones=[1, 2])


def test_chained_scheduler_multiplies_factors():
    o = _opt(1.0)
    sched = S.ChainedScheduler([S.ConstantLR(o, factor=0.1, total_iters=2), S.ExponentialLR(o, gamma=0.9)])
    assert o.param_groups[0]["lr"] == pytest.approx(0.1)
    got = _lrs(o, sched, 4)
    assert got == pytest.approx([0.1 * 0.9, 0.9**2, 0.9**3, 0.9**4])


def test_reduce_lr_on_plateau_patience_cooldown_and_min_lr():
    o = _opt(1.0)
    sched = S.ReduceLROnPlateau(o, factor=0.5, patience=1, cooldown=1, min_lr=0.2)
    metrics = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 4.0, 4.0]
    got = _lrs(o, sched, len(metrics), metrics)
    # bad epochs 2,3 -> cut at 3; cooldown at 4; bad 5,6 -> cut at 6; cooldown 7; 8 improves...
    assert got == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2])
    assert sched.get_last_lr() == [0.2]
    o = _opt(1.0)
    sched = S.ReduceLROnPlateau(o, mode="max", threshold=0.1, threshold_mode="abs", patience=0)
    assert _lrs(o, sched, 3, [0.5, 0.55, 0.7]) == pytest.approx([1.0, 0.1, 0.1])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(o, factor=1.0)
