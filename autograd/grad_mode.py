"""Grad modes: cheap, per-thread switches that decide whether ops record a graph."""

from __future__ import annotations

import functools
import threading


class _State(threading.local):
    enabled = True  # class attribute: the default for every new thread


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


class _Mode:
    """Base for context managers that also work as decorators."""

    mode = True

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = self.mode

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _state.enabled
            _state.enabled = self.mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper


class no_grad(_Mode):
    """Disable graph recording: ``with ember.no_grad(): ...`` or ``@ember.no_grad()``."""

    mode = False


class enable_grad(_Mode):
    """Re-enable graph recording inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled(_Mode):
    """``set_grad_enabled(False)`` as a context manager, or called plainly to set the mode."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = _state.enabled
        _state.enabled = self.mode

    def __enter__(self):
        pass  # already switched in __init__, as PyTorch does

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False


class inference_mode(_Mode):
    """Like ``no_grad``; tensors made inside never record a graph."""

    def __init__(self, mode: bool = True):
        self.mode = not mode


def _decorate_set_grad_enabled(self, fn):
    _state.enabled = self._prev  # used as a decorator: undo the switch made in __init__
    return _Mode.__call__(self, fn)


set_grad_enabled.__call__ = _decorate_set_grad_enabled
