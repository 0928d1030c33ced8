"""Image conversions shared by logging, renders and videos."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Values in [0, 1] (tensor or array, any shape) → uint8 array: clamp, ×255, round."""
    if torch.is_tensor(x):
        return (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)
