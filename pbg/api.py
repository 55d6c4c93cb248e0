"""The Python API of a trained model: ``ember.pbg.load(workspace_or_config)``.

>>> import ember.pbg
>>> m = ember.pbg.load("ws")                          # doctest: +SKIP
>>> m.embedding("n02084071").shape                    # doctest: +SKIP
(100,)
>>> m.predict(head="n02084071", relation="_hypernym", top_k=3).names   # doctest: +SKIP
['n02083346', ...]

The model reads the checkpoint written by `pbg train` (one HDF5 file per entity type
and partition, one for the relation parameters, a JSON manifest) and the workspace made
by `pbg import` (entity names per partition). Partition embeddings are read lazily and
kept in a small LRU bounded by ``cache_bytes``, so a model over a graph larger than
memory still answers queries: `predict` and `neighbors` stream over the partitions with
a blocked matrix product and a running top-k (see `ember.pbg.predict`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np

from ember.errors import InputFileError, UserError
from ember.pbg.checkpoint import FORMAT, MANIFEST, Checkpoint

__all__ = ["EmbeddingModel", "load", "resolve_checkpoint", "operator_parameters"]

# entity types with at most this many entities get a name -> (partition, offset) dict
_DICT_LIMIT = 5_000_000


def _config_of(workspace_or_config, overrides=()):
    from ember.pbg.config import load_config

    p = Path(workspace_or_config)
    if p.is_dir():
        if not (p / "config.toml").is_file():
            raise UserError(
                f"{p}: not a workspace (no config.toml); give the workspace "
                "folder made by `pbg import` or its config file"
            )
        p = p / "config.toml"
    elif not p.exists():
        raise UserError(f"{p}: no such workspace or config file")
    return load_config(p, overrides=overrides)


def resolve_checkpoint(config, version=None) -> Checkpoint:
    """The checkpoint to read: the latest one in ``checkpoint_path`` (``version=None``),
    a version number (the latest or a snapshot kept by
    ``checkpoint_preservation_interval``), ``"epoch_<E>"`` (a snapshot) or a folder."""
    root = Path(config.checkpoint_path)
    latest = Checkpoint(root)
    if version is None or str(version) in ("", "latest"):
        if not latest.exists:
            raise UserError(f"{root}: no checkpoint; run `pbg train` on this config first")
        return latest
    v = str(version)
    if Path(v).is_dir() and (Path(v) / MANIFEST).is_file():
        return Checkpoint(v)
    candidates = ([latest] if latest.exists else []) + [
        Checkpoint(d) for d in sorted(root.glob("epoch_*")) if (d / MANIFEST).is_file()
    ]
    for ck in candidates:
        if v == ck.path.name or (v.isdigit() and int(v) == ck.version):
            return ck
    have = ", ".join(f"{c.version} ({c.path.name})" for c in candidates) or "none"
    raise UserError(f"--checkpoint {v}: no such checkpoint version in {root} (available: {have})")


def _read_embeddings(path: Path) -> np.ndarray:
    """Only the embeddings of a checkpoint partition file (not the optimizer state)."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT or "embeddings" not in f:
                raise InputFileError(f"{path}: not an ember checkpoint partition file")
            return np.asarray(f["embeddings"][()], dtype=np.float32)
    except OSError as e:
        raise InputFileError(f"{path}: unreadable checkpoint file ({e})") from None


