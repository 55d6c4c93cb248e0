"""Approximate nearest-neighbour indexes over a trained model's entity embeddings
(`pbg index`), used by `pbg neighbors` and ``EmbeddingModel.neighbors`` when present.

The index is faiss's inverted-file index (``IndexIVFFlat``): k-means cells over a sample
of the embeddings, then every vector filed under its nearest cell; a query scans only the
``nprobe`` cells nearest to it. It was chosen over HNSW graphs (hnswlib, usearch) for its
build time on this project's 2-core machines: at 10^6 clustered vectors of dimension 100,
faiss IVF built in 11 s, hnswlib in 452 s and usearch in 651 s (M=16, ef_construction
100), and all three answered one query in well under a millisecond at recall@10 >= 0.95
(README, benchmarks/neighbors.py). The index holds the vectors plus an 8-byte id each; it is
built from the partitions one at a time (the build's peak RSS, measured: 1.9-2.6x the
table, as faiss's inverted lists grow by doubling).

The embeddings are read from the checkpoint one partition at a time, with the type's
trained ``global_emb`` added (`EmbeddingModel.read_partition`, as `pbg export` does).
Index row i is global id i: partitions in order, offsets within them, so a result maps
back to its entity name exactly as the exact search does. For ``cos`` the rows are
normalised and the index ranks by inner product; ``dot`` ranks by inner product;
``l2`` by Euclidean distance. Scores come back on the exact search's scale: the cosine,
the dot product, minus the distance.

Building also measures the index: a sample of entities is searched exactly (during the
same pass) and ``nprobe`` is the smallest of 1, 2, 3, 4, 6, 8, 12, ... whose recall@10 on that
sample reaches ``target_recall``. Files, under ``WORKSPACE/index/``::

    <type>_<metric>.json               what was built: checkpoint version, metric, library,
                                       parameters, counts, measured recall; names the file
    <type>_<metric>.<build id>.faiss   the index itself

Both are written under a temporary name and renamed, the JSON last; an index whose JSON
names another checkpoint version than the model's is *stale* and is not used (the search
falls back to the exact product and says so with a `StaleIndexWarning`).

>>> from ember.pbg.api import load
>>> build_index(load("ws"), metric="cos")["nprobe"]                    # doctest: +SKIP
16
"""

from __future__ import annotations

import json
import math
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

from ember._io import atomic_path, write_json_atomic
from ember.errors import InputFileError, UserError

__all__ = ["build_index", "open_index", "index_paths", "StaleIndexWarning", "NeighborIndex", "METRICS"]

METRICS = ("cos", "dot", "l2")
INDEX_DIR = "index"
FORMAT = "ember-ann-index"
FORMAT_VERSION = 1
INSTALL_HINT = "pip install 'ember[index]' (or: pip install faiss-cpu)"
_SAMPLE_PER_CELL = 40  # k-means training points per cell (faiss warns below 39)
_RECALL_QUERIES = 256  # entities searched exactly to measure the index while it is built
_RECALL_K = 10


class StaleIndexWarning(UserWarning):
    """An index exists but does not match the model being queried (another checkpoint
    version, other entity counts, or faiss is missing): the exact search is used."""


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UserError(f"building an index needs faiss, which is not installed: {INSTALL_HINT}") from None
    return faiss


def index_paths(root, entity_type: str, metric: str) -> Path:
    """The JSON file describing the index of ``entity_type`` by ``metric`` in workspace ``root``."""
    return Path(root) / INDEX_DIR / f"{entity_type}_{metric}.json"


