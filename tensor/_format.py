"""``repr`` of tensors, PyTorch-style: ``tensor([[1., 2.]], requires_grad=True)``."""

from __future__ import annotations

import numpy as np

from ember._backend import CPU, to_device


def format_tensor(t) -> str:
    host = to_device(t._data, CPU)
    body = np.array2string(
        host,
        separator=", ",
        precision=4,
        threshold=1000,
        edgeitems=3,
        prefix="tensor(",
        floatmode="maxprec_equal" if host.dtype.kind == "f" else "maxprec",
    )
    extras = []
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if host.dtype not in (np.float32, np.int64, np.bool_) or host.size == 0:
        extras.append(f"dtype=ember.{host.dtype}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
