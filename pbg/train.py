"""The bucket trainer: epochs -> edge chunks -> buckets -> batches, bounded memory.

>>> from ember.pbg.config import load_config
>>> from ember.pbg.train import train
>>> summary = train(load_config("ws/config.toml"))          # doctest: +SKIP

Memory: at most two partitions of each partitioned entity type are resident (plus the
unpartitioned types), with their row-Adagrad state, plus one bucket of edges and the
next one being prefetched. Before training, `memory_plan` states the bytes that needs
and refuses a run that does not fit, suggesting a partition count that does.

The hot path is `Trainer._step`: one batch, chunked negatives, one fused autograd node
(`ember.pbg.model.ChunkedLoss`) for both sides' scores and losses, then row-sparse
gradients (the gathered rows' gradients with their row ids, a `RowSparseGrad`) applied
by `ember.optim.RowAdagrad` to the touched rows only, and relation parameters by Adagrad.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import ember
from ember import sparse
from ember._backend import Device, module_for, to_device
from ember._tensor import _wrap
from ember.autograd import Function
from ember.errors import ConfigError, UserError
from ember.optim import Adagrad, RowAdagrad
from ember.pbg.checkpoint import Checkpoint
from ember.pbg.device import PartitionSwapper, split_bucket, storage_dtype
from ember.pbg.model import BatchPlan, ChunkedLossRows, Model


# =========================================================================== setup
def open_workspace(config):
    """The workspace a config trains on: the folder above ``entity_path``."""
    from ember.partitioning import Workspace

    root = Path(config.entity_path).parent
    if not (root / "workspace.json").is_file():
        raise UserError(
            f"{root}: not a workspace made by `pbg import` (no workspace.json "
            f"next to entity_path = {config.entity_path})"
        )
    ws = Workspace.open(root)
    for t, e in config.entities.items():
        if t not in ws.entity_types:
            raise ConfigError(f"entities.{t}: no such entity type in workspace {root}")
        if e.num_partitions != ws.num_partitions(t):
            raise ConfigError(
                f"entities.{t}.num_partitions: {e.num_partitions} in the config, but the "
                f"workspace {root} was imported with {ws.num_partitions(t)}; re-import with "
                f"--partitions {e.num_partitions}"
            )
    return ws


def edge_split(config) -> str:
    return Path(config.edge_paths[0]).name


def relation_specs(config, ws) -> list:
    """The config's relation entry (operator, weight, all_negs) of each workspace relation
    id: the single entry with dynamic_relations, else the entry of the same name (the
    same index when the names differ, as in a config written for another import)."""
    rels = list(config.relations)
    names = ws.relation_names
    if config.dynamic_relations:
        return [rels[0]] * len(names)
    by_name = {r.name: r for r in rels}
    if all(n in by_name for n in names):
        return [by_name[n] for n in names]
    if len(rels) != len(names):
        raise ConfigError(
            f"relations: the config lists {len(rels)} relation types, the "
            f"workspace has {len(names)} ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}); list them all, or set "
            "dynamic_relations = true"
        )
    return rels


def build_model(config, ws, *, fast_layout: bool = False) -> Model:
    try:
        storage_dtype(config.dtype)  # float32 or float16 tables; bfloat16 refused with why
    except ValueError as e:
        raise ConfigError(f"dtype: {e}") from None
    specs = relation_specs(config, ws)
    dims = {t: config.entity_dimension(t) for t in config.entities}
    first = next(iter(dims))
    for t, d in dims.items():
        if d != dims[first]:
            raise ConfigError(
                f"entities.{t}.dimension: {d} differs from the dimension of {first!r} "
                f"({dims[first]}); Ember trains one dimension for all entity types: remove "
                "the per-type dimension overrides"
            )
    return Model(
        [r.operator for r in specs],
        config.comparator,
        config.loss_fn,
        dims[first],
        len(specs),
        margin=config.margin,
        regularization_coef=config.regularization_coef,
        fast_layout=fast_layout,
        bias=config.bias,
        relation_weights=[r.weight for r in specs],
    )


def model_description(config, ws, model) -> dict:
    return {
        "dimension": model.dim,
        "comparator": config.comparator,
        "operators": model.operator_names,
        "entity_counts": {t: ws.partition_sizes(t) for t in sorted(ws.entity_types)},
        "num_relations": model.num_relations,
        "dtype": config.dtype,
    }


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
    edges: int  # the current bucket and the prefetched one
    negatives: int  # one batch's scores, gradients and gathered rows
    relations: int
    available: int | None

    @property
    def total(self) -> int:
        return self.embeddings + self.edges + self.negatives + self.relations

    def describe(self) -> str:
        g = lambda b: f"{b / 2**20:,.1f} MiB"
        return (
            f"memory plan: {g(self.total)} (embeddings+optimizer {g(self.embeddings)}, "
            f"edges {g(self.edges)}, negatives {g(self.negatives)}, relations "
            f"{g(self.relations)}); available {g(self.available) if self.available else '?'}"
        )


def memory_plan(config, ws, model) -> MemoryPlan:
    """Bytes the run needs, computed before it starts."""
    d = model.dim
    itemsize = storage_dtype(config.dtype).itemsize  # the tables; the state stays float32
    emb = 0
    for t in ws.entity_types:
        sizes = ws.partition_sizes(t)
        held = min(2, len(sizes))
        emb += held * max(sizes, default=0) * (d * itemsize + 4)
    buckets = ws.buckets(edge_split(config))
    max_bucket = max(buckets.values(), default=0)
    k = config.num_edge_chunks or max(1, math.ceil(max_bucket / config.max_edges_per_chunk))
    edges = 2 * math.ceil(max_bucket / k) * (4 * 4 + 8)
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
    rel = 2 * 2 * model.num_relations * model.width * 4
    return MemoryPlan(emb, edges, negs, rel, _mem_available())


def check_memory(config, ws, plan: MemoryPlan) -> None:
    """Refuse a run that does not fit, with the figure and what to change."""
    if plan.available is None or plan.total <= plan.available:
        return
    rest = plan.total - plan.embeddings
    if plan.available > rest:
        # embeddings of all entities, if every type were held whole
        whole = sum(ws.num_entities(t) for t in ws.entity_types)
        held = sum(min(2, ws.num_partitions(t)) * max(ws.partition_sizes(t)) for t in ws.entity_types)
        per_entity = plan.embeddings / max(held, 1)
        p = max(2, math.ceil(2 * whole * per_entity / (plan.available - rest)))
        hint = f"re-import with --partitions {p} (num_partitions = {p})"
    else:
        hint = "lower batch_size, num_batch_negs or num_uniform_negs (or reciprocal = false)"
    raise UserError(
        f"training needs about {plan.total / 2**30:.2f} GiB but only "
        f"{plan.available / 2**30:.2f} GiB is available ({plan.describe()}); "
        f"{hint}"
    )


# =========================================================================== partitions
class Partition:
    """One resident (entity type, partition): the table, its optimizer, its id."""

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


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


_M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class _Sampler:
    """Uniform entity ids drawn on the training device: a counter-based generator
    (splitmix64 of a stream key plus a running counter) written in whole-array ops, so
    numpy, cupy and the stand-in draw the very same ids (a GPU run trains on the CPU
    run's negatives) and no id is made on the host and copied over."""

    def __init__(self, xp, *words: int):
        key = 0
        for w in words:
            key = _mix64(key ^ (int(w) & _M64))
        self.xp, self.key, self.count = xp, key, 0

    def integers(self, n: int, shape):
        xp = self.xp
        size = math.prod(shape)
        x = xp.arange(self.count, self.count + size, dtype=xp.uint64)
        self.count += size
        x *= xp.uint64(0x9E3779B97F4A7C15)
        x += xp.uint64(self.key)
        x ^= x >> xp.uint64(30)
        x *= xp.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> xp.uint64(27)
        x *= xp.uint64(0x94D049BB133111EB)
        x ^= x >> xp.uint64(31)
        return (x % xp.uint64(max(n, 1))).astype(xp.int64).reshape(shape)


class _Upcast(Function):
    """float16 table rows -> float32 for the arithmetic; the gradient passes through as
    float32 (RowAdagrad then updates the float16 rows with float32 arithmetic)."""

    raw = True

    def forward(ctx, x):
        return x.astype(np.float32)

    def backward(ctx, g):
        return (g,)


def _f32(a):
    return a if a.dtype == np.float32 else a.astype(np.float32)


@dataclass
class _Unit:
    """What one device activation trains: a bucket, or one sub-bucket of it.
    ``parts``: device keys, ``(etype, part)`` or ``(etype, part, lo, hi)`` for a row
    range; ``pieces``: ``(lhs key, rhs key, prefix)`` with that piece's edges under
    ``prefix + name`` in ``edges`` (host arrays, copied by the swapper)."""

    item: tuple
    parts: list
    pieces: list
    edges: dict
    n: int
    split: bool = False
    first: bool = True
    last: bool = True


# =========================================================================== the trainer
class Trainer:
    def __init__(
        self, config, *, device: str | None = None, log=None, progress=None, device_memory: int | None = None
    ):
        self.config = config
        self.ws = open_workspace(config)
        # the trainer's own layout (interleaved complex numbers); checkpoints stay PBG's
        self.model = build_model(config, self.ws, fast_layout=True)
        self.desc = model_description(config, self.ws, self.model)
        self.device = Device(device or config.device)
        self.xp = module_for(self.device)  # numpy, cupy, or the stand-in's module
        self.dtype = np.float32  # arithmetic, optimizer state, relation parameters
        self.store = storage_dtype(config.dtype)  # embedding tables (float32 or float16)
        # a device run swaps partitions and edges through the PartitionSwapper; the budget
        # (bytes of tables + state + edges on the device) decides sub-buckets
        self.device_memory = device_memory
        if self.device.type != "cpu":
            if device_memory is None and self.device.type == "cuda":
                free = self.xp.cuda.runtime.memGetInfo()[0]
                self.device_memory = int(0.6 * free)  # the rest: batch temporaries, cupy pool
            self.swapper = PartitionSwapper(self.device, dtype=config.dtype, memory_budget=self.device_memory)
        else:
            self.swapper = None
        self.peak_table_bytes = 0
        self._holder: dict = {}
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.ckpt = Checkpoint(config.checkpoint_path)
        self.ckpt.check_compatible(self.desc)
        self.init_ckpt = None
        if not self.ckpt.exists and config.init_path:
            self.init_ckpt = Checkpoint(config.init_path)
            if not self.init_ckpt.exists:
                raise UserError(f"init_path = {config.init_path}: no checkpoint there")
        self.resident: dict[tuple[str, int], Partition] = {}
        self.peak_embedding_bytes = 0
        self.lr = config.lr
        self.rel_lr = config.relation_lr or config.lr
        self._init_relations()
        self.plan = memory_plan(config, self.ws, self.model)
        # relation id -> (lhs type, rhs type) group; most workspaces have one group
        types = [self.ws.relation_types(r) for r in range(self.model.num_relations)]
        self.groups = sorted(set(types))
        self.rel_group = np.array([self.groups.index(t) for t in types], np.int64)
        self.chunk = config.num_batch_negs or 50
        # relations[i].all_negs: those relations' edges train 1-vs-all (every entity of the
        # partition a negative, one matmul per side), the others with sampled negatives
        self.rel_all_negs = np.array([r.all_negs for r in relation_specs(config, self.ws)], bool)
        self.all_negs = bool(self.rel_all_negs.any())
        self.workers = config.workers or os.cpu_count() or 1
        if self.swapper is not None:  # one thread queues the device's work: no Hogwild
            self.workers = 1
        self._lock = threading.Lock()
        self._seq = 0
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ember-hogwild")

    # -- parameters ---------------------------------------------------------------
    def _init_relations(self):
        xp = self.xp
        src = self.ckpt if self.ckpt.exists else self.init_ckpt
        theta = self.model.init_relations(xp, self.dtype)
        states, d = None, {}
        if src is not None and src.has_relations():
            d = src.load_relations()
            if d["theta_r"].shape == theta[0].shape:
                m = self.model
                theta = [self._dev(m.to_internal(d[k], "theta")) for k in ("theta_r", "theta_l")]
                states = [self._dev(m.to_internal(d[k], "theta")) for k in ("state_r", "state_l")]
            elif src is self.ckpt:
                raise UserError(
                    f"{self.ckpt.path}: relation parameters have shape "
                    f"{d['theta_r'].shape}, the model needs {theta[0].shape}"
                )
        self.theta = [ember.tensor(t, requires_grad=True) for t in theta]
        # global_emb: one learned vector per entity type, added to each of its embeddings
        self.glob = {}
        glob_states = {}
        if self.config.global_emb:
            for t in self.ws.entity_types:
                g = xp.zeros(self.model.dim, self.dtype)
                if src is not None and src.has_relations() and f"global_{t}" in d:
                    g = self._dev(self.model.to_internal(d[f"global_{t}"]))
                    glob_states[t] = self._dev(self.model.to_internal(d[f"global_state_{t}"]))
                self.glob[t] = ember.tensor(g, requires_grad=True)
        self.rel_opt = Adagrad(self.theta + list(self.glob.values()), lr=self.rel_lr)
        if states is not None:
            for t, s in zip(self.theta, states):
                self.rel_opt.state[t] = {"step": 0, "sum": ember.tensor(s)}
        for t, s in glob_states.items():
            self.rel_opt.state[self.glob[t]] = {"step": 0, "sum": ember.tensor(s)}

    def _dev(self, a, dtype=np.float32):
        """A host array copied to the training device (explicitly: never a silent mix)."""
        a = np.asarray(a, dtype)
        return a if self.device.type == "cpu" else to_device(np.array(a), self.device)

    def _fresh(self, etype, part, n):
        seed = zlib.crc32(f"{self.config.seed}/{etype}/{part}".encode())
        rng = np.random.default_rng(seed)
        emb = rng.standard_normal((n, self.model.dim), np.float32)
        emb *= self.config.init_scale
        return emb, np.zeros(n, np.float32)

    def _load(self, etype, part) -> Partition:
        emb, state = self._load_arrays(etype, part)
        return Partition(etype, part, self._dev(emb, self.store), self._dev(state), self.lr)

    def _load_arrays(self, etype, part):
        """(embeddings, row-Adagrad state) of a partition as float32 host arrays in the
        trainer's layout: from the checkpoint, the init checkpoint, or fresh."""
        n = self.ws.partition_sizes(etype)[part]
        emb, state = self._fresh(etype, part, n)
        for src in (self.ckpt, self.init_ckpt):
            if src is not None and src.exists and src.has_partition(etype, part):
                e, s = src.load_partition(etype, part)
                if len(e) > n:
                    raise UserError(
                        f"{src.path}: partition {part} of {etype!r} holds {len(e)} "
                        f"entities, the workspace has {n}"
                    )
                emb[: len(e)] = self.model.to_internal(e)  # new entities (append) stay fresh
                state[: len(s)] = s
                break
        return emb, state

    def _ensure(self, needed: set):
        """Make exactly the partitions a bucket needs resident (plus unpartitioned types):
        at most two per type. Evicted partitions were saved when their bucket ended."""
        for key in list(self.resident):
            if key not in needed:
                del self.resident[key]
        for key in needed:
            if key not in self.resident:
                self.resident[key] = self._load(*key)
        self.peak_embedding_bytes = max(
            self.peak_embedding_bytes, sum(p.nbytes for p in self.resident.values())
        )
        self.peak_table_bytes = max(
            self.peak_table_bytes, sum(int(p.emb.nbytes) for p in self.resident.values())
        )

    def _save(self, keys, position, epoch_done=None, arrays=None):
        """Checkpoint partitions ``keys`` (from ``arrays[key] = (emb, state)`` host arrays
        when given, else the resident ones) and the relation parameters; float32 always."""
        ck = self.ckpt
        pub = self.model.to_public
        ck.begin(durable=epoch_done is not None)
        for key in keys:
            if arrays is not None:
                emb, state = arrays[key]
            else:
                emb, state = _host(self.resident[key].emb), _host(self.resident[key].state)
            ck.save_partition(key[0], key[1], pub(_f32(emb)), _f32(state))
        st = [self.rel_opt.state.get(t) for t in self.theta]
        zeros = np.zeros_like(_host(self.theta[0]._data))
        ck.save_relations(
            {  # in PyTorch-BigGraph's layout, whatever the trainer's
                "theta_r": pub(_host(self.theta[0]._data), "theta"),
                "theta_l": pub(_host(self.theta[1]._data), "theta"),
                "state_r": pub(_host(st[0]["sum"]._data), "theta") if st[0] else zeros,
                "state_l": pub(_host(st[1]["sum"]._data), "theta") if st[1] else zeros,
                **{f"global_{t}": pub(_host(g._data)) for t, g in self.glob.items()},
                **{
                    f"global_state_{t}": pub(_host(self.rel_opt.state[g]["sum"]._data))
                    if g in self.rel_opt.state
                    else np.zeros_like(_host(g._data))
                    for t, g in self.glob.items()
                },
            }
        )
        ck.commit(
            config=self.config.to_dict(),
            model=self.desc,
            position=position,
            extra={"relation_names": self.ws.relation_names},
        )
        interval = self.config.checkpoint_preservation_interval
        if epoch_done is not None and interval and epoch_done % interval == 0:
            ck.preserve(epoch_done)

    # -- the hot path ---------------------------------------------------------------
    def _step(self, lp: Partition, rp: Partition, lhs, rhs, rel, weight, rng, one_vs_all=False):
        """One batch (all of whose size is a multiple of the chunk, or one chunk)."""
        xp = self.xp
        cfg = self.config
        n = len(lhs)
        # reciprocal mode: the whole batch is one chunk sharing one large candidate set;
        # one_vs_all (relations with all_negs): one chunk, all the partition's entities
        chunk = n if cfg.reciprocal or one_vs_all else min(self.chunk, n)
        c = n // chunk
        u = 0 if one_vs_all else cfg.num_uniform_negs
        disabled = tuple(
            s for s, off in (("lhs", cfg.disable_lhs_negs), ("rhs", cfg.disable_rhs_negs)) if off
        )
        if one_vs_all:  # every entity of the partition is a candidate: 1-vs-all
            cl_ids = xp.arange(len(lp.emb))[None]
            cr_ids = xp.arange(len(rp.emb))[None]
        elif u:  # drawn on the device (see _Sampler)
            cl_ids = rng.integers(len(lp.emb), (c, u))
            cr_ids = rng.integers(len(rp.emb), (c, u))
        else:
            cl_ids = cr_ids = None
        plan = BatchPlan(
            self.model,
            rel,
            chunk,
            lhs,
            rhs,
            cl_ids,
            cr_ids,
            batch_negs=(not one_vs_all) and cfg.num_batch_negs > 0,
            weight=weight,
            disabled=disabled,
        )
        # One gather per table, ember.sparse.embedding(sparse=True): the table's gradient
        # is one coalesced RowSparseGrad of the touched rows, which RowAdagrad applies to
        # those rows only. plan.layout says which slice of the rows each part is.
        tables = [lp] if lp is rp else [lp, rp]
        side_of = (0, len(tables) - 1, 0, len(tables) - 1)  # lhs, rhs, lhs cand, rhs cand
        ids, off, layout = [[] for _ in tables], [0] * len(tables), []
        for k, a in zip(side_of, (lhs, rhs, cl_ids, cr_ids)):
            if a is None:
                layout.append(None)
                continue
            layout.append((k, off[k], off[k] + a.size, a.shape + (self.model.dim,)))
            off[k] += a.size
            ids[k].append(a.reshape(-1))
        plan.layout = layout
        # per-step leaves sharing the tables' data: Hogwild workers never share a .grad
        leaves = [_wrap(p.emb, True) for p in tables]
        globs = [_wrap(self.glob[p.etype]._data, True) if self.glob else None for p in tables]
        rows = []
        for leaf, i, g in zip(leaves, ids, globs):
            r = sparse.embedding(leaf, i[0] if len(i) == 1 else xp.concatenate(i), sparse=True)
            if r.dtype != np.float32:  # float16 tables: float32 arithmetic and gradients
                r = _Upcast.apply(r)
            rows.append(r + g if g is not None else r)  # global_emb
        theta = [_wrap(t._data, True) for t in self.theta]
        loss = ChunkedLossRows.apply(rows[0], rows[1] if len(rows) > 1 else None, *theta, plan=plan)
        loss.backward()
        with self._lock:  # optimizer steps go one at a time; the scoring above overlaps
            for part, leaf in zip(tables, leaves):
                part.table.grad = leaf.grad
                part.opt.step()
                part.table.grad = None
                if cfg.max_norm:
                    _renorm(xp, part.emb, leaf.grad.indices, cfg.max_norm)
            for t, w in zip(self.theta, theta):
                t.grad = w.grad
            for part, g in zip(tables, globs):
                if g is not None and g.grad is not None:
                    glob = self.glob[part.etype]
                    glob.grad = g.grad if glob.grad is None else glob.grad + g.grad
            self.rel_opt.step()
            for t in self.theta + list(self.glob.values()):
                t.grad = None
        # the loss stays on the device (summed per bucket: one transfer per bucket)
        return loss._data, np.array([plan.pos_sum.get("rhs", 0.0), plan.pos_sum.get("lhs", 0.0)])

    def _held_out_metrics(self, lp, rp, e, block=10000):
        """PBG's per-bucket check on held-out edges (``eval_fraction``): each edge ranked,
        both sides, against ``eval_num_uniform_negs`` uniform entities of the partition."""
        cfg, model, xp = self.config, self.model, self.xp
        k = cfg.eval_num_uniform_negs or cfg.num_uniform_negs or 100
        rng = _Sampler(xp, cfg.seed, self._seq, 7, 1 << 40)
        theta = [t._data for t in self.theta]
        gl = self.glob[lp.etype]._data if self.glob else 0
        gr = self.glob[rp.etype]._data if self.glob else 0
        ranks = []
        for s in range(0, len(e["lhs"]), block):
            lhs, rhs, rel = (e[key][s : s + block] for key in ("lhs", "rhs", "rel"))
            L, R = _f32(lp.emb[lhs]) + gl, _f32(rp.emb[rhs]) + gr
            for side, keep, part, true, g in (("rhs", L, rp, rhs, gr), ("lhs", R, lp, lhs, gl)):
                ids = rng.integers(len(part.emb), (k,))
                S = model.score_candidates(keep, rel, theta, _f32(part.emb[ids]) + g, side)
                pos = model.score_pos(L, R, rel, theta, side)
                S[ids[None, :] == true[:, None]] = xp.nan
                gt = (S > pos[:, None]).sum(1)
                ge = (S >= pos[:, None]).sum(1)
                ranks.append(_host(1 + (gt + ge) / 2))
        r = np.concatenate(ranks)
        return {
            "count": int(len(r)),
            "mrr": float(np.mean(1 / r)),
            "hits@10": float(np.mean(r <= 10)),
            "auc": float(np.mean(1 - (r - 1) / k)),
        }

    def _train_bucket(self, lp, rp, edges, one_vs_all=None):
        """All batches of one bucket's edges (already shuffled)."""
        cfg = self.config
        if one_vs_all is None:  # the edges of all_negs relations go 1-vs-all, apart
            flags = self.rel_all_negs[_host(edges["rel"])] if self.all_negs else None
            if flags is not None and flags.any() and not flags.all():
                return sum(self._train_bucket(lp, rp, _take(edges, flags == f), f) for f in (True, False))
            one_vs_all = flags is not None and bool(flags.all())
        lhs_all, rhs_all, rel_all = edges["lhs"], edges["rhs"], edges["rel"]
        w_all = edges.get("weight")
        n_all = len(lhs_all)
        bs = cfg.batch_size
        starts = list(range(0, n_all, bs))
        self._seq += 1

        def work(worker):
            rng = _Sampler(self.xp, cfg.seed, self._seq, worker)
            loss, total = None, np.zeros(2)
            for start in starts[worker::nw]:
                sl = slice(start, min(start + bs, n_all))
                lhs, rhs, rel = lhs_all[sl], rhs_all[sl], rel_all[sl]
                w = w_all[sl] if w_all is not None else None
                n = len(lhs)
                main = n if cfg.reciprocal or one_vs_all else n - n % min(self.chunk, n)
                parts = [slice(0, main)] + ([slice(main, n)] if main < n else [])
                for p in parts:  # the remainder is one smaller chunk
                    ls, st = self._step(
                        lp, rp, lhs[p], rhs[p], rel[p], None if w is None else w[p], rng, one_vs_all
                    )
                    loss = ls if loss is None else loss + ls
                    total += st
            return loss, total

        nw = min(self.workers, len(starts))
        # Hogwild: workers share the tables; numpy releases the GIL in the heavy ops
        res = [work(0)] if nw <= 1 else list(self._pool.map(work, range(nw)))
        loss = sum(float(_host(ls)) for ls, _ in res if ls is not None)
        return np.array([loss, *sum(st for _, st in res)])

    # -- edges ------------------------------------------------------------------------
    def _read_edges(self, epoch, k, K, bucket):
        """One edge chunk of a bucket, shuffled, on the host; runs on the prefetch
        thread while the previous bucket trains."""
        d = self.ws.read_bucket(edge_split(self.config), *bucket)
        n = len(d["lhs"])
        lo, hi = k * n // K, (k + 1) * n // K
        seed = zlib.crc32(f"{self.config.seed}/{epoch}/{k}/{bucket}".encode())
        perm = lo + np.random.default_rng(seed).permutation(hi - lo)
        # host arrays: the CPU trains on them, a device run copies them through the swapper
        return {key: v[perm].astype(np.int64 if key != "weight" else np.float32) for key, v in d.items()}

    def _bucket_groups(self, edges):
        """Split a bucket's edges by the (lhs type, rhs type) of their relation."""
        if len(self.groups) == 1:
            return [(self.groups[0], edges)]
        g = self.rel_group[_host(edges["rel"])]
        out = []
        for gi, types in enumerate(self.groups):
            sel = np.flatnonzero(g == gi)  # edges are grouped on the host
            if len(sel):
                out.append((types, {k: v[sel] for k, v in edges.items()}))
        return out

    def _part_key(self, etype, p):
        return (etype, p if self.ws.num_partitions(etype) > 1 else 0)

    # -- the loop ---------------------------------------------------------------------
    def train(self) -> dict:
        cfg, ws = self.config, self.ws
        check_memory(cfg, ws, self.plan)
        self.log(self.plan.describe())
        split = edge_split(cfg)
        sizes = ws.buckets(split)
        K = cfg.num_edge_chunks or max(1, math.ceil(max(sizes.values(), default=0) / cfg.max_edges_per_chunk))
        pos = (self.ckpt.manifest or {}).get("position", {"epoch": 0, "edge_chunk": 0, "bucket": 0})
        start = (pos["epoch"], pos["edge_chunk"], pos["bucket"])
        if self.ckpt.exists:
            self.log(
                f"resuming from {self.ckpt.path} at epoch {start[0]}, edge chunk "
                f"{start[1]}, bucket {start[2]}"
            )
        schedule = []
        for epoch in range(cfg.num_epochs):
            order = ws.bucket_order(cfg.bucket_order, cfg.seed + epoch)
            for k in range(K):
                for bi, b in enumerate(order):
                    if (epoch, k, bi) >= start and sizes.get(b, 0) > 0:
                        schedule.append((epoch, k, bi, b, len(order)))
        t0 = time.perf_counter()
        trained = 0
        with _blas_threads(1 if self.workers > 1 else None):
            run = self._run if self.swapper is None else self._run_device
            trained = run(schedule, K)
        if self.progress:
            sys.stderr.write("\n")
        if not self.ckpt.exists:  # nothing to train (0 epochs): still leave a checkpoint
            keys = {self._part_key(t, p) for t in ws.entity_types for p in range(ws.num_partitions(t))}
            for key in keys:  # one at a time: memory stays bounded
                self._ensure({key})
                self._save({key}, {"epoch": cfg.num_epochs, "edge_chunk": 0, "bucket": 0})
        wall = time.perf_counter() - t0
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
            "dtype": self.config.dtype,
            **(
                {
                    "transfer_wait_seconds": self.swapper.stats()["wait_seconds"],
                    "peak_device_bytes": self.swapper.stats()["peak_resident_bytes"],
                }
                if self.swapper is not None
                else {}
            ),
        }

    def _run(self, schedule, K) -> int:
        cfg, ws = self.config, self.ws
        trained = 0
        pool = ThreadPoolExecutor(1, thread_name_prefix="ember-prefetch")
        fut = pool.submit(self._read_edges, *self._edge_args(schedule[0], K)) if schedule else None
        try:
            for i, item in enumerate(schedule):
                epoch, k, bi, bucket, nb = item
                edges = fut.result()
                if i + 1 < len(schedule):
                    fut = pool.submit(self._read_edges, *self._edge_args(schedule[i + 1], K))
                tb = time.perf_counter()
                loss, touched, evals = np.zeros(3), set(), {}
                n_eval = int(len(edges["lhs"]) * cfg.eval_fraction)
                held = {key: v[:n_eval] for key, v in edges.items()}
                edges = {key: v[n_eval:] for key, v in edges.items()}
                groups = self._bucket_groups(edges)
                # every group's partitions at once (at most two per type): a partition one
                # group trained must not be evicted by the next before the bucket is saved
                self._ensure(
                    {self._part_key(t, 0) for t in ws.entity_types if ws.num_partitions(t) == 1}
                    | {self._part_key(types[i], bucket[i]) for types, _ in groups for i in (0, 1)}
                )
                for (lt, rt), e in groups:
                    lk, rk = self._part_key(lt, bucket[0]), self._part_key(rt, bucket[1])
                    touched |= {lk, rk}
                    lp_, rp_ = self.resident[lk], self.resident[rk]
                    h = _select_group(held, self, (lt, rt)) if n_eval else None
                    if h is not None:
                        evals["eval_before"] = self._held_out_metrics(lp_, rp_, h)
                    loss += self._train_bucket(lp_, rp_, e)
                    if h is not None:
                        evals["eval_after"] = self._held_out_metrics(lp_, rp_, h)
                n = len(edges["lhs"])
                trained += n
                dt = time.perf_counter() - tb
                nxt = (epoch, k, bi + 1)
                if bi + 1 == nb:
                    nxt = (epoch, k + 1, 0) if k + 1 < K else (epoch + 1, 0, 0)
                done = epoch + 1 if nxt[0] == epoch + 1 else None
                stats = {
                    "epoch": epoch,
                    "edge_chunk": k,
                    "bucket": list(bucket),
                    "edges": n,
                    "loss": loss[0] / max(n, 1),
                    "edges_per_s": n / dt if dt else None,
                    "pos_score_rhs": loss[1] / max(n, 1),
                    "pos_score_lhs": loss[2] / max(n, 1),
                    "seconds": round(dt, 4),
                    "version": self.ckpt.version + 1,
                    **evals,
                }
                # the stats line first: a kill between the two repeats one line, never loses one
                self.ckpt.append_stats(stats)
                self._save(
                    touched, {"epoch": nxt[0], "edge_chunk": nxt[1], "bucket": nxt[2]}, epoch_done=done
                )
                if self.progress:
                    sys.stderr.write(
                        f"\repoch {epoch + 1}/{cfg.num_epochs} bucket {bucket} "
                        f"loss {stats['loss']:.4f} {n / dt:,.0f} edges/s   "
                    )
                    sys.stderr.flush()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._pool.shutdown(wait=True)
        return trained

    # -- the device loop -------------------------------------------------------------
    def _run_device(self, schedule, K) -> int:
        """`_run` on an accelerator: each bucket's partitions and edges live on the device
        (``PartitionSwapper``); the next bucket's are copied host->device while this one
        trains, and the trained partitions are written back for the checkpoint. A bucket
        whose partitions + edges exceed ``device_memory`` trains as sub-buckets."""
        sw, trained = self.swapper, 0
        pool = ThreadPoolExecutor(1, thread_name_prefix="ember-prefetch")
        units = self._units(schedule, K, pool)
        try:
            nxt = next(units, None)
            if nxt is not None:
                self._prefetch(nxt)
            acc = None
            while nxt is not None:
                cur = nxt
                if cur.first:
                    acc = {
                        "t": time.perf_counter(),
                        "wait": sw.stats()["wait_seconds"],
                        "loss": np.zeros(3),
                        "evals": {},
                        "n": 0,
                    }
                bucket = sw.activate()
                self.peak_table_bytes = max(
                    self.peak_table_bytes, sum(int(e.nbytes) for e, _ in sw.resident.values())
                )
                self.peak_embedding_bytes = max(
                    self.peak_embedding_bytes, sum(int(e.nbytes + s.nbytes) for e, s in sw.resident.values())
                )
                nxt = next(units, None)
                # overlap: the next bucket's copies run while this one trains, except
                # around sub-buckets, whose host rows are only current after the save
                early = nxt is not None and (
                    not (cur.split or nxt.split) or (nxt.item is cur.item and not _overlapping(cur, nxt))
                )
                if early:
                    self._prefetch(nxt)
                for lk, rk, pre in cur.pieces:
                    lp = Partition(lk[0], lk[1], *bucket.parts[lk], self.lr)
                    rp = lp if rk == lk else Partition(rk[0], rk[1], *bucket.parts[rk], self.lr)
                    e = {
                        k[len(pre) :]: v
                        for k, v in bucket.edges.items()
                        if k.startswith(pre) and "held." not in k[len(pre) :]
                    }
                    h = {k[len(pre) + 5 :]: v for k, v in bucket.edges.items() if k.startswith(pre + "held.")}
                    if h:
                        acc["evals"]["eval_before"] = self._held_out_metrics(lp, rp, h)
                    acc["loss"] += self._train_bucket(lp, rp, e)
                    if h:
                        acc["evals"]["eval_after"] = self._held_out_metrics(lp, rp, h)
                acc["n"] += cur.n
                saved = sw.write_back(cur.parts).result()
                if cur.split:  # rows back into the host partitions, saved with the bucket
                    for (t, p, lo, hi), (e_, s_) in saved.items():
                        E, S = self._holder[(t, p)]
                        E[lo:hi], S[lo:hi] = e_, s_
                if cur.last:
                    arrays = self._holder if cur.split else saved
                    trained += acc["n"]
                    self._finish_bucket(cur.item, K, acc, arrays)
                    self._holder = {}
                if nxt is not None and not early:
                    self._prefetch(nxt)
            sw.close()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._pool.shutdown(wait=True)
        return trained

    def _finish_bucket(self, item, K, acc, arrays):
        """Stats line and checkpoint of a bucket trained on the device."""
        epoch, k, bi, bucket, nb = item
        n, loss, dt = acc["n"], acc["loss"], time.perf_counter() - acc["t"]
        nxt = (epoch, k, bi + 1)
        if bi + 1 == nb:
            nxt = (epoch, k + 1, 0) if k + 1 < K else (epoch + 1, 0, 0)
        wait = self.swapper.stats()["wait_seconds"] - acc["wait"]
        stats = {
            "epoch": epoch,
            "edge_chunk": k,
            "bucket": list(bucket),
            "edges": n,
            "loss": loss[0] / max(n, 1),
            "edges_per_s": n / dt if dt else None,
            "pos_score_rhs": loss[1] / max(n, 1),
            "pos_score_lhs": loss[2] / max(n, 1),
            "seconds": round(dt, 4),
            "transfer_wait_seconds": round(wait, 6),
            "version": self.ckpt.version + 1,
            **acc["evals"],
        }
        self.ckpt.append_stats(stats)
        self._save(
            list(arrays),
            {"epoch": nxt[0], "edge_chunk": nxt[1], "bucket": nxt[2]},
            epoch_done=epoch + 1 if nxt[0] == epoch + 1 else None,
            arrays=arrays,
        )
        if self.progress:
            sys.stderr.write(
                f"\repoch {epoch + 1}/{self.config.num_epochs} bucket {bucket} "
                f"loss {stats['loss']:.4f} {n / dt:,.0f} edges/s   "
            )
            sys.stderr.flush()

    def _prefetch(self, unit):
        """Start copying a unit's partitions (those not resident) and edges to the device."""
        host = {}
        for key in unit.parts:
            if key in self.swapper.resident:
                host[key] = None
            elif len(key) == 2:
                host[key] = self._load_arrays(*key)
            else:
                t, p, lo, hi = key
                if (t, p) not in self._holder:
                    self._holder[(t, p)] = self._load_arrays(t, p)
                E, S = self._holder[(t, p)]
                host[key] = (E[lo:hi], S[lo:hi])
        self.swapper.prefetch(host, unit.edges)

    def _units(self, schedule, K, pool):
        """The device loop's units, bucket after bucket; edges read one bucket ahead."""
        fut = pool.submit(self._read_edges, *self._edge_args(schedule[0], K)) if schedule else None
        for i, item in enumerate(schedule):
            edges = fut.result()
            if i + 1 < len(schedule):
                fut = pool.submit(self._read_edges, *self._edge_args(schedule[i + 1], K))
            yield from self._bucket_units(item, edges)

    def _bucket_units(self, item, edges):
        cfg, ws = self.config, self.ws
        bucket = item[3]
        n_eval = int(len(edges["lhs"]) * cfg.eval_fraction)
        held = {key: v[:n_eval] for key, v in edges.items()}
        edges = {key: v[n_eval:] for key, v in edges.items()}
        groups = [
            (types, self._part_key(types[0], bucket[0]), self._part_key(types[1], bucket[1]), e)
            for types, e in self._bucket_groups(edges)
        ]
        pieces, parts, dev = [], {}, {}
        for gi, (types, lk, rk, e) in enumerate(groups):
            pieces.append((lk, rk, f"{gi}."))
            parts[lk] = parts[rk] = None
            dev.update({f"{gi}.{k}": v for k, v in e.items()})
            h = _select_group(held, self, types) if n_eval else None
            if h is not None:
                dev.update({f"{gi}.held.{k}": v for k, v in h.items()})
        n = len(edges["lhs"])
        row = self.model.dim * self.store.itemsize + 4  # table row + its accumulator
        need = sum(ws.partition_sizes(k[0])[k[1]] for k in parts) * row + sum(
            int(v.nbytes) for v in dev.values()
        )
        if self.device_memory is None or need <= self.device_memory:
            yield _Unit(item, list(parts), pieces, dev, n)
            return
        units = []  # sub-buckets: row ranges of the pair (no held-out metrics then)
        for _, lk, rk, e in groups:
            nl, nr = ws.partition_sizes(lk[0])[lk[1]], ws.partition_sizes(rk[0])[rk[1]]
            subs = split_bucket(
                e["lhs"],
                e["rhs"],
                nl,
                nr,
                row_bytes=row,
                edge_bytes=sum(v.itemsize for v in e.values()),
                budget=self.device_memory,
                same_partition=lk == rk,
            )
            for sb in subs:
                a, b = lk + tuple(sb.lhs_rows), rk + tuple(sb.rhs_rows)
                ee = {k: v[sb.edges] for k, v in e.items()}
                ee["lhs"], ee["rhs"] = sb.lhs.astype(np.int64), sb.rhs.astype(np.int64)
                units.append(
                    _Unit(
                        item,
                        list(dict.fromkeys([a, b])),
                        [(a, b, "0.")],
                        {f"0.{k}": v for k, v in ee.items()},
                        len(sb.edges),
                        split=True,
                        first=False,
                        last=False,
                    )
                )
        units[0].first, units[-1].last = True, True
        self.log(
            f"bucket {bucket}: {need:,} bytes exceed the device budget of "
            f"{self.device_memory:,}; trained as {len(units)} sub-buckets"
        )
        yield from units

    def _edge_args(self, item, K):
        epoch, k, _, bucket, _ = item
        return epoch, k, K, bucket


