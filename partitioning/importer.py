"""`pbg import`: stream edge files into a partitioned workspace.

Pass one reads the input once, in blocks of about a million edges, through a pipeline
with one block per stage: parse (pyarrow's CSV reader); hash the block's lhs and rhs
names together into a block-local dictionary (``dictionary_encode``, independent of
the global state, so it runs ahead); map the block's distinct names to global ids in
input order, adding unseen ones (an open-addressing hash table, see ``dictionary``):
an entity's (partition, offset) follows from its id at once; route the edges: gather
every row's partition and offset from the per-name arrays, count self-loops and
entity counts, decide each edge's split (a seeded hash of its position) and append it
to its bucket's buffer; full buffers spill to per-bucket scratch files in large
appends. Pass two takes one bucket at a time, counts (and on request drops)
duplicates and valid/test edges with entities unseen in train (which needs every
train edge), and writes the shards. Only the dictionaries grow with the graph;
everything else is bounded by the block size, the buffer budget and one bucket.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ember._bits import GAMMA, splitmix64
from ember._io import BAR_FORMAT, Busy, FileLock, fsync_dir, remove_stale, rename_exchange
from ember.errors import InputFileError, UserError
from ember.partitioning import layout, native
from ember.partitioning.datamodel import (
    DEFAULT_RELATION,
    DEFAULT_TYPE,
    DataModel,
    RelationSpec,
    default_model,
    model_from_config,
    shard_format_from_config,
)
from ember.partitioning.dictionary import (
    EntityDictionary,
    HashCollision,
    kernel_hash_is_current,
    local_encode,
    name_hashes,
)
from ember.partitioning.features import FeatureReader, write_bags
from ember.partitioning.readers import BadLines, EdgeSpec, iter_blocks, locate_name
from ember.partitioning.shards import read_shard, write_shard

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ember-import")
MAX_PARTITIONS = 1024  # P^2 buckets: 10^6 shards already; more is a typo, not a plan
# what a killed run leaves next to a workspace, or inside it (removed once it is gone)
_STALE_NEXT = r"\.{name}\.(importing|old)-(?P<pid>\d+)"
_STALE_INSIDE = re.compile(r"\.append-(?P<pid>\d+)")
# the workspace's own files (a re-import replaces them); anything else is the user's
_IMPORT_MADE = {layout.MANIFEST, layout.CONFIG, layout.REJECTED, "entities", "edges", "relations.parquet"}
_after_step = None  # a test hook: called with each step of an append's commit
_MAX_LISTED_RELATIONS = 100  # more and the config uses dynamic_relations
_SPLIT_ID = {s: i for i, s in enumerate(layout.SPLITS)}


@dataclass
class ImportOptions:
    spec: EdgeSpec = field(default_factory=EdgeSpec)
    out: Path | None = None
    config: Path | None = None
    num_partitions: int = 1
    shard_format: str | None = None  # None: the config's edge_format, else hdf5
    valid_fraction: float = 0.0
    test_fraction: float = 0.0
    valid: list[Path] = field(default_factory=list)
    test: list[Path] = field(default_factory=list)
    seed: int = 0
    overwrite: bool = False
    delete_checkpoints: bool = False  # --overwrite may delete what training left in it
    skip_bad_lines: bool = False
    drop_duplicates: bool = False
    drop_self_loops: bool = False
    drop_unseen: bool = False
    progress: bool = False
    buffer_bytes: int = 256 << 20  # bucket buffers spill to scratch files beyond this
    read_block_bytes: int = 8 << 20  # pyarrow's CSV block size
    min_block_rows: int = 1 << 20  # rows encoded together
    features: dict = field(default_factory=dict)  # featurized type -> its --features file


def default_workspace_path(first_input: Path) -> Path:
    p = Path(first_input)
    stem = p.name.split(".")[0] or "edges"
    return p.parent / f"{stem}_pbg"


def import_edges(inputs: list[Path], opts: ImportOptions) -> dict:
    """Create a new workspace from edge files; returns the summary."""
    if not inputs:
        raise UserError("no edge files given")
    out = Path(opts.out) if opts.out else default_workspace_path(inputs[0])
    if opts.num_partitions > MAX_PARTITIONS:
        raise UserError(
            f"--partitions {opts.num_partitions}: at most {MAX_PARTITIONS} ({MAX_PARTITIONS**2:,} buckets); "
            "a graph needs far fewer (each holds two partitions in memory: see README)"
        )
    with _target_lock(out):
        return _import_locked(inputs, out, opts)


def _import_locked(inputs: list[Path], out: Path, opts: ImportOptions) -> dict:
    _clean_stale_next_to(out)
    _check_target(out, opts.overwrite, opts.delete_checkpoints)
    _check_fractions(opts)
    # the user's --config is read once: its data model, its shard format, and (validated
    # through the config schema up front, before any edge is read) its training settings
    user = _read_user_config(opts.config) if opts.config else None
    where = str(opts.config)
    model = model_from_config(user, where) if user is not None else default_model(opts.num_partitions)
    if opts.num_partitions < 1:
        raise UserError("--partitions must be at least 1")
    _check_features(model, opts, where if user is not None else None)
    fmt = opts.shard_format or (shard_format_from_config(user, where) if user is not None else None) or "hdf5"
    if fmt not in layout.SHARD_SUFFIX:
        raise UserError(f"unknown shard format {fmt!r} (choose hdf5 or arrow)")
    stage = out.parent / f".{out.name}.importing-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir(parents=True)
        if user is not None:  # a bad training key fails now, not after the whole import
            _config_text(model, out, fmt, opts.seed, user, where)
        ws_id = layout.new_workspace_id()
        summary = _run_importer(
            lambda: _Importer(stage, model, opts, ws_id, fmt, opts.seed, user=user, target=out),
            stage,
            _sources(inputs, opts),
        )
        _fsync_tree(stage)  # the workspace survives a power loss once its name is there
        _replace_dir(stage, out)
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        if e.errno is None:  # not the system's refusal: a bug, with its traceback
            raise
        raise _write_failed(e, f"importing into {out}") from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    summary["workspace"] = str(out)
    return summary


def _check_features(model: DataModel, opts: ImportOptions, config: str | None) -> None:
    """Which types are featurized: those the --config marks (each needs --features), or,
    without --config, the one default type when ``--features all=FILE`` is given."""
    for t, path in opts.features.items():
        flag = f"--features {t}={path}"
        if config is None:
            if t != DEFAULT_TYPE:
                raise UserError(
                    f"{flag}: no entity type {t!r}; without --config the one entity type is "
                    f"{DEFAULT_TYPE!r} (--features {DEFAULT_TYPE}=FILE), or give --config with "
                    f"entities.{t}.featurized = true"
                )
            if model.entities[t] > 1:
                raise UserError(
                    f"{flag}: a featurized entity type is not partitioned (a feature shared by "
                    "entities of two partitions would have to live in both); use --partitions 1"
                )
            model.featurized.add(t)
        elif t not in model.entities:
            raise UserError(
                f"{flag}: entity type {t!r} is not in {config}'s entities "
                f"(defined: {', '.join(map(repr, model.entities))})"
            )
        elif t not in model.featurized:
            raise UserError(
                f"{flag}: entities.{t}.featurized is not true in {config}; set it to make "
                f"{t!r} a featurized type"
            )
    for t in sorted(model.featurized):
        if t not in opts.features:
            raise UserError(
                f"{config}: entities.{t}.featurized = true, but no --features {t}=FILE gives the "
                f"features of its entities"
            )


def _read_user_config(path: Path) -> dict:
    from ember.pbg.config import read_config_file  # the schema's reader: TOML, JSON, PBG .py

    return read_config_file(path)


def _config_text(model: DataModel, folder: Path, fmt: str, seed: int, user, where: str) -> str:
    """The new workspace's config.toml, written by the config schema's own writer (its
    defaults and its documentation; ember.pbg.config is plain Python: no engine)."""
    from ember.pbg.config import workspace_config_toml

    return workspace_config_toml(
        model.to_json(), Path(folder).resolve(), edge_format=fmt, seed=seed, user=user, where=where
    )


def append_edges(inputs: list[Path], workspace: Path, opts: ImportOptions) -> dict:
    """Add edges (and new entities) to a workspace without renumbering anything."""
    workspace = Path(workspace)
    with _target_lock(workspace):
        return _append_locked(inputs, workspace, opts)


def _append_locked(inputs: list[Path], workspace: Path, opts: ImportOptions) -> dict:
    _clean_stale_next_to(workspace)
    m = layout.read_manifest(workspace)
    _check_fractions(opts)
    _clean_stale_inside(workspace, m)
    model = DataModel.from_json(m["model"])
    model.from_config = m["from_config"]
    if model.featurized or opts.features:
        raise UserError(
            f"{workspace}: --append does not support featurized entity types "
            f"({', '.join(sorted(model.featurized or opts.features))}): new entities need "
            "feature bags and new features would reshape the feature table a checkpoint was "
            "trained on; import all the edges again with their --features"
        )
    stage = workspace / f".append-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir()
        summary = _run_importer(
            lambda: _Importer(
                stage, model, opts, m["workspace_id"], m["shard_format"], m["seed"], previous=(workspace, m)
            ),
            stage,
            _sources(inputs, opts),
        )
        _commit_append(stage, workspace, m)
    except OSError as e:
        if e.errno is None:
            raise
        raise _write_failed(e, f"appending to {workspace}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    summary["workspace"] = str(workspace)
    return summary


def _commit_append(stage: Path, workspace: Path, old: dict) -> None:
    """Put an append's files in place so that a kill at any moment leaves the old or the
    new workspace, never a mix: every new file goes in under a new name (its generation's:
    ``edges_0_1.g3.h5``), which no manifest names yet; then one atomic rename of the
    manifest, which names them (``files``), switches the workspace over; only then are
    the files it no longer names removed (a kill before that leaves unnamed files, which
    the next append removes)."""
    new = layout.read_manifest(stage)
    gen = new["generation"]
    files = dict(old.get("files", {}))
    step = 0
    for p in sorted(q for q in stage.rglob("*") if q.is_file() and q.name != layout.MANIFEST):
        logical = p.relative_to(stage).as_posix()
        actual = layout.generation_name(logical, gen)
        (workspace / actual).parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, workspace / actual)
        files[logical] = actual
        step += 1
        if _after_step is not None:
            _after_step(step)
    _fsync_tree(workspace, only={files[k] for k in files})
    superseded = {layout.resolve_name(old, k) for k in files} - set(files.values())
    new["files"] = files
    layout.write_json_atomic(workspace / layout.MANIFEST, new, durable=True)  # the switch
    step += 1
    if _after_step is not None:
        _after_step(step)
    for name in sorted(superseded):
        (workspace / name).unlink(missing_ok=True)


def _target_lock(out: Path) -> FileLock:
    """The exclusive lock of an import target (a file next to it, ``.NAME.lock``): two
    imports into one workspace (or an import and an append) never run at once."""
    out = Path(out)
    lock = FileLock(out.parent / f".{out.name}.lock")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return lock.acquire()
    except Busy as e:
        raise UserError(
            f"{out}: another `pbg import` (PID {e.pid or 'unknown'}) is writing this workspace; wait "
            "for it to end (or stop it)"
        ) from None
    except OSError as e:
        raise _write_failed(e, f"importing into {out}") from None


def _clean_stale_next_to(out: Path) -> None:
    pattern = re.compile(_STALE_NEXT.format(name=re.escape(out.name)))
    for name in remove_stale(out.parent, pattern):
        print(
            f"note: removed {out.parent / name}, left by an earlier import that was killed", file=sys.stderr
        )


def _clean_stale_inside(workspace: Path, m: dict) -> None:
    """An append's staging folder and files of generations no manifest names (both left
    by an append killed before it finished)."""
    for name in remove_stale(workspace, _STALE_INSIDE):
        _note(f"removed {workspace / name}, left by an earlier append that was killed")
    named = set(m.get("files", {}).values())
    for p in workspace.rglob("*"):
        if (
            p.is_file()
            and layout.is_generation_name(p.name)
            and p.relative_to(workspace).as_posix() not in named
        ):
            p.unlink(missing_ok=True)
            _note(f"removed {p}, left by an earlier append that was killed")


def need_space(folder: Path, nbytes: int, doing: str) -> None:
    """Refuse, before writing, when ``folder``'s file system has less free space than
    ``nbytes`` (a statvfs: cheap); the write itself can still fail, and is handled."""
    import errno

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < nbytes:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: {doing} needs about {nbytes / 2**20:,.1f} MiB, "
            f"{free / 2**20:,.1f} MiB are free",
        )


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


def _fsync_tree(root: Path, only=None) -> None:
    """fsync every file (``only``: these, relative to root) and folder under ``root``."""
    from ember._io import fsync_file

    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            if only is None or p.relative_to(root).as_posix() in only:
                fsync_file(p)
        fsync_dir(dirpath)


def _write_failed(e: OSError, doing: str) -> UserError:
    """A write the system refused (a full disk, a read-only folder) as one error line;
    the staging files are removed, the workspace is as it was."""
    import errno

    why = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file too large",
    }.get(e.errno, e.strerror or str(e))
    if e.strerror and ": " in e.strerror:  # our own early refusal says how much was needed
        why += " (" + e.strerror.split(": ", 1)[1] + ")"
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    hint = "free space and run again" if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "run again"
    return UserError(f"{why} while {doing}{where}; nothing was changed, {hint}")


def _run_importer(make, stage: Path, sources) -> dict:
    """``make().run(sources)``; if two names turn out to share a 64-bit hash (found by the
    checks that run behind the dictionary, see ``dictionary``), once more from the start
    with every check made as the dictionary grows, where a collision is told apart by
    comparing names: a collision costs time, never the import."""
    try:
        return make().run(sources)
    except HashCollision as e:
        print(f"note: {e}; importing again, comparing names where hashes collide", file=sys.stderr)
    for p in list(stage.iterdir()):
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    imp = make()
    imp.defer_checks = False
    return imp.run(sources)


def _sources(inputs, opts):
    src = [(Path(p), None) for p in inputs]
    src += [(Path(p), "valid") for p in opts.valid]
    src += [(Path(p), "test") for p in opts.test]
    return src


def _check_fractions(opts):
    f = opts.valid_fraction + opts.test_fraction
    if opts.valid_fraction < 0 or opts.test_fraction < 0 or f >= 1:
        raise UserError("--valid-fraction and --test-fraction must be >= 0 and sum below 1")
    if f > 0 and (opts.valid or opts.test):
        raise UserError("give either --valid-fraction/--test-fraction or --valid/--test files")


def _check_target(out: Path, overwrite: bool, delete_checkpoints: bool = False) -> None:
    """--overwrite replaces a workspace and nothing else: never a file or a foreign
    folder, and never trained results inside a workspace unless asked explicitly."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise UserError(f"{out}: exists and is not a workspace folder; refusing to replace it")
    if not overwrite:
        raise UserError(
            f"{out}: workspace already exists (add --overwrite to replace it, "
            f"or use --append EDGES --into {out} to add edges)"
        )
    if any(out.iterdir()) and not (out / layout.MANIFEST).is_file():
        raise UserError(f"{out}: exists and is not an ember workspace; refusing to replace it")
    theirs = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir() if p.name not in _IMPORT_MADE)
    if theirs and not delete_checkpoints:
        raise UserError(
            f"{out}: holds {', '.join(theirs[:4])}{', ...' if len(theirs) > 4 else ''} besides the "
            "imported data (trained checkpoints, exports): --overwrite would delete them; move them "
            "out first, or add --delete-checkpoints"
        )


