"""Playback times and camera paths of edited videos (frame indices are continuous: the model takes any time).

Dimension vocabulary: ``T`` frames of the video, ``V`` spiral views.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mononerf.errors import MonoNeRFError
from mononerf.utils.checks import check_shape

CAMERAS = ("track", "fixed", "spiral")


def playback_ticks(num_frames: int, speed: float = 1.0) -> list[float]:
    """Frame indices shown by a video played at ``speed``: 0, speed, 2·speed, … up to the last frame T-1.

    ``speed=0.25`` is 4× slow motion (three in-between times per frame interval), ``speed=2`` skips every other
    frame. Example: ``playback_ticks(3, 0.5) == [0.0, 0.5, 1.0, 1.5, 2.0]``.
    """
    if not speed > 0 or not math.isfinite(speed):
        raise MonoNeRFError(f"--speed must be a positive number, got {speed}")
    last = num_frames - 1
    count = int(math.floor(last / speed + 1e-9)) + 1
    if count > 100_000:
        raise MonoNeRFError(f"--speed {speed} gives {count} frames; use a larger speed")
    return [j * speed for j in range(count)]


def interpolate_pose(poses: Tensor, tick: float) -> Tensor:
    """Camera at a continuous frame index between the training cameras.

    Linear blend of the two neighbouring (3, 4) poses, the rotation projected back onto SO(3) (polar decomposition
    :math:`R = U V^\\top` of the blended 3×3 part's SVD).

    Args:
        poses: (T, 3, 4) or (T, 3, 5) camera-to-world poses (hwf column dropped).
        tick: frame index in [0, T-1] (clamped).

    Returns:
        (3, 4) pose; exactly ``poses[k]`` at an integer ``k``.
    """
    check_shape(poses, "T 3 C", "poses")
    poses = poses[..., :4]
    last = poses.shape[0] - 1
    tick = min(max(float(tick), 0.0), float(last))
    lo = int(math.floor(tick))
    w = tick - lo
    if w < 1e-9:
        return poses[lo].clone()
    hi = min(lo + 1, last)
    blend = (1.0 - w) * poses[lo] + w * poses[hi]
    u, _, vh = torch.linalg.svd(blend[:, :3])
    rot = u @ vh
    if torch.det(rot) < 0:  # keep a proper rotation
        u = u.clone()
        u[:, -1] = -u[:, -1]
        rot = u @ vh
    return torch.cat([rot, blend[:, 3:]], -1)


def camera_path(poses: Tensor, render_poses: Tensor, ticks: list[float], camera: str = "track",
                view: int = 0) -> list[Tensor]:
    """One (3, 4) camera per output frame of one scene.

    ``track``: the video's own camera at each (continuous) frame index, interpolated between frames;
    ``fixed``: training camera ``view`` throughout; ``spiral``: the novel-view spiral (method.md §1.2), a view per frame,
    cycling.

    Args:
        poses: (T, 3, 4|5) training cameras of the scene; render_poses: (V, 3, 4|5) its spiral.
        ticks: the frame index of each output frame (see :func:`playback_ticks`).
    """
    if camera == "track":
        return [interpolate_pose(poses, k) for k in ticks]
    if camera == "fixed":
        if not 0 <= view < poses.shape[0]:
            raise MonoNeRFError(f"--view {view} is not a training camera (0..{poses.shape[0] - 1})")
        return [poses[view, :, :4]] * len(ticks)
    if camera == "spiral":
        return [render_poses[j % render_poses.shape[0], :, :4] for j in range(len(ticks))]
    raise MonoNeRFError(f"unknown camera {camera!r}; expected one of {', '.join(CAMERAS)}")
