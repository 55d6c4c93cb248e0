"""`pbg import`: round trips, formats, splits, data model, append, crash safety."""

from __future__ import annotations

import bz2
import collections
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_import_helpers import KINSHIPS, edges_of, pbg, read_lines, workspace_edges

from ember.errors import InputFileError
from ember.partitioning import Workspace, bucket_order, read_shard
from ember.partitioning.layout import shard_path

TRAIN = KINSHIPS / "train.tsv.gz"


@pytest.fixture(scope="module")
def kin_edges():
    return edges_of(read_lines(TRAIN))


@pytest.mark.parametrize("fmt", ["hdf5", "arrow"])
@pytest.mark.parametrize("parts", [1, 2, 7])
def test_every_edge_lands_once_in_its_bucket_with_ids_mapping_back(tmp_path, kin_edges, fmt, parts):
    out = tmp_path / "ws"
    assert pbg("import", TRAIN, "--out", out, "--partitions", parts, "--format", fmt) == 0
    ws = Workspace.open(out)
    assert workspace_edges(ws) == kin_edges
    assert ws.num_edges("train") == sum(kin_edges.values())
    sizes = ws.partition_sizes("all")
    assert len(sizes) == parts and sum(sizes) == 104 and max(sizes) - min(sizes) <= 1
    # the bucket of an edge is (partition of lhs, partition of rhs)
    parts_of, offs = ws.locate("all", ["person0", "person1"])
    assert (parts_of >= 0).all() and (offs >= 0).all()
    for (lp, rp), n in ws.buckets("train").items():
        d = ws.read_bucket("train", lp, rp)
        assert len(d["lhs"]) == n
        assert d["lhs"].max() < sizes[lp] and d["rhs"].max() < sizes[rp]
        assert read_shard(ws.bucket_path("train", lp, rp))["lhs"].dtype == np.int32


def test_default_workspace_sits_next_to_the_input_and_says_what_to_do_next(tmp_path, capsys):
    src = tmp_path / "edges.tsv.gz"
    shutil.copy(TRAIN, src)
    assert pbg("import", src) == 0
    out = capsys.readouterr().out
    ws = tmp_path / "edges_pbg"
    assert (ws / "workspace.json").is_file()
    assert f"next: pbg train {ws / 'config.toml'}" in out
    import tomllib

    from ember.pbg.config import _PBG, IMPORT_SETTINGS, load_config, schema_fields

    text = (ws / "config.toml").read_text()
    cfg = tomllib.loads(text)
    # written by the schema's own writer: every key it sets, each under its documentation
    # (PyTorch-BigGraph's no-op keys only where they differ from their defaults)
    loaded = load_config(ws / "config.toml")
    expected = {
        f.name for f in schema_fields() if f.metadata["group"] != _PBG and getattr(loaded, f.name) is not None
    }
    assert set(cfg) == expected
    lines = text.splitlines()
    for k in expected - {"entities", "relations"}:
        i = next(i for i, line in enumerate(lines) if line.startswith(f"{k} = "))
        assert lines[i - 1].startswith("# "), k
    # the import's starting settings, nothing else changed from the schema's defaults
    assert {k: cfg[k] for k in IMPORT_SETTINGS} == IMPORT_SETTINGS
    assert cfg["entities"] == {"all": {"num_partitions": 1, "featurized": False}}
    assert len(cfg["relations"]) == 25
    assert cfg["relations"][0]["operator"] == "complex_diagonal"
    assert (cfg["dimension"], cfg["num_batch_negs"], cfg["num_uniform_negs"]) == (100, 50, 50)
    assert loaded.checkpoint_path == str(ws / "checkpoints") and loaded.edge_paths == [
        str(ws / "edges" / "train")
    ]


