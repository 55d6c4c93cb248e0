"""Every differentiable op has a numerical gradient check (and a second-derivative check
when it is smooth); the spec registry in ``op_specs.py`` must cover every Function."""

from __future__ import annotations

import pytest
from op_specs import COMPOSITES, SPECS, all_specs

import ember
from ember.autograd import gradcheck, gradgradcheck
from ember.registry import differentiable_ops

_ALL = all_specs()
_SMOOTH = [(i, s) for i, s in _ALL if s.smooth]


def test_every_registered_function_has_a_gradient_spec():
    missing = sorted(set(differentiable_ops()) - set(SPECS))
    assert not missing, f"differentiable ops without a spec in tests/op_specs.py: {missing}"


def test_spec_table_names_only_registered_functions():
    assert not sorted(set(SPECS) - set(differentiable_ops()))


def test_composite_specs_name_public_functions_or_behaviours():
    public = set(ember.registry.PUBLIC_OPS) | {"repeat", "getitem", "setitem", "inplace", "sum_to_broadcast"}
    public |= {f"linalg.{n}" for n in ember.linalg.__all__} | {f"fft.{n}" for n in ember.fft.__all__}
    assert not sorted(set(COMPOSITES) - public)


@pytest.mark.parametrize("spec", [s for _, s in _ALL], ids=[i for i, _ in _ALL])
def test_gradcheck(spec):
    assert gradcheck(spec.fn, spec.inputs(), **spec.tol)


@pytest.mark.parametrize("spec", [s for _, s in _SMOOTH], ids=[i for i, _ in _SMOOTH])
def test_gradgradcheck(spec):
    assert gradgradcheck(spec.fn, spec.inputs(), **spec.tol)
