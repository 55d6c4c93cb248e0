"""Featurized entity types (PyTorch-BigGraph's ``featurized = true``): every entity of such
a type is a bag of features, and its embedding is the mean of its features' embeddings.

`pbg import --features TYPE=FILE` reads the bags from a file:

* text (TSV; also ``.gz``, ``.bz2``, ``.zst``): one line per entity,
  ``entity<TAB>feature<TAB>feature...``; blank lines and lines starting with ``#`` are
  skipped, as in edge files. A feature listed twice in a line counts twice in the mean.
* Parquet (``.parquet``, ``.pq``): a string column of entity names (the first string
  column) and a list<string> column of features (the first such column); rows are
  numbered from 1 in messages, as lines would be.

The file is read in blocks with whole-array work (pyarrow splits the lines): no Python
loop over entities. Every problem is an `InputFileError` naming ``FILE:LINE``: an empty
entity name, an entity without features, an empty feature name, an entity listed twice.

On disk (``entities/<type>/`` of the workspace, see docs/workspace.md):

* ``features.parquet``: the feature names, row = feature id (in order of first
  appearance), and ``count``, how many bag entries name the feature;
* ``bags_0.parquet``: one row per entity of partition 0 (row = entity offset), column
  ``features``, the entity's feature ids (large_list<int32>: offsets and values are the
  CSR layout the trainer uses).

A featurized type is never partitioned (``num_partitions = 1``): PyTorch-BigGraph needs all
of an entity's features in its partition, and a feature shared by entities of two
partitions would have to live in both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ember.errors import InputFileError
from ember.partitioning import layout
from ember.partitioning.dictionary import EntityDictionary
from ember.partitioning.readers import _open_text_stream, _utf8_msg, is_parquet

__all__ = ["FeatureBags", "FeatureReader", "read_bags", "write_bags"]

_BLOCK = 16 << 20  # bytes of text split per block


class FeatureReader:
    """Reads one featurized type's ``--features`` file into the type's entity dictionary
    (the listed entities get ids 0, 1, ... in file order) and a feature dictionary."""

    def __init__(self, etype: str, entities: EntityDictionary, seed: int, block_bytes: int = _BLOCK):
        self.etype, self.entities = etype, entities
        self.features = EntityDictionary(f"{etype}/features", 1, seed)
        self.block_bytes = block_bytes
        self._lines: list[np.ndarray] = []  # line of each entity id, block by block
        self._lens: list[np.ndarray] = []  # bag sizes, per entity id
        self._ids: list[np.ndarray] = []  # feature ids, the bags one after another
        self.path: Path | None = None

    @property
    def num_entities(self) -> int:
        """Entities listed in the file (the first ids of the type's dictionary)."""
        return int(sum(len(x) for x in self._lens))

    def read(self, path) -> None:
        path = Path(path)
        if not path.exists():
            raise InputFileError(f"{path}: no such file")
        if path.is_dir():
            raise InputFileError(f"{path}: is a folder, not a features file")
        if len(self.entities):
            raise InputFileError(f"{path}: features of type {self.etype!r} must be read before any edge")
        self.path = path
        blocks = _parquet_blocks(path) if is_parquet(path) else _text_blocks(path, self.block_bytes)
        for lines, names, offsets, feats in blocks:
            self._add(path, lines, names, offsets, feats)
        if not self.num_entities:
            raise InputFileError(f"{path}: no entities (the file is empty, or only comments)")

    def _add(self, path, lines, names, offsets, feats) -> None:
        lens = np.diff(offsets)
        bad = np.flatnonzero(pc.equal(pc.binary_length(names), 0).to_numpy(zero_copy_only=False))
        if len(bad):
            raise InputFileError(f"{path}:{lines[bad[0]]}: empty entity name")
        none = np.flatnonzero(lens == 0)
        if len(none):
            k = int(none[0])
            raise InputFileError(f"{path}:{lines[k]}: entity {names[k].as_py()!r} has no features")
        empty = np.flatnonzero(pc.equal(pc.binary_length(feats), 0).to_numpy(zero_copy_only=False))
        if len(empty):
            row = int(np.searchsorted(offsets, empty[0], side="right")) - 1
            field = int(empty[0] - offsets[row]) + 1  # fields from 0: the entity is field 0
            raise InputFileError(f"{path}:{lines[row]}: empty feature name (field {field})")
        n0 = len(self.entities)
        ids = self.entities.encode(names)
        twice = np.flatnonzero(ids != np.arange(n0, n0 + len(ids)))
        if len(twice):
            k = int(twice[0])
            first = np.concatenate(self._lines + [lines])[ids[k]]
            raise InputFileError(
                f"{path}:{lines[k]}: entity {names[k].as_py()!r} is listed twice (first on line {first})"
            )
        self._lines.append(lines)
        self._lens.append(lens.astype(np.int64))
        self._ids.append(self.features.encode(feats).astype(np.int32))

    def bags(self) -> FeatureBags:
        lens = np.concatenate(self._lens) if self._lens else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int32)
        return FeatureBags(offsets, ids, self.features.names)

    def first_line_of(self, entity_id: int) -> int:
        return int(np.concatenate(self._lines)[entity_id])