def test_existing_workspace_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "ws"
    assert pbg("import", TRAIN, "--out", out) == 0
    capsys.readouterr()
    assert pbg("import", TRAIN, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: workspace already exists")
    old_id = Workspace.open(out).id
    assert pbg("import", TRAIN, "--out", out, "--overwrite", "--partitions", 2) == 0
    assert Workspace.open(out).id != old_id
    assert Workspace.open(out).num_partitions("all") == 2


def test_json_summary(tmp_path, capsys):
    assert pbg("import", TRAIN, "--out", tmp_path / "ws", "--json") == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    s = json.loads(captured.out)
    assert s["entities"] == {"all": 104} and s["relations"] == 25
    assert s["edges"] == {"train": 8544, "valid": 0, "test": 0}
    assert s["next"].startswith("pbg train ") and s["peak_rss_mb"] > 0


@pytest.mark.parametrize("codec", ["gz", "bz2", "zst"])
def test_compressed_inputs_read_transparently(tmp_path, kin_edges, codec):
    text = gzip.decompress(TRAIN.read_bytes())
    src = tmp_path / f"k.tsv.{codec}"
    if codec == "gz":
        src.write_bytes(gzip.compress(text))
    elif codec == "bz2":
        src.write_bytes(bz2.compress(text))
    else:
        with pa.CompressedOutputStream(str(src), "zstd") as f:
            f.write(text)
    assert pbg("import", src, "--out", tmp_path / "ws", "--partitions", 2) == 0
    assert workspace_edges(Workspace.open(tmp_path / "ws")) == kin_edges


def test_parquet_input(tmp_path, kin_edges):
    rows = list(kin_edges.elements())
    src = tmp_path / "k.parquet"
    pq.write_table(
        pa.table({"h": [r[0] for r in rows], "r": [r[1] for r in rows], "t": [r[2] for r in rows]}),
        src,
        row_group_size=1000,
    )
    assert pbg("import", src, "--out", tmp_path / "ws", "--format", "arrow", "--partitions", 3) == 0
    assert workspace_edges(Workspace.open(tmp_path / "ws")) == kin_edges


def test_two_column_csv_with_header_comments_and_weights(tmp_path):
    src = tmp_path / "g.csv"
    src.write_text("# a comment\nsrc,dst,w\n\na,b,0.5\nb,c,2\n# another\nc,a,1e-3\n")
    assert (
        pbg("import", src, "--header", "--columns", "0,1", "--weight-col", "2", "--out", tmp_path / "ws") == 0
    )
    ws = Workspace.open(tmp_path / "ws")
    assert ws.relation_names == ["all_edges"]
    assert workspace_edges(ws) == collections.Counter(
        {("a", "all_edges", "b"): 1, ("b", "all_edges", "c"): 1, ("c", "all_edges", "a"): 1}
    )
    d = ws.read_bucket("train", 0, 0)
    names = ws.entity_names("all", 0)
    w = {(names[h], names[t]): x for h, t, x in zip(d["lhs"], d["rhs"], d["weight"], strict=True)}
    assert w == {("a", "b"): pytest.approx(0.5), ("b", "c"): 2.0, ("c", "a"): pytest.approx(1e-3)}


def test_column_selection_and_delimiter(tmp_path):
    src = tmp_path / "g.txt"
    src.write_text("x|a|likes|b\ny|b|likes|c\n")
    assert (
        pbg(
            "import",
            src,
            "--delimiter",
            "|",
            "--lhs-col",
            1,
            "--rel-col",
            2,
            "--rhs-col",
            3,
            "--out",
            tmp_path / "ws",
        )
        == 0
    )
    assert workspace_edges(Workspace.open(tmp_path / "ws")) == collections.Counter(
        {("a", "likes", "b"): 1, ("b", "likes", "c"): 1}
    )


def _typed_graph(tmp_path):
    rng = np.random.default_rng(1)
    users = [f"u{i}" for i in range(60)]
    items = [f"i{i}" for i in range(40)] + ["u1"]  # same name, another type
    tags = [f"t{i}" for i in range(5)]
    lines = []
    for _ in range(400):
        lines.append(f"{rng.choice(users)}\tbuys\t{rng.choice(items)}")
        lines.append(f"{rng.choice(users)}\tfollows\t{rng.choice(users)}")
        lines.append(f"{rng.choice(items)}\ttagged\t{rng.choice(tags)}")
    src = tmp_path / "typed.tsv"
    src.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "model.toml"
    cfg.write_text(
        textwrap.dedent("""\
        dimension = 10
        [entities]
        user = { num_partitions = 3 }
        item = { num_partitions = 3 }
        tag = { num_partitions = 1 }
        [[relations]]
        name = "buys"
        lhs = "user"
        rhs = "item"
        [[relations]]
        name = "follows"
        lhs = "user"
        rhs = "user"
        operator = "translation"
        [[relations]]
        name = "tagged"
        lhs = "item"
        rhs = "tag"
    """)
    )
    return src, cfg, lines


@pytest.mark.parametrize("fmt", ["hdf5", "arrow"])
def test_several_entity_types_from_a_config(tmp_path, fmt):
    src, cfg, lines = _typed_graph(tmp_path)
    assert pbg("import", src, "--config", cfg, "--format", fmt, "--out", tmp_path / "ws") == 0
    ws = Workspace.open(tmp_path / "ws")
    assert ws.entity_types == ["user", "item", "tag"]
    assert [ws.num_partitions(t) for t in ws.entity_types] == [3, 3, 1]
    assert ws.num_entities("tag") == 5
    assert ws.relation_types(ws.relation_names.index("tagged")) == ("item", "tag")
    assert workspace_edges(ws) == edges_of(lines)
    # "u1" is both a user and an item: two entities
    assert (ws.locate("user", ["u1"])[0] >= 0).all() and (ws.locate("item", ["u1"])[0] >= 0)
    # tag is unpartitioned: every bucket with a tag on the rhs has rhs partition 0
    assert all(
        rp == 0
        for (lp, rp), _ in ws.buckets("train").items()
        if ws.read_bucket("train", lp, rp)["rel"].min() == ws.relation_names.index("tagged")
    )


def test_shard_format_from_the_config_and_the_flag_overrides_it(tmp_path, capsys):
    src, cfg, _ = _typed_graph(tmp_path)
    cfg.write_text('edge_format = "arrow"\n' + cfg.read_text())
    assert pbg("import", src, "--config", cfg, "--out", tmp_path / "a") == 0
    ws = Workspace.open(tmp_path / "a")
    assert ws.shard_format == "arrow"
    assert next((tmp_path / "a" / "edges" / "train").iterdir()).suffix == ".arrow"
    schema = pytest.importorskip("ember.pbg.config")  # the generated config records it
    assert schema.load_config(str(tmp_path / "a" / "config.toml")).edge_format == "arrow"
    assert pbg("import", src, "--config", cfg, "--format", "hdf5", "--out", tmp_path / "b") == 0
    assert Workspace.open(tmp_path / "b").shard_format == "hdf5"
    assert pbg("import", src, "--out", tmp_path / "c") == 0  # no config: hdf5
    assert Workspace.open(tmp_path / "c").shard_format == "hdf5"
    cfg.write_text(cfg.read_text().replace('"arrow"', '"parquet"'))
    capsys.readouterr()
    assert pbg("import", src, "--config", cfg, "--out", tmp_path / "d") == 2
    assert "edge_format" in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_dynamic_relations(tmp_path):
    src = tmp_path / "dyn.tsv"
    lines = [f"n{i % 17}\tr{i % 9}\tn{(i * 7) % 23}" for i in range(300)]
    src.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "entities": {"node": {"num_partitions": 2}},
                "relations": [{"name": "all", "lhs": "node", "rhs": "node", "operator": "diagonal"}],
                "dynamic_relations": True,
            }
        )
    )
    assert pbg("import", src, "--config", cfg, "--out", tmp_path / "ws") == 0
    ws = Workspace.open(tmp_path / "ws")
    assert sorted(ws.relation_names) == sorted(f"r{i}" for i in range(9))
    assert workspace_edges(ws) == edges_of(lines)


