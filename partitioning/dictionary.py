"""Growing name -> id dictionaries with online, seeded, balanced partition assignment.

Entity ``k`` of a type (``k`` counts entities in order of first appearance) lives in
partition ``(k % P + r(k // P)) % P`` at offset ``k // P``, where ``r`` is a seeded
hash of the group ``k // P``. Each group of ``P`` consecutive ids puts exactly one
entity into every partition, so partitions stay balanced (sizes differ by at most
one) *while* the dictionary grows, and appending entities later never moves an
existing one: a trained checkpoint stays aligned.
"""

from __future__ import annotations

import threading
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ember._bits import GAMMA, splitmix64

_MULT = np.random.default_rng(0x5EED).integers(0, 2**63, 4096, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [2**64 - 1], np.uint64)


def type_seed(seed: int, name: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) & 0xFFFFFFFF


class EntityDictionary:
    """Names of one entity type (or the relations), ids in order of first appearance.

    The lookup structure is an open-addressing hash table (linear probing) of the
    names' 64-bit hashes, probed and filled with whole-array numpy operations: a block
    costs O(distinct names in the block), whatever the size of the dictionary. Every
    hash hit is verified against the stored name, so a collision is an error, never a
    silent merge.

    >>> d = EntityDictionary("all", num_partitions=2, seed=0)
    >>> d.encode(pa.array(["a", "b", "a"])).tolist()
    [0, 1, 0]
    """

    def __init__(self, name: str, num_partitions: int, seed: int, names=None, counts=None, train_counts=None):
        self.name = name
        self.num_partitions = int(num_partitions)
        self.seed = int(seed)
        self._rot_seed = np.uint64(type_seed(seed, name))
        self._chunks: list[pa.Array] = []
        self._n = 0
        # per-id arrays with spare capacity (grown geometrically, not per block)
        self._cnt = np.zeros(0, np.int64)
        self._tcnt = np.zeros(0, np.int64)
        self._part = np.zeros(0, np.int32)  # partition of each id, filled lazily
        self._nparted = 0
        # the per-id counts may be added to by another thread (the import's routing
        # stage) while the dictionary grows: growing and adding take this lock
        self._lock = threading.Lock()
        self._tab_h = np.zeros(16, np.uint64)  # 0 = empty slot
        self._tab_id = np.zeros(16, np.int32)
        if names is not None and len(names):
            names = names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names
            h = _nonzero(hash_strings(names))
            if len(h) > 1 and (np.diff(np.sort(h)) == 0).any():
                raise ValueError(f"{name}: repeated names or a hash collision")
            self._insert(h, np.arange(len(h), dtype=np.int64))
            self._chunks = [names]
            self._grow(len(names))
            self._n = len(names)
        if counts is not None:
            self._cnt[: self._n] = counts
        if train_counts is not None:
            self._tcnt[: self._n] = train_counts

    def __len__(self) -> int:
        return self._n

    @property
    def counts(self) -> np.ndarray:
        return self._cnt[: self._n]

    @property
    def train_counts(self) -> np.ndarray:
        return self._tcnt[: self._n]

    @property
    def names(self) -> pa.Array:
        if len(self._chunks) != 1:
            self._chunks = [pa.concat_arrays(self._chunks) if self._chunks else pa.array([], pa.string())]
        return self._chunks[0]

    def _grow(self, n: int) -> None:
        if n <= len(self._cnt):
            return
        cap = max(n, 2 * len(self._cnt), 1024)
        with self._lock:
            for attr in ("_cnt", "_tcnt"):
                old = getattr(self, attr)
                new = np.zeros(cap, old.dtype)
                new[: len(old)] = old
                setattr(self, attr, new)

    # -- the hash table -------------------------------------------------------------
    def _slots(self, h: np.ndarray) -> np.ndarray:
        bits = len(self._tab_h).bit_length() - 1
        return (h >> np.uint64(64 - bits)).astype(np.intp)

    def _probe(self, h: np.ndarray) -> np.ndarray:
        """Ids stored under hashes ``h`` (nonzero); -1 where absent."""
        mask = len(self._tab_h) - 1
        slot = self._slots(h)
        th = self._tab_h[slot]
        hit = th == h
        ids = np.where(hit, self._tab_id[slot], -1).astype(np.int64, copy=False)
        pend = np.flatnonzero(~hit & (th != 0))
        while len(pend):  # linear probing: few entries need a second look
            s = (slot[pend] + 1) & mask
            slot[pend] = s
            th = self._tab_h[s]
            hit = th == h[pend]
            ids[pend[hit]] = self._tab_id[s[hit]]
            pend = pend[~hit & (th != 0)]
        return ids

    def _insert(self, h: np.ndarray, ids: np.ndarray) -> None:
        """Add distinct hashes (not yet in the table) with their ids."""
        used = self._n + len(h)
        if 2 * used > len(self._tab_h):  # keep the load at most 1/2
            old_h, old_id = self._tab_h, self._tab_id
            keep = old_h != 0
            cap = len(old_h)
            while 2 * used > cap:
                cap *= 2
            self._tab_h = np.zeros(cap, np.uint64)
            # ids below 2**31 (always, in practice) fit in int32: a third less memory
            self._tab_id = np.zeros(cap, np.int32 if cap <= 2**31 else np.int64)
            if keep.any():
                self._place(old_h[keep], old_id[keep])
        self._place(h, ids)

    def _place(self, h: np.ndarray, ids: np.ndarray) -> None:
        mask = len(self._tab_h) - 1
        slot = self._slots(h)
        pend = np.arange(len(h))
        while len(pend):
            s = slot[pend]
            free = self._tab_h[s] == 0
            cand, cs = pend[free], s[free]
            self._tab_h[cs] = h[cand]  # several may aim at one slot: one of them wins
            won = self._tab_h[cs] == h[cand]
            self._tab_id[cs[won]] = ids[cand[won]]
            pend = np.concatenate([pend[~free], cand[~won]])
            slot[pend] = (slot[pend] + 1) & mask

    def _verify(self, names: pa.Array, ids: np.ndarray) -> None:
        """Raise if a name found by its hash is not the name stored under that id."""
        check = self._verifier(names, ids)
        if check is not None:
            check()

    def _verifier(self, names: pa.Array, ids: np.ndarray):
        """A function that does ``_verify(names, ids)`` later, possibly in another
        thread while the dictionary grows (it holds the names stored so far)."""
        found = np.flatnonzero(ids >= 0)
        if not len(found):
            return None
        if len(self._chunks) > 8:  # keep the stored names in few chunks (amortised)
            self._chunks = [pa.concat_arrays(self._chunks)]
        chunks, want = list(self._chunks), ids[found]

        def check():
            mine = pa.chunked_array(chunks, pa.string()).take(pa.array(want))
            theirs = names.take(pa.array(found)) if len(found) < len(names) else names
            if not pc.all(pc.equal(mine, theirs)).as_py():
                raise RuntimeError(f"64-bit hash collision among {self.name!r} names")

        return check

    def _find(self, names, h) -> np.ndarray:
        ids = self._probe(_nonzero(h))
        self._verify(names, ids)
        return ids

    def lookup(self, names) -> np.ndarray:
        """Ids of ``names``; -1 where unknown. Does not add anything."""
        names = _one(names)
        if len(names) == 0:
            return np.zeros(0, np.int64)
        return self._find(names, hash_strings(names))

    def encode(self, names) -> np.ndarray:
        """Ids of ``names`` (an Array or ChunkedArray), adding unseen names at the end.

        One hash pass over the block (dictionary_encode), then only the block's
        distinct names are hashed and looked up: no per-name Python work, and the
        cost does not grow with the dictionary.
        """
        if isinstance(names, pa.ChunkedArray) and names.num_chunks == 0:
            return np.zeros(0, np.int64)
        uniq, local = _split_encoded(pc.dictionary_encode(names))
        return self.add_distinct([uniq])[0][local]

    def add_distinct(
        self, uniqs: list[pa.Array], hashes: np.ndarray | None = None, deferred: list | None = None
    ) -> list[np.ndarray]:
        """Global ids of the names of several arrays, each free of repeats (but they may
        share names); unseen names are added in order (first array first).

        ``hashes``: ``name_hashes`` of the concatenated names, if already computed.
        ``deferred``: a list to append the verification of the names found by their
        hash to (a function to call later, e.g. in another thread), instead of
        verifying here; only the hashing and probing then stay in this call.
        """
        sizes = [len(u) for u in uniqs]
        if sum(sizes) == 0:
            return [np.zeros(0, np.int64) for _ in uniqs]
        names = pa.concat_arrays([u.cast(pa.string()) for u in uniqs]) if len(uniqs) > 1 else _one(uniqs[0])
        h = name_hashes(names) if hashes is None else hashes
        ids = self._probe(h)
        check = self._verifier(names, ids)
        if check is not None:
            if deferred is None:
                check()
            else:
                deferred.append(check)
        miss = np.flatnonzero(ids < 0)
        if len(miss):
            hm = h[miss]
            hu, first, inv = np.unique(hm, return_index=True, return_inverse=True)
            rep = miss[first[inv]]  # the first position with the same hash
            if len(hu) < len(miss):  # a name in several arrays, or a collision
                same = pc.equal(names.take(pa.array(rep)), names.take(pa.array(miss)))
                if not pc.all(same).as_py():
                    raise RuntimeError(f"64-bit hash collision among {self.name!r} names")
            order = np.argsort(first, kind="stable")  # new ids in order of appearance
            new_of_u = np.empty(len(hu), np.int64)
            new_of_u[order] = np.arange(self._n, self._n + len(hu))
            ids[miss] = new_of_u[inv]
            self._insert(hu, new_of_u)
            self._chunks.append(names.take(pa.array(miss[first[order]])))
            self._grow(self._n + len(hu))
            self._n += len(hu)
        return np.split(ids, np.cumsum(sizes)[:-1])

    def encode_parts(self, parts: list, pool=None) -> list[np.ndarray]:
        """``encode`` of several arrays, in order (``pool``: unused, kept for callers)."""
        return [u[loc] for u, loc in self.encode_parts_local(parts, pool)]

    def encode_parts_local(self, parts: list, pool=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Like ``encode_parts``, but per part (ids of its distinct names, index of each
        value into them): per-row work can then gather from the small per-name arrays.

        The parts are hashed together, in one dictionary_encode (a name on both sides
        of a block is looked up once); every part gets the same ids array.
        """
        return self.add_encoded(*local_encode(parts), [len(p) for p in parts])

    def add_encoded(
        self,
        uniq: pa.Array,
        local: np.ndarray,
        sizes: list[int],
        hashes: np.ndarray | None = None,
        deferred: list | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``encode_parts_local`` from ``local_encode``'s result (and ``name_hashes`` of
        its names), which do not depend on the dictionary, so they may run ahead in
        another thread; ``deferred``: as in ``add_distinct``."""
        uid = self.add_distinct([uniq], hashes, deferred)[0]
        if len(sizes) == 1:
            return [(uid, local)]
        return [(uid, loc) for loc in np.split(local, np.cumsum(sizes)[:-1])]

    def add_counts(self, ids: np.ndarray, train: np.ndarray | None = None) -> None:
        with self._lock:
            n = self._n
            c = np.bincount(ids, minlength=n)[:n]
            self.counts[:] += c
            if train is None or not train.any():
                return
            self.train_counts[:] += c if train.all() else np.bincount(ids[train], minlength=n)[:n]

    def add_counts_local(self, uids: np.ndarray, local: np.ndarray, train: np.ndarray | None = None) -> None:
        """``add_counts`` of ``uids[local]`` without forming it (``uids`` distinct);
        ``train``: a mask per row, or True / False for all rows."""
        k = len(uids)
        c = np.bincount(local, minlength=k)[:k]
        tc = None
        if not (train is None or train is False or (train is not True and not train.any())):
            tc = c if train is True or train.all() else np.bincount(local[train], minlength=k)[:k]
        with self._lock:
            self._cnt[uids] += c
            if tc is not None:
                self._tcnt[uids] += tc

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
        if self._nparted < self._n:
            if len(self._part) < self._n:
                grown = np.zeros(max(self._n, 2 * len(self._part)), np.int32)
                grown[: self._nparted] = self._part[: self._nparted]
                self._part = grown
            new = np.arange(self._nparted, self._n, dtype=np.int64)
            self._part[self._nparted : self._n] = self._partition_formula(new)
            self._nparted = self._n
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
        return pa.table(
            {
                "name": self.names.take(pa.array(ids)),
                "count": self.counts[ids],
                "train_count": self.train_counts[ids],
            }
        )

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
        return cls(
            name,
            num_partitions,
            seed,
            allt.column("name").combine_chunks().take(take),
            _to_numpy(allt.column("count").take(take), np.int64),
            _to_numpy(allt.column("train_count").take(take), np.int64),
        )


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
        # two odd multipliers make (w0, w1, length) -> 64 bits; then a xorshift-multiply
        # finalizer (a bijection) spreads every input bit over the high bits, which
        # pick the hash table's slot; in place, a few passes in all
        w0 *= _MULT[1]
        w1 ^= lens.astype(np.uint64) * _MULT[0]
        w1 *= _MULT[2]
        h = w0
        h ^= w1
        h ^= h >> np.uint64(32)
        h *= _MULT[3]
        h ^= h >> np.uint64(29)
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
    return splitmix64(sums ^ (lens.astype(np.uint64) * np.uint64(GAMMA)))


def local_encode(parts: list) -> tuple[pa.Array, np.ndarray]:
    """(distinct names, index of each value) of several arrays hashed together, in
    one dictionary_encode: a name in several parts is one entry."""
    if len(parts) == 1:
        return _split_encoded(pc.dictionary_encode(parts[0]))
    chunks = [c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])]
    return _split_encoded(pc.dictionary_encode(pa.chunked_array(chunks, type=parts[0].type)))


def name_hashes(names: pa.Array) -> np.ndarray:
    """The hash table's keys of ``names`` (``hash_strings``, 0 made 1)."""
    return _nonzero(hash_strings(names))


def _nonzero(h: np.ndarray) -> np.ndarray:
    """Hashes for the table, where 0 marks an empty slot (a real 0 becomes 1)."""
    h[h == 0] = 1
    return h


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
