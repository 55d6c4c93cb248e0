"""The device side of bucket training: partitions and edges swapped host<->device.

``PartitionSwapper`` keeps the active bucket's partitions (embedding table + one
RowAdagrad accumulator per row) and its edges on the training device. On a GPU it
overlaps the swaps with training, as Marius does and PyTorch-BigGraph's GPU trainer
does not:

* ``prefetch(parts, edges)`` stages the *next* bucket's host arrays into pinned
  (page-locked) buffers and starts their host->device copies on a separate copy stream,
  while the current bucket keeps the compute stream busy. Partitions already resident
  (the one a bucket shares with the next, under PBG's ``inside_out`` order) are not
  copied again: the device copy is the current one.
* ``activate()`` makes the prefetched bucket current. The compute stream waits (on the
  GPU, not the host) for the copy stream's event; two timing events around that wait
  measure how long the GPU sat idle waiting for transfers (``stats()``).
* ``write_back(keys)`` copies finished partitions device->host on the copy stream,
  into pinned buffers, after an event that marks the end of their training; the
  returned ``WriteBack``'s ``result()`` waits for the copy and gives host float32 arrays
  (for the checkpoint), while the compute stream goes on with the next bucket.

Memory: the device holds the current bucket's partitions, plus the incoming ones of the
next bucket while they are in flight (at most four partitions of a type, three under
``inside_out``). With ``memory_budget`` set, a prefetch that would exceed it only stages
on the host; its copies start in ``activate()`` after the old partitions are evicted
(counted as waiting time). ``split_bucket`` cuts a bucket whose partition pair does not
fit the budget into sub-buckets (row ranges of the two partitions and the edges between
them) that do; each sub-bucket's row ranges are swapped like partitions.

Half precision: ``dtype="float16"`` stores the device tables as float16 (half the memory
and transfer) while the accumulators stay float32, and gradients/updates are computed in
float32 (``ember.optim`` keeps float32 gradients of float16 tables; on the GPU the fused
RowAdagrad kernel reads and writes float16 rows with float32 arithmetic). bfloat16 is
refused: neither numpy nor cupy has a bfloat16 dtype.

On the CPU the swapper degrades to plain synchronous copies (no threads, no streams);
on the test stand-in device every copy goes through ``ember._backend.to_device``, so a
test can prove that nothing is computed on host arrays and that data round-trips.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ember._backend import Device, array_module, device_of, module_for, to_device, to_host

__all__ = ["PartitionSwapper", "DeviceBucket", "WriteBack", "SubBucket", "split_bucket", "storage_dtype"]

_STORAGE = {"float32": np.float32, "float16": np.float16}


def storage_dtype(name: str):
    """The numpy dtype that device tables are stored in for config ``dtype`` ``name``."""
    if name == "bfloat16":
        raise ValueError(
            'dtype "bfloat16" is not supported: neither numpy nor cupy has a '
            'bfloat16 array type; use "float16" for half-precision tables'
        )
    if name not in _STORAGE:
        raise ValueError(f'dtype must be "float32" or "float16", got {name!r}')
    return np.dtype(_STORAGE[name])


@dataclass
class DeviceBucket:
    """The active bucket on the device: ``parts[key] = (emb, state)``, ``edges[name]``."""

    parts: dict
    edges: dict


@dataclass
class _Incoming:
    parts: dict  # key -> (host emb, host state) still to copy, or device arrays
    edges: dict
    on_device: bool = False
    event: object = None  # copy-stream event after the copies (GPU)
    staged: list = field(default_factory=list)  # pinned buffers in use by the copies


class WriteBack:
    """Finished partitions on their way to the host: ``result()`` -> ``{key: (emb, state)}``
    as float32 numpy arrays (waits for the copies on a GPU)."""

    def __init__(self, arrays: dict, event=None, release=None):
        self._arrays, self._event, self._release = arrays, event, release

    def done(self) -> bool:
        return self._event is None or self._event.done

    def result(self) -> dict:
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        if self._arrays is None:
            raise RuntimeError("WriteBack.result() can be called once")
        out = {k: (e.astype(np.float32), np.array(s, np.float32)) for k, (e, s) in self._arrays.items()}
        self._arrays = None
        if self._release is not None:
            self._release()
        return out


class PartitionSwapper:
    """Partitions and edges of the active bucket on ``device``; swaps overlapped on a GPU.

    >>> sw = PartitionSwapper("cuda", dtype="float16")
    >>> sw.prefetch({("user", 0): (emb0, state0), ("item", 1): (emb1, state1)}, edges)
    >>> bucket = sw.activate()                  # bucket.parts, bucket.edges on the GPU
    >>> sw.prefetch(next_parts, next_edges)     # copies start while this bucket trains
    >>> ... train on bucket ...
    >>> saved = sw.write_back(bucket.parts).result()   # {key: (emb, state)} on the host
    """

    def __init__(self, device="cpu", *, dtype="float32", memory_budget: int | None = None):
        self.device = Device(device)
        self.xp = module_for(self.device)
        self.dtype = storage_dtype(dtype)
        self.memory_budget = memory_budget
        self.gpu = self.device.type == "cuda"
        self.resident: dict = {}  # key -> (emb, state) on the device
        self._dirty: set = set()  # resident keys trained since their last write-back
        self._incoming: _Incoming | None = None
        self._current: set = set()
        self._waits: list = []  # (start, end) event pairs around compute-stream waits
        self._free_pinned: list = []
        self._stats = {
            "wait_seconds": 0.0,
            "h2d_bytes": 0,
            "d2h_bytes": 0,
            "peak_resident_bytes": 0,
            "deferred_prefetches": 0,
        }
        if self.gpu:
            cp = self.xp
            with cp.cuda.Device(self.device.index):
                self._copy_stream = cp.cuda.Stream(non_blocking=True)

    # ------------------------------------------------------------------ bookkeeping
    @staticmethod
    def _nbytes(parts) -> int:
        return sum(int(v[0].nbytes + v[1].nbytes) for v in parts.values() if v is not None)

    def resident_bytes(self) -> int:
        n = self._nbytes(self.resident)
        if self._incoming is not None and self._incoming.on_device:
            n += self._nbytes(self._incoming.parts)
            n += sum(int(v.nbytes) for v in self._incoming.edges.values())
        return n

    def _note_peak(self):
        self._stats["peak_resident_bytes"] = max(self._stats["peak_resident_bytes"], self.resident_bytes())

    def stats(self) -> dict:
        """``wait_seconds`` (time the compute side waited for transfers), bytes moved each
        way, peak device bytes of tables+state+edges, prefetches deferred by the budget."""
        if self._waits:
            cp = self.xp
            for start, end in self._waits:
                end.synchronize()
                self._stats["wait_seconds"] += cp.cuda.get_elapsed_time(start, end) / 1e3
            self._waits.clear()
        return dict(self._stats)

    # ------------------------------------------------------------------ host -> device
    def _device_bytes(self, parts, edges) -> int:
        item = self.dtype.itemsize
        n = sum(int(e.size * item + s.size * 4) for e, s in parts.values())
        return n + sum(int(v.nbytes) for v in edges.values())

    def prefetch(self, parts: dict, edges: dict | None = None) -> None:
        """Start moving the next bucket's data to the device: ``parts[key] = (emb, state)``
        host arrays (emb ``(rows, dim)``, state ``(rows,)``), ``edges[name]`` host arrays.
        Keys already resident are skipped (their device copy is newer)."""
        if self._incoming is not None:
            raise RuntimeError("prefetch: the previous prefetch was not activated yet")
        edges = dict(edges or {})
        # None: already resident, reused as it is (the key still belongs to the bucket)
        todo = {k: None if k in self.resident else v for k, v in parts.items()}
        incoming = _Incoming(todo, edges)
        self._incoming = incoming
        new = {k: v for k, v in todo.items() if v is not None}
        fits = (
            self.memory_budget is None
            or self.resident_bytes() + self._device_bytes(new, edges) <= self.memory_budget
        )
        if not fits:
            self._stats["deferred_prefetches"] += 1
            if self.gpu:
                incoming.parts, incoming.edges = self._stage(incoming.parts, incoming.edges, incoming)
            return
        self._upload(incoming)

    def _stage(self, parts, edges, incoming):
        """Copy host arrays into pinned buffers (converting the tables to the storage
        dtype on the way), so that the device copies can run asynchronously."""

        def pin(a, dtype):
            buf = self._pinned(a.shape, dtype, incoming.staged)
            buf[...] = a
            return buf

        p = {
            k: None if v is None else (pin(v[0], self.dtype), pin(v[1], np.float32)) for k, v in parts.items()
        }
        e = {k: pin(v, v.dtype) for k, v in edges.items()}
        return p, e

    def _pinned(self, shape, dtype, owners: list):
        """A pinned host array; its raw buffer is appended to ``owners`` (to recycle)."""
        from ember import cuda

        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        for i, (raw, ev) in enumerate(self._free_pinned):
            if raw.nbytes >= n and (ev is None or ev.done):
                del self._free_pinned[i]
                break
        else:
            raw = cuda.pinned_empty(max(n, 1), np.uint8)
        owners.append(raw)
        return raw[:n].view(dtype).reshape(shape)

    def _recycle(self, raws, event=None):
        """Pinned buffers reusable once ``event`` has passed (pinned allocation is slow,
        so buffers are kept; a bounded pool, the oldest are freed)."""
        self._free_pinned.extend((raw, event) for raw in raws)
        del self._free_pinned[:-16]

    def _upload(self, incoming: _Incoming):
        if not self.gpu:  # CPU and stand-in: plain synchronous copies
            t0 = time.perf_counter()
            incoming.parts = {
                k: None if v is None else (self._to_dev(v[0], self.dtype), self._to_dev(v[1], np.float32))
                for k, v in incoming.parts.items()
            }
            incoming.edges = {k: self._to_dev(v, v.dtype) for k, v in incoming.edges.items()}
            incoming.on_device = True
            self._stats["wait_seconds"] += time.perf_counter() - t0  # nothing overlaps here
            self._count_h2d(incoming)
            self._note_peak()
            return
        cp = self.xp
        if not incoming.staged:
            incoming.parts, incoming.edges = self._stage(incoming.parts, incoming.edges, incoming)

        def up(host):  # asynchronous: from pinned memory on the copy stream
            d = cp.empty(host.shape, host.dtype)
            d.set(host, stream=self._copy_stream)
            return d

        with cp.cuda.Device(self.device.index), self._copy_stream:
            incoming.parts = {
                k: None if v is None else (up(v[0]), up(v[1])) for k, v in incoming.parts.items()
            }
            incoming.edges = {k: up(v) for k, v in incoming.edges.items()}
            incoming.event = self._copy_stream.record()
        self._recycle(incoming.staged, incoming.event)
        incoming.staged = []
        incoming.on_device = True
        self._count_h2d(incoming)
        self._note_peak()

    def _to_dev(self, a, dtype):
        a = np.array(a, dtype=dtype)  # always a fresh copy: the device never aliases the host
        return to_device(a, self.device) if self.device.type != "cpu" else a

    def _count_h2d(self, incoming):
        self._stats["h2d_bytes"] += self._nbytes(incoming.parts)
        self._stats["h2d_bytes"] += sum(int(v.nbytes) for v in incoming.edges.values())

    # ------------------------------------------------------------------ switching
    def activate(self) -> DeviceBucket:
        """Make the prefetched bucket the active one and return its device arrays.
        Resident partitions it does not need are evicted; they must have been written
        back (``write_back``) or dropped (``drop``) since they last trained."""
        inc = self._incoming
        if inc is None:
            raise RuntimeError("activate: nothing was prefetched")
        keep = set(inc.parts)
        gone = [k for k in self.resident if k not in keep]
        lost = [k for k in gone if k in self._dirty]
        if lost:
            raise RuntimeError(
                f"activate: partitions {sorted(lost)} were trained but neither "
                "written back nor dropped; their updates would be lost"
            )
        for k in gone:
            del self.resident[k]
        if gone and self.gpu:
            # cupy's pool is stream-ordered: memory freed here goes back to the copy
            # stream's arena; later copies must not reuse it before the compute stream's
            # queued work on the evicted tables has run
            self._copy_stream.wait_event(self.xp.cuda.get_current_stream().record())
        if not inc.on_device:  # deferred by the budget: copy now, after the eviction
            self._upload(inc)
            if self.gpu:
                self._wait_on_compute(inc.event)
        elif self.gpu:
            self._wait_on_compute(inc.event)
        for k, v in inc.parts.items():
            if v is not None:
                self.resident[k] = v
        self._incoming = None
        self._current = keep
        self._dirty |= keep
        self._note_peak()
        return DeviceBucket({k: self.resident[k] for k in keep}, inc.edges)

    def _wait_on_compute(self, event):
        cp = self.xp
        compute = cp.cuda.get_current_stream()
        start = cp.cuda.Event()
        end = cp.cuda.Event()
        start.record(compute)
        compute.wait_event(event)  # the GPU waits here, the host does not
        end.record(compute)
        self._waits.append((start, end))

    # ------------------------------------------------------------------ device -> host
    def write_back(self, keys) -> WriteBack:
        """Copy resident partitions ``keys`` to the host (float32), after the work queued
        on them so far; asynchronous on a GPU (``WriteBack.result()`` waits)."""
        keys = list(keys)
        missing = [k for k in keys if k not in self.resident]
        if missing:
            raise KeyError(f"write_back: partitions {missing} are not resident")
        parts = {k: self.resident[k] for k in keys}
        self._stats["d2h_bytes"] += self._nbytes(parts)
        self._dirty -= set(keys)
        if not self.gpu:
            return WriteBack(
                {k: (to_host(e, copy=True), to_host(s, copy=True)) for k, (e, s) in parts.items()}
            )
        cp = self.xp
        done = cp.cuda.get_current_stream().record()  # the end of their training so far
        out, raws = {}, []
        with cp.cuda.Device(self.device.index), self._copy_stream:
            self._copy_stream.wait_event(done)
            for k, (e, s) in parts.items():
                he = self._pinned(e.shape, e.dtype, raws)
                hs = self._pinned(s.shape, s.dtype, raws)
                e.get(stream=self._copy_stream, out=he, blocking=False)
                s.get(stream=self._copy_stream, out=hs, blocking=False)
                out[k] = (he, hs)
            event = self._copy_stream.record()
        # the pinned buffers return to the pool only after result() copied out of them
        return WriteBack(out, event, release=lambda: self._recycle(raws))

    def drop(self, keys) -> None:
        """Forget resident partitions without writing them back."""
        for k in list(keys):
            self.resident.pop(k, None)
            self._dirty.discard(k)

    def close(self) -> None:
        if self._dirty:
            raise RuntimeError(f"close: partitions {sorted(self._dirty)} were trained but not written back")
        self.resident.clear()
        self._incoming = None
        self._free_pinned.clear()


# --------------------------------------------------------------------- sub-buckets
@dataclass
class SubBucket:
    """Part of a bucket that fits the budget: rows ``lhs_rows`` (lo, hi) of the lhs
    partition and ``rhs_rows`` of the rhs one, the positions ``edges`` of its edges in
    the bucket, and their entity offsets relative to the row ranges (``lhs``, ``rhs``)."""

    lhs_rows: tuple
    rhs_rows: tuple
    edges: np.ndarray
    lhs: np.ndarray
    rhs: np.ndarray


def split_bucket(
    lhs,
    rhs,
    n_lhs: int,
    n_rhs: int,
    *,
    row_bytes: int,
    edge_bytes: int,
    budget: int,
    same_partition: bool = False,
    max_splits: int = 1024,
):
    """Cut a bucket into sub-buckets whose device footprint fits ``budget`` bytes.

    ``lhs``/``rhs`` are the edges' entity offsets in their partitions (host int arrays),
    ``row_bytes`` the device bytes per entity (table row + accumulator), ``edge_bytes``
    per edge. Both partitions are cut into ``k`` equal row ranges, the smallest ``k``
    whose largest (range pair + its edges) fits; edges are grouped by their range pair
    with one stable sort (no per-edge loop). With ``same_partition`` (lhs and rhs are
    one table) a pair with equal ranges holds one range. Returns ``[SubBucket]`` (one
    covering everything when the bucket fits), in row-range order; empty pairs skipped.
    """
    lhs, rhs = np.asarray(lhs), np.asarray(rhs)
    k = 1
    while True:
        cl, cr = math.ceil(n_lhs / k) or 1, math.ceil(n_rhs / k) or 1
        a, b = lhs // cl, rhs // cr
        pair = a * k + b
        counts = np.bincount(pair, minlength=k * k) if len(pair) else np.zeros(k * k, int)
        rows = cl + cr
        if same_partition and k == 1:
            rows = cl
        need = rows * row_bytes + int(counts.max(initial=0)) * edge_bytes
        if need <= budget:
            break
        if k >= max_splits or (cl == 1 and cr == 1):
            raise MemoryError(
                f"split_bucket: even {k}x{k} sub-buckets need {need:,} bytes, "
                f"over the device budget of {budget:,}"
            )
        k *= 2
    order = np.argsort(pair, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for p in np.flatnonzero(counts):
        i, j = divmod(int(p), k)
        sel = order[bounds[p] : bounds[p + 1]]
        lo_l, lo_r = i * cl, j * cr
        out.append(
            SubBucket(
                (lo_l, min(lo_l + cl, n_lhs)),
                (lo_r, min(lo_r + cr, n_rhs)),
                sel,
                lhs[sel] - lo_l,
                rhs[sel] - lo_r,
            )
        )
    if not out:
        out.append(SubBucket((0, n_lhs), (0, n_rhs), np.zeros(0, np.int64), lhs[:0], rhs[:0]))
    return out


def on_device(a, device) -> bool:
    """True when array ``a`` lives on ``device`` (for assertions in trainers and tests)."""
    return device_of(a) == Device(device) and array_module(a) is module_for(Device(device))
