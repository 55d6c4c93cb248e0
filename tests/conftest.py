"""Shared fixtures for the engine tests.

``devices`` parametrises a test over every device this machine has: always ``cpu`` and
the ``standin`` test device, plus ``cuda`` (marked ``gpu``) when cupy and a GPU answer.
Nothing here needs a command-line flag: GPU tests select themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember


def _device_params():
    params = [pytest.param("cpu", id="cpu"), pytest.param("standin", id="standin")]
    if ember.cuda.is_available():
        params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.gpu))
    return params


DEVICES = _device_params()


@pytest.fixture(params=DEVICES)
def device(request):
    """Each available device in turn: cpu, standin, and cuda when present."""
    return request.param


@pytest.fixture
def rng():
    """A seeded numpy generator, fresh for every test."""
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _grad_mode_restored():
    """A test that fails inside ``no_grad`` must not leak the mode into the next test."""
    yield
    ember.set_grad_enabled(True)
