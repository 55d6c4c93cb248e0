"""PyTorch-BigGraph's per-relation settings and model options: different operators per
relation in one run, ``all_negs`` (1-vs-all negatives) without reciprocal mode,
``bias`` (a score bias coordinate), ``relations[i].weight``, and the refusal of per-type
dimensions. Gradients checked numerically (float64), scores against numpy, behaviour
end to end (train, checkpoint, predict, export) on small graphs."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import ember
import ember.pbg
from ember.autograd import gradcheck
from ember.cli.main import main as pbg
from ember.errors import ConfigError, UserError
from ember.pbg import batch as batch_mod
from ember.pbg.autodiff import ChunkedLoss, _CompareOp
from ember.pbg.config import ConfigSchema, load_config
from ember.pbg.eval import evaluate
from ember.pbg.export import export
from ember.pbg.model import (
    COMPARATORS,
    OPERATORS,
    BatchPlan,
    Biased,
    Model,
)
from ember.pbg.train import Trainer, train
from ember.pbg.workspace import build_model

D = 6
KIN = Path(__file__).parent / "data" / "kinships"
TRIVIAL_FLOOR = 0.110  # filtered MRR of the frequency baseline (shared/data/README.md)


def t(a, grad=True):
    return ember.tensor(np.asarray(a, np.float64), dtype=ember.float64, requires_grad=grad)


def _numpy_operator(name, x, th):
    """``name`` applied rowwise, ``th`` holding (at least) the operator's parameters."""
    if name == "none":
        return x
    if name == "translation":
        return x + th[:, :D]
    if name == "diagonal":
        return x * th[:, :D]
    if name in ("linear", "affine"):
        y = np.einsum("nij,nj->ni", th[:, : D * D].reshape(-1, D, D), x)
        return y + th[:, D * D : D * D + D] if name == "affine" else y
    h = D // 2
    z = x[:, :h] + 1j * x[:, h:]
    w = th[:, :h] + 1j * th[:, h:D] if name == "complex_diagonal" else np.exp(1j * th[:, :h])
    y = z * w
    return np.concatenate([y.real, y.imag], axis=1)


MIXES = [
    ["translation", "diagonal", "complex_diagonal"],
    ["none", "linear", "rotate"],
    ["affine", "translation", "translation"],
]


# =========================================================================== operators
@pytest.mark.parametrize("ops", MIXES)
def test_mixed_operators_apply_each_relations_own_operator(ops):
    r = np.random.default_rng(0)
    model = Model(ops, "dot", "softmax", D, 3)
    assert model.operator.name == "mixed" and model.operator_names == ops
    theta = model.init_relations(np, np.float64)[0]
    x = r.standard_normal((7, D))
    rel = np.array([0, 2, 1, 2, 0, 1, 1])
    np.testing.assert_allclose(model.transform(x, rel, theta), x, atol=1e-12)  # identity init
    theta = theta + r.standard_normal(theta.shape)
    want = np.stack([_numpy_operator(ops[k], x[i : i + 1], theta[k : k + 1])[0] for i, k in enumerate(rel)])
    np.testing.assert_allclose(model.transform(x, rel, theta), want, rtol=1e-12)
    widths = [OPERATORS[o](D).num_params() for o in ops]
    assert theta.shape == (3, max(widths))
    for k, o in enumerate(ops):
        name, row = model.relation_row(k, theta[k])
        assert name == o and len(row) == widths[k]


@pytest.mark.parametrize("ops", MIXES)
@pytest.mark.parametrize("cmp", ["dot", "cos", "l2"])
def test_fused_loss_gradients_with_mixed_operators(ops, cmp):
    r = np.random.default_rng(1)
    model = Model(ops, cmp, "softmax", D, 3, regularization_coef=0.01)
    n, chunk, u = 6, 3, 2
    rel = np.array([0, 1, 2, 2, 1, 0])
    plan = BatchPlan(
        model,
        rel,
        chunk,
        r.permutation(10)[:n],
        r.permutation(10)[:n],
        r.integers(0, 10, (2, u)),
        r.integers(0, 10, (2, u)),
    )
    th = [x + 0.2 * r.standard_normal(x.shape) for x in model.init_relations(np, np.float64)]
    ins = [
        r.standard_normal((n, D)),
        r.standard_normal((n, D)),
        r.standard_normal((2, u, D)),
        r.standard_normal((2, u, D)),
        *th,
    ]
    assert gradcheck(lambda *xs: ChunkedLoss.apply(*xs, plan=plan), tuple(t(x) for x in ins))


