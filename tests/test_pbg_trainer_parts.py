"""The trainer's parts: one bucket loop whatever the placement, positions that resume
exactly, model-part registries that are the only list of names, a config whose every key
does something (or says it does not), and imports as light as the layering says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ember.cli.main import main as pbg
from ember.datasets import real_graph
from ember.pbg import schedule as schedule_mod
from ember.pbg.config import (
    ConfigSchema,
    EntitySchema,
    RelationSchema,
    load_config,
    parse_config,
    schema_fields,
)
from ember.pbg.model import OPERATORS, Diagonal, register_operator
from ember.pbg.schedule import BucketScheduler, Position
from ember.pbg.train import train

ROOT = Path(__file__).resolve().parents[1]
FAST = ["num_epochs=4", "dimension=16", "batch_size=500", "workers=1", "eval_fraction=0.05"]


@pytest.fixture(scope="module")
def kin2(tmp_path_factory):
    g = real_graph("kinships")
    out = tmp_path_factory.mktemp("parts") / "ws"
    rc = pbg(
        ["import", str(g.train), "--valid", str(g.valid), "--test", str(g.test), "--out", str(out)]
        + [
            "--partitions",
            "2",
        ]
    )
    assert rc == 0
    return out / "config.toml"


def _checkpoint(folder: Path) -> dict:
    out = {}
    for f in sorted(folder.glob("*.h5")):
        with h5py.File(f, "r") as h:
            for k in h:
                if k != "manifest":  # the version's manifest (paths, times): not parameters
                    out[(f.name.split(".")[0], k)] = h[k][()]
    return out


# ------------------------------------------------------------------ positions and resume
def test_position_steps_through_buckets_then_chunks_then_epochs():
    p = Position()
    seen = []
    for _ in range(9):
        seen.append((p.epoch, p.edge_chunk, p.bucket))
        p = p.next(num_chunks=2, num_buckets=2)
    assert seen == [
        (0, 0, 0),
        (0, 0, 1),
        (0, 1, 0),
        (0, 1, 1),
        (1, 0, 0),
        (1, 0, 1),
        (1, 1, 0),
        (1, 1, 1),
        (2, 0, 0),
    ]
    assert Position.from_dict(Position(3, 1, 2).to_dict()) == Position(3, 1, 2)


def test_the_scheduler_gives_each_bucket_once_per_chunk_and_the_last_one_ends_the_epoch(kin2):
    cfg = load_config(kin2, ["num_epochs=2", "num_edge_chunks=2", "bucket_order=random"])
    from ember.pbg.workspace import open_workspace

    s = BucketScheduler(open_workspace(cfg), cfg)
    tasks = list(s.tasks(Position()))
    assert len(tasks) == 2 * 2 * 4
    for epoch in range(2):
        for k in range(2):
            got = sorted(t.bucket for t in tasks if t.position.epoch == epoch and t.position.edge_chunk == k)
            assert got == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [t.epoch_done for t in tasks].count(1) == 1 and tasks[-1].epoch_done == 2
    # each task's `after` is where the next one starts: a resume continues exactly there
    for a, b in zip(tasks, tasks[1:]):
        assert a.after == b.position
    mid = tasks[5].position
    assert [t.position for t in s.tasks(mid)] == [t.position for t in tasks[5:]]


@pytest.mark.parametrize("device", ["cpu", "standin"])
def test_a_run_stopped_mid_epoch_and_resumed_ends_with_the_uninterrupted_checkpoint(
    kin2, device, monkeypatch
):
    whole = load_config(kin2, [*FAST, f"checkpoint_path={kin2.parent / f'ck_whole_{device}'}"])
    train(whole, device=device, log=lambda m: None)
    cut = load_config(kin2, [*FAST, f"checkpoint_path={kin2.parent / f'ck_cut_{device}'}"])
    done = schedule_mod.BucketScheduler.done
    calls = []

    def stop_after_six(self, task):  # as if killed right after the 6th bucket's checkpoint
        done(self, task)
        calls.append(task)
        if len(calls) == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(schedule_mod.BucketScheduler, "done", stop_after_six)
    with pytest.raises(KeyboardInterrupt):
        train(cut, device=device, log=lambda m: None)
    monkeypatch.setattr(schedule_mod.BucketScheduler, "done", done)
    import json

    pos = json.loads((Path(cut.checkpoint_path) / "checkpoint.json").read_text())["position"]
    assert pos == calls[-1].after.to_dict() and pos["epoch"] == 1  # mid-run: epoch 1, bucket 2
    summary = train(cut, device=device, log=lambda m: None)
    assert summary["epochs"] == 4
    a, b = _checkpoint(Path(whole.checkpoint_path)), _checkpoint(Path(cut.checkpoint_path))
    assert a.keys() == b.keys()
    for k in a:  # one worker, the same seeds: the same computation in the same order
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=str(k))


# ------------------------------------------------------------------ the registries
def test_a_model_part_registered_twice_is_refused():
    class Other(Diagonal):
        name = "diagonal"

    with pytest.raises(ValueError, match="operator 'diagonal' is already registered"):
        register_operator(Other)
    assert OPERATORS["diagonal"] is Diagonal


def test_a_newly_registered_operator_is_accepted_by_the_config_and_named_in_errors():
    class Scale2(Diagonal):
        """A test operator: one class, one registration."""

        name = "scale2_test"

    register_operator(Scale2)
    try:
        raw = {
            "entities": {"a": {}},
            "relations": [{"name": "r", "lhs": "a", "rhs": "a", "operator": "scale2_test"}],
            "entity_path": "e",
            "edge_paths": ["p"],
            "checkpoint_path": "c",
            "dimension": 4,
        }
        assert parse_config(raw).relations[0].operator == "scale2_test"
        raw["relations"][0]["operator"] = "scale3"
        with pytest.raises(Exception, match="'scale2_test'"):
            parse_config(raw)
    finally:
        del OPERATORS["scale2_test"]


def test_every_operator_names_its_parameters_and_they_rebuild_its_row():
    rng = np.random.default_rng(0)
    for name, cls in OPERATORS.items():
        op = cls(4)
        row = rng.standard_normal(op.num_params()).astype(np.float32)
        named = op.named_parameters(row)
        flat = np.concatenate([a.reshape(-1) for _, a in named]) if named else np.zeros(0, np.float32)
        np.testing.assert_array_equal(flat, row, err_msg=name)
        assert len({n for n, _ in named}) == len(named)


# ------------------------------------------------------------------ the config
def _sources() -> str:
    """The source that reads config keys: everything but the schema's declarations."""
    text = []
    for folder in ("pbg", "cli", "partitioning"):
        for f in sorted((ROOT / folder).glob("*.py")):
            lines = f.read_text().splitlines()
            if f.name == "config.py":  # its validation reads keys; its declarations do not
                lines = [ln for ln in lines if not re.match(r"^    \w+: .*= key\(", ln)]
            text.extend(lines)
    return "\n".join(text)


