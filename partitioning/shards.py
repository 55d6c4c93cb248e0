"""Bucket shards: the edges of one (split, lhs partition, rhs partition).

Columns ``lhs``, ``rhs`` (int32 offsets within their partitions, PBG's convention),
``rel`` (relation id, stored in the smallest unsigned type that holds the shard's, read
back as int32) and optionally ``weight``. Two formats: HDF5 (a column that a sample
shows compresses well chunked and compressed) and Arrow IPC (uncompressed so that it can
be memory-mapped). Each shard records its format version, the workspace id and its
bucket; a reader refuses any mismatch with a message naming the file.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa

from ember._io import h5_writer
from ember.errors import InputFileError
from ember.partitioning.layout import SHARD_VERSION, atomic_path

MAGIC = "ember-edges"
COLUMNS = ("lhs", "rhs", "rel", "weight")
_CHUNK = 1 << 16


def write_shard(
    path: Path,
    fmt: str,
    cols: dict[str, np.ndarray],
    *,
    workspace_id: str,
    split: str,
    lhs_part: int,
    rhs_part: int,
) -> None:
    """Write one complete shard atomically (temporary name, then rename)."""
    meta = {
        "format": MAGIC,
        "format_version": SHARD_VERSION,
        "workspace_id": workspace_id,
        "split": split,
        "lhs_part": int(lhs_part),
        "rhs_part": int(rhs_part),
        "count": int(len(cols["lhs"])),
    }
    if "rel" in cols:
        cols = {**cols, "rel": _narrow(cols["rel"])}
    with atomic_path(path) as tmp:
        if fmt == "hdf5":
            _write_hdf5(tmp, cols, meta)
        elif fmt == "arrow":
            _write_arrow(tmp, cols, meta)
        else:
            raise ValueError(f"unknown shard format {fmt!r}")


def _write_hdf5(tmp: Path, cols, meta) -> None:
    n = len(cols["lhs"])
    with h5_writer(tmp) as f:
        for k, v in meta.items():
            f.attrs[k] = v
        for name in COLUMNS:
            if name in cols:
                v = cols[name]
                # chunked + shuffle + lzf where a sample says it pays (more than 3x);
                # offsets, even skewed ones, are left as they are (lzf made them ~1.8x
                # smaller for as much CPU as the whole parse; gzip costs more)
                kw = (
                    {"chunks": (min(n, _CHUNK * 4),), "compression": "lzf", "shuffle": True}
                    if n > _CHUNK and _compresses(v)
                    else {}
                )
                f.create_dataset(name, data=v, **kw)
        f.attrs["complete"] = 1  # last: a shard cut short lacks it


def _narrow(rel: np.ndarray) -> np.ndarray:
    """Relation ids in the smallest unsigned type that holds them (most graphs have
    fewer than 256 relations: a byte an edge, stored as it is, instead of four bytes
    that lzf would have to squeeze); ``read_shard`` gives them back as int32."""
    if len(rel) and int(rel.min()) < 0:
        return rel
    top = int(rel.max()) if len(rel) else 0
    for dt in (np.uint8, np.uint16):
        if top <= np.iinfo(dt).max:
            return rel.astype(dt)
    return rel


def _wide(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if "rel" in cols and cols["rel"].dtype != np.int32:
        cols["rel"] = cols["rel"].astype(np.int32)
    return cols


def _compresses(v: np.ndarray) -> bool:
    sample = np.ascontiguousarray(v[: 1 << 14])
    shuffled = np.ascontiguousarray(sample.view(np.uint8).reshape(-1, v.itemsize).T)
    return len(zlib.compress(shuffled.tobytes(), 1)) < 0.3 * sample.nbytes  # lzf: ~1.4x zlib's


def _write_arrow(tmp: Path, cols, meta) -> None:
    table = pa.table({k: cols[k] for k in COLUMNS if k in cols})
    md = {k: str(v) for k, v in meta.items()}
    md["complete"] = "1"
    table = table.replace_schema_metadata(md)
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=1 << 22)


def read_shard(
    path: Path,
    *,
    workspace_id: str | None = None,
    split: str | None = None,
    lhs_part: int | None = None,
    rhs_part: int | None = None,
    mmap: bool = True,
) -> dict[str, np.ndarray]:
    """The columns of a shard as numpy arrays; refuses foreign or mismatched files."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: shard is missing")
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        try:
            with h5py.File(path, "r") as f:
                meta = dict(f.attrs)
                _check(path, meta, workspace_id, split, lhs_part, rhs_part)
                return _wide({k: f[k][()] for k in COLUMNS if k in f})
        except OSError as e:
            raise InputFileError(f"{path}: not a readable HDF5 shard ({e})") from None
    if not magic.startswith(b"ARROW1"):
        raise InputFileError(f"{path}: not an ember edge shard (neither HDF5 nor Arrow)")
    try:
        src = pa.memory_map(str(path)) if mmap else pa.OSFile(str(path))
        table = pa.ipc.open_file(src).read_all()
    except (pa.ArrowInvalid, OSError) as e:
        raise InputFileError(f"{path}: not a readable Arrow shard ({e})") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    _check(path, meta, workspace_id, split, lhs_part, rhs_part)
    return _wide({k: _np(table.column(k)) for k in COLUMNS if k in table.column_names})


def _np(col) -> np.ndarray:
    if col.num_chunks == 1:
        return col.chunk(0).to_numpy()
    return col.combine_chunks().to_numpy() if col.num_chunks else np.zeros(0)


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _check(path, meta, workspace_id, split, lhs_part, rhs_part) -> None:
    if _str(meta.get("format", "")) != MAGIC:
        raise InputFileError(f"{path}: not an ember edge shard")
    version = int(meta.get("format_version", -1))
    if version != SHARD_VERSION:
        raise InputFileError(
            f"{path}: shard format version {version} is not supported (expected {SHARD_VERSION})"
        )
    if int(meta.get("complete", 0)) != 1:
        raise InputFileError(f"{path}: incomplete shard (the write was interrupted)")
    if workspace_id is not None and _str(meta.get("workspace_id")) != workspace_id:
        raise InputFileError(
            f"{path}: shard belongs to another workspace "
            f"(id {_str(meta.get('workspace_id'))}, expected {workspace_id})"
        )
    want = {"split": split, "lhs_part": lhs_part, "rhs_part": rhs_part}
    for k, v in want.items():
        if v is not None and _str(meta.get(k)) != str(v):
            raise InputFileError(f"{path}: shard is for {k}={_str(meta.get(k))}, expected {v}")
