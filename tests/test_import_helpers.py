"""Helpers shared by the import tests: run `pbg`, read a workspace back as names."""

from __future__ import annotations

import collections
import gzip
from pathlib import Path

from ember.cli.main import main
from ember.partitioning import Workspace

DATA = Path(__file__).parent / "data"
KINSHIPS = DATA / "kinships"


def pbg(*args) -> int:
    return main([str(a) for a in args])


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [ln.rstrip("\n") for ln in f if ln.strip() and not ln.startswith("#")]


def edges_of(lines, cols=(0, 1, 2), delim="\t") -> collections.Counter:
    out = collections.Counter()
    for ln in lines:
        f = ln.split(delim)
        out[tuple(f[c] for c in cols)] += 1
    return out


def workspace_edges(ws: Workspace, split: str = "train") -> collections.Counter:
    """Every edge of a split as (lhs name, rel name, rhs name), checking its bucket."""
    rels = ws.relation_names
    out = collections.Counter()
    P = ws.num_bucket_partitions
    for lp in range(P):
        for rp in range(P):
            d = ws.read_bucket(split, lp, rp)
            for lhs, rel, rhs in zip(d["lhs"].tolist(), d["rel"].tolist(), d["rhs"].tolist(), strict=True):
                lt, rt = ws.relation_types(rel)
                # an unpartitioned type lives in partition 0 whatever the bucket
                lpart = lp if ws.num_partitions(lt) > 1 else 0
                rpart = rp if ws.num_partitions(rt) > 1 else 0
                out[(ws.entity_names(lt, lpart)[lhs], rels[rel], ws.entity_names(rt, rpart)[rhs])] += 1
    return out
