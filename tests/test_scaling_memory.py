"""Every stage streams: as the graph grows 4x (edges; partitions grown so that a bucket
holds as many edges as before), the peak of each stage's traced memory (numpy's
allocations, through tracemalloc) stays within its stated bound instead of growing with
the graph: import holds the dictionary plus its bounded buffers, training two partitions
of each type plus a bucket, evaluation of a fixed sample its queries and the partitions
it scores, export one partition."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from ember.datasets import SyntheticGraph, write_graph
from ember.partitioning import ImportOptions, import_edges
from ember.pbg.api import EmbeddingModel
from ember.pbg.config import load_config
from ember.pbg.eval import evaluate
from ember.pbg.export import export
from ember.pbg.train import train

ENTITIES = 4000
DIM = 16


def _peak(fn):
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """The same 4,000 entities with 60,000 and 240,000 edges, in 2 and 4 partitions (a
    bucket holds about 15,000 edges either way; both files larger than the 1 MiB the
    reader sniffs); import peaks traced."""
    root = tmp_path_factory.mktemp("scaling")
    out = {}
    for edges, parts in ((60_000, 2), (240_000, 4)):
        src = root / f"e{edges}.tsv"
        write_graph(SyntheticGraph(ENTITIES, 5, edges, seed=1), src)
        opts = ImportOptions(
            out=root / f"ws{edges}",
            num_partitions=parts,
            test_fraction=0.01,
            # the stated constant, made small: bucket buffers spill beyond 1 MiB; blocks of
            # ~12,000 rows, so that both graphs fill the parse | encode | route pipeline
            buffer_bytes=1 << 20,
            min_block_rows=5_000,
            read_block_bytes=256 << 10,
        )
        _, peak = _peak(lambda src=src, opts=opts: import_edges([src], opts))
        out[edges] = (Path(opts.out) / "config.toml", peak)
    return out


def test_import_peak_is_the_dictionary_plus_a_constant(graphs):
    small, big = graphs[60_000][1], graphs[240_000][1]
    # same entities: the dictionary is the same; 4x the edges cost only bounded buffers
    assert big < 1.5 * small + (2 << 20), (small, big)


def _trained(cfg_path, name):
    cfg = load_config(
        cfg_path,
        [f"dimension={DIM}", "num_epochs=1", "workers=1", f"checkpoint_path={cfg_path.parent / name}"],
    )
    summary, peak = _peak(lambda: train(cfg, log=lambda m: None))
    return cfg, summary, peak


def test_training_holds_two_partitions_and_a_bucket_whatever_the_edge_count(graphs):
    cfg_s, s_small, small = _trained(graphs[60_000][0], "ck")
    cfg_b, s_big, big = _trained(graphs[240_000][0], "ck")
    # the partitions held halve (4 partitions of the same entities instead of 2) ...
    assert s_big["peak_embedding_bytes"] <= 0.55 * s_small["peak_embedding_bytes"]
    # ... and the rest (a bucket's edges, one batch) does not grow with the graph
    assert big < 1.3 * small, (small, big)
    # and what the plan states before the run is what the run holds at its peak
    for summary, peak in ((s_small, small), (s_big, big)):
        assert peak < summary["memory_plan_bytes"], (peak, summary["memory_plan_bytes"])


def test_evaluating_a_sample_holds_what_it_states(graphs, tmp_path):
    """Evaluation of a fixed sample holds three partitions (an LRU), one block of scores
    (1,000 queries x a partition), the split's edges and the known edges matching the
    sample's queries: as the graph grows 4x in entities and edges alike (the degrees stay,
    and with twice the partitions a bucket too), its peak stays within that statement."""
    peaks = []
    for n, edges, parts in ((ENTITIES, 60_000, 2), (4 * ENTITIES, 240_000, 4)):
        src = tmp_path / f"g{n}.tsv"
        write_graph(SyntheticGraph(n, 5, edges, seed=2), src)
        out = tmp_path / f"ws{n}"
        import_edges([src], ImportOptions(out=out, num_partitions=parts, test_fraction=0.01))
        cfg = load_config(out / "config.toml", [f"dimension={DIM}", "num_epochs=1", "workers=1"])
        train(cfg, log=lambda m: None)
        _, peak = _peak(lambda cfg=cfg: evaluate(cfg, sample=100, sample_seed=0))
        rows = -(-n // parts)
        stated = 3 * rows * DIM * 4 + 2 * 1000 * rows * 4 + edges * 0.01 * 3 * 8 + (3 << 20)
        assert peak < stated, (n, peak, stated)
        peaks.append(peak)
    assert peaks[1] < 3 * peaks[0], peaks  # the partitions doubled; nothing grew 4x


def test_export_holds_one_partition(graphs, tmp_path):
    peaks = []
    for edges in (60_000, 240_000):
        cfg_path = graphs[edges][0]
        _trained(cfg_path, "ck_export")  # its own checkpoint: tests may run on any worker
        m = EmbeddingModel(
            load_config(cfg_path, [f"dimension={DIM}", f"checkpoint_path={cfg_path.parent / 'ck_export'}"])
        )
        _, peak = _peak(lambda m=m, edges=edges: export(m, "npy", tmp_path / f"x{edges}"))
        peaks.append(peak)
    one_partition_2 = ENTITIES / 2 * DIM * 4
    # 4 partitions instead of 2: a partition of the big graph is half the small one's
    assert peaks[1] < peaks[0] and peaks[0] < 6 * one_partition_2 + (1 << 20), peaks


def test_no_third_partition_of_a_type_is_alive_when_one_is_loaded(graphs, monkeypatch):
    """The promise behind the plan: when a partition is read, at most one other of its
    type is still referenced anywhere (the one the next bucket shares), besides the
    dropped one whose memory it is read into; and such memory is reused."""

    import weakref

    from ember.pbg.train import Trainer

    loaded, alive_at_load, reused = [], [], []
    real = Trainer._load_arrays

    def load(self, etype, part, dtype=None, into=None):
        spare = into[0][0] if into else None  # becomes the table read
        # (no gc.collect(): a partition kept only by a reference cycle would count too)
        live = {id(ref()) for t, ref in loaded if t == etype and ref() is not None}  # a reused table: once
        alive_at_load.append(len(live - {id(spare)}))
        emb, state = real(self, etype, part, *([] if dtype is None else [dtype]), into=into)
        reused.append(spare is not None and emb is spare)
        spare = None
        loaded.append((etype, weakref.ref(emb)))
        return emb, state

    monkeypatch.setattr(Trainer, "_load_arrays", load)
    cfg = load_config(
        graphs[240_000][0],
        [
            f"dimension={DIM}",
            "num_epochs=2",
            "workers=2",
            f"checkpoint_path={graphs[240_000][0].parent / 'ck3'}",
        ],
    )
    train(cfg, log=lambda m: None)
    assert len(alive_at_load) > 8  # 4 partitions, two epochs: partitions were swapped
    assert max(alive_at_load) <= 1, alive_at_load
    assert any(reused)  # partitions read from the checkpoint into a dropped one's memory
