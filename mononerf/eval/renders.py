"""Renders the pipeline writes at its intervals (method.md §5.4): test set, novel view × time video, multi-view dump.

The multi-view dump (``i_testset_all``) is what evaluation reads: every training camera at every time (camera 0
only for the ``dynamicnerf`` protocol),
``{run}/{info.evaldir}/step_{step:06d}/{time+1:08d}/imgs/{view:03d}_{b:02d}.png`` (the blended render, as the
original); beside ``imgs/`` the same view's static-only render (``imgs_static/``), dynamic-only render
(``imgs_dynamic/``) and blending map (``blend/``, the dynamicness Σ_k w_k·b_k as a 16-bit grey PNG,
65535 = 1), so that evaluation can say what each branch does, and the disparity of the blended render (``disp/``,
16-bit grey, 65535 = the near plane). ``scenes.json`` beside it names scene ``b`` so
evaluation matches scenes by name (fix of method.md §8.23).

Videos carry one mp4 per scene and per output (``rgb``, ``depth``, ``blend``, ``flow``; :mod:`mononerf.eval.visuals`),
and can be rendered smaller than the training images (``downscale``: H, W and focal divided, the same rays).
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from mononerf.errors import MonoNeRFError
from mononerf.eval import visuals
from mononerf.eval.protocols import get_protocol, sample_space, write_dump_info
from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.poses import frame_time
from mononerf.utils.images import to_uint8
from mononerf.utils.video import write_video


def render_camera(pipeline, downscale: int = 1) -> Pinhole:
    """The intrinsics (:class:`~mononerf.geometry.cameras.Pinhole`, (S,) fields) of renders ``downscale`` times
    smaller than the training images (1 = the training camera; its ``size`` is (W, H)).

    Dividing the size and the focal lengths together keeps every ray (NDC and world directions depend on their
    ratios; :meth:`Pinhole.downscaled <mononerf.geometry.cameras.Pinhole.downscaled>`)."""
    d = pipeline.data
    if downscale < 1 or d.height // downscale < 1 or d.width // downscale < 1:
        raise MonoNeRFError(f"downscale {downscale} does not fit {d.width}x{d.height} images")
    return d.camera.downscaled(downscale)


def render_frames(pipeline, c2w: torch.Tensor, times: torch.Tensor, downscale: int = 1) -> np.ndarray:
    """Full renders of one camera and time per scene: c2w (S, 3, 4), times (S,) → rgb (S, H, W, 3), numpy."""
    return render_outputs(pipeline, c2w, times, ("rgb",), downscale)["rgb"]


def render_outputs(pipeline, c2w: torch.Tensor, times: torch.Tensor, outputs: tuple[str, ...] = ("rgb",),
                   downscale: int = 1) -> dict:
    """Full renders of one camera and time per scene → the maps of ``outputs`` (see
    :func:`mononerf.eval.visuals.frame_maps`): rgb (S, H, W, 3), depth (disparity) and blend (S, H, W), flow
    (S, H, W, 2)."""
    d = pipeline.data
    camera = render_camera(pipeline, downscale)
    out = pipeline.renderer.render_views(c2w, times.to(d.device), camera, dynamic=True,
                                        chunk=int(pipeline.cfg.info.chunk))
    s = pipeline.renderer.settings
    return visuals.frame_maps(out, outputs, c2w, camera, s.pixel_offset, s.ndc)


def write_scene_index(folder: Path, names: list[str]) -> None:
    """``folder/scenes.json``: batch index → scene name, for evaluation and for people."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenes.json").write_text(json.dumps({f"{b:02d}": n for b, n in enumerate(names)}, indent=1))


def testset(pipeline, step: int) -> Path:
    """Every training camera at its own time (``testset_{step:06d}/``): PNGs and one mp4 per scene."""
    folder = pipeline.run_dir / f"testset_{step:06d}"
    write_scene_index(folder, pipeline.data.names)
    for part in pipeline.groups:  # scenes of one size and length at a time
        d = part.data
        frames = []
        for k in range(d.num_frames):
            t = torch.full((d.num_scenes,), frame_time(k, d.num_frames))
            rgb = render_frames(part, d.poses[:, k, :, :4], t)
            frames.append(rgb)
            for j, b in enumerate(part.scene_ids):
                (folder / "imgs").mkdir(exist_ok=True)
                iio.imwrite(folder / "imgs" / f"{k:03d}_{b:02d}.png", to_uint8(rgb[j]))
        for j, b in enumerate(part.scene_ids):
            write_video(folder / f"rgb_{b:02d}.mp4", [to_uint8(f[j]) for f in frames], fps=4)
    return folder


