"""Growing name -> id dictionaries with online, seeded, balanced partition assignment.

Entity ``k`` of a type (``k`` counts entities in order of first appearance) lives in
partition ``(k % P + r(k // P)) % P`` at offset ``k // P``, where ``r`` is a seeded
hash of the group ``k // P``. Each group of ``P`` consecutive ids puts exactly one
entity into every partition, so partitions stay balanced (sizes differ by at most
one) *while* the dictionary grows, and appending entities later never moves an
existing one: a trained checkpoint stays aligned.
"""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A vectorised 64-bit mixer: seeded hashes without a per-item Python loop."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_MULT = np.random.default_rng(0x5EED).integers(0, 2**63, 4096, dtype=np.uint64) * \
    np.uint64(2) + np.uint64(1)


_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [2**64 - 1], np.uint64)


def type_seed(seed: int, name: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) & 0xFFFFFFFF


class EntityDictionary:
    """Names of one entity type (or the relations), ids in order of first appearance.

    >>> d = EntityDictionary("all", num_partitions=2, seed=0)
    >>> d.encode(pa.array(["a", "b", "a"])).tolist()
    [0, 1, 0]
    """

    def __init__(self, name: str, num_partitions: int, seed: int, names=None, counts=None,
                 train_counts=None):
        self.name = name
        self.num_partitions = int(num_partitions)
        self.seed = int(seed)
        self._rot_seed = np.uint64(type_seed(seed, name))
        self._chunks: list[pa.Array] = []
        self._n = 0
        self._part = np.zeros(0, np.int32)  # partition of each id, filled lazily
        # the lookup structure: 64-bit hashes of the names, sorted, with their ids;
        # it persists across blocks, so a lookup costs O(block log n), not O(n)
        self._hsorted = np.zeros(0, np.uint64)
        self._hids = np.zeros(0, np.int64)
        n = 0
        if names is not None and len(names):
            names = names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names
            h = hash_strings(names)
            order = np.argsort(h, kind="stable")
            self._hsorted, self._hids = h[order], order.astype(np.int64)
            if len(h) > 1 and (np.diff(self._hsorted) == 0).any():
                raise ValueError(f"{name}: repeated names or a hash collision")
            self._chunks, n = [names], len(names)
        self._n = n
        # copies: arrays from Arrow are read-only, and these grow
        self.counts = np.zeros(n, np.int64) if counts is None else np.array(counts, np.int64)
        self.train_counts = (np.zeros(n, np.int64) if train_counts is None
                             else np.array(train_counts, np.int64))

    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> pa.Array:
        if len(self._chunks) != 1:
            self._chunks = [pa.concat_arrays(self._chunks) if self._chunks
                            else pa.array([], pa.string())]
        return self._chunks[0]

    def _find(self, names, h) -> np.ndarray:
        # searching in sorted order walks the table once (cache-friendly)
        qo = np.argsort(h)
        pos = np.empty(len(h), np.int64)
        pos[qo] = np.searchsorted(self._hsorted, h[qo])
        pos[pos == len(self._hsorted)] = 0
        hit = (self._hsorted[pos] == h) if len(self._hsorted) else np.zeros(len(h), bool)
        ids = np.where(hit, self._hids[pos] if len(self._hids) else -1, -1)
        if hit.any():  # same hash must mean same name: verify, whole-array
            found = np.flatnonzero(hit)
            mine = pa.chunked_array(self._chunks, pa.string()).take(pa.array(ids[found]))
            theirs = names.take(pa.array(found))
            if not pc.all(pc.equal(mine, theirs)).as_py():
                raise RuntimeError(f"64-bit hash collision among {self.name!r} names")
        return ids

    def lookup(self, names) -> np.ndarray:
        """Ids of ``names``; -1 where unknown. Does not add anything."""
        names = _one(names)
        return self._find(names, hash_strings(names))

    def encode(self, names) -> np.ndarray:
        """Ids of ``names`` (an Array or ChunkedArray), adding unseen names at the end.

        One hash pass over the block (dictionary_encode), then only the block's
        distinct names are hashed and looked up: no per-name Python work, and the
        cost does not grow with the dictionary.
        """
        if isinstance(names, pa.ChunkedArray) and names.num_chunks == 0:
            return np.zeros(0, np.int64)
        return self._encode_dict(*_split_encoded(pc.dictionary_encode(names)))

    def _encode_dict(self, uniq: pa.Array, local: np.ndarray) -> np.ndarray:
        h = hash_strings(uniq)
        known = self._find(uniq, h)
        new = known < 0
        n_new = int(new.sum())
        if n_new:
            start = self._n
            known[new] = np.arange(start, start + n_new)
            hn = h[new]
            order = np.argsort(hn)
            hn, idn = hn[order], known[new][order]
            if n_new > 1 and (np.diff(hn) == 0).any():
                raise RuntimeError(f"64-bit hash collision among {self.name!r} names")
            at = np.searchsorted(self._hsorted, hn)
            self._hsorted = np.insert(self._hsorted, at, hn)
            self._hids = np.insert(self._hids, at, idn)
            self._chunks.append(uniq.filter(pa.array(new)))
            self._n += n_new
            self.counts = np.concatenate([self.counts, np.zeros(n_new, np.int64)])
            self.train_counts = np.concatenate([self.train_counts, np.zeros(n_new, np.int64)])
        return known[local]

    def encode_parts(self, parts: list, pool=None) -> list[np.ndarray]:
        """``encode`` of several arrays, in order; with a thread pool the (GIL-free)
        hashing of the parts runs in parallel and only the small merge is serial."""
        if pool is None:
            return [self.encode(p) for p in parts]
        return [self._encode_dict(*_split_encoded(e))
                for e in pool.map(pc.dictionary_encode, parts)]

    def add_counts(self, ids: np.ndarray, train: np.ndarray | None = None) -> None:
        n = self._n
        c = np.bincount(ids, minlength=n)[:n]
        self.counts += c
        if train is None or not train.any():
            return
        self.train_counts += c if train.all() else np.bincount(ids[train], minlength=n)[:n]

    # -- partitions ---------------------------------------------------------------
    def _rotation(self, group: np.ndarray) -> np.ndarray:
        P = np.uint64(self.num_partitions)
        return (splitmix64(np.asarray(group, np.uint64) ^ self._rot_seed) % P).astype(np.int64)

    def _partition_formula(self, ids: np.ndarray) -> np.ndarray:
        P = self.num_partitions
        ids = np.asarray(ids, np.int64)
        return ((ids % P + self._rotation(ids // P)) % P).astype(np.int32)

    def partition_of(self, ids: np.ndarray) -> np.ndarray:
        """Partition of each id (a gather from a per-entity table kept up to date)."""
        P = self.num_partitions
        if P == 1:
            return np.zeros(len(ids), np.int32)
        if len(self._part) < self._n:
            new = np.arange(len(self._part), self._n, dtype=np.int64)
            self._part = np.concatenate([self._part, self._partition_formula(new)])
        ids = np.asarray(ids, np.int64)
        if len(ids) and ids.max(initial=0) >= self._n:  # ids beyond the dictionary
            return self._partition_formula(ids)
        return self._part[ids]

    def offset_of(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids, np.int64) // self.num_partitions

    def id_of(self, part: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Inverse of (partition_of, offset_of)."""
        P = self.num_partitions
        offset = np.asarray(offset, np.int64)
        if P == 1:
            return offset
        j = (np.asarray(part, np.int64) - self._rotation(offset)) % P
        return offset * P + j

    def partition_sizes(self) -> list[int]:
        n, P = len(self), self.num_partitions
        sizes = np.full(P, n // P, np.int64)
        last = np.arange(n - n % P, n)
        if len(last):
            sizes[self.partition_of(last)] += 1
        return sizes.tolist()

    def partition_ids(self, part: int) -> np.ndarray:
        """Ids in partition ``part``, in offset order."""
        n = len(self)
        offsets = np.arange(self.partition_sizes()[part], dtype=np.int64)
        ids = self.id_of(np.full(len(offsets), part), offsets)
        assert (ids < n).all()
        return ids

    def partition_table(self, part: int) -> pa.Table:
        ids = self.partition_ids(part)
        return pa.table({"name": self.names.take(pa.array(ids)),
                         "count": self.counts[ids], "train_count": self.train_counts[ids]})

    @classmethod
    def from_partition_tables(cls, name, num_partitions, seed, tables):
        """Rebuild a dictionary (ids in first-appearance order) from its partitions."""
        probe = cls(name, num_partitions, seed)
        sizes = [t.num_rows for t in tables]
        n = sum(sizes)
        if n == 0:
            return probe
        ids = np.arange(n, dtype=np.int64)
        parts, offs = probe.partition_of(ids), probe.offset_of(ids)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        take = pa.array(starts[parts] + offs)  # row of entity k in the concatenated tables
        allt = pa.concat_tables(tables)
        return cls(name, num_partitions, seed, allt.column("name").combine_chunks().take(take),
                   _to_numpy(allt.column("count").take(take), np.int64),
                   _to_numpy(allt.column("train_count").take(take), np.int64))


def hash_strings(arr: pa.Array) -> np.ndarray:
    """A 64-bit hash of every string, computed on the Arrow buffers with numpy.

    Strings of up to 16 bytes (most entity names) are read as two unaligned 8-byte
    words each, masked to their length and mixed: a few whole-array operations per
    string, not per byte. Longer strings take a per-byte multiply-add hash.
    """
    arr = _one(arr)
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64)
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    lo, hi = int(offs[0]), int(offs[-1])
    lens = np.diff(offs)
    starts = offs[:-1] - lo
    padded = np.zeros(hi - lo + 16, np.uint8)
    if hi > lo:
        padded[: hi - lo] = np.frombuffer(bufs[2], np.uint8, hi - lo, lo)
    # an 8-byte word starting at every byte (a strided, unaligned view: no copy)
    words = np.ndarray((len(padded) - 7,), np.uint64, padded, 0, (1,))
    w0 = words[starts] & _MASKS[np.minimum(lens, 8)]
    w1 = words[starts + 8] & _MASKS[np.clip(lens - 8, 0, 8)]
    with np.errstate(over="ignore"):
        h = splitmix64(w0 ^ splitmix64(w1 ^ (lens.astype(np.uint64) * _MULT[0])))
    long = np.flatnonzero(lens > 16)
    if len(long):
        h[long] = _hash_long(padded, starts[long], lens[long])
    return h


def _hash_long(data: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    # byte * a random odd multiplier per position, summed per string: a
    # multiply-add universal hash, then mixed; a collision is caught by ``_find``
    total = int(lens.sum())
    first = np.concatenate([[0], np.cumsum(lens)[:-1]])
    pos = np.arange(total, dtype=np.int64) - np.repeat(first, lens)
    byte = data[np.repeat(starts, lens) + pos]
    with np.errstate(over="ignore"):
        mixed = _MULT[pos & (len(_MULT) - 1)] * byte
        sums = np.add.reduceat(mixed, first)
    return splitmix64(sums ^ (lens.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))


def _split_encoded(enc) -> tuple[pa.Array, np.ndarray]:
    """(distinct values, index of each input value) of a dictionary_encode result."""
    if isinstance(enc, pa.ChunkedArray):
        if enc.num_chunks == 0:
            return pa.array([], pa.string()), np.zeros(0, np.int64)
        # chunks of one dictionary_encode call share their (final) dictionary
        last = enc.chunks[-1].dictionary
        if any(len(c.dictionary) != len(last) for c in enc.chunks):
            raise RuntimeError("pyarrow's dictionary_encode gave chunk-local dictionaries")
        # int32 indices as they are: numpy gathers with them as fast, without a cast
        local = np.concatenate([c.indices.to_numpy() for c in enc.chunks])
        return last, local
    return enc.dictionary, enc.indices.to_numpy()


def _one(a):
    if isinstance(a, pa.ChunkedArray):
        return a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    return a


def _to_numpy(arr, dtype) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)