def _take(edges, mask):
    """The edges where a host boolean mask is true (arrays on the host or the device)."""
    from ember._backend import device_of

    sel = np.flatnonzero(mask)  # copied to a device explicitly (the stand-in is an ndarray)
    return {k: v[sel if type(v) is np.ndarray else to_device(sel, device_of(v))] for k, v in edges.items()}


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


def _select_group(edges, trainer, types):
    """The edges of ``edges`` whose relation has the given (lhs, rhs) types."""
    for t, e in trainer._bucket_groups(edges):
        if t == types and len(e["lhs"]):
            return e
    return None


class _blas_threads:
    """Limit BLAS threads while Hogwild workers run (they are the parallelism then)."""

    def __init__(self, n):
        self.n, self.ctl = n, None

    def __enter__(self):
        if self.n:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                return self
            self.ctl = threadpool_limits(self.n, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self.ctl is not None:
            self.ctl.restore_original_limits()


def _renorm(xp, emb, rows, max_norm):
    r = emb[rows]
    norm = xp.sqrt((r * r).sum(1, keepdims=True))
    emb[rows] = r * xp.minimum(1, max_norm / xp.maximum(norm, 1e-12))


def train(
    config, *, device: str | None = None, log=None, progress=None, device_memory: int | None = None
) -> dict:
    """Train (or resume) the run a config describes; returns a summary dict.
    ``device`` overrides the config's (``"cpu"``, ``"cuda"``, ``"cuda:N"``; ``"standin"``
    in tests); ``device_memory`` bounds the bytes of partitions + edges on the device
    (default on a GPU: 60% of its free memory), splitting larger buckets."""
    return Trainer(config, device=device, log=log, progress=progress, device_memory=device_memory).train()
