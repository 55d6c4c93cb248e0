"""`pbg report`: one self-contained HTML page whose numbers are the training stats' and
the evaluation's; a slow test renders it in real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ember.cli.main import main
from ember.pbg import report as report_mod
from ember.pbg.api import EmbeddingModel
from ember.pbg.checkpoint import STATS
from ember.pbg.config import load_config
from ember.pbg.eval import evaluate
from ember.pbg.train import train
from tests.graphs import typed_workspace

_VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "wbr"}


class _Page(HTMLParser):
    """Checks that every element is closed in order, and collects what the tests read."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags = [], [], []
        self.sections, self.charts, self.scripts, self.attrs = [], {}, [], []
        self.tables: dict[str, list[list[str]]] = {}
        self._table = self._cell = None
        self._script = None

    # (a self-closing <tag/> comes through handle_startendtag: start, then end)
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "svg":
            self.charts[a["data-chart"]] = self.charts.get(a["data-chart"], 0) + 1
        if tag == "polyline" and a.get("class") == "series":
            self.charts.setdefault("polyline", []).append(a["points"].split())
        if tag == "script":
            self._script = [a.get("type"), ""]
        if tag == "table":
            self._table = a.get("class")
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self.tables[self._table].append([])
        if tag in ("td", "th"):
            self._cell = ""
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "script":
            self.scripts.append(tuple(self._script))
            self._script = None
        if tag in ("td", "th"):
            self.tables[self._table][-1].append(self._cell)
            self._cell = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._script is not None:
            self._script[1] += data
        if self._cell is not None:
            self._cell += data


def _parse(path) -> _Page:
    text = Path(path).read_text(encoding="utf-8")
    p = _Page()
    p.feed(text)
    p.close()
    assert text.startswith("<!DOCTYPE html>")
    assert not p.errors and p.stack == [], (p.errors, p.stack)
    return p


def _data(page: _Page) -> dict:
    (blob,) = [s for t, s in page.scripts if t == "application/json"]
    return json.loads(blob)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    path = typed_workspace(d, seed=3, dimension=8, split=0.1)
    c = load_config(path, overrides=["num_epochs=3", "eval_fraction=0.1", "workers=1"])
    train(c, progress=False, log=lambda m: None)
    return c


