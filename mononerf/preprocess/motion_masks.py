"""Motion masks with the original's algorithm (method.md §6.2 ``generate_motion_mask``; NSFF-style).

(a) Geometric: for each frame i and its neighbours (i-1, i+1; the frame itself at the ends), the flow gives a
correspondence p → p + flow; its distance to the epipolar line of p under the cameras' relative pose is

    d = |p2ᵀ F p1| / ‖(F p1)[:2]‖,   F = K⁻ᵀ [t]ₓ R K⁻¹,   (R, t) = w2c_other · inv(w2c_i)   (COLMAP w2c)

e = max(d_fwd, d_bwd); the mask is ``opening(e > threshold, disk(1))`` (threshold 1 pixel).
(b) Semantic (only when the Mask R-CNN weights are present): movers (people, vehicles, animals, …) detected at
1024x576, "not object" map eroded with disk(1).
(c) Union, resized (nearest) to the size of ``images/``, dilated with disk(2) → ``motion_masks/<stem>.png``
(255 = dynamic).

Cameras come from ``poses_bounds.npy`` (the original reads the same poses from COLMAP's model), so the step also
works on scenes whose poses did not come from COLMAP. K = [[f, 0, W/2], [0, f, H/2]] from hwf, scaled to the
flow's resolution (the original computes flow at the frames' own size, where the scale is 1); a folder with
:data:`INTRINSICS_FILE` (fx, fy, cx, cy at the frames' size: a capture whose camera is not centred, written by
:mod:`mononerf.preprocess.capture`) gives K from it instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from skimage.morphology import dilation, disk, erosion, opening

from mononerf.preprocess.common import PreprocessError, list_images, progress
from mononerf.utils.folders import staged

EPI_THRESHOLD = 1.0
SEMANTIC_SIZE = (1024, 576)  # (W, H) of the original's Mask R-CNN pass
INTRINSICS_FILE = "intrinsics.npy"  # optional (4,) fx, fy, cx, cy of the frames, beside poses_bounds.npy


def llff_to_colmap_w2c(poses_bounds: np.ndarray) -> np.ndarray:
    """(T, 17) rows → (T, 4, 4) COLMAP world-to-camera matrices (camera axes [right, down, forward])."""
    llff = poses_bounds[:, :15].reshape(-1, 3, 5)
    c2w = np.zeros((llff.shape[0], 4, 4))
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2] = llff[:, :, 1], llff[:, :, 0], -llff[:, :, 2]
    c2w[:, :3, 3], c2w[:, 3, 3] = llff[:, :, 3], 1.0
    return np.linalg.inv(c2w)


def skew(v: np.ndarray) -> np.ndarray:
    """(3, 3) cross-product matrix: ``skew(a) @ b == cross(a, b)``."""
    return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])


def epipolar_distance(rel_w2c: np.ndarray, K: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """(H, W) distance (pixels) of ``p + flow`` to the epipolar line of each pixel p (integer coordinates).

    Args:
        rel_w2c: (4, 4) transform from this camera's frame to the other's.
        K: (3, 3) intrinsics at the flow's resolution.
        flow: (H, W, 2) [dx, dy] to the other frame.
    """
    height, width = flow.shape[:2]
    x, y = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64), indexing="xy")
    p1 = np.stack([x.ravel(), y.ravel(), np.ones(x.size)], 0)
    p2 = np.stack([(x + flow[..., 0]).ravel(), (y + flow[..., 1]).ravel(), np.ones(x.size)], 0)
    k_inv = np.linalg.inv(K)
    fund = k_inv.T @ skew(rel_w2c[:3, 3]) @ rel_w2c[:3, :3] @ k_inv
    lines = fund @ p1
    dist = np.abs(np.sum(p2 * lines, 0)) / (np.sqrt(lines[0] ** 2 + lines[1] ** 2) + 1e-8)
    return dist.reshape(height, width)


def geometric_motion_mask(w2c: np.ndarray, K: np.ndarray, i: int, fwd: np.ndarray | None, bwd: np.ndarray | None,
                          threshold: float = EPI_THRESHOLD) -> np.ndarray:
    """(H, W) bool mask of frame ``i`` from its flows (None at the clip's ends = zero flow), method.md §6.2 (a)."""
    ref = fwd if fwd is not None else bwd
    zeros = np.zeros_like(ref)
    num = w2c.shape[0]
    post, prev = min(num - 1, i + 1), max(0, i - 1)
    e_fwd = epipolar_distance(w2c[post] @ np.linalg.inv(w2c[i]), K, fwd if fwd is not None else zeros)
    e_bwd = epipolar_distance(w2c[prev] @ np.linalg.inv(w2c[i]), K, bwd if bwd is not None else zeros)
    return opening(np.maximum(e_fwd, e_bwd) > threshold, disk(1))


def intrinsics(hwf: np.ndarray, height: int, width: int, pinhole=None) -> np.ndarray:
    """(3, 3) K of the poses' (H, W, f), or of ``pinhole`` (fx, fy, cx, cy) at that size, scaled to an image of
    (height, width)."""
    h0, w0, f = (float(v) for v in hwf)
    fx, fy, cx, cy = (f, f, w0 / 2, h0 / 2) if pinhole is None else (float(v) for v in pinhole)
    sx, sy = width / w0, height / h0
    return np.array([[fx * sx, 0, cx * sx], [0, fy * sy, cy * sy], [0, 0, 1.0]])


def _load_flow(path: Path) -> np.ndarray:
    if not path.is_file():
        raise PreprocessError(f"{path}: missing flow file; run the 'flow' step first")
    with np.load(path) as data:
        return data["flow"].astype(np.float64)


def run_motion_masks(scene_dir: str | os.PathLike, threshold: float = EPI_THRESHOLD,
                     weights_dir: str | os.PathLike | None = None, device: str = "cpu",
                     show_progress: bool = True, log=print) -> int:
    """Write ``motion_masks/`` for every frame of ``images/``; returns the number of frames."""
    from mononerf.preprocess import semantic

    scene_dir = Path(scene_dir)
    files = list_images(scene_dir / "images", "frames")
    pb_path = scene_dir / "poses_bounds.npy"
    if not pb_path.is_file():
        raise PreprocessError(f"{pb_path}: missing; run the 'poses' step first")
    poses_bounds = np.load(pb_path)
    num = len(files)
    if poses_bounds.shape[0] != num:
        raise PreprocessError(f"{pb_path}: {poses_bounds.shape[0]} poses but {num} frames in images/")
    mask_path = semantic.find_maskrcnn_weights(weights_dir)
    model = semantic.load_maskrcnn(mask_path).to(device) if mask_path else None
    if model is None:
        log(semantic.missing_notice(weights_dir).format(what="motion masks use the epipolar test only"))
    w2c = llff_to_colmap_w2c(poses_bounds)
    pinhole = np.load(scene_dir / INTRINSICS_FILE) if (scene_dir / INTRINSICS_FILE).is_file() else None
    flow_dir = scene_dir / "flow"
    with staged(scene_dir, "motion_masks") as dirs:
        for i in progress(range(num), show_progress, "motion masks", total=num):
            fwd = _load_flow(flow_dir / f"{i:03d}_fwd.npz") if i < num - 1 else None
            bwd = _load_flow(flow_dir / f"{i:03d}_bwd.npz") if i > 0 else None
            ref = fwd if fwd is not None else bwd
            K = intrinsics(poses_bounds[i, :15].reshape(3, 5)[:, 4], *ref.shape[:2], pinhole=pinhole)
            mask = geometric_motion_mask(w2c, K, i, fwd, bwd, threshold)
            rgb = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)[..., ::-1]
            height, width = rgb.shape[:2]
            mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
            if model is not None:
                small = cv2.resize(rgb, SEMANTIC_SIZE, interpolation=cv2.INTER_AREA)
                obj = semantic.object_mask(model, small, labels=semantic.MOVER_LABELS, device=device)
                obj = ~erosion(~obj, disk(1))
                mask |= cv2.resize(obj.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
            mask = dilation(mask, disk(2))
            cv2.imwrite(str(dirs["motion_masks"] / f"{files[i].stem}.png"), mask.astype(np.uint8) * 255)
    return num
