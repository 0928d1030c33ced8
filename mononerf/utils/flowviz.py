"""Optical flow as a colour image: hue = direction, brightness = magnitude (for tensorboard and videos)."""

from __future__ import annotations

import numpy as np


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """(H, W, 2) flow in pixels → (H, W, 3) uint8; zero flow is black, ``max_magnitude`` (default: the max) is full."""
    import cv2

    mag = np.linalg.norm(flow, axis=-1)
    ang = (np.degrees(np.arctan2(flow[..., 1], flow[..., 0])) % 360.0) / 2.0  # OpenCV hue range 0..180
    top = float(max_magnitude) if max_magnitude else float(mag.max())
    val = np.clip(mag / max(top, 1e-8), 0.0, 1.0) * 255.0
    hsv = np.stack([ang, np.full_like(ang, 255.0), val], -1).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
