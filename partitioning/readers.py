"""Streaming edge readers: TSV/CSV (plain, .gz, .bz2, .zst) and Parquet, in blocks.

The fast path is pyarrow's block CSV reader; it finds *that* a block holds a bad
line. Only then (a rare, error-only path) is the file rescanned line by line in
Python to say *where*: ``FILE:LINE: what was wrong``.
"""

from __future__ import annotations

import csv as pycsv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ember.errors import InputFileError, UserError

_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|inf|infinity)\s*$"


@dataclass
class EdgeSpec:
    """Which columns hold what. ``rel_col`` None: a 2-column file of one relation."""

    lhs_col: int | None = None
    rel_col: int | None = None
    rhs_col: int | None = None
    weight_col: int | None = None
    delimiter: str | None = None
    header: bool = False
    explicit: bool = False  # columns given by the user

    @classmethod
    def from_columns(cls, columns: list[int], **kw) -> EdgeSpec:
        if len(columns) == 2:
            return cls(lhs_col=columns[0], rhs_col=columns[1], explicit=True, **kw)
        if len(columns) == 3:
            return cls(columns[0], columns[1], columns[2], explicit=True, **kw)
        raise UserError("--columns takes 2 (lhs,rhs) or 3 (lhs,rel,rhs) column indices")

    def roles(self) -> dict[str, int]:
        r = {"lhs": self.lhs_col, "rel": self.rel_col, "rhs": self.rhs_col, "weight": self.weight_col}
        return {k: v for k, v in r.items() if v is not None}


@dataclass
class EdgeBlock:
    lhs: pa.Array | pa.ChunkedArray
    rhs: pa.Array | pa.ChunkedArray
    rel: pa.Array | pa.ChunkedArray | None
    weight: np.ndarray | None
    progress: int  # bytes of the input consumed so far


@dataclass
class BadLines:
    """Rejected lines (with --skip-bad-lines) and comment lines, counted."""

    skip: bool = False
    count: int = 0
    lines: list[str] = field(default_factory=list)
    found: bool = False  # strict mode: a bad line exists, locate it

    def reject(self, text: str) -> None:
        self.count += 1
        self.lines.append(text)


def is_parquet(path: Path) -> bool:
    return Path(path).suffix.lower() in (".parquet", ".pq")


def _codec(path: Path) -> str | None:
    return _CODECS.get(Path(path).suffix.lower())


def default_delimiter(path: Path) -> str:
    p = Path(path)
    inner = p.with_suffix("") if _codec(p) else p
    return "," if inner.suffix.lower() == ".csv" else "\t"


def _check_exists(path: Path) -> None:
    if not Path(path).exists():
        raise InputFileError(f"{path}: no such file")
    if Path(path).is_dir():
        raise InputFileError(f"{path}: is a folder, not an edge file")


def _open_text_stream(path: Path):
    try:
        raw = pa.OSFile(str(path), "rb")
    except OSError as e:
        raise InputFileError(f"{path}: cannot read ({e})") from None
    codec = _codec(path)
    stream = pa.CompressedInputStream(raw, codec) if codec else raw
    return raw, stream


def _split(line: str, delim: str) -> list[str]:
    if delim == ",":
        return next(pycsv.reader([line]))
    return line.split(delim)


def _sniff(path: Path, spec: EdgeSpec, max_line: int = 8 << 20) -> tuple[int, int]:
    """(number of columns, physical lines before the data) from the first lines."""
    _, stream = _open_text_stream(path)
    try:
        head = stream.read(1 << 20)
        more = len(head) == 1 << 20
        # the first data line may be long: read on until a line ends (within the limit)
        while more and b"\n" not in head and len(head) <= max_line:
            chunk = stream.read(1 << 20)
            head += chunk
            more = len(chunk) == 1 << 20
    except OSError as e:
        raise InputFileError(f"{path}: cannot read ({e})") from None
    finally:
        stream.close()
    if not head.strip():
        raise InputFileError(f"{path}: file is empty")
    lines = head.split(b"\n")
    if more:
        lines = lines[:-1]  # the last one may be cut
        if not lines:
            raise InputFileError(f"{path}:1: {_too_long(max_line)}")
    for i, raw in enumerate(lines):
        s = raw.rstrip(b"\r")
        if not s.strip() or s.startswith(b"#"):
            continue
        try:
            text = s.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputFileError(f"{path}:{i + 1}: {_utf8_msg(e)}") from None
        return len(_split(text, spec.delimiter)), (i + 1 if spec.header else 0)
    raise InputFileError(f"{path}: file is empty (only comments or blank lines)")


