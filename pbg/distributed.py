"""Training across machines on MPI: ``mpiexec -n N pbg train config.toml``.

The same bucket loop as on one machine (`ember.pbg.train.Trainer`), with three parts
swapped for ones that span the job, as PyTorch-BigGraph's distributed mode does with its
lock server, partition servers and parameter server, here over MPI (mpi4py):

* **the lock server** (`LockServer`, a thread of rank 0) is the scheduler: it hands each
  trainer a bucket whose partitions no other trainer holds, prefers one whose partitions
  already sit in that trainer's memory (no transfer), gives every bucket of a pass (one
  edge chunk of every bucket) exactly once, and ends the pass when all are trained. It
  keeps the directory of where each partition lives and a log of every acquisition and
  release (``lock_server.jsonl`` in the checkpoint folder);
* **partition servers** (`PartitionServer`, a thread of every rank): partitions not in
  use live in the memory of the rank that trained them last (at the start, partition p
  lives on rank p mod N) and move rank to rank only when a bucket needs them, as
  contiguous float32 buffers sent with MPI point to point (never pickled), the row-wise
  Adagrad state with its rows;
* **the parameter server** (`ParameterServer`, a thread of rank 0) keeps what every
  trainer needs (relation parameters, global embeddings, unpartitioned entity types, and
  their Adagrad state) consistent: after each bucket a trainer sends the change it made
  since its last sync (its delta) and receives the sum of everybody's; see `SharedSync`
  for the consistency this gives;
* **trainers** (every rank's main thread) train their bucket with the same batch code
  (Hogwild threads inside a rank).

Checkpoints are written at the end of each pass, when every trainer has finished: every
rank writes the partitions in its memory, rank 0 the shared parameters, then the
manifest, last; a version is complete only once every partition is written. A lost rank
ends the job (the MPI launcher stops every rank); `mpiexec -n M pbg train` resumes from
the last complete checkpoint, with any number of ranks M.

``pbg train`` without a launcher never imports mpi4py; under a launcher with one rank it
is plain ``pbg train``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ember.errors import ConfigError, UserError
from ember.pbg.batch import Partition
from ember.pbg.schedule import BucketTask, Position

__all__ = ["launched_ranks", "train_distributed"]

LOCK_LOG = "lock_server.jsonl"
RANKS = "ranks.json"
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")

# message tags (each role has a communicator of its own: no tag ever crosses roles); data
# to a server and data back from it differ, as rank 0's trainer talks to its own servers
_REQ, _REPLY, _DATA, _BACK = 1, 2, 3, 4


def launched_ranks() -> int:
    """The number of ranks of the MPI job this process belongs to, from the launcher's
    environment (MPICH/Hydra, Open MPI, PMIx, MVAPICH), without importing mpi4py; 1 when
    not launched by ``mpiexec``."""
    for var in _SIZE_VARS[:4]:
        v = os.environ.get(var)
        if v and v.isdigit():
            return int(v)
    return 1


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise UserError(
            "training across machines needs mpi4py and an MPI library: pip install -e '.[mpi]' "
            "(mpi4py and the mpich wheel)"
        ) from None
    return MPI


def _key(k) -> tuple:
    return (str(k[0]), int(k[1]))


# ---- waiting without spinning: MPI implementations busy-poll in their blocking calls,
# which would cost every waiting server thread a whole core; these poll with sleeps
# (from 10 us, doubling to 2 ms: a bucket lasts far longer than that)
def _poll(test):
    pause = 1e-5
    while True:
        out = test()
        if out:
            return out
        time.sleep(pause)
        pause = min(2 * pause, 2e-3)


def _recv(comm, source, tag, status=None):
    """A pickled control message (a small dict), waited for without spinning."""
    MPI = _mpi()
    st = MPI.Status()
    _poll(lambda: comm.iprobe(source=source, tag=tag, status=st))
    return comm.recv(source=st.Get_source(), tag=tag, status=status)


def _Recv(comm, buf, source, tag):
    """A contiguous float32 array received into ``buf`` (no pickling)."""
    req = comm.Irecv([buf, _mpi().FLOAT], source=source, tag=tag)
    _poll(req.Test)


def _Send(comm, buf, dest, tag):
    req = comm.Isend([np.ascontiguousarray(buf, np.float32), _mpi().FLOAT], dest=dest, tag=tag)
    _poll(req.Test)


def _barrier(comm):
    _poll(comm.Ibarrier().Test)


# =========================================================================== lock server
class LockServer:
    """Rank 0's bucket scheduler for the whole job (a thread serving requests).

    A trainer asks for its next bucket with the bucket it just finished (and its stats
    line); the server records that bucket done, frees its partitions, and answers, now
    or as soon as one is free, with a bucket none of whose partitions another trainer
    holds, preferring the one with the most partitions already in the asker's memory
    (then the configured order). When a pass has no bucket left and no trainer is busy,
    every asker hears that the pass is done.
    """

    def __init__(self, comm, size, trainer, log_path, stats_sink):
        self.comm, self.size, self.trainer = comm, size, trainer
        self.log_path, self.stats_sink = log_path, stats_sink
        self.location = {}  # partition key -> the rank whose memory holds it
        self.locked = {}  # partition key -> rank training a bucket that uses it
        self.busy = {}  # rank -> (bucket, keys) being trained
        self.pending = {}  # rank -> its request, waiting for a free bucket
        self.pass_id = None
        self.initialized = None  # partitions trained so far in a tree-ordered first pass
        self.remaining = []  # (index in the epoch's order, bucket) still to train
        self.waits = {}  # rank -> time its pending request arrived
        self._log = open(log_path, "a", buffering=1)
        self.thread = threading.Thread(target=self._serve, name="ember-lock-server", daemon=True)

    def start(self, initial_location: dict):
        self.location = dict(initial_location)
        self._record(event="start", ranks=self.size)
        self.thread.start()

    def _record(self, **event):
        self._log.write(json.dumps({"t": round(time.time(), 6), **event}) + "\n")

    def _serve(self):
        MPI = _mpi()
        status = MPI.Status()
        while True:
            msg = _recv(self.comm, MPI.ANY_SOURCE, _REQ, status)
            r = status.Get_source()
            if msg["op"] == "stop":
                self._log.close()
                return
            self._finish(r, msg)
            if self.pass_id != msg["pass"]:
                self._open_pass(msg["pass"], Position.from_dict(msg["start"]))
            self.pending[r] = msg
            self.waits[r] = time.perf_counter()
            self._serve_pending()

    def _finish(self, r, msg):
        if r in self.busy:
            bucket, keys = self.busy.pop(r)
            for k in keys:
                self.locked.pop(k, None)
                self.location[k] = r  # the partition stays where it was trained
            self._record(event="release", rank=r, pass_id=list(msg["pass"]), bucket=list(bucket), parts=keys)
        if msg.get("stats") is not None:
            self.stats_sink(msg["stats"])

    def _open_pass(self, pass_id, start: Position):
        epoch, chunk = pass_id
        t = self.trainer
        order = t.scheduler_local.order(epoch)
        self.remaining = [
            (i, b)
            for i, b in enumerate(order)
            if t.scheduler_local.sizes.get(b, 0) > 0 and Position(epoch, chunk, i) >= start
        ]
        self.pass_id = pass_id
        # PyTorch-BigGraph's distributed_tree_init_order: the run's first pass grows from
        # partition 0, a bucket being free only once one of its partitions has trained, so
        # that every partition starts in the coordinates its neighbours took (trained in
        # isolation, partitions would each start in their own)
        first = pass_id == (0, 0) and start == Position()
        self.initialized = {0} if first and t.config.distributed_tree_init_order else None

    def _serve_pending(self):
        for r in sorted(self.pending, key=lambda r: self.waits[r]):
            choice = self._choose(r)
            if choice is not None:
                idx, bucket, keys = choice
                self.remaining.remove((idx, bucket))
                if self.initialized is not None:
                    self.initialized.update(bucket)
                moves = [[k[0], k[1], self.location[k]] for k in keys]
                for k in keys:
                    self.locked[k] = r
                self.busy[r] = (bucket, keys)
                msg = self.pending.pop(r)
                self._record(
                    event="acquire", rank=r, pass_id=list(msg["pass"]), bucket=list(bucket), parts=keys
                )
                wait = time.perf_counter() - self.waits.pop(r)
                self.comm.send(
                    {"bucket": bucket, "index": idx, "from": moves, "waited": wait}, dest=r, tag=_REPLY
                )
        if not self.remaining and not self.busy:
            for r in list(self.pending):
                self.pending.pop(r)
                wait = time.perf_counter() - self.waits.pop(r)
                self.comm.send({"pass_done": True, "waited": wait}, dest=r, tag=_REPLY)

    def _choose(self, r):
        """The asker's best free bucket: the most partitions already in its memory, then
        the configured order; None when every remaining bucket is blocked."""
        best = None
        for idx, bucket in self.remaining:
            if self.initialized is not None and not (
                bucket[0] in self.initialized or bucket[1] in self.initialized
            ):
                continue
            keys = self.trainer.partitioned_keys(bucket)
            if any(self.locked.get(k, r) != r for k in keys):
                continue
            local = sum(self.location.get(k) == r for k in keys)
            if best is None or local > best[0]:
                best = (local, idx, bucket, keys)
        return None if best is None else best[1:]


# =========================================================================== partition server
class PartitionServer:
    """The partitions in this rank's memory that no bucket is training, served to the
    rank that needs one next (a thread; the local trainer takes and returns its own
    partitions directly)."""

    def __init__(self, comm, counters):
        self.comm, self.counters = comm, counters
        self.store = {}  # key -> (emb, state)
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, name="ember-partition-server", daemon=True)

    def put(self, key, emb, state):
        with self.cond:
            self.store[key] = (emb, state)
            self.cond.notify_all()

    def take(self, key):
        """A partition of this rank's memory, for this rank's trainer (waits until its
        last trainer returned it)."""
        with self.cond:
            self.cond.wait_for(lambda: key in self.store)
            return self.store.pop(key)

    def _serve(self):
        MPI = _mpi()
        status = MPI.Status()
        while True:
            msg = _recv(self.comm, MPI.ANY_SOURCE, _REQ, status)
            if msg["op"] == "stop":
                return
            r = status.Get_source()
            key = _key(msg["key"])
            emb, state = self.take(key)
            self.comm.send({"rows": len(emb), "dim": emb.shape[1]}, dest=r, tag=_REPLY)
            _Send(self.comm, emb, r, _BACK)
            _Send(self.comm, state, r, _BACK)
            self.counters["partition_bytes_sent"] += int(emb.nbytes + state.nbytes)

    def fetch(self, key, source: int):
        """A partition from rank ``source``'s memory (its server waits until it is there)."""
        self.comm.send({"op": "pull", "key": list(key)}, dest=source, tag=_REQ)
        head = _recv(self.comm, source, _REPLY)
        emb = np.empty((head["rows"], head["dim"]), np.float32)
        state = np.empty(head["rows"], np.float32)
        _Recv(self.comm, emb, source, _BACK)
        _Recv(self.comm, state, source, _BACK)
        self.counters["partition_bytes_received"] += int(emb.nbytes + state.nbytes)
        return emb, state


