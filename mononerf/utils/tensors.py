"""Small tensor helpers for the hot path."""

from __future__ import annotations

import numbers
from typing import Sequence

import torch


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, torch.Tensor)


def constant_like(value: float | Sequence[float] | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``torch.as_tensor(value, device=like.device, dtype=like.dtype)``, filled on the device for numbers.

    A Python number (→ 0-d) or a flat sequence of numbers (→ (n,)) is written by fill kernels instead of being copied
    from host memory: on a GPU such a copy waits until the device has finished all queued work, which stalls the
    training step once per constant (the values are the same either way). Tensors and anything else go through
    ``torch.as_tensor``.

    >>> constant_like((480, 270), torch.zeros(3, dtype=torch.float64))
    tensor([480., 270.], dtype=torch.float64)
    """
    if _is_number(value):
        return torch.full((), value, dtype=like.dtype, device=like.device)
    if isinstance(value, (tuple, list)) and value and all(_is_number(v) for v in value):
        out = torch.empty(len(value), dtype=like.dtype, device=like.device)
        for i, v in enumerate(value):
            out[i].fill_(v)  # a fill kernel (``out[i] = v`` may go through a host scalar tensor)
        return out
    return torch.as_tensor(value, device=like.device, dtype=like.dtype)
