"""The batch trainer: one bucket's edges, batch by batch, on the tables it is handed.

It sees only tables (`Partition`: an embedding table with its row-wise Adagrad), the
shared parameters (`SharedParams`: relation operators and global embeddings, with their
Adagrad), edges and a sampler; where the tables live (host memory, a GPU) is the
placement's business, and which bucket comes next the scheduler's.

The hot path is `BatchTrainer.step`: one batch, PyTorch-BigGraph's chunked negatives (the
other positives of a chunk plus uniform entities shared by the chunk), one fused autograd
node (`ember.pbg.autodiff.ChunkedLossRows`) for both sides' scores and losses, then
row-sparse gradients (the gathered rows' gradients with their row ids, a
`RowSparseGrad`) applied by `ember.optim.RowAdagrad` to the touched rows only. Several
Hogwild workers (threads) train one bucket's batches at once on the shared tables (numpy
releases the GIL in the heavy products); optimizer steps go one at a time.

Statistics (the loss and the positives' mean scores) stay on the tables' device and are
read once per bucket: a per-batch read would synchronise a GPU every batch.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ember import sparse
from ember._backend import to_host
from ember._bits import GAMMA, mix64, mix64_array
from ember._tensor import _wrap
from ember.autograd import Function
from ember.optim import Adagrad, RowAdagrad
from ember.pbg.autodiff import ChunkedLossRows, GatherRows
from ember.pbg.model import BatchPlan

__all__ = ["BatchTrainer", "Partition", "Sampler", "SharedParams"]

_M64 = (1 << 64) - 1


class Partition:
    """One resident (entity type, partition): its table and the table's optimizer.
    ``bags`` (`ember.pbg.featurized.DeviceBags`, set by the trainer): the table is a
    featurized type's feature table, and an entity's row is the mean of its bag's rows."""

    bags = None

    def __init__(self, etype, part, emb, state, lr):
        self.etype, self.part = etype, part
        self.table = _wrap(emb, True)  # no copy: the loaded array is the table
        self.opt = RowAdagrad([self.table], lr=lr)
        self.opt.state[self.table] = {"step": 0, "sum": _wrap(state)}

    @property
    def emb(self):
        return self.table._data

    @property
    def state(self):
        return self.opt.state[self.table]["sum"]._data

    @property
    def nbytes(self) -> int:
        return int(self.emb.nbytes + self.state.nbytes)

    @property
    def num_entities(self) -> int:
        """Entities of the partition (what negatives are drawn from): the table's rows, or
        the number of bags of a featurized type."""
        return len(self.emb) if self.bags is None else self.bags.num_entities

    def rows(self, leaf, ids):
        """Entity rows of ``ids`` from ``leaf`` (a per-step leaf sharing the table's data):
        a gather, or bag means; the gradient is one coalesced `RowSparseGrad` of the table."""
        if self.bags is not None:
            return self.bags.rows(leaf, ids)
        return sparse.embedding(leaf, ids, sparse=True)


class SharedParams:
    """What every bucket trains: the relation parameters of both sides (``theta``, as
    tensors) and, with ``global_emb``, one vector per entity type (``glob``), all updated
    by one Adagrad (``opt``)."""

    def __init__(self, theta, glob: dict, lr: float, theta_states=None, glob_states=None):
        self.theta = theta
        self.glob = glob
        self.opt = Adagrad(self.theta + list(self.glob.values()), lr=lr)
        import ember

        for t, s in zip(self.theta, theta_states or ()):
            self.opt.state[t] = {"step": 0, "sum": ember.tensor(s)}
        for t, s in (glob_states or {}).items():
            self.opt.state[self.glob[t]] = {"step": 0, "sum": ember.tensor(s)}

    def state_of(self, t):
        """The Adagrad accumulator of parameter tensor ``t`` (an array), or None."""
        st = self.opt.state.get(t)
        return st["sum"]._data if st else None


class Sampler:
    """Uniform entity ids drawn on the training device: a counter-based generator
    (splitmix64 of a stream key plus a running counter) written in whole-array ops, so
    numpy, cupy and the stand-in draw the very same ids (a GPU run trains on the CPU
    run's negatives) and no id is made on the host and copied over."""

    def __init__(self, xp, *words: int):
        key = 0
        for w in words:
            key = mix64((key ^ (int(w) & _M64)) + GAMMA)
        self.xp, self.key, self.count = xp, key, 0

    def integers(self, n: int, shape):
        xp = self.xp
        size = math.prod(shape)
        x = xp.arange(self.count, self.count + size, dtype=xp.uint64)
        self.count += size
        x *= xp.uint64(GAMMA)
        x += xp.uint64(self.key)
        mix64_array(x, xp)
        return (x % xp.uint64(max(n, 1))).astype(xp.int64).reshape(shape)


