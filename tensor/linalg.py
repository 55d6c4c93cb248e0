"""``ember.linalg``: PyTorch's ``torch.linalg`` over numpy.linalg / cupy.linalg.

Decompositions and solvers batch over leading dimensions (``A`` is ``(*, m, n)``) and
are differentiable where PyTorch's are, with backward formulas written in ember ops (so
second derivatives work too): ``inv``, ``det``, ``slogdet``, ``solve``, ``cholesky``,
``qr``, ``eigh``/``eigvalsh``, ``svd``/``svdvals`` are Functions; ``pinv``, ``lstsq``,
``norm``, ``matrix_norm``, ``vector_norm``, ``matrix_power``, ``cross``, ``multi_dot``,
``vecdot`` and ``diagonal`` are composed of differentiable ops. ``eig``/``eigvals``
(complex results) and ``matrix_rank`` compute forward only.

Gradients are for real inputs: ember does not differentiate complex tensors. As in
PyTorch, the gradients of ``eigh`` and ``svd`` are defined only when eigenvalues
(singular values) are distinct, and ``inv``/``det``/``solve`` need an invertible matrix.

>>> import ember
>>> A = ember.tensor([[3.0, 1.0], [1.0, 2.0]])
>>> [round(v, 4) for v in ember.linalg.solve(A, ember.tensor([9.0, 8.0])).tolist()]
[2.0, 3.0]
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.ops_linalg import matmul, outer, tensordot
from ember.ops_math import abs as _abs
from ember.ops_math import conj, where
from ember.ops_reduce import amax, amin, sum
from ember.ops_reduce import norm as _norm
from ember.ops_shape import flatten, roll, unsqueeze

__all__ = [
    "cholesky",
    "cross",
    "det",
    "diagonal",
    "eig",
    "eigh",
    "eigvals",
    "eigvalsh",
    "inv",
    "lstsq",
    "matmul",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "outer",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "tensordot",
    "vecdot",
    "vector_norm",
]

SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
EigResult = namedtuple("EigResult", ["eigenvalues", "eigenvectors"])
QRResult = namedtuple("QRResult", ["Q", "R"])
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
LstsqResult = namedtuple("LstsqResult", ["solution", "residuals", "rank", "singular_values"])


def _la(a):
    return array_module(a).linalg


def _square(A, fn):
    if type(A) is not Tensor:
        raise TypeError(f"linalg.{fn}(): argument 'A' must be Tensor, not {type(A).__name__}")
    if A.ndim < 2:
        raise RuntimeError(f"linalg.{fn}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(
            f"linalg.{fn}: A must be batches of square matrices, but they are {A.shape[-2]} by "
            f"{A.shape[-1]} matrices"
        )
    _float(A, fn)


def _float(A, fn):
    if A.dtype.kind not in "fc" or A.dtype == np.float16:
        raise RuntimeError(
            f"linalg.{fn}: Expected a floating point or complex tensor as input. Got {A.dtype}"
        )


def _matrix(A, fn):
    if type(A) is not Tensor:
        raise TypeError(f"linalg.{fn}(): argument 'A' must be Tensor, not {type(A).__name__}")
    if A.ndim < 2:
        raise RuntimeError(f"linalg.{fn}: The input tensor A must have at least 2 dimensions.")
    _float(A, fn)


def _eye_like(x, n):
    return _wrap(array_module(x._data).eye(n, dtype=x.dtype))


def _diag_embed(v):
    """(*, n) -> (*, n, n) with v on the diagonal (differentiable: a product with the identity)."""
    n = v.shape[-1]
    return unsqueeze(v, -1) * _eye_like(v, n)


def _tril(x, k=0):
    from ember.ops_shape import tril

    return tril(x, k)


def _triu(x, k=0):
    from ember.ops_shape import triu

    return triu(x, k)


def _raise_singular(fn, e):
    raise RuntimeError(f"linalg.{fn}: The input matrix is singular ({e}).") from e


# ---- inverse, determinant, solve --------------------------------------------------------------


class Inv(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        try:
            return _la(a).inv(a)
        except np.linalg.LinAlgError as e:
            _raise_singular("inv", e)

    def backward(ctx, g):
        y = ctx.output()  # d(A^-1) = -A^-1 dA A^-1
        return -(y.mT @ g @ y.mT)


def inv(A):
    """The inverse of a square matrix (or each matrix of a batch ``(*, n, n)``).

    Differentiable: the gradient is ``-A^{-T} G A^{-T}``. A singular matrix raises.

    >>> ember.linalg.inv(ember.tensor([[2.0, 0.0], [0.0, 4.0]])).tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    """
    _square(A, "inv")
    return Inv.apply(A)


class Det(Function):
    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a):
        return _la(a).det(a)

    def backward(ctx, g):
        # d det(A) = det(A) tr(A^-1 dA): the gradient is det(A) A^-T (A invertible)
        a = ctx.inputs[0]
        return unsqueeze(unsqueeze(g * ctx.output(), -1), -1) * inv(a).mT


def det(A):
    """The determinant of a square matrix or of each matrix of a batch ``(*, n, n)`` -> ``(*)``.

    Differentiable where ``A`` is invertible (gradient ``det(A) A^{-T}``).

    >>> round(ember.linalg.det(ember.tensor([[1.0, 2.0], [3.0, 4.0]])).item(), 4)
    -2.0
    """
    _square(A, "det")
    return Det.apply(A)


class LogAbsDet(Function):
    raw = True
    saves = (0,)

    def forward(ctx, a):
        return _la(a).slogdet(a)[1]

    def backward(ctx, g):
        return unsqueeze(unsqueeze(g, -1), -1) * inv(ctx.inputs[0]).mT


def slogdet(A):
    """``(sign, logabsdet)`` with ``det(A) = sign * exp(logabsdet)``, stable where det under/overflows.

    ``sign`` is -1, 0 or 1 (a unit complex number for complex input); ``logabsdet`` is
    differentiable (gradient ``A^{-T}``). Shapes: ``(*, n, n)`` -> ``(*)`` each.
    """
    _square(A, "slogdet")
    sign = _wrap(_la(A._data).slogdet(A._data)[0])
    return SlogdetResult(sign, LogAbsDet.apply(A))


class Solve(Function):
    """X with ``A X = B``; B is ``(*, n, k)`` (``vector=True``: ``(*, n)``)."""

    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a, b, vector):
        xp = array_module(a)
        try:
            if vector:
                return xp.linalg.solve(a, b[..., None])[..., 0]
            return xp.linalg.solve(a, b)
        except np.linalg.LinAlgError as e:
            _raise_singular("solve", e)

    def backward(ctx, g):
        a, _, vector = ctx.inputs
        n = ctx.needs_input_grad
        gb = Solve.apply(a.mT, g, vector)  # A^T gB = G
        ga = None
        if n[0]:
            x = ctx.output()
            ga = -(unsqueeze(gb, -1) * unsqueeze(x, -2)) if vector else -(gb @ x.mT)
        return ga, (gb if n[1] else None), None


def solve(A, B, *, left=True):
    """Solve ``A X = B`` (``left=False``: ``X A = B``) for square, invertible ``A``.

    ``A`` is ``(*, n, n)``; ``B`` is ``(*, n, k)`` or a batch of vectors ``(*, n)`` (a
    vector when ``B`` is 1-D or has exactly A's batch shape then n, as torch). Batch dimensions
    broadcast. Differentiable in ``A`` and ``B``.

    >>> A = ember.tensor([[3.0, 1.0], [1.0, 2.0]])
    >>> [round(v, 4) for v in ember.linalg.solve(A, ember.tensor([9.0, 8.0])).tolist()]
    [2.0, 3.0]
    """
    _square(A, "solve")
    if type(B) is not Tensor:
        raise TypeError(f"linalg.solve(): argument 'B' must be Tensor, not {type(B).__name__}")
    if A.dtype != B.dtype:
        raise RuntimeError(
            f"linalg.solve: Expected A and B to have the same dtype, but found A of type {A.dtype} "
            f"and B of type {B.dtype} instead"
        )
    # torch's rule: B is a batch of vectors when it is 1-D or has exactly A's batch shape plus n
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    if not left:
        if vector:
            raise RuntimeError(
                "linalg.solve: Vector broadcasting of the left hand side is not supported for left=False"
            )
        return solve(A.mT, B.mT).mT
    n = A.shape[-1]
    if B.shape[-1 if vector else -2] != n:
        raise RuntimeError(
            f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
            f"({'x'.join(map(str, A.shape[-2:]))} and {'x'.join(map(str, B.shape))})"
        )
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[: -1 if vector else -2])
    A = A.expand(batch + A.shape[-2:]) if A.shape[:-2] != batch else A
    tail = B.shape[-1:] if vector else B.shape[-2:]
    B = B.expand(batch + tail) if B.shape[: -1 if vector else -2] != batch else B
    return Solve.apply(A, B, vector)


# ---- Cholesky, QR ------------------------------------------------------------------------------


class Cholesky(Function):
    raw = True
    saves_output = True

    def forward(ctx, a):
        try:
            return _la(a).cholesky(a)
        except np.linalg.LinAlgError as e:
            raise RuntimeError(
                f"linalg.cholesky: The factorization could not be completed because the input is not "
                f"positive-definite ({e})."
            ) from e

    def backward(ctx, g):
        # PyTorch's formula: gA = L^-T Phi(L^T gL) L^-1, Phi = lower triangle, diagonal halved,
        # made symmetric (numpy reads the lower triangle, so an upper entry would get 0; the
        # symmetric gradient is what the mathematics of a symmetric input gives)
        L = ctx.output()
        p = _tril(L.mT @ _tril(g))
        p = (p + _tril(p, -1).mT) * 0.5
        x = solve(L.mT, p)  # L^-T p
        return solve(L.mT, x.mT).mT  # (L^-T p) L^-1


def cholesky(A, *, upper=False):
    """The Cholesky factor of a symmetric (Hermitian) positive-definite matrix: ``A = L L^H``.

    Returns lower-triangular ``L`` (``upper=True``: ``U = L^H`` with ``A = U^H U``). Only
    the lower triangle of ``A`` is read. Shapes ``(*, n, n)``. Differentiable. A matrix
    that is not positive-definite raises.
    """
    _square(A, "cholesky")
    L = Cholesky.apply(A)
    return conj(L.mT) if upper else L


def _qr_backward_tall(Q, R, gQ, gR):
    """A = QR with m >= n: gA = (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q."""
    M = 0
    if gR is not None:
        M = R @ gR.mT
    if gQ is not None:
        M = M - gQ.mT @ Q
    b = Q @ (_tril(M) + _tril(M, -1).mT) if type(M) is Tensor else None
    if gQ is not None:
        b = gQ if b is None else b + gQ
    return solve(R, b.mT).mT  # b R^-T


class QR(Function):
    """Both factors of a reduced QR as one node: the output ``[Q ; R^T]`` stacks Q
    ``(*, m, k)`` over R^T ``(*, n, k)``; ``qr`` slices it apart, so the gradients of Q and
    R meet in this node's backward."""

    raw = True
    saves = (0,)
    saves_output = True

    def forward(ctx, a):
        xp = array_module(a)
        q, r = xp.linalg.qr(a, mode="reduced")
        return xp.concatenate([q, xp.swapaxes(r, -1, -2)], axis=-2)

    def backward(ctx, g):
        a = ctx.inputs[0]
        m, n = a.shape[-2], a.shape[-1]
        out = ctx.output()
        Q, R = out[..., :m, :], out[..., m:, :].mT
        gQ, gR = g[..., :m, :], g[..., m:, :].mT
        if m >= n:
            return _qr_backward_tall(Q, R, gQ, gR)
        # wide A = Q [U | V] (X = A[:, :m] = QU, Y = A[:, m:] = QV): from Liao et al. (2019)
        U = R[..., :, :m]
        gU, gV = gR[..., :, :m], gR[..., :, m:]
        Y = a[..., :, m:]
        gX = _qr_backward_tall(Q, U, gQ + Y @ gV.mT, gU)
        from ember.ops_shape import cat

        return cat([gX, Q @ gV], -1)


def qr(A, mode="reduced"):
    """QR decomposition ``A = Q R`` of ``(*, m, n)`` matrices, as ``torch.linalg.qr``.

    ``mode='reduced'`` (default): Q ``(*, m, k)`` with orthonormal columns and upper-triangular
    R ``(*, k, n)``, k = min(m, n); ``'complete'``: Q ``(*, m, m)``, R ``(*, m, n)``; ``'r'``: R
    only (Q is an empty tensor). Differentiable in ``'reduced'`` mode (and in ``'complete'``
    when m <= n, where it equals reduced), for real input.
    """
    _matrix(A, "qr")
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
            "or 'complete'"
        )
    m, n = A.shape[-2:]
    if mode == "reduced" or (mode == "complete" and m <= n):
        both = QR.apply(A)
        return QRResult(both[..., :m, :], both[..., m:, :].mT)
    xp = array_module(A._data)
    if mode == "r":
        r = xp.linalg.qr(A._data, mode="r")
        return QRResult(_wrap(xp.zeros((0,), dtype=A.dtype)), _wrap(r))
    if A.requires_grad:
        raise RuntimeError(
            "The derivative of linalg.qr depends on Q, which is not computed when mode='complete' and "
            "m > n: use mode='reduced'"
        )
    q, r = xp.linalg.qr(A._data, mode="complete")
    return QRResult(_wrap(q), _wrap(r))


# ---- eigen- and singular value decompositions -------------------------------------------------------


class Eigh(Function):
    """``[eigenvalues as a row | eigenvectors]`` of a symmetric matrix: ``(*, n+1, n)``."""

    raw = True
    saves_output = True

    def forward(ctx, a, uplo):
        xp = array_module(a)
        w, v = xp.linalg.eigh(a, UPLO=uplo)
        return xp.concatenate([w[..., None, :].astype(v.dtype), v], axis=-2)

    def backward(ctx, g):
        out = ctx.output()
        w, V = out[..., 0, :], out[..., 1:, :]
        gw, gV = g[..., 0, :], g[..., 1:, :]
        # PyTorch's: gA = V (diag(gw) + skew(V^T gV) / E) V^T, E_ij = w_j - w_i (1 on the diagonal)
        VtgV = V.mT @ gV
        VtgV = (VtgV - VtgV.mT) * 0.5
        E = unsqueeze(w, -2) - unsqueeze(w, -1)
        E = E + _eye_like(E, E.shape[-1])
        inner = VtgV / E + _diag_embed(gw)
        return V @ inner @ V.mT, None


def eigh(A, UPLO="L"):
    """Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric/Hermitian matrix.

    Returns ``(eigenvalues (*, n), eigenvectors (*, n, n))``, ``A = V diag(w) V^H``. Only
    the ``UPLO`` ('L' or 'U') triangle of ``A`` is read. Differentiable when the
    eigenvalues are distinct (eigenvectors are defined up to sign only).
    """
    _square(A, "eigh")
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    if A.dtype.kind == "c":
        w, v = _la(A._data).eigh(A._data, UPLO=UPLO)
        return EighResult(_wrap(w), _wrap(v))
    both = Eigh.apply(A, UPLO)
    return EighResult(both[..., 0, :], both[..., 1:, :])


def eigvalsh(A, UPLO="L"):
    """The eigenvalues of a symmetric/Hermitian matrix, ascending: ``(*, n, n)`` -> ``(*, n)``.

    Differentiable (through ``eigh``)."""
    return eigh(A, UPLO).eigenvalues


def eig(A):
    """Eigenvalues and eigenvectors of a general square matrix, as complex tensors (forward only:
    an input that requires grad raises, since ember does not differentiate complex results)."""
    _square(A, "eig")
    from ember.autograd.grad_mode import _state

    if A.requires_grad and _state.enabled:
        raise RuntimeError(
            "linalg.eig: ember does not differentiate complex results; use eigh for symmetric input, "
            "or call eig on A.detach()"
        )
    w, v = _la(A._data).eig(A._data)
    ct = np.result_type(A.dtype, np.complex64)
    return EigResult(_wrap(w.astype(ct)), _wrap(v.astype(ct)))


def eigvals(A):
    """The eigenvalues of a general square matrix, a complex tensor ``(*, n)`` (forward only, as eig)."""
    return eig(A).eigenvalues


class SVD(Function):
    """Reduced SVD as one node, output ``[U | V]`` stacked ``(*, m+n, k)`` plus S, see ``svd``."""

    raw = True
    saves_output = True

    def forward(ctx, a):
        xp = array_module(a)
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
        return xp.concatenate([u, xp.swapaxes(vh, -1, -2), s[..., None, :]], axis=-2)

    def backward(ctx, g):
        out = ctx.output()
        m = ctx.inputs[0].shape[-2]
        U, V, S = out[..., :m, :], out[..., m:-1, :], out[..., -1, :]
        gU, gV, gS = g[..., :m, :], g[..., m:-1, :], g[..., -1, :]
        return _svd_backward(U, S, V, gU, gS, gV)


def _svd_backward(U, S, V, gU, gS, gV):
    """PyTorch's svd_backward (real case) for A = U diag(S) V^T, reduced, distinct S > 0."""
    m, n, k = U.shape[-2], V.shape[-2], S.shape[-1]
    S2 = S * S
    E = unsqueeze(S2, -2) - unsqueeze(S2, -1)  # E_jk = S_k^2 - S_j^2
    E = E + _eye_like(E, k)
    UtgU = U.mT @ gU
    VtgV = V.mT @ gV
    skU = UtgU - UtgU.mT
    skV = VtgV - VtgV.mT
    inner = (skU * unsqueeze(S, -2) + unsqueeze(S, -1) * skV) / E + _diag_embed(gS)
    gA = U @ inner @ V.mT
    if m > k:  # the part of gU outside U's span
        gUS = gU / unsqueeze(S, -2)
        gA = gA + (gUS - U @ (U.mT @ gUS)) @ V.mT
    if n > k:
        gVS = gV / unsqueeze(S, -2)
        gA = gA + U @ (gVS - V @ (V.mT @ gVS)).mT
    return gA


def svd(A, full_matrices=True):
    """Singular value decomposition ``A = U diag(S) Vh`` of ``(*, m, n)`` matrices.

    Returns ``(U, S, Vh)``; with ``full_matrices=False`` (the reduced SVD) U is ``(*, m, k)``
    and Vh ``(*, k, n)``, k = min(m, n); with ``True`` they are square. S ``(*, k)`` is
    real, descending. Differentiable (real input) for the reduced SVD, or any SVD of square
    matrices, when the singular values are distinct and nonzero; as in torch, U and Vh of
    a non-square full SVD are not differentiable.
    """
    _matrix(A, "svd")
    m, n = A.shape[-2:]
    if A.dtype.kind == "c" or (full_matrices and m != n):
        if full_matrices and m != n and A.requires_grad:
            raise RuntimeError(
                "linalg.svd: The derivative of U or Vh is not well-defined when full_matrices=True and "
                "A is not square: use full_matrices=False (or svdvals for S only)"
            )
        u, s, vh = _la(A._data).svd(A._data, full_matrices=full_matrices)
        return SVDResult(_wrap(u), _wrap(s), _wrap(vh))
    both = SVD.apply(A)
    return SVDResult(both[..., :m, :], both[..., -1, :], both[..., m:-1, :].mT)


def svdvals(A):
    """The singular values of ``(*, m, n)`` matrices, descending ``(*, min(m, n))``. Differentiable."""
    _matrix(A, "svdvals")
    if A.dtype.kind == "c" or not A.requires_grad:
        return _wrap(_la(A._data).svd(A._data, compute_uv=False))
    return svd(A, full_matrices=False).S


# ---- composites: pseudo-inverse, least squares, rank, norms ------------------------------------------


def _tolerance(S, A, atol, rtol):
    """torch's rule: max(atol, rtol * largest singular value); rtol defaults to eps * max(m, n)."""
    from ember.dtypes import finfo

    if rtol is None:
        rtol = 0.0 if atol not in (None, 0) else finfo(S.dtype).eps * builtins.max(A.shape[-2:])
    smax = S._data[..., :1] if S.shape[-1] else S._data[..., :0]
    tol = rtol._data[..., None] if type(rtol) is Tensor else rtol
    tol = smax * tol
    if atol is not None:
        a = atol._data[..., None] if type(atol) is Tensor else atol
        tol = array_module(S._data).maximum(tol, a)
    return tol


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """The Moore-Penrose pseudo-inverse of ``(*, m, n)`` matrices -> ``(*, n, m)``.

    Singular values at or below ``max(atol, rtol * S.max())`` are treated as zero (``rtol``
    defaults to ``eps * max(m, n)`` when ``atol`` is not given, as torch). Composed of the
    SVD, so it is differentiable where the SVD is (distinct singular values).
    """
    _matrix(A, "pinv")
    U, S, Vh = svd(A, full_matrices=False)
    tol = _tolerance(S.detach(), A, atol, rtol)
    keep = _wrap(S._data > tol)
    Sinv = where(keep, 1 / where(keep, S, 1.0), 0.0)
    return conj(Vh).mT @ (unsqueeze(Sinv, -1) * conj(U).mT)


def lstsq(A, B, rcond=None, *, driver=None):
    """Least-squares solution of ``A X = B`` for ``(*, m, n)`` A and ``(*, m, k)`` B.

    Returns ``(solution (*, n, k), residuals, rank, singular_values)`` as torch's
    ``gelsd`` driver does: residuals are the squared norms of ``B - A X`` per column when
    m > n and A has full rank, otherwise empty. Differentiable in ``solution`` (through the
    pseudo-inverse).
    """
    _matrix(A, "lstsq")
    vector = B.ndim == A.ndim - 1
    if vector:
        B = unsqueeze(B, -1)
    X = pinv(A, rtol=rcond) @ B
    S = svdvals(A.detach())
    tol = _tolerance(S, A, None, rcond)
    rank = _wrap((S._data > tol).sum(-1).astype(np.int64))
    m, n = A.shape[-2:]
    xp = array_module(A._data)
    if m > n and bool(xp.all(rank._data == n)):
        r = B - A @ X
        residuals = sum(r * r, -2)
    else:
        residuals = _wrap(xp.zeros((0,), dtype=A.dtype))
    if vector:
        X = X[..., 0]
    return LstsqResult(X, residuals, rank, S)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False):
    """The number of singular values above ``max(atol, rtol * S.max())`` (int64, ``(*)``)."""
    _matrix(A, "matrix_rank")
    S = svdvals(A.detach())
    return _wrap((S._data > _tolerance(S, A, atol, rtol)).sum(-1).astype(np.int64))


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ``ord``-norm of ``x`` over ``dim`` (all elements when None), as torch.

    ``ord``: any real p, ``inf`` (max |x|), ``-inf`` (min |x|), 0 (count of nonzeros).
    A complex input gives a real norm. ``dtype`` casts first. Differentiable.
    """
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype.kind == "c":
        x = _wrap(array_module(x._data).abs(x._data))
    if x.dtype.kind not in "fc":
        raise RuntimeError(
            f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got {x.dtype}"
        )
    if dim is not None and not isinstance(dim, int):
        dim = tuple(dim)
    if ord == 0:
        return sum((x != 0).to(x.dtype), dim, keepdim)
    if ord in (float("inf"), float("-inf")):
        axes = None if dim is None else dim
        f = amax if ord > 0 else amin
        return f(_abs(x), () if axes is None else axes, keepdim)
    if x.numel() == 0 and ord < 0:
        raise RuntimeError("linalg.vector_norm cannot compute the negative norm of an empty tensor")
    return _norm(x, 2 if ord == 2 else ord, dim, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """A matrix norm over the two dims ``dim`` of ``A``: 'fro', 'nuc', 2, -2, 1, -1, inf, -inf.

    'fro' is sqrt of the sum of squares, 'nuc' the sum of singular values, +-2 the
    largest/smallest singular value, +-1 the max/min column sum of |A|, +-inf the max/min
    row sum. Differentiable.
    """
    if dtype is not None:
        A = A.to(dtype)
    _matrix(A, "matrix_norm")
    d0, d1 = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        x = A
        if (d0, d1) != (A.ndim - 2, A.ndim - 1):
            from ember.ops_shape import movedim

            x = movedim(A, (d0, d1), (-2, -1))
        S = svdvals(x)
        r = sum(S, -1) if ord == "nuc" else (S[..., 0] if ord == 2 else S[..., -1])
        if keepdim:
            r = unsqueeze(unsqueeze(r, builtins.min(d0, d1)), builtins.max(d0, d1))
        return r
    if ord in (1, -1, float("inf"), float("-inf")):
        inner, outer_ = (d0, d1) if ord in (1, -1) else (d1, d0)
        s = sum(_abs(A), inner, keepdim=True)
        r = (amax if ord > 0 else amin)(s, outer_, keepdim=True)
        if not keepdim:
            from ember.ops_shape import squeeze

            r = squeeze(r, (d0, d1))
        return r
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """``vector_norm`` or ``matrix_norm``, chosen as torch does.

    ``ord=None``: the 2-norm of the flattened input (``dim=None``) or over ``dim``.
    Otherwise a 2-D ``dim`` (or a 2-D input with ``dim=None``) means a matrix norm and
    a 1-D one a vector norm.
    """
    if dim is not None and isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        if dim is None:
            return (
                vector_norm(flatten(A) if A.ndim else A, 2, None, keepdim, dtype=dtype)
                if not keepdim
                else vector_norm(A, 2, None, keepdim, dtype=dtype)
            )
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        if A.ndim == 1:
            return vector_norm(A, ord, None, keepdim, dtype=dtype)
        raise RuntimeError(
            f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got {A.ndim}D."
        )
    if len(dim) == 2:
        return matrix_norm(A, ord, dim, keepdim, dtype=dtype)
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


def matrix_power(A, n):
    """``A`` multiplied by itself ``n`` times (n = 0: identity; n < 0: the inverse's power)."""
    _square(A, "matrix_power") if A.dtype.kind in "fc" else None
    if not isinstance(n, int):
        raise TypeError(f"matrix_power(): argument 'n' must be int, not {type(n).__name__}")
    if n == 0:
        eye = _eye_like(A, A.shape[-1])
        return eye.expand(A.shape) if A.ndim > 2 else eye
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while n:  # binary powering: O(log n) products
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


def multi_dot(tensors):
    """The product of a chain of matrices (the first may be 1-D, as may the last)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError("multi_dot(): expected at least 2 tensors but got " + str(len(tensors)))
    out = tensors[0]
    for t in tensors[1:]:
        out = matmul(out, t)
    return out


def cross(input, other, *, dim=-1):
    """The cross product of 3-vectors along ``dim`` (inputs broadcast). Differentiable."""
    shape = np.broadcast_shapes(input.shape, other.shape)
    if shape[dim] != 3:
        raise RuntimeError(
            f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[dim]} and "
            f"{other.shape[dim]}"
        )
    a = input.expand(shape) if input.shape != shape else input
    b = other.expand(shape) if other.shape != shape else other
    return roll(a, -1, dim) * roll(b, -2, dim) - roll(a, -2, dim) * roll(b, -1, dim)


def vecdot(x, y, *, dim=-1):
    """The dot product of vectors along ``dim``: ``sum(conj(x) * y, dim)``; batch dims broadcast.

    The contracted dimension must have the same size in both (it is not broadcast). The
    result keeps the inputs' promoted dtype (int8 x int8 -> int8). Differentiable.

    >>> ember.linalg.vecdot(ember.tensor([1.0, 2.0]), ember.tensor([3.0, 4.0])).item()
    11.0
    """
    if x.ndim == 0 or y.ndim == 0:
        raise RuntimeError("linalg.vecdot: the inputs must have at least one dimension")
    nx, ny = x.shape[dim], y.shape[dim]
    if nx != ny:
        raise RuntimeError(
            f"linalg.vecdot: the contracted dimension must have the same size in both inputs, got "
            f"{nx} and {ny}"
        )
    dt = np.result_type(x.dtype, y.dtype)
    p = conj(x) * y
    d = dim if dim < 0 else dim - builtins.max(x.ndim, y.ndim)  # counted from the end after broadcasting
    return sum(p, d, dtype=dt if dt.kind in "biu" else None)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """The diagonals of ``A`` over ``dim1``/``dim2`` (by default the last two): ``(*, k)``."""
    from ember.ops_index import diagonal as _diagonal

    return _diagonal(A, offset, dim1, dim2)
