"""The report of ``python -m mononerf.experiments``: docs/results.md with its tables, plot and the machine and
commit it was measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mononerf.experiments.claims import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFS = {"multiscene": "mononerf_conf/exp/synthetic/multiscene.conf",
         "frames": "mononerf_conf/exp/synthetic/unseen_frames.conf",
         "scene": "mononerf_conf/exp/synthetic/adaptation.conf"}
# the score columns of every table: (key of evaluate's scores, header, format)
COLUMNS = (("psnr", "PSNR", ".2f"), ("ssim", "SSIM", ".3f"), ("lpips", "LPIPS", ".3f"), ("dpsnr", "dPSNR", ".2f"),
           ("dssim", "dSSIM", ".3f"), ("dpsnr_s", "dPSNR_s", ".2f"), ("dpsnr_d", "dPSNR_d", ".2f"),
           ("blend_in", "blend_in", ".3f"), ("blend_out", "blend_out", ".3f"))


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = "no GPU"
    if torch.cuda.is_available():
        dev = torch.cuda.get_device_name(0)
    return f"{torch.get_num_threads()} threads of {cpu} ({os.cpu_count()} CPUs), {dev}, PyTorch {torch.__version__}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _f(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[dict], first: str = "run") -> str:
    head = f"| {first} | steps (static + dynamic) | " + " | ".join(h for _, h, _ in COLUMNS) + " | train | render |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 4)]
    for r in rows:
        vals = " | ".join(_f(r.get(k), spec) for k, _, spec in COLUMNS)
        lines.append(f"| {r['label']} | {r['steps']} | {vals} | {_f(r.get('train_s'), '.0f')} s "
                     f"| {_f(r.get('render_s'), '.0f')} s |")
    return "\n".join(lines)


def plot(curves: dict, zero: dict, untrained: dict, path: Path) -> Path:
    """PSNR (full image and moving region) against steps, adapted vs scratch, zero-shot and untrained as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    for ax, key, title in ((axes[0], "psnr", "full image PSNR"), (axes[1], "dpsnr", "moving region PSNR (dPSNR)")):
        for arm, style in (("adapted", "o-"), ("scratch", "s--")):
            pts = [(n, sc.get(key)) for n, sc in curves[arm] if sc.get(key) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{arm}")
        for label, sc, style in (("zero-shot", zero, ":"), ("untrained", untrained, "-.")):
            if sc.get(key) is not None:
                ax.axhline(sc[key], linestyle=style, color="grey", label=label)
        ax.set_xlabel("steps per stage (N static + N dynamic)")
        ax.set_ylabel("dB")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(s: Settings, results: dict, total_s: float) -> Path:
    import cv2

    from mononerf.eval.pictures import write_picture

    path = Path(s.report)
    pics = path.parent / "results"
    pics.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(pics, path.parent)
    # pictures of another report (e.g. --report docs/results-multisize.md) are named after it: none overwrites another's
    tag = "" if path.stem == "results" else f"{path.stem}_"
    samples = s.n_samples or "the run's train.N_samples (16)"
    lines = [
        "# Measured results: the paper's claims on the synthetic scenes",
        "",
        "Written by `./scripts/experiments.sh` (`python -m mononerf.experiments`); every number below comes from "
        "the run that wrote this file.",
        "",
        f"- command: `{s.command}`",
        f"- commit: {results['commit']}",
        f"- machine: {results['machine']}",
        f"- total wall time: {total_s / 60:.1f} min{' (--quick: a smoke run, the numbers mean nothing)' if s.quick else ''}",
        f"- render settings of every row: a multi-view dump of {s.grid} evenly spaced times x the same {s.grid} "
        f"cameras (unseen frames: {s.frames_grid} x {s.frames_grid}) at 1/{s.downscale} of the training size, "
        f"{samples} samples per ray, scored against `multiview_GT/` and `multiview_masks/`",
        "- scenes: the synthetic dynamic scenes of `python -m mononerf.data.synthetic` (seed 0), random encoder "
        "weights (no SlowOnly / ResNet18 checkpoints here): the numbers say whether the method learns and "
        "generalises, not how it compares with the paper's.",
        "",
        "Columns: `PSNR` / `SSIM` / `LPIPS` of the blended render over the full image (LPIPS n/a without the AlexNet "
        "file in `checkpoints/`); `dPSNR` / `dSSIM` inside the moving region (the motion mask); `dPSNR_s` / `dPSNR_d`: "
        "the static-only and the dynamic-only render inside the moving region; `blend_in` / `blend_out`: the mean "
        "blending weight of the dynamic branch inside / outside it; `train` / `render`: wall time of the training and "
        "of the scoring render.",
        "",
    ]
    if "multiscene" in results:
        r = results["multiscene"]
        pic = write_picture(Path(r["step_dir"]), s.data, pics / f"{tag}multiscene_grid.png", views=2)
        sizes = r.get("sizes") or {}
        scenes = " + ".join(f"{n} ({sizes[n]})" if n in sizes else n for n in s.train_scenes)
        per_step = f"; {r['seconds_per_step']:.2f} s per step (both stages)" if r.get("seconds_per_step") else ""
        lines += ["## (a) One model, several videos: multi-scene training", "",
                  f"`{CONFS['multiscene']}` on {scenes}, one model for all{per_step}.", "",
                  "Protocol `mononerf` (the released evaluation.py's views: the grid's cameras at the grid's times):",
                  "", table(r["rows"], "scene"), ""]
        if "dynamicnerf" in r:
            lines += ["Protocol `dynamicnerf` (DynamicNeRF's evaluation.py, the literature's tables: camera 0 at every "
                      f"time, at 1/{s.downscale} of the training size, the same metric calls; docs/evaluation.md):", "",
                      table(r["dynamicnerf"]["rows"], "scene"), ""]
        lines += [f"![multi-scene]({rel}/{pic.name})", ""]
    if "frames" in results:
        r = results["frames"]
        pic = write_picture(Path(r["step_dir"]), s.data, pics / f"{tag}unseen_frames_grid.png", views=3)
        lines += ["## (b) Unseen frames", "",
                  f"`{CONFS['frames']}` on {s.frames_scene}: static pretraining on every frame, the dynamic stage on "
                  f"frames 0..{r['seen'] - 1} of {r['num_frames']} only; scored on the held-out times and on the seen "
                  "ones (every camera of the grid at each).", "",
                  table(r["rows"], "times"), "", f"![unseen frames]({rel}/{pic.name})", ""]
        seen, held = r["rows"][0], r["rows"][1]
        if seen.get("dpsnr") is not None and held.get("dpsnr") is not None:
            lines += [f"Moving region, held out vs seen: dPSNR {held['dpsnr']:.2f} vs {seen['dpsnr']:.2f} dB "
                      f"({held['dpsnr'] - seen['dpsnr']:+.2f} dB), blend_in {_f(held['blend_in'], '.3f')} vs "
                      f"{_f(seen['blend_in'], '.3f')}.", ""]
    if "scene" in results:
        r = results["scene"]
        png = plot(r["curves"], r["zero_shot"], r["untrained"], pics / f"{tag}adaptation_vs_scratch.png")
        lines += ["## (c) Unseen scene: zero-shot, adapted from the multi-scene model, and from scratch", "",
                  f"`{CONFS['scene']}` on {s.unseen_scene} (never seen by the multi-scene model). Adapted: "
                  "`--ft_path` = the multi-scene checkpoint of (a), then N static + N dynamic steps "
                  "(`--fast_render_iter N`); scratch: the same config and steps from random weights.", "",
                  table(r["rows"]), "", f"![PSNR against steps]({rel}/{png.name})", ""]
        lines += claims(r)
        for key in ("zero-shot", f"adapted {max(s.steps)}", f"scratch {max(s.steps)}"):
            if key in r["step_dirs"]:
                pic = write_picture(Path(r["step_dirs"][key]), s.data,
                                    pics / f"{tag}unseen_scene_{key.replace(' ', '_')}_grid.png", views=2)
                lines += [f"{key}:", "", f"![{key}]({rel}/{pic.name})", ""]
    if "edits" in results:
        r = results["edits"]
        lines += ["## (d) Edits of the multi-scene run", "",
                  f"`python -m mononerf.edit` on the run of (a), at 1/{s.edit_downscale} size, {s.edit_samples} "
                  "samples per ray; each row of the picture is four frames of one edit (first to last).", "",
                  "| edit | frames | render | largest blending weight | warning |", "|---|---|---|---|---|"]
        for e in r["rows"]:
            lines.append(f"| {e['edit']} | {e['frames']} | {e['seconds']:.0f} s | {e['blend_peak']:.3f} "
                         f"| {e['warning'] or '—'} |")
        if r["strip"] is not None:
            cv2.imwrite(str(pics / f"{tag}edits.png"), r["strip"][..., ::-1])
            lines += ["", f"![edits]({rel}/{tag}edits.png)"]
        lines.append("")
    if (path.parent / "results-multisize.md").is_file() and path.name != "results-multisize.md":
        lines += ["Three scenes of two sizes and lengths in one model, under both protocols: "
                  "[results-multisize.md](results-multisize.md).", ""]
    lines += ["The training recipe's first measurements are in [recipe-results.md](recipe-results.md); the "
              "recipe and its ablation in [training.md](training.md); what these numbers say, read by hand, in "
              "[results-notes.md](results-notes.md).", ""]
    path.write_text("\n".join(lines))
    return path


def claims(r: dict) -> list[str]:
    """The unseen-scene claims as sentences from the numbers: adapted vs scratch at each step count, zero-shot vs
    untrained."""
    out = []
    for (n, a), (_, b) in zip(r["curves"]["adapted"], r["curves"]["scratch"]):
        if a.get("psnr") is None or b.get("psnr") is None:
            continue
        d = (a.get("dpsnr") or 0.0) - (b.get("dpsnr") or 0.0)
        out.append(f"- {n} + {n} steps: adapted {a['psnr']:.2f} dB vs scratch {b['psnr']:.2f} dB full image "
                   f"({a['psnr'] - b['psnr']:+.2f}), moving region {d:+.2f} dB.")
    z, u = r["zero_shot"], r["untrained"]
    if z.get("psnr") is not None and u.get("psnr") is not None:
        out.append(f"- zero-shot {z['psnr']:.2f} dB vs untrained {u['psnr']:.2f} dB full image "
                   f"({z['psnr'] - u['psnr']:+.2f}), moving region {_f(z.get('dpsnr'), '.2f')} vs "
                   f"{_f(u.get('dpsnr'), '.2f')} dB.")
    return out + [""] if out else []


# ------------------------------------------------------------------------------------------------ CLI
