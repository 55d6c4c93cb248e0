"""Layers of ember.nn: values against numpy references written here, gradients by gradcheck (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(0)


def t64(*shape, grad=True, scale=1.0):
    return ember.tensor(RNG.standard_normal(shape) * scale, dtype=ember.float64, requires_grad=grad)


def np_(t):
    return t.detach().numpy()


def flat(out):
    if isinstance(out, tuple):
        return [t for o in out for t in flat(o)]
    return [out]


def check(fn, *inputs):
    """gradcheck of ``sum(fn(...) * R)`` for a fixed random R: one backward, every input's gradient."""
    outs = flat(fn(*inputs))
    projections = [ember.tensor(RNG.standard_normal(o.shape), dtype=ember.float64) for o in outs]

    def scalar(*args):
        return sum((r * p).sum() for r, p in zip(flat(fn(*args)), projections))

    assert gradcheck(scalar, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def module_check(m, *xs):
    m.double()
    params = [p for p in m.parameters() if p.requires_grad]
    n = len(xs)
    check(lambda *a: m(*a[:n]), *xs, *params)


# ---- linear ---------------------------------------------------------------------------------


def test_linear_matches_numpy_and_gradchecks():
    lin = nn.Linear(4, 3).double()
    x = t64(2, 5, 4)
    ref = np_(x) @ np_(lin.weight).T + np_(lin.bias)
    np.testing.assert_allclose(np_(lin(x)), ref, rtol=1e-12)
    module_check(lin, x)
    module_check(nn.Linear(3, 2, bias=False), t64(5, 3))
    assert gradgradcheck(lambda x, w: F.linear(x, w).tanh(), (t64(2, 3), t64(2, 3)))


def test_linear_default_init_bounds_follow_pytorch():
    lin = nn.Linear(400, 50)
    bound = 1 / math.sqrt(400)
    w = np_(lin.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(np_(lin.bias)).max() <= bound
    assert lin.weight.dtype == np.float32


def test_bilinear_matches_numpy_and_gradchecks():
    bl = nn.Bilinear(3, 2, 4).double()
    x1, x2 = t64(5, 3), t64(5, 2)
    ref = np.einsum("bi,kij,bj->bk", np_(x1), np_(bl.weight), np_(x2)) + np_(bl.bias)
    np.testing.assert_allclose(np_(bl(x1, x2)), ref, rtol=1e-12)
    module_check(bl, x1, x2)


# ---- activations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "ref"),
    [
        (nn.ReLU(), lambda x: np.maximum(x, 0)),
        (nn.Tanh(), np.tanh),
        (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
        (nn.Softplus(), lambda x: np.log1p(np.exp(x))),
        (nn.GELU(), lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
        (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
        (nn.ELU(), lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
        (nn.Softmax(-1), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
        (nn.LogSoftmax(1), lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))),
        (nn.Identity(), lambda x: x),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "",
)
def test_activation_modules_match_numpy_and_gradcheck(module, ref):
    x = t64(3, 4)
    np.testing.assert_allclose(np_(module(x)), ref(np_(x)), rtol=1e-7, atol=1e-12)
    check(module, x)


def test_flatten_and_unflatten():
    x = ember.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Unflatten(1, (3, 4))(nn.Flatten()(x)).shape == (2, 3, 4)


# ---- dropout --------------------------------------------------------------------------------


def test_dropout_zeroes_about_p_scales_the_rest_and_is_identity_in_eval():
    ember.manual_seed(0)
    d = nn.Dropout(0.3)
    x = ember.ones(200, 100)
    y = np_(d(x))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert d.eval()(x) is x
    xg = t64(50, grad=True)
    ember.manual_seed(3)
    out = nn.Dropout(0.5)(xg)
    out.sum().backward()
    np.testing.assert_allclose(np_(xg.grad), (np_(out) != 0) * 2.0)


# ---- normalisation ---------------------------------------------------------------------------


def test_layer_norm_matches_numpy_and_gradchecks():
    ln = nn.LayerNorm(4).double()
    ln.weight._data[:] = RNG.standard_normal(4)
    ln.bias._data[:] = RNG.standard_normal(4)
    x = t64(3, 4)
    xn = np_(x)
    ref = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np_(ln(x)), ref * np_(ln.weight) + np_(ln.bias), rtol=1e-10)
    module_check(ln, x)
    module_check(nn.LayerNorm((2, 3)), t64(2, 2, 3))


def test_batch_norm_training_uses_batch_stats_and_updates_running_stats():
    bn = nn.BatchNorm2d(3, momentum=0.1).double()
    x = t64(4, 3, 2, 2)
    xn = np_(x)
    mean, var = xn.mean((0, 2, 3)), xn.var((0, 2, 3))
    ref = (xn - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(np_(bn(x)), ref, rtol=1e-10)
    n = 4 * 2 * 2
    np.testing.assert_allclose(np_(bn.running_mean), 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(np_(bn.running_var), 0.9 + 0.1 * var * n / (n - 1), rtol=1e-12)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    rm, rv = np_(bn.running_mean), np_(bn.running_var)
    ref_eval = (xn - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(np_(bn(x)), ref_eval, rtol=1e-10)
    assert int(bn.num_batches_tracked) == 1  # eval does not count


def test_batch_norm_gradchecks_in_train_and_eval():
    module_check(nn.BatchNorm1d(3), t64(5, 3))
    module_check(nn.BatchNorm1d(2), t64(4, 2, 3))
    module_check(nn.BatchNorm2d(2).eval(), t64(2, 2, 2, 2))


def test_batch_norm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None).double()
    xs = [t64(6, 2, grad=False) for _ in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(np_(bn.running_mean), np.mean([np_(x).mean(0) for x in xs], 0), rtol=1e-10)


# ---- embeddings -------------------------------------------------------------------------------


def test_embedding_looks_up_rows_and_padding_row_gets_no_gradient():
    emb = nn.Embedding(6, 3, padding_idx=2).double()
    assert np.all(np_(emb.weight)[2] == 0)
    idx = ember.tensor([[0, 2, 5], [2, 2, 1]])
    out = emb(idx)
    np.testing.assert_array_equal(np_(out), np_(emb.weight)[np.array([[0, 2, 5], [2, 2, 1]])])
    out.sum().backward()
    counts = np.bincount([0, 5, 1], minlength=6)  # padding entries do not count
    np.testing.assert_allclose(np_(emb.weight.grad), np.repeat(counts[:, None], 3, 1))
    # (without padding_idx: the padding row's zero gradient differs from finite differences by design)
    check(lambda w: F.embedding(idx, w), emb.weight)


def test_embedding_sparse_gradient_holds_only_touched_rows_and_matches_dense():
    ember.manual_seed(0)
    dense = nn.Embedding(1000, 4).double()
    sparse = nn.Embedding(1000, 4, sparse=True).double()
    sparse.load_state_dict(dense.state_dict())
    idx = ember.tensor([3, 7, 3, 999])
    for m in (dense, sparse):
        (m(idx) * ember.arange(4, dtype=ember.float64)).sum().backward()
    g = sparse.weight.grad
    assert sorted(np.asarray(g.indices).tolist()) == [3, 7, 999]
    assert np.asarray(g.values).shape == (3, 4)
    np.testing.assert_allclose(np_(g.to_dense()), np_(dense.weight.grad))


def test_embedding_max_norm_renormalises_looked_up_rows_in_place():
    emb = nn.Embedding(4, 3, max_norm=1.0)
    emb.weight._data[:] = np.array([[3, 4, 0], [0.1, 0, 0], [0, 6, 8], [1, 1, 1]], dtype=np.float32)
    emb(ember.tensor([0, 1]))
    norms = np.linalg.norm(np_(emb.weight), axis=1)
    assert norms[0] == pytest.approx(1.0, rel=1e-5)  # looked up and too long: rescaled
    assert norms[1] == pytest.approx(0.1, rel=1e-6)  # looked up, short: unchanged
    assert norms[2] == pytest.approx(10.0)  # not looked up: unchanged


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_with_offsets_matches_numpy(mode):
    bag = nn.EmbeddingBag(7, 3, mode=mode).double()
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 6])
    offsets = np.array([0, 3, 3, 6])  # the third bag is empty
    out = bag(ember.tensor(idx), ember.tensor(offsets))
    w = np_(bag.weight)
    bounds = list(offsets) + [len(idx)]
    ref = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        rows = w[idx[s:e]]
        ref.append(np.zeros(3) if e == s else (rows.sum(0) if mode == "sum" else rows.mean(0)))
    np.testing.assert_allclose(np_(out), np.array(ref), rtol=1e-12)
    check(lambda wt: F.embedding_bag(ember.tensor(idx), wt, ember.tensor(offsets), mode=mode), bag.weight)


def test_embedding_bag_2d_input_padding_and_per_sample_weights():
    bag = nn.EmbeddingBag(5, 2, mode="mean", padding_idx=0).double()
    idx = np.array([[1, 0, 3], [0, 0, 4]])
    w = np_(bag.weight)
    ref = np.stack([(w[1] + w[3]) / 2, w[4]])  # padding entries are not averaged in
    np.testing.assert_allclose(np_(bag(ember.tensor(idx))), ref, rtol=1e-12)
    psw = t64(4)
    sum_bag = nn.EmbeddingBag(5, 2, mode="sum").double()
    out = sum_bag(ember.tensor([0, 1, 2, 3]), ember.tensor([0, 2]), per_sample_weights=psw)
    ws, p = np_(sum_bag.weight), np_(psw)
    np.testing.assert_allclose(np_(out), np.stack([p[0] * ws[0] + p[1] * ws[1], p[2] * ws[2] + p[3] * ws[3]]))
    check(
        lambda q: F.embedding_bag(
            ember.tensor([0, 1, 2, 3]), sum_bag.weight, ember.tensor([0, 2]), mode="sum", per_sample_weights=q
        ),
        psw,
    )


def test_embedding_bag_sparse_gradient():
    bag = nn.EmbeddingBag(100, 2, mode="sum", sparse=True)
    bag(ember.tensor([[5, 6], [6, 9]])).sum().backward()
    g = bag.weight.grad
    assert sorted(np.asarray(g.indices).tolist()) == [5, 6, 9]
    np.testing.assert_allclose(np_(g.to_dense())[[5, 6, 9]], [[1, 1], [2, 2], [1, 1]])


# ---- convolution and pooling -----------------------------------------------------------------


def conv2d_ref(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(ho):
            for j in range(wo):
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                    j * sw : j * sw + dw * (kw - 1) + 1 : dw,
                ]
                out[:, oc, i, j] = (patch * w[oc]).sum((1, 2, 3))
    return out + (0 if b is None else b[None, :, None, None])


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "padding", "dilation", "groups"),
    [
        (2, 3, 3, 1, 0, 1, 1),
        (2, 4, 3, 2, 1, 1, 2),
        (3, 3, (2, 3), (1, 2), (1, 0), (2, 1), 3),
        (4, 2, 1, 1, 0, 1, 1),
    ],
)
def test_conv2d_matches_numpy_and_gradchecks(cin, cout, k, stride, padding, dilation, groups):
    conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, groups).double()
    x = t64(2, cin, 5, 6)
    ref = conv2d_ref(
        np_(x), np_(conv.weight), np_(conv.bias), conv.stride, conv.padding, conv.dilation, groups
    )
    np.testing.assert_allclose(np_(conv(x)), ref, rtol=1e-10, atol=1e-12)
    module_check(conv, x)


def test_conv2d_same_padding_and_double_backward():
    conv = nn.Conv2d(1, 2, (2, 3), padding="same", bias=False).double()
    x = t64(1, 1, 4, 4)
    assert conv(x).shape == (1, 2, 4, 4)
    module_check(conv, x)
    w = t64(2, 2, 2, 2)
    assert gradgradcheck(lambda x, w: F.conv2d(x, w, stride=1, padding=1, groups=1), (t64(1, 2, 3, 3), w))


def test_conv2d_weight_gradient_when_the_input_needs_none():
    conv = nn.Conv2d(1, 8, 3, padding=1).double()  # fewer column rows (9) than channels (8 < 9 false)
    x = t64(2, 1, 5, 5, grad=False)
    check(lambda w, b: F.conv2d(x, w, b, padding=1), conv.weight, conv.bias)
    wide = nn.Conv2d(1, 16, 3, padding=(1, 2)).double()  # 9 column rows < 16 channels: narrowed columns
    check(lambda w, b: F.conv2d(x, w, b, padding=(1, 2)), wide.weight, wide.bias)


def test_conv1d_matches_numpy_and_gradchecks():
    conv = nn.Conv1d(4, 2, 3, stride=2, padding=2, dilation=2, groups=2).double()
    x = t64(2, 4, 9)
    ref = conv2d_ref(
        np_(x)[:, :, None], np_(conv.weight)[:, :, None], np_(conv.bias), (1, 2), (0, 2), (1, 2), 2
    )
    np.testing.assert_allclose(np_(conv(x)), ref[:, :, 0], rtol=1e-10, atol=1e-12)
    module_check(conv, x)


def test_max_pool2d_matches_numpy_and_routes_gradient_to_the_maximum():
    x = t64(2, 3, 6, 6)
    out = nn.MaxPool2d(2)(x)
    ref = np_(x).reshape(2, 3, 3, 2, 3, 2).max((3, 5))
    np.testing.assert_array_equal(np_(out), ref)
    out.sum().backward()
    xn = np_(x)
    is_max = xn == np.repeat(np.repeat(ref, 2, 2), 2, 3)
    np.testing.assert_array_equal(np_(x.grad), is_max.astype(float))
    check(lambda x: F.max_pool2d(x, 3, 2, padding=1), t64(1, 2, 5, 5))  # overlapping windows
    check(lambda x: F.max_pool2d(x, 2, 1, dilation=2), t64(1, 1, 5, 5))
    assert gradgradcheck(lambda x: F.max_pool2d(x, 2, 1).tanh(), (t64(1, 1, 3, 3),))
    vals, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(np_(vals), ref)
    np.testing.assert_array_equal(
        np.take_along_axis(xn.reshape(2, 3, -1), np_(idx).reshape(2, 3, -1), 2), ref.reshape(2, 3, -1)
    )


def test_avg_pool2d_matches_numpy_and_gradchecks():
    x = t64(1, 2, 4, 6)
    ref = np_(x).reshape(1, 2, 2, 2, 3, 2).mean((3, 5))
    np.testing.assert_allclose(np_(nn.AvgPool2d(2)(x)), ref, rtol=1e-12)
    check(lambda x: F.avg_pool2d(x, 3, 2, padding=1), x)
    xp = np.pad(np_(x), ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones((4, 6)), 1)
    got = np_(F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False))
    ref = np.array(
        [
            [
                [
                    xp[0, c, i : i + 3, j : j + 3].sum() / ones[i : i + 3, j : j + 3].sum()
                    for j in range(0, 5, 2)
                ]
                for i in range(0, 3, 2)
            ]
            for c in range(2)
        ]
    )
    np.testing.assert_allclose(got[0], ref, rtol=1e-12)


def test_1d_pools():
    x = t64(2, 3, 8)
    np.testing.assert_array_equal(np_(nn.MaxPool1d(2)(x)), np_(x).reshape(2, 3, 4, 2).max(-1))
    np.testing.assert_allclose(np_(nn.AvgPool1d(4)(x)), np_(x).reshape(2, 3, 2, 4).mean(-1))


# ---- recurrent layers -------------------------------------------------------------------------


def sig(a):
    return 1 / (1 + np.exp(-a))


def lstm_ref(x, h, c, w_ih, w_hh, b_ih, b_hh):
    outs = []
    hs = h.shape[-1]
    for xt in x:
        z = xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = (
            sig(z[:, :hs]),
            sig(z[:, hs : 2 * hs]),
            np.tanh(z[:, 2 * hs : 3 * hs]),
            sig(z[:, 3 * hs :]),
        )
        c = f * c + i * g
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs), h, c


