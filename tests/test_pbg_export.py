"""`pbg export`: every entity once, with its name and exactly the checkpoint's vector, in
every format; relation parameters round-trip; one partition in memory at a time."""

from __future__ import annotations

import json
import tracemalloc

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ember.cli.main import main
from ember.partitioning import Workspace
from ember.pbg.api import EmbeddingModel, load, operator_parameters
from ember.pbg.checkpoint import Checkpoint
from ember.pbg.config import load_config, parse_config
from ember.pbg.export import FORMATS, export, read_export
from ember.pbg.train import train


def _graph(path, n_ent, n_edges, seed=0):
    rng = np.random.default_rng(seed)
    h, t = rng.integers(0, n_ent, n_edges), rng.integers(0, n_ent, n_edges)
    r = rng.integers(0, 3, n_edges)
    path.write_text("".join(f"n{a}\trel{b}\tn{c}\n" for a, b, c in zip(h, r, t)))


def _train(ws, operator, epochs=1, dim=6, name="ck"):
    raw = load_config(ws / "config.toml").to_dict()
    for r in raw["relations"]:
        r["operator"] = operator
    raw.update(
        num_epochs=epochs,
        dimension=dim,
        workers=1,
        init_scale=0.3,
        checkpoint_path=str(ws / f"{name}_{operator}"),
    )
    cfg = parse_config({k: v for k, v in raw.items() if v is not None})
    train(cfg, progress=False, log=lambda m: None)
    return cfg


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    _graph(d / "edges.tsv", 50, 400)
    assert main(["import", str(d / "edges.tsv"), "--out", str(d / "ws"), "--partitions", "3"]) == 0
    return d / "ws"


def _truth(cfg, ws):
    """name -> vector, straight from the checkpoint and the workspace dictionaries."""
    w, ck = Workspace.open(ws), Checkpoint(cfg.checkpoint_path)
    out = {}
    glob = ck.load_relations().get("global_all", 0)  # global_emb, added as PBG's exporter does
    for p in range(w.num_partitions("all")):
        emb = ck.load_partition("all", p)[0] + glob
        for n, v in zip(w.entity_names("all", p), emb):
            out[n] = v
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_entity_once_with_its_checkpoint_vector(ws, tmp_path, fmt):
    cfg = _train(ws, "complex_diagonal", epochs=2)
    m = EmbeddingModel(cfg)
    assert np.abs(m.global_embeddings["all"]).sum() > 0  # a trained global_emb is included
    s = export(m, fmt, tmp_path / fmt)
    truth = _truth(cfg, ws)
    names, emb = read_export(tmp_path / fmt, "all")
    assert len(names) == len(set(names)) == len(truth) == s["entities"]["all"]
    assert names == m.entities()
    for n, v in zip(names, emb):
        if fmt == "tsv":  # %.9f text
            np.testing.assert_allclose(v, truth[n], atol=1e-8)
        else:
            np.testing.assert_array_equal(v, truth[n])
    assert not list((tmp_path / fmt).glob(".*tmp*"))  # nothing half-written left


def test_tsv_is_pytorch_biggraph_layout(ws, tmp_path):
    cfg = _train(ws, "translation")
    export(EmbeddingModel(cfg), "tsv", tmp_path)
    lines = (tmp_path / "entity_embeddings.tsv").read_text().splitlines()
    first = lines[0].split("\t")
    assert len(first) == 1 + 6 and all(len(x.split(".")[1]) == 9 for x in first[1:])
    rel = [r.split("\t") for r in (tmp_path / "relation_types_parameters.tsv").read_text().splitlines()]
    assert {(r[0], r[1], r[2], r[3]) for r in rel} == {
        (f"rel{i}", side, "translation", "6") for i in range(3) for side in ("lhs", "rhs")
    }


def _relations_from(fmt, out):
    """(relation, side, parameter) -> array, read back from each format's files."""
    got = {}
    if fmt == "tsv":
        for line in (out / "relation_types_parameters.tsv").read_text().splitlines():
            r, side, p, shape, *vals = line.split("\t")
            dims = [int(x) for x in shape.split("x")]
            got[(r, side, p)] = np.array(vals, np.float32).reshape(dims)
    elif fmt == "parquet":
        t = pq.read_table(out / "relations.parquet").to_pylist()
        for row in t:
            got[(row["relation"], row["side"], row["parameter"])] = np.array(
                row["values"], np.float32
            ).reshape(row["shape"])
    elif fmt == "hdf5":
        with h5py.File(out / "relations.h5", "r") as f:
            f.visititems(
                lambda k, v: (
                    got.__setitem__(tuple(k.split("/")), v[()]) if isinstance(v, h5py.Dataset) else None
                )
            )
    else:
        for row in json.loads((out / "relations.json").read_text())["parameters"]:
            got[(row["relation"], row["side"], row["parameter"])] = np.array(
                row["values"], np.float32
            ).reshape(row["shape"])
    return got