def test_fraction_split_is_seeded_and_complete(tmp_path, kin_edges):
    args = ["import", TRAIN, "--valid-fraction", 0.1, "--test-fraction", 0.1, "--seed", 3, "--partitions", 2]
    assert pbg(*args, "--out", tmp_path / "a") == 0
    assert pbg(*args, "--out", tmp_path / "b") == 0
    a, b = Workspace.open(tmp_path / "a"), Workspace.open(tmp_path / "b")
    parts = {s: workspace_edges(a, s) for s in ("train", "valid", "test")}
    assert sum(parts.values(), collections.Counter()) == kin_edges
    for s in ("train", "valid", "test"):
        assert workspace_edges(b, s) == parts[s]
    n = sum(kin_edges.values())
    assert abs(a.num_edges("valid") - 0.1 * n) < 0.02 * n
    assert abs(a.num_edges("test") - 0.1 * n) < 0.02 * n


def test_separate_split_files_count_and_drop_unseen(tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("a\tr\tb\nb\tr\tc\n")
    valid = tmp_path / "valid.tsv"
    valid.write_text("a\tr\tc\na\tr\tzz\n")
    test = tmp_path / "test.tsv"
    test.write_text("yy\tr\tb\nc\tr\ta\n")
    assert pbg("import", train, "--valid", valid, "--test", test, "--out", tmp_path / "k", "--json") == 0
    s = json.loads(capsys.readouterr().out)
    assert s["unseen_in_train"] == {"valid": 1, "test": 1}
    assert s["edges"] == {"train": 2, "valid": 2, "test": 2}
    assert (
        pbg(
            "import",
            train,
            "--valid",
            valid,
            "--test",
            test,
            "--out",
            tmp_path / "d",
            "--drop-unseen",
            "--json",
        )
        == 0
    )
    s = json.loads(capsys.readouterr().out)
    assert s["edges"] == {"train": 2, "valid": 1, "test": 1}
    ws = Workspace.open(tmp_path / "d")
    assert set(workspace_edges(ws, "valid")) == {("a", "r", "c")}
    assert set(workspace_edges(ws, "test")) == {("c", "r", "a")}


def test_duplicates_and_self_loops_are_kept_and_counted_or_dropped(tmp_path, capsys):
    src = tmp_path / "d.tsv"
    src.write_text("a\tr\tb\na\tr\tb\na\tr\tb\nc\tr\tc\nb\tr\ta\n")
    assert pbg("import", src, "--out", tmp_path / "k", "--json") == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["duplicates"], s["self_loops"], s["edges"]["train"]) == (2, 1, 5)
    assert (
        pbg(
            "import",
            src,
            "--out",
            tmp_path / "d",
            "--json",
            "--drop-duplicates",
            "--drop-self-loops",
            "--partitions",
            2,
        )
        == 0
    )
    s = json.loads(capsys.readouterr().out)
    assert (s["duplicates"], s["self_loops"], s["edges"]["train"]) == (2, 1, 2)
    assert workspace_edges(Workspace.open(tmp_path / "d")) == collections.Counter(
        {("a", "r", "b"): 1, ("b", "r", "a"): 1}
    )