def default_nlist(n: int) -> int:
    """Cells for n vectors: about sqrt(n) (a cell holds about as many vectors as there are
    cells), and never fewer than ``_SAMPLE_PER_CELL`` training points per cell."""
    return max(1, min(int(round(math.sqrt(n))), n // _SAMPLE_PER_CELL))


def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    if metric == "cos":
        x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    return x


def _faiss_metric(faiss, metric):
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def _exact_scores(q, block, metric):
    """Scores (Q, B) of prepared rows, higher is nearer (minus squared L2 for l2)."""
    s = q @ block.T
    if metric == "l2":
        s *= 2
        s -= np.einsum("ij,ij->i", q, q)[:, None]
        s -= np.einsum("ij,ij->i", block, block)[None, :]
    return s


def build_from_partitions(
    partitions,
    sizes: list[int],
    dim: int,
    metric: str = "cos",
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    target_recall: float = 0.95,
    seed: int = 0,
    log=None,
):
    """Build an index from ``partitions()``, a callable that yields each partition's
    (n_p, dim) embeddings in turn (called twice: a sampling pass and an adding pass, so
    only one partition is held at a time besides the index). Returns (faiss index, facts).
    """
    faiss = _faiss()
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r}: choose one of {', '.join(METRICS)}")
    if not 0 < target_recall <= 1:
        raise UserError(f"--target-recall must be in (0, 1], got {target_recall}")
    log = log or (lambda msg: None)
    n = int(sum(sizes))
    if n == 0:
        raise UserError("no entities to index")
    nlist = default_nlist(n) if nlist is None else int(nlist)
    if not 1 <= nlist <= n:
        raise UserError(f"--nlist must be between 1 and the number of entities ({n:,}), got {nlist}")
    if nprobe is not None and not 1 <= nprobe <= nlist:
        raise UserError(f"--nprobe must be between 1 and --nlist ({nlist:,}), got {nprobe}")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()

    # pass 1: a uniform sample of rows (training points for k-means; recall queries)
    n_train = min(n, max(nlist * _SAMPLE_PER_CELL, 1000))
    pick = np.sort(rng.choice(n, n_train, replace=False))
    bases = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    train, seen = [], 0
    for p, emb in enumerate(partitions()):
        if emb.shape != (sizes[p], dim):
            raise InputFileError(f"partition {p}: embeddings of shape {emb.shape}, not ({sizes[p]}, {dim})")
        lo, hi = np.searchsorted(pick, [bases[p], bases[p + 1]])
        train.append(_prepare(emb[pick[lo:hi] - bases[p]], metric))
        seen += len(emb)
        del emb
    train = np.concatenate(train)
    q_ids = pick[rng.choice(n_train, min(_RECALL_QUERIES, n_train), replace=False)]
    queries = train[np.searchsorted(pick, q_ids)]

    quantizer = faiss.IndexFlat(dim, _faiss_metric(faiss, metric))
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, _faiss_metric(faiss, metric))
    index.cp.seed = seed
    log(f"training {nlist:,} cells on {n_train:,} sampled entities")
    index.train(train)
    del train
    t_train = time.perf_counter() - t0

    # pass 2: file every row under its cell (row i = global id i), and answer the recall
    # queries exactly on the way
    from ember.pbg.predict import TopK

    k = min(_RECALL_K, n - 1) if n > 1 else 0
    top = TopK(len(queries), k + 1) if k else None
    for p, emb in enumerate(partitions()):
        x = _prepare(emb, metric)
        del emb
        log(f"adding partition {p}: {len(x):,} entities")
        index.add(x)
        if top is not None:
            for lo in range(0, len(x), 65536):
                top.push(_exact_scores(queries, x[lo : lo + 65536], metric), int(bases[p]) + lo)
        del x
    if index.ntotal != n:
        raise InputFileError(f"the partitions held {index.ntotal:,} entities, expected {n:,}")
    t_add = time.perf_counter() - t0 - t_train

    # the smallest nprobe of the grid that reaches the target recall on the sample
    recall = None
    if top is not None:
        truth = [set(i[i != qi][:k].tolist()) for (_, i), qi in zip(top.result(), q_ids)]
        # 1, 2, 3, 4, 6, 8, 12, ...: steps of 1.5x or less, up to every cell
        grid = sorted({min(m * 2**j, nlist) for j in range(int(math.log2(nlist)) + 2) for m in (2, 3)} | {1})
        tried = [nprobe] if nprobe else grid
        for npr in dict.fromkeys(tried):
            index.nprobe = int(npr)
            _, got = index.search(queries, k + 1)
            recall = float(
                np.mean([len(t & set(g[g != qi][:k].tolist())) / k for t, g, qi in zip(truth, got, q_ids)])
            )
            log(f"nprobe {npr}: recall@{k} {recall:.3f} on {len(q_ids)} sampled entities")
            if recall >= target_recall:
                break
        nprobe = int(index.nprobe)
    else:
        nprobe = int(nprobe or 1)
    index.nprobe = nprobe
    facts = {
        "library": "faiss",
        "library_version": faiss.__version__,
        "index": "IndexIVFFlat",
        "metric": metric,
        "faiss_metric": "L2" if metric == "l2" else "inner_product",
        "normalized": metric == "cos",
        "count": n,
        "dimension": dim,
        "nlist": nlist,
        "nprobe": nprobe,
        "train_sample": int(n_train),
        "target_recall": target_recall,
        "measured_recall": None if recall is None else {"k": k, "queries": len(q_ids), "recall": recall},
        "seconds": {
            "train": round(t_train, 3),
            "add": round(t_add, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
    }
    return index, facts


def build_index(
    model,
    entity_type: str | None = None,
    metric: str = "cos",
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    target_recall: float = 0.95,
    log=None,
) -> dict:
    """Build the index of ``entity_type`` by ``metric`` over ``model`` (an
    `EmbeddingModel`) and write it into the workspace; returns its description (the JSON)."""
    faiss = _faiss()
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r}: choose one of {', '.join(METRICS)}")
    t = model._type(entity_type)
    sizes = model.partition_sizes(t)

    def partitions():
        for p in range(model.num_partitions(t)):
            yield model.read_partition(t, p)

    index, facts = build_from_partitions(
        partitions,
        sizes,
        model.dim,
        metric,
        nlist=nlist,
        nprobe=nprobe,
        target_recall=target_recall,
        seed=getattr(model.config, "seed", 0) or 0,
        log=log,
    )
    meta_path = index_paths(model.workspace.root, t, metric)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    old = _read_meta(meta_path)
    data_path = meta_path.with_name(f"{t}_{metric}.{uuid.uuid4().hex[:12]}.faiss")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "entity_type": t,
        "checkpoint": _checkpoint_key(model),
        "checkpoint_version": model.version,
        "partition_sizes": list(sizes),
        "file": data_path.name,
        **facts,
    }
    try:
        with atomic_path(data_path) as tmp:
            faiss.write_index(index, str(tmp))
        meta["file_bytes"] = data_path.stat().st_size
        write_json_atomic(meta_path, meta)
    except BaseException:
        if not meta_path.is_file() or _read_meta(meta_path).get("file") != data_path.name:
            data_path.unlink(missing_ok=True)
        raise
    # the previous index file goes only once the new JSON names the new one
    if old and old.get("file") and old["file"] != data_path.name:
        (meta_path.parent / old["file"]).unlink(missing_ok=True)
    model.__dict__.pop("_ann_indexes", None)  # the model's next query opens the new index
    meta["path"] = str(meta_path)
    return meta


