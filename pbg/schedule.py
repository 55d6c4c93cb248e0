"""Where a run is, and which bucket comes next.

A run trains ``num_epochs`` epochs; an epoch trains each bucket (a pair of partitions)
in ``num_edge_chunks`` passes, pass ``k`` over the ``k``-th chunk of every bucket's edges,
the buckets of a pass in the configured order (``bucket_order``, reseeded per epoch).

* `Position` is the next (epoch, edge chunk, bucket index) to train: exactly what a
  checkpoint records, and where a resumed run starts.
* `BucketScheduler` yields the run's buckets from a position on, as `BucketTask`s, and
  hears back when each one is checkpointed (``done``). In one process it walks the
  configured order; training across machines puts a lock server behind the same
  interface.

>>> s = BucketScheduler(ws, config)                          # doctest: +SKIP
>>> [t.bucket for t in s.tasks(Position())][:3]              # doctest: +SKIP
[(0, 0), (0, 1), (1, 0)]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from ember.pbg.workspace import edge_split

__all__ = ["BucketScheduler", "BucketTask", "Position", "num_edge_chunks"]


@dataclass(frozen=True, order=True)
class Position:
    """The next bucket to train: ``bucket`` indexes the epoch's bucket order."""

    epoch: int = 0
    edge_chunk: int = 0
    bucket: int = 0

    def next(self, num_chunks: int, num_buckets: int) -> Position:
        """The position after this one's bucket."""
        if self.bucket + 1 < num_buckets:
            return Position(self.epoch, self.edge_chunk, self.bucket + 1)
        if self.edge_chunk + 1 < num_chunks:
            return Position(self.epoch, self.edge_chunk + 1, 0)
        return Position(self.epoch + 1, 0, 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Position:
        d = d or {}
        return cls(int(d.get("epoch", 0)), int(d.get("edge_chunk", 0)), int(d.get("bucket", 0)))


@dataclass(frozen=True)
class BucketTask:
    """One bucket to train: where it stands in the run, and after it."""

    position: Position
    bucket: tuple[int, int]
    num_chunks: int  # edge chunks of the epoch (this task trains chunk position.edge_chunk)
    after: Position  # the position a checkpoint records once this bucket is done

    @property
    def epoch_done(self) -> int | None:
        """The number of epochs complete after this bucket, when it ends an epoch."""
        return self.after.epoch if self.after.epoch != self.position.epoch else None


def num_edge_chunks(config, ws) -> int:
    """``num_edge_chunks``, or the chunks that keep every chunk under
    ``max_edges_per_chunk`` edges."""
    largest = max(ws.buckets(edge_split(config)).values(), default=0)
    return config.num_edge_chunks or max(1, math.ceil(largest / config.max_edges_per_chunk))


class BucketScheduler:
    """The buckets of a run in the configured order, skipping empty ones."""

    lookahead = True  # the trainer may ask for the next bucket while this one trains

    def __init__(self, ws, config):
        self.ws, self.config = ws, config
        self.sizes = ws.buckets(edge_split(config))
        self.num_chunks = num_edge_chunks(config, ws)

    def order(self, epoch: int) -> list[tuple[int, int]]:
        """Every bucket of an epoch, in the order it is trained."""
        return self.ws.bucket_order(self.config.bucket_order, self.config.seed + epoch)

    def tasks(self, start: Position) -> Iterator[BucketTask]:
        """The buckets still to train from ``start`` on, in order. A task's ``after`` is
        the position of the next bucket that has edges (empty buckets are skipped), so
        the bucket that ends an epoch always says so."""
        K = self.num_chunks
        for epoch in range(start.epoch, self.config.num_epochs):
            order = self.order(epoch)
            todo = [
                (Position(epoch, k, i), b)
                for k in range(K)
                for i, b in enumerate(order)
                if self.sizes.get(b, 0) > 0 and Position(epoch, k, i) >= start
            ]
            for j, (pos, b) in enumerate(todo):
                after = todo[j + 1][0] if j + 1 < len(todo) else Position(epoch + 1, 0, 0)
                yield BucketTask(pos, b, K, after)

    def done(self, task: BucketTask) -> None:
        """``task``'s bucket is trained and checkpointed (a lock server frees its
        partitions here; in one process there is nothing to do)."""
