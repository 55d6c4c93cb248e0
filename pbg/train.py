"""The bucket trainer: epochs -> edge chunks -> buckets -> batches, bounded memory.

>>> from ember.pbg.config import load_config
>>> from ember.pbg.train import train
>>> summary = train(load_config("ws/config.toml"))          # doctest: +SKIP

One loop, over small named parts that each do one thing (PyTorch-BigGraph's coordinator
is split the same way):

* the scheduler (`ember.pbg.schedule.BucketScheduler`) yields the buckets from the
  checkpoint's `Position` on, in the configured order;
* the placement (`ember.pbg.placement`) acquires a bucket's partitions and edges, where
  training runs (host memory, or a device through the partition swapper), and gives the
  trained partitions back for the checkpoint;
* the batch trainer (`ember.pbg.batch.BatchTrainer`) trains a bucket's edges on the
  tables it is handed, with Hogwild workers;
* held-out edges (``eval_fraction``) are ranked by `ember.pbg.eval.held_out_metrics`;
* the checkpoint (`ember.pbg.checkpoint.Checkpoint`) records every bucket's partitions
  and the next position.

CPU and device training differ only in the placement they plug in.

Memory: at most two partitions of each partitioned entity type are resident (plus the
unpartitioned types), with their row-Adagrad state, plus the edges of the bucket that
trains, of the next one and of the one being read. Before training, `memory_plan`
states the bytes that needs and refuses a run that does not fit, suggesting a partition
count that does.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

import ember
from ember._backend import to_host
from ember.errors import ConfigError, UserError
from ember.pbg.batch import BatchTrainer, Sampler, SharedParams
from ember.pbg.checkpoint import BLOCK_BYTES, MANIFEST, Checkpoint, RowMap, lock_folder
from ember.pbg.device import storage_dtype
from ember.pbg.eval import held_out_metrics
from ember.pbg.featurized import DeviceBags, entity_vectors
from ember.pbg.placement import DevicePlacement, HostPlacement, Piece, bucket_units, to_training_device
from ember.pbg.schedule import BucketScheduler, BucketTask, Position, num_edge_chunks
from ember.pbg.workspace import (
    array_module_of,
    build_model,
    check_edge_split,
    edge_split,
    model_description,
    open_workspace,
    relation_specs,
)

__all__ = ["MemoryPlan", "Trainer", "check_memory", "memory_plan", "train"]


# =========================================================================== memory
def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class MemoryPlan:
    embeddings: int  # resident partitions: embeddings + row-Adagrad state
    edges: int  # the bucket training, the next, and the one being read (and its raw shard)
    negatives: int  # each Hogwild worker's batch: scores, gradients and gathered rows
    relations: int
    io: int  # the checkpoint's read and write blocks (a partition moves in blocks)
    available: int | None

    @property
    def total(self) -> int:
        return self.embeddings + self.edges + self.negatives + self.relations + self.io

    def describe(self) -> str:
        g = lambda b: f"{b / 2**20:,.1f} MiB"
        return (
            f"memory plan: {g(self.total)} (embeddings+optimizer {g(self.embeddings)}, "
            f"edges {g(self.edges)}, negatives {g(self.negatives)}, relations "
            f"{g(self.relations)}, checkpoint blocks {g(self.io)}); "
            f"available {g(self.available) if self.available else '?'}"
        )


def memory_plan(config, ws, model, *, workers: int = 1) -> MemoryPlan:
    """Bytes the run holds at its peak, computed before it starts, with ``workers``
    Hogwild threads. The interpreter and its libraries (about 100 MiB) come on top."""
    d = model.dim
    itemsize = storage_dtype(config.dtype).itemsize  # the tables; the state stays float32
    emb = 0
    for t in ws.entity_types:
        sizes = ws.table_sizes(t)  # a featurized type: its feature rows
        held = min(2, len(sizes))
        emb += held * max(sizes, default=0) * (d * itemsize + 4)
    bag_len = 1.0  # the mean bag size of featurized types: rows gathered per entity row
    for t in filter(ws.is_featurized, ws.entity_types):
        entries = ws.manifest["features"][t]["bag_entries"]
        emb += 8 * (ws.num_entities(t) + 1 + entries)  # its bags, resident (int64)
        bag_len = max(bag_len, entries / max(ws.num_entities(t), 1))
    max_bucket = max(ws.buckets(edge_split(config)).values(), default=0)
    chunk = math.ceil(max_bucket / num_edge_chunks(config, ws))
    # three chunks held (lhs, rhs, rel as int64, weight): the one training, the next one
    # (asked for early, to prefetch it), and the one after, read while this one trains;
    # plus, while it is read, the whole shard as stored (int32 ids and a weight), the
    # chunk's permutation and one permuted int32 column
    edges = 3 * chunk * (3 * 8 + 4) + max_bucket * 4 * 4 + chunk * (8 + 4)
    bs = config.batch_size
    if any(r.all_negs for r in config.relations):  # 1-vs-all batches
        cands = max((max(ws.partition_sizes(t), default=0) for t in ws.entity_types), default=0)
        negs = bs * cands * 4 * 4 + 2 * cands * d * 4
    elif config.reciprocal:
        negs = bs * (bs + config.num_uniform_negs) * 4 * 5 * 2
        negs += bs * d * 4 * 8 + 2 * config.num_uniform_negs * d * 4
    else:
        negs = bs * (config.num_batch_negs + config.num_uniform_negs) * 4 * 5 * 2
        negs += bs * d * 4 * 8 + 2 * bs * config.num_uniform_negs * d * 4
    if bag_len > 1:  # a step's bag entries: their ids, rows and gradient rows
        negs = int(negs * bag_len)
    rel = 2 * 2 * model.num_relations * model.width * 4
    io = 2 * BLOCK_BYTES
    return MemoryPlan(emb, edges, workers * negs, rel, io, _mem_available())


def check_memory(config, ws, plan: MemoryPlan) -> None:
    """Refuse a run that does not fit, with the figure and what to change."""
    if plan.available is None or plan.total <= plan.available:
        return
    rest = plan.total - plan.embeddings
    if plan.available > rest:
        # embeddings of all entities, if every type were held whole
        whole = sum(ws.num_entities(t) for t in ws.entity_types)
        held = sum(min(2, ws.num_partitions(t)) * max(ws.table_sizes(t)) for t in ws.entity_types)
        per_entity = plan.embeddings / max(held, 1)
        p = max(2, math.ceil(2 * whole * per_entity / (plan.available - rest)))
        hint = f"re-import with --partitions {p} (num_partitions = {p})"
    elif config.dimension > 4096:
        hint = f"lower dimension ({config.dimension}): every part of the plan grows with it"
    else:
        hint = "lower batch_size, num_batch_negs or num_uniform_negs (or reciprocal = false)"
    raise UserError(
        f"training needs about {plan.total / 2**30:.2f} GiB but only "
        f"{plan.available / 2**30:.2f} GiB is available ({plan.describe()}); "
        f"{hint}"
    )


# =========================================================================== the trainer
@dataclass
class _BucketRecord:
    """What one bucket's units add up to, for its stats line."""

    started: float
    wait0: float
    sums: object = 0  # device array [loss, rhs positive scores, lhs positive scores]
    num_edges: int = 0
    evals: dict = field(default_factory=dict)


