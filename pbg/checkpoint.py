"""Versioned HDF5 checkpoints that survive ``kill -9`` at any moment.

Layout of ``checkpoint_path``::

    checkpoint.json                      the manifest: version, config, position, files
    embeddings_<type>_<part>.v<N>.h5     embeddings + row-Adagrad state of one partition
    relations.v<N>.h5                    relation parameters (+ Adagrad state), both sides
    training_stats.jsonl                 one JSON line per trained bucket
    epoch_<E>/                           snapshots kept by checkpoint_preservation_interval

Every file is written under a temporary name, flushed and renamed into place; the
manifest is written last, the same way, and names the exact file of every partition.
So the manifest always describes a complete checkpoint: a file it names is never
rewritten (a newer save gets a new version number), and files no manifest names are
deleted, or kept as spares, only after the new manifest is in place. A trainer keeps a
few superseded partition files as spares (hidden temporary names, at most one more than
a bucket saves) and writes the next versions' partitions over them in place: their pages
are in the page cache already, and a new file's cost more to allocate than to fill (10^7
edges, one epoch, one worker: CPU 65.3 -> 59.9 s, of it system 7.2 -> 3.5 s). A file
that no snapshot links and no manifest names can thus change while an old reader reads
it; every reader checks the file's mtime when done and refuses a changed one
(``open_h5``). One writer at a time: a trainer holds an exclusive lock on the folder
(``.lock``, an OS lock that dies with its process).

The manifest records the CRC-32 and size of every file it names (verified on every
read: a damaged file is refused, never trained on or evaluated) and the id of the
workspace the checkpoint was trained on. Each version's relations file also embeds
that version's manifest (its ``manifest`` dataset), so that a folder whose manifest is
lost or names damaged files can be brought back to its last complete version
(``recover``, `pbg checkpoint recover`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np

from ember._io import Busy, FileLock, atomic_path, h5_writer
from ember._io import write_json_atomic as _write_json
from ember.errors import InputFileError, UserError

FORMAT = "ember-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "checkpoint.json"
STATS = "training_stats.jsonl"
LOCK = ".lock"

# config keys that must match for a checkpoint to be resumed (the model's shape)
MODEL_KEYS = ("dimension", "comparator", "operators", "entity_counts", "num_relations", "dtype", "featurized")

_FILE = re.compile(r"^(embeddings_.+_\d+|relations)\.v(\d+)\.h5$")


def checksum(path: Path) -> dict:
    """CRC-32 (zlib's) and size of a file, read in 1 MiB blocks into one buffer, the CRC
    folded by carry-less multiplication where the compiled kernels are built
    (`ember._cpu_kernels.crc32_updater`; benchmarks/checkpoint_checksum.py measures it)."""
    from ember._cpu_kernels import crc32_updater

    crc32 = crc32_updater()
    crc, size = 0, 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            block = view[:n]
            crc = crc32(block, crc)
            size += len(block)
    return {"crc32": f"{crc:08x}", "bytes": size}


# rows a converted copy is made of at a time, when a table is written or read (8 MiB of a
# 100-wide float32 table): a partition's converted copy never exists whole
BLOCK_BYTES = 8 << 20


def _block_rows(row_bytes: int) -> int:
    return max(1, BLOCK_BYTES // max(row_bytes, 1))


class RowMap:
    """``fn(array[rows])``, block of rows by block of rows, for ``write_h5``: the table as
    it is to be stored (another layout, another dtype) without a whole copy of it."""

    def __init__(self, array, fn, dtype=np.float32):
        self.array, self.fn, self.dtype = array, fn, np.dtype(dtype)
        self.shape = tuple(array.shape)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize

    def write(self, ds) -> None:
        step = _block_rows(self.nbytes // max(self.shape[0], 1))
        for s in range(0, self.shape[0], step):
            ds[s : s + step] = np.asarray(self.fn(self.array[s : s + step]), self.dtype)


def write_h5(
    path: Path, arrays: dict, attrs: dict | None = None, durable=True, what="checkpoint", over=None
) -> dict:
    """Write the arrays atomically; returns the file's ``checksum``. A failed write (a full
    disk) leaves nothing behind and is one error naming ``what`` was being written.

    ``over``: a file no manifest names any more, holding datasets of the same names,
    shapes and dtypes (`Checkpoint`'s spares): it is renamed to the temporary name and
    written over in place, and so is gone whatever happens. Its pages are in the page
    cache already; a new file's must be allocated, which costs more than the copy."""
    try:
        if over is not None and (sums := _write_h5_over(Path(over), path, arrays, attrs, durable)):
            return sums
        need = sum(v.nbytes if isinstance(v, RowMap) else np.asarray(v).nbytes for v in arrays.values())
        need += 64 << 10
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else None
        if free is not None and free < need:  # refused before writing anything (a statvfs)
            raise OSError(errno.ENOSPC, f"No space left on device ({need:,} bytes needed, {free:,} free)")
        with atomic_path(path, durable=durable) as tmp:
            with h5_writer(tmp) as f:
                _put_attrs(f, attrs)
                for k, v in arrays.items():
                    if isinstance(v, RowMap):
                        v.write(f.create_dataset(k, shape=v.shape, dtype=v.dtype))
                    else:
                        f.create_dataset(k, data=np.asarray(v))
            sums = checksum(tmp)
    except OSError as e:
        raise write_error(e, f"writing {what} ({path.name})", path.parent) from None
    _remember(path, sums)
    return sums


def _put_attrs(f, attrs) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    for k, v in (attrs or {}).items():
        f.attrs[k] = v


def _write_h5_over(old: Path, path: Path, arrays: dict, attrs, durable) -> dict | None:
    """`write_h5` into the file ``old``, in place (see there); None, and ``old`` removed,
    where it does not hold the same datasets (then a new file is written)."""

    def same(f) -> bool:
        if set(f.keys()) != set(arrays):
            return False
        for k, v in arrays.items():
            ds, dtype = f[k], v.dtype if isinstance(v, RowMap) else np.asarray(v).dtype
            if not isinstance(ds, h5py.Dataset) or ds.shape != tuple(v.shape) or ds.dtype != dtype:
                return False
            if ds.chunks is not None or ds.compression is not None:
                return False
        return True

    try:
        with h5py.File(old, "r") as f:
            fits = same(f)
    except (OSError, ValueError, KeyError):
        fits = False
    if not fits:
        old.unlink(missing_ok=True)
        return None
    with atomic_path(path, durable=durable) as tmp:
        os.replace(old, tmp)
        with h5_writer(tmp, "r+") as f:
            _put_attrs(f, attrs)
            for k, v in arrays.items():
                if isinstance(v, RowMap):
                    v.write(f[k])
                else:
                    f[k][...] = np.asarray(v)
        sums = checksum(tmp)
    _remember(path, sums)
    return sums


def write_error(e: OSError, doing: str, where) -> UserError:
    """A failed write as one line: what was being written where, and why; nothing of it
    is left (every write goes through a temporary name), so the user can fix and rerun."""
    why = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file too large",
        errno.EROFS: "read-only file system",
        errno.EACCES: "permission denied",
    }.get(e.errno, e.strerror or str(e))
    if e.strerror and e.strerror.startswith("No space left on device ("):  # the early refusal
        why += " " + e.strerror.split(" ", 5)[5]
    hint = (
        "free space and run again"
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        else "fix that and run again"
    )
    return UserError(f"{where}: {why} while {doing}; nothing was changed, {hint}")