# =========================================================================== parameter server
class ParameterServer:
    """Rank 0's master copy of the shared parameters, one flat float32 vector; each sync
    adds a trainer's delta to it and answers with the sum (a thread)."""

    def __init__(self, comm, initial: np.ndarray):
        self.comm = comm
        self.master = np.array(initial, np.float32)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, name="ember-parameter-server", daemon=True)

    def _serve(self):
        MPI = _mpi()
        status = MPI.Status()
        delta = np.empty_like(self.master)
        while True:
            msg = _recv(self.comm, MPI.ANY_SOURCE, _REQ, status)
            if msg["op"] == "stop":
                return
            r = status.Get_source()
            _Recv(self.comm, delta, r, _DATA)
            with self.lock:
                self.master += delta
                out = self.master.copy()
            _Send(self.comm, out, r, _BACK)

    def snapshot(self) -> np.ndarray:
        with self.lock:
            return self.master.copy()


class SharedSync:
    """A trainer's side of the parameter server.

    Consistency: asynchronous, delta-based, as PyTorch-BigGraph's parameter server. After
    each bucket a trainer sends what its updates changed since its last sync (parameters
    and Adagrad sums alike) and adopts the master copy, which holds every delta any
    trainer has sent. Every update is applied exactly once; a trainer's view is at most
    one bucket of each other trainer's updates behind (Hogwild across machines). At the
    end of a pass every trainer syncs before the checkpoint, so the checkpoint holds all
    updates."""

    def __init__(self, trainer, comm, counters):
        self.trainer, self.comm, self.counters = trainer, comm, counters
        self.views = trainer.shared_arrays()  # arrays updated in place by the optimizers
        self.last = self.flat()

    def flat(self) -> np.ndarray:
        return (
            np.concatenate([np.asarray(a, np.float32).reshape(-1) for a in self.views])
            if self.views
            else (np.zeros(0, np.float32))
        )

    def sync(self):
        cur = self.flat()
        delta = cur - self.last
        self.comm.send({"op": "sync"}, dest=0, tag=_REQ)
        _Send(self.comm, delta, 0, _DATA)
        master = np.empty_like(cur)
        _Recv(self.comm, master, 0, _BACK)
        self.counters["parameter_bytes"] += 2 * int(delta.nbytes)
        off = 0
        for a in self.views:
            n = a.size
            a[...] = master[off : off + n].reshape(a.shape)
            off += n
        self.last = master


