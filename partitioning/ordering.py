"""Bucket orderings: the order in which the trainer visits (lhs, rhs) partition pairs.

The names and ideas follow PyTorch-BigGraph: ``inside_out`` and ``outside_in`` walk
the grid by distance from the diagonal's origin, ``affinity`` prefers a bucket that
shares a partition with the previous one (so one partition can stay in memory), and
``random`` shuffles. All are seeded and deterministic.
"""

from __future__ import annotations

import numpy as np

ORDERS = ("inside_out", "outside_in", "affinity", "random")


def bucket_order(
    order: str, nparts_lhs: int, nparts_rhs: int | None = None, seed: int = 0
) -> list[tuple[int, int]]:
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
        return _affinity(nl, nr, rng)
    raise ValueError(f"unknown bucket order {order!r}; choose one of {', '.join(ORDERS)}")


def _affinity(nl: int, nr: int, rng) -> list[tuple[int, int]]:
    """Greedy: next, a bucket whose partitions are (mostly) those already in memory.

    Candidates are only the buckets in the rows and columns of the two partitions in
    memory (O(P) per step, O(P^3) in all); ties and fresh starts follow a seeded
    random rank.
    """
    rank = rng.permutation(nl * nr).reshape(nl, nr)
    done = np.zeros((nl, nr), bool)
    by_rank = np.argsort(rank, axis=None)
    nxt = 0  # first position of by_rank that may still be free
    out: list[tuple[int, int]] = []
    cur = None
    for _ in range(nl * nr):
        best = None
        if cur is not None:
            held = {cur[0], cur[1]}
            cands = set()
            for a in held:
                if a < nl:
                    cands.update((a, j) for j in range(nr))
                if a < nr:
                    cands.update((i, a) for i in range(nl))
            scored = [(-(b[0] in held) - (b[1] in held), rank[b], b) for b in cands if not done[b]]
            if scored:
                best = min(scored)[2]
        if best is None:
            while done.flat[by_rank[nxt]]:
                nxt += 1
            best = divmod(int(by_rank[nxt]), nr)
        done[best] = True
        out.append(best)
        cur = best
    return out
