"""`pbg report`: one self-contained HTML page about a trained model.

Sections: the model (operator, comparator, dimension, counts, checkpoint); loss and
positive score per trained bucket (``training_stats.jsonl`` of the checkpoint); the
per-epoch MRR of PyTorch-BigGraph's held-out check (``eval_before`` / ``eval_after``,
when ``eval_fraction > 0``); link-prediction metrics per relation as a table and a bar
chart (`ember.pbg.eval.evaluate` run on a split, or read from a saved ``pbg eval --json``);
and a 2-D PCA map of a sample of entity embeddings coloured by entity type or by a label
column of a user's TSV file.

Every chart is inline SVG written here (a hover shows a point's name through SVG
``<title>``); the page has no script, no stylesheet or font from elsewhere and no URL,
so it opens offline. The figures drawn are also embedded as JSON
(``<script type="application/json" id="report-data">``, data, not code). The page is
written under a temporary name and renamed.

>>> from ember.pbg.api import load
>>> report(load("ws"), "ws/report.html", split="test")["out"]          # doctest: +SKIP
'ws/report.html'
"""

from __future__ import annotations

import csv
import html
import json
import math
import time
from pathlib import Path

import numpy as np

from ember._io import atomic_path
from ember.errors import InputFileError, UserError

__all__ = ["report", "read_stats", "epoch_mrr", "pca_2d"]

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
OTHER = "#c7c7c7"
_MAX_LABELS = 9  # colours in the map's legend; the rest are "other"
_MAX_BARS = 40  # relations in the bar chart (the table has them all)


# =========================================================================== data
def read_stats(checkpoint_root, max_version: int | None = None) -> list[dict]:
    """The rows of ``training_stats.jsonl``, one per trained bucket in training order.
    A row repeated by a kill between the stats line and the checkpoint (same epoch,
    edge chunk and bucket, see `ember.pbg.train`) counts once (the last one); rows of
    versions newer than ``max_version`` (a snapshot's) are left out."""
    from ember.pbg.checkpoint import STATS

    path = Path(checkpoint_root) / STATS
    if not path.is_file():
        return []
    rows: dict[tuple, dict] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise InputFileError(f"{path}:{lineno}: not a JSON line") from None
            if max_version is not None and row.get("version", 0) > max_version:
                continue
            key = (row.get("epoch"), row.get("edge_chunk"), tuple(row.get("bucket") or ()))
            rows.pop(key, None)  # re-inserted: keeps training order with the last copy
            rows[key] = row
    return list(rows.values())


def epoch_mrr(rows: list[dict]) -> list[dict]:
    """Per epoch, the held-out MRR before and after training each bucket, weighted by
    the buckets' held-out edge counts; only epochs that were evaluated."""
    out = []
    for epoch in sorted({r["epoch"] for r in rows}):
        item = {"epoch": epoch}
        for key in ("eval_before", "eval_after"):
            ev = [r[key] for r in rows if r["epoch"] == epoch and isinstance(r.get(key), dict)]
            n = sum(e.get("count", 0) for e in ev)
            if n:
                item[key] = sum(e["mrr"] * e["count"] for e in ev) / n
        if len(item) > 1:
            out.append(item)
    return out


def pca_2d(x: np.ndarray):
    """(n, 2) coordinates of rows ``x`` on their two first principal axes, and the
    share of the variance each axis explains."""
    x = np.asarray(x, np.float64)
    xc = x - x.mean(0)
    if len(x) < 2:
        return np.zeros((len(x), 2)), [0.0, 0.0]
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2
    share = (var / var.sum()).tolist() if var.sum() > 0 else [0.0] * len(var)
    coords = xc @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords, (share + [0.0, 0.0])[:2]


