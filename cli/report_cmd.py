"""`pbg report CONFIG`: one self-contained HTML page about a trained model (thin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command("report")
@click.argument("config", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), help="HTML file to write (default: WORKSPACE/report.html)."
)
@click.option(
    "--split",
    type=click.Choice(["train", "valid", "test"]),
    default="test",
    show_default=True,
    help="Split to evaluate for the per-relation metrics (filtered, all negatives).",
)
@click.option(
    "--eval-file",
    type=click.Path(path_type=Path),
    help="Read the metrics from a saved `pbg eval --json` instead of evaluating.",
)
@click.option("--no-eval", is_flag=True, help="Leave out the per-relation metrics (no evaluation).")
@click.option(
    "--label-file",
    type=click.Path(path_type=Path),
    help="TSV with a header: entity name, then label columns; colours the entity map.",
)
@click.option("--label-col", help="Label column of --label-file: header name or number (default: 2).")
@click.option("--sample", type=int, default=2000, show_default=True, help="Entities drawn on the map.")
@click.option("--checkpoint", help="Checkpoint version, epoch_<E> snapshot or folder (default: the latest).")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def report_cmd(
    config, out, split, eval_file, no_eval, label_file, label_col, sample, checkpoint, params, as_json
):
    """Write one HTML page (no network needed to view it): training loss and positive
    scores per bucket, per-epoch MRR, metrics per relation, a PCA map of the entities.

    \b
    pbg report ws/config.toml
    pbg report ws/config.toml --out run1.html --split valid
    pbg report ws/config.toml --eval-file test_metrics.json --label-file names.tsv --label-col pos
    """
    from ember.errors import UserError

    if eval_file is not None and no_eval:
        raise UserError("give either --eval-file or --no-eval, not both")
    from ember.pbg.api import load
    from ember.pbg.report import report

    model = load(config, checkpoint=checkpoint, overrides=params)
    log = lambda msg: click.echo(f"report: {msg}", err=True)
    s = report(
        model,
        out,
        split=split,
        eval_file=eval_file,
        run_eval=not no_eval,
        label_file=label_file,
        label_col=label_col,
        sample=sample,
        log=log,
    )
    if as_json:
        click.echo(json.dumps(s))
    else:
        ev = f", {s['eval']['split']} MRR {s['eval']['mrr']:.4f}" if s["eval"] else ""
        click.echo(
            f"report      {s['buckets']:,} trained buckets, {s['evaluated_epochs']} evaluated epochs"
            f"{ev}, {s['map_points']:,} entities on the map"
        )
        click.echo(f"to          {s['out']} ({s['bytes'] / 1024:,.0f} KiB)")
    sys.stdout.flush()
