"""`pbg import`: edge files -> a partitioned workspace (thin: parse, call, report)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from ember.errors import UserError


def _columns(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        cols = [int(c) for c in value.split(",")]
    except ValueError:
        raise UserError(f"--columns {value!r}: give comma-separated column numbers, e.g. 0,1,2") from None
    if any(c < 0 for c in cols) or len(set(cols)) != len(cols):
        raise UserError(f"--columns {value!r}: column numbers must be distinct and >= 0")
    return cols


def _delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    value = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " "}.get(value, value)
    if len(value) != 1:
        raise UserError(f"--delimiter {value!r}: must be one character (or tab, comma)")
    return value


def _features(values) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for v in values:
        etype, eq, path = v.partition("=")
        if not eq or not etype or not path:
            raise UserError(f"--features {v!r}: give TYPE=FILE, e.g. --features doc=features.tsv")
        if etype in out:
            raise UserError(f"--features: type {etype!r} is given twice ({out[etype]} and {path})")
        out[etype] = Path(path)
    return out


@click.command("import")
@click.argument("edges", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    help="Config (TOML/JSON) with entities, relations, dynamic_relations.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Workspace folder (default: next to the first input, NAME_pbg).",
)
@click.option(
    "--partitions",
    "num_partitions",
    type=int,
    default=1,
    show_default=True,
    help="Partitions of the entity type (without --config).",
)
@click.option(
    "--format",
    "shard_format",
    type=click.Choice(["hdf5", "arrow"]),
    default=None,
    help="Edge shard format [default: the config's edge_format, else hdf5].",
)
@click.option(
    "--features",
    "features",
    multiple=True,
    metavar="TYPE=FILE",
    help="Features of a featurized entity type: lines entity<TAB>feature<TAB>... (or Parquet: "
    "names, list<string> features); repeatable. Without --config: --features all=FILE.",
)
@click.option("--delimiter", help="Field separator (default: tab; comma for .csv).")
@click.option("--header", is_flag=True, help="The first non-comment line is a header.")
@click.option("--columns", help="lhs,rel,rhs (or lhs,rhs) column numbers, from 0.")
@click.option("--lhs-col", type=int)
@click.option("--rel-col", type=int)
@click.option("--rhs-col", type=int)
@click.option("--weight-col", type=int, help="Column of edge weights, carried into shards.")
@click.option("--valid-fraction", type=float, default=0.0, show_default=True)
@click.option("--test-fraction", type=float, default=0.0, show_default=True)
@click.option(
    "--valid",
    "valid_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Validation edges file (instead of a fraction).",
)
@click.option(
    "--test",
    "test_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Test edges file (instead of a fraction).",
)
@click.option(
    "--drop-unseen", is_flag=True, help="Drop valid/test edges whose entities never occur in train."
)
@click.option("--drop-duplicates", is_flag=True, help="Keep one copy of repeated edges.")
@click.option("--drop-self-loops", is_flag=True, help="Drop edges from an entity to itself.")
@click.option(
    "--skip-bad-lines", is_flag=True, help="Skip malformed lines (counted, written to rejected_lines.txt)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing workspace (a folder with workspace.json only)."
)
@click.option(
    "--delete-checkpoints",
    is_flag=True,
    help="With --overwrite: also delete what the old workspace holds besides its data "
    "(checkpoints/, exports/); without it such a workspace is refused.",
)
@click.option(
    "--max-line-bytes",
    type=click.IntRange(1 << 10, 1 << 31),
    default=8 << 20,
    show_default=True,
    help="Longest input line accepted; a longer one is an error naming its line.",
)
@click.option(
    "--append",
    "append_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Edges to add to an existing workspace (with --into).",
)
@click.option("--into", type=click.Path(path_type=Path), help="Workspace to --append to.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_cmd(
    edges,
    config,
    out,
    num_partitions,
    shard_format,
    features,
    delimiter,
    header,
    columns,
    lhs_col,
    rel_col,
    rhs_col,
    weight_col,
    valid_fraction,
    test_fraction,
    valid_files,
    test_files,
    drop_unseen,
    drop_duplicates,
    drop_self_loops,
    skip_bad_lines,
    seed,
    overwrite,
    delete_checkpoints,
    max_line_bytes,
    append_files,
    into,
    as_json,
):
    """Import edge lists (TSV/CSV, also .gz/.bz2/.zst, or Parquet) into a workspace.

    \b
    pbg import edges.tsv                      # -> edges_pbg/, one entity type
    pbg import edges.tsv --partitions 4 --valid-fraction 0.01 --test-fraction 0.01
    pbg import --append more.tsv --into edges_pbg
    pbg import edges.tsv --config model.toml --features doc=features.tsv
    """
    if "numpy" not in sys.modules:
        # the import does no linear algebra: OpenBLAS's threads, started when numpy
        # loads, would only spin (~0.1 CPU-s a process, measured); the user's setting wins
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        # and huge pages for its long-lived tables only, not for every streaming temporary
        # (ember._malloc: zeroing fresh huge pages cost a 10^7-edge import ~0.7 of 3.6 CPU-s)
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    from ember.partitioning import EdgeSpec, ImportOptions, append_edges, import_edges

    cols = _columns(columns)
    named = [lhs_col, rel_col, rhs_col]
    if cols is not None and any(c is not None for c in named):
        raise UserError("give either --columns or --lhs-col/--rel-col/--rhs-col")
    if cols is None and any(c is not None for c in named):
        if lhs_col is None or rhs_col is None:
            raise UserError("--lhs-col and --rhs-col go together (--rel-col is optional)")
        cols = [lhs_col, rhs_col] if rel_col is None else [lhs_col, rel_col, rhs_col]
    kw = {"weight_col": weight_col, "delimiter": _delimiter(delimiter), "header": header}
    spec = EdgeSpec.from_columns(cols, **kw) if cols is not None else EdgeSpec(**kw)
    if (
        spec.weight_col is not None
        and spec.weight_col in spec.roles().values()
        and list(spec.roles().values()).count(spec.weight_col) > 1
    ):
        raise UserError("--weight-col must differ from the lhs/rel/rhs columns")
    opts = ImportOptions(
        spec=spec,
        out=out,
        config=config,
        num_partitions=num_partitions,
        shard_format=shard_format,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        valid=list(valid_files),
        test=list(test_files),
        seed=seed,
        overwrite=overwrite,
        delete_checkpoints=delete_checkpoints,
        read_block_bytes=max_line_bytes,
        skip_bad_lines=skip_bad_lines,
        drop_duplicates=drop_duplicates,
        drop_self_loops=drop_self_loops,
        drop_unseen=drop_unseen,
        progress=True,
        features=_features(features),
    )
    if append_files or into:
        if not (append_files and into) or edges:
            raise UserError("use --append EDGES... --into WORKSPACE (and no other inputs)")
        summary = append_edges(list(append_files), into, opts)
    else:
        if not edges:
            raise UserError("no edge files given (try: pbg import edges.tsv)")
        summary = import_edges(list(edges), opts)
    ws = Path(summary["workspace"])
    summary["next"] = f"pbg train {shlex.quote(str(ws / 'config.toml'))}"
    if as_json:
        click.echo(json.dumps(summary, indent=1))
    else:
        click.echo(_render(summary))
    sys.stdout.flush()


def _render(s: dict) -> str:
    feats = s.get("features", {})
    ents = ", ".join(
        f"{t} {n:,} ({s['partitions'][t]} partition{'s' if s['partitions'][t] != 1 else ''}"
        + (f"; featurized, {feats[t]:,} features" if t in feats else "")
        + ")"
        for t, n in s["entities"].items()
    )
    edges = ", ".join(f"{k} {v:,}" for k, v in s["edges"].items())
    buckets = ", ".join(f"{k} {v}" for k, v in s["buckets"].items())
    un = s["unseen_in_train"]
    lines = [
        f"workspace   {s['workspace']}",
        f"entities    {ents}",
        f"relations   {s['relations']:,}",
        f"edges       {edges}   (read {s['input_edges']:,})",
        f"buckets     {buckets}   ({s['shard_format']})",
        f"duplicates  {s['duplicates']:,}{' dropped' if s['duplicates_dropped'] else ' kept'}",
        f"self-loops  {s['self_loops']:,}{' dropped' if s['self_loops_dropped'] else ' kept'}",
        f"unseen      valid {un['valid']:,}, test {un['test']:,} "
        f"(entities not in train; {'dropped' if s['unseen_dropped'] else 'kept'})",
    ]
    if s["bad_lines"]:
        lines.append(
            f"bad lines   {s['bad_lines']:,} skipped (see {Path(s['workspace']) / s['rejected_lines_file']})"
        )
    lines += [
        f"time        {s['seconds']:.1f} s, peak memory {s['peak_rss_mb']:,.0f} MB",
        "",
        f"next: {s['next']}",
    ]
    return "\n".join(lines)
