"""pbg.device: partitions and edges swapped between host and device.

On the stand-in device (numpy arrays of a foreign-device subclass that refuse host
arrays and direct numpy calls) the swapper runs its device path fully: these tests prove
that every array it hands out lives on the device, that data round-trips exactly, that
a bucket loop on the device gives the same tables as on the host, and that sub-buckets
cover a bucket exactly within the budget. ``gpu`` tests repeat this on a real GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import optim
from ember._standin import DeviceMixError, StandinArray
from ember.pbg.device import PartitionSwapper, on_device, split_bucket, storage_dtype
from ember.sparse import RowSparseGrad

DEVICES = ["cpu", "standin"] + (
    [pytest.param("cuda", marks=pytest.mark.gpu)] if ember.cuda.is_available() else []
)


def _parts(rng, keys, rows=50, dim=8):
    return {
        k: (rng.standard_normal((rows, dim)).astype(np.float32), rng.random(rows).astype(np.float32))
        for k in keys
    }


def _edges(rng, n=200, rows=50):
    return {
        "lhs": rng.integers(0, rows, n),
        "rhs": rng.integers(0, rows, n),
        "rel": rng.integers(0, 3, n),
        "weight": rng.random(n).astype(np.float32),
    }


def _assert_on(a, device):
    assert on_device(a, device), f"{type(a).__name__} is not on {device}"
    if device == "standin":
        assert type(a) is StandinArray


def _host(a):
    return ember.tensor(a).cpu().numpy() if not isinstance(a, np.ndarray) or type(a) is StandinArray else a


@pytest.mark.parametrize("device", DEVICES)
def test_round_trip_is_exact_and_everything_handed_out_is_on_the_device(device, rng):
    sw = PartitionSwapper(device)
    parts, edges = _parts(rng, [("e", 0), ("e", 1)]), _edges(rng)
    sw.prefetch(parts, edges)
    b = sw.activate()
    for k, (e, s) in b.parts.items():
        _assert_on(e, device), _assert_on(s, device)
        np.testing.assert_array_equal(_host(e), parts[k][0])
        np.testing.assert_array_equal(_host(s), parts[k][1])
    for name, v in b.edges.items():
        _assert_on(v, device)
        np.testing.assert_array_equal(_host(v), edges[name])
        assert v.dtype == edges[name].dtype
    back = sw.write_back(b.parts).result()
    for k in parts:
        assert type(back[k][0]) is np.ndarray and back[k][0].dtype == np.float32
        np.testing.assert_array_equal(back[k][0], parts[k][0])
        np.testing.assert_array_equal(back[k][1], parts[k][1])
    sw.close()


def test_device_copies_never_alias_the_host_arrays(rng):
    sw = PartitionSwapper("cpu")
    parts = _parts(rng, [("e", 0)])
    sw.prefetch(parts)
    emb, _ = sw.activate().parts[("e", 0)]
    emb += 1
    assert not np.shares_memory(emb, parts[("e", 0)][0])
    np.testing.assert_array_equal(sw.write_back([("e", 0)]).result()[("e", 0)][0], parts[("e", 0)][0] + 1)


def test_standin_tables_refuse_host_arrays(rng):
    sw = PartitionSwapper("standin")
    sw.prefetch(_parts(rng, [("e", 0)]))
    emb, _ = sw.activate().parts[("e", 0)]
    with pytest.raises(DeviceMixError):
        emb + np.ones(emb.shape[1], np.float32)
    with pytest.raises(DeviceMixError):
        np.sum(emb)  # a direct numpy call would be a silent host fallback
    sw.drop([("e", 0)])


def test_shared_partition_is_reused_not_recopied_and_keeps_its_updates(rng):
    sw = PartitionSwapper("standin")
    parts = _parts(rng, [("e", 0), ("e", 1), ("e", 2)])
    sw.prefetch({k: parts[k] for k in [("e", 0), ("e", 1)]})
    b = sw.activate()
    b.parts[("e", 1)][0][...] += 2  # trained on the device
    sw.prefetch({k: parts[k] for k in [("e", 1), ("e", 2)]})  # host copy of 1 is stale
    before = sw.stats()["h2d_bytes"]
    saved = sw.write_back([("e", 0)]).result()
    b2 = sw.activate()
    assert set(sw.resident) == {("e", 1), ("e", 2)}
    np.testing.assert_array_equal(_host(b2.parts[("e", 1)][0]), parts[("e", 1)][0] + 2)
    assert before == 3 * sum(a.nbytes for a in parts[("e", 0)])  # 0, 1, 2 once each
    np.testing.assert_array_equal(saved[("e", 0)][0], parts[("e", 0)][0])
    sw.drop(sw.resident)


def test_evicting_a_trained_partition_without_write_back_is_refused(rng):
    sw = PartitionSwapper("cpu")
    parts = _parts(rng, [("e", 0), ("e", 1)])
    sw.prefetch({("e", 0): parts[("e", 0)]})
    sw.activate()
    sw.prefetch({("e", 1): parts[("e", 1)]})
    with pytest.raises(RuntimeError, match="neither written back nor dropped"):
        sw.activate()
    with pytest.raises(RuntimeError, match="not written back"):
        sw.close()


def test_budget_defers_the_prefetch_until_the_old_bucket_is_evicted(rng):
    parts = _parts(rng, [("e", 0), ("e", 1)])
    one = sum(a.nbytes for a in parts[("e", 0)])
    sw = PartitionSwapper("standin", memory_budget=one)
    sw.prefetch({("e", 0): parts[("e", 0)]})
    sw.activate()
    sw.prefetch({("e", 1): parts[("e", 1)]})  # does not fit beside partition 0
    assert sw.resident_bytes() == one
    sw.write_back([("e", 0)]).result()
    b = sw.activate()
    np.testing.assert_array_equal(_host(b.parts[("e", 1)][0]), parts[("e", 1)][0])
    st = sw.stats()
    assert st["deferred_prefetches"] == 1 and st["peak_resident_bytes"] <= one


@pytest.mark.parametrize("device", ["cpu", "standin"])
def test_half_precision_tables_with_float32_state(device, rng):
    sw = PartitionSwapper(device, dtype="float16")
    parts = _parts(rng, [("e", 0)])
    sw.prefetch(parts)
    emb, state = sw.activate().parts[("e", 0)]
    assert emb.dtype == np.float16 and state.dtype == np.float32
    back = sw.write_back([("e", 0)]).result()[("e", 0)]
    np.testing.assert_array_equal(back[0], parts[("e", 0)][0].astype(np.float16))
    np.testing.assert_array_equal(back[1], parts[("e", 0)][1])
    assert sw.stats()["h2d_bytes"] == emb.nbytes + state.nbytes  # half the table traffic


def test_bfloat16_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="bfloat16"):
        storage_dtype("bfloat16")
    with pytest.raises(ValueError, match="float32"):
        PartitionSwapper("cpu", dtype="float64")


def _bucket_loop(device, parts, buckets, edges, dtype="float32"):
    """A miniature trainer: sparse RowAdagrad steps on the device tables, bucket by
    bucket, partitions written back to a host 'checkpoint' when they leave."""
    host = {k: (e.copy(), s.copy()) for k, (e, s) in parts.items()}
    sw = PartitionSwapper(device, dtype=dtype)
    sw.prefetch({k: host[k] for k in buckets[0]}, edges[0])
    for i, keys in enumerate(buckets):
        b = sw.activate()
        if i + 1 < len(buckets):  # the next bucket's copies start before this one trains
            nxt = buckets[i + 1]
            sw.prefetch({k: host[k] for k in nxt}, edges[i + 1])
        for k in keys:
            emb, state = b.parts[k]
            t = ember.asarray(emb)  # no copy: the optimizer updates the device table
            t.requires_grad_(True)
            opt = optim.RowAdagrad([t], lr=0.1)
            opt.state[t] = {"step": 0, "sum": ember.tensor(state)}
            rows = b.edges["lhs"][:20]
            xp = ember._backend.array_module(emb)
            idx = xp.unique(rows)
            g = xp.ones((len(idx), emb.shape[1]), np.float32) * (i + 1)
            t.grad = RowSparseGrad(idx, g, t.shape, coalesced=True)
            opt.step()
            assert t._data is emb  # updated in place, on the device
        leaving = [k for k in keys if i + 1 == len(buckets) or k not in buckets[i + 1]]
        host.update(sw.write_back(leaving).result())
        for k in leaving:
            assert k not in sw._dirty
    sw.close()
    return host, sw.stats()


@pytest.mark.parametrize("device", DEVICES[1:])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_bucket_loop_on_the_device_equals_the_loop_on_the_host(device, dtype, rng):
    keys = [("e", p) for p in range(3)]
    parts = _parts(rng, keys)
    buckets = [[("e", 0), ("e", 1)], [("e", 1), ("e", 2)], [("e", 2), ("e", 0)]]
    edges = [_edges(rng) for _ in buckets]
    dev, st = _bucket_loop(device, parts, buckets, edges, dtype)
    ref, _ = _bucket_loop("cpu", parts, buckets, edges, dtype)
    for k in keys:
        np.testing.assert_array_equal(dev[k][0], ref[k][0])
        np.testing.assert_array_equal(dev[k][1], ref[k][1])
    changed = sum(not np.array_equal(dev[k][0], parts[k][0]) for k in keys)
    assert changed == 3
    assert st["wait_seconds"] >= 0 and st["d2h_bytes"] > 0


# ---- sub-buckets ----------------------------------------------------------------------
def test_a_bucket_that_fits_is_one_sub_bucket(rng):
    lhs, rhs = rng.integers(0, 100, 500), rng.integers(0, 80, 500)
    (sb,) = split_bucket(lhs, rhs, 100, 80, row_bytes=10, edge_bytes=8, budget=10**6)
    assert sb.lhs_rows == (0, 100) and sb.rhs_rows == (0, 80)
    np.testing.assert_array_equal(np.sort(sb.edges), np.arange(500))


@pytest.mark.parametrize("same", [False, True])
def test_sub_buckets_cover_every_edge_once_and_fit_the_budget(same, rng):
    n_l, n_r, n = 1000, (1000 if same else 700), 20000
    lhs, rhs = rng.integers(0, n_l, n), rng.integers(0, n_r, n)
    row_bytes, edge_bytes, budget = 400, 24, 300_000
    subs = split_bucket(
        lhs, rhs, n_l, n_r, row_bytes=row_bytes, edge_bytes=edge_bytes, budget=budget, same_partition=same
    )
    assert len(subs) > 1
    seen = np.concatenate([s.edges for s in subs])
    np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    for s in subs:
        (a0, a1), (b0, b1) = s.lhs_rows, s.rhs_rows
        assert ((a1 - a0) + (b1 - b0)) * row_bytes + len(s.edges) * edge_bytes <= budget
        assert (s.lhs >= 0).all() and (s.lhs < a1 - a0).all()
        assert (s.rhs >= 0).all() and (s.rhs < b1 - b0).all()
        np.testing.assert_array_equal(s.lhs + a0, lhs[s.edges])
        np.testing.assert_array_equal(s.rhs + b0, rhs[s.edges])


def test_sub_buckets_swap_as_row_ranges(rng):
    """A sub-bucket's row ranges go through the swapper as keys of their own, and come
    back into the right rows of the host table."""
    emb = rng.standard_normal((100, 4)).astype(np.float32)
    state = np.zeros(100, np.float32)
    lhs, rhs = rng.integers(0, 100, 1000), rng.integers(0, 100, 1000)
    subs = split_bucket(lhs, rhs, 100, 100, row_bytes=20, edge_bytes=16, budget=4000, same_partition=True)
    sw = PartitionSwapper("standin")
    out = emb.copy()
    for s in subs[:3]:
        ranges = {("e", 0, s.lhs_rows[0]): s.lhs_rows, ("e", 0, s.rhs_rows[0]): s.rhs_rows}
        sw.prefetch(
            {k: (out[lo:hi], state[lo:hi]) for k, (lo, hi) in ranges.items()}, {"lhs": s.lhs, "rhs": s.rhs}
        )
        b = sw.activate()
        key = ("e", 0, s.lhs_rows[0])
        b.parts[key][0][...] += 1
        for k, (e, st) in sw.write_back(ranges).result().items():
            lo, hi = ranges[k]
            out[lo:hi], state[lo:hi] = e, st
    lo, hi = subs[0].lhs_rows
    np.testing.assert_allclose(out[lo:hi], emb[lo:hi] + sum(s.lhs_rows == (lo, hi) for s in subs[:3]))


def test_split_refuses_when_nothing_fits():
    with pytest.raises(MemoryError, match="budget"):
        split_bucket(np.zeros(10, int), np.zeros(10, int), 4, 4, row_bytes=100, edge_bytes=8, budget=50)


# ---- on a real GPU ---------------------------------------------------------------------
@pytest.mark.gpu
def test_gpu_copies_overlap_and_wait_is_measured(rng):
    big = _parts(rng, [("e", p) for p in range(3)], rows=200_000, dim=100)
    buckets = [[("e", 0), ("e", 1)], [("e", 1), ("e", 2)], [("e", 2), ("e", 0)]]
    edges = [_edges(rng, 100_000, 200_000) for _ in buckets]
    dev, st = _bucket_loop("cuda", big, buckets, edges)
    ref, _ = _bucket_loop("cpu", big, buckets, edges)
    for k in big:
        np.testing.assert_allclose(dev[k][0], ref[k][0], rtol=1e-5, atol=1e-6)
    assert 0 <= st["wait_seconds"] and st["h2d_bytes"] > 0
