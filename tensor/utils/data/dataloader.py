"""The ``DataLoader``: batches of a dataset, as ``torch.utils.data.DataLoader``."""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from ember.utils.data.dataset import IterableDataset
from ember.utils.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

_COLLATE_HELP = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def default_convert(data):
    """Turn numpy arrays and numpy scalars into tensors, recursing into dicts, named
    tuples, tuples and lists; everything else is returned as it is (what the loader
    applies to each item when ``batch_size=None``).

    >>> default_convert({"x": np.zeros(2), "name": "a"})
    {'x': tensor([0., 0.], dtype=ember.float64), 'name': 'a'}
    """
    from ember._tensor import Tensor, _wrap

    if type(data) is Tensor:
        return data
    if isinstance(data, np.ndarray):
        return data if data.dtype.kind in "OSUV" else _wrap(np.array(data))
    if isinstance(data, np.generic):
        return _wrap(np.asarray(data))
    if isinstance(data, Mapping):
        return (
            type(data)({k: default_convert(v) for k, v in data.items()})
            if type(data) is not dict
            else {k: default_convert(v) for k, v in data.items()}
        )
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """Stack a list of samples into a batch, as PyTorch's ``default_collate``.

    Tensors and numpy arrays are stacked along a new first dimension (dtype kept); Python
    floats become a float64 tensor, ints an int64 tensor, bools a bool tensor; strings stay
    a list; dicts are collated key by key, tuples and lists position by position (a tuple
    of samples gives a list of batches, as in PyTorch), named tuples keep their type.

    >>> default_collate([(ember.zeros(2), 1), (ember.ones(2), 0)])
    [tensor([[0., 0.],
            [1., 1.]]), tensor([1, 0])]
    """
    from ember._tensor import Tensor, _wrap
    from ember.ops_shape import stack

    elem = batch[0]
    if type(elem) is Tensor:
        shape = elem.shape
        for b in batch:
            if type(b) is not Tensor or b.shape != shape:
                raise RuntimeError(
                    f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 and "
                    f"{list(getattr(b, 'shape', ()))} at another entry"
                )
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OSUV":
            raise TypeError(_COLLATE_HELP.format(elem.dtype))
        return _wrap(np.stack(batch))
    if isinstance(elem, np.generic):
        return _wrap(np.asarray(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return _wrap(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, float):
        return _wrap(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, int):
        return _wrap(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        out = {key: default_collate([d[key] for d in batch]) for key in elem}
        return out if type(elem) is dict else _try_type(elem, out)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, Sequence):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        cols = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return cols
        return _try_type(elem, cols)
    raise TypeError(_COLLATE_HELP.format(type(elem)))


def _try_type(elem, value):
    try:
        return type(elem)(value)
    except TypeError:
        return value


class DataLoader:
    """Iterate over a dataset in batches, as ``torch.utils.data.DataLoader``.

    Args (PyTorch's): ``batch_size`` (1; ``None`` yields items one by one, converted by
    ``default_convert``), ``shuffle`` (a fresh random order each epoch), ``sampler`` /
    ``batch_sampler`` (your own order or batches), ``collate_fn`` (``default_collate``),
    ``drop_last`` (drop the last, short batch), ``generator`` (seeds the shuffle:
    reproducible epochs), ``num_workers`` (see below), ``worker_init_fn``,
    ``prefetch_factor`` (batches in flight per worker, 2), ``timeout`` (seconds to wait
    for a worker's batch, 0: forever), ``pin_memory`` and ``persistent_workers``
    (accepted; no effect in ember).

    Where ember differs, deliberately: ``num_workers > 0`` loads batches on that many
    worker *threads*, in order, ahead of the consumer, instead of worker processes (the
    dataset is never pickled; numpy releases the GIL for most array work). Iterable-style
    datasets are read in the main thread only, so ``num_workers > 0`` with one is refused.

    >>> ds = TensorDataset(ember.arange(10.0))
    >>> [b[0].tolist() for b in DataLoader(ds, batch_size=4)]
    [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]
    """

    def __init__(
        self,
        dataset,
        batch_size=1,
        shuffle=None,
        sampler=None,
        batch_sampler=None,
        num_workers=0,
        collate_fn=None,
        pin_memory=False,
        drop_last=False,
        timeout=0,
        worker_init_fn=None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor=None,
        persistent_workers=False,
        pin_memory_device="",
    ):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing. Let num_workers > 0 "
                "to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError("prefetch_factor option should be at least 1")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers > 0 else prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.persistent_workers = persistent_workers
        self._iterable = isinstance(dataset, IterableDataset)

        if self._iterable:
            if shuffle not in (None, False):
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                    f"shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified sampler option, but got "
                    f"sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler option, but got "
                    f"batch_sampler={batch_sampler}"
                )
            if num_workers > 0:
                raise ValueError(
                    "DataLoader with IterableDataset: ember's workers are threads that share one sampler, "
                    "so an iterable dataset is read in the main thread; use num_workers=0"
                )
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                    "and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
            )
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = (
                default_collate if self._auto_collation or self._iterable_batched else default_convert
            )
        self.collate_fn = collate_fn

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _iterable_batched(self):
        return self._iterable and self.batch_size is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)  # TypeError when the stream has no length, as in PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)

    def __iter__(self):
        if self._iterable:
            return self._iter_stream()
        if self.num_workers == 0:
            return (self._fetch(i) for i in self._index_sampler)
        return _ThreadedIter(self)

    def _fetch(self, index):
        ds = self.dataset
        if self._auto_collation:
            getitems = getattr(ds, "__getitems__", None)
            items = getitems(index) if getitems is not None else [ds[i] for i in index]
            return self.collate_fn(items)
        return self.collate_fn(ds[index])

    def _iter_stream(self):
        it = iter(self.dataset)
        if self.batch_size is None:
            for item in it:
                yield self.collate_fn(item)
            return
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield self.collate_fn(batch)


class _ThreadedIter:
    """Ordered prefetch on ``num_workers`` threads: up to ``prefetch_factor * num_workers``
    batches are being loaded while the consumer works on the current one."""

    def __init__(self, loader: DataLoader):
        from concurrent.futures import ThreadPoolExecutor

        self._loader = loader
        self._ids = itertools.count()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(
            max_workers=loader.num_workers,
            thread_name_prefix="ember-dataloader",
            initializer=self._init_worker,
        )
        self._indices = iter(loader._index_sampler)
        self._pending = collections.deque()
        for _ in range(loader.prefetch_factor * loader.num_workers):
            if not self._submit():
                break

    def _init_worker(self):
        wid = next(self._ids)
        if self._loader.worker_init_fn is not None:
            self._loader.worker_init_fn(wid)

    def _submit(self):
        try:
            index = next(self._indices)
        except StopIteration:
            return False
        self._pending.append(self._pool.submit(self._loader._fetch, index))
        return True

    def __iter__(self):
        return self

    def __next__(self):
        if not self._pending:
            self._pool.shutdown(wait=False)
            raise StopIteration
        fut = self._pending.popleft()
        self._submit()
        try:
            return fut.result(timeout=self._loader.timeout or None)
        except TimeoutError:
            self.close()
            raise RuntimeError(f"DataLoader timed out after {self._loader.timeout} seconds") from None
        except BaseException:
            self.close()
            raise

    def close(self):
        for f in self._pending:
            f.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=False)

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)


__all__ = ["DataLoader", "Sampler", "default_collate", "default_convert"]
