"""Seeded synthetic multi-relational graphs with learnable structure and power-law degrees.

The model (everything is O(1) or O(relations x communities) in memory, never O(edges)):

* Entity ``x`` in ``[0, N)`` has a *latent rank* ``x``; its community is ``x % K``.
  Its public id is a seeded affine permutation of the rank, so hubs are scattered over
  the id space instead of being ``e0, e1, ...``.
* A head is drawn with Zipf-like popularity over ranks (density ``~ rank^-a``, sampled
  by the inverse CDF of the continuous power law, so no table of N weights is needed).
* A relation is drawn with a milder Zipf skew. Relation ``r`` maps each head community
  ``c`` to a tail community ``M[r, c]``; with probability ``noise`` the tail community is
  uniform instead. The tail is then drawn by popularity *within* its community.

So ``(head community, relation) -> tail community`` is learnable far above chance
(``1 - noise + noise / K`` against ``1 / K``), and both in- and out-degrees are heavy
tailed. Edges are produced in blocks of about a million with whole-array numpy code and
written with pyarrow (TSV, optionally gzip, or Parquet), so memory stays bounded however
many edges are asked for.

Example::

    from ember.datasets import SyntheticGraph, write_graph
    g = SyntheticGraph(num_entities=100_000, num_relations=20, num_edges=10**7, seed=1)
    write_graph(g, "edges.tsv")           # "e123<TAB>r7<TAB>e456" lines, no header
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ember._io import atomic_path

DEFAULT_BLOCK = 1 << 20
FORMATS = ("tsv", "parquet")

__all__ = [
    "DEFAULT_BLOCK",
    "EdgeBlock",
    "GenerateStats",
    "SyntheticGraph",
    "format_of",
    "write_graph",
]


@dataclass(frozen=True)
class EdgeBlock:
    """One block of edges as int64 id arrays (entity ids, relation ids)."""

    lhs: np.ndarray
    rel: np.ndarray
    rhs: np.ndarray

    def __len__(self) -> int:
        return len(self.lhs)


def _powerlaw_ranks(rng: np.random.Generator, size: int, n, a: float) -> np.ndarray:
    """Integer ranks in ``[0, n)`` with density ``~ (rank + 1)^-a`` (n may be an array).

    Inverse CDF of the continuous power law on ``[1, n + 1)``: one uniform and one
    ``pow`` per draw, no table of weights, so it works for any n. Computed in place:
    a block's temporaries are what bounds the generator's memory.
    """
    x = rng.random(size)
    n1 = np.asarray(n, dtype=np.float64) + 1.0
    if abs(a - 1.0) < 1e-9:
        x *= np.log(n1)
        np.exp(x, out=x)
    else:
        b = 1.0 - a
        x *= n1**b - 1.0
        x += 1.0
        np.power(x, 1.0 / b, out=x)
    x -= 1.0
    r = x.astype(np.int64)
    del x
    # Float rounding can land exactly on the upper bound.
    np.minimum(r, np.asarray(n, dtype=np.int64) - 1, out=r)
    np.maximum(r, 0, out=r)
    return r


@dataclass(frozen=True)
class SyntheticGraph:
    """A seeded, reproducible description of a synthetic graph; edges come from `blocks()`.

    Same arguments (including ``block_size``) give the same edges, byte for byte.
    """

    num_entities: int
    num_relations: int
    num_edges: int
    seed: int = 0
    num_communities: int | None = None
    noise: float = 0.1
    entity_exponent: float = 1.0
    relation_exponent: float = 0.5
    block_size: int = DEFAULT_BLOCK
    _state: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.num_entities < 1:
            raise ValueError(f"num_entities must be >= 1, got {self.num_entities}")
        if self.num_relations < 1:
            raise ValueError(f"num_relations must be >= 1, got {self.num_relations}")
        if self.num_edges < 0:
            raise ValueError(f"num_edges must be >= 0, got {self.num_edges}")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {self.noise}")
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")
        k = self.num_communities
        if k is None:
            # ~sqrt(N) communities, between 2 and 1000: enough to be a real signal,
            # few enough that each community has many members.
            k = int(min(1000, max(2, round(math.sqrt(self.num_entities)))))
        k = max(1, min(k, self.num_entities))
        object.__setattr__(self, "num_communities", k)
        n = self.num_entities
        rng = np.random.default_rng([self.seed, 0xC0FFEE])
        # Affine bijection rank -> id: id = (mult * rank + shift) mod n, gcd(mult, n) = 1.
        mult = 1
        if n > 2:
            while True:
                mult = int(rng.integers(1, n))
                if math.gcd(mult, n) == 1:
                    break
        shift = int(rng.integers(0, n))
        self._state["mult"] = mult
        self._state["shift"] = shift
        self._state["inv_mult"] = pow(mult, -1, n) if n > 1 else 0
        self._state["relation_map"] = rng.integers(0, k, size=(self.num_relations, k), dtype=np.int64)
        # Members of community c are the ranks c, c + K, c + 2K, ... below N.
        self._state["community_size"] = (n - np.arange(k, dtype=np.int64) + k - 1) // k

    # ----------------------------------------------------------------- structure
    @property
    def relation_map(self) -> np.ndarray:
        """``(R, K)`` int array: tail community of relation r for head community c."""
        return self._state["relation_map"]

    def rank_to_id(self, rank: np.ndarray) -> np.ndarray:
        ids = np.multiply(rank, self._state["mult"], dtype=np.int64)  # < 2^63 for n < 3e9
        ids += self._state["shift"]
        ids %= self.num_entities
        return ids

    def id_to_rank(self, ids: np.ndarray) -> np.ndarray:
        n = self.num_entities
        ids = np.asarray(ids, dtype=np.int64)
        return ((ids - self._state["shift"]) % n) * self._state["inv_mult"] % n

    def community(self, ids) -> np.ndarray:
        """Latent community of each entity id (the ground truth a model can learn)."""
        return self.id_to_rank(ids) % self.num_communities

    # ----------------------------------------------------------------- edges
    @property
    def num_blocks(self) -> int:
        return -(-self.num_edges // self.block_size)

    def block(self, index: int) -> EdgeBlock:
        """Block ``index`` of `blocks()`, computed on its own (its random stream is
        seeded by ``(seed, index)``), so blocks can be made in parallel and in any order."""
        if not 0 <= index < self.num_blocks:
            raise IndexError(f"block {index} out of range [0, {self.num_blocks})")
        size = min(self.block_size, self.num_edges - index * self.block_size)
        rng = np.random.default_rng([self.seed, 1, index])
        n, k = self.num_entities, self.num_communities
        head_rank = _powerlaw_ranks(rng, size, n, self.entity_exponent)
        rel = _powerlaw_ranks(rng, size, self.num_relations, self.relation_exponent)
        tail_comm = self._state["relation_map"][rel, head_rank % k]
        if self.noise > 0:
            noisy = rng.random(size) < self.noise
            tail_comm[noisy] = rng.integers(0, k, size=int(noisy.sum()))
            del noisy
        sizes = self._state["community_size"][tail_comm]
        tail_rank = _powerlaw_ranks(rng, size, sizes, self.entity_exponent)
        del sizes
        tail_rank *= k
        tail_rank += tail_comm
        del tail_comm
        lhs = self.rank_to_id(head_rank)
        del head_rank
        return EdgeBlock(lhs, rel, self.rank_to_id(tail_rank))

    def blocks(self) -> Iterator[EdgeBlock]:
        """Yield the edges in blocks of ``block_size`` (the last one may be shorter)."""
        for index in range(self.num_blocks):
            yield self.block(index)


# --------------------------------------------------------------------- writing
@dataclass
class GenerateStats:
    """What `write_graph` did: edges and bytes written, seconds, edges per second."""

    path: str
    format: str
    edges: int
    bytes: int
    seconds: float

    @property
    def edges_per_s(self) -> float:
        return self.edges / self.seconds if self.seconds > 0 else float("inf")


def format_of(path: str, format: str | None = None) -> str:
    """``tsv`` or ``parquet``: the explicit ``format``, else from the file name."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        return format
    name = os.fspath(path).lower()
    return "parquet" if name.endswith((".parquet", ".pq")) else "tsv"


