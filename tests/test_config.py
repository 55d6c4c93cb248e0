"""The config schema (`ember.pbg.config`): loading, overrides, validation, writing."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from pathlib import Path

import pytest

from ember.errors import ConfigError
from ember.pbg.config import (
    ConfigSchema,
    EntitySchema,
    RelationSchema,
    describe,
    dump_toml,
    load_config,
    parse_config,
    schema_fields,
)

BASE = {
    "entities": {"user": {"num_partitions": 4}, "item": {"num_partitions": 1}},
    "relations": [
        {"name": "buys", "lhs": "user", "rhs": "item", "operator": "complex_diagonal"},
        {
            "name": "follows",
            "lhs": "user",
            "rhs": "user",
            "operator": "translation",
            "weight": 0.5,
            "all_negs": True,
        },
    ],
    "entity_path": "data",
    "edge_paths": ["data/train", "data/valid"],
    "checkpoint_path": "model",
    "dimension": 100,
    "comparator": "dot",
    "loss_fn": "softmax",
    "lr": 0.1,
    "num_epochs": 10,
}


def config(**changes):
    raw = json.loads(json.dumps(BASE))
    raw.update(changes)
    return raw


def error_of(raw, overrides=()):
    with pytest.raises(ConfigError) as e:
        parse_config(raw, overrides)
    return str(e.value)


# ----------------------------------------------------------------------- loading
def test_toml_json_and_pbg_python_configs_load_to_equal_schemas(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(BASE))
    (tmp_path / "c.toml").write_text(
        textwrap.dedent("""
        entity_path = "data"
        edge_paths = ["data/train", "data/valid"]
        checkpoint_path = "model"
        dimension = 100
        comparator = "dot"
        loss_fn = "softmax"
        lr = 0.1
        num_epochs = 10
        [entities.user]
        num_partitions = 4
        [entities.item]
        num_partitions = 1
        [[relations]]
        name = "buys"
        lhs = "user"
        rhs = "item"
        operator = "complex_diagonal"
        [[relations]]
        name = "follows"
        lhs = "user"
        rhs = "user"
        operator = "translation"
        weight = 0.5
        all_negs = true
    """)
    )
    (tmp_path / "c.py").write_text(
        textwrap.dedent(f"""
        import os  # a PBG config is a module; it may import things

        def get_torchbiggraph_config():
            config = dict({BASE!r})
            return config
    """)
    )
    a, b, c = (load_config(tmp_path / n) for n in ("c.toml", "c.json", "c.py"))
    assert a == b == c
    assert a.entity_path == str(tmp_path / "data")  # relative to the config's folder
    assert a.edge_paths == [str(tmp_path / "data" / "train"), str(tmp_path / "data" / "valid")]
    assert a.relations[1] == RelationSchema(
        name="follows",
        lhs="user",
        rhs="user",
        operator="translation",
        weight=0.5,
        all_negs=True,
    )


def test_the_pbg_baseline_template_loads(tmp_path, monkeypatch):
    # A real PyTorch-BigGraph config, with PBG-only keys (hogwild_delay, ...).
    # ../shared beside the checkout (absent in a plain clone: then skipped)
    template = str(Path(__file__).resolve().parents[2] / "shared/pbg-baseline/pbg_config_template.py")
    if not os.path.exists(template):
        pytest.skip("pbg-baseline not available")
    monkeypatch.setenv("PBG_WORK", str(tmp_path))
    c = load_config(template)
    assert c.dynamic_relations and c.relations[0].operator == "complex_diagonal"
    assert c.dimension == 100 and c.hogwild_delay == 2.0


def test_python_config_without_the_function_is_refused(tmp_path):
    (tmp_path / "c.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="get_torchbiggraph_config"):
        load_config(tmp_path / "c.py")


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("dimension = = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "bad.json").write_text("{\n  'x': 1}")
    with pytest.raises(ConfigError, match=r"bad\.json:2: invalid JSON"):
        load_config(tmp_path / "bad.json")


def test_file_errors_name_file_and_key(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(config(dimensoin=3)))
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "c.json")
    assert str(e.value).startswith(str(tmp_path / "c.json") + ": ")
    assert "'dimensoin'" in str(e.value)


def test_urls_are_not_resolved(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(config(checkpoint_path="s3://bucket/model")))
    assert load_config(tmp_path / "c.json").checkpoint_path == "s3://bucket/model"


# ----------------------------------------------------------------------- overrides
def test_overrides_scalar_nested_list_index_and_comma_lists(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(BASE))
    c = load_config(
        tmp_path / "c.json",
        overrides=[
            "dimension=200",
            "lr=1e-3",
            "global_emb=false",
            "relations.1.operator=diagonal",
            "relations.0.all_negs=true",
            "entities.user.num_partitions=8",
            "entities.tag.num_partitions=1",
            "comparator=l2",
            'loss_fn="ranking"',
            "edge_paths=/x/train,/x/test",
            "max_norm=1",
        ],
    )
    assert c.dimension == 200 and c.lr == 1e-3 and c.global_emb is False
    assert c.relations[1].operator == "diagonal" and c.relations[0].all_negs is True
    assert c.entities["user"].num_partitions == 8 and "tag" in c.entities
    assert c.comparator == "l2" and c.loss_fn == "ranking"
    assert c.edge_paths == ["/x/train", "/x/test"]
    assert c.max_norm == 1.0 and isinstance(c.max_norm, float)


def test_override_paths_are_relative_to_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "c.json").write_text(json.dumps(BASE))
    monkeypatch.chdir(tmp_path)
    c = load_config(tmp_path / "conf" / "c.json", overrides=["checkpoint_path=out"])
    assert c.checkpoint_path == str(tmp_path / "out")
    assert c.entity_path == str(tmp_path / "conf" / "data")


@pytest.mark.parametrize(
    "override, words",
    [
        ("dimension", "expected key=value"),
        ("relations.5.operator=none", "relations.5 is out of range"),
        ("relations.x.operator=none", "relations.x indexes a list"),
        ("dimensoin=3", "did you mean 'dimension'"),
        ("entites.user.num_partitions=3", "did you mean 'entities'"),
        ("dimension=abc", "dimension: must be an integer"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, words):
    assert words in error_of(config(), [override])


# ----------------------------------------------------------------------- validation
def test_unknown_keys_suggest_the_closest_name():
    msg = error_of(config(dimensoin=100))
    assert "unknown key 'dimensoin'" in msg and "did you mean 'dimension'" in msg
    raw = config()
    raw["relations"][0]["operater"] = "none"
    msg = error_of(raw)
    assert msg.startswith("relations.0: unknown key 'operater'") and "'operator'" in msg
    raw = config()
    raw["entities"]["user"]["num_partition"] = 2
    assert "entities.user: unknown key 'num_partition'; did you mean 'num_partitions'" in (error_of(raw))
    assert "did you mean" not in error_of(config(zzzzzz=1))


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"dimension": 0}, "dimension: must be >= 1"),
        ({"dimension": 10.5}, "dimension: must be an integer"),
        ({"dimension": True}, "dimension: must be an integer"),
        ({"lr": 0}, "lr: must be > 0.0"),
        ({"lr": "fast"}, "lr: must be a number"),
        ({"relation_lr": -1.0}, "relation_lr: must be > 0.0"),
        ({"init_scale": 0}, "init_scale: must be > 0.0"),
        ({"max_norm": 0}, "max_norm: must be > 0.0"),
        ({"eval_fraction": 1.0}, "eval_fraction: must be < 1.0"),
        ({"eval_fraction": -0.1}, "eval_fraction: must be >= 0.0"),
        ({"num_epochs": -1}, "num_epochs: must be >= 0"),
        ({"batch_size": 0}, "batch_size: must be >= 1"),
        ({"num_uniform_negs": -5}, "num_uniform_negs: must be >= 0"),
        ({"margin": -1}, "margin: must be >= 0.0"),
        ({"workers": 0}, "workers: must be >= 1"),
        ({"global_emb": "yes"}, "global_emb: must be a boolean"),
        ({"comparator": "cosine"}, "comparator: 'cosine' is not one of"),
        ({"loss_fn": "hinge"}, "loss_fn: 'hinge' is not one of"),
        ({"bucket_order": "inside-out"}, "bucket_order: 'inside-out' is not one of"),
        ({"regularizer": "N2"}, "regularizer: 'N2' is not one of"),
        ({"dtype": "float64"}, "dtype: 'float64' is not one of"),
        ({"device": "gpu"}, "device: must be"),
        ({"edge_paths": "data/train"}, "edge_paths: must be a list of strings"),
        ({"edge_paths": []}, "edge_paths: must name at least one folder"),
        ({"entity_path": None}, "entity_path: must be a string"),
        ({"entities": {}}, "entities: must define at least one entity type"),
        ({"entities": []}, "entities: must be a table"),
        ({"relations": []}, "relations: must define at least one relation type"),
        ({"checkpoint_preservation_interval": 0}, "checkpoint_preservation_interval: must be"),
        ({"num_machines": 0}, "num_machines: must be >= 1, got 0"),
        (
            {"num_partition_servers": 2},
            "num_partition_servers: 2: Ember's trainers are its partition servers",
        ),
        (
            {"distributed_init_method": "env://"},
            "distributed_init_method: 'env://': Ember's ranks are connected",
        ),
        ({"num_gpus": 1}, "num_gpus: not used by Ember"),
        ({"half_precision": True}, "half_precision: not used by Ember"),
    ],
)
def test_wrong_types_and_ranges_name_the_key(changes, key):
    assert error_of(config(**changes)).startswith(key)


def test_choice_errors_suggest_a_value():
    assert "did you mean 'inside_out'" in error_of(config(bucket_order="inside-out"))


def test_missing_required_keys_are_named():
    for name in (
        "entities",
        "relations",
        "entity_path",
        "edge_paths",
        "checkpoint_path",
        "dimension",
    ):
        raw = config()
        del raw[name]
        assert error_of(raw).startswith(f"{name}: missing required key")
    raw = config()
    del raw["relations"][0]["lhs"]
    assert error_of(raw).startswith("relations.0.lhs: missing required key")


def test_nested_type_errors_name_the_nested_key():
    raw = config()
    raw["relations"][1]["operator"] = "transe"
    assert error_of(raw).startswith("relations.1.operator: 'transe' is not one of")
    raw = config()
    raw["relations"][0]["weight"] = 0
    assert error_of(raw).startswith("relations.0.weight: must be > 0.0")
    raw = config()
    raw["entities"]["user"]["num_partitions"] = 0
    assert error_of(raw).startswith("entities.user.num_partitions: must be >= 1")
    raw = config()
    raw["relations"][0] = "buys"
    assert error_of(raw).startswith("relations.0: must be a table")


def test_relations_must_use_defined_entity_types():
    raw = config()
    raw["relations"][1]["rhs"] = "usr"
    msg = error_of(raw)
    assert msg.startswith("relations.1.rhs: entity type 'usr'")
    assert "'user', 'item'" in msg


def test_a_featurized_type_is_accepted_unpartitioned_and_refused_partitioned_with_the_reason():
    raw = config()
    raw["entities"]["item"]["featurized"] = True
    assert parse_config(raw).entities["item"].featurized is True
    raw["entities"]["item"]["num_partitions"] = 4
    msg = error_of(raw)
    assert msg.startswith("entities.item.featurized: a featurized entity type is not partitioned")
    assert "would have to live in both" in msg and "set num_partitions = 1" in msg


def test_a_per_type_dimension_is_refused_with_the_exact_reason():
    raw = config()
    raw["entities"]["item"]["dimension"] = 50
    msg = error_of(raw)
    assert msg.startswith("entities.item.dimension: 50 differs from dimension = 100")
    assert "operators are square" in msg and "set it to 100 or remove it" in msg
    raw["entities"]["item"]["dimension"] = 100  # the same value is fine
    assert parse_config(raw).entity_dimension("item") == 100


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"dynamic_relations": True}, "dynamic_relations: "),
        ({"disable_lhs_negs": True, "disable_rhs_negs": True}, "disable_rhs_negs: "),
        ({"batch_size": 10, "num_batch_negs": 50}, "num_batch_negs: "),
        ({"regularization_coef": 0.1, "regularizer": "none"}, "regularization_coef: "),
        ({"dimension": 101}, "relations.0.operator: 'complex_diagonal'"),
    ],
)
def test_impossible_combinations_name_the_key(changes, key):
    assert error_of(config(**changes)).startswith(key)


def test_mismatched_partition_counts_and_dimensions_are_refused():
    raw = config()
    raw["entities"]["item"]["num_partitions"] = 2
    assert error_of(raw).startswith(
        "entities.item.num_partitions: 2 differs from entities.user.num_partitions = 4"
    )
    raw = config()
    raw["entities"]["item"]["dimension"] = 50
    assert error_of(raw).startswith("entities.item.dimension: 50 differs from dimension = 100")


def test_rotate_needs_an_even_dimension_too():
    raw = config(dimension=99)
    raw["relations"][0]["operator"] = "rotate"
    assert error_of(raw).startswith("relations.0.operator: 'rotate'")


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="^dimension: must be >= 1"):
        ConfigSchema(
            entities={"a": EntitySchema()},
            relations=[RelationSchema(name="r", lhs="a", rhs="a")],
            entity_path="e",
            edge_paths=["p"],
            checkpoint_path="c",
            dimension=0,
        )


# ----------------------------------------------------------------------- defaults, docs
PBG_DEFAULTS = dict(
    init_scale=1e-3,
    max_norm=None,
    global_emb=True,
    comparator="cos",
    bias=False,
    loss_fn="ranking",
    margin=0.1,
    init_path=None,
    checkpoint_preservation_interval=None,
    num_epochs=1,
    num_edge_chunks=None,
    max_edges_per_chunk=1_000_000_000,
    bucket_order="inside_out",
    workers=None,
    batch_size=1000,
    num_batch_negs=50,
    num_uniform_negs=50,
    disable_lhs_negs=False,
    disable_rhs_negs=False,
    lr=1e-2,
    relation_lr=None,
    eval_fraction=0.05,
    eval_num_batch_negs=1000,
    eval_num_uniform_negs=1000,
    verbose=0,
    hogwild_delay=2.0,
    dynamic_relations=False,
    regularization_coef=0.0,
    regularizer="N3",
)


def test_defaults_are_pytorch_biggraphs():
    minimal = {
        k: BASE[k]
        for k in (
            "entities",
            "relations",
            "entity_path",
            "edge_paths",
            "checkpoint_path",
            "dimension",
        )
    }
    c = parse_config(minimal)
    for name, value in PBG_DEFAULTS.items():
        assert getattr(c, name) == value, name
    assert (c.device, c.dtype, c.reciprocal, c.seed) == ("cpu", "float32", False, 0)
    rel = parse_config(minimal).relations[0]
    assert (RelationSchema(name="x", lhs="user", rhs="user").operator, rel.weight) == ("none", 1.0)
    assert EntitySchema().num_partitions == 1 and EntitySchema().featurized is False


def test_every_key_is_documented_with_type_and_default():
    text = describe()
    for cls, prefix in (
        (ConfigSchema, ""),
        (EntitySchema, "entities.<type>."),
        (RelationSchema, "relations[i]."),
    ):
        for f in schema_fields(cls):
            assert len(f.metadata["doc"]) > 10, f.name
            default = f.default
            if default is dataclasses.MISSING:
                shown = "(required)"
            elif default is None:
                shown = "unset"
            elif isinstance(default, bool):
                shown = str(default).lower()
            elif isinstance(default, str):
                shown = json.dumps(default)
            else:
                shown = repr(default)
            assert f"{prefix}{f.name}  (" in text, f.name
            line = next(ln for ln in text.splitlines() if ln.startswith(f"{prefix}{f.name}  ("))
            assert f"default {shown}" in line, line


def test_importer_keys_are_accepted(tmp_path):
    # The keys `pbg import` writes into a workspace's config.toml.
    text = textwrap.dedent("""
        dynamic_relations = true
        entity_path = "entities"
        edge_paths = ["edges/train"]
        checkpoint_path = "checkpoints"
        dimension = 200
        init_scale = 0.001
        comparator = "dot"
        loss_fn = "softmax"
        margin = 0.1
        lr = 0.1
        relation_lr = 0.01
        num_epochs = 10
        batch_size = 1000
        num_batch_negs = 50
        num_uniform_negs = 50
        bucket_order = "inside_out"
        regularization_coef = 0.0
        eval_fraction = 0.0
        workers = 2
        seed = 0
        [entities.all]
        num_partitions = 4
        [[relations]]
        name = "all_edges"
        lhs = "all"
        rhs = "all"
        operator = "complex_diagonal"
    """)
    (tmp_path / "config.toml").write_text(text)
    c = load_config(tmp_path / "config.toml")
    assert c.entities["all"].num_partitions == 4 and c.workers == 2
    assert c.edge_paths == [str(tmp_path / "edges" / "train")]


# ----------------------------------------------------------------------- writing
def test_dump_toml_round_trips_and_is_commented(tmp_path):
    raw = config(max_norm=2.5, init_path="init", relation_lr=None, hogwild_delay=0.0)
    raw["entities"]["odd name"] = {"num_partitions": 1, "dimension": 100}
    (tmp_path / "c.json").write_text(json.dumps(raw))
    c = load_config(tmp_path / "c.json")
    text = dump_toml(c, header="made by a test", relative_to=str(tmp_path))
    assert text.startswith("# made by a test\n")
    assert 'entity_path = "data"' in text  # relative to the config's folder
    assert "# Dimension of the embeddings.\ndimension = 100\n" in text
    assert "# relation_lr =   (unset)" in text and "hogwild_delay = 0.0" in text
    assert "num_machines" not in text  # PBG compatibility keys only when not default
    top_level = text.split("\n[")[0]  # keys before the first table
    order = [ln.split(" =")[0] for ln in top_level.splitlines() if " = " in ln and ln[0] != "#"]
    # schema order, the graph structure last (with its tables)
    names = [f.name for f in schema_fields(ConfigSchema) if f.metadata["group"] != "Graph structure"]
    top = [k for k in order if k in names]
    assert top == sorted(top, key=names.index) and order[-1] == "dynamic_relations"
    (tmp_path / "out.toml").write_text(text)
    assert load_config(tmp_path / "out.toml") == c


def test_to_dict_is_plain_and_complete():
    c = parse_config(config())
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {f.name for f in schema_fields(ConfigSchema)}
    assert d["relations"][0]["operator"] == "complex_diagonal"
    assert d["entities"]["user"] == {"num_partitions": 4, "featurized": False, "dimension": None}
    assert parse_config(d) == c


def test_unset_eval_negatives_are_written_as_the_training_value(tmp_path):
    c = parse_config(config(eval_num_batch_negs=None, num_batch_negs=20))
    (tmp_path / "c.toml").write_text(dump_toml(c))
    assert load_config(tmp_path / "c.toml").eval_num_batch_negs == 20