def _checkpoint_key(model) -> str:
    """The checkpoint folder, relative to the workspace when inside it (so that a moved
    workspace keeps its index)."""
    ck, root = Path(model.checkpoint.path).resolve(), Path(model.workspace.root).resolve()
    try:
        return str(ck.relative_to(root))
    except ValueError:
        return str(ck)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else {}


class NeighborIndex:
    """A loaded index: `search` gives (scores, global ids) per query, best first."""

    def __init__(self, index, meta: dict):
        self.index, self.meta = index, meta
        self.metric = meta["metric"]

    def search(self, vectors: np.ndarray, k: int, exclude=None):
        """The k nearest rows to each of ``vectors`` (Q, d), leaving out ``exclude[q]``
        (a global id, or -1) for query q; scores on the exact search's scale."""
        q = _prepare(np.atleast_2d(vectors), self.metric)
        extra = 0 if exclude is None else 1
        k_ask = min(k + extra, self.index.ntotal)
        dist, ids = self.index.search(q, k_ask)
        if self.metric == "l2":
            dist = -np.sqrt(np.maximum(dist, 1e-30))
        out = []
        for row, (s, i) in enumerate(zip(dist, ids)):
            keep = i >= 0
            if exclude is not None:
                keep &= i != exclude[row]
            s, i = s[keep].astype(np.float32), i[keep].astype(np.int64)
            order = np.lexsort((i, -s))[:k]  # best first, ties by id as the exact search
            out.append((s[order], i[order]))
        return out


def open_index(model, entity_type: str, metric: str) -> NeighborIndex | None:
    """The workspace's index of ``entity_type`` by ``metric`` when one exists and matches
    ``model``; None when there is none. A stale or unreadable one gives None and a
    `StaleIndexWarning` that says why and how to rebuild it."""
    meta_path = index_paths(model.workspace.root, entity_type, metric)
    if not meta_path.is_file():
        return None
    meta = _read_meta(meta_path)
    rebuild = f"rebuild it with `pbg index CONFIG --entity-type {entity_type} --metric {metric}`"
    why = None
    if not meta or meta.get("format_version") != FORMAT_VERSION:
        why = "is not an index this version of ember can read"
    elif meta.get("checkpoint") != _checkpoint_key(model):
        why = (
            f"was built from the checkpoint {meta.get('checkpoint')}, "
            f"the model queried is {_checkpoint_key(model)}"
        )
    elif meta.get("checkpoint_version") != model.version:
        why = (
            f"was built from checkpoint version {meta.get('checkpoint_version')}, "
            f"the model queried is version {model.version}"
        )
    elif (
        meta.get("partition_sizes") != list(model.partition_sizes(entity_type))
        or meta.get("dimension") != model.dim
    ):
        why = "was built for other entity counts or another dimension"
    if why is None:
        try:
            import faiss
        except ImportError:
            why = f"needs faiss, which is not installed ({INSTALL_HINT})"
            rebuild = "install faiss"
    if why is None:
        data = meta_path.parent / str(meta.get("file"))
        if not data.is_file() or data.stat().st_size != meta.get("file_bytes"):
            why = f"names {data.name}, which is missing or incomplete"
    if why is not None:
        warnings.warn(
            f"{meta_path}: the index {why}; using the exact search ({rebuild})",
            StaleIndexWarning,
            stacklevel=3,
        )
        return None
    try:
        # memory-mapped: a query reads only the cells it probes
        index = faiss.read_index(str(data), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as e:
        warnings.warn(
            f"{data}: unreadable index ({str(e).strip().splitlines()[-1]}); "
            f"using the exact search ({rebuild})",
            StaleIndexWarning,
            stacklevel=3,
        )
        return None
    index.nprobe = int(meta["nprobe"])
    return NeighborIndex(index, meta)
