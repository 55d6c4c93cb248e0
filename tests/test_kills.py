"""Processes killed at random moments (seeded), and appends killed at every step of their
commit: nothing half-written is ever accepted, the next run cleans up what the killed
one left, and a resumed run reaches the same epoch count."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ember.partitioning import Workspace
from ember.pbg.checkpoint import Checkpoint

FAST = ["dimension=16", "batch_size=500", "workers=1"]


def _edges(path: Path, n: int, ents: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    a, r, b = rng.integers(0, ents, n), rng.integers(0, 4, n), rng.integers(0, ents, n)
    path.write_text("".join(f"e{x}\tr{y}\te{z}\n" for x, y, z in zip(a, r, b)))
    return path


def _pbg(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ember.cli.main", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _run(*args) -> subprocess.CompletedProcess:
    p = _pbg(*args)
    _, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(args, p.returncode, "", err)


def _whole(ws_path: Path) -> int:
    """Open a workspace and read every bucket of every split (as training would);
    returns its edge count. Raises if anything is missing or inconsistent."""
    ws = Workspace.open(ws_path)
    n = 0
    for split in ("train", "valid", "test"):
        for (lp, rp), count in ws.buckets(split).items():
            assert len(ws.read_bucket(split, lp, rp)["lhs"]) == count
            n += count
    for t in ws.entity_types:
        for p in range(ws.num_partitions(t)):
            assert len(ws.entity_names(t, p)) == ws.partition_sizes(t)[p]
    return n


def _kill_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds; False if it had already finished."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def test_import_killed_at_random_moments_leaves_nothing_accepted_and_the_next_run_cleans_up(tmp_path):
    src = _edges(tmp_path / "e.tsv", 60_000, 5_000, 0)
    out = tmp_path / "ws"
    t0 = time.perf_counter()
    assert _run("import", src, "--out", out, "--partitions", 4, "--test-fraction", 0.05).returncode == 0
    took = time.perf_counter() - t0
    full = _whole(out)
    rng = np.random.default_rng(14)
    killed = attempts = 0
    while killed < 4 and attempts < 10:  # an import that finished first: earlier moments next
        attempts += 1
        p = _pbg("import", src, "--out", out, "--partitions", 4, "--test-fraction", 0.05, "--overwrite")
        if _kill_after(p, float(rng.uniform(0.15, 0.95)) * took):
            killed += 1
        else:
            took *= 0.6
        # the target is the old workspace or the new one, complete either way
        assert _whole(out) == full
    assert killed >= 2, "the import finished before every kill: the moments are too late"
    r = _run("import", src, "--out", out, "--partitions", 4, "--test-fraction", 0.05, "--overwrite")
    assert r.returncode == 0, r.stderr
    left = [n for n in os.listdir(tmp_path) if n not in ("e.tsv", "ws")]
    assert left == [], left  # staging folders of killed runs removed (and said so)
    assert _whole(out) == full


def test_training_killed_at_random_moments_resumes_to_the_same_epoch_count(tmp_path):
    src = _edges(tmp_path / "e.tsv", 20_000, 2_000, 1)
    out = tmp_path / "ws"
    assert _run("import", src, "--out", out, "--partitions", 4).returncode == 0
    args = ["train", out / "config.toml", *[a for p in (*FAST, "num_epochs=6") for a in ("-p", p)]]
    t0 = time.perf_counter()
    ref = tmp_path / "ref"
    r = _run(*args, "-p", f"checkpoint_path={ref}")
    assert r.returncode == 0, r.stderr
    took = time.perf_counter() - t0
    ck = out / "checkpoints"
    rng = np.random.default_rng(18)
    kills = attempts = 0
    while kills < 4 and attempts < 10:
        attempts += 1
        killed = _kill_after(_pbg(*args), float(rng.uniform(0.2, 0.45)) * took)
        c = Checkpoint(ck)
        if c.exists:  # whatever the moment: a complete version, every file intact
            assert c.verify() == [] and c.manifest["complete"]
        if killed:
            kills += 1
        else:  # it resumed and finished before the moment: again from nothing, earlier
            shutil.rmtree(ck)
            took *= 0.6
    assert kills >= 3
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    m = json.loads((ck / "checkpoint.json").read_text())
    assert m["position"] == {"epoch": 6, "edge_chunk": 0, "bucket": 0}
    assert Checkpoint(ck).verify() == []
    assert not [p for p in ck.iterdir() if ".tmp-" in p.name]


@pytest.fixture
def appended(tmp_path):
    """A workspace, and what it holds after an uninterrupted append of more edges."""
    old_src = _edges(tmp_path / "old.tsv", 3_000, 400, 2)
    new_src = _edges(tmp_path / "new.tsv", 2_000, 600, 3)
    base = tmp_path / "base"
    assert _run("import", old_src, "--out", base, "--partitions", 2, "--test-fraction", 0.1).returncode == 0
    ref = tmp_path / "ref"
    assert _run("import", old_src, "--out", ref, "--partitions", 2, "--test-fraction", 0.1).returncode == 0
    assert _run("import", "--append", new_src, "--into", ref).returncode == 0
    return base, new_src, _whole(base), _whole(ref)


def test_an_append_killed_at_every_step_of_its_commit_leaves_the_old_or_the_new_workspace(appended, tmp_path):
    base, new_src, old_n, new_n = appended
    import shutil

    step, seen = 1, set()
    while True:
        ws = tmp_path / f"ws{step}"
        shutil.copytree(base, ws)
        code = textwrap.dedent(
            f"""
            import os, sys
            import ember.partitioning.importer as importer
            importer._after_step = lambda i: os._exit(9) if i == {step} else None
            from ember.cli.main import main
            sys.exit(main(["import", "--append", {str(new_src)!r}, "--into", {str(ws)!r}]))
            """
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        n = _whole(ws)  # opens and reads completely, whatever the moment of the kill
        assert n in (old_n, new_n), (step, n)
        seen.add(n)
        # a later append (of nothing new: the same file again) works: leftovers are cleaned up
        r2 = _run("import", "--append", new_src, "--into", ws)
        assert r2.returncode == 0, (step, r2.stderr)
        assert not [p for p in ws.rglob(".append-*")]
        named = set(json.loads((ws / "workspace.json").read_text()).get("files", {}).values())
        strays = [
            p.relative_to(ws).as_posix()
            for p in ws.rglob("*.g*.*")
            if p.is_file() and p.relative_to(ws).as_posix() not in named
        ]
        assert strays == [], (step, strays)
        if r.returncode == 0:  # the hook never fired: every step has been killed once
            break
        step += 1
    assert seen == {old_n, new_n} and step > 3