def _ids_as_strings(ids: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(ids, type=pa.int64()), pa.string())


def _relation_names(num_relations: int, prefix: str = "", suffix: str = "") -> pa.Array:
    return pa.array([f"{prefix}r{i}{suffix}" for i in range(num_relations)], pa.string())


def _tsv_bytes(block: EdgeBlock, middles: pa.Array) -> pa.Buffer:
    """The block's lines as one buffer, shifted by one byte: ``h\tr\tet\ne`` per edge.

    Every line is ``e{h}\tr{r}\te{t}\n``. Joining four strings per edge, ``{h}``,
    ``\tr{r}\te`` (a ``take`` from the R precomputed middles), ``{t}`` and ``\ne``
    (the next line's prefix), is one C++ kernel over whole arrays that releases the
    GIL; the writer puts one ``e`` before the first block and drops the last byte.
    """
    lines = pc.binary_join_element_wise(
        _ids_as_strings(block.lhs),
        middles.take(pa.array(block.rel)),
        _ids_as_strings(block.rhs),
        pa.scalar("\ne"),
        "",
    )
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def _parquet_table(block: EdgeBlock, names: pa.Array) -> pa.Table:
    def entity(ids):
        return pc.binary_join_element_wise("e", _ids_as_strings(ids), "")

    return pa.table(
        {"lhs": entity(block.lhs), "rel": names.take(pa.array(block.rel)), "rhs": entity(block.rhs)}
    )


