"""``CosineSimilarity`` and ``PairwiseDistance`` (the computation is in ``ember.nn.functional``)."""

from __future__ import annotations

from ember.nn import functional as F
from ember.nn.module import Module


class CosineSimilarity(Module):
    """``x1 . x2 / max(||x1|| ||x2||, eps)`` along ``dim`` (inputs broadcast).

    >>> ember.nn.CosineSimilarity(dim=1)(ember.randn(5, 8), ember.randn(5, 8)).shape
    (5,)
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)

    def extra_repr(self):
        return f"dim={self.dim}, eps={self.eps}"


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` over the last dimension.

    >>> ember.nn.PairwiseDistance(p=2)(ember.randn(5, 8), ember.randn(5, 8)).shape
    (5,)
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