def _sample(model, total: int, seed: int):
    """(type, name, vector) of about ``total`` entities, spread over the types by their
    sizes, read one partition at a time."""
    rng = np.random.default_rng(seed)
    sizes = {t: sum(model.partition_sizes(t)) for t in model.entity_types}
    n_all = sum(sizes.values())
    types, names, vecs = [], [], []
    for t in model.entity_types:
        n = sizes[t]
        k = min(n, max(min(n, 20), int(round(total * n / max(n_all, 1)))))
        if k == 0:
            continue
        ids = np.sort(rng.choice(n, k, replace=False))
        bases = np.concatenate([[0], np.cumsum(model.partition_sizes(t))])
        for p in range(model.num_partitions(t)):
            lo, hi = np.searchsorted(ids, [bases[p], bases[p + 1]])
            if lo == hi:
                continue
            offs = ids[lo:hi] - bases[p]
            vecs.append(model.read_partition(t, p)[offs])
            names += model.names_of(t, np.full(len(offs), p), offs)
            types += [t] * len(offs)
    if not vecs:
        return [], [], np.zeros((0, model.dim), np.float32)
    return types, names, np.concatenate(vecs)


def read_labels(path, label_col, wanted: set[str]) -> dict[str, str]:
    """Labels of the ``wanted`` entity names from a TSV file with a header line: the
    first column is the entity name, ``label_col`` (a header name or a 1-based column
    number; default the second column) the label. Streamed: only wanted names are kept."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such label file")
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header or len(header) < 2:
            raise InputFileError(f"{path}:1: expected a header line name<TAB>label...<TAB>...")
        if label_col is None:
            col = 1
        elif str(label_col).isdigit():
            col = int(label_col) - 1
            if not 1 <= col < len(header):
                raise UserError(
                    f"--label-col {label_col}: {path} has columns 1..{len(header)} "
                    "(column 1 holds the entity names)"
                )
        elif label_col in header[1:]:
            col = header.index(label_col, 1)
        else:
            raise UserError(
                f"--label-col {label_col!r}: not a column of {path} (columns: {', '.join(header)})"
            )
        for lineno, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) <= col:
                raise InputFileError(f"{path}:{lineno}: {len(row)} fields, the label is column {col + 1}")
            if row[0] in wanted:
                out[row[0]] = row[col]
    return out


# =========================================================================== SVG
def _e(s) -> str:
    return html.escape(str(s), quote=True)


def _nice_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw and not (integer and m == 2.5))
    if integer:
        step = max(1, round(step))
    # from a tick at or below lo to one at or above hi: the data lies inside the frame
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.2g}"
    return f"{v:.4g}"


class _Axes:
    """Maps data to pixels inside a plot area and draws its frame, ticks and labels."""

    def __init__(self, xs, ys, width, height, left=62, right=16, top=34, bottom=44, x_integer=False):
        self.w, self.h = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = height - bottom, top
        xs = [v for v in xs if math.isfinite(v)] or [0.0]
        ys = [v for v in ys if math.isfinite(v)] or [0.0]
        self.xt = _nice_ticks(min(xs), max(xs), integer=x_integer)
        self.yt = _nice_ticks(min(ys), max(ys))
        self.xlo, self.xhi = self.xt[0], max(self.xt[-1], self.xt[0] + 1e-12)
        self.ylo, self.yhi = self.yt[0], max(self.yt[-1], self.yt[0] + 1e-12)

    def px(self, x):
        return self.x0 + (x - self.xlo) / (self.xhi - self.xlo) * (self.x1 - self.x0)

    def py(self, y):
        return self.y0 - (y - self.ylo) / (self.yhi - self.ylo) * (self.y0 - self.y1)

    def frame(self, title, xlabel, ylabel) -> list[str]:
        out = [f'<rect x="0" y="0" width="{self.w}" height="{self.h}" fill="#ffffff"/>']
        for t in self.yt:
            y = self.py(t)
            out.append(f'<line x1="{self.x0}" y1="{y:.1f}" x2="{self.x1}" y2="{y:.1f}" stroke="#e6e6e6"/>')
            out.append(
                f'<text x="{self.x0 - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>'
            )
        for t in self.xt:
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{self.y0}" x2="{x:.1f}" y2="{self.y0 + 4}" stroke="#444"/>')
            out.append(
                f'<text x="{x:.1f}" y="{self.y0 + 17}" text-anchor="middle" class="tick">{_fmt(t)}</text>'
            )
        out.append(f'<path d="M{self.x0},{self.y1} V{self.y0} H{self.x1}" fill="none" stroke="#444"/>')
        out.append(f'<text x="{self.w / 2:.0f}" y="18" text-anchor="middle" class="title">{_e(title)}</text>')
        out.append(
            f'<text x="{(self.x0 + self.x1) / 2:.0f}" y="{self.h - 8}" text-anchor="middle" class="label">'
            f"{_e(xlabel)}</text>"
        )
        cy = (self.y0 + self.y1) / 2
        out.append(
            f'<text x="14" y="{cy:.0f}" text-anchor="middle" class="label" '
            f'transform="rotate(-90 14 {cy:.0f})">{_e(ylabel)}</text>'
        )
        return out


def _svg(kind: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg class="chart" data-chart="{kind}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(body)
        + "</svg>"
    )


def _legend(items, x, y) -> list[str]:
    out = []
    for i, (label, color) in enumerate(items):
        yy = y + 16 * i
        out.append(f'<rect x="{x}" y="{yy - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 15}" y="{yy}" class="legend">{_e(label)}</text>')
    return out


def line_chart(kind, series, title, xlabel, ylabel, *, width=760, height=280, markers=False) -> str:
    """``series``: [(label, xs, ys)], drawn as polylines (NaN/None: a gap)."""
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy if y is not None]
    # x: bucket or epoch numbers; the legend goes right of the plot
    ax = _Axes(xs, ys, width, height, right=170, x_integer=True)
    body = ax.frame(title, xlabel, ylabel)
    for i, (label, sx, sy) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        runs, cur = [], []
        for x, y in zip(sx, sy):
            if y is None or not math.isfinite(y):
                if cur:
                    runs.append(cur)
                cur = []
            else:
                cur.append(f"{ax.px(x):.1f},{ax.py(y):.1f}")
        if cur:
            runs.append(cur)
        for run in runs:
            body.append(
                f'<polyline class="series" data-series="{_e(label)}" points="{" ".join(run)}" '
                f'fill="none" stroke="{color}" stroke-width="1.8"/>'
            )
        if markers:
            for x, y in zip(sx, sy):
                if y is not None and math.isfinite(y):
                    body.append(
                        f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="3" fill="{color}">'
                        f"<title>{_e(label)}: {_fmt(x)}, {y:.4f}</title></circle>"
                    )
    body += _legend([(s[0], PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)], ax.x1 + 16, ax.y1 + 8)
    return _svg(kind, width, height, body)


def bar_chart(kind, labels, groups, title, *, width=760) -> str:
    """Horizontal bars: one row per label, one bar per (group name, values) in ``groups``."""
    row_h = 8 + 12 * len(groups)
    left = min(260, 12 + 7 * max((len(str(s)) for s in labels), default=4))
    height = 60 + row_h * len(labels)
    x0, x1 = left, width - 130  # the legend goes right of the bars
    vmax = max([v for _, vals in groups for v in vals if v is not None] + [1e-12])
    hi = _nice_ticks(0, vmax)[-1]
    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>']
    body.append(f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" class="title">{_e(title)}</text>')
    for t in _nice_ticks(0, vmax):
        x = x0 + t / hi * (x1 - x0)
        body.append(f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{height - 24}" stroke="#e6e6e6"/>')
        body.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" class="tick">{_fmt(t)}</text>')
    for r, label in enumerate(labels):
        y = 34 + r * row_h
        shown = str(label) if len(str(label)) <= 36 else str(label)[:35] + "\u2026"
        body.append(
            f'<text x="{x0 - 6}" y="{y + row_h / 2 + 2:.1f}" text-anchor="end" class="tick">'
            f"{_e(shown)}</text>"
        )
        for g, (gname, vals) in enumerate(groups):
            v = vals[r]
            if v is None:
                continue
            body.append(
                f'<rect class="bar" x="{x0}" y="{y + 2 + 12 * g}" width="{max(v / hi * (x1 - x0), 0.5):.1f}" '
                f'height="10" fill="{PALETTE[g % len(PALETTE)]}"><title>{_e(label)} {_e(gname)}: {v:.4f}'
                "</title></rect>"
            )
    body += _legend([(g, PALETTE[i % len(PALETTE)]) for i, (g, _) in enumerate(groups)], x1 + 16, 42)
    return _svg(kind, width, height, body)


def scatter(kind, coords, labels, names, title, xlabel, ylabel, *, width=760, height=560) -> str:
    """Points coloured by label (the most common ``_MAX_LABELS`` get colours, the rest grey)."""
    xs, ys = coords[:, 0].tolist(), coords[:, 1].tolist()
    ax = _Axes(xs, ys, width - 170, height)
    body = ax.frame(title, xlabel, ylabel)
    body[0] = f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>'
    uniq, counts = np.unique(np.array(labels, dtype=object).astype(str), return_counts=True)
    order = [uniq[i] for i in np.lexsort((uniq, -counts))]
    colors = {lab: PALETTE[i] for i, lab in enumerate(order[:_MAX_LABELS])}
    # the grey "other" points first, so the coloured ones are drawn on top
    idx = sorted(range(len(xs)), key=lambda i: str(labels[i]) in colors)
    for i in idx:
        c = colors.get(str(labels[i]), OTHER)
        body.append(
            f'<circle class="point" cx="{ax.px(xs[i]):.1f}" cy="{ax.py(ys[i]):.1f}" r="3" fill="{c}" '
            f'fill-opacity="0.75"><title>{_e(names[i])} ({_e(labels[i])})</title></circle>'
        )
    items = [(f"{lab} ({counts[list(uniq).index(lab)]:,})", colors[lab]) for lab in order[:_MAX_LABELS]]
    if len(order) > _MAX_LABELS:
        n_other = int(sum(counts[list(uniq).index(lab)] for lab in order[_MAX_LABELS:]))
        items.append((f"other ({n_other:,})", OTHER))
    body += _legend(items, width - 160, 44)
    return _svg(kind, width, height, body)


def _finite(v):
    """JSON-safe: NaN and infinities (a diverged loss) become null."""
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


# =========================================================================== page
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:980px;color:#222;line-height:1.4;padding:0 12px}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.9em;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.chart text{font-size:11px;fill:#333}.chart .title{font-size:13px;font-weight:600}
.chart .label{font-size:12px}.note{color:#666;font-size:0.9em}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px}dt{color:#666}dd{margin:0}
"""

