"""Optical flow as colour images: the Middlebury / RAFT colour wheel of torchvision's ``flow_to_image``.

Zero flow is white; hue gives the direction and saturation grows with the magnitude, full at the largest magnitude
(or at a given one, so that every frame of a video shares a scale). Used by tensorboard, the videos and the
preprocessing's flow pictures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchvision.utils import flow_to_image


def flows_to_rgb(flows: Sequence[np.ndarray] | np.ndarray, max_magnitude: float | None = None) -> list[np.ndarray]:
    """Flows (N of (H, W, 2), pixels) → N (H, W, 3) uint8 images on one scale: ``max_magnitude`` (default: the largest
    magnitude of all of them) is the wheel's rim, larger flows are clipped to it, zero flow is white."""
    stack = torch.as_tensor(np.stack([np.asarray(f, dtype=np.float32) for f in flows]))  # (N, H, W, 2)
    if stack.dim() != 4 or stack.shape[-1] != 2:
        raise ValueError(f"flows must be (H, W, 2) each, got {tuple(stack.shape[1:])}")
    stack = torch.nan_to_num(stack, nan=0.0, posinf=0.0, neginf=0.0)
    mag = stack.norm(dim=-1, keepdim=True)
    top = float(max_magnitude) if max_magnitude else float(mag.max())
    if top <= 0.0:  # no motion anywhere: all white
        return [np.full(f.shape[:2] + (3,), 255, np.uint8) for f in stack.numpy()]
    stack = stack * torch.clamp(top / mag.clamp_min(1e-12), max=1.0)  # clip to the rim
    # flow_to_image scales by the largest magnitude it is given: one extra frame holding one pixel at the rim
    # makes that largest magnitude ``top`` whatever the frames hold
    rim = torch.zeros_like(stack[:1])
    rim[0, 0, 0, 0] = top
    img = flow_to_image(torch.cat([stack, rim]).permute(0, 3, 1, 2).contiguous())[:-1]  # (N, 3, H, W) uint8
    return list(img.permute(0, 2, 3, 1).numpy())


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """(H, W, 2) flow in pixels → (H, W, 3) uint8 on the colour wheel (:func:`flows_to_rgb`)."""
    return flows_to_rgb([flow], max_magnitude)[0]