@pytest.fixture(scope="module")
def page(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "report.html"
    summary = report_mod.report(EmbeddingModel(cfg), out, sample=150)
    return out, summary


def _stats(cfg):
    lines = (Path(cfg.checkpoint_path) / STATS).read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def test_page_has_every_section_and_chart(page):
    out, summary = page
    p = _parse(out)
    assert p.sections == ["model", "training", "epoch-mrr", "eval", "map"]
    assert {k: v for k, v in p.charts.items() if k != "polyline"} == {
        "loss": 1,
        "pos_score": 1,
        "epoch_mrr": 1,
        "eval_bars": 1,
        "pca": 1,
    }
    assert summary["out"] == str(out) and summary["map_points"] == p.tags.count("circle") - 3 * 2
    assert not list(out.parent.glob(".*tmp*"))


def test_training_curves_are_the_stats_file(cfg, page):
    out, summary = page
    rows = _stats(cfg)
    d = _data(_parse(out))
    assert summary["buckets"] == len(rows) == len(d["training"]["loss"])
    np.testing.assert_allclose(d["training"]["loss"], [r["loss"] for r in rows])
    np.testing.assert_allclose(d["training"]["pos_score_rhs"], [r["pos_score_rhs"] for r in rows])
    np.testing.assert_allclose(d["training"]["pos_score_lhs"], [r["pos_score_lhs"] for r in rows])
    loss_line, rhs_line, lhs_line = _parse(out).charts["polyline"][:3]
    assert len(loss_line) == len(rhs_line) == len(lhs_line) == len(rows)
    # the loss curve goes down where the losses do (SVG y grows downwards)
    ys = [float(pt.split(",")[1]) for pt in loss_line]
    losses = [r["loss"] for r in rows]
    assert np.sign(ys[-1] - ys[0]) == -np.sign(losses[-1] - losses[0])


def test_epoch_mrr_is_the_count_weighted_held_out_mrr(cfg, page):
    out, _ = page
    rows = _stats(cfg)
    p = _parse(out)
    table = p.tables["epoch-mrr"]
    assert table[0] == ["epoch", "MRR before", "MRR after"] and len(table) == 1 + 3
    for epoch, row in enumerate(table[1:]):
        for key, cell in (("eval_before", row[1]), ("eval_after", row[2])):
            ev = [r[key] for r in rows if r["epoch"] == epoch and key in r]
            want = sum(e["mrr"] * e["count"] for e in ev) / sum(e["count"] for e in ev)
            assert cell == f"{want:.4f}"
    assert [e["epoch"] for e in _data(p)["epoch_mrr"]] == [0, 1, 2]


def test_eval_table_is_evaluate_on_the_test_split(cfg, page):
    out, summary = page
    m = evaluate(cfg, split="test")
    table = {row[0]: row for row in _parse(out).tables["eval-metrics"]}
    assert table["relation"][:3] == ["relation", "rankings", "mrr"]
    assert table["overall"][2] == f"{m['mrr']:.4f}" and table["overall"][6] == f"{m['hits@10']:.4f}"
    for rel in ("buys", "follows", "tagged"):
        assert table[rel][1] == str(m["per_relation"][rel]["count"])
        assert table[rel][2] == f"{m['per_relation'][rel]['mrr']:.4f}"
    assert summary["eval"] == {"split": "test", "mrr": m["mrr"]}


def test_page_is_self_contained(page):
    out, _ = page
    text = out.read_text(encoding="utf-8")
    p = _parse(out)
    assert not re.search(r"(https?:)?//[a-z0-9]", text, re.I)  # no URL at all
    assert not {"link", "img", "iframe", "object", "embed", "audio", "video"} & set(p.tags)
    assert not [v for k, v in p.attrs if k in ("src", "href")]
    assert "url(" not in text and "@import" not in text
    assert [t for t, _ in p.scripts] == ["application/json"]  # data only, no code


def test_map_coloured_by_type_and_by_a_label_column(cfg, tmp_path, capsys):
    m = EmbeddingModel(cfg)
    out = tmp_path / "r.html"
    report_mod.report(m, out, run_eval=False, sample=200)
    d = _data(_parse(out))
    assert d["map"]["labels"] == ["item", "tag", "user"] and d["map"]["colour_by"] == "entity type"
    labels = tmp_path / "labels.tsv"
    names = m.entities("user")
    labels.write_text(
        "name\tgroup\tparity\n"
        + "".join(f"{n}\tg{i % 3}\t{'even' if i % 2 else 'odd'}\n" for i, n in enumerate(names))
    )
    code = main(
        [
            "report",
            str(Path(m.workspace.root) / "config.toml"),
            "-p",
            f"checkpoint_path={cfg.checkpoint_path}",
            "--out",
            str(out),
            "--no-eval",
            "--label-file",
            str(labels),
            "--label-col",
            "parity",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("report      ") and str(out) in captured.out
    p = _parse(out)
    d = _data(p)
    assert d["map"]["labels"] == ["(no label)", "even", "odd"]  # items and tags have none
    assert d["eval"] is None and "eval_bars" not in p.charts
    assert "Not evaluated (--no-eval)." in out.read_text()


def test_eval_read_from_a_saved_file(cfg, tmp_path, capsys):
    saved = evaluate(cfg, split="valid")
    saved["per_relation"]["buys"]["mrr"] = 0.123456  # the page shows the file's numbers
    f = tmp_path / "metrics.json"
    f.write_text(json.dumps(saved))
    out = tmp_path / "r.html"
    report_mod.report(EmbeddingModel(cfg), out, eval_file=f, sample=50)
    table = {row[0]: row for row in _parse(out).tables["eval-metrics"]}
    assert table["buys"][2] == "0.1235" and f"read from {f}" in out.read_text()


def _cli(capsys, cfg, *args):
    code = main(["report", *map(str, args), "-p", f"checkpoint_path={cfg.checkpoint_path}"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--no-eval", "--label-col", "x"], "--label-col needs --label-file"),
        (["--eval-file", "m.json", "--no-eval"], "give either --eval-file or --no-eval, not both"),
        (["--eval-file", "nope.json"], "nope.json: no such eval file"),
        (["--no-eval", "--label-file", "nope.tsv"], "nope.tsv: no such label file"),
        (["--no-eval", "--sample", "0"], "--sample must be at least 1, got 0"),
        (["--no-eval", "--out", "/nonexistent/dir/r.html"], "no such folder /nonexistent/dir"),
    ],
)
def test_bad_input_is_one_error_line(cfg, capsys, extra, message):
    config = Path(EmbeddingModel(cfg).workspace.root) / "config.toml"
    code, out, err = _cli(capsys, cfg, config, *extra)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_bad_label_column_names_the_columns(cfg, tmp_path, capsys):
    labels = tmp_path / "l.tsv"
    labels.write_text("name\tkind\nu1\tx\n")
    config = Path(EmbeddingModel(cfg).workspace.root) / "config.toml"
    code, _, err = _cli(capsys, cfg, config, "--no-eval", "--label-file", labels, "--label-col", "colour")
    assert code == 2 and "--label-col 'colour': not a column of" in err and "(columns: name, kind)" in err
    labels.write_text("name\tkind\nu1\n")
    code, _, err = _cli(capsys, cfg, config, "--no-eval", "--label-file", labels)
    assert code == 2 and f"error: {labels}:2: 1 fields, the label is column 2" in err


def test_stats_lines_repeated_by_a_kill_count_once_and_nan_is_null(tmp_path):
    rows = [
        {"epoch": 0, "edge_chunk": 0, "bucket": [0, 0], "loss": 1.0, "version": 1},
        {"epoch": 0, "edge_chunk": 0, "bucket": [0, 1], "loss": 0.5, "version": 2},
        {"epoch": 0, "edge_chunk": 0, "bucket": [0, 1], "loss": 0.5, "version": 2},  # repeated
        {"epoch": 1, "edge_chunk": 0, "bucket": [0, 0], "loss": float("nan"), "version": 3},
    ]
    (tmp_path / STATS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = report_mod.read_stats(tmp_path)
    assert [r["version"] for r in got] == [1, 2, 3]
    assert [r["version"] for r in report_mod.read_stats(tmp_path, max_version=2)] == [1, 2]
    html, data = report_mod._training_section(got)
    assert report_mod._finite(data)["loss"] == [1.0, 0.5, None]
    # the NaN is a gap in the loss curve, not a broken path; no scores, no score curves
    (points,) = re.findall(r'<polyline[^>]*points="([^"]*)"', html)
    assert len(points.split()) == 2 and "NaN" not in html and "loss n/a" in html
    (tmp_path / STATS).write_text('{"epoch": 0}\nnot json\n')
    with pytest.raises(report_mod.InputFileError, match=r"training_stats.jsonl:2: not a JSON line"):
        report_mod.read_stats(tmp_path)


def test_pca_finds_the_direction_of_largest_variance():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6)) * [10, 3, 0.1, 0.1, 0.1, 0.1]
    coords, share = report_mod.pca_2d(x)
    assert share[0] > share[1] > 0.05 and share[0] + share[1] > 0.99
    np.testing.assert_allclose(np.abs(np.corrcoef(coords[:, 0], x[:, 0])[0, 1]), 1, atol=1e-3)


# =========================================================================== browser
def _png_pixels(path):
    """(height, width, 3) uint8 RGB of a PNG (8-bit RGB or RGBA, as Chromium writes)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
            ch = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:  # sub, average, paeth depend on the left pixel: byte by byte
            cur = np.zeros_like(line)
            for i in range(len(line)):
                a = cur[i - ch] if i >= ch else 0
                b, c = prev[i], prev[i - ch] if i >= ch else 0
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                cur[i] = (line[i] + pred) & 255
        out[y], prev = cur, cur
    return out.reshape(h, w, ch)[:, :, :3].astype(np.uint8)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no chromium (apt-get install -y chromium)")
def test_page_renders_in_headless_chromium(page, tmp_path):
    out, _ = page
    shot = tmp_path / "shot.png"
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--hide-scrollbars",
        "--window-size=1000,3600",
        f"--screenshot={shot}",
        out.resolve().as_uri(),
    ]
    r = subprocess.run(
        args, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)}
    )
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    assert not [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln], r.stderr[-2000:]
    px = _png_pixels(shot)
    assert px.shape[:2] == (3600, 1000)
    blank = (px > 245).all(2)
    # every plot drew: bands of 200 rows holding ink, the palette's blue (loss, MRR, the
    # users' points) and orange (head scores, Hits@10 bars, the items' points), and the
    # five tags' green points
    inked = [(~blank[y : y + 200]).mean() for y in range(0, 3600, 200)]
    assert sum(v > 0.01 for v in inked) >= 8, inked
    for rgb, least in (((0x1F, 0x77, 0xB4), 1000), ((0xFF, 0x7F, 0x0E), 1000), ((0x2C, 0xA0, 0x2C), 40)):
        near = (np.abs(px.astype(int) - rgb).sum(2) < 40).sum()
        assert near > least, (rgb, near)


# =========================================================================== projector
def test_projector_export_rows_names_and_config(cfg, tmp_path, capsys):
    from ember.pbg.export import export, read_export, tsv_unescape

    m = EmbeddingModel(cfg)
    config = Path(m.workspace.root) / "config.toml"
    out = tmp_path / "proj"
    code = main(
        [
            "export",
            str(config),
            "-p",
            f"checkpoint_path={cfg.checkpoint_path}",
            "--format",
            "projector",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "export.json",
        "metadata.tsv",
        "projector_config.pbtxt",
        "tensors.tsv",
    ]
    tensors = (out / "tensors.tsv").read_text().splitlines()
    meta = (out / "metadata.tsv").read_text().splitlines()
    n = sum(sum(m.partition_sizes(t)) for t in m.entity_types)
    assert len(tensors) == n and len(meta) == 1 + n and meta[0] == "name\ttype"
    assert all(len(row.split("\t")) == m.dim for row in tensors)
    for t in m.entity_types:  # rows in order, each name beside exactly its vector
        names, emb = read_export(out, t)
        assert names == m.entities(t)
        np.testing.assert_array_equal(
            emb, np.concatenate([m.read_partition(t, p) for p in range(m.num_partitions(t))])
        )
    pb = (out / "projector_config.pbtxt").read_text()
    assert re.fullmatch(
        r'embeddings \{\n  tensor_name: "ember:user\+item\+tag"\n  tensor_path: "tensors.tsv"\n'
        r'  metadata_path: "metadata.tsv"\n\}\n',
        pb,
    )
    assert tsv_unescape("a\\tb\\\\n") == "a\tb\\n"
    assert not list(out.glob(".*tmp*"))
    s = export(m, "projector", tmp_path / "one", entity_types=["tag"])
    assert s["entities"] == {"tag": 5} and s["files"] == [
        "metadata.tsv",
        "projector_config.pbtxt",
        "tensors.tsv",
    ]


def test_projector_names_with_tabs_and_newlines_stay_aligned(tmp_path):
    """Names holding a TAB, newline or CR are refused at import (the TSV export and
    names.txt are line- and tab-separated); the projector's escaping still keeps any
    name, backslashes included, on its own row, and reads back exactly."""
    from ember.pbg.export import export, read_export, tsv_escape, tsv_unescape

    src = tmp_path / "edges.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    odd = ["tab\there", "new\nline", "back\\slash", "cr\rx", "plain"]
    pq.write_table(pa.table({"h": odd, "r": ["r"] * 5, "t": odd[1:] + odd[:1]}), src)
    assert main(["import", str(src), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
    for name in odd:
        assert "\t" not in tsv_escape(name) and "\n" not in tsv_escape(name)
        assert tsv_unescape(tsv_escape(name)) == name
    ok = ["back\\slash", "a\\tb", "plain", "x\\\\", "sp ace"]
    pq.write_table(pa.table({"h": ok, "r": ["r"] * 5, "t": ok[1:] + ok[:1]}), src)
    assert main(["import", str(src), "--out", str(tmp_path / "ws")]) == 0
    c = load_config(tmp_path / "ws" / "config.toml", overrides=["num_epochs=1", "dimension=4", "workers=1"])
    train(c, progress=False, log=lambda m: None)
    m = EmbeddingModel(c)
    export(m, "projector", tmp_path / "p")
    lines = (tmp_path / "p" / "metadata.tsv").read_text().split("\n")
    assert len(lines) == 1 + 5 + 1 and lines[-1] == ""  # header, 5 rows, final newline
    assert all(len(line.split("\t")) == 2 for line in lines[:-1])
    assert "back\\\\slash\tall" in lines and "a\\\\tb\tall" in lines
    names, emb = read_export(tmp_path / "p", "all")
    assert names == m.entities() and sorted(names) == sorted(ok) and emb.shape == (5, 4)
