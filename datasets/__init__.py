"""Graphs for users and benchmarks: small real graphs shipped with ember, and synthetic generators.

>>> from ember.datasets import SyntheticGraph, write_graph
>>> stats = write_graph(SyntheticGraph(1000, 5, 10_000, seed=0), "edges.tsv")  # doctest: +SKIP
"""

from ember.datasets.real import RealGraph, real_graph, real_graph_names
from ember.datasets.synthetic import (
    DEFAULT_BLOCK,
    EdgeBlock,
    GenerateStats,
    SyntheticGraph,
    format_of,
    write_graph,
)

__all__ = [
    "RealGraph",
    "real_graph",
    "real_graph_names",
    "DEFAULT_BLOCK",
    "EdgeBlock",
    "GenerateStats",
    "SyntheticGraph",
    "format_of",
    "write_graph",
]
