"""Link-prediction evaluation: rank each held-out edge against ALL entities.

For every edge of the split, both sides are predicted (the rhs from ``op_r(lhs)``, the
lhs from ``op'_r(rhs)``) and the true entity is ranked against every entity of its type,
whatever the number of partitions: the candidates are streamed one partition at a time,
so at most the kept side's partition, one candidate partition and one block of scores
are in memory (PyTorch-BigGraph ranks only within the positive's partition, so its
figures inflate as partitions grow). In the filtered setting (the literature's protocol)
every other true edge of train/valid/test is removed from the candidates; of those only
the edges sharing an evaluated query's (entity, relation) are kept, found by streaming
the splits bucket by bucket, so that memory too is bounded by the evaluated split, not
by the graph. Ties get the mean of the optimistic and pessimistic rank.

On a device (``device="cuda"``, or ``"standin"`` in tests) the tables, relation parameters
and every score live there: the host only sorts out which rows to gather and which
scores to filter (index bookkeeping), copies those indices over explicitly, and gets the
ranks back.

>>> from ember.pbg.eval import evaluate
>>> evaluate(load_config("ws/config.toml"), split="test")["mrr"]     # doctest: +SKIP
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ember._backend import array_module, to_device, to_host
from ember._bits import GAMMA
from ember._io import progress_bar
from ember.errors import UserError
from ember.pbg.checkpoint import Checkpoint
from ember.pbg.workspace import build_model, check_checkpoint, open_workspace

SPLITS = ("train", "valid", "test")
HITS = (1, 3, 10, 50)


class _Tables:
    """A tiny LRU of partition embeddings read from the checkpoint (bounded memory); a
    featurized type's are its entity vectors, derived from its feature table (``ws``).
    A table handed out is valid until ``size`` more are asked for: its memory may then
    hold another partition (each caller here uses one table at a time)."""

    def __init__(self, ckpt, glob, size=3, dev=np.asarray, ws=None, dim=None):
        self.ckpt, self.glob, self.size, self.cache = ckpt, glob, size, OrderedDict()
        self.dev, self.ws, self.dim = dev, ws, dim

    def get(self, etype, part):
        key = (etype, part)
        if key not in self.cache:
            if not self.ckpt.has_partition(etype, part):
                raise UserError(
                    f"{self.ckpt.path}: checkpoint has no embeddings for partition {part} of {etype!r}"
                )
            featurized = self.ws is not None and self.ws.is_featurized(etype)
            spare = None
            if len(self.cache) >= self.size:  # the oldest goes first; its memory may serve
                old = self.cache.popitem(last=False)[1]
                if not featurized and type(old) is np.ndarray and old.dtype == np.float32:
                    spare = old if type(old.base) is not np.ndarray else old.base
                del old
            # as read: into the memory of an evicted table (a fresh table of hundreds of
            # MiB costs its page faults again), each made as large as the type's largest
            # partition (partitions differ by a row: every one then fits every table), no
            # float32 copy of a float32 table, and the global embedding added in place
            g = self.glob.get(f"global_{etype}")
            sizes = self.ws.partition_sizes(etype) if self.ws is not None else None
            if sizes is not None and self.dim is not None and self.dev is np.asarray and not featurized:
                n, rows = sizes[part], max(sizes)
                if spare is None or spare.shape != (rows, self.dim):
                    spare = None
                    spare = np.empty((rows, self.dim), np.float32)
                emb = spare[:n]
                self.ckpt.read_partition_into(etype, part, emb, np.empty(n, np.float32), add=g)
            else:
                emb = self.ckpt.load_partition(etype, part)[0].astype(np.float32, copy=False)
                if g is not None and not featurized:
                    emb += g
            del spare
            if featurized:
                from ember.pbg.featurized import featurized_vectors  # the bag means' one home

                self.cache[key] = featurized_vectors(self.ws, etype, self.dev(emb), g, self.dev)
            else:
                self.cache[key] = self.dev(emb)
        self.cache.move_to_end(key)
        return self.cache[key]

    def order(self, etype, parts):
        """``parts`` in the order a sweep over them reads least: the partitions of
        ``etype`` held now first (no read, nothing evicted meanwhile), then the rest
        ascending. Each sweep after the first thus reads only what the last one left out:
        8 partitions, 3 held, 5 reads a sweep, where a fixed order read 5 or 8."""
        parts = [int(p) for p in parts]
        held = {p for t, p in self.cache if t == etype}
        return [p for p in parts if p in held] + [p for p in parts if p not in held]


def _global_edges(ws, split):
    """All edges of a split as global ids (offset of the partition within its type)."""
    parts = [_bucket_edges(ws, split, lp, rp) for (lp, rp), n in ws.buckets(split).items() if n]
    return {
        k: np.concatenate([d[k] for d in parts]) if parts else np.zeros(0, np.int64)
        for k in ("lhs", "rhs", "rel")
    }


def _bucket_edges(ws, split, lp, rp):
    """One bucket's edges as global ids (int64 ``lhs``, ``rhs``, ``rel``)."""
    d = ws.read_bucket(split, lp, rp)
    rel = d["rel"].astype(np.int64)
    types = [ws.relation_types(r) for r in range(len(ws.relation_names))]
    bases = {t: _bases(ws, t) for t in {t for lr in types for t in lr}}

    def base(t, part):
        return bases[t][part if ws.num_partitions(t) > 1 else 0]

    lbase = np.array([base(lt, lp) for lt, _ in types], np.int64)
    rbase = np.array([base(rt, rp) for _, rt in types], np.int64)
    return {
        "lhs": d["lhs"].astype(np.int64) + lbase[rel],
        "rhs": d["rhs"].astype(np.int64) + rbase[rel],
        "rel": rel,
    }


