"""Variable-length sequences for the recurrent layers, as ``torch.nn.utils.rnn``.

A ``PackedSequence`` stores a batch of sequences of different lengths without padding:
``data`` holds the time steps of all sequences interleaved time-major (step 0 of every
sequence, then step 1 of those that have one, ...), sequences sorted by decreasing
length; ``batch_sizes[t]`` says how many sequences have a step ``t``. ``RNN``, ``LSTM``
and ``GRU`` accept one as input and return one as output; each sequence's final hidden
state is taken at its own last step.

>>> seqs = [ember.randn(5, 8), ember.randn(3, 8), ember.randn(2, 8)]
>>> padded = pad_sequence(seqs)                      # (5, 3, 8), zeros after each end
>>> packed = pack_padded_sequence(padded, [5, 3, 2])
>>> out, h_n = ember.nn.GRU(8, 16)(packed)
>>> out, lengths = pad_packed_sequence(out)          # (5, 3, 16), tensor([5, 3, 2])
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

import ember
from ember._tensor import Tensor, _wrap

__all__ = [
    "PackedSequence",
    "pad_sequence",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pack_sequence",
    "unpad_sequence",
    "unpack_sequence",
]


class PackedSequence(
    namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])
):
    """A packed batch of variable-length sequences (see the module docstring): ``data``
    (sum of lengths, *), ``batch_sizes`` (max length,) int64 on the CPU, and the
    permutation between the caller's batch order and the sorted one (``None`` when the
    batch was already sorted)."""

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _invert(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        return type(self)(data, self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def cpu(self):
        return self.to("cpu")

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def lengths(self) -> np.ndarray:
        """Each sequence's length, in the caller's batch order."""
        bs = self.batch_sizes.numpy()
        sorted_lengths = (bs[None, :] > np.arange(int(bs[0]))[:, None]).sum(1)
        if self.unsorted_indices is None:
            return sorted_lengths
        return sorted_lengths[self.unsorted_indices.numpy()]


def _invert(perm):
    p = perm.numpy() if type(perm) is Tensor else np.asarray(perm)
    inv = np.empty_like(p)
    inv[p] = np.arange(p.shape[0])
    return _wrap(inv.astype(np.int64))


def _as_lengths(lengths):
    if type(lengths) is Tensor:
        if lengths.device.type != "cpu":
            raise RuntimeError(
                "'lengths' argument should be a 1D CPU int64 tensor, but got 1D "
                f"{lengths.device.type} {lengths.dtype} tensor"
            )
        lengths = lengths.numpy()
    arr = np.asarray(lengths)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise RuntimeError(
            f"'lengths' must be a 1-D sequence of integers, got {arr.dtype} of shape {arr.shape}"
        )
    return arr.astype(np.int64)


def pad_sequence(
    sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"
):
    """Stack tensors of shapes (L_i, *) into (L_max, B, *) (or (B, L_max, *) with
    ``batch_first``), filling with ``padding_value`` after (``padding_side="right"``) or
    before (``"left"``) each sequence; differentiable.

    >>> pad_sequence([ember.ones(3), ember.ones(1)], batch_first=True)
    tensor([[1., 1., 1.],
            [1., 0., 0.]])
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    tail = tuple(sequences[0].shape[1:])
    for s in sequences:
        if tuple(s.shape[1:]) != tail:
            raise RuntimeError(
                f"The size of the trailing dimensions must match: got {tuple(s.shape[1:])} and {tail}"
            )
    longest = max(int(s.shape[0]) for s in sequences)
    rows = []
    for s in sequences:
        n = longest - int(s.shape[0])
        if n:
            fill = ember.full((n, *tail), padding_value, dtype=s.dtype, device=s.device)
            s = ember.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        rows.append(s)
    return ember.stack(rows, 0 if batch_first else 1)


