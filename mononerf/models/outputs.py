"""The heads' raw outputs by name: the one place that knows their channel layout (method.md §2.9, §2.10).

A network call returns one packed tensor per head (points are chunked and concatenated along the leading dims,
so one tensor travels best); everything that reads or writes one goes through these names:

* static head, (..., 5): ``rgb`` logits 0:3, ``sigma`` 3, ``blending`` 4 (its own blending weight, read when
  ``train.DyNeRF_blending`` is off);
* dynamic head, (..., 11[+F]): ``rgb`` 0:3, ``sigma`` 3, ``position_b`` / ``position_f`` 4:7 / 7:10 (where the point
  is at t−1 / t+1, from the velocity field; scene flow = position − point), ``blending`` 10, then optional
  ``features`` (F channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

RGB_SIGMA = slice(0, 4)  # what compositing reads: rgb logits and density
STATIC_CHANNELS = 5
DYNAMIC_CHANNELS = 11


@dataclass(frozen=True)
class DynamicRaw:
    """Named views of a dynamic raw output (no copies)."""

    rgb_sigma: Tensor  # (..., 4)
    position_b: Tensor  # (..., 3) the point at t−1
    position_f: Tensor  # (..., 3) the point at t+1
    blending: Tensor  # (...,)
    features: Tensor | None  # (..., F) or None

    @classmethod
    def of(cls, raw: Tensor) -> "DynamicRaw":
        if raw.shape[-1] < DYNAMIC_CHANNELS:
            raise ValueError(f"a dynamic raw output has >= {DYNAMIC_CHANNELS} channels, got {raw.shape[-1]}")
        return cls(raw[..., RGB_SIGMA], raw[..., 4:7], raw[..., 7:10], raw[..., 10],
                   raw[..., DYNAMIC_CHANNELS:] if raw.shape[-1] > DYNAMIC_CHANNELS else None)


def pack_dynamic(rgb_sigma: Tensor, positions_bf: Tensor, blending: Tensor) -> Tensor:
    """(..., 4), (..., 6) = [position_b, position_f], (..., 1) → the dynamic raw output (..., 11)."""
    return torch.cat([rgb_sigma, positions_bf, blending], -1)


def pack_static(rgb_sigma: Tensor, blending: Tensor) -> Tensor:
    """(..., 4), (..., 1) → the static raw output (..., 5)."""
    return torch.cat([rgb_sigma, blending], -1)


def static_blending(raw_s: Tensor) -> Tensor:
    """The static head's blending channel (..., ) of a static raw output."""
    if raw_s.shape[-1] < STATIC_CHANNELS:
        raise ValueError(f"a static raw output with blending has {STATIC_CHANNELS} channels, got {raw_s.shape[-1]}")
    return raw_s[..., 4]


def empty_dynamic(like: Tensor, channels: int = DYNAMIC_CHANNELS) -> Tensor:
    """A dynamic raw output with nothing in it (density 0, blending 0, positions 0) shaped like ``like[..., 0]``."""
    return torch.zeros(like.shape[:-1] + (channels,), dtype=like.dtype, device=like.device)


def without_static_blending(raw_s: Tensor) -> Tensor:
    """A static raw output whose blending channel is 0 (the static field alone)."""
    if raw_s.shape[-1] <= 4:
        return raw_s
    return torch.cat([raw_s[..., RGB_SIGMA], torch.zeros_like(raw_s[..., 4:])], -1)
