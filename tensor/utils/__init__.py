"""``ember.utils``: what ``torch.utils`` gives a PyTorch user.

* ``ember.utils.data``: ``Dataset``, ``TensorDataset``, ``DataLoader``, samplers, ``random_split``.
* ``ember.utils.cpp_extension``: compile C++ into functions on arrays (``load_inline``, ``load``).

Both load on first use, so ``import ember.utils`` costs nothing.
"""

import importlib as _importlib

_SUBMODULES = ("data", "cpp_extension")


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"ember.utils.{name}")
    raise AttributeError(f"module 'ember.utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
