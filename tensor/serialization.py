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

``save``/``load`` take a path or a binary file object (``io.BytesIO``, ``open(p, "rb")``),
as ``torch.save``/``torch.load``.

>>> ember.save({"model": model.state_dict(), "optim": opt.state_dict()}, "ckpt.h5")
>>> ckpt = ember.load("ckpt.h5", map_location="cpu")
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from ember._backend import Device, device_of, to_device
from ember._tensor import Tensor, _wrap

__all__ = ["save", "load"]

_FORMAT = "ember.save"
_VERSION = 1


def save(obj, f, pickle_module=None, pickle_protocol=None, **kwargs) -> None:
    """Write ``obj`` (tensors, arrays, dicts, lists, tuples, scalars) as HDF5 to ``f``: a
    path (str or ``os.PathLike``) or a writable binary file object (``io.BytesIO``, a file
    opened ``"wb"``, ...), as ``torch.save``.

    A path is written atomically (temporary name, fsync, rename). A file object receives
    the whole file at its current position in one ``write`` (the HDF5 image is built in
    memory first, since HDF5 needs to seek and read back while writing) and is left open.

    >>> buf = io.BytesIO()
    >>> ember.save(model.state_dict(), buf)
    >>> model.load_state_dict(ember.load(io.BytesIO(buf.getvalue())))
    """
    if pickle_module is not None or pickle_protocol is not None or kwargs:
        raise TypeError(
            "ember.save writes HDF5 and never pickles: pickle_module, pickle_protocol and "
            f"{sorted(kwargs) or 'other options'} are not supported"
        )
    if hasattr(f, "write") and not isinstance(f, (str, bytes, os.PathLike)):
        data = _to_bytes(obj)
        f.write(data)
        if hasattr(f, "flush"):
            f.flush()
        return
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(
            f"ember.save: f must be a path or a writable binary file object, got {type(f).__name__}"
        )
    import h5py

    path = os.fspath(f)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as h:
            _write_root(h, obj)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_root(h, obj):
    h.attrs["format"] = _FORMAT
    h.attrs["version"] = _VERSION
    _write(h, "root", obj, "obj")


def _to_bytes(obj) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as h:
        _write_root(h, obj)
    return buf.getvalue()


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **kwargs):
    """Read what ``save`` wrote, from a path or a readable binary file object (read from
    its current position to the end, as ``torch.load``).

    ``map_location`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, a device, or a dict from saved
    to wanted device names such as ``{"cuda:0": "cpu"}``) moves the tensors; by default
    each returns to the device it was saved from. Dtypes are preserved exactly. Nothing in
    the file is ever executed, so ``weights_only`` is accepted and always holds.
    """
    if pickle_module is not None or kwargs:
        raise TypeError(
            "ember.load reads HDF5 and never unpickles: pickle_module and "
            f"{sorted(kwargs) or 'other options'} are not supported"
        )
    if mmap:
        raise ValueError("ember.load: mmap=True is not supported (HDF5 files are read, not memory-mapped)")
    if callable(map_location) and not isinstance(map_location, (str, dict, Device)):
        raise TypeError(
            "ember.load: map_location must be a device, a device name or a dict of device names "
            "(a function of storages, as torch allows, has no meaning without storages)"
        )
    import h5py

    if hasattr(f, "read") and not isinstance(f, (str, bytes, os.PathLike)):
        name = getattr(f, "name", None)
        name = f"<{type(f).__name__}>" if not isinstance(name, str) else name
        raw = f.read()
        if isinstance(raw, str):
            raise TypeError(f"ember.load: {name} is opened in text mode; open it with 'rb'")
        if not raw.startswith(b"\x89HDF\r\n\x1a\n"):
            raise ValueError(f"ember.load: {name} is not a file written by ember.save (not HDF5)")
        source, label = io.BytesIO(raw), name
    else:
        if not isinstance(f, (str, os.PathLike)):
            raise TypeError(
                f"ember.load: f must be a path or a readable binary file object, got {type(f).__name__}"
            )
        path = os.fspath(f)
        if not os.path.exists(path):
            raise FileNotFoundError(f"ember.load: no such file: {path}")
        if not h5py.is_hdf5(path):
            raise ValueError(f"ember.load: {path} is not a file written by ember.save (not HDF5)")
        source, label = path, path
    try:
        h = h5py.File(source, "r")
    except OSError as e:
        raise ValueError(f"ember.load: {label} is truncated or corrupt ({e})") from None
    if isinstance(map_location, dict):
        device = {str(k): Device(str(v)) for k, v in map_location.items()}
    else:
        device = None if map_location is None else Device(str(map_location))
    with h:
        if h.attrs.get("format") != _FORMAT or "root" not in h:
            raise ValueError(f"ember.load: {label} is an HDF5 file but not one written by ember.save")
        version = int(h.attrs.get("version", -1))
        if version > _VERSION:
            raise ValueError(
                f"ember.load: {label} has format version {version}; this ember reads up to {_VERSION}"
            )
        try:
            return _read(h["root"], device)
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise ValueError(f"ember.load: {label} is truncated or corrupt ({e})") from None


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
        saved = Device(str(node.attrs.get("device", "cpu")))
        if isinstance(device, dict):
            target = device.get(str(saved), saved)
        else:
            target = device if device is not None else saved
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
