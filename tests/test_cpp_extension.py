"""ember.utils.cpp_extension: C++ compiled, bound, cached and differentiated through.

Builds go to a fresh cache folder per test session, so every run compiles for real. Skipped
only where no C++ compiler (or pybind11) exists; CI has g++ and installs the ``ext`` extra
through ``dev``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import ember
from ember.autograd import gradcheck
from ember.utils import cpp_extension
from ember.utils.cpp_extension import CppExtensionError, load, load_inline

HAVE_CXX = any(shutil.which(c) for c in filter(None, [os.environ.get("CXX"), "c++", "g++", "clang++"]))
pytestmark = pytest.mark.skipif(not HAVE_CXX, reason="no C++ compiler on this machine")
pytest.importorskip("pybind11", reason="pybind11 (the ext extra) is not installed")

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cpp_extensions.md"


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    # one folder for the whole session, shared by the xdist workers (the file lock makes
    # each extension build once), fresh for every session: every run compiles for real
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "ember_extensions"
    root.mkdir(exist_ok=True)
    old = os.environ.get("EMBER_EXTENSIONS_DIR")
    os.environ["EMBER_EXTENSIONS_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("EMBER_EXTENSIONS_DIR", None)
    else:
        os.environ["EMBER_EXTENSIONS_DIR"] = old


@pytest.fixture(scope="module")
def example(build_root):
    spec = importlib.util.spec_from_file_location("cpp_rms_norm", ROOT / "examples" / "cpp_rms_norm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SMALL = """
float first(ember::array<float> x) { return x.size() ? x.data()[0] : 0.0f; }

void scale_(ember::array<double> x, double a) {   // in place: writes into the caller's buffer
    double* p = x.mutable_data();
    for (py::ssize_t i = 0; i < x.size(); ++i) p[i] *= a;
}

