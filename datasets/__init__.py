"""Graphs for users and benchmarks: synthetic generators (and, later, small real graphs).

>>> from ember.datasets import SyntheticGraph, write_graph
>>> stats = write_graph(SyntheticGraph(1000, 5, 10_000, seed=0), "edges.tsv")  # doctest: +SKIP
"""

from ember.datasets.synthetic import (
    DEFAULT_BLOCK,
    EdgeBlock,
    GenerateStats,
    SyntheticGraph,
    format_of,
    write_graph,
)

__all__ = [
    "DEFAULT_BLOCK",
    "EdgeBlock",
    "GenerateStats",
    "SyntheticGraph",
    "format_of",
    "write_graph",
]
