"""``ember.save`` / ``ember.load``: tensors and nested containers in HDF5, never pickle.

What can be saved: Tensors and raw arrays (any dtype, any device), dicts (string or
integer keys), lists, tuples, and the Python scalars ``None``, ``bool``, ``int``,
``float`` and ``str`` — everything a module's or an optimizer's ``state_dict`` holds.

The file is plain HDF5: each container is a group, each tensor a dataset, each scalar a
JSON attribute, so loading only ever reads data and never runs code from the file. A
file is written under a temporary name in the same folder, flushed to disk and renamed
into place, so a crash never leaves a half-written file under the real name. A file
that is truncated, corrupt or not written by ``ember.save`` is refused with an error
that names it.

>>> ember.save({"model": model.state_dict(), "optim": opt.state_dict()}, "ckpt.h5")
>>> ckpt = ember.load("ckpt.h5", map_location="cpu")
"""

from __future__ import annotations

import json
import os

import numpy as np

from ember._backend import Device, device_of, to_device
from ember._tensor import Tensor, _wrap

__all__ = ["save", "load"]

_FORMAT = "ember.save"
_VERSION = 1


def save(obj, path) -> None:
    """Write ``obj`` (tensors, arrays, dicts, lists, tuples, scalars) to ``path`` (HDF5)."""
    import h5py

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["version"] = _VERSION
            _write(f, "root", obj, "obj")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path, map_location=None):
    """Read what ``save`` wrote. ``map_location`` (``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
    device) moves every tensor there; by default each returns to the device it was saved
    from. Dtypes are preserved exactly."""
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"ember.load: no such file: {path}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"ember.load: {path} is not a file written by ember.save (not HDF5)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"ember.load: {path} is truncated or corrupt ({e})") from None
    device = None if map_location is None else Device(str(map_location))
    with f:
        if f.attrs.get("format") != _FORMAT or "root" not in f:
            raise ValueError(f"ember.load: {path} is an HDF5 file but not one written by ember.save")
        version = int(f.attrs.get("version", -1))
        if version > _VERSION:
            raise ValueError(
                f"ember.load: {path} has format version {version}; this ember reads up to {_VERSION}"
            )
        try:
            return _read(f["root"], device)
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise ValueError(f"ember.load: {path} is truncated or corrupt ({e})") from None


# ---- encoding ----------------------------------------------------------------------------


def _write(parent, name, obj, where):
    if isinstance(obj, Tensor) or _is_array(obj):
        arr = obj._data if isinstance(obj, Tensor) else obj
        dev = device_of(arr)
        host = arr if type(arr) is np.ndarray else to_device(arr, Device("cpu"))
        ds = parent.create_dataset(name, data=host)
        ds.attrs["kind"] = "tensor" if isinstance(obj, Tensor) else "array"
        ds.attrs["device"] = str(dev)
        if isinstance(obj, Tensor) and obj.requires_grad:
            ds.attrs["requires_grad"] = True
        return
    if isinstance(obj, np.generic):
        ds = parent.create_dataset(name, data=np.asarray(obj))
        ds.attrs["kind"] = "npscalar"
        return
    if obj is None or isinstance(obj, (bool, int, float, str)):
        g = parent.create_group(name)
        g.attrs["kind"] = "scalar"
        g.attrs["value"] = json.dumps(obj)
        return
    if isinstance(obj, dict):
        g = parent.create_group(name)
        g.attrs["kind"] = "dict"
        keys = []
        for i, (k, v) in enumerate(obj.items()):
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"ember.save: dict keys must be str or int, got {k!r} at {where}")
            keys.append(["i" if isinstance(k, int) else "s", k])
            _write(g, str(i), v, f"{where}[{k!r}]")
        g.attrs["keys"] = json.dumps(keys)
        return
    if isinstance(obj, (list, tuple)):
        g = parent.create_group(name)
        g.attrs["kind"] = "tuple" if isinstance(obj, tuple) else "list"
        g.attrs["length"] = len(obj)
        for i, v in enumerate(obj):
            _write(g, str(i), v, f"{where}[{i}]")
        return
    raise TypeError(
        f"ember.save: cannot save a {type(obj).__name__} at {where}: only tensors, arrays, "
        "dicts, lists, tuples, None, bool, int, float and str are saved (no pickling)"
    )


def _is_array(obj):
    if type(obj) is np.ndarray:
        return True
    try:
        device_of(obj)
    except TypeError:
        return False
    return not isinstance(obj, np.generic)


def _read(node, device):
    kind = node.attrs.get("kind")
    if kind in ("tensor", "array"):
        host = node[()]
        if not isinstance(host, np.ndarray):
            host = np.asarray(host)
        target = device if device is not None else Device(str(node.attrs.get("device", "cpu")))
        arr = host if target.type == "cpu" else to_device(host, target)
        if kind == "array":
            return arr
        return _wrap(arr, bool(node.attrs.get("requires_grad", False)))
    if kind == "npscalar":
        return node[()]
    if kind == "scalar":
        return json.loads(node.attrs["value"])
    if kind == "dict":
        keys = json.loads(node.attrs["keys"])
        return {k: _read(node[str(i)], device) for i, (_, k) in enumerate(keys)}
    if kind in ("list", "tuple"):
        items = [_read(node[str(i)], device) for i in range(int(node.attrs["length"]))]
        return tuple(items) if kind == "tuple" else items
    raise ValueError(f"unknown entry kind {kind!r} at {node.name}")
