"""PyTorch-BigGraph's data model (entity types, relations) and the generated config.

Only the data-model keys (``entities``, ``relations``, ``dynamic_relations``) are read
here; the full config schema is validated by ``ember.pbg``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ember.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_TYPE = "all"
DEFAULT_RELATION = "all_edges"  # the one relation of a 2-column edge list
DEFAULT_OPERATOR = "complex_diagonal"


@dataclass
class RelationSpec:
    name: str
    lhs: str
    rhs: str
    operator: str = DEFAULT_OPERATOR


@dataclass
class DataModel:
    entities: dict[str, int]  # type -> num_partitions
    relations: list[RelationSpec]
    dynamic_relations: bool = False
    from_config: bool = False

    @property
    def num_partitions(self) -> int:
        return max(self.entities.values()) if self.entities else 1

    def to_json(self) -> dict:
        return {
            "entities": {t: {"num_partitions": p} for t, p in self.entities.items()},
            "relations": [vars(r) for r in self.relations],
            "dynamic_relations": self.dynamic_relations,
        }

    @classmethod
    def from_json(cls, d: dict) -> DataModel:
        return cls(
            {t: int(v["num_partitions"]) for t, v in d["entities"].items()},
            [RelationSpec(**r) for r in d["relations"]],
            bool(d["dynamic_relations"]),
            True,
        )


def default_model(num_partitions: int) -> DataModel:
    return DataModel({DEFAULT_TYPE: num_partitions}, [], False, False)


def load_config(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(path.read_text())
        return tomllib.loads(path.read_text())
    except (ValueError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot parse config ({e})") from None


def model_from_config(path: Path) -> DataModel:
    """Read entities, relations and dynamic_relations from a TOML/JSON config."""
    cfg = load_config(path)
    ents = cfg.get("entities")
    if not isinstance(ents, dict) or not ents:
        raise ConfigError(f"{path}: key 'entities' must be a table of entity types")
    entities = {}
    for t, v in ents.items():
        p = (v or {}).get("num_partitions", 1) if isinstance(v, dict) else None
        if not isinstance(p, int) or isinstance(p, bool) or p < 1:
            raise ConfigError(f"{path}: key 'entities.{t}.num_partitions' must be an integer >= 1")
        entities[t] = p
    parted = {p for p in entities.values() if p > 1}
    if len(parted) > 1:
        raise ConfigError(
            f"{path}: key 'entities': partitioned entity types must share one "
            f"num_partitions (found {sorted(parted)})"
        )
    rels = cfg.get("relations")
    if not isinstance(rels, list) or not rels:
        raise ConfigError(f"{path}: key 'relations' must be a non-empty array of tables")
    relations = []
    for i, r in enumerate(rels):
        if not isinstance(r, dict):
            raise ConfigError(f"{path}: key 'relations[{i}]' must be a table")
        for k in ("name", "lhs", "rhs"):
            if not isinstance(r.get(k), str):
                raise ConfigError(f"{path}: key 'relations[{i}].{k}' is missing")
        for k in ("lhs", "rhs"):
            if r[k] not in entities:
                raise ConfigError(f"{path}: key 'relations[{i}].{k}': unknown entity type {r[k]!r}")
        relations.append(RelationSpec(r["name"], r["lhs"], r["rhs"], r.get("operator", DEFAULT_OPERATOR)))
    names = [r.name for r in relations]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: key 'relations': relation names repeat")
    dynamic = bool(cfg.get("dynamic_relations", False))
    if dynamic and len(relations) != 1:
        raise ConfigError(
            f"{path}: key 'dynamic_relations': needs exactly one relation "
            "entry (it gives the lhs/rhs types of all relations)"
        )
    return DataModel(entities, relations, dynamic, True)


SHARD_FORMATS = ("hdf5", "arrow")


def shard_format_from_config(path: Path) -> str | None:
    """The config's ``edge_format`` (ember's key: the shard format), or None if unset."""
    fmt = load_config(path).get("edge_format")
    if fmt is None:
        return None
    if fmt not in SHARD_FORMATS:
        raise ConfigError(
            f"{path}: key 'edge_format': {fmt!r} is not one of {', '.join(map(repr, SHARD_FORMATS))}"
        )
    return fmt


def _q(s: str) -> str:
    return json.dumps(s)  # a TOML basic string is a JSON string


# top-level keys of the generated config that a user's --config may set (the data
# keys and paths belong to the workspace)
TRAINING_KEYS = (
    "dimension",
    "init_scale",
    "comparator",
    "loss_fn",
    "margin",
    "lr",
    "relation_lr",
    "num_epochs",
    "batch_size",
    "num_batch_negs",
    "num_uniform_negs",
    "bucket_order",
    "regularization_coef",
    "eval_fraction",
    "workers",
    "seed",
)


def render_config(model: DataModel, fmt: str, seed: int, settings: dict | None = None) -> str:
    """A complete, commented config.toml with PyTorch-BigGraph's key names.

    ``settings``: values for TRAINING_KEYS (e.g. from the user's --config) that replace
    the defaults; everything else in them is ignored.
    """
    text = _render(model, fmt, seed)
    for k, v in (settings or {}).items():
        if k in TRAINING_KEYS and isinstance(v, (int, float, str, bool)):
            text = re.sub(rf"(?m)^{k} = \S+", lambda _m, k=k, v=v: f"{k} = {json.dumps(v)}", text, count=1)
    return text


def _render(model: DataModel, fmt: str, seed: int) -> str:
    ents = "\n".join(f"{_q(t)} = {{ num_partitions = {p} }}" for t, p in model.entities.items())
    rels = "\n\n".join(
        f"[[relations]]\nname = {_q(r.name)}\nlhs = {_q(r.lhs)}\nrhs = {_q(r.rhs)}\n"
        f"operator = {_q(r.operator)}  # none, diagonal, translation, linear, complex_diagonal"
        for r in model.relations
    )
    return f"""\
# Written by `pbg import`. Keys and meanings follow PyTorch-BigGraph.
# Paths are relative to the folder of this file.

# --- data (written by the import; change only with a new import) -------------------
# Edge shards are {fmt}. With dynamic_relations the relation names are in
# relations.parquet and the one [[relations]] entry gives their types and operator.
dynamic_relations = {str(model.dynamic_relations).lower()}
entity_path = "entities"
edge_paths = ["edges/train"]   # edges/valid and edges/test hold the held-out splits
edge_format = {_q(fmt)}          # ember's key: shard format of this import (hdf5, arrow)
checkpoint_path = "checkpoints"

# --- model --------------------------------------------------------------------------
dimension = 100            # embedding size
init_scale = 0.001         # scale of the initial random embeddings
comparator = "dot"         # dot, cos, l2, squared_l2
loss_fn = "softmax"        # softmax, ranking, logistic
margin = 0.1               # margin of the ranking loss

# --- training -----------------------------------------------------------------------
lr = 0.1                   # Adagrad learning rate of the embeddings
relation_lr = 0.1          # ... of the relation operators
num_epochs = 10
batch_size = 1000
num_batch_negs = 50        # negatives taken from the same batch
num_uniform_negs = 50      # negatives drawn uniformly from the partition
bucket_order = "inside_out"  # inside_out, outside_in, affinity, random
regularization_coef = 0.0
eval_fraction = 0.0        # share of training edges held back for a per-bucket eval
workers = 2                # worker processes for training
seed = {seed}

# --- entity types: type -> number of partitions (1 = unpartitioned) -----------------
[entities]
{ents}

# --- relations: name, entity types of the two sides, and the operator ---------------
{rels}
"""
