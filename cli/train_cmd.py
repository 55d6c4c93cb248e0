"""`pbg train CONFIG`: train (or resume) the embeddings a config describes (thin)."""

from __future__ import annotations

import json
import re
import sys

import click

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|standin)$")


def _device(value):
    if value is not None and not _DEVICE.match(value):
        raise click.BadParameter(f"{value!r}: expected cpu, cuda, cuda:N or standin", param_hint="--device")
    return value


@click.command("train")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. -p dimension=200 -p entities.all.num_partitions=4.",
)
@click.option(
    "--device",
    callback=lambda ctx, p, v: _device(v),
    default=None,
    metavar="cpu|cuda|cuda:N|standin",
    help="Train on the CPU (numpy) or a CUDA GPU (cupy): the bucket's partitions "
    "and edges live there, swapped while the previous bucket trains; "
    "default: the config's `device`. (standin: the CPU test device.)",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train_cmd(config, params, device, as_json):
    """Train entity and relation embeddings bucket by bucket; resumes from the
    checkpoint in checkpoint_path if there is one.

    CONFIG is TOML (or JSON), or a PyTorch-BigGraph .py config: a .py config is Python
    and is RUN to read it (as PyTorch-BigGraph does), with your permissions; run only
    configs you trust, and convert one to TOML once: pbg config convert old.py > config.toml

    \b
    pbg train ws/config.toml
    pbg train ws/config.toml -p num_epochs=20 -p lr=0.05
    mpiexec -n 4 pbg train ws/config.toml      # across 4 MPI ranks (machines)
    """
    from ember.pbg.config import load_config

    cfg = load_config(config, overrides=params)
    summary = _train(cfg, device)
    if summary is None:  # a rank of an MPI job other than 0: rank 0 reports
        return
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"trained     {summary['epochs']} epochs, {summary['edges']:,} edges this run "
            f"in {summary['seconds']:.1f} s ({summary['edges_per_s']:,.0f} edges/s)"
        )
        click.echo(f"checkpoint  {summary['checkpoint']} (version {summary['version']})")
        if "ranks" in summary:
            moved = sum(d["partition_bytes_received"] for d in summary["distributed"])
            click.echo(f"ranks       {summary['ranks']} (MPI), partitions moved {moved / 2**20:,.1f} MiB")
        if "transfer_wait_seconds" in summary:
            click.echo(
                f"device      {summary['device']} ({summary['dtype']} tables), waited "
                f"{summary['transfer_wait_seconds']:.2f} s for transfers"
            )
        click.echo(
            f"memory      embeddings peak {summary['peak_embedding_bytes'] / 2**20:,.1f} MiB"
            f", plan {summary['memory_plan_bytes'] / 2**20:,.1f} MiB"
        )
    sys.stdout.flush()


def _train(cfg, device):
    """Train in this process, or, under an MPI launcher with several ranks, together with
    the job's other ranks (mpi4py is imported only then). Returns the summary, or None on
    an MPI rank other than 0."""
    from ember.pbg.distributed import launched_ranks

    if launched_ranks() <= 1:
        from ember.pbg.train import train

        return train(cfg, device=device)
    from ember.errors import UserError
    from ember.pbg.distributed import abort_job, train_distributed

    if device not in (None, "cpu"):
        raise UserError(f"--device {device}: training across machines runs on the CPU")
    try:
        return train_distributed(cfg)
    except UserError as e:
        abort_job(f"error: {e}", 2)
    except BaseException as e:  # one rank failed: stop every rank now, not at a deadlock
        import traceback

        abort_job("".join(traceback.format_exception(e)) + f"error: training failed on this rank: {e}", 1)