def test_padding_columns_of_narrower_operators_get_no_gradient():
    r = np.random.default_rng(2)
    model = Model(["rotate", "linear"], "dot", "logistic", D, 2)
    rel = np.array([0, 0, 1, 0])
    plan = BatchPlan(model, rel, 2, np.arange(4), np.arange(4) + 4)
    th = [x + 0.1 for x in model.init_relations(np, np.float64)]
    ins = [t(r.standard_normal((4, D))), t(r.standard_normal((4, D))), None, None, t(th[0]), t(th[1])]
    ChunkedLoss.apply(*ins, plan=plan).backward()
    g = ins[4].grad.numpy()
    assert g.shape == (2, D * D)
    assert np.all(g[0, D // 2 :] == 0) and np.any(g[0, : D // 2] != 0)  # rotate: d/2 phases
    assert np.any(g[1] != 0)


def test_interleaved_layout_round_trips_a_complex_diagonal_and_rotate_mix():
    r = np.random.default_rng(3)
    fast = Model(["complex_diagonal", "rotate"], "dot", "softmax", D, 2, fast_layout=True)
    pub = Model(["complex_diagonal", "rotate"], "dot", "softmax", D, 2)
    assert fast.interleaved and not pub.interleaved
    th = pub.init_relations(np, np.float64)[0] + r.standard_normal((2, D))
    th[1, D // 2 :] = 0  # rotate's row: d/2 phases, the rest padding
    x = r.standard_normal((4, D))
    rel = np.array([0, 1, 1, 0])
    got = fast.to_public(fast.transform(fast.to_internal(x), rel, fast.to_internal(th, "theta")))
    np.testing.assert_allclose(got, pub.transform(x, rel, th), rtol=1e-12)
    np.testing.assert_array_equal(fast.to_public(fast.to_internal(th, "theta"), "theta"), th)


@pytest.mark.parametrize("shape", [(5, D), (D,), (2, 3, D)])
def test_interleaved_layout_pairs_each_real_part_with_its_imaginary_part(shape):
    """Internal coordinates 2i and 2i + 1 are public coordinates i and d/2 + i (rows, a
    global embedding's one vector, any leading axes); the results are C-ordered."""
    fast = Model(["complex_diagonal"], "dot", "softmax", D, 1, fast_layout=True)
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    inner = fast.to_internal(x)
    h = D // 2
    np.testing.assert_array_equal(inner[..., 0::2], x[..., :h])
    np.testing.assert_array_equal(inner[..., 1::2], x[..., h:])
    back = fast.to_public(inner)
    np.testing.assert_array_equal(back, x)
    assert inner.flags.c_contiguous and back.flags.c_contiguous


@pytest.mark.parametrize("real", ["none", "translation", "diagonal", "linear", "affine"])
def test_real_operators_mixed_with_complex_ones_train_on_the_interleaved_layout(real):
    """The trainer's interleaved layout permutes embedding coordinates; a real operator
    in the mix gets its parameters permuted alike (a matrix as P M P^T), so scores and
    the fused loss are those of PBG's layout, and checkpoints convert back exactly."""
    r = np.random.default_rng(7)
    ops = ["complex_diagonal", real, "rotate"]
    fast = Model(ops, "dot", "softmax", D, 3, fast_layout=True, regularization_coef=0.1)
    pub = Model(ops, "dot", "softmax", D, 3, regularization_coef=0.1)
    assert fast.interleaved and fast.ops[real].name == real
    th = [x + 0.3 * r.standard_normal(x.shape) for x in pub.init_relations(np, np.float64)]
    for x in th:
        x[2, D // 2 :] = 0  # rotate: d/2 phases, the rest padding
    th_in = [fast.to_internal(x, "theta") for x in th]
    for x, y in zip(th, th_in):
        np.testing.assert_array_equal(fast.to_public(y, "theta"), x)
    rel = np.array([0, 1, 2, 1, 0, 1])
    x = r.standard_normal((6, D))
    np.testing.assert_allclose(
        fast.to_public(fast.transform(fast.to_internal(x), rel, th_in[0])),
        pub.transform(x, rel, th[0]),
        rtol=1e-12,
        atol=1e-12,
    )
    lhs, rhs = r.standard_normal((6, D)), r.standard_normal((6, D))
    cand = r.standard_normal((2, 2, D)), r.standard_normal((2, 2, D))
    ids = (np.arange(6), np.arange(6) + 6, r.integers(0, 12, (2, 2)), r.integers(0, 12, (2, 2)))

    def loss(model, conv, ths):
        plan = BatchPlan(model, rel, 3, *ids)
        xs = [conv(lhs), conv(rhs), conv(cand[0]), conv(cand[1]), *ths]
        return float(ChunkedLoss.apply(*[t(v, False) for v in xs], plan=plan).item())

    assert loss(fast, fast.to_internal, th_in) == pytest.approx(loss(pub, lambda v: v, th), rel=1e-10)


# =========================================================================== bias
def _numpy_biased(name, a, b):
    base = {
        "dot": lambda x, y: (x * y).sum(-1),
        "cos": lambda x, y: (x * y).sum(-1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1),
        "squared_l2": lambda x, y: -((x - y) ** 2).sum(-1),
        "l2": lambda x, y: -np.sqrt(((x - y) ** 2).sum(-1)),
    }[name]
    return base(a[..., 1:], b[..., 1:]) + a[..., 0] + b[..., 0]


@pytest.mark.parametrize("name", sorted(COMPARATORS))
def test_biased_comparator_gradients_and_scores(name):
    r = np.random.default_rng(4)
    cmp = Biased(COMPARATORS[name]())
    a, b = r.standard_normal((4, D)), r.standard_normal((4, D))
    assert gradcheck(lambda x, y: _CompareOp.apply(x, y, cmp, False), (t(a), t(b)))
    got = _CompareOp.apply(t(a, False), t(b, False), cmp, False).numpy()
    np.testing.assert_allclose(got, _numpy_biased(name, a, b), rtol=1e-9)
    a3, n3 = r.standard_normal((2, 3, D)), r.standard_normal((2, 4, D))
    assert gradcheck(lambda x, y: _CompareOp.apply(x, y, cmp, True), (t(a3), t(n3)))
    got = _CompareOp.apply(t(a3, False), t(n3, False), cmp, True).numpy()
    want = _numpy_biased(name, a3[:, :, None, :], n3[:, None, :, :])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cmp", ["dot", "cos", "squared_l2"])
def test_fused_loss_gradients_with_bias(cmp):
    r = np.random.default_rng(5)
    model = Model("complex_diagonal", cmp, "softmax", D, 3, bias=True)
    rel = r.integers(0, 3, 6)
    plan = BatchPlan(
        model,
        rel,
        3,
        r.permutation(10)[:6],
        r.permutation(10)[:6],
        r.integers(0, 10, (2, 2)),
        r.integers(0, 10, (2, 2)),
    )
    th = [x + 0.2 * r.standard_normal(x.shape) for x in model.init_relations(np, np.float64)]
    ins = [
        r.standard_normal((6, D)),
        r.standard_normal((6, D)),
        r.standard_normal((2, 2, D)),
        r.standard_normal((2, 2, D)),
        *th,
    ]
    assert gradcheck(lambda *xs: ChunkedLoss.apply(*xs, plan=plan), tuple(t(x) for x in ins))


# =========================================================================== weights
def test_relation_weight_scales_that_relations_edge_losses():
    r = np.random.default_rng(6)
    rel = np.array([0, 1, 0, 1])
    ins = [r.standard_normal((4, D)), r.standard_normal((4, D)), None, None]

    def loss(weights, only=None):
        model = Model("diagonal", "dot", "logistic", D, 2, relation_weights=weights)
        th = model.init_relations(np, np.float64)
        keep = np.arange(4) if only is None else np.flatnonzero(rel == only)
        plan = BatchPlan(model, rel[keep], 1, keep, keep + 4)  # chunks of one: no batch negs
        xs = [t(ins[0][keep], False), t(ins[1][keep], False), None, None, *[t(x, False) for x in th]]
        return float(ChunkedLoss.apply(*xs, plan=plan).item())

    assert loss([1.0, 3.0]) == pytest.approx(loss([1, 1], 0) + 3 * loss([1, 1], 1), rel=1e-12)


# =========================================================================== refusals
def _config(**over):
    raw = {
        "entities": {"a": {"num_partitions": 1}, "b": {"num_partitions": 1}},
        "relations": [{"name": "r", "lhs": "a", "rhs": "a"}],
        "entity_path": "/nowhere/entities",
        "edge_paths": ["/nowhere/edges/train"],
        "checkpoint_path": "/nowhere/ck",
        "dimension": 8,
    }
    raw.update(over)
    return ConfigSchema.from_dict(raw)


def test_per_type_dimension_is_refused_naming_the_key():
    # refused by the config itself, before any workspace or model is looked at
    with pytest.raises(ConfigError, match=r"^entities\.b\.dimension: 16 differs from dimension = 8"):
        _config(entities={"a": {"num_partitions": 1}, "b": {"num_partitions": 1, "dimension": 16}})
    assert _config(entities={"a": {"num_partitions": 1, "dimension": 8}}).entity_dimension("a") == 8


def test_relations_list_not_matching_the_workspace_is_refused():
    ws = SimpleNamespace(relation_names=["x", "y"])
    with pytest.raises(ConfigError, match=r"^relations: the config lists 1 relation types"):
        build_model(_config(), ws)


def test_relations_are_matched_to_the_workspace_by_name():
    cfg = _config(
        relations=[
            {"name": "y", "lhs": "a", "rhs": "a", "operator": "diagonal"},
            {"name": "x", "lhs": "a", "rhs": "a", "operator": "translation"},
        ]
    )
    model = build_model(cfg, SimpleNamespace(relation_names=["x", "y"]))
    assert model.operator_names == ["translation", "diagonal"]


# =========================================================================== end to end
@pytest.fixture(scope="module")
def two_rel(tmp_path_factory):
    """40 entities on a cycle (``next``) and in pairs (``pair``)."""
    root = tmp_path_factory.mktemp("tworel")
    n = 40
    lines = [f"e{i}\tnext\te{(i + 1) % n}" for i in range(n)] + [f"e{i}\tpair\te{i ^ 1}" for i in range(n)]
    (root / "edges.tsv").write_text("\n".join(lines) + "\n")
    assert pbg(["import", str(root / "edges.tsv"), "--out", str(root / "ws")]) == 0
    return root / "ws" / "config.toml"


TWO = [
    "num_epochs=30",
    "dimension=16",
    "batch_size=20",
    "num_batch_negs=10",
    "num_uniform_negs=10",
    "workers=1",
    "relations.0.operator=translation",
    "relations.1.operator=diagonal",
]


def _cfg(cfg_path, name, extra=()):
    ck = cfg_path.parent / name
    shutil.rmtree(ck, ignore_errors=True)
    return load_config(cfg_path, [*TWO, f"checkpoint_path={ck}", *extra])


def test_two_relations_with_different_operators_train_checkpoint_predict_export(two_rel, tmp_path):
    cfg = _cfg(two_rel, "ck_mixed")
    summary = train(cfg, log=lambda m: None)
    assert summary["epochs"] == 30
    ck = Path(cfg.checkpoint_path)
    assert json.loads((ck / "checkpoint.json").read_text())["model"]["operators"] == [
        "translation",
        "diagonal",
    ]
    stats = [json.loads(line) for line in open(ck / "training_stats.jsonl")]
    assert stats[-1]["loss"] < stats[0]["loss"]

    m = ember.pbg.load(two_rel, overrides=[f"checkpoint_path={ck}"])
    assert m.operators == {"next": "translation", "pair": "diagonal"}
    emb = m.embeddings(m.entities())
    params = {(r, s, p): a for r, s, p, a in m.relation_parameters()}
    assert {k: v.shape for k, v in params.items()} == {
        (r, s, p): (16,) for r, p in (("next", "translation"), ("pair", "diagonal")) for s in ("lhs", "rhs")
    }
    # prediction scores each relation with its own operator (dot comparator)
    for rel, apply in (
        ("next", lambda x: x + params["next", "rhs", "translation"]),
        ("pair", lambda x: x * params["pair", "rhs", "diagonal"]),
    ):
        want = apply(emb[m.entities().index("e3")]) @ emb.T
        r = m.predict(head="e3", relation=rel, top_k=5)
        np.testing.assert_allclose(r.scores, np.sort(want)[::-1][:5], rtol=1e-5)
        assert r.names[0] == m.entities()[int(np.argmax(want))]
        got = m.score(["e3"], [rel], ["e4"])[0]
        assert got == pytest.approx(want[m.entities().index("e4")], rel=1e-5)

    out = export(m, "npy", tmp_path / "exp")
    doc = json.loads((Path(out["out"]) / "relations.json").read_text())
    assert doc["operators"] == {"next": "translation", "pair": "diagonal"}
    assert doc["operator"] == "mixed"


def test_bias_model_predictions_agree_with_its_edge_scores(two_rel):
    """With bias = true, `predict` (streamed blocks) ranks by the same biased score as
    `score`: base comparator on coordinates 1.. plus both sides' first coordinate."""
    cfg = _cfg(two_rel, "ck_bias", ["bias=true", "comparator=cos"])
    train(cfg, log=lambda m: None)
    m = ember.pbg.load(two_rel, overrides=[f"checkpoint_path={cfg.checkpoint_path}"])
    r = m.predict(head="e5", relation="next", top_k=40)
    got = m.score(["e5"] * len(r.names), ["next"] * len(r.names), r.names)
    np.testing.assert_allclose(r.scores, got, rtol=1e-5, atol=1e-6)
    emb = m.embeddings(["e5", r.names[0]])
    a = emb[0] + dict(((n, s, p), x) for n, s, p, x in m.relation_parameters())["next", "rhs", "translation"]
    b = emb[1]
    cos = a[1:] @ b[1:] / np.linalg.norm(a[1:]) / np.linalg.norm(b[1:])
    assert r.scores[0] == pytest.approx(cos + a[0] + b[0], rel=1e-5)


def test_resuming_with_a_different_operator_is_refused_naming_it(two_rel):
    cfg = _cfg(two_rel, "ck_refuse", ["num_epochs=1"])
    train(cfg, log=lambda m: None)
    other = load_config(
        two_rel, [*TWO, f"checkpoint_path={cfg.checkpoint_path}", "relations.1.operator=complex_diagonal"]
    )
    with pytest.raises(
        UserError,
        match=r"relation 1 \(relations\.1\.operator\) is "
        "'diagonal' in the checkpoint, 'complex_diagonal'",
    ):
        Trainer(other, log=lambda m: None)


def test_all_negs_batches_rank_against_every_entity_of_the_partition(two_rel, monkeypatch):
    """Without reciprocal mode, the edges of an all_negs relation are trained in batches
    of their own, one chunk whose candidates are all the partition's entities; the other
    relation keeps sampled chunked negatives."""
    seen = []
    real = batch_mod.BatchPlan

    def spy(model, rel, chunk, lhs, rhs, cl=None, cr=None, batch_negs=True, **kw):
        seen.append((set(rel.tolist()), len(rel), chunk, None if cr is None else cr.shape, batch_negs))
        return real(model, rel, chunk, lhs, rhs, cl, cr, batch_negs=batch_negs, **kw)

    monkeypatch.setattr(batch_mod, "BatchPlan", spy)
    cfg = _cfg(two_rel, "ck_allnegs", ["num_epochs=2", "relations.1.all_negs=true"])
    train(cfg, log=lambda m: None)
    pair = [s for s in seen if s[0] == {1}]
    nxt = [s for s in seen if s[0] == {0}]
    assert pair and nxt and len(pair) + len(nxt) == len(seen)  # never mixed in a batch
    assert all(n == chunk and cand == (1, 40) and not bn for _, n, chunk, cand, bn in pair)
    assert all(chunk == 10 and cand[1] == 10 and bn for _, n, chunk, cand, bn in nxt)


# =========================================================================== Kinships
@pytest.fixture(scope="module")
def kin(tmp_path_factory):
    out = tmp_path_factory.mktemp("kinrel") / "ws"
    assert (
        pbg(
            [
                "import",
                str(KIN / "train.tsv.gz"),
                "--valid",
                str(KIN / "valid.tsv.gz"),
                "--test",
                str(KIN / "test.tsv.gz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out / "config.toml"


FAST = ["num_epochs=25", "dimension=64", "batch_size=500", "workers=1"]


@pytest.mark.parametrize(
    "extra, floor",
    [
        # measured 0.65 (13 of 25 relations DistMult, the rest ComplEx): DistMult is
        # symmetric and Kinships is not, so below all-ComplEx (0.75) but far above the floor
        ([f"relations.{i}.operator=diagonal" for i in range(0, 25, 2)], 0.55),
        (["bias=true"], 0.6),  # measured 0.78
        ([f"relations.{i}.all_negs=true" for i in range(0, 25, 2)], 0.6),  # measured 0.77
    ],
)
def test_kinships_quality_with_mixed_operators_bias_and_all_negs(kin, extra, floor):
    ck = kin.parent / f"ck_{abs(hash(tuple(extra)))}"
    shutil.rmtree(ck, ignore_errors=True)
    cfg = load_config(kin, [*FAST, f"checkpoint_path={ck}", *extra])
    train(cfg, log=lambda m: None)
    m = evaluate(cfg)
    assert m["mrr"] > floor >= 5 * TRIVIAL_FLOOR - 1e-9  # well above the trivial floor