def _replace_dir(stage: Path, out: Path) -> None:
    """Put the staged workspace at ``out``: one atomic exchange where the system has it
    (a kill at any moment leaves the old workspace or the new one at ``out``), else two
    renames."""
    if out.exists():
        if rename_exchange(stage, out):
            fsync_dir(out.parent)
            shutil.rmtree(stage, ignore_errors=True)  # the old workspace, now under the stage's name
            return
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, trash)
        os.replace(stage, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(stage, out)
    fsync_dir(out.parent)


def peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


class _Progress:
    """A progress bar on stderr (tqdm), only when stderr is a terminal: pass one over the
    input's bytes as the parser consumes them (edges/s in the postfix), pass two over
    the buckets."""

    def __init__(self, enabled: bool, label: str, total: int, unit: str = "B"):
        self.on = enabled and sys.stderr.isatty()
        self.bar = None
        if self.on:
            from tqdm import tqdm

            scale = unit == "B"
            self.bar = tqdm(
                total=max(total, 1),
                desc=label,
                unit=unit,
                unit_scale=scale,
                dynamic_ncols=True,
                bar_format=BAR_FORMAT,
            )
        self.t0 = time.time()

    def update(self, done: int, edges: int) -> None:
        if self.bar is None:
            return
        self.bar.update(max(0, min(done, self.bar.total) - self.bar.n))
        if edges:
            self.bar.set_postfix_str(
                f"{edges / max(time.time() - self.t0, 1e-9):,.0f} edges/s", refresh=False
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Importer:
    def __init__(
        self,
        stage: Path,
        model: DataModel,
        opts: ImportOptions,
        ws_id: str,
        fmt: str,
        seed: int,
        previous=None,
        user: dict | None = None,
        target: Path | None = None,
    ):
        self.stage, self.model, self.opts = stage, model, opts
        self.user, self.target = user, target  # the user's --config, the final folder
        self.ws_id, self.fmt, self.seed = ws_id, fmt, int(seed)
        self.previous = previous
        self.defer_checks = True  # name checks run in the routing stage (see _run_importer)
        self.native = None  # the compiled name encoder (see run), or None: the numpy path
        self.t0 = time.time()
        self.bad = BadLines(skip=opts.skip_bad_lines)
        self.stats = {"input_edges": 0, "self_loops": 0, "duplicates": 0, "unseen": {"valid": 0, "test": 0}}
        self.edge_index = 0
        self.buffers: dict[int, list[tuple]] = {}
        self.buffered = 0
        self.spilled: set[int] = set()
        self.spill_dir = stage / ".scratch"
        if previous is not None:
            self._load_previous(*previous)
        else:
            self.dicts = {t: EntityDictionary(t, p, seed) for t, p in model.entities.items()}
            self.rels = EntityDictionary("__relations__", 1, seed)
            if model.from_config and not model.dynamic_relations:
                self.rels.encode(pa.array([r.name for r in model.relations]))
        # featurized types: the features file lists their entities first (ids 0, 1, ...)
        self.features: dict[str, FeatureReader] = {}
        for t in sorted(model.featurized if previous is None else ()):
            self.features[t] = FeatureReader(t, self.dicts[t], seed)
            self.features[t].read(opts.features[t])
        self.weighted = opts.spec.weight_col is not None
        # the relation names are fixed by a config, or by an earlier import (a config
        # already lists them); only dynamic relations grow
        self.fixed_relations = not model.dynamic_relations and (model.from_config or previous is not None)

    def _load_previous(self, root: Path, m: dict) -> None:
        self.dicts = {}
        for t, p in self.model.entities.items():
            tables = [
                pq.read_table(layout.resolved(root, m, layout.entity_names_path(root, t, i)))
                for i in range(p)
            ]
            self.dicts[t] = EntityDictionary.from_partition_tables(t, p, self.seed, tables)
        rt = pq.read_table(layout.resolved(root, m, layout.relations_path(root)))
        self.rels = EntityDictionary(
            "__relations__",
            1,
            self.seed,
            rt.column("name").combine_chunks(),
            rt.column("count").to_numpy(),
            rt.column("train_count").to_numpy(),
        )
        self.edge_index = int(m["edges_seen"])
        self.old_buckets = m["buckets"]
        if m.get("weighted") and self.opts.spec.weight_col is None:
            raise UserError(f"{root}: the workspace has edge weights; give --weight-col")

    # -- pass one -----------------------------------------------------------------
    def run(self, sources) -> dict:
        relations = None
        if self.fixed_relations:
            relations = pa.array([r.name for r in self.model.relations], pa.string())
        total = sum(os.path.getsize(p) for p, _ in sources if Path(p).is_file())
        # the compiled name encoder, or None: numpy (also where the kernel would not
        # compute this module's hash_strings: a test's stand-in for it, say)
        self.native = native.kernel(total) if kernel_hash_is_current() else None
        prog = _Progress(self.opts.progress, "pass 1/2", total)
        done = 0
        # a pipeline, one block per stage: this thread parses (pyarrow); a worker
        # hashes each block's names into a block-local dictionary (pyarrow, independent
        # of the global dictionary, so it runs ahead); a worker maps them to global ids
        # in input order (the dictionaries grow there, so ids are deterministic); a
        # worker routes the edges to their buckets (numpy). All release the GIL.
        self._routing = None
        self._route_pool = ThreadPoolExecutor(max_workers=1)
        one_type = len(self.model.entities) == 1
        try:
            with ThreadPoolExecutor(max_workers=1) as local_pool, ThreadPoolExecutor(max_workers=1) as pool:
                pending: list = []
                for path, split in sources:
                    for block in iter_blocks(
                        path,
                        self.opts.spec,
                        self.bad,
                        relations=relations,
                        block_rows=self._block_rows,
                        block_bytes=self.opts.read_block_bytes,
                        tokenizer=self.native,
                    ):
                        while len(pending) >= 2:  # bounded: two blocks ahead at most
                            pending.pop(0).result()
                        # (with the kernel, names are encoded in _add_block; relations here,
                        # by pyarrow: for a few distinct names, 1.5x faster than the kernel)
                        pre = local_pool.submit(_local_encode, block, one_type and self.native is None)
                        pending.append(pool.submit(self._add_block, path, block, split, pre))
                        prog.update(done + block.progress, self.stats["input_edges"])
                    done += os.path.getsize(path)
                for f in pending:
                    f.result()
            if self._routing is not None:
                self._routing.result()
        finally:
            self._route_pool.shutdown(wait=True, cancel_futures=True)
        prog.update(total, self.stats["input_edges"])
        prog.close()
        if self.stats["input_edges"] == 0 and self.previous is None:
            raise InputFileError(f"{sources[0][0]}: no edges (every line was rejected)")
        if self.weighted is False and self.previous and self.previous[1].get("weighted"):
            raise UserError("the workspace has edge weights; give --weight-col")
        self._check_bags(sources)
        return self._finish()

    def _check_bags(self, sources) -> None:
        """Every entity of a featurized type in the edges has a features line: the edges
        added no name to its dictionary beyond those the features file listed."""
        for t, fr in self.features.items():
            d = self.dicts[t]
            if len(d) == fr.num_entities:
                continue
            name = d.names[fr.num_entities].as_py()  # the first one, in input order
            types, lt, rt = self._types(len(self.rels))
            ti = types.index(t)
            rel_names = self.rels.names.to_pylist()
            sides = {n: (lt[i] == ti, rt[i] == ti) for i, n in enumerate(rel_names)}
            for path, _ in sources:
                line = locate_name(path, self.opts.spec, name, sides)
                if line is not None:
                    raise InputFileError(
                        f"{path}:{line}: entity {name!r} of featurized type {t!r} has no features "
                        f"(no line for it in {fr.path})"
                    )
            raise InputFileError(f"entity {name!r} of featurized type {t!r} has no features in {fr.path}")

    def _block_rows(self) -> int:
        # a block's cost is O(its rows + its distinct names), whatever the size of the
        # dictionary (a hash table), so blocks stay small: arrow's per-block hash table
        # stays in cache and numpy's temporaries are reused rather than page-faulted
        return self.opts.min_block_rows

    def _relation_ids(self, path, block, pre=None) -> np.ndarray:
        n = len(block.lhs)
        if block.rel is None:
            name = DEFAULT_RELATION
            if self.fixed_relations:
                names = [r.name for r in self.model.relations]
                if len(names) != 1:
                    raise InputFileError(
                        f"{path}: a 2-column edge list needs exactly one "
                        f"relation (the data model has {len(names)})"
                    )
                name = names[0]
            rid = int(self.rels.encode(pa.array([name]))[0])
            return np.full(n, rid, np.int64)
        uniq, local = pre if pre is not None else local_encode([block.rel])
        if self.fixed_relations:  # unknown names were rejected by the reader
            return self.rels.lookup(uniq)[local]
        return self.rels.add_distinct([uniq])[0][local]

    def _types(self, nrel: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Entity type names and, per relation id, the lhs / rhs type index."""
        m = self.model
        types = list(m.entities)
        if m.from_config and not m.dynamic_relations:
            lt = np.array([types.index(r.lhs) for r in m.relations], np.int64)
            rt = np.array([types.index(r.rhs) for r in m.relations], np.int64)
        else:
            r0 = m.relations[0] if m.relations else RelationSpec("", DEFAULT_TYPE, DEFAULT_TYPE)
            lt = np.full(nrel, types.index(r0.lhs), np.int64)
            rt = np.full(nrel, types.index(r0.rhs), np.int64)
        return types, lt, rt

    def _add_block(self, path, block, fixed_split, pre=None) -> None:
        """Relation ids, splits, and the names' global ids (the dictionaries grow here,
        block after block); then hands the block to the routing stage. ``pre``: a
        future of ``_local_encode(block)``."""
        n = len(block.lhs)
        pre = pre.result() if pre is not None else {}
        rel = self._relation_ids(path, block, pre.get("rel"))
        types, lt, rt = self._types(len(self.rels))
        # split: a seeded hash of the edge's position in the input, so the same files
        # and seed give the same split whatever the block boundaries
        self.stats["input_edges"] += n
        vf, tf = self.opts.valid_fraction, self.opts.test_fraction
        if fixed_split is not None or vf + tf == 0:
            split = _SPLIT_ID[fixed_split or "train"]  # one split for the whole block
        else:
            idx = np.arange(self.edge_index, self.edge_index + n, dtype=np.uint64)
            u = (splitmix64(idx ^ np.uint64(self.seed * 0x9E3779B1 + 7)) >> np.uint64(11)).astype(
                np.float64
            ) / float(1 << 53)
            split = np.where(u < vf, 1, np.where(u < vf + tf, 2, 0)).astype(np.int8)
            del idx, u
        self.edge_index += n
        # each side's names are encoded once per block; the routing stage gathers every
        # row's partition and offset from these per-name arrays
        sides = []  # (dictionary, ids of the distinct names, row -> name, row mask)
        checks: list = []  # name verifications left to the routing stage
        ltype = rtype = None
        if len(types) == 1:
            d = self.dicts[types[0]]
            if "names" in pre:
                uniq, local, h = pre["names"]
                later = checks if self.defer_checks else None
                (ul, il), (ur, ir) = d.add_encoded(uniq, local, [n, n], h, later)
            else:
                (ul, il), (ur, ir) = d.encode_parts_local([block.lhs, block.rhs], native=self.native)
            sides = [(d, ul, il, None, "l"), (d, ur, ir, None, "r")]
        else:
            ltype, rtype = lt[rel], rt[rel]
            for ti, t in enumerate(types):
                ml, mr = ltype == ti, rtype == ti
                cl, cr = int(ml.sum()), int(mr.sum())
                if cl + cr == 0:
                    continue
                d = self.dicts[t]
                lhs = block.lhs if cl == n else block.lhs.filter(pa.array(ml))
                rhs = block.rhs if cr == n else block.rhs.filter(pa.array(mr))
                (ul, il), (ur, ir) = d.encode_parts_local([lhs, rhs], _POOL, self.native)
                if cl:
                    sides.append((d, ul, il, None if cl == n else ml, "l"))
                if cr:
                    sides.append((d, ur, ir, None if cr == n else mr, "r"))
        for d in self.dicts.values():
            if len(d) // d.num_partitions >= 2**31 - 1:  # offsets are stored as int32
                raise UserError(
                    f"entity type {d.name!r} has {len(d):,} entities: too many "
                    "for its partitions; use more partitions"
                )
        # per distinct name: partition and offset (the partition table grows here)
        placed = [(d, u, i, m, side, *self._place_names(d, u)) for d, u, i, m, side in sides]
        if self._routing is not None:
            self._routing.result()  # one block in flight in each stage: bounded memory
        self._routing = self._route_pool.submit(
            self._route_block, n, rel, split, ltype, rtype, placed, block.weight, checks
        )

    @staticmethod
    def _place_names(d: EntityDictionary, uids: np.ndarray):
        """(partition, offset) of each distinct name (partition None: one partition)."""
        P = d.num_partitions
        if P == 1:
            return None, uids.astype(np.int32)
        return (d.partition_of(uids).astype(np.int8 if P < 128 else np.int32), (uids // P).astype(np.int32))

    def _route_block(self, n, rel, split, ltype, rtype, placed, weight, checks=()) -> None:
        """Stage three: the check that names found by their hash are those names (an
        error, never a silent merge: see ``dictionary``), every edge's partitions and
        offsets, self-loops, counts, and the bucket buffers."""
        for check in checks:
            check()
        P = self.model.num_partitions
        one_split = not isinstance(split, np.ndarray)
        train = (split == 0) if one_split else split == 0
        if (
            self.native is not None
            and ltype is None
            and len(placed) == 2
            and all(m is None for *_, m, _s, _p, _o in placed)
            and not self.weighted
            and not self.opts.drop_self_loops
        ):
            return self._route_native(n, rel, split, one_split, train, placed)
        lpart = np.zeros(n, np.int32) if P > 1 else None
        rpart = np.zeros(n, np.int32) if P > 1 else None
        loff = roff = None
        for _d, _u, i, m, side, upart, uoff in placed:
            if side == "l":
                part, off = lpart, loff
            else:
                part, off = rpart, roff
            if m is None:
                off = uoff[i]
                if part is not None and upart is not None:
                    part = upart[i]
            else:
                if off is None:
                    off = np.zeros(n, np.int32)
                off[m] = uoff[i]
                if part is not None and upart is not None:
                    part[m] = upart[i]
            if side == "l":
                lpart, loff = part, off
            else:
                rpart, roff = part, off
        if loff is None:
            loff = np.zeros(n, np.int32)
        if roff is None:
            roff = np.zeros(n, np.int32)
        # self-loops: the same entity (type, partition, offset) on both sides
        loops = loff == roff
        if lpart is not None:
            loops &= lpart == rpart
        if ltype is not None:
            loops &= ltype == rtype
        nloops = int(np.count_nonzero(loops))
        self.stats["self_loops"] += nloops
        keep = ~loops if nloops and self.opts.drop_self_loops else None
        for d, u, i, m, _side, _p, _o in placed:  # counts per distinct name, kept edges
            sub_keep = None if keep is None else (keep if m is None else keep[m])
            if one_split:
                tr = bool(train)
            else:
                tr = train if m is None else train[m]
                tr = tr if sub_keep is None else tr[sub_keep]
            d.add_counts_local(u, i if sub_keep is None else i[sub_keep], tr, self.native)
        if keep is not None:
            rel, loff, roff = rel[keep], loff[keep], roff[keep]
            lpart = lpart[keep] if lpart is not None else None
            rpart = rpart[keep] if rpart is not None else None
            split = split[keep] if not one_split else split
            weight = weight[keep] if weight is not None else None
        if one_split:
            self.rels.add_counts(rel, np.ones(1, bool) if train else None)
        else:
            self.rels.add_counts(rel, split == 0)
        m_ = len(rel)
        if one_split:
            split = np.full(m_, split, np.int8)
        cols = [loff, roff, rel.astype(np.int32), split]
        if self.weighted:
            cols.append(weight.astype(np.float32))
        if P == 1:
            self._buffer(0, cols)
        else:
            dt = np.uint16 if P * P < 65536 else np.int32
            key = lpart.astype(dt)
            key *= dt(P)
            key += rpart.astype(dt)
            # a stable radix argsort groups the block by bucket in linear time
            order = np.argsort(key, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=P * P))])
            cols = [c[order] for c in cols]
            for b in np.flatnonzero(np.diff(bounds)):
                s, e = bounds[b], bounds[b + 1]
                self._buffer(int(b), [c[s:e] for c in cols])
        if self.buffered > self.opts.buffer_bytes:
            self._spill()

    def _route_native(self, n, rel, split, one_split, train, placed) -> None:
        """``_route_block`` through the kernel's ``route_rows`` (one entity type, nothing
        dropped, no weights): the same buffers, from one gather-and-group pass instead of
        eight gathers and a sort."""
        P = self.model.num_partitions
        (d, u, il, _, _, lp, lo), (_, ur, ir, _, _, rp, ro) = placed
        if lp is None:  # one partition
            lp = np.zeros(len(lo), np.int32)
            rp = np.zeros(len(ro), np.int32)

        def i32(a):
            return np.ascontiguousarray(a, np.int32)

        bounds, loff, roff, rel32, split8, nloops = self.native.route_rows(
            i32(il), i32(ir), i32(lp), i32(lo), i32(rp), i32(ro),
            np.ascontiguousarray(rel, np.int64), np.zeros(0, np.int8) if one_split else split, P,
        )  # fmt: skip
        self.stats["self_loops"] += int(nloops)
        tr = bool(train) if one_split else train
        if u is ur:  # one encoding of both sides: one update of the counts
            d.add_counts_local(u, [il, ir], tr if one_split else np.concatenate([tr, tr]), self.native)
        else:
            d.add_counts_local(u, il, tr, self.native)
            d.add_counts_local(ur, ir, tr, self.native)
        if one_split:
            self.rels.add_counts(rel, np.ones(1, bool) if train else None)
            split8 = np.full(n, split, np.int8)
        else:
            self.rels.add_counts(rel, split == 0)
        cols = [loff, roff, rel32, split8]
        for b in np.flatnonzero(np.diff(bounds)):
            s, e = bounds[b], bounds[b + 1]
            self._buffer(int(b), [c[s:e] for c in cols])
        if self.buffered > self.opts.buffer_bytes:
            self._spill()

    def _buffer(self, b: int, cols) -> None:
        self.buffers.setdefault(b, []).append(cols)
        self.buffered += sum(c.nbytes for c in cols)

    def _spill(self) -> None:
        """Append every bucket's buffer to its scratch files (one large write each)."""
        self.spill_dir.mkdir(exist_ok=True)
        need_space(self.spill_dir, self.buffered, "spilling edge buffers to scratch files")
        for b, parts in self.buffers.items():
            for j in range(len(parts[0])):
                with open(self.spill_dir / f"{b}_{j}.bin", "ab") as f:
                    for cols in parts:
                        cols[j].tofile(f)
            self.spilled.add(b)
        self.buffers.clear()
        self.buffered = 0

    def _bucket_columns(self, b: int) -> list[np.ndarray]:
        dtypes = [np.int32, np.int32, np.int32, np.int8, np.float32]
        ncol = 5 if self.weighted else 4
        out = [[] for _ in range(ncol)]
        if b in self.spilled:
            for j in range(ncol):
                out[j].append(np.fromfile(self.spill_dir / f"{b}_{j}.bin", dtype=dtypes[j]))
                os.unlink(self.spill_dir / f"{b}_{j}.bin")
        for cols in self.buffers.pop(b, []):
            for j in range(ncol):
                out[j].append(cols[j])
        return [np.concatenate(o) if o else np.zeros(0, dtypes[j]) for j, o in enumerate(out)]

    # -- pass two -----------------------------------------------------------------
    def _finish(self) -> dict:
        P = self.model.num_partitions
        types, lt, rt = self._types(len(self.rels))
        buckets = {s: [] for s in layout.SPLITS}
        # the shards hold every edge (4+4+4 bytes, and a weight): refuse now if they cannot fit
        edges = self.stats["input_edges"] + sum(
            c for s in getattr(self, "old_buckets", {}).values() for *_, c in s
        )
        need_space(self.stage, edges * (16 if self.weighted else 12), "writing the edge shards")
        prog = _Progress(self.opts.progress, "pass 2/2", P * P, unit="bucket")

        def prepare(b):
            lp, rp = divmod(b, P)
            cols = self._bucket_columns(b)
            old = self._old_bucket(lp, rp)
            n_old = len(old[0]) if old else 0
            if old:
                cols = [np.concatenate([o, c]) for o, c in zip(old, cols, strict=True)]
            if len(cols[0]) == 0:
                return None
            return self._filter_bucket(cols, n_old, lp, rp, lt, rt, types)

        # bucket b+1 is loaded and its duplicates counted (a sort, GIL-free) while
        # bucket b is written; one worker keeps the statistics single-threaded
        with ThreadPoolExecutor(max_workers=1) as pool:
            nxt = pool.submit(prepare, 0)
            for b in range(P * P):
                cols = nxt.result()
                if b + 1 < P * P:
                    nxt = pool.submit(prepare, b + 1)
                if cols is not None:
                    self._write_bucket(b, cols, buckets)
                prog.update(b + 1, 0)
        prog.close()
        shutil.rmtree(self.spill_dir, ignore_errors=True)
        return self._write_metadata(buckets)

    def _write_bucket(self, b: int, cols, buckets) -> None:
        lp, rp = divmod(b, self.model.num_partitions)
        lhs, rhs, rel, split = cols[:4]
        present = np.bincount(split, minlength=len(layout.SPLITS))
        for si, s in enumerate(layout.SPLITS):
            cnt = int(present[si])
            if cnt == 0:
                continue
            if cnt == len(split):  # the whole bucket is one split: no copies
                shard = {"lhs": lhs, "rhs": rhs, "rel": rel}
                if self.weighted:
                    shard["weight"] = cols[4]
            else:
                m = split == si
                shard = {"lhs": lhs[m], "rhs": rhs[m], "rel": rel[m]}
                if self.weighted:
                    shard["weight"] = cols[4][m]
            write_shard(
                layout.shard_path(self.stage, s, lp, rp, self.fmt),
                self.fmt,
                shard,
                workspace_id=self.ws_id,
                split=s,
                lhs_part=lp,
                rhs_part=rp,
            )
            buckets[s].append([lp, rp, cnt])

    def _old_bucket(self, lp, rp):
        if self.previous is None:
            return None
        root, m = self.previous
        parts = [[] for _ in range(5 if self.weighted else 4)]
        for si, s in enumerate(layout.SPLITS):
            for blp, brp, cnt in m["buckets"][s]:
                if (blp, brp) != (lp, rp):
                    continue
                path = layout.resolved(root, m, layout.shard_path(root, s, lp, rp, self.fmt))
                d = read_shard(
                    path,
                    workspace_id=self.ws_id,
                    split=s,
                    lhs_part=lp,
                    rhs_part=rp,
                )
                if len(d["lhs"]) != cnt:
                    raise InputFileError(f"{path}: holds {len(d['lhs'])} edges, manifest says {cnt}")
                parts[0].append(d["lhs"])
                parts[1].append(d["rhs"])
                parts[2].append(d["rel"])
                parts[3].append(np.full(cnt, si, np.int8))
                if self.weighted:
                    parts[4].append(d["weight"])
        if not parts[0]:
            return None
        return [np.concatenate(p) for p in parts]

    def _filter_bucket(self, cols, n_old, lp, rp, lt, rt, types):
        lhs, rhs, rel, split = cols[:4]
        n = len(lhs)
        keep = np.ones(n, bool)
        # duplicates: one integer key per edge, then a hash count (or, to drop, a sort)
        ml, mr, R = int(lhs.max()) + 1, int(rhs.max()) + 1, len(self.rels)
        if ml * R * mr < 2**62:
            key = lhs.astype(np.int64)  # built in place: one temporary, not four
            key *= R
            key += rel
            key *= mr
            key += rhs
        else:  # pragma: no cover - needs billions of entities
            key = np.unique(np.stack([lhs, rel, rhs], 1), axis=0, return_inverse=True)[1]
        if self.opts.drop_duplicates:
            _, first = np.unique(key, return_index=True)
            is_first = np.zeros(n, bool)
            is_first[first] = True
            is_first[:n_old] = True
            self.stats["duplicates"] += int(n - is_first.sum())
            keep &= is_first
        else:
            old_dups = _num_repeats(key[:n_old].copy(), self.native) if n_old else 0
            self.stats["duplicates"] += _num_repeats(key, self.native) - old_dups
        held = split > 0
        held[:n_old] = False
        if held.any():
            seen = np.ones(n, bool)
            rel_h = rel[held]
            for ti, t in enumerate(types):
                d = self.dicts[t]
                for part, off, tt in ((lp, lhs, lt), (rp, rhs, rt)):
                    m = tt[rel_h] == ti
                    if m.any():
                        ids = d.id_of(np.full(int(m.sum()), part), off[held][m])
                        ok = d.train_counts[ids] > 0
                        sub = seen[held]
                        sub[m] &= ok
                        seen[held] = sub
            unseen = held & ~seen
            for si, s in ((1, "valid"), (2, "test")):
                self.stats["unseen"][s] += int((unseen & (split == si)).sum())
            if self.opts.drop_unseen:
                keep &= ~unseen
        if keep.all():
            return cols
        return [c[keep] for c in cols]

    def _write_metadata(self, buckets) -> dict:
        st = self.stage
        for t, d in self.dicts.items():
            for p in range(d.num_partitions):
                with layout.atomic_path(layout.entity_names_path(st, t, p)) as tmp:
                    pq.write_table(d.partition_table(p), tmp)
        features = {}
        for t, fr in self.features.items():
            bags = fr.bags()
            write_bags(st, t, bags)
            features[t] = {"num_features": bags.num_features, "bag_entries": int(len(bags.features))}
        with layout.atomic_path(layout.relations_path(st)) as tmp:
            pq.write_table(
                pa.table(
                    {
                        "name": self.rels.names,
                        "count": self.rels.counts,
                        "train_count": self.rels.train_counts,
                    }
                ),
                tmp,
            )
        m = self.model
        if not m.from_config:
            names = self.rels.names.to_pylist()
            if len(names) > _MAX_LISTED_RELATIONS:  # PBG's dynamic_relations
                m.dynamic_relations = True
                names = ["all_relations"]
            m.relations = [RelationSpec(n, DEFAULT_TYPE, DEFAULT_TYPE) for n in names]
        if self.bad.lines:
            prev = None
            if self.previous:
                prev = layout.resolved(self.previous[0], self.previous[1], self.previous[0] / layout.REJECTED)
            with layout.atomic_path(st / layout.REJECTED) as tmp:
                if prev is not None and prev.is_file():
                    shutil.copyfile(prev, tmp)
                with open(tmp, "a", encoding="utf-8") as f:
                    f.write("\n".join(self.bad.lines) + "\n")
        if self.previous is None:
            with layout.atomic_path(st / layout.CONFIG) as tmp:
                tmp.write_text(
                    _config_text(m, self.target, self.fmt, self.seed, self.user, str(self.opts.config))
                )
        prev_stats = self.previous[1]["stats"] if self.previous else {}
        stats = {
            "input_edges": self.stats["input_edges"],
            "bad_lines": self.bad.count,
            "self_loops": self.stats["self_loops"],
            "duplicates": self.stats["duplicates"],
            "unseen_in_train": self.stats["unseen"],
        }
        edges = {s: sum(c for _, _, c in buckets[s]) for s in layout.SPLITS}
        manifest = {
            "format": "ember-workspace",
            "version": layout.WORKSPACE_VERSION,
            "workspace_id": self.ws_id,
            "generation": (self.previous[1]["generation"] + 1) if self.previous else 1,
            "shard_format": self.fmt,
            "seed": self.seed,
            "from_config": m.from_config,
            "model": m.to_json(),
            "weighted": self.weighted,
            "entity_counts": {t: d.partition_sizes() for t, d in self.dicts.items()},
            **({"features": features} if features else {}),
            "num_relations": len(self.rels),
            "edges_seen": self.edge_index,
            "edges": edges,
            "buckets": buckets,
            "stats": _add_stats(prev_stats, stats),
        }
        layout.write_json_atomic(st / layout.MANIFEST, manifest)
        return {
            "entities": {t: len(d) for t, d in self.dicts.items()},
            "partitions": {t: d.num_partitions for t, d in self.dicts.items()},
            "features": {t: f["num_features"] for t, f in features.items()},
            "relations": len(self.rels),
            "edges": edges,
            "buckets": {s: len(buckets[s]) for s in layout.SPLITS},
            **stats,
            "unseen_dropped": self.opts.drop_unseen,
            "duplicates_dropped": self.opts.drop_duplicates,
            "self_loops_dropped": self.opts.drop_self_loops,
            "rejected_lines_file": layout.REJECTED if self.bad.count else None,
            "shard_format": self.fmt,
            "seconds": round(time.time() - self.t0, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }


def _one(a):
    if isinstance(a, pa.ChunkedArray):
        return a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    return a


def _local_encode(block, names: bool) -> dict:
    """The work on a block that does not need the dictionaries: hash its relations and
    (``names``) its names, of one entity type (lhs and rhs together), into block-local
    dictionaries."""
    pre = {}
    if block.rel is not None:
        pre["rel"] = local_encode([block.rel])
    if names:
        uniq, local = local_encode([block.lhs, block.rhs])
        pre["names"] = (uniq, local, name_hashes(_one(uniq)))
    return pre


def _num_repeats(key: np.ndarray, native=None) -> int:
    """How many entries (non-negative) repeat an earlier one: with the native kernel, a
    radix sort (3.6x less CPU than numpy's sort on 2.5e6 keys), up to 2^26 keys (beyond,
    its scratch copy would be large); else a sort, numpy's fastest exact way.

    Large keys are split in two by a hashed bit (equal keys stay together) and the
    halves sorted in two threads: numpy's sort releases the GIL.
    """
    if len(key) < 2:
        return 0
    if native is not None and len(key) <= 1 << 26:
        return int(native.count_repeats(key))
    if len(key) < 1 << 20 or len(key) > 1 << 26:
        # small: not worth threads; huge: the halves would double the key's memory
        key.sort()  # in place: the caller's key is a scratch array
        return int(len(key) - 1 - np.count_nonzero(key[1:] != key[:-1]))
    with np.errstate(over="ignore"):
        bit = (key.view(np.uint64) * np.uint64(GAMMA)) >> np.uint64(63)
    half = bit.astype(bool)
    parts = [key[half], key[~half]]
    del bit, half
    return sum(_POOL.map(_num_repeats_small, parts))


def _num_repeats_small(key: np.ndarray) -> int:
    key.sort()
    return int(len(key) - 1 - np.count_nonzero(key[1:] != key[:-1])) if len(key) else 0


def _add_stats(a: dict, b: dict) -> dict:
    out = dict(b)
    for k, v in a.items():
        if isinstance(v, dict):
            out[k] = {kk: v.get(kk, 0) + b.get(k, {}).get(kk, 0) for kk in v}
        else:
            out[k] = v + b.get(k, 0)
    return out
