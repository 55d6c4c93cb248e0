"""Bucket orderings: the order in which the trainer visits (lhs, rhs) partition pairs.

The names and ideas follow PyTorch-BigGraph: ``inside_out`` and ``outside_in`` walk
the grid by distance from the diagonal's origin, ``affinity`` prefers a bucket that
shares a partition with the previous one (so one partition can stay in memory), and
``random`` shuffles. All are seeded and deterministic.
"""

from __future__ import annotations

import numpy as np

ORDERS = ("inside_out", "outside_in", "affinity", "random")


def bucket_order(order: str, nparts_lhs: int, nparts_rhs: int | None = None,
                 seed: int = 0) -> list[tuple[int, int]]:
    """Every (lhs, rhs) bucket exactly once, in the named order.

    >>> bucket_order("inside_out", 2)
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    nr = nparts_lhs if nparts_rhs is None else nparts_rhs
    nl = nparts_lhs
    rng = np.random.default_rng(seed)
    grid = [(i, j) for i in range(nl) for j in range(nr)]
    if order == "random":
        return [grid[k] for k in rng.permutation(len(grid))]
    if order in ("inside_out", "outside_in"):
        # shells of max(i, j); within a shell a seeded shuffle, PBG-style
        shells: dict[int, list] = {}
        for b in grid:
            shells.setdefault(max(b), []).append(b)
        keys = sorted(shells, reverse=order == "outside_in")
        out = []
        for k in keys:
            shell = sorted(shells[k])
            if len(shell) > 1 and seed:
                shell = [shell[i] for i in rng.permutation(len(shell))]
            out += shell
        return out
    if order == "affinity":
        remaining = set(grid)
        cur = grid[int(rng.integers(len(grid)))]
        out = [cur]
        remaining.discard(cur)
        while remaining:
            # prefer buckets sharing both sides' partitions, then one, then any
            best = sorted(remaining, key=lambda b: (-(b[0] == cur[0]) - (b[1] == cur[1])
                                                    - (b[0] == cur[1]) - (b[1] == cur[0]),
                                                    b))
            cur = best[0]
            out.append(cur)
            remaining.discard(cur)
        return out
    raise ValueError(f"unknown bucket order {order!r}; choose one of {', '.join(ORDERS)}")
