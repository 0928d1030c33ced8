"""``python -m mononerf.experiments``: the paper's three claims on the synthetic scenes, in one command.

(a) **multi-scene**: one model trained on several videos at once (``multiscene.conf`` on scenes a + b, or the
    ``--scenes`` given: any number, of any sizes and lengths), scored under both protocols (docs/evaluation.md);
(b) **unseen frames**: the dynamic stage sees the first frames of a video only (``unseen_frames.conf``, the
    original's ``quarter_frame_training``), scored on the held-out times and on the seen ones;
(c) **unseen scene**: scene c zero-shot (the multi-scene model, no step on c) against an untrained model, then
    fine-tuned from the multi-scene checkpoint (``adaptation.conf``, the original's ``fast_render``) against the
    same config trained from scratch, at equal step counts (``--steps``, each N static + N dynamic steps);
(d) **edits** of the multi-scene run: compose, remove-dynamic, slow motion, freeze.

Every run is scored the same way: a multi-view dump of ``--grid`` evenly spaced times x cameras at 1/``--downscale``
of the training size with the run's samples per ray (``--n-samples`` to change), against the scenes'
``multiview_GT/`` and ``multiview_masks/`` (:mod:`mononerf.eval.evaluate`: full-image PSNR / SSIM / LPIPS, the
moving region's dPSNR / dSSIM, the static-only and dynamic-only renders' dPSNR_s / dPSNR_d, the blending inside /
outside the moving region). The report (``--report``, default ``docs/results.md``) gets one table per experiment
with steps, wall times, the machine, the commit and the command, a plot of PSNR against steps (adapted vs scratch)
and comparison pictures (ground truth | blended | static | dynamic | blending | depth | mask).

Runs go to ``--out`` (default ``logs/experiments``); a finished run is reused when the command runs again (its
``experiment.json`` holds its training time), an interrupted one resumes from its newest checkpoint (the adaptation
runs, which always start from the multi-scene checkpoint, start again).

    python -m mononerf.experiments [--quick] [--device auto|cpu|cuda] [--data data] [--out DIR]
        [--report docs/results.md] [--steps 50,100,300] [--grid 3] [--downscale 2] [--n-samples K]
        [--only multiscene,frames,scene,edits] [--no-lpips] [--set KEY=VALUE ...]
        [--scenes TRAIN1,TRAIN2,...,UNSEEN] [--protocol mononerf|dynamicnerf|both]
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mononerf.errors import MonoNeRFError
from mononerf.eval.protocols import get_protocol
from mononerf.experiments.report import COLUMNS, CONFS, ROOT, commit, machine, write_report

EXPERIMENTS = ("multiscene", "frames", "scene", "edits")


@dataclass
class Settings:
    """What the experiments run on and how they are scored (see the module docstring)."""

    data: Path = Path("data")
    out: Path = Path("logs/experiments")
    report: Path | None = Path("docs/results.md")
    device: str = "auto"
    train_scenes: tuple[str, ...] = ("synthetic_a", "synthetic_b")
    frames_scene: str = "synthetic_b"
    unseen_scene: str = "synthetic_c"
    steps: tuple[int, ...] = (50, 100, 300)
    grid: int = 3
    frames_grid: int = 4
    downscale: int = 2
    n_samples: int | None = None
    lpips: bool = True
    weights_dir: str = "checkpoints"
    only: tuple[str, ...] = EXPERIMENTS
    extra: tuple[str, ...] = ()  # KEY=VALUE for every run
    sizes: dict = field(default_factory=dict)  # experiment -> KEY=VALUE items (the --quick schedule)
    edit_downscale: int = 2
    edit_samples: int | None = 8
    protocols: tuple[str, ...] = ("mononerf", "dynamicnerf")  # the multi-scene table's; the others: mononerf
    command: str = ""
    quick: bool = False


QUICK = {  # a smoke run of every code path: minutes, numbers meaningless
    "multiscene": ["train.N_static_iters=30", "train.N_iters=6"],
    "frames": ["train.N_static_iters=20", "train.N_iters=6"],
}


# ------------------------------------------------------------------------------------------------ runs


def _config(s: Settings, experiment: str, name: str, scenes: list[str], more: dict | None = None):
    from mononerf.config import parse_config_file
    from mononerf.experiments.ablation import set_items

    sets = {"info.basedir": f"{s.out}/", "info.expname": name, "run.device": s.device,
            "info.dataset_file_lists": [str(s.data / n) for n in scenes], **(more or {})}
    conf = CONFS["scene" if experiment == "scene" else experiment]
    # the --quick schedule, then the user's --set (which win over it), then the experiment's own keys
    return parse_config_file(str(ROOT / conf), s.sizes.get(experiment, []) + list(s.extra) + set_items(sets))


def train_run(cfg, label: str) -> tuple[object, float, int, int]:
    """Train (or resume, or reuse a finished) run; returns (its pipeline with the features encoded, training seconds,
    the last dynamic step, the static steps). A finished run is one whose folder holds ``experiment.json``."""
    from mononerf.eval import renders
    from mononerf.pipeline import checkpoint as ckpt
    from mononerf.train.trainer import Trainer

    trainer = Trainer(cfg, progress=True, renders=renders)
    record = trainer.run_dir / "experiment.json"
    done = json.loads(record.read_text()) if record.is_file() else None
    if done is not None and ckpt.latest_dynamic(trainer.run_dir) is not None:
        print(f"[experiments] {label}: reusing the finished run {trainer.run_dir}", flush=True)
        loaded = ckpt.load_weights(trainer.model, ckpt.latest_dynamic(trainer.run_dir))
        trainer.encode()
        return trainer.pipeline, float(done["train_seconds"]), loaded.step, trainer.schedule.n_static
    print(f"[experiments] {label}: training {trainer.run_dir} ({trainer.schedule.n_static} static + "
          f"{trainer.schedule.n_dynamic} dynamic steps)", flush=True)
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    record.write_text(json.dumps({"train_seconds": seconds, "label": label}))
    return trainer.pipeline, seconds, trainer.schedule.n_dynamic - 1, trainer.schedule.n_static


def untrained_run(cfg, checkpoint: Path | None = None):
    """The pipeline of ``cfg`` without training: random weights, or those of ``checkpoint`` (zero-shot)."""
    from mononerf.pipeline.pipeline import Pipeline

    pipeline = Pipeline(cfg)
    if checkpoint is not None:
        pipeline.load(checkpoint)
    pipeline.encode()
    return pipeline


def score(pipeline, s: Settings, folder: Path, grid: int | None = None,
          protocol: str = "mononerf") -> tuple[dict, float]:
    """The run's multi-view dump at the experiments' render settings, evaluated under ``protocol`` (``mononerf``: the
    ``grid`` times x cameras; ``dynamicnerf``: camera 0 at every time); returns (result, render seconds)."""
    import torch

    from mononerf.eval import renders
    from mononerf.eval.evaluate import evaluate_run

    t0 = time.perf_counter()
    with pipeline.using(n_samples=int(s.n_samples or pipeline.renderer.settings.n_samples)), torch.inference_mode():
        renders.testset_all(pipeline, 0, grid=(grid or s.grid) if get_protocol(protocol).every_camera else None,
                            downscale=s.downscale, folder=folder, progress=True, protocol=protocol)
    seconds = time.perf_counter() - t0
    (result,) = evaluate_run(folder, s.data, use_lpips=s.lpips, weights_dir=s.weights_dir, verbose=False,
                             protocol=protocol)
    return result, seconds


def frame_split(result: dict, scene: str, seen: int) -> dict[str, dict]:
    """A scene's scores on the times the dynamic stage saw (frame < ``seen``) and on the held-out ones."""
    from mononerf.eval.evaluate import _scores

    frames = result["scenes"][scene]["frames"]
    return {"seen": _scores([f for f in frames if f["time"] - 1 < seen]),
            "held out": _scores([f for f in frames if f["time"] - 1 >= seen])}


