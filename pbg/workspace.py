"""The run a config describes: its workspace, its relations and its model.

Shared by training, evaluation, export, prediction and the Python API, so that none of
them imports the trainer to find out what a config means.
"""

from __future__ import annotations

from pathlib import Path

from ember.errors import ConfigError, UserError
from ember.pbg.device import storage_dtype
from ember.pbg.model import Model

__all__ = [
    "array_module_of",
    "build_model",
    "check_checkpoint",
    "edge_split",
    "model_description",
    "open_workspace",
    "relation_specs",
]


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
        if e.featurized != ws.is_featurized(t):
            raise ConfigError(
                f"entities.{t}.featurized: {str(e.featurized).lower()} in the config, but the "
                f"workspace {root} was imported "
                + ("with" if ws.is_featurized(t) else "without")
                + f" --features {t}=FILE; re-import, or set featurized = "
                + str(ws.is_featurized(t)).lower()
            )
        if e.num_partitions != ws.num_partitions(t):
            raise ConfigError(
                f"entities.{t}.num_partitions: {e.num_partitions} in the config, but the "
                f"workspace {root} was imported with {ws.num_partitions(t)}; re-import with "
                f"--partitions {e.num_partitions}"
            )
    return ws


def edge_split(config) -> str:
    """The split a config trains on (the folder name of its ``edge_paths``)."""
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
    """The model a config trains on a workspace (``fast_layout``: the trainer's own,
    interleaved complex layout; checkpoints, eval, export and predict use PBG's)."""
    try:
        storage_dtype(config.dtype)  # float32 or float16 tables; bfloat16 refused with why
    except ValueError as e:
        raise ConfigError(f"dtype: {e}") from None
    specs = relation_specs(config, ws)
    return Model(
        [r.operator for r in specs],
        config.comparator,
        config.loss_fn,
        config.dimension,  # one for all entity types (the config refuses per-type ones)
        len(specs),
        margin=config.margin,
        regularization_coef=config.regularization_coef,
        regularizer=config.regularizer,
        fast_layout=fast_layout,
        bias=config.bias,
        relation_weights=[r.weight for r in specs],
    )


def model_description(config, ws, model) -> dict:
    """What a checkpoint records of the model's shape (resume refuses a mismatch)."""
    return {
        "dimension": model.dim,
        "comparator": config.comparator,
        "operators": model.operator_names,
        "entity_counts": {t: ws.partition_sizes(t) for t in sorted(ws.entity_types)},
        "num_relations": model.num_relations,
        "dtype": config.dtype,
        # featurized types' feature counts (their checkpoint tables' rows); absent when none
        **(
            {"featurized": {t: ws.num_features(t) for t in sorted(ws.entity_types) if ws.is_featurized(t)}}
            if any(ws.is_featurized(t) for t in ws.entity_types)
            else {}
        ),
    }


def check_checkpoint(config, ws, model, ckpt) -> None:
    """The checks a resume makes, for every reader of a checkpoint (eval, export,
    predict, neighbors): the model's shape and the workspace it was trained on; and,
    since a reader has no fresh rows for entities added later, the same entity counts."""
    ckpt.check_compatible(model_description(config, ws, model), ws.id)
    counts = ((ckpt.manifest or {}).get("model") or {}).get("entity_counts") or {}
    for t in ws.entity_types:
        if t in counts and list(counts[t]) != ws.partition_sizes(t):
            raise UserError(
                f"{Path(ckpt.path) / 'checkpoint.json'}: the checkpoint was trained on "
                f"{sum(counts[t])} entities of type {t!r}, the workspace has {ws.num_entities(t)} "
                "(`pbg import --append` added some): train again to give them embeddings"
            )


def array_module_of(device):
    """(Device, its array module) for a command's ``device``; a device this machine does
    not have (no cupy, no GPU, a bad name) is one error naming it, not a traceback."""
    from ember._backend import Device, module_for

    try:
        d = Device(device)
        return d, module_for(d)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"device {device!r}: {e}") from None


def check_edge_split(config, ws) -> str:
    """The split ``edge_paths`` names, refused unless the workspace has it."""
    from ember.partitioning import layout

    path = Path(config.edge_paths[0])
    if path.name not in layout.SPLITS:
        raise ConfigError(
            f"edge_paths: {path} is not a split folder of workspace {ws.root} (its splits: "
            + ", ".join(str(ws.root / "edges" / s) for s in layout.SPLITS)
            + ")"
        )
    return path.name