def write_graph(
    graph: SyntheticGraph, path, format: str | None = None, threads: int | None = None
) -> GenerateStats:
    """Stream ``graph`` to ``path`` as head/relation/tail names, in bounded memory.

    TSV (``.gz`` suffix: gzip-compressed) has no header; Parquet has string columns
    ``lhs``, ``rel``, ``rhs`` and one row group per block. The file is written under a
    temporary name and renamed into place when complete. Blocks are generated and
    formatted by ``threads`` worker threads (default: the CPU count, at most 4) while
    this thread writes them in order; at most ``threads + 1`` blocks are in flight.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    path = os.fspath(path)
    fmt = format_of(path, format)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, "no such directory", folder)
    threads = threads or min(4, os.cpu_count() or 1)
    start = time.perf_counter()
    gzip = fmt == "tsv" and path.lower().endswith(".gz")
    if fmt == "parquet":
        names = _relation_names(graph.num_relations)
        work = lambda i: _parquet_table(graph.block(i), names)
    else:
        middles = _relation_names(graph.num_relations, "\t", "\te")
        work = lambda i: _tsv_bytes(graph.block(i), middles)
        if gzip:
            # Each block becomes one gzip member, compressed on the worker threads (zlib
            # releases the GIL); concatenated members are a valid gzip file. Level 1:
            # the output is a benchmark input, so speed matters more than size.
            def work(i):
                buf = _tsv_bytes(graph.block(i), middles)
                z = zlib.compressobj(1, zlib.DEFLATED, 31)
                return z.compress(b"e") + z.compress(buf[: buf.size - 1]) + z.flush()

    edges = 0
    with atomic_path(path) as tmp, ThreadPoolExecutor(threads, thread_name_prefix="ember-generate") as pool:
        pending = deque()
        next_index = 0

        def results():
            nonlocal next_index
            while pending or next_index < graph.num_blocks:
                while next_index < graph.num_blocks and len(pending) < threads + 1:
                    pending.append(pool.submit(work, next_index))
                    next_index += 1
                yield pending.popleft().result()

        try:
            if fmt == "parquet":
                schema = pa.schema([("lhs", pa.string()), ("rel", pa.string()), ("rhs", pa.string())])
                # Dictionary-encode only the relation column: entity names in a block
                # are mostly distinct, and trying a dictionary for them halves speed.
                with pq.ParquetWriter(tmp, schema, use_dictionary=["rel"]) as writer:
                    for table in results():
                        writer.write_table(table)
                        edges += table.num_rows
            else:
                with open(tmp, "wb") as sink:
                    if graph.num_edges and not gzip:
                        sink.write(b"e")
                    for i, buf in enumerate(results()):
                        last = i == graph.num_blocks - 1
                        if gzip or not last:
                            sink.write(buf)
                        else:
                            sink.write(buf[: buf.size - 1])
                        edges += min(graph.block_size, graph.num_edges - edges)
        finally:
            for f in pending:
                f.cancel()
    seconds = time.perf_counter() - start
    return GenerateStats(path, fmt, edges, os.path.getsize(path), seconds)
