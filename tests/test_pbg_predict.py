"""`pbg predict` / `pbg neighbors` / ember.pbg.load: the streamed, blocked top-k gives
exactly what brute-force numpy scoring of every candidate gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ember.cli.main import main
from ember.partitioning import Workspace
from ember.pbg import predict as predict_mod
from ember.pbg.api import EmbeddingModel, load
from ember.pbg.checkpoint import Checkpoint
from ember.pbg.config import OPERATORS, load_config, parse_config
from ember.pbg.model import COMPARATORS
from ember.pbg.train import train

N_ENT, N_REL, N_EDGES = 60, 3, 700


def _write_graph(path, seed):
    rng = np.random.default_rng(seed)
    h = rng.integers(0, N_ENT, N_EDGES)
    t = rng.integers(0, N_ENT, N_EDGES)
    r = rng.integers(0, N_REL, N_EDGES)
    lines = {f"e{a}\tr{b}\te{c}\n" for a, b, c in zip(h, r, t)}
    path.write_text("".join(sorted(lines)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A small graph with train/valid/test splits, 2 partitions."""
    d = tmp_path_factory.mktemp("pred")
    _write_graph(d / "edges.tsv", 0)
    assert (
        main(
            [
                "import",
                str(d / "edges.tsv"),
                "--out",
                str(d / "ws"),
                "--partitions",
                "2",
                "--valid-fraction",
                "0.1",
                "--test-fraction",
                "0.1",
            ]
        )
        == 0
    )
    return d / "ws"


def _trained(ws, operator, comparator, epochs=1):
    base = load_config(ws / "config.toml")
    raw = base.to_dict()
    for r in raw["relations"]:
        r["operator"] = operator
    raw.update(
        comparator=comparator,
        num_epochs=epochs,
        dimension=8,
        init_scale=0.5,
        checkpoint_path=str(ws / f"ck_{operator}_{comparator}"),
        workers=1,
    )
    cfg = parse_config({k: v for k, v in raw.items() if v is not None})
    train(cfg, progress=False, log=lambda m: None)
    return cfg


def _all_embeddings(cfg, ws):
    """Every entity's vector in global order, straight from the checkpoint API."""
    ck = Checkpoint(cfg.checkpoint_path)
    emb = np.concatenate([ck.load_partition("all", p)[0] for p in range(2)]).astype(np.float32)
    # global_emb (the default): the type's learned vector is part of every embedding
    return emb + ck.load_relations().get("global_all", 0)


def _names(ws):
    w = Workspace.open(ws)
    return [n for p in range(2) for n in w.entity_names("all", p)]


def _known(ws, names, rel_names):
    """Global (head, rel, tail) of every edge of every split."""
    w = Workspace.open(ws)
    bases = np.concatenate([[0], np.cumsum(w.partition_sizes("all"))])
    out = set()
    for split in ("train", "valid", "test"):
        for lp, rp in w.buckets(split):
            d = w.read_bucket(split, lp, rp)
            for a, r, b in zip(d["lhs"], d["rel"], d["rhs"]):
                out.add((int(a + bases[lp]), int(r), int(b + bases[rp])))
    return out


def _brute(cfg, ws, model, head=None, rel=None, tail=None, k=5, filter_known=False):
    emb = _all_embeddings(cfg, ws)
    names = _names(ws)
    ck = Checkpoint(cfg.checkpoint_path).load_relations()
    theta = [ck["theta_r"], ck["theta_l"]]
    rid = model.relation_names.index(rel)
    side = "rhs" if tail is None else "lhs"
    q = names.index(head if side == "rhs" else tail)
    s = model.model.score_candidates(emb[[q]], np.array([rid]), theta, emb, side)[0]
    if filter_known:
        for a, r, b in _known(ws, names, model.relation_names):
            if r == rid and side == "rhs" and a == q:
                s[b] = -np.inf
            if r == rid and side == "lhs" and b == q:
                s[a] = -np.inf
    order = np.argsort(-s, kind="stable")[:k]
    order = order[np.isfinite(s[order])]
    return [names[i] for i in order], s[order]


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("comparator", sorted(COMPARATORS))
def test_predict_equals_brute_force_for_every_operator_and_comparator(workspace, operator, comparator):
    cfg = _trained(workspace, operator, comparator)
    m = EmbeddingModel(cfg)
    names = _names(workspace)
    for head, tail, rel in ((names[3], None, "r0"), (None, names[7], "r1")):
        for filt in (False, True):
            got = m.predict(head=head, relation=rel, tail=tail, top_k=6, filter_known=filt)
            want_names, want_scores = _brute(cfg, workspace, m, head, rel, tail, 6, filt)
            assert got.names == want_names
            # l2 near 0 is sqrt of a cancelling difference: noise of sqrt(eps) there
            atol = 1e-3 if comparator == "l2" else 1e-5
            np.testing.assert_allclose(got.scores, want_scores, rtol=1e-4, atol=atol)


def test_complex_dot_score_is_the_textbook_formula(workspace):
    cfg = _trained(workspace, "complex_diagonal", "dot")
    m = EmbeddingModel(cfg)
    h, t = m.entities()[:2]
    eh, et = m.embedding(h), m.embedding(t)
    th = Checkpoint(cfg.checkpoint_path).load_relations()["theta_r"][m.relation_id("r2")]
    d = len(eh) // 2
    z = (eh[:d] + 1j * eh[d:]) * (th[:d] + 1j * th[d:])
    want = np.real(np.sum(z * np.conj(et[:d] + 1j * et[d:])))
    np.testing.assert_allclose(m.score([h], ["r2"], [t]), [want], rtol=1e-4)


