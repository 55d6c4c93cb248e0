"""The training config: one schema that is its own documentation.

Keys keep PyTorch-BigGraph's names, meanings and (where PBG has one) defaults, so a PBG
user's config loads as is. Every key is declared once below with its type, default,
allowed values and a doc string; validation, `describe()`, `to_dict()` and the
commented `dump_toml()` writer all read that one declaration.

Configs come from TOML, JSON, or a PBG Python file (a module whose
``get_torchbiggraph_config()`` returns a dict)::

    from ember.pbg.config import load_config
    config = load_config("ws/config.toml", overrides=["dimension=200", "lr=0.1"])

Every problem is a `ember.errors.ConfigError` whose message names the key
(``relations.0.lhs: ...``), and the file when there is one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import runpy
import textwrap
from dataclasses import dataclass, field
from typing import Any

from ember._names import check_path_name
from ember.errors import ConfigError
from ember.partitioning.ordering import ORDERS as BUCKET_ORDERS
from ember.pbg.model import COMPARATORS, LOSSES, OPERATORS

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "BUCKET_ORDERS",
    "COMPARATORS",
    "DTYPES",
    "LOSS_FNS",
    "OPERATORS",
    "REGULARIZERS",
    "ConfigSchema",
    "EntitySchema",
    "RelationSchema",
    "apply_overrides",
    "default_of",
    "describe",
    "dump_toml",
    "load_config",
    "parse_config",
    "schema_fields",
]

# The model parts' registries are the only lists of their names (a part registered later
# is accepted here too); so are the bucket orderings of `ember.partitioning.ordering`.
LOSS_FNS = LOSSES
REGULARIZERS = ("none", "N3")
DTYPES = ("float32", "float16", "bfloat16")

_REQUIRED = dataclasses.MISSING
_DEVICE = re.compile(r"^(cpu|cuda|cuda:\d+)$")


def key(
    doc: str,
    default: Any = _REQUIRED,
    *,
    type: Any,
    optional: bool = False,
    choices=None,
    lo: float | None = None,
    lo_open: bool = False,
    hi: float | None = None,
    hi_open: bool = False,
    path: bool = False,
    group: str = "",
    no_effect: bool = False,
):
    """Declare one config key: its doc string, default, type and allowed values.

    ``type`` is ``int``, ``float``, ``bool``, ``str``, ``list`` (of str) or ``dict``;
    ``optional`` allows ``None`` (unset); ``choices`` is a tuple or a registry (a dict
    whose keys are the names, read when a value is checked); ``lo``/``hi`` bound numbers
    (``*_open``: exclusive); ``path`` marks paths resolved against the config file's
    folder; ``no_effect`` marks a key accepted for PyTorch-BigGraph configs that changes
    nothing here (its doc says so).
    """
    doc = " ".join(doc.split())
    if no_effect:
        doc += " Accepted, no effect in Ember."
    meta = dict(
        doc=doc,
        type=type,
        optional=optional,
        choices=choices,
        lo=lo,
        lo_open=lo_open,
        hi=hi,
        hi_open=hi_open,
        path=path,
        group=group,
        no_effect=no_effect,
    )
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: _deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- checks
def _type_name(meta) -> str:
    """The key's type in words, with its article: "an integer", "a number or unset"."""
    names = {
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        str: "a string",
        list: "a list of strings",
        dict: "a table",
        "relations": "a list of tables",
    }
    name = names[meta["type"]]
    return f"{name} or unset" if meta["optional"] else name


def _check_value(where: str, value: Any, meta) -> Any:
    """Return ``value`` converted to the key's type, or raise naming ``where``."""
    t = meta["type"]
    if value is None:
        if meta["optional"]:
            return None
        raise ConfigError(f"{where}: must be {_type_name(meta)}, not unset (null)")
    ok = False
    if t is bool:
        ok = isinstance(value, bool)
    elif t is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif t is str:
        ok = isinstance(value, str)
    elif t is list:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        if ok:
            value = list(value)
    if not ok:
        raise ConfigError(f"{where}: must be {_type_name(meta)}, got {type(value).__name__} {value!r}")
    choices = meta["choices"]
    if choices is not None and value not in choices:
        hint = difflib.get_close_matches(str(value), choices, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}{extra}")
    if t in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value}")
        lo, hi = meta["lo"], meta["hi"]
        if lo is not None and (value <= lo if meta["lo_open"] else value < lo):
            raise ConfigError(f"{where}: must be {'>' if meta['lo_open'] else '>='} {lo}, got {value!r}")
        if hi is not None and (value >= hi if meta["hi_open"] else value > hi):
            raise ConfigError(f"{where}: must be {'<' if meta['hi_open'] else '<='} {hi}, got {value!r}")
    if t is str and not value and not meta["optional"] and choices is None:
        raise ConfigError(f"{where}: must not be empty")
    return value


