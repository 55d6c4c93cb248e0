"""One training step against its floor: the batched products of the step, timed alone (issue 13).

The step is `ember.pbg.batch.BatchTrainer.step` on issue 13's shapes: batch 1000, chunks
of 50, 50 batch + 50 uniform negatives, dimension 100, ComplEx (complex_diagonal, the
trainer's interleaved layout) + dot + softmax, global embeddings on (the default), one
partition of ``--entities`` rows, 20 relations, one worker, one BLAS thread.

The floor is what no implementation of this step can skip: for each of the two sides,
the chunks' score product (C, b, d) x (C, d, k) and the two gradient products
(C, b, k) x (C, k, d) and (C, k, b) x (C, b, d), called as the step calls them (the
comparator's ``neg`` and ``neg_backward``) on arrays of the same shapes, with the same
BLAS threads. Step and floor run interleaved (blocks of steps, then blocks of floors,
``--repeats`` times); both report min and median per step, and the ratio of the minima is
the figure issue 13 targets (at most 1.3x).

A third arm, "floor + rows + exp", adds to the products what no implementation of the
step can skip either: the gather of its ~4,000 rows from the same table, their update
written back by the step's own compiled row Adagrad, and the softmax's exp of its
scores (where the compiled kernels are built).

``--compare-numpy`` also interleaves steps with the compiled CPU kernels switched off
(`ember._cpu_kernels`: the numpy twins), so one run shows what they bring. Then a
breakdown of one pass of instrumented steps: each part's median per step (timers around
the functions that do it), the rest being the autograd engine and Python between them.

    python benchmarks/train_step.py                    # 300 steps, 100k entities
    python benchmarks/train_step.py --steps 100 --repeats 3 --compare-numpy

"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
from _common import blas_info, cpu_stat, install_report, noise_share
from threadpoolctl import threadpool_limits

import ember
from ember import _cpu_kernels
from ember.pbg.batch import BatchTrainer, Partition, Sampler, SharedParams
from ember.pbg.config import parse_config
from ember.pbg.model import Model

TARGET = 1.3
DIM, BATCH, CHUNK, UNIFORM, RELATIONS = 100, 1000, 50, 50, 20


def make_trainer(entities: int, seed: int = 0):
    """A one-worker trainer on one partition, with the config `pbg import` writes."""
    cfg = parse_config(
        {
            "entities": {"e": {"num_partitions": 1}},
            "relations": [
                {"name": f"r{i}", "lhs": "e", "rhs": "e", "operator": "complex_diagonal"}
                for i in range(RELATIONS)
            ],
            "dimension": DIM,
            "comparator": "dot",
            "loss_fn": "softmax",
            "num_batch_negs": CHUNK,
            "num_uniform_negs": UNIFORM,
            "batch_size": BATCH,
            "lr": 0.1,
            "relation_lr": 0.1,
            "entity_path": "unused",
            "edge_paths": ["unused"],
            "checkpoint_path": "unused",
        }
    )
    model = Model(["complex_diagonal"] * RELATIONS, "dot", "softmax", DIM, RELATIONS, fast_layout=True)
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((entities, DIM), np.float32) * np.float32(cfg.init_scale)
    part = Partition("e", 0, emb, np.zeros(entities, np.float32), cfg.lr)
    theta = [ember.tensor(t, requires_grad=True) for t in model.init_relations(np, np.float32)]
    glob = {"e": ember.tensor(np.zeros(DIM, np.float32), requires_grad=True)} if cfg.global_emb else {}
    params = SharedParams(theta, glob, cfg.relation_lr)
    trainer = BatchTrainer(model, cfg, params, np, workers=1, all_negs_relations=[False] * RELATIONS)
    n_edges = 200 * BATCH
    edges = (rng.integers(0, entities, n_edges), rng.integers(0, entities, n_edges))
    rel = rng.integers(0, RELATIONS, n_edges)
    return trainer, part, edges, rel, Sampler(np, seed, 1)


class Steps:
    """Successive batches of the synthetic edges (new rows every step, as in training)."""

    def __init__(self, entities):
        self.trainer, self.part, (self.lhs, self.rhs), self.rel, self.rng = make_trainer(entities)
        self.at = 0

    def __call__(self):
        s = self.at
        self.at = (self.at + BATCH) % len(self.lhs)
        sl = slice(s, s + BATCH)
        self.trainer.step(self.part, self.part, self.lhs[sl], self.rhs[sl], self.rel[sl], None, self.rng)


def make_floor(model, seed=1):
    """The six products of a step on arrays of its shapes, as the step calls them."""
    rng = np.random.default_rng(seed)
    c, k = BATCH // CHUNK, CHUNK + UNIFORM
    cmp = model.comparator
    sides = [
        (
            rng.standard_normal((c, CHUNK, DIM), np.float32),
            rng.standard_normal((c, k, DIM), np.float32),
            rng.standard_normal((c, CHUNK, k), np.float32),
        )
        for _ in range(2)
    ]

    def floor():
        for a3, n3, g in sides:
            cmp.neg(a3, n3)
            cmp.neg_backward(a3, n3, g)

    def contiguous():  # the same products with the score product's operand laid out (C, d, k)
        for a3, n3, g in sides:
            np.matmul(a3, np.ascontiguousarray(n3.transpose(0, 2, 1)))
            np.matmul(g, n3)
            np.matmul(g.transpose(0, 2, 1), a3)

    return floor, contiguous


def make_bound(steps: Steps, floor):
    """The floor plus what no implementation of the step can skip beyond its products:
    fetching the step's ~4,000 rows (both sides' positives and uniform candidates, drawn
    as a step draws them, from the same table) and writing their update back (the
    compiled row Adagrad, the step's own), and the exp of both sides' softmax scores.
    The 1.3x target leaves the step 0.3x of the products for everything else; this shows
    how much of that these alone take."""
    part = steps.part
    n_rows = 2 * BATCH + 2 * (BATCH // CHUNK) * UNIFORM
    rng = np.random.default_rng(2)
    pool = [rng.integers(0, part.num_entities, n_rows) for _ in range(64)]  # new rows each call
    grad = (rng.standard_normal((n_rows, DIM)) * 1e-3).astype(np.float32)
    rows = np.empty((n_rows, DIM), np.float32)
    scores = [rng.standard_normal((BATCH, CHUNK + UNIFORM)).astype(np.float32) for _ in range(2)]
    exps = [np.empty_like(x) for x in scores]
    at = [0]

    def bound():
        floor()
        ids = pool[at[0] % len(pool)]
        at[0] += 1
        np.take(part.emb, ids, axis=0, out=rows)
        if not _cpu_kernels.row_adagrad_rows_(part.emb, part.state, ids, grad, 0.1, 1e-10):
            raise SystemExit("the bound needs the compiled kernels (the step's own update)")
        for x, e in zip(scores, exps):
            np.exp(x, out=e)

    return bound


def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def breakdown(steps: Steps, n: int) -> tuple[list, float]:
    """Median seconds per step of each part, from timers around the functions that do it."""
    import ember.optim.adagrad as adagrad
    import ember.pbg.autodiff as autodiff
    import ember.pbg.batch as batch
    import ember.pbg.model as model

    parts = [  # (owner, attribute, label); nested parts are subtracted from their parent
        (autodiff.GatherRows, "forward", "gather rows (+ global embedding)"),
        (batch.Sampler, "integers", "uniform negatives drawn"),
        (batch, "BatchPlan", "plan: the negatives' ids"),
        (model.Comparator, "neg", "products: scores"),
        (model.Comparator, "neg_backward", "products: gradients"),
        (model.Softmax, "__call__", "softmax loss, its gradient, the masking"),
        (model.Softmax, "masked", "softmax loss, its gradient, the masking"),
        (model.Model, "_op_forward", "operator forward (ComplEx)"),
        (model.Model, "_op_backward", "operator backward"),
        (model, "_scatter_rows", "relation gradients (one-hot product)"),
        (autodiff.ChunkedLossRows, "forward", "fused loss node: the rest of it"),
        (adagrad.RowAdagrad, "_sparse_update", "table update (coalesce + row Adagrad)"),
        (adagrad.Adagrad, "_update", "Adagrad of relations and global embeddings"),
    ]
    inner_of_node = {label for _, _, label in parts[3:10]}
    cur: dict = defaultdict(float)
    saved = []
    for owner, attr, label in parts:
        f = getattr(owner, attr)
        saved.append((owner, attr, f))

        def wrap(*a, _f=f, _label=label, **kw):
            t0 = time.perf_counter()
            try:
                return _f(*a, **kw)
            finally:
                cur[_label] += time.perf_counter() - t0

        setattr(owner, attr, wrap)
    per = defaultdict(list)
    whole = []
    try:
        for _ in range(n):
            cur.clear()
            t0 = time.perf_counter()
            steps()
            total = time.perf_counter() - t0
            whole.append(total)
            node = cur["fused loss node: the rest of it"] - sum(cur[x] for x in inner_of_node)
            cur["fused loss node: the rest of it"] = node
            known = sum(cur.values())
            for label in dict.fromkeys(label for _, _, label in parts):
                per[label].append(cur[label])
            per["autograd engine, Python between the parts"].append(total - known)
    finally:
        for owner, attr, f in saved:
            setattr(owner, attr, f)
    return [(k, statistics.median(v)) for k, v in per.items()], statistics.median(whole)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=300, help="steps per timed block")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved blocks of each")
    ap.add_argument("--compare-numpy", action="store_true", help="also time the numpy twins of the kernels")
    args = ap.parse_args()

    print(
        f"step: batch {BATCH}, chunk {CHUNK}, {CHUNK} batch + {UNIFORM} uniform negatives, dim {DIM}, "
        f"ComplEx + dot + softmax, global_emb, {args.entities:,} entities, {RELATIONS} relations, "
        "1 worker, 1 BLAS thread"
    )
    print(f"CPU kernels: {_cpu_kernels.status()}")
    print(install_report())
    steps = Steps(args.entities)
    floor, contiguous = make_floor(steps.trainer.model)
    fns = {"step": steps, "floor": floor, "floor, contiguous layout": contiguous}
    if _cpu_kernels.get() is not None:
        fns["floor + rows + exp"] = make_bound(steps, floor)
    if args.compare_numpy:

        def numpy_step():
            _cpu_kernels.MODE = "numpy"
            try:
                steps()
            finally:
                _cpu_kernels.MODE = "auto"

        fns["step, numpy twins"] = numpy_step
    times = {k: [] for k in fns}
    with threadpool_limits(1):
        print(f"BLAS: {blas_info()}")
        for fn in fns.values():  # warm: first-use builds, allocator, caches
            timed(fn, 20)
        before = cpu_stat()
        for _ in range(args.repeats):
            for name, fn in fns.items():
                times[name] += timed(fn, args.steps)
        noise = noise_share(before, cpu_stat())
        parts, whole = breakdown(steps, args.steps)

    ms = {k: (min(v) * 1e3, statistics.median(v) * 1e3) for k, v in times.items()}
    print(f"{'':28}{'min ms':>9}{'median ms':>11}")
    for k, (lo, med) in ms.items():
        print(f"{k:28}{lo:>9.3f}{med:>11.3f}")
    total = sum(sec for _, sec in parts)
    print(
        f"breakdown of a step (medians of {args.steps} instrumented steps, whose median was "
        f"{whole * 1e3:.3f} ms; shares of the parts' sum, {total * 1e3:.3f} ms):"
    )
    for label, sec in sorted(parts, key=lambda p: -p[1]):
        print(f"  {label:48}{sec * 1e3:>8.3f} ms  {sec / total:>5.0%}")
    if noise is not None:
        print(f"other processes used {noise:.0%} of the busy CPU time" + (" (noisy)" if noise > 0.2 else ""))
    step, fl = ms["step"][0], ms["floor"][0]
    extra = ""
    if args.compare_numpy:
        extra = f"; compiled kernels {ms['step, numpy twins'][0] / step:.2f}x faster than their numpy twins"
    if "floor + rows + exp" in ms:
        b = ms["floor + rows + exp"][0]
        print(
            f"floor + the rows' gather and update + the scores' exp: {b:.3f} ms = {b / fl:.2f}x the "
            f"floor (what no step can skip; the step is {step / b:.2f}x it)"
        )
    print(
        f"verdict: step {step:.3f} ms / floor {fl:.3f} ms = {step / fl:.2f}x (target <= {TARGET}x: "
        f"{'MET' if step / fl <= TARGET else 'NOT MET'}); against the contiguous-layout floor "
        f"{step / ms['floor, contiguous layout'][0]:.2f}x{extra}"
    )


if __name__ == "__main__":
    main()