# ------------------------------------------------------------------------------------------------ experiments


def row(label: str, scores: dict, **extra) -> dict:
    return {"label": label, **{k: scores.get(k) for k, _, _ in COLUMNS}, **extra}


def multiscene(s: Settings, results: dict) -> object:
    cfg = _config(s, "multiscene", "multiscene", list(s.train_scenes))
    pipeline, seconds, step, n_static = train_run(cfg, "(a) multi-scene")
    result, render_s = score(pipeline, s, pipeline.run_dir / "experiments" / "multiview")
    steps = f"{n_static} + {step + 1}"
    rows = [row(name, sc, steps=steps, train_s=seconds, render_s=render_s) for name, sc in result["scenes"].items()]
    sizes = {name: f"{sc.width}x{sc.height}, {sc.num_frames} frames" for name, sc in
             zip(pipeline.data.names, pipeline.data.scenes)}
    results["multiscene"] = {"rows": rows, "step_dir": result["step_dir"], "run": str(pipeline.run_dir),
                             "sizes": sizes, "seconds_per_step": seconds / max(1, n_static + step + 1)}
    if "dynamicnerf" in s.protocols:
        res, render_s = score(pipeline, s, pipeline.run_dir / "experiments" / "multiview_dynamicnerf",
                              protocol="dynamicnerf")
        results["multiscene"]["dynamicnerf"] = {
            "rows": [row(name, sc, steps=steps, train_s=seconds, render_s=render_s)
                     for name, sc in res["scenes"].items()], "step_dir": res["step_dir"]}
    return pipeline