def _filters(ws, split, edges, num_rel, split_edges=None):
    """The filtered setting's known edges, one ``_Filter`` per predicted side, holding
    only the true edges (train/valid/test) that can filter a query of the evaluated
    ``edges``: for tail prediction those whose (lhs, relation) is an evaluated edge's
    (head, relation), for head prediction those whose (relation, rhs) is an evaluated
    (relation, tail). Every other split is streamed bucket by bucket and matched with
    int64 keys (``entity * num_rel + rel``) against the sorted query keys, so memory is
    bounded by the evaluated split and the edges it matches, not by the graph. Every
    matching edge is kept, duplicates included (they count in the candidate numbers
    exactly as when every known edge was kept). ``split_edges``: the evaluated split's
    edges when ``edges`` is a sample of them (the others are known edges too)."""
    sides = {"rhs": ("lhs", "rhs"), "lhs": ("rhs", "lhs")}  # predicted -> (keep, other)
    queries = {s: np.unique(edges[k] * num_rel + edges["rel"]) for s, (k, _) in sides.items()}
    if split_edges is None:  # the evaluated split's own edges all match their own queries
        kept = {s: [(edges[k], edges["rel"], edges[o])] for s, (k, o) in sides.items()}
    else:
        kept = {s: [] for s in sides}
        for s, (k, o) in sides.items():
            m = _matches(split_edges[k], split_edges["rel"], num_rel, queries[s])
            kept[s].append((split_edges[k][m], split_edges["rel"][m], split_edges[o][m]))
    for other in SPLITS:
        if other == split or not ws.num_edges(other):
            continue
        for (lp, rp), n in ws.buckets(other).items():
            if not n:
                continue
            d = _bucket_edges(ws, other, lp, rp)
            for s, (k, o) in sides.items():
                m = _matches(d[k], d["rel"], num_rel, queries[s])
                if m.any():
                    kept[s].append((d[k][m], d["rel"][m], d[o][m]))
    return {s: _Filter(*(np.concatenate(c) for c in zip(*kept[s])), num_rel) for s in sides}


