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

from ember._bits import GAMMA, mix64_array, splitmix64
from ember._malloc import huge_pages

_SEED = 0x243F6A8885A308D3  # the chain's start, mixed with the length (pi's digits: nothing up the sleeve)
_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [2**64 - 1], np.uint64)


class HashCollision(RuntimeError):
    """Two names with one 64-bit hash were found by a deferred check (see
    ``EntityDictionary.add_distinct``): the caller starts again, checking as it goes."""


def type_seed(seed: int, name: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) & 0xFFFFFFFF


class EntityDictionary:
    """Names of one entity type (or the relations), ids in order of first appearance.

    The lookup structure is an open-addressing hash table (linear probing) of the
    names' 64-bit hashes, probed and filled with whole-array numpy operations: a block
    costs O(distinct names in the block), whatever the size of the dictionary. Every
    hash hit is verified against the stored name, so a collision never merges two
    names: names whose hashes collide are told apart by comparing them (a collision
    costs time, never a wrong id or a failed import).

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
        # hashes shared by several names (a true 64-bit collision): names under such a
        # hash are found by comparing them, in a dict of their own (slow, and rare)
        self._shared: dict[int, dict[str, int]] = {}
        self._shared_keys = np.zeros(0, np.uint64)
        # the native path's scratch: per id, its index among a block's distinct ids (-1)
        self._lidx = np.zeros(0, np.int32)
        if names is not None and len(names):
            names = _one(names)
            h = name_hashes(names)
            hu, first = np.unique(h, return_index=True)
            if len(hu) < len(h):
                if pc.count_distinct(names).as_py() < len(names):
                    raise ValueError(f"{name}: repeated names")
                shared = np.flatnonzero(np.isin(h, h[np.setdiff1d(np.arange(len(h)), first)]))
                for p, nm in zip(shared.tolist(), names.take(pa.array(shared)).to_pylist()):
                    self._shared.setdefault(int(h[p]), {})[nm] = p
                self._shared_keys = np.array(sorted(self._shared), np.uint64)
            self._insert(hu, first.astype(np.int64))
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
                new = huge_pages(np.zeros(cap, old.dtype))
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
        self._reserve(self._n + len(h))
        self._place(h, ids)

    def _reserve(self, used: int) -> None:
        """Room in the table for ``used`` entries (the load stays at most 1/2)."""
        if 2 * used > len(self._tab_h):
            old_h, old_id = self._tab_h, self._tab_id
            keep = old_h != 0
            cap = len(old_h)
            while 2 * used > cap:
                cap *= 2
            # read at random, one or two lookups a name: huge pages (see ember._malloc)
            self._tab_h = huge_pages(np.zeros(cap, np.uint64))
            # ids below 2**31 (always, in practice) fit in int32: a third less memory
            self._tab_id = huge_pages(np.zeros(cap, np.int32 if cap <= 2**31 else np.int64))
            if keep.any():
                self._place(old_h[keep], old_id[keep])

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

    def _shared_mask(self, h: np.ndarray):
        """Where ``h`` is a hash shared by several names (None: nowhere, the usual case)."""
        if not len(self._shared_keys):
            return None
        m = np.isin(h, self._shared_keys)
        return m if m.any() else None

    def _share(self, hv: int, name: str, i: int) -> None:
        self._shared.setdefault(int(hv), {})[name] = int(i)
        self._shared_keys = np.array(sorted(self._shared), np.uint64)

    def _verifier(self, names: pa.Array, ids: np.ndarray):
        """A function ``check(raise_=True)`` that verifies that the names found by their
        hash (``ids >= 0``) are the names stored under those ids, later, possibly in
        another thread while the dictionary grows (it holds the names stored so far).
        It raises ``HashCollision``, or with ``raise_=False`` returns the positions of
        names that only share a hash with the stored one."""
        found = np.flatnonzero(ids >= 0)
        if not len(found):
            return None
        if len(self._chunks) > 8:  # keep the stored names in few chunks (amortised)
            self._chunks = [pa.concat_arrays(self._chunks)]
        chunks, want, kind = list(self._chunks), ids[found], self.name

        def check(raise_=True):
            mine = pa.chunked_array(chunks, pa.string()).take(pa.array(want))
            theirs = names.take(pa.array(found)) if len(found) < len(names) else names
            same = pc.equal(mine, theirs)
            if pc.all(same).as_py():
                return found[:0]
            if raise_:
                raise HashCollision(f"64-bit hash collision among {kind!r} names")
            return found[~same.to_numpy(zero_copy_only=False)]

        return check

    def _resolve(self, names: pa.Array, h: np.ndarray, ids: np.ndarray, sp):
        """Ids of names under shared hashes (by name); returns the mask of them."""
        if sp is not None:
            where = np.flatnonzero(sp)
            for p, nm in zip(where.tolist(), names.take(pa.array(where)).to_pylist()):
                ids[p] = self._shared[int(h[p])].get(nm, -1)
        return sp

    def _checked(self, names: pa.Array, h: np.ndarray, ids: np.ndarray, deferred: list | None):
        """``ids`` of a probe made right: names under shared hashes found by name, and
        the names found by their hash verified (now, or later through ``deferred``); a
        name that only shares its hash with a stored one becomes unknown (-1) and its
        hash shared. Returns the mask of names under shared hashes (or None)."""
        sp = self._resolve(names, h, ids, self._shared_mask(h))
        check = self._verifier(names, ids if sp is None else np.where(sp, -1, ids))
        if check is None:
            return sp
        if deferred is not None:
            deferred.append(check)
            return sp
        bad = check(raise_=False)
        if len(bad):
            stored = self.names.take(pa.array(ids[bad])).to_pylist()
            for p, nm in zip(bad.tolist(), stored):
                self._share(h[p], nm, ids[p])
            ids[bad] = -1
            sp = np.zeros(len(h), bool) if sp is None else sp
            sp[bad] = True
        return sp

    def _find(self, names, h) -> np.ndarray:
        ids = self._probe(_nonzero(h))
        self._checked(names, h, ids, None)
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
        verifying here; only the hashing and probing then stay in this call. A deferred
        check that finds a collision raises ``HashCollision``: the caller then starts
        again without ``deferred``, where a collision is resolved by comparing names.
        """
        sizes = [len(u) for u in uniqs]
        if sum(sizes) == 0:
            return [np.zeros(0, np.int64) for _ in uniqs]
        names = pa.concat_arrays([u.cast(pa.string()) for u in uniqs]) if len(uniqs) > 1 else _one(uniqs[0])
        h = name_hashes(names) if hashes is None else hashes
        ids = self._probe(h)
        sp = self._checked(names, h, ids, deferred)
        miss = np.flatnonzero(ids < 0)
        if len(miss):
            self._add_missing(names, h, ids, miss, sp)
        return np.split(ids, np.cumsum(sizes)[:-1])

    def _add_missing(self, names, h, ids, miss, sp) -> None:
        """New ids for the unknown names at ``miss``, in order of first appearance: one
        per distinct hash (a name in several arrays is one name), except where different
        names share a hash, which are told apart by name."""
        hm = h[miss]
        exact = sp[miss] if sp is not None else np.zeros(len(miss), bool)
        hu, first, inv = np.unique(hm, return_index=True, return_inverse=True)
        if len(hu) < len(miss):  # a name in several arrays, or a collision
            rep = miss[first[inv]]
            same = pc.equal(names.take(pa.array(rep)), names.take(pa.array(miss)))
            differ = ~same.to_numpy(zero_copy_only=False)
            if differ.any():
                exact |= np.isin(hm, hm[differ])
        norm, ex = miss[~exact], miss[exact]
        hu, first, inv = np.unique(h[norm], return_index=True, return_inverse=True)
        ex_names = names.take(pa.array(ex)).to_pylist() if len(ex) else []
        ex_group: dict[str, int] = {}
        ex_first, ex_inv = [], []
        for p, nm in zip(ex.tolist(), ex_names):
            if nm not in ex_group:
                ex_group[nm] = len(ex_first)
                ex_first.append(p)
            ex_inv.append(ex_group[nm])
        firsts = np.concatenate([norm[first], np.array(ex_first, np.int64)])
        order = np.argsort(firsts, kind="stable")
        new_of_g = np.empty(len(firsts), np.int64)
        new_of_g[order] = np.arange(self._n, self._n + len(firsts))
        ids[norm] = new_of_g[inv]
        if len(ex):
            ids[ex] = new_of_g[len(hu) + np.array(ex_inv, np.int64)]
        self._insert(hu, new_of_g[: len(hu)])
        for nm, g in ex_group.items():
            self._share(h[ex_first[g]], nm, new_of_g[len(hu) + g])
        if ex_first:  # every shared hash has an entry in the table (the native path needs it)
            eh, eg = np.unique(h[np.array(ex_first, np.int64)], return_index=True)
            absent = self._probe(eh.copy()) < 0
            if absent.any():
                self._insert(eh[absent], new_of_g[len(hu) + eg[absent]])
        self._chunks.append(names.take(pa.array(firsts[order])))
        self._grow(self._n + len(firsts))
        self._n += len(firsts)

    def encode_parts(self, parts: list, pool=None, native=None) -> list[np.ndarray]:
        """``encode`` of several arrays, in order (``pool``: unused, kept for callers)."""
        return [u[loc] for u, loc in self.encode_parts_local(parts, pool, native)]

    def encode_parts_local(self, parts: list, pool=None, native=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Like ``encode_parts``, but per part (ids of its distinct names, index of each
        value into them): per-row work can then gather from the small per-name arrays.

        The parts are hashed together, in one dictionary_encode (a name on both sides
        of a block is looked up once); every part gets the same ids array. ``native``:
        the compiled kernel (``ember.partitioning.native.kernel()``), which gives the same
        result in one pass over the rows; None, or where it cannot (another
        ``hash_strings`` than this module's, which the kernel does not compute; null
        names; tables beyond 2^31 slots), the numpy path.
        """
        if native is not None and kernel_hash_is_current() and self._tab_id.dtype == np.int32:
            chunks = _string_chunks(parts)
            if chunks is not None:
                return self._encode_native(native, chunks, [len(p) for p in parts])
        return self.add_encoded(*local_encode(parts), [len(p) for p in parts])

    def _encode_native(self, mod, chunks: list, sizes: list[int], mask: int = 2**64 - 1):
        """``encode_parts_local`` through the kernel (``native``): each row's name hashed
        (``mask``: of the hash's bits, only these, so that a test can make names collide),
        probed, verified against the stored name and, when unseen, added, in one pass;
        a row whose hash is stored under another name is resolved here, by name."""
        rows = sum(sizes)
        n0 = n = self._n
        if rows == 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.int32)) for _ in sizes]
        if len(self._chunks) > 8:  # few chunks of stored names (amortised)
            self._chunks = [pa.concat_arrays(self._chunks)]
        stored = [_buffers(c if pa.types.is_string(c.type) else c.cast(pa.string())) for c in self._chunks]
        block = [_buffers(c) for c in chunks]
        new_rows = np.empty(rows, np.int64)
        uids = np.empty(rows, np.int64)
        local = np.empty(rows, np.int32)
        row = k = 0
        self._reserve(n + 1)
        self._grow_lidx(n + 1)
        while True:
            limit = min(len(self._tab_h) // 2, len(self._lidx))
            status, row, n, k = mod.encode_rows(
                block, row, n, k, limit, self._tab_h, self._tab_id, stored, n0, new_rows, self._lidx, uids,
                local, mask,
            )  # fmt: skip
            if status == 0:
                break
            if status == 2:
                n, k = self._collided(chunks, row, n, k, n0, new_rows, uids, local, mask)
                row += 1
            # room for the next new id: in the table and the per-id scratch
            self._reserve(n + 1)
            self._grow_lidx(n + 1)
        self._lidx[uids[:k]] = -1
        if n > n0:
            self._chunks.append(pa.chunked_array(chunks).take(pa.array(new_rows[: n - n0])).combine_chunks())
            self._grow(n)
            self._n = n
        uid = uids[:k].copy()
        return [(uid, loc) for loc in np.split(local, np.cumsum(sizes)[:-1])]

    def _grow_lidx(self, n: int) -> None:
        if n > len(self._lidx):
            new = huge_pages(np.empty(max(n, 2 * len(self._lidx), 1024), np.int32))
            new[: len(self._lidx)] = self._lidx
            new[len(self._lidx) :] = -1
            self._lidx = new

    def _collided(self, chunks, row, n, k, n0, new_rows, uids, local, mask):
        """The kernel's row ``row``, whose hash the table holds under another name: its id
        by name (``_shared``), a new one if it is new (the slow, rare path)."""
        block = pa.chunked_array(chunks)
        name = block[row].as_py()
        hv = int(hash_strings(pa.array([name]))[0]) & mask or 1
        if hv not in self._shared:  # the first collision on this hash: share the stored name
            sid = int(self._probe(np.array([hv], np.uint64))[0])
            held = self._chunks_name(sid) if sid < n0 else block[int(new_rows[sid - n0])].as_py()
            self._share(hv, held, sid)
        i = self._shared[hv].get(name)
        if i is None:
            i = n
            n += 1
            self._grow_lidx(n)
            new_rows[i - n0] = row
            self._share(hv, name, i)
        if self._lidx[i] < 0:
            self._lidx[i] = k
            uids[k] = i
            k += 1
        local[row] = self._lidx[i]
        return n, k

    def _chunks_name(self, i: int) -> str:
        return pa.chunked_array(self._chunks, pa.string())[i].as_py()

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
            self.train_counts[:] += _masked_counts(c, [ids], train)

    def add_counts_local(self, uids: np.ndarray, local, train: np.ndarray | None = None, native=None) -> None:
        """``add_counts`` of ``uids[local]`` without forming it (``uids`` distinct);
        ``local``: an array, or a list of arrays (the parts of one block: one update of
        the per-id counts for all); ``train``: a mask per row (of the parts joined), or
        True / False for all rows; ``native``: the import's kernel, which adds the counts
        at their ids in one prefetched pass (or None: numpy)."""
        k = len(uids)
        parts = local if isinstance(local, list) else [local]
        c = sum(np.bincount(p, minlength=k)[:k] for p in parts)
        tc = None
        if not (train is None or train is False or (train is not True and not train.any())):
            tc = c if train is True else _masked_counts(c, parts, train)
        with self._lock:
            if native is not None and uids.dtype == np.int64 and c.dtype == np.int64:
                tc = np.zeros(0, np.int64) if tc is None else tc
                native.add_at(self._cnt, self._tcnt, np.ascontiguousarray(uids), c, tc)
                return
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
                grown = huge_pages(np.zeros(max(self._n, 2 * len(self._part)), np.int32))
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


def _masked_counts(c: np.ndarray, parts: list, mask: np.ndarray) -> np.ndarray:
    """The counts ``c`` of the values of ``parts`` (joined) restricted to the rows where
    ``mask`` holds: from the few rows where it does not (most rows are training edges),
    so no masked copy of the values is made."""
    off = np.flatnonzero(~mask)
    if not len(off):
        return c
    at = np.cumsum([0] + [len(p) for p in parts])
    which = np.searchsorted(at, off, "right") - 1
    vals = np.concatenate([parts[j][off[which == j] - at[j]] for j in range(len(parts))])
    return c - np.bincount(vals, minlength=len(c))[: len(c)]


def hash_strings(arr: pa.Array) -> np.ndarray:
    """A 64-bit hash of every string, computed on the Arrow buffers with numpy.

    Every string is read as 8-byte words (unaligned views of the buffer, masked to its
    length); its first two are hashed as a chain ``h = mix(h ^ word)`` that starts from
    its length,
    where ``mix`` is splitmix64's finalizer (a bijection with full avalanche: each input
    bit flips each output bit with probability about 1/2). Two names that differ
    anywhere, in any number of bytes, collide with probability about 2^-64, whatever
    their length and structure. The first two words are one whole-array pass for all
    strings (most names have at most 16 bytes); the further words of longer names are
    mixed with their positions and summed into the hash (``_hash_long``), all at once.
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
    with np.errstate(over="ignore"):
        h = lens.astype(np.uint64) * np.uint64(GAMMA)
        h ^= np.uint64(_SEED)
        h ^= words[starts] & _MASKS[np.minimum(lens, 8)]
        mix64_array(h)
        h ^= words[starts + 8] & _MASKS[np.clip(lens - 8, 0, 8)]
        mix64_array(h)
    long = np.flatnonzero(lens > 16)
    if len(long):
        h[long] = _hash_long(words, starts[long], lens[long], h[long])
    return h


def _hash_long(words: np.ndarray, starts: np.ndarray, lens: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The words from 2 on of strings over 16 bytes, folded into their hash ``h``: each
    word is mixed with a key of its position (``mix(word ^ key[k])``, so words cannot
    trade places), the mixed words of a string are summed (mod 2^64), and the sum is
    mixed into ``h``. All words of all strings at once, whatever their lengths: a name of
    a megabyte costs whole-array passes, not a loop of 10^5 steps."""
    nw = (lens + 7) // 8 - 2  # words after the first two
    total = int(nw.sum())
    first = np.concatenate([[0], np.cumsum(nw)[:-1]])
    k = np.arange(total, dtype=np.int64) - np.repeat(first, nw) + 2  # each word's position
    at = np.repeat(starts, nw) + 8 * k
    word = words[at] & _MASKS[np.clip(np.repeat(lens, nw) - 8 * k, 0, 8)]
    with np.errstate(over="ignore"):
        key = k.astype(np.uint64) * np.uint64(GAMMA)
        key ^= np.uint64(_SEED)
        mix64_array(key)
        word ^= key
        mix64_array(word)
        sums = np.add.reduceat(word, first)
        h = h ^ sums
        mix64_array(h)
    return h


_HASH_STRINGS = hash_strings  # what the native kernel computes


def kernel_hash_is_current() -> bool:
    """Whether ``hash_strings`` is still the hash the native kernel computes (a test may
    stand another in for it, to make names collide: then only the numpy path can run)."""
    return hash_strings is _HASH_STRINGS


def _buffers(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array, as numpy views of its buffers (no copy)."""
    bufs = a.buffers()
    offs = np.frombuffer(bufs[1], np.int32, len(a) + 1, a.offset * 4) if len(a) else np.zeros(1, np.int32)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offs, data


def _string_chunks(parts: list):
    """The parts' chunks, one after another, as string arrays; None if any holds a null."""
    out = []
    for p in parts:
        for c in p.chunks if isinstance(p, pa.ChunkedArray) else [p]:
            if c.null_count:
                return None
            out.append(c if pa.types.is_string(c.type) else c.cast(pa.string()))
    return out


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