def _unknown_key(where: str, name: str, valid) -> ConfigError:
    hint = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    return ConfigError(f"{where}: unknown key {name!r}{extra}")


def _build(cls, raw: Any, where: str):
    """Build dataclass ``cls`` from the mapping ``raw``, checking every key."""
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: must be a table, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in raw:
        if not isinstance(name, str) or name not in fields:
            raise _unknown_key(where or "config", str(name), fields)
    values = {}
    for name, f in fields.items():
        if name in raw:
            values[name] = raw[name]
        elif f.default is _REQUIRED and f.default_factory is _REQUIRED:
            raise ConfigError(f"{prefix}{name}: missing required key ({f.metadata['doc']})")
    return cls(**values, _where=where)


# --------------------------------------------------------------------------- schema
@dataclass(kw_only=True)
class EntitySchema:
    """One entity type (a key of ``entities``)."""

    num_partitions: int = key(
        """Number of partitions for this entity type; 1 if unpartitioned. All partitioned
        types (more than 1 partition) must have the same number of partitions.""",
        1,
        type=int,
        lo=1,
    )
    featurized: bool = key(
        """Whether an entity of this type is a bag of features (PyTorch-BigGraph's
        meaning): its embedding is the mean of its features' embeddings (plus the type's
        global embedding), and the features, not the entities, are what is trained: the
        type's table in the checkpoint is the feature table. Needs the features at import
        (`pbg import --features TYPE=FILE`) and num_partitions = 1.""",
        False,
        type=bool,
    )
    dimension: int | None = key(
        """The embedding dimension of this entity type, if given. Must equal the global
        `dimension`: per-type dimensions are not supported (Ember's operators are square,
        d x d, and its fused batch loss scores both sides and their negatives in one
        dimension; PyTorch-BigGraph allows differing dimensions only with the linear
        operator, a d_rhs x d_lhs matrix per relation).""",
        None,
        type=int,
        optional=True,
        lo=1,
    )
    _where: str = field(default="entities.?", repr=False, compare=False, metadata={})

    def __post_init__(self):
        _check_fields(self, self._where)
        if self.featurized and self.num_partitions > 1:
            raise ConfigError(
                f"{self._where}.featurized: a featurized entity type is not partitioned "
                f"(num_partitions = {self.num_partitions}): PyTorch-BigGraph needs all of an "
                "entity's features in its partition, and a feature shared by entities of two "
                "partitions would have to live in both; set num_partitions = 1 (other types "
                "may stay partitioned)"
            )


@dataclass(kw_only=True)
class RelationSchema:
    """One relation type (an entry of ``relations``)."""

    name: str = key("Human-readable name of the relation type, used in logs.", type=str)
    lhs: str = key("Entity type of the left-hand side (a key of `entities`).", type=str)
    rhs: str = key("Entity type of the right-hand side (a key of `entities`).", type=str)
    weight: float = key(
        "Weight by which the loss of this relation's edges is multiplied.",
        1.0,
        type=float,
        lo=0.0,
        lo_open=True,
    )
    operator: str = key(
        """Transformation applied to one side's embedding before comparing it with the
        other: none, translation (TransE), diagonal (DistMult), linear (RESCAL), affine,
        complex_diagonal (ComplEx), rotate (RotatE).""",
        "none",
        type=str,
        choices=OPERATORS,
    )
    all_negs: bool = key(
        """Use all entities of the same type (and partition) as negatives instead of
        sampled ones.""",
        False,
        type=bool,
    )
    _where: str = field(default="relations.?", repr=False, compare=False, metadata={})

    def __post_init__(self):
        _check_fields(self, self._where)


def _check_fields(obj, where: str) -> None:
    for f in dataclasses.fields(obj):
        if "doc" in f.metadata:
            setattr(
                obj,
                f.name,
                _check_value(f"{where}.{f.name}" if where else f.name, getattr(obj, f.name), f.metadata),
            )


_STRUCTURE, _IO, _MODEL, _TRAIN, _EVAL, _RUN, _PBG = (
    "Graph structure",
    "I/O",
    "Scoring model",
    "Training",
    "Evaluation during training",
    "Execution",
    "PyTorch-BigGraph compatibility",
)


