"""The trainer's device path, end to end, on the stand-in device (and a GPU when present).

The stand-in device's arrays refuse to mix with host arrays and refuse direct numpy
calls, so a run that finishes on it proves that the bucket's partitions and edges, the
negative sampling and the whole batch step stayed on the device, with no silent host
fallback. Its arithmetic is numpy's, so the run must reproduce the CPU run: the same
filtered MRR and the same checkpoint. float16 tables give half the table bytes and an
MRR close to float32's; a bucket larger than the device budget trains as sub-buckets;
evaluation and prediction run on the device too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from graphs import typed_workspace

import ember
import ember.pbg
from ember._standin import StandinArray
from ember.cli.main import main as pbg
from ember.datasets import real_graph
from ember.errors import ConfigError
from ember.pbg.batch import BatchTrainer
from ember.pbg.config import load_config
from ember.pbg.eval import evaluate
from ember.pbg.train import train

FAST = ["num_epochs=10", "dimension=32", "batch_size=500", "workers=1", "eval_fraction=0.05"]


def _import(out: Path, partitions: int) -> Path:
    g = real_graph("kinships")
    rc = pbg(
        [
            "import",
            str(g.train),
            "--valid",
            str(g.valid),
            "--test",
            str(g.test),
            "--out",
            str(out),
            "--partitions",
            str(partitions),
        ]
    )
    assert rc == 0
    return out / "config.toml"


@pytest.fixture(scope="module")
def kin1(tmp_path_factory):
    return _import(tmp_path_factory.mktemp("kin1dev") / "ws", 1)


@pytest.fixture(scope="module")
def kin2(tmp_path_factory):
    return _import(tmp_path_factory.mktemp("kin2dev") / "ws", 2)


def _cfg(cfg_path: Path, name: str, extra=()):
    ck = cfg_path.parent / name
    shutil.rmtree(ck, ignore_errors=True)
    return load_config(cfg_path, [*FAST, f"checkpoint_path={ck}", *extra])


def _checkpoint(cfg) -> dict:
    """Every parameter of the latest checkpoint's HDF5 files, by file stem and name (not
    the manifest a relations file embeds)."""
    out = {}
    for f in sorted(Path(cfg.checkpoint_path).glob("*.h5")):
        with h5py.File(f, "r") as h:
            for k in h:
                if k != "manifest":
                    out[(f.name.split(".")[0], k)] = h[k][()]
    return out


def _spy_steps(monkeypatch):
    """Record the array types of the tables every batch step trains on."""
    seen = set()
    step = BatchTrainer.step

    def spy(self, lp, rp, lhs, *args, **kw):
        seen.update({type(lp.emb), type(rp.emb), type(lhs)})
        return step(self, lp, rp, lhs, *args, **kw)

    monkeypatch.setattr(BatchTrainer, "step", spy)
    return seen


@pytest.fixture(scope="module")
def cpu_run(kin1):
    cfg = _cfg(kin1, "ck_cpu")
    summary = train(cfg, device="cpu", log=lambda m: None)
    return cfg, summary, evaluate(cfg, device="cpu")


def test_standin_run_matches_the_cpu_run(kin1, cpu_run, monkeypatch):
    cpu_cfg, cpu_summary, cpu_metrics = cpu_run
    seen = _spy_steps(monkeypatch)
    cfg = _cfg(kin1, "ck_standin")
    summary = train(cfg, device="standin", log=lambda m: None)
    # every batch step ran on stand-in tables and edges: no host fallback anywhere
    assert seen == {StandinArray}
    assert summary["device"] == "standin" and summary["edges"] == cpu_summary["edges"]
    assert summary["transfer_wait_seconds"] >= 0
    lines = [
        json.loads(x) for x in (Path(cfg.checkpoint_path) / "training_stats.jsonl").read_text().splitlines()
    ]
    assert lines and all("transfer_wait_seconds" in x for x in lines)
    assert all("eval_after" in x for x in lines)  # held-out metrics ran on the device too
    m = evaluate(cfg, device="cpu")
    assert m["mrr"] > 0.5
    assert m["mrr"] == pytest.approx(cpu_metrics["mrr"], abs=1e-4)
    a, b = _checkpoint(cpu_cfg), _checkpoint(cfg)
    assert a.keys() == b.keys() and a
    for k in a:
        assert b[k].dtype == np.float32
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=str(k))


def test_float16_tables_half_the_bytes_mrr_close_to_float32(kin1, cpu_run):
    _, cpu_summary, cpu_metrics = cpu_run
    for device in ("cpu", "standin"):
        cfg = _cfg(kin1, f"ck_{device}_f16", ["dtype=float16"])
        s = train(cfg, device=device, log=lambda m: None)
        assert s["dtype"] == "float16"
        assert s["peak_table_bytes"] * 2 == cpu_summary["peak_table_bytes"]
        assert all(v.dtype == np.float32 for v in _checkpoint(cfg).values())  # stay float32
        mrr = evaluate(cfg, device=device)["mrr"]
        assert abs(mrr - cpu_metrics["mrr"]) < 0.03, (device, mrr, cpu_metrics["mrr"])


def test_bfloat16_is_refused_with_the_reason(kin1):
    cfg = _cfg(kin1, "ck_bf16", ["dtype=bfloat16"])
    with pytest.raises(ConfigError, match="bfloat16.*neither numpy nor cupy"):
        train(cfg, device="cpu", log=lambda m: None)


def test_buckets_over_the_device_budget_train_as_sub_buckets(kin2, monkeypatch):
    seen = _spy_steps(monkeypatch)
    logs = []
    cfg = _cfg(kin2, "ck_sub")
    s = train(cfg, device="standin", log=logs.append, device_memory=16_000)
    assert seen == {StandinArray}
    assert any("sub-buckets" in m for m in logs)
    assert s["peak_embedding_bytes"] <= 16_000  # tables + state on the device
    ck = _checkpoint(cfg)
    assert {stem for stem, _ in ck} >= {"embeddings_all_0", "embeddings_all_1"}
    assert evaluate(cfg, device="standin")["mrr"] > 0.4  # well above the 0.11 floor


def test_partitioned_run_swaps_and_matches_cpu(kin2):
    cpu = _cfg(kin2, "ck2_cpu")
    train(cpu, device="cpu", log=lambda m: None)
    dev = _cfg(kin2, "ck2_standin")
    s = train(dev, device="standin", log=lambda m: None)
    assert s["transfer_wait_seconds"] >= 0
    a, b = _checkpoint(cpu), _checkpoint(dev)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=str(k))


def test_eval_and_predict_on_the_device_match_the_cpu(kin1, cpu_run):
    cfg, _, cpu_metrics = cpu_run
    m = evaluate(cfg, device="standin")
    assert m["mrr"] == pytest.approx(cpu_metrics["mrr"], abs=1e-6)
    s = evaluate(cfg, device="standin", negatives="sampled", num_negs=50)
    assert s["mrr"] == pytest.approx(
        evaluate(cfg, device="cpu", negatives="sampled", num_negs=50)["mrr"], abs=1e-6
    )
    over = [f"checkpoint_path={cfg.checkpoint_path}", "dimension=32"]
    res = {}
    for device in ("cpu", "standin"):
        model = ember.pbg.load(kin1, overrides=over, device=device)
        names = model.entities()[:2]
        r = model.predict_many(
            [(names[0], model.relation_names[0], None), (None, model.relation_names[1], names[1])],
            top_k=5,
            filter_known=True,
        )
        nb = model.neighbors(names[0], top_k=4)
        res[device] = ([x.names for x in r] + [nb.names], np.concatenate([x.scores for x in r]))
        if device == "standin":
            assert all(type(e) is StandinArray for e, _ in model._device_cache.values())
    assert res["cpu"][0] == res["standin"][0]
    np.testing.assert_allclose(res["standin"][1], res["cpu"][1], rtol=1e-5)


def test_cli_device_flags(kin1, capsys):
    ck = kin1.parent / "ck_cli"
    shutil.rmtree(ck, ignore_errors=True)
    p = ["-p", "num_epochs=2", "-p", "dimension=16", "-p", "workers=1", "-p", f"checkpoint_path={ck}"]
    assert pbg(["train", str(kin1), *p, "--device", "standin", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["device"] == "standin" and "transfer_wait_seconds" in out
    assert pbg(["eval", str(kin1), *p, "--device", "standin", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["mrr"] > 0
    assert pbg(["train", str(kin1), *p, "--device", "gpu"]) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not ember.cuda.is_available(), reason="needs a CUDA GPU and cupy")
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gpu_run_matches_the_cpu_run(kin2, dtype):
    runs = {}
    for device in ("cpu", "cuda"):
        cfg = _cfg(kin2, f"ck_gpu_{device}_{dtype}", [f"dtype={dtype}"])
        s = train(cfg, device=device, log=lambda m: None)
        runs[device] = (s, evaluate(cfg, device=device)["mrr"])
    assert runs["cuda"][0]["transfer_wait_seconds"] >= 0
    # same negatives (device-side counter-based sampler); float reductions differ a little
    assert abs(runs["cuda"][1] - runs["cpu"][1]) < 0.02


@pytest.mark.parametrize(
    "extra",
    [
        [f"relations.{i}.operator=diagonal" for i in range(0, 25, 2)],  # mixed operators
        ["bias=true"],
        [f"relations.{i}.all_negs=true" for i in range(0, 25, 2)],  # 1-vs-all batches
        ["reciprocal=true", "regularization_coef=1e-3", "num_uniform_negs=200"],
        ["global_emb=true", "max_norm=1.0", "loss_fn=ranking", "comparator=cos"],
    ],
    ids=["mixed-ops", "bias", "all-negs", "reciprocal-n3", "global-maxnorm-cos"],
)
def test_model_variants_on_the_standin_match_cpu(kin1, extra, monkeypatch):
    short = ["num_epochs=3", *extra]
    cpu = _cfg(kin1, "ck_var_cpu", short)
    train(cpu, device="cpu", log=lambda m: None)
    seen = _spy_steps(monkeypatch)
    dev = _cfg(kin1, "ck_var_standin", short)
    train(dev, device="standin", log=lambda m: None)
    assert seen == {StandinArray}
    a, b = _checkpoint(cpu), _checkpoint(dev)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=str(k))


def _typed_workspace(tmp_path) -> Path:
    """Three entity types (two partitioned, one not), three relation groups per bucket."""
    return typed_workspace(tmp_path, seed=1, dimension=10, split=0.05, follows_operator="translation")


def test_several_entity_types_and_groups_on_the_standin(tmp_path, monkeypatch):
    ws = _typed_workspace(tmp_path)
    extra = ["num_epochs=3", "dimension=10", "workers=1", "eval_fraction=0.1"]
    cpu = _cfg(ws, "ck_cpu", extra)
    train(cpu, device="cpu", log=lambda m: None)
    seen = _spy_steps(monkeypatch)
    dev = _cfg(ws, "ck_standin", extra)
    train(dev, device="standin", log=lambda m: None)
    assert seen == {StandinArray}
    a, b = _checkpoint(cpu), _checkpoint(dev)
    assert a.keys() == b.keys() and {s for s, _ in a} >= {
        "embeddings_user_0",
        "embeddings_user_1",
        "embeddings_item_1",
        "embeddings_tag_0",
    }
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=str(k))
    # and split into sub-buckets: every partition still trained and checkpointed
    sub = _cfg(ws, "ck_sub", extra)
    logs = []
    train(sub, device="standin", log=logs.append, device_memory=1500)
    assert any("sub-buckets" in m for m in logs)
    assert {s for s, _ in _checkpoint(sub)} == {s for s, _ in a}


def test_resume_on_the_standin_matches_resume_on_the_cpu(kin1):
    out = {}
    for device in ("cpu", "standin"):
        cfg = _cfg(kin1, f"ck_resume_{device}", ["num_epochs=2"])
        train(cfg, device=device, log=lambda m: None)
        cfg = load_config(kin1, [*FAST, f"checkpoint_path={cfg.checkpoint_path}", "num_epochs=4"])
        s = train(cfg, device=device, log=lambda m: None)
        assert s["epochs"] == 4
        out[device] = _checkpoint(cfg)
    for k in out["cpu"]:
        np.testing.assert_allclose(out["standin"][k], out["cpu"][k], rtol=1e-5, atol=1e-6)


def test_no_early_prefetch_of_a_row_range_another_sub_bucket_is_training():
    from ember.pbg.placement import Unit, _overlapping

    def unit(*keys):
        return Unit(None, list(keys), split=True)

    cur = unit(("user", 0, 0, 30), ("item", 1, 0, 20))
    assert not _overlapping(cur, unit(("user", 0, 0, 30), ("item", 1, 20, 40)))
    assert not _overlapping(cur, unit(("user", 1, 0, 15)))
    assert _overlapping(cur, unit(("user", 0, 0, 15)))  # another cut of the same rows
    assert _overlapping(cur, unit(("user", 0)))