std::vector<int64_t> shape_of(ember::array<float> x) {
    return std::vector<int64_t>(x.shape(), x.shape() + x.ndim());
}
"""
FUNCS = {"first": "the first element", "scale_": "multiply in place", "shape_of": None}


@pytest.fixture(scope="module")
def small(build_root):
    return load_inline("small_ext", SMALL, functions=FUNCS)


# ---- the worked example (docs/cpp_extensions.md) ------------------------------------------------


def test_the_docs_show_the_example_file_verbatim():
    text = DOC.read_text()
    code = (ROOT / "examples" / "cpp_rms_norm.py").read_text()
    assert code.strip() in text, "docs/cpp_extensions.md must include examples/cpp_rms_norm.py verbatim"


def test_example_gradchecks_in_float64(example):
    x = ember.tensor(np.random.default_rng(0).standard_normal((2, 3, 5)), requires_grad=True)
    w = ember.tensor(np.random.default_rng(1).standard_normal(5), requires_grad=True)
    proj = ember.tensor(np.random.default_rng(2).standard_normal((2, 3, 5)))
    assert gradcheck(lambda x, w: (example.rms_norm(x, w) * proj).sum(), (x, w))
    xt = ember.tensor(np.random.default_rng(3).standard_normal((5, 4)), requires_grad=True)
    w5 = ember.tensor(np.random.default_rng(4).standard_normal(5), requires_grad=True)
    assert gradcheck(
        lambda x, w: (example.rms_norm(x.t(), w) * ember.arange(5.0, dtype=ember.float64)).sum(), (xt, w5)
    )  # non-contiguous
    with pytest.raises(ValueError, match="weight must have x.shape"):
        example.rms_norm(ember.ones(2, 3), ember.ones(4))  # std::invalid_argument -> ValueError


def test_example_equals_the_composed_op_in_float32(example):
    r = np.random.default_rng(5)
    x = ember.tensor(r.standard_normal((64, 32)).astype(np.float32), requires_grad=True)
    w = ember.tensor(r.standard_normal(32).astype(np.float32), requires_grad=True)
    y = example.rms_norm(x, w)
    assert y.dtype == np.float32
    g = ember.tensor(r.standard_normal((64, 32)).astype(np.float32))
    y.backward(g)
    gx, gw = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    ref = example.rms_norm_composed(x, w)
    ref.backward(g)
    np.testing.assert_allclose(y.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw, w.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_example_refuses_non_cpu_tensors(example):
    with pytest.raises(RuntimeError, match="runs on CPU tensors"):
        example.rms_norm(ember.ones(2, 3, device="standin"), ember.ones(3, device="standin"))


# ---- load_inline: bindings, arrays, cache ---------------------------------------------------------


def test_generated_bindings_take_arrays_tensors_and_lists(small):
    assert small.first(np.arange(3, 6, dtype=np.float32)) == 3.0
    assert small.first(ember.tensor([7.0, 8.0])) == 7.0  # an ember CPU tensor
    assert small.first([2.5, 1.0]) == 2.5  # converted
    assert small.shape_of(np.zeros((2, 3, 4), np.float32)) == [2, 3, 4]
    assert small.first.__doc__ and "the first element" in small.first.__doc__
    buf = np.ones(4)
    small.scale_(buf, 3.0)
    assert buf.tolist() == [3.0] * 4  # no copy: the caller's buffer changed
    t = ember.ones(3, dtype=ember.float64)
    small.scale_(t, 2.0)
    assert t.tolist() == [2.0] * 3  # a tensor's storage, too


def test_a_second_load_uses_the_cache_without_compiling(small, build_root):
    (folder,) = [p for p in build_root.iterdir() if p.name.startswith("small_ext_")]
    so = next(folder.glob("small_ext*.so"))
    mtime = so.stat().st_mtime_ns
    cpp_extension._LOADED.clear()  # as a new process would: only the disk cache is left
    t0 = time.perf_counter()
    again = load_inline("small_ext", SMALL, functions=FUNCS)
    assert time.perf_counter() - t0 < 2.0  # importing, not compiling (a build takes seconds)
    assert so.stat().st_mtime_ns == mtime and again.first([1.0]) == 1.0
    assert len([p for p in build_root.iterdir() if p.name.startswith("small_ext_")]) == 1


def test_the_cache_key_covers_sources_flags_and_name():
    cxx = cpp_extension._compiler()
    base = cpp_extension._digest(cxx, "a", {"a.cpp": "int f();"}, ["-O3"], ["-shared"])
    assert base == cpp_extension._digest(cxx, "a", {"a.cpp": "int f();"}, ["-O3"], ["-shared"])
    assert base != cpp_extension._digest(cxx, "a", {"a.cpp": "int f(); "}, ["-O3"], ["-shared"])
    assert base != cpp_extension._digest(cxx, "a", {"a.cpp": "int f();"}, ["-O2"], ["-shared"])
    assert base != cpp_extension._digest(cxx, "a", {"a.cpp": "int f();"}, ["-O3"], ["-shared", "-lm"])
    assert base != cpp_extension._digest(cxx, "b", {"a.cpp": "int f();"}, ["-O3"], ["-shared"])


# ---- load from files (several sources: ninja when present) ---------------------------------------


def test_load_compiles_several_files(tmp_path, build_root):
    (tmp_path / "ops.cpp").write_text("double twice(double x) { return 2 * x; }\n")
    (tmp_path / "bind.cpp").write_text(
        'double twice(double x);\nPYBIND11_MODULE(files_ext, m) { m.def("twice", &twice); }\n'
    )
    mod = load("files_ext", [tmp_path / "ops.cpp", tmp_path / "bind.cpp"])
    assert mod.twice(21.0) == 42.0
    (folder,) = [p for p in build_root.iterdir() if p.name.startswith("files_ext_")]
    assert (folder / "build.ninja").exists() == bool(shutil.which("ninja"))
    with pytest.raises(FileNotFoundError, match="no such source file"):
        load("files_ext", [tmp_path / "missing.cpp"])


# ---- errors -----------------------------------------------------------------------------------


def test_compile_errors_name_the_extension_and_show_the_compiler_output(build_root):
    with pytest.raises(CppExtensionError, match=r"Error building extension 'broken_ext'(.|\n)*not_declared"):
        load_inline("broken_ext", "int f() { return not_declared; }", functions=["f"])


def test_no_compiler_is_one_clear_line(monkeypatch, build_root):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CppExtensionError, match="no C\\+\\+ compiler found") as e:
        load_inline("never_built", "int f() { return 1; }", functions=["f"])
    assert "\n" not in str(e.value)


def test_bad_names_and_cuda_are_refused(build_root):
    with pytest.raises(ValueError, match="valid Python identifier"):
        load_inline("not-a-name", "", functions=[])
    with pytest.raises(ValueError, match="is not a C\\+\\+ function name"):
        load_inline("ok_name", "", functions=["a b"])
    with pytest.raises(CppExtensionError, match="CPU extensions only"):
        load_inline("gpu_ext", "", cuda_sources="__global__ void k() {}")


def test_build_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_EXTENSIONS_DIR", str(tmp_path / "x"))
    assert cpp_extension.get_default_build_root() == str(tmp_path / "x")
    monkeypatch.delenv("EMBER_EXTENSIONS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cpp_extension.get_default_build_root() == str(tmp_path / "cache" / "ember_extensions")
