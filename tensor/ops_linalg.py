"""Linear algebra: matmul (batched, broadcasting), dot, outer, einsum, and friends."""

from __future__ import annotations

import string

from ember._backend import array_module
from ember._tensor import Tensor, _wrap
from ember.autograd.function import Function
from ember.ops_shape import _norm_dim, expand, reshape, squeeze, transpose, unsqueeze
from ember.registry import op, register_method


class MatMul(Function):
    raw = True
    saves = (0, 1)

    def forward(ctx, a, b):
        return a @ b

    def backward(ctx, g):
        a, b = ctx.inputs
        n = ctx.needs_input_grad
        ga = gb = None
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if n[0] else None), (g * a if n[1] else None)
        if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
            g2 = unsqueeze(g, -2)
            if n[0]:
                ga = squeeze(g2 @ b.mT, -2)
            if n[1]:
                gb = unsqueeze(a, -1) @ g2
            return ga, gb
        if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
            g2 = unsqueeze(g, -1)
            if n[0]:
                ga = g2 @ unsqueeze(b, -2)
            if n[1]:
                gb = squeeze(a.mT @ g2, -1)
            return ga, gb
        if n[0]:
            ga = g @ b.mT
        if n[1]:
            gb = a.mT @ g
        return ga, gb


@op()
def matmul(input, other):
    if type(input) is Tensor and type(other) is Tensor:
        if type(input._data) is not type(other._data):
            raise RuntimeError(
                f"Expected all tensors to be on the same device, but found at least two devices, "
                f"{input.device} and {other.device}!"
            )
        if input.dtype != other.dtype:
            raise RuntimeError(
                f"expected m1 and m2 to have the same dtype, but got: {input.dtype} != {other.dtype}"
            )
        if input.ndim == 0 or other.ndim == 0:
            raise RuntimeError("both arguments to matmul need to be at least 1D")
    return MatMul.apply(input, other)


@op()
def mm(input, mat2):
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError("mm: both arguments must be 2-D matrices")
    return matmul(input, mat2)


@op()
def bmm(input, mat2):
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError("bmm: both arguments must be 3-D batches of matrices")
    return matmul(input, mat2)


@op()
def mv(input, vec):
    return matmul(input, vec)


@op()
def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


vdot = op("vdot")(dot)
inner = op("inner")(lambda input, other: (input * other).sum(-1))


@op()
def outer(input, vec2):
    return unsqueeze(input, -1) * unsqueeze(vec2, 0)


ger = op("ger")(outer)


def _parse_einsum(equation, shapes):
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs, out = eq, None
    subs = lhs.split(",")
    if len(subs) != len(shapes):
        raise ValueError(f"einsum(): {len(subs)} operand subscripts for {len(shapes)} operands")
    used = set(eq) - set(".,->")
    free = [c for c in string.ascii_letters if c not in used]
    n_ell = max((len(shp) - (len(s) - 3) for s, shp in zip(subs, shapes) if "..." in s), default=0)
    ell = "".join(free[:n_ell])
    expanded = []
    for s, shp in zip(subs, shapes):
        if "..." in s:
            n = len(shp) - (len(s) - 3)
            s = s.replace("...", ell[n_ell - n :])
        expanded.append(s)
    if out is None:
        counts = {}
        for s in expanded:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c in counts if counts[c] == 1 and c not in ell))
    elif "..." in out:
        out = out.replace("...", ell)
    return expanded, out


class Einsum(Function):
    raw = True
    saves = ()

    def forward(ctx, equation, *arrays):
        subs, out = _parse_einsum(equation, [a.shape for a in arrays])
        ctx.subs, ctx.out = subs, out
        return array_module(arrays[0]).einsum(",".join(subs) + "->" + out, *arrays)

    def backward(ctx, g):
        ops = ctx.inputs[1:]
        subs, out = ctx.subs, ctx.out
        used = set("".join(subs) + out)
        fresh = iter(c for c in string.ascii_letters if c not in used)
        grads = [None]
        for k, (s, t) in enumerate(zip(subs, ops)):
            if not ctx.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            others = [out] + [subs[j] for j in range(len(ops)) if j != k]
            present = set("".join(others))
            uniq = "".join(dict.fromkeys(s))
            target = "".join(c for c in uniq if c in present)
            operands = [g] + [ops[j] for j in range(len(ops)) if j != k]
            r = einsum(",".join(others) + "->" + target, *operands)
            full, cur = s, target
            if len(uniq) != len(s):
                # a repeated index reads a diagonal: spread the gradient back onto it by
                # multiplying with identity matrices (one per extra occurrence)
                seen, renamed, eye_subs, eyes = set(), [], [], []
                xp = array_module(g._data)
                for i, c in enumerate(s):
                    if c in seen:
                        f = next(fresh)
                        renamed.append(f)
                        eye_subs.append(c + f)
                        eyes.append(_wrap(xp.eye(t.shape[i], dtype=g.dtype)))
                    else:
                        seen.add(c)
                        renamed.append(c)
                full = "".join(renamed)
                keep = set(target) | set("".join(eye_subs))
                cur = "".join(c for c in full if c in keep)
                r = einsum(",".join([target] + eye_subs) + "->" + cur, r, *eyes)
            if cur != full:  # letters summed only inside this operand: broadcast back
                shape = [t.shape[i] if c in cur else 1 for i, c in enumerate(full)]
                r = expand(reshape(r, shape), t.shape)
            grads.append(r)
        return tuple(grads)


@op()
def einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return Einsum.apply(equation, *operands)


@op()
def tensordot(a, b, dims=2):
    letters = iter(string.ascii_lowercase)
    if isinstance(dims, int) or (type(dims) is Tensor and dims.ndim == 0):
        dims = int(dims)
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > a.ndim or dims > b.ndim:
            raise RuntimeError(
                f"tensordot: dims={dims} exceeds the dimensions of the inputs ({a.ndim}, {b.ndim})"
            )
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
        if len(da) != len(db):
            raise RuntimeError(f"both dimension lists should have same length, got {len(da)} and {len(db)}")
        # negative dims count from the end (they used to fall through and give a wrong shape)
        da = [_norm_dim(d, a.ndim) for d in da]
        db = [_norm_dim(d, b.ndim) for d in db]
        for i, j in zip(da, db):
            if a.shape[i] != b.shape[j]:
                raise RuntimeError(
                    f"contracted dimensions need to match, but first has size {a.shape[i]} in dim {i} "
                    f"and second has size {b.shape[j]} in dim {j}"
                )
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in da] + [c for j, c in enumerate(sb) if j not in db]
    return einsum("".join(sa) + "," + "".join(sb) + "->" + "".join(out), a, b)


@op()
def trace(input):
    from ember.ops_index import diagonal

    return diagonal(input).sum()


register_method("__matmul__", matmul)
register_method("__rmatmul__", lambda self, other: matmul(other, self))
for _name in ("matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "trace"):
    register_method(_name, globals()[_name])
_ = transpose