def _too_long(limit: int) -> str:
    return (
        f"line longer than {limit:,} bytes, the longest accepted (--max-line-bytes N raises the "
        "limit; the importer's memory grows with it)"
    )


def first_long_line(path: Path, limit: int) -> int | None:
    """The number of the first line longer than ``limit`` bytes, read in 1 MiB blocks (a
    long line is never held whole: memory stays bounded)."""
    _, stream = _open_text_stream(path)
    lineno, cur = 1, 0
    try:
        while block := stream.read(1 << 20):
            start = 0
            while (i := block.find(b"\n", start)) >= 0:
                if cur + i - start > limit:
                    return lineno
                lineno, cur, start = lineno + 1, 0, i + 1
            cur += len(block) - start
            if cur > limit:
                return lineno
    finally:
        stream.close()
    return None


def _utf8_msg(e: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte 0x{e.object[e.start]:02x} at position {e.start + 1})"


def resolve_spec(path: Path, spec: EdgeSpec, max_line: int = 8 << 20) -> tuple[EdgeSpec, int, int]:
    """Fill in delimiter and default columns; returns (spec, n_cols, skip_rows)."""
    _check_exists(path)
    spec = EdgeSpec(**vars(spec))
    if spec.delimiter is None:
        spec.delimiter = default_delimiter(path)
    ncols, skip = _sniff(path, spec, max_line)
    if not spec.explicit:
        if ncols == 2 and spec.weight_col is None:
            spec.lhs_col, spec.rel_col, spec.rhs_col = 0, None, 1
        elif ncols >= 3:
            spec.lhs_col, spec.rel_col, spec.rhs_col = 0, 1, 2
        else:
            raise InputFileError(f"{path}:{skip + 1}: expected 2 or 3 columns, found {ncols}")
    need = max(spec.roles().values()) + 1
    if need > ncols:
        raise InputFileError(f"{path}:{skip + 1}: expected at least {need} columns, found {ncols}")
    return spec, ncols, skip


def _column_names(ncols: int, roles: dict) -> tuple[list[str], list[int]]:
    """pyarrow's names of the file's columns, and the ones read (the roles', and the
    first: comment lines are told by it)."""
    return [f"c{i}" for i in range(ncols)], sorted(set(roles.values()) | {0})


def _on_invalid(bad: BadLines):
    """pyarrow's handler of a line with another number of columns: comment and blank
    lines are skipped; another is rejected (``--skip-bad-lines``) or marks the block bad."""

    def on_invalid(row):
        text = row.text or ""
        if text.startswith("#") or not text.strip():
            return "skip"
        if bad.skip:
            bad.reject(text)
        else:
            bad.found = True
        return "skip"

    return on_invalid


