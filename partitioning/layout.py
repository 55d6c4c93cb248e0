"""The workspace on disk: file names, the manifest, and atomic writes.

A workspace is one folder (layout version ``WORKSPACE_VERSION``)::

    workspace.json                      manifest: id, version, data model, counts
    config.toml                         the training config (PBG key names)
    entities/<type>/names_<p>.parquet   names of partition p (row = offset), counts
    entities/<type>/features.parquet    featurized types: feature names (row = feature id)
    entities/<type>/bags_0.parquet      featurized types: each entity's feature ids
    relations.parquet                   relation names (row = relation id), counts
    edges/<split>/edges_<l>_<r>.h5      bucket (lhs partition l, rhs partition r)
    edges/<split>/edges_<l>_<r>.arrow   ... or Arrow IPC, by shard format
    rejected_lines.txt                  only with --skip-bad-lines

Every file is written under a temporary name and renamed into place, so a file
with its final name is always complete.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

# the one atomic writer, re-exported for the shard and import code
from ember._io import atomic_path as atomic_path
from ember._io import tmp_name as tmp_name
from ember._io import write_json_atomic as write_json_atomic
from ember._names import check_path_name as check_path_name
from ember.errors import InputFileError

WORKSPACE_VERSION = 1
SHARD_VERSION = 1
MANIFEST = "workspace.json"
CONFIG = "config.toml"
REJECTED = "rejected_lines.txt"
SPLITS = ("train", "valid", "test")
SHARD_SUFFIX = {"hdf5": ".h5", "arrow": ".arrow"}


def new_workspace_id() -> str:
    return uuid.uuid4().hex


def entity_names_path(root: Path, etype: str, part: int) -> Path:
    return Path(root) / "entities" / check_path_name(etype, "entity type") / f"names_{part}.parquet"


def feature_names_path(root: Path, etype: str) -> Path:
    return Path(root) / "entities" / etype / "features.parquet"


def bags_path(root: Path, etype: str) -> Path:
    return Path(root) / "entities" / etype / "bags_0.parquet"


def relations_path(root: Path) -> Path:
    return Path(root) / "relations.parquet"


def shard_path(root: Path, split: str, lhs: int, rhs: int, fmt: str) -> Path:
    return Path(root) / "edges" / split / f"edges_{lhs}_{rhs}{SHARD_SUFFIX[fmt]}"


# An append writes its files under its generation's names (``edges_0_1.g3.h5``); the
# manifest's ``files`` maps each default name (relative to the root) to the file that
# holds it, so one rename of the manifest switches the whole workspace (see importer).
_GENERATION = re.compile(r"^(?P<stem>[^.]+)\.g(?P<gen>\d+)(?P<suffix>\..+)$")


def generation_name(logical: str, gen: int) -> str:
    """``edges/train/edges_0_1.h5`` written by generation 3: ``edges/train/edges_0_1.g3.h5``."""
    head, _, name = logical.rpartition("/")
    stem, dot, suffix = name.partition(".")
    return f"{head + '/' if head else ''}{stem}.g{gen}{dot}{suffix}"


def is_generation_name(name: str) -> bool:
    return _GENERATION.match(name) is not None


def resolve_name(manifest: dict, logical: str) -> str:
    """The file (relative to the root) that holds ``logical`` in this manifest."""
    return (manifest.get("files") or {}).get(logical, logical)


def resolved(root: Path, manifest: dict, path: Path) -> Path:
    """``path`` (a default name under ``root``) as the manifest places it."""
    root = Path(root)
    return root / resolve_name(manifest, Path(path).relative_to(root).as_posix())


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise InputFileError(f"{path}: not an ember workspace (no {MANIFEST})")
    try:
        m = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: corrupt manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != "ember-workspace":
        raise InputFileError(f"{path}: not an ember workspace manifest")
    if m.get("version") != WORKSPACE_VERSION:
        raise InputFileError(
            f"{path}: workspace layout version {m.get('version')} is not supported "
            f"(this ember reads version {WORKSPACE_VERSION})"
        )
    return m
