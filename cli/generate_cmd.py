"""`pbg generate`: write a seeded synthetic multi-relational graph (TSV, .gz or Parquet)."""

from __future__ import annotations

import json

import click

from ember.errors import UserError


class _Count(click.ParamType):
    """A non-negative integer that also accepts ``1e7`` and ``10_000_000``."""

    name = "count"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).replace("_", "")
        try:
            number = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if number < 0 or number != int(number):
            self.fail(f"{value!r} is not a non-negative whole number", param, ctx)
        return int(number)


COUNT = _Count()


@click.command("generate")
@click.option("--entities", "-n", type=COUNT, required=True, help="Number of entities.")
@click.option("--relations", "-r", type=COUNT, required=True, help="Number of relation types.")
@click.option("--edges", "-e", type=COUNT, required=True, help="Number of edges (1e7 is fine).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tsv", "parquet"]),
    default=None,
    help="Output format [default: from OUT's suffix: .parquet -> parquet, else tsv; .gz compresses TSV].",
)
@click.option(
    "--communities",
    type=COUNT,
    default=None,
    help="Latent communities [default: about sqrt(entities), 2 to 1000].",
)
@click.option(
    "--noise",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of edges whose tail community is random instead of the relation's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
def generate_cmd(entities, relations, edges, seed, fmt, communities, noise, as_json, out):
    """Write a synthetic graph of EDGES head<TAB>relation<TAB>tail lines to OUT.

    Entities are named e0..e{N-1}, relations r0..r{R-1}. Every entity belongs to a latent
    community; each relation maps head communities to tail communities (with NOISE), and
    entity popularity is Zipf-like, so degrees are power-law and the structure is
    learnable. Same arguments and seed give the same file.

    \b
    pbg generate --entities 1e6 --relations 50 --edges 1e8 edges.tsv
    pbg import edges.tsv
    """
    from ember.datasets import SyntheticGraph, write_graph

    if entities < 1:
        raise UserError("--entities must be at least 1")
    if relations < 1:
        raise UserError("--relations must be at least 1")
    if communities is not None and communities < 1:
        raise UserError("--communities must be at least 1")
    graph = SyntheticGraph(
        num_entities=entities,
        num_relations=relations,
        num_edges=edges,
        seed=seed,
        num_communities=communities,
        noise=noise,
    )
    try:
        stats = write_graph(graph, out, format=fmt)
    except OSError as e:
        raise UserError(f"{out}: {e.strerror or e}") from e
    summary = {
        "path": stats.path,
        "format": stats.format,
        "entities": entities,
        "relations": relations,
        "communities": graph.num_communities,
        "edges": stats.edges,
        "bytes": stats.bytes,
        "seconds": round(stats.seconds, 3),
        "edges_per_s": round(stats.edges_per_s),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"wrote {stats.edges:,} edges ({entities:,} entities, {relations:,} relations, "
            f"{graph.num_communities} communities) to {stats.path} "
            f"in {stats.seconds:.2f} s ({stats.edges_per_s / 1e6:.1f} M edges/s)"
        )
        click.echo(f"next: pbg import {stats.path}")