@dataclass(kw_only=True)
class ConfigSchema:
    """A complete, validated training config (PyTorch-BigGraph's keys and meanings)."""

    # Graph structure ---------------------------------------------------------------
    entities: dict = key(
        """The entity types: a table from type name to {num_partitions, featurized,
        dimension}. Relations refer to a type by its key here.""",
        type=dict,
        group=_STRUCTURE,
    )
    relations: list = key(
        """The relation types: a list of {name, lhs, rhs, operator, weight, all_negs}.
        Edge files refer to a relation by its index in this list.""",
        type="relations",
        group=_STRUCTURE,
    )
    dynamic_relations: bool = key(
        """Dynamic relation mode: exactly one entry in `relations`, whose settings apply
        to every relation type found in the data (their number is read from the
        workspace); batches then mix relation types.""",
        False,
        type=bool,
        group=_STRUCTURE,
    )
    # I/O -----------------------------------------------------------------------------
    entity_path: str = key(
        "Folder with the entity dictionaries and counts (written by `pbg import`).",
        type=str,
        path=True,
        group=_IO,
    )
    edge_paths: list = key(
        "Folders with partitioned edge lists (bucket shards); usually one.",
        type=list,
        path=True,
        group=_IO,
    )
    edge_format: str = key(
        """Ember's own key (PyTorch-BigGraph has none; it always writes HDF5): the format
        of the edge shards `pbg import --config` writes, hdf5 (as PBG stores them; a
        column that compresses well compressed) or arrow
        (uncompressed Arrow IPC, memory-mappable). The import's --format flag overrides
        it; readers take the format from the workspace manifest, whatever this says.""",
        "hdf5",
        type=str,
        choices=("hdf5", "arrow"),
        group=_IO,
    )
    checkpoint_path: str = key(
        """Folder where checkpoints (and so the trained embeddings) are written; training
        resumes from a checkpoint found there.""",
        type=str,
        path=True,
        group=_IO,
    )
    init_path: str | None = key(
        "Checkpoint folder to warm-start embeddings and relation parameters from.",
        None,
        type=str,
        optional=True,
        path=True,
        group=_IO,
    )
    checkpoint_preservation_interval: int | None = key(
        "If set, keep a snapshot of the checkpoint every this many epochs.",
        None,
        type=int,
        optional=True,
        lo=1,
        group=_IO,
    )
    # Scoring model -------------------------------------------------------------------
    dimension: int = key(
        "Dimension of the embeddings.",
        type=int,
        lo=1,
        group=_MODEL,
    )
    init_scale: float = key(
        "Standard deviation of the normal distribution embeddings are initialised from.",
        1e-3,
        type=float,
        lo=0.0,
        lo_open=True,
        group=_MODEL,
    )
    max_norm: float | None = key(
        "If set, embeddings whose norm exceeds it are rescaled to it.",
        None,
        type=float,
        optional=True,
        lo=0.0,
        lo_open=True,
        group=_MODEL,
    )
    global_emb: bool = key(
        "Add to each embedding a learned vector shared by all entities of its type.",
        True,
        type=bool,
        group=_MODEL,
    )
    bias: bool = key(
        """Withhold the first embedding dimension from the comparator and add it to the
        score as a bias (for logistic and softmax losses).""",
        False,
        type=bool,
        group=_MODEL,
    )
    comparator: str = key(
        "How the two (transformed) sides of an edge are compared into a score.",
        "cos",
        type=str,
        choices=COMPARATORS,
        group=_MODEL,
    )
    loss_fn: str = key(
        "How the scores of positives and their negatives become a loss.",
        "ranking",
        type=str,
        choices=LOSS_FNS,
        group=_MODEL,
    )
    margin: float = key(
        "Ranking loss: the separation between positive and negative scores below which "
        "a (linear) loss is incurred.",
        0.1,
        type=float,
        lo=0.0,
        group=_MODEL,
    )
    regularization_coef: float = key(
        "Weight of the regularization term (0: none).",
        0.0,
        type=float,
        lo=0.0,
        group=_MODEL,
    )
    regularizer: str = key(
        "Regularizer applied when `regularization_coef` > 0: N3 (nuclear 3-norm) or none.",
        "N3",
        type=str,
        choices=REGULARIZERS,
        group=_MODEL,
    )
    reciprocal: bool = key(
        """Train with reciprocal relations (each edge also as its inverse, predicted from
        the tail side); with all_negs on a graph small enough this is 1-vs-all
        training.""",
        False,
        type=bool,
        group=_MODEL,
    )
    # Training ------------------------------------------------------------------------
    num_epochs: int = key("Number of passes over all the edges.", 1, type=int, lo=0, group=_TRAIN)
    num_edge_chunks: int | None = key(
        """Number of equal parts each bucket is split into; training goes over the first
        chunk of every bucket, then the second, ... Unset: computed from
        `max_edges_per_chunk`.""",
        None,
        type=int,
        optional=True,
        lo=1,
        group=_TRAIN,
    )
    bucket_order: str = key(
        "Order in which the buckets (partition pairs) are trained.",
        "inside_out",
        type=str,
        choices=BUCKET_ORDERS,
        group=_TRAIN,
    )
    batch_size: int = key("Edges per batch.", 1000, type=int, lo=1, group=_TRAIN)
    num_batch_negs: int = key(
        "Negatives per positive taken from the other positives of its chunk.",
        50,
        type=int,
        lo=0,
        group=_TRAIN,
    )
    num_uniform_negs: int = key(
        "Negatives per positive sampled uniformly from the current partition.",
        50,
        type=int,
        lo=0,
        group=_TRAIN,
    )
    negative_partitions: str = key(
        """Ember's own key: where a bucket's uniform negatives come from. side: the
        partition of the side being corrupted (PyTorch-BigGraph's); bucket: in a bucket
        of two partitions of one entity type, half of each side's uniform negatives come
        from the other partition, so that scores are compared across partitions too;
        auto: bucket when `global_emb` is on, else side. Measured with 4 partitions
        (filtered MRR, 3 seeds; 1 partition in brackets): WordNet with global_emb 0.275
        side, 0.285 bucket (0.295); Kinships with global_emb 0.663 side, 0.686 bucket
        (0.733); Kinships without it 0.703 side, 0.672 bucket (0.726); WordNet without it
        0.235 side, 0.238 bucket (0.234). The global embedding adds a per-relation prior
        on the target (the score's <op_r(g), t> term) that partition-local negatives never
        compare across partitions.""",
        "auto",
        type=str,
        choices=("auto", "side", "bucket"),
        group=_TRAIN,
    )
    disable_lhs_negs: bool = key("Do not corrupt the left-hand side.", False, type=bool, group=_TRAIN)
    disable_rhs_negs: bool = key("Do not corrupt the right-hand side.", False, type=bool, group=_TRAIN)
    lr: float = key(
        "Learning rate (Adagrad; row-wise for entity embeddings).",
        1e-2,
        type=float,
        lo=0.0,
        lo_open=True,
        group=_TRAIN,
    )
    relation_lr: float | None = key(
        "Learning rate of the relation parameters; unset: `lr`.",
        None,
        type=float,
        optional=True,
        lo=0.0,
        lo_open=True,
        group=_TRAIN,
    )
    # Evaluation during training ------------------------------------------------------
    eval_fraction: float = key(
        """Fraction of each bucket's edges held out from training to report metrics
        before and after training on it.""",
        0.05,
        type=float,
        lo=0.0,
        hi=1.0,
        hi_open=True,
        group=_EVAL,
    )
    eval_num_batch_negs: int | None = key(
        """Batch negatives per positive for those evaluations: the other held-out edges'
        entities, in chunks of this many edges; unset: `num_batch_negs`.""",
        1000,
        type=int,
        optional=True,
        lo=0,
        group=_EVAL,
    )
    eval_num_uniform_negs: int | None = key(
        "Uniform negatives per positive for those evaluations; unset: `num_uniform_negs`.",
        1000,
        type=int,
        optional=True,
        lo=0,
        group=_EVAL,
    )
    # Execution -----------------------------------------------------------------------
    workers: int | None = key(
        "Number of parallel training workers; unset: the CPU count.",
        None,
        type=int,
        optional=True,
        lo=1,
        group=_RUN,
    )
    seed: int = key(
        "Random seed for initialisation, shuffling and negative sampling.",
        0,
        type=int,
        group=_RUN,
    )
    device: str = key('"cpu", "cuda" or "cuda:N" (a GPU needs cupy).', "cpu", type=str, group=_RUN)
    dtype: str = key(
        """Storage dtype of the embedding tables; arithmetic, gradients, optimizer state and
        checkpoints stay float32. float16 halves table memory and transfers. bfloat16 is
        refused by the trainer: neither numpy nor cupy has a bfloat16 array type.""",
        "float32",
        type=str,
        choices=DTYPES,
        group=_RUN,
    )
    verbose: int = key(
        """Logging verbosity: 0 prints a progress line on a terminal only; 1 or more also
        logs every trained bucket's statistics (edges, loss, edges/s, held-out metrics) to
        stderr, terminal or not.""",
        0,
        type=int,
        lo=0,
        group=_RUN,
    )
    # PyTorch-BigGraph compatibility --------------------------------------------------
    max_edges_per_chunk: int = key(
        "Most edges per chunk when `num_edge_chunks` is unset.",
        1_000_000_000,
        type=int,
        lo=1,
        group=_PBG,
    )
    hogwild_delay: float = key(
        "PBG: seconds by which Hogwild workers but the first start late in epoch 1 (Ember's "
        "workers start together).",
        2.0,
        type=float,
        lo=0.0,
        group=_PBG,
        no_effect=True,
    )
    background_io: bool = key("PBG: deprecated in PBG.", False, type=bool, group=_PBG, no_effect=True)
    num_machines: int | None = key(
        """Machines (MPI ranks) that train together: `mpiexec -n N pbg train` launches N;
        unset: however many the job has; if set, it must equal that number.""",
        None,
        type=int,
        optional=True,
        lo=1,
        group=_PBG,
    )
    num_partition_servers: int = key(
        """PBG: partition servers for distributed training. Ember's trainers are its
        partition servers (PBG's -1, the only value accepted): partitions not in use
        stay in the memory of the rank that trained them last.""",
        -1,
        type=int,
        group=_PBG,
    )
    distributed_init_method: str | None = key(
        """PBG: rendezvous URI for distributed training. The MPI launcher (`mpiexec`)
        connects Ember's ranks, so only unset is accepted.""",
        None,
        type=str,
        optional=True,
        group=_PBG,
    )
    distributed_tree_init_order: bool = key(
        """Training across machines: in the run's first pass a bucket is handed out only
        once one of its partitions has been trained (growing from partition 0), so that
        partitions do not each start in coordinates of their own (PBG's meaning).""",
        True,
        type=bool,
        group=_PBG,
    )
    num_gpus: int = key(
        'PBG: GPUs to train on; Ember uses `device` ("cuda") instead, so 0 only.',
        0,
        type=int,
        lo=0,
        group=_PBG,
    )
    num_groups_for_partition_server: int = key(
        "PBG: distributed communication groups.", 16, type=int, lo=1, group=_PBG, no_effect=True
    )
    half_precision: bool = key(
        'PBG: half-precision training; Ember uses `dtype` ("float16") instead.',
        False,
        type=bool,
        group=_PBG,
    )
    _where: str = field(default="", repr=False, compare=False, metadata={})

    # ---------------------------------------------------------------- validation
    def __post_init__(self):
        for f in dataclasses.fields(self):
            if "doc" in f.metadata and f.metadata["type"] not in (dict, "relations"):
                setattr(self, f.name, _check_value(f.name, getattr(self, f.name), f.metadata))
        self.entities = self._entities(self.entities)
        self.relations = self._relations(self.relations)
        if not self.edge_paths:
            raise ConfigError("edge_paths: must name at least one folder")
        if not _DEVICE.match(self.device):
            raise ConfigError(f'device: must be "cpu", "cuda" or "cuda:N", got {self.device!r}')
        self._check_combinations()

    def _entities(self, raw) -> dict:
        if not isinstance(raw, dict):
            raise ConfigError(f"entities: must be a table of entity types, got {raw!r}")
        if not raw:
            raise ConfigError("entities: must define at least one entity type")
        out = {}
        for name, spec in raw.items():
            where = f"entities.{name}"
            check_path_name(name, where)
            out[name] = spec if isinstance(spec, EntitySchema) else _build(EntitySchema, spec, where)
        return out

    def _relations(self, raw) -> list:
        if not isinstance(raw, list | tuple):
            raise ConfigError(f"relations: must be a list of relation tables, got {raw!r}")
        if not raw:
            raise ConfigError("relations: must define at least one relation type")
        return [
            r if isinstance(r, RelationSchema) else _build(RelationSchema, r, f"relations.{i}")
            for i, r in enumerate(raw)
        ]

    def _check_combinations(self) -> None:
        defined = ", ".join(map(repr, self.entities))
        for name, ent in self.entities.items():
            if ent.dimension is not None and ent.dimension != self.dimension:
                raise ConfigError(
                    f"entities.{name}.dimension: {ent.dimension} differs from dimension = "
                    f"{self.dimension}; per-type dimensions are not supported: Ember's operators "
                    "are square (d x d) and its fused batch loss scores both sides and their "
                    "negatives in one dimension (PyTorch-BigGraph allows differing dimensions "
                    f"only with the linear operator); set it to {self.dimension} or remove it"
                )
        for i, rel in enumerate(self.relations):
            for side in ("lhs", "rhs"):
                etype = getattr(rel, side)
                if etype not in self.entities:
                    raise ConfigError(
                        f"relations.{i}.{side}: entity type {etype!r} of relation "
                        f"{rel.name!r} is not defined in entities (defined: {defined})"
                    )
            dl = self.entity_dimension(rel.lhs)
            if OPERATORS[rel.operator].complex and dl % 2:
                raise ConfigError(
                    f"relations.{i}.operator: {rel.operator!r} treats embeddings as complex "
                    f"numbers and needs an even dimension, got {dl}"
                )
        if self.dynamic_relations and len(self.relations) != 1:
            raise ConfigError(
                f"dynamic_relations: with dynamic relations, `relations` must have exactly "
                f"one entry (whose settings apply to all relation types), got "
                f"{len(self.relations)}"
            )
        partitioned = {n: e.num_partitions for n, e in self.entities.items() if e.num_partitions > 1}
        if len(set(partitioned.values())) > 1:
            first = next(iter(partitioned))
            for name, count in partitioned.items():
                if count != partitioned[first]:
                    raise ConfigError(
                        f"entities.{name}.num_partitions: {count} differs from "
                        f"entities.{first}.num_partitions = {partitioned[first]}; all "
                        "partitioned entity types need the same number of partitions"
                    )
        if self.disable_lhs_negs and self.disable_rhs_negs:
            raise ConfigError(
                "disable_rhs_negs: negatives cannot be disabled on both sides (disable_lhs_negs is also true)"
            )
        if self.num_batch_negs > self.batch_size:
            raise ConfigError(
                f"num_batch_negs: {self.num_batch_negs} batch negatives cannot come from a "
                f"batch of batch_size = {self.batch_size} edges"
            )
        if self.regularization_coef > 0 and self.regularizer == "none":
            raise ConfigError(
                f"regularization_coef: is {self.regularization_coef} but regularizer is "
                "'none'; set regularizer = 'N3' or the coefficient to 0"
            )
        if self.num_partition_servers != -1:
            raise ConfigError(
                f"num_partition_servers: {self.num_partition_servers}: Ember's trainers are its "
                "partition servers (PBG's -1); dedicated partition-server ranks (> 0) and swapping "
                "partitions through the filesystem (0) are not supported"
            )
        if self.distributed_init_method is not None:
            raise ConfigError(
                f"distributed_init_method: {self.distributed_init_method!r}: Ember's ranks are "
                "connected by the MPI launcher (mpiexec -n N pbg train ...); remove this key"
            )
        if self.num_gpus:
            raise ConfigError('num_gpus: not used by Ember; set device = "cuda" instead')
        if self.half_precision:
            raise ConfigError('half_precision: not used by Ember; set dtype = "float16" instead')

    # ---------------------------------------------------------------- helpers
    def entity_dimension(self, entity_type: str) -> int:
        """The embedding dimension of ``entity_type`` (its override, else `dimension`)."""
        return self.entities[entity_type].dimension or self.dimension

    def to_dict(self) -> dict:
        """Plain nested dicts and lists, every key included (unset ones as ``None``)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, raw: dict) -> ConfigSchema:
        """Validate a raw mapping (as read from TOML/JSON/PBG Python) into a schema."""
        return _build(cls, raw, "")


def _plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if "doc" in f.metadata}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def schema_fields(cls=ConfigSchema):
    """The documented keys of ``cls`` in declaration order."""
    return [f for f in dataclasses.fields(cls) if "doc" in f.metadata]


def default_of(f) -> Any:
    """A field's default (``dataclasses.MISSING`` when the key is required)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def describe() -> str:
    """The schema as a reference table: key, type, default, allowed values, doc."""
    lines = []
    for title, cls, prefix in (
        ("config", ConfigSchema, ""),
        ("entities.<type>", EntitySchema, "entities.<type>."),
        ("relations[i]", RelationSchema, "relations[i]."),
    ):
        lines.append(f"# {title}")
        for f in schema_fields(cls):
            m = f.metadata
            d = default_of(f)
            default = "(required)" if d is dataclasses.MISSING else _toml_value(d, unset="unset")
            choices = f" one of {'|'.join(m['choices'])}." if m["choices"] else ""
            kind = _type_name(m).split(" ", 1)[1]  # without the article
            lines.append(f"{prefix}{f.name}  ({kind}, default {default}){choices}")
            lines.append(textwrap.indent(textwrap.fill(m["doc"], 88), "    "))
    return "\n".join(lines) + "\n"


