"""``Tensor.__array_namespace__()`` gives ``ember.array_api``: the standard's names and
arguments over ember's ops."""

from __future__ import annotations

import numpy as np
import pytest

import ember

xp = ember.ones(1).__array_namespace__()
_a = np.arange(12, dtype=np.float32).reshape(3, 4) / 3 - 1


def test_namespace_identity_and_version():
    assert xp is ember.array_api
    assert xp.__array_api_version__ == "2024.12"
    assert xp.float32 == ember.float32 and xp.int64 == ember.int64 and xp.bool == ember.bool
    assert xp.isdtype(xp.float32, "real floating") and not xp.isdtype(xp.int8, "real floating")
    assert xp.isdtype(xp.uint8, ("bool", "integral"))


@pytest.mark.parametrize(
    "name, args, ref",
    [
        ("sum", {"axis": 1, "keepdims": True}, lambda a: a.sum(1, keepdims=True)),
        ("mean", {"axis": (0, 1)}, lambda a: a.mean((0, 1))),
        ("max", {"axis": 0}, lambda a: a.max(0)),
        ("min", {}, lambda a: a.min()),
        ("prod", {"axis": 1}, lambda a: a.prod(1)),
        ("prod", {"axis": (0, 1), "keepdims": True}, lambda a: a.prod((0, 1), keepdims=True)),
        ("var", {"axis": 1}, lambda a: a.var(1)),
        ("std", {"axis": 0, "correction": 1}, lambda a: a.std(0, ddof=1)),
        ("argmax", {"axis": 1}, lambda a: a.argmax(1)),
        ("cumulative_sum", {"axis": 1}, lambda a: a.cumsum(1)),
        ("matrix_transpose", {}, lambda a: a.T),
        ("permute_dims", {"axes": (1, 0)}, lambda a: a.T),
        ("reshape", {"shape": (2, 6)}, lambda a: a.reshape(2, 6)),
        ("expand_dims", {"axis": 1}, lambda a: a[:, None]),
        ("flip", {"axis": 0}, lambda a: a[::-1]),
        ("sort", {"axis": 1, "descending": True}, lambda a: -np.sort(-a, 1)),
        ("argsort", {"axis": 0}, lambda a: np.argsort(a, 0, kind="stable")),
        ("exp", {}, np.exp),
        ("abs", {}, np.abs),
        ("square", {}, np.square),
    ],
)
def test_standard_names_match_numpy(name, args, ref):
    got = getattr(xp, name)(xp.asarray(_a), **args)
    want = ref(_a)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_joining_where_astype_vecdot():
    a, b = xp.asarray(_a), xp.asarray(_a * 2)
    assert xp.concat([a, b], axis=1).shape == (3, 8)
    assert xp.concat([a, b], axis=None).shape == (24,)
    assert xp.stack([a, b], axis=0).shape == (2, 3, 4)
    assert xp.squeeze(xp.expand_dims(a, axis=0), axis=0).shape == (3, 4)
    np.testing.assert_allclose(xp.where(a > 0, a, b).numpy(), np.where(_a > 0, _a, _a * 2))
    assert xp.astype(a, xp.float64).dtype == xp.float64
    c = xp.astype(a, xp.float32)
    assert c is not a and c.dtype == xp.float32
    np.testing.assert_allclose(xp.vecdot(a, b).numpy(), (_a * _a * 2).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(xp.matmul(a, xp.matrix_transpose(b)).numpy(), _a @ (_a * 2).T, rtol=1e-5)


def test_creation_functions():
    assert xp.zeros((2, 3)).shape == (2, 3) and xp.zeros((2,)).dtype == xp.float32
    assert xp.ones((2,), dtype=xp.int64).tolist() == [1, 1]
    assert xp.full((2,), 3.0).tolist() == [3.0, 3.0]
    assert xp.arange(3).tolist() == [0, 1, 2]
    assert xp.linspace(0, 1, 4, endpoint=False).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert xp.eye(2, 3, k=1).tolist() == [[0, 1, 0], [0, 0, 1]]
    assert xp.eye(2).tolist() == [[1, 0], [0, 1]]
    assert xp.zeros_like(xp.ones((2,), dtype=xp.float64)).dtype == xp.float64
    assert xp.unique_values(xp.asarray([3, 1, 3])).tolist() == [1, 3]


def test_namespace_ops_are_differentiable():
    x = ember.tensor(_a, requires_grad=True)
    xp.sum(xp.mean(x * x, axis=1)).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * _a / 4, rtol=1e-6)


