"""RMSNorm as a C++ extension with a hand-written backward (docs/cpp_extensions.md).

    y = x * w / sqrt(mean(x^2, last dim) + eps)

Composed from ember ops it is six array passes forward and about a dozen backward, each a
graph node and a temporary; fused in C++ it is two passes each way.
"""

import numpy as np

import ember
from ember.utils.cpp_extension import load_inline

CPP = r"""
#include <cmath>

// forward: y = x * r * w with r = 1 / sqrt(mean(x^2) + eps), one r per row of x (rows, n)
template <typename T>
py::tuple rms_norm_forward(ember::array<T> x, ember::array<T> w, double eps) {
    const py::ssize_t n = x.shape(x.ndim() - 1), rows = x.size() / n;
    if (w.size() != n) throw std::invalid_argument("rms_norm: weight must have x.shape[-1] elements");
    auto y = ember::empty_like(x);
    auto r = ember::empty<T>({rows});
    const T* xp = x.data();
    const T* wp = w.data();
    T* yp = y.mutable_data();
    T* rp = r.mutable_data();
    {
        py::gil_scoped_release nogil;  // loops on raw buffers: other Python threads may run
        for (py::ssize_t i = 0; i < rows; ++i) {
            const T* xi = xp + i * n;
            T ss = 0;
            for (py::ssize_t j = 0; j < n; ++j) ss += xi[j] * xi[j];
            const T ri = T(1) / std::sqrt(ss / T(n) + T(eps));
            rp[i] = ri;
            for (py::ssize_t j = 0; j < n; ++j) yp[i * n + j] = xi[j] * ri * wp[j];
        }
    }  // the GIL is held again before Python objects are touched
    return py::make_tuple(y, r);
}

// backward: gx = r (g w) - x r^3 mean(g w x),  gw = sum over rows of g x r
template <typename T>
py::tuple rms_norm_backward(ember::array<T> g, ember::array<T> x, ember::array<T> w, ember::array<T> r) {
    const py::ssize_t n = x.shape(x.ndim() - 1), rows = x.size() / n;
    auto gx = ember::empty_like(x);
    auto gw = ember::empty<T>({n});
    const T *gp = g.data(), *xp = x.data(), *wp = w.data(), *rp = r.data();
    T* gxp = gx.mutable_data();
    T* gwp = gw.mutable_data();
    {
        py::gil_scoped_release nogil;
        for (py::ssize_t j = 0; j < n; ++j) gwp[j] = 0;
        for (py::ssize_t i = 0; i < rows; ++i) {
            const T *gi = gp + i * n, *xi = xp + i * n;
            const T ri = rp[i];
            T dot = 0;
            for (py::ssize_t j = 0; j < n; ++j) dot += gi[j] * wp[j] * xi[j];
            const T c = ri * ri * ri * dot / T(n);
            for (py::ssize_t j = 0; j < n; ++j) {
                gxp[i * n + j] = ri * gi[j] * wp[j] - c * xi[j];
                gwp[j] += gi[j] * xi[j] * ri;
            }
        }
    }
    return py::make_tuple(gx, gw);
}

PYBIND11_MODULE(rms_norm_ext, m) {
    m.def("forward", &rms_norm_forward<float>);
    m.def("forward", &rms_norm_forward<double>);
    m.def("backward", &rms_norm_backward<float>);
    m.def("backward", &rms_norm_backward<double>);
}
"""

ext = load_inline("rms_norm_ext", CPP)  # compiled once, then loaded from the cache


def _host(t):
    """A CPU tensor's numpy array, C-contiguous (a copy only if it was not). pybind11 tries
    each overload first without conversions, so an exact-dtype contiguous array picks the
    ``float`` or ``double`` one; anything else would be converted to the first that fits."""
    if t.device.type != "cpu":
        raise RuntimeError(f"rms_norm: the C++ kernel runs on CPU tensors, got one on {t.device}")
    return np.ascontiguousarray(t.detach().numpy())


class RMSNormFunction(ember.autograd.Function):
    """Forward and backward call the compiled code; its numpy results wrap back into
    tensors without a copy (``ember.asarray``)."""

    @staticmethod
    def forward(ctx, x, weight, eps):
        y, r = ext.forward(_host(x), _host(weight), eps)
        ctx.save_for_backward(x, weight)
        ctx.r = r  # the per-row 1/rms, an array the backward reuses
        return ember.asarray(y)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        gx, gw = ext.backward(_host(grad), _host(x), _host(weight), ctx.r)
        return ember.asarray(gx), ember.asarray(gw), None


def rms_norm(x, weight, eps=1e-6):
    """RMSNorm over the last dimension of a CPU tensor ``x`` with a per-feature ``weight``."""
    return RMSNormFunction.apply(x, weight, eps)


def rms_norm_composed(x, weight, eps=1e-6):
    """The same op from ember ops: the reference and the baseline."""
    return x * ember.rsqrt((x * x).mean(-1, keepdim=True) + eps) * weight
