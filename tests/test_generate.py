"""The synthetic graph generator (`ember.datasets`) and `pbg generate`."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from ember.datasets import SyntheticGraph, write_graph


def _read_tsv(path):
    opts = pcsv.ReadOptions(column_names=["lhs", "rel", "rhs"])
    return pcsv.read_csv(path, read_options=opts, parse_options=pcsv.ParseOptions(delimiter="\t"))


def _all(graph):
    blocks = list(graph.blocks())
    return tuple(np.concatenate([getattr(b, k) for b in blocks]) for k in ("lhs", "rel", "rhs"))


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    g = dict(num_entities=5000, num_relations=7, num_edges=30_000)
    a, b, c = tmp_path / "a.tsv", tmp_path / "b.tsv", tmp_path / "c.tsv"
    write_graph(SyntheticGraph(**g, seed=3), a)
    write_graph(SyntheticGraph(**g, seed=3), b, threads=1)
    write_graph(SyntheticGraph(**g, seed=4), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("edges", [0, 1, 999, 1000, 1001, 4321])
def test_exact_edge_count_across_block_boundaries(tmp_path, edges):
    g = SyntheticGraph(100, 3, edges, seed=0, block_size=1000)
    stats = write_graph(g, tmp_path / "e.tsv")
    text = (tmp_path / "e.tsv").read_text()
    assert stats.edges == edges
    assert text.count("\n") == edges
    assert text == "" or text.endswith("\n")


def test_lines_are_entity_relation_entity_names_in_range(tmp_path):
    g = SyntheticGraph(num_entities=1234, num_relations=11, num_edges=20_000, seed=1)
    write_graph(g, tmp_path / "e.tsv")
    for line in (tmp_path / "e.tsv").read_text().splitlines():
        h, r, t = line.split("\t")
        assert h[0] == "e" and t[0] == "e" and r[0] == "r"
        assert 0 <= int(h[1:]) < 1234 and 0 <= int(t[1:]) < 1234 and 0 <= int(r[1:]) < 11
        assert str(int(h[1:])) == h[1:]  # no padding, no sign


def test_text_matches_the_id_arrays(tmp_path):
    g = SyntheticGraph(500, 4, 3000, seed=2, block_size=700)
    write_graph(g, tmp_path / "e.tsv")
    lhs, rel, rhs = _all(g)
    table = _read_tsv(tmp_path / "e.tsv")
    assert table.column("lhs").to_pylist() == [f"e{i}" for i in lhs]
    assert table.column("rel").to_pylist() == [f"r{i}" for i in rel]
    assert table.column("rhs").to_pylist() == [f"e{i}" for i in rhs]


def test_gzip_and_parquet_hold_the_same_edges(tmp_path):
    g = SyntheticGraph(800, 5, 12_345, seed=5, block_size=5000)
    write_graph(g, tmp_path / "e.tsv")
    write_graph(g, tmp_path / "e.tsv.gz")
    write_graph(g, tmp_path / "e.parquet")
    plain = (tmp_path / "e.tsv").read_bytes()
    assert gzip.decompress((tmp_path / "e.tsv.gz").read_bytes()) == plain
    assert _read_tsv(tmp_path / "e.tsv.gz").num_rows == 12_345  # pyarrow reads multi-member gz
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column_names == ["lhs", "rel", "rhs"]
    assert table.equals(_read_tsv(tmp_path / "e.tsv"))


def test_degrees_are_heavier_tailed_than_uniform():
    n, e = 20_000, 400_000
    lhs, _, rhs = _all(SyntheticGraph(n, 10, e, seed=0))
    degree = np.bincount(np.concatenate([lhs, rhs]), minlength=n)
    rng = np.random.default_rng(0)
    uniform = np.bincount(rng.integers(0, n, 2 * e), minlength=n)
    # The busiest entities carry a large share of all endpoints; uniform spreads them.
    top = np.sort(degree)[::-1][: n // 100].sum() / degree.sum()
    top_uniform = np.sort(uniform)[::-1][: n // 100].sum() / uniform.sum()
    assert top > 5 * top_uniform
    assert degree.max() > 20 * uniform.max()
    # Power-law-ish: a straight, steep log-log rank/degree line over two decades.
    ranked = np.sort(degree)[::-1][10:1000].astype(float)
    slope = np.polyfit(np.log(np.arange(10, 1000)), np.log(ranked), 1)[0]
    assert slope < -0.5


def test_tail_community_is_predictable_from_head_community_and_relation():
    g = SyntheticGraph(10_000, 8, 200_000, seed=4, num_communities=50, noise=0.2)
    lhs, rel, rhs = _all(g)
    hc, tc = g.community(lhs), g.community(rhs)
    # Predict the majority tail community of each (head community, relation) seen in the
    # first half; score on the second half (a learner, not a lookup of the truth).
    k = g.num_communities
    half = len(lhs) // 2
    key = rel * k + hc
    counts = np.zeros((g.num_relations * k, k), dtype=np.int64)
    np.add.at(counts, (key[:half], tc[:half]), 1)
    predicted = counts.argmax(axis=1)[key[half:]]
    accuracy = (predicted == tc[half:]).mean()
    chance = 1 / k
    assert accuracy > 0.75  # about 1 - noise + noise / k
    assert accuracy > 30 * chance
    assert (g.relation_map[rel, hc] == tc).mean() > 0.75


def test_ids_are_a_permutation_of_ranks():
    g = SyntheticGraph(1009, 2, 10, seed=9)
    ranks = np.arange(1009)
    ids = g.rank_to_id(ranks)
    assert sorted(ids.tolist()) == ranks.tolist()
    assert (g.id_to_rank(ids) == ranks).all()
    assert ids[0] != 0 or ids[1] != 1  # hubs are scattered, not e0, e1, ...


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="num_entities"):
        SyntheticGraph(0, 1, 1)
    with pytest.raises(ValueError, match="noise"):
        SyntheticGraph(10, 1, 1, noise=1.5)


def test_memory_is_bounded_by_the_block_not_the_edge_count(tmp_path):
    # Peak RSS growth while writing 6M edges (~115 MB of text) stays close to that for
    # 600k: memory is per block in flight, not per edge. Each size runs in a fresh
    # process so the peaks are honest; Arrow's system allocator returns freed memory
    # at once, so the figures measure what is live rather than allocator caching.
    script = textwrap.dedent(
        """
        import resource, sys
        from ember.datasets import SyntheticGraph, write_graph
        edges, out = int(sys.argv[1]), sys.argv[2]
        g = SyntheticGraph(100_000, 10, 1000, seed=0, block_size=100_000)
        write_graph(g, out + ".warm")  # import and allocator warm-up
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        write_graph(SyntheticGraph(100_000, 10, edges, seed=0, block_size=100_000), out)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(peak - base)
        """
    )
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
    growth, size = {}, {}
    for edges in (600_000, 6_000_000):
        out = tmp_path / f"{edges}.tsv"
        run = subprocess.run(
            [sys.executable, "-c", script, str(edges), str(out)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        growth[edges] = int(run.stdout.strip()) * 1024  # ru_maxrss is in KiB on Linux
        size[edges] = out.stat().st_size
    assert growth[6_000_000] < growth[600_000] + 16 * 2**20
    assert growth[6_000_000] < size[6_000_000] / 3


def test_cli_generate_writes_the_file_and_reports(tmp_path):
    out = tmp_path / "g.tsv"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ember.cli.main",
            "generate",
            "--entities",
            "1e3",
            "--relations",
            "4",
            "--edges",
            "10_000",
            "--seed",
            "7",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["edges"] == 10_000 and summary["path"] == str(out)
    assert out.read_text().count("\n") == 10_000
    g = SyntheticGraph(1000, 4, 10_000, seed=7)
    write_graph(g, tmp_path / "lib.tsv")
    assert (tmp_path / "lib.tsv").read_bytes() == out.read_bytes()


def test_cli_generate_errors_are_one_line_and_status_2(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "ember.cli.main", "generate", *args],
            capture_output=True,
            text=True,
        )

    bad_dir = run("-n", "10", "-r", "1", "-e", "5", str(tmp_path / "missing" / "g.tsv"))
    assert bad_dir.returncode == 2
    assert bad_dir.stderr.startswith("error:") and "missing" in bad_dir.stderr
    zero = run("-n", "0", "-r", "1", "-e", "5", str(tmp_path / "g.tsv"))
    assert zero.returncode == 2 and "--entities" in zero.stderr
    assert run("-n", "abc", "-r", "1", "-e", "5", str(tmp_path / "g.tsv")).returncode == 2
