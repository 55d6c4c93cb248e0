"""Compile C++ into a Python module of functions on arrays, as ``torch.utils.cpp_extension``.

>>> from ember.utils.cpp_extension import load_inline
>>> ext = load_inline(
...     "scale_ext",
...     cpp_sources='''
...         ember::array<float> scale(ember::array<float> x, float a) {
...             auto out = ember::empty_like(x);
...             const float* xi = x.data(); float* yo = out.mutable_data();
...             for (py::ssize_t i = 0; i < x.size(); ++i) yo[i] = a * xi[i];
...             return out;
...         }''',
...     functions=["scale"],
... )
>>> ext.scale(np.ones(3, np.float32), 2.0)
array([2., 2., 2.], dtype=float32)

Bindings are pybind11's (the ``ext`` extra installs it; header-only, so a build needs
nothing but a C++ compiler and Python's headers). Every source is compiled with
``#include <ember/extension.h>`` first, which brings ``pybind11``, its numpy arrays and
``namespace py``, and names ``ember::array<T>``: a C-contiguous ``T`` array that numpy
arrays, ember CPU tensors (through ``__array__``, without a copy) and lists convert to.
``functions=[...]`` (names, or a dict of name -> docstring) writes the
``PYBIND11_MODULE`` block for you; without it, write your own.

A build is cached by a hash of everything that goes into it (sources, flags, compiler,
Python and pybind11 versions) under ``$EMBER_EXTENSIONS_DIR`` (default
``~/.cache/ember_extensions``), so a second ``load`` of the same code imports the compiled
module at once, in this process or a later one; a file lock makes concurrent builds of
one extension (test workers, several processes) build it once. The compiler is ``$CXX``,
else ``c++``, ``g++`` or ``clang++``; with several sources and ``ninja`` on the PATH they
compile in parallel through a generated ``build.ninja``.

To differentiate through compiled code, call it from an ``ember.autograd.Function``'s
``forward`` and ``backward`` (on the raw arrays of CPU tensors): see docs/cpp_extensions.md.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["load", "load_inline", "include_paths", "get_default_build_root", "CppExtensionError"]

_INCLUDE_DIR = Path(__file__).parent / "include"
_LOADED: dict = {}
_FORMAT = 1  # bump when the build recipe changes: old caches are then not reused


class CppExtensionError(RuntimeError):
    """A C++ extension could not be built: no compiler, no pybind11, or a compile error."""


def get_default_build_root() -> str:
    """Where builds are cached: ``$EMBER_EXTENSIONS_DIR``, else ``~/.cache/ember_extensions``."""
    env = os.environ.get("EMBER_EXTENSIONS_DIR")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "ember_extensions")


def _pybind11_include() -> str:
    try:
        import pybind11
    except ImportError:
        raise CppExtensionError(
            "ember.utils.cpp_extension needs pybind11 (header-only): pip install 'ember[ext]' "
            "or pip install pybind11"
        ) from None
    return pybind11.get_include()


def include_paths() -> list[str]:
    """The include folders a build uses: ember's ``extension.h``, pybind11's and Python's headers."""
    return [str(_INCLUDE_DIR), _pybind11_include(), sysconfig.get_paths()["include"]]


def _compiler() -> str:
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else []
    candidates += ["c++", "g++", "clang++"]
    for c in candidates:
        path = shutil.which(c.split()[0]) if c else None
        if path:
            return path
    raise CppExtensionError(
        "ember.utils.cpp_extension: no C++ compiler found (looked for $CXX, c++, g++, clang++); "
        "install one, e.g. `apt-get install g++`"
    )