def operator_parameters(operator: str, dim: int, row: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """One relation side's flat parameter row (PBG's layout) as PyTorch-BigGraph's named
    parameters, as the operator's class names them (``[("real", ...), ("imag", ...)]``)."""
    from ember.pbg.model import OPERATORS

    return OPERATORS[operator](dim).named_parameters(np.asarray(row, np.float32))


class Ranking:
    """The answer to one query: candidates best first, with scores and 1-based ranks.

    ``names``, ``scores`` (numpy float32), ``ranks``, and where each candidate lives
    (``entity_type``, ``partitions``, ``offsets``); ``to_dict()`` for JSON.
    """

    def __init__(self, query: dict, entity_type: str, names, scores, partitions, offsets):
        self.query, self.entity_type = query, entity_type
        self.names = list(names)
        self.scores = np.asarray(scores, np.float32)
        self.partitions = np.asarray(partitions, np.int64)
        self.offsets = np.asarray(offsets, np.int64)

    @property
    def ranks(self) -> list[int]:
        return list(range(1, len(self.names) + 1))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(zip(self.ranks, self.names, self.scores.tolist()))

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "entity_type": self.entity_type,
            "predictions": [{"rank": r, "name": n, "score": s} for r, n, s in self],
        }

    def __repr__(self) -> str:
        top = ", ".join(f"{n} {s:.3f}" for _, n, s in list(self)[:3])
        return f"Ranking({self.query}, top: {top}{', ...' if len(self) > 3 else ''})"