def _matches(keep, rel, num_rel, sorted_unique):
    """``_member(keep * num_rel + rel, sorted_unique)``: in one compiled pass where the
    kernels are built, no key, hash or mask arrays (`benchmarks/eval_filter.py`)."""
    from ember import _cpu_kernels

    got = _cpu_kernels.member_keys(keep, rel, num_rel, sorted_unique)
    return got if got is not None else _member(keep * num_rel + rel, sorted_unique)


def _member(keys, sorted_unique):
    """``np.isin(keys, sorted_unique)`` by binary search (the queries are sorted). Many
    keys against few: a bitmap of the queries' hashed keys (~64 bits a query, in cache)
    first rules out nearly all keys in three vector passes; only the rest are searched."""
    out = np.zeros(len(keys), bool)
    if not len(sorted_unique) or not len(keys):
        return out
    if len(keys) < 256 * len(sorted_unique):
        cand = None
    else:
        bits = max(10, int(len(sorted_unique) * 64).bit_length())
        hit = np.zeros(1 << bits, bool)
        hit[_slots(sorted_unique, bits)] = True
        cand = np.flatnonzero(hit[_slots(keys, bits)])
        keys = keys[cand]
    i = np.minimum(np.searchsorted(sorted_unique, keys), len(sorted_unique) - 1)
    found = sorted_unique[i] == keys
    if cand is None:
        return found
    out[cand[found]] = True
    return out


def _slots(keys, bits: int) -> np.ndarray:
    """A multiplicative hash of int64 ``keys`` to ``bits`` bits."""
    with np.errstate(over="ignore"):
        return (keys.astype(np.int64, copy=False).view(np.uint64) * np.uint64(GAMMA)) >> np.uint64(64 - bits)


def _bases(ws, etype):
    return np.concatenate([[0], np.cumsum(ws.partition_sizes(etype))]).astype(np.int64)


class _Filter:
    """Known true (keep, rel) -> other pairs, as sorted int64 keys for vectorised lookup
    (a key's others in the order given: they are counted, in no order)."""

    def __init__(self, keep, rel, other, num_rel):
        self.num_rel = num_rel
        key = keep * num_rel + rel
        order = np.argsort(key, kind="stable")  # 3.5x faster than lexsort with the others
        self.key, self.other = key[order], other[order]

    def pairs(self, keep, rel):
        """(row, other) for every true other of each query row."""
        q = keep * self.num_rel + rel
        lo = np.searchsorted(self.key, q, "left")
        hi = np.searchsorted(self.key, q, "right")
        cnt = hi - lo
        rows = np.repeat(np.arange(len(q)), cnt)
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(cnt)[:-1]]), cnt)
        return rows, self.other[starts + np.arange(len(rows))]


def _mover(device):
    """``(xp, dev)``: the device's array module and an explicit host->device copy."""
    from ember.pbg.workspace import array_module_of

    device, xp = array_module_of(device)
    if device.type == "cpu":
        return np, np.asarray
    return xp, lambda a: to_device(np.array(a), device)