def gru_ref(x, h, w_ih, w_hh, b_ih, b_hh):
    outs = []
    hs = h.shape[-1]
    for xt in x:
        a, b = xt @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r, z = sig(a[:, :hs] + b[:, :hs]), sig(a[:, hs : 2 * hs] + b[:, hs : 2 * hs])
        n = np.tanh(a[:, 2 * hs :] + r * b[:, 2 * hs :])
        h = (1 - z) * n + z * h
        outs.append(h)
    return np.stack(outs), h


def layer_params(m, k, sfx=""):
    return [np_(getattr(m, f"{n}_l{k}{sfx}")) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def test_lstm_two_layers_batch_first_matches_numpy():
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    x = t64(2, 5, 3)
    h0, c0 = t64(2, 2, 4), t64(2, 2, 4)
    out, (hn, cn) = lstm(x, (h0, c0))
    seq = np_(x).transpose(1, 0, 2)
    hs, cs = [], []
    for k in range(2):
        seq, h, c = lstm_ref(seq, np_(h0)[k], np_(c0)[k], *layer_params(lstm, k))
        hs.append(h), cs.append(c)
    np.testing.assert_allclose(np_(out), seq.transpose(1, 0, 2), rtol=1e-10)
    np.testing.assert_allclose(np_(hn), np.stack(hs), rtol=1e-10)
    np.testing.assert_allclose(np_(cn), np.stack(cs), rtol=1e-10)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_bidirectional_layers_run_the_reverse_direction_on_the_reversed_sequence(mode):
    m = getattr(nn, mode)(3, 2, num_layers=2, bidirectional=True).double()
    x = t64(4, 2, 3)
    res = m(x)
    out, hn = res[0], (res[1][0] if mode == "LSTM" else res[1])
    assert out.shape == (4, 2, 4) and hn.shape == (4, 2, 2)
    seq, finals = np_(x), []
    for k in range(2):
        halves = []
        for sfx, flip in (("", False), ("_reverse", True)):
            params = layer_params(m, k, sfx)
            inp = seq[::-1] if flip else seq
            zeros = np.zeros((2, 2))
            ref = lstm_ref(inp, zeros, zeros, *params)[:2] if mode == "LSTM" else gru_ref(inp, zeros, *params)
            ys, h = ref
            halves.append(ys[::-1] if flip else ys)
            finals.append(h)
        seq = np.concatenate(halves, -1)
    np.testing.assert_allclose(np_(out), seq, rtol=1e-10)
    np.testing.assert_allclose(np_(hn), np.stack(finals), rtol=1e-10)
    module_check(getattr(nn, mode)(2, 2, bidirectional=True), t64(3, 1, 2))


def test_lstm_gradchecks_through_output_and_final_states():
    lstm = nn.LSTM(2, 3, num_layers=2).double()
    x, h0, c0 = t64(4, 2, 2), t64(2, 2, 3), t64(2, 2, 3)

    def f(x, h0, c0, *params):
        out, (h, c) = lstm(x, (h0, c0))
        return out, h, c

    check(f, x, h0, c0, *lstm.parameters())


def test_lstm_double_backward_recomputes_through_ember_ops():
    from ember.nn._lstm import LSTMLayer

    assert gradgradcheck(
        lambda xg, h, c, w: LSTMLayer.apply(xg, h, c, w), (t64(2, 1, 8), t64(1, 2), t64(1, 2), t64(8, 2))
    )


def test_gru_and_rnn_match_numpy_and_gradcheck():
    gru = nn.GRU(3, 2).double()
    x, h0 = t64(4, 2, 3), t64(1, 2, 2)
    out, hn = gru(x, h0)
    ref, h = gru_ref(np_(x), np_(h0)[0], *layer_params(gru, 0))
    np.testing.assert_allclose(np_(out), ref, rtol=1e-10)
    np.testing.assert_allclose(np_(hn)[0], h, rtol=1e-10)
    module_check(gru, x)
    rnn = nn.RNN(3, 2, num_layers=2, nonlinearity="relu").double()
    out, hn = rnn(x)
    seq = np_(x)
    for k in range(2):
        w_ih, w_hh, b_ih, b_hh = layer_params(rnn, k)
        h = np.zeros((2, 2))
        outs = []
        for xt in seq:
            h = np.maximum(xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 0)
            outs.append(h)
        seq = np.stack(outs)
    np.testing.assert_allclose(np_(out), seq, rtol=1e-10)
    module_check(nn.RNN(3, 2), x)


def test_rnn_unbatched_input_and_cells():
    lstm = nn.LSTM(3, 2)
    out, (h, c) = lstm(ember.randn(5, 3))
    assert out.shape == (5, 2) and h.shape == (1, 2) and c.shape == (1, 2)
    cell = nn.LSTMCell(3, 2).double()
    x, h0, c0 = t64(4, 3), t64(4, 2), t64(4, 2)
    h1, c1 = cell(x, (h0, c0))
    _, hr, cr = lstm_ref(
        np_(x)[None],
        np_(h0),
        np_(c0),
        np_(cell.weight_ih),
        np_(cell.weight_hh),
        np_(cell.bias_ih),
        np_(cell.bias_hh),
    )
    np.testing.assert_allclose(np_(h1), hr, rtol=1e-10)
    np.testing.assert_allclose(np_(c1), cr, rtol=1e-10)
    g = nn.GRUCell(3, 2).double()
    _, hr = gru_ref(np_(x)[None], np_(h0), np_(g.weight_ih), np_(g.weight_hh), np_(g.bias_ih), np_(g.bias_hh))
    np.testing.assert_allclose(np_(g(x, h0)), hr, rtol=1e-10)


# ---- attention --------------------------------------------------------------------------------


def mha_ref(q, k, v, w_in, b_in, w_out, b_out, heads, add_mask=None):
    e = q.shape[-1]
    d = e // heads
    qp = q @ w_in[:e].T + b_in[:e]
    kp = k @ w_in[e : 2 * e].T + b_in[e : 2 * e]
    vp = v @ w_in[2 * e :].T + b_in[2 * e :]
    n, lq, s = q.shape[0], q.shape[1], k.shape[1]
    split = lambda a, ln: a.reshape(n, ln, heads, d).transpose(0, 2, 1, 3)
    scores = split(qp, lq) @ split(kp, s).transpose(0, 1, 3, 2) / np.sqrt(d)
    if add_mask is not None:
        scores = scores + add_mask
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = (p @ split(vp, s)).transpose(0, 2, 1, 3).reshape(n, lq, e)
    return out @ w_out.T + b_out, p.mean(1)


def test_multihead_attention_matches_numpy_with_masks():
    mha = nn.MultiheadAttention(6, 2, batch_first=True).double()
    mha.in_proj_bias._data[:] = RNG.standard_normal(18)
    q, k, v = t64(2, 3, 6), t64(2, 4, 6), t64(2, 4, 6)
    kpm = ember.tensor([[False, False, False, True], [False, True, False, False]])
    attn_mask = ember.tensor(np.triu(np.ones((3, 4), dtype=bool), 2))
    out, w = mha(q, k, v, key_padding_mask=kpm, attn_mask=attn_mask)
    add = (
        np.where(np_(attn_mask), -np.inf, 0.0)[None, None]
        + np.where(np_(kpm), -np.inf, 0.0)[:, None, None, :]
    )
    ref, ref_w = mha_ref(
        np_(q),
        np_(k),
        np_(v),
        np_(mha.in_proj_weight),
        np_(mha.in_proj_bias),
        np_(mha.out_proj.weight),
        np_(mha.out_proj.bias),
        2,
        add,
    )
    np.testing.assert_allclose(np_(out), ref, rtol=1e-10)
    np.testing.assert_allclose(np_(w), ref_w, rtol=1e-10)
    assert np.all(np_(w)[0, :, 3] == 0)  # padded key gets no attention
    check(
        lambda q, k, v, *p: mha(q, k, v, key_padding_mask=kpm, attn_mask=attn_mask)[0],
        q,
        k,
        v,
        *mha.parameters(),
    )


def test_multihead_attention_sequence_first_layout_self_attention_and_options():
    mha = nn.MultiheadAttention(4, 2).double()
    x = t64(3, 2, 4)  # (L, N, E)
    out, w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    ref, _ = mha_ref(
        np_(x).transpose(1, 0, 2),
        np_(x).transpose(1, 0, 2),
        np_(x).transpose(1, 0, 2),
        np_(mha.in_proj_weight),
        np_(mha.in_proj_bias),
        np_(mha.out_proj.weight),
        np_(mha.out_proj.bias),
        2,
    )
    np.testing.assert_allclose(np_(out), ref.transpose(1, 0, 2), rtol=1e-10)
    assert w.shape == (2, 2, 3, 3)
    assert mha(x, x, x, need_weights=False)[1] is None
    float_mask = t64(3, 3, grad=False)
    check(lambda x, *p: mha(x, x, x)[0], x, *mha.parameters())
    check(lambda x: mha(x, x, x, attn_mask=float_mask)[0], x)
    assert mha(x[:, 0], x[:, 0], x[:, 0])[0].shape == (3, 4)  # unbatched


def test_transformer_encoder_layer_shapes_and_gradcheck():
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True).double()
    x = t64(2, 3, 4)
    assert layer(x).shape == (2, 3, 4)
    module_check(layer, x)
    pre = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, norm_first=True, activation="gelu").double()
    module_check(pre, t64(3, 2, 4))
    enc = nn.TransformerEncoder(layer, 2)
    assert len(list(enc.parameters())) == 2 * len(list(layer.parameters()))
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    assert isinstance(enc.layers[1].linear1.weight, nn.Parameter)
    assert enc(x).shape == (2, 3, 4)


