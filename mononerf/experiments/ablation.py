"""``python -m mononerf.experiments.ablation``: what each lever of the training recipe does (docs/training.md).

Trains the static stage of a synthetic config once, then the dynamic stage from it once per variant (the released
settings, each lever alone, the recipe, the recipe with one lever swapped or added), renders a multi-view dump of
each at the end and evaluates it on the scenes' ``multiview_GT/`` and ``multiview_masks/``. Prints one markdown
row per variant: the blending of the dynamic and static rays during training, the step-1 / step-0 ratio of the
scene-flow smoothness loss, and the evaluation's ``dpsnr``, ``dpsnr_s``, ``dpsnr_d``, ``blend_in``, ``blend_out``;
writes ``ablation.json`` beside the runs.

    python -m mononerf.experiments.ablation [--conf CONF] [--steps 150] [--grid 3] [--downscale 2] [--variants a,b]
        [--out logs/ablation] [--data data] [--device auto] [--set KEY=VALUE ...]

``--set`` applies to every run (the static one and each variant), e.g. a smaller network for a quick look.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


RECIPE_CONF = Path(__file__).resolve().parents[2] / "mononerf_conf/exp/synthetic/recipe.conf"
STD = "model.encoder.standardize_features"
WARM = "train.dynamic_lrate_warmup"
MASK = "train.mask_loss_lambda"
GLOBAL = "train.lrate_scale_global_code"

# name -> (overrides on top of the released settings, one line of what it is)
VARIANTS: dict[str, tuple[dict, str]] = {
    "released": ({}, "the original's settings"),
    "warmup": ({WARM: 50}, "warm-up alone"),
    "standardize": ({STD: True}, "standardised features alone"),
    "warmup+standardize": ({WARM: 50, STD: True}, "warm-up + standardised features"),
    "warmup+mask": ({WARM: 50, MASK: 0.5}, "warm-up + mask loss 0.5"),
    "standardize+mask": ({STD: True, MASK: 0.5}, "standardised features + mask loss 0.5"),
    "standardize+mask+globalcode": ({STD: True, MASK: 0.5, GLOBAL: 0.01},
                                    "standardised features + mask loss 0.5 + the global-code MLP at 0.01x the rate"),
    "recipe": ({STD: True, MASK: 0.5, GLOBAL: 0.01}, "the recipe (recipe.conf; the row above)"),
    "warmup+standardize+mask": ({WARM: 50, STD: True, MASK: 0.5},
                                "warm-up + standardised features + mask loss 0.5 (the recipe with the warm-up "
                                "instead of the global-code rate)"),
    "recipe+blending_warmup": ({STD: True, MASK: 0.5, GLOBAL: 0.01, "train.blending_warmup": 50},
                               "the recipe + 50 steps without the blending terms first"),
}


def recipe_values() -> dict:
    """The recipe: the keys and values of ``mononerf_conf/exp/synthetic/recipe.conf``."""
    from mononerf.config import read_hocon

    values, _, _ = read_hocon(str(RECIPE_CONF))
    return values


def recipe_defaults() -> dict:
    """The recipe's keys at their defaults: the released settings, for a conf that includes ``recipe.conf``."""
    from mononerf.config.schema import KEYS

    return {k: KEYS[k].default for k in recipe_values()}


def set_items(overrides: dict) -> list[str]:
    """``{key: value}`` as ``KEY=VALUE`` items for ``--set`` / ``parse_config_file`` (values as JSON)."""
    return [f"{k}={json.dumps(v)}" for k, v in overrides.items()]


def run_variant(conf: str, name: str, overrides: dict, base: Path, pretrained: Path, steps: int, grid: int,
                downscale: int, data: str, device: str, extra: list[str] = ()) -> dict:
    """The dynamic stage of one variant from ``pretrained``, then its multi-view dump and evaluation."""
    import torch

    from mononerf.config import parse_config_file
    from mononerf.eval import renders
    from mononerf.eval.evaluate import evaluate_run
    from mononerf.train.trainer import Trainer

    sets = {**recipe_defaults(), **overrides, "info.basedir": f"{base}/", "info.expname": name,
            "info.ft_path_S": str(pretrained), "train.N_iters": steps, "train.i_log": 1, "train.i_weights": 0,
            "train.no_reload": True, "run.device": device}
    cfg = parse_config_file(conf, list(extra) + set_items(sets))
    logs: list[dict] = []
    keep = ("blend_dynamic", "blend_static", "sf_smooth_loss", "mask_loss", "psnr", "psnr_d")
    t0 = time.perf_counter()
    trainer = Trainer(cfg, progress=False, renders=renders, callbacks=[
        lambda tr, stage, i, lg: stage == "dynamic" and logs.append({k: float(lg[k]) for k in keep if k in lg})])
    trainer.fit()
    seconds = time.perf_counter() - t0
    folder = trainer.run_dir / "multiview_ablation" / f"step_{steps - 1:06d}"
    with torch.inference_mode():
        renders.testset_all(trainer.pipeline, steps - 1, grid=grid, downscale=downscale, folder=folder)
    (result,) = evaluate_run(folder, data, use_lpips=False, verbose=False)
    return {"name": name, "overrides": overrides, "train_seconds": seconds, "steps": logs,
            "scores": result["scores"], "scenes": {n: {k: s[k] for k in result["scores"]}
                                                   for n, s in result["scenes"].items()}}


def _f(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    """Markdown: one row per variant (training-time blending at the last step, spike ratio, evaluation scores)."""
    head = ("| variant | blend dyn / static rays, last step | sf_smooth step 1 / step 0 | dPSNR | dPSNR_s | dPSNR_d "
            "| blend_in | blend_out |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        s, last = r["scores"], r["steps"][-1]
        spike = r["steps"][1]["sf_smooth_loss"] / r["steps"][0]["sf_smooth_loss"] if len(r["steps"]) > 1 else None
        lines.append(f"| {r['name']} | {last['blend_dynamic']:.3g} / {last['blend_static']:.3g} | {_f(spike, '.3g')} "
                     f"| {_f(s['dpsnr'], '.2f')} | {_f(s['dpsnr_s'], '.2f')} | {_f(s['dpsnr_d'], '.2f')} "
                     f"| {_f(s['blend_in'], '.3f')} | {_f(s['blend_out'], '.3f')} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m mononerf.experiments.ablation: the command is in mononerf/experiments/cli.py
    from mononerf.experiments.cli import ablation_main

    sys.exit(ablation_main())