# =========================================================================== the trainer's parts
class ClusterScheduler:
    """The single-machine scheduler's interface with the lock server behind it: `tasks`
    yields the buckets the lock server hands this rank, pass after pass, and runs the
    collective checkpoint between passes; `done` hands back a finished bucket (with its
    stats line, sent with the next request)."""

    lookahead = False  # asking for the next bucket early would lock its partitions

    def __init__(self, trainer):
        self.trainer = trainer
        self._done = None  # the finished task's stats line, sent with the next request

    def tasks(self, start: Position):
        t = self.trainer
        local = t.scheduler_local
        K = local.num_chunks
        for epoch in range(start.epoch, t.config.num_epochs):
            for k in range(K):
                if (epoch, k) < (start.epoch, start.edge_chunk):
                    continue
                after = Position(epoch, k + 1, 0) if k + 1 < K else Position(epoch + 1, 0, 0)
                first = start if (epoch, k) == (start.epoch, start.edge_chunk) else Position(epoch, k, 0)
                while True:
                    t0 = time.perf_counter()
                    t.lock_comm.send(
                        {"op": "next", "pass": (epoch, k), "start": first.to_dict(), "stats": self._done},
                        dest=0,
                        tag=_REQ,
                    )
                    self._done = None
                    reply = _recv(t.lock_comm, 0, _REPLY)
                    t.counters["lock_wait_seconds"] += time.perf_counter() - t0
                    if reply.get("pass_done"):
                        break
                    task = BucketTask(Position(epoch, k, reply["index"]), tuple(reply["bucket"]), K, after)
                    t.locations = {(et, int(p)): int(src) for et, p, src in reply["from"]}
                    yield task
                t.end_of_pass(after)

    def done(self, task, stats=None):
        self._done = stats


