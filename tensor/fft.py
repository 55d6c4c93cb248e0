"""``ember.fft``: discrete Fourier transforms with ``torch.fft``'s names and arguments.

Each transform runs numpy.fft (cupy.fft on a GPU) and keeps the input's precision:
float32/complex64 in, complex64 (or float32 for the inverse real transforms) out; an
integer or bool input is first made the default float dtype. ``norm`` is ``"backward"``
(no scaling forward, 1/n inverse; the default), ``"ortho"`` (1/sqrt(n) both ways) or
``"forward"``. The transforms compute forward only (their values are complex, and ember
does not differentiate complex tensors): an input that requires grad raises rather than
silently losing its gradient. ``fftshift``/``ifftshift`` are rolls and so are
differentiable.

>>> import ember
>>> ember.fft.fft(ember.tensor([1.0, 0.0, 0.0, 0.0])).tolist()
[(1+0j), (1+0j), (1+0j), (1+0j)]
"""

from __future__ import annotations

import numpy as np

from ember._backend import array_module, module_for
from ember._tensor import Tensor, _wrap
from ember.creation import _device
from ember.dtypes import as_dtype, get_default_dtype

__all__ = [
    "fft",
    "ifft",
    "fft2",
    "ifft2",
    "fftn",
    "ifftn",
    "rfft",
    "irfft",
    "rfft2",
    "irfft2",
    "rfftn",
    "irfftn",
    "hfft",
    "ihfft",
    "fftfreq",
    "rfftfreq",
    "fftshift",
    "ifftshift",
]

_NORMS = (None, "backward", "ortho", "forward")


