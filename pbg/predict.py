"""Link prediction and nearest neighbours, streamed over partitions.

A query set (all queries of one relation and direction) is turned into one matrix
``A = operator_r(kept entities)`` (Q, d); the candidates are the partitions of the
target entity type, read one at a time (through the model's LRU cache) and scored in
row blocks with one matrix product ``A @ block.T`` each. A running top-k (argpartition
of the block, merged with the best so far) keeps memory at one block of scores, however
many entities there are. Cosine and L2 scores come from the same product plus cached
row norms, so no normalised copy of a partition is ever made.

>>> from ember.pbg.api import load
>>> m = load("ws")                                                       # doctest: +SKIP
>>> predict_many(m, [("n02084071", "_hypernym", None)], top_k=5)[0].names  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ember._backend import to_host
from ember.errors import InputFileError, UserError
from ember.pbg.api import Ranking

_BLOCK_SCORES = 1 << 24  # scores per block (64 MiB of float32)
_MIN_BLOCK = 1024  # candidate rows per block at least
METRICS = ("cos", "dot", "l2")


# =========================================================================== scoring
def block_scores(comparator, a, a_sq, block, block_sq):
    """Scores (Q, B) of prepared queries ``a`` (Q, d) against candidate rows ``block``
    (B, d), equal to the model comparator's ``neg`` on the same rows. ``a_sq`` and
    ``block_sq`` are the rows' squared norms."""
    name = "" if getattr(comparator, "bias", False) else comparator.name  # bias: generic
    s = a @ block.T
    if name == "dot":
        return s
    if name == "cos":
        s /= (np.sqrt(a_sq) + 1e-12)[:, None]
        s /= (np.sqrt(block_sq) + 1e-12)[None, :]
        return s
    if name in ("squared_l2", "l2"):
        s *= -2
        s += a_sq[:, None]
        s += block_sq[None, :]
        np.maximum(s, 0, out=s)
        if name == "l2":
            np.maximum(s, 1e-30, out=s)
            np.sqrt(s, out=s)
        return np.negative(s, out=s)
    # another registered comparator: its own prepare + batched compare
    ap, _ = comparator.prepare(a)
    bp, _ = comparator.prepare(block)
    return comparator.neg(ap[None], bp[None])[0]


class TopK:
    """The k best (score, global id) per query row, merged block by block."""

    def __init__(self, q: int, k: int):
        self.k = k
        self.scores = np.full((q, 0), -np.inf, np.float32)
        self.ids = np.zeros((q, 0), np.int64)

    def push(self, scores, first_id: int, ids=None):
        k = self.k
        if ids is None:
            ids = np.broadcast_to(np.arange(first_id, first_id + scores.shape[1]), scores.shape)
        if scores.shape[1] > k:  # keep the block's k best before merging
            idx = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
            scores = np.take_along_axis(scores, idx, 1)
            ids = np.take_along_axis(ids, idx, 1)
        s = np.concatenate([self.scores, scores.astype(np.float32, copy=False)], 1)
        i = np.concatenate([self.ids, ids], 1)
        if s.shape[1] > k:
            idx = np.argpartition(s, s.shape[1] - k, axis=1)[:, -k:]
            s, i = np.take_along_axis(s, idx, 1), np.take_along_axis(i, idx, 1)
        self.scores, self.ids = s, i

    def result(self):
        """(scores, ids) per row, best first (ties: lower id first), -inf dropped."""
        out = []
        for s, i in zip(self.scores, self.ids):
            order = np.lexsort((i, -s))
            s, i = s[order], i[order]
            keep = np.isfinite(s)
            out.append((s[keep], i[keep]))
        return out


