"""Datasets, samplers and the ``DataLoader``, as ``torch.utils.data``.

>>> from ember.utils.data import DataLoader, TensorDataset
>>> ds = TensorDataset(ember.randn(100, 3), ember.randint(0, 2, (100,)))
>>> for x, y in DataLoader(ds, batch_size=32, shuffle=True, generator=ember.Generator().manual_seed(0)):
...     pass                  # x: (32, 3) float32, y: (32,) int64; the last batch has 4 rows

What differs from PyTorch, deliberately: ``num_workers > 0`` loads batches on worker
*threads* (numpy releases the GIL in most array work, and nothing has to be pickled),
not processes, and only for map-style datasets; ``pin_memory`` is accepted and does
nothing (ember has no pinned host memory).
"""

from ember.utils.data.dataloader import DataLoader, default_collate, default_convert
from ember.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from ember.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "random_split",
]