def iter_blocks(
    path: Path,
    spec: EdgeSpec,
    bad: BadLines,
    *,
    relations=None,
    block_rows=lambda: 1 << 20,
    block_bytes: int = 16 << 20,
    tokenizer=None,
) -> Iterator[EdgeBlock]:
    """Stream ``path`` as EdgeBlocks of at least ``block_rows()`` rows (but the last).

    ``relations``: the allowed relation names (a fixed config), else None.
    In strict mode (``bad.skip`` False) any bad line raises InputFileError naming it.
    ``tokenizer``: the import's compiled kernel (``native.kernel()``), or None. A TSV
    file is read in pieces of ``block_bytes`` cut at line ends; the kernel splits a
    piece of plain lines into columns itself, and pyarrow parses any other piece (and
    every piece, without the kernel): the same blocks either way.
    """
    path = Path(path)
    if is_parquet(path):
        yield from _iter_parquet(path, spec, bad, relations, block_rows)
        return
    spec, ncols, skip = resolve_spec(path, spec, block_bytes)
    roles = spec.roles()
    if spec.delimiter == "\t" and "weight" not in roles:
        yield from _iter_tsv(path, spec, ncols, skip, bad, relations, block_rows, block_bytes, tokenizer)
        return
    names, need = _column_names(ncols, roles)
    on_invalid = _on_invalid(bad)
    raw, stream = _open_text_stream(path)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip, block_size=block_bytes),
            parse_options=pacsv.ParseOptions(
                delimiter=spec.delimiter,
                quote_char='"' if spec.delimiter == "," else False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=[names[i] for i in need], column_types={names[i]: pa.binary() for i in need}
            ),
        )
        pending, rows = [], 0
        # progress: the bytes the parser has turned into rows (pyarrow reads ahead, so the
        # file position runs ahead of the work); of a compressed file, its position
        parsed, plain = 0, stream is raw
        size = os.path.getsize(path)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                batch = None
            except pa.ArrowInvalid as e:
                if "straddl" in str(e) or "block size" in str(e):  # a line longer than a block
                    line = first_long_line(path, block_bytes)
                    raise InputFileError(f"{path}:{line or '?'}: {_too_long(block_bytes)}") from None
                _strict_fail(path, spec, ncols, relations, str(e))
            if batch is not None:
                if bad.found:
                    _strict_fail(path, spec, ncols, relations, None)
                if plain:
                    cols = batch.columns
                    parsed += sum(pc.sum(pc.binary_length(c)).as_py() or 0 for c in cols)
                    parsed += batch.num_rows * (ncols if len(cols) == ncols else ncols + 8)
                pending.append(batch)
                rows += batch.num_rows
                if rows < block_rows():
                    continue
            if pending:
                table = pa.Table.from_batches(pending)
                pending, rows = [], 0
                at = min(parsed, size) if plain else raw.tell()
                block = _to_block(path, spec, ncols, table, names, bad, relations, at)
                if block is not None:
                    yield block
            if batch is None:
                break
    finally:
        stream.close()
        if stream is not raw:
            raw.close()


def _line_pieces(path: Path, stream, size: int) -> Iterator[memoryview]:
    """The stream's bytes in pieces of at most about ``size``, each of whole lines (the
    last may end without a newline), as views of one reused buffer: a piece is valid
    until the next is asked for. A line longer than ``size`` is an error naming it."""
    buf = bytearray(2 * size)
    view = memoryview(buf)
    have = 0  # bytes in buf: the cut-off line of the last piece, then what was read
    while True:
        try:
            got = stream.readinto(view[have : have + size])
        except OSError as e:
            raise InputFileError(f"{path}: cannot read ({e})") from None
        if not got:
            if have:
                yield view[:have]
            return
        carried, have = have, have + got
        cut = buf.rfind(b"\n", 0, have)
        # only the line carried over from the last read can be longer than one read
        if (cut < 0 and have > size) or (cut >= 0 and carried and buf.find(b"\n", carried, have) > size):
            line = first_long_line(path, size)
            raise InputFileError(f"{path}:{line or '?'}: {_too_long(size)}")
        if cut < 0:
            continue
        yield view[: cut + 1]
        rest = have - cut - 1  # the cut-off line to the front (a copy: the two may overlap)
        buf[:rest] = bytes(view[cut + 1 : have])
        have = rest


def _iter_tsv(path, spec, ncols, skip, bad, relations, block_rows, block_bytes, tokenizer):
    """``iter_blocks`` of a TSV file (no weights): pieces of whole lines, each split by
    the kernel where its lines are plain, else parsed by pyarrow (see ``_parse_piece``),
    gathered into blocks of ``block_rows()`` rows."""
    roles = spec.roles()
    want = [k for k in ("lhs", "rel", "rhs") if k in roles]
    cols = np.array([roles[k] for k in want], np.int64)
    arrow = (*_column_names(ncols, roles), _on_invalid(bad))  # for the pieces pyarrow parses
    raw, stream = _open_text_stream(path)
    plain = stream is raw
    done = 0  # bytes of the input in the pieces so far
    parts: dict[str, list] = {k: [] for k in want}
    rows = 0
    try:
        for piece in _line_pieces(path, stream, block_bytes):
            first = not done
            done += len(piece)
            if first and bytes(piece[:3]) == b"\xef\xbb\xbf":  # a UTF-8 BOM: skipped, as pyarrow
                piece = piece[3:]
            while skip and len(piece):  # the header's physical lines
                i = bytes(piece[: block_bytes + 1]).find(b"\n")
                piece = piece[i + 1 :] if i >= 0 else piece[len(piece) :]
                skip -= 1
            if not len(piece):
                continue
            got = _split_piece(tokenizer, piece, ncols, cols, want, relations)
            if got is None:
                block = _parse_piece(path, spec, ncols, piece, bad, relations, *arrow)
                got = None if block is None else {k: getattr(block, k) for k in want}
            if got is not None:
                for k in want:
                    parts[k].append(got[k])
                rows += len(got["lhs"])
            if rows >= block_rows():
                yield _tsv_block(parts, done if plain else raw.tell())
                parts, rows = {k: [] for k in want}, 0
        if rows:
            yield _tsv_block(parts, done if plain else raw.tell())
    finally:
        stream.close()
        if stream is not raw:
            raw.close()