_METRIC_COLS = ("mrr", "mr", "hits@1", "hits@3", "hits@10", "hits@50", "auc")


def _table(header, rows, cls) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _metric_cells(m: dict) -> list[str]:
    return [f"{m[c]:.1f}" if c == "mr" else f"{m[c]:.4f}" if c in m else "" for c in _METRIC_COLS]


def _training_section(rows) -> tuple[str, dict]:
    if not rows:
        return '<p class="note">No training statistics (training_stats.jsonl) in this checkpoint.</p>', {}
    x = list(range(1, len(rows) + 1))
    loss = [r.get("loss") for r in rows]
    rhs = [r.get("pos_score_rhs") for r in rows]
    lhs = [r.get("pos_score_lhs") for r in rows]
    epochs = [r.get("epoch") for r in rows]
    parts = [
        line_chart(
            "loss",
            [("loss", x, loss)],
            "Loss per edge, each trained bucket",
            "bucket (training order)",
            "loss",
        ),
        line_chart(
            "pos_score",
            [("tail (rhs)", x, rhs), ("head (lhs)", x, lhs)],
            "Mean positive score, each trained bucket",
            "bucket (training order)",
            "score",
        ),
    ]
    n_epochs = len(set(epochs))
    parts.append(
        f'<p class="note">{len(rows):,} trained buckets over {n_epochs} epoch{"s" * (n_epochs != 1)}, '
        f"{sum(r.get('edges', 0) for r in rows):,} edges; last bucket: loss {_fmt(loss[-1] or 0)}, "
        f"positive score {_fmt(rhs[-1] or 0)} (tail) / {_fmt(lhs[-1] or 0)} (head).</p>"
    )
    data = {"bucket": x, "epoch": epochs, "loss": loss, "pos_score_rhs": rhs, "pos_score_lhs": lhs}
    return "".join(parts), data


