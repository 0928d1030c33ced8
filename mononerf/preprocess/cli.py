"""``python -m mononerf.preprocess``: a video → a trainable scene in one command (method.md §6.2).

    python -m mononerf.preprocess VIDEO --out data/NAME [options]          every step (same as ``all``)
    python -m mononerf.preprocess frames VIDEO --out data/NAME             one step: frames | poses | depth | flow |
    python -m mononerf.preprocess poses --out data/NAME                    motion-masks (the original's generate_data,
                                                                           COLMAP + generate_pose, generate_depth,
                                                                           generate_flow, generate_motion_mask)

A step whose outputs exist is skipped unless ``--force``; in ``all``, every step after one that ran is redone.
On a Nerfies / DyCheck iPhone capture (docs/datasets.md), ``depth``, ``flow`` and ``motion-masks`` run on its training
frames and write beside it (the iPhone layout's depth step is skipped: its LiDAR depth gives the disparity).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mononerf.errors import MonoNeRFError, report

STEPS = ("frames", "poses", "depth", "flow", "motion-masks")


def _outputs(step: str, out: Path) -> list[Path]:
    return {
        "frames": [out / "images", out / "images_colmap", out / "background_mask", out / "images_2"],
        "poses": [out / "poses_bounds.npy"],
        "depth": [out / "disp"],
        "flow": [out / "flow"],
        "motion-masks": [out / "motion_masks"],
    }[step]


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_step(step: str, args: argparse.Namespace, show_progress: bool) -> str:
    """Run one step; returns a one-line summary. On a Nerfies / iPhone capture the depth, flow and motion-masks
    steps run on its training frames and write beside it (:mod:`mononerf.preprocess.capture`)."""
    out = Path(args.out)
    from mononerf.preprocess.capture import capture_kind, run_on_capture

    kind = capture_kind(out) if out.is_dir() else None
    if kind is not None:
        if step == "depth" and kind == "iphone" and not args.force:
            return "skipped: the iPhone layout's LiDAR depth gives the disparity (--force: estimate it instead)"
        view_args = argparse.Namespace(**{**vars(args), "half": False})

        def on_view(view: Path) -> str:
            view_args.out = str(view)
            return run_step(step, view_args, show_progress)

        return run_on_capture(step, out, kind, int(args.factor), on_view)
    device = args.device or _default_device()
    source = "images_2" if args.half else "images"
    if step == "frames":
        from mononerf.preprocess.frames import extract_frames

        if not args.video:
            raise MonoNeRFError("the frames step needs the VIDEO argument")
        n = extract_frames(args.video, out, max_frames=args.max_frames, weights_dir=args.weights_dir,
                           device=device, show_progress=show_progress)
        return f"{n} frames"
    if step == "poses":
        from mononerf.preprocess.poses import estimate_poses

        res = estimate_poses(out, camera_model=args.camera_model, use_masks=True,
                             motion_check=not args.no_motion_check)
        filled = f"; cameras of {', '.join(res.filled)} interpolated" if res.filled else ""
        return (f"COLMAP registered {res.registered}/{res.total} frames ({res.recipe}; {res.camera_model} camera, "
                f"focal {res.focal:.1f} px, mean reprojection error {res.reprojection_error:.2f} px{filled})")
    if step == "depth":
        from mononerf.preprocess.midas import midas_weights_for, run_depth

        weights = midas_weights_for(args.depth, args.weights_dir)
        if weights is None:
            from mononerf.preprocess.flow_depth import run_flow_depth

            n = run_flow_depth(out, show_progress=show_progress, source=source)
            return f"{n} disparity maps from {source}/ (triangulated from the classical flow and the poses)"
        n = run_depth(out, weights=weights, device=device, show_progress=show_progress, source=source)
        return f"{n} disparity maps from {source}/ (MiDaS)"
    if step == "flow":
        from mononerf.preprocess.flow import run_flow

        n, used = run_flow(out, weights_dir=args.weights_dir, iters=args.flow_iters, device=device,
                           show_progress=show_progress, source=source, method=args.flow)
        return f"{n} frame pairs (forward and backward, {used}) from {source}/"
    from mononerf.preprocess.motion_masks import run_motion_masks

    n = run_motion_masks(out, threshold=args.epi_threshold, weights_dir=args.weights_dir, device=device,
                         show_progress=show_progress)
    return f"{n} motion masks"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mononerf.preprocess",
                                     description="Turn a video into a trainable scene (frames, COLMAP poses, MiDaS "
                                                 "depth, RAFT flow, motion masks); without weight files, depth and "
                                                 "flow come from classical methods (docs/real-video.md).")
    sub = parser.add_subparsers(dest="step", metavar="STEP")
    for step in ("all",) + STEPS:
        p = sub.add_parser(step, help="every step in order" if step == "all" else f"only the {step} step")
        if step in ("all", "frames"):
            p.add_argument("video", help="input video (mp4, mov, … anything ffmpeg reads)")
        p.add_argument("--out", required=True, help="scene folder, e.g. data/my_video")
        p.add_argument("--force", action="store_true", help="redo steps whose outputs exist")
        p.add_argument("--weights-dir", default=None,
                       help="folder with the weight files (also searched: ./weights, ./checkpoints)")
        p.add_argument("--device", default=None, help="torch device for depth/flow (default: cuda if available)")
        p.add_argument("--max-frames", type=int, default=100, help="keep every ceil(n/N)-th frame (default 100)")
        p.add_argument("--camera-model", default="auto",
                       help="COLMAP camera: auto (the mapping recipes with SIMPLE_RADIAL, then SIMPLE_PINHOLE), or "
                            "SIMPLE_RADIAL / SIMPLE_PINHOLE (every recipe with that camera)")
        p.add_argument("--no-motion-check", action="store_true",
                       help="map even when the clip looks like a cut, a static camera or a camera that only turns")
        p.add_argument("--flow", default="auto", choices=("auto", "raft", "classical"),
                       help="optical flow: RAFT (needs its weights), classical (OpenCV DIS, no weights), or auto: "
                            "RAFT when its weights are found, else classical (default)")
        p.add_argument("--depth", default="auto", choices=("auto", "midas", "flow"),
                       help="disparity: MiDaS (needs its weights), flow (triangulated from the classical flow and the "
                            "poses, no weights), or auto: MiDaS when its weights are found, else flow (default)")
        p.add_argument("--flow-iters", type=int, default=20, help="RAFT iterations (the original: 20)")
        p.add_argument("--half", action="store_true",
                       help="depth and flow on images_2/ instead of images/ (4x fewer pixels; faster on a CPU)")
        p.add_argument("--factor", type=int, default=2,
                       help="a Nerfies / iPhone capture: the rgb/<factor>x/ frames to work on (default 2)")
        p.add_argument("--epi-threshold", type=float, default=1.0,
                       help="epipolar distance (pixels) above which a pixel moves (default 1.0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in ("all",) + STEPS and not argv[0].startswith("-"):
        argv.insert(0, "all")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.step is None:
        parser.print_help()
        return 2
    if not hasattr(args, "video"):
        args.video = None
    show_progress = sys.stderr.isatty()
    steps = STEPS if args.step == "all" else (args.step,)
    out = Path(args.out)
    force = args.force
    try:
        for step in steps:
            from mononerf.preprocess.common import should_skip

            if should_skip(_outputs(step, out), force):
                print(f"[{step}] skipped: {', '.join(p.name for p in _outputs(step, out))} exist "
                      "(--force to redo)")
                continue
            t0 = time.perf_counter()
            summary = run_step(step, args, show_progress)
            print(f"[{step}] {summary} ({time.perf_counter() - t0:.1f} s)")
            force = force or args.step == "all"  # later steps depend on this one's outputs
        if args.step == "all" or args.step == "motion-masks":
            from mononerf.data.check import format_summary, scene_summary
            from mononerf.data.formats import read_scenes

            from mononerf.preprocess.capture import capture_kind

            try:
                (scene,) = read_scenes([out], "auto", factor=args.factor)
            except MonoNeRFError as err:
                if capture_kind(out) is None:
                    raise
                print(f"[check] not trainable yet: {err}")  # a capture's steps run one at a time, in any order
                return 0
            print("[check] " + format_summary(scene_summary(scene)))
            if scene.format == "llff":
                print(f"train on it: SCENE={out} ./your_own_scene.sh 0")
            else:
                print(f"train on it with --dataset_type {scene.format} (or auto; docs/datasets.md)")
    except (MonoNeRFError, OSError) as err:
        return report(err)
    return 0
