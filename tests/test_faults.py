"""A corpus of bad inputs and faults, through the `pbg` command: every case ends with exit
status 2 and one `error:` line (no traceback), and leaves nothing behind that a later
command would accept. The files are made here, not shipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ember.cli.main import main

FAST = ["num_epochs=1", "dimension=16", "batch_size=200", "workers=1"]


def pbg(*args) -> int:
    return main([str(a) for a in args])


def _edges(path: Path, n=1500, ents=120, seed=0, prefix="n") -> Path:
    rng = np.random.default_rng(seed)
    lines = [
        f"{prefix}{a}\tr{r}\t{prefix}{b}\n"
        for a, r, b in zip(rng.integers(0, ents, n), rng.integers(0, 3, n), rng.integers(0, ents, n))
    ]
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace (2 partitions) trained for one epoch; tests copy it before damaging it."""
    root = tmp_path_factory.mktemp("faults")
    src = _edges(root / "e.tsv")
    assert pbg("import", src, "--out", root / "ws", "--partitions", 2, "--test-fraction", 0.1) == 0
    assert pbg("train", root / "ws" / "config.toml", *[a for p in FAST for a in ("-p", p)]) == 0
    return root / "ws"


def _copy_ws(src: Path, out: Path) -> Path:
    shutil.copytree(src, out)
    # the copy's config names the original's folders: point it at the copy
    cfg = out / "config.toml"
    cfg.write_text(cfg.read_text().replace(str(src.resolve()), str(out.resolve())))
    return out


@pytest.fixture
def ws(trained, tmp_path):
    return _copy_ws(trained, tmp_path / "ws")


def _one_error(capsys, code=2) -> str:
    """The one `error:` line of a failed command (it may have logged progress before it,
    on stderr as logs go), with no traceback."""
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert "Traceback" not in err, err
    assert len(errors) == 1 and err.rstrip("\n").splitlines()[-1] == errors[0], err
    return errors[0]


def _fails(capsys, *args) -> str:
    assert pbg(*args) == 2
    return _one_error(capsys)


def _train_args(ws: Path, *params):
    return ["train", ws / "config.toml", *[a for p in (*FAST, *params) for a in ("-p", p)]]


# ------------------------------------------------------------------------- bad inputs
def _parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


