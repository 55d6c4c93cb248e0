"""``ember.linalg`` gives numpy's results with PyTorch's names, arguments and result
types (named tuples), batches over leading dims, and refuses bad input clearly. The
gradients are checked numerically in test_ops_gradcheck.py (op_specs.py)."""

from __future__ import annotations

import numpy as np
import pytest

import ember

LA = ember.linalg
_r = np.random.default_rng(5)
A = _r.standard_normal((2, 4, 4))
TALL = _r.standard_normal((5, 3))
SPD = A @ A.transpose(0, 2, 1) + 4 * np.eye(4)


def T(a):
    return ember.tensor(a, dtype=ember.float64)


def close(got, want, **kw):
    np.testing.assert_allclose(got.numpy(), want, rtol=kw.get("rtol", 1e-9), atol=kw.get("atol", 1e-10))


def test_inverse_determinant_solve_match_numpy():
    close(LA.inv(T(A)), np.linalg.inv(A))
    close(LA.det(T(A)), np.linalg.det(A))
    sign, logabs = LA.slogdet(T(A))
    close(sign, np.linalg.slogdet(A)[0])
    close(logabs, np.linalg.slogdet(A)[1])
    b = _r.standard_normal((4, 2))
    close(LA.solve(T(A), T(b)), np.linalg.solve(A, b))
    v = _r.standard_normal(4)
    close(LA.solve(T(A), T(v)), np.linalg.solve(A, v[None, :, None])[..., 0])  # a vector, broadcast
    close(LA.solve(T(A[0]), T(b.T), left=False), np.linalg.solve(A[0].T, b).T)


def test_decompositions_reconstruct_their_input():
    L = LA.cholesky(T(SPD))
    close(L @ L.mT, SPD)
    assert np.allclose(np.triu(L.numpy(), 1), 0)
    U = LA.cholesky(T(SPD), upper=True)
    close(U.mT @ U, SPD)
    Q, R = LA.qr(T(TALL))
    assert Q.shape == (5, 3) and R.shape == (3, 3)
    close(Q @ R, TALL)
    close(Q.mT @ Q, np.eye(3))
    Qc, Rc = LA.qr(T(TALL), mode="complete")
    assert Qc.shape == (5, 5) and Rc.shape == (5, 3)
    assert LA.qr(T(TALL), mode="r").R.shape == (3, 3)
    w, V = LA.eigh(T(SPD))
    close(w, np.linalg.eigvalsh(SPD))
    close(V @ (w[..., :, None] * V.mT), SPD)
    close(LA.eigvalsh(T(SPD), UPLO="U"), np.linalg.eigvalsh(SPD, UPLO="U"))
    Uf, S, Vh = LA.svd(T(TALL))
    assert Uf.shape == (5, 5) and S.shape == (3,) and Vh.shape == (3, 3)
    u, s, vh = LA.svd(T(TALL), full_matrices=False)
    close(u @ (s[:, None] * vh), TALL)
    close(LA.svdvals(T(TALL)), np.linalg.svd(TALL, compute_uv=False))
    ev = LA.eigvals(T(A[0]))
    assert ev.dtype == ember.complex128
    np.testing.assert_allclose(np.sort_complex(ev.numpy()), np.sort_complex(np.linalg.eigvals(A[0])))


def test_pinv_lstsq_rank_and_norms():
    close(LA.pinv(T(TALL)), np.linalg.pinv(TALL))
    b = _r.standard_normal((5, 2))
    sol = LA.lstsq(T(TALL), T(b))
    ref = np.linalg.lstsq(TALL, b, rcond=None)
    close(sol.solution, ref[0])
    close(sol.residuals, ref[1])
    assert sol.rank.item() == 3
    close(sol.singular_values, ref[3])
    low = TALL[:, :1] @ TALL[:1, :]  # rank 1
    assert LA.matrix_rank(T(low)).item() == 1 and LA.matrix_rank(T(TALL)).item() == 3
    x = A[0]
    for ord_ in ("fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf):
        close(LA.matrix_norm(T(x), ord_), np.linalg.norm(x, ord_))
    for ord_ in (2, 1, 3.5, np.inf, -np.inf, 0):
        close(LA.vector_norm(T(x), ord_), np.linalg.norm(x.ravel(), ord_))
    close(LA.vector_norm(T(x), 2, dim=1, keepdim=True), np.linalg.norm(x, 2, axis=1, keepdims=True))
    close(LA.norm(T(x)), np.linalg.norm(x))
    close(LA.norm(T(x), "nuc"), np.linalg.norm(x, "nuc"))
    close(LA.norm(T(x[0]), 1), np.linalg.norm(x[0], 1))


def test_products_and_helpers():
    x = A[0]
    close(LA.matrix_power(T(x), 5), np.linalg.matrix_power(x, 5))
    close(LA.matrix_power(T(x), -3), np.linalg.matrix_power(x, -3))
    close(LA.matrix_power(T(A), 0), np.broadcast_to(np.eye(4), A.shape))
    close(LA.multi_dot([T(x), T(x), T(x[:, 0])]), x @ x @ x[:, 0])
    a, b = _r.standard_normal((2, 3)), _r.standard_normal(3)
    close(LA.cross(T(a), T(b)), np.cross(a, b))
    close(LA.vecdot(T(a), T(b)), a @ b)
    close(LA.diagonal(T(A), offset=1), np.diagonal(A, 1, -2, -1))
    close(LA.matmul(T(x), T(x)), x @ x)


def test_bad_input_gets_a_clear_error():
    with pytest.raises(RuntimeError, match="singular"):
        LA.inv(T(np.zeros((3, 3))))
    with pytest.raises(RuntimeError, match="square"):
        LA.det(T(TALL))
    with pytest.raises(RuntimeError, match="positive-definite"):
        LA.cholesky(T(-np.eye(3)))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        LA.svd(T(np.ones(3)))
    with pytest.raises(RuntimeError, match="floating point"):
        LA.inv(ember.eye(3, dtype=ember.int64))
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        LA.qr(T(TALL), mode="full")
    with pytest.raises(RuntimeError, match="full_matrices"):
        LA.svd(T(TALL).requires_grad_(), full_matrices=True)
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        LA.solve(T(A[0]), T(np.ones(3)))
    with pytest.raises(RuntimeError, match="length 3"):
        LA.cross(T(np.ones(4)), T(np.ones(4)))
    with pytest.raises(RuntimeError, match="same size"):
        LA.vecdot(T(np.ones((2, 3))), T(np.ones((2, 1))))


def test_float32_stays_float32():
    x = ember.tensor(SPD[0], dtype=ember.float32)
    for out in (
        LA.inv(x),
        LA.det(x),
        LA.cholesky(x),
        LA.eigh(x).eigenvalues,
        LA.svd(x).S,
        LA.pinv(x),
        LA.norm(x),
    ):
        assert out.dtype == ember.float32