@pytest.mark.parametrize("fmt", ["hdf5", "arrow"])
def test_append_keeps_every_existing_entity_in_place(tmp_path, fmt):
    lines = read_lines(TRAIN)
    # the first import sees every relation (an append may not add relations)
    head, rels = lines[:4000], {ln.split("\t")[1] for ln in lines[:4000]}
    rest = []
    for ln in lines[4000:]:
        if ln.split("\t")[1] not in rels:
            rels.add(ln.split("\t")[1])
            head.append(ln)
        else:
            rest.append(ln)
    lines = head + rest
    first = tmp_path / "first.tsv"
    first.write_text("\n".join(head) + "\n")
    more = tmp_path / "more.tsv"
    extra = [f"new{i}\tterm1\tperson{i % 50}" for i in range(30)]
    more.write_text("\n".join(rest + extra) + "\n")
    out = tmp_path / "ws"
    assert pbg("import", first, "--out", out, "--partitions", 3, "--format", fmt) == 0
    ws = Workspace.open(out)
    before = {p: ws.entity_names("all", p) for p in range(3)}
    assert pbg("import", "--append", more, "--into", out) == 0
    ws2 = Workspace.open(out)
    for p in range(3):
        assert ws2.entity_names("all", p)[: len(before[p])] == before[p]
    sizes = ws2.partition_sizes("all")
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == sum(map(len, before.values())) + 30
    assert workspace_edges(ws2) == edges_of(lines + extra)
    assert ws2.manifest["generation"] == 2 and ws2.id == ws.id