def read_h5(path: Path, expect: dict | None = None) -> dict:
    """The arrays of a checkpoint file; ``expect``: the manifest's checksum of it, verified
    first (a damaged file is refused, naming it)."""
    if expect is not None:
        verify_file(path, expect)
    with open_h5(path) as f:
        return {k: f[k][()] for k in f.keys()}


@contextlib.contextmanager
def open_h5(path: Path):
    """An ember checkpoint file, open for reading: a foreign file, or one h5py cannot
    read (then or while it is read), is one error naming it; so is a file written while
    it was read (a trainer writes a newer version over files no manifest names any more:
    a reader of an older version then gets an error, never a mix of two versions)."""
    try:
        with open(path, "rb") as raw:  # the inode read, to stamp (h5py reads it by its own)
            before = os.fstat(raw.fileno()).st_mtime_ns
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise InputFileError(f"{path}: not an ember checkpoint file")
                yield f
            if os.fstat(raw.fileno()).st_mtime_ns != before:
                raise InputFileError(
                    f"{path}: written over while it was read (a newer checkpoint version "
                    "replaced it: is `pbg train` running on this folder?); run again"
                )
    except OSError as e:
        raise InputFileError(f"{path}: unreadable checkpoint file ({e})") from None


# files this process wrote or verified, by path: (inode, size, mtime) -> checksum. A file
# unchanged since (the trainer reads back its own partitions bucket after bucket) is not
# read twice to verify; any change of it (a write in place changes its mtime) is.
_KNOWN: dict[str, tuple] = {}