def _epoch_section(per_epoch) -> tuple[str, list]:
    if not per_epoch:
        return (
            '<p class="note">Not evaluated during training (set <code>eval_fraction</code> &gt; 0 to hold '
            "out a share of each bucket's edges and rank them before and after the bucket is trained).</p>",
            [],
        )
    xs = [e["epoch"] + 1 for e in per_epoch]
    chart = line_chart(
        "epoch_mrr",
        [
            ("before the bucket", xs, [e.get("eval_before") for e in per_epoch]),
            ("after the bucket", xs, [e.get("eval_after") for e in per_epoch]),
        ],
        "Held-out MRR per epoch (sampled negatives)",
        "epoch",
        "MRR",
        markers=True,
    )
    rows = [
        [
            e["epoch"] + 1,
            *(f"{e[k]:.4f}" if k in e else "" for k in ("eval_before", "eval_after")),
        ]
        for e in per_epoch
    ]
    return chart + _table(["epoch", "MRR before", "MRR after"], rows, "epoch-mrr"), per_epoch


def _eval_section(metrics, source) -> str:
    if metrics is None:
        return f'<p class="note">{_e(source)}</p>'
    per = metrics.get("per_relation") or {}
    proto = (
        f"{metrics.get('split', '?')} split, {'filtered' if metrics.get('filtered') else 'raw'}, "
        f"{metrics.get('negatives', 'all')} negatives, {metrics.get('count', 0):,} rankings ({_e(source)})"
    )
    rows = [["overall", metrics.get("count", ""), *_metric_cells(metrics)]]
    for side in ("tail", "head"):
        if metrics.get(side):
            rows.append([side, metrics[side].get("count", ""), *_metric_cells(metrics[side])])
    for name in sorted(per):
        rows.append([name, per[name].get("count", ""), *_metric_cells(per[name])])
    table = _table(["relation", "rankings", *_METRIC_COLS], rows, "eval-metrics")
    chart = ""
    if per:
        names = sorted(per, key=lambda n: -per[n].get("count", 0))[:_MAX_BARS]
        more = f" (the {_MAX_BARS} with most test edges)" if len(per) > _MAX_BARS else ""
        chart = bar_chart(
            "eval_bars",
            names,
            [
                ("MRR", [per[n].get("mrr") for n in names]),
                ("Hits@10", [per[n].get("hits@10") for n in names]),
            ],
            f"MRR and Hits@10 per relation{more}",
        )
    return f'<p class="note">{proto}</p>{table}{chart}'


