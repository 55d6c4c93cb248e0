"""`pbg index` and neighbors through it: an exhaustive index gives exactly the exact
search's neighbors (names, scores, global_emb included), a stale one is never used
silently, --exact bypasses it, and without faiss `pbg index` is one error line while
neighbors keeps working."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest

from ember.cli.main import main
from ember.pbg import index as index_mod
from ember.pbg import predict as predict_mod
from ember.pbg.api import EmbeddingModel
from ember.pbg.config import load_config, parse_config
from ember.pbg.train import train

faiss = pytest.importorskip("faiss", reason="faiss-cpu not installed (pip install -e '.[index]')")


def _graph(path, n_ent=80, n_edges=600, seed=0):
    rng = np.random.default_rng(seed)
    h, t = rng.integers(0, n_ent, n_edges), rng.integers(0, n_ent, n_edges)
    r = rng.integers(0, 2, n_edges)
    path.write_text("".join(f"e{a}\tr{b}\te{c}\n" for a, b, c in zip(h, r, t)))


def _train(ws, name, epochs):
    raw = load_config(ws / "config.toml").to_dict()
    raw.update(num_epochs=epochs, dimension=8, workers=1, init_scale=0.5, checkpoint_path=str(ws / name))
    cfg = parse_config({k: v for k, v in raw.items() if v is not None})
    train(cfg, progress=False, log=lambda m: None)
    return cfg


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("index")
    _graph(d / "edges.tsv")
    assert main(["import", str(d / "edges.tsv"), "--out", str(d / "ws"), "--partitions", "3"]) == 0
    return d / "ws"


@pytest.fixture(scope="module")
def cfg(ws):
    return _train(ws, "ck", 2)


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("metric", ["cos", "dot", "l2"])
def test_exhaustive_index_gives_the_exact_neighbors(cfg, metric):
    m = EmbeddingModel(cfg)
    assert np.abs(m.global_embeddings["all"]).sum() > 0  # the index must include global_emb
    meta = index_mod.build_index(m, "all", metric, nlist=2, nprobe=2)  # every cell scanned
    assert meta["count"] == 80 and meta["nprobe"] == 2
    fresh = EmbeddingModel(cfg)
    assert predict_mod._ann_index(fresh, "all", metric) is not None
    for name in fresh.entities()[::9]:
        got = fresh.neighbors(name, top_k=7, metric=metric)
        want = fresh.neighbors(name, top_k=7, metric=metric, exact=True)
        assert name not in got.names
        assert got.names == want.names
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-4, atol=1e-4)
        # the candidates' locations map back to the same names as the exact search's
        assert got.partitions.tolist() == want.partitions.tolist()
        assert got.offsets.tolist() == want.offsets.tolist()


def test_index_files_and_description(ws, cfg):
    m = EmbeddingModel(cfg)
    first = index_mod.build_index(m, "all", "cos", nlist=4)
    second = index_mod.build_index(m, "all", "cos", nlist=4)
    folder = ws / "index"
    meta = json.loads((folder / "all_cos.json").read_text())
    assert meta["checkpoint_version"] == m.version and meta["checkpoint"] == "ck"
    assert meta["metric"] == "cos" and meta["library"] == "faiss" and meta["index"] == "IndexIVFFlat"
    assert meta["count"] == 80 and meta["partition_sizes"] == m.partition_sizes("all")
    assert meta["nlist"] == 4 and 1 <= meta["nprobe"] <= 4
    assert meta["measured_recall"]["recall"] >= 0.95 or meta["nprobe"] == 4
    # the rebuild replaced the index file; nothing half-written is left
    assert (folder / second["file"]).is_file() and not (folder / first["file"]).exists()
    assert not list(folder.glob(".*tmp*"))
    assert (folder / meta["file"]).stat().st_size == meta["file_bytes"]


def test_stale_index_is_not_used_silently(ws, tmp_path, capsys):
    cfg = _train(ws, "ck_stale", 1)
    index_mod.build_index(EmbeddingModel(cfg), "all", "l2", nlist=8, nprobe=1)
    _train(ws, "ck_stale", 2)  # a newer checkpoint version: the index is stale
    m = EmbeddingModel(cfg)
    name = m.entities()[5]
    with pytest.warns(
        index_mod.StaleIndexWarning,
        match=r"checkpoint version \d+, the model queried is version \d+.*rebuild it with `pbg index",
    ):
        got = m.neighbors(name, top_k=5, metric="l2")
    want = m.neighbors(name, top_k=5, metric="l2", exact=True)
    assert got.names == want.names  # the fallback is the exact search
    code, out, err = _run(
        capsys,
        "neighbors",
        ws / "config.toml",
        name,
        "--metric",
        "l2",
        "-p",
        f"checkpoint_path={ws}/ck_stale",
    )
    assert code == 0
    assert [ln for ln in err.splitlines() if ln.startswith("note:")] == [err.strip()]
    assert "stale" not in out and "using the exact search" in err
    assert [ln.split("\t")[2] for ln in out.splitlines()[1:]] == m.neighbors(
        name, top_k=10, metric="l2", exact=True
    ).names


def test_index_of_another_checkpoint_is_not_used(ws, cfg):
    other = _train(ws, "ck_other", 2)
    index_mod.build_index(EmbeddingModel(other), "all", "dot", nlist=2, nprobe=2)
    m = EmbeddingModel(cfg)  # same workspace and version number, another checkpoint folder
    with pytest.warns(index_mod.StaleIndexWarning, match="checkpoint ck_other"):
        assert predict_mod._ann_index(m, "all", "dot") is None


def test_exact_bypasses_the_index(cfg, monkeypatch):
    m = EmbeddingModel(cfg)
    index_mod.build_index(m, "all", "cos", nlist=2, nprobe=2)
    monkeypatch.setattr(predict_mod, "_ann_index", lambda *a: pytest.fail("index used with exact=True"))
    assert len(m.neighbors(m.entities()[0], top_k=3, exact=True)) == 3


def test_index_is_used_when_present(ws, cfg, monkeypatch):
    import shutil

    shutil.rmtree(ws / "index", ignore_errors=True)
    m = EmbeddingModel(cfg)
    m.neighbors(m.entities()[0], top_k=3)  # no index yet: exact
    index_mod.build_index(m, "all", "cos", nlist=2, nprobe=2)  # the same model sees it
    monkeypatch.setattr(predict_mod, "_stream_topk", lambda *a, **k: pytest.fail("exact search used"))
    assert len(m.neighbors(m.entities()[0], top_k=3)) == 3


def test_cli_index_then_neighbors(ws, cfg, capsys):
    ck = f"checkpoint_path={cfg.checkpoint_path}"
    code, out, err = _run(
        capsys, "index", ws / "config.toml", "-p", ck, "--metric", "l2", "--nlist", "3", "--json"
    )
    assert code == 0, err
    meta = json.loads(out)
    assert meta["metric"] == "l2" and meta["nlist"] == 3 and "index: training 3 cells" in err
    m = EmbeddingModel(cfg)
    name = m.entities()[11]
    code, out, err = _run(capsys, "neighbors", ws / "config.toml", name, "-p", ck, "--metric", "l2", "--json")
    assert code == 0 and err == ""
    got = json.loads(out)[0]["predictions"]
    assert len(got) == 10 and all(p["name"] != name for p in got)
    code, out, _ = _run(capsys, "index", ws / "config.toml", "-p", ck)
    assert code == 0 and out.startswith("indexed     80 all entities by cos")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nlist", "0"], "--nlist must be between 1 and the number of entities (80), got 0"),
        (["--nlist", "81"], "--nlist must be between 1"),
        (["--nlist", "4", "--nprobe", "5"], "--nprobe must be between 1 and --nlist (4), got 5"),
        (["--target-recall", "1.5"], "--target-recall must be in (0, 1]"),
        (["--entity-type", "nope"], "unknown entity type 'nope'"),
    ],
)
def test_cli_index_bad_input_is_one_error_line(ws, cfg, capsys, args, message):
    code, out, err = _run(
        capsys, "index", ws / "config.toml", "-p", f"checkpoint_path={cfg.checkpoint_path}", *args
    )
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_without_faiss_index_is_one_error_line_and_neighbors_still_work(ws, cfg, capsys, monkeypatch):
    index_mod.build_index(EmbeddingModel(cfg), "all", "cos", nlist=2, nprobe=2)
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now raises ImportError
    code, out, err = _run(capsys, "index", ws / "config.toml", "-p", f"checkpoint_path={cfg.checkpoint_path}")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: building an index needs faiss, which is not installed: "
        "pip install 'ember[index]' (or: pip install faiss-cpu)"
    ]
    m = EmbeddingModel(cfg)
    name = m.entities()[2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = m.neighbors(name, top_k=4)
    assert any("needs faiss" in str(w.message) for w in caught)
    assert got.names == m.neighbors(name, top_k=4, exact=True).names


def _clustered(n, d, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((50, d)).astype(np.float32)
    return centers[rng.integers(0, 50, n)] + rng.standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("metric", ["cos", "l2"])
def test_default_nprobe_reaches_the_target_recall(metric):
    x = _clustered(6000, 16)
    sizes = [2500, 2000, 1500]
    bounds = np.cumsum([0, *sizes])
    parts = lambda: (x[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    index, facts = index_mod.build_from_partitions(parts, sizes, 16, metric, target_recall=0.9)
    assert facts["nlist"] == index_mod.default_nlist(6000) == 77
    assert facts["measured_recall"]["recall"] >= 0.9 and facts["nprobe"] < facts["nlist"]
    # the recall on fresh queries (not those it was tuned on) is close to the measured one
    ann = index_mod.NeighborIndex(index, facts)
    rng = np.random.default_rng(1)
    q = rng.choice(6000, 100, replace=False)
    prep = index_mod._prepare(x, metric)
    exact = index_mod._exact_scores(prep[q], prep, metric)
    exact[np.arange(100), q] = -np.inf
    truth = np.argsort(-exact, 1)[:, :10]
    got = ann.search(x[q], 10, exclude=q)
    recall = np.mean([len(set(t) & set(g[1])) / 10 for t, g in zip(truth, got)])
    assert recall >= 0.8
    assert all(qi not in g[1] for qi, g in zip(q, got))


def test_build_refuses_partitions_of_the_wrong_shape():
    parts = lambda: iter([np.zeros((10, 4), np.float32), np.zeros((5, 3), np.float32)])
    with pytest.raises(index_mod.InputFileError, match=r"partition 1: embeddings of shape \(5, 3\)"):
        index_mod.build_from_partitions(parts, [10, 5], 4, "dot", nlist=1)