@pytest.mark.parametrize("fmt", ["hdf5", "arrow"])
def test_relation_ids_are_stored_narrow_and_read_back_as_int32(tmp_path, fmt):
    import h5py
    import pyarrow as pa

    from ember.partitioning import read_shard, write_shard

    rng = np.random.default_rng(0)
    meta = dict(workspace_id="w", split="train", lhs_part=0, rhs_part=0)
    for top, stored in [(0, "uint8"), (255, "uint8"), (256, "uint16"), (65_535, "uint16"), (70_000, "int32")]:
        rel = rng.integers(0, top + 1, 5000).astype(np.int32)
        rel[0] = top
        cols = {
            "lhs": np.arange(5000, dtype=np.int32),
            "rhs": np.arange(5000, dtype=np.int32)[::-1].copy(),
            "rel": rel,
        }
        path = tmp_path / f"s{top}.{fmt}"
        write_shard(path, fmt, cols, **meta)
        if fmt == "hdf5":
            with h5py.File(path) as f:
                assert f["rel"].dtype == np.dtype(stored) and f["lhs"].dtype == np.int32
        else:
            with pa.memory_map(str(path)) as src:
                assert pa.ipc.open_file(src).schema.field("rel").type == pa.from_numpy_dtype(np.dtype(stored))
        back = read_shard(path, **meta)
        assert back["rel"].dtype == np.int32 and np.array_equal(back["rel"], rel)
        assert np.array_equal(back["lhs"], cols["lhs"]) and np.array_equal(back["rhs"], cols["rhs"])


