"""`pbg predict` and `pbg neighbors`: questions to a trained model (thin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ember.errors import UserError

_common = [
    click.option("--checkpoint", help="Checkpoint version, epoch_<E> or folder (default: latest)."),
    click.option(
        "-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a config key."
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the results as JSON."),
]


def _with_common(f):
    for opt in reversed(_common):
        f = opt(f)
    return f


def _print(rankings, as_json):
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rankings]))
        return
    for i, r in enumerate(rankings):
        q = r.query
        if "entity" in q:
            title = f"neighbors of {q['entity']} ({q['metric']})"
        else:
            title = (
                f"{q['head']}  {q['relation']}  ?"
                if q["tail"] is None
                else f"?  {q['relation']}  {q['tail']}"
            )
        if i:
            click.echo()
        click.echo(f"# {title}")
        for rank, name, score in r:
            click.echo(f"{rank}\t{score:.4f}\t{name}")


@click.command("predict")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--head", help="Predict the tails of (HEAD, RELATION, ?).")
@click.option("--tail", help="Predict the heads of (?, RELATION, TAIL).")
@click.option("--relation", help="Relation name.")
@click.option(
    "--file",
    "query_file",
    type=click.Path(path_type=Path),
    help="Queries, one a line: head<TAB>relation<TAB>? or ?<TAB>relation<TAB>tail.",
)
@click.option("--top-k", type=int, default=10, show_default=True)
@click.option(
    "--filter-known", is_flag=True, help="Leave out entities already linked so in train/valid/test."
)
@_with_common
def predict_cmd(config, head, tail, relation, query_file, top_k, filter_known, checkpoint, params, as_json):
    """Rank the missing side of edges with the trained operator and comparator.

    \b
    pbg predict ws/config.toml --head n02084071 --relation _hypernym --top-k 5
    pbg predict ws/config.toml --tail n02084071 --relation _hypernym
    pbg predict ws/config.toml --file queries.tsv --filter-known --json
    """
    from ember.pbg.api import load
    from ember.pbg.predict import read_query_file

    if query_file is not None:
        if head or tail or relation:
            raise UserError("give either --file or --head/--tail with --relation, not both")
        queries = read_query_file(query_file)
    else:
        if not relation:
            raise UserError("--relation is required (or give --file)")
        if (head is None) == (tail is None):
            raise UserError("give exactly one of --head (predict tails) and --tail (predict heads)")
        queries = [(head, relation, tail)]
    model = load(config, checkpoint=checkpoint, overrides=params)
    _print(model.predict_many(queries, top_k=top_k, filter_known=filter_known), as_json)
    sys.stdout.flush()


@click.command("neighbors")
@click.argument("config", type=click.Path(path_type=Path))
@click.argument("name")
@click.option("--top-k", type=int, default=10, show_default=True)
@click.option("--metric", type=click.Choice(["cos", "dot", "l2"]), default="cos", show_default=True)
@click.option("--entity-type", help="Entity type of NAME (when there are several).")
@click.option("--exact", is_flag=True, help="Score every entity even when `pbg index` built an index.")
@_with_common
def neighbors_cmd(config, name, top_k, metric, entity_type, exact, checkpoint, params, as_json):
    """List the entities whose embeddings are nearest to NAME's: through the index that
    `pbg index` built for this type and metric when there is one, else (or with --exact)
    by scoring every entity.

    \b
    pbg neighbors ws/config.toml n02084071 --top-k 5 --metric cos
    """
    import warnings

    from ember.pbg.api import load

    model = load(config, checkpoint=checkpoint, overrides=params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ranking = model.neighbors(name, top_k=top_k, metric=metric, entity_type=entity_type, exact=exact)
    for w in caught:  # a stale index: one note on stderr, the answer is exact
        click.echo(f"note: {w.message}", err=True)
    _print([ranking], as_json)
    sys.stdout.flush()
