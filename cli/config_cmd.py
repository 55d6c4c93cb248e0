"""`pbg config convert OLD.py`: a PyTorch-BigGraph Python config as Ember's TOML (thin)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("config")
def config_cmd():
    """Config files: convert a PyTorch-BigGraph Python config to TOML."""


@config_cmd.command("convert")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the TOML to this file (paths relative to its folder) instead of stdout.",
)
def convert_cmd(config, out):
    """Read CONFIG (a PyTorch-BigGraph .py config, or TOML/JSON) once, validate it, and
    print it as commented TOML, which is data and runs no code.

    A .py config is Python: reading it RUNS it (that is how PyTorch-BigGraph reads its
    configs), with your permissions. Run only configs you trust; convert them once and
    keep the TOML.

    \b
    pbg config convert old_config.py > config.toml
    pbg config convert old_config.py -o ws/config.toml
    """
    from ember._io import atomic_path
    from ember.pbg.config import dump_toml, load_config

    if config.suffix.lower() == ".py":
        click.echo(f"note: {config} is Python; it was run to read it (as PyTorch-BigGraph does)", err=True)
    cfg = load_config(config)
    header = f"Converted from {config.name} by `pbg config convert`; every key is documented below."
    if out is None:
        click.echo(dump_toml(cfg, header=header), nl=False)
        return
    text = dump_toml(cfg, header=header, relative_to=str(out.resolve().parent))
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    click.echo(f"wrote {out}", err=True)
