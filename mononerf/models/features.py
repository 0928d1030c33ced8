"""Pixel-aligned feature lookup and flow-based temporal aggregation (spec §2.4, §2.7 steps 5–7).

S scenes, P points per scene, T frames, C channels, (h, w) the feature-map size.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from mononerf.utils.checks import check_shape


class FeatureVolume:
    """Encoder features kept at each layer's own resolution, read as if resized to ``grid`` (spec §2.1–2.4).

    The original resizes every used encoder layer to the finest layer's grid (bilinear / trilinear with
    ``align_corners=True``) and concatenates them into one volume, most of which is upsampled copies of coarse
    layers (SlowOnly layers [0, 1, 2] at 480x270: 832 channels on 240x135, where layer 2's 512 channels have
    only 120x68 values). Here the coarse layers stay coarse and one frame of them is resized when a lookup
    needs it: the values read are those of the full volume (same interpolation, frame by frame — the encoders
    never change the number of frames), with about half (SlowOnly) or a fifth (ResNet18) of the memory held.

    Args:
        levels: tensors (S, C_l, T, h_l, w_l) in channel order; those already at ``grid`` are read in place.
        grid: (h, w) of the volume they stand for.
    """

    def __init__(self, levels: Sequence[torch.Tensor], grid: tuple[int, int]):
        if not levels:
            raise ValueError("FeatureVolume needs at least one level")
        for i, lv in enumerate(levels):
            check_shape(lv, "S C T h w", f"levels[{i}]")
            if lv.shape[0] != levels[0].shape[0] or lv.shape[2] != levels[0].shape[2]:
                raise ValueError(f"levels disagree on scenes/frames: {tuple(lv.shape)} vs {tuple(levels[0].shape)}")
        self.grid = (int(grid[0]), int(grid[1]))
        self.levels = [self._layout(lv) for lv in levels]

    def _layout(self, lv: torch.Tensor) -> torch.Tensor:
        """Memory layouts that make a lookup cheap (values unchanged): a level on the grid is channels-last, so a
        frame is a channels-last map that grid_sample reads point by point; a coarse level is frame-major, so a
        frame is a contiguous (C, h, w) map for the resize (a channels-last resize input is ~3x slower on CPU)."""
        if tuple(lv.shape[-2:]) == self.grid:
            return lv.contiguous(memory_format=torch.channels_last_3d)
        return lv.transpose(1, 2).contiguous().transpose(1, 2)

    @property
    def shape(self) -> torch.Size:
        """(S, C, T, h, w) of the full volume."""
        s, _, t = self.levels[0].shape[:3]
        return torch.Size((s, sum(lv.shape[1] for lv in self.levels), t, *self.grid))

    @property
    def device(self) -> torch.device:
        return self.levels[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.levels[0].dtype

    @property
    def requires_grad(self) -> bool:
        return any(lv.requires_grad for lv in self.levels)

    def frame_maps(self, s: int, f: int) -> list[torch.Tensor]:
        """Scene ``s``, frame ``f``: one (1, C_l, h, w) map per level (a view, or the level resized to the grid)."""
        maps = []
        for lv in self.levels:
            m = lv[s, :, f][None]
            if tuple(m.shape[-2:]) != self.grid:
                m = F.interpolate(m, size=self.grid, mode="bilinear", align_corners=True)
                m = m.contiguous(memory_format=torch.channels_last)  # grid_sample gathers ~2.5x faster from it
            maps.append(m)
        return maps

    def materialize(self) -> torch.Tensor:
        """The original's full (S, C, T, h, w) volume (channels-last-3d)."""
        s, _, t = self.levels[0].shape[:3]
        frames = [torch.cat(self.frame_maps(i, f), 1) for i in range(s) for f in range(t)]
        vol = torch.stack(frames, 0).reshape(s, t, *frames[0].shape[1:]).transpose(1, 2)
        return vol.contiguous(memory_format=torch.channels_last_3d)

    def __getitem__(self, index) -> "FeatureVolume":
        """Scenes ``index`` (an index into dim 0, as for the volume tensor), as a new FeatureVolume."""
        levels = [lv[index] for lv in self.levels]
        if levels[0].dim() != 5:
            raise IndexError("a FeatureVolume is indexed along its scenes only (the result keeps 5 dims)")
        return FeatureVolume(levels, self.grid)

    def detach(self) -> "FeatureVolume":
        return FeatureVolume([lv.detach() for lv in self.levels], self.grid)

    def to(self, device) -> "FeatureVolume":
        return FeatureVolume([lv.to(device) for lv in self.levels], self.grid)

    def nbytes(self) -> int:
        return sum(lv.numel() * lv.element_size() for lv in self.levels)


def merge_levels(feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Concatenate consecutive levels of equal spatial size (one lookup for them)."""
    out: list[list[torch.Tensor]] = []
    for f in feats:
        if out and out[-1][0].shape[-3:] == f.shape[-3:]:
            out[-1].append(f)
        else:
            out.append([f])
    return [g[0] if len(g) == 1 else torch.cat(g, 1) for g in out]


def sample_frame_features(latent: torch.Tensor | FeatureVolume, frame: torch.Tensor, uv: torch.Tensor, image_size: tuple[int, int],
                          latent_scaling: torch.Tensor) -> torch.Tensor:
    """Bilinear features of frame ``frame[s]`` at pixels ``uv`` (spec §2.4, pixelNeRF's ``index``).

    ``uv_n = uv · latent_scaling / (W, H) − 1``; ``grid_sample(bilinear, padding 'border', align_corners=True)``.
    Each scene's frame is a view of the feature volume (no copy of the frame slice).

    Args:
        latent: (S, C, T, h, w) tensor or :class:`FeatureVolume`.  frame: (S,) int frame per scene.  uv: (S, P, 2) pixels of the (W, H) image.
        image_size: (W, H) of the training images.  latent_scaling: (2,) ``[w/(w−1)·2, h/(h−1)·2]``.
    Returns:
        (S, P, C).
    """
    if not isinstance(latent, FeatureVolume):
        check_shape(latent, "S C T h w", "latent")
    check_shape(uv, "S P 2", "uv")
    size = torch.tensor(image_size, dtype=uv.dtype, device=uv.device)
    grid = (uv * (latent_scaling.to(uv) / size) - 1.0)[:, :, None, :]  # (S, P, 1, 2)
    S, P = uv.shape[:2]
    # one contiguous (S, P, C) result, each map's (1, C_l, P, 1) lookup written transposed into its channel slice:
    # a single copy (a transposed view would be copied again by every linear layer reading it)
    out = None
    for s in range(S):
        f = int(frame[s])
        maps = latent.frame_maps(s, f) if isinstance(latent, FeatureVolume) else [latent[s, :, f][None]]  # views
        c0 = 0
        for m in maps:
            part = F.grid_sample(m, grid[s:s + 1], mode="bilinear", padding_mode="border", align_corners=True)
            if out is None:
                out = part.new_empty(S, P, latent.shape[1])
            out[s, :, c0:c0 + part.shape[1]] = part[0, :, :, 0].T
            c0 += part.shape[1]
    return out


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
    # the original: stack to (S, C, P, 2), permute to (S, C, 2, P), reshape to (S, P, 2, C). Stacking straight into
    # a contiguous (S, C, 2, P) buffer gives the same memory in one copy; the reshape is then a view
    stacked = torch.stack([feat_b.transpose(1, 2), feat_f.transpose(1, 2)], dim=2)  # (S, C, 2, P)
    return stacked.reshape(s, p, 2, c)