def _stamp(path: Path):
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _remember(path: Path, sums: dict) -> None:
    try:
        _KNOWN[str(Path(path).absolute())] = (_stamp(path), sums)
    except OSError:
        pass


def verify_file(path: Path, expect: dict) -> None:
    """Refuse a file that is missing or is not the one the manifest recorded."""
    key = str(Path(path).absolute())
    known = _KNOWN.get(key)
    try:
        if known is not None and known[1] == expect and known[0] == _stamp(path):
            return
    except OSError:
        pass
    try:
        got = checksum(path)
    except FileNotFoundError:
        raise InputFileError(
            f"{path}: missing, but the checkpoint manifest names it (run `pbg checkpoint recover` "
            "to go back to the last complete version)"
        ) from None
    except OSError as e:
        raise InputFileError(f"{path}: unreadable checkpoint file ({e.strerror or e})") from None
    if got != expect:
        what = (
            f"{got['bytes']} bytes, the manifest recorded {expect['bytes']}"
            if got["bytes"] != expect["bytes"]
            else f"CRC-32 {got['crc32']}, the manifest recorded {expect['crc32']}"
        )
        raise InputFileError(
            f"{path}: damaged checkpoint file ({what}); it is refused rather than used "
            "(`pbg checkpoint recover` goes back to the last complete version, if one is intact)"
        )
    _remember(path, got)


def _check_manifest(m, mpath: Path) -> dict:
    """The manifest's fields with the types the code relies on, or one error naming the
    file and the field (a hand-edited or foreign file is refused, never half-read)."""
    if not isinstance(m, dict):
        raise InputFileError(f"{mpath}: not an ember checkpoint manifest (a JSON {type(m).__name__})")
    if m.get("format") != FORMAT:
        raise InputFileError(f"{mpath}: not an ember checkpoint manifest")
    want = {"version": int, "files": dict, "position": dict, "model": dict, "config": dict}
    for k, t in want.items():
        v = m.get(k)
        if k in ("position", "model", "config") and v is None:
            continue
        if not isinstance(v, t) or isinstance(v, bool):
            expected = "an integer" if t is int else "an object"
            raise InputFileError(f"{mpath}: field {k!r} is {json.dumps(v)[:40]}, expected {expected}")
    if m["version"] < 0:
        raise InputFileError(f"{mpath}: field 'version' is {m['version']}, expected >= 0")
    for k, v in m["files"].items():
        if not isinstance(v, str) or not _FILE.match(v):
            raise InputFileError(
                f"{mpath}: files[{k!r}] = {json.dumps(v)[:60]} is not a checkpoint file name"
            )
    sums = m.get("checksums", {})
    if not isinstance(sums, dict) or not all(
        isinstance(c, dict) and isinstance(c.get("crc32"), str) and isinstance(c.get("bytes"), int)
        for c in sums.values()
    ):
        raise InputFileError(f"{mpath}: field 'checksums' is malformed")
    return m


def write_json_atomic(path: Path, obj, durable=True) -> None:
    _write_json(path, obj, durable=durable, sort_keys=True)


