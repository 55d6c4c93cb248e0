"""Featurized entity types (PyTorch-BigGraph's ``featurized = true``), end to end.

An entity of a featurized type is a bag of features; its embedding is the mean of its
features' rows (plus the type's global embedding); the feature table is what trains. The
cold-start graph shows what that buys: documents whose edges are all in the test split
(unseen in training) but whose words are shared with trained documents get their topic
ranked far above the trivial floor, where a plain model can only guess.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ember._standin import StandinArray
from ember.cli.main import main as _main
from ember.errors import UserError
from ember.partitioning import Workspace
from ember.pbg.api import EmbeddingModel
from ember.pbg.batch import BatchTrainer
from ember.pbg.config import load_config
from ember.pbg.eval import evaluate
from ember.pbg.export import FORMATS, VIEW_FORMATS, read_export
from ember.pbg.featurized import entity_vectors, expand
from ember.pbg.train import Trainer, memory_plan, train


def pbg(*args) -> int:
    return _main([str(a) for a in args])


# ------------------------------------------------------------------ the cold-start graph
TOPICS, TRAIN_DOCS, TEST_DOCS, VOCAB, NOISE = 30, 30, 5, 8, 40


def cold_start_graph(folder: Path, seed: int = 0) -> dict:
    """Documents about one of TOPICS topics each; a document's bag is 3 words of its
    topic's vocabulary and 1 noise word. Train edges: doc -about-> topic for the training
    documents; test edges: the same for documents that appear nowhere in train."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    feats, train, test = [], [], []
    for t in range(TOPICS):
        for d in range(TRAIN_DOCS + TEST_DOCS):
            name = f"d{t}_{d}"
            words = [f"w{t}_{w}" for w in rng.choice(VOCAB, 3, replace=False)]
            words.append(f"noise{rng.integers(NOISE)}")
            feats.append(name + "\t" + "\t".join(words))
            (train if d < TRAIN_DOCS else test).append(f"{name}\tabout\ttopic{t}")
    rng.shuffle(train)
    paths = {k: folder / f"{k}.tsv" for k in ("features", "train", "test")}
    paths["features"].write_text("# document<TAB>words\n" + "\n".join(feats) + "\n")
    paths["train"].write_text("\n".join(train) + "\n")
    paths["test"].write_text("\n".join(test) + "\n")
    return paths


def model_toml(path: Path, featurized: bool, extra: str = "") -> Path:
    path.write_text(
        f"""
[entities.doc]
featurized = {str(featurized).lower()}
[entities.topic]
num_partitions = 1
[[relations]]
name = "about"
lhs = "doc"
rhs = "topic"
operator = "none"
{extra}
"""
    )
    return path


TRAIN = ["dimension=16", "num_epochs=25", "batch_size=100", "num_batch_negs=20", "workers=1", "lr=0.1"]


def _import_cold(tmp: Path, featurized: bool) -> Path:
    g = cold_start_graph(tmp / "graph")
    cfg = model_toml(tmp / f"model_{featurized}.toml", featurized)
    ws = tmp / ("feat_ws" if featurized else "plain_ws")
    args = ["import", g["train"], "--test", g["test"], "--config", cfg, "--out", ws]
    if featurized:
        args += ["--features", f"doc={g['features']}"]
    assert pbg(*args) == 0
    return ws / "config.toml"


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cold")
    out = {}
    for featurized in (True, False):
        cfg = load_config(_import_cold(tmp, featurized), TRAIN)
        train(cfg, log=lambda m: None)
        out[featurized] = (cfg, evaluate(cfg, split="test"))
    return out