def test_every_config_key_is_read_somewhere_or_labelled_no_effect():
    src = _sources()
    unread = []
    for cls in (ConfigSchema, EntitySchema, RelationSchema):
        for f in schema_fields(cls):
            if f.metadata["no_effect"]:
                assert f.metadata["doc"].endswith("Accepted, no effect in Ember."), f.name
                continue
            # read as an attribute of a config, or by name from a raw mapping
            if not re.search(rf"\.{f.name}\b|\.get\([\"']{f.name}[\"']", src):
                unread.append(f"{cls.__name__}.{f.name}")
    assert not unread, f"documented keys that nothing reads: {unread}"


# ------------------------------------------------------------------ light imports
def _modules_after(code: str) -> set:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(out.stdout.split())


ENGINE = ("ember.nn", "ember.optim", "ember.autograd", "ember._tensor", "scipy")


def _engine_in(mods) -> list:
    return sorted(m for m in mods if any(m == e or m.startswith(e + ".") for e in ENGINE))


def test_import_ember_and_ember_partitioning_load_no_engine():
    assert _engine_in(_modules_after("import ember")) == []
    assert _engine_in(_modules_after("import ember.partitioning")) == []


def test_pbg_help_and_a_whole_pbg_import_load_no_engine(tmp_path):
    src = tmp_path / "e.tsv"
    src.write_text("a\tr\tb\nb\tr\tc\nc\ts\ta\n")
    for argv in (["--help"], ["import", "--help"], ["import", str(src), "--out", str(tmp_path / "ws")]):
        code = f"from ember.cli.main import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
        assert _engine_in(_modules_after(code)) == [], argv
    assert (tmp_path / "ws" / "config.toml").is_file()