def _grown(old, new) -> bool:
    """True if every partition of ``new`` holds at least the entities of ``old``."""
    if not isinstance(old, dict) or not isinstance(new, dict) or old.keys() != new.keys():
        return False
    return all(len(old[t]) == len(new[t]) and all(a <= b for a, b in zip(old[t], new[t])) for t in old)


def _check_operators(where, theirs, ours) -> None:
    """Name the first relation whose operator differs (``operators`` is one name for all
    relations, or a list with one per relation)."""
    if not isinstance(theirs, list) and not isinstance(ours, list):
        return
    n = len(theirs) if isinstance(theirs, list) else len(ours)
    a = theirs if isinstance(theirs, list) else [theirs] * n
    b = ours if isinstance(ours, list) else [ours] * n
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            raise UserError(
                f"{where}: checkpoint does not match the config/workspace: the "
                f"operator of relation {i} (relations.{i}.operator) is {x!r} in "
                f"the checkpoint, {y!r} now (use a new checkpoint_path, or "
                "delete this one to start over)"
            )


def lock_folder(path, who: str = "pbg train") -> FileLock:
    """The exclusive lock of a checkpoint folder (created if need be), held until
    released or until the process ends, however it ends; refused at once, naming the
    holder's PID, while another process holds it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"checkpoint_path = {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        return FileLock(path / LOCK).acquire()
    except Busy as e:
        raise UserError(
            f"{path}: in use by another {who} (PID {e.pid or 'unknown'}); two writers would "
            "overwrite each other's files: wait for it to end (or stop it)"
        ) from None
    except OSError as e:
        raise write_error(e, "creating the checkpoint folder", path) from None


class Checkpoint:
    """The checkpoint folder of one training run.

    >>> ck = Checkpoint("ws/checkpoints")          # doctest: +SKIP
    >>> ck.manifest["position"]                    # doctest: +SKIP
    {'epoch': 3, 'edge_chunk': 0, 'bucket': 0}
    """

    def __init__(self, path):
        self.path = Path(path)
        self.manifest: dict | None = None
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"checkpoint_path = {self.path}: is a file, not a folder")
        mpath = self.path / MANIFEST
        if mpath.is_file():
            try:
                m = json.loads(mpath.read_text())
            except (OSError, ValueError) as e:
                raise InputFileError(f"{mpath}: unreadable checkpoint manifest ({e})") from None
            self.manifest = _check_manifest(m, mpath)
        self._files: dict[str, str] = dict(self.manifest["files"]) if self.manifest else {}
        self._sums: dict[str, dict] = dict(self.manifest.get("checksums", {})) if self.manifest else {}
        self.version = self.manifest["version"] if self.manifest else 0
        self.durable = True
        self._lock: FileLock | None = None
        # partition files this object wrote (name -> entity type, shape), the version
        # begun's count of them, and spares: files the last commit superseded, to be
        # written over by the next saves of partitions of the same type and shape
        self._mine: dict[str, tuple] = {}
        self._saved = 0
        self._spares: list[tuple[Path, tuple]] = []

    @property
    def exists(self) -> bool:
        return self.manifest is not None

    # -- one writer ---------------------------------------------------------------
    def lock(self, who: str = "pbg train") -> Checkpoint:
        """Take the folder's exclusive lock (``lock_folder``) until ``unlock``."""
        self._lock = lock_folder(self.path, who)
        return self

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def orphans(self) -> list[str]:
        """Checkpoint files in a folder that has no manifest (it was deleted or lost)."""
        if self.exists or not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if _FILE.match(p.name))

    # -- compatibility ----------------------------------------------------------
    def check_compatible(self, model_desc: dict, workspace_id: str | None = None) -> None:
        """Refuse a checkpoint whose model shape differs, or that was trained on another
        workspace, naming what differs."""
        if not self.manifest:
            return
        theirs_ws = self.manifest.get("workspace_id")
        if workspace_id is not None and theirs_ws is not None and theirs_ws != workspace_id:
            raise UserError(
                f"{self.path / MANIFEST}: the checkpoint was trained on workspace {theirs_ws}, "
                f"this config's workspace is {workspace_id} (another import, or a re-import: "
                "its entity ids need not line up); use a new checkpoint_path, or delete this one"
            )
        theirs = self.manifest.get("model") or {}
        for k in MODEL_KEYS:
            if k == "entity_counts" and _grown(theirs.get(k), model_desc.get(k)):
                continue  # `pbg import --append` added entities: they start fresh
            if k == "operators" and theirs.get(k) != model_desc.get(k):
                _check_operators(self.path / MANIFEST, theirs.get(k), model_desc.get(k))
            if theirs.get(k) != model_desc.get(k):
                raise UserError(
                    f"{self.path / MANIFEST}: checkpoint does not match the config/workspace: "
                    f"{k} is {theirs.get(k)!r} in the checkpoint, {model_desc.get(k)!r} now "
                    "(use a new checkpoint_path, or delete this one to start over)"
                )

    # -- reading ----------------------------------------------------------------
    def has_partition(self, etype: str, part: int) -> bool:
        return f"embeddings/{etype}/{part}" in self._files

    def file_path(self, key: str) -> Path:
        """The file the manifest names for ``key`` (``embeddings/TYPE/PART``, ``relations``),
        verified against its checksum (when the manifest has one)."""
        name = self._files[key]
        path = self.path / name
        if name in self._sums:
            verify_file(path, self._sums[name])
        return path

    def load_partition(self, etype: str, part: int):
        """(embeddings, optimizer state) of one partition, as numpy arrays."""
        d = read_h5(self.file_path(f"embeddings/{etype}/{part}"))
        return d["embeddings"], d["state"]

    def read_partition_into(self, etype: str, part: int, emb, state, fn=None, add=None) -> int:
        """Read one partition into the leading rows of ``emb`` and ``state`` (preallocated;
        the dtype of ``emb`` is the table's), block by block: no whole copy of the table
        is made. ``fn(block, out)`` (a layout change) writes each block as read into its
        rows of ``emb``; ``add`` (a row, the type's global embedding) is added to each
        block while it is in cache. Without ``fn``, rows of the table's dtype are read
        straight into ``emb``. Returns the rows read; a partition with more rows than
        ``emb`` is refused."""
        path = self.file_path(f"embeddings/{etype}/{part}")
        with open_h5(path) as f:
            ds, st = f["embeddings"], f["state"]
            n = ds.shape[0]
            if n > len(emb) or ds.shape[1:] != emb.shape[1:] or st.shape != (n,):
                raise UserError(
                    f"{path}: partition {part} of {etype!r} holds {n} entities of shape "
                    f"{ds.shape[1:]}, the workspace has {len(emb)} of shape {emb.shape[1:]}"
                )
            step = _block_rows(ds.dtype.itemsize * int(np.prod(ds.shape[1:])))
            direct = fn is None and ds.dtype == emb.dtype and emb.flags.c_contiguous
            buf = None if direct else np.empty((min(step, n), *ds.shape[1:]), ds.dtype)
            for s in range(0, n, step):
                e = min(s + step, n)
                if direct:  # no block in between (a copy of each through the caches)
                    ds.read_direct(emb, np.s_[s:e], np.s_[s:e])
                else:
                    ds.read_direct(buf, np.s_[s:e], np.s_[: e - s])
                    if fn is not None:
                        fn(buf[: e - s], emb[s:e])
                    else:
                        emb[s:e] = buf[: e - s]
                if add is not None:
                    emb[s:e] += add
            st.read_direct(state, np.s_[:], np.s_[:n])
        return n

    def has_relations(self) -> bool:
        return "relations" in self._files

    def load_relations(self) -> dict:
        d = read_h5(self.file_path("relations"))
        d.pop("manifest", None)
        return d

    # -- writing ----------------------------------------------------------------
    def begin(self, durable: bool = True) -> int:
        """Start a new version; returns its number. Every version survives ``kill -9``
        (rename is atomic); a ``durable`` one is also fsynced, so it survives a power
        loss: the trainer makes the version that ends an epoch durable, and skips the
        fsyncs of the per-bucket ones, which cost more than training a small bucket."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.version += 1
        self.durable = durable
        return self.version

    def save_partition(self, etype: str, part: int, emb, state) -> None:
        """Write one partition of the version begun: into a spare of the same type and
        shape where there is one (a superseded file, written over in place), else into a
        new file."""
        name = f"embeddings_{etype}_{part}.v{self.version}.h5"
        kind = (etype, tuple(emb.shape))
        over = next((i for i, (_, k) in enumerate(self._spares) if k == kind), None)
        self._sums[name] = write_h5(
            self.path / name,
            {"embeddings": emb, "state": state},
            {"entity_type": etype, "partition": part},
            durable=self.durable,
            what=f"checkpoint partition {part} of {etype!r}",
            over=None if over is None else self._spares.pop(over)[0],
        )
        self._files[f"embeddings/{etype}/{part}"] = name
        self._mine[name] = kind
        self._saved += 1

    def commit(
        self,
        *,
        config: dict,
        model: dict,
        position: dict,
        relations: dict,
        workspace_id: str | None = None,
        extra: dict | None = None,
    ):
        """Write the relation parameters (with this version's manifest embedded), then
        the manifest (the checkpoint is complete from here on), then delete files that no
        manifest names any more."""
        name = f"relations.v{self.version}.h5"
        self._files["relations"] = name
        files = dict(self._files)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "complete": True,
            "workspace_id": workspace_id,
            "config": config,
            "model": model,
            "position": position,
            "files": files,
            **(extra or {}),
        }
        sums = {n: self._sums[n] for n in files.values() if n in self._sums}
        embedded = json.dumps({**manifest, "checksums": sums}, sort_keys=True).encode()
        arrays = {**relations, "manifest": np.frombuffer(embedded, np.uint8)}
        self._sums[name] = write_h5(
            self.path / name, arrays, durable=self.durable, what="checkpoint relations"
        )
        self._sums = {n: self._sums[n] for n in files.values() if n in self._sums}
        self.manifest = {**manifest, "checksums": dict(self._sums)}
        try:
            write_json_atomic(self.path / MANIFEST, self.manifest, durable=self.durable)
        except OSError as e:
            raise write_error(e, "writing the checkpoint manifest", self.path) from None
        self._retire(set(self._files.values()))

    def _retire(self, keep: set) -> None:
        """After a commit: files no manifest names are removed, but for one more than the
        version just written saved (the next one saves about as many), which are kept as
        spares: partition files this object wrote that no snapshot links, renamed to a
        temporary name (gone with the process) and written over by the next saves (a new
        file's pages cost more to allocate than to fill). The files just superseded come
        first, then the spares not taken (partitions of one type differ in size by a row,
        and a spare fits only its own size); the rest go."""
        cap = self._saved + 1 if self._saved else 0
        fresh = []
        for p in self.path.iterdir():
            if p.is_file() and _FILE.match(p.name) and p.name not in keep:
                kind = self._mine.pop(p.name, None)
                if kind is not None and len(fresh) < cap and p.stat().st_nlink == 1:
                    fresh.append((p, kind))
                else:
                    p.unlink(missing_ok=True)
        spares = []
        for p, kind in fresh:
            spare = p.with_name(f".{p.name}.spare.tmp-{os.getpid()}")
            try:
                os.replace(p, spare)
            except OSError:
                p.unlink(missing_ok=True)
                continue
            spares.append((spare, kind))
        untaken, self._spares, self._saved = self._spares, [], 0
        self._spares = spares + untaken[: max(0, cap - len(spares))]
        held = {p.name for p, _ in self._spares}
        for p in self.path.iterdir():  # spares not kept, temp files of killed writers
            if p.is_file() and p.name.startswith(".") and ".tmp" in p.name and p.name not in held:
                p.unlink(missing_ok=True)

    def drop_spares(self) -> None:
        """Remove the spares (a trainer's last act, however it ends)."""
        for p, _ in self._spares:
            p.unlink(missing_ok=True)
        self._spares = []

    def verify(self) -> list[str]:
        """Every file the manifest names, checked against its checksum; returns the
        problems (empty: the checkpoint is intact)."""
        problems = []
        for name in sorted(set(self._files.values())):
            try:
                if name in self._sums:
                    verify_file(self.path / name, self._sums[name])
                elif not (self.path / name).is_file():
                    problems.append(f"{self.path / name}: missing, but the manifest names it")
            except InputFileError as e:
                problems.append(str(e))
        return problems

    def preserve(self, epoch: int) -> Path:
        """Keep a snapshot of the current checkpoint in ``epoch_<E>/`` (hard links)."""
        snap = self.path / f"epoch_{epoch}"
        snap.mkdir(exist_ok=True)
        for name in self._files.values():
            dst = snap / name
            if not dst.exists():
                try:
                    os.link(self.path / name, dst)
                except OSError:
                    dst.write_bytes((self.path / name).read_bytes())
        write_json_atomic(snap / MANIFEST, self.manifest)
        return snap

    def append_stats(self, row: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / STATS, "a") as f:
            f.write(json.dumps(row) + "\n")


def _version_of(name: str) -> int:
    m = _FILE.match(name)
    return int(m.group(2)) if m else -1


def _embedded_manifest(path: Path) -> dict | None:
    """The manifest a relations file embeds (None: unreadable, or an older file)."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT or "manifest" not in f:
                return None
            return json.loads(bytes(f["manifest"][()]).decode())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def recover(path) -> dict:
    """Bring a checkpoint folder back to its last complete, intact version: the
    manifest's own if every file it names is intact; else the newest version whose
    relations file (which embeds that version's manifest) and every file named there
    are intact; else the newest intact ``epoch_<E>`` snapshot (its files linked back).
    Returns what was done (``status``: intact, recovered or restored, and ``version``);
    refuses with an error when nothing intact is left."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such checkpoint folder")
    ck = None
    try:
        ck = Checkpoint(path)
    except InputFileError:
        pass
    if ck is not None:
        ck.lock("pbg train or pbg checkpoint recover")
    try:
        if ck is not None and ck.exists and not ck.verify():
            return {"status": "intact", "version": ck.version, "checkpoint": str(path)}
        rels = sorted(
            (p for p in path.iterdir() if p.name.startswith("relations.v")),
            key=lambda p: -_version_of(p.name),
        )
        for rel in rels:
            m = _embedded_manifest(rel)
            if m is None or m.get("files", {}).get("relations") != rel.name:
                continue
            sums = dict(m.get("checksums", {}))
            sums[rel.name] = checksum(rel)
            m["checksums"] = sums
            try:
                cand = _check_manifest(m, rel)
            except InputFileError:
                continue
            probe = Checkpoint.__new__(Checkpoint)
            probe.path, probe._files, probe._sums = path, dict(cand["files"]), sums
            if probe.verify():
                continue
            write_json_atomic(path / MANIFEST, cand)
            return {
                "status": "recovered",
                "version": cand["version"],
                "from": rel.name,
                "checkpoint": str(path),
            }
        snaps = sorted(path.glob("epoch_*"), key=lambda p: -int(p.name[6:]) if p.name[6:].isdigit() else 0)
        for snap in snaps:
            try:
                s = Checkpoint(snap)
            except (InputFileError, UserError):
                continue
            if not s.exists or s.verify():
                continue
            for name in set(s._files.values()):
                tmp = path / f".{name}.tmp-{os.getpid()}"
                tmp.unlink(missing_ok=True)
                try:
                    os.link(snap / name, tmp)
                except OSError:
                    tmp.write_bytes((snap / name).read_bytes())
                os.replace(tmp, path / name)
            write_json_atomic(path / MANIFEST, s.manifest)
            return {"status": "restored", "version": s.version, "from": snap.name, "checkpoint": str(path)}
        raise UserError(
            f"{path}: no intact checkpoint version left to go back to (no intact manifest, relations "
            "file or epoch snapshot); delete the folder's files to start over"
        )
    finally:
        if ck is not None:
            ck.unlock()