# ---- the 2024.12 additions ---------------------------------------------------------------------


def test_namespace_version_is_checked():
    t = ember.ones(1)
    assert t.__array_namespace__(api_version="2024.12") is xp
    assert t.__array_namespace__(api_version="2022.12") is xp
    with pytest.raises(ValueError, match="Unsupported API version"):
        t.__array_namespace__(api_version="2019.01")


def test_array_api_loads_after_a_bare_import(tmp_path):
    import subprocess
    import sys

    code = "import ember; xp = ember.array_api; print(xp.__array_api_version__, xp.sum(xp.ones(3)).item())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2024.12", "3.0"]


def test_inspection_namespace():
    info = xp.__array_namespace_info__()
    assert info.default_device() == "cpu" and "cpu" in info.devices()
    d = info.default_dtypes()
    assert d == {
        "real floating": xp.float32,
        "complex floating": xp.complex64,
        "integral": xp.int64,
        "indexing": xp.int64,
    }
    assert set(info.dtypes(kind="unsigned integer")) == {"uint8", "uint16", "uint32", "uint64"}
    assert set(info.dtypes(kind=("bool", "complex floating"))) == {"bool", "complex64", "complex128"}
    assert len(info.dtypes()) == 13
    assert info.capabilities()["boolean indexing"] is True


def test_finfo_and_iinfo_describe_the_dtypes():
    f = xp.finfo(xp.float32)
    assert (
        f.bits == 32 and f.eps == float(np.finfo(np.float32).eps) and f.max == float(np.finfo(np.float32).max)
    )
    assert f.smallest_normal == float(np.finfo(np.float32).tiny) and f.dtype == xp.float32
    assert xp.finfo(xp.complex128).dtype == xp.float64  # a complex dtype's real component
    assert xp.finfo(xp.ones(2, dtype=xp.float64)).bits == 64  # an array works too
    assert ember.finfo().dtype == ember.get_default_dtype() and ember.finfo(ember.half).resolution == 0.001
    i = xp.iinfo(xp.uint16)
    assert (i.bits, i.min, i.max) == (16, 0, 65535)
    assert ember.iinfo(ember.int8).min == -128
    with pytest.raises(TypeError, match="iinfo"):
        ember.finfo(ember.int32)
    with pytest.raises(TypeError, match="finfo"):
        ember.iinfo(ember.float32)


def test_axis_empty_tuple_reduces_nothing_and_dtype_is_honoured():
    a = xp.asarray([[1, 2], [3, 4]], dtype=xp.int8)
    s = xp.sum(a, axis=())
    assert s.shape == (2, 2) and s.dtype == xp.int64 and s.tolist() == [[1, 2], [3, 4]]
    assert xp.sum(a, dtype=xp.int8).dtype == xp.int8
    assert xp.prod(a, axis=(), dtype=xp.float64).dtype == xp.float64
    f = xp.asarray(_a)
    assert xp.max(f, axis=()).shape == (3, 4) and xp.mean(f, axis=()).shape == (3, 4)
    assert np.all(xp.var(f, axis=()).numpy() == 0)
    assert xp.sum(xp.asarray([1, 2], dtype=xp.uint8)).dtype == xp.uint64
    assert xp.cumulative_sum(xp.asarray([200, 100], dtype=xp.uint8), dtype=xp.uint8).tolist() == [200, 44]
    assert xp.cumulative_sum(xp.asarray([1, 2, 3]), include_initial=True).tolist() == [0, 1, 3, 6]
    assert xp.cumulative_prod(xp.asarray([1, 2, 3]), include_initial=True).tolist() == [1, 1, 2, 6]


