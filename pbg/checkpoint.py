"""Versioned HDF5 checkpoints that survive ``kill -9`` at any moment.

Layout of ``checkpoint_path``::

    checkpoint.json                      the manifest: version, config, position, files
    embeddings_<type>_<part>.v<N>.h5     embeddings + row-Adagrad state of one partition
    relations.v<N>.h5                    relation parameters (+ Adagrad state), both sides
    training_stats.jsonl                 one JSON line per trained bucket
    epoch_<E>/                           snapshots kept by checkpoint_preservation_interval

Every file is written under a temporary name, flushed and renamed into place; the
manifest is written last, the same way, and names the exact file of every partition.
So the manifest always describes a complete checkpoint: a file it names is never
rewritten (a newer save gets a new version number), and files no manifest names are
deleted only after the new manifest is in place.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import h5py
import numpy as np

from ember._io import atomic_path
from ember._io import write_json_atomic as _write_json
from ember.errors import InputFileError, UserError

FORMAT = "ember-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "checkpoint.json"
STATS = "training_stats.jsonl"

# config keys that must match for a checkpoint to be resumed (the model's shape)
MODEL_KEYS = ("dimension", "comparator", "operators", "entity_counts", "num_relations", "dtype", "featurized")

_FILE = re.compile(r"^(embeddings_.+_\d+|relations)\.v(\d+)\.h5$")


def write_h5(path: Path, arrays: dict, attrs: dict | None = None, durable=True) -> None:
    with atomic_path(path, durable=durable) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
            for k, v in arrays.items():
                f.create_dataset(k, data=np.asarray(v))


def read_h5(path: Path) -> dict:
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise InputFileError(f"{path}: not an ember checkpoint file")
            return {k: f[k][()] for k in f.keys()}
    except OSError as e:
        raise InputFileError(f"{path}: unreadable checkpoint file ({e})") from None


def write_json_atomic(path: Path, obj, durable=True) -> None:
    _write_json(path, obj, durable=durable, sort_keys=True)


def _grown(old, new) -> bool:
    """True if every partition of ``new`` holds at least the entities of ``old``."""
    if not isinstance(old, dict) or not isinstance(new, dict) or old.keys() != new.keys():
        return False
    return all(len(old[t]) == len(new[t]) and all(a <= b for a, b in zip(old[t], new[t])) for t in old)


def _check_operators(where, theirs, ours) -> None:
    """Name the first relation whose operator differs (``operators`` is one name for all
    relations, or a list with one per relation)."""
    if not isinstance(theirs, list) and not isinstance(ours, list):
        return
    n = len(theirs) if isinstance(theirs, list) else len(ours)
    a = theirs if isinstance(theirs, list) else [theirs] * n
    b = ours if isinstance(ours, list) else [ours] * n
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            raise UserError(
                f"{where}: checkpoint does not match the config/workspace: the "
                f"operator of relation {i} (relations.{i}.operator) is {x!r} in "
                f"the checkpoint, {y!r} now (use a new checkpoint_path, or "
                "delete this one to start over)"
            )


class Checkpoint:
    """The checkpoint folder of one training run.

    >>> ck = Checkpoint("ws/checkpoints")          # doctest: +SKIP
    >>> ck.manifest["position"]                    # doctest: +SKIP
    {'epoch': 3, 'edge_chunk': 0, 'bucket': 0}
    """

    def __init__(self, path):
        self.path = Path(path)
        self.manifest: dict | None = None
        mpath = self.path / MANIFEST
        if mpath.is_file():
            try:
                self.manifest = json.loads(mpath.read_text())
            except (OSError, ValueError) as e:
                raise InputFileError(f"{mpath}: unreadable checkpoint manifest ({e})") from None
            if self.manifest.get("format") != FORMAT:
                raise InputFileError(f"{mpath}: not an ember checkpoint manifest")
        self._files: dict[str, str] = dict(self.manifest["files"]) if self.manifest else {}
        self.version = self.manifest["version"] if self.manifest else 0
        self.durable = True

    @property
    def exists(self) -> bool:
        return self.manifest is not None

    # -- compatibility ----------------------------------------------------------
    def check_compatible(self, model_desc: dict) -> None:
        """Refuse a checkpoint whose model shape differs, naming what differs."""
        if not self.manifest:
            return
        theirs = self.manifest.get("model", {})
        for k in MODEL_KEYS:
            if k == "entity_counts" and _grown(theirs.get(k), model_desc.get(k)):
                continue  # `pbg import --append` added entities: they start fresh
            if k == "operators" and theirs.get(k) != model_desc.get(k):
                _check_operators(self.path / MANIFEST, theirs.get(k), model_desc.get(k))
            if theirs.get(k) != model_desc.get(k):
                raise UserError(
                    f"{self.path / MANIFEST}: checkpoint does not match the config/workspace: "
                    f"{k} is {theirs.get(k)!r} in the checkpoint, {model_desc.get(k)!r} now "
                    "(use a new checkpoint_path, or delete this one to start over)"
                )

    # -- reading ----------------------------------------------------------------
    def has_partition(self, etype: str, part: int) -> bool:
        return f"embeddings/{etype}/{part}" in self._files

    def load_partition(self, etype: str, part: int):
        """(embeddings, optimizer state) of one partition, as numpy arrays."""
        d = read_h5(self.path / self._files[f"embeddings/{etype}/{part}"])
        return d["embeddings"], d["state"]

    def has_relations(self) -> bool:
        return "relations" in self._files

    def load_relations(self) -> dict:
        return read_h5(self.path / self._files["relations"])

    # -- writing ----------------------------------------------------------------
    def begin(self, durable: bool = True) -> int:
        """Start a new version; returns its number. Every version survives ``kill -9``
        (rename is atomic); a ``durable`` one is also fsynced, so it survives a power
        loss: the trainer makes the version that ends an epoch durable, and skips the
        fsyncs of the per-bucket ones, which cost more than training a small bucket."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.version += 1
        self.durable = durable
        return self.version

    def save_partition(self, etype: str, part: int, emb, state) -> None:
        name = f"embeddings_{etype}_{part}.v{self.version}.h5"
        write_h5(
            self.path / name,
            {"embeddings": emb, "state": state},
            {"entity_type": etype, "partition": part},
            durable=self.durable,
        )
        self._files[f"embeddings/{etype}/{part}"] = name

    def save_relations(self, arrays: dict) -> None:
        name = f"relations.v{self.version}.h5"
        write_h5(self.path / name, arrays, durable=self.durable)
        self._files["relations"] = name

    def commit(self, *, config: dict, model: dict, position: dict, extra: dict | None = None):
        """Write the manifest (the checkpoint is complete from here on), then delete
        files that no manifest names any more."""
        self.manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "complete": True,
            "config": config,
            "model": model,
            "position": position,
            "files": dict(self._files),
            **(extra or {}),
        }
        write_json_atomic(self.path / MANIFEST, self.manifest, durable=self.durable)
        keep = set(self._files.values())
        for p in self.path.iterdir():
            if p.is_file() and _FILE.match(p.name) and p.name not in keep:
                p.unlink(missing_ok=True)
            elif p.is_file() and p.name.startswith(".") and ".tmp" in p.name:
                p.unlink(missing_ok=True)  # a temp file of a killed writer

    def preserve(self, epoch: int) -> Path:
        """Keep a snapshot of the current checkpoint in ``epoch_<E>/`` (hard links)."""
        snap = self.path / f"epoch_{epoch}"
        snap.mkdir(exist_ok=True)
        for name in self._files.values():
            dst = snap / name
            if not dst.exists():
                try:
                    os.link(self.path / name, dst)
                except OSError:
                    dst.write_bytes((self.path / name).read_bytes())
        write_json_atomic(snap / MANIFEST, self.manifest)
        return snap

    def append_stats(self, row: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / STATS, "a") as f:
            f.write(json.dumps(row) + "\n")