def unseen_frames(s: Settings, results: dict) -> None:
    cfg = _config(s, "frames", "unseen_frames", [s.frames_scene])
    pipeline, seconds, step, n_static = train_run(cfg, "(b) unseen frames")
    seen = int(cfg.model.training_frames)
    result, render_s = score(pipeline, s, pipeline.run_dir / "experiments" / "multiview", grid=s.frames_grid)
    split = frame_split(result, s.frames_scene, seen)
    times = sorted({f["time"] - 1 for f in result["scenes"][s.frames_scene]["frames"]})
    rows = [row(f"{k} (frames {', '.join(str(t) for t in times if (t < seen) == (k == 'seen'))})", v,
                steps=f"{n_static} + {step + 1}", train_s=seconds, render_s=render_s)
            for k, v in split.items()]
    results["frames"] = {"rows": rows, "step_dir": result["step_dir"], "seen": seen,
                         "num_frames": pipeline.data.num_frames, "run": str(pipeline.run_dir)}


def unseen_scene(s: Settings, results: dict, multi_checkpoint: Path) -> None:
    name = s.unseen_scene
    rows, curves = [], {"adapted": [], "scratch": []}
    base = {"info.fast_render": True}
    t0 = time.perf_counter()
    zero = untrained_run(_config(s, "scene", "zero_shot", [name], {**base, "train.fast_render_iter": 1}),
                         multi_checkpoint)
    load_s = time.perf_counter() - t0
    res, render_s = score(zero, s, s.out / "zero_shot" / "multiview")
    rows.append(row("zero-shot (multi-scene model, no step on c)", res["scenes"][name], steps="0", train_s=0.0,
                    render_s=render_s, note=f"encode + load {load_s:.0f} s"))
    results_step_dirs = {"zero-shot": res["step_dir"]}
    del zero
    untrained = untrained_run(_config(s, "scene", "untrained", [name], {**base, "train.fast_render_iter": 1}))
    res, render_s = score(untrained, s, s.out / "untrained" / "multiview")
    rows.append(row("untrained (random weights)", res["scenes"][name], steps="0", train_s=0.0, render_s=render_s))
    untrained_scores = res["scenes"][name]
    del untrained
    for n in s.steps:
        for arm, more in (("adapted", {"train.ft_path": str(multi_checkpoint)}), ("scratch", {})):
            cfg = _config(s, "scene", name, [name], {**base, "train.fast_render_iter": n,
                                                         "train.fast_render_basename": arm, **more})
            pipeline, seconds, _, _ = train_run(cfg, f"(c) {arm}, {n} + {n} steps")
            res, render_s = score(pipeline, s, pipeline.run_dir / "experiments" / "multiview")
            sc = res["scenes"][name]
            rows.append(row(f"{arm}", sc, steps=f"{n} + {n}", train_s=seconds, render_s=render_s))
            curves[arm].append((n, sc))
            results_step_dirs[f"{arm} {n}"] = res["step_dir"]
            del pipeline
    results["scene"] = {"rows": rows, "curves": curves, "untrained": untrained_scores, "step_dirs": results_step_dirs,
                        "zero_shot": rows[0]}


