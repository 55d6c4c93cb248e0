"""``ember.nn``: modules, layers, losses, initialisation, ``functional`` and ``utils``.

>>> model = ember.nn.Sequential(ember.nn.Linear(2, 16), ember.nn.ReLU(), ember.nn.Linear(16, 3))
>>> loss = ember.nn.functional.cross_entropy(model(x), labels)
>>> loss.backward()
"""

from __future__ import annotations

from ember.nn import functional, init, utils
from ember.nn.activation import (
    ELU,
    GELU,
    Dropout,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from ember.nn.containers import ModuleDict, ModuleList, Sequential
from ember.nn.conv import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    ConvTranspose1d,
    ConvTranspose2d,
    MaxPool1d,
    MaxPool2d,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
)
from ember.nn.distance import CosineSimilarity, PairwiseDistance
from ember.nn.linear import Bilinear, Flatten, Identity, Linear, Unflatten
from ember.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from ember.nn.module import Module, RemovableHandle
from ember.nn.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from ember.nn.parameter import Parameter
from ember.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from ember.nn.sparse import Embedding, EmbeddingBag
from ember.nn.transformer import (
    MultiheadAttention,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "functional",
    "init",
    "utils",
    "Module",
    "Parameter",
    "RemovableHandle",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "Identity",
    "Linear",
    "Bilinear",
    "Flatten",
    "Unflatten",
    "Embedding",
    "EmbeddingBag",
    "Dropout",
    "LayerNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "GroupNorm",
    "Conv1d",
    "Conv2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
    "CosineSimilarity",
    "PairwiseDistance",
    "RNNBase",
    "RNN",
    "LSTM",
    "GRU",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerEncoder",
    "TransformerDecoderLayer",
    "TransformerDecoder",
    "Transformer",
    "ReLU",
    "ReLU6",
    "GELU",
    "Tanh",
    "Sigmoid",
    "SiLU",
    "ELU",
    "Softmax",
    "LogSoftmax",
    "LeakyReLU",
    "Softplus",
    "MSELoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "MarginRankingLoss",
    "KLDivLoss",
]