BAD_IMPORTS = {
    "random bytes as Parquet": lambda d: (d / "x.parquet").write_bytes(os.urandom(3000)) and d / "x.parquet",
    "Parquet list column": lambda d: _parquet(
        d / "l.parquet", pa.table({"h": [["a"], ["b"]], "r": ["r", "r"], "t": ["b", "c"]})
    ),
    "Parquet struct column": lambda d: _parquet(
        d / "s.parquet", pa.table({"h": [{"x": 1}, {"x": 2}], "r": ["r", "r"], "t": ["b", "c"]})
    ),
    "Parquet invalid UTF-8": lambda d: _parquet(
        d / "u.parquet",
        pa.table({"h": pa.array([b"a", b"\xff\xfe"], pa.binary()), "r": ["r", "r"], "t": ["b", "c"]}),
    ),
    "Parquet name with a TAB": lambda d: _parquet(
        d / "t.parquet", pa.table({"h": ["a", "b\tc"], "r": ["r", "r"], "t": ["b", "c"]})
    ),
    "Parquet name with a newline": lambda d: _parquet(
        d / "n.parquet", pa.table({"h": ["a", "b"], "r": ["r", "r"], "t": ["b", "c\nd"]})
    ),
    "quoted CSV name with a TAB": lambda d: (d / "q.csv").write_text('a,r,b\n"x\ty",r,b\n') and d / "q.csv",
    "a 9 MB single line": lambda d: (
        (d / "one.tsv").write_text("a" * (9 << 20) + "\tr\tb\n") and d / "one.tsv"
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_a_bad_input_file_is_one_error_line_and_leaves_nothing(case, tmp_path, capsys):
    src = BAD_IMPORTS[case](tmp_path)
    before = sorted(os.listdir(tmp_path))
    line = _fails(capsys, "import", src, "--out", tmp_path / "ws")
    assert str(src) in line
    assert sorted(os.listdir(tmp_path)) == before  # no workspace, staging or lock left


def test_where_the_line_is_is_said_for_long_lines_tabs_and_bad_rows(tmp_path, capsys):
    good = "".join(f"e{i}\tr\te{i + 1}\n" for i in range(500))
    (tmp_path / "long.tsv").write_text(good + "x" * (2 << 20) + "\tr\ty\n" + good)
    args = ["import", tmp_path / "long.tsv", "--out", tmp_path / "w"]
    line = _fails(capsys, *args, "--max-line-bytes", 1 << 20)
    assert f"long.tsv:501: line longer than {1 << 20:,} bytes" in line and "--max-line-bytes" in line
    # raising the limit imports it
    assert pbg(*args, "--max-line-bytes", 4 << 20) == 0
    capsys.readouterr()
    (tmp_path / "q.csv").write_text('a,r,b\nc,r,d\n"x\ty",r,b\n')
    assert "q.csv:3: name 'x\\ty' in column 0 (lhs) holds a TAB" in _fails(
        capsys, "import", tmp_path / "q.csv", "--out", tmp_path / "w2"
    )
    _parquet(tmp_path / "t.parquet", pa.table({"h": ["a", "b", "c"], "r": ["r"] * 3, "t": ["b", "c\r", "a"]}))
    assert "t.parquet:2: name 'c\\r' in column 2 (rhs)" in _fails(
        capsys, "import", tmp_path / "t.parquet", "--out", tmp_path / "w3"
    )


@pytest.mark.parametrize(
    "name", ["../../../ESCAPED", "a/b", "..", "x\u0000y", "n" * 101, "con", ".hidden", "a\\b"]
)
def test_entity_type_names_that_would_reach_outside_a_folder_are_refused(name, tmp_path, capsys):
    src = _edges(tmp_path / "e.tsv", n=50)
    cfg = tmp_path / "model.json"  # JSON: any string can be a key, NUL included
    cfg.write_text(
        json.dumps(
            {
                "entities": {name: {"num_partitions": 1}},
                "relations": [{"name": f"r{i}", "lhs": name, "rhs": name} for i in range(3)],
            }
        )
    )
    line = _fails(capsys, "import", src, "--config", cfg, "--out", tmp_path / "ws")
    assert "entity type name" in line
    assert sorted(os.listdir(tmp_path)) == ["e.tsv", "model.json"]
    assert not (tmp_path.parent.parent / "ESCAPED").exists()


def test_absurd_partition_counts_and_a_read_only_target_are_one_line(tmp_path, capsys):
    src = _edges(tmp_path / "e.tsv", n=50)
    assert "--partitions 100000: at most 1024" in _fails(
        capsys, "import", src, "--out", tmp_path / "ws", "--partitions", 100000
    )
    if os.geteuid() != 0:  # root writes anywhere: the read-only case needs a normal user
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        _fails(capsys, "import", src, "--out", ro / "ws")


# ------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(
    "params,says",
    [
        (["lr=inf"], "lr: must be a finite number, got inf"),
        (["num_epochs=2.5"], "num_epochs: must be an integer"),
        (["workers=10000"], "workers: 10000 Hogwild workers"),
        (["dimension=1000000000"], "lower dimension (1000000000)"),
        (["edge_paths=/nowhere/nosuch"], "edge_paths: /nowhere/nosuch is not a split folder"),
    ],
)
def test_configs_that_cannot_train_are_refused_before_anything_is_allocated(ws, capsys, params, says):
    ck = ws / "checkpoints"
    before = (ck / "checkpoint.json").read_text()
    line = _fails(capsys, *_train_args(ws, *params))
    assert says in line, line
    assert (ck / "checkpoint.json").read_text() == before


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_a_device_this_machine_lacks_is_one_line(ws, capsys):
    try:
        import cupy  # noqa: F401

        pytest.skip("cupy is installed")
    except ImportError:
        pass
    assert "device 'cuda'" in _fails(capsys, *_train_args(ws), "--device", "cuda")


def test_a_python_config_is_run_and_converted_once_to_toml(tmp_path, capsys):
    marker = tmp_path / "ran"
    py = tmp_path / "old.py"
    py.write_text(
        textwrap.dedent(
            f"""
            open({str(marker)!r}, "w").close()  # a .py config is code: this runs
            def get_torchbiggraph_config():
                return dict(entity_path="data", edge_paths=["data/edges/train"], checkpoint_path="ck",
                            entities={{"all": {{"num_partitions": 1}}}},
                            relations=[
                    {{"name": "r", "lhs": "all", "rhs": "all", "operator": "translation"}}
                ],
                            dimension=50, lr=0.05)
            """
        )
    )
    assert pbg("config", "convert", py, "-o", tmp_path / "config.toml") == 0
    assert marker.exists() and "is Python; it was run" in capsys.readouterr().err
    from ember.pbg.config import load_config

    a, b = load_config(py), load_config(tmp_path / "config.toml")
    assert a.to_dict() == b.to_dict()
    assert b.dimension == 50 and b.relations[0].operator == "translation"
    from click.testing import CliRunner

    from ember.cli.main import cli

    help_text = " ".join(CliRunner().invoke(cli, ["train", "--help"]).output.split())
    assert "RUN to read it" in help_text and "pbg config convert old.py > config.toml" in help_text


def test_the_readme_key_spelling_works_as_an_override(ws):
    from ember.pbg.config import load_config

    a = load_config(ws / "config.toml", ["relations[0].operator=translation"])
    b = load_config(ws / "config.toml", ["relations.0.operator=translation"])
    assert a.relations[0].operator == b.relations[0].operator == "translation"


# ------------------------------------------------------------------------- checkpoints
def _manifest(ws: Path) -> dict:
    return json.loads((ws / "checkpoints" / "checkpoint.json").read_text())


@pytest.mark.parametrize(
    "damage,says",
    [
        (lambda m: [1, 2, 3], "not an ember checkpoint manifest (a JSON list)"),
        (lambda m: {**m, "version": "3"}, "field 'version' is \"3\", expected an integer"),
        (lambda m: {**m, "files": {"relations": "../../etc/passwd"}}, "not a checkpoint file name"),
    ],
)
def test_a_malformed_manifest_is_refused_by_every_command(ws, capsys, damage, says):
    path = ws / "checkpoints" / "checkpoint.json"
    path.write_text(json.dumps(damage(_manifest(ws))))
    for cmd in (_train_args(ws), ["eval", ws / "config.toml"], ["export", ws / "config.toml"]):
        assert says in _fails(capsys, *cmd)


def test_checkpoint_path_that_is_a_file_is_one_line(ws, capsys):
    (ws / "afile").write_text("x")
    assert "is a file, not a folder" in _fails(capsys, *_train_args(ws, f"checkpoint_path={ws / 'afile'}"))


def _damage_partition(ws: Path) -> Path:
    name = _manifest(ws)["files"]["embeddings/all/0"]
    path = ws / "checkpoints" / name
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    at = len(data) - 600  # inside the embeddings (the file's data, not its header)
    data[at : at + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def test_random_bytes_in_a_checkpoint_file_are_refused_naming_it_by_every_reader(ws, capsys):
    path = _damage_partition(ws)
    q = ws / "q.tsv"
    q.write_text("n1\tr0\n")
    for cmd in (
        _train_args(ws, "num_epochs=2"),
        ["eval", ws / "config.toml"],
        ["export", ws / "config.toml", "--out", ws / "x"],
        ["predict", ws / "config.toml", "--file", q],
        ["neighbors", ws / "config.toml", "n1"],
    ):
        line = _fails(capsys, *cmd)
        assert f"{path}: damaged checkpoint file" in line, (cmd, line)
    assert not (ws / "x").exists()
    assert pbg("checkpoint", "verify", ws / "config.toml") == 1
    assert "damaged" in capsys.readouterr().err


def test_a_checkpoint_of_another_workspace_is_refused_naming_both(ws, tmp_path, capsys):
    other = tmp_path / "other"
    src = _edges(tmp_path / "o.tsv", seed=5)  # the same entity count: 120 names
    assert pbg("import", src, "--out", other, "--partitions", 2, "--test-fraction", 0.1) == 0
    capsys.readouterr()
    mine = json.loads((ws / "workspace.json").read_text())["workspace_id"]
    theirs = json.loads((other / "workspace.json").read_text())["workspace_id"]
    ck = f"checkpoint_path={ws / 'checkpoints'}"
    line = _fails(capsys, "train", other / "config.toml", *[a for p in (*FAST, ck) for a in ("-p", p)])
    assert mine in line and theirs in line
    line = _fails(capsys, "eval", other / "config.toml", "-p", ck)
    assert mine in line and theirs in line


def test_a_checkpoint_of_a_larger_workspace_is_refused_by_eval(ws, tmp_path, capsys):
    other = tmp_path / "bigger"
    assert pbg("import", _edges(tmp_path / "b.tsv", ents=300), "--out", other, "--partitions", 2) == 0
    capsys.readouterr()
    assert pbg(*_train_args(other)) == 0
    capsys.readouterr()
    line = _fails(capsys, "eval", ws / "config.toml", "-p", f"checkpoint_path={other / 'checkpoints'}")
    assert "checkpoint" in line


def test_a_lost_manifest_is_refused_then_recovered_to_the_last_complete_version(ws, capsys):
    ck = ws / "checkpoints"
    before = _manifest(ws)
    (ck / "checkpoint.json").unlink()
    line = _fails(capsys, *_train_args(ws, "num_epochs=2"))
    assert "no checkpoint.json" in line and "pbg checkpoint recover" in line
    assert pbg("checkpoint", "recover", ws / "config.toml") == 0
    assert "recovered from relations.v" in capsys.readouterr().out
    after = _manifest(ws)
    assert after["version"] == before["version"] and after["files"] == before["files"]
    assert after["position"] == before["position"] and after["checksums"] == before["checksums"]
    assert pbg(*_train_args(ws, "num_epochs=2")) == 0  # resumes: epoch 1 -> 2
    assert _manifest(ws)["position"]["epoch"] == 2


def _arrays(folder: Path) -> dict:
    man = json.loads((folder / "checkpoint.json").read_text())
    out = {}
    for key, name in man["files"].items():
        with h5py.File(folder / name, "r") as f:
            out.update({f"{key}/{k}": f[k][()] for k in f.keys() if k != "manifest"})
    return out


def test_new_versions_are_written_over_superseded_files_with_the_same_result(ws, tmp_path, monkeypatch):
    """A bucket's partitions go into the files the last commit superseded (their pages
    are allocated already), never into one a manifest or a snapshot names; the run ends
    with no spare left, every file intact, and the very checkpoint of fresh files."""
    import ember.pbg.checkpoint as checkpoint

    plain = _copy_ws(ws, tmp_path / "plain")
    real, used = checkpoint.write_h5, []

    def spy(path, arrays, *a, over=None, **k):
        if over is not None:
            assert over.name.startswith(".") and over.stat().st_nlink == 1
            used.append(over.stat().st_ino)
        return real(path, arrays, *a, over=over, **k)

    monkeypatch.setattr(checkpoint, "write_h5", spy)
    assert pbg(*_train_args(ws, "num_epochs=3", "checkpoint_preservation_interval=1")) == 0
    assert len(used) >= 4  # 2 epochs of 4 buckets of 2 partitions
    ck = ws / "checkpoints"
    assert not [p for p in ck.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    assert pbg("checkpoint", "verify", ws) == 0
    for snap in ("epoch_2", "epoch_3"):  # hard-linked snapshots were never written over
        assert not checkpoint.Checkpoint(ck / snap).verify()
    inodes = {p.stat().st_ino for p in ck.glob("embeddings_*.h5")}
    assert inodes & set(used)  # the final files are recycled ones

    monkeypatch.setattr(checkpoint, "write_h5", lambda *a, over=None, **k: real(*a, **k))
    assert pbg(*_train_args(plain, "num_epochs=3", "checkpoint_preservation_interval=1")) == 0
    got, want = _arrays(ck), _arrays(plain / "checkpoints")
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_a_spare_of_another_shape_is_not_written_over(tmp_path):
    from ember.pbg.checkpoint import read_h5, write_h5

    spare = tmp_path / ".old.h5.spare.tmp-1"
    write_h5(spare, {"embeddings": np.ones((3, 4), np.float32), "state": np.ones(3, np.float32)})
    want = {"embeddings": np.arange(20, dtype=np.float32).reshape(5, 4), "state": np.zeros(5, np.float32)}
    write_h5(tmp_path / "new.h5", want, over=spare)
    assert not spare.exists()
    got = read_h5(tmp_path / "new.h5")
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_a_file_written_over_while_it_is_read_is_refused(tmp_path):
    """A reader of a superseded version whose file a trainer writes over meanwhile gets
    one error naming it, not a mix of two versions."""
    from ember.errors import InputFileError
    from ember.pbg.checkpoint import open_h5, write_h5

    old = tmp_path / "embeddings_all_0.v1.h5"
    arrays = {"embeddings": np.ones((6, 4), np.float32), "state": np.ones(6, np.float32)}
    write_h5(old, arrays)
    os.utime(old, ns=(10**9, 10**9))  # written long ago (a clock tick can hold both writes)
    with pytest.raises(InputFileError, match="written over while it was read"):
        with open_h5(old) as f:
            f["embeddings"][:3]
            write_h5(tmp_path / "embeddings_all_0.v3.h5", {k: v * 2 for k, v in arrays.items()}, over=old)
            f["embeddings"][3:]
    with open_h5(tmp_path / "embeddings_all_0.v3.h5") as f:  # an untouched file reads as ever
        np.testing.assert_array_equal(f["embeddings"][()], 2 * arrays["embeddings"])


def test_a_damaged_latest_version_is_recovered_to_an_intact_epoch_snapshot(ws, capsys):
    assert pbg(*_train_args(ws, "num_epochs=3", "checkpoint_preservation_interval=1")) == 0
    capsys.readouterr()
    # the latest version's partition file: damaged (and, being hard-linked, the epoch_3 snapshot's too)
    man = _manifest(ws)
    name = man["files"]["embeddings/all/1"]
    (ws / "checkpoints" / name).write_bytes(b"\0" * 100)
    assert pbg("checkpoint", "recover", ws) == 0
    out = capsys.readouterr().out
    assert "restored from the snapshot epoch_2" in out
    assert _manifest(ws)["position"]["epoch"] == 2
    assert pbg("checkpoint", "verify", ws) == 0


def test_a_full_disk_while_writing_a_checkpoint_is_one_line_and_keeps_the_last_good_one(
    ws, capsys, monkeypatch
):
    import ember.pbg.checkpoint as checkpoint

    before = _manifest(ws)
    usage = shutil.disk_usage(ws)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    line = _fails(capsys, *_train_args(ws, "num_epochs=2"))
    assert "no space left on device" in line and "while writing checkpoint partition" in line
    assert "nothing was changed, free space and run again" in line
    assert _manifest(ws) == before
    assert not [p for p in (ws / "checkpoints").iterdir() if ".tmp-" in p.name]


def test_a_write_that_fails_in_the_kernel_is_one_line_and_leaves_no_temp_file(ws):
    """RLIMIT_FSIZE makes the kernel refuse writes past a size with a real OSError (EFBIG),
    the way a full disk does (ENOSPC) but without one: the checkpoint's data files fail."""
    ck = ws / "checkpoints"
    before = _manifest(ws)
    code = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
        from ember.cli.main import main
        sys.exit(main(["train", {str(ws / "config.toml")!r}, "-p", "num_epochs=2", "-p", "dimension=16",
                       "-p", "workers=1", "-p", "batch_size=200"]))
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert lines[-1].startswith("error: ") and "file too large" in lines[-1], r.stderr
    assert _manifest(ws) == before
    assert not [p for p in ck.iterdir() if ".tmp-" in p.name]


def test_a_second_trainer_on_one_checkpoint_is_refused_naming_the_first(ws, capsys):
    code = textwrap.dedent(
        f"""
        import sys, time
        from ember.pbg.checkpoint import lock_folder
        held = lock_folder({str(ws / "checkpoints")!r})
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = _fails(capsys, *_train_args(ws, "num_epochs=2"))
        assert f"in use by another pbg train (PID {holder.pid})" in line
        assert pbg("checkpoint", "recover", ws) == 2
        capsys.readouterr()
    finally:
        holder.kill()
        holder.wait()
    # the lock died with its process: no stale lock
    assert pbg(*_train_args(ws, "num_epochs=2")) == 0


def test_a_second_import_into_one_target_is_refused_naming_the_first(tmp_path, capsys):
    from ember._io import FileLock

    code = textwrap.dedent(
        f"""
        import time
        from ember._io import FileLock
        held = FileLock({str(tmp_path / ".ws.lock")!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        src = _edges(tmp_path / "e.tsv", n=50)
        line = _fails(capsys, "import", src, "--out", tmp_path / "ws")
        assert f"another `pbg import` (PID {holder.pid})" in line
    finally:
        holder.kill()
        holder.wait()
    assert FileLock(tmp_path / ".ws.lock").acquire().held


# ------------------------------------------------------------------------- broken models
def _nan_checkpoint(ws: Path) -> None:
    """Every embedding NaN, written as the trainer would (checksums updated)."""
    from ember.pbg.checkpoint import checksum

    man = _manifest(ws)
    for key, name in man["files"].items():
        if key.startswith("embeddings/"):
            with h5py.File(ws / "checkpoints" / name, "r+") as f:
                f["embeddings"][...] = np.nan
            man["checksums"][name] = checksum(ws / "checkpoints" / name)
    (ws / "checkpoints" / "checkpoint.json").write_text(json.dumps(man))


def test_a_nan_model_never_evaluates_as_perfect(ws, capsys):
    _nan_checkpoint(ws)
    assert pbg("eval", ws / "config.toml", "--json") == 0
    cap = capsys.readouterr()
    m = json.loads(cap.out)
    assert m["nonfinite_scores"] > 0 and "scores were not finite" in cap.err
    n_ents = 120
    assert m["mrr"] < 2 / n_ents and m["hits@1"] == 0  # every positive ranks last
    assert m["mr"] == pytest.approx(n_ents, rel=0.05)


def test_predict_and_neighbors_refuse_nan_embeddings_naming_the_partition(ws, capsys):
    _nan_checkpoint(ws)
    q = ws / "q.tsv"
    q.write_text("n1\tr0\n")
    assert "partition" in _fails(capsys, "predict", ws / "config.toml", "--file", q)
    assert "not finite (NaN or inf)" in _fails(capsys, "neighbors", ws / "config.toml", "n1")


def test_training_that_diverges_stops_at_the_first_bucket_and_keeps_the_last_good_checkpoint(ws, capsys):
    before = _manifest(ws)
    # lr = 1e30 is finite (the schema accepts it) and blows up at once
    line = _fails(capsys, *_train_args(ws, "num_epochs=3", "lr=1e30"))
    assert "training diverged" in line and f"version {before['version']}" in line
    assert _manifest(ws) == before
    assert pbg("checkpoint", "verify", ws) == 0


def test_a_query_file_that_is_not_utf8_is_one_line(ws, capsys):
    q = ws / "q.tsv"
    q.write_bytes(b"n1\tr0\n\xff\xfe\tr0\n")
    assert f"{q}:2: not valid UTF-8" in _fails(capsys, "predict", ws / "config.toml", "--file", q)


# ------------------------------------------------------------------------- --overwrite
def test_overwrite_never_replaces_a_file_nor_deletes_checkpoints_silently(ws, tmp_path, capsys):
    src = _edges(tmp_path / "same.tsv", n=100)
    line = _fails(capsys, "import", src, "--out", src, "--overwrite")
    assert "is not a workspace folder" in line
    assert src.read_text().count("\n") == 100 and sorted(os.listdir(tmp_path)) == ["same.tsv", "ws"]
    line = _fails(capsys, "import", src, "--out", ws, "--overwrite")
    assert "checkpoints/" in line and "--delete-checkpoints" in line
    assert (ws / "checkpoints" / "checkpoint.json").is_file()
    assert pbg("import", src, "--out", ws, "--overwrite", "--delete-checkpoints") == 0
    assert not (ws / "checkpoints").exists()
    assert sorted(os.listdir(tmp_path)) == ["same.tsv", "ws"]


# ------------------------------------------------------------------------- progress
def test_training_shows_a_bar_with_rate_and_etas_only_on_a_terminal(ws, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert pbg(*_train_args(ws, "num_epochs=3")) == 0
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "edge/s" in err and "ETA" in err and "epoch ETA" in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert pbg(*_train_args(ws, "num_epochs=4")) == 0
    err = capsys.readouterr().err
    assert "ETA" not in err and "%|" not in err
