"""Disparity without MiDaS weights: the static pixels triangulated from optical flow and the camera poses.

For frame i and each partner frame j (the :data:`MAX_PARTNERS` nearest frames in time whose camera centre is far
enough for :data:`PARTNER_PARALLAX_DEG` of parallax at the frame's typical depth, the geometric mean of its
bounds: a walking camera needs frames further apart than a car's), the classical flow
i → j (OpenCV DIS, :func:`mononerf.preprocess.flow.classical_flow`) gives every pixel p a match q. With the poses of
``poses_bounds.npy`` (K from hwf, principal point at the centre) the two rays are triangulated (midpoint); an
estimate is kept when the rays meet at an angle of at least :data:`MIN_PARALLAX_DEG`, the point lies in front of
both cameras and reprojects within :data:`MAX_REPROJ_PX` of p and q (a moving point does not: it is dropped). The
disparity of a pixel is the median of its kept estimates over the partners, kept when at least
:data:`MIN_ESTIMATES` partners agree within :data:`MAX_SPREAD` (a point moving along its epipolar lines passes
each pair's test with a different depth). The other pixels (moving things, low texture, too little parallax) are
filled from their neighbours by normalised convolution (:func:`fill_holes`), then the map gets a 3x3 median. Written as the MiDaS step writes: ``disp/<stem>.npy`` (float32, 1 / depth in the poses' units;
the training's depth loss is invariant to scale and shift) and ``disp_png/``.

Agreement with the synthetic scenes' true disparity is measured in docs/real-video.md.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np

from mononerf.preprocess.common import PreprocessError, list_images, progress
from mononerf.utils.folders import staged

MIN_PARALLAX_DEG = 0.5
PARTNER_PARALLAX_DEG = 1.0  # partners are the nearest frames whose baseline subtends this at the scene's depth …
MAX_PARTNERS = 4  # … at most this many
MAX_REPROJ_PX = 1.0
MIN_ESTIMATES = 2  # a pixel needs this many partners that agree …
MAX_SPREAD = 0.15  # … within this relative median deviation (a point moving along its epipolar lines does not)


def _cameras(poses_bounds: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """((T, 4, 4) COLMAP world-to-camera, (3, 3) K at (height, width)) from ``poses_bounds.npy`` rows."""
    from mononerf.preprocess.motion_masks import intrinsics, llff_to_colmap_w2c

    return llff_to_colmap_w2c(poses_bounds), intrinsics(poses_bounds[0, :15].reshape(3, 5)[:, 4], height, width)


def triangulate_flow(w2c_i: np.ndarray, w2c_j: np.ndarray, K: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(H, W) depth along frame i's optical axis of each pixel matched by ``flow`` (i → j, (H, W, 2) pixels); NaN
    where the rays are too parallel, the point is behind a camera, or it does not reproject within the tolerance."""
    height, width = flow.shape[:2]
    x, y = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    k_inv = np.linalg.inv(K)
    c2w_i, c2w_j = np.linalg.inv(w2c_i), np.linalg.inv(w2c_j)
    pix_i = np.stack([x, y, np.ones_like(x)], -1)
    pix_j = np.stack([x + flow[..., 0], y + flow[..., 1], np.ones_like(x)], -1)
    d_i = pix_i @ k_inv.T @ c2w_i[:3, :3].T  # ray directions in the world, unit depth in camera i
    d_j = pix_j @ k_inv.T @ c2w_j[:3, :3].T
    w = c2w_i[:3, 3] - c2w_j[:3, 3]
    a, b, c = (d_i * d_i).sum(-1), (d_i * d_j).sum(-1), (d_j * d_j).sum(-1)
    d, e = d_i @ w, d_j @ w
    denom = a * c - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s, t = (b * e - c * d) / denom, (a * e - b * d) / denom
        cos = b / np.sqrt(a * c)
    point = 0.5 * (c2w_i[:3, 3] + s[..., None] * d_i + c2w_j[:3, 3] + t[..., None] * d_j)  # midpoint of the rays
    ok = (s > 0) & (t > 0) & (cos < np.cos(np.radians(MIN_PARALLAX_DEG)))
    for w2c, pix in ((w2c_i, pix_i), (w2c_j, pix_j)):
        cam = point @ w2c[:3, :3].T + w2c[:3, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            proj = cam @ K.T
            err = np.linalg.norm(proj[..., :2] / proj[..., 2:] - pix[..., :2], axis=-1)
        ok &= (cam[..., 2] > 0) & (err < MAX_REPROJ_PX)
    depth = point @ w2c_i[2, :3] + w2c_i[2, 3]
    return np.where(ok, depth, np.nan)


def partners(w2c: np.ndarray, depth: float, i: int) -> list[int]:
    """The frames triangulated with frame ``i``: the :data:`MAX_PARTNERS` nearest in time whose baseline subtends at
    least :data:`PARTNER_PARALLAX_DEG` at ``depth``; the two with the widest baselines when none does."""
    centres = np.stack([np.linalg.inv(m)[:3, 3] for m in w2c])
    angle = np.degrees(np.linalg.norm(centres - centres[i], axis=1) / depth)
    others = sorted((j for j in range(len(w2c)) if j != i), key=lambda j: (abs(j - i), j))
    chosen = [j for j in others if angle[j] >= PARTNER_PARALLAX_DEG][:MAX_PARTNERS]
    return chosen if len(chosen) >= 2 else sorted(others, key=lambda j: -angle[j])[:2]


def flow_disparity(frames: list[np.ndarray], w2c: np.ndarray, K: np.ndarray, i: int, flow_fn,
                   depth: float) -> np.ndarray:
    """(H, W) float32 disparity of frame ``i`` from its :func:`partners` (see the module docstring) at the typical
    scene ``depth``; ``flow_fn(a, b)`` gives the flow a → b of two (H, W, 3) uint8 frames."""
    estimates = [1.0 / triangulate_flow(w2c[i], w2c[j], K, flow_fn(frames[i], frames[j]))
                 for j in partners(w2c, depth, i)]
    stack = np.stack(estimates)
    with warnings.catch_warnings():  # an all-NaN pixel (no kept estimate) is a hole, filled below
        warnings.simplefilter("ignore", RuntimeWarning)
        disp = np.nanmedian(stack, 0)
        spread = np.nanmedian(np.abs(stack - disp), 0) / np.abs(disp)
    count = np.isfinite(stack).sum(0)
    holes = ~np.isfinite(disp) | (disp <= 0) | (count < MIN_ESTIMATES) | ~(spread <= MAX_SPREAD)
    if holes.mean() > 0.95:
        raise PreprocessError(f"frame {i}: fewer than 5 % of the pixels could be triangulated from the flow (the "
                              "camera hardly moves); depth needs MiDaS weights for this clip")
    lo, hi = np.percentile(disp[~holes], (1, 99))
    disp = fill_holes(np.clip(np.where(holes, 0.0, disp), lo, hi), ~holes)
    return cv2.medianBlur(disp.astype(np.float32), 3)


def fill_holes(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W) float32 ``values`` with the pixels outside ``valid`` filled by normalised convolution: a Gaussian
    average of the valid neighbours at the smallest of the widths 2, 4, 8, … pixels that reaches them (smooth, no
    streaks)."""
    out = values.astype(np.float32).copy()
    todo = ~valid
    weight = valid.astype(np.float32)
    sigma = 2.0
    while todo.any():
        num = cv2.GaussianBlur(out * weight, (0, 0), sigma)
        den = cv2.GaussianBlur(weight, (0, 0), sigma)
        reach = todo & (den > 1e-3)
        out[reach] = num[reach] / den[reach]
        todo &= ~reach
        if sigma > max(values.shape):
            out[todo] = float(np.median(values[valid]))
            break
        sigma *= 2
    return out


def run_flow_depth(scene_dir: str | os.PathLike, show_progress: bool = True, source: str = "images") -> int:
    """Write ``disp/`` and ``disp_png/`` for every frame of ``source`` from the flow and ``poses_bounds.npy``."""
    from mononerf.preprocess.flow import classical_flow
    from mononerf.preprocess.midas import disparity_png

    scene_dir = Path(scene_dir)
    files = list_images(scene_dir / source, "frames for depth")
    pb_path = scene_dir / "poses_bounds.npy"
    if not pb_path.is_file():
        raise PreprocessError(f"{pb_path}: missing; the depth from flow needs the 'poses' step first")
    poses_bounds = np.load(pb_path)
    if poses_bounds.shape[0] != len(files):
        raise PreprocessError(f"{pb_path}: {poses_bounds.shape[0]} poses but {len(files)} frames in {source}/")
    frames = [cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1].copy() for f in files]
    w2c, K = _cameras(poses_bounds, *frames[0].shape[:2])
    with staged(scene_dir, "disp", "disp_png") as dirs:
        for i in progress(range(len(files)), show_progress, "depth from flow", total=len(files)):
            depth = float(np.sqrt(np.prod(np.clip(poses_bounds[i, 15:], 1e-9, None))))
            disp = flow_disparity(frames, w2c, K, i, classical_flow, depth)
            np.save(dirs["disp"] / f"{files[i].stem}.npy", disp)
            cv2.imwrite(str(dirs["disp_png"] / f"{files[i].stem}.png"), disparity_png(disp))
    return len(files)