def describe_markdown() -> str:
    """The schema as the Markdown tables of README.md's "Config keys" section."""
    out = []
    for title, cls, prefix in (
        ("Top level", ConfigSchema, ""),
        ("`entities.<type>`", EntitySchema, "entities.<type>."),
        ("`relations[i]`", RelationSchema, "relations[i]."),
    ):
        out += [f"**{title}**", "", "| key | default | meaning |", "|---|---|---|"]
        for f in schema_fields(cls):
            m = f.metadata
            d = default_of(f)
            default = "*required*" if d is dataclasses.MISSING else f"`{_toml_value(d, unset='unset')}`"
            doc = " ".join(m["doc"].split())
            if m["choices"]:
                doc += " One of " + ", ".join(f"`{c}`" for c in m["choices"]) + "."
            doc = doc.replace("|", "\\|")  # a pipe would end the table cell
            out.append(f"| `{prefix}{f.name}` | {default} | {doc} |")
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- loading
def _read_raw(path: str) -> dict:
    if not os.path.exists(path):
        raise ConfigError(f"{path}: no such config file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".py":
            namespace = runpy.run_path(path, run_name="__pbg_config__")
            fn = namespace.get("get_torchbiggraph_config")
            if not callable(fn):
                raise ConfigError(f"{path}: a Python config must define get_torchbiggraph_config()")
            raw = fn()
        elif ext == ".json":
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        else:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
    except ConfigError:
        raise
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason})") from e
    except Exception as e:  # a PBG Python config is arbitrary code
        raise ConfigError(f"{path}: could not run the config: {type(e).__name__}: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a table/dict, got {type(raw).__name__}")
    return raw