# ---- init -------------------------------------------------------------------------------------


def test_init_functions_have_the_documented_statistics():
    g = ember.Generator().manual_seed(0)
    w = ember.empty(300, 200)
    nn.init.uniform_(w, -2, 3, generator=g)
    assert np_(w).min() >= -2 and np_(w).max() < 3 and abs(np_(w).mean() - 0.5) < 0.05
    nn.init.normal_(w, 1.0, 2.0, generator=g)
    assert abs(np_(w).mean() - 1) < 0.05 and abs(np_(w).std() - 2) < 0.05
    nn.init.xavier_uniform_(w, generator=g)
    assert np.abs(np_(w)).max() <= math.sqrt(6 / 500) + 1e-7
    nn.init.xavier_normal_(w, generator=g)
    assert abs(np_(w).std() - math.sqrt(2 / 500)) < 0.003
    nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
    assert abs(np_(w).std() - math.sqrt(2 / 200)) < 0.003
    nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu", generator=g)
    assert np.abs(np_(w)).max() <= math.sqrt(6 / 300) + 1e-7
    nn.init.constant_(w, 0.25)
    assert np.all(np_(w) == 0.25)
    nn.init.zeros_(w), nn.init.ones_(w)
    assert np.all(np_(w) == 1)
    q = ember.empty(5, 8, dtype=ember.float64)
    nn.init.orthogonal_(q, generator=g)
    np.testing.assert_allclose(np_(q) @ np_(q).T, np.eye(5), atol=1e-12)
    nn.init.orthogonal_(ember.empty(8, 5), gain=2.0)
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)


