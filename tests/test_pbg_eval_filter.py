"""The filtered setting keeps only the known edges that can filter an evaluated query.

`pbg eval` streams train/valid/test bucket by bucket and keeps the edges whose
(lhs, relation) is an evaluated (head, relation) (tail prediction) or whose
(relation, rhs) is an evaluated (relation, tail) (head prediction). The metrics must be
exactly those of the former filter that held every known edge of the graph, on one and
several partitions, one and several entity types, on the CPU and the stand-in device;
and a small split on a larger graph must keep far fewer edges than the graph has.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from graphs import typed_workspace

from ember.cli.main import main as pbg
from ember.datasets import real_graph
from ember.pbg import eval as E
from ember.pbg.config import load_config
from ember.pbg.train import train
from ember.pbg.workspace import open_workspace

QUICK = ["num_epochs=2", "dimension=16", "batch_size=500", "workers=1"]


def _all_known_filters(ws, split, edges, num_rel, split_edges=None):
    """The former filter: every known edge of train/valid/test, whatever the split."""
    known = [E._global_edges(ws, s) for s in E.SPLITS if ws.num_edges(s)]
    cat = {k: np.concatenate([e[k] for e in known]) for k in ("lhs", "rhs", "rel")}
    return {
        "rhs": E._Filter(cat["lhs"], cat["rel"], cat["rhs"], num_rel),
        "lhs": E._Filter(cat["rhs"], cat["rel"], cat["lhs"], num_rel),
    }


def _kinships(out: Path, partitions: int, test=None) -> Path:
    g = real_graph("kinships")
    assert (
        pbg(
            [
                "import",
                str(g.train),
                "--valid",
                str(g.valid),
                "--test",
                str(test or g.test),
                "--out",
                str(out),
                "--partitions",
                str(partitions),
            ]
        )
        == 0
    )
    return out / "config.toml"


def _typed(tmp_path: Path) -> Path:
    """Three entity types (two partitioned), three relations, valid and test splits."""
    return typed_workspace(tmp_path, seed=3, dimension=16, split=0.1)


def _trained(cfg_path: Path):
    ck = cfg_path.parent / "ck"
    shutil.rmtree(ck, ignore_errors=True)
    cfg = load_config(cfg_path, [*QUICK, f"checkpoint_path={ck}"])
    train(cfg, log=lambda m: None)
    return cfg


@pytest.mark.parametrize("graph", ["kinships1", "kinships3", "typed"])
def test_filtered_metrics_equal_those_of_the_all_known_edges_filter(graph, tmp_path, monkeypatch):
    if graph == "typed":
        cfg = _trained(_typed(tmp_path))
    else:
        cfg = _trained(_kinships(tmp_path / "ws", int(graph[-1])))
    ws = open_workspace(cfg)
    assert len(ws.relation_names) >= 3
    splits = ("test", "valid", "train") if graph == "typed" else ("test", "valid")
    devices = ("cpu", "standin") if graph != "kinships1" else ("cpu",)
    new = {(s, d): E.evaluate(cfg, split=s, device=d) for s in splits for d in devices}
    monkeypatch.setattr(E, "_filters", _all_known_filters)
    for s, d in new:
        assert new[s, d] == E.evaluate(cfg, split=s, device=d), (s, d)
    # and the filter does filter: raw ranks are never better
    assert E.evaluate(cfg, filtered=False)["mrr"] <= new["test", "cpu"]["mrr"]


def test_filter_keeps_only_the_edges_matching_a_small_split(tmp_path):
    g = real_graph("kinships")
    lines = gzip.open(g.test, "rt").read().splitlines()[:10]
    small = tmp_path / "test10.tsv"
    small.write_text("\n".join(lines) + "\n")
    cfg = load_config(_kinships(tmp_path / "ws", 2, test=small))
    ws = open_workspace(cfg)
    R = len(ws.relation_names)
    edges = E._global_edges(ws, "test")
    assert len(edges["lhs"]) == 10
    flt = E._filters(ws, "test", edges, R)
    graph = sum(ws.num_edges(s) for s in E.SPLITS)
    full = _all_known_filters(ws, "test", edges, R)
    for side, keep in (("rhs", "lhs"), ("lhs", "rhs")):
        kept = len(flt[side].key)
        # exactly the known edges that share a query's (entity, relation), duplicates kept
        q = np.unique(edges[keep] * R + edges["rel"])
        assert kept == int(np.isin(full[side].key, q).sum())
        assert 10 <= kept < graph / 50, (side, kept, graph)
        # and the same true candidates for every query (a multiset: they are counted)
        got = sorted(zip(*(x.tolist() for x in flt[side].pairs(edges[keep], edges["rel"]))))
        want = sorted(zip(*(x.tolist() for x in full[side].pairs(edges[keep], edges["rel"]))))
        assert got == want and len(got) >= 10
    assert graph > 9_000


def test_eval_on_a_seeded_sample_is_reproducible_and_equals_the_full_evaluation_on_those_edges(tmp_path):
    g = real_graph("kinships")
    out = tmp_path / "ws"
    assert (
        pbg(["import", str(g.train), "--valid", str(g.valid), "--test", str(g.test), "--out", str(out)]) == 0
    )
    cfg = load_config(out / "config.toml", ["num_epochs=2", "dimension=16", "workers=1"])
    train(cfg, log=lambda m: None)
    full_ranks = {}
    E.evaluate(cfg, ranks_out=full_ranks)
    a, b, c = {}, {}, {}
    m1 = E.evaluate(cfg, sample=200, sample_seed=7, ranks_out=a)
    m2 = E.evaluate(cfg, sample=200, sample_seed=7, ranks_out=b)
    E.evaluate(cfg, sample=200, sample_seed=8, ranks_out=c)
    assert m1 == m2 and m1["count"] == 400 and m1["sample"] == {"edges": 200, "seed": 7}
    assert not np.array_equal(a["edges"], c["edges"])  # another seed, another sample
    idx = a["edges"]
    for side in ("rhs", "lhs"):  # ranked against all entities and filtered exactly as in full
        np.testing.assert_array_equal(a[side], full_ranks[side][idx])
    r = np.concatenate([full_ranks["rhs"][idx], full_ranks["lhs"][idx]])
    assert m1["mrr"] == pytest.approx(np.mean(1 / r))


def _brute_ranks(cfg, ws, split="test"):
    """Filtered tail and head ranks by brute force: every entity scored at once."""
    from ember.pbg.api import _trained_config
    from ember.pbg.checkpoint import Checkpoint
    from ember.pbg.workspace import build_model

    ck = Checkpoint(cfg.checkpoint_path)
    model = build_model(_trained_config(cfg, ck), ws)
    rel_d = ck.load_relations()
    theta = [rel_d["theta_r"].astype(np.float32), rel_d["theta_l"].astype(np.float32)]
    g = rel_d.get("global_all")
    table = np.concatenate([ck.load_partition("all", p)[0] for p in range(ws.num_partitions("all"))])
    table = (table + g if g is not None else table).astype(np.float32)
    edges = E._global_edges(ws, split)
    known = [E._global_edges(ws, s) for s in E.SPLITS if ws.num_edges(s)]
    cat = {k: np.concatenate([e[k] for e in known]) for k in ("lhs", "rhs", "rel")}
    out = {}
    for side, keep, other in (("rhs", "lhs", "rhs"), ("lhs", "rhs", "lhs")):
        S = model.score_candidates(table[edges[keep]], edges["rel"], theta, table, side)
        pos = S[np.arange(len(S)), edges[other]].copy()
        for i in range(len(S)):
            m = (cat[keep] == edges[keep][i]) & (cat["rel"] == edges["rel"][i])
            S[i, cat[other][m]] = np.nan
        gt, ge = E.tally(S, pos)
        out[side] = E.realistic_rank(gt, ge, pos, np.full(len(S), len(table) - 0.0))
    return out


def test_ranks_by_partition_are_the_brute_force_ranks_and_a_sweep_reads_only_partitions_not_held(
    tmp_path, monkeypatch
):
    cfg = _trained(_kinships(tmp_path / "ws", 4))
    ws = open_workspace(cfg)
    brute = _brute_ranks(cfg, ws)
    from ember.pbg.checkpoint import Checkpoint

    reads = []
    real, into = Checkpoint.load_partition, Checkpoint.read_partition_into
    monkeypatch.setattr(Checkpoint, "load_partition", lambda self, t, p: reads.append(p) or real(self, t, p))
    monkeypatch.setattr(
        Checkpoint,
        "read_partition_into",
        lambda self, t, p, *a, **k: reads.append(p) or into(self, t, p, *a, **k),
    )
    for block in (1000, 3):  # one block per partition of positives; many blocks
        reads.clear()
        got = {}
        E.evaluate(cfg, block=block, ranks_out=got)
        for side in ("rhs", "lhs"):
            # the same ranks (a score computed in a product of another shape may round
            # differently: an exact tie can become a near one)
            same = np.isclose(got[side], brute[side], atol=0.5)
            assert same.mean() > 0.99, (block, side, got[side][~same], brute[side][~same])
        # 6 sweeps (2 sides x: the queries' rows, the positives' partitions, the others):
        # the first reads all 4, each later one starts with the 3 held and reads 1
        assert sorted(reads[:4]) == [0, 1, 2, 3] and len(reads) <= 4 + 5 * 1, (block, reads)
    # other partitions scored in slices of 5 candidates, counted by the compiled pass or
    # by numpy: the same ranks as one product per partition
    from ember import _cpu_kernels

    whole = {}
    E.evaluate(cfg, block=3, ranks_out=whole)
    monkeypatch.setattr(E, "_SLICE_ROWS", 5)
    monkeypatch.setattr(E, "_SLICE_BYTES", 1)
    for mode in ("auto", "numpy"):
        monkeypatch.setattr(_cpu_kernels, "MODE", mode)
        got = {}
        E.evaluate(cfg, block=3, ranks_out=got)
        for side in ("rhs", "lhs"):
            assert np.isclose(got[side], whole[side], atol=0.5).mean() > 0.99, (mode, side)
        if mode == "auto":
            import shutil

            assert _cpu_kernels.get() is not None or not shutil.which("g++"), _cpu_kernels.status()
            fused = got
        else:
            assert all(np.array_equal(fused[k], got[k]) for k in ("rhs", "lhs")), "the two counts differ"


def test_partitions_of_unequal_sizes_are_read_into_the_memory_of_evicted_ones(tmp_path):
    """Eval's LRU reads a partition into an evicted one's memory: each table is made as
    large as the type's largest partition, so partitions a row apart all fit."""
    from ember.pbg.checkpoint import Checkpoint

    cfg = _trained(_kinships(tmp_path / "ws", 3))
    ws = open_workspace(cfg)
    sizes = ws.partition_sizes("all")
    assert len(set(sizes)) == 2  # 104 entities: 35, 35, 34
    ck = Checkpoint(cfg.checkpoint_path)
    glob = ck.load_relations()
    tables = E._Tables(ck, glob, size=1, ws=ws, dim=cfg.dimension)
    order = sorted(range(3), key=lambda p: sizes[p])  # the smallest first, then larger ones
    first = tables.get("all", order[0])
    memory = first.base if first.base is not None else first
    for p in order:
        got = tables.get("all", p)
        assert np.shares_memory(got, memory), p
        want = ck.load_partition("all", p)[0] + glob.get("global_all", 0)
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_the_one_pass_count_equals_numpys_with_entries_taken_out(monkeypatch):
    import shutil

    from ember import _cpu_kernels

    if not shutil.which("g++") and not shutil.which("c++"):
        pytest.skip("no C++ compiler: only the numpy count exists")
    monkeypatch.setattr(_cpu_kernels, "MODE", "cpp")
    rng = np.random.default_rng(0)
    S = rng.standard_normal((40, 3001)).astype(np.float32)
    S[rng.random(S.shape) < 0.3] = 0.25  # many exact ties
    S[3, 7], S[5, 9], S[6, :] = np.nan, np.inf, -np.inf
    pos = S[:, 11].copy()
    pos[8] = np.nan
    r = rng.integers(0, 40, 300)
    c = rng.integers(0, 3001, 300)
    r, c = np.concatenate([r, r[:50], np.arange(40)]), np.concatenate([c, c[:50], np.full(40, 11)])  # repeats
    gt, ge, nf, zero = E.tally_out(S.copy(), pos, r, c)
    assert not zero
    cleared = S.copy()  # counted and cleared: the same counts, and S all zeros after
    gt2, ge2, nf2, zero = E.tally_out(cleared, pos, r, c, clear=True)
    assert (gt2.tolist(), ge2.tolist(), nf2, zero) == (gt.tolist(), ge.tolist(), nf, True)
    assert not cleared.any()
    monkeypatch.setattr(_cpu_kernels, "MODE", "numpy")
    want = E.tally_out(S.copy(), pos, r, c, clear=True)  # the numpy count clears nothing
    assert want[3] is False
    assert nf == want[2] == 2 + 3001
    assert gt.tolist() == want[0].tolist() and ge.tolist() == want[1].tolist()
    assert gt[8] == ge[8] == 0 and (ge >= gt).all() and (ge > gt).any()