def test_reader_refuses_a_foreign_or_mismatched_shard_naming_it(tmp_path):
    for name in ("a", "b"):
        assert pbg("import", TRAIN, "--out", tmp_path / name, "--partitions", 2) == 0
    a, b = Workspace.open(tmp_path / "a"), Workspace.open(tmp_path / "b")
    pa_, pb_ = a.bucket_path("train", 0, 1), b.bucket_path("train", 0, 1)
    shutil.copy(pb_, pa_)
    with pytest.raises(InputFileError, match=f"^{pa_}: shard belongs to another workspace"):
        a.read_bucket("train", 0, 1)
    # a shard of another bucket of the same workspace
    shutil.copy(b.bucket_path("train", 1, 1), pb_)
    with pytest.raises(
        InputFileError,
        match=f"^{pb_}: shard is for rhs_part=1, expected 1|^{pb_}: shard is for lhs_part=1, expected 0",
    ):
        b.read_bucket("train", 0, 1)
    # a different format version
    import h5py

    p = b.bucket_path("train", 1, 0)
    with h5py.File(p, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(InputFileError, match=f"^{p}: shard format version 99 is not supported"):
        b.read_bucket("train", 1, 0)


_KILLER = """
import os, signal, sys
import h5py
import ember.partitioning.shards as shards
calls = []
real = shards._write_hdf5
def dying(tmp, cols, meta):
    calls.append(tmp)
    if len(calls) == 3:
        # half a shard on disk, then the process dies without any cleanup
        with h5py.File(tmp, "w") as f:
            f.create_dataset("lhs", data=cols["lhs"][: len(cols["lhs"]) // 2])
            f.attrs["format"] = "ember-edges"
            f.attrs["format_version"] = 1
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(tmp, cols, meta)
shards._write_hdf5 = dying
from ember.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_import_leaves_no_shard_a_reader_accepts(tmp_path):
    out = tmp_path / "ws"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, "import", str(TRAIN), "--out", str(out), "--partitions", "2"],
        capture_output=True,
    )
    assert proc.returncode == -9
    assert not out.exists()
    with pytest.raises(InputFileError, match="not an ember workspace"):
        Workspace.open(out)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and ".h5" in p.name]
    assert written, "the import got as far as writing shards"
    partial = [p for p in written if ".tmp-" in p.name]
    assert len(partial) == 1
    with pytest.raises(InputFileError, match="incomplete shard"):
        read_shard(partial[0])
    # the complete shards are not in any workspace; a new import is unaffected
    assert pbg("import", TRAIN, "--out", out, "--partitions", 2) == 0
    assert Workspace.open(out).num_edges() == 8544


def test_a_full_disk_midway_is_one_error_line_and_removes_the_half_built_workspace(
    tmp_path, monkeypatch, capsys
):
    import errno

    import ember.partitioning.importer as importer

    calls = []
    real = importer.write_shard

    def failing(*a, **k):  # the write path's own OSError, as the kernel gives it
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(a[0]))
        return real(*a, **k)

    monkeypatch.setattr(importer, "write_shard", failing)
    assert pbg("import", TRAIN, "--out", tmp_path / "ws", "--partitions", 2) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no space left on device while importing into ")
    assert "nothing was changed, free space and run again" in err[0]
    assert os.listdir(tmp_path) == []


def test_bucket_orders_visit_every_bucket_once_and_are_seeded():
    for order in ("inside_out", "outside_in", "affinity", "random"):
        got = bucket_order(order, 4, seed=5)
        assert sorted(got) == [(i, j) for i in range(4) for j in range(4)]
        assert got == bucket_order(order, 4, seed=5)
    assert bucket_order("inside_out", 3)[0] == (0, 0)
    assert bucket_order("outside_in", 3)[-1] == (0, 0)
    aff = bucket_order("affinity", 4, seed=1)
    shared = sum(bool({a[0], a[1]} & {b[0], b[1]}) for a, b in zip(aff, aff[1:], strict=False))
    assert shared >= len(aff) - 3  # consecutive buckets nearly always share a partition
    with pytest.raises(ValueError, match="unknown bucket order"):
        bucket_order("sideways", 2)


def test_shard_path_layout(tmp_path):
    assert shard_path(tmp_path, "valid", 1, 2, "arrow") == tmp_path / "edges" / "valid" / "edges_1_2.arrow"


def test_append_refuses_a_relation_the_workspace_does_not_have(tmp_path, capsys):
    out = tmp_path / "ws"
    assert pbg("import", TRAIN, "--out", out) == 0
    more = tmp_path / "more.tsv"
    more.write_text("person1\tterm1\tperson2\nperson1\tnewrel\tperson2\n")
    before = (out / "workspace.json").read_text()
    capsys.readouterr()
    assert pbg("import", "--append", more, "--into", out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {more}:2: unknown relation 'newrel'")
    assert (out / "workspace.json").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == [
        "config.toml",
        "edges",
        "entities",
        "relations.parquet",
        "workspace.json",
    ]


def test_tiny_blocks_and_spilled_buffers_give_the_same_edges_and_splits(tmp_path, kin_edges):
    from ember.partitioning import ImportOptions, import_edges

    def run(out, **kw):
        import_edges([TRAIN], ImportOptions(out=out, num_partitions=3, valid_fraction=0.2, seed=9, **kw))
        return Workspace.open(out)

    small = run(tmp_path / "small", read_block_bytes=4096, min_block_rows=100, buffer_bytes=2000)
    big = run(tmp_path / "big")
    for split in ("train", "valid"):
        assert workspace_edges(small, split) == workspace_edges(big, split)
    assert workspace_edges(small, "train") + workspace_edges(small, "valid") == kin_edges
    assert sorted(small.partition_sizes("all")) == sorted(big.partition_sizes("all"))


@pytest.mark.parametrize("P", [1, 2, 5, 7])
def test_partition_assignment_is_balanced_online_and_invertible(P):
    from ember.partitioning import EntityDictionary

    d = EntityDictionary("t", P, seed=4)
    sizes_seen = []
    for start in range(0, 300, 37):  # grows block by block, as during an import
        d.encode(pa.array([f"n{i}" for i in range(start, min(start + 37, 300))]))
        sizes = d.partition_sizes()
        assert max(sizes) - min(sizes) <= 1
        sizes_seen.append(sizes)
    ids = np.arange(300)
    parts, offs = d.partition_of(ids), d.offset_of(ids)
    assert (d.id_of(parts, offs) == ids).all()
    for p in range(P):  # offsets in a partition are 0..size-1, each once
        assert sorted(offs[parts == p]) == list(range(d.partition_sizes()[p]))
    # another seed gives another (still balanced) assignment
    if P > 2:
        assert (EntityDictionary("t", P, seed=5).partition_of(ids) != parts).any()
    # growing never moves an id that already had a place
    d2 = EntityDictionary("t", P, seed=4)
    d2.encode(pa.array([f"n{i}" for i in range(100)]))
    assert (d2.partition_of(np.arange(100)) == parts[:100]).all()


def test_generated_config_keeps_the_users_training_settings_and_loads(tmp_path):
    src, cfg, _ = _typed_graph(tmp_path)
    cfg.write_text(
        cfg.read_text().replace("dimension = 10", 'dimension = 10\nlr = 0.05\nloss_fn = "ranking"')
    )
    assert pbg("import", src, "--config", cfg, "--out", tmp_path / "ws") == 0
    import tomllib

    text = (tmp_path / "ws" / "config.toml").read_text()
    got = tomllib.loads(text)
    assert (got["dimension"], got["lr"], got["loss_fn"]) == (10, 0.05, "ranking")
    assert got["entity_path"] == "entities"
    from ember.pbg.config import load_config

    loaded = load_config(str(tmp_path / "ws" / "config.toml"))
    assert sorted(loaded.entities) == ["item", "tag", "user"]
    assert [r.name for r in loaded.relations] == ["buys", "follows", "tagged"]


def test_a_bad_training_key_in_the_import_config_is_refused_before_any_edge_is_read(tmp_path, capsys):
    src, cfg, _ = _typed_graph(tmp_path)
    cfg.write_text(cfg.read_text().replace("dimension = 10", "dimension = 10\nnum_epoch = 3"))
    assert pbg("import", src, "--config", cfg, "--out", tmp_path / "ws") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cfg}: config: unknown key 'num_epoch'; did you mean 'num_epochs'?")
    assert not (tmp_path / "ws").exists() and not list(tmp_path.glob(".ws*"))


def test_progress_bar_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    import ember.partitioning.importer as importer

    monkeypatch.setattr(importer.time, "time", iter(range(0, 10**6, 1)).__next__)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert pbg("import", TRAIN, "--out", tmp_path / "a") == 0
    err = capsys.readouterr().err
    assert "pass 1/2" in err and "edges/s" in err and "ETA" in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert pbg("import", TRAIN, "--out", tmp_path / "b") == 0
    assert capsys.readouterr().err == ""


def test_name_hash_depends_only_on_the_bytes():
    from ember.partitioning.dictionary import hash_strings

    names = [
        "",
        "a",
        "ab",
        "abcdefgh",
        "abcdefghi",
        "a" * 16,
        "a" * 17,
        "x" * 40,
        "x" * 41,
        "ä",
        "日本",
        "a\tb",
    ]
    h = hash_strings(pa.array(names))
    assert len(set(h.tolist())) == len(names)
    # the same names elsewhere in another buffer (sliced, shifted) hash the same
    other = pa.array(["pad", "zz"] + names[::-1]).slice(2)
    assert hash_strings(other).tolist() == h[::-1].tolist()
    assert hash_strings(pa.chunked_array([pa.array(names[:5]), pa.array(names[5:])])).tolist() == h.tolist()


def test_a_hash_collision_costs_time_never_the_import(tmp_path, monkeypatch, capsys):
    import ember.partitioning.dictionary as dictionary
    from ember.partitioning import ImportOptions, Workspace, import_edges

    real = dictionary.hash_strings
    h_a = int(real(pa.array(["a"]))[0])

    def colliding(arr):  # "c" hashes like "a"
        h = real(arr)
        names = dictionary._one(arr).to_pylist()
        return np.array([h_a if n == "c" else x for n, x in zip(names, h)], np.uint64)

    monkeypatch.setattr(dictionary, "hash_strings", colliding)
    src = tmp_path / "e.tsv"
    # "c" first appears in a later block than "a": found by its hash, checked, told apart
    src.write_text("a\tr\tb\n" * 2000 + "c\tr\ta\n" * 10)
    import_edges([src], ImportOptions(out=tmp_path / "ws", read_block_bytes=4096, min_block_rows=100))
    assert "hash collision" in capsys.readouterr().err
    ws = Workspace.open(tmp_path / "ws")
    assert sorted(ws.entity_names("all", 0)) == ["a", "b", "c"]
    assert ws.num_edges() == 2010
    d = ws.dictionary("all")  # rebuilt from the partition tables: the collision again
    assert d.lookup(pa.array(["c", "a", "b", "zz"])).tolist() == [2, 0, 1, -1]
    src.write_text("a\tr\tc\nc\tr\tb\n")  # both new in one block
    import_edges([src], ImportOptions(out=tmp_path / "ws2"))
    assert Workspace.open(tmp_path / "ws2").entity_names("all", 0) == ["a", "c", "b"]


def test_locate_finds_every_name_in_its_partition_with_repeats_and_unknown_names(tmp_path):
    src = tmp_path / "e.tsv"
    src.write_text("".join(f"n{i}\tr\tn{(i * 7 + 3) % 500}\n" for i in range(500)))
    assert pbg("import", src, "--out", tmp_path / "ws", "--partitions", 3) == 0
    ws = Workspace.open(tmp_path / "ws")
    where = {n: (p, o) for p in range(3) for o, n in enumerate(ws.entity_names("all", p))}
    asked = ["n17", "nope", "n17", *(f"n{i}" for i in range(0, 500, 37)), ""]
    parts, offs = ws.locate("all", asked)
    assert [(int(p), int(o)) for p, o in zip(parts, offs)] == [where.get(n, (-1, -1)) for n in asked]
    assert [len(a) for a in ws.locate("all", [])] == [0, 0]


def test_line_pieces_are_whole_lines_of_the_input_in_order(tmp_path):
    import io

    from ember.errors import InputFileError
    from ember.partitioning.readers import _line_pieces

    rng = np.random.default_rng(3)
    # a short line, then lines nearly as long as a piece: the cut-off rest of one read is
    # longer than the piece before it (moved to the front over itself)
    lines = [b"a\n", b"x" * 990 + b"\n", b"b\n", b"y" * 700 + b"\n"]
    lines += [
        bytes(rng.integers(97, 123, int(rng.integers(0, 400)), dtype=np.uint8)) + b"\n" for _ in range(300)
    ]
    data = b"".join(lines) + b"no newline at the end"
    pieces = [bytes(p) for p in _line_pieces(tmp_path / "f", io.BytesIO(data), 1000)]
    assert b"".join(pieces) == data
    assert all(p.endswith(b"\n") for p in pieces[:-1]) and all(0 < len(p) <= 2000 for p in pieces)
    long = tmp_path / "long.tsv"
    long.write_bytes(b"a\tb\n" + b"z" * 1500 + b"\n")
    with pytest.raises(InputFileError, match=r"long.tsv:2: line longer than 1,000 bytes"):
        list(_line_pieces(long, io.BytesIO(long.read_bytes()), 1000))


def test_training_counts_from_the_rows_left_out_are_the_masked_counts():
    from ember.partitioning.dictionary import _masked_counts

    rng = np.random.default_rng(2)
    for sizes, p_out in [([1000, 700], 0.01), ([5, 0, 9], 0.5), ([300], 0.0), ([40, 40], 1.0)]:
        parts = [rng.integers(0, 50, n) for n in sizes]
        mask = rng.random(sum(sizes)) >= p_out
        joined = np.concatenate(parts)
        c = np.bincount(joined, minlength=50)
        assert _masked_counts(c, parts, mask).tolist() == np.bincount(joined[mask], minlength=50).tolist()
