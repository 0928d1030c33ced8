"""The data commands: ``python -m mononerf.data DIR [DIR ...]`` checks scenes (:mod:`mononerf.data.check`) and
``python -m mononerf.data.synthetic --out DIR`` writes a synthetic scene (:mod:`mononerf.data.synthetic`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mononerf.data import check, synthetic
from mononerf.data.check import check_dynamic_sampling, format_summary, scene_summary, scene_strip
from mononerf.data.formats import AUTO_FORMAT, SCENE_FORMATS, read_scenes
from mononerf.data.synthetic import PRESETS, generate_scene, parse_size
from mononerf.data.synthetic_formats import FORMATS
from mononerf.errors import MonoNeRFError, report


def check_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mononerf.data", description=check.__doc__)
    parser.add_argument("scenes", nargs="+", help="scene folders (LLFF, Nerfies or iPhone layout; docs/datasets.md)")
    parser.add_argument("--format", default=AUTO_FORMAT, choices=(AUTO_FORMAT,) + tuple(SCENE_FORMATS),
                        help="the folders' layout (default: each folder's own, from its files)")
    parser.add_argument("--factor", type=int, default=2, help="read images_<factor>/ (default 2, as the original)")
    parser.add_argument("--rays", type=int, default=512, help="rays per scene per step to check against (default 512)")
    parser.add_argument("--picture", default=None, help="write a strip per scene: frame | disparity | flow | motion "
                                                        "mask (FILE, or FILE_<scene>.png for several scenes)")
    args = parser.parse_args(argv)
    failed = 0
    for d in args.scenes:
        try:
            (scene,) = read_scenes([Path(d)], args.format, factor=args.factor)
        except MonoNeRFError as exc:
            print(f"FAIL {d}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print("OK   " + format_summary(scene_summary(scene)))
        for w in check_dynamic_sampling(scene, args.rays):
            print(f"     warning: {w}")
        if args.picture:
            import cv2

            pic = Path(args.picture)
            if len(args.scenes) > 1:
                pic = pic.with_name(f"{pic.stem}_{scene.name}{pic.suffix or '.png'}")
            if not cv2.imwrite(str(pic), scene_strip(scene)[..., ::-1]):
                print(f"FAIL {d}: could not write the picture {pic}", file=sys.stderr)
                failed += 1
                continue
            print(f"     picture: {pic}")
    if failed:
        print(f"{failed} of {len(args.scenes)} scene(s) failed the check", file=sys.stderr)
    return 1 if failed else 0



def synthetic_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mononerf.data.synthetic",
                                     description=synthetic.__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output scene folder, e.g. data/synth_a")
    parser.add_argument("--preset", default="a", choices=list(PRESETS), help="scene layout and motion (default a)")
    parser.add_argument("--frames", type=int, default=12, help="number of frames (default 12)")
    parser.add_argument("--size", default="320x180", help="full-resolution WxH, both even (default 320x180)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", default="llff", choices=FORMATS,
                        help="folder layout: llff (the original's, default), nerfies (Nerfies / HyperNeRF) or iphone "
                             "(DyCheck, with LiDAR-style depth and co-visibility masks); docs/datasets.md")
    parser.add_argument("--principal-shift", type=int, default=0, metavar="PX",
                        help="nerfies / iphone: the training camera's principal point PX pixels (of the 2x frames) "
                             "right of the centre, as a real phone's is off it")
    args = parser.parse_args(argv)
    try:
        info = generate_scene(args.out, preset=args.preset, frames=args.frames, size=parse_size(args.size),
                              seed=args.seed, progress=sys.stderr.isatty(), fmt=args.format,
                              principal_shift=args.principal_shift)
    except (MonoNeRFError, OSError) as err:
        return report(err)
    (w, h), (w2, h2) = info["size"], info["size_half"]
    print(f"wrote {info['out_dir']} ({info['format']} layout): preset {info['preset']}, seed {info['seed']}, "
          f"{info['frames']} frames, "
          f"images {w}x{h}, images_2 {w2}x{h2}, {info['seconds']:.1f} s")
    return 0