def novel_view_time_schedule(num_frames: int, repeat: int = 4) -> list[int]:
    """Frame indices of the original's "novelviewtime" video: 0..N-1 then N-2..1, each repeated 4× (88 for 12);
    ``repeat=1`` gives the short version (22 for 12)."""
    forward = [k for k in range(num_frames) for _ in range(repeat)]
    back = [k for k in range(num_frames - 2, 0, -1) for _ in range(repeat)]
    return forward + back


def render_video(pipeline, cameras: list[torch.Tensor], times: list[float], folder: Path, fps: float | None = None,
                 progress: bool = False, outputs: tuple[str, ...] = ("rgb",), downscale: int = 1,
                 scene_index: bool = True) -> list[Path]:
    """Render one (S, 3, 4) camera per frame at normalised time ``times[j]`` → ``folder/{output}_{b:02d}.mp4`` per
    scene and output (``rgb``, ``depth``, ``blend``, ``flow``: :mod:`mononerf.eval.visuals`).

    fps defaults to the original's choice: 4 below 25 frames, else 24. ``pipeline``: one group's (its scenes share
    a size and length); the files are named by the run's scene index (``pipeline.scene_ids``). ``scene_index``:
    write ``scenes.json`` (a caller rendering a run one group at a time writes the run's instead).
    """
    d = pipeline.data
    ids = getattr(pipeline, "scene_ids", list(range(d.num_scenes)))
    if scene_index:
        write_scene_index(folder, d.names)
    maps: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
    steps = zip(cameras, times)
    if progress:
        from tqdm import tqdm

        steps = tqdm(list(steps), desc=f"render {folder.name}", unit="frame")
    for cam, t in steps:
        for name, value in render_outputs(pipeline, cam, torch.full((d.num_scenes,), float(t)), outputs,
                                          downscale).items():
            maps[name].append(value)
    n_frames = len(next(iter(maps.values())))
    fps = fps or (24 if n_frames >= 25 else 4)
    paths = []
    for name in outputs:
        for j, b in enumerate(ids):
            frames = visuals.video_frames(name, [m[j] for m in maps[name]])
            paths.append(write_video(folder / f"{name}_{b:02d}.mp4", frames, fps=fps))
    return paths


