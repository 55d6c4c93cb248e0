"""Streaming import of edge lists into partitioned workspaces, and reading them back.

Edge readers (TSV/CSV/Parquet), entity dictionaries, partition assignment, bucket
shards (HDF5 and Arrow) and bucket orderings. Uses numpy, pyarrow and h5py only.
"""

from ember.partitioning.datamodel import DataModel, RelationSpec, model_from_config
from ember.partitioning.dictionary import EntityDictionary
from ember.partitioning.importer import ImportOptions, append_edges, import_edges
from ember.partitioning.layout import SHARD_VERSION, WORKSPACE_VERSION
from ember.partitioning.ordering import ORDERS, bucket_order
from ember.partitioning.readers import EdgeSpec
from ember.partitioning.shards import read_shard, write_shard
from ember.partitioning.workspace import Workspace

__all__ = [
    "DataModel",
    "EdgeSpec",
    "EntityDictionary",
    "ImportOptions",
    "ORDERS",
    "RelationSpec",
    "SHARD_VERSION",
    "WORKSPACE_VERSION",
    "Workspace",
    "append_edges",
    "bucket_order",
    "import_edges",
    "model_from_config",
    "read_shard",
    "write_shard",
]