def evaluate(
    config,
    *,
    split="test",
    filtered=True,
    negatives="all",
    num_negs=1000,
    block=1000,
    checkpoint=None,
    device=None,
    sample=None,
    sample_seed=0,
    ranks_out=None,
) -> dict:
    """Metrics of the trained checkpoint on ``split``: overall, per side, per relation.
    ``device``: where the scores are computed (default: the config's ``device``).

    ``sample``: evaluate ``sample`` edges of the split drawn at random (without
    replacement, seeded by ``sample_seed``), each still ranked against all entities and
    filtered against every known edge: on a big graph the cost of evaluation is queries x
    entities, and a few thousand queries give the MRR to about +-0.01. ``ranks_out``: a
    dict that receives each evaluated edge's ranks (``"rhs"``, ``"lhs"``) and its index in
    the split (``"edges"``)."""
    from ember.pbg.api import _trained_config

    xp, dev = _mover(device or config.device)
    ws = open_workspace(config)
    ckpt = Checkpoint(checkpoint or config.checkpoint_path)
    if not ckpt.exists:
        raise UserError(f"{ckpt.path}: no checkpoint; run `pbg train` first")
    # the model's shape is the one the checkpoint was trained with (as `load` reads it)
    model = build_model(_trained_config(config, ckpt), ws)
    check_checkpoint(_trained_config(config, ckpt), ws, model, ckpt)
    rel_d = ckpt.load_relations()
    theta = [dev(rel_d["theta_r"].astype(np.float32)), dev(rel_d["theta_l"].astype(np.float32))]
    if split not in SPLITS:
        raise UserError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    edges = _global_edges(ws, split)
    if not len(edges["lhs"]):
        raise UserError(f"{ws.root}: the {split!r} split has no edges")
    picked, whole = np.arange(len(edges["lhs"])), None
    if sample is not None:
        if sample < 1:
            raise UserError(f"--sample {sample}: give a number of edges >= 1")
        if sample < len(picked):  # a seeded draw, in split order (reproducible, any machine)
            picked = np.sort(np.random.default_rng(sample_seed).choice(len(picked), sample, replace=False))
            whole, edges = edges, {k: v[picked] for k, v in edges.items()}
    R = model.num_relations
    # raw ranking (no filter) removes only the positive itself from its candidates
    flts = _filters(ws, split, edges, R, whole) if filtered else {"rhs": None, "lhs": None}
    tables = _Tables(ckpt, rel_d, dev=dev, ws=ws, dim=model.dim)
    rng = np.random.default_rng(config.seed)
    scratch = _Scores(xp)
    ranks, cands = {}, {}
    bad = [0]  # scores that were not finite (NaN or inf): a broken checkpoint
    bar = progress_bar(2 * len(edges["lhs"]), f"eval {split}", "query")
    for side in ("rhs", "lhs"):
        keep_key, other_key = ("lhs", "rhs") if side == "rhs" else ("rhs", "lhs")
        flt = flts[side]
        r_all, n_all = np.zeros(len(edges["lhs"])), np.zeros(len(edges["lhs"]))
        types = [ws.relation_types(r) for r in range(R)]
        for lt, rt in sorted(set(types)):
            keep_t, other_t = (lt, rt) if side == "rhs" else (rt, lt)
            sel_rel = np.array([t == (lt, rt) for t in types])
            idx = np.flatnonzero(sel_rel[edges["rel"]])
            kb, ob = _bases(ws, keep_t), _bases(ws, other_t)
            # blocks never mix partitions of the true entity: each block first scores the
            # partition holding its positives and reads their scores from that same
            # product, so a positive ties exactly with an equal-scoring candidate
            opart = _locate(edges[other_key][idx], ob)[0]
            idx = idx[np.argsort(opart, kind="stable")]
            opart = np.sort(opart)
            if negatives != "sampled":
                # every candidate: partition by partition over groups of blocks, so that
                # each partition is read about twice per group, not once per block
                group = max(1, _GROUP_QUERIES // block) * block  # whole blocks
                for g0 in range(0, len(idx), group):
                    ii = idx[g0 : g0 + group]
                    r_all[ii], n_all[ii] = _rank_all(
                        model, theta, tables, side, keep_t, other_t, kb, ob,
                        edges[keep_key][ii], edges[other_key][ii], edges["rel"][ii],
                        flt, block, xp, dev, bad, scratch,
                    )  # fmt: skip
                    bar.update(len(ii))
                continue
            cuts = np.flatnonzero(np.diff(opart)) + 1
            starts = sorted({*range(0, len(idx), block), *cuts.tolist()})
            for s, e in zip(starts, starts[1:] + [len(idx)]):
                ii = idx[s:e]
                rk, ro = _rank_sampled(
                    model, theta, tables, side, keep_t, other_t, kb, ob,
                    edges[keep_key][ii], edges[other_key][ii], edges["rel"][ii],
                    num_negs, rng, xp, dev, bad,
                )  # fmt: skip
                r_all[ii], n_all[ii] = rk, ro
                bar.update(len(ii))
        ranks[side], cands[side] = r_all, n_all
    bar.close()
    if ranks_out is not None:
        ranks_out.update(rhs=ranks["rhs"], lhs=ranks["lhs"], edges=picked)
    out = _metrics(ranks, cands, edges["rel"], ws.relation_names, split, filtered, negatives)
    out["nonfinite_scores"] = bad[0]
    if sample is not None:
        out["sample"] = {"edges": int(len(picked)), "seed": int(sample_seed)}
    return out


def _locate(g, bases):
    part = np.searchsorted(bases, g, "right") - 1
    return part, g - bases[part]


def _rows(tables, etype, bases, ids, dim, xp, dev):
    """The embeddings of global ids ``ids`` of ``etype``, gathered partition by partition."""
    part, off = _locate(ids, bases)
    out = xp.empty((len(ids), dim), np.float32)
    for p in tables.order(etype, np.unique(part)):
        m = np.flatnonzero(part == p)
        out[dev(m)] = tables.get(etype, p)[dev(off[m])]
    return out


def _rank_sampled(
    model, theta, tables, side, keep_t, other_t, kb, ob, keep, other, rel, num_negs, rng, xp, dev, bad
):
    """PBG's protocol: realistic ranks of one block of edges against ``num_negs`` uniform
    candidates of their positive's partition, and the number of candidates of each.
    Index bookkeeping on the host; gathers and scores with ``xp`` (indices copied by
    ``dev``). ``bad[0]`` counts the scores that were not finite."""
    n = len(keep)
    keep_emb = _rows(tables, keep_t, kb, keep, model.dim, xp, dev)
    op_, oo = _locate(other, ob)
    other_emb = _rows(tables, other_t, ob, other, model.dim, xp, dev)
    lhs, rhs = (keep_emb, other_emb) if side == "rhs" else (other_emb, keep_emb)
    rel_d = dev(rel)
    pos = model.score_pos(lhs, rhs, rel_d, theta, side)
    gt, ge = xp.zeros(n), xp.zeros(n)
    ncand = np.full(n, num_negs + 1.0)
    for p in np.unique(op_):
        m = np.flatnonzero(op_ == p)
        tab = tables.get(other_t, int(p))
        ids = rng.integers(0, len(tab), num_negs)
        md = dev(m)
        S = model.score_candidates(keep_emb[md], rel_d[md], theta, tab[dev(ids)], side)
        bad[0] += nonfinite(S)
        S[dev(ids[None, :] == oo[m][:, None])] = xp.nan
        g, e = tally(S, pos[md])
        gt[md] += g
        ge[md] += e
    bad[0] += nonfinite(pos)
    return to_host(realistic_rank(gt, ge, pos, dev(ncand))), ncand


class _Scores:
    """One float32 buffer that every block of candidate scores is written into: a fresh
    block of hundreds of MiB (a block against a whole partition) paid its page faults
    each time (perf: a quarter of eval's samples at 10^7 edges zeroed fresh pages;
    reused, eval's CPU went 15.9 -> 14.4 s). It grows to the largest block asked for and
    lives as long as the evaluation. ``zeroed``: the whole buffer holds zeros (it starts
    so, and the compiled count clears each block it reads), so a product may add into it
    rather than zero it first (`Model.score_queries`)."""

    def __init__(self, xp):
        self.xp, self.flat, self.zeroed = xp, None, False

    def size(self) -> int:
        return 0 if self.flat is None else int(self.flat.size)

    def block(self, n: int, m: int):
        if self.flat is None or self.flat.size < n * m:
            self.flat = None  # the old one goes before the new one is made
            self.flat = self.xp.zeros(n * m, np.float32)
            self.zeroed = True
        return self.flat[: n * m].reshape(n, m)


# queries ranked together, partition by partition (their rows are held: 26 MiB at d=100)
_GROUP_QUERIES = 1 << 16
_SLICE_BYTES = 8 << 20  # a slice of candidate scores: counted while in the last-level cache
_SLICE_ROWS = 1 << 12  # at least (a product of fewer candidates is slow)
_OWN_BYTES, _OWN_ROWS = 256 << 20, 200  # a block's product against its positives' partition


def _rank_all(
    model, theta, tables, side, keep_t, other_t, kb, ob, keep, other, rel, flt, block, xp, dev, bad, scratch
):
    """Realistic ranks against every candidate (filtered by ``flt``, or raw) of queries
    sorted by the partition of their positives, and the number of candidates of each.

    The queries fall into blocks of at most ``block`` (and of at most 256 MiB of scores
    against a partition, down to 200 queries) whose positives share a partition;
    each block first scores the partition holding its positives and reads their scores
    from that same product (so a positive ties exactly with an equal-scoring candidate).
    Against any other partition the queries need not share their positives' partition:
    those whose positives lie elsewhere (one or two runs of the sorted queries) are
    scored together in pieces of up to ``block`` (no larger a product than the largest
    before them), so OpenBLAS packs each slice of candidates once per piece, not once per
    block (at 10^8 edges a block held ~60 queries). The work runs partition by
    partition: first every block against the partition of its positives, then each other
    partition, those the LRU of `_Tables` holds (three) first, so each partition is read
    at most twice whatever the number of blocks. Every product is written into
    ``scratch``'s buffer."""
    n = len(keep)
    keep_emb = _rows(tables, keep_t, kb, keep, model.dim, xp, dev)
    rel_d = dev(rel)
    op_, oo = _locate(other, ob)
    cuts = np.flatnonzero(np.diff(op_)) + 1
    # a block's product against its positives' partition is held whole, in a buffer whose
    # first touch costs its page faults: at most _OWN_BYTES of it, unless that leaves
    # blocks of fewer than _OWN_ROWS queries (each block packs that partition again)
    largest = max(1, int(np.diff(ob).max(initial=1)))
    most = max(1, min(block, max(_OWN_ROWS, _OWN_BYTES // (4 * largest))))
    blocks = []  # each run of one partition's positives, cut into equal blocks of <= most
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), n]):
        k = -(-(b - a) // most)
        at = [a + (b - a) * j // k for j in range(k + 1)] if k else []
        blocks += list(zip(at[:-1], at[1:]))
    rows, true = flt.pairs(keep, rel) if flt is not None else (np.arange(n), other)
    tp, to = _locate(true, ob)
    gt, ge, pos = xp.zeros(n), xp.zeros(n), xp.empty(n, np.float32)

    def score(s, e, p, own, step=None):
        """Rows s:e against partition p (``own``: p holds their positives, whose scores
        are read from this product first), in slices of ``step`` candidates."""
        table = tables.get(other_t, p)
        lo, hi = np.searchsorted(rows, [s, e])  # the rows' true pairs (rows ascend)
        m = lo + np.flatnonzero(tp[lo:hi] == p)
        r, c = rows[m] - s, to[m]  # filtered: other true edges (and the positive) drop out
        # the partition holding the block's positives is one product; another is scored
        # in slices whose scores stay in cache while they are counted
        step = max(1, len(table)) if own else step
        q = model.queries(keep_emb[s:e], rel_d[s:e], theta, side)  # once for all slices
        for a in range(0, len(table), step):
            out = scratch.block(e - s, min(step, len(table) - a))
            S = model.score_queries(q, table[a : a + step], out, zeroed=scratch.zeroed)
            scratch.zeroed = False
            if own:
                pos[s:e] = S[xp.arange(e - s), dev(oo[s:e])]
            inside = (c >= a) & (c < a + S.shape[1])
            g, eq, nf, scratch.zeroed = tally_out(S, pos[s:e], r[inside], c[inside] - a, dev, S is out)
            bad[0] += nf
            gt[s:e] += g
            ge[s:e] += eq

    p0 = op_[[s for s, _ in blocks]]  # all positives of a block are in one partition
    for p in tables.order(other_t, np.unique(p0)):
        for i in np.flatnonzero(p0 == p):
            score(*blocks[i], p, True)
    cap = scratch.size()  # what the products above hold: the pieces below hold no more
    for p in tables.order(other_t, range(len(ob) - 1)):
        a, b = np.searchsorted(op_, [p, p + 1])  # the rows whose positives are in p
        for s0, e0 in ((0, a), (b, n)):
            r = min(block, e0 - s0)
            if r <= 0:
                continue
            step = max(1, min(int(ob[p + 1] - ob[p]), max(_SLICE_ROWS, _SLICE_BYTES // (4 * r))))
            r = max(1, min(r, cap // step))
            for s in range(s0, e0, r):
                score(s, min(s + r, e0), p, False, step)
    n_true = np.bincount(rows, minlength=n)
    ncand = (ob[-1] - n_true + 1).astype(np.float64)
    return to_host(realistic_rank(gt, ge, pos, dev(ncand))), ncand


# ------------------------------------------------------------------ ranking, in one place
def tally(S, pos):
    """Per row of candidate scores ``S`` (n, m): how many beat the positive's score
    ``pos`` (n,) and how many beat or tie it. Candidates taken out (filtered known edges,
    the positive itself) are NaN in ``S`` and count in neither; so does a candidate whose
    own score is NaN (the worst score there is: it beats nothing)."""
    return (S > pos[:, None]).sum(1), (S >= pos[:, None]).sum(1)


def tally_out(S, pos, r, c, dev=np.asarray, clear=False):
    """``tally`` of ``S`` with entries ``(r, c)`` taken out (filtered known edges, the
    positive itself; a pair may repeat), and how many entries of ``S`` are not finite.
    On the host, through the compiled one-pass count where it is built: the entries taken
    out are then subtracted afterwards, S left as it is (or, with ``clear``, zeroed as it
    is counted); else they are set to NaN. Returns (gt, ge, nonfinite, whether S is now
    all zeros)."""
    from ember import _cpu_kernels

    if len(r) and type(S) is np.ndarray:
        key = np.unique(r.astype(np.int64) * S.shape[1] + c)  # each entry once
        r, c = np.divmod(key, S.shape[1])
        v, p = S[r, c], pos[r]  # read before the count may clear them
    got = _cpu_kernels.tally_rows(S, pos, clear)
    if got is None:
        nf = nonfinite(S)
        S[dev(r), dev(c)] = np.nan
        return (*tally(S, pos), nf, False)
    gt, ge, nf = got
    if len(r):
        np.subtract.at(gt, r, v > p)
        np.subtract.at(ge, r, v >= p)
    return gt, ge, int(nf), bool(clear)


def realistic_rank(gt, ge, pos=None, last=None):
    """The rank of a positive that ``gt`` candidates beat and ``ge`` beat or tie: the mean
    of the optimistic (1 + gt) and pessimistic (1 + ge) ranks, so ties cost half.

    A positive whose score ``pos`` is NaN has the worst score there is: it ranks
    ``last`` (the number of candidates, itself included), never first, so that a broken
    model can never look perfect (every comparison with NaN is false, so ``gt = ge = 0``
    would otherwise make it rank 1)."""
    r = 1 + (gt + ge) / 2
    if pos is None:
        return r
    xp = array_module(r)
    return xp.where(xp.isnan(pos), xp.asarray(last, dtype=r.dtype), r)


def nonfinite(a) -> int:
    """How many values of ``a`` are NaN or infinite (one count for the report)."""
    xp = array_module(a)
    return int((~xp.isfinite(a)).sum())


def held_out_metrics(model, theta, tables, globs, edges, *, sampler, num_uniform, num_batch, block=10000):
    """PyTorch-BigGraph's per-bucket check on held-out edges (``eval_fraction``): each
    edge ranked, both sides, against ``num_uniform`` uniform entities of the other side's
    partition (drawn by ``sampler.integers``, shared by a block of edges) and against the
    other held-out edges' entities of its chunk of ``num_batch`` edges (batch negatives),
    its own entity left out. ``tables`` are the (lhs, rhs) partitions' tables, ``globs``
    what is added to each of their rows (global_emb, or 0); every score stays on the
    tables' device. Returns count, MRR, Hits@10 and AUC (the share of candidates ranked
    below the positive)."""
    xp = array_module(tables[0])

    def rows(t, idx):
        r = tables[t][idx]
        return (r if r.dtype == np.float32 else r.astype(np.float32)) + globs[t]

    ranks, ncands = [], []
    for s in range(0, len(edges["lhs"]), block):
        lhs, rhs, rel = (edges[k][s : s + block] for k in ("lhs", "rhs", "rel"))
        L, R = rows(0, lhs), rows(1, rhs)
        n = len(lhs)
        for side, keep, t, true in (("rhs", L, 1, rhs), ("lhs", R, 0, lhs)):
            pos = model.score_pos(L, R, rel, theta, side)
            gt, ge, count = xp.zeros(n), xp.zeros(n), xp.zeros(n)
            if num_uniform:
                ids = sampler.integers(len(tables[t]), (num_uniform,))
                S = model.score_candidates(keep, rel, theta, rows(t, ids), side)
                out = ids[None, :] == true[:, None]
                S[out] = xp.nan
                g, e = tally(S, pos)
                # candidates are those not taken out (a NaN score is still a candidate)
                gt, ge, count = gt + g, ge + e, count + (~out).sum(1)
            for c in range(0, n, num_batch) if num_batch else ():
                sl = slice(c, min(c + num_batch, n))
                S = model.score_candidates(keep[sl], rel[sl], theta, rows(t, true[sl]), side)
                out = true[sl][None, :] == true[sl][:, None]  # itself, and its twins
                S[out] = xp.nan
                g, e = tally(S, pos[sl])
                gt[sl] += g
                ge[sl] += e
                count[sl] += (~out).sum(1)
            ranks.append(to_host(realistic_rank(gt, ge, pos, count + 1)))
            ncands.append(to_host(count))
    r, nc = np.concatenate(ranks), np.concatenate(ncands)
    return {
        "count": int(len(r)),
        "mrr": float(np.mean(1 / r)),
        "hits@10": float(np.mean(r <= 10)),
        "auc": float(np.mean(1 - (r - 1) / np.maximum(nc, 1))),
    }


def _summary(r, nc):
    if not len(r):
        return {}
    out = {"count": int(len(r)), "mrr": float(np.mean(1 / r)), "mr": float(np.mean(r))}
    for k in HITS:
        out[f"hits@{k}"] = float(np.mean(r <= k))
    out["auc"] = float(np.mean(1 - (r - 1) / np.maximum(nc - 1, 1)))
    return out


def _metrics(ranks, cands, rel, names, split, filtered, negatives):
    r = np.concatenate([ranks["rhs"], ranks["lhs"]])
    nc = np.concatenate([cands["rhs"], cands["lhs"]])
    rr = np.concatenate([rel, rel])
    out = {
        "split": split,
        "filtered": filtered,
        "negatives": negatives,
        **_summary(r, nc),
        "tail": _summary(ranks["rhs"], cands["rhs"]),
        "head": _summary(ranks["lhs"], cands["lhs"]),
        "per_relation": {names[i]: _summary(r[rr == i], nc[rr == i]) for i in np.unique(rel)},
    }
    return out