def test_the_engine_still_loads_on_first_use():
    mods = _modules_after("import ember\nember.tensor([1.0]).sum()\nember.nn.Linear(2, 2)")
    assert {"ember.nn", "ember.optim", "ember.autograd"} <= mods


def test_pbg_train_without_a_launcher_never_imports_mpi4py(tmp_path):
    src = tmp_path / "e.tsv"
    src.write_text("a\tr\tb\nb\tr\tc\nc\ts\ta\n")
    ws = tmp_path / "ws"
    code = (
        "from ember.cli.main import main\n"
        f"assert main(['import', {str(src)!r}, '--out', {str(ws)!r}]) == 0\n"
        f"assert main(['train', {str(ws / 'config.toml')!r}, '-p', 'num_epochs=1', '-p', 'dimension=4']) == 0"
    )
    mods = _modules_after(code)
    assert "ember.pbg.train" in mods and not any(m.startswith("mpi4py") for m in mods)


def test_a_partition_read_into_a_table_is_the_stored_rows_converted_and_shifted(tmp_path, monkeypatch):
    """read_partition_into: straight into the table, through a layout change block by
    block, into a float16 table, and with the global embedding added as it is read; the
    rows beyond the partition's are left alone."""
    from ember.pbg import checkpoint as ck_mod
    from ember.pbg.checkpoint import Checkpoint

    rng = np.random.default_rng(3)
    n, d = 2_500, 6
    emb = rng.standard_normal((n, d)).astype(np.float32)
    state = rng.uniform(0, 1, n).astype(np.float32)
    ck = Checkpoint(tmp_path / "ck")
    ck.begin(durable=False)
    ck.save_partition("e", 0, emb, state)
    ck.commit(config={}, model={}, position={}, relations={"theta": np.zeros((1, 1), np.float32)})
    ck = Checkpoint(tmp_path / "ck")
    monkeypatch.setattr(ck_mod, "BLOCK_BYTES", 700 * d * 4)  # blocks of 700 rows: a short last one
    g = rng.standard_normal(d).astype(np.float32)
    perm = np.arange(d)[::-1]
    for fn, dtype, add, want in (
        (None, np.float32, None, emb),
        (None, np.float32, g, emb + g),
        (lambda b, out: np.take(b, perm, axis=1, out=out), np.float32, None, emb[:, perm]),
        (None, np.float16, None, emb.astype(np.float16)),
        (lambda b, out: np.take(b, perm, axis=1, out=out), np.float32, g, emb[:, perm] + g),
    ):
        table = np.full((n + 3, d), 9, dtype)
        st = np.full(n + 3, 9, np.float32)
        assert ck.read_partition_into("e", 0, table, st, fn, add=add) == n
        np.testing.assert_array_equal(table[:n], want.astype(dtype))
        np.testing.assert_array_equal(st[:n], state)
        assert (table[n:] == 9).all() and (st[n:] == 9).all()
