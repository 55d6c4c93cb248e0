"""`pbg index CONFIG`: an approximate nearest-neighbour index for `pbg neighbors` (thin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command("index")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--entity-type", help="Entity type to index (default: the only one).")
@click.option("--metric", type=click.Choice(["cos", "dot", "l2"]), default="cos", show_default=True)
@click.option("--checkpoint", help="Checkpoint version, epoch_<E> snapshot or folder (default: the latest).")
@click.option("--nlist", type=int, help="k-means cells (default: about sqrt(entities)).")
@click.option(
    "--nprobe", type=int, help="Cells a query scans (default: the smallest reaching --target-recall)."
)
@click.option(
    "--target-recall",
    type=float,
    default=0.95,
    show_default=True,
    help="recall@10 the default nprobe must reach on a sample of entities.",
)
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--json", "as_json", is_flag=True, help="Print the index description as JSON.")
def index_cmd(config, entity_type, metric, checkpoint, nlist, nprobe, target_recall, params, as_json):
    """Build a nearest-neighbour index (faiss IVF) over the trained embeddings of one
    entity type, read partition by partition; `pbg neighbors` then uses it.

    \b
    pbg index ws/config.toml --metric cos
    pbg neighbors ws/config.toml n02084071          # through the index
    pbg neighbors ws/config.toml n02084071 --exact  # every entity scored
    """
    from ember.pbg.index import _faiss, build_index

    _faiss()  # without faiss: one error line saying how to install it, before any work
    from ember.pbg.api import load

    model = load(config, checkpoint=checkpoint, overrides=params)
    log = lambda msg: click.echo(f"index: {msg}", err=True)
    meta = build_index(
        model, entity_type, metric, nlist=nlist, nprobe=nprobe, target_recall=target_recall, log=log
    )
    if as_json:
        click.echo(json.dumps(meta))
    else:
        rec = meta["measured_recall"]
        rec_s = f", recall@{rec['k']} {rec['recall']:.3f} on {rec['queries']} sampled entities" if rec else ""
        click.echo(
            f"indexed     {meta['count']:,} {meta['entity_type']} entities by {metric} "
            f"(checkpoint version {meta['checkpoint_version']}): faiss IVF, {meta['nlist']:,} cells, "
            f"nprobe {meta['nprobe']}{rec_s}, {meta['seconds']['total']:.1f} s"
        )
        click.echo(f"to          {meta['path']}")
    sys.stdout.flush()
