"""Where a bucket's partitions live while it trains: the placement.

The trainer's loop is written once, over `Unit`s (a bucket, or one sub-bucket of a
bucket too large for a device): ``prefetch(unit)`` starts bringing a unit's partitions
and edges to where training runs, ``acquire()`` makes the prefetched unit current and
hands back its tables (`ember.pbg.batch.Partition`, by key) and edges, and
``release(unit)`` gives back the unit's trained partitions as host arrays for the
checkpoint (once its bucket is complete). Two placements:

* `HostPlacement`: partitions in host memory, trained in place; placement is synchronous
  (``prefetch`` only notes what is next, ``acquire`` loads it), so at most two
  partitions of each entity type are ever resident.
* `DevicePlacement`: partitions on an accelerator through the `PartitionSwapper`, the
  next unit's copies overlapping this one's training, buckets over the device budget
  split into sub-buckets (row ranges of the two partitions).

Partitions are read through a ``load(etype, part) -> (emb, state)`` callback (host arrays
in the trainer's layout, from the checkpoint, the warm start or fresh).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ember._backend import to_device
from ember.pbg.batch import Partition
from ember.pbg.device import PartitionSwapper, split_bucket
from ember.pbg.schedule import BucketTask

__all__ = ["DevicePlacement", "HostPlacement", "Piece", "Unit"]


@dataclass
class Piece:
    """Edges between two resident tables: one relation group (lhs type, rhs type) of a
    bucket, or of a sub-bucket. ``held``: held-out edges to evaluate before and after
    training on ``edges`` (``eval_fraction``), or None."""

    lhs: tuple  # partition key: (etype, part), or (etype, part, lo, hi) for a row range
    rhs: tuple
    edges: dict
    held: dict | None = None


@dataclass
class Unit:
    """What one acquisition trains: a bucket, or one of its sub-buckets (``first`` and
    ``last`` mark the bucket's first and last unit)."""

    task: BucketTask
    parts: list  # the partition keys it needs, each once
    pieces: list = field(default_factory=list)
    num_edges: int = 0
    split: bool = False
    first: bool = True
    last: bool = True
    index: int = 0  # its place among its bucket's units


def bucket_units(task: BucketTask, pieces: list, part_rows: dict, *, row_bytes: int, budget, log=None):
    """The units of one bucket: one, or sub-buckets when its partitions and edges exceed
    ``budget`` bytes (``part_rows[key]``: rows of each partition; held-out metrics are
    then not computed)."""
    parts = list(dict.fromkeys(k for p in pieces for k in (p.lhs, p.rhs)))
    n = sum(len(p.edges["lhs"]) for p in pieces)
    need = sum(part_rows[k] for k in parts) * row_bytes + sum(
        int(v.nbytes) for p in pieces for d in (p.edges, p.held or {}) for v in d.values()
    )
    if budget is None or need <= budget:
        return [Unit(task, parts, pieces, n)]
    units = []
    for p in pieces:
        e = p.edges
        subs = split_bucket(
            e["lhs"],
            e["rhs"],
            part_rows[p.lhs],
            part_rows[p.rhs],
            row_bytes=row_bytes,
            edge_bytes=sum(v.itemsize for v in e.values()),
            budget=budget,
            same_partition=p.lhs == p.rhs,
        )
        for sb in subs:
            a, b = p.lhs + tuple(sb.lhs_rows), p.rhs + tuple(sb.rhs_rows)
            ee = {k: v[sb.edges] for k, v in e.items()}
            ee["lhs"], ee["rhs"] = sb.lhs.astype(np.int64), sb.rhs.astype(np.int64)
            units.append(
                Unit(task, list(dict.fromkeys([a, b])), [Piece(a, b, ee)], len(sb.edges), True, False, False)
            )
    units[0].first, units[-1].last = True, True
    for i, u in enumerate(units):
        u.index = i
    if log is not None:
        log(
            f"bucket {task.bucket}: {need:,} bytes exceed the device budget of {budget:,}; "
            f"trained as {len(units)} sub-buckets"
        )
    return units


class HostPlacement:
    """Partitions in host memory, trained in place (the CPU path)."""

    budget = None  # no sub-buckets

    def __init__(self, load, store_dtype, lr, keep=()):
        self.load, self.store, self.lr = load, np.dtype(store_dtype), lr
        self.keep = list(keep)  # partitions resident throughout (unpartitioned types)
        self.resident: dict = {}
        self._next: Unit | None = None

    def prefetch(self, unit: Unit) -> None:
        # loading early would hold a third partition of a type: acquire() loads it
        self._next = unit

    def can_prefetch_early(self, cur: Unit, nxt: Unit) -> bool:
        return True

    def acquire(self):
        """Exactly the next unit's partitions resident (every other one was saved when its
        bucket ended, and is dropped first: at most two per type); (tables, pieces)."""
        unit, self._next = self._next, None
        needed = set(unit.parts) | set(self.keep)
        loads = [key for key in dict.fromkeys([*unit.parts, *self.keep]) if key not in self.resident]
        # a dropped partition's arrays are read into by a load of its type (fresh memory
        # costs its page faults); the others are freed before anything is loaded
        want = [key[0] for key in loads]
        spares: dict = {}
        for key in [k for k in self.resident if k not in needed]:
            p = self.resident.pop(key)
            if p.etype in want:
                want.remove(p.etype)
                spares.setdefault(p.etype, []).append((p.emb, p.state))
            p = None
        for key in loads:
            pool = spares.get(key[0], [])
            into = [pool.pop()] if pool else []
            emb, state = self.load(*key, self.store, into=into)  # as stored: no float32 copy
            self.resident[key] = Partition(*key, emb, state, self.lr)
        return dict(self.resident), unit.pieces

    def release(self, unit: Unit) -> dict | None:
        """The trained partitions' arrays themselves (no copy: the checkpoint reads them
        before the next bucket trains)."""
        return {k: (self.resident[k].emb, self.resident[k].state) for k in unit.parts}

    def resident_bytes(self) -> tuple[int, int]:
        """(table bytes, table + optimizer state bytes) resident now."""
        return (
            sum(int(p.emb.nbytes) for p in self.resident.values()),
            sum(p.nbytes for p in self.resident.values()),
        )

    def stats(self) -> dict:
        return {}

    def close(self) -> None:
        self.resident.clear()


class DevicePlacement:
    """Partitions and edges on an accelerator through the `PartitionSwapper`: the next
    unit's copies start while the current unit trains, trained partitions are written
    back for the checkpoint, and a bucket over ``budget`` bytes trains as sub-buckets."""

    def __init__(self, device, load, dtype: str, lr, budget):
        self.device, self.load, self.lr, self.budget = device, load, lr, budget
        self.swapper = PartitionSwapper(device, dtype=dtype, memory_budget=budget)
        self._holder: dict = {}  # whole host partitions whose row ranges train as sub-buckets
        self._next: Unit | None = None  # prefetched, not yet acquired

    def prefetch(self, unit: Unit) -> None:
        """Start copying a unit's partitions (those not resident) and edges to the device."""
        host = {}
        for key in unit.parts:
            if key in self.swapper.resident:
                host[key] = None
            elif len(key) == 2:
                host[key] = self.load(*key)
            else:
                t, p, lo, hi = key
                if (t, p) not in self._holder:
                    self._holder[(t, p)] = self.load(t, p)
                E, S = self._holder[(t, p)]
                host[key] = (E[lo:hi], S[lo:hi])
        edges = {}
        for i, piece in enumerate(unit.pieces):
            edges.update({f"{i}.{k}": v for k, v in piece.edges.items()})
            edges.update({f"{i}.held.{k}": v for k, v in (piece.held or {}).items()})
        self.swapper.prefetch(host, edges)
        self._next = unit

    def can_prefetch_early(self, cur: Unit, nxt: Unit) -> bool:
        """Overlap the next unit's copies with this one's training, except around
        sub-buckets, whose host rows are only current once the previous one is saved."""
        return not (cur.split or nxt.split) or (nxt.task is cur.task and not _overlapping(cur, nxt))

    def acquire(self):
        """The prefetched unit, current: its tables and its pieces, on the device."""
        unit, self._next = self._next, None
        bucket = self.swapper.activate()
        tables = {key: Partition(key[0], key[1], e, s, self.lr) for key, (e, s) in bucket.parts.items()}
        pieces = []
        for i, piece in enumerate(unit.pieces):
            pre = f"{i}."
            edges = {k[len(pre) :]: v for k, v in bucket.edges.items() if k.startswith(pre)}
            held = {k[5:]: v for k, v in edges.items() if k.startswith("held.")}
            edges = {k: v for k, v in edges.items() if not k.startswith("held.")}
            pieces.append(Piece(piece.lhs, piece.rhs, edges, held or None))
        return tables, pieces

    def release(self, unit: Unit) -> dict | None:
        """Write the unit's partitions back; at its bucket's end, the host arrays of the
        whole partitions to checkpoint (None before)."""
        saved = self.swapper.write_back(unit.parts).result()
        if unit.split:  # rows back into the host partitions, saved with the bucket
            for (t, p, lo, hi), (e, s) in saved.items():
                E, S = self._holder[(t, p)]
                E[lo:hi], S[lo:hi] = e, s
        if not unit.last:
            return None
        arrays = self._holder if unit.split else saved
        self._holder = {}
        return arrays

    def resident_bytes(self) -> tuple[int, int]:
        res = self.swapper.resident.values()
        return sum(int(e.nbytes) for e, _ in res), sum(int(e.nbytes + s.nbytes) for e, s in res)

    def stats(self) -> dict:
        return self.swapper.stats()

    def close(self) -> None:
        self.swapper.close()


def _overlapping(cur, nxt) -> bool:
    """True when a row range of ``nxt`` overlaps a different range of ``cur`` in the same
    partition: its host rows are stale until ``cur`` is written back, so no early prefetch
    (sub-buckets of two relation groups may cut a partition differently)."""
    for a in nxt.parts:
        if a in cur.parts:
            continue
        for b in cur.parts:
            if b[:2] == a[:2] and (len(a) == 2 or len(b) == 2 or (b[2] < a[3] and a[2] < b[3])):
                return True
    return False


def to_training_device(a, device, dtype=np.float32):
    """A host array as a fresh array of ``dtype`` on ``device`` (never a silent mix)."""
    a = np.asarray(a, dtype)
    return a if device.type == "cpu" else to_device(np.array(a), device)
