"""Reading a workspace: the API the trainer, evaluator and exporter use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ember.errors import InputFileError, UserError
from ember.partitioning import layout
from ember.partitioning.datamodel import DataModel
from ember.partitioning.dictionary import EntityDictionary
from ember.partitioning.ordering import bucket_order
from ember.partitioning.shards import read_shard


class Workspace:
    """An imported workspace, opened read-only.

    >>> ws = Workspace.open("edges_pbg")                       # doctest: +SKIP
    >>> ws.read_bucket("train", 0, 1)["lhs"]                  # doctest: +SKIP
    """

    def __init__(self, root: Path, manifest: dict):
        self.root = Path(root)
        self.manifest = manifest
        self.id: str = manifest["workspace_id"]
        self.shard_format: str = manifest["shard_format"]
        self.model = DataModel.from_json(manifest["model"])
        self.weighted: bool = manifest["weighted"]
        self._buckets = {s: {(lp, rp): c for lp, rp, c in manifest["buckets"][s]} for s in layout.SPLITS}
        self._names_cache: dict = {}

    @classmethod
    def open(cls, path) -> Workspace:
        return cls(Path(path), layout.read_manifest(Path(path)))

    # -- data model -------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / layout.CONFIG

    @property
    def entity_types(self) -> list[str]:
        return list(self.model.entities)

    def num_partitions(self, etype: str) -> int:
        return self.model.entities[etype]

    @property
    def num_bucket_partitions(self) -> int:
        """Side of the bucket grid: the partition count of partitioned types (else 1)."""
        return self.model.num_partitions

    def partition_sizes(self, etype: str) -> list[int]:
        return list(self.manifest["entity_counts"][etype])

    def num_entities(self, etype: str) -> int:
        return sum(self.partition_sizes(etype))

    # -- featurized types -------------------------------------------------------------
    def is_featurized(self, etype: str) -> bool:
        """Whether the entities of ``etype`` are bags of features (``--features``)."""
        return etype in self.model.featurized

    def num_features(self, etype: str) -> int:
        return int(self.manifest["features"][etype]["num_features"])

    def table_sizes(self, etype: str) -> list[int]:
        """Rows of each partition's table in a checkpoint: the entities per partition, or,
        for a featurized type, its features (one table, partition 0)."""
        if self.is_featurized(etype):
            return [self.num_features(etype)]
        return self.partition_sizes(etype)

    def bags(self, etype: str):
        """The bags of a featurized type (`ember.partitioning.features.FeatureBags`: CSR
        ``offsets`` and ``features``, and the feature ``names``), read once."""
        key = ("bags", etype)
        if key not in self._names_cache:
            from ember.partitioning.features import read_bags

            if not self.is_featurized(etype):
                raise KeyError(f"entity type {etype!r} is not featurized")
            self._names_cache[key] = read_bags(
                self.root, etype, self.num_entities(etype), self.num_features(etype)
            )
        return self._names_cache[key]

    def feature_names(self, etype: str) -> list[str]:
        """The feature names of a featurized type (row = feature id)."""
        return self.bags(etype).names.to_pylist()

    @property
    def relation_names(self) -> list[str]:
        return self._relations().column("name").to_pylist()

    def relation_types(self, rel_id: int) -> tuple[str, str]:
        """(lhs type, rhs type) of a relation id."""
        m = self.model
        r = m.relations[0] if m.dynamic_relations else m.relations[rel_id]
        return r.lhs, r.rhs

    @lru_cache(maxsize=1)  # noqa: B019 - one small table per workspace
    def _relations(self) -> pa.Table:
        return pq.read_table(layout.resolved(self.root, self.manifest, layout.relations_path(self.root)))

    # -- edges ------------------------------------------------------------------
    def buckets(self, split: str = "train") -> dict[tuple[int, int], int]:
        """Non-empty buckets of a split: (lhs partition, rhs partition) -> edge count."""
        return dict(self._check_split(split))

    def num_edges(self, split: str = "train") -> int:
        return int(self.manifest["edges"][split])

    def bucket_path(self, split: str, lhs_part: int, rhs_part: int) -> Path:
        path = layout.shard_path(self.root, split, lhs_part, rhs_part, self.shard_format)
        return layout.resolved(self.root, self.manifest, path)

    def read_bucket(self, split: str, lhs_part: int, rhs_part: int) -> dict[str, np.ndarray]:
        """Edges of one bucket: ``lhs``, ``rhs`` (offsets within their partitions),
        ``rel`` (relation ids) and ``weight`` if the workspace has weights.
        An empty bucket gives empty arrays."""
        count = self._check_split(split).get((lhs_part, rhs_part), 0)
        if count == 0:
            out = {k: np.zeros(0, np.int32) for k in ("lhs", "rhs", "rel")}
            if self.weighted:
                out["weight"] = np.zeros(0, np.float32)
            return out
        path = self.bucket_path(split, lhs_part, rhs_part)
        d = read_shard(path, workspace_id=self.id, split=split, lhs_part=lhs_part, rhs_part=rhs_part)
        if len(d["lhs"]) != count:
            raise InputFileError(f"{path}: holds {len(d['lhs'])} edges, the workspace manifest says {count}")
        return d

    def bucket_order(self, order: str = "inside_out", seed: int = 0):
        P = self.num_bucket_partitions
        return bucket_order(order, P, P, seed)

    def _check_split(self, split: str):
        if split not in self._buckets:
            raise UserError(f"unknown split {split!r}; choose one of {', '.join(layout.SPLITS)}")
        return self._buckets[split]

    # -- names ------------------------------------------------------------------
    def entity_table(self, etype: str, part: int) -> pa.Table:
        """Columns name, count, train_count of one partition (row = offset)."""
        key = (etype, part)
        if key not in self._names_cache:
            path = self.entity_names_path(etype, part)
            if not path.is_file():
                raise InputFileError(f"{path}: entity names are missing")
            t = pq.read_table(path)
            if t.num_rows != self.partition_sizes(etype)[part]:
                raise InputFileError(
                    f"{path}: holds {t.num_rows} names, the workspace "
                    f"manifest says {self.partition_sizes(etype)[part]}"
                )
            self._names_cache[key] = t
        return self._names_cache[key]

    def entity_names_path(self, etype: str, part: int) -> Path:
        """The Parquet file of one partition's names."""
        path = layout.entity_names_path(self.root, etype, part)
        return layout.resolved(self.root, self.manifest, path)

    def entity_names(self, etype: str, part: int) -> list[str]:
        return self.entity_table(etype, part).column("name").to_pylist()

    def names_of(self, etype: str, part: int, offsets) -> list[str]:
        col = self.entity_table(etype, part).column("name")
        return col.take(pa.array(np.asarray(offsets, np.int64))).to_pylist()

    def locate(self, etype: str, names) -> tuple[np.ndarray, np.ndarray]:
        """(partition, offset) arrays of entity names; -1 for unknown names."""
        names = pa.array(list(names) if not isinstance(names, pa.Array) else names, pa.string())
        # each partition's column is scanned once against the (few) distinct names asked
        # for: hashing the names, not the partition's, keeps a query's cost one pass
        uniq = pc.unique(names)
        u_part = np.full(len(uniq), -1, np.int64)
        u_off = np.full(len(uniq), -1, np.int64)
        for p in range(self.num_partitions(etype)):
            col = self.entity_table(etype, p).column("name")
            hits = pc.indices_nonzero(pc.is_in(col, value_set=uniq))
            if len(hits):
                which = pc.index_in(col.take(hits), value_set=uniq).to_numpy(zero_copy_only=False)
                u_part[which], u_off[which] = p, hits.to_numpy()
        at = np.asarray(pc.index_in(names, value_set=uniq).to_numpy(zero_copy_only=False), np.int64)
        return u_part[at], u_off[at]

    def dictionary(self, etype: str) -> EntityDictionary:
        """The whole dictionary of a type (ids in first-appearance order)."""
        P = self.num_partitions(etype)
        return EntityDictionary.from_partition_tables(
            etype, P, self.manifest["seed"], [self.entity_table(etype, p) for p in range(P)]
        )

    def __repr__(self) -> str:
        ents = ", ".join(f"{t}: {self.num_entities(t)}" for t in self.entity_types)
        return f"Workspace({str(self.root)!r}, entities={{{ents}}}, edges={self.manifest['edges']})"