def test_cold_start_featurized_ranks_unseen_entities_far_above_the_floor_and_plain_cannot(cold, capsys):
    (fcfg, feat), (_, plain) = cold[True], cold[False]
    floor = sum(1 / r for r in range(1, TOPICS + 1)) / TOPICS  # random ranks among the topics
    f_mrr, p_mrr = feat["tail"]["mrr"], plain["tail"]["mrr"]
    with capsys.disabled():
        print(
            f"\ncold start, topic of unseen documents: MRR featurized {f_mrr:.3f}, "
            f"plain {p_mrr:.3f}, floor {floor:.3f}"
        )
    assert feat["tail"]["count"] == TOPICS * TEST_DOCS  # every test document is unseen in train
    ws = Workspace.open(Path(fcfg.entity_path).parent)
    assert ws.manifest["stats"]["unseen_in_train"]["test"] == TOPICS * TEST_DOCS
    assert f_mrr > 0.8 > 4 * floor
    assert p_mrr < 2 * floor  # a plain model has nothing to go on for an unseen entity


# ------------------------------------------------------------------ the workspace
def _small(tmp: Path, feats: str | bytes = None, edges: str = None, name="f.tsv") -> tuple[Path, Path]:
    e = tmp / "e.tsv"
    e.write_text(edges or "a\tr\tb\nb\tr\tc\nc\tr\ta\n")
    f = tmp / name
    data = feats if feats is not None else "# bags\na\tx\ty\nb\ty\n\nc\tz\tx\tx\n"
    (f.write_bytes if isinstance(data, bytes) else f.write_text)(data)
    return e, f


def test_the_workspace_stores_names_feature_names_and_bags(tmp_path):
    e, f = _small(tmp_path)
    assert pbg("import", e, "--features", f"all={f}", "--out", tmp_path / "ws") == 0
    ws = Workspace.open(tmp_path / "ws")
    assert ws.is_featurized("all") and ws.num_entities("all") == 3 and ws.num_features("all") == 3
    assert ws.table_sizes("all") == [3] and ws.manifest["features"]["all"] == {
        "num_features": 3,
        "bag_entries": 6,
    }
    assert ws.entity_names("all", 0) == ["a", "b", "c"]
    assert ws.feature_names("all") == ["x", "y", "z"]  # ids in order of first appearance
    bags = ws.bags("all")
    assert bags.offsets.tolist() == [0, 2, 3, 6] and bags.features.tolist() == [0, 1, 1, 2, 0, 0]
    counts = pq.read_table(tmp_path / "ws/entities/all/features.parquet").column("count").to_pylist()
    assert counts == [3, 2, 1]  # bag entries naming each feature (x twice in c's bag)
    assert "featurized = true" in (tmp_path / "ws/config.toml").read_text()
    assert load_config(tmp_path / "ws/config.toml").entities["all"].featurized


def test_features_from_gzip_and_parquet_give_the_same_workspace(tmp_path):
    e, f = _small(tmp_path)
    gz = tmp_path / "f.tsv.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    pf = tmp_path / "f.parquet"
    pq.write_table(
        pa.table(
            {
                "n": pa.array([1, 2, 3]),  # not a string column: skipped
                "entity": ["a", "b", "c"],
                "features": pa.array([["x", "y"], ["y"], ["z", "x", "x"]], pa.list_(pa.string())),
            }
        ),
        pf,
    )
    got = []
    for src in (f, gz, pf):
        out = tmp_path / f"ws_{src.name}"
        assert pbg("import", e, "--features", f"all={src}", "--out", out) == 0
        b = Workspace.open(out).bags("all")
        got.append((b.offsets.tolist(), b.features.tolist(), b.names.to_pylist()))
    assert got[0] == got[1] == got[2]


def test_entities_with_features_but_no_edges_are_entities_too(tmp_path):
    e, f = _small(tmp_path, feats="a\tx\nb\ty\nc\tx\nnew\ty\tx\n")
    assert pbg("import", e, "--features", f"all={f}", "--out", tmp_path / "ws") == 0
    ws = Workspace.open(tmp_path / "ws")
    assert ws.entity_names("all", 0) == ["a", "b", "c", "new"]