class ClusterPlacement:
    """Partitions pulled from the rank whose memory holds them (this one's own server,
    or another's over MPI) when a bucket starts, and returned to this rank's own server
    when it ends: they stay here until a bucket elsewhere needs them. Unpartitioned
    entity types are replicas on every rank, kept consistent by the parameter server."""

    budget = None

    def __init__(self, trainer):
        self.t = trainer
        self._next = None
        self.resident = {}

    def prefetch(self, unit):
        self._next = unit

    def can_prefetch_early(self, cur, nxt) -> bool:
        return False

    def acquire(self):
        t, unit = self.t, self._next
        self._next = None
        t0 = time.perf_counter()
        self.resident = {}
        for key in unit.parts:
            if key in t.replicas:
                self.resident[key] = t.replicas[key]
        # every partition the lock server granted comes here, whether or not this chunk
        # of the bucket has edges that touch it: the directory says it is here afterwards
        for key, src in t.locations.items():
            emb, state = t.server.take(key) if src == t.rank else t.server.fetch(key, src)
            self.resident[key] = Partition(key[0], key[1], emb.astype(t.store, copy=False), state, t.lr)
        t.counters["partition_wait_seconds"] += time.perf_counter() - t0
        return dict(self.resident), unit.pieces

    def release(self, unit):
        for key in list(self.t.locations):
            p = self.resident.pop(key)
            self.t.server.put(key, p.emb, p.state)
        return None  # checkpointed at the end of the pass, not per bucket

    def resident_bytes(self):
        held = list(self.resident.values()) + [
            p for k, p in self.t.replicas.items() if k not in self.resident
        ]
        return sum(int(p.emb.nbytes) for p in held), sum(p.nbytes for p in held)

    def stats(self) -> dict:
        return {}

    def close(self):
        self.resident.clear()


