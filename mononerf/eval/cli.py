"""The evaluation commands other than ``python -m mononerf.eval`` (scores, :mod:`mononerf.eval.__main__`):
``python -m mononerf.eval.video`` (renders), ``python -m mononerf.eval.training_views`` (the training cameras'
scores), ``python -m mononerf.eval.ablation`` and ``python -m mononerf.eval.experiments`` (drivers). Each library
module keeps its ``python -m`` name and hands over to its function here; the modules are imported when their command
runs."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from mononerf.errors import MonoNeRFError, report
from mononerf.eval.protocols import PROTOCOL_NAMES, PROTOCOLS


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
    from mononerf.eval.visuals import parse_outputs

    p = argparse.ArgumentParser(prog="python -m mononerf.eval.video", description=video.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run folder ({basedir}/{W}gpus{expname}) with config.conf and NNNNNN.tar")
    p.add_argument("--mode", choices=video.MODES, default="spiral")
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


def ablation_main(argv: list[str] | None = None) -> int:
    from mononerf.eval import ablation

    p = argparse.ArgumentParser(prog="python -m mononerf.eval.ablation", description=ablation.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conf", default="mononerf_conf/exp/synthetic/multiscene.conf")
    p.add_argument("--steps", type=int, default=150, help="dynamic steps per variant")
    p.add_argument("--grid", type=int, default=3, help="multi-view dump: K evenly spaced times x cameras")
    p.add_argument("--downscale", type=int, default=2)
    p.add_argument("--variants", default=",".join(ablation.VARIANTS),
                   help=f"comma list of {', '.join(ablation.VARIANTS)}")
    p.add_argument("--out", default="logs/ablation", help="folder of the runs")
    p.add_argument("--data", default="data", help="folder holding the scene folders (for the evaluation)")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    a = p.parse_args(argv)
    names = [n.strip() for n in a.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in ablation.VARIANTS]
    if unknown or a.steps < 2:
        p.error(f"unknown variant(s) {unknown}" if unknown else "--steps must be at least 2")
    try:
        from mononerf.config import parse_config_file
        from mononerf.eval import renders
        from mononerf.train.trainer import Trainer

        base = Path(a.out)
        defaults = {**ablation.recipe_defaults(), "info.basedir": f"{base}/"}
        cfg = parse_config_file(a.conf, a.set + ablation.set_items({**defaults, "info.expname": "static",
                                                                    "train.N_iters": 0, "run.device": a.device}))
        static = Trainer(cfg, progress=True, renders=renders)
        pretrained = static.run_dir / "Pretrained_S.tar"
        if not pretrained.is_file():
            print(f"[ablation] static pretraining once ({cfg.train.N_static_iters} steps) -> {pretrained}", flush=True)
            static.fit()
        rows = []
        for name in names:
            print(f"[ablation] {name}: {ablation.VARIANTS[name][1]}", flush=True)
            rows.append(ablation.run_variant(a.conf, name, ablation.VARIANTS[name][0], base, pretrained, a.steps,
                                             a.grid, a.downscale, a.data, a.device, a.set))
            print(ablation.table(rows[-1:]).splitlines()[-1], flush=True)
        (base / "ablation.json").write_text(json.dumps(rows, indent=1))
        print(ablation.table(rows))
    except (MonoNeRFError, OSError) as exc:
        return report(exc)
    return 0


def experiments_parser() -> argparse.ArgumentParser:
    from mononerf.eval import experiments

    p = argparse.ArgumentParser(prog="python -m mononerf.eval.experiments", description=experiments.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run: short schedules, 2 x 2 grids, 1/4 size")
    p.add_argument("--device", default="auto")
    p.add_argument("--data", type=Path, default=Path("data"), help="folder holding the synthetic scenes")
    p.add_argument("--out", type=Path, help="folder of the runs (default logs/experiments, --quick: "
                   "logs/experiments_quick)")
    p.add_argument("--report", help="the markdown report (default docs/results.md; --quick: OUT/results.md; "
                   "'none' for no report)")
    p.add_argument("--steps", help="adaptation / scratch step counts per stage (default 50,100,300; --quick 2,4)")
    p.add_argument("--grid", type=int, help="scoring dump: K times x K cameras (default 3; --quick 2)")
    p.add_argument("--downscale", type=int, help="scoring renders at 1/F of the training size (default 2; --quick 4)")
    p.add_argument("--n-samples", type=int, help="samples per ray of the scoring renders (default: the run's)")
    p.add_argument("--only", default=",".join(experiments.EXPERIMENTS),
                   help=f"comma list of {', '.join(experiments.EXPERIMENTS)}")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (it needs checkpoints/alexnet-*.pth)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    p.add_argument("--scenes", default="synthetic_a,synthetic_b,synthetic_c",
                   help="the training scenes (two or more, of any sizes and lengths; the second is the unseen-frames "
                        "scene) and last the unseen one (folder names under --data)")
    p.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default="both",
                   help="the multi-scene table's protocol(s) (docs/evaluation.md; default both); the other "
                        "experiments score under mononerf's grid")
    return p


def experiments_settings(a: argparse.Namespace, argv: list[str]):
    """The driver's experiments.Settings of parsed arguments (``argv`` recorded as the command)."""
    from mononerf.eval import experiments

    names = [n.strip() for n in a.scenes.split(",") if n.strip()]
    if len(names) < 3:
        raise MonoNeRFError(f"--scenes {a.scenes}: give two or more training scenes and the unseen one")
    only = tuple(n.strip() for n in a.only.split(",") if n.strip())
    unknown = [n for n in only if n not in experiments.EXPERIMENTS]
    if unknown:
        raise MonoNeRFError(f"--only: unknown experiment(s) {unknown}; expected {', '.join(experiments.EXPERIMENTS)}")
    q = a.quick
    out = a.out or Path("logs/experiments_quick" if q else "logs/experiments")
    rep = a.report or (str(out / "results.md") if q else "docs/results.md")
    steps = tuple(int(v) for v in (a.steps or ("2,4" if q else "50,100,300")).split(","))
    if any(n < 1 for n in steps):
        raise MonoNeRFError(f"--steps {a.steps}: every step count must be at least 1")
    s = experiments.Settings(data=a.data, out=out, report=None if rep == "none" else Path(rep), device=a.device,
                 train_scenes=tuple(names[:-1]), frames_scene=names[1], unseen_scene=names[-1], steps=steps,
                 grid=a.grid or (2 if q else 3), frames_grid=2 if q else 4, downscale=a.downscale or (4 if q else 2),
                 n_samples=a.n_samples or (8 if q else None), lpips=not a.no_lpips, only=only, extra=tuple(a.set),
                 sizes=experiments.QUICK if q else {}, edit_downscale=4 if q else 2, quick=q,
                 protocols=tuple(PROTOCOLS) if a.protocol == "both" else (a.protocol,),
                 command=" ".join(["python -m mononerf.eval.experiments", *map(shlex.quote, argv)]))
    if s.grid < 1 or s.downscale < 1:
        raise MonoNeRFError("--grid and --downscale must be at least 1")
    return s


def experiments_main(argv: list[str] | None = None) -> int:
    from mononerf.eval import experiments

    argv = sys.argv[1:] if argv is None else list(argv)
    a = experiments_parser().parse_args(argv)
    try:
        experiments.run_all(experiments_settings(a, argv))
    except (MonoNeRFError, OSError) as exc:
        return report(exc)
    return 0