def _load_eval(model, split, eval_file, run_eval, log):
    """(metrics or None, a sentence saying where they come from)."""
    if eval_file is not None:
        path = Path(eval_file)
        try:
            m = json.loads(path.read_text())
        except OSError:
            raise InputFileError(f"{path}: no such eval file") from None
        except ValueError:
            raise InputFileError(f"{path}: not JSON (give the output of `pbg eval --json`)") from None
        if not isinstance(m, dict) or "mrr" not in m or "per_relation" not in m:
            raise InputFileError(f"{path}: not the output of `pbg eval --json` (no mrr / per_relation)")
        return m, f"read from {path}"
    if not run_eval:
        return None, "Not evaluated (--no-eval)."
    from ember.pbg.eval import SPLITS, evaluate

    if split not in SPLITS:
        raise UserError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    if not sum(model.workspace.buckets(split).values()):
        return None, f"The {split} split has no edges: nothing to evaluate."
    log(f"evaluating on the {split} split")
    m = evaluate(model.config, split=split, checkpoint=model.checkpoint.path)
    return m, f"computed now by ember.pbg.eval.evaluate on checkpoint version {model.version}"


def report(
    model,
    out=None,
    *,
    split: str = "test",
    eval_file=None,
    run_eval: bool = True,
    label_file=None,
    label_col=None,
    sample: int = 2000,
    seed: int = 0,
    log=None,
) -> dict:
    """Write the report of ``model`` (an `EmbeddingModel`) to ``out`` (default
    ``WORKSPACE/report.html``); returns a summary (path, sections, counts)."""
    log = log or (lambda msg: None)
    if sample < 1:
        raise UserError(f"--sample must be at least 1, got {sample}")
    out = Path(out) if out is not None else Path(model.workspace.root) / "report.html"
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; give the HTML file to write")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: no such folder {out.parent}")
    if label_col is not None and label_file is None:
        raise UserError("--label-col needs --label-file")
    if label_file is not None and not Path(label_file).is_file():
        raise InputFileError(f"{label_file}: no such label file")
    t0 = time.perf_counter()
    root = Path(model.config.checkpoint_path)
    is_latest = Path(model.checkpoint.path).resolve() == root.resolve()
    rows = read_stats(root, None if is_latest else model.version)
    per_epoch = epoch_mrr(rows)
    metrics, source = _load_eval(model, split, eval_file, run_eval, log)

    log(f"sampling up to {sample:,} entities for the map")
    types, names, vecs = _sample(model, sample, seed)
    if label_file is not None:
        labels_of = read_labels(label_file, label_col, set(names))
        labels = [labels_of.get(n, "(no label)") for n in names]
        colour_by = f"{Path(label_file).name}, column {label_col or 2}"
    else:
        labels, colour_by = types, "entity type"
    coords, share = pca_2d(vecs)

    ents = ", ".join(f"{t}: {sum(model.partition_sizes(t)):,}" for t in model.entity_types)
    facts = [
        ("checkpoint", f"{model.checkpoint.path} (version {model.version})"),
        ("operator", ", ".join(sorted(set(model.operators.values()))) or model.operator),
        ("comparator", model.comparator),
        ("dimension", model.dim),
        ("entities", ents),
        ("relations", f"{len(model.relation_names):,}"),
    ]
    train_html, train_data = _training_section(rows)
    epoch_html, epoch_data = _epoch_section(per_epoch)
    map_html = (
        scatter(
            "pca",
            coords,
            labels,
            names,
            f"{len(names):,} sampled entities, coloured by {colour_by}",
            f"PC1 ({share[0]:.1%} of the variance)",
            f"PC2 ({share[1]:.1%})",
        )
        if len(names)
        else '<p class="note">No entities.</p>'
    )
    data = {
        "checkpoint_version": model.version,
        "training": train_data,
        "epoch_mrr": epoch_data,
        "eval": metrics,
        "map": {
            "count": len(names),
            "colour_by": colour_by,
            "explained_variance": share,
            "labels": sorted(set(map(str, labels))),
        },
    }
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    blob = json.dumps(_finite(data), allow_nan=False).replace("</", "<\\/")
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pbg report: {_e(Path(model.workspace.root).name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>pbg report: {_e(Path(model.workspace.root).name)}</h1>"
        f'<section id="model"><dl>{dl}</dl></section>'
        f'<section id="training"><h2>Training</h2>{train_html}</section>'
        f'<section id="epoch-mrr"><h2>MRR per epoch</h2>{epoch_html}</section>'
        f'<section id="eval"><h2>Link prediction per relation</h2>{_eval_section(metrics, source)}</section>'
        f'<section id="map"><h2>Entity map (PCA)</h2>{map_html}'
        '<p class="note">Hover a point for its name. Axes: the two first principal components of the '
        "sampled embeddings (global embedding included).</p></section>"
        f'<script type="application/json" id="report-data">{blob}</script>'
        "</body></html>\n"
    )
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return {
        "out": str(out),
        "bytes": len(page.encode()),
        "buckets": len(rows),
        "evaluated_epochs": len(per_epoch),
        "eval": None if metrics is None else {"split": metrics.get("split"), "mrr": metrics.get("mrr")},
        "eval_source": source,
        "map_points": len(names),
        "seconds": round(time.perf_counter() - t0, 3),
    }