# =========================================================================== setup checks
def _config_digest(config) -> str:
    d = config.to_dict()
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def check_setup(config, comm, size: int) -> dict:
    """Refuse, on every rank alike, a job that cannot work: ranks that cannot see the
    workspace or were given different configs, a ``num_machines`` other than the rank
    count, too few partitions for the trainers, a device other than the CPU."""
    from ember.pbg.workspace import open_workspace

    me = {"host": socket.gethostname(), "pid": os.getpid(), "config": _config_digest(config), "error": None}
    try:
        ws = open_workspace(config)
        me["workspace"] = ws.manifest.get("workspace_id")
    except UserError as e:
        me["error"] = str(e)
    every = comm.allgather(me)
    problems = []
    for r, m in enumerate(every):
        if m["error"]:
            problems.append(f"rank {r} on {m['host']} cannot open the workspace: {m['error']}")
    if not problems:
        ids = {m["workspace"] for m in every}
        if len(ids) > 1:
            problems.append(
                "the ranks see different workspaces at entity_path (" + ", ".join(sorted(map(str, ids))) + ")"
            )
        digests = {m["config"] for m in every}
        if len(digests) > 1:
            odd = [r for r, m in enumerate(every) if m["config"] != every[0]["config"]]
            problems.append(
                f"rank{'s' if len(odd) > 1 else ''} {', '.join(map(str, odd))} "
                f"{'were' if len(odd) > 1 else 'was'} given a different config from rank 0 "
                "(every rank needs the same config file and -p overrides)"
            )
    if config.num_machines is not None and config.num_machines != size:
        problems.append(
            f"num_machines = {config.num_machines} but the job has {size} ranks (mpiexec -n {size})"
        )
    if config.device != "cpu":
        problems.append(f'device = "{config.device}": training across machines runs on the CPU')
    if not problems:
        parted = {t: e.num_partitions for t, e in config.entities.items() if e.num_partitions > 1}
        if not parted:
            problems.append(
                "no entity type is partitioned: there is one bucket, nothing to share between "
                f"{size} trainers (re-import with --partitions {2 * size})"
            )
        else:
            p = max(parted.values())
            if p < 2 * size:
                problems.append(
                    f"{p} partitions cannot keep {size} trainers busy: a bucket holds two "
                    f"partitions, so {size} trainers need at least {2 * size} (re-import with "
                    f"--partitions {2 * size}, or launch at most {p // 2} ranks)"
                )
    if problems:
        raise ConfigError("; ".join(problems))
    return {"ranks": [{"host": m["host"], "pid": m["pid"]} for m in every]}


