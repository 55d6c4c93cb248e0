"""Atomic file writes: the one way Ember puts a file in place.

A file is written under a temporary name in its final folder (``.NAME.tmp-PID``) and
renamed over the final name only when it is complete, so a file with its final name is
never half-written, whenever the process dies. ``durable=True`` also fsyncs the file
before the rename and the folder after it, so that the new name survives a power loss
(a rename is only durable once its folder's entry is on disk); the rest survive
``kill -9`` but not a power cut. A failure removes the temporary file.

>>> with atomic_path("out/table.parquet") as tmp:      # doctest: +SKIP
...     pq.write_table(table, tmp)
>>> write_json_atomic("out/manifest.json", {"version": 2}, durable=True)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

__all__ = [
    "AtomicFiles",
    "Busy",
    "FileLock",
    "atomic_path",
    "fsync_dir",
    "fsync_file",
    "h5_writer",
    "process_alive",
    "remove_stale",
    "rename_exchange",
    "tmp_name",
    "write_json_atomic",
]


def tmp_name(path) -> Path:
    """The temporary name ``path`` is written under: hidden, in the same folder (a rename
    within one filesystem is atomic), tagged with the writer's process id."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def fsync_file(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    """Make a folder's entries (a rename into it) durable; a no-op where folders cannot be
    opened for fsync (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _put_in_place(tmp: Path, path: Path, durable: bool) -> None:
    if durable:
        fsync_file(tmp)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path, *, durable: bool = False):
    """Yield a temporary path to write ``path``'s content to; it is renamed to ``path``
    only if the block succeeds, and removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        yield tmp
        _put_in_place(tmp, path, durable)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path, obj, *, durable: bool = False, **dumps) -> None:
    """``obj`` as JSON in ``path``, atomically (``dumps``: ``json.dumps`` options)."""
    text = json.dumps(obj, **({"indent": 1} | dumps)) + "\n"
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text)


class AtomicFiles:
    """Several files that appear together: each is written to its ``path(final)``; then
    ``commit()`` renames them all into place, or ``abort()`` removes them all.

    >>> files = AtomicFiles()                          # doctest: +SKIP
    >>> write(files.path(out / "a.tsv")); write(files.path(out / "b.json"))
    >>> files.commit()
    """

    def __init__(self, *, durable: bool = False):
        self.pending: list[tuple[Path, Path]] = []
        self.durable = durable

    def path(self, final) -> Path:
        final = Path(final)
        tmp = tmp_name(final)
        self.pending.append((tmp, final))
        return tmp

    def commit(self) -> None:
        for tmp, final in self.pending:
            _put_in_place(tmp, final, self.durable)
        self.pending = []

    def abort(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending = []


# -- exclusive locks ---------------------------------------------------------------------
# held locks of this process: path -> [file descriptor, count] (a second holder in the
# same process shares the lock: the lock keeps other processes out)
_HELD: dict[str, list] = {}


class Busy(OSError):
    """Another process holds the lock; ``pid`` is the holder's process id (or None)."""

    def __init__(self, path, pid):
        super().__init__(f"{path}: locked by process {pid}")
        self.path, self.pid = Path(path), pid


class FileLock:
    """An exclusive lock on a lock file, taken at once or refused (``Busy``).

    An OS lock (``flock``) on the file: it dies with its process, so ``kill -9`` never
    leaves a stale lock behind. The holder's PID is written into the file for the
    message of whoever is refused. The file is removed on ``release()``; a file left by a
    killed holder is simply locked again by the next one.

    >>> with FileLock("ws/checkpoints/.lock"):        # doctest: +SKIP
    ...     train()
    """

    def __init__(self, path):
        self.path = Path(path)
        self.key = str(self.path.absolute())
        self.held = False

    def acquire(self) -> FileLock:
        import fcntl

        if self.held:
            return self
        if self.key in _HELD:
            _HELD[self.key][1] += 1
            self.held = True
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = _read_pid(fd)
                os.close(fd)
                raise Busy(self.path, pid) from None
            # the holder before us may have removed the file between our open and our
            # lock: then we hold a lock on a file nobody else can see; open it again
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[self.key] = [fd, 1]
        self.held = True
        return self

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        entry = _HELD.get(self.key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[self.key]
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: nobody can take the old file after this
        os.close(entry[0])

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.release()


def _read_pid(fd) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """True if process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder, pattern) -> list[str]:
    """Remove the entries of ``folder`` whose names match ``pattern`` (a compiled regex
    with a ``pid`` group) and whose process is gone: what earlier runs killed before
    they could clean up left behind (staging folders, temporary files). Returns the
    names removed. Entries of live processes, and every other name, are left alone."""
    import shutil

    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = pattern.fullmatch(e.name)
        if not m or process_alive(int(m.group("pid"))):
            continue
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(e.path)
        removed.append(e.name)
    return removed


def rename_exchange(a, b) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the system cannot (then nothing was changed)."""
    import ctypes

    try:
        # the C library this process already has (find_library would run ldconfig)
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), exchange)
    return rc == 0


class _Sink:
    """A file for h5py to write through that keeps the first OSError of a write."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, b):
        try:
            return self.f.write(b)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name):
        return getattr(self.f, name)


@contextlib.contextmanager
def h5_writer(path, mode: str = "w"):
    """``h5py.File(path, mode)`` written through a Python file object: a write the system
    refuses (a full disk, a file-size limit) comes back as that OSError, cleanly. Written
    by HDF5's own driver, such a failure surfaces as RuntimeErrors from h5py's object
    destructors and can crash the process (measured: a segfault after an EFBIG). As fast
    as the native driver (1e8 floats: 0.41-0.43 s each way here). ``mode``: ``"w"`` (a
    new file) or ``"r+"`` (an existing file, written over in place)."""
    import h5py

    with open(path, "wb" if mode == "w" else "r+b") as raw:
        sink = _Sink(raw)
        try:
            with h5py.File(sink, mode) as f:
                yield f
        except BaseException:
            if sink.error is not None:
                raise sink.error from None
            raise
        if sink.error is not None:
            raise sink.error


# the progress bars' layout (tqdm): what is done, the rate, and an ETA that says so
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}, ETA {remaining}, {rate_fmt}{postfix}]"
)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def progress_bar(total: int, desc: str, unit: str, enabled=None):
    """A tqdm bar on stderr (rate, ETA) when stderr is a terminal (or ``enabled``), else an
    object that ignores ``update``/``close``: long work shows it moves, logs stay clean."""
    import sys

    if not (sys.stderr.isatty() if enabled is None else enabled):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True, bar_format=BAR_FORMAT)
