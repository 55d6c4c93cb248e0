"""`pbg train` / `pbg eval` end to end on the bundled Kinships graph: quality above the
trivial floor, kill -9 and resume, partitioning changes memory not quality, checkpoints
refused when they do not match, memory stated up front."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from ember.cli.main import main as pbg
from ember.datasets import real_graph
from ember.errors import UserError
from ember.pbg.config import load_config
from ember.pbg.eval import evaluate
from ember.pbg.train import Trainer, train

KIN = Path(__file__).parent / "data" / "kinships"
TRIVIAL_FLOOR = 0.110  # filtered MRR of the frequency baseline (shared/data/README.md)


def _import(out: Path, partitions: int) -> Path:
    rc = pbg(
        [
            "import",
            str(KIN / "train.tsv.gz"),
            "--valid",
            str(KIN / "valid.tsv.gz"),
            "--test",
            str(KIN / "test.tsv.gz"),
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
    return _import(tmp_path_factory.mktemp("kin1") / "ws", 1)


@pytest.fixture(scope="module")
def kin4(tmp_path_factory):
    return _import(tmp_path_factory.mktemp("kin4") / "ws", 4)


FAST = ["num_epochs=25", "dimension=64", "batch_size=500", "workers=1"]


def _fresh(cfg_path: Path, name: str, extra=()):
    ck = cfg_path.parent / name
    shutil.rmtree(ck, ignore_errors=True)
    return load_config(cfg_path, [*FAST, f"checkpoint_path={ck}", *extra])


def test_kinships_filtered_mrr_well_above_trivial_floor(kin1):
    cfg = _fresh(kin1, "ck_quality")
    summary = train(cfg, log=lambda m: None)
    assert summary["epochs"] == 25
    m = evaluate(cfg)
    # measured 0.70-0.75 (ComplEx, 25 epochs); PBG 1.0 reaches 0.76 after 50
    assert m["mrr"] > 0.6 > 5 * TRIVIAL_FLOOR
    assert m["hits@10"] > 0.9
    assert 0 < m["tail"]["mrr"] <= 1 and 0 < m["head"]["mrr"] <= 1
    stats = [json.loads(line) for line in open(Path(cfg.checkpoint_path) / "training_stats.jsonl")]
    assert len(stats) == 25 and stats[-1]["loss"] < stats[0]["loss"]


def test_eval_fraction_holds_out_edges_and_reports_before_after(kin1):
    cfg = _fresh(kin1, "ck_evalfrac", ["num_epochs=3", "eval_fraction=0.1", "eval_num_uniform_negs=50"])
    s = train(cfg, log=lambda m: None)
    assert s["edges"] == 3 * (8544 - 854)
    stats = [json.loads(line) for line in open(Path(cfg.checkpoint_path) / "training_stats.jsonl")]
    last = stats[-1]
    assert last["eval_before"]["count"] == 2 * 854
    assert last["eval_after"]["mrr"] > stats[0]["eval_before"]["mrr"]


def test_one_vs_four_partitions_similar_mrr_half_the_embedding_memory(kin1, kin4):
    results = {}
    for name, path in (("p1", kin1), ("p4", kin4)):
        cfg = _fresh(path, "ck_parts")
        s = train(cfg, log=lambda m: None)
        results[name] = (evaluate(cfg)["mrr"], s["peak_embedding_bytes"])
    (mrr1, mem1), (mrr4, mem4) = results["p1"], results["p4"]
    assert abs(mrr1 - mrr4) < 0.12, results
    assert mrr4 > 0.5
    # resident tables measured by the trainer: 2 of 4 partitions vs the whole table
    assert 0.4 < mem4 / mem1 < 0.6, results


def test_kill_minus_nine_then_resume_ends_with_the_right_epoch_count(kin4):
    ck = kin4.parent / "ck_kill"
    shutil.rmtree(ck, ignore_errors=True)
    args = [
        sys.executable,
        "-m",
        "ember.cli.main",
        "train",
        str(kin4),
        "-p",
        "num_epochs=10",
        "-p",
        "dimension=32",
        "-p",
        "workers=1",
        "-p",
        f"checkpoint_path={ck}",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    manifest = ck / "checkpoint.json"
    while time.time() < deadline:  # wait until a few buckets are done, then kill -9
        if manifest.exists() and json.loads(manifest.read_text())["version"] >= 40:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pos = json.loads(manifest.read_text())["position"]
    assert 0 <= pos["epoch"] < 10, "killed too late to test resuming"
    rc = subprocess.run(args, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert "resuming" in rc.stderr
    m = json.loads(manifest.read_text())
    assert m["complete"] and m["position"] == {"epoch": 10, "edge_chunk": 0, "bucket": 0}
    for name in m["files"].values():  # every file the manifest names is readable
        with h5py.File(ck / name) as f:
            assert f.attrs["format"] == "ember-checkpoint"
    stats = [json.loads(line) for line in open(ck / "training_stats.jsonl")]
    # at most one bucket's work is repeated; every epoch's 16 buckets are there
    assert {s["epoch"] for s in stats} == set(range(10))
    assert 10 * 16 <= len(stats) <= 10 * 16 + 1


def test_resume_of_a_finished_run_trains_nothing(kin1):
    cfg = _fresh(kin1, "ck_done", ["num_epochs=2"])
    train(cfg, log=lambda m: None)
    s = train(cfg, log=lambda m: None)
    assert s["edges"] == 0 and s["epochs"] == 2


def test_checkpoint_of_another_model_is_refused_naming_the_mismatch(kin1):
    cfg = _fresh(kin1, "ck_mismatch", ["num_epochs=1"])
    train(cfg, log=lambda m: None)
    other = load_config(kin1, [*FAST, f"checkpoint_path={cfg.checkpoint_path}", "dimension=32"])
    with pytest.raises(UserError, match=r"checkpoint\.json.*dimension is 64 .* 32 now"):
        train(other, log=lambda m: None)


def test_init_path_warm_starts_embeddings_and_relations(kin1):
    src = _fresh(kin1, "ck_src", ["num_epochs=3"])
    train(src, log=lambda m: None)
    warm = _fresh(kin1, "ck_warm", ["num_epochs=0", f"init_path={src.checkpoint_path}"])
    train(warm, log=lambda m: None)
    assert evaluate(warm)["mrr"] == pytest.approx(evaluate(src)["mrr"], abs=1e-6)


def test_preservation_interval_keeps_epoch_snapshots(kin1):
    cfg = _fresh(kin1, "ck_keep", ["num_epochs=4", "checkpoint_preservation_interval=2"])
    train(cfg, log=lambda m: None)
    ck = Path(cfg.checkpoint_path)
    assert (ck / "epoch_2" / "checkpoint.json").is_file()
    assert (ck / "epoch_4" / "checkpoint.json").is_file()
    snap = json.loads((ck / "epoch_2" / "checkpoint.json").read_text())
    assert snap["position"]["epoch"] == 2


def test_memory_is_stated_up_front_and_a_run_too_big_is_refused(kin4, monkeypatch):
    cfg = _fresh(kin4, "ck_mem")
    t = Trainer(cfg, log=lambda m: None)
    assert t.plan.total > t.plan.embeddings > 0
    monkeypatch.setattr("ember.pbg.train._mem_available", lambda: t.plan.total - 1)
    with pytest.raises(UserError, match=r"training needs about .* GiB.*--partitions \d+"):
        train(cfg, log=lambda m: None)
    monkeypatch.setattr("ember.pbg.train._mem_available", lambda: t.plan.negatives // 2)
    with pytest.raises(UserError, match=r"needs about .* lower batch_size"):
        train(cfg, log=lambda m: None)


def test_reciprocal_one_vs_all_mode_trains(kin1):
    cfg = _fresh(
        kin1,
        "ck_recip",
        ["reciprocal=true", "num_epochs=15", "regularization_coef=0.001", "relations.0.all_negs=true"],
    )
    train(cfg, log=lambda m: None)
    assert evaluate(cfg)["mrr"] > 0.5


def test_cli_unknown_config_key_is_one_error_line_exit_2(kin1, capsys):
    rc = pbg(["train", str(kin1), "-p", "num_epoch=3"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error:") and "num_epoch" in err and "num_epochs" in err


def test_cli_train_then_eval_prints_metrics(kin1, capsys):
    ck = kin1.parent / "ck_cli"
    shutil.rmtree(ck, ignore_errors=True)
    p = ["-p", "num_epochs=2", "-p", "workers=2", "-p", f"checkpoint_path={ck}"]
    assert pbg(["train", str(kin1), *p, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"] == 2 and out["edges"] == 2 * 8544
    assert pbg(["eval", str(kin1), *p, "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["count"] == 2 * 1074 and 0 < m["mrr"] <= 1


def test_edge_weights_scale_each_edges_loss():
    from ember.pbg.autodiff import ChunkedLoss
    from ember.pbg.model import BatchPlan, Model

    r = np.random.default_rng(0)
    model = Model("diagonal", "dot", "softmax", 4, 2)
    rel, ids = np.array([0, 1, 0, 1]), np.arange(4)
    ins = [
        r.standard_normal((4, 4)),
        r.standard_normal((4, 4)),
        None,
        None,
        *model.init_relations(np, np.float64),
    ]
    one = BatchPlan(model, rel, 2, ids, ids, weight=np.ones(4))
    two = BatchPlan(model, rel, 2, ids, ids, weight=np.full(4, 2.0))
    a = float(ChunkedLoss.apply(*ins, plan=one).item())
    b = float(ChunkedLoss.apply(*ins, plan=two).item())
    assert b == pytest.approx(2 * a)


def test_workspace_without_checkpoint_eval_is_a_user_error(kin1, tmp_path):
    cfg = load_config(kin1, [f"checkpoint_path={tmp_path / 'none'}"])
    with pytest.raises(UserError, match="no checkpoint"):
        evaluate(cfg)


def test_after_import_append_training_continues_with_new_entities_fresh(tmp_path):
    import gzip

    lines = gzip.open(KIN / "train.tsv.gz", "rt").read().splitlines()
    first, more = tmp_path / "first.tsv", tmp_path / "more.tsv"
    first.write_text("\n".join(lines[:4000]) + "\n")
    rels = {ln.split("\t")[1] for ln in lines[:4000]}
    extra = [ln for ln in lines[4000:4200] if ln.split("\t")[1] in rels]
    more.write_text("\n".join(extra + ["brand_new\tterm1\tother_new"]) + "\n")
    ws = tmp_path / "ws"
    assert pbg(["import", str(first), "--out", str(ws)]) == 0
    cfg = load_config(ws / "config.toml", ["num_epochs=2", "dimension=16", "workers=1"])
    train(cfg, log=lambda m: None)
    before = json.loads((ws / "checkpoints" / "checkpoint.json").read_text())
    assert pbg(["import", "--append", str(more), "--into", str(ws)]) == 0
    cfg = load_config(ws / "config.toml", ["num_epochs=3", "dimension=16", "workers=1"])
    s = train(cfg, log=lambda m: None)
    after = json.loads((ws / "checkpoints" / "checkpoint.json").read_text())
    n0 = sum(before["model"]["entity_counts"]["all"])
    assert s["epochs"] == 3 and sum(after["model"]["entity_counts"]["all"]) == n0 + 2


WN = real_graph("wordnet_k3").folder  # bundled with ember
WN_TRIVIAL_FLOOR = 0.011


def _wn_import(out: Path, partitions: int) -> Path:
    if not WN.is_dir():
        pytest.skip(f"{WN} is not available")
    assert (
        pbg(
            [
                "import",
                str(WN / "train.tsv.gz"),
                "--valid",
                str(WN / "valid.tsv.gz"),
                "--test",
                str(WN / "test.tsv.gz"),
                "--out",
                str(out),
                "--partitions",
                str(partitions),
            ]
        )
        == 0
    )
    return out / "config.toml"


@pytest.mark.slow
def test_wordnet_reciprocal_mode_reaches_the_quality_target(tmp_path):
    """The quality target: >= 0.42 filtered MRR with Ember's best defaults (measured 0.557 after
    15 epochs, 0.40 after 5; PBG 1.0 reaches 0.250 after 30)."""
    cfg = load_config(
        _wn_import(tmp_path / "ws", 1),
        [
            "num_epochs=10",
            "dimension=200",
            "reciprocal=true",
            "num_uniform_negs=2000",
            "regularization_coef=0.01",
        ],
    )
    train(cfg, log=lambda m: None)
    mrr = evaluate(cfg)["mrr"]
    print(f"WordNet filtered MRR (reciprocal, 10 epochs): {mrr:.4f}")
    assert mrr >= 0.42


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra,tolerance",
    [
        # PyTorch-BigGraph's own config (no global embedding): measured 0.234 / 0.235 over
        # 3 seeds, PyTorch-BigGraph 1.0 0.234 / 0.236 on the same data
        (["global_emb=false"], 0.01),
        # Ember's default: measured 0.295 / 0.282 over 4 seeds (negative_partitions = auto ->
        # bucket; 0.275 with PBG's partition-local negatives)
        ([], 0.02),
    ],
)
def test_wordnet_one_vs_four_partitions_same_quality_half_the_memory(tmp_path, extra, tolerance):
    """Mean filtered MRR over three seeds (a 4-partition run's spread is about +-0.007)."""
    res = {}
    for p in (1, 4):
        ws = _wn_import(tmp_path / f"ws{p}", p)
        mrrs = []
        for seed in (1, 2, 3):
            ck = tmp_path / f"ck{p}_{seed}"
            cfg = load_config(ws, ["num_epochs=10", f"seed={seed}", f"checkpoint_path={ck}", *extra])
            s = train(cfg, log=lambda m: None)
            mrrs.append(evaluate(cfg)["mrr"])
        res[p] = (float(np.mean(mrrs)), s["peak_embedding_bytes"])
    print(f"WordNet MRR (mean of 3 seeds), peak embedding bytes by partitions: {res}")
    assert res[1][0] > 10 * WN_TRIVIAL_FLOOR
    assert res[1][0] - res[4][0] < tolerance, res
    assert 0.4 < res[4][1] / res[1][1] < 0.6, res


def test_eval_ties_are_ranked_realistically_and_raw_is_never_better_than_filtered(kin1):
    cfg = _fresh(kin1, "ck_ties", ["num_epochs=0"])
    train(cfg, log=lambda m: None)
    ck = Path(cfg.checkpoint_path)
    man = json.loads((ck / "checkpoint.json").read_text())
    name = man["files"]["embeddings/all/0"]
    # all entities identical, and every score exact in floating point whatever the order
    # in which a BLAS sums it (0.125^2 * 64 is a sum of powers of two): every score ties
    with h5py.File(ck / name, "r+") as f:
        f["embeddings"][...] = 0.125
    from ember.pbg.checkpoint import checksum

    man["checksums"][name] = checksum(ck / name)  # an edit the manifest knows of
    (ck / "checkpoint.json").write_text(json.dumps(man))
    m = evaluate(cfg, filtered=False)
    # each positive ties with the 103 other entities: rank (1 + 104) / 2
    assert m["mr"] == pytest.approx(52.5)
    trained = _fresh(kin1, "ck_raw", ["num_epochs=5"])
    train(trained, log=lambda m: None)
    assert evaluate(trained, filtered=False)["mrr"] <= evaluate(trained)["mrr"]


def test_checkpoints_keep_pbg_complex_layout_whatever_the_trainers_layout(kin1):
    """The trainer multiplies interleaved complex numbers; checkpoints hold PBG's layout
    (real half, imaginary half): the operator's identity init reads [1..1, 0..0], and
    training resumed from a checkpoint continues exactly where it left off."""
    cfg = _fresh(kin1, "ck_layout", ["num_epochs=0"])
    train(cfg, log=lambda m: None)
    from ember.pbg.checkpoint import Checkpoint

    th = Checkpoint(cfg.checkpoint_path).load_relations()["theta_r"]
    assert (th[:, :32] == 1).all() and (th[:, 32:] == 0).all()
    a = _fresh(kin1, "ck_layout_a", ["num_epochs=4"])
    train(a, log=lambda m: None)
    b = _fresh(kin1, "ck_layout_b", ["num_epochs=2"])
    train(b, log=lambda m: None)
    b = load_config(kin1, [*FAST, f"checkpoint_path={b.checkpoint_path}", "num_epochs=4"])
    train(b, log=lambda m: None)
    assert evaluate(b)["mrr"] == pytest.approx(evaluate(a)["mrr"], abs=0.03)