class EmbeddingModel:
    """A trained model: entity names, embeddings, relation parameters, scoring.

    Made by `load`. Vectors come back as numpy arrays (``tensor=True``: ember tensors).

    >>> m = load("ws/config.toml")                                  # doctest: +SKIP
    >>> m.entities()[:2]                                            # doctest: +SKIP
    ['n00001740', 'n00001930']
    >>> m.score(["n02084071"], ["_hypernym"], ["n02083346"])        # doctest: +SKIP
    array([7.91], dtype=float32)
    >>> m.neighbors("n02084071", top_k=5, metric="cos").names       # doctest: +SKIP
    """

    def __init__(self, config, *, checkpoint=None, cache_bytes: int | None = None, device: str | None = None):
        from ember._backend import to_device
        from ember.pbg.workspace import array_module_of, build_model, check_checkpoint, open_workspace

        # predict/neighbors score candidates on this device (tables copied there once,
        # cached); embeddings(), partition() and export always give host arrays
        self.device, self._xp = array_module_of(device or "cpu")
        self._to_device = (
            np.asarray if self.device.type == "cpu" else lambda a: to_device(np.array(a), self.device)
        )

        self.workspace = open_workspace(config)
        self.checkpoint = resolve_checkpoint(config, checkpoint)
        # the model's shape is the one the checkpoint was trained with (its manifest keeps
        # the config), so `pbg train -p dimension=200` needs no -p when predicting
        self.config = _trained_config(config, self.checkpoint)
        self.model = build_model(self.config, self.workspace)
        self.version = self.checkpoint.version
        check_checkpoint(self.config, self.workspace, self.model, self.checkpoint)
        m = self.checkpoint.manifest or {}
        if not self.checkpoint.has_relations():
            raise InputFileError(f"{self.checkpoint.path / MANIFEST}: names no relation file")
        rel = self.checkpoint.load_relations()
        self.theta = [np.asarray(rel["theta_r"], np.float32), np.asarray(rel["theta_l"], np.float32)]
        # global_emb: one learned vector per entity type, part of every entity's embedding
        self.global_embeddings = {
            t: np.asarray(rel[f"global_{t}"], np.float32) for t in self.entity_types if f"global_{t}" in rel
        }
        self.relation_names: list[str] = list(m.get("relation_names") or self.workspace.relation_names)
        self._rel_index = {n: i for i, n in enumerate(self.relation_names)}
        self.cache_bytes = cache_bytes if cache_bytes is not None else _default_cache_bytes()
        self._cache: OrderedDict = OrderedDict()
        self._device_cache: OrderedDict = OrderedDict()
        self._lookup: dict[str, dict] = {}

    # -- basic facts -------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def operator(self) -> str:
        """The operator of every relation, or ``"mixed"`` when they differ (`operators`)."""
        return self.model.operator.name

    @property
    def operators(self) -> dict[str, str]:
        """Each relation's operator (a non-dynamic ``relations`` list may mix them)."""
        return dict(zip(self.relation_names, self.model.rel_ops))

    @property
    def comparator(self) -> str:
        return self.model.comparator.name

    @property
    def entity_types(self) -> list[str]:
        return list(self.workspace.entity_types)

    def num_partitions(self, entity_type: str) -> int:
        return self.workspace.num_partitions(entity_type)

    def partition_sizes(self, entity_type: str) -> list[int]:
        return self.workspace.partition_sizes(entity_type)

    def relation_types(self, relation: str | int) -> tuple[str, str]:
        """(lhs entity type, rhs entity type) of a relation."""
        return self.workspace.relation_types(self.relation_id(relation))

    def __repr__(self) -> str:
        ents = ", ".join(f"{t}: {self.workspace.num_entities(t):,}" for t in self.entity_types)
        return (
            f"EmbeddingModel({self.operator}+{self.comparator}, dim {self.dim}, "
            f"entities {{{ents}}}, {len(self.relation_names)} relations, "
            f"checkpoint {self.checkpoint.path} v{self.version})"
        )

    # -- names -------------------------------------------------------------------
    def _type(self, entity_type: str | None) -> str:
        if entity_type is None:
            if len(self.entity_types) == 1:
                return self.entity_types[0]
            raise UserError(
                f"several entity types ({', '.join(self.entity_types)}): "
                "say which one (entity_type= / --entity-type)"
            )
        if entity_type not in self.entity_types:
            raise UserError(
                f"unknown entity type {entity_type!r}; choose one of {', '.join(self.entity_types)}"
            )
        return entity_type

    def relation_id(self, relation: str | int) -> int:
        if isinstance(relation, int | np.integer):
            if not 0 <= relation < len(self.relation_names):
                raise UserError(f"relation id {relation} out of range (0..{len(self.relation_names) - 1})")
            return int(relation)
        try:
            return self._rel_index[relation]
        except KeyError:
            from difflib import get_close_matches

            near = get_close_matches(str(relation), self.relation_names, 1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise UserError(f"unknown relation {relation!r}{hint}") from None

    def entities(self, entity_type: str | None = None) -> list[str]:
        """All entity names of a type, in (partition, offset) order: row i of the
        matrix that ``embeddings(entities(t))`` gives and that `pbg export` writes."""
        t = self._type(entity_type)
        return [n for p in range(self.num_partitions(t)) for n in self.workspace.entity_names(t, p)]

    def locate(self, names, entity_type: str | None = None, *, strict: bool = True):
        """(partitions, offsets) of entity names; unknown names raise (or give -1)."""
        t = self._type(entity_type)
        names = [names] if isinstance(names, str) else list(names)
        if self.workspace.num_entities(t) <= _DICT_LIMIT:
            if t not in self._lookup:
                self._lookup[t] = {
                    n: (p, o)
                    for p in range(self.num_partitions(t))
                    for o, n in enumerate(self.workspace.entity_names(t, p))
                }
            d = self._lookup[t]
            po = np.array([d.get(n, (-1, -1)) for n in names], np.int64).reshape(-1, 2)
            parts, offs = po[:, 0], po[:, 1]
        else:
            parts, offs = self.workspace.locate(t, names)
        if strict and (parts < 0).any():
            bad = [n for n, p in zip(names, parts) if p < 0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise UserError(f"unknown entity {bad[0]!r}{more} of type {t!r}")
        return parts, offs

    def names_of(self, entity_type: str, partitions, offsets) -> list[str]:
        parts, offs = np.asarray(partitions), np.asarray(offsets)
        out = [None] * len(parts)
        for p in np.unique(parts):
            sel = np.flatnonzero(parts == p)
            for i, n in zip(sel, self.workspace.names_of(entity_type, int(p), offs[sel])):
                out[i] = n
        return out

    # -- embeddings --------------------------------------------------------------
    def _partition_path(self, entity_type: str, part: int) -> Path:
        key = f"embeddings/{entity_type}/{part}"
        if not self.checkpoint.has_partition(entity_type, part):
            raise InputFileError(
                f"{self.checkpoint.path / MANIFEST}: no embeddings for partition {part} of {entity_type!r}"
            )
        return self.checkpoint.file_path(key)  # verified against the manifest's checksum

    def read_partition(self, entity_type: str, part: int) -> np.ndarray:
        """The (n, dim) embeddings of one partition, read from disk (not cached): the
        checkpoint's rows plus the type's global embedding when the model has one
        (``global_emb``, as PyTorch-BigGraph's exporter adds it)."""
        emb = self._read_table(entity_type, part)
        g = self.global_embeddings.get(entity_type)
        if self.workspace.is_featurized(entity_type):
            from ember.pbg.featurized import featurized_vectors

            emb = featurized_vectors(self.workspace, entity_type, emb, g)
        elif g is not None:
            emb += g
        # a NaN or inf anywhere makes the sum non-finite (no temporary array in the usual
        # case; float64: finite float32 values cannot overflow it)
        bad = 0 if np.isfinite(emb.sum(dtype=np.float64)) else int(emb.size - np.isfinite(emb).sum())
        if bad:  # NaN scores nothing: every ranking would come back empty or arbitrary
            raise InputFileError(
                f"{self._partition_path(entity_type, part)}: partition {part} of {entity_type!r} holds "
                f"{bad:,} embedding values that are not finite (NaN or inf): its training diverged or "
                "the file is damaged; train again (a lower lr) or use an earlier checkpoint"
            )
        return emb

    def _read_table(self, entity_type: str, part: int) -> np.ndarray:
        """A partition's table as the checkpoint holds it (a featurized type: its features)."""
        emb = _read_embeddings(self._partition_path(entity_type, part))
        n = self.workspace.table_sizes(entity_type)[part]
        if emb.shape != (n, self.dim):
            raise InputFileError(
                f"{self._partition_path(entity_type, part)}: embeddings of "
                f"shape {emb.shape}, the workspace needs ({n}, {self.dim})"
            )
        return emb

    # -- featurized types ------------------------------------------------------------
    def is_featurized(self, entity_type: str | None = None) -> bool:
        """Whether the entities of a type are bags of features (``--features``): their
        embeddings are the mean of their features' rows plus the type's global embedding."""
        return self.workspace.is_featurized(self._type(entity_type))

    def feature_names(self, entity_type: str | None = None) -> list[str]:
        """A featurized type's feature names: row i of `feature_table`."""
        return self.workspace.feature_names(self._featurized(entity_type))

    def feature_table(self, entity_type: str | None = None) -> np.ndarray:
        """A featurized type's trained feature table, (num_features, dim), as the
        checkpoint holds it (without the global embedding)."""
        return self._read_table(self._featurized(entity_type), 0)

    def embed_features(self, features, entity_type: str | None = None, *, tensor: bool = False):
        """The (dim,) embedding an entity with these features gets, as training computes it
        (mean of the features' rows, plus the global embedding): also for an entity the
        graph never had (cold start). Unknown feature names raise.

        >>> m.embed_features(["word:graph", "word:embedding"], "doc")   # doctest: +SKIP
        """
        t = self._featurized(entity_type)
        names = [features] if isinstance(features, str) else list(features)
        if not names:
            raise UserError("embed_features(): give at least one feature")
        index = self.__dict__.setdefault("_feature_index", {})
        if t not in index:
            index[t] = {n: i for i, n in enumerate(self.feature_names(t))}
        ids = [index[t].get(n, -1) for n in names]
        if -1 in ids:
            bad = names[ids.index(-1)]
            raise UserError(f"unknown feature {bad!r} of featurized type {t!r}")
        from ember.pbg.featurized import entity_vectors

        offsets = np.array([0, len(ids)], np.int64)
        out = entity_vectors(
            self.feature_table(t), offsets, np.asarray(ids, np.int64), self.global_embeddings.get(t)
        )[0]
        if tensor:
            import ember

            return ember.tensor(out)
        return out

    def _featurized(self, entity_type):
        t = self._type(entity_type)
        if not self.workspace.is_featurized(t):
            raise UserError(f"entity type {t!r} is not featurized (imported without --features {t}=FILE)")
        return t

    def partition(self, entity_type: str, part: int) -> np.ndarray:
        """One partition's embeddings through the LRU cache."""
        return self._cached(entity_type, part)[0]

    def _cached(self, entity_type: str, part: int):
        """(embeddings, squared norms) of a partition; keeps partitions while they fit
        in ``cache_bytes`` (always the one just asked for)."""
        key = (entity_type, part)
        hit = self._cache.get(key)
        if hit is None:
            emb = self.read_partition(entity_type, part)
            sq = np.einsum("ij,ij->i", emb, emb)
            hit = (emb, sq)
            self._cache[key] = hit
            while (
                len(self._cache) > 1
                and sum(e.nbytes + s.nbytes for e, s in self._cache.values()) > self.cache_bytes
            ):
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return hit

    def _device_cached(self, entity_type: str, part: int):
        """`_cached` on the model's device: (embeddings, squared norms) there, in an LRU of
        its own bounded by ``cache_bytes`` (the host copy is not kept)."""
        if self.device.type == "cpu":
            return self._cached(entity_type, part)
        key = (entity_type, part)
        hit = self._device_cache.get(key)
        if hit is None:
            emb = self._to_device(self.read_partition(entity_type, part))
            hit = (emb, (emb * emb).sum(1))
            self._device_cache[key] = hit
            while (
                len(self._device_cache) > 1
                and sum(int(e.nbytes + s.nbytes) for e, s in self._device_cache.values()) > self.cache_bytes
            ):
                self._device_cache.popitem(last=False)
        self._device_cache.move_to_end(key)
        return hit

    def embeddings(self, names, entity_type: str | None = None, *, tensor: bool = False):
        """(n, dim) embeddings of entity names, in the order given.

        >>> m.embeddings(["n02084071", "n02083346"]).shape        # doctest: +SKIP
        (2, 100)
        """
        t = self._type(entity_type)
        parts, offs = self.locate(names, t)
        return self._gather(t, parts, offs, tensor)

    def embedding(self, name: str, entity_type: str | None = None, *, tensor: bool = False):
        """The (dim,) embedding of one entity."""
        return self.embeddings([name], entity_type, tensor=tensor)[0]

    def _gather(self, t, parts, offs, tensor=False):
        out = np.empty((len(parts), self.dim), np.float32)
        for p in np.unique(parts):
            sel = parts == p
            out[sel] = self.partition(t, int(p))[offs[sel]]
        if tensor:
            import ember

            return ember.tensor(out)
        return out

    # -- relation parameters ---------------------------------------------------------
    def relation_parameters(self):
        """Yield (relation, side, parameter name, array) for every relation and side.

        ``side="rhs"`` parameters transform the lhs to predict the rhs (tail prediction);
        ``side="lhs"`` ones transform the rhs to predict the lhs (reciprocal)."""
        for side, th in (("lhs", self.theta[1]), ("rhs", self.theta[0])):
            for r, name in enumerate(self.relation_names):
                for pname, arr in self.model.relation_parameters(r, th[r]):
                    yield name, side, pname, arr

    # -- scoring -----------------------------------------------------------------------
    def score(self, heads, relations, tails, *, tensor: bool = False):
        """Scores of edges (head, relation, tail), the trained
        ``comparator(operator_r(head), tail)``: higher is more plausible.

        >>> m.score(["a", "b"], ["likes", "likes"], ["c", "d"])   # doctest: +SKIP
        array([3.2, -0.4], dtype=float32)
        """
        heads = [heads] if isinstance(heads, str) else list(heads)
        tails = [tails] if isinstance(tails, str) else list(tails)
        relations = [relations] * len(heads) if isinstance(relations, str | int) else list(relations)
        if not len(heads) == len(relations) == len(tails):
            raise UserError(
                f"score: {len(heads)} heads, {len(relations)} relations and "
                f"{len(tails)} tails; give as many of each"
            )
        rel = np.array([self.relation_id(r) for r in relations], np.int64)
        out = np.empty(len(rel), np.float32)
        types = [self.workspace.relation_types(int(r)) for r in rel]
        for lt, rt in sorted(set(types)):
            sel = np.array([ty == (lt, rt) for ty in types])
            idx = np.flatnonzero(sel)
            lhs = self.embeddings([heads[i] for i in idx], lt)
            rhs = self.embeddings([tails[i] for i in idx], rt)
            out[idx] = self.model.score_pos(lhs, rhs, rel[idx], self.theta, "rhs")
        if tensor:
            import ember

            return ember.tensor(out)
        return out

    def predict(
        self,
        head: str | None = None,
        relation: str | int | None = None,
        tail: str | None = None,
        *,
        top_k: int = 10,
        filter_known: bool = False,
    ):
        """Rank the missing side of ``(head, relation, ?)`` or ``(?, relation, tail)``
        against every entity of its type, best first.

        >>> r = m.predict(head="n02084071", relation="_hypernym", top_k=5)  # doctest: +SKIP
        >>> r.names, r.scores                                               # doctest: +SKIP

        ``filter_known=True`` leaves out the entities that already complete the query
        in the train/valid/test edges."""
        from ember.pbg.predict import predict_many

        return predict_many(self, [(head, relation, tail)], top_k=top_k, filter_known=filter_known)[0]

    def predict_many(self, queries, *, top_k: int = 10, filter_known: bool = False):
        """`predict` for many ``(head, relation, tail)`` triples (one of head/tail None);
        queries of one relation and direction are scored together."""
        from ember.pbg.predict import predict_many

        return predict_many(self, queries, top_k=top_k, filter_known=filter_known)

    def neighbors(
        self,
        name: str,
        *,
        top_k: int = 10,
        metric: str = "cos",
        entity_type: str | None = None,
        exact: bool = False,
    ):
        """Nearest entities of the same type to ``name`` by ``cos``, ``dot`` or ``l2``
        (the entity itself left out). Uses the workspace's index (`pbg index`) for this
        type and metric when it was built from this checkpoint; ``exact=True`` scores
        every entity instead.

        >>> m.neighbors("n02084071", top_k=5).names               # doctest: +SKIP
        """
        from ember.pbg.predict import neighbors

        return neighbors(self, name, top_k=top_k, metric=metric, entity_type=entity_type, exact=exact)


def _trained_config(config, ckpt):
    from ember.errors import ConfigError
    from ember.pbg.config import parse_config

    raw = (ckpt.manifest or {}).get("config")
    if not isinstance(raw, dict):
        return config
    raw = {k: v for k, v in raw.items() if v is not None}
    raw.update(
        entity_path=config.entity_path,
        edge_paths=list(config.edge_paths),
        checkpoint_path=config.checkpoint_path,
    )
    try:
        return parse_config(raw)
    except ConfigError:
        return config


def _default_cache_bytes() -> int:
    """A quarter of the available memory (1 GiB if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 4
    except OSError:
        pass
    return 1 << 30


def load(
    workspace_or_config, *, checkpoint=None, overrides=(), cache_bytes=None, device=None
) -> EmbeddingModel:
    """Open a trained model: a workspace folder (its ``config.toml``) or a config file.

    ``checkpoint``: a version number, ``"epoch_<E>"`` or a checkpoint folder (default:
    the latest); ``overrides``: ``["key=value", ...]`` as ``pbg ... -p``; ``device``:
    where `predict`/`neighbors` score the candidates (``"cuda"``; default the CPU).

    >>> import ember.pbg
    >>> m = ember.pbg.load("wordnet_pbg")                               # doctest: +SKIP
    >>> m.predict(head="n02084071", relation="_hypernym").names[:3]     # doctest: +SKIP
    """
    return EmbeddingModel(
        _config_of(workspace_or_config, overrides),
        checkpoint=checkpoint,
        cache_bytes=cache_bytes,
        device=device,
    )
