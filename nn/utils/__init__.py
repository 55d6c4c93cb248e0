"""``ember.nn.utils``: gradient clipping, and ``rnn`` (padding and packing variable-length
sequences for ``RNN``/``LSTM``/``GRU``), as ``torch.nn.utils``."""

from ember.nn.utils import rnn
from ember.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