def test_a_product_added_into_zeros_is_numpys_product_bit_for_bit():
    from ember import _blas

    rng = np.random.default_rng(5)
    for n, m, d in ((1, 1, 1), (60, 5000, 100), (257, 4096, 64), (7, 3, 200)):
        a = rng.standard_normal((n, d)).astype(np.float32)
        b = rng.standard_normal((m, d)).astype(np.float32)
        out = np.zeros((n, m), np.float32)
        if not _blas.sgemm_nt_acc(a, b, out):
            pytest.skip("numpy's BLAS is not one ember._blas can call (numpy's product runs)")
        np.testing.assert_array_equal(out, a @ b.T)
        assert _blas.sgemm_nt_acc(a, b, out)  # it adds: twice is the product doubled
        np.testing.assert_allclose(out, 2 * (a @ b.T), rtol=1e-5, atol=1e-5)
    out = np.zeros((4, 5), np.float32)
    assert not _blas.sgemm_nt_acc(np.ones((4, 3)), np.ones((5, 3), np.float32), out)  # float64: declined
    assert not _blas.sgemm_nt_acc(np.ones((4, 3), np.float32), np.ones((5, 2), np.float32), out)
    assert not _blas.sgemm_nt_acc(np.ones((4, 3), np.float32), np.ones((5, 3), np.float32), out.T.copy().T)


