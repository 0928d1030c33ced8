"""Symbolic shape checks for tensor-facing functions (in the spirit of kornia's KORNIA_CHECK_SHAPE).

>>> import torch
>>> check_shape(torch.zeros(2, 5, 3), "B N 3")
>>> check_shape(torch.zeros(2, 5, 4), "B N 3")
Traceback (most recent call last):
...
ValueError: expected shape (B, N, 3) for tensor, got (2, 5, 4)
"""

from __future__ import annotations

from typing import Sequence


def check_shape(x, spec: str | Sequence[str], name: str = "tensor") -> None:
    """Raise ``ValueError`` unless ``x.shape`` matches ``spec``.

    Args:
        x: any object with a ``shape`` attribute (torch tensor, numpy array).
        spec: space-separated dims; integers must match exactly, names match anything,
            a leading ``*`` (e.g. ``"* 3"``) matches any number of leading dims.
        name: how the tensor is called in the message.
    """
    dims = spec.split() if isinstance(spec, str) else list(spec)
    shape = tuple(x.shape)
    pretty = "(" + ", ".join(dims) + ")"
    if dims and dims[0] == "*":
        dims = dims[1:]
        ok = len(shape) >= len(dims)
        shape_tail = shape[len(shape) - len(dims):] if ok else shape
    else:
        ok = len(shape) == len(dims)
        shape_tail = shape
    if ok:
        for d, s in zip(dims, shape_tail):
            if d.lstrip("-").isdigit() and int(d) != s:
                ok = False
                break
    if not ok:
        raise ValueError(f"expected shape {pretty} for {name}, got {shape}")
