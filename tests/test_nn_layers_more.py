"""The layers added for PyTorch programs: values against numpy references written here (loops
over the definitions), gradients by gradcheck in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.autograd import gradcheck, gradgradcheck
from ember.nn.utils import rnn as R

RNG = np.random.default_rng(1)


def t64(*shape, grad=True):
    return ember.tensor(RNG.standard_normal(shape), dtype=ember.float64, requires_grad=grad)


def np_(t):
    return t.detach().numpy()


def check(fn, *inputs):
    """gradcheck of ``sum(fn(...) * R)`` for a fixed random R."""
    out = fn(*inputs)
    proj = ember.tensor(RNG.standard_normal(out.shape), dtype=ember.float64)
    assert gradcheck(lambda *a: (fn(*a) * proj).sum(), inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


# ---- transposed convolution ---------------------------------------------------------------------


def _conv_transpose_ref(x, w, b, stride, padding, output_padding, dilation, groups):
    """Each input pixel scatters ``x * kernel`` into the (uncropped) output, then crop."""
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    cout = cog * groups
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((n, cout, ho + 2 * ph + kh * dh, wo + 2 * pw + kw * dw))
    cig = cin // groups
    for ci in range(cin):
        g = ci // cig
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for c in range(kw):
                        full[:, g * cog : (g + 1) * cog, i * sh + a * dh, j * sw + c * dw] += (
                            x[:, ci, i, j][:, None] * w[ci, :, a, c][None, :]
                        )
    out = full[:, :, ph : ph + ho, pw : pw + wo]
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


@pytest.mark.parametrize(
    "kw",
    [
        dict(stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1),
        dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(1, 1), groups=1),
        dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2), dilation=(1, 1), groups=2),
        dict(stride=(1, 1), padding=(1, 0), output_padding=(1, 0), dilation=(2, 1), groups=1),
    ],
    ids=["plain", "stride2-pad-outpad", "groups-anisotropic", "dilated"],
)
def test_conv_transpose2d_matches_the_scatter_definition_and_gradchecks(kw):
    groups = kw["groups"]
    x, w, b = t64(2, 4, 3, 4), t64(4, 6 // groups, 3, 2), t64(6)
    out = F.conv_transpose2d(x, w, b, **kw)
    ref = _conv_transpose_ref(np_(x), np_(w), np_(b), **{k: kw[k] for k in kw})
    np.testing.assert_allclose(np_(out), ref, rtol=1e-10, atol=1e-12)
    check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), x, w, b)


def test_conv_transpose_double_backward_and_is_the_adjoint_of_conv2d():
    x, w = t64(1, 2, 3, 3), t64(2, 3, 3, 3)
    assert gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2), (x, w), atol=1e-5)
    assert gradgradcheck(
        lambda x, w: F.conv_transpose2d(x, w, padding=1, output_padding=1, dilation=2), (x, w), atol=1e-5
    )
    # <conv_transpose(y, w), z> == <y, conv2d(z, w)>: the transpose, by definition
    y, z = t64(1, 2, 4, 4, grad=False), t64(1, 3, 9, 9, grad=False)
    lhs = (F.conv_transpose2d(y, w.detach(), stride=2) * z).sum().item()
    rhs = (y * F.conv2d(z, w.detach(), stride=2)).sum().item()
    assert lhs == pytest.approx(rhs, rel=1e-10)


def test_conv_transpose_modules_shapes_init_and_output_size():
    m = nn.ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1)
    assert m.weight.shape == (16, 8, 4, 4) and m(ember.randn(1, 16, 7, 7)).shape == (1, 8, 14, 14)
    bound = 1 / math.sqrt(8 * 16)
    assert float(m.bias.abs().max()) <= bound
    m3 = nn.ConvTranspose2d(2, 2, 3, stride=2)
    assert m3(ember.randn(1, 2, 5, 5), output_size=(12, 12)).shape == (1, 2, 12, 12)
    with pytest.raises(ValueError, match="valid sizes range from 11 to 12"):
        m3(ember.randn(1, 2, 5, 5), output_size=(13, 13))
    m1 = nn.ConvTranspose1d(4, 2, kernel_size=3, stride=2)
    x = t64(2, 4, 10)
    assert m1(ember.randn(1, 4, 10)).shape == (1, 2, 21)
    m1.double()
    check(
        lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1),
        x,
        m1.weight,
        m1.bias,
    )
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        F.conv_transpose2d(ember.randn(1, 1, 3, 3), ember.randn(1, 1, 3, 3), output_padding=1)
    with pytest.raises(ValueError, match="not supported by ConvTranspose2d"):
        nn.ConvTranspose2d(1, 1, 3, padding="same")


# ---- adaptive pooling -------------------------------------------------------------------------


def _adaptive_ref(x, oh, ow, red):
    h, w = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        a, b = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            c, d = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[..., i, j] = red(x[..., a:b, c:d], axis=(-2, -1))
    return out


@pytest.mark.parametrize("size", [1, (2, 3), (3, 4), (5, 7), (4, None)])
def test_adaptive_pools_match_the_bin_definition_and_gradcheck(size):
    x = t64(2, 3, 5, 7)
    oh, ow = (size, size) if isinstance(size, int) else (size[0], size[1] or 7)
    np.testing.assert_allclose(
        np_(nn.AdaptiveAvgPool2d(size)(x)), _adaptive_ref(np_(x), oh, ow, np.mean), rtol=1e-12
    )
    np.testing.assert_allclose(
        np_(nn.AdaptiveMaxPool2d(size)(x)), _adaptive_ref(np_(x), oh, ow, np.max), rtol=0
    )
    check(lambda x: F.adaptive_avg_pool2d(x, size), x)
    check(lambda x: F.adaptive_max_pool2d(x, size), x)


def test_adaptive_pools_1d_and_unbatched():
    x = t64(2, 3, 9)
    ref = np.stack([np_(x)[..., (i * 9) // 4 : -(-((i + 1) * 9) // 4)].mean(-1) for i in range(4)], -1)
    np.testing.assert_allclose(np_(nn.AdaptiveAvgPool1d(4)(x)), ref, rtol=1e-12)
    refm = np.stack([np_(x)[..., (i * 9) // 4 : -(-((i + 1) * 9) // 4)].max(-1) for i in range(4)], -1)
    np.testing.assert_allclose(np_(nn.AdaptiveMaxPool1d(4)(x)), refm)
    check(lambda x: F.adaptive_avg_pool1d(x, 4), x)
    assert nn.AdaptiveAvgPool2d(2)(ember.randn(3, 5, 5)).shape == (3, 2, 2)
    with pytest.raises(NotImplementedError, match="return_indices"):
        nn.AdaptiveMaxPool2d(2, return_indices=True)(ember.randn(1, 1, 4, 4))


# ---- interpolation ----------------------------------------------------------------------------


def _bilinear_ref(x, oh, ow, align_corners, scales=None):
    h, w = x.shape[-2:]

    def src(d, n_in, n_out, scale):
        if align_corners:
            return d * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return max((d + 0.5) * scale - 0.5, 0.0)

    sh, sw = scales or (h / oh, w / ow)
    out = np.empty(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        y = src(i, h, oh, sh)
        y0 = min(int(math.floor(y)), h - 1)
        y1, ly = min(y0 + 1, h - 1), y - y0
        for j in range(ow):
            xx = src(j, w, ow, sw)
            x0 = min(int(math.floor(xx)), w - 1)
            x1, lx = min(x0 + 1, w - 1), xx - x0
            out[..., i, j] = (
                (1 - ly) * (1 - lx) * x[..., y0, x0]
                + (1 - ly) * lx * x[..., y0, x1]
                + ly * (1 - lx) * x[..., y1, x0]
                + ly * lx * x[..., y1, x1]
            )
    return out


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(11, 13), (3, 4), (1, 1)])
def test_bilinear_interpolate_matches_the_pixel_formula_and_gradchecks(size, align_corners):
    x = t64(2, 2, 5, 6)
    out = F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    np.testing.assert_allclose(np_(out), _bilinear_ref(np_(x), *size, align_corners), rtol=1e-10, atol=1e-12)
    check(lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners), x)


def test_scale_factor_sets_the_source_scale_unless_recomputed():
    x = t64(1, 1, 4, 5)
    out = F.interpolate(x, scale_factor=2.5, mode="bilinear")
    assert out.shape == (1, 1, 10, 12)
    np.testing.assert_allclose(np_(out), _bilinear_ref(np_(x), 10, 12, False, (0.4, 0.4)), rtol=1e-10)
    rec = F.interpolate(x, scale_factor=2.5, mode="bilinear", recompute_scale_factor=True)
    np.testing.assert_allclose(np_(rec), _bilinear_ref(np_(x), 10, 12, False, (0.4, 5 / 12)), rtol=1e-10)


def test_nearest_and_linear_interpolation():
    x = ember.arange(6.0).reshape(1, 1, 2, 3)
    up = nn.Upsample(scale_factor=2)(x)
    assert up.tolist() == [[[[0, 0, 1, 1, 2, 2]] * 2 + [[3, 3, 4, 4, 5, 5]] * 2]]
    down = F.interpolate(ember.arange(10.0).reshape(1, 1, 10), size=4)
    assert down.tolist() == [[[0.0, 2.0, 5.0, 7.0]]]  # floor(d * 10 / 4)
    exact = F.interpolate(ember.arange(10.0).reshape(1, 1, 10), size=4, mode="nearest-exact")
    assert exact.tolist() == [[[1.0, 3.0, 6.0, 8.0]]]  # floor((d + 0.5) * 10 / 4)
    lin = F.interpolate(ember.tensor([[[0.0, 10.0]]]), size=5, mode="linear", align_corners=True)
    np.testing.assert_allclose(lin.numpy(), [[[0, 2.5, 5, 7.5, 10]]])
    check(lambda x: F.interpolate(x, scale_factor=3, mode="nearest"), t64(1, 2, 3, 2))
    check(lambda x: F.interpolate(x, size=7, mode="linear"), t64(2, 2, 4))
    assert nn.UpsamplingBilinear2d(scale_factor=2).align_corners is True


def test_interpolate_errors_are_pytorch_like():
    x = ember.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(NotImplementedError, match="bilinear mode needs 4D input"):
        F.interpolate(ember.randn(1, 1, 4), size=3, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.interpolate(x, size=3, mode="bicubic")


# ---- normalisation, distances, KL ---------------------------------------------------------------


def test_group_norm_matches_numpy_and_gradchecks():
    x = t64(2, 6, 3, 2)
    gn = nn.GroupNorm(3, 6).double()
    with ember.no_grad():
        gn.weight.normal_()
        gn.bias.normal_()
    xn = np_(x).reshape(2, 3, -1)
    ref = ((xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)).reshape(2, 6, 3, 2)
    ref = ref * np_(gn.weight).reshape(1, 6, 1, 1) + np_(gn.bias).reshape(1, 6, 1, 1)
    np.testing.assert_allclose(np_(gn(x)), ref, rtol=1e-10, atol=1e-12)
    check(lambda x, w, b: F.group_norm(x, 3, w, b), x, gn.weight, gn.bias)
    assert gn(x[:1]).shape == (1, 6, 3, 2)  # per-sample statistics: any batch size
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match=r"expected input of shape \(N, 6"):
        gn(ember.randn(2, 5, 3))


def test_cosine_similarity_and_pairwise_distance():
    a, b = t64(4, 6), t64(1, 6)
    ref = (np_(a) * np_(b)).sum(1) / (np.linalg.norm(np_(a), axis=1) * np.linalg.norm(np_(b), axis=1))
    np.testing.assert_allclose(np_(nn.CosineSimilarity(dim=1)(a, b)), ref, rtol=1e-12)
    check(lambda a, b: F.cosine_similarity(a, b, dim=1), a, b)
    assert F.cosine_similarity(ember.zeros(2, 3), ember.ones(2, 3)).tolist() == [0.0, 0.0]  # eps, no nan
    d = nn.PairwiseDistance()(a, b)
    np.testing.assert_allclose(np_(d), np.linalg.norm(np_(a) - np_(b) + 1e-6, axis=1), rtol=1e-12)
    check(lambda a, b: F.pairwise_distance(a, b), a, b)


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean", "none"])
def test_kl_div_matches_the_definition_and_gradchecks(reduction):
    logits = t64(3, 5)
    p = RNG.dirichlet(np.ones(5), 3)
    p[0, 2] = 0.0  # a zero target: contributes 0, no nan in value or gradient
    target = ember.tensor(p, requires_grad=True)
    logq = F.log_softmax(logits, 1)
    point = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np_(logq)), 0.0)
    ref = {"batchmean": point.sum() / 3, "sum": point.sum(), "mean": point.mean(), "none": point}[reduction]
    out = nn.KLDivLoss(reduction=reduction)(logq, target)
    np.testing.assert_allclose(np_(out), ref, rtol=1e-12)
    out.sum().backward()
    assert np.all(np.isfinite(target.grad.numpy()))
    check(lambda x: F.kl_div(F.log_softmax(x, 1), ember.tensor(p), reduction=reduction), logits)
    lt = F.kl_div(logq, ember.tensor(np.log(p + 1e-3)), reduction=reduction, log_target=True)
    pl = np.log(p + 1e-3)
    ref_lt = np.exp(pl) * (pl - np_(logq))
    ref_lt = {"batchmean": ref_lt.sum() / 3, "sum": ref_lt.sum(), "mean": ref_lt.mean(), "none": ref_lt}[
        reduction
    ]
    np.testing.assert_allclose(np_(lt), ref_lt, rtol=1e-12)


# ---- transformer decoder ------------------------------------------------------------------------


def test_decoder_layer_gradchecks_and_respects_the_causal_mask():
    ember.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True).double()
    tgt, mem = t64(2, 4, 8), t64(2, 5, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=ember.float64)
    assert mask.tolist()[0] == [0.0, -math.inf, -math.inf, -math.inf]
    params = list(layer.parameters())
    proj = ember.tensor(RNG.standard_normal((2, 4, 8)))

    def f(t, m, *ps):
        return (layer(t, m, tgt_mask=mask) * proj).sum()

    assert gradcheck(f, (tgt, mem, *params[:4]), eps=1e-6, atol=1e-6, rtol=1e-4)
    out = layer(tgt, mem, tgt_mask=mask)
    changed = tgt.detach().clone()
    changed[:, 3] += 5.0  # the last target position: no earlier output may move
    out2 = layer(changed, mem, tgt_mask=mask)
    np.testing.assert_allclose(np_(out2)[:, :3], np_(out)[:, :3], rtol=1e-10, atol=1e-12)
    assert not np.allclose(np_(out2)[:, 3], np_(out)[:, 3])


def test_memory_key_padding_mask_hides_padded_memory():
    ember.manual_seed(1)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), num_layers=2)
    tgt, mem = ember.randn(3, 2, 8), ember.randn(5, 2, 8)
    kpm = ember.tensor([[False, False, False, True, True], [False] * 5])
    out = dec(tgt, mem, memory_key_padding_mask=kpm)
    mem2 = mem.clone()
    mem2[3:, 0] = 100.0  # only padded positions of sample 0 change
    out2 = dec(tgt, mem2, memory_key_padding_mask=kpm)
    np.testing.assert_allclose(out2.detach().numpy(), out.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_transformer_has_pytorchs_state_dict_layout_and_shapes():
    model = nn.Transformer(
        d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32
    )
    keys = set(model.state_dict())
    for k in (
        "encoder.layers.0.self_attn.in_proj_weight",
        "encoder.norm.weight",
        "decoder.layers.0.multihead_attn.out_proj.weight",
        "decoder.layers.0.norm3.bias",
        "decoder.norm.bias",
        "decoder.layers.0.linear2.weight",
    ):
        assert k in keys, k
    assert len(keys) == 12 + 18 + 2 + 2  # an encoder layer, a decoder layer (2 attentions, 3 norms), 2 norms
    out = model(ember.randn(10, 2, 16), ember.randn(7, 2, 16))
    assert out.shape == (7, 2, 16)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        model(ember.randn(10, 2, 16), ember.randn(7, 3, 16))
    bf = nn.Transformer(16, 4, 1, 1, 32, batch_first=True)
    assert bf(ember.randn(2, 10, 16), ember.randn(2, 7, 16)).shape == (2, 7, 16)


# ---- packed sequences ---------------------------------------------------------------------------


def test_pad_pack_round_trip_and_layout():
    seqs = [ember.tensor(RNG.standard_normal((n, 2))) for n in (2, 4, 1)]
    padded = R.pad_sequence(seqs)
    assert padded.shape == (4, 3, 2) and np.all(padded.numpy()[2:, 0] == 0)
    packed = R.pack_padded_sequence(padded, [2, 4, 1], enforce_sorted=False)
    assert packed.batch_sizes.tolist() == [3, 2, 1, 1] and packed.sorted_indices.tolist() == [1, 0, 2]
    # time-major, longest first: step 0 of seqs 1, 0, 2, then step 1 of seqs 1, 0, ...
    np.testing.assert_array_equal(
        packed.data.numpy()[:3], np.stack([s.numpy()[0] for s in (seqs[1], seqs[0], seqs[2])])
    )
    back, lengths = R.pad_packed_sequence(packed, batch_first=True, total_length=6)
    assert lengths.tolist() == [2, 4, 1] and back.shape == (3, 6, 2)
    for s, b_, n in zip(seqs, back.numpy(), (2, 4, 1)):
        np.testing.assert_array_equal(b_[:n], s.numpy())
        assert np.all(b_[n:] == 0)
    assert [u.shape[0] for u in R.unpack_sequence(packed)] == [2, 4, 1]
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        R.pack_padded_sequence(padded, [2, 4, 1])
    with pytest.raises(RuntimeError, match="greater than 0"):
        R.pack_padded_sequence(padded, [2, 0, 1], enforce_sorted=False)
    with pytest.raises(ValueError, match="total_length to be at least"):
        R.pad_packed_sequence(packed, total_length=3)


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_layers_on_packed_sequences_equal_each_sequence_alone(cls, bidirectional):
    ember.manual_seed(0)
    m = getattr(nn, cls)(3, 4, num_layers=2, bidirectional=bidirectional)
    lens = [2, 5, 3, 5, 1]
    seqs = [ember.randn(n, 3) for n in lens]
    d = 2 if bidirectional else 1
    h0 = ember.randn(2 * d, 5, 4)
    hx = (h0, h0 * 0.5) if cls == "LSTM" else h0
    out, h_n = m(R.pack_sequence(seqs, enforce_sorted=False), hx)
    assert isinstance(out, R.PackedSequence)
    padded, lengths = R.pad_packed_sequence(out)
    h_n = h_n[0] if cls == "LSTM" else h_n
    for i, (s, n) in enumerate(zip(seqs, lens)):
        hi = h0[:, i : i + 1]
        o_ref, h_ref = m(s.unsqueeze(1), (hi, hi * 0.5) if cls == "LSTM" else hi)
        h_ref = h_ref[0] if cls == "LSTM" else h_ref
        np.testing.assert_allclose(
            padded.detach().numpy()[:n, i], o_ref.detach().numpy()[:, 0], rtol=1e-5, atol=1e-6
        )
        assert np.all(padded.detach().numpy()[n:, i] == 0)
        np.testing.assert_allclose(
            h_n.detach().numpy()[:, i], h_ref.detach().numpy()[:, 0], rtol=1e-5, atol=1e-6
        )


def test_packed_lstm_gradchecks():
    ember.manual_seed(0)
    m = nn.LSTM(2, 3).double()
    x = t64(4, 3, 2)

    def f(x, *ps):
        packed = R.pack_padded_sequence(x, [4, 2, 1])
        out, (h, c) = m(packed)
        padded, _ = R.pad_packed_sequence(out)
        return (padded * padded).sum() + (h * c).sum()

    assert gradcheck(f, (x, *list(m.parameters())[:2]), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_binary_cross_entropy_gradient_is_finite_at_0_and_1_as_pytorchs():
    x = ember.tensor([0.0, 1.0, 1.0, 0.5, 0.0], requires_grad=True)
    t = ember.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    loss = F.binary_cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [0, 0, 100, math.log(2), 100], rtol=1e-6)
    loss.sum().backward()
    # (x - t) / max(x (1 - x), 1e-12), PyTorch's formula: 0 where x == t, +-1e12 at the wrong end
    np.testing.assert_allclose(x.grad.numpy(), [0, 0, 1e12, -2, -1e12], rtol=1e-6)
    p = ember.tensor(RNG.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    y = ember.tensor(RNG.uniform(0, 1, (3, 4)), requires_grad=True)
    assert gradcheck(lambda p, y: F.binary_cross_entropy(p, y), (p, y))
    assert gradgradcheck(lambda p, y: F.binary_cross_entropy(p, y, reduction="sum"), (p, y))


def test_adaptive_max_pool1d_and_upsampling_modules_gradcheck():
    x = t64(2, 3, 10)
    check(lambda x: F.adaptive_max_pool1d(x, 3), x)
    check(lambda x: nn.UpsamplingBilinear2d(size=(5, 7))(x), t64(1, 2, 4, 4))
    check(lambda x: nn.UpsamplingNearest2d(scale_factor=2)(x), t64(1, 2, 3, 3))