class FeatureBags:
    """The bags of a featurized type in CSR layout: entity ``e``'s features are
    ``features[offsets[e]:offsets[e + 1]]`` (ids into ``names``, the feature names)."""

    def __init__(self, offsets: np.ndarray, features: np.ndarray, names: pa.Array):
        self.offsets, self.features, self.names = offsets, features, names

    @property
    def num_entities(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_features(self) -> int:
        return len(self.names)


def write_bags(root: Path, etype: str, bags: FeatureBags) -> None:
    """``features.parquet`` and ``bags_0.parquet`` of a type, each written atomically."""
    counts = np.bincount(bags.features, minlength=bags.num_features).astype(np.int64)
    with layout.atomic_path(layout.feature_names_path(root, etype)) as tmp:
        pq.write_table(pa.table({"name": bags.names, "count": counts}), tmp)
    col = pa.LargeListArray.from_arrays(
        pa.array(bags.offsets, pa.int64()), pa.array(bags.features, pa.int32())
    )
    with layout.atomic_path(layout.bags_path(root, etype)) as tmp:
        pq.write_table(pa.table({"features": col}), tmp)


def read_bags(root: Path, etype: str, num_entities: int, num_features: int) -> FeatureBags:
    """The bags of a featurized type as the workspace stores them, checked against the
    manifest's counts (a file that does not match is refused, naming it)."""
    npath, bpath = layout.feature_names_path(root, etype), layout.bags_path(root, etype)
    for p in (npath, bpath):
        if not p.is_file():
            raise InputFileError(f"{p}: the features of featurized type {etype!r} are missing")
    names = pq.read_table(npath, columns=["name"]).column("name").combine_chunks()
    if len(names) != num_features:
        raise InputFileError(
            f"{npath}: holds {len(names)} features, the workspace manifest says {num_features}"
        )
    col = pq.read_table(bpath).column("features").combine_chunks()
    if len(col) != num_entities:
        raise InputFileError(f"{bpath}: holds {len(col)} bags, the workspace manifest says {num_entities}")
    offsets = np.asarray(col.offsets.to_numpy(), np.int64)
    offsets = offsets - offsets[0]
    feats = np.asarray(col.flatten().to_numpy(zero_copy_only=False), np.int64)
    if len(feats) and (feats.min() < 0 or feats.max() >= num_features):
        raise InputFileError(f"{bpath}: a feature id is out of range (0..{num_features - 1})")
    if num_entities and np.diff(offsets).min() < 1:
        raise InputFileError(f"{bpath}: an entity has an empty bag")
    return FeatureBags(offsets, feats, names)


# ------------------------------------------------------------------------ readers
def _text_blocks(path: Path, block_bytes: int):
    """(line numbers, entity names, bag offsets, feature names) of each block of lines."""
    raw, stream = _open_text_stream(path)
    try:
        tail, lineno = b"", 1
        while True:
            try:
                chunk = stream.read(block_bytes)
            except OSError as e:
                raise InputFileError(f"{path}: cannot read ({e})") from None
            data = tail + chunk if tail else chunk
            if not chunk:  # the end: a last line without a newline
                if data:
                    yield from _split_lines(path, data + b"\n", lineno)
                return
            end = data.rfind(b"\n") + 1
            if end == 0:
                tail = data
                continue
            tail = data[end:]
            block = _split_lines(path, data[:end], lineno)
            lineno += data.count(b"\n", 0, end)
            yield from block
    finally:
        stream.close()
        if stream is not raw:
            raw.close()


def _split_lines(path, data: bytes, lineno: int):
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    offs = np.concatenate([[0], ends]).astype(np.int32 if len(data) < 2**31 else np.int64)
    typ = pa.binary() if offs.dtype == np.int32 else pa.large_binary()
    lines = pa.Array.from_buffers(typ, len(ends), [None, pa.py_buffer(offs), pa.py_buffer(data)])
    try:
        text = lines.cast(pa.large_string() if typ == pa.large_binary() else pa.string())
    except pa.ArrowInvalid:
        for i, v in enumerate(lines.to_pylist()):  # error path: find the line
            try:
                v.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputFileError(f"{path}:{lineno + i}: {_utf8_msg(e)}") from None
        raise
    text = pc.utf8_rtrim(text, characters="\r\n")
    skip = pc.or_(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), pc.starts_with(text, "#"))
    keep = np.flatnonzero(~skip.to_numpy(zero_copy_only=False))
    if not len(keep):
        return
    text = text.take(pa.array(keep))
    parts = pc.split_pattern(text, "\t")
    offsets = np.asarray(parts.offsets.to_numpy(), np.int64)
    values = parts.values
    first = np.zeros(len(values), bool)
    first[offsets[:-1]] = True
    names = values.filter(pa.array(first))
    feats = values.filter(pa.array(~first))
    yield (lineno + keep).astype(np.int64), _str(names), offsets - np.arange(len(offsets)), _str(feats)


def _str(a):
    return a.cast(pa.string()) if a.type != pa.string() else a


def _parquet_blocks(path: Path):
    try:
        pf = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise InputFileError(f"{path}: not a readable Parquet file ({e})") from None
    schema = pf.schema_arrow
    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    lists = [
        f.name
        for f in schema
        if (pa.types.is_list(f.type) or pa.types.is_large_list(f.type))
        and (pa.types.is_string(f.type.value_type) or pa.types.is_large_string(f.type.value_type))
    ]
    if not strings or not lists:
        raise InputFileError(
            f"{path}: a features Parquet file needs a string column of entity names and a "
            f"list<string> column of features (its columns: "
            f"{', '.join(f'{f.name} ({f.type})' for f in schema)})"
        )
    row0 = 0
    for batch in pf.iter_batches(batch_size=1 << 20, columns=[strings[0], lists[0]]):
        names = pc.fill_null(batch.column(0), "")
        col = batch.column(1)
        lens = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)])
        feats = pc.fill_null(pc.list_flatten(col), "")
        yield np.arange(row0 + 1, row0 + 1 + len(names)), _str(names), offsets, _str(feats)
        row0 += len(names)
