"""``python -m mononerf.edit RUN_DIR EDIT …``: dynamic-scene editing videos of a trained run, one mp4 per command.

Edits (the paper's editing results; how each is composed: :mod:`mononerf.edit.fields`):

  compose --static-scene A --dynamic-scene B   the static part of scene A with the moving part of scene B
                                               (two scenes of one multi-scene run; A's cameras)
  remove-dynamic --scene A                     scene A without its moving part: the static field alone
  retime --scene A --speed 0.25                slow motion: in-between times (speed > 1 plays faster)
  retime --scene A --freeze 5                  the moving part frozen at frame 5 while the camera moves on

Scenes are given by name (the scene folder's name) or batch index. The camera follows ``--camera``: ``track`` (the
video's own cameras, interpolated at in-between times; default), ``fixed`` (training camera ``--view``), ``spiral``
(the novel-view spiral). The mp4 goes to ``RUN_DIR/edits/`` unless ``--out`` names a file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mononerf.data.dataset import scene_index
from mononerf.edit.edits import DEFAULT_FPS, EditSpec, edit_video
from mononerf.errors import MonoNeRFError, report


def build_parser() -> argparse.ArgumentParser:
    from mononerf.edit.paths import CAMERAS
    from mononerf.eval.cli import add_quick_render_args

    p = argparse.ArgumentParser(prog="python -m mononerf.edit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run folder ({basedir}/{W}gpus{expname}) with config.conf and NNNNNN.tar")
    sub = p.add_subparsers(dest="edit", required=True, metavar="EDIT")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--camera", choices=CAMERAS, default="track",
                        help="track: the video's cameras (default); fixed: camera --view; spiral: novel views")
    common.add_argument("--view", type=int, default=0, help="training camera for --camera fixed")
    common.add_argument("--fps", type=float, default=DEFAULT_FPS, help=f"video rate (default {DEFAULT_FPS:g})")
    common.add_argument("--out", type=Path, help="output mp4 (default: RUN_DIR/edits/EDIT_SCENES_STEP.mp4)")
    add_quick_render_args(common)
    c = sub.add_parser("compose", parents=[common], help="static part of one scene, moving part of another")
    c.add_argument("--static-scene", required=True, help="scene (name or index) giving the static part and cameras")
    c.add_argument("--dynamic-scene", required=True, help="scene (name or index) giving the moving part")
    r = sub.add_parser("remove-dynamic", parents=[common], help="the scene without its moving part")
    r.add_argument("--scene", required=True, help="scene name or index")
    t = sub.add_parser("retime", parents=[common], help="slow motion (--speed) or frozen motion (--freeze)")
    t.add_argument("--scene", required=True, help="scene name or index")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--speed", type=float, help="playback speed: 0.25 = 4x slow motion with in-between times")
    g.add_argument("--freeze", type=float, help="frame index (may be fractional) at which the motion stops")
    return p


def spec_from_args(a: argparse.Namespace, names: list[str]) -> EditSpec:
    """The parsed command line → the :class:`EditSpec` of a run whose scenes are ``names``."""
    if a.edit == "compose":
        spec = EditSpec("compose", scene_index(names, a.static_scene), scene_index(names, a.dynamic_scene))
    elif a.edit == "remove-dynamic":
        spec = EditSpec("remove-dynamic", scene_index(names, a.scene), None)
    else:
        b = scene_index(names, a.scene)
        spec = EditSpec("retime", b, b, speed=1.0 if a.speed is None else a.speed, freeze=a.freeze)
    spec.camera, spec.view = a.camera, a.view
    return spec


def main(argv: list[str] | None = None) -> int:
    from mononerf.eval.cli import apply_quick_render_args
    from mononerf.eval.video import load_run

    a = build_parser().parse_args(argv)
    try:
        pipeline, step = load_run(a.run_dir, a.device, a.checkpoint)
        apply_quick_render_args(pipeline, a)
        names = pipeline.data.names
        spec = spec_from_args(a, names)
        out = a.out or pipeline.run_dir / "edits" / f"{spec.slug(names)}_{spec.camera}_{step:06d}.mp4"
        path = edit_video(pipeline, spec, out, downscale=a.downscale, fps=a.fps, progress=True)
    except (MonoNeRFError, OSError) as exc:  # one line, exit status 2
        return report(exc)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
