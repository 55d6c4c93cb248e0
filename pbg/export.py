"""`pbg export`: entity embeddings with their names, and relation parameters, out of a
checkpoint, streamed one partition at a time (only one partition is ever in memory).

Formats (files under the output folder):

* ``tsv``: PyTorch-BigGraph's exporter layout: ``entity_embeddings.tsv`` with lines
  ``name<TAB>v1<TAB>...<TAB>vd`` (``%.9f``, every type in turn) and
  ``relation_types_parameters.tsv`` with lines
  ``relation<TAB>side<TAB>parameter<TAB>shape<TAB>v1...`` (shape like ``100x100``).
* ``parquet``: ``entities_<type>.parquet`` with a ``name`` string column and an
  ``embedding`` fixed-size-list<float32>[d] column (one row group per partition);
  ``relations.parquet`` with relation, side, parameter, shape, values.
* ``hdf5``: ``entities_<type>.h5`` with an (n, d) ``embeddings`` dataset and a ``names``
  dataset; ``relations.h5`` with ``/<relation>/<side>/<parameter>`` datasets.
* ``npy``: ``entities_<type>.npy`` (n, d) written through a memory map;
  ``relations.json`` holds the relation parameters as nested lists.
* ``projector``: TensorBoard Embedding Projector files: ``tensors.tsv`` (one vector a
  line, ``%.9g``, every type in turn), ``metadata.tsv`` (a ``name<TAB>type`` header, then
  one line per vector; a backslash, TAB, CR or LF in a name is written ``\\``, ``\t``,
  ``\r``, ``\n``, so rows never misalign) and ``projector_config.pbtxt`` naming both. No
  relation parameters (the projector shows entities only).

A featurized type's (``pbg import --features``) entity vectors are exported as any
type's (each the mean of its features' rows plus the type's global embedding, as training
computes them); its feature vectors come beside them, each a feature table row plus the
global embedding (so an entity's exported vector is the mean of its features' exported
vectors): ``feature_embeddings_<type>.tsv`` (tsv), ``features_<type>.parquet`` /
``.h5`` / ``.npy`` with ``features_<type>.names.txt``, or ``features_<type>.tensors.tsv``
and ``features_<type>.metadata.tsv`` (projector, a second entry of its config).

Every non-TSV format writes ``entities_<type>.names.txt`` (one name per line, row i of
the matrix) and ``export.json``, which says what was exported from which checkpoint
(operator, comparator, dimension, types, counts, files). Files are written under a
temporary name and renamed into place.

>>> from ember.pbg.api import load
>>> export(load("ws"), "parquet", "ws/export")                           # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ember._io import AtomicFiles, progress_bar, tmp_name
from ember.errors import UserError

FORMATS = ("tsv", "hdf5", "parquet", "npy")  # embeddings and relation parameters
VIEW_FORMATS = ("projector",)  # embeddings only, for a viewer
EXPORT_MANIFEST = "export.json"
_TSV_ROWS = 20_000  # rows formatted per write, bounding the text buffer


def _names(model, etype, part) -> list[str]:
    # straight from the Parquet file, so that exporting holds one partition's names
    import pyarrow.parquet as pq

    path = model.workspace.entity_names_path(etype, part)
    return pq.read_table(path, columns=["name"]).column("name").to_pylist()


def _partitions(model, etype):
    """(partition, names, embeddings) of each partition in turn; nothing is cached, and
    no reference outlives its turn (not even in an ``enumerate`` result tuple)."""
    bar = progress_bar(sum(model.partition_sizes(etype)), f"export {etype}", "entity")
    for p in range(model.num_partitions(etype)):
        emb = model.read_partition(etype, p)
        names = _names(model, etype, p)
        if len(names) != len(emb):
            raise UserError(
                f"partition {p} of {etype!r}: {len(names)} names but {len(emb)} embeddings in the checkpoint"
            )
        yield p, names, emb
        bar.update(len(emb))
        del names, emb  # the caller holds the only reference while it writes
    bar.close()


def _fmt_rows(names, emb) -> str:
    """PyTorch-BigGraph's TSV rows (``name<TAB>%.9f<TAB>...``), one Python format per
    value: the reference, and the path for values ``_fixed9`` does not take."""
    lines = []
    for s in range(0, len(emb), _TSV_ROWS):
        block = emb[s : s + _TSV_ROWS]
        vals = ["\t".join(row) for row in np.char.mod("%.9f", block).tolist()]
        lines.extend(f"{n}\t{v}\n" for n, v in zip(names[s : s + _TSV_ROWS], vals))
    return "".join(lines)


def _tsv_bytes(names, emb) -> bytes:
    """``_fmt_rows(names, emb)`` encoded, byte for byte, in whole-array blocks: each value's
    ``%.9f`` text is built from its exact decimal expansion with integer numpy work
    (``_rows_fixed9``; benchmarks/export_tsv.py measures it against the reference).
    Blocks holding values it does not take (NaN, inf, beyond 2^33) go the reference way."""
    out = []
    for s in range(0, len(emb), _TSV_ROWS):
        block = np.ascontiguousarray(emb[s : s + _TSV_ROWS], dtype=np.float32)
        rows = names[s : s + _TSV_ROWS]
        if not (np.isfinite(block).all() and (np.abs(block) < 2.0**33).all()):
            out.append(_fmt_rows(rows, block).encode("utf-8"))
            continue
        out.append(_rows_fixed9(rows, block))
    return b"".join(out)


_DIGITS3 = np.array([[ord(c) for c in f"{i:03d}"] for i in range(1000)], np.uint8)  # 0..999 as 3 digits


def _decimal9(block: np.ndarray):
    """(negative, integer part, 9-digit fraction) of ``round(|v| * 10^9)`` for every value
    of a finite float32 block with |v| < 2^33, rounded exactly as C's printf and Python's
    ``%.9f`` round: a float32 is exactly ``m * 2^e`` (m < 2^24), so ``v * 10^9 =
    (m * 5^9) * 2^(e + 9)`` with ``m * 5^9 < 2^45``, an integer shift rounded half to even
    on the exact value."""
    bits = block.reshape(-1).view(np.uint32)
    neg = (bits >> np.uint32(31)).astype(bool)
    exp = ((bits >> np.uint32(23)) & np.uint32(0xFF)).astype(np.int64)
    frac = (bits & np.uint32(0x7FFFFF)).astype(np.int64)
    m = np.where(exp == 0, frac, frac | 0x800000)
    shift = np.where(exp == 0, -149, exp - 150) + 9
    big = m * 1953125  # 5^9
    k = np.clip(-shift, 0, 62)
    q = np.where(shift >= 0, big << np.clip(shift, 0, 62), big >> k)
    rem = big - ((big >> k) << k)
    half = np.where(k > 0, np.int64(1) << np.maximum(k - 1, 0), 0)
    q += (shift < 0) & ((rem > half) | ((rem == half) & (q & 1 == 1)))
    ip, fp = np.divmod(q, 10**9)
    return neg, ip, fp


def _rows_fixed9(names, block: np.ndarray) -> bytes:
    """``_fmt_rows(names, block)`` as bytes, built as one byte matrix: a row is its name
    (right-aligned in a column as wide as the longest), TAB, then one fixed-width field
    per value: sign, integer digits (as many columns as the block's widest), point, nine
    decimals (three digits per table lookup), TAB or newline. A mask marks the padding
    (short names, absent signs, leading digit columns); one boolean gather drops it."""
    import pyarrow as pa

    n, d = block.shape
    neg, ip, fp = _decimal9(block)
    nd = np.ones(len(ip), np.int64)
    for p in range(1, 10):
        nd += ip >= 10**p
    D = int(nd.max())
    F = D + 12  # sign, D digits, point, 9 decimals, separator
    arr = pa.array(names, pa.string())
    offs = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    lens = np.diff(offs)
    width = int(lens.max(initial=0)) + 1  # the name, right-aligned, and its TAB
    M = np.zeros((n, width + d * F), np.uint8)
    K = np.ones((n, width + d * F), bool)
    f, keep = (a[:, width:].reshape(n, d, F) for a in (M, K))  # views: the value fields
    shape = (n, d)
    f[:, :, 0] = ord("-")
    keep[:, :, 0] = neg.reshape(shape)
    ip, fp, nd = ip.reshape(shape), fp.reshape(shape), nd.reshape(shape)
    for j in range(D):  # integer digits, right-aligned: column D - j holds 10^j
        f[:, :, D - j] = 48 + (ip // 10**j) % 10
        keep[:, :, D - j] = j < nd
    f[:, :, D + 1] = ord(".")
    f[:, :, D + 2 : D + 5] = _DIGITS3[fp // 1_000_000]
    f[:, :, D + 5 : D + 8] = _DIGITS3[(fp // 1000) % 1000]
    f[:, :, D + 8 : D + 11] = _DIGITS3[fp % 1000]
    f[:, :, D + 11] = ord("\t")
    f[:, d - 1, D + 11] = ord("\n")
    K[:, : width - 1] = np.arange(width - 1)[None, :] >= (width - 1 - lens)[:, None]
    if offs[-1] > offs[0]:
        raw = np.frombuffer(arr.buffers()[2], np.uint8, offs[-1] - offs[0], offs[0])
        at = np.repeat(np.arange(n) * M.shape[1] + width - 1 - lens - (offs[:-1] - offs[0]), lens)
        M.reshape(-1)[at + np.arange(len(raw))] = raw
    M[:, width - 1] = ord("\t")
    return M[K].tobytes()


def export(model, fmt: str, out, *, entity_types=None, log=None) -> dict:
    """Write the model's embeddings and relation parameters in ``fmt`` under folder
    ``out``; returns a summary (files, counts)."""
    if fmt not in FORMATS + VIEW_FORMATS:
        raise UserError(f"--format {fmt!r}: choose one of {', '.join(FORMATS + VIEW_FORMATS)}")
    types = list(entity_types) if entity_types else model.entity_types
    for t in types:
        model._type(t)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    made = not out.exists()  # a failed export removes the folder it made
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda msg: None)
    atomic = AtomicFiles()
    files: dict[str, list[str]] = {"entities": [], "relations": [], "names": []}
    counts = {}
    try:
        writer = {
            "tsv": _export_tsv,
            "parquet": _export_parquet,
            "hdf5": _export_hdf5,
            "npy": _export_npy,
            "projector": _export_projector,
        }[fmt]
        writer(model, types, out, atomic, files, counts, log)
        featurized = {}
        for t in types:
            if model.workspace.is_featurized(t):
                featurized[t] = _export_features(model, t, fmt, out, atomic, files, log)
        if fmt != "tsv":
            manifest = {
                "format": "ember-export",
                "format_version": 1,
                "export_format": fmt,
                "checkpoint": str(model.checkpoint.path),
                "version": model.version,
                "operator": model.operator,
                "operators": model.operators,
                "comparator": model.comparator,
                "dimension": model.dim,
                "entity_counts": counts,
                **({"feature_counts": featurized} if featurized else {}),
                "relations": model.relation_names,
                "relation_sides": {
                    "rhs": "applied to the lhs to predict the rhs",
                    "lhs": "applied to the rhs to predict the lhs",
                },
                "files": files,
            }
            with open(atomic.path(out / EXPORT_MANIFEST), "w") as f:
                json.dump(manifest, f, indent=1)
        atomic.commit()
    except BaseException:
        atomic.abort()
        if made and not any(out.iterdir()):
            out.rmdir()
        raise
    return {
        "format": fmt,
        "out": str(out),
        "entities": counts,
        **({"features": featurized} if featurized else {}),
        "relations": len(model.relation_names),
        "version": model.version,
        "files": sorted(set(files["entities"] + files["relations"] + files["names"])),
    }


def _export_features(model, t, fmt, out, atomic, files, log) -> int:
    """A featurized type's feature vectors (feature rows plus the global embedding) with
    their names, in ``fmt``; returns their number."""
    names = model.feature_names(t)
    emb = model.feature_table(t)
    g = model.global_embeddings.get(t)
    if g is not None:
        emb += g
    log(f"{t} features: {len(names):,}")
    if fmt == "tsv":
        path = out / f"feature_embeddings_{t}.tsv"
        with open(atomic.path(path), "w", encoding="utf-8") as f:
            f.write(_fmt_rows(names, emb))
        files["entities"].append(path.name)
        return len(names)
    if fmt == "projector":
        tensors, meta = out / f"features_{t}.tensors.tsv", out / f"features_{t}.metadata.tsv"
        with open(atomic.path(tensors), "w", encoding="utf-8") as f:
            for s in range(0, len(emb), _TSV_ROWS):
                f.write(
                    "".join("\t".join(r) + "\n" for r in np.char.mod("%.9g", emb[s : s + _TSV_ROWS]).tolist())
                )
        with open(atomic.path(meta), "w", encoding="utf-8") as f:
            et = tsv_escape(f"{t} feature")
            f.write("name\ttype\n" + "".join(f"{tsv_escape(n)}\t{et}\n" for n in names))
        config = tmp_name(out / "projector_config.pbtxt")  # registered by _export_projector
        label = tsv_escape(f"{t} features").replace("\\", "\\\\").replace('"', '\\"')
        with open(config, "a", encoding="utf-8") as f:
            f.write(
                "embeddings {\n"
                f'  tensor_name: "ember:{label}"\n'
                f'  tensor_path: "{tensors.name}"\n'
                f'  metadata_path: "{meta.name}"\n'
                "}\n"
            )
        files["entities"] += [tensors.name, meta.name]
        return len(names)
    names_path = out / f"features_{t}.names.txt"
    atomic.path(names_path).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    files["names"].append(names_path.name)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = out / f"features_{t}.parquet"
        vec = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), model.dim)
        pq.write_table(pa.table({"name": pa.array(names, pa.string()), "embedding": vec}), atomic.path(path))
    elif fmt == "hdf5":
        import h5py

        path = out / f"features_{t}.h5"
        with h5py.File(atomic.path(path), "w") as f:
            f.attrs["format"] = "ember-export"
            f.attrs["entity_type"] = t
            f.attrs["features"] = True
            f.create_dataset("embeddings", data=emb)
            f.create_dataset("names", data=names, dtype=h5py.string_dtype("utf-8"))
    else:
        path = out / f"features_{t}.npy"
        with open(atomic.path(path), "wb") as f:  # a file: np.save would add ".npy" to the name
            np.save(f, emb)
    files["entities"].append(path.name)
    return len(names)


def _write_names(path: Path, names):
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(f"{n}\n" for n in names))


def _export_tsv(model, types, out, atomic, files, counts, log):
    ent = out / "entity_embeddings.tsv"
    with open(atomic.path(ent), "wb") as f:
        for t in types:
            counts[t] = 0
            for p, names, emb in _partitions(model, t):
                log(f"{t} partition {p}: {len(names):,} entities")
                f.write(_tsv_bytes(names, emb))
                counts[t] += len(names)
                del names, emb  # before the next partition is read
    rel = out / "relation_types_parameters.tsv"
    with open(atomic.path(rel), "w", encoding="utf-8") as f:
        for name, side, pname, arr in model.relation_parameters():
            shape = "x".join(str(s) for s in arr.shape)
            vals = "\t".join(np.char.mod("%.9f", arr.reshape(-1)).tolist())
            f.write(f"{name}\t{side}\t{pname}\t{shape}\t{vals}\n")
    files["entities"].append(ent.name)
    files["relations"].append(rel.name)


def _names_file(out, t, atomic, files):
    path = out / f"entities_{t}.names.txt"
    tmp = atomic.path(path)
    tmp.write_text("")
    files["names"].append(path.name)
    return tmp


def _export_parquet(model, types, out, atomic, files, counts, log):
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = model.dim
    schema = pa.schema(
        [("name", pa.string()), ("embedding", pa.list_(pa.float32(), d))],
        metadata={"ember.dimension": str(d), "ember.operator": model.operator},
    )
    for t in types:
        path = out / f"entities_{t}.parquet"
        names_tmp = _names_file(out, t, atomic, files)
        counts[t] = 0
        with pq.ParquetWriter(atomic.path(path), schema) as w:
            for p, names, emb in _partitions(model, t):
                log(f"{t} partition {p}: {len(names):,} entities")
                vec = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), d)
                # row groups of about 16 MiB: the writer encodes (and holds) one at a time
                rows = max(1, (16 << 20) // (4 * d + 32))
                table = pa.table([pa.array(names, pa.string()), vec], schema=schema)
                w.write_table(table, row_group_size=rows)
                _write_names(names_tmp, names)
                counts[t] += len(names)
                del names, emb, vec, table  # before the next partition is read
        files["entities"].append(path.name)
    rows = list(model.relation_parameters())
    table = pa.table(
        {
            "relation": pa.array([r[0] for r in rows], pa.string()),
            "side": pa.array([r[1] for r in rows], pa.string()),
            "parameter": pa.array([r[2] for r in rows], pa.string()),
            "shape": pa.array([list(r[3].shape) for r in rows], pa.list_(pa.int64())),
            "values": pa.array([r[3].reshape(-1) for r in rows], pa.list_(pa.float32())),
        }
    )
    path = out / "relations.parquet"
    pq.write_table(table, atomic.path(path))
    files["relations"].append(path.name)


def _export_hdf5(model, types, out, atomic, files, counts, log):
    import h5py

    for t in types:
        path = out / f"entities_{t}.h5"
        names_tmp = _names_file(out, t, atomic, files)
        n = sum(model.partition_sizes(t))
        with h5py.File(atomic.path(path), "w") as f:
            f.attrs["format"] = "ember-export"
            f.attrs["entity_type"] = t
            f.attrs["operator"] = model.operator
            f.attrs["comparator"] = model.comparator
            dset = f.create_dataset("embeddings", (n, model.dim), np.float32)
            names_ds = f.create_dataset("names", (n,), h5py.string_dtype("utf-8"))
            row = 0
            for p, names, emb in _partitions(model, t):
                log(f"{t} partition {p}: {len(names):,} entities")
                dset[row : row + len(emb)] = emb
                names_ds[row : row + len(emb)] = names
                _write_names(names_tmp, names)
                row += len(emb)
                del names, emb  # before the next partition is read
        counts[t] = n
        files["entities"].append(path.name)
    path = out / "relations.h5"
    with h5py.File(atomic.path(path), "w") as f:
        f.attrs["format"] = "ember-export"
        f.attrs["operator"] = model.operator
        for name, side, pname, arr in model.relation_parameters():
            f.create_dataset(f"{name}/{side}/{pname}", data=arr)
        for name, op in model.operators.items():
            if name in f:  # the "none" operator has no parameters, so no group
                f[name].attrs["operator"] = op
    files["relations"].append(path.name)


def _export_npy(model, types, out, atomic, files, counts, log):
    for t in types:
        path = out / f"entities_{t}.npy"
        names_tmp = _names_file(out, t, atomic, files)
        n = sum(model.partition_sizes(t))
        mm = np.lib.format.open_memmap(atomic.path(path), "w+", np.float32, (n, model.dim))
        row = 0
        for p, names, emb in _partitions(model, t):
            log(f"{t} partition {p}: {len(names):,} entities")
            mm[row : row + len(emb)] = emb
            mm.flush()
            _write_names(names_tmp, names)
            row += len(emb)
            del names, emb  # before the next partition is read
        del mm
        counts[t] = n
        files["entities"].append(path.name)
    rel = [
        {
            "relation": name,
            "side": side,
            "parameter": pname,
            "shape": list(arr.shape),
            "values": arr.reshape(-1).tolist(),
        }
        for name, side, pname, arr in model.relation_parameters()
    ]
    path = out / "relations.json"
    with open(atomic.path(path), "w") as f:
        json.dump(
            {
                "operator": model.operator,
                "operators": model.operators,
                "comparator": model.comparator,
                "dimension": model.dim,
                "parameters": rel,
            },
            f,
        )
    files["relations"].append(path.name)


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_TSV_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def tsv_escape(text: str) -> str:
    """A name as one TSV field: backslash, TAB, CR and LF written as two-character escapes."""
    return text.translate(_TSV_ESCAPES)


def tsv_unescape(field: str) -> str:
    """The inverse of `tsv_escape`."""
    import re

    return re.sub(r"\\[\\tnr]", lambda m: _TSV_UNESCAPES[m.group(0)], field)


def _export_projector(model, types, out, atomic, files, counts, log):
    tensors, meta = out / "tensors.tsv", out / "metadata.tsv"
    with (
        open(atomic.path(tensors), "w", encoding="utf-8") as ft,
        open(atomic.path(meta), "w", encoding="utf-8") as fm,
    ):
        fm.write("name\ttype\n")  # two columns: the projector reads a header line
        for t in types:
            counts[t] = 0
            et = tsv_escape(t)
            for p, names, emb in _partitions(model, t):
                log(f"{t} partition {p}: {len(names):,} entities")
                for s in range(0, len(emb), _TSV_ROWS):
                    block = np.char.mod("%.9g", emb[s : s + _TSV_ROWS]).tolist()
                    ft.write("".join("\t".join(row) + "\n" for row in block))
                fm.write("".join(f"{tsv_escape(n)}\t{et}\n" for n in names))
                counts[t] += len(names)
                del names, emb  # before the next partition is read
    config = out / "projector_config.pbtxt"
    label = tsv_escape("+".join(types)).replace("\\", "\\\\").replace('"', '\\"')
    with open(atomic.path(config), "w", encoding="utf-8") as f:
        f.write(
            "embeddings {\n"
            f'  tensor_name: "ember:{label}"\n'
            f'  tensor_path: "{tensors.name}"\n'
            f'  metadata_path: "{meta.name}"\n'
            "}\n"
        )
    files["entities"] += [tensors.name, meta.name, config.name]


def read_export(out, entity_type: str, *, features: bool = False):
    """(names, embeddings) of one entity type from an export folder of any format
    (loads it whole: for downstream use and tests); ``features``: a featurized type's
    feature vectors instead of its entity vectors."""
    out = Path(out)
    if features:
        return _read_features(out, entity_type)
    if (out / "entity_embeddings.tsv").is_file() and not (out / EXPORT_MANIFEST).is_file():
        names, rows = [], []
        with open(out / "entity_embeddings.tsv", encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                names.append(parts[0])
                rows.append(np.array(parts[1:], np.float32))
        return names, np.stack(rows) if rows else np.zeros((0, 0), np.float32)
    if not (out / EXPORT_MANIFEST).is_file():
        raise UserError(f"{out}: not an export folder (no {EXPORT_MANIFEST} or entity_embeddings.tsv)")
    fmt = json.loads((out / EXPORT_MANIFEST).read_text())["export_format"]
    if fmt == "projector":
        with open(out / "metadata.tsv", encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        keep = np.array([tsv_unescape(r[1]) == entity_type for r in rows], bool)
        emb = np.loadtxt(out / "tensors.tsv", np.float32, delimiter="\t", ndmin=2)
        return [tsv_unescape(r[0]) for r, k in zip(rows, keep) if k], emb[keep]
    return _read_rows(out, fmt, f"entities_{entity_type}")


def _read_rows(out: Path, fmt: str, stem: str):
    """(names, embeddings) of one table a parquet, hdf5 or npy export wrote as ``stem``."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(out / f"{stem}.parquet")
        emb = t.column("embedding").combine_chunks().flatten().to_numpy()
        return t.column("name").to_pylist(), emb.reshape(t.num_rows, -1)
    names = (out / f"{stem}.names.txt").read_text(encoding="utf-8").splitlines()
    if fmt == "hdf5":
        import h5py

        with h5py.File(out / f"{stem}.h5", "r") as f:
            return names, f["embeddings"][()]
    return names, np.load(out / f"{stem}.npy")


def _read_features(out: Path, t: str):
    if (out / f"feature_embeddings_{t}.tsv").is_file() and not (out / EXPORT_MANIFEST).is_file():
        names, rows = [], []
        with open(out / f"feature_embeddings_{t}.tsv", encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                names.append(parts[0])
                rows.append(np.array(parts[1:], np.float32))
        return names, np.stack(rows)
    if not (out / EXPORT_MANIFEST).is_file():
        raise UserError(f"{out}: not an export folder (no {EXPORT_MANIFEST} or feature_embeddings_{t}.tsv)")
    fmt = json.loads((out / EXPORT_MANIFEST).read_text())["export_format"]
    if fmt == "projector":
        with open(out / f"features_{t}.metadata.tsv", encoding="utf-8") as f:
            names = [tsv_unescape(line.rstrip("\n").split("\t")[0]) for line in f][1:]
        return names, np.loadtxt(out / f"features_{t}.tensors.tsv", np.float32, delimiter="\t", ndmin=2)
    return _read_rows(out, fmt, f"features_{t}")
