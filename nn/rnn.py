"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` (multi-layer, ``batch_first``) and their cells.

Parameter names, shapes, gate orders (LSTM i, f, g, o; GRU r, z, n) and the
uniform(±1/sqrt(hidden_size)) initialisation are PyTorch's, so state dicts carry over.
Each layer projects the inputs of all time steps in one GEMM; the LSTM recurrence is a
single fused node (``ember.nn._lstm``), RNN and GRU steps are composed from ember ops.
"""

from __future__ import annotations

import math

import numpy as np

import ember
from ember.nn import functional as F
from ember.nn import init
from ember.nn._lstm import LSTMLayer
from ember.nn.module import Module
from ember.nn.parameter import Parameter
from ember.nn.utils.rnn import PackedSequence, pad_packed_sequence

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1]")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        g = _GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        for k in range(num_layers):
            isz = input_size if k == 0 else hidden_size * dirs
            for sfx in ("", "_reverse")[:dirs]:
                shapes = {"weight_ih": (g, isz), "weight_hh": (g, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(g,), bias_hh=(g,))
                for name, shape in shapes.items():
                    p = Parameter(ember.empty(*shape, device=device, dtype=dtype))
                    setattr(self, f"{name}_l{k}{sfx}", p)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _layer(self, k, sfx=""):
        return (
            getattr(self, f"weight_ih_l{k}{sfx}"),
            getattr(self, f"weight_hh_l{k}{sfx}"),
            getattr(self, f"bias_ih_l{k}{sfx}", None),
            getattr(self, f"bias_hh_l{k}{sfx}", None),
        )

    def _direction(self, x, k, sfx, h0, c0, h_n, c_n):
        """One layer in one direction over (T, B, features); appends its final states."""
        w_ih, w_hh, b_ih, b_hh = self._layer(k, sfx)
        if self.mode == "LSTM":
            bias = None if b_ih is None else b_ih + b_hh
            out = LSTMLayer.apply(F.linear(x, w_ih, bias), h0, c0, w_hh)
            hs = self.hidden_size
            h_n.append(out[-1, :, :hs])
            c_n.append(out[-1, :, hs:])
            return out[:, :, :hs]
        y = self._run_steps(F.linear(x, w_ih, b_ih), h0, w_hh, b_hh)
        h_n.append(y[-1])
        return y

    def _layers(self, x, h0, c0):
        """Every layer (and direction) over the time-major ``x``: ``(output, h_n, c_n)``."""
        lstm = self.mode == "LSTM"
        dirs = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for k in range(self.num_layers):
            if k and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True)
            i = k * dirs
            fwd = self._direction(x, k, "", h0[i], c0[i] if lstm else None, h_n, c_n)
            if dirs == 2:  # the reverse direction reads the sequence backwards
                rev = self._direction(
                    ember.flip(x, (0,)), k, "_reverse", h0[i + 1], c0[i + 1] if lstm else None, h_n, c_n
                )
                fwd = ember.cat([fwd, ember.flip(rev, (0,))], -1)
            x = fwd
        return x, h_n, c_n

    def _forward_packed(self, packed, hx):
        """A ``PackedSequence`` input: the sequences of one length run together as an
        ordinary batch, trimmed to that length, so every sequence (forward and reverse
        directions alike) sees exactly its own steps and its final state is taken at its
        own end. The work is that of the packed steps; the Python overhead grows with the
        number of distinct lengths."""
        lstm = self.mode == "LSTM"
        dirs = 2 if self.bidirectional else 1
        bs = packed.batch_sizes.numpy()
        t_max, b = int(bs.shape[0]), int(bs[0])
        padded, lengths = pad_packed_sequence(PackedSequence(packed.data, packed.batch_sizes))
        lengths = lengths.numpy()  # decreasing: the sorted order
        shape = (self.num_layers * dirs, b, self.hidden_size)
        if hx is None:
            z = ember.zeros(*shape, dtype=padded.dtype, device=padded.device)
            h0, c0 = z, z
        else:
            h0, c0 = hx if lstm else (hx, None)
            for h in (h0, c0) if lstm else (h0,):
                if tuple(h.shape) != shape:
                    raise RuntimeError(f"Expected hidden size {shape}, got {tuple(h.shape)}")
            if packed.sorted_indices is not None:  # the caller's order -> the sorted one
                h0 = h0.index_select(1, packed.sorted_indices)
                c0 = c0.index_select(1, packed.sorted_indices) if lstm else None
        outs, hs, cs = [], [], []
        a = 0
        while a < b:
            n = int(lengths[a])
            e = a + int((lengths[a:] == n).sum())
            out, h_n, c_n = self._layers(padded[:n, a:e], h0[:, a:e], c0[:, a:e] if lstm else None)
            if n < t_max:
                pad = ember.zeros(t_max - n, e - a, out.shape[-1], dtype=out.dtype, device=out.device)
                out = ember.cat([out, pad], 0)
            outs.append(out)
            hs.append(ember.stack(h_n, 0))
            if lstm:
                cs.append(ember.stack(c_n, 0))
            a = e
        out = ember.cat(outs, 1) if len(outs) > 1 else outs[0]
        rows = np.concatenate([t * b + np.arange(bs[t]) for t in range(t_max)])
        data = out.reshape(t_max * b, out.shape[-1]).index_select(0, ember.tensor(rows))
        result = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        h_n = ember.cat(hs, 1) if len(hs) > 1 else hs[0]
        c_n = (ember.cat(cs, 1) if len(cs) > 1 else cs[0]) if lstm else None
        if packed.unsorted_indices is not None:  # back to the caller's order
            h_n = h_n.index_select(1, packed.unsorted_indices)
            c_n = c_n.index_select(1, packed.unsorted_indices) if lstm else None
        return result, ((h_n, c_n) if lstm else h_n)

    def forward(self, input, hx=None):
        """``output, h_n`` (``output, (h_n, c_n)`` for an LSTM) of ``input`` (L, N, H_in),
        (N, L, H_in) with ``batch_first``, unbatched (L, H_in), or a ``PackedSequence``
        (then ``output`` is one too)."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        lstm = self.mode == "LSTM"
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.ndim}D instead"
            )
        x = input if batched else input.unsqueeze(1)
        if self.batch_first and batched:
            x = x.transpose(0, 1)
        b = x.shape[1]
        dirs = 2 if self.bidirectional else 1
        if hx is None:
            z = ember.zeros(self.num_layers * dirs, b, self.hidden_size, dtype=x.dtype, device=x.device)
            hx = (z, z) if lstm else z
        elif not batched:
            hx = tuple(h.unsqueeze(1) for h in hx) if lstm else hx.unsqueeze(1)
        h0, c0 = hx if lstm else (hx, None)
        for h in (h0, c0) if lstm else (h0,):
            if tuple(h.shape) != (self.num_layers * dirs, b, self.hidden_size):
                raise RuntimeError(
                    f"Expected hidden size {(self.num_layers * dirs, b, self.hidden_size)}, "
                    f"got {tuple(h.shape)}"
                )
        x, h_n, c_n = self._layers(x, h0, c0)
        out = x
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        h_n = ember.stack(h_n, 0)
        if not batched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
        if lstm:
            c_n = ember.stack(c_n, 0)
            return out, (h_n, c_n if batched else c_n.squeeze(1))
        return out, h_n

    def _run_steps(self, xg, h, w_hh, b_hh):
        outs = []
        if self.mode == "GRU":
            hs = self.hidden_size
            for t in range(xg.shape[0]):
                xt = xg[t]
                hg = F.linear(h, w_hh, b_hh)
                r = ember.sigmoid(xt[:, :hs] + hg[:, :hs])
                z = ember.sigmoid(xt[:, hs : 2 * hs] + hg[:, hs : 2 * hs])
                n = ember.tanh(xt[:, 2 * hs :] + r * hg[:, 2 * hs :])
                h = n + z * (h - n)
                outs.append(h)
        else:
            act = ember.tanh if self.mode == "RNN_TANH" else ember.relu
            for t in range(xg.shape[0]):
                h = act(xg[t] + F.linear(h, w_hh, b_hh))
                outs.append(h)
        return ember.stack(outs, 0)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    Input (L, N, H_in), (N, L, H_in) with ``batch_first``, (L, H_in), or a
    ``PackedSequence``; returns ``output, h_n``.

    >>> rnn = ember.nn.RNN(10, 20, num_layers=2)
    >>> out, h_n = rnn(ember.randn(5, 3, 10))        # (5, 3, 20), (2, 3, 20)
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self_mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            self_mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
        )
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o, as PyTorch); returns ``output, (h_n, c_n)``.

    Input (L, N, H_in), (N, L, H_in) with ``batch_first``, (L, H_in), or a
    ``PackedSequence`` (``ember.nn.utils.rnn``: each sequence's final state is taken at
    its own last step, and ``output`` is packed too).

    >>> lstm = ember.nn.LSTM(10, 20, batch_first=True, bidirectional=True)
    >>> out, (h_n, c_n) = lstm(ember.randn(3, 5, 10))  # (3, 5, 40), (2, 3, 20) each
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
        )


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n, as PyTorch); returns ``output, h_n``. Takes the
    same inputs as ``LSTM``, packed sequences included.

    >>> gru = ember.nn.GRU(10, 20)
    >>> out, h_n = gru(ember.nn.utils.rnn.pack_sequence([ember.randn(5, 10), ember.randn(2, 10)]))
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
        )