class _Upcast(Function):
    """float16 table rows -> float32 for the arithmetic; the gradient passes through as
    float32 (RowAdagrad then updates the float16 rows with float32 arithmetic)."""

    raw = True

    def forward(ctx, x):
        return x.astype(np.float32)

    def backward(ctx, g):
        return (g,)


def _take(edges, mask):
    """The edges where a host boolean mask is true (arrays on the host or the device)."""
    from ember._backend import device_of, to_device

    sel = np.flatnonzero(mask)  # copied to a device explicitly (the stand-in is an ndarray)
    return {k: v[sel if type(v) is np.ndarray else to_device(sel, device_of(v))] for k, v in edges.items()}


def _renorm(xp, emb, rows, max_norm):
    r = emb[rows]
    norm = xp.sqrt((r * r).sum(1, keepdims=True))
    emb[rows] = r * xp.minimum(1, max_norm / xp.maximum(norm, 1e-12))


class BatchTrainer:
    """Trains buckets' edges with ``workers`` Hogwild threads (one on a device, where a
    single thread queues the device's work)."""

    def __init__(self, model, config, params: SharedParams, xp, *, workers: int, all_negs_relations):
        self.model, self.config, self.params, self.xp = model, config, params, xp
        self.workers = workers
        self.chunk = config.num_batch_negs or 50
        # relations[i].all_negs: those relations' edges train 1-vs-all (every entity of the
        # partition a negative, one matmul per side), the others with sampled negatives
        self.rel_all_negs = np.asarray(all_negs_relations, bool)
        self.all_negs = bool(self.rel_all_negs.any())
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ember-hogwild") if workers > 1 else None

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- one bucket ---------------------------------------------------------------------
    def train(self, lp: Partition, rp: Partition, edges, stream: tuple, one_vs_all=None):
        """All batches of one bucket's (shuffled) edges; returns the device array
        ``[sum of losses, sum of rhs-side positive scores, sum of lhs-side ones]``.

        ``stream`` (integers: where these edges stand in the run) keys the negative
        sampler, so that the same edges draw the same negatives in a resumed run as in an
        uninterrupted one, and no two edge sets share draws."""
        if one_vs_all is None:  # the edges of all_negs relations go 1-vs-all, apart
            flags = self.rel_all_negs[to_host(edges["rel"])] if self.all_negs else None
            if flags is not None and flags.any() and not flags.all():
                return sum(
                    self.train(lp, rp, _take(edges, flags == f), (*stream, int(f)), f) for f in (True, False)
                )
            one_vs_all = flags is not None and bool(flags.all())
        cfg, xp = self.config, self.xp
        lhs_all, rhs_all, rel_all = edges["lhs"], edges["rhs"], edges["rel"]
        w_all = edges.get("weight")
        n_all = len(lhs_all)
        bs = cfg.batch_size
        starts = list(range(0, n_all, bs))
        nw = min(self.workers, len(starts))

        def work(worker):
            rng = Sampler(xp, cfg.seed, *stream, worker)
            total = xp.zeros(3, np.float64)
            for start in starts[worker::nw]:
                sl = slice(start, min(start + bs, n_all))
                lhs, rhs, rel = lhs_all[sl], rhs_all[sl], rel_all[sl]
                w = w_all[sl] if w_all is not None else None
                n = len(lhs)
                main = n if cfg.reciprocal or one_vs_all else n - n % min(self.chunk, n)
                parts = [slice(0, main)] + ([slice(main, n)] if main < n else [])
                for p in parts:  # the remainder is one smaller chunk
                    total += self.step(
                        lp, rp, lhs[p], rhs[p], rel[p], None if w is None else w[p], rng, one_vs_all
                    )
            return total

        if nw <= 1:
            return work(0)
        return sum(self._pool.map(work, range(nw)))

    # -- the hot path -------------------------------------------------------------------
    def step(self, lp: Partition, rp: Partition, lhs, rhs, rel, weight, rng, one_vs_all=False):
        """One batch (all of whose size is a multiple of the chunk, or one chunk);
        returns ``[loss, rhs positive score sum, lhs positive score sum]`` on the device."""
        xp, cfg, params = self.xp, self.config, self.params
        n = len(lhs)
        # reciprocal mode: the whole batch is one chunk sharing one large candidate set;
        # one_vs_all (relations with all_negs): one chunk, all the partition's entities
        chunk = n if cfg.reciprocal or one_vs_all else min(self.chunk, n)
        c = n // chunk
        u = 0 if one_vs_all else cfg.num_uniform_negs
        disabled = tuple(
            s for s, off in (("lhs", cfg.disable_lhs_negs), ("rhs", cfg.disable_rhs_negs)) if off
        )
        # negative_partitions = "bucket": a bucket (i, j) of one entity type draws half of
        # each side's uniform negatives from the other side's partition, so that scores
        # are compared across partitions too (else each partition's scores drift apart)
        where = cfg.negative_partitions
        if where == "auto":
            where = "bucket" if cfg.global_emb else "side"
        mixed = where == "bucket" and lp is not rp and lp.etype == rp.etype and u > 1
        if one_vs_all:  # every entity of the partition is a candidate: 1-vs-all
            cl_ids = xp.arange(lp.num_entities)[None]
            cr_ids = xp.arange(rp.num_entities)[None]
        elif u:  # drawn on the device (see Sampler)
            cl_ids = rng.integers(lp.num_entities, (c, u - u // 2 if mixed else u))
            cr_ids = rng.integers(rp.num_entities, (c, u - u // 2 if mixed else u))
        else:
            cl_ids = cr_ids = None
        if mixed:  # the borrowed halves: lhs candidates from rp, rhs candidates from lp
            cl_other = rng.integers(rp.num_entities, (c, u // 2))
            cr_other = rng.integers(lp.num_entities, (c, u // 2))
            nl = lp.num_entities  # ids of rp's entities are offset by nl where compared
            mask_ids = (
                lhs,
                rhs + nl,
                xp.concatenate([cl_ids, cl_other + nl], axis=1),
                xp.concatenate([cr_ids + nl, cr_other], axis=1),
            )
        else:
            mask_ids = (lhs, rhs, cl_ids, cr_ids)
        plan = BatchPlan(
            self.model,
            rel,
            chunk,
            *mask_ids,
            batch_negs=(not one_vs_all) and cfg.num_batch_negs > 0,
            weight=weight,
            disabled=disabled,
        )
        # One gather per table, ember.sparse.embedding(sparse=True) (a featurized type's: one
        # BagMean of the entities' bags): the table's gradient is one coalesced RowSparseGrad
        # of the touched rows, which RowAdagrad applies to those rows only. plan.layout says
        # which slice of the rows each part is: one or more segments (table, start, stop,
        # shape), concatenated along the candidates' axis when a part draws on both tables.
        tables = [lp] if lp is rp else [lp, rp]
        last = len(tables) - 1
        wanted = [[(0, lhs)], [(last, rhs)], [(0, cl_ids)], [(last, cr_ids)]]  # lhs, rhs, lhs cand, rhs cand
        if mixed:
            wanted[2].append((1, cl_other))
            wanted[3].append((0, cr_other))
        ids, off, layout = [[] for _ in tables], [0] * len(tables), []
        for segments in wanted:
            if segments[0][1] is None:
                layout.append(None)
                continue
            part = []
            for k, a in segments:
                part.append((k, off[k], off[k] + a.size, a.shape + (self.model.dim,)))
                off[k] += a.size
                ids[k].append(a.reshape(-1))
            layout.append(part)
        plan.layout = layout
        # per-step leaves sharing the tables' data: Hogwild workers never share a .grad
        leaves = [_wrap(p.emb, True) for p in tables]
        glob = params.glob
        globs = [_wrap(glob[p.etype]._data, True) if glob else None for p in tables]
        rows = []
        for part, leaf, i, g in zip(tables, leaves, ids, globs):
            i = i[0] if len(i) == 1 else xp.concatenate(i)
            if part.bags is None:  # one node: gather, upcast, + global_emb
                rows.append(GatherRows.apply(leaf, g, i))
                continue
            r = part.rows(leaf, i)
            if r.dtype != np.float32:  # float16 tables: float32 arithmetic and gradients
                r = _Upcast.apply(r)
            rows.append(r + g if g is not None else r)  # global_emb
        theta = [_wrap(t._data, True) for t in params.theta]
        loss = ChunkedLossRows.apply(rows[0], rows[1] if len(rows) > 1 else None, *theta, plan=plan)
        loss.backward()
        with self._lock:  # optimizer steps go one at a time; the scoring above overlaps
            for part, leaf in zip(tables, leaves):
                part.table.grad = leaf.grad
                part.opt.step()
                part.table.grad = None
                if cfg.max_norm:
                    _renorm(xp, part.emb, leaf.grad.indices, cfg.max_norm)
            for t, w in zip(params.theta, theta):
                t.grad = w.grad
            for part, g in zip(tables, globs):
                if g is not None and g.grad is not None:
                    gl = glob[part.etype]
                    gl.grad = g.grad if gl.grad is None else gl.grad + g.grad
            params.opt.step()
            for t in params.theta + list(glob.values()):
                t.grad = None
        zero = xp.zeros((), np.float64)
        ps = plan.pos_sum
        return xp.stack([loss._data.astype(np.float64), ps.get("rhs", zero), ps.get("lhs", zero)])
