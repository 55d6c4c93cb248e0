"""`pbg quickstart`: the whole pipeline on a bundled real graph beats the trivial baseline."""

from __future__ import annotations

import re

from ember.cli.main import main
from ember.datasets import real_graph


def _mrr(out: str) -> float:
    m = re.search(r"MRR (\d\.\d+)\s+Hits@10 (\d\.\d+)", out)
    assert m, out
    return float(m.group(1))


def test_quickstart_on_kinships_beats_the_trivial_baseline(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--graph", "kinships", "--epochs", "10"]) == 0
    out = capsys.readouterr().out
    assert _mrr(out) > 2 * real_graph("kinships").trivial_mrr
    ws = tmp_path / "kinships_pbg"
    assert (ws / "exports" / "parquet" / "entities_all.parquet").is_file()
    assert "5. predict" in out and "pbg predict" in out
    # a second run in the same folder starts over instead of failing
    assert main(["quickstart", "--out", str(tmp_path), "--graph", "nations", "--epochs", "2"]) == 0
    assert "MRR" in capsys.readouterr().out


def test_quickstart_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "kinships_pbg").mkdir()
    (tmp_path / "kinships_pbg" / "mine.txt").write_text("keep me")
    assert main(["quickstart", "--out", str(tmp_path), "--graph", "kinships"]) == 2
    assert capsys.readouterr().err.startswith("error:")
    assert (tmp_path / "kinships_pbg" / "mine.txt").read_text() == "keep me"


def test_quickstart_on_wordnet_prints_readable_hypernyms_of_dog(tmp_path, capsys):
    # about 10 s here: one reciprocal epoch already reaches MRR ~0.3 (trivial baseline 0.011)
    assert main(["quickstart", "--out", str(tmp_path), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert _mrr(out) > 5 * real_graph("wordnet_k3").trivial_mrr
    assert "dog.n (n02084071)  _hypernym  ?" in out
