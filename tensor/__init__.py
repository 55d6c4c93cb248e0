"""Ember: tensors with reverse-mode autodiff on numpy/cupy."""
from ember import errors  # noqa: F401
