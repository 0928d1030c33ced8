"""Image conversions shared by logging, renders and videos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from mononerf.errors import MonoNeRFError


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Values in [0, 1] (tensor or array, any shape) → uint8 array: clamp, ×255, round."""
    if torch.is_tensor(x):
        return (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def write_image(path: str | Path, img: np.ndarray, params=(), error: type[MonoNeRFError] = MonoNeRFError) -> None:
    """Write an RGB (H, W, 3) or grey (H, W) uint8 image with OpenCV (format from the suffix; ``params`` its
    ``cv2.imwrite`` flags), or raise ``error`` naming the file."""
    if not cv2.imwrite(str(path), img[..., ::-1] if img.ndim == 3 else img, list(params)):
        raise error(f"could not write {path}")