def test_small_blocks_and_several_queries_give_the_same_top_k(workspace, monkeypatch):
    cfg = _trained(workspace, "diagonal", "cos")
    m = EmbeddingModel(cfg)
    names = m.entities()
    queries = [(names[i], f"r{i % 3}", None) for i in range(10)] + [(None, "r1", names[5])]
    whole = m.predict_many(queries, top_k=7, filter_known=True)
    monkeypatch.setattr(predict_mod, "_BLOCK_SCORES", 1)  # blocks of 3 candidate rows
    monkeypatch.setattr(predict_mod, "_MIN_BLOCK", 3)
    blocked = m.predict_many(queries, top_k=7, filter_known=True)
    for a, b in zip(whole, blocked):
        assert a.names == b.names
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


@pytest.mark.parametrize("metric", ["cos", "dot", "l2"])
def test_neighbors_equal_brute_force(workspace, metric):
    cfg = _trained(workspace, "translation", "l2")
    m = EmbeddingModel(cfg)
    emb, names = _all_embeddings(cfg, workspace), _names(workspace)
    q = 11
    x = emb[q]
    if metric == "dot":
        s = emb @ x
    elif metric == "cos":
        s = (emb @ x) / (np.linalg.norm(emb, axis=1) + 1e-12) / (np.linalg.norm(x) + 1e-12)
    else:
        s = -np.linalg.norm(emb - x, axis=1)
    s[q] = -np.inf
    want = np.argsort(-s, kind="stable")[:5]
    got = m.neighbors(names[q], top_k=5, metric=metric)
    assert got.names == [names[i] for i in want]
    np.testing.assert_allclose(got.scores, s[want], rtol=1e-4, atol=1e-4)


def test_api_embeddings_and_tensors(workspace):
    cfg = _trained(workspace, "diagonal", "dot")
    m = load(workspace / "config.toml", overrides=[f"checkpoint_path={cfg.checkpoint_path}"])
    emb, names = _all_embeddings(cfg, workspace), _names(workspace)
    assert m.entities() == names
    np.testing.assert_array_equal(m.embeddings(names[::-1]), emb[::-1])
    t = m.embedding(names[4], tensor=True)
    np.testing.assert_array_equal(t.numpy(), emb[4])
    assert m.relation_types("r0") == ("all", "all")


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_predict_and_neighbors_text_and_json(workspace, capsys):
    cfg = _trained(workspace, "complex_diagonal", "dot")
    config = str(workspace / "config.toml")
    ck = f"checkpoint_path={cfg.checkpoint_path}"
    head = _names(workspace)[0]
    code, out, _ = _run(
        capsys, "predict", config, "-p", ck, "--head", head, "--relation", "r0", "--top-k", "3"
    )
    assert code == 0 and out.startswith(f"# {head}  r0  ?") and len(out.splitlines()) == 4
    code, out, _ = _run(
        capsys,
        "predict",
        config,
        "-p",
        ck,
        "--tail",
        head,
        "--relation",
        "r0",
        "--top-k",
        "4",
        "--json",
        "--filter-known",
    )
    res = json.loads(out)
    assert code == 0 and [p["rank"] for p in res[0]["predictions"]] == [1, 2, 3, 4]
    qf = workspace / "queries.tsv"
    qf.write_text(f"# comment\n{head}\tr1\n?\tr2\t{head}\n{head}\tr0\t?\n")
    code, out, _ = _run(capsys, "predict", config, "-p", ck, "--file", str(qf), "--json")
    assert code == 0 and [r["query"]["relation"] for r in json.loads(out)] == ["r1", "r2", "r0"]
    code, out, _ = _run(capsys, "neighbors", config, "-p", ck, head, "--metric", "l2", "--json")
    got = json.loads(out)[0]["predictions"]
    assert code == 0 and len(got) == 10 and head not in [p["name"] for p in got]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--head", "nobody", "--relation", "r0"], "unknown entity 'nobody'"),
        (["--head", "e1", "--relation", "r9"], "unknown relation 'r9'"),
        (["--head", "e1", "--relation", "r0", "--checkpoint", "99"], "--checkpoint 99"),
        (["--head", "e1", "--tail", "e2", "--relation", "r0"], "exactly one of --head"),
        (["--head", "e1"], "--relation is required"),
        (["--file", "EMPTY"], "no queries in the file"),
        (["--file", "MISSING"], "no such query file"),
        (["--file", "BAD"], "queries.tsv:2: expected"),
    ],
)
def test_bad_queries_end_with_error_and_status_2(workspace, capsys, args, message):
    cfg = _trained(workspace, "diagonal", "dot")
    (workspace / "empty.tsv").write_text("\n# nothing\n")
    (workspace / "queries.tsv").write_text("e1\tr0\n1\t2\t3\t4\n")
    subst = {
        "EMPTY": str(workspace / "empty.tsv"),
        "MISSING": str(workspace / "nope.tsv"),
        "BAD": str(workspace / "queries.tsv"),
    }
    args = [subst.get(a, a) for a in args]
    code, out, err = _run(
        capsys,
        "predict",
        str(workspace / "config.toml"),
        "-p",
        f"checkpoint_path={cfg.checkpoint_path}",
        *args,
    )
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1


def test_no_checkpoint_is_a_clear_error(workspace, capsys):
    code, _, err = _run(
        capsys,
        "neighbors",
        str(workspace / "config.toml"),
        "-p",
        f"checkpoint_path={workspace / 'never_trained'}",
        "e1",
    )
    assert code == 2 and err.startswith("error:") and "no checkpoint" in err
