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
