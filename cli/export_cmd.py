"""`pbg export CONFIG`: embeddings and relation parameters out of a checkpoint (thin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command("export")
@click.argument("config", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tsv", "hdf5", "parquet", "npy", "projector"]),
    default="tsv",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Output folder (default: WORKSPACE/exports/FORMAT)."
)
@click.option(
    "--entity-type", "entity_types", multiple=True, help="Export only this entity type (repeatable)."
)
@click.option("--checkpoint", help="Checkpoint version, epoch_<E> snapshot or folder (default: the latest).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def export_cmd(config, fmt, out, entity_types, checkpoint, params, as_json):
    """Export entity embeddings (with names) and relation parameters, one partition at
    a time. TSV is PyTorch-BigGraph's layout (name<TAB>v1<TAB>...); projector writes
    TensorBoard Embedding Projector files (tensors.tsv, metadata.tsv, projector_config.pbtxt).

    \b
    pbg export ws/config.toml --format parquet
    pbg export ws/config.toml --format tsv --out embeddings/
    pbg export ws/config.toml --format projector
    """
    from ember.pbg.api import load
    from ember.pbg.export import export

    model = load(config, checkpoint=checkpoint, overrides=params)
    out = out or model.workspace.root / "exports" / fmt
    log = lambda msg: click.echo(f"exporting {msg}", err=True)
    s = export(model, fmt, out, entity_types=entity_types, log=log)
    if as_json:
        click.echo(json.dumps(s))
    else:
        ents = ", ".join(f"{t} {n:,}" for t, n in s["entities"].items())
        click.echo(
            f"exported    {ents} entities, {s['relations']} relations "
            f"(checkpoint version {s['version']}, {fmt})"
        )
        click.echo(f"to          {s['out']}: {', '.join(s['files'])}")
    sys.stdout.flush()