def spread(count: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(count)`` from its start (``n >= count``: each in turn, wrapping)."""
    if n < 1:
        raise MonoNeRFError(f"--frames {n}: need at least one frame")
    return [int(j * count / n) % count if n < count else j % count for j in range(n)]


def novel_view_time_video(pipeline, step: int, folder: Path | None = None, progress: bool = False, repeat: int = 4,
                          outputs: tuple[str, ...] = ("rgb",), downscale: int = 1, frames: int | None = None) -> Path:
    """The spiral camera path tiled over the time schedule (method.md §5.4 i_video) → one mp4 per scene and output.

    ``frames=N`` makes a video of N frames instead: N evenly spaced entries of the forward-and-back time schedule
    (``repeat=1``) while the cameras go once round the spiral. Scenes of different lengths: one schedule per group."""
    folder = folder or pipeline.run_dir / f"novelviewtime_{step:06d}"
    write_scene_index(folder, pipeline.data.names)
    for part in pipeline.groups:
        d = part.data
        n_views = d.render_poses.shape[1]
        if frames is None:
            schedule = novel_view_time_schedule(d.num_frames, repeat)
            cams = [d.render_poses[:, j % n_views, :, :4] for j in range(len(schedule))]
        else:
            full = novel_view_time_schedule(d.num_frames, 1)
            schedule = [full[i] for i in spread(len(full), frames)]
            cams = [d.render_poses[:, j, :, :4] for j in spread(n_views, frames)]
        render_video(part, cams, [frame_time(k, d.num_frames) for k in schedule], folder, progress=progress,
                     outputs=outputs, downscale=downscale, scene_index=False)
    return folder


# sub-folders of one time of a multi-view dump, and the per-ray map each holds (module docstring)
MULTIVIEW_MAPS = {"imgs": "rgb_map_full", "imgs_static": "rgb_map_s", "imgs_dynamic": "rgb_map_d",
                  "blend": "dynamicness_map"}
# and the disparity of the blended render (``disp/``, 16-bit grey like ``blend/``: 65535 = 1 = the near plane)
DISPARITY_DIR = "disp"
BLEND_PNG_SCALE = 65535.0  # blend/*.png: uint16, value / 65535 = blending weight


def write_blend_png(path: Path, blend: np.ndarray) -> None:
    """(H, W) blending weights in [0, 1] → 16-bit grey PNG (``read_blend_png`` inverts it to 1.5e-5)."""
    iio.imwrite(path, (np.clip(blend, 0.0, 1.0) * BLEND_PNG_SCALE).round().astype(np.uint16))


def read_blend_png(path: Path) -> np.ndarray:
    """A ``blend/*.png`` of a multi-view dump → (H, W) float64 blending weights."""
    return iio.imread(path).astype(np.float64) / BLEND_PNG_SCALE


def grid_indices(num_frames: int, grid: int | None) -> list[int]:
    """The frame (and camera) indices of a ``grid=K`` multi-view dump: K evenly spaced ones from the first to the last
    (e.g. 12 frames, K = 4: 0, 4, 7, 11), or all of them for None."""
    if grid is None or int(grid) >= num_frames:
        return list(range(num_frames))
    if int(grid) < 1:
        raise MonoNeRFError(f"--grid {grid}: need at least one time and camera")
    return sorted({int(round(v)) for v in np.linspace(0, num_frames - 1, int(grid))})


def testset_all(pipeline, step: int, grid: int | None = None, downscale: int = 1, folder: Path | None = None,
                progress: bool = False, protocol: str = "mononerf") -> Path:
    """The views a protocol scores (``train.i_testset_all``; :mod:`mononerf.eval.protocols`), the layout evaluation
    reads: every training camera at every time (``mononerf``, the original's) or camera 0 at every time
    (``dynamicnerf``); per view the blended render (``imgs/``, the original's), the static-only and dynamic-only
    renders and the blending map (:data:`MULTIVIEW_MAPS`), and the disparity (:data:`DISPARITY_DIR`); ``dump.json``
    names the protocol and the render settings.

    ``grid=K`` renders K evenly spaced times (× the same K cameras; :func:`grid_indices`; a quick look, evaluation
    then scores that sub-grid), ``downscale`` renders smaller images (evaluation resizes the ground truth to them).
    Scenes of different sizes or lengths render one group at a time, each over its own frames.
    """
    proto = get_protocol(protocol)
    root = folder or pipeline.run_dir / str(pipeline.cfg.info.evaldir) / f"step_{step:06d}"
    write_scene_index(root, pipeline.data.names)
    jobs, sizes = [], {}
    for part in pipeline.groups:
        picked = grid_indices(part.data.num_frames, grid)
        jobs += [(part, e, view) for e, view in proto.render_views(picked)]
        W, H = render_camera(part, downscale).size
        sizes.update({name: [W, H] for name in part.data.names})
    write_dump_info(root, proto, step=int(step), grid=grid, downscale=int(downscale), sizes=sizes,
                    n_samples=int(pipeline.renderer.settings.n_samples), ndc=sample_space(pipeline))
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc=f"multi-view {root.name}", unit="view")
    for part, e, view in jobs:
        d = part.data
        t = torch.full((d.num_scenes,), frame_time(e, d.num_frames), device=d.device)
        out = part.renderer.render_views(d.poses[:, view, :, :4], t, render_camera(part, downscale), dynamic=True,
                                         chunk=int(pipeline.cfg.info.chunk))
        for sub, key in MULTIVIEW_MAPS.items():
            folder_e = root / f"{e + 1:08d}" / sub
            folder_e.mkdir(parents=True, exist_ok=True)
            maps = out[key].float().numpy()
            for j, b in enumerate(part.scene_ids):
                path = folder_e / f"{view:03d}_{b:02d}.png"
                if sub == "blend":
                    write_blend_png(path, maps[j])
                else:
                    iio.imwrite(path, to_uint8(maps[j]))
        folder_e = root / f"{e + 1:08d}" / DISPARITY_DIR
        folder_e.mkdir(parents=True, exist_ok=True)
        disp = visuals.disparity(out["depth_map_full"].float(), ndc=part.renderer.settings.ndc).numpy()
        for j, b in enumerate(part.scene_ids):
            write_blend_png(folder_e / f"{view:03d}_{b:02d}.png", disp[j])
    return root
