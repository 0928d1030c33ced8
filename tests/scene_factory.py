"""Write tiny scenes in the original's on-disk format for loader tests (random content, known cameras)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from mononerf.geometry.poses import opengl_to_llff


def look_c2w(position, rng: np.random.RandomState, jitter: float = 0.05) -> np.ndarray:
    """(3, 4) OpenGL camera at ``position`` looking roughly along -z with a small random rotation."""
    ax, ay = rng.uniform(-jitter, jitter, size=2)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    return np.concatenate([ry @ rx, np.asarray(position, float)[:, None]], 1)


def write_scene(root: Path, frames: int = 4, height: int = 8, width: int = 12, focal: float = 10.0,
                seed: int = 0, dynamic_box=(2, 5, 3, 8), full_factor: int = 2) -> dict:
    """Write a scene at training size (height, width) with images/ at ``full_factor`` × that size.

    Returns the ground truth: OpenGL c2w (T, 3, 4) of the FULL-resolution camera, bounds (T, 2), full focal.
    """
    rng = np.random.RandomState(seed)
    root.mkdir(parents=True, exist_ok=True)
    c2w = np.stack([look_c2w([0.1 * i, 0.02 * i, 0.0], rng) for i in range(frames)], 0)
    bds = np.stack([rng.uniform(2.0, 3.0, frames), rng.uniform(8.0, 10.0, frames)], -1)
    hwf = np.broadcast_to(np.array([height * full_factor, width * full_factor, focal * full_factor])[None, :, None],
                          (frames, 3, 1))
    poses_gl = np.concatenate([c2w, hwf], 2)
    arr = np.concatenate([opengl_to_llff(poses_gl).reshape(frames, 15), bds], 1)
    np.save(root / "poses_bounds.npy", arr)
    for sub in ("images", "images_2", "disp", "motion_masks", "flow"):
        (root / sub).mkdir(exist_ok=True)
    y0, y1, x0, x1 = dynamic_box
    for i in range(frames):
        img = rng.randint(0, 256, size=(height, width, 3), dtype=np.uint8)
        iio.imwrite(root / "images_2" / f"{i:03d}.png", img)
        iio.imwrite(root / "images" / f"{i:03d}.png", np.repeat(np.repeat(img, full_factor, 0), full_factor, 1))
        np.save(root / "disp" / f"{i:03d}.npy", rng.uniform(0.1, 1.0, size=(height, width)).astype(np.float32))
        mask = np.zeros((height, width), np.uint8)
        mask[y0:y1, x0 + i % 2:x1 + i % 2] = 255
        iio.imwrite(root / "motion_masks" / f"{i:03d}.png", mask)
        flow = rng.normal(size=(height, width, 2)).astype(np.float32)
        valid = rng.uniform(size=(height, width)) > 0.2
        if i < frames - 1:
            np.savez(root / "flow" / f"{i:03d}_fwd.npz", flow=flow, mask=valid)
        if i > 0:
            np.savez(root / "flow" / f"{i:03d}_bwd.npz", flow=-flow, mask=valid)
    return {"c2w": c2w, "bds": bds, "focal_full": focal * full_factor}
