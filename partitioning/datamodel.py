"""PyTorch-BigGraph's data model: entity types (with their partition counts) and relations.

Only the data-model keys (``entities``, ``relations``, ``dynamic_relations``) of a config
are read here; the config file itself (the full schema, and the ``config.toml`` a new
workspace gets) belongs to ``ember.pbg.config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ember._names import check_path_name
from ember.errors import ConfigError

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
    featurized: set[str] = field(default_factory=set)  # types whose entities are bags of features

    @property
    def num_partitions(self) -> int:
        return max(self.entities.values()) if self.entities else 1

    def to_json(self) -> dict:
        return {
            # "featurized" only where true: a plain workspace's manifest is as before
            "entities": {
                t: {"num_partitions": p, **({"featurized": True} if t in self.featurized else {})}
                for t, p in self.entities.items()
            },
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
            {t for t, v in d["entities"].items() if v.get("featurized")},
        )


def default_model(num_partitions: int) -> DataModel:
    return DataModel({DEFAULT_TYPE: num_partitions}, [], False, False)


def model_from_config(cfg: dict, path="config") -> DataModel:
    """Entities, relations and dynamic_relations of a config's raw mapping (as read from
    its file, once, by ``ember.pbg.config.read_config_file``); ``path`` names the file in
    errors."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: the config must be a table")
    ents = cfg.get("entities")
    if not isinstance(ents, dict) or not ents:
        raise ConfigError(f"{path}: key 'entities' must be a table of entity types")
    entities, featurized = {}, set()
    for t, v in ents.items():
        check_path_name(t, f"{path}: key 'entities.{t}'")
        p = (v or {}).get("num_partitions", 1) if isinstance(v, dict) else None
        if not isinstance(p, int) or isinstance(p, bool) or p < 1:
            raise ConfigError(f"{path}: key 'entities.{t}.num_partitions' must be an integer >= 1")
        entities[t] = p
        f = v.get("featurized", False)
        if not isinstance(f, bool):
            raise ConfigError(f"{path}: key 'entities.{t}.featurized' must be a boolean")
        if f:
            featurized.add(t)
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
    return DataModel(entities, relations, dynamic, True, featurized)


SHARD_FORMATS = ("hdf5", "arrow")


def shard_format_from_config(cfg: dict, path="config") -> str | None:
    """The config's ``edge_format`` (ember's key: the shard format), or None if unset."""
    fmt = cfg.get("edge_format")
    if fmt is None:
        return None
    if fmt not in SHARD_FORMATS:
        raise ConfigError(
            f"{path}: key 'edge_format': {fmt!r} is not one of {', '.join(map(repr, SHARD_FORMATS))}"
        )
    return fmt
