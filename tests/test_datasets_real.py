"""The bundled real graphs are complete, readable and keep their licence notices."""

import gzip

import pytest

from ember.datasets import real_graph, real_graph_names
from ember.errors import UserError


@pytest.mark.parametrize("name", real_graph_names())
def test_bundled_graph_has_splits_matching_its_stats(name):
    g = real_graph(name)
    stats = g.stats
    for split in ("train", "valid", "test"):
        with gzip.open(getattr(g, split), "rt") as f:
            lines = f.read().splitlines()
        assert len(lines) == stats[split]
        assert all(len(line.split("\t")) == 3 for line in lines)
    assert (g.folder / "README.md").exists()


def test_wordnet_ships_names_for_every_entity_and_its_notice():
    g = real_graph("wordnet_k3")
    names = g.names()
    assert len(names) == g.stats["entities"]
    assert any(n == "dog.n" for n, _ in names.values())
    assert "Princeton" in (g.folder / "WORDNET-COPYRIGHT").read_text()


def test_unknown_bundled_graph_is_a_user_error():
    with pytest.raises(UserError, match="unknown bundled graph 'fb15k'"):
        real_graph("fb15k")
