"""The drivers' commands: ``python -m mononerf.experiments`` (the paper's claims, :mod:`mononerf.experiments.claims`)
and ``python -m mononerf.experiments.ablation`` (the training recipe's levers, :mod:`mononerf.experiments.ablation`)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from mononerf.errors import MonoNeRFError, report
from mononerf.eval.protocols import PROTOCOLS


def ablation_main(argv: list[str] | None = None) -> int:
    from mononerf.experiments import ablation

    p = argparse.ArgumentParser(prog="python -m mononerf.experiments.ablation", description=ablation.__doc__,
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
    from mononerf.experiments import claims as experiments

    p = argparse.ArgumentParser(prog="python -m mononerf.experiments", description=experiments.__doc__,
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
    from mononerf.experiments import claims as experiments

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
                 command=" ".join(["python -m mononerf.experiments", *map(shlex.quote, argv)]))
    if s.grid < 1 or s.downscale < 1:
        raise MonoNeRFError("--grid and --downscale must be at least 1")
    return s


def experiments_main(argv: list[str] | None = None) -> int:
    from mononerf.experiments import claims as experiments

    argv = sys.argv[1:] if argv is None else list(argv)
    a = experiments_parser().parse_args(argv)
    try:
        experiments.run_all(experiments_settings(a, argv))
    except (MonoNeRFError, OSError) as exc:
        return report(exc)
    return 0