# =========================================================================== the job
def _trainer_class():
    from ember.pbg.train import Trainer

    class ClusterTrainer(Trainer):
        """`Trainer` with the cluster's scheduler, placement and checkpoints."""

        def __init__(self, config, comm, **kw):
            super().__init__(config, lock=False, **kw)  # rank 0 holds the lock for the job
            MPI = _mpi()
            self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
            self.lock_comm, self.part_comm, self.param_comm = comm.Dup(), comm.Dup(), comm.Dup()
            self.counters = {
                "partition_bytes_sent": 0,
                "partition_bytes_received": 0,
                "parameter_bytes": 0,
                "lock_wait_seconds": 0.0,
                "partition_wait_seconds": 0.0,
                "buckets": 0,
            }
            self.scheduler_local = self.scheduler
            self.scheduler = ClusterScheduler(self)
            self.placement = ClusterPlacement(self)
            self.locations = {}
            ws = self.ws
            # unpartitioned types: a replica on every rank
            self.replicas = {}
            for t in ws.entity_types:
                if ws.num_partitions(t) == 1:
                    e, s = self._load_arrays(t, 0)
                    self.replicas[(t, 0)] = Partition(t, 0, e.astype(self.store), s, self.lr)
            for p in self.params.theta + list(self.params.glob.values()):  # Adagrad sums exist from the start
                if p not in self.params.opt.state:
                    import ember

                    self.params.opt.state[p] = {"step": 0, "sum": ember.zeros_like(p)}
            # partition p of every partitioned type starts in the memory of rank p mod N
            self.server = PartitionServer(self.part_comm, self.counters)
            initial = {}
            for t in ws.entity_types:
                n = ws.num_partitions(t)
                if n > 1:
                    for p in range(n):
                        initial[(t, p)] = p % self.size
                        if p % self.size == self.rank:
                            self.server.put((t, p), *self._load_arrays(t, p))
            self.sync = SharedSync(self, self.param_comm, self.counters)
            self.lock_server = self.param_server = None
            if self.rank == 0:
                ck = self.ckpt.path
                ck.mkdir(parents=True, exist_ok=True)
                self.lock_server = LockServer(
                    self.lock_comm, self.size, self, ck / LOCK_LOG, self.ckpt.append_stats
                )
                self.lock_server.start(initial)
                self.param_server = ParameterServer(self.param_comm, self.sync.flat())
                self.param_server.thread.start()
            self.server.thread.start()
            _barrier(self.comm)
            self._mpi = MPI

        def partitioned_keys(self, bucket):
            """The partitions of partitioned types a bucket trains (the lock server's unit)."""
            keys = []
            for lt, rt in self.groups:
                for t, p in ((lt, bucket[0]), (rt, bucket[1])):
                    if self.ws.num_partitions(t) > 1 and (t, p) not in keys:
                        keys.append((t, p))
            return keys

        def shared_arrays(self):
            """Every array the parameter server keeps consistent, in a fixed order."""
            p = self.params
            out = [t._data for t in p.theta] + [p.state_of(t) for t in p.theta]
            for t in sorted(p.glob):
                out += [p.glob[t]._data, p.state_of(p.glob[t])]
            for k in sorted(self.replicas):
                out += [self.replicas[k].emb, self.replicas[k].state]
            return [a for a in out if a is not None]

        def _finish_bucket(self, task, rec, arrays):
            stats = self._bucket_stats(task, rec)
            self._check_finite(task, stats)
            stats["rank"] = self.rank
            self.counters["buckets"] += 1
            self.sync.sync()
            self.scheduler.done(task, stats)

        def end_of_pass(self, after: Position):
            """Every trainer has finished the pass: sync, then write the checkpoint
            together (each rank its partitions, rank 0 the shared parameters and, last,
            the manifest)."""
            self.sync.sync()
            _barrier(self.comm)  # every delta is in the master copy
            version = self.comm.bcast(self.ckpt.version + 1 if self.rank == 0 else None, root=0)
            ck = self.ckpt
            ck.version = version - 1
            ck.begin(durable=True)
            mine, sums = {}, {}
            with self.server.cond:
                items = sorted(self.server.store.items())
            for key, (emb, state) in items:
                ck.save_partition(key[0], key[1], self.model.to_public(np.asarray(emb, np.float32)), state)
                name = ck._files[f"embeddings/{key[0]}/{key[1]}"]
                mine[f"embeddings/{key[0]}/{key[1]}"], sums[name] = name, ck._sums[name]
            files = self.comm.gather((mine, sums), root=0)  # the manifest records every rank's checksums
            if self.rank == 0:
                master = self.param_server.snapshot()
                off = 0
                for a in self.sync.views:  # rank 0's arrays become the master copy
                    a[...] = master[off : off + a.size].reshape(a.shape)
                    off += a.size
                for key, part in self.replicas.items():
                    ck.save_partition(
                        key[0], key[1], self.model.to_public(np.asarray(part.emb, np.float32)), part.state
                    )
                for f, c in files:
                    ck._files.update(f)
                    ck._sums.update(c)
                self._commit(after, epoch_done=after.epoch if after.edge_chunk == 0 else None)
            _barrier(self.comm)  # the manifest is in place before anyone goes on
            if self.rank != 0:
                from ember.pbg.checkpoint import Checkpoint

                self.ckpt = Checkpoint(ck.path)  # rank 0's manifest: files, position, version

        def _first_checkpoint(self, position):
            self.end_of_pass(position)

        def stop(self):
            _barrier(self.comm)
            if self.rank == 0:
                self.lock_comm.send({"op": "stop"}, dest=0, tag=_REQ)
                self.param_comm.send({"op": "stop"}, dest=0, tag=_REQ)
                self.lock_server.thread.join()
                self.param_server.thread.join()
            self.part_comm.send({"op": "stop"}, dest=self.rank, tag=_REQ)
            self.server.thread.join()

    return ClusterTrainer


