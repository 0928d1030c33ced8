"""Pixel-aligned feature lookup and flow-based temporal aggregation (method.md §2.4, §2.7 steps 5–7).

S scenes, P points per scene, T frames, C channels, (h, w) the feature-map size.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

from mononerf.models.lookup import corner_rows, sample_rows, use_rows
from mononerf.utils.checks import check_shape
from mononerf.utils.tensors import constant_like

if TYPE_CHECKING:  # inference-only, and it imports this module
    from mononerf.models.projected import ProjectedVolume

# default memory for a FeatureVolume's resized frame maps: at the demo size (80x45 grid, SlowOnly layer 2's 512
# channels) every frame of two 12-frame scenes (177 MB); at 240x135, ~15 frames
CACHE_BYTES = 1 << 30
LOOKUP_CHANNELS = 128  # channels per grid_sample call of a lookup (sample_frame_features)


class FeatureVolume:
    """Encoder features kept at each layer's own resolution, read as if resized to ``grid`` (method.md §2.1–2.4).

    The original resizes every used encoder layer to the finest layer's grid (bilinear / trilinear with
    ``align_corners=True``) and concatenates them into one volume, most of which is upsampled copies of coarse
    layers (SlowOnly layers [0, 1, 2] at 480x270: 832 channels on 240x135, where layer 2's 512 channels have
    only 120x68 values). Here the coarse layers stay coarse and one frame of them is resized when a lookup
    needs it: the values read are those of the full volume (same interpolation, frame by frame — the encoders
    never change the number of frames), with about half (SlowOnly) or a fifth (ResNet18) of the memory held.

    Args:
        levels: tensors (S, C_l, T, h_l, w_l) in channel order; those already at ``grid`` are read in place.
        grid: (h, w) of the volume they stand for.
        cache_bytes: memory for the resized maps of recently read frames (0: resize on every read). A frame is
            resized once and read by every lookup after it (every chunk of a render, every frame of a video at one
            time, every training step) while it stays among the newest that fit; only for levels without autograd.
            A read outside inference mode (a training step; renders run in inference mode) uses the cache only when
            every frame's maps fit in it: a training step reads frames at random, so a partial cache would hold
            memory for few hits; such a read empties the cache a render filled (it was ~1 GB of a released-size
            step's peak: benchmarks/README.md).
    """

    def __init__(self, levels: Sequence[torch.Tensor], grid: tuple[int, int], cache_bytes: int = CACHE_BYTES):
        if not levels:
            raise ValueError("FeatureVolume needs at least one level")
        for i, lv in enumerate(levels):
            check_shape(lv, "S C T h w", f"levels[{i}]")
            if lv.shape[0] != levels[0].shape[0] or lv.shape[2] != levels[0].shape[2]:
                raise ValueError(f"levels disagree on scenes/frames: {tuple(lv.shape)} vs {tuple(levels[0].shape)}")
        self.grid = (int(grid[0]), int(grid[1]))
        self.levels = [self._layout(lv) for lv in levels]
        # resized coarse maps of recently read frames, newest last (only when nothing needs a gradient: the values
        # then never change, so every later read of the frame — the next chunk of rays, the next step of training,
        # the next frame of a video at the same time — reuses them); at most cache_bytes in all
        self.cache_bytes = int(cache_bytes)
        self._resized: OrderedDict[tuple[int, int], list[torch.Tensor]] = OrderedDict()
        self.resizes = 0  # coarse maps resized so far (a count of work, for tests and benchmarks)
        s, _, t = self.levels[0].shape[:3]
        self.all_resized_bytes = s * t * self.grid[0] * self.grid[1] * sum(
            lv.shape[1] * lv.element_size() for lv in self.levels if tuple(lv.shape[-2:]) != self.grid)

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
        key = (int(s), int(f))
        if not torch.is_inference_mode_enabled() and self.all_resized_bytes > self.cache_bytes:
            self._resized.clear()  # a training step: see cache_bytes
            return self._resize(s, f)
        hit = self._resized.get(key)
        if hit is not None:
            self._resized.move_to_end(key)
            return list(hit)
        maps = self._resize(s, f)
        self._remember(key, maps)
        return maps

    def _resize(self, s: int, f: int) -> list[torch.Tensor]:
        maps = []
        # a map made inside a render's inference mode would be an inference tensor, which a later training step
        # could not save for backward: kept maps are made as ordinary tensors (no autograd: nothing requires grad)
        keep = not any(lv.requires_grad for lv in self.levels)
        for lv in self.levels:
            m = lv[s, :, f][None]
            if tuple(m.shape[-2:]) != self.grid:
                with torch.inference_mode(False) if keep else contextlib.nullcontext():
                    m = F.interpolate(m, size=self.grid, mode="bilinear", align_corners=True)
                    m = m.contiguous(memory_format=torch.channels_last)  # grid_sample gathers ~2.5x faster from it
                self.resizes += 1
            maps.append(m)
        return maps

    def _remember(self, key: tuple[int, int], maps: list[torch.Tensor]) -> None:
        resized = [m for m, lv in zip(maps, self.levels) if tuple(lv.shape[-2:]) != self.grid]
        size = sum(m.numel() * m.element_size() for m in resized)
        if not resized or size > self.cache_bytes or any(m.requires_grad for m in maps):
            return
        while self._resized and size + self.cached_bytes() > self.cache_bytes:
            self._resized.popitem(last=False)
        self._resized[key] = maps

    def cached_bytes(self) -> int:
        """Memory held by the resized-map cache."""
        return sum(m.numel() * m.element_size() for maps in self._resized.values() for m, lv in zip(maps, self.levels)
                   if tuple(lv.shape[-2:]) != self.grid)

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
        return FeatureVolume(levels, self.grid, self.cache_bytes)

    def detach(self) -> "FeatureVolume":
        return FeatureVolume([lv.detach() for lv in self.levels], self.grid, self.cache_bytes)

    def to(self, device) -> "FeatureVolume":
        return FeatureVolume([lv.to(device) for lv in self.levels], self.grid, self.cache_bytes)

    def nbytes(self) -> int:
        return sum(lv.numel() * lv.element_size() for lv in self.levels)


def _frame_maps(latent, s: int, f: int) -> list[torch.Tensor]:
    """Scene ``s``, frame ``f`` of a volume as (1, C_l, h, w) maps whose channels concatenate to the volume's.

    ``latent``: a tensor, or an object with ``frame_maps`` (:class:`FeatureVolume`,
    :class:`~mononerf.models.projected.ProjectedVolume`).
    """
    if isinstance(latent, torch.Tensor):
        return [latent[s, :, f][None]]  # a view
    return latent.frame_maps(s, f)


def channel_moments(volume: "torch.Tensor | FeatureVolume") -> tuple[torch.Tensor, torch.Tensor]:
    """Per scene and channel, the mean and (population) standard deviation of a feature volume as its lookups read it
    (a :class:`FeatureVolume`'s coarse levels at the grid size, accumulated frame by frame in float64).

    Args:
        volume: (S, C, T, h, w) tensor or :class:`FeatureVolume`.
    Returns:
        mean, std: (S, C) float64.
    """
    if isinstance(volume, torch.Tensor):
        check_shape(volume, "S C T h w", "volume")
        x = volume.double()
        return x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4), correction=0)
    S, C, T, h, w = volume.shape
    total = torch.zeros(S, C, dtype=torch.float64, device=volume.device)
    square = torch.zeros_like(total)
    for s in range(S):
        for f in range(T):
            m = torch.cat(volume.frame_maps(s, f), 1)[0].double()  # (C, h, w)
            total[s] += m.sum(dim=(1, 2))
            square[s] += m.square().sum(dim=(1, 2))
    n = T * h * w
    mean = total / n
    return mean, (square / n - mean.square()).clamp_min(0.0).sqrt()


def standardize_volume(volume: "torch.Tensor | FeatureVolume", eps: float = 1e-6) -> "torch.Tensor | FeatureVolume":
    """Each channel of each scene shifted and scaled to mean 0 and standard deviation 1 over the scene's frames and
    pixels (:func:`channel_moments`): ``(x - mean) / max(std, eps)``. Not in the original (lever
    ``model.encoder.standardize_features``, docs/training.md).

    A :class:`FeatureVolume`'s levels are transformed at their own size: a per-channel affine map commutes with the
    bilinear resize (its weights sum to one), so the values read equal those of the standardised full volume.
    """
    mean, std = channel_moments(volume)
    scale = 1.0 / std.clamp_min(eps)

    def apply(x: torch.Tensor, lo: int) -> torch.Tensor:
        c = x.shape[1]
        m = mean[:, lo:lo + c].to(x.dtype)[:, :, None, None, None]
        k = scale[:, lo:lo + c].to(x.dtype)[:, :, None, None, None]
        return (x - m) * k

    if isinstance(volume, torch.Tensor):
        return apply(volume, 0).contiguous(memory_format=torch.channels_last_3d)
    levels, lo = [], 0
    for lv in volume.levels:
        levels.append(apply(lv, lo))
        lo += lv.shape[1]
    return FeatureVolume(levels, volume.grid, volume.cache_bytes)


def merge_levels(feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Concatenate consecutive levels of equal spatial size (one lookup for them)."""
    out: list[list[torch.Tensor]] = []
    for f in feats:
        if out and out[-1][0].shape[-3:] == f.shape[-3:]:
            out[-1].append(f)
        else:
            out.append([f])
    return [g[0] if len(g) == 1 else torch.cat(g, 1) for g in out]


def sample_frame_features(latent: "torch.Tensor | FeatureVolume | ProjectedVolume", frame: torch.Tensor,
                          uv: torch.Tensor, image_size: tuple[int, int], latent_scaling: torch.Tensor,
                          out: torch.Tensor | None = None, scenes: Sequence[int] | None = None) -> torch.Tensor:
    """Bilinear features of frame ``frame[s]`` at pixels ``uv`` (method.md §2.4, pixelNeRF's ``index``).

    ``uv_n = uv · latent_scaling / (W, H) − 1``; ``grid_sample(bilinear, padding 'border', align_corners=True)``.
    Each scene's frame is a view of the feature volume (no copy of the frame slice). A channels-last map read without
    autograd (renders, frozen encoders) is read from its pixel rows instead: grid_sample's bits, several times faster
    (models/lookup.py).

    Args:
        latent: (S, C, T, h, w) tensor, :class:`FeatureVolume` or
            :class:`~mononerf.models.projected.ProjectedVolume`.
        frame: (S,) int frame per scene.  uv: (S, P, 2) pixels of the (W, H) image.
        image_size: (W, H) of the training images.  latent_scaling: (2,) ``[w/(w−1)·2, h/(h−1)·2]``.
        out: optional (S, P, C) tensor, any strides (e.g. a view of a bigger buffer), written and returned.
        scenes: the scenes to look up (default all); with ``out``, the others' rows are left as they are.
    Returns:
        (S, P, C).
    """
    if isinstance(latent, torch.Tensor):
        check_shape(latent, "S C T h w", "latent")
    check_shape(uv, "S P 2", "uv")
    size = constant_like(tuple(image_size), uv)
    grid = (uv * (latent_scaling.to(uv) / size) - 1.0)[:, :, None, :]  # (S, P, 1, 2)
    S, P = uv.shape[:2]
    if out is not None and tuple(out.shape) != (S, P, latent.shape[1]):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {(S, P, latent.shape[1])}")
    # one contiguous (S, P, C) result, each map's (1, C_l, P, 1) lookup written transposed into its channel slice:
    # a single copy (a transposed view would be copied again by every linear layer reading it)
    # maps are read LOOKUP_CHANNELS channels at a time: grid_sample works per channel (the same values), and a
    # channels-last map's gathers stay in the caches (a 512-channel 80x45 map at 32,768 points: 63 -> 34 ms)
    for s in range(S) if scenes is None else scenes:
        f = int(frame[s])
        c0 = 0
        corners = {}  # (h, w) -> the points' corner rows and weights (models/lookup.py)
        for m in _frame_maps(latent, s, f):
            if out is None:
                out = m.new_empty(S, P, latent.shape[1])
            if use_rows(m, grid):  # grid_sample's values from the map's rows
                hw = tuple(m.shape[-2:])
                if hw not in corners:
                    corners[hw] = corner_rows(grid[s, :, 0], *hw)
                sample_rows(m, *corners[hw], out[s, :, c0:c0 + m.shape[1]])
            else:
                for a in range(0, m.shape[1], LOOKUP_CHANNELS):
                    part = F.grid_sample(m[:, a:a + LOOKUP_CHANNELS], grid[s:s + 1], mode="bilinear",
                                         padding_mode="border", align_corners=True)
                    out[s, :, c0 + a:c0 + a + part.shape[1]] = part[0, :, :, 0].T
            c0 += m.shape[1]
    if out is None:  # no scene looked up
        out = uv.new_empty(S, P, latent.shape[1])
    return out


def temporal_features(latent: torch.Tensor, frame: torch.Tensor, num_frames: int, feat_curr: torch.Tensor | None,
                      uv_b: torch.Tensor, uv_f: torch.Tensor, image_size: tuple[int, int],
                      latent_scaling: torch.Tensor, reshape_quirk: bool = True,
                      uv: torch.Tensor | None = None, buf: torch.Tensor | None = None) -> torch.Tensor:
    """Features gathered along the trajectory at frames t−1 and t+1 (method.md §2.7 step 6).

    Where t+1 (t−1) falls outside the video the current features stand in: ``feat_curr``, or, when it is None, the
    lookups of frame t at ``uv`` written straight into the result (the same values: renders, which have no
    point-major ``feat_curr``). ``reshape_quirk`` (quirk ``latent_temporal_reshape``, method.md §8.3) repeats the
    original's reshape of (S, C, 2, P) to (S, P, 2, C) without a transpose, which scrambles channels and points;
    False stacks them as intended.

    Args:
        feat_curr: (S, P, C) features at frame t, or None.
        uv_b, uv_f: (S, P, 2) pixels in frames t−1, t+1.
        uv: (S, P, 2) pixels in frame t (needed when ``feat_curr`` is None and a scene's frame is the first or the last).
        buf: optional contiguous (S, C, 2, P) tensor the lookups are written into (``reshape_quirk`` only; a
            render's workspace, models/projected.py).
    Returns:
        (S, P, 2, C): [backward, forward].
    """
    S, P = uv_b.shape[:2]
    C = latent.shape[1]
    if reshape_quirk:
        # the original stacks to (S, C, P, 2), permutes to (S, C, 2, P) and reshapes that memory to (S, P, 2, C).
        # The lookups are written straight into a contiguous (S, C, 2, P) buffer, each map's (C_l, P) result row by
        # row (no transposing copy, no stack); the reshape is then a view
        if buf is None:
            buf = torch.empty(S, C, 2, P, dtype=latent.dtype, device=uv_b.device)
        elif tuple(buf.shape) != (S, C, 2, P) or not buf.is_contiguous():
            raise ValueError(f"buf must be a contiguous {(S, C, 2, P)} tensor, got {tuple(buf.shape)}")
        out_b, out_f = buf[:, :, 0].transpose(1, 2), buf[:, :, 1].transpose(1, 2)  # (S, P, C) views
    elif buf is not None:
        raise ValueError("buf is for the reshape quirk's (S, C, 2, P) layout")
    else:
        buf = torch.empty(S, P, 2, C, dtype=latent.dtype, device=uv_b.device)
        out_b, out_f = buf[:, :, 0], buf[:, :, 1]
    for out, step, uv_n in ((out_b, -1, uv_b), (out_f, 1, uv_f)):
        # whole scenes: one frame per scene. A scene whose neighbour lies outside the video reads frame t instead
        inside = [s for s in range(S) if 0 <= int(frame[s]) + step < num_frames]
        ends = [s for s in range(S) if s not in inside]
        sample_frame_features(latent, frame + step, uv_n, image_size, latent_scaling, out=out, scenes=inside)
        if not ends:
            continue
        if feat_curr is not None:
            for s in ends:
                out[s] = feat_curr[s]
        elif uv is not None:
            sample_frame_features(latent, frame, uv, image_size, latent_scaling, out=out, scenes=ends)
        else:
            raise ValueError("temporal_features needs feat_curr or uv when a scene's frame is the first or the last")
    return buf.reshape(S, P, 2, C) if reshape_quirk else buf
