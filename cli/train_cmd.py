"""`pbg train CONFIG`: train (or resume) the embeddings a config describes (thin)."""

from __future__ import annotations

import json
import sys

import click


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. -p dimension=200 -p entities.all.num_partitions=4.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Train on the CPU (numpy) or a CUDA GPU (cupy); default: the config's.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train_cmd(config, params, device, as_json):
    """Train entity and relation embeddings bucket by bucket; resumes from the
    checkpoint in checkpoint_path if there is one.

    \b
    pbg train ws/config.toml
    pbg train ws/config.toml -p num_epochs=20 -p lr=0.05
    """
    from ember.pbg.config import load_config  # noqa: PLC0415
    from ember.pbg.train import train  # noqa: PLC0415

    cfg = load_config(config, overrides=params)
    summary = train(cfg, device=device)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"trained     {summary['epochs']} epochs, {summary['edges']:,} edges this run "
                   f"in {summary['seconds']:.1f} s ({summary['edges_per_s']:,.0f} edges/s)")
        click.echo(f"checkpoint  {summary['checkpoint']} (version {summary['version']})")
        click.echo(f"memory      embeddings peak {summary['peak_embedding_bytes'] / 2**20:,.1f} MiB"
                   f", plan {summary['memory_plan_bytes'] / 2**20:,.1f} MiB")
    sys.stdout.flush()