def test_init_is_reproducible_with_a_generator_and_records_no_graph():
    p = nn.Parameter(ember.empty(3, 3))
    nn.init.normal_(p, generator=ember.Generator().manual_seed(7))
    a = np_(p).copy()
    nn.init.normal_(p, generator=ember.Generator().manual_seed(7))
    np.testing.assert_array_equal(a, np_(p))
    assert p.is_leaf and p.requires_grad


def test_layers_run_on_the_standin_device():
    """Every layer's arrays go through the xp module (standin raises on a host fallback)."""
    ember.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3),
    ).to("standin")
    x = ember.randn(2, 1, 4, 4, device="standin")
    loss = F.cross_entropy(model(x), ember.tensor([0, 2], device="standin"), label_smoothing=0.1)
    loss.backward()
    assert str(model[0].weight.grad.device) == "standin"
    lstm = nn.LSTM(3, 2).to("standin")
    out, _ = lstm(ember.randn(4, 2, 3, device="standin"))
    out.sum().backward()
    mha = nn.MultiheadAttention(4, 2).to("standin")
    y = ember.randn(3, 2, 4, device="standin")
    mha(y, y, y, key_padding_mask=ember.zeros(2, 3, dtype=ember.bool, device="standin"))[0].sum().backward()
    bag = nn.EmbeddingBag(5, 2).to("standin")
    bag(ember.tensor([[1, 2], [3, 4]], device="standin")).sum().backward()
