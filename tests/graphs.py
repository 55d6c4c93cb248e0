"""Small graphs that several test files import into workspaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ember.cli.main import main as pbg


def typed_workspace(
    folder: Path,
    *,
    seed: int,
    dimension: int,
    split: float,
    follows_operator: str | None = None,
    partitions: int = 2,
) -> Path:
    """Three entity types (user and item in ``partitions`` partitions, tag unpartitioned),
    three relations (buys user->item, follows user->user, tagged item->tag); returns the
    config."""
    rng = np.random.default_rng(seed)
    users, items, tags = ([f"{p}{i}" for i in range(n)] for p, n in (("u", 60), ("i", 40), ("t", 5)))
    lines = []
    for _ in range(400):
        lines.append(f"{rng.choice(users)}\tbuys\t{rng.choice(items)}")
        lines.append(f"{rng.choice(users)}\tfollows\t{rng.choice(users)}")
        lines.append(f"{rng.choice(items)}\ttagged\t{rng.choice(tags)}")
    src = folder / "typed.tsv"
    src.write_text("\n".join(lines) + "\n")
    follows_op = [f'operator = "{follows_operator}"'] if follows_operator else []
    cfg = folder / "model.toml"
    cfg.write_text(
        "\n".join(
            [
                f"dimension = {dimension}",
                "[entities]",
                f"user = {{ num_partitions = {partitions} }}",
                f"item = {{ num_partitions = {partitions} }}",
                "tag = { num_partitions = 1 }",
                "[[relations]]",
                'name = "buys"',
                'lhs = "user"',
                'rhs = "item"',
                "[[relations]]",
                'name = "follows"',
                'lhs = "user"',
                'rhs = "user"',
                *follows_op,
                "[[relations]]",
                'name = "tagged"',
                'lhs = "item"',
                'rhs = "tag"',
                "",
            ]
        )
    )
    assert (
        pbg(
            [
                "import",
                str(src),
                "--config",
                str(cfg),
                "--out",
                str(folder / "ws"),
                "--valid-fraction",
                str(split),
                "--test-fraction",
                str(split),
            ]
        )
        == 0
    )
    return folder / "ws" / "config.toml"