def test_unique_functions_return_named_fields():
    x = xp.asarray([[3, 1], [3, 2]])
    r = xp.unique_all(x)
    assert r._fields == ("values", "indices", "inverse_indices", "counts")
    assert (
        r.values.tolist() == [1, 2, 3] and r.indices.tolist() == [1, 3, 0] and r.counts.tolist() == [1, 1, 2]
    )
    assert r.inverse_indices.shape == (2, 2) and r.inverse_indices.tolist() == [[2, 0], [2, 1]]
    assert xp.unique_counts(x)._fields == ("values", "counts")
    assert xp.unique_inverse(x).inverse_indices.tolist() == [[2, 0], [2, 1]]
    nan = xp.unique_values(xp.asarray([float("nan"), float("nan"), 1.0]))
    assert nan.shape == (3,)  # NaNs are all distinct


def test_tensordot_with_negative_axes_and_vecdot_rules():
    a, b = np.arange(24.0).reshape(2, 3, 4), np.arange(60.0).reshape(4, 3, 5)
    got = xp.tensordot(xp.asarray(a), xp.asarray(b), axes=([-1, -2], [0, 1]))
    np.testing.assert_allclose(got.numpy(), np.tensordot(a, b, axes=([-1, -2], [0, 1])), rtol=1e-5)
    with pytest.raises(RuntimeError, match="contracted dimensions need to match"):
        ember.tensordot(ember.ones(2, 3), ember.ones(2, 3), ([-1], [0]))
    with pytest.raises(RuntimeError, match="same size"):
        xp.vecdot(xp.ones((2, 3)), xp.ones((2, 1)))  # the contracted axis is not broadcast
    i8 = xp.asarray([100, 100], dtype=xp.int8)
    assert xp.vecdot(i8, i8).dtype == xp.int8
    assert xp.vecdot(xp.ones((2, 3)), xp.ones((3,))).shape == (2,)
    c = xp.asarray([1j, 2.0])
    assert xp.vecdot(c, c).item() == 5  # the first argument is conjugated