def test_membership_of_many_keys_in_few_queries_is_isins():
    rng = np.random.default_rng(1)
    for nq, nk in [(0, 10), (1, 0), (3, 5000), (2000, 600_000), (50, 10)]:
        q = np.unique(rng.integers(-(10**12), 10**12, nq))
        k = rng.integers(-(10**12), 10**12, nk)
        if nq and nk:
            k[::7] = rng.choice(q, len(k[::7]))  # many hits, and many misses
        assert (E._member(k, q) == np.isin(k, q)).all(), (nq, nk)


def test_one_pass_membership_of_edge_keys_equals_numpys(monkeypatch):
    import shutil

    from ember import _cpu_kernels

    if not shutil.which("g++") and not shutil.which("c++"):
        pytest.skip("no C++ compiler: only the numpy membership exists")
    monkeypatch.setattr(_cpu_kernels, "MODE", "cpp")
    rng = np.random.default_rng(2)
    for nq, nk, num_rel in [(0, 10, 3), (1, 0, 3), (3, 5000, 1), (2000, 300_000, 50), (70_000, 1000, 7)]:
        keep, rel = rng.integers(0, 10**9, nk), rng.integers(0, num_rel, nk)
        q = np.unique(rng.integers(0, 10**9 * num_rel, nq))
        if nq and nk:
            q = np.unique(np.concatenate([q, keep[::5] * num_rel + rel[::5]]))  # many hits
        got = _cpu_kernels.member_keys(keep.astype(np.int32) if nq == 3 else keep, rel, num_rel, q)
        want = E._member(keep * num_rel + rel, q)
        assert got.dtype == bool and (got == want).all(), (nq, nk)
        assert nk == 0 or not nq or got.any()
        assert (E._matches(keep, rel, num_rel, q) == want).all()


@pytest.mark.parametrize("user", [None, "20"])
def test_a_pbg_process_lets_idle_blas_threads_sleep_at_once(user):
    """`pbg` sets OPENBLAS_THREAD_TIMEOUT before numpy (and OpenBLAS, which reads it
    when it loads) is imported, unless the user set it: eval's idle BLAS thread would
    otherwise spin between its products."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if user is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user
    code = (
        "import os, sys\nfrom ember.cli.main import main\nassert 'numpy' not in sys.modules\n"
        "main(['config', '--help'])\nprint(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == (user or "4")