def pack_padded_sequence(input, lengths, batch_first: bool = False, enforce_sorted: bool = True):
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of
    the given ``lengths``. With ``enforce_sorted`` the lengths must be decreasing; else
    they are sorted here and the permutation is kept in the result. Differentiable.

    >>> packed = pack_padded_sequence(ember.zeros(5, 3, 8), [2, 5, 3], enforce_sorted=False)
    >>> packed.batch_sizes
    tensor([3, 3, 2, 1, 1])
    """
    lens = _as_lengths(lengths)
    x = input.transpose(0, 1) if batch_first else input
    t_max, b = int(x.shape[0]), int(x.shape[1])
    if lens.shape[0] != b:
        raise ValueError(
            f"Expected `len(lengths)` to be equal to batch_size, but got {lens.shape[0]} (batch_size={b})"
        )
    if np.any(lens <= 0):
        raise RuntimeError(
            "Length of all samples has to be greater than 0, but found an element in 'lengths' that is <= 0"
        )
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can "
                "pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this "
                "requirement if you do not need ONNX exportability."
            )
        order = np.arange(b)
        sorted_indices = None
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = _wrap(order.astype(np.int64))
    slens = lens[order]
    if int(slens[0]) > t_max:
        raise RuntimeError(f"a length of {int(slens[0])} exceeds the padded input's {t_max} steps")
    batch_sizes = (slens[None, :] > np.arange(int(slens[0]))[:, None]).sum(1).astype(np.int64)
    # row of each packed step in the (T * B) flattening of the padded input, time-major
    rows = np.concatenate([t * b + order[: batch_sizes[t]] for t in range(batch_sizes.shape[0])])
    flat = x.reshape(t_max * b, *x.shape[2:])
    data = flat.index_select(0, _wrap(rows))
    return PackedSequence(data, _wrap(batch_sizes), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first: bool = False, padding_value: float = 0.0, total_length=None):
    """Unpack to ``(padded, lengths)``: (T, B, *) (or (B, T, *)) in the caller's batch order,
    ``padding_value`` after each end, ``T = total_length`` if given (at least the longest),
    and the lengths as an int64 tensor. Differentiable.

    >>> padded, lengths = pad_packed_sequence(packed, batch_first=True)   # (3, 5, 8), [2, 5, 3]
    """
    data, batch_sizes = sequence.data, sequence.batch_sizes.numpy()
    t_max, b = int(batch_sizes.shape[0]), int(batch_sizes[0])
    if total_length is not None:
        if total_length < t_max:
            raise ValueError(
                f"Expected total_length to be at least the length of the longest sequence in the input, but "
                f"got total_length={total_length} and max sequence length being {t_max}"
            )
        t_out = int(total_length)
    else:
        t_out = t_max
    n = int(data.shape[0])
    starts = np.concatenate([[0], np.cumsum(batch_sizes)[:-1]])
    # for each padded (t, sorted b): its packed row, or n (a padding row appended below)
    idx = np.full((t_out, b), n, dtype=np.int64)
    for t in range(t_max):
        idx[t, : batch_sizes[t]] = starts[t] + np.arange(batch_sizes[t])
    if sequence.unsorted_indices is not None:
        idx = idx[:, sequence.unsorted_indices.numpy()]
    pad_row = ember.full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    src = ember.cat([data, pad_row], 0)
    padded = src.index_select(0, _wrap(idx.reshape(-1))).reshape(t_out, b, *data.shape[1:])
    lengths = _wrap(np.asarray(sequence.lengths(), dtype=np.int64))
    return (padded.transpose(0, 1) if batch_first else padded), lengths


def pack_sequence(sequences, enforce_sorted: bool = True):
    """Pack a list of (L_i, *) tensors: ``pack_padded_sequence(pad_sequence(sequences), lengths)``.

    >>> pack_sequence([ember.ones(3, 2), ember.ones(1, 2)]).batch_sizes
    tensor([2, 1, 1])
    """
    lengths = [int(s.shape[0]) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False):
    """The list of unpadded sequences of a padded batch (the inverse of ``pad_sequence``)."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, : int(n)] for i, n in enumerate(_as_lengths(lengths))]


def unpack_sequence(packed_sequences):
    """The list of sequences of a ``PackedSequence`` (the inverse of ``pack_sequence``)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
