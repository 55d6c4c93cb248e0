"""`pbg checkpoint verify|recover`: check a checkpoint folder, or bring it back (thin)."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _folder(target: Path) -> Path:
    """A checkpoint folder from a config file, a workspace folder or the folder itself."""
    from ember.errors import UserError
    from ember.pbg.checkpoint import MANIFEST

    if target.is_file():
        from ember.pbg.config import load_config

        return Path(load_config(target).checkpoint_path)
    if not target.is_dir():
        raise UserError(f"{target}: no such config file or folder")
    if (target / "config.toml").is_file() and not (target / MANIFEST).is_file():
        from ember.pbg.config import load_config

        return Path(load_config(target / "config.toml").checkpoint_path)
    return target


@click.group("checkpoint")
def checkpoint_cmd():
    """Checkpoint folders: verify every file against the manifest, or recover the last
    complete version of a damaged one."""


@checkpoint_cmd.command("verify")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_cmd(target, as_json):
    """Check that every file the manifest of TARGET (a config, a workspace or a checkpoint
    folder) names is there, with the size and CRC-32 the manifest recorded. Exit status 0
    if intact, 1 if not (the problems are listed on stderr)."""
    from ember.errors import UserError
    from ember.pbg.checkpoint import Checkpoint

    folder = _folder(target)
    ck = Checkpoint(folder)
    if not ck.exists:
        orphans = ck.orphans()
        more = f" ({len(orphans)} checkpoint files without one: `pbg checkpoint recover`)" if orphans else ""
        raise UserError(f"{folder}: no checkpoint manifest{more}")
    problems = ck.verify()
    if as_json:
        click.echo(json.dumps({"checkpoint": str(folder), "version": ck.version, "problems": problems}))
    for p in problems:
        click.echo(f"damaged: {p}", err=True)
    if not as_json:
        state = "intact" if not problems else f"{len(problems)} problem(s)"
        click.echo(f"checkpoint  {folder} (version {ck.version}): {state}")
    raise click.exceptions.Exit(1 if problems else 0)


@checkpoint_cmd.command("recover")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def recover_cmd(target, as_json):
    """Bring the checkpoint folder of TARGET (a config, a workspace or the folder) back to
    its last complete, intact version: its manifest's if intact, else the newest version
    whose files are all intact (each version's relations file keeps its manifest), else
    the newest intact epoch_<E> snapshot. Refuses while a trainer holds the folder."""
    from ember.pbg.checkpoint import recover

    r = recover(_folder(target))
    if as_json:
        click.echo(json.dumps(r))
        return
    said = {
        "intact": "intact, nothing to do",
        "recovered": f"recovered from {r.get('from')}",
        "restored": f"restored from the snapshot {r.get('from')}",
    }[r["status"]]
    click.echo(f"checkpoint  {r['checkpoint']} (version {r['version']}): {said}")