def _stream_topk(model, etype, a, k, exclude_rows=None, exclude_ids=None, comparator=None):
    """Top-k over every entity of ``etype`` for prepared queries ``a`` (Q, d).

    ``exclude_rows``/``exclude_ids``: (query row, global id) pairs scored -inf."""
    cmp = comparator or model.model.comparator
    xp, dev = getattr(model, "_xp", np), getattr(model, "_to_device", np.asarray)
    on_host = xp is np
    a = dev(np.ascontiguousarray(a, np.float32))  # the queries (Q, d) go to the device
    a_sq = xp.einsum("ij,ij->i", a, a)
    top = TopK(len(a), k)
    base = 0
    block = max(_MIN_BLOCK, _BLOCK_SCORES // max(len(a), 1))
    for p, n in enumerate(model.partition_sizes(etype)):
        if n == 0:
            continue
        emb, sq = model._cached(etype, p) if on_host else model._device_cached(etype, p)
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            s = block_scores(cmp, a, a_sq, emb[lo:hi], sq[lo:hi])
            if exclude_ids is not None and len(exclude_ids):
                m = (exclude_ids >= base + lo) & (exclude_ids < base + hi)
                s[dev(exclude_rows[m]), dev(exclude_ids[m] - base - lo)] = -np.inf
            if on_host:
                top.push(s, base + lo)
            else:  # the block's k best on the device; only those come back to merge
                if s.shape[1] > k:
                    idx = xp.argpartition(s, s.shape[1] - k, axis=1)[:, -k:]
                    s = xp.take_along_axis(s, idx, 1)
                else:
                    idx = xp.broadcast_to(xp.arange(s.shape[1]), s.shape)
                top.push(to_host(s), base + lo, to_host(idx) + (base + lo))
        base += n
    return top.result()


def _split_ids(model, etype, ids):
    bases = np.concatenate([[0], np.cumsum(model.partition_sizes(etype))])
    part = np.searchsorted(bases, ids, "right") - 1
    return part, ids - bases[part]


def _global_ids(model, etype, parts, offs):
    bases = np.concatenate([[0], np.cumsum(model.partition_sizes(etype))])
    return bases[parts] + offs


# =========================================================================== known edges
def known_edges(model, rel: int, side: str, keep_parts, keep_offs):
    """(query row, global id of the other side) of every train/valid/test edge that
    completes a query ``(keep, rel)``; reads only the buckets of the kept partitions."""
    ws = model.workspace
    lt, rt = ws.relation_types(rel)
    keep_t, other_t = (lt, rt) if side == "rhs" else (rt, lt)
    keep_key, other_key = ("lhs", "rhs") if side == "rhs" else ("rhs", "lhs")
    keep_partitioned = ws.num_partitions(keep_t) > 1
    other_partitioned = ws.num_partitions(other_t) > 1
    bases = np.concatenate([[0], np.cumsum(ws.partition_sizes(other_t))])
    rows_out, ids_out = [], []
    for split in ("train", "valid", "test"):
        for (lp, rp), cnt in ws.buckets(split).items():
            if not cnt:
                continue
            kp, op = (lp, rp) if side == "rhs" else (rp, lp)
            kp_eff = kp if keep_partitioned else 0
            q = np.flatnonzero(keep_parts == kp_eff)
            if not len(q):
                continue
            d = ws.read_bucket(split, lp, rp)
            sel = d["rel"] == rel
            if not sel.any():
                continue
            ek = d[keep_key][sel].astype(np.int64)
            eo = d[other_key][sel].astype(np.int64) + bases[op if other_partitioned else 0]
            # match edges to queries by kept offset: sort edges, search query offsets
            order = np.argsort(ek, kind="stable")
            ek, eo = ek[order], eo[order]
            lo = np.searchsorted(ek, keep_offs[q], "left")
            hi = np.searchsorted(ek, keep_offs[q], "right")
            cnts = hi - lo
            rows = np.repeat(q, cnts)
            starts = np.repeat(lo - np.concatenate([[0], np.cumsum(cnts)[:-1]]), cnts)
            rows_out.append(rows)
            ids_out.append(eo[starts + np.arange(len(rows))])
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows_out), np.concatenate(ids_out)


# =========================================================================== queries
def _check_query(model, head, relation, tail):
    if relation is None or relation == "":
        raise UserError("a query needs a relation (--relation)")
    if (head is None) == (tail is None):
        raise UserError(
            f"query ({head}, {relation}, {tail}): give exactly one of head "
            "(to predict tails) or tail (to predict heads)"
        )
    return model.relation_id(relation)


def predict_many(model, queries, *, top_k: int = 10, filter_known: bool = False):
    """Answer ``(head, relation, tail)`` queries (one of head/tail ``None``) with
    `Ranking` s, in the order given. Queries sharing a relation and direction are scored
    as one matrix against each candidate block."""
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    queries = list(queries)
    if not queries:
        raise UserError("no queries given")
    groups: dict[tuple[int, str], list[int]] = {}
    for i, (h, r, t) in enumerate(queries):
        rid = _check_query(model, h, r, t)
        groups.setdefault((rid, "rhs" if t is None else "lhs"), []).append(i)
    out: list = [None] * len(queries)
    for (rid, side), idx in groups.items():
        lt, rt = model.workspace.relation_types(rid)
        keep_t, other_t = (lt, rt) if side == "rhs" else (rt, lt)
        names = [queries[i][0] if side == "rhs" else queries[i][2] for i in idx]
        kp, ko = model.locate(names, keep_t)
        keep = model._gather(keep_t, kp, ko)
        a = model.model.transform(keep, np.full(len(idx), rid), model.theta[0 if side == "rhs" else 1])
        rows = ids = None
        if filter_known:
            rows, ids = known_edges(model, rid, side, kp, ko)
        for j, (s, gid) in enumerate(_stream_topk(model, other_t, a, top_k, rows, ids)):
            parts, offs = _split_ids(model, other_t, gid)
            h, r, t = queries[idx[j]]
            query = {"head": h, "relation": model.relation_names[rid], "tail": t}
            out[idx[j]] = Ranking(query, other_t, model.names_of(other_t, parts, offs), s, parts, offs)
    return out