def _split_piece(tokenizer, piece, ncols, cols, want, relations) -> dict | None:
    """The kernel's columns of a piece of plain lines (relations all known), or None."""
    if tokenizer is None or ncols > 64 or len(piece) >= 1 << 31:  # the kernel's limits
        return None
    res = tokenizer.split_tsv(piece, ncols, cols)
    if res is None:
        return None
    n, bufs = res
    out = {
        k: pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offs), pa.py_buffer(data[:used])])
        for k, (offs, data, used) in zip(want, bufs, strict=True)
    }
    known = relations is None or "rel" not in out or pc.all(pc.is_in(out["rel"], value_set=relations)).as_py()
    if not known:
        return None  # pyarrow's path rejects the unknown ones (or names the first)
    return out


def _parse_piece(path, spec, ncols, piece, bad, relations, names, need, on_invalid) -> EdgeBlock | None:
    """A piece of whole lines parsed by pyarrow, bad and comment lines handled as the
    streaming reader handles them (``_to_block``; ``names``, ``need``: `_column_names`,
    ``on_invalid``: `_on_invalid`)."""
    if bytes(piece[:3]) == b"\xef\xbb\xbf":  # pyarrow would skip it: not the file's start
        piece = b"\n" + bytes(piece)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(piece),
            read_options=pacsv.ReadOptions(column_names=names, block_size=len(piece) + 1),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=[names[i] for i in need], column_types={names[i]: pa.binary() for i in need}
            ),
        )
    except pa.ArrowInvalid as e:
        _strict_fail(path, spec, ncols, relations, str(e))
    if bad.found:
        _strict_fail(path, spec, ncols, relations, None)
    if table.num_rows == 0:
        return None
    return _to_block(path, spec, ncols, table, names, bad, relations, 0)