class Trainer:
    """Trains (or resumes) the run a config describes. ``device`` overrides the config's
    (``"cpu"``, ``"cuda"``, ``"cuda:N"``; ``"standin"`` in tests); ``device_memory`` bounds
    the bytes of partitions + edges on a device (default on a GPU: 60% of its free memory),
    splitting larger buckets."""

    def __init__(
        self,
        config,
        *,
        device: str | None = None,
        log=None,
        progress=None,
        device_memory: int | None = None,
        lock: bool = True,
    ):
        self.config = config
        self.ws = open_workspace(config)
        # one writer per checkpoint folder (an OS lock: a killed trainer leaves none behind)
        self._lock = lock_folder(config.checkpoint_path) if lock else None
        # the trainer's own layout (interleaved complex numbers); checkpoints stay PBG's
        self.model = build_model(config, self.ws, fast_layout=True)
        self.desc = model_description(config, self.ws, self.model)
        check_edge_split(config, self.ws)
        # the plan refuses a run that cannot fit before anything of its size is allocated
        on_host = (device or config.device or "cpu").startswith("cpu")
        workers = (config.workers or os.cpu_count() or 1) if on_host else 1
        self.plan = memory_plan(config, self.ws, self.model, workers=workers)
        check_memory(config, self.ws, self.plan)
        cpus = os.cpu_count() or 1
        if config.workers is not None and config.workers > 4 * cpus:
            raise ConfigError(
                f"workers: {config.workers} Hogwild workers on {cpus} CPUs would only contend for "
                f"them (each holds its own batch buffers); use at most {4 * cpus}, or leave it unset"
            )
        # numpy, cupy, or the stand-in's module
        self.device, self.xp = array_module_of(device or config.device)
        self.store = storage_dtype(config.dtype)  # embedding tables (float32 or float16)
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.ckpt = Checkpoint(config.checkpoint_path)
        self.ckpt.check_compatible(self.desc, self.ws.id)
        orphans = self.ckpt.orphans()
        if orphans:
            raise UserError(
                f"{self.ckpt.path}: holds checkpoint files ({', '.join(orphans[:3])}"
                f"{', ...' if len(orphans) > 3 else ''}) but no {MANIFEST}: run `pbg checkpoint "
                f"recover {self.ckpt.path}` to resume from the last complete version, or delete "
                "them to start over"
            )
        self.init_ckpt = None
        if not self.ckpt.exists and config.init_path:
            self.init_ckpt = Checkpoint(config.init_path)
            if not self.init_ckpt.exists:
                raise UserError(f"init_path = {config.init_path}: no checkpoint there")
        self.lr = config.lr
        self.params = self._load_shared()
        # relation id -> (lhs type, rhs type) group; most workspaces have one group
        types = [self.ws.relation_types(r) for r in range(self.model.num_relations)]
        self.groups = sorted(set(types))
        self.rel_group = np.array([self.groups.index(t) for t in types], np.int64)
        self.scheduler = BucketScheduler(self.ws, config)
        # featurized types: their bags, on the training device for the whole run
        self.bags = {
            t: DeviceBags(self.ws.bags(t), self._dev_ints)
            for t in self.ws.entity_types
            if self.ws.is_featurized(t)
        }
        if self.device.type == "cpu":
            # unpartitioned types stay resident throughout (saved when a bucket trains them)
            keep = [self._part_key(t, 0) for t in self.ws.entity_types if self.ws.num_partitions(t) == 1]
            self.placement = HostPlacement(self._load_arrays, self.store, self.lr, keep=keep)
            workers = config.workers or os.cpu_count() or 1
        else:
            # a device run swaps partitions and edges through the PartitionSwapper; the
            # budget (bytes of tables + state + edges on the device) decides sub-buckets
            if device_memory is None and self.device.type == "cuda":
                free = self.xp.cuda.runtime.memGetInfo()[0]
                device_memory = int(0.6 * free)  # the rest: batch temporaries, cupy pool
            self.placement = DevicePlacement(
                self.device, self._load_arrays, config.dtype, self.lr, device_memory
            )
            workers = 1  # one thread queues the device's work: no Hogwild
        self.batches = BatchTrainer(
            self.model,
            config,
            self.params,
            self.xp,
            workers=workers,
            all_negs_relations=[r.all_negs for r in relation_specs(config, self.ws)],
        )
        self.peak_embedding_bytes = 0
        self.peak_table_bytes = 0

    @property
    def workers(self) -> int:
        return self.batches.workers

    # -- parameters ---------------------------------------------------------------
    def _dev(self, a, dtype=np.float32):
        return to_training_device(a, self.device, dtype)

    def _dev_ints(self, a):
        return to_training_device(a, self.device, np.int64)

    def _load_shared(self) -> SharedParams:
        """Relation parameters and global embeddings: from the checkpoint, the warm start,
        or their identity/zero init (in the trainer's layout, on the training device)."""
        xp, m, f32 = self.xp, self.model, np.float32
        src = self.ckpt if self.ckpt.exists else self.init_ckpt
        theta = m.init_relations(xp, f32)
        states, d = None, {}
        if src is not None and src.has_relations():
            d = src.load_relations()
            if d["theta_r"].shape == theta[0].shape:
                theta = [self._dev(m.to_internal(d[k], "theta")) for k in ("theta_r", "theta_l")]
                states = [self._dev(m.to_internal(d[k], "theta")) for k in ("state_r", "state_l")]
            elif src is self.ckpt:
                raise UserError(
                    f"{self.ckpt.path}: relation parameters have shape "
                    f"{d['theta_r'].shape}, the model needs {theta[0].shape}"
                )
        theta = [ember.tensor(t, requires_grad=True) for t in theta]
        # global_emb: one learned vector per entity type, added to each of its embeddings
        glob, glob_states = {}, {}
        if self.config.global_emb:
            for t in self.ws.entity_types:
                g = xp.zeros(m.dim, f32)
                if f"global_{t}" in d:
                    g = self._dev(m.to_internal(d[f"global_{t}"]))
                    glob_states[t] = self._dev(m.to_internal(d[f"global_state_{t}"]))
                glob[t] = ember.tensor(g, requires_grad=True)
        lr = self.config.relation_lr or self.config.lr
        return SharedParams(theta, glob, lr, states, glob_states)

    def _fresh(self, etype, part, n):
        seed = zlib.crc32(f"{self.config.seed}/{etype}/{part}".encode())
        rng = np.random.default_rng(seed)
        emb = rng.standard_normal((n, self.model.dim), np.float32)
        emb *= self.config.init_scale
        return emb, np.zeros(n, np.float32)

    def _load_arrays(self, etype, part, dtype=np.float32, into=None):
        """(embeddings, row-Adagrad state) of a partition as host arrays in the trainer's
        layout, the embeddings of ``dtype`` (the state float32): from the checkpoint, the
        init checkpoint, or fresh. Read into the table itself, block by block: a load
        holds the table and one block (and, where `pbg import --append` added entities,
        the fresh table their rows are taken from). ``into``: a list holding the (emb, state)
        arrays of a partition no longer resident, taken out of it and read into where
        their shapes and dtypes fit, else let go before a new table is made (fresh memory
        costs its page faults: 0.75-1.3 CPU-s for 500 MB on the machine of December 2026,
        against 0.04 s for a copy into memory already touched)."""
        n = self.ws.table_sizes(etype)[part]  # a featurized type: its feature rows
        spare = into.pop() if into else None
        for src in (self.ckpt, self.init_ckpt):
            if src is not None and src.exists and src.has_partition(etype, part):
                shape = (n, self.model.dim)
                fits = spare is not None and spare[0].shape == shape and spare[0].dtype == dtype
                if fits and len(spare[1]) == n:
                    emb, state = spare
                else:
                    spare = None  # freed first: never a third table of the type
                    emb, state = np.empty(shape, dtype), np.zeros(n, np.float32)
                m = src.read_partition_into(
                    etype, part, emb, state, lambda b, out: self.model.to_internal(b, out=out)
                )
                state[m:] = 0
                if m < n:  # entities `pbg import --append` added start fresh
                    emb[m:] = self._fresh(etype, part, n)[0][m:]
                return emb, state
        spare = None  # a fresh partition: the dropped one's memory goes first
        emb, state = self._fresh(etype, part, n)
        return emb.astype(dtype, copy=False), state

    # -- checkpoints ----------------------------------------------------------------------
    def _save(self, arrays: dict, position: Position, epoch_done=None):
        """Checkpoint partitions ``arrays[key] = (emb, state)`` (host arrays) and the shared
        parameters, in PyTorch-BigGraph's layout and float32 whatever the trainer's."""
        ck, pub = self.ckpt, self.model.to_public
        ck.begin(durable=epoch_done is not None)
        for key, (emb, state) in arrays.items():  # converted block by block as written
            ck.save_partition(key[0], key[1], RowMap(emb, lambda b: pub(_f32(b))), _f32(state))
        self._commit(position, epoch_done)

    def _commit(self, position: Position, epoch_done=None):
        """The shared parameters, then the manifest that completes the version begun."""
        ck, pub, p = self.ckpt, self.model.to_public, self.params
        host = lambda a: to_host(a)
        zeros = np.zeros_like(host(p.theta[0]._data))
        rel = {}
        for side, t in zip("rl", p.theta):
            st = p.state_of(t)
            rel[f"theta_{side}"] = pub(host(t._data), "theta")
            rel[f"state_{side}"] = pub(host(st), "theta") if st is not None else zeros
        for t, g in p.glob.items():
            st = p.state_of(g)
            rel[f"global_{t}"] = pub(host(g._data))
            rel[f"global_state_{t}"] = pub(host(st)) if st is not None else np.zeros_like(host(g._data))
        ck.commit(
            config=self.config.to_dict(),
            model=self.desc,
            position=position.to_dict(),
            relations=rel,
            workspace_id=self.ws.id,
            extra={"relation_names": self.ws.relation_names},
        )
        interval = self.config.checkpoint_preservation_interval
        if epoch_done is not None and interval and epoch_done % interval == 0:
            ck.preserve(epoch_done)

    # -- buckets -> units -----------------------------------------------------------------
    def _read_edges(self, task: BucketTask):
        """One edge chunk of a bucket, shuffled, on the host; runs on the reader thread
        while the previous bucket trains."""
        d = self.ws.read_bucket(edge_split(self.config), *task.bucket)
        n = len(d["lhs"])
        pos = task.position
        lo, hi = pos.edge_chunk * n // task.num_chunks, (pos.edge_chunk + 1) * n // task.num_chunks
        seed = zlib.crc32(f"{self.config.seed}/{pos.epoch}/{pos.edge_chunk}/{task.bucket}".encode())
        perm = lo + np.random.default_rng(seed).permutation(hi - lo)
        # host arrays: the CPU trains on them, a device run copies them through the swapper
        return {key: v[perm].astype(np.int64 if key != "weight" else np.float32) for key, v in d.items()}

    def _groups(self, edges):
        """Split a bucket's edges by the (lhs type, rhs type) of their relation."""
        if len(self.groups) == 1:
            return [(self.groups[0], edges)]
        g = self.rel_group[to_host(edges["rel"])]
        out = []
        for gi, types in enumerate(self.groups):
            sel = np.flatnonzero(g == gi)  # edges are grouped on the host
            if len(sel):
                out.append((types, {k: v[sel] for k, v in edges.items()}))
        return out

    def _part_key(self, etype, p):
        return (etype, p if self.ws.num_partitions(etype) > 1 else 0)

    def _units(self, tasks):
        """Every bucket's units, in order; with a scheduler that allows it (``lookahead``),
        the next bucket's edges are read while this one trains."""
        ws, budget = self.ws, self.placement.budget
        ahead = self.scheduler.lookahead
        row = self.model.dim * self.store.itemsize + 4  # a table row and its accumulator
        with ThreadPoolExecutor(1, thread_name_prefix="ember-edges") as reader:
            task = next(tasks, None)
            fut = reader.submit(self._read_edges, task) if task else None
            while task is not None:
                edges = fut.result()
                nxt = next(tasks, None) if ahead else None
                if nxt is not None:
                    fut = reader.submit(self._read_edges, nxt)
                n_eval = int(len(edges["lhs"]) * self.config.eval_fraction)
                held = {k: v[:n_eval] for k, v in edges.items()}
                edges = {k: v[n_eval:] for k, v in edges.items()}
                held_groups = dict(self._groups(held)) if n_eval else {}
                pieces = []
                for (lt, rt), e in self._groups(edges):
                    h = held_groups.get((lt, rt))
                    lk, rk = self._part_key(lt, task.bucket[0]), self._part_key(rt, task.bucket[1])
                    pieces.append(Piece(lk, rk, e, h if h is not None and len(h["lhs"]) else None))
                rows = {k: ws.table_sizes(k[0])[k[1]] for p in pieces for k in (p.lhs, p.rhs)}
                units = bucket_units(task, pieces, rows, row_bytes=row, budget=budget, log=self.log)
                self._check_unsplit(units)
                yield from units
                if not ahead:  # the next bucket is asked for once this one is done
                    nxt = next(tasks, None)
                    fut = reader.submit(self._read_edges, nxt) if nxt is not None else None
                task = nxt

    def _check_unsplit(self, units) -> None:
        """Sub-buckets cut tables into row ranges, and a featurized type's entities are
        bags of any of its rows: its feature table must fit the device budget whole."""
        for u in units:
            cut = sorted({k[0] for k in u.parts if u.split and k[0] in self.bags})
            if cut:
                raise UserError(
                    f"bucket {u.task.bucket}: the feature table of featurized type {cut[0]!r} "
                    f"({self.ws.num_features(cut[0]):,} rows) and the bucket exceed the device "
                    f"budget of {self.placement.budget:,} bytes; sub-buckets split tables by "
                    "rows, which a featurized type (each entity a bag of any rows) cannot be: "
                    "raise the budget, lower dimension, or train on the CPU"
                )

    def _vectors(self, p):
        """A resident partition's entity vectors (without global_emb): its table, or for a
        featurized type the mean rows of its bags."""
        if p.bags is None:
            return p.emb
        return entity_vectors(p.emb, p.bags.offsets, p.bags.features)

    # -- the loop -------------------------------------------------------------------------
    def train(self) -> dict:
        cfg, ws = self.config, self.ws
        check_memory(cfg, ws, self.plan)
        self.log(self.plan.describe())
        start = Position.from_dict((self.ckpt.manifest or {}).get("position"))
        if self.ckpt.exists:
            self.log(
                f"resuming from {self.ckpt.path} at epoch {start.epoch}, edge chunk "
                f"{start.edge_chunk}, bucket {start.bucket}"
            )
        t0 = time.perf_counter()
        self._bar = self._progress_bar(start) if self.progress else None
        # the Hogwild workers are the parallelism: BLAS runs one thread in each (many
        # small products per batch, where BLAS threads only add contention)
        with threadpool_limits(1, user_api="blas"):
            try:
                trained = self._run(self.scheduler.tasks(start))
                if not self.ckpt.exists:  # nothing to train (0 epochs): still leave a checkpoint
                    self._first_checkpoint(Position(cfg.num_epochs, 0, 0))
            finally:
                self.batches.close()
                self.ckpt.drop_spares()
                if self._bar is not None:
                    self._bar.close()
                if self._lock is not None:
                    self._lock.release()
        wall = time.perf_counter() - t0
        st = self.placement.stats()
        return {
            "edges": trained,
            "seconds": wall,
            "edges_per_s": trained / wall if wall else 0,
            "epochs": self.ckpt.manifest["position"]["epoch"],
            "checkpoint": str(self.ckpt.path),
            "version": self.ckpt.version,
            "peak_embedding_bytes": self.peak_embedding_bytes,
            "peak_table_bytes": self.peak_table_bytes,
            "memory_plan_bytes": self.plan.total,
            "workers": self.workers,
            "device": str(self.device),
            "dtype": cfg.dtype,
            **(
                {"transfer_wait_seconds": st["wait_seconds"], "peak_device_bytes": st["peak_resident_bytes"]}
                if st
                else {}
            ),
        }

    def _first_checkpoint(self, position: Position):
        """The checkpoint of a run that trained nothing: every partition as initialised."""
        ws = self.ws
        keys = {self._part_key(t, p) for t in ws.entity_types for p in range(ws.num_partitions(t))}
        for key in sorted(keys):  # one at a time: memory stays bounded
            self._save({key: self._load_arrays(*key)}, position)

    def _run(self, tasks) -> int:
        """The bucket loop: acquire a unit, prefetch the next while it trains, train its
        pieces, give it back; a bucket's last unit ends with its stats line and checkpoint."""
        units = self._units(tasks)
        try:
            return self._loop(units)
        finally:
            units.close()  # stops the edge reader, whatever happened

    def _loop(self, units) -> int:
        pl, trained, rec = self.placement, 0, None
        ahead = self.scheduler.lookahead
        nxt = next(units, None)
        if nxt is not None:
            pl.prefetch(nxt)
        while nxt is not None:
            cur = nxt
            if cur.first:
                rec = _BucketRecord(time.perf_counter(), pl.stats().get("wait_seconds", 0.0))
            tables, pieces = pl.acquire()
            for key, table in tables.items():  # featurized types' tables: their bags
                table.bags = self.bags.get(key[0])
            tb, te = pl.resident_bytes()
            self.peak_table_bytes = max(self.peak_table_bytes, tb)
            self.peak_embedding_bytes = max(self.peak_embedding_bytes, te)
            # a unit of this bucket may come next whatever the scheduler; another bucket
            # only with lookahead (asking early would lock its partitions elsewhere)
            nxt = next(units, None) if ahead or not cur.last else None
            early = nxt is not None and pl.can_prefetch_early(cur, nxt)
            if early:
                pl.prefetch(nxt)
            pos = cur.task.position
            for i, piece in enumerate(pieces):
                lp, rp = tables[piece.lhs], tables[piece.rhs]
                stream = (pos.epoch, pos.edge_chunk, pos.bucket, cur.index, i)
                if piece.held:
                    rec.evals["eval_before"] = self._held_out(lp, rp, piece.held, (*stream, 0))
                rec.sums = rec.sums + self.batches.train(lp, rp, piece.edges, stream)
                if piece.held:
                    rec.evals["eval_after"] = self._held_out(lp, rp, piece.held, (*stream, 1))
            rec.num_edges += cur.num_edges
            arrays = pl.release(cur)
            if cur.last:
                trained += rec.num_edges
                self._finish_bucket(cur.task, rec, arrays)
                if not ahead:
                    nxt = next(units, None)
            if nxt is not None and not early:
                pl.prefetch(nxt)
            # no reference to this unit's partitions may outlive it: acquire() drops those
            # the next one does not need before it loads its own (at most two of a type)
            tables = table = lp = rp = arrays = None
        pl.close()
        return trained

    def _held_out(self, lp, rp, edges, stream):
        cfg, glob = self.config, self.params.glob
        sampler = Sampler(self.xp, cfg.seed, *stream, 1 << 40)  # a stream of its own
        num_batch = cfg.num_batch_negs if cfg.eval_num_batch_negs is None else cfg.eval_num_batch_negs
        num_uniform = cfg.num_uniform_negs if cfg.eval_num_uniform_negs is None else cfg.eval_num_uniform_negs
        return held_out_metrics(
            self.model,
            [t._data for t in self.params.theta],
            (self._vectors(lp), self._vectors(rp)),
            (glob[lp.etype]._data if glob else 0, glob[rp.etype]._data if glob else 0),
            edges,
            sampler=sampler,
            num_uniform=num_uniform,
            num_batch=num_batch,
        )

    def _finish_bucket(self, task: BucketTask, rec: _BucketRecord, arrays: dict):
        """A bucket's stats line, then its checkpoint."""
        stats = self._bucket_stats(task, rec)
        self._check_finite(task, stats)
        # the stats line first: a kill between the two repeats one line, never loses one
        self.ckpt.append_stats(stats)
        self._save(arrays, task.after, epoch_done=task.epoch_done)
        self.scheduler.done(task)

    def _check_finite(self, task: BucketTask, stats: dict) -> None:
        """Stop at the first bucket whose loss is NaN or infinite (checked once per
        bucket, on the sums already on the host), before its checkpoint is written."""
        if np.isfinite(stats["loss"]):
            return
        have = f"version {self.ckpt.version}" if self.ckpt.exists else "none yet"
        raise UserError(
            f"training diverged: the loss of bucket {tuple(task.bucket)} in epoch "
            f"{task.position.epoch + 1} is {stats['loss']} (is lr = {self.config.lr} too large?); "
            f"stopped before writing its checkpoint: {self.ckpt.path} keeps the last good one ({have})"
        )

    def _bucket_stats(self, task: BucketTask, rec: _BucketRecord) -> dict:
        """A bucket's line of ``training_stats.jsonl`` (also logged with ``verbose``, and
        shown on a terminal)."""
        n, dt = rec.num_edges, time.perf_counter() - rec.started
        sums = to_host(rec.sums) if not isinstance(rec.sums, int) else np.zeros(3)
        pos = task.position
        stats = {
            "epoch": pos.epoch,
            "edge_chunk": pos.edge_chunk,
            "bucket": list(task.bucket),
            "edges": n,
            "loss": float(sums[0]) / max(n, 1),
            "edges_per_s": n / dt if dt else None,
            "pos_score_rhs": float(sums[1]) / max(n, 1),
            "pos_score_lhs": float(sums[2]) / max(n, 1),
            "seconds": round(dt, 4),
        }
        st = self.placement.stats()
        if st:
            stats["transfer_wait_seconds"] = round(st["wait_seconds"] - rec.wait0, 6)
        stats.update(version=self.ckpt.version + 1, **rec.evals)
        if self.config.verbose:
            self.log(json.dumps(stats))
        if getattr(self, "_bar", None) is not None:
            bar, per_epoch = self._bar, max(self._epoch_edges, 1)
            bar.set_description(f"epoch {pos.epoch + 1}/{self.config.num_epochs}", refresh=False)
            bar.update(n)
            rate = bar.format_dict.get("rate") or (n / dt if dt else 0)
            left = per_epoch - (bar.n - self._bar_base) % per_epoch if rate else 0
            bar.set_postfix_str(f"epoch ETA {left / rate if rate else 0:.0f}s, loss {stats['loss']:.4f}")
        return stats

    def _progress_bar(self, start: Position):
        """A bar over the run's edges on stderr (tqdm): edges/s, the ETA of the whole run,
        and of the epoch in its postfix."""
        from tqdm import tqdm

        from ember._io import BAR_FORMAT

        per_epoch = int(sum(self.scheduler.sizes.values()) * (1 - self.config.eval_fraction))
        self._epoch_edges = per_epoch
        # a resumed epoch: the buckets before the start position are done (edge chunks aside)
        done = 0
        if start.epoch < self.config.num_epochs:
            order = self.scheduler.order(start.epoch)[: start.bucket]
            done = int(sum(self.scheduler.sizes.get(b, 0) for b in order) * (1 - self.config.eval_fraction))
        total = max(0, (self.config.num_epochs - start.epoch) * per_epoch - int(done))
        self._bar_base = -int(done)
        return tqdm(
            total=total,
            unit="edge",
            unit_scale=True,
            desc=f"epoch {start.epoch + 1}/{self.config.num_epochs}",
            dynamic_ncols=True,
            bar_format=BAR_FORMAT,
        )


def _f32(a):
    return a if a.dtype == np.float32 else a.astype(np.float32)


def train(
    config, *, device: str | None = None, log=None, progress=None, device_memory: int | None = None
) -> dict:
    """Train (or resume) the run a config describes; returns a summary dict.
    ``device`` overrides the config's (``"cpu"``, ``"cuda"``, ``"cuda:N"``; ``"standin"``
    in tests); ``device_memory`` bounds the bytes of partitions + edges on the device
    (default on a GPU: 60% of its free memory), splitting larger buckets."""
    return Trainer(config, device=device, log=log, progress=progress, device_memory=device_memory).train()