class _CellBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = self._gates * hidden_size
        self.weight_ih = Parameter(ember.empty(g, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(ember.empty(g, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(ember.empty(g, device=device, dtype=dtype))
            self.bias_hh = Parameter(ember.empty(g, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _zeros(self, x):
        return ember.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class LSTMCell(_CellBase):
    _gates = 4

    def forward(self, input, hx=None):
        h, c = hx if hx is not None else (self._zeros(input), self._zeros(input))
        bias = None if self.bias_ih is None else self.bias_ih + self.bias_hh
        out = LSTMLayer.apply(F.linear(input, self.weight_ih, bias).unsqueeze(0), h, c, self.weight_hh)
        hs = self.hidden_size
        return out[0, :, :hs], out[0, :, hs:]


class GRUCell(_CellBase):
    _gates = 3

    def forward(self, input, hx=None):
        h = hx if hx is not None else self._zeros(input)
        hs = self.hidden_size
        xg = F.linear(input, self.weight_ih, self.bias_ih)
        hg = F.linear(h, self.weight_hh, self.bias_hh)
        r = ember.sigmoid(xg[:, :hs] + hg[:, :hs])
        z = ember.sigmoid(xg[:, hs : 2 * hs] + hg[:, hs : 2 * hs])
        n = ember.tanh(xg[:, 2 * hs :] + r * hg[:, 2 * hs :])
        return n + z * (h - n)


class RNNCell(_CellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        h = hx if hx is not None else self._zeros(input)
        act = ember.tanh if self.nonlinearity == "tanh" else ember.relu
        return act(F.linear(input, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))