def _fails(capsys, tmp_path, *args, code=2):
    before = sorted(os.listdir(tmp_path))
    assert pbg("import", *args, "--out", tmp_path / "ws") == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert sorted(os.listdir(tmp_path)) == before, "a workspace (or its staging) was left"
    return captured.err


BAD = [
    ("empty entity", "a\tx\n\ty\n", 2, "empty entity name"),
    ("no features", "a\tx\nb\nc\tz\n", 2, "entity 'b' has no features"),
    ("empty feature", "a\tx\t\ty\n", 1, "empty feature name (field 2)"),
    ("listed twice", "a\tx\n# c\nb\ty\na\tz\nc\tx\n", 4, "entity 'a' is listed twice (first on line 1)"),
    ("listed twice in one block", "a\tx\na\ty\n", 2, "entity 'a' is listed twice (first on line 1)"),
    ("bad utf8", b"a\tx\nb\t\xffy\n", 2, "not valid UTF-8 (byte 0xff at position 3)"),
]


@pytest.mark.parametrize("name,data,line,msg", BAD, ids=[b[0] for b in BAD])
def test_a_bad_features_line_stops_the_import_naming_file_and_line(tmp_path, capsys, name, data, line, msg):
    e, f = _small(tmp_path, feats=data)
    err = _fails(capsys, tmp_path, e, "--features", f"all={f}")
    assert err == f"error: {f}:{line}: {msg}\n"


def test_a_bad_parquet_row_is_named_by_its_row_number(tmp_path, capsys):
    e, _ = _small(tmp_path)
    pf = tmp_path / "f.parquet"
    pq.write_table(
        pa.table({"e": ["a", "b", "c"], "f": pa.array([["x"], [], ["y"]], pa.list_(pa.string()))}), pf
    )
    assert (
        _fails(capsys, tmp_path, e, "--features", f"all={pf}")
        == f"error: {pf}:2: entity 'b' has no features\n"
    )
    pq.write_table(pa.table({"e": ["a", "b"], "n": [1, 2]}), pf)
    err = _fails(capsys, tmp_path, e, "--features", f"all={pf}")
    assert err.startswith(
        f"error: {pf}: a features Parquet file needs a string column of entity names and a list<string>"
    )


def test_an_edge_entity_without_features_is_named_with_the_edges_file_and_line(tmp_path, capsys):
    e, f = _small(tmp_path, edges="a\tr\tb\n# note\nb\tr\tc\nc\tr\tzz\n", feats="a\tx\nb\ty\nc\tz\n")
    err = _fails(capsys, tmp_path, e, "--features", f"all={f}")
    assert (
        err == f"error: {e}:4: entity 'zz' of featurized type 'all' has no features (no line for it in {f})\n"
    )


def test_features_of_an_unknown_or_plain_type_and_missing_features_are_refused(tmp_path, capsys):
    e, f = _small(tmp_path)
    err = _fails(capsys, tmp_path, e, "--features", f"doc={f}")
    assert err.startswith(
        f"error: --features doc={f}: no entity type 'doc'; without --config the one entity type is 'all'"
    )
    err = _fails(capsys, tmp_path, e, "--features", f"all={f}", "--partitions", "2")
    assert "a featurized entity type is not partitioned" in err and "would have to live in both" in err
    err = _fails(capsys, tmp_path, e, "--features", str(f))
    assert err.startswith(f"error: --features '{f}': give TYPE=FILE")
    cfg = tmp_path / "m.toml"
    cfg.write_text(
        '[entities.doc]\nfeaturized = true\n[entities.w]\n[[relations]]\nname = "r"\nlhs = "doc"\nrhs = "w"\n'
    )
    err = _fails(capsys, tmp_path, e, "--config", cfg)
    assert err == (
        f"error: {cfg}: entities.doc.featurized = true, but no --features doc=FILE gives the features of "
        "its entities\n"
    )
    err = _fails(capsys, tmp_path, e, "--config", cfg, "--features", f"doc={f}", "--features", f"w={f}")
    assert (
        err == f"error: --features w={f}: entities.w.featurized is not true in {cfg}; "
        "set it to make 'w' a featurized type\n"
    )
    err = _fails(capsys, tmp_path, e, "--config", cfg, "--features", f"doc={f}", "--features", f"zz={f}")
    assert err.startswith(f"error: --features zz={f}: entity type 'zz' is not in {cfg}'s entities")
    cfg.write_text(
        "[entities.doc]\nfeaturized = true\nnum_partitions = 2\n"
        '[[relations]]\nname = "r"\nlhs = "doc"\nrhs = "doc"\n'
    )
    err = _fails(capsys, tmp_path, e, "--config", cfg, "--features", f"doc={f}")
    assert "entities.doc.featurized: a featurized entity type is not partitioned (num_partitions = 2)" in err