def _prepare(input, fn, real_only=False):
    if type(input) is not Tensor:
        raise TypeError(f"fft.{fn}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.requires_grad and _grad_enabled():
        raise RuntimeError(
            f"fft.{fn}: ember does not differentiate the Fourier transforms (their values are complex); "
            "call it on x.detach() or under ember.no_grad()"
        )
    d = input._data
    if d.dtype.kind in "biu":
        d = d.astype(get_default_dtype())
    if real_only and d.dtype.kind == "c":
        raise RuntimeError(f"fft.{fn} expects a real input tensor, but got {input.dtype}")
    return d


def _grad_enabled():
    from ember.autograd.grad_mode import _state

    return _state.enabled


def _out(r, d, real):
    """Keep the input's precision (numpy's pocketfft already does; cupy may not)."""
    if real:
        want = np.dtype(np.float64) if d.dtype in (np.float64, np.complex128) else np.dtype(np.float32)
    else:
        want = np.result_type(d.dtype, np.complex64)
    return _wrap(r.astype(want, copy=False))


def _check_norm(norm):
    if norm not in _NORMS:
        raise ValueError(f'Invalid normalization mode: "{norm}"; expected "backward", "ortho" or "forward"')
    return norm or "backward"


def _one(name, real_in=False, real_out=False):
    def transform(input, n=None, dim=-1, norm=None):
        d = _prepare(input, name, real_only=real_in)
        if d.ndim == 0:
            raise IndexError(f"fft.{name}: the input must have at least one dimension")
        r = getattr(array_module(d).fft, name)(d, n=n, axis=dim, norm=_check_norm(norm))
        return _out(r, d, real_out)

    transform.__name__ = transform.__qualname__ = name
    return transform


def _many(name, np_name, real_in=False, real_out=False, two=False):
    def transform(input, s=None, dim=None if not two else (-2, -1), norm=None):
        d = _prepare(input, name, real_only=real_in)
        axes = dim
        if axes is not None:
            axes = (axes,) if isinstance(axes, int) else tuple(axes)
        if s is not None:
            s = (s,) if isinstance(s, int) else tuple(s)
            if axes is None:
                axes = tuple(range(-len(s), 0))
        r = getattr(array_module(d).fft, np_name)(d, s=s, axes=axes, norm=_check_norm(norm))
        return _out(r, d, real_out)

    transform.__name__ = transform.__qualname__ = name
    return transform


fft = _one("fft")
ifft = _one("ifft")
rfft = _one("rfft", real_in=True)
irfft = _one("irfft", real_out=True)
hfft = _one("hfft", real_out=True)
ihfft = _one("ihfft", real_in=True)
fftn = _many("fftn", "fftn")
ifftn = _many("ifftn", "ifftn")
rfftn = _many("rfftn", "rfftn", real_in=True)
irfftn = _many("irfftn", "irfftn", real_out=True)
fft2 = _many("fft2", "fftn", two=True)
ifft2 = _many("ifft2", "ifftn", two=True)
rfft2 = _many("rfft2", "rfftn", real_in=True, two=True)
irfft2 = _many("irfft2", "irfftn", real_out=True, two=True)

fft.__doc__ = """The 1-D discrete Fourier transform of ``input`` along ``dim``.

``n`` zero-pads or trims that dim first; ``norm`` as the module says. Real input gives
a complex result of the same size; float32 -> complex64, float64 -> complex128.

>>> ember.fft.fft(ember.tensor([0.0, 1.0])).tolist()
[(1+0j), (-1+0j)]
"""
ifft.__doc__ = "The inverse of ``fft``: ``ifft(fft(x)) == x`` (1/n scaling by default)."
rfft.__doc__ = """The FFT of a real input, keeping the non-negative frequencies only:
a dim of size n becomes n // 2 + 1 (complex)."""
irfft.__doc__ = """The inverse of ``rfft``: a Hermitian half-spectrum of size m gives a real
signal of size ``n`` (default 2 * (m - 1))."""
hfft.__doc__ = "The FFT of a Hermitian-symmetric signal given by its first half: real output of size n."
ihfft.__doc__ = "The inverse of ``hfft``: a real input gives its half (n // 2 + 1) Hermitian spectrum."
fftn.__doc__ = """The N-dimensional FFT over ``dim`` (all dims by default; the last len(s) dims
when only ``s``, the signal sizes, is given)."""
ifftn.__doc__ = "The inverse of ``fftn``: ``ifftn(fftn(x)) == x`` (1/prod(n) scaling by default)."
rfftn.__doc__ = "The N-dimensional FFT of a real input; the last transformed dim keeps n // 2 + 1 entries."
irfftn.__doc__ = (
    "The inverse of ``rfftn``: a real result (sizes ``s``, by default 2 * (m - 1) on the last dim)."
)
fft2.__doc__ = "The 2-D FFT over ``dim`` (the last two dims by default): ``fftn`` over two dims."
ifft2.__doc__ = "The inverse of ``fft2`` over ``dim`` (the last two dims by default)."
rfft2.__doc__ = "The 2-D FFT of a real input over the last two dims; the last keeps n // 2 + 1 entries."
irfft2.__doc__ = "The inverse of ``rfft2``: a real result over the last two dims (sizes ``s``)."


def fftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False):
    """The sample frequencies of an ``n``-point FFT with sample spacing ``d``: ``[0, 1, ..., -1] / (d n)``.

    >>> ember.fft.fftfreq(4).tolist()
    [0.0, 0.25, -0.5, -0.25]
    """
    xp = module_for(_device(device))
    dt = as_dtype(dtype) or get_default_dtype()
    t = _wrap(xp.fft.fftfreq(n, d).astype(dt))
    return t.requires_grad_(True) if requires_grad else t


def rfftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False):
    """The non-negative sample frequencies of an ``n``-point ``rfft``: n // 2 + 1 values."""
    xp = module_for(_device(device))
    dt = as_dtype(dtype) or get_default_dtype()
    t = _wrap(xp.fft.rfftfreq(n, d).astype(dt))
    return t.requires_grad_(True) if requires_grad else t


def _shift(input, dim, sign):
    from ember.ops_shape import roll

    dims = tuple(range(input.ndim)) if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    if not dims:
        return input
    shifts = tuple(sign * (input.shape[k] // 2) for k in dims)
    return roll(input, shifts, dims)


def fftshift(input, dim=None):
    """Move the zero frequency to the centre of the spectrum (along ``dim``, all by default)."""
    return _shift(input, dim, 1)


def ifftshift(input, dim=None):
    """The inverse of ``fftshift``: move the zero frequency back to index 0 (along ``dim``)."""
    return _shift(input, dim, -1)
