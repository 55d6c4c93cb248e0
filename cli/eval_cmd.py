"""`pbg eval CONFIG`: link-prediction metrics of the trained checkpoint (thin)."""

from __future__ import annotations

import json

import click

from ember.cli.train_cmd import _device


@click.command("eval")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option(
    "--filtered/--raw",
    default=True,
    show_default=True,
    help="Remove other true edges (train/valid/test) from the candidates.",
)
@click.option(
    "--negatives",
    type=click.Choice(["all", "sampled"]),
    default="all",
    show_default=True,
    help="Rank against all entities, or PBG's sampled protocol.",
)
@click.option(
    "--num-negs",
    type=int,
    default=1000,
    show_default=True,
    help="Candidates per edge with --negatives sampled.",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate N edges of the split drawn at random (each still ranked against all "
    "entities, filtered): for big graphs.",
)
@click.option("--sample-seed", type=int, default=0, show_default=True, help="Seed of --sample.")
@click.option("--per-relation", is_flag=True, help="Also print metrics per relation.")
@click.option(
    "--device",
    callback=lambda ctx, p, v: _device(v),
    default=None,
    metavar="cpu|cuda|cuda:N|standin",
    help="Score on the CPU or a CUDA GPU; default: the config's `device`.",
)
@click.option("--json", "as_json", is_flag=True, help="Print all metrics as JSON.")
def eval_cmd(
    config, params, split, filtered, negatives, num_negs, sample, sample_seed, per_relation, device, as_json
):
    """MRR, MR, Hits@1/3/10/50 and AUC, head and tail prediction, ranked against all
    entities (streamed partition by partition), filtered by default.

    \b
    pbg eval ws/config.toml
    pbg eval ws/config.toml --split valid --raw
    """
    from ember.pbg.config import load_config
    from ember.pbg.eval import HITS, evaluate

    m = evaluate(
        load_config(config, overrides=params),
        split=split,
        filtered=filtered,
        negatives=negatives,
        num_negs=num_negs,
        device=device,
        sample=sample,
        sample_seed=sample_seed,
    )
    if m["nonfinite_scores"]:
        click.echo(
            f"warning: {m['nonfinite_scores']:,} scores were not finite (NaN or inf): the "
            "checkpoint is damaged or its training diverged (a positive scored NaN ranks last)",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(m))
        return
    cols = ["mrr", "mr"] + [f"hits@{k}" for k in HITS] + ["auc"]
    sampled = (
        f", a sample of {m['sample']['edges']:,} edges (seed {m['sample']['seed']})" if "sample" in m else ""
    )
    kind = "filtered" if filtered else "raw"
    click.echo(f"{split} ({kind}, {negatives} negatives, {m['count']:,} rankings{sampled})")
    click.echo(f"{'':12}" + "".join(f"{c:>10}" for c in cols))
    rows = [("overall", m), ("tail", m["tail"]), ("head", m["head"])]
    if per_relation:
        rows += sorted(m["per_relation"].items())
    for name, r in rows:
        click.echo(
            f"{name[:12]:12}" + "".join(f"{r[c]:>10.1f}" if c == "mr" else f"{r[c]:>10.4f}" for c in cols)
        )
