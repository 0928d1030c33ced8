"""``python -m mononerf.eval.video RUN_DIR [--mode …]``: videos of a trained run (method.md §3.6, §5.4).

Modes: ``spiral`` (the original's novel view × time video: spiral cameras while time runs forward and back),
``fixed-time`` (spiral cameras at one time), ``fixed-view`` (one training camera, time running over every frame,
with ``--substeps`` in-between times), ``testset`` (each training camera at its own time), ``multiview`` (the
evaluation dump: every training camera at every time, or ``--grid K`` evenly spaced ones of each, as PNGs;
``--protocol dynamicnerf``: camera 0 at every time).

``--outputs rgb,depth,blend,flow,sceneflow`` writes one mp4 per output and scene: the rgb render, the disparity
(colour-mapped), the blending weight of the dynamic part (dynamicness, white = dynamic), the optical flow induced by
the scene flow (the colour wheel: zero flow white, hue = direction) and the scene flow itself (the original's
``norm_sf`` colours: x, y, z as red, green, blue, zero grey). ``--downscale F`` and ``--n-samples K`` make quick,
small renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mononerf.errors import MonoNeRFError
from mononerf.eval.protocols import DYCHECK
from mononerf.geometry.poses import frame_time

MODES = ("spiral", "fixed-time", "fixed-view", "testset", "multiview")


def load_run(run_dir: str | Path, device: str = "auto", checkpoint: str | None = None):
    """The :class:`~mononerf.pipeline.pipeline.Pipeline` of ``RUN_DIR`` with the newest (or the given) checkpoint
    loaded and the features encoded: :meth:`Pipeline.from_run`. Returns (pipeline, step)."""
    from mononerf.pipeline.pipeline import Pipeline

    return Pipeline.from_run(run_dir, device, checkpoint)


def select_run_scenes(pipeline, names: list[str]):
    """A view of a loaded run that renders only the scenes ``names`` (folder names or batch indices), in that order:
    a shallow copy of the pipeline with those scenes' data and features and its own renderer (same model and
    settings). Each scene of a multi-scene run costs a full render per frame; one scene costs one."""
    pipeline = getattr(pipeline, "pipeline", pipeline)  # a Trainer's
    return pipeline.select([pipeline.data.scene_index(n) for n in names])


def render_mode(pipeline, step: int, mode: str, out: Path | None = None, time: int = 0, view: int = 0,
                substeps: int = 1, progress: bool = True, outputs: tuple[str, ...] = ("rgb",), downscale: int = 1,
                repeat: int = 4, grid: int | None = None, frames: int | None = None,
                protocol: str = "mononerf") -> Path:
    """Render one video per scene and output; returns the folder holding ``{output}_{b:02d}.mp4`` (for
    ``multiview``: the dump folder that ``python -m mononerf.eval`` reads). ``frames``: the number of frames of a
    ``spiral`` or ``fixed-time`` video (cameras spread over the spiral; default: the original's); ``protocol``: the
    views of a ``multiview`` dump (:mod:`mononerf.eval.protocols`)."""
    from mononerf.eval import renders

    folder = out or pipeline.run_dir / "renders" / f"{mode}_{step:06d}"
    if mode == "spiral":
        return renders.novel_view_time_video(pipeline, step, folder, progress=progress, repeat=max(1, repeat),
                                             outputs=outputs, downscale=downscale, frames=frames)
    if mode == "multiview":
        folder = out or pipeline.run_dir / str(pipeline.cfg.info.evaldir) / f"step_{step:06d}"
        if protocol == DYCHECK:  # the validation cameras of the scenes that have them (mononerf/eval/dycheck.py)
            from mononerf.eval import dycheck

            return dycheck.render_views(pipeline, step, folder, progress=progress)
        return renders.testset_all(pipeline, step, grid=grid, downscale=downscale, folder=folder, progress=progress,
                                   protocol=protocol)
    if mode not in MODES:
        raise MonoNeRFError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    renders.write_scene_index(folder, pipeline.data.names)
    for part in pipeline.groups:  # scenes of one size and length at a time
        d = part.data
        if mode == "fixed-time":
            if not 0 <= time < d.num_frames:
                raise MonoNeRFError(f"--time {time} is not a frame of {', '.join(d.names)} (0..{d.num_frames - 1})")
            n_views = d.render_poses.shape[1]
            cams = [d.render_poses[:, j, :, :4] for j in renders.spread(n_views, frames or n_views)]
            times = [frame_time(time, d.num_frames)] * len(cams)
        elif mode == "fixed-view":
            if not 0 <= view < d.num_frames:
                raise MonoNeRFError(f"--view {view} is not a training camera of {', '.join(d.names)} "
                                    f"(0..{d.num_frames - 1})")
            ticks = [k / substeps for k in range((d.num_frames - 1) * substeps + 1)]  # frame indices, in-between too
            times = [frame_time(k, d.num_frames) for k in ticks]
            cams = [d.poses[:, view, :, :4]] * len(times)
        else:  # testset
            cams = [d.poses[:, k, :, :4] for k in range(d.num_frames)]
            times = [frame_time(k, d.num_frames) for k in range(d.num_frames)]
        renders.render_video(part, cams, times, folder, progress=progress, outputs=outputs, downscale=downscale,
                             scene_index=False)
    return folder


if __name__ == "__main__":  # python -m mononerf.eval.video: the command is in mononerf/eval/cli.py
    from mononerf.eval.cli import video_main

    sys.exit(video_main())
