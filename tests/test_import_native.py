"""The import's compiled kernel (ember.partitioning.native) against the numpy path.

Both paths must give the same ids, the same partitions and the same workspace (every
file, byte for byte but the workspace id). The kernel is built once per test session in
a fresh cache folder (shared by the xdist workers), so every run compiles it for real;
skipped only where no C++ compiler or pybind11 exists (CI has both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ember.errors import UserError
from ember.partitioning import dictionary as D
from ember.partitioning import native

HAVE_CXX = any(shutil.which(c) for c in filter(None, [os.environ.get("CXX"), "c++", "g++", "clang++"]))
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ext_dir(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "ember_import_kernel"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def kernel(ext_dir, monkeypatch):
    if not HAVE_CXX:
        pytest.skip("no C++ compiler on this machine")
    pytest.importorskip("pybind11", reason="pybind11 (the ext extra) is not installed")
    monkeypatch.setenv("EMBER_EXTENSIONS_DIR", str(ext_dir))
    monkeypatch.setenv("EMBER_IMPORT_KERNEL", "cpp")
    monkeypatch.setattr(native, "_cached", {})
    return native.kernel()


def _names(rng, n, k):
    """n names drawn (with repeats, skewed) from k of many shapes and lengths."""
    shapes = ["{}", "e{:07d}", "ENG30-{:08d}-n", "http://example.org/e/{:012d}#it", "x" * 40 + "{}", "é{}日"]
    ids = np.minimum(rng.zipf(1.3, n) - 1, k - 1)
    return [shapes[i % len(shapes)].format(i) for i in ids.tolist()]


def test_the_kernel_computes_hash_strings(kernel):
    rng = np.random.default_rng(1)
    names = ["", "a", "ab", "abcdefgh", "abcdefghi", "a" * 16, "a" * 17, "x" * 40, "x" * 41, "ä", "日本"]
    names += ["".join(rng.choice(list("ab0é\x00"), size=k)) for k in rng.integers(0, 90, 3000)]
    arr = pa.array(names)
    for a in (arr, arr.slice(7), arr.slice(3, 100), pa.array(["pad"] + names[::-1]).slice(1)):
        assert kernel.hash_rows([D._buffers(a)]).tolist() == D.hash_strings(a).tolist()


@pytest.mark.parametrize("P", [1, 3])
def test_the_kernel_gives_the_numpy_paths_ids_block_after_block(kernel, P):
    rng = np.random.default_rng(P)
    fast, slow = D.EntityDictionary("all", P, 0), D.EntityDictionary("all", P, 0)
    for _ in range(12):  # the table grows (and rehashes) several times on the way
        sizes = rng.integers(0, 900, 3)
        lhs = pa.chunked_array([pa.array(_names(rng, m, 30_000), pa.string()) for m in sizes], pa.string())
        rhs = pa.array(_names(rng, int(rng.integers(1, 1500)), 30_000))
        got = fast.encode_parts_local([lhs, rhs], native=kernel)
        want = slow.encode_parts_local([lhs, rhs])
        for (gu, gl), (wu, wl) in zip(got, want, strict=True):
            assert gu.tolist() == wu.tolist() and gl.tolist() == wl.tolist()
    assert len(fast) == len(slow) > 1000
    assert fast.names.equals(slow.names)
    ids = np.arange(len(fast))
    assert (fast.partition_of(ids) == slow.partition_of(ids)).all()
    # and the paths take turns on one dictionary: the numpy lookups see the kernel's work
    probe = pa.array(slow.names.to_pylist()[::7] + ["never seen"])
    assert fast.lookup(probe).tolist() == slow.lookup(probe).tolist()
    assert (
        fast.encode(pa.array(["new one", "e0000003"])).tolist()
        == slow.encode(pa.array(["new one", "e0000003"])).tolist()
    )


def test_names_the_kernel_finds_under_a_colliding_hash_are_told_apart_by_name(kernel, monkeypatch):
    # two bits of hash: every name collides with a quarter of the others; the numpy path
    # gets the same hash through a stand-in hash_strings
    real = D.hash_strings
    rng = np.random.default_rng(5)
    fast, slow = D.EntityDictionary("all", 2, 0), D.EntityDictionary("all", 2, 0)
    blocks = [pa.array(["a", "c", "a", "b"]), pa.array(["c", "d", "zz", "a"])]  # new and known ones
    blocks += [pa.array(_names(rng, 60, 40)) for _ in range(5)]
    for b in blocks:
        chunks = D._string_chunks([b, b[::-1]])
        got = fast._encode_native(kernel, chunks, [len(b), len(b)], mask=3)
        monkeypatch.setattr(D, "hash_strings", lambda a: real(a) & np.uint64(3))
        want = slow.encode_parts_local([b, b[::-1]])
        monkeypatch.setattr(D, "hash_strings", real)
        for (gu, gl), (wu, wl) in zip(got, want, strict=True):
            assert gu[gl].tolist() == wu[wl].tolist()
    assert fast.names.equals(slow.names)
    assert len(set(fast.names.to_pylist())) == len(fast)
    monkeypatch.setattr(D, "hash_strings", lambda a: real(a) & np.uint64(3))
    probe = pa.array(["zz", "a", "d", "nope", *fast.names.to_pylist()[::3]])
    assert fast.lookup(probe).tolist() == slow.lookup(probe).tolist()
    assert fast.lookup(probe).tolist()[:4] == [slow.lookup(pa.array(["zz"]))[0], 0, 3, -1]


def test_the_radix_count_of_repeats_is_the_sorts(kernel):
    rng = np.random.default_rng(2)
    for n, hi in [(0, 1), (1, 5), (2, 1), (1000, 10), (50_000, 2**40), (70_000, 2**62), (9, 2**11)]:
        key = rng.integers(0, hi, n, dtype=np.int64)
        want = n - len(np.unique(key))
        assert kernel.count_repeats(key.copy()) == want, (n, hi)


def _arrow_columns(text: bytes, ncols: int, want: list[int]) -> list[pa.Array]:
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(ncols)]
    t = pacsv.read_csv(
        pa.py_buffer(text),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    return [t.column(names[i]).combine_chunks() for i in want]


def _split(kernel, text: bytes, ncols: int, want: list[int]):
    res = kernel.split_tsv(text, ncols, np.array(want, np.int64))
    if res is None:
        return None
    n, bufs = res
    string = pa.string()
    return [
        pa.Array.from_buffers(string, n, [None, pa.py_buffer(o), pa.py_buffer(d[:u])]) for o, d, u in bufs
    ]


def test_split_tsv_gives_pyarrows_columns_of_plain_lines(kernel):
    rng = np.random.default_rng(4)
    rows = [[*_names(rng, 3, 50), "x" * int(rng.integers(1, 30))] for _ in range(3000)]
    body = "".join("\t".join(r) + ("\r\n" if i % 7 == 0 else "\n") for i, r in enumerate(rows))
    for text in (body.encode(), body.rstrip("\r\n").encode(), b"a\tb\tc\td"):
        for want in ([0, 1, 2], [2, 0], [3]):
            got = _split(kernel, text, 4, want)
            assert got is not None
            for g, w in zip(got, _arrow_columns(text, 4, want), strict=True):
                assert g.equals(w)
    assert _split(kernel, b"a\t\tc\n", 3, [0, 2])[1].to_pylist() == ["c"]  # an unused field may be empty


@pytest.mark.parametrize(
    "line",
    [b"a\tb\n", b"a\tb\tc\td\n", b"\n", b"#a\tb\tc\n", b"a\t\tc\n", b"a\tb\rc\n", b"a\tb\tc\r",
     b"\xff\tb\tc\n", b"\xc3\tb\tc\n", b"\xed\xa0\x80\tb\tc\n", b"\xf4\x90\x80\x80\tb\tc\n",
     b"\xe0\x80\xaf\tb\tc\n", b"a\tb\tc\xe6\x97\n"],
)  # fmt: skip
def test_split_tsv_leaves_any_other_line_to_pyarrow(kernel, line):
    # in the middle of plain lines: the whole piece goes to pyarrow's parse
    assert _split(kernel, b"x\ty\tz\n" * 50 + line + b"x\ty\tz\n", 3, [0, 1, 2]) is None
    assert _split(kernel, "é\t日本\t\U0001f600\n".encode(), 3, [0, 1, 2]) is not None


@pytest.mark.parametrize(
    "text",
    [
        b"a\tr\tb\n" * 400 + b"c\tr\td",  # no newline at the end
        b"# a comment\nh1\th2\th3\n" + b"a\tr\tb\n" * 300 + b"\n\n# more\n" + b"b\ts\tc\n" * 300,
        "\ufeffa\tr\tb\r\n".encode() * 500,  # a BOM at the start is skipped, one on another line kept
        b"a\tr\tb\n" * 200 + b"bad line\n" + b"a\tr\t\n" + b"c\tq\td\n" * 200,
        b"a\tr\tb\textra\n" * 300 + b"x\tr\ty\tz\n" * 300,
        b"a\tb\n" * 300 + b"\xff\tb\n" + "c\td\u00e9\n".encode() * 300,
        b"".join(
            b"\t".join(b"e%d" % (i * j % 97) for j in range(70)) + b"\n" for i in range(400)
        ),  # 70 columns
    ],
)
def test_iter_blocks_gives_the_same_blocks_with_and_without_the_kernel(kernel, tmp_path, text):
    from ember.partitioning.readers import BadLines, EdgeSpec, iter_blocks

    path = tmp_path / "e.tsv"
    path.write_bytes(text)
    spec = EdgeSpec(header=b"h1" in text)
    got = []
    for tok in (kernel, None):
        bad = BadLines(skip=True)
        blocks = iter_blocks(path, spec, bad, block_rows=lambda: 250, block_bytes=1 << 10, tokenizer=tok)
        blocks = list(blocks)
        got.append(([(b.lhs, b.rel, b.rhs, b.progress) for b in blocks], bad.count, bad.lines))
    (a, ca, la), (b, cb, lb) = got
    assert ca == cb and la == lb
    assert len(a) == len(b) > 1
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x[:3], y[:3], strict=True):
            assert (u is None and v is None) or pa.chunked_array(u).equals(pa.chunked_array(v))
        assert x[3] == y[3]
    assert sum(len(x[0]) for x in a) >= 400


def test_add_at_is_numpys_fancy_add_and_refuses_an_id_out_of_range(kernel):
    rng = np.random.default_rng(6)
    uids = rng.permutation(10_000)[:3000].astype(np.int64)
    c, tc = rng.integers(0, 9, 3000), rng.integers(0, 9, 3000)
    cnt, tcnt = rng.integers(0, 5, 10_000), rng.integers(0, 5, 10_000)
    want_c, want_t = cnt.copy(), tcnt.copy()
    want_c[uids] += c
    want_t[uids] += tc
    kernel.add_at(cnt, tcnt, uids, c, tc)
    assert cnt.tolist() == want_c.tolist() and tcnt.tolist() == want_t.tolist()
    kernel.add_at(cnt, tcnt, uids, c, np.zeros(0, np.int64))  # no training counts
    assert (cnt - want_c)[uids].tolist() == c.tolist() and tcnt.tolist() == want_t.tolist()
    with pytest.raises(ValueError, match="out of range"):
        kernel.add_at(cnt, tcnt, np.array([10_000]), c[:1], tc[:1])


def test_route_rows_refuses_an_index_out_of_range(kernel):
    i = np.array([0, 1], np.int32)
    part, off = np.zeros(2, np.int32), np.arange(2, dtype=np.int32)
    rel, split = np.zeros(2, np.int64), np.zeros(0, np.int8)
    j = i[::-1].copy()
    bounds, lo, ro, rel32, _, loops = kernel.route_rows(i, j, part, off, part, off, rel, split, 1)
    assert bounds.tolist() == [0, 2] and lo.tolist() == [0, 1] and ro.tolist() == [1, 0] and loops == 0
    with pytest.raises(ValueError, match="out of range"):
        kernel.route_rows(i + 5, i, part, off, part, off, rel, split, 1)
    with pytest.raises(ValueError, match="out of range"):
        kernel.route_rows(i, i, part + 1, off, part, off, rel, split, 1)


def _import(tmp_path, monkeypatch, mode, name, inputs, **kw):
    from ember.partitioning import ImportOptions, append_edges, import_edges

    monkeypatch.setenv("EMBER_IMPORT_KERNEL", mode)
    out = tmp_path / name
    opts = ImportOptions(out=out, read_block_bytes=1 << 14, min_block_rows=700, buffer_bytes=30_000, **kw)
    import_edges(inputs[:1], opts)
    for more in inputs[1:]:
        append_edges([more], out, ImportOptions(read_block_bytes=1 << 14, min_block_rows=700))
    return out


def _same_workspace(a: Path, b: Path) -> None:
    from ember.partitioning import read_shard

    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert any(f.name.startswith("edges_") for f in files)
    for f in files:
        if f.suffix in (".h5", ".arrow"):  # the shards record the workspace id
            x, y = read_shard(a / f), read_shard(b / f)
            assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x), f
        elif f.name == "workspace.json":
            x, y = (json.loads((w / f).read_text()) for w in (a, b))
            assert x.pop("workspace_id") != y.pop("workspace_id") and x == y
        elif f.name != "config.toml":  # it names its own folder
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.mark.parametrize(
    "P, kw",
    [
        (1, {}),
        (3, {"valid_fraction": 0.1, "test_fraction": 0.1}),
        (4, {"drop_self_loops": True, "drop_duplicates": True, "shard_format": "arrow"}),
    ],
)
def test_an_import_with_the_kernel_writes_the_numpy_paths_workspace(kernel, tmp_path, monkeypatch, P, kw):
    rng = np.random.default_rng(P)
    files = []
    for i, n in enumerate([6000, 1500]):  # an import, then an append with new names
        heads, tails = _names(rng, n, 2500 * (i + 1)), _names(rng, n, 2500 * (i + 1))
        rels = [f"r{j}" for j in rng.integers(0, 7, n)]
        path = tmp_path / f"e{i}.tsv"
        path.write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in zip(heads, rels, tails)) + "x\tr0\tx\n" * 5)
        files.append(path)
    fast = _import(tmp_path, monkeypatch, "cpp", "fast", files, num_partitions=P, **kw)
    slow = _import(tmp_path, monkeypatch, "numpy", "slow", files, num_partitions=P, **kw)
    _same_workspace(fast, slow)
    stats = json.loads((fast / "workspace.json").read_text())["stats"]
    assert stats["self_loops"] >= 10 and stats["duplicates"] > 0


def test_a_typed_import_with_the_kernel_writes_the_numpy_paths_workspace(kernel, tmp_path, monkeypatch):
    cfg = tmp_path / "model.toml"
    cfg.write_text(
        "dimension = 8\n[entities.user]\nnum_partitions = 2\n[entities.item]\nnum_partitions = 1\n"
        '[[relations]]\nname = "buys"\nlhs = "user"\nrhs = "item"\n'
        '[[relations]]\nname = "follows"\nlhs = "user"\nrhs = "user"\n'
    )
    rng = np.random.default_rng(9)
    lines = []
    for _ in range(4000):
        if rng.random() < 0.5:
            lines.append(f"u{rng.integers(0, 900)}\tbuys\ti{rng.integers(0, 300)}\n")
        else:
            lines.append(f"u{rng.integers(0, 900)}\tfollows\tu{rng.integers(0, 900)}\n")
    src = tmp_path / "typed.tsv"
    src.write_text("".join(lines))
    fast = _import(tmp_path, monkeypatch, "cpp", "fast", [src], config=cfg)
    slow = _import(tmp_path, monkeypatch, "numpy", "slow", [src], config=cfg)
    _same_workspace(fast, slow)


def test_kernel_modes_and_the_fallback_without_a_compiler(monkeypatch, capsys):
    from ember.utils.cpp_extension import CppExtensionError

    def no_compiler(build):
        raise CppExtensionError("ember.utils.cpp_extension: no C++ compiler found (looked for ...)")

    monkeypatch.setattr(native, "_cached", {})
    monkeypatch.setattr(native, "_load", no_compiler)
    monkeypatch.setenv("EMBER_IMPORT_KERNEL", "auto")
    assert native.kernel(1000) is None  # small: silently numpy
    assert capsys.readouterr().err == ""
    assert native.kernel(native.BUILD_BYTES) is None  # large: numpy, and one line saying why
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "note: importing without the C++ kernel, about twice the CPU time (ember.utils.cpp_extension: "
        "no C++ compiler found (looked for ...))"
    )
    monkeypatch.setenv("EMBER_IMPORT_KERNEL", "cpp")
    with pytest.raises(UserError, match="EMBER_IMPORT_KERNEL=cpp: the import's kernel cannot be built"):
        native.kernel()
    monkeypatch.setenv("EMBER_IMPORT_KERNEL", "numpy")
    assert native.kernel(1 << 40) is None
    monkeypatch.setenv("EMBER_IMPORT_KERNEL", "fast")
    with pytest.raises(UserError, match="EMBER_IMPORT_KERNEL='fast': choose auto, cpp or numpy"):
        native.kernel()


def test_auto_builds_only_for_a_large_input_else_takes_a_cached_build_or_none(monkeypatch, capsys):
    from ember.utils.cpp_extension import CppExtensionError

    calls = []

    def load(build):
        calls.append(build)
        if not build:
            raise CppExtensionError("ember.utils.cpp_extension: 'ember_import_kernel' is not built yet")
        return "built"

    monkeypatch.setenv("EMBER_IMPORT_KERNEL", "auto")
    monkeypatch.setattr(native, "_cached", {})
    monkeypatch.setattr(native, "_load", load)
    assert native.kernel(native.BUILD_BYTES - 1) is None and calls == [False]
    assert native.kernel(native.BUILD_BYTES) == "built" and calls == [False, False, True]
    assert "building the import's C++ kernel" in capsys.readouterr().err
    assert native.kernel(10) == "built" and calls == [False, False, True]  # loaded once per process


def test_load_inline_without_build_takes_only_a_cached_build(kernel, tmp_path, monkeypatch):
    from ember.utils.cpp_extension import CppExtensionError, load_inline

    monkeypatch.setenv("EMBER_EXTENSIONS_DIR", str(tmp_path / "cache"))
    src = "int forty_two() { return 42; }"
    with pytest.raises(CppExtensionError, match="'tiny_ext' is not built yet"):
        load_inline("tiny_ext", src, functions=["forty_two"], build=False)
    assert not (tmp_path / "cache").exists()  # nothing compiled, nothing written
    assert load_inline("tiny_ext", src, functions=["forty_two"]).forty_two() == 42


def _import_in_a_child(tmp_path, then: str, env: dict) -> str:
    """Run `pbg import` of a small file in a fresh interpreter, then the code ``then``;
    returns what it printed."""
    src = tmp_path / "e.tsv"
    src.write_text("a\tr\tb\nb\tr\tc\nc\ts\ta\n")
    code = (
        "from ember.cli.main import main\n"
        f"try:\n    main(['import', {str(src)!r}, '--out', {str(tmp_path / 'ws')!r}])\n"
        "except SystemExit:\n    pass\n" + then
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_an_import_through_the_kernel_loads_no_engine(kernel, ext_dir, tmp_path):
    then = (
        "from ember.partitioning import native\nassert native._cached.get('mod') is not None\n"
        "import sys\nprint('\\n'.join(sorted(sys.modules)))"
    )
    env = {**os.environ, "EMBER_EXTENSIONS_DIR": str(ext_dir), "EMBER_IMPORT_KERNEL": "cpp"}
    mods = _import_in_a_child(tmp_path, then, env).split()
    engine = ("ember.nn", "ember.optim", "ember.autograd", "ember._tensor", "scipy")
    assert [m for m in mods if any(m == e or m.startswith(e + ".") for e in engine)] == []


def test_a_pbg_import_process_starts_no_blas_threads(tmp_path):
    # it does no linear algebra: OpenBLAS's threads would only spin while it works
    pytest.importorskip("threadpoolctl")
    then = (
        "from threadpoolctl import threadpool_info\n"
        "print([i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    assert _import_in_a_child(tmp_path, then, env).split("\n")[-2] in ("[1]", "[]")


_NUMPY_HUGE_PAGES = (
    "import numpy as np\n"
    "core = getattr(np, '_core', None) or np.core\n"
    "print(core.multiarray._set_madvise_hugepage(True))"  # returns the setting it replaced
)


@pytest.mark.parametrize("user", [None, "1"])
def test_a_pbg_import_process_asks_no_huge_pages_for_temporaries(tmp_path, user):
    # numpy's huge pages for every large temporary cost the import its zeroing (see
    # ember._malloc); the dictionary's tables ask for them themselves. The user's setting wins.
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if user is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = user
    got = _import_in_a_child(tmp_path, _NUMPY_HUGE_PAGES, env).split("\n")[-2]
    assert got == ("True" if user == "1" else "False")


def test_huge_pages_leaves_the_array_as_it_was():
    from ember._malloc import huge_pages

    for n in (10, 3 << 20):  # under the size it acts on, and over
        a = np.zeros(n, np.int32)
        assert huge_pages(a) is a
        a[:] = 7
        assert int(a.sum()) == 7 * n
