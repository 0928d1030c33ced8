"""Renders the trainer writes at its intervals (spec §5.4): test set, novel view × time video, multi-view dump.

The multi-view dump (``i_testset_all``) is what evaluation reads: every training camera at every time,
``{run}/{info.evaldir}/step_{step:06d}/{time+1:08d}/imgs/{view:03d}_{b:02d}.png``; ``scenes.json`` beside it names
scene ``b`` so evaluation matches scenes by name (fix of spec §8.23).
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from mononerf.data.poses import frame_time
from mononerf.utils.video import write_video


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def render_frames(trainer, c2w: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Full renders of one camera and time per scene: c2w (S, 3, 4), times (S,) → rgb (S, H, W, 3) on the CPU."""
    d = trainer.data
    out = trainer.renderer.render_views(c2w, times.to(d.device), d.height, d.width, d.focals, dynamic=True,
                                        chunk=int(trainer.cfg.info.chunk))
    return out["rgb_map_full"]


def _scene_index(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenes.json").write_text(json.dumps({f"{b:02d}": n for b, n in enumerate(names)}, indent=1))


def testset(trainer, step: int) -> Path:
    """Every training camera at its own time (``testset_{step:06d}/``): PNGs and one mp4 per scene."""
    d = trainer.data
    folder = trainer.run_dir / f"testset_{step:06d}"
    _scene_index(folder, d.names)
    frames = []
    for k in range(d.num_frames):
        t = torch.full((d.num_scenes,), frame_time(k, d.num_frames))
        rgb = render_frames(trainer, d.poses[:, k, :, :4], t)
        frames.append(rgb)
        for b in range(d.num_scenes):
            (folder / "imgs").mkdir(exist_ok=True)
            iio.imwrite(folder / "imgs" / f"{k:03d}_{b:02d}.png", _to_uint8(rgb[b]))
    for b in range(d.num_scenes):
        write_video(folder / f"rgb_{b:02d}.mp4", [_to_uint8(f[b]) for f in frames], fps=4)
    return folder


def novel_view_time_schedule(num_frames: int, repeat: int = 4) -> list[int]:
    """Frame indices of the original's "novelviewtime" video: 0..N-1 then N-2..1, each repeated 4× (88 for 12)."""
    forward = [k for k in range(num_frames) for _ in range(repeat)]
    back = [k for k in range(num_frames - 2, 0, -1) for _ in range(repeat)]
    return forward + back


def render_video(trainer, cameras: list[torch.Tensor], times: list[float], folder: Path, fps: float | None = None,
                 progress: bool = False) -> list[Path]:
    """Render one (S, 3, 4) camera per frame at normalised time ``times[j]`` → ``folder/rgb_{b:02d}.mp4`` per scene.

    fps defaults to the original's choice: 4 below 25 frames, else 24.
    """
    d = trainer.data
    _scene_index(folder, d.names)
    frames = []
    steps = zip(cameras, times)
    if progress:
        from tqdm import tqdm

        steps = tqdm(list(steps), desc=f"render {folder.name}", unit="frame")
    for cam, t in steps:
        frames.append(render_frames(trainer, cam, torch.full((d.num_scenes,), float(t))))
    fps = fps or (24 if len(frames) >= 25 else 4)
    return [write_video(folder / f"rgb_{b:02d}.mp4", [_to_uint8(f[b]) for f in frames], fps=fps)
            for b in range(d.num_scenes)]


def novel_view_time_video(trainer, step: int, folder: Path | None = None, progress: bool = False) -> Path:
    """The spiral camera path tiled over the time schedule (spec §5.4 i_video) → one mp4 per scene."""
    d = trainer.data
    folder = folder or trainer.run_dir / f"novelviewtime_{step:06d}"
    schedule = novel_view_time_schedule(d.num_frames)
    n_views = d.render_poses.shape[1]
    cams = [d.render_poses[:, j % n_views, :, :4] for j in range(len(schedule))]
    render_video(trainer, cams, [frame_time(k, d.num_frames) for k in schedule], folder, progress=progress)
    return folder


def testset_all(trainer, step: int) -> Path:
    """Every training camera at every time (spec §5.4 i_testset_all), the layout evaluation reads."""
    d = trainer.data
    root = trainer.run_dir / str(trainer.cfg.info.evaldir) / f"step_{step:06d}"
    _scene_index(root, d.names)
    for e in range(d.num_frames):
        folder = root / f"{e + 1:08d}" / "imgs"
        folder.mkdir(parents=True, exist_ok=True)
        t = torch.full((d.num_scenes,), frame_time(e, d.num_frames))
        for view in range(d.num_frames):
            rgb = render_frames(trainer, d.poses[:, view, :, :4], t)
            for b in range(d.num_scenes):
                iio.imwrite(folder / f"{view:03d}_{b:02d}.png", _to_uint8(rgb[b]))
    return root
