"""Complex tensors work through the engine (creation, arithmetic, matmul, reductions,
unary math, linalg, fft) and give numpy's values; the unsigned dtypes work; ember refuses
to differentiate complex tensors with a message that says so."""

from __future__ import annotations

import numpy as np
import pytest

import ember

_r = np.random.default_rng(11)
Z = (_r.standard_normal((3, 4)) + 1j * _r.standard_normal((3, 4))).astype(np.complex64)
W = (_r.standard_normal((4, 2)) + 1j * _r.standard_normal((4, 2))).astype(np.complex64)


def test_complex_creation_defaults_follow_the_default_float():
    assert ember.tensor([1 + 2j, 3j]).dtype == ember.complex64
    assert ember.tensor([1j], dtype=ember.complex128).dtype == ember.complex128
    assert ember.tensor(Z.astype(np.complex128)).dtype == ember.complex128  # a numpy array keeps its dtype
    assert ember.full((2,), 1j).dtype == ember.complex64
    assert ember.zeros(2, dtype=ember.cfloat).dtype == ember.complex64 and ember.cdouble == ember.complex128
    assert ember.tensor([1.0]).to(complex).dtype == ember.complex64
    assert "dtype=ember.complex64" in repr(ember.tensor([1 + 1j]))


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: a + b,
        lambda a, b: a * b,
        lambda a, b: a - 2.5 * b,
        lambda a, b: a / (b + 3),
        lambda a, b: a**2,
        lambda a, b: (a * b).sum(1),
        lambda a, b: (a + b).mean(0),
        lambda a, b: (a * 0.5).prod(1),
        lambda a, b: a.cumsum(1),
    ],
    ids=["add", "mul", "scalar", "div", "pow", "sum", "mean", "prod", "cumsum"],
)
def test_complex_arithmetic_and_reductions_match_numpy(fn):
    got = fn(ember.tensor(Z), ember.tensor(Z[::-1].copy()))
    want = fn(Z, Z[::-1].copy())
    assert got.dtype == ember.complex64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_complex_matmul_and_mixed_dtypes():
    got = ember.tensor(Z) @ ember.tensor(W)
    assert got.dtype == ember.complex64
    np.testing.assert_allclose(got.numpy(), Z @ W, rtol=1e-5, atol=1e-5)
    assert (ember.tensor(Z) * ember.ones(3, 4, dtype=ember.float64)).dtype == ember.complex128
    assert (ember.tensor(Z) * ember.ones(3, 4)).dtype == ember.complex64


@pytest.mark.parametrize(
    "name", ["exp", "log", "sqrt", "sin", "cos", "tanh", "tan", "sinh", "expm1", "log1p"]
)
def test_complex_unary_math_matches_numpy(name):
    got = getattr(ember, name)(ember.tensor(Z))
    assert got.dtype == ember.complex64
    np.testing.assert_allclose(got.numpy(), getattr(np, name)(Z), rtol=1e-5, atol=1e-6)


def test_complex_special_values_follow_the_standard():
    inf, nan = float("inf"), float("nan")
    z = ember.tensor([complex(inf, 3.0), complex(inf, -3.0), complex(-0.0, 0.0)], dtype=ember.complex128)
    t = ember.tanh(z).numpy()
    assert t[0] == 1 and np.copysign(1, t[0].imag) == 1  # numpy gives 1 - 0j (sin(6) < 0)
    assert np.copysign(1, t[1].imag) == -1
    e = ember.expm1(
        ember.tensor([complex(-0.0, 0.0), complex(inf, 0.0), complex(nan, 0.0)], dtype=ember.complex128)
    )
    r = e.numpy()
    assert r[0] == 0 and np.copysign(1, r[0].real) == 1 and r[1] == complex(inf, 0) and r[2].imag == 0
    small = ember.expm1(ember.tensor([complex(1e-10, 1e-10)], dtype=ember.complex128)).item()
    assert abs(small.real - 1e-10) < 1e-19  # accurate near 0


