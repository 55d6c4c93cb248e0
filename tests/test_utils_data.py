"""ember.utils.data behaves as torch.utils.data: datasets, samplers, collation, the loader."""

from __future__ import annotations

import collections
import threading

import numpy as np
import pytest

import ember
from ember.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    StackDataset,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    random_split,
)


def _ds(n=10):
    return TensorDataset(ember.arange(float(n)), ember.arange(n))


def test_utils_is_reachable_from_a_bare_import():
    assert ember.utils.data.DataLoader is DataLoader


def test_tensor_dataset_rows_and_length_checks():
    ds = _ds(5)
    x, y = ds[2]
    assert len(ds) == 5 and x.item() == 2.0 and y.item() == 2
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(ember.zeros(3), ember.zeros(4))


def test_loader_batches_in_order_with_a_short_last_batch():
    batches = list(DataLoader(_ds(10), batch_size=4))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    assert len(DataLoader(_ds(10), batch_size=4)) == 3
    assert len(DataLoader(_ds(10), batch_size=4, drop_last=True)) == 2
    assert [len(b[0]) for b in DataLoader(_ds(10), batch_size=4, drop_last=True)] == [4, 4]


def test_shuffle_is_a_permutation_reproducible_with_a_generator_and_new_each_epoch():
    dl = DataLoader(_ds(20), batch_size=5, shuffle=True, generator=ember.Generator().manual_seed(1))
    e1 = [i for b in dl for i in b[1].tolist()]
    e2 = [i for b in dl for i in b[1].tolist()]
    assert sorted(e1) == list(range(20)) and sorted(e2) == list(range(20))
    assert e1 != e2 and e1 != list(range(20))
    dl2 = DataLoader(_ds(20), batch_size=5, shuffle=True, generator=ember.Generator().manual_seed(1))
    assert [i for b in dl2 for i in b[1].tolist()] == e1


def test_shuffle_without_a_generator_follows_manual_seed():
    ember.manual_seed(5)
    a = [b[1].tolist() for b in DataLoader(_ds(8), batch_size=8, shuffle=True)]
    ember.manual_seed(5)
    b = [b[1].tolist() for b in DataLoader(_ds(8), batch_size=8, shuffle=True)]
    assert a == b


def test_default_collate_of_numbers_dicts_tuples_strings_and_arrays():
    out = default_collate([(1, 2.5, True, "a"), (3, 4.5, False, "b")])
    assert isinstance(out, list) and out[0].dtype == np.int64 and out[1].dtype == np.float64
    assert out[2].dtype == np.bool_ and out[3] == ["a", "b"]
    d = default_collate([{"x": np.ones(2, np.float32), "y": 0}, {"x": np.zeros(2, np.float32), "y": 1}])
    assert d["x"].shape == (2, 2) and d["x"].dtype == np.float32 and d["y"].tolist() == [0, 1]
    Point = collections.namedtuple("Point", "a b")
    p = default_collate([Point(ember.zeros(3), 1), Point(ember.ones(3), 2)])
    assert type(p) is Point and p.a.shape == (2, 3)
    nested = default_collate([[ember.zeros(2), [1, 2]], [ember.ones(2), [3, 4]]])
    assert nested[1][0].tolist() == [1, 3]


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([ember.zeros(2), ember.zeros(3)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])


def test_default_convert_and_batch_size_none():
    assert type(default_convert(np.ones(2))) is ember.Tensor
    assert default_convert("s") == "s"

    class Arr(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full(2, i, np.float32)

    items = list(DataLoader(Arr(), batch_size=None))
    assert len(items) == 3 and items[2].tolist() == [2.0, 2.0] and type(items[0]) is ember.Tensor


def test_custom_collate_fn_and_sampler_and_batch_sampler():
    ds = _ds(6)
    got = list(DataLoader(ds, batch_size=2, collate_fn=lambda b: [int(y) for _, y in b]))
    assert got == [[0, 1], [2, 3], [4, 5]]

    class Reverse(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n - 1, -1, -1))

        def __len__(self):
            return self.n

    assert [b[1].tolist() for b in DataLoader(ds, batch_size=4, sampler=Reverse(6))] == [[5, 4, 3, 2], [1, 0]]
    bs = [[0, 5], [1], [2, 3, 4]]
    assert [b[1].tolist() for b in DataLoader(ds, batch_sampler=bs)] == bs
    assert len(DataLoader(ds, batch_sampler=bs)) == 3