def test_elementwise_additions_match_numpy():
    i = np.array([-7, 3, 12], dtype=np.int16)
    j = np.array([2, 1, 3], dtype=np.int16)
    assert (xp.asarray(i) << xp.asarray(j)).tolist() == (i << j).tolist()
    assert (xp.asarray(i) >> 1).tolist() == (i >> 1).tolist()
    assert (5 & xp.asarray(j)).tolist() == (5 & j).tolist()  # reflected operators
    assert xp.bitwise_invert(xp.asarray(i)).tolist() == (~i).tolist()
    with pytest.raises(RuntimeError, match="bitwise"):
        xp.bitwise_and(xp.ones(2), xp.ones(2))
    f = np.array([-2.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32)
    for name in ("floor", "ceil", "trunc", "round", "signbit", "sinh", "cosh", "asinh", "atan", "log1p"):
        ref = getattr(np, "arcsinh" if name == "asinh" else "arctan" if name == "atan" else name)
        arg = np.abs(f) if name == "log1p" else f
        np.testing.assert_allclose(getattr(xp, name)(xp.asarray(arg)).numpy(), ref(arg), rtol=1e-6)
    assert xp.floor(xp.asarray([3], dtype=xp.int32)).dtype == xp.int32
    np.testing.assert_allclose(
        xp.nextafter(xp.asarray(f), xp.asarray(np.zeros(5, np.float32))).numpy(),
        np.nextafter(f, np.float32(0)),
    )
    np.testing.assert_allclose(xp.copysign(xp.asarray(f), -1.0).numpy(), -np.abs(f))


def test_manipulation_additions():
    a = xp.reshape(xp.arange(6), (2, 3))
    assert xp.moveaxis(xp.zeros((2, 3, 4)), 0, -1).shape == (3, 4, 2)
    assert [t.tolist() for t in xp.unstack(a, axis=1)] == [[0, 3], [1, 4], [2, 5]]
    assert xp.repeat(xp.asarray([1, 2]), 2).tolist() == [1, 1, 2, 2]
    assert xp.repeat(a, xp.asarray([1, 2]), axis=0).tolist() == [[0, 1, 2], [3, 4, 5], [3, 4, 5]]
    assert xp.tile(xp.asarray([1, 2]), (2,)).tolist() == [1, 2, 1, 2]
    assert xp.tril(a, k=0).tolist() == [[0, 0, 0], [3, 4, 0]] and xp.triu(a, k=1).tolist() == [
        [0, 1, 2],
        [0, 0, 5],
    ]
    X, Y = xp.meshgrid(xp.arange(3), xp.arange(2))  # indexing='xy' by default
    assert X.shape == (2, 3) and X.tolist() == [[0, 1, 2], [0, 1, 2]] and Y.tolist() == [[0, 0, 0], [1, 1, 1]]
    assert xp.take_along_axis(a, xp.asarray([[2], [0]]), axis=1).tolist() == [[2], [3]]
    assert xp.diff(xp.asarray([1, 4, 9])).tolist() == [3, 5]
    assert xp.searchsorted(xp.asarray([1, 3, 5]), xp.asarray([3]), side="right").tolist() == [2]
    assert xp.count_nonzero(a, axis=1, keepdims=True).tolist() == [[2], [3]]
    assert xp.concat([xp.ones(2, dtype=xp.int8), xp.ones(1, dtype=xp.int16)]).dtype == xp.int16
    with pytest.raises(ValueError):
        xp.asarray(xp.ones(2), dtype=xp.float64, copy=False)  # a dtype change needs a copy


def test_device_moves_and_dlpack():
    x = xp.asarray([1.0, 2.0])
    assert x.to_device("cpu") is x and x.to_device("standin").device == "standin"
    y = xp.from_dlpack(np.arange(3), device="standin")
    assert y.device == "standin" and y.tolist() == [0, 1, 2]
    host = np.arange(3.0)
    shared = xp.from_dlpack(host, copy=False)
    host[0] = 9
    assert shared.tolist() == [9.0, 1.0, 2.0]
    assert xp.from_dlpack(host, copy=True).numpy() is not host


def test_linalg_and_fft_extensions_match_numpy():
    r = np.random.default_rng(3)
    A = r.standard_normal((3, 3))
    S = A @ A.T + 3 * np.eye(3)
    la = xp.linalg
    np.testing.assert_allclose(la.inv(xp.asarray(A, dtype=xp.float64)).numpy(), np.linalg.inv(A), rtol=1e-10)
    np.testing.assert_allclose(la.cholesky(xp.asarray(S, dtype=xp.float64)).numpy(), np.linalg.cholesky(S))
    np.testing.assert_allclose(
        la.eigh(xp.asarray(S, dtype=xp.float64)).eigenvalues.numpy(), np.linalg.eigvalsh(S)
    )
    np.testing.assert_allclose(la.svdvals(xp.asarray(A, dtype=xp.float64)).numpy(), np.linalg.svd(A)[1])
    assert la.slogdet(xp.asarray(A, dtype=xp.float64))._fields == ("sign", "logabsdet")
    np.testing.assert_allclose(
        la.matrix_norm(xp.asarray(A, dtype=xp.float64), ord="nuc").item(), np.linalg.norm(A, "nuc")
    )
    np.testing.assert_allclose(
        la.vector_norm(xp.asarray(A, dtype=xp.float64), ord=3).item(), (np.abs(A) ** 3).sum() ** (1 / 3)
    )
    np.testing.assert_allclose(la.trace(xp.asarray(A, dtype=xp.float64), offset=1).item(), np.trace(A, 1))
    x = r.standard_normal(8).astype(np.float32)
    got = xp.fft.fft(xp.asarray(x))
    assert got.dtype == xp.complex64
    np.testing.assert_allclose(got.numpy(), np.fft.fft(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xp.fft.irfft(xp.fft.rfft(xp.asarray(x)), n=8).numpy(), x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        xp.fft.fftshift(xp.fft.fftfreq(5)).numpy(), np.fft.fftshift(np.fft.fftfreq(5)), rtol=1e-6
    )