def edits(s: Settings, results: dict, pipeline) -> None:
    """The four edits of the multi-scene run: an mp4 each and a strip of frames of all of them."""
    import numpy as np

    from mononerf.edit.edits import EditSpec, dynamic_blend_peak, edit_frames, empty_dynamic_warning
    from mononerf.utils.images import to_uint8
    from mononerf.utils.video import write_video

    names = pipeline.data.names
    first = pipeline.for_scene(0)[0]  # scene 0's group: an edit combines scenes of one size and length
    n = first.data.num_frames
    partner = next((b for b in range(1, len(names)) if pipeline.for_scene(b)[0] is first), 0)
    specs = [EditSpec("compose", 0, partner), EditSpec("remove-dynamic", 0, None),
             EditSpec("retime", 0, 0, speed=0.5), EditSpec("retime", 0, 0, freeze=float(n // 2))]
    out_dir = Path(results["multiscene"]["run"]) / "edits"
    rows, strips = [], []
    with pipeline.using(n_samples=int(s.edit_samples or pipeline.renderer.settings.n_samples)):
        for spec in specs:
            t0 = time.perf_counter()
            frames = edit_frames(pipeline, spec, downscale=s.edit_downscale, progress=True)
            seconds = time.perf_counter() - t0
            peak = dynamic_blend_peak(pipeline, spec, frames, s.edit_downscale)
            warning = empty_dynamic_warning(pipeline, spec, peak)
            if warning:
                print(warning, file=sys.stderr)
            video = write_video(out_dir / f"{spec.slug(names)}.mp4", [to_uint8(f["rgb_map_full"]) for f in frames],
                                fps=4.0)
            picks = np.linspace(0, len(frames) - 1, 4).round().astype(int)
            strip = np.concatenate([to_uint8(frames[i]["rgb_map_full"]) for i in picks], 1)
            strips.append(np.repeat(np.repeat(strip, 2, 0), 2, 1))  # 2x (nearest): small renders stay readable
            rows.append({"edit": spec.slug(names), "frames": len(frames), "seconds": seconds, "blend_peak": peak,
                         "warning": warning, "video": str(video)})
    results["edits"] = {"rows": rows, "strip": np.concatenate(strips, 0) if strips else None}


# ------------------------------------------------------------------------------------------------ report


def run_all(s: Settings) -> dict:
    """Run the experiments of ``s.only`` and write the report; returns the results."""
    from mononerf.pipeline import checkpoint as ckpt

    for name in [*s.train_scenes, s.frames_scene, s.unseen_scene]:
        if not (s.data / name).is_dir():
            preset = name[-1] if name[-1] in "abc" else "a|b|c"
            raise MonoNeRFError(f"{s.data / name}: scene missing (make it: python -m mononerf.data.synthetic --out "
                                f"{s.data / name} --preset {preset} --seed 0 [--size WxH --frames N])")
    t0 = time.perf_counter()
    results: dict = {"commit": commit(), "machine": machine()}  # at the start: the code that ran
    pipeline = None
    if any(x in s.only for x in ("multiscene", "scene", "edits")):
        pipeline = multiscene(s, results)
    if "frames" in s.only:
        unseen_frames(s, results)
    if "scene" in s.only:
        unseen_scene(s, results, ckpt.latest_dynamic(pipeline.run_dir))
    if "edits" in s.only:
        edits(s, results, pipeline)
    total = time.perf_counter() - t0
    (s.out).mkdir(parents=True, exist_ok=True)
    saved = {k: ({kk: vv for kk, vv in v.items() if kk != "strip"} if isinstance(v, dict) else v)
             for k, v in results.items()}
    (s.out / "experiments.json").write_text(json.dumps({"total_seconds": total, **saved}, indent=1, default=str))
    if s.report is not None:
        print(f"[experiments] wrote {write_report(s, results, total)}")
    print(f"[experiments] done in {total / 60:.1f} min")
    return results


if __name__ == "__main__":  # python -m mononerf.experiments.claims: the command is in mononerf/experiments/cli.py
    from mononerf.experiments.cli import experiments_main

    sys.exit(experiments_main())