def _resolve_paths(raw: dict, base: str) -> dict:
    """Make relative path keys absolute against ``base`` (URLs are left alone)."""

    def resolve(p):
        if not isinstance(p, str) or "://" in p or not p:
            return p
        return os.path.normpath(os.path.join(base, os.path.expanduser(p)))

    out = dict(raw)
    for f in schema_fields(ConfigSchema):
        if f.metadata["path"] and f.name in out:
            v = out[f.name]
            out[f.name] = [resolve(x) for x in v] if isinstance(v, list | tuple) else resolve(v)
    return out


def _parse_scalar(text: str) -> Any:
    """An override's value: a TOML value, else JSON, else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_overrides(raw: dict, overrides, base: str | None = None) -> dict:
    """Apply ``key.sub=value`` overrides (PBG's ``-p``) to a raw config dict, in place.

    Dotted keys walk nested tables; an integer part indexes a list
    (``relations.0.operator=translation``, or ``relations[0].operator=translation``).
    Values are parsed as TOML (else JSON, else kept as a string); a list-valued key given
    ``a,b`` gets ``["a", "b"]``, as in PBG.
    Relative path values are resolved against ``base`` (default: the current folder).
    """
    base = os.getcwd() if base is None else base
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        dotted, _, text = item.partition("=")
        # relations[0].operator (the README's spelling) is relations.0.operator
        dotted = re.sub(r"\[\s*(-?\d+)\s*\]", r".\1", dotted)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key part in {dotted!r}")
        value = _parse_scalar(text.strip())
        top = {f.name: f for f in schema_fields(ConfigSchema)}
        spec = top.get(parts[0])
        if len(parts) == 1 and spec is not None:
            if spec.metadata["type"] is list and isinstance(value, str):
                value = [v for v in value.split(",") if v]
            if spec.metadata["path"]:
                value = _resolve_paths({parts[0]: value}, base)[parts[0]]
        node: Any = raw
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                node = node[_index(part, node, where, item)]
            elif isinstance(node, dict):
                if part not in node:
                    if depth == 0:
                        raise _unknown_key(f"override {item!r}", part, top)
                    node[part] = {}
                node = node[part]
            else:
                raise ConfigError(f"override {item!r}: {where} is not a table or list")
        last = parts[-1]
        if isinstance(node, list):
            node[_index(last, node, dotted, item)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"override {item!r}: {'.'.join(parts[:-1])} is not a table")
    return raw


def _index(part: str, seq: list, where: str, item: str) -> int:
    try:
        i = int(part)
    except ValueError:
        raise ConfigError(f"override {item!r}: {where} indexes a list; use a number") from None
    if not -len(seq) <= i < len(seq):
        raise ConfigError(f"override {item!r}: {where} is out of range (the list has {len(seq)} entries)")
    return i


def parse_config(raw: dict, overrides=(), base: str | None = None) -> ConfigSchema:
    """Validate a raw dict (after overrides) into a `ConfigSchema`."""
    raw = apply_overrides(_deepcopy(raw), overrides, base)
    return ConfigSchema.from_dict(raw)


def _deepcopy(obj):
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_deepcopy(v) for v in obj]
    return obj


def load_config(path, overrides=()) -> ConfigSchema:
    """Load and validate a TOML, JSON or PBG Python config file.

    Relative paths in the file are resolved against the file's folder; overrides
    (``["key.sub=value", ...]``) are applied before validation, their relative paths
    against the current folder. Raises `ConfigError` naming the file and the key.
    """
    path = os.fspath(path)
    raw = _resolve_paths(_read_raw(path), os.path.dirname(os.path.abspath(path)))
    try:
        return parse_config(raw, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


# --------------------------------------------------------------------------- writing
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _toml_value(v: Any, unset: str | None = None) -> str:
    if v is None:
        if unset is not None:
            return unset
        raise ValueError("TOML has no null")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _comment(doc: str, indent: str = "") -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(doc, 86)]


def dump_toml(config: ConfigSchema, header: str | None = None, relative_to: str | None = None) -> str:
    """The config as commented TOML, keys in schema order; `load_config` reads it back.

    Unset keys are written as comments (TOML has no null). Entity types and relations
    come last, as tables, because TOML requires top-level keys before tables. The
    PyTorch-BigGraph compatibility keys are written only where they differ from their
    defaults. With ``relative_to`` (usually the folder the file goes to), paths under
    it are written relative to it, so the folder can be moved.
    """

    def rel(p):
        if relative_to is None or not isinstance(p, str) or "://" in p:
            return p
        r = os.path.relpath(p, relative_to)
        return p if r.startswith("..") else r

    out: list[str] = []
    if header:
        out += [f"# {line}" if line else "#" for line in header.splitlines()]
    group = None
    structure = [f for f in schema_fields(ConfigSchema) if f.metadata["group"] == _STRUCTURE]
    for f in schema_fields(ConfigSchema):
        if f in structure:
            continue
        value = getattr(config, f.name)
        if f.metadata["group"] == _PBG and value == default_of(f):
            continue
        if value is None and default_of(f) is not None:
            # Unset here means "same as the training key" (eval_num_*_negs); a comment
            # would read back as the non-None default, so write the effective value.
            value = getattr(config, f.name.removeprefix("eval_"))
        if f.metadata["path"]:
            value = [rel(p) for p in value] if isinstance(value, list) else rel(value)
        if f.metadata["group"] != group:
            group = f.metadata["group"]
            out += ["", f"# ---- {group} " + "-" * max(0, 76 - len(group))]
        out += _comment(f.metadata["doc"])
        if value is None:
            out.append(f"# {f.name} =   (unset)")
        else:
            out.append(f"{f.name} = {_toml_value(value)}")
    # the graph structure last: its scalar keys, then the tables (TOML wants top-level keys
    # before any table)
    out += ["", f"# ---- {_STRUCTURE} " + "-" * max(0, 76 - len(_STRUCTURE))]
    for f in structure:
        if f.name not in ("entities", "relations"):
            out += _comment(f.metadata["doc"])
            out.append(f"{f.name} = {_toml_value(getattr(config, f.name))}")
    for name in ("entities", "relations"):
        out += _comment(ConfigSchema.__dataclass_fields__[name].metadata["doc"])
    for name, ent in config.entities.items():
        out += ["", f"[entities.{_toml_key(name)}]"]
        for f in schema_fields(EntitySchema):
            value = getattr(ent, f.name)
            if value is not None:
                out.append(f"{f.name} = {_toml_value(value)}")
    for rel in config.relations:
        out += ["", "[[relations]]"]
        for f in schema_fields(RelationSchema):
            out.append(f"{f.name} = {_toml_value(getattr(rel, f.name))}")
    return "\n".join(out).lstrip("\n") + "\n"


# --------------------------------------------------------------------------- workspaces
# What `pbg import` writes into a new workspace's config.toml besides its data model and
# paths: the settings a first run starts from. PyTorch-BigGraph's defaults (the schema's:
# ranking loss, cos, lr 0.01, one epoch) suit its own benchmarks; these train a useful
# model in a few minutes on the graphs measured here (Kinships, WordNet: softmax over
# dot products with Adagrad at 0.1, ten epochs). Every other key keeps the schema default.
IMPORT_SETTINGS = {
    "dimension": 100,
    "comparator": "dot",
    "loss_fn": "softmax",
    "lr": 0.1,
    "relation_lr": 0.1,
    "num_epochs": 10,
    "eval_fraction": 0.0,
}
# the keys that belong to the workspace, not to the user's --config
WORKSPACE_KEYS = ("entities", "relations", "dynamic_relations", "entity_path", "edge_paths")


def read_config_file(path) -> dict:
    """The raw mapping of a TOML, JSON or PBG Python config file (not validated)."""
    return _read_raw(os.fspath(path))


def workspace_config(data_model: dict, folder, *, edge_format: str, seed: int, user=None, where=""):
    """The `ConfigSchema` of a new workspace in ``folder``: the schema's defaults, then
    `IMPORT_SETTINGS`, then the user's ``--config`` keys (``user``: a raw mapping, e.g. from
    `read_config_file`), with the workspace's data model (``entities``, ``relations``,
    ``dynamic_relations`` as in its manifest) and paths. ``where`` names the user's file in
    errors. Validated like any config."""
    folder = os.fspath(folder)
    raw = {**IMPORT_SETTINGS, "seed": seed, "checkpoint_path": os.path.join(folder, "checkpoints")}
    for k, v in (user or {}).items():
        if k not in WORKSPACE_KEYS:
            raw[k] = v
    # the data model's entries, with the keys only the user's tables carry (weight, ...)
    user_ents = (user or {}).get("entities")
    user_rels = (user or {}).get("relations")
    user_ents = user_ents if isinstance(user_ents, dict) else {}
    entities = {
        t: {**(user_ents[t] if isinstance(user_ents.get(t), dict) else {}), **e}
        for t, e in data_model["entities"].items()
    }
    relations = data_model["relations"]
    if isinstance(user_rels, list) and len(user_rels) == len(relations):
        relations = [{**(u if isinstance(u, dict) else {}), **r} for u, r in zip(user_rels, relations)]
    raw.update(
        entities=entities,
        relations=relations,
        dynamic_relations=data_model["dynamic_relations"],
        entity_path=os.path.join(folder, "entities"),
        edge_paths=[os.path.join(folder, "edges", "train")],
        edge_format=edge_format,
    )
    try:
        return parse_config(raw)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}" if where else str(e)) from None


def workspace_config_toml(
    data_model: dict, folder, *, edge_format: str, seed: int, user=None, where=""
) -> str:
    """`workspace_config` as the commented TOML `pbg import` writes (paths relative)."""
    config = workspace_config(data_model, folder, edge_format=edge_format, seed=seed, user=user, where=where)
    header = (
        "Written by `pbg import`. Keys and meanings follow PyTorch-BigGraph; every key is\n"
        "documented above its value. Paths are relative to the folder of this file.\n"
        "entities, relations, dynamic_relations, entity_path and edge_paths describe the\n"
        "imported data: change them only with a new import."
    )
    return dump_toml(config, header=header, relative_to=folder)