def test_append_to_a_featurized_workspace_is_refused_with_the_reason(tmp_path, capsys):
    e, f = _small(tmp_path)
    assert pbg("import", e, "--features", f"all={f}", "--out", tmp_path / "ws") == 0
    capsys.readouterr()
    before = sorted(os.listdir(tmp_path / "ws"))
    assert pbg("import", "--append", e, "--into", tmp_path / "ws") == 2
    err = capsys.readouterr().err
    assert "--append does not support featurized entity types (all)" in err and "feature table" in err
    assert sorted(os.listdir(tmp_path / "ws")) == before


def test_a_config_that_disagrees_with_the_workspace_is_refused(tmp_path):
    e, f = _small(tmp_path)
    assert pbg("import", e, "--features", f"all={f}", "--out", tmp_path / "ws") == 0
    text = (tmp_path / "ws/config.toml").read_text().replace("featurized = true", "featurized = false")
    (tmp_path / "ws/plain.toml").write_text(text)
    with pytest.raises(
        UserError,
        match=r"entities.all.featurized: false in the config, but the workspace .* "
        r"was imported with --features all=FILE",
    ):
        train(load_config(tmp_path / "ws/plain.toml"))


# ------------------------------------------------------------------ training and readers
def _typed(tmp: Path, extra: str = "", topic_partitions: int = 2) -> Path:
    """doc (featurized) -cites-> doc, doc -about-> topic (plain, partitioned)."""
    rng = np.random.default_rng(3)
    docs = [f"d{i}" for i in range(120)]
    feats = [
        f"{d}\t" + "\t".join(f"w{w}" for w in rng.choice(50, rng.integers(1, 5), replace=False)) for d in docs
    ]
    edges = [f"d{i}\tcites\td{(i * 7 + 3) % 120}" for i in range(120)]
    edges += [f"d{i}\tabout\tt{i % 9}" for i in range(120)]
    (tmp / "f.tsv").write_text("\n".join(feats) + "\n")
    (tmp / "e.tsv").write_text("\n".join(edges) + "\n")
    cfg = tmp / "m.toml"
    cfg.write_text(
        f"[entities.doc]\nfeaturized = true\n[entities.topic]\nnum_partitions = {topic_partitions}\n"
        '[[relations]]\nname = "cites"\nlhs = "doc"\nrhs = "doc"\noperator = "diagonal"\n'
        f'[[relations]]\nname = "about"\nlhs = "doc"\nrhs = "topic"\noperator = "translation"\n{extra}'
    )
    assert (
        pbg(
            "import",
            tmp / "e.tsv",
            "--config",
            cfg,
            "--features",
            f"doc={tmp / 'f.tsv'}",
            "--out",
            tmp / "ws",
        )
        == 0
    )
    return tmp / "ws" / "config.toml"


SHORT = [
    "dimension=8",
    "num_epochs=3",
    "batch_size=50",
    "num_batch_negs=10",
    "num_uniform_negs=10",
    "workers=1",
]


