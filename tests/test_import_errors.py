"""Bad input to `pbg import`: one `error: FILE:LINE: what` line, exit 2, nothing left."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_import_helpers import pbg, workspace_edges

from ember.partitioning import Workspace


def _fails(capsys, tmp_path, src, *args, code=2):
    """Run an import expected to fail; returns stderr; checks nothing was left behind."""
    before = sorted(os.listdir(tmp_path))
    assert pbg("import", src, "--out", tmp_path / "ws", *args) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert sorted(os.listdir(tmp_path)) == before, "a workspace (or its staging) was left"
    return captured.err


CASES = [
    ("fewer columns", b"a\tr\tb\nc\td\n", 2, "expected 3 columns, found 2"),
    ("more columns", b"a\tr\tb\nc\tr\td\te\n", 2, "expected 3 columns, found 4"),
    ("empty lhs", b"a\tr\tb\n\tr\tc\n", 2, "empty name in column 0 (lhs)"),
    ("empty rel", b"a\tr\tb\nb\t\tc\n", 2, "empty name in column 1 (rel)"),
    ("empty rhs", b"a\tr\tb\nb\tr\t\n", 2, "empty name in column 2 (rhs)"),
    ("bad utf8", b"a\tr\tb\nc\xff\tr\td\n", 2, "not valid UTF-8 (byte 0xff at position 2)"),
    ("bad utf8 first line", b"\xfe\tr\tb\n", 1, "not valid UTF-8 (byte 0xfe at position 1)"),
    (
        "lines counted with comments and blanks",
        b"# hi\n\na\tr\tb\n# x\tmore\n\nq\tw\n",
        6,
        "expected 3 columns, found 2",
    ),
]


@pytest.mark.parametrize("name,data,line,msg", CASES, ids=[c[0] for c in CASES])
def test_bad_line_stops_the_import_naming_file_and_line(tmp_path, capsys, name, data, line, msg):
    src = tmp_path / "e.tsv"
    src.write_bytes(data)
    assert _fails(capsys, tmp_path, src) == f"error: {src}:{line}: {msg}\n"


def test_bad_line_far_into_a_large_compressed_file(tmp_path, capsys):
    good = "".join(f"e{i}\tr{i % 5}\te{(i * 31) % 1000}\n" for i in range(300_000))
    src = tmp_path / "big.tsv.gz"
    src.write_bytes(gzip.compress((good + "oops\tx\n" + good[:200]).encode(), 1))
    err = _fails(capsys, tmp_path, src)
    assert err == f"error: {src}:300001: expected 3 columns, found 2\n"


def test_empty_and_missing_files(tmp_path, capsys):
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    assert _fails(capsys, tmp_path, empty) == f"error: {empty}: file is empty\n"
    only = tmp_path / "comments.tsv"
    only.write_text("# nothing\n\n")
    assert _fails(capsys, tmp_path, only) == (
        f"error: {only}: file is empty (only comments or blank lines)\n"
    )
    missing = tmp_path / "nope.tsv"
    assert _fails(capsys, tmp_path, missing) == f"error: {missing}: no such file\n"
    gz = tmp_path / "empty.tsv.gz"
    gz.write_bytes(gzip.compress(b""))
    assert _fails(capsys, tmp_path, gz) == f"error: {gz}: file is empty\n"


def test_weight_that_is_not_a_number(tmp_path, capsys):
    src = tmp_path / "w.tsv"
    src.write_text("a\tr\tb\t1.5\nb\tr\tc\tabc\n")
    assert _fails(capsys, tmp_path, src, "--weight-col", "3") == (
        f"error: {src}:2: weight 'abc' is not a number\n"
    )


def test_relation_missing_from_the_config(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[entities]\nn = {num_partitions = 1}\n[[relations]]\nname = "likes"\nlhs = "n"\nrhs = "n"\n'
    )
    src = tmp_path / "e.tsv"
    src.write_text("a\tlikes\tb\nb\thates\tc\n")
    assert _fails(capsys, tmp_path, src, "--config", cfg) == (
        f"error: {src}:2: unknown relation 'hates' (the config lists: likes)\n"
    )


def test_bad_config_names_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[entities]\nn = {num_partitions = 1}\n[[relations]]\nname = "likes"\nlhs = "n"\nrhs = "m"\n'
    )
    src = tmp_path / "e.tsv"
    src.write_text("a\tlikes\tb\n")
    assert _fails(capsys, tmp_path, src, "--config", cfg) == (
        f"error: {cfg}: key 'relations[0].rhs': unknown entity type 'm'\n"
    )


def test_parquet_row_with_an_empty_name(tmp_path, capsys):
    src = tmp_path / "e.parquet"
    pq.write_table(pa.table({"h": ["a", "b", None], "r": ["x", "x", "x"], "t": ["b", "c", "a"]}), src)
    assert _fails(capsys, tmp_path, src) == f"error: {src}:3: empty name in column 0 (lhs)\n"


def test_usage_mistakes(tmp_path, capsys):
    src = tmp_path / "e.tsv"
    src.write_text("a\tr\tb\n")
    assert _fails(capsys, tmp_path, src, "--columns", "0,x") == (
        "error: --columns '0,x': give comma-separated column numbers, e.g. 0,1,2\n"
    )
    assert _fails(capsys, tmp_path, src, "--columns", "0,1,5") == (
        f"error: {src}:1: expected at least 6 columns, found 3\n"
    )
    assert _fails(capsys, tmp_path, src, "--valid-fraction", "0.7", "--test-fraction", "0.4") == (
        "error: --valid-fraction and --test-fraction must be >= 0 and sum below 1\n"
    )


def test_skip_bad_lines_counts_them_and_keeps_them_in_the_workspace(tmp_path, capsys):
    src = tmp_path / "e.tsv"
    src.write_bytes(b"a\tr\tb\nshort\tline\n\tr\tc\nb\tr\tc\nc\xff\tr\td\nc\tr\ta\n")
    out = tmp_path / "ws"
    assert pbg("import", src, "--out", out, "--skip-bad-lines", "--json") == 0
    s = json.loads(capsys.readouterr().out)
    assert s["bad_lines"] == 3 and s["edges"]["train"] == 3
    rejected = (out / s["rejected_lines_file"]).read_text(encoding="utf-8").splitlines()
    assert sorted(rejected) == sorted(["short\tline", "\tr\tc", "c\ufffd\tr\td"])
    assert set(workspace_edges(Workspace.open(out))) == {("a", "r", "b"), ("b", "r", "c"), ("c", "r", "a")}


def test_skip_bad_lines_with_nothing_left(tmp_path, capsys):
    src = tmp_path / "e.tsv"
    src.write_text("\ta\tb\n\tc\td\n")
    assert _fails(capsys, tmp_path, src, "--skip-bad-lines") == (
        f"error: {src}: no edges (every line was rejected)\n"
    )
