"""CLI of the novel-view evaluation (method.md §6.1): ``python -m mononerf.eval RUN_DIR_OR_STEP_DIR [--data data]``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mononerf.errors import MonoNeRFError, report
from mononerf.eval.protocols import PROTOCOL_NAMES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mononerf.eval",
                                description="PSNR / SSIM / LPIPS of the multi-view dumps against multiview_GT.")
    p.add_argument("path", help="a run dir (holding multiview/step*) or one step dir")
    p.add_argument("--data", default="data", help="folder holding the scene folders (default: data)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--weights-dir", default="checkpoints", help="folder with alexnet-owt-7be5be79.pth")
    p.add_argument("--rgb", action="store_true", help="feed LPIPS RGB images (the original fed cv2's BGR)")
    p.add_argument("--evaldir", default="multiview", help="sub-folder of the run dir with the step dirs")
    p.add_argument("--protocol", choices=PROTOCOL_NAMES, default="mononerf",
                   help="mononerf: every camera at every time (the released evaluation.py, default); dynamicnerf: "
                        "camera 0 at every time (DynamicNeRF's evaluation.py, the literature's tables); dycheck: "
                        "the validation cameras of iPhone / Nerfies scenes, mPSNR / mSSIM / mLPIPS over their "
                        "co-visibility masks; docs/evaluation.md")
    p.add_argument("--picture", type=Path, metavar="PNG", help="also write a comparison picture of a few views per "
                   "scene (GT | blended | static | dynamic | blending | mask; dycheck: GT | render | blending | "
                   "co-visibility | error) of the newest step dir")
    p.add_argument("--views", type=int, default=3, help="views per scene in --picture (default 3)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mononerf.eval.evaluate import evaluate_run

    warnings.simplefilter("always")
    warnings.formatwarning = lambda msg, *a, **k: f"warning: {msg}\n"
    try:
        results = evaluate_run(args.path, args.data, use_lpips=not args.no_lpips, weights_dir=args.weights_dir,
                               bgr_quirk=not args.rgb, evaldir=args.evaldir, protocol=args.protocol)
        if args.picture is not None and args.protocol == "dycheck":
            from mononerf.eval.dycheck import write_picture as dycheck_picture

            print(f"wrote {dycheck_picture(results[-1], args.data, args.picture, args.views)}")
        elif args.picture is not None:
            from mononerf.eval.pictures import write_picture

            print(f"wrote {write_picture(Path(results[-1]['step_dir']), args.data, args.picture, args.views)}")
    except (MonoNeRFError, OSError) as exc:
        return report(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
