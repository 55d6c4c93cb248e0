"""Small units of the data-safety work: ranking with NaN scores, the file lock, the
checkpoint checksum, workspace generation names."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from ember._io import Busy, FileLock, remove_stale
from ember.pbg.eval import realistic_rank, tally


def test_a_nan_positive_ranks_last_and_a_nan_candidate_beats_nothing():
    S = np.array([[0.5, 0.1, np.nan], [np.nan, np.nan, np.nan], [0.9, 0.2, 0.3]])
    pos = np.array([0.3, np.nan, np.nan])
    gt, ge = tally(S, pos)
    r = realistic_rank(gt, ge, pos, np.array([4.0, 4.0, 4.0]))
    # row 0: only 0.5 beats 0.3 (the NaN candidate beats nothing): rank 2
    # rows 1, 2: a NaN positive is the worst score there is: last of 4
    assert r.tolist() == [2.0, 4.0, 4.0]
    # without the positive's score the old rule gave a NaN positive rank 1
    assert realistic_rank(gt, ge).tolist()[1] == 1.0


def test_held_out_metrics_of_a_nan_model_are_the_worst(monkeypatch):
    from ember.pbg.batch import Sampler
    from ember.pbg.eval import held_out_metrics
    from ember.pbg.model import Model

    m = Model(["diagonal"], "dot", "softmax", 8, 1)
    theta = m.init_relations(np, np.float32)
    tab = np.full((30, 8), np.nan, np.float32)
    edges = {k: np.arange(20) % 30 for k in ("lhs", "rhs")}
    edges["rel"] = np.zeros(20, np.int64)
    out = held_out_metrics(
        m,
        theta,
        (tab, tab),
        (0, 0),
        edges,
        sampler=Sampler(np, 0, 0, 0, 0, 0, 0, 1),
        num_uniform=10,
        num_batch=5,
    )
    assert out["mrr"] < 0.2 and out["hits@10"] < 1


def test_the_lock_is_shared_within_a_process_and_refused_to_another(tmp_path):
    path = tmp_path / ".lock"
    a = FileLock(path).acquire()
    b = FileLock(path).acquire()  # the same process: shared
    code = f"from ember._io import FileLock; FileLock({str(path)!r}).acquire()"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "Busy" in r.stderr and str(os.getpid()) in r.stderr
    a.release()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0  # b still holds it
    b.release()
    assert not path.exists()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_lock_file_left_by_a_killed_holder_is_simply_taken(tmp_path):
    path = tmp_path / ".lock"
    code = f"import os; from ember._io import FileLock; l = FileLock({str(path)!r}).acquire(); os._exit(9)"
    subprocess.run([sys.executable, "-c", code])
    assert path.exists()  # the file stays; its lock died with the process
    with FileLock(path) as lk:
        assert lk.held
    hold = f"from ember._io import FileLock; lk = FileLock({str(path)!r}).acquire()"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold + "; print(1, flush=True); import time; time.sleep(30)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        holder.stdout.readline()
        with pytest.raises(Busy):
            FileLock(path).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_only_leftovers_of_dead_processes_are_removed(tmp_path):
    import re

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = int(dead.stdout)
    (tmp_path / f".ws.importing-{gone}").mkdir()
    (tmp_path / f".ws.importing-{os.getpid()}").mkdir()  # alive: ours
    (tmp_path / f".other.importing-{gone}").mkdir()  # another target's
    (tmp_path / "keep").write_text("x")
    removed = remove_stale(tmp_path, re.compile(r"\.ws\.(importing|old)-(?P<pid>\d+)"))
    assert removed == [f".ws.importing-{gone}"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f".ws.importing-{os.getpid()}", f".other.importing-{gone}", "keep"]
    )


def test_checkpoint_checksums_catch_a_flipped_bit(tmp_path):
    from ember.errors import InputFileError
    from ember.pbg.checkpoint import read_h5, write_h5

    p = tmp_path / "embeddings_all_0.v1.h5"
    sums = write_h5(p, {"embeddings": np.ones((50, 4), np.float32)})
    assert read_h5(p, sums)["embeddings"].shape == (50, 4)
    data = bytearray(p.read_bytes())
    data[-100] ^= 1
    p.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match="damaged checkpoint file .*CRC-32"):
        read_h5(p, sums)


def test_generation_names_stay_in_their_folder():
    from ember.partitioning import layout

    assert layout.generation_name("edges/train/edges_0_1.h5", 3) == "edges/train/edges_0_1.g3.h5"
    assert layout.generation_name("relations.parquet", 2) == "relations.g2.parquet"
    assert layout.is_generation_name("edges_0_1.g3.h5") and not layout.is_generation_name("edges_0_1.h5")