def _cfg(path: Path, name: str, extra=()):
    ck = path.parent / name
    shutil.rmtree(ck, ignore_errors=True)
    return load_config(path, [*SHORT, f"checkpoint_path={ck}", *extra])


def _checkpoint(cfg) -> dict:
    out = {}
    for f in sorted(Path(cfg.checkpoint_path).glob("*.h5")):
        with h5py.File(f, "r") as h:
            for k in h:
                if k != "manifest":  # the version's manifest (paths, checksums): not parameters
                    out[(f.name.split(".")[0], k)] = h[k][()]
    return out


@pytest.fixture(scope="module")
def typed(tmp_path_factory):
    return _typed(tmp_path_factory.mktemp("typed"))


def test_the_checkpoint_holds_the_feature_table_and_negatives_come_from_the_entities(typed, monkeypatch):
    drawn = []
    step = BatchTrainer.step

    def spy(self, lp, rp, lhs, rhs, *a, **kw):
        drawn.append((lp.etype, lp.num_entities, len(lp.emb), rp.etype, rp.num_entities))
        return step(self, lp, rp, lhs, rhs, *a, **kw)

    monkeypatch.setattr(BatchTrainer, "step", spy)
    cfg = _cfg(typed, "ck")
    train(cfg, log=lambda m: None)
    ws = Workspace.open(typed.parent)
    assert ("doc", 120, ws.num_features("doc"), "doc", 120) in drawn  # 120 bags, not 50 rows
    ck = _checkpoint(cfg)
    assert ck[("embeddings_doc_0", "embeddings")].shape == (ws.num_features("doc"), 8)
    assert ("embeddings_doc_1", "embeddings") not in ck
    assert json.loads((Path(cfg.checkpoint_path) / "checkpoint.json").read_text())["model"]["featurized"] == {
        "doc": ws.num_features("doc")
    }


@pytest.mark.parametrize(
    "extra", [(), ("relations.0.all_negs=true",), ("dtype=float16",)], ids=["sampled", "all_negs", "float16"]
)
def test_the_standin_device_run_equals_the_cpu_run(typed, extra, monkeypatch):
    seen = set()
    step = BatchTrainer.step

    def spy(self, lp, rp, lhs, *a, **kw):
        seen.update({type(lp.emb), type(lp.bags.features) if lp.bags else None, type(lhs)})
        return step(self, lp, rp, lhs, *a, **kw)

    cpu = _cfg(typed, "ck_cpu", ["eval_fraction=0.1", *extra])
    train(cpu, device="cpu", log=lambda m: None)
    monkeypatch.setattr(BatchTrainer, "step", spy)
    dev = _cfg(typed, "ck_dev", ["eval_fraction=0.1", *extra])
    train(dev, device="standin", log=lambda m: None)
    assert seen <= {StandinArray, None} and StandinArray in seen  # the bags were on the device too
    a, b = _checkpoint(cpu), _checkpoint(dev)
    assert a.keys() == b.keys() and a
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=str(k))
    stats = [
        json.loads(x) for x in (Path(dev.checkpoint_path) / "training_stats.jsonl").read_text().splitlines()
    ]
    assert all("eval_after" in s for s in stats)  # held-out metrics on entity vectors, on the device
    m_dev, m_cpu = evaluate(dev, split="train", device="standin"), evaluate(cpu, split="train")
    # the tables agree to 1e-4, not bit for bit (BLAS kernels differ by machine, e.g.
    # OPENBLAS_CORETYPE): a near-tied candidate may change places, moving the MRR ~1e-4
    assert m_dev["mrr"] == pytest.approx(m_cpu["mrr"], abs=1e-3)


def test_a_featurized_table_is_never_cut_into_sub_buckets(typed):
    cfg = _cfg(typed, "ck_budget")
    with pytest.raises(UserError, match="sub-buckets split tables by rows, which a featurized type"):
        train(cfg, device="standin", log=lambda m: None, device_memory=2_000)