def _compiler_id(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"{cxx}|{out.splitlines()[0] if out else ''}"


def _check_name(name: str):
    if not name.isidentifier():
        raise ValueError(f"extension name must be a valid Python identifier, got {name!r}")


_PRELUDE = "#include <ember/extension.h>\n"


def _bindings(name: str, functions) -> str:
    if isinstance(functions, str):
        functions = [functions]
    items = functions.items() if isinstance(functions, dict) else ((f, None) for f in functions)
    lines = [f"PYBIND11_MODULE({name}, m) {{"]
    for fn, doc in items:
        if not str(fn).isidentifier():
            raise ValueError(f"functions: {fn!r} is not a C++ function name")
        doc_arg = f", {_cxx_string(doc)}" if doc else ""
        lines.append(f'    m.def("{fn}", &{fn}{doc_arg});')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cxx_string(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def load_inline(
    name: str,
    cpp_sources,
    functions=None,
    extra_cflags=None,
    extra_ldflags=None,
    extra_include_paths=None,
    build_directory=None,
    verbose: bool = False,
    with_cuda=None,
    cuda_sources=None,
    keep_intermediates: bool = True,
    build: bool = True,
):
    """Compile C++ source strings into a module and import it.

    ``cpp_sources``: a string or a list of strings (joined, each after ``#include
    <ember/extension.h>``). ``functions``: names (or name -> docstring) to bind; then the
    ``PYBIND11_MODULE`` block is generated. ``extra_cflags`` / ``extra_ldflags`` /
    ``extra_include_paths``: lists passed to the compiler (the default flags are
    ``-O3 -std=c++17 -fPIC -shared``). Returns the module; a second call with the same
    code returns it from the cache without compiling. ``build=False``: only the cached
    build, without compiling (``CppExtensionError`` if there is none yet), for a caller
    that has a slower fallback and compiles only where the build pays.
    """
    if with_cuda or cuda_sources:
        raise CppExtensionError(
            "ember.utils.cpp_extension builds CPU extensions only; write GPU kernels with "
            "ember.cuda (cupy) instead"
        )
    _check_name(name)
    if isinstance(cpp_sources, str):
        cpp_sources = [cpp_sources]
    source = _PRELUDE + "\n".join(cpp_sources)
    if functions is not None:
        source += "\n" + _bindings(name, functions)
    return _build_and_load(
        name,
        {f"{name}.cpp": source},
        extra_cflags,
        extra_ldflags,
        extra_include_paths,
        build_directory,
        verbose,
        build,
    )


def load(
    name: str,
    sources,
    extra_cflags=None,
    extra_ldflags=None,
    extra_include_paths=None,
    build_directory=None,
    verbose: bool = False,
    with_cuda=None,
    build: bool = True,
):
    """Compile C++ files into a module and import it, as ``torch.utils.cpp_extension.load``.

    ``sources``: paths of ``.cpp`` files, one of which defines ``PYBIND11_MODULE(<name>, m)``;
    each is compiled with ``#include <ember/extension.h>`` first. The cache key covers the
    files' contents, so editing a file rebuilds. ``build=False``: only the cached build, as
    in `load_inline`.
    """
    if with_cuda:
        raise CppExtensionError("ember.utils.cpp_extension builds CPU extensions only")
    _check_name(name)
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    files = {}
    for i, src in enumerate(sources):
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"ember.utils.cpp_extension.load: no such source file: {src}")
        files[f"{i:02d}_{path.name}"] = _PRELUDE + f'#line 1 "{path.resolve()}"\n' + path.read_text()
    if not files:
        raise ValueError("load: sources is empty")
    return _build_and_load(
        name, files, extra_cflags, extra_ldflags, extra_include_paths, build_directory, verbose, build
    )


def _flags(extra_cflags, extra_include_paths):
    flags = ["-O3", "-std=c++17", "-fPIC", "-fvisibility=hidden"]
    flags += [f"-I{p}" for p in [*(extra_include_paths or []), *include_paths()]]
    return flags + list(extra_cflags or [])


def _digest(cxx, name, files, cflags, ldflags) -> str:
    """The cache key: everything that goes into a build."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    key = hashlib.sha256()
    for part in (
        str(_FORMAT),
        name,
        _compiler_id(cxx),
        sys.version,
        suffix,
        " ".join(cflags),
        " ".join(ldflags),
        (_INCLUDE_DIR / "ember" / "extension.h").read_text(),
    ):
        key.update(part.encode())
        key.update(b"\0")
    for fname in sorted(files):
        key.update(fname.encode() + b"\0" + files[fname].encode() + b"\0")
    return key.hexdigest()[:16]


def _build_and_load(
    name, files, extra_cflags, extra_ldflags, extra_include_paths, build_directory, verbose, build=True
):
    cxx = _compiler()
    cflags = _flags(extra_cflags, extra_include_paths)
    ldflags = ["-shared", *(extra_ldflags or [])]
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    digest = _digest(cxx, name, files, cflags, ldflags)
    if digest in _LOADED:
        return _LOADED[digest]
    root = Path(build_directory) if build_directory else Path(get_default_build_root()) / f"{name}_{digest}"
    target = root / f"{name}{suffix}"
    if not build and not target.exists():
        raise CppExtensionError(f"ember.utils.cpp_extension: {name!r} is not built yet (in {root})")
    root.mkdir(parents=True, exist_ok=True)
    with _FileLock(root / ".lock"):
        if not target.exists():
            _compile(cxx, name, root, files, cflags, ldflags, target, verbose)
        elif verbose:
            print(f"ember.utils.cpp_extension: using the cached build of {name!r} in {root}", file=sys.stderr)
    module = _import(name, target)
    _LOADED[digest] = module
    return module


def _compile(cxx, name, root, files, cflags, ldflags, target, verbose):
    for fname, text in files.items():
        (root / fname).write_text(text)
    tmp = root / f".{target.name}.tmp-{os.getpid()}"
    srcs = [str(root / f) for f in sorted(files)]
    ninja = shutil.which("ninja")
    if len(srcs) > 1 and ninja:
        _write_ninja(root, cxx, srcs, cflags, ldflags, tmp)
        cmd = [ninja, "-C", str(root)]
    else:
        cmd = [cxx, *cflags, *srcs, *ldflags, "-o", str(tmp)]
    if verbose:
        print(f"ember.utils.cpp_extension: building {name!r}: {' '.join(cmd)}", file=sys.stderr)
    try:
        res = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    except OSError as e:
        raise CppExtensionError(f"ember.utils.cpp_extension: could not run the compiler {cxx}: {e}") from None
    if res.returncode != 0 or not tmp.exists():
        if tmp.exists():
            tmp.unlink()
        raise CppExtensionError(
            f"Error building extension {name!r} (in {root}):\n{res.stdout}{res.stderr}".rstrip()
        )
    if verbose and (res.stdout or res.stderr):
        print(res.stdout + res.stderr, file=sys.stderr)
    os.replace(tmp, target)


def _write_ninja(root, cxx, srcs, cflags, ldflags, out):
    q = " ".join
    lines = [
        f"cxx = {cxx}",
        f"cflags = {q(cflags)}",
        f"ldflags = {q(ldflags)}",
        "rule compile",
        "  command = $cxx $cflags -c $in -o $out",
        "rule link",
        "  command = $cxx $in $ldflags -o $out",
    ]
    objs = []
    for s in srcs:
        o = Path(s).with_suffix(".o").name
        objs.append(o)
        lines.append(f"build {o}: compile {s}")
    lines.append(f"build {out.name}: link {q(objs)}")
    (root / "build.ninja").write_text("\n".join(lines) + "\n")


def _import(name, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CppExtensionError(f"ember.utils.cpp_extension: cannot import the built module {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        raise CppExtensionError(
            f"ember.utils.cpp_extension: the built module {path} does not import ({e}); does one source "
            f"define PYBIND11_MODULE({name}, m), or pass functions=[...]?"
        ) from None
    return module


class _FileLock:
    """An exclusive ``flock`` on ``path`` for the duration of a build."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = None

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        return False
