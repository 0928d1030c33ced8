"""Pixel-aligned feature lookup and flow-based temporal aggregation (spec §2.4, §2.7 steps 5–7).

S scenes, P points per scene, T frames, C channels, (h, w) the feature-map size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mononerf.utils.checks import check_shape


def sample_frame_features(latent: torch.Tensor, frame: torch.Tensor, uv: torch.Tensor, image_size: tuple[int, int],
                          latent_scaling: torch.Tensor) -> torch.Tensor:
    """Bilinear features of frame ``frame[s]`` at pixels ``uv`` (spec §2.4, pixelNeRF's ``index``).

    ``uv_n = uv · latent_scaling / (W, H) − 1``; ``grid_sample(bilinear, padding 'border', align_corners=True)``.
    Each scene's frame is a view of the feature volume (no copy of the frame slice).

    Args:
        latent: (S, C, T, h, w).  frame: (S,) int frame per scene.  uv: (S, P, 2) pixels of the (W, H) image.
        image_size: (W, H) of the training images.  latent_scaling: (2,) ``[w/(w−1)·2, h/(h−1)·2]``.
    Returns:
        (S, P, C).
    """
    check_shape(latent, "S C T h w", "latent")
    check_shape(uv, "S P 2", "uv")
    size = torch.tensor(image_size, dtype=uv.dtype, device=uv.device)
    grid = (uv * (latent_scaling.to(uv) / size) - 1.0)[:, :, None, :]  # (S, P, 1, 2)
    out = []
    for s in range(latent.shape[0]):
        fmap = latent[s, :, int(frame[s])][None]  # (1, C, h, w) view
        out.append(F.grid_sample(fmap, grid[s:s + 1], mode="bilinear", padding_mode="border", align_corners=True))
    return torch.cat(out, 0)[..., 0].transpose(1, 2)  # (S, P, C)


def temporal_features(latent: torch.Tensor, frame: torch.Tensor, num_frames: int, feat_curr: torch.Tensor,
                      uv_b: torch.Tensor, uv_f: torch.Tensor, image_size: tuple[int, int],
                      latent_scaling: torch.Tensor, reshape_quirk: bool = True) -> torch.Tensor:
    """Features gathered along the trajectory at frames t−1 and t+1 (spec §2.7 step 6).

    Where t+1 (t−1) falls outside the video the current features stand in. ``reshape_quirk`` (quirk
    ``latent_temporal_reshape``, spec §8.3) reproduces the original's reshape of (S, C, 2, P) to (S, P, 2, C) without a
    transpose, which scrambles channels and points; False stacks them as intended.

    Args:
        feat_curr: (S, P, C) features at frame t.  uv_b, uv_f: (S, P, 2) pixels in frames t−1, t+1.
    Returns:
        (S, P, 2, C): [backward, forward].
    """
    frame_b = (frame - 1).clamp(0, num_frames - 1)
    frame_f = (frame + 1).clamp(0, num_frames - 1)
    feat_b = sample_frame_features(latent, frame_b, uv_b, image_size, latent_scaling)
    feat_f = sample_frame_features(latent, frame_f, uv_f, image_size, latent_scaling)
    at_end = (frame + 1 >= num_frames)[:, None, None]
    at_start = (frame - 1 < 0)[:, None, None]
    feat_f = torch.where(at_end, feat_curr, feat_f)
    feat_b = torch.where(at_start, feat_curr, feat_b)
    if not reshape_quirk:
        return torch.stack([feat_b, feat_f], dim=-2)
    s, p, c = feat_curr.shape
    stacked = torch.stack([feat_b.transpose(1, 2), feat_f.transpose(1, 2)], dim=-1)  # (S, C, P, 2)
    return stacked.permute(0, 1, 3, 2).reshape(s, p, 2, c)
