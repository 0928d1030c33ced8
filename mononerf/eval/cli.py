"""The evaluation commands other than ``python -m mononerf.eval`` (scores, :mod:`mononerf.eval.__main__`):
``python -m mononerf.eval.video`` (renders), ``python -m mononerf.eval.training_views`` (the training cameras'
scores) and the quick-render options the edits share. Each library module keeps its ``python -m`` name and hands
over to its function here; the modules are imported when their command runs. The drivers' commands are in
mononerf/experiments/cli.py."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from mononerf.errors import MonoNeRFError, report
from mononerf.eval.protocols import PROTOCOL_NAMES


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


def video_main(argv: list[str] | None = None) -> int:
    from mononerf.eval import video
    from mononerf.eval.visuals import VISUALS, parse_outputs

    p = argparse.ArgumentParser(prog="python -m mononerf.eval.video", description=video.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run folder ({basedir}/{W}gpus{expname}) with config.conf and NNNNNN.tar")
    p.add_argument("--mode", choices=video.MODES, default="spiral")
    p.add_argument("--outputs", default="rgb", help=f"comma list of {', '.join(VISUALS)} (one mp4 each; "
                   "mononerf/eval/visuals.py)")
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
        pipeline, step = video.load_run(a.run_dir, a.device, a.checkpoint)
        apply_quick_render_args(pipeline, a)
        if a.scenes:
            pipeline = video.select_run_scenes(pipeline, [n.strip() for n in a.scenes.split(",") if n.strip()])
        with torch.inference_mode():
            folder = video.render_mode(pipeline, step, a.mode, a.out, a.time, a.view, max(1, a.substeps),
                                       outputs=outputs, downscale=a.downscale, repeat=a.repeat, grid=a.grid,
                                       frames=a.frames, protocol=a.protocol)
    except (MonoNeRFError, OSError) as exc:  # one line, exit status 2
        return report(exc)
    if a.mode == "multiview":
        proto = "" if a.protocol == "mononerf" else f" --protocol {a.protocol}"
        print(f"wrote {folder} (evaluate with: python -m mononerf.eval {folder} --data DATA_ROOT{proto})")
    else:
        print(f"wrote {', '.join(str(p) for p in sorted(folder.glob('*.mp4')))}")
    return 0


def training_views_main(argv: list[str] | None = None) -> int:
    from mononerf.eval import training_views
    from mononerf.eval.video import load_run, select_run_scenes

    p = argparse.ArgumentParser(prog="python -m mononerf.eval.training_views",
                                description=training_views.__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("run_dir", help="a run folder with config.conf and NNNNNN.tar")
    p.add_argument("--frames", default=None, help="comma list of frame indices, or 'all' (default: 8 spread out)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/training_views/step_STEP)")
    p.add_argument("--scenes", default=None, help="comma list of scenes (names or batch indices; default: all)")
    add_quick_render_args(p)
    args = p.parse_args(argv)
    try:
        pipeline, step = load_run(args.run_dir, args.device, args.checkpoint)
        if args.scenes:
            pipeline = select_run_scenes(pipeline, [s.strip() for s in args.scenes.split(",")])
        apply_quick_render_args(pipeline, args)
        if len(pipeline.groups) > 1:
            raise MonoNeRFError("this run's scenes differ in size or length: name scenes of one size and length "
                                "with --scenes (e.g. --scenes " + pipeline.data.names[0] + ")")
        T = pipeline.data.num_frames
        if args.frames in (None, ""):
            frames = training_views.default_frames(T)
        elif args.frames == "all":
            frames = list(range(T))
        else:
            try:
                frames = [int(x) for x in args.frames.split(",")]
            except ValueError:
                raise MonoNeRFError(f"--frames {args.frames!r}: give frame indices like 0,4,8 or 'all'") from None
            if bad := [k for k in frames if not 0 <= k < T]:
                raise MonoNeRFError(f"--frames: {bad} are not frames of this run (0..{T - 1})")
        out = Path(args.out) if args.out else pipeline.run_dir / "training_views" / f"step_{step:06d}"
        scores = training_views.score_frames(pipeline, frames, out, downscale=args.downscale,
                                             progress=sys.stderr.isatty(), step=step)
    except (MonoNeRFError, OSError) as err:
        return report(err)
    print(training_views.format_scores(scores))
    print(f"pictures and scores.json in {out}")
    return 0