class _Watcher:
    """Names a rank that dies. When one rank of an MPI job dies (``kill -9``, the OOM
    killer, a lost machine), the launcher stops all the others at once (MPICH's Hydra
    sends them SIGKILL), so no rank can say anything. A small forked process per host, in
    a session of its own (the launcher does not stop it), waits on the host's ranks'
    process descriptors (``pidfd_open``): the first one seen to end before the job has
    finished is named on stderr, beside the launcher's own message (the PID and host of
    the lost process). That is normally the lost rank; but an end is reported when the
    process's last thread is gone, so a rank stopped after it can be seen first. A rank
    ending normally tells its watcher through a pipe, and the watcher leaves silently; a
    pipe closed unsaid means its writer ended (its descriptors close before its end is
    seen: the watcher then waits up to 5 s for the process descriptors to say who)."""

    def __init__(self, local: dict, host: str):
        self.write_fd = None
        if not hasattr(os, "pidfd_open") or not local:
            return
        try:
            fds = {os.pidfd_open(pid): (rank, pid) for rank, pid in local.items()}
        except OSError:
            return
        read_fd, self.write_fd = os.pipe()
        me = os.getpid()  # the pipe's writer: its end closing unsaid means it ended
        if os.fork() != 0:
            os.close(read_fd)
            for fd in fds:
                os.close(fd)
            return
        try:  # the watcher: nothing here may touch MPI, threads or Python's exit handlers
            os.close(self.write_fd)
            os.setsid()
            import select

            ready, _, _ = select.select([read_fd, *fds], [], [])
            if read_fd in ready and os.read(read_fd, 1) == b"x":
                os._exit(0)
            if not any(fd in fds for fd in ready):
                # the pipe closed unsaid: its writer ended, and the file descriptors close
                # before the process is seen to end: wait (briefly) for who ended
                ready, _, _ = select.select(list(fds), [], [], 5.0)
            ended = sorted(fds[fd] for fd in ready if fd in fds)
            if not ended:
                ended = [(r, p) for r, p in local.items() if p == me] or sorted(local.items())
            if len(ended) == 1:
                ((rank, pid),) = ended
                who = f"rank {rank} (pid {pid} on {host})"
            else:  # the launcher stopped others before this watcher woke: one of these was first
                who = "one of ranks " + ", ".join(f"{r} (pid {p})" for r, p in ended) + f" on {host}"
            os.write(
                2,
                (
                    f"error: {who} ended before training finished; the MPI launcher stops the whole "
                    "job. Run the same command again (with any number of ranks) to resume from the "
                    "last complete checkpoint\n"
                ).encode(),
            )
        finally:
            os._exit(0)

    def finished(self):
        if self.write_fd is not None:
            os.write(self.write_fd, b"x")
            os.close(self.write_fd)
            self.write_fd = None