def test_complex_parts_abs_and_conjugate_transpose():
    z = ember.tensor(Z)
    assert z.real.dtype == ember.float32 and np.array_equal(z.real.numpy(), Z.real)
    assert np.array_equal(z.imag.numpy(), Z.imag)
    np.testing.assert_allclose(ember.abs(z).numpy(), np.abs(Z), rtol=1e-6)
    assert ember.abs(z).dtype == ember.float32
    np.testing.assert_array_equal(z.mH.numpy(), Z.conj().T)
    np.testing.assert_array_equal(z.H.numpy(), Z.conj().T)
    np.testing.assert_array_equal(ember.conj(z).numpy(), Z.conj())
    np.testing.assert_allclose(ember.angle(z).numpy(), np.angle(Z), rtol=1e-6)
    assert complex(ember.tensor(1 + 2j)) == 1 + 2j
    with pytest.raises(RuntimeError, match="non-complex"):
        ember.imag(ember.ones(2))


def test_complex_linalg_and_fft_forward():
    A = Z[:, :3].astype(np.complex128)
    np.testing.assert_allclose(ember.linalg.inv(ember.tensor(A)).numpy(), np.linalg.inv(A), rtol=1e-10)
    np.testing.assert_allclose(ember.linalg.svdvals(ember.tensor(A)).numpy(), np.linalg.svd(A)[1], rtol=1e-10)
    x = _r.standard_normal(16).astype(np.float32)
    spec = ember.fft.rfft(ember.tensor(x))
    assert spec.dtype == ember.complex64 and spec.shape == (9,)
    back = ember.fft.irfft(spec, n=16)
    assert back.dtype == ember.float32
    np.testing.assert_allclose(back.numpy(), x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ember.fft.fft2(ember.tensor(Z)).numpy(), np.fft.fft2(Z), rtol=1e-4, atol=1e-4)
    assert ember.fft.fft(ember.tensor([1, 0, 0, 0])).dtype == ember.complex64  # ints: the default float


def test_complex_tensors_refuse_requires_grad_with_the_reason():
    with pytest.raises(RuntimeError, match="does not differentiate complex"):
        ember.tensor([1j], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1], requires_grad=True)
    x = ember.ones(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="does not differentiate the Fourier"):
        ember.fft.rfft(x)  # a real input whose gradient would be lost
    with pytest.raises(RuntimeError, match="does not differentiate complex"):
        ember.linalg.eig(ember.eye(2, requires_grad=True))
    with ember.no_grad():
        assert ember.fft.rfft(x).shape == (3,)
    assert ember.fft.rfft(x.detach()).dtype == ember.complex64


def test_unsigned_dtypes():
    for dt, npdt in ((ember.uint16, np.uint16), (ember.uint32, np.uint32), (ember.uint64, np.uint64)):
        a = ember.tensor([1, 2, 3], dtype=dt)
        assert a.dtype == npdt and (a + 1).dtype == npdt and (a * a).tolist() == [1, 4, 9]
        assert ember.sum(a).dtype == np.uint64
        assert ember.iinfo(dt).max == np.iinfo(npdt).max
    assert ember.tensor([2**63], dtype=ember.uint64).item() == 2**63
    assert (ember.tensor([1], dtype=ember.uint8) + ember.tensor([1], dtype=ember.int8)).dtype == ember.int16


def test_unary_math_of_integers_gives_the_default_float():
    for dt in (ember.bool, ember.int8, ember.int32, ember.int64):
        x = ember.tensor([1, 0], dtype=dt)
        for fn in (ember.exp, ember.sqrt, ember.sigmoid, ember.tanh, ember.log1p, ember.atan, ember.erf):
            assert fn(x).dtype == ember.float32, (fn, dt)


def test_fmod_keeps_the_dividends_sign_and_remainder_the_divisors():
    a = ember.tensor([-3.0, 3.0, -3.0])
    assert ember.fmod(a, 2).tolist() == [-1.0, 1.0, -1.0]
    assert ember.remainder(a, 2).tolist() == [1.0, 1.0, 1.0]
    assert ember.fmod(ember.tensor([-7, 7]), -3).tolist() == [-1, 1]


def test_stable_descending_sort_of_small_ints_does_not_overflow():
    a = ember.tensor([-128, 5, -128, 127], dtype=ember.int8)
    s = ember.sort(a, descending=True, stable=True)
    assert s.values.tolist() == [127, 5, -128, -128] and s.indices.tolist() == [3, 1, 0, 2]
    u = ember.tensor([0, 255, 0, 1], dtype=ember.uint8)
    assert ember.argsort(u, descending=True, stable=True).tolist() == [1, 3, 0, 2]