def _tsv_block(parts: dict, progress: int) -> EdgeBlock:
    def whole(v):
        if len(v) == 1:
            return v[0]
        chunks = [c for a in v for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
        return pa.chunked_array(chunks, pa.string())

    col = {k: whole(v) for k, v in parts.items()}
    return EdgeBlock(col["lhs"], col["rhs"], col.get("rel"), None, progress)


def _to_block(path, spec, ncols, table, names, bad, relations, progress):
    roles = spec.roles()
    cols = {k: table.column(names[i]) for k, i in roles.items()}
    # comment lines that happen to have the right number of columns
    first = table.column(names[0])
    comments = pc.starts_with(first, pattern="#")
    any_comment = bool(pc.any(comments).as_py())
    keep = pc.invert(comments)
    strs = {}
    for k in ("lhs", "rel", "rhs"):
        if k in cols:
            try:
                strs[k] = pc.cast(cols[k], pa.string())
            except pa.ArrowInvalid:
                if not bad.skip:
                    _strict_fail(path, spec, ncols, relations, "utf8")
                ok = _utf8_mask(cols[k])  # bad ones become "" and are rejected below
                strs[k] = pc.cast(pc.if_else(ok, cols[k], pa.scalar(b"", pa.binary())), pa.string())
    if spec.delimiter != "\t":  # a quoted CSV value may hold a TAB (a TSV one cannot)
        for k in ("lhs", "rel", "rhs"):
            if k in strs and _first_separator(strs[k]) is not None:
                _strict_fail(path, spec, ncols, relations, "separator")
    good = keep
    for k in ("lhs", "rel", "rhs"):
        if k in strs and _has_empty(strs[k]):  # masks only when needed (rare)
            good = pc.and_(good, pc.greater(pc.binary_length(strs[k]), 0))
    if relations is not None and "rel" in strs:
        good = pc.and_(good, pc.is_in(strs["rel"], value_set=relations))
    weight = None
    if "weight" in cols:
        w = cols["weight"]
        try:
            weight = pc.cast(pc.cast(w, pa.string()), pa.float32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if not bad.skip:
                _strict_fail(path, spec, ncols, relations, "weight")
            wstr = pc.cast(pc.if_else(_utf8_mask(w), w, pa.scalar(b"x", pa.binary())), pa.string())
            okw = pc.match_substring_regex(wstr, _NUMBER, ignore_case=True)
            good = pc.and_(good, okw)
            weight = pc.cast(pc.if_else(okw, wstr, pa.scalar("0")), pa.float32())
    if good is keep and not any_comment:
        n_rej = 0  # the common case: nothing to filter
    else:
        good = pc.fill_null(good, False)
        rejected = pc.and_(keep, pc.invert(good))
        n_rej = pc.sum(rejected).as_py() or 0
    if n_rej:
        if not bad.skip:
            _strict_fail(path, spec, ncols, relations, None)
        # error-only path: rebuild the rejected lines' text
        rej = table.filter(rejected)
        parts = [rej.column(names[i]) for i in sorted(set(roles.values()))]
        for vals in zip(*[p.to_pylist() for p in parts], strict=True):
            bad.reject(spec.delimiter.join(v.decode("utf-8", "replace") for v in vals))
    if n_rej or any_comment:
        strs = {k: v.filter(good) for k, v in strs.items()}
        if weight is not None:
            weight = weight.filter(good)
    if len(strs["lhs"]) == 0:
        return None
    w = (
        None
        if weight is None
        else np.asarray(
            weight.to_numpy(zero_copy_only=False)
            if isinstance(weight, pa.Array)
            else weight.combine_chunks().to_numpy(zero_copy_only=False),
            np.float32,
        )
    )
    # chunked arrays as they are: combining them would copy every name once more
    return EdgeBlock(strs["lhs"], strs["rhs"], strs.get("rel"), w, progress)


def _has_empty(col) -> bool:
    """Whether any value is empty or null, from the offsets (no per-value array)."""
    for c in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        if c.null_count:
            return True
        if len(c):
            offs = np.frombuffer(c.buffers()[1], np.int32, len(c) + 1, c.offset * 4)
            if (offs[1:] == offs[:-1]).any():
                return True
    return False


def _one(a):
    if isinstance(a, pa.ChunkedArray):
        return a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    return a


def _utf8_mask(col) -> pa.Array:
    """Which values are valid UTF-8 (error path only: a Python loop over one block)."""
    vals = _one(col).to_pylist()
    ok = []
    for v in vals:
        try:
            v.decode("utf-8")
            ok.append(True)
        except (UnicodeDecodeError, AttributeError):
            ok.append(False)
    return pa.array(ok)


def _strict_fail(path, spec, ncols, relations, detail):
    loc = locate_bad_line(path, spec, ncols, relations)
    if loc is not None:
        line, msg = loc
        raise InputFileError(f"{path}:{line}: {msg}")
    raise InputFileError(f"{path}: malformed input ({detail or 'unreadable line'})")


def locate_bad_line(path, spec: EdgeSpec, ncols: int, relations=None):
    """The first bad line as (line number, message), by a line-by-line rescan."""
    rels = None if relations is None else set(relations.to_pylist())
    roles = spec.roles()
    skip = 0
    _, stream = _open_text_stream(path)
    f = io.BufferedReader(_ArrowRaw(stream), 1 << 20)
    try:
        for lineno, raw in enumerate(f, 1):
            s = raw.rstrip(b"\n").rstrip(b"\r")
            if not s.strip() or s.startswith(b"#"):
                continue
            if spec.header and skip == 0:
                skip = 1
                continue
            try:
                text = s.decode("utf-8")
            except UnicodeDecodeError as e:
                return lineno, _utf8_msg(e)
            fields = _split(text, spec.delimiter)
            if len(fields) != ncols:
                return lineno, f"expected {ncols} columns, found {len(fields)}"
            for role in ("lhs", "rel", "rhs"):
                if role in roles and fields[roles[role]] == "":
                    return lineno, f"empty name in column {roles[role]} ({role})"
                if role in roles and any(c in fields[roles[role]] for c in "\t\n\r"):
                    return lineno, _separator_msg(fields[roles[role]], roles[role], role)
            if rels is not None and "rel" in roles and fields[roles["rel"]] not in rels:
                return lineno, (
                    f"unknown relation {fields[roles['rel']]!r} (the config lists: {', '.join(sorted(rels))})"
                )
            if "weight" in roles:
                try:
                    float(fields[roles["weight"]])
                except ValueError:
                    return lineno, f"weight {fields[roles['weight']]!r} is not a number"
    finally:
        stream.close()
    return None


def locate_name(path, spec: EdgeSpec, name: str, sides: dict) -> int | None:
    """The first line (or Parquet row, from 1) where entity ``name`` is an edge's lhs or
    rhs on a side of its type: ``sides[relation] = (lhs has the type, rhs has it)``. An
    error-only path (a line-by-line rescan), as `locate_bad_line`."""
    path = Path(path)
    one = next(iter(sides.values())) if len(sides) == 1 else (True, True)

    def hit(lhs, rel, rhs):
        lok, rok = sides.get(rel, (False, False)) if rel is not None else one
        return (lok and lhs == name) or (rok and rhs == name)

    if is_parquet(path):
        pf = pq.ParquetFile(str(path))
        cols = pf.schema_arrow.names
        sp = EdgeSpec(**vars(spec))
        if not sp.explicit:
            sp.lhs_col, sp.rel_col, sp.rhs_col = (0, None, 1) if len(cols) == 2 else (0, 1, 2)
        row = 0
        for b in pf.iter_batches(batch_size=1 << 16):
            lhs = b.column(cols[sp.lhs_col]).to_pylist()
            rhs = b.column(cols[sp.rhs_col]).to_pylist()
            rel = b.column(cols[sp.rel_col]).to_pylist() if sp.rel_col is not None else [None] * len(lhs)
            for i, (a, r, c) in enumerate(zip(lhs, rel, rhs)):
                if hit(a, r, c):
                    return row + i + 1
            row += len(lhs)
        return None
    sp, ncols, _ = resolve_spec(path, spec)
    _, stream = _open_text_stream(path)
    f = io.BufferedReader(_ArrowRaw(stream), 1 << 20)
    header = sp.header
    try:
        for lineno, raw in enumerate(f, 1):
            s = raw.rstrip(b"\n").rstrip(b"\r")
            if not s.strip() or s.startswith(b"#"):
                continue
            if header:
                header = False
                continue
            fields = _split(s.decode("utf-8", "replace"), sp.delimiter)
            if len(fields) != ncols:
                continue
            rel = fields[sp.rel_col] if sp.rel_col is not None else None
            if hit(fields[sp.lhs_col], rel, fields[sp.rhs_col]):
                return lineno
    finally:
        stream.close()
    return None


class _ArrowRaw(io.RawIOBase):
    def __init__(self, stream):
        self._s = stream

    def readable(self):
        return True

    def readinto(self, b):
        data = self._s.read(len(b))
        b[: len(data)] = data
        return len(data)


def _iter_parquet(path, spec, bad, relations, block_rows):
    _check_exists(path)
    try:
        pf = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise InputFileError(f"{path}: not a readable Parquet file ({e})") from None
    if pf.metadata.num_rows == 0:
        raise InputFileError(f"{path}: file is empty")
    schema_names = pf.schema_arrow.names
    spec = EdgeSpec(**vars(spec))
    if not spec.explicit:
        if len(schema_names) == 2:
            spec.lhs_col, spec.rel_col, spec.rhs_col = 0, None, 1
        else:
            spec.lhs_col, spec.rel_col, spec.rhs_col = 0, 1, 2
    roles = spec.roles()
    if max(roles.values()) >= len(schema_names):
        raise InputFileError(
            f"{path}: expected at least {max(roles.values()) + 1} columns, found {len(schema_names)}"
        )
    cols = [schema_names[i] for i in sorted(set(roles.values()))]
    types = {c: pf.schema_arrow.field(c).type for c in cols}
    for role, i in roles.items():
        t = types[schema_names[i]]
        ok = pa.types.is_floating(t) or pa.types.is_integer(t) if role == "weight" else _name_type(t)
        if not ok:
            want = "numbers" if role == "weight" else "names (strings or integers)"
            raise InputFileError(
                f"{path}: column {i} ({schema_names[i]!r}, {role}) has type {t}, expected {want}"
            )
    row0 = 0
    batches = pf.iter_batches(batch_size=max(block_rows(), 1 << 16), columns=cols)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
            raise InputFileError(f"{path}: not a readable Parquet file after row {row0} ({e})") from None

        lhs, rhs = (_parquet_names(path, batch, schema_names, roles, r, row0) for r in ("lhs", "rhs"))
        rel = _parquet_names(path, batch, schema_names, roles, "rel", row0) if "rel" in roles else None
        good = pc.and_(
            pc.fill_null(pc.greater(pc.binary_length(lhs), 0), False),
            pc.fill_null(pc.greater(pc.binary_length(rhs), 0), False),
        )
        if rel is not None:
            good = pc.and_(good, pc.fill_null(pc.greater(pc.binary_length(rel), 0), False))
            if relations is not None:
                good = pc.and_(good, pc.is_in(rel, value_set=relations))
        weight = None
        if "weight" in roles:
            weight = pc.cast(batch.column(schema_names[roles["weight"]]), pa.float32())
            good = pc.and_(good, pc.is_valid(weight))
        for role, col in (("lhs", lhs), ("rhs", rhs), ("rel", rel)):
            if col is not None and (i := _first_separator(col)) is not None:
                raise InputFileError(
                    f"{path}:{row0 + i + 1}: {_separator_msg(col[i].as_py(), roles[role], role)}"
                )
        ok = np.asarray(good.to_numpy(zero_copy_only=False), bool)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            if not bad.skip:
                row = {k: batch.column(schema_names[v])[i].as_py() for k, v in roles.items()}
                raise InputFileError(f"{path}:{row0 + i + 1}: {_parquet_msg(row, roles, relations)}")
            for i in np.flatnonzero(~ok):
                bad.reject("\t".join(str(batch.column(c)[int(i)].as_py()) for c in cols))
            lhs, rhs = lhs.filter(good), rhs.filter(good)
            rel = rel.filter(good) if rel is not None else None
            weight = weight.filter(good) if weight is not None else None
        row0 += batch.num_rows
        if len(lhs):
            yield EdgeBlock(
                lhs,
                rhs,
                rel,
                None if weight is None else np.asarray(weight.to_numpy(zero_copy_only=False), np.float32),
                os.path.getsize(path) * row0 // max(pf.metadata.num_rows, 1),
            )


def _parquet_names(path, batch, schema_names, roles, role, row0):
    """A batch's names of one role as strings; binary that is not UTF-8 is an error
    naming its row."""
    col = batch.column(schema_names[roles[role]])
    try:
        return pc.cast(col, pa.string())
    except pa.ArrowInvalid:
        bad_row = int(np.flatnonzero(~np.asarray(_utf8_mask(col)))[0])
        raise InputFileError(
            f"{path}:{row0 + bad_row + 1}: {role} (column {roles[role]}) is not valid UTF-8"
        ) from None


def _name_type(t) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_integer(t)
    )


_SEPARATORS = "[\t\n\r]"


def _first_separator(col) -> int | None:
    """The first value holding a TAB, newline or carriage return (None: none does). The
    exports and names.txt are text, a name per line and fields split by TAB: such a name
    would shift every row after it, so it is refused at import."""
    hit = pc.fill_null(pc.match_substring_regex(col, _SEPARATORS), False)
    if not pc.any(hit).as_py():
        return None
    return int(np.flatnonzero(np.asarray(hit.to_numpy(zero_copy_only=False), bool))[0])


def _separator_msg(name: str, col: int, role: str) -> str:
    return (
        f"name {name[:40]!r} in column {col} ({role}) holds a TAB, newline or carriage return; "
        "names may not (exports are tab-separated, one name per line)"
    )


def _parquet_msg(row, roles, relations):
    """The message for a bad Parquet row (numbered from 1, as a line would be)."""
    for role in ("lhs", "rel", "rhs"):
        if role in row and not row[role]:
            return f"empty name in column {roles[role]} ({role})"
    if "weight" in row and row["weight"] is None:
        return f"missing weight in column {roles['weight']}"
    if relations is not None and "rel" in row:
        return (
            f"unknown relation {row['rel']!r} (the config lists: {', '.join(sorted(relations.to_pylist()))})"
        )
    return "bad row"
