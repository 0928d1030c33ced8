"""Camera-pose processing of the original's LLFF-style loader (method.md §1.2), as pure numpy functions.

Poses are (T, 3, 5) arrays: a 3x4 camera-to-world matrix in the NeRF/OpenGL convention (columns right, up, back;
the camera looks along -z) followed by an ``hwf`` column (height, width, focal).
"""

from __future__ import annotations

import numpy as np

from mononerf.utils.checks import check_shape


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vector of ``v``."""
    return v / np.linalg.norm(v)


def llff_to_opengl(poses_llff: np.ndarray) -> np.ndarray:
    """Reorder rotation columns from LLFF [down, right, back] to OpenGL [right, up, back] (method.md §1.2 step 1).

    Args:
        poses_llff: (T, 3, 5) poses as stored in ``poses_bounds.npy`` (frame axis first).
    Returns:
        (T, 3, 5) poses with columns [right, up, back, t, hwf].
    """
    check_shape(poses_llff, "T 3 5", "poses")
    return np.concatenate([poses_llff[:, :, 1:2], -poses_llff[:, :, 0:1], poses_llff[:, :, 2:]], axis=2)


def opengl_to_llff(poses_gl: np.ndarray) -> np.ndarray:
    """Inverse of :func:`llff_to_opengl`: [right, up, back] → [down, right, back]."""
    check_shape(poses_gl, "T 3 5", "poses")
    return np.concatenate([-poses_gl[:, :, 1:2], poses_gl[:, :, 0:1], poses_gl[:, :, 2:]], axis=2)


def view_matrix(z: np.ndarray, up: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Camera frame (3, 4) looking along ``-z`` with approximate ``up``, centred at ``pos``."""
    vec2 = normalize(z)
    vec0 = normalize(np.cross(up, vec2))
    vec1 = normalize(np.cross(vec2, vec0))
    return np.stack([vec0, vec1, vec2, pos], axis=1)


def poses_avg(poses: np.ndarray) -> np.ndarray:
    """Average camera (3, 5) of (T, 3, 5) poses (method.md §1.2 step 3).

    Centre = mean position, z = normalised sum of z axes, up = sum of y axes; the hwf column of frame 0 is kept.
    """
    hwf = poses[0, :3, -1:]
    center = poses[:, :3, 3].mean(0)
    z = normalize(poses[:, :3, 2].sum(0))
    up = poses[:, :3, 1].sum(0)
    return np.concatenate([view_matrix(z, up, center), hwf], axis=1)


# The widest angle between a camera's viewing axis and the average camera's in a forward-facing scene: the scenes
# NDC suits (run.world_rays = auto gives the others world rays; docs/datasets.md).
FORWARD_FACING_DEG = 45.0


def view_spread(poses: np.ndarray) -> float:
    """The largest angle, in degrees, between a camera's viewing axis (-z, OpenGL) and the average camera's
    (:func:`poses_avg`), over poses (T, 3, >=4)."""
    poses = np.asarray(poses, np.float64)
    view, mean = -poses[:, :3, 2], -normalize(poses[:, :3, 2].sum(0))
    cos = view @ mean / np.linalg.norm(view, axis=1)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))).max())


def homogeneous(m34: np.ndarray) -> np.ndarray:
    """(..., 4, 4) of (..., 3, 4) rigid transforms (the row [0, 0, 0, 1] added)."""
    bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), m34.shape[:-2] + (1, 4))
    return np.concatenate([m34[..., :3, :4], bottom], axis=-2)


def recenter_poses(poses: np.ndarray) -> np.ndarray:
    """Express every camera relative to the average camera: ``inv(c2w_avg) @ c2w`` (method.md §1.2 step 3).

    Args:
        poses: (T, 3, 5). Returns (T, 3, 5) of the same dtype, hwf column unchanged.
    """
    out = poses + 0
    c2w = homogeneous(poses_avg(poses))
    recentred = np.linalg.inv(c2w) @ homogeneous(poses)
    out[:, :3, :4] = recentred[:, :3, :4]
    return out


def rescale_bounds(poses: np.ndarray, bds: np.ndarray, bd_factor: float | None = 0.9):
    """Scale translations and bounds so the 5th-percentile near bound becomes ``1/bd_factor`` (method.md §1.2 step 2).

    ``sc = 1 / (percentile(bds[:, 0], 5) * bd_factor)``; returns new (poses, bds, sc).
    """
    sc = 1.0 if bd_factor is None else 1.0 / (np.percentile(bds[:, 0], 5) * bd_factor)
    poses = poses.copy()
    poses[:, :3, 3] *= sc
    return poses, bds * sc, sc


def spherify_poses(poses: np.ndarray, bds: np.ndarray):
    """Centre a roughly inward-facing capture on the point closest to all optical axes and scale it to unit radius.

    The original declares a ``spherify`` flag but implements nothing (method.md §1.2 step 4); this is the NeRF LLFF
    loader's behaviour, offered as an option for 360° captures (then NDC must be off). Returns (poses, bds).
    """
    dirs = poses[:, :3, 2:3]
    origins = poses[:, :3, 3:4]
    a = np.eye(3) - dirs * np.transpose(dirs, (0, 2, 1))
    b = -a @ origins
    center = np.squeeze(-np.linalg.inv((np.transpose(a, (0, 2, 1)) @ a).mean(0)) @ b.mean(0))
    up = normalize((poses[:, :3, 3] - center).mean(0))
    x = normalize(np.cross([0.1, 0.2, 0.3], up))
    y = normalize(np.cross(up, x))
    c2w = np.stack([x, y, up, center], axis=1)
    reset = np.linalg.inv(homogeneous(c2w)) @ homogeneous(poses)
    radius = np.sqrt(np.mean(np.sum(np.square(reset[:, :3, 3]), -1)))
    reset[:, :3, 3] /= radius
    out = poses.copy()
    out[:, :3, :4] = reset[:, :3, :4]
    return out, bds / radius


def spiral_render_path(
    c2w: np.ndarray,
    num_views: int = 60,
    max_disp: float = 48.0,
    x_mult: float = 1.0,
    y_mult: float = 0.33,
):
    """The original's novel-view path (method.md §1.2 step 5): small ellipse in the image plane of ``c2w``.

    For view i: ``max_trans = max_disp / focal``, ``x = max_trans·sin(2πi/n)·x_mult``,
    ``y = max_trans·(cos(2πi/n) − 1)·y_mult``, ``z = 0``; pose = ``c2w @ inv([I | (x, y, z)])``.

    Args:
        c2w: (3, 5) reference camera with hwf column.
    Returns:
        (num_views, 3, 5) float32 poses and the list of focals.
    """
    check_shape(c2w, "3 5", "c2w")
    hwf = c2w[:, 4:5]
    focal = float(hwf[2, 0])
    max_trans = max_disp / focal
    ref = homogeneous(c2w[:, :4])
    out = []
    for i in range(num_views):
        angle = 2.0 * np.pi * float(i) / float(num_views)
        shift = np.eye(4)
        shift[:3, 3] = [max_trans * np.sin(angle) * x_mult, max_trans * (np.cos(angle) - 1.0) * y_mult, 0.0]
        pose = ref @ np.linalg.inv(shift)
        out.append(np.concatenate([pose[:3, :], hwf], axis=1))
    return np.asarray(out, dtype=np.float32), [focal] * num_views


def frame_time(frame: int | np.ndarray, num_frames: int):
    """Normalised time of a frame index: ``t = i / T · 2 − 1`` ∈ [−1, 1 − 2/T] (method.md §1.5)."""
    return frame / float(num_frames) * 2.0 - 1.0