@pytest.mark.parametrize("operator", ["complex_diagonal", "affine", "diagonal", "rotate"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_relation_parameters_round_trip(ws, tmp_path, fmt, operator):
    cfg = _train(ws, operator)
    m = EmbeddingModel(cfg)
    export(m, fmt, tmp_path)
    got = _relations_from(fmt, tmp_path)
    rel = Checkpoint(cfg.checkpoint_path).load_relations()
    want = {}
    for side, key in (("rhs", "theta_r"), ("lhs", "theta_l")):
        for i, name in enumerate(m.relation_names):
            for p, arr in operator_parameters(operator, m.dim, rel[key][i]):
                want[(name, side, p)] = arr
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=1e-8 if fmt == "tsv" else 0)
    # the named parameters put back together are the checkpoint's flat rows
    for side, key in (("rhs", "theta_r"), ("lhs", "theta_l")):
        for i, name in enumerate(m.relation_names):
            flat = np.concatenate([got[k].reshape(-1) for k in want if k[:2] == (name, side)])
            np.testing.assert_allclose(flat, rel[key][i], atol=1e-8)


def test_parquet_loads_as_a_name_and_a_fixed_size_vector_column(ws, tmp_path):
    cfg = _train(ws, "diagonal")
    export(EmbeddingModel(cfg), "parquet", tmp_path)
    t = pq.read_table(tmp_path / "entities_all.parquet")
    assert t.schema.field("name").type == "string"
    vec = t.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(vec) and vec.list_size == 6
    assert vec.value_type == pa.float32()
    manifest = json.loads((tmp_path / "export.json").read_text())
    assert manifest["operator"] == "diagonal" and manifest["entity_counts"] == {"all": 50}


def test_cli_export_default_folder_and_checkpoint_versions(ws, capsys):
    cfg = _train(ws, "diagonal", epochs=4, name="ckv")
    raw = load_config(ws / "config.toml").to_dict()
    assert raw  # config untouched
    ck = f"checkpoint_path={cfg.checkpoint_path}"
    config = str(ws / "config.toml")
    v = Checkpoint(cfg.checkpoint_path).version
    assert main(["export", config, "-p", ck, "--format", "npy", "--checkpoint", str(v), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == v and out["out"] == str(ws / "exports" / "npy")
    assert main(["export", config, "-p", ck, "--checkpoint", "12345"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --checkpoint 12345: no such checkpoint version")
    assert main(["export", config, "-p", ck, "--entity-type", "nope"]) == 2
    assert "unknown entity type 'nope'" in capsys.readouterr().err


def test_export_of_snapshot_versions(ws):
    raw = load_config(ws / "config.toml").to_dict()
    raw.update(
        num_epochs=2,
        dimension=4,
        workers=1,
        checkpoint_preservation_interval=1,
        checkpoint_path=str(ws / "ck_snap"),
    )
    cfg = parse_config({k: v for k, v in raw.items() if v is not None})
    train(cfg, progress=False, log=lambda m: None)
    a = load(ws / "config.toml", overrides=[f"checkpoint_path={cfg.checkpoint_path}"], checkpoint="epoch_1")
    b = load(ws / "config.toml", overrides=[f"checkpoint_path={cfg.checkpoint_path}"])
    assert a.version < b.version
    assert not np.array_equal(a.partition("all", 0), b.partition("all", 0))


def test_multi_partition_export_holds_one_partition_at_a_time(tmp_path):
    _graph(tmp_path / "big.tsv", 40_000, 60_000, seed=1)
    assert (
        main(["import", str(tmp_path / "big.tsv"), "--out", str(tmp_path / "ws"), "--partitions", "4"]) == 0
    )
    ws = tmp_path / "ws"
    cfg = _train(ws, "diagonal", epochs=0, dim=64)
    m = EmbeddingModel(cfg)
    part_bytes = max(m.partition_sizes("all")) * 64 * 4
    total = sum(m.partition_sizes("all")) * 64 * 4
    for fmt in ("npy", "hdf5"):
        tracemalloc.start()
        export(m, fmt, tmp_path / fmt)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # one partition (+ its names as Python strings): two partitions would exceed this
        assert peak < 2 * part_bytes < total, (fmt, peak, part_bytes, total)
        names, emb = read_export(tmp_path / fmt, "all")
        assert len(set(names)) == len(emb) == sum(m.partition_sizes("all"))


def test_tsv_rows_are_byte_for_byte_pythons_percent_9f_in_whole_array_blocks():
    """The block formatter against one Python format per value, on values that test the
    rounding: exact ties at the 9th decimal, -0.0, subnormals, negatives that round to
    zero, every exponent a float32 has below 2^33, non-ASCII and empty names."""
    from ember.pbg.export import _fmt_rows, _tsv_bytes

    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 7)).astype(np.float32)
    a[0] = [0.0, -0.0, 1e-12, -1e-12, 5e-10, -5e-10, 1.5e-9]
    a[1] = [8.5e9, -8.5e9, 1e-45, -1e-45, 123456789.123, 2.5e-9, -3.5e-9]
    a[2:] *= rng.choice([1e-9, 1e-6, 1e-3, 1, 1e3, 1e6, 1e9], size=(498, 7)).astype(np.float32)
    bits = rng.integers(0, 2**32, size=(4000, 7), dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits).all(1) & (np.abs(bits) < 2**33).all(1)]
    x = np.concatenate([a, bits])
    names = [f"e{i}" if i % 3 else f"näme {i}" for i in range(len(x))]
    names[4] = ""
    assert _tsv_bytes(names, x) == _fmt_rows(names, x).encode()
    odd = np.array([[np.nan, 1.0], [np.inf, -np.inf], [1e10, 2.0]], np.float32)  # the reference path
    assert _tsv_bytes(["a", "b", "c"], odd) == _fmt_rows(["a", "b", "c"], odd).encode()