def test_the_memory_plan_counts_feature_rows_and_bags(typed):
    cfg = _cfg(typed, "ck_plan")
    t = Trainer(cfg, log=lambda m: None)
    ws = t.ws
    plan = memory_plan(cfg, ws, t.model)
    row = 8 * 4 + 4
    bags = 8 * (120 + 1 + ws.manifest["features"]["doc"]["bag_entries"])
    topics = max(ws.partition_sizes("topic")) * 2 * row
    assert plan.embeddings == ws.num_features("doc") * row + bags + topics
    t.batches.close()


def test_readers_see_entity_vectors_the_mean_of_feature_rows_plus_global_emb(typed, tmp_path):
    cfg = _cfg(typed, "ck_read")
    train(cfg, log=lambda m: None)
    m = EmbeddingModel(cfg)
    ws = m.workspace
    table = m.feature_table("doc")
    g = m.global_embeddings["doc"]
    assert np.abs(g).sum() > 0  # global_emb trained
    bags = ws.bags("doc")
    by_hand = (
        np.stack([table[bags.features[a:b]].mean(0) for a, b in zip(bags.offsets, bags.offsets[1:])]) + g
    )
    vectors = m.partition("doc", 0)
    np.testing.assert_allclose(vectors, by_hand, rtol=1e-5, atol=1e-6)
    names = m.entities("doc")
    np.testing.assert_allclose(m.embeddings(names[:3], "doc"), by_hand[:3], rtol=1e-5, atol=1e-6)
    # a bag's embedding, also for an entity the graph never had
    feats = ws.feature_names("doc")
    bag0 = [feats[i] for i in bags.features[bags.offsets[0] : bags.offsets[1]]]
    np.testing.assert_allclose(m.embed_features(bag0, "doc"), by_hand[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="unknown feature 'nope'"):
        m.embed_features(["nope"], "doc")
    with pytest.raises(UserError, match="'topic' is not featurized"):
        m.feature_table("topic")
    # predict and neighbors rank with those vectors
    got = m.neighbors(names[0], entity_type="doc", top_k=5, metric="cos")
    v = by_hand / np.linalg.norm(by_hand, axis=1, keepdims=True)
    order = np.argsort(-(v @ v[0]))
    assert [n for n in got.names] == [names[i] for i in order[1:6]]
    scores = m.score(names[:4], ["about"] * 4, ["t0", "t1", "t2", "t3"])
    assert np.isfinite(scores).all()
    # export: entity vectors and feature vectors, in every format
    for fmt in FORMATS + VIEW_FORMATS:
        out = tmp_path / fmt
        assert (
            pbg(
                "export",
                typed,
                "-p",
                "dimension=8",
                "-p",
                f"checkpoint_path={cfg.checkpoint_path}",
                "--format",
                fmt,
                "--out",
                out,
            )
            == 0
        )
        en, ev = read_export(out, "doc")
        if fmt == "tsv":  # one file of every type in turn, doc first
            en, ev = en[: len(names)], ev[: len(names)]
        fn, fv = read_export(out, "doc", features=True)
        assert en == names and fn == feats
        np.testing.assert_allclose(ev, by_hand, rtol=1e-5, atol=1e-5, err_msg=fmt)
        np.testing.assert_allclose(fv, table + g, rtol=1e-5, atol=1e-5, err_msg=fmt)
        mean_of_exported = np.stack(
            [fv[bags.features[a:b]].mean(0) for a, b in zip(bags.offsets, bags.offsets[1:])]
        )
        np.testing.assert_allclose(ev, mean_of_exported, rtol=1e-5, atol=1e-5, err_msg=fmt)


def test_expand_gathers_the_bags_of_any_ids_on_the_host_and_the_standin():
    from ember._backend import STANDIN, module_for, to_device, to_host

    offsets = np.array([0, 2, 3, 6])
    feats = np.array([4, 5, 6, 7, 8, 9])
    ids = np.array([[2, 0], [1, 2]])
    for xp, move in ((np, np.asarray), (module_for(STANDIN), lambda a: to_device(np.array(a), STANDIN))):
        f, o = expand(xp, move(offsets), move(feats), move(ids))
        assert type(f) is type(move(feats))
        assert to_host(f).tolist() == [7, 8, 9, 4, 5, 6, 7, 8, 9]
        assert to_host(o).tolist() == [0, 3, 5, 6, 9]
    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    v = entity_vectors(table, offsets, feats, glob=np.ones(2, np.float32))
    np.testing.assert_allclose(v, [[10, 11], [13, 14], [17, 18]])


def test_training_across_two_mpi_ranks_keeps_the_feature_table_a_consistent_replica(tmp_path):
    """A featurized type is unpartitioned: its feature table is a replica on every rank, kept
    consistent by the parameter server like any unpartitioned type's table."""
    pytest.importorskip("mpi4py", reason="needs mpi4py (pip install -e '.[mpi]')")
    import subprocess
    import sys

    bin_ = Path(sys.executable).parent
    if not (bin_ / "mpiexec").exists():
        pytest.skip("no mpiexec beside this Python (the mpich wheel provides it)")
    cfg = _typed(tmp_path, topic_partitions=4)  # 2 ranks need 4 partitions of the other type
    params = ["dimension=16", "num_epochs=15", "workers=1", "batch_size=50"]
    mpi_ck, one_ck = tmp_path / "ck_mpi", tmp_path / "ck_one"
    cmd = [str(bin_ / "mpiexec"), "-n", "2", str(bin_ / "pbg"), "train", str(cfg), "--json"]
    cmd += [x for kv in [*params, f"checkpoint_path={mpi_ck}"] for x in ("-p", kv)]
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=240, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ranks"] == 2 and all(d["buckets"] > 0 for d in out["distributed"])  # both ranks trained
    train(load_config(cfg, [*params, f"checkpoint_path={one_ck}"]), log=lambda m: None)
    mrr = {}
    for ck in (mpi_ck, one_ck):
        c = load_config(cfg, [*params, f"checkpoint_path={ck}"])
        with h5py.File(sorted(ck.glob("embeddings_doc_0.v*.h5"))[-1]) as f:
            assert f["embeddings"].shape == (50, 16)  # the feature table
        mrr[ck.name] = evaluate(c, split="train")["per_relation"]["cites"]["mrr"]
    floor = sum(1 / r for r in range(1, 121)) / 120  # random ranks among 120 documents
    assert mrr["ck_mpi"] > 3 * floor
    assert mrr["ck_mpi"] > mrr["ck_one"] - 0.05  # one-sided: the tree-ordered first pass may do better


def test_index_and_report_read_the_entity_vectors(typed, tmp_path):
    pytest.importorskip("faiss", reason="needs faiss-cpu (pip install -e '.[index]')")
    from ember.pbg.index import build_index
    from ember.pbg.report import report

    cfg = _cfg(typed, "ck_index")
    train(cfg, log=lambda m: None)
    m = EmbeddingModel(cfg)
    build_index(m, entity_type="doc", metric="cos")
    names = m.entities("doc")
    exact = m.neighbors(names[5], entity_type="doc", top_k=3, exact=True)
    m2 = EmbeddingModel(cfg)
    indexed = m2.neighbors(names[5], entity_type="doc", top_k=3)
    assert indexed.names[0] == exact.names[0]
    np.testing.assert_allclose(indexed.scores[0], exact.scores[0], rtol=1e-4)
    page = report(m2, tmp_path / "r.html", run_eval=False)  # its map: PCA of entity vectors
    assert page["out"] == str(tmp_path / "r.html") and "doc" in (tmp_path / "r.html").read_text()