class _Metric:
    def __init__(self, name):
        self.name = {"cos": "cos", "dot": "dot", "l2": "l2"}[name]


def neighbors(
    model,
    name: str,
    *,
    top_k: int = 10,
    metric: str = "cos",
    entity_type: str | None = None,
    exact: bool = False,
) -> Ranking:
    """The ``top_k`` entities nearest to ``name`` (itself excluded) by ``metric``.

    With an index built by `pbg index` for this type and metric (and this checkpoint
    version), the search goes through it (`ember.pbg.index`); ``exact=True``, no index,
    or a stale one (a `StaleIndexWarning` says so) scores every entity."""
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r}: choose one of {', '.join(METRICS)}")
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    t = model._type(entity_type)
    parts, offs = model.locate([name], t)
    self_id = _global_ids(model, t, parts, offs)
    ann = None if exact else _ann_index(model, t, metric)
    if ann is not None:
        s, gid = ann.search(_rows(model, t, parts, offs), top_k, exclude=self_id)[0]
    else:
        vec = model._gather(t, parts, offs)
        res = _stream_topk(model, t, vec, top_k, np.zeros(1, np.int64), self_id, comparator=_Metric(metric))
        s, gid = res[0]
    p, o = _split_ids(model, t, gid)
    return Ranking({"entity": name, "metric": metric}, t, model.names_of(t, p, o), s, p, o)


def _ann_index(model, etype, metric):
    """The workspace's index for (etype, metric), opened once per model (None if absent)."""
    cache = model.__dict__.setdefault("_ann_indexes", {})
    key = (etype, metric)
    if key not in cache:
        from ember.pbg.index import open_index

        cache[key] = open_index(model, etype, metric)
    return cache[key]


def _rows(model, etype, parts, offs):
    """Embeddings of a few entities, read row by row from the checkpoint (with the type's
    global embedding) unless their partition is cached: an index query then never reads
    a whole partition."""
    import h5py

    if model.workspace.is_featurized(etype):  # bag means: from the derived vectors
        return model.partition(etype, 0)[offs]
    out = np.empty((len(parts), model.dim), np.float32)
    g = model.global_embeddings.get(etype)
    for j, (p, o) in enumerate(zip(parts.tolist(), offs.tolist())):
        if (etype, p) in model._cache:
            out[j] = model._cache[(etype, p)][0][o]
            continue
        path = model._partition_path(etype, p)
        try:
            with h5py.File(path, "r") as f:
                out[j] = f["embeddings"][o]
        except (OSError, KeyError) as e:
            raise InputFileError(f"{path}: unreadable checkpoint file ({e})") from None
        if g is not None:
            out[j] += g
    return out


# =========================================================================== query files
def read_query_file(path) -> list[tuple[str | None, str, str | None]]:
    """Queries, one per line: ``head<TAB>relation`` or ``head<TAB>relation<TAB>?`` (predict
    the tail), ``?<TAB>relation<TAB>tail`` (predict the head). ``#`` starts a comment."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such query file")
    out = []
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputFileError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x})") from None
    with io.StringIO(text, newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            row = [c.strip() for c in row]
            if len(row) == 2:
                row.append("?")
            if len(row) != 3:
                raise InputFileError(
                    f"{path}:{lineno}: expected head<TAB>relation<TAB>tail "
                    f"with ? for the side to predict, got {len(row)} fields"
                )
            h, r, t = (None if c in ("?", "") else c for c in row)
            if (h is None) == (t is None) or r is None:
                raise InputFileError(
                    f"{path}:{lineno}: give a relation and exactly one of head and tail (the other is ?)"
                )
            out.append((h, r, t))
    if not out:
        raise InputFileError(f"{path}: no queries in the file")
    return out