def test_loader_option_conflicts_are_pytorchs_errors():
    ds = _ds(4)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="disables auto-batching"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(ds, batch_size=0)


def test_thread_workers_give_the_same_batches_in_order_and_run_worker_init():
    seen = []
    lock = threading.Lock()

    def init(wid):
        with lock:
            seen.append(wid)

    ref = [b[1].tolist() for b in DataLoader(_ds(50), batch_size=7)]
    got = [b[1].tolist() for b in DataLoader(_ds(50), batch_size=7, num_workers=2, worker_init_fn=init)]
    assert got == ref and sorted(seen) == list(range(len(seen))) and 1 <= len(seen) <= 2


def test_worker_exceptions_reach_the_consumer():
    class Bad(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise KeyError("broken item")
            return i

    with pytest.raises(KeyError, match="broken item"):
        list(DataLoader(Bad(), batch_size=1, num_workers=2))


def test_iterable_dataset_is_batched_in_order_and_refuses_shuffle():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(), shuffle=True)
    with pytest.raises(ValueError, match="main thread"):
        DataLoader(Stream(), num_workers=2)
    with pytest.raises(TypeError):
        len(DataLoader(Stream()))
    assert [int(x) for x in ChainDataset([Stream(), Stream()])][6:9] == [6, 0, 1]


def test_random_split_lengths_fractions_and_reproducibility():
    a, b = random_split(range(10), [3, 7], generator=ember.Generator().manual_seed(0))
    assert len(a) == 3 and len(b) == 7 and sorted(list(a) + list(b)) == list(range(10))
    c, d = random_split(range(10), [3, 7], generator=ember.Generator().manual_seed(0))
    assert list(a) == list(c)
    parts = random_split(range(11), [0.5, 0.3, 0.2], generator=ember.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [6, 3, 2]  # floors 5, 3, 2 -> the remainder 1 to the first
    with pytest.raises(ValueError, match="does not equal the length"):
        random_split(range(10), [3, 3])


def test_subset_concat_and_stack_datasets():
    ds = _ds(5)
    s = Subset(ds, [4, 0])
    assert len(s) == 2 and s[0][1].item() == 4
    c = ds + _ds(3)
    assert isinstance(c, ConcatDataset) and len(c) == 8 and c[5][1].item() == 0 and c[-1][1].item() == 2
    with pytest.raises(IndexError):
        c[8]
    st = StackDataset(a=ds, b=_ds(5))
    assert set(st[1]) == {"a", "b"}
    with pytest.raises(ValueError, match="Size mismatch"):
        StackDataset(ds, _ds(4))


def test_samplers():
    assert list(SequentialSampler(range(3))) == [0, 1, 2]
    g = ember.Generator().manual_seed(0)
    r = list(RandomSampler(range(10), generator=g))
    assert sorted(r) == list(range(10))
    rep = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(rep) == 50 and set(rep) <= {0, 1, 2}
    more = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(more) == 10 and all(more.count(i) >= 2 for i in range(4))
    assert sorted(SubsetRandomSampler([5, 7, 9], generator=g)) == [5, 7, 9]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 200, generator=g))
    assert set(w) == {1, 3} and w.count(3) > w.count(1)
    assert list(BatchSampler(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, drop_last=False)) == 3
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(5), 0, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(5), num_samples=0)
