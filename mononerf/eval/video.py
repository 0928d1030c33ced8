"""``python -m mononerf.eval.video RUN_DIR [--mode …]``: videos of a trained run (spec §3.6, §5.4).

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

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from mononerf.errors import MonoNeRFError, os_error, report
from mononerf.eval.protocols import DYCHECK, PROTOCOL_NAMES
from mononerf.geometry.poses import frame_time

MODES = ("spiral", "fixed-time", "fixed-view", "testset", "multiview")


def load_run(run_dir: str | Path, device: str = "auto", checkpoint: str | None = None):
    """The :class:`~mononerf.train.pipeline.Pipeline` of ``RUN_DIR`` with the newest (or the given) checkpoint
    loaded and the features encoded: :meth:`Pipeline.from_run`. Returns (pipeline, step)."""
    from mononerf.train.pipeline import Pipeline

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


def add_quick_render_args(p: argparse.ArgumentParser) -> None:
    """Options shared with ``python -m mononerf.edit``: checkpoint, device, size and samples of the renders."""
    p.add_argument("--checkpoint", help="a checkpoint file (default: the newest in the run folder)")
    p.add_argument("--device", default="auto")
    p.add_argument("--downscale", type=int, default=1, help="render F times smaller than the training images")
    p.add_argument("--n-samples", type=int, help="samples per ray (default: the run's train.N_samples)")


def apply_quick_render_args(pipeline, args) -> None:
    if args.n_samples is not None:
        if args.n_samples < 2:
            raise MonoNeRFError(f"--n-samples {args.n_samples}: need at least 2 samples per ray")
        for part in pipeline.groups:
            part.renderer.settings = replace(part.renderer.settings, n_samples=int(args.n_samples))


def main(argv: list[str] | None = None) -> int:
    from mononerf.eval.visuals import parse_outputs

    p = argparse.ArgumentParser(prog="python -m mononerf.eval.video", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run folder ({basedir}/{W}gpus{expname}) with config.conf and NNNNNN.tar")
    p.add_argument("--mode", choices=MODES, default="spiral")
    p.add_argument("--outputs", default="rgb", help="comma list of rgb, depth, blend, flow, sceneflow (one mp4 each)")
    p.add_argument("--time", type=int, default=0, help="frame index for --mode fixed-time")
    p.add_argument("--view", type=int, default=0, help="training camera for --mode fixed-view")
    p.add_argument("--substeps", type=int, default=1, help="renders per frame interval for --mode fixed-view")
    p.add_argument("--repeat", type=int, default=4, help="renders per frame for --mode spiral (the original: 4)")
    p.add_argument("--grid", type=int, help="--mode multiview: only K evenly spaced times x the same K cameras")
    p.add_argument("--protocol", choices=PROTOCOL_NAMES, default="mononerf",
                   help="--mode multiview: the views to render: every camera at every time (mononerf), camera 0 "
                        "at every time (dynamicnerf) or the validation cameras of iPhone / Nerfies scenes (dycheck); "
                        "docs/evaluation.md")
    p.add_argument("--frames", type=int, help="--mode spiral / fixed-time: N frames (cameras spread over the spiral; "
                   "default: spiral 22 x --repeat for 12 frames, fixed-time every spiral camera)")
    p.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/renders/MODE_STEP)")
    p.add_argument("--scenes", help="comma list of the scenes to render (names or batch indices; default: all)")
    add_quick_render_args(p)
    a = p.parse_args(argv)
    try:
        outputs = parse_outputs(a.outputs)
    except ValueError as exc:
        p.error(str(exc))
    try:
        pipeline, step = load_run(a.run_dir, a.device, a.checkpoint)
        apply_quick_render_args(pipeline, a)
        if a.scenes:
            pipeline = select_run_scenes(pipeline, [n.strip() for n in a.scenes.split(",") if n.strip()])
        with torch.inference_mode():
            folder = render_mode(pipeline, step, a.mode, a.out, a.time, a.view, max(1, a.substeps), outputs=outputs,
                                 downscale=a.downscale, repeat=a.repeat, grid=a.grid, frames=a.frames,
                                 protocol=a.protocol)
    except MonoNeRFError as exc:
        return report(exc)
    except OSError as exc:  # a video could not be written
        return report(os_error(exc))
    if a.mode == "multiview":
        proto = "" if a.protocol == "mononerf" else f" --protocol {a.protocol}"
        print(f"wrote {folder} (evaluate with: python -m mononerf.eval {folder} --data DATA_ROOT{proto})")
    else:
        print(f"wrote {', '.join(str(p) for p in sorted(folder.glob('*.mp4')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