def abort_job(message: str, code: int):
    """End every rank of the job with ``code``: the message is printed by rank 0 when the
    whole job fails alike (a refused setup), by the failing rank otherwise."""
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    everyone = message.startswith("error: ") and getattr(abort_job, "collective", False)
    if comm.Get_rank() == 0 or not everyone:
        print(message, file=sys.stderr, flush=True)
    if everyone:  # every rank reached this point: end together, exit status ``code``
        _barrier(comm)
        raise SystemExit(code)
    comm.Abort(code)


def train_distributed(config, *, log=None, progress=None) -> dict:
    """Train (or resume) the run a config describes with every rank of the MPI job this
    process was launched in; returns the summary on rank 0 (None on the others)."""
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    abort_job.collective = True  # a refused setup is refused by every rank alike
    info = check_setup(config, comm, size)
    abort_job.collective = False
    say = (log or (lambda msg: print(msg, file=sys.stderr, flush=True))) if rank == 0 else (lambda msg: None)
    lock = None
    if rank == 0:
        from ember.pbg.checkpoint import lock_folder

        lock = lock_folder(config.checkpoint_path, "pbg train")  # refused: abort_job stops every rank
        table = ", ".join(f"rank {r}: pid {m['pid']} on {m['host']}" for r, m in enumerate(info["ranks"]))
        say(f"training across {size} ranks ({table})")
        from ember._io import write_json_atomic

        # which process is which rank, for whoever has to find one (ps shows a pid, not a rank)
        ranks = [{"rank": r, **m} for r, m in enumerate(info["ranks"])]
        write_json_atomic(Path(config.checkpoint_path) / RANKS, {"started": time.time(), "ranks": ranks})
    host = info["ranks"][rank]["host"]
    local = {r: m["pid"] for r, m in enumerate(info["ranks"]) if m["host"] == host}
    # the host's first rank watches the host's ranks, before any thread of ours starts
    watcher = _Watcher(local, host) if rank == min(local) else None
    t = _trainer_class()(config, comm, log=say, progress=False if rank else progress)
    summary = t.train()
    t.stop()
    if lock is not None:
        lock.release()
    if watcher is not None:
        watcher.finished()
    every = comm.gather({"rank": rank, **t.counters, "edges": summary["edges"]}, root=0)
    if rank != 0:
        return None
    summary["ranks"] = size
    summary["edges"] = sum(e["edges"] for e in every)
    summary["edges_per_s"] = summary["edges"] / summary["seconds"] if summary["seconds"] else 0
    summary["distributed"] = every
    return summary
