"""Several scenes trained together, and the original's per-step ray sampling (method.md §1.4–1.6, §4.2, §5.3).

All scenes of a run form ONE batch every step (the original collates them into a single DataLoader batch):
each step picks one frame per scene and samples rays from it. Ray sampling follows the original's
numpy call order so that a seeded :class:`numpy.random.RandomState` draws the same frames and pixels.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mononerf.data.formats import AUTO_FORMAT, SCENE_FORMATS, read_scenes  # noqa: F401 (the registry, here too)
from mononerf.data.scene import Scene, load_scene  # noqa: F401
from mononerf.errors import MonoNeRFError, SceneFormatError
from mononerf.geometry.poses import frame_time
from mononerf.geometry.cameras import Pinhole


def resolve_scene_dirs(file_lists: Sequence[str] | None, datadir: str | None = None, data_root: str = "data") -> list[Path]:
    """Scene folders named by ``info.dataset_file_lists`` (method.md §1.4).

    ``["ALL"]`` → every sub-folder of ``data_root``; None → every sub-folder of ``datadir``; otherwise the list
    itself, in its own order (the original's came from a seeded shuffle; ours is the listed one, method.md §8.23).
    """
    if file_lists is None:
        if datadir is None:
            raise SceneFormatError("no scenes given: set info.dataset_file_lists or --datadir")
        dirs = sorted(p for p in glob.glob(os.path.join(datadir, "*")) if os.path.isdir(p))
    elif len(file_lists) == 1 and file_lists[0] == "ALL":
        dirs = sorted(p for p in glob.glob(os.path.join(data_root, "*")) if os.path.isdir(p))
    else:
        dirs = list(file_lists)
    if not dirs:
        raise SceneFormatError(f"no scene folders found (file_lists={file_lists!r}, datadir={datadir!r})")
    return [Path(d) for d in dirs]


def scene_index(names: Sequence[str], text: str) -> int:
    """A scene of a run by folder name or batch index; one line naming the scenes when it is neither."""
    if text in names:
        return list(names).index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise MonoNeRFError(f"scene {text!r} is not in this run; its scenes are "
                        + ", ".join(f"{b}: {n}" for b, n in enumerate(names)))


def split_frames(num_frames: int, training_frames: int | None = None,
                 held_out_every: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out frame indices (method.md §1.6).

    Standard / multi-scene mode (``training_frames`` None): every frame trains. Unseen-frames mode: the dynamic
    stage trains on frames ``[0, training_frames)`` and frames from ``training_frames`` on are held out.
    ``held_out_every`` N > 1 (``model.held_out_every``, not the original's): frames k with k % N == N - 1 are held out.
    """
    frames = np.arange(num_frames)
    if held_out_every > 1:
        if training_frames is not None:
            raise ValueError("model.held_out_every and the unseen-frames mode (model.unseen_frame_rendering) each "
                             "choose the held-out frames; use one")
        held = frames % held_out_every == held_out_every - 1
        return frames[~held], frames[held]
    if training_frames is None:
        return frames, frames[:0]
    if not 1 <= training_frames <= num_frames:
        raise ValueError(f"training_frames must be in [1, {num_frames}], got {training_frames}")
    return frames[:training_frames], frames[training_frames:]


@dataclass
class RayBatch:
    """Rays of one step; S scenes × R rays, all rays of a scene from one frame.

    Attributes:
        rays_o, rays_d: (S, R, 3) world-space origins and directions (method.md §1.3 get_rays).
        target: (S, R, 3) RGB.  static_mask: (S, R, 1) 1 = static pixel.  invdepth: (S, R) disparity.
        grid: (S, R, 8) the original's layout ``[x, y, fwd_u, fwd_v, fwd_mask, bwd_u, bwd_v, bwd_mask]``
            (method.md §1.1 grids; read it by name: :attr:`pixel_xy`, :meth:`flow`).
        frame: (S,) int64.  time: (S,) float.
        num_static: rays [0, num_static) of every scene were drawn from static pixels (method.md §4.3: "first R/2";
            all R in the static stage).
    """

    rays_o: torch.Tensor
    rays_d: torch.Tensor
    target: torch.Tensor
    static_mask: torch.Tensor
    invdepth: torch.Tensor
    grid: torch.Tensor
    frame: torch.Tensor
    time: torch.Tensor
    num_static: int

    @property
    def pixel_xy(self) -> torch.Tensor:
        """(S, R, 2) each ray's pixel coordinates (x to the right, y downwards)."""
        return self.grid[..., 0:2]

    def flow(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ground-truth optical flow of each ray to frame t + ``step`` (1: forward, -1: backward), (S, R, 2), and its
        forward-backward consistency mask (S, R, 1)."""
        if step not in (1, -1):
            raise ValueError(f"flow step must be 1 or -1, got {step}")
        c = 2 if step == 1 else 5
        return self.grid[..., c:c + 2], self.grid[..., c + 2:c + 3]


class MultiSceneDataset:
    """Scenes loaded once, held as tensors on ``device`` (method.md §1.4).

    Tensors (S scenes, T frames): ``images`` (S,T,H,W,3), ``disp`` (S,T,H,W), ``static_masks`` (S,T,H,W),
    ``grids`` (S,T,H,W,8), ``poses`` (S,T,3,5), ``bds`` (S,T,2), ``render_poses`` (S,V,3,5).
    All scenes must share T, H and W (they are encoded as one batch); scenes that differ are
    :class:`SceneGroups`, one of these per size and length (:func:`group_scenes`).
    """

    def __init__(self, scenes: Sequence[Scene], device: torch.device | str = "cpu", pixel_offset: float = 0.0):
        if not scenes:
            raise SceneFormatError("no scenes to train on")
        first = scenes[0]
        for s in scenes[1:]:
            if (s.num_frames, s.height, s.width) != (first.num_frames, first.height, first.width):
                raise SceneFormatError(
                    f"{s.path}: {s.num_frames} frames of {s.width}x{s.height}, but {first.path} has "
                    f"{first.num_frames} frames of {first.width}x{first.height}; scenes trained together must match")
        self.scenes = list(scenes)
        # 0: integer pixel coordinates, the original's convention (no_half_pixel_offset, method.md §8.15); 0.5: centres
        self.pixel_offset = float(pixel_offset)
        self.names = [s.name for s in scenes]
        self.device = torch.device(device)

        def stack(get):
            return torch.from_numpy(np.stack([get(s) for s in scenes], 0)).to(self.device)

        self.images = stack(lambda s: s.images)
        self.disp = stack(lambda s: s.disp)
        self.static_masks = stack(lambda s: s.static_masks)
        self.grids = stack(lambda s: s.grids())
        if self.pixel_offset:
            self.grids[..., :2] += self.pixel_offset
        self.poses = stack(lambda s: s.poses)
        self.bds = stack(lambda s: s.bds)
        self.render_poses = stack(lambda s: s.render_poses)
        # (S, 4) fx, fy, cx, cy of each scene's training frames (LLFF: f, f, W/2, H/2)
        self.intrinsics = torch.tensor([s.frame_intrinsics for s in scenes], dtype=torch.float32, device=self.device)
        # Pixel coordinates of each frame's static / dynamic pixels, row-major like torch.where (method.md §5.3).
        masks = [s.static_masks for s in scenes]
        self._coords_s = [[np.stack(np.nonzero(m[t] >= 0.5), -1) for t in range(first.num_frames)] for m in masks]
        self._coords_d = [[np.stack(np.nonzero(m[t] < 0.5), -1) for t in range(first.num_frames)] for m in masks]

    @classmethod
    def from_dirs(cls, scene_dirs: Sequence[str | Path], device: torch.device | str = "cpu",
                  pixel_offset: float = 0.0, scene_format: str = "llff", **load_kwargs):
        """Load each folder with the ``scene_format`` loader of ``SCENE_FORMATS`` (:func:`~.formats.read_scenes`)."""
        return cls(read_scenes(scene_dirs, scene_format, **load_kwargs), device=device, pixel_offset=pixel_offset)

    def scene_index(self, text: str) -> int:
        """A scene of this dataset by folder name or batch index (:func:`scene_index`)."""
        return scene_index(self.names, text)

    def subset(self, indices: Sequence[int]) -> "MultiSceneDataset":
        """Some scenes of this dataset, in the given order (the tensors indexed, nothing reloaded)."""
        idx = [int(i) for i in indices]
        if not idx or any(not 0 <= i < self.num_scenes for i in idx):
            raise SceneFormatError(f"scenes {idx} are not all in 0..{self.num_scenes - 1}")
        out = object.__new__(MultiSceneDataset)
        out.__dict__.update(self.__dict__)
        sel = torch.tensor(idx, device=self.device)
        out.scenes, out.names = [self.scenes[i] for i in idx], [self.names[i] for i in idx]
        for key in ("images", "disp", "static_masks", "grids", "poses", "bds", "render_poses", "intrinsics"):
            setattr(out, key, getattr(self, key)[sel])
        out._coords_s, out._coords_d = [self._coords_s[i] for i in idx], [self._coords_d[i] for i in idx]
        return out

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def num_scenes(self) -> int:
        return len(self.scenes)

    @property
    def num_frames(self) -> int:
        return self.scenes[0].num_frames

    @property
    def height(self) -> int:
        return self.scenes[0].height

    @property
    def width(self) -> int:
        return self.scenes[0].width

    # ----------------------------------------------------------------------------------------------- sampling
    def sample_rays(self, rng: np.random.RandomState, n_rand: int, frames: Sequence[int] | np.ndarray,
                    stage: str = "dynamic") -> RayBatch:
        """Draw one step's rays, in the original's RNG call order.

        For each scene in order: ``frame = rng.choice(frames)``; then

        * ``stage="static"`` (method.md §4.2): ``n_rand`` static pixels without replacement;
        * ``stage="dynamic"`` (method.md §5.3): ``min(#dynamic, n_rand//2)`` dynamic pixels, then ``n_rand//2`` static
          pixels (both without replacement), rays ordered static first. Where a frame has fewer than ``n_rand//2``
          dynamic pixels, the static part grows so every scene still has ``n_rand`` rays (the original crashes
          when scenes disagree, method.md §8.22).

        Args:
            rng: the sampler's random state (saved in checkpoints for exact resume).
            n_rand: rays per scene (the original's ``info.N_rand // num_scenes``).
            frames: frame indices this stage may draw (method.md §1.6).
        """
        if stage not in ("static", "dynamic"):
            raise ValueError(f"stage must be 'static' or 'dynamic', got {stage!r}")
        frames = np.asarray(frames)
        picked, coords = [], []
        for b in range(self.num_scenes):
            img_i = int(rng.choice(frames))
            cs, cd = self._coords_s[b][img_i], self._coords_d[b][img_i]
            if stage == "static":
                n_s, sel = n_rand, None
            else:
                n_d = min(len(cd), n_rand // 2)
                sel_d = rng.choice(len(cd), size=[n_d], replace=False)
                n_s, sel = n_rand - n_d, cd[sel_d]
            if len(cs) < n_s:
                raise SceneFormatError(
                    f"{self.scenes[b].path}: frame {img_i} has {len(cs)} static pixels, fewer than the {n_s} rays "
                    f"to sample; lower info.N_rand or check motion_masks/")
            sel_s = cs[rng.choice(len(cs), size=[n_s], replace=False)]
            coords.append(sel_s if sel is None else np.concatenate([sel_s, sel], 0))
            picked.append(img_i)
        return self._gather(picked, coords, n_rand if stage == "static" else n_rand // 2)

    def _gather(self, picked: list[int], coords: list[np.ndarray], num_static: int) -> RayBatch:
        dev = self.device
        frame = torch.tensor(picked, dtype=torch.long, device=dev)
        yx = torch.from_numpy(np.stack(coords, 0)).to(dev)  # (S, R, 2) rows, cols
        sidx = torch.arange(self.num_scenes, device=dev)[:, None]
        fidx = frame[:, None]
        ys, xs = yx[..., 0], yx[..., 1]
        c2w = self.poses[torch.arange(self.num_scenes, device=dev), frame, :3, :4]  # (S, 3, 4)
        off = self.pixel_offset
        rays_o, rays_d = self.camera.rays(xs.to(torch.float32) + off, ys.to(torch.float32) + off, c2w)
        return RayBatch(
            rays_o=rays_o, rays_d=rays_d,
            target=self.images[sidx, fidx, ys, xs],
            static_mask=self.static_masks[sidx, fidx, ys, xs][..., None],
            invdepth=self.disp[sidx, fidx, ys, xs],
            grid=self.grids[sidx, fidx, ys, xs],
            frame=frame,
            time=frame_time(frame.to(torch.float32), self.num_frames),
            num_static=num_static,
        )

    @property
    def focals(self) -> torch.Tensor:
        """(S,) f_x of each scene's training frames."""
        return self.intrinsics[:, 0]

    @property
    def camera(self) -> Pinhole:
        """The training frames' intrinsics, one per scene (:class:`~mononerf.geometry.cameras.Pinhole` with (S,)
        fields on the dataset's device): the rays, the NDC box, the projections and the induced flow use it."""
        fx, fy, cx, cy = self.intrinsics.unbind(-1)
        return Pinhole(fx, fy, cx, cy, self.height, self.width)


def group_scenes(scenes: Sequence[Scene], keys: Sequence | None = None) -> list[list[int]]:
    """Indices of the scenes that share (frames, height, width) and their ``keys`` entry (e.g. world rays or NDC),
    groups in order of their first scene."""
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(scenes):
        groups.setdefault((s.num_frames, s.height, s.width, None if keys is None else keys[i]), []).append(i)
    return list(groups.values())


class SceneGroups:
    """Scenes of different sizes or lengths trained together: one :class:`MultiSceneDataset` per (T, H, W).

    Each scene keeps its own size, focal, frame count, time normalisation (``t = i/T*2 - 1``), bounds and rays.
    Scene b of the run (the listed order) is scene ``local[b]`` of group ``group[b]``. The stacked tensors exist
    per group only: reading one here (e.g. ``images``) raises MonoNeRFError naming the groups.
    """

    def __init__(self, scenes: Sequence[Scene], device: torch.device | str = "cpu", pixel_offset: float = 0.0,
                 groups: Sequence[MultiSceneDataset] | None = None, indices: Sequence[Sequence[int]] | None = None,
                 keys: Sequence | None = None):
        self.scenes = list(scenes)
        self.names = [s.name for s in scenes]
        self.device = torch.device(device)
        self.pixel_offset = float(pixel_offset)
        # groups and indices given: already stacked (a selection of a run's scenes, Pipeline.select)
        self.indices = [list(i) for i in indices] if indices is not None else group_scenes(scenes, keys)
        self.groups = list(groups) if groups is not None else [
            MultiSceneDataset([scenes[i] for i in idx], device, pixel_offset) for idx in self.indices]
        self.group = [0] * len(scenes)
        self.local = [0] * len(scenes)
        for g, idx in enumerate(self.indices):
            for j, i in enumerate(idx):
                self.group[i], self.local[i] = g, j

    @property
    def num_scenes(self) -> int:
        return len(self.scenes)

    def scene_index(self, text: str) -> int:
        """A scene of the run by folder name or batch index (:func:`scene_index`)."""
        return scene_index(self.names, text)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        sizes = "; ".join(f"{', '.join(self.names[i] for i in idx)}: {self.scenes[idx[0]].num_frames} frames of "
                          f"{self.scenes[idx[0]].width}x{self.scenes[idx[0]].height}" for idx in self.indices)
        raise MonoNeRFError(f"'{name}' is per group of scenes of one size and length here ({sizes}); "
                            "use the pipeline's groups (Pipeline.groups / Pipeline.for_scene)")


def load_scenes(scenes: Sequence[Scene], device: torch.device | str = "cpu", pixel_offset: float = 0.0,
                keys: Sequence | None = None) -> "MultiSceneDataset | SceneGroups":
    """One :class:`MultiSceneDataset` when every scene shares T, H, W and its ``keys`` entry (the original's
    stacked batch), else :class:`SceneGroups`."""
    if not scenes:
        raise SceneFormatError("no scenes to train on")
    if len(group_scenes(scenes, keys)) == 1:
        return MultiSceneDataset(scenes, device, pixel_offset)
    return SceneGroups(scenes, device, pixel_offset, keys=keys)
