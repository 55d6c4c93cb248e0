"""Every public op has a docstring that says what it does (with a signature line or an
argument section and an example), and every example in those docstrings runs and prints
what it says."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import ember
import ember.fft
import ember.linalg


def _public():
    ember.tensor(0)  # load the engine (and so the op registry)
    out = dict(ember.registry.PUBLIC_OPS)
    out.update({f"linalg.{n}": getattr(ember.linalg, n) for n in ember.linalg.__all__})
    out.update({f"fft.{n}": getattr(ember.fft, n) for n in ember.fft.__all__})
    out.update(finfo=ember.finfo, iinfo=ember.iinfo)
    return out


PUBLIC = _public()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_op_has_a_real_docstring(name):
    doc = PUBLIC[name].__doc__ or ""
    assert len(doc.strip()) >= 60, f"{name}: docstring missing or too short: {doc!r}"
    first = doc.strip().splitlines()[0]
    assert first.strip() != name, f"{name}: the docstring only repeats the name"


def test_the_ops_of_the_main_namespace_show_an_example():
    missing = sorted(n for n, f in PUBLIC.items() if "." not in n and ">>>" not in (f.__doc__ or ""))
    assert not missing, f"public ops without an example in their docstring: {missing}"


def test_help_of_sum_gives_its_arguments_dtype_rule_and_example():
    doc = ember.sum.__doc__
    for needle in ("dim", "keepdim", "dtype", "int64", ">>>"):
        assert needle in doc


def _examples():
    seen, out = set(), []
    for name, fn in sorted(PUBLIC.items()):
        if id(fn) in seen or ">>>" not in (fn.__doc__ or ""):
            continue
        seen.add(id(fn))
        out.append((name, fn))
    return out


@pytest.mark.parametrize("name, fn", _examples(), ids=[n for n, _ in _examples()])
def test_docstring_examples_run(name, fn):
    parser = doctest.DocTestParser()
    test = parser.get_doctest(fn.__doc__, {"ember": ember, "np": np}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    gen = ember.default_generator
    state, seed = gen.get_state(), gen.initial_seed()
    try:  # the sampling examples reseed the default generator: leave it as it was
        runner.run(test, out=report.append)
    finally:
        gen.manual_seed(seed)
        gen.set_state(state)
    assert runner.failures == 0, "".join(report)
