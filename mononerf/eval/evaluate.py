"""The MonoNeRF novel-view evaluation (spec §6.1) over the multi-view dumps written by ``renders.testset_all``.

For each step dir and each scene: time t in 1..T × pose p in 1..T, GT ``{scene}/multiview_GT/{t:08d}/cam{p:02d}.jpg``
(cv2, BGR) resized with ``cv2.resize`` (bilinear) to the prediction size (= the original's (w//2, h//2)), prediction
``{step_dir}/{t:08d}/imgs/{p-1:03d}_{b:02d}.png``. Scenes are matched to batch index b by ``scenes.json`` (fix of
spec §8.23); without it the original's fixed order is used with a warning. Dynamic-region scores need per-view masks
``{scene}/multiview_masks/{t:08d}/cam{p:02d}.png`` (or ``mv_masks/``; > 0 = dynamic); they are None when absent.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Mapping

import cv2
import numpy as np

from mononerf.errors import MissingWeightsError, MonoNeRFError, SceneFormatError
from mononerf.eval.metrics import LPIPSMetric, masked_psnr, masked_ssim, psnr, ssim

ORIGINAL_SCENE_ORDER = ("Balloon2", "Balloon1")  # the original's hard-coded `sequences` (spec §6.1)
MASK_DIRS = ("multiview_masks", "mv_masks")
METRICS = ("psnr", "ssim", "lpips")


def find_step_dirs(path: str | os.PathLike, evaldir: str = "multiview") -> list[Path]:
    """Step dirs under ``path``: the path itself if it holds ``00000001/imgs``, else ``step*`` dirs in it or in
    ``path/evaldir`` (a run dir). Raises MonoNeRFError when none are found."""
    path = Path(path)
    if (path / f"{1:08d}" / "imgs").is_dir():
        return [path]
    for root in (path / evaldir, path):
        steps = sorted(p for p in root.glob("step*") if (p / f"{1:08d}" / "imgs").is_dir()) if root.is_dir() else []
        if steps:
            return steps
    raise MonoNeRFError(f"no multi-view step dirs (step*/00000001/imgs) in {path} or {path / evaldir}")


def scene_batch_index(step_dir: Path) -> dict[str, int]:
    """Scene name → batch index b, from ``step_dir/scenes.json`` (``{"00": "name"}``; ``{"name": 0}`` also read)."""
    index_file = step_dir / "scenes.json"
    if not index_file.is_file():
        warnings.warn(f"{index_file} missing: assuming the original's scene order {list(ORIGINAL_SCENE_ORDER)}")
        return {name: b for b, name in enumerate(ORIGINAL_SCENE_ORDER)}
    try:
        raw = json.loads(index_file.read_text())
        if all(isinstance(v, str) for v in raw.values()):
            return {name: int(b) for b, name in raw.items()}
        return {name: int(b) for name, b in raw.items()}
    except (ValueError, AttributeError) as exc:
        raise SceneFormatError(f"{index_file}: expected a JSON object batch index → scene name ({exc})") from exc


def _scene_dirs(data: str | os.PathLike | Iterable | Mapping, names: Iterable[str]) -> dict[str, Path]:
    if isinstance(data, Mapping):
        dirs = {str(k): Path(v) for k, v in data.items()}
    elif isinstance(data, (str, os.PathLike)):
        dirs = {n: Path(data) / n for n in names}
    else:
        dirs = {Path(d).name: Path(d) for d in data}
    missing = [n for n in names if n not in dirs or not dirs[n].is_dir()]
    if missing:
        raise SceneFormatError(f"scene folder(s) not found for {missing} (looked in {data})")
    return {n: dirs[n] for n in names}


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if img is None:
        raise SceneFormatError(f"missing or unreadable image {path}")
    return img


def _read_mask(scene_dir: Path, t: int, p: int, hw: tuple[int, int]) -> np.ndarray | None:
    for sub in MASK_DIRS:
        path = scene_dir / sub / f"{t:08d}" / f"cam{p:02d}.png"
        if path.is_file():
            m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            return cv2.resize(m, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST) > 0
    return None


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def evaluate_step(step_dir: Path, data, lpips_metric: LPIPSMetric | None) -> dict:
    """Per-frame, per-scene and overall metrics of one step dir (spec §6.1); see ``evaluate_run``."""
    index = scene_batch_index(step_dir)
    dirs = _scene_dirs(data, list(index))
    times = sorted(int(p.name) for p in step_dir.iterdir() if p.name.isdigit() and (p / "imgs").is_dir())
    n = len(times)
    scenes = {}
    for name, b in index.items():
        frames = []
        resized = False
        for t in times:
            for p in range(1, n + 1):
                pred = _read(step_dir / f"{t:08d}" / "imgs" / f"{p - 1:03d}_{b:02d}.png")
                gt_full = _read(dirs[name] / "multiview_GT" / f"{t:08d}" / f"cam{p:02d}.jpg")
                h, w = gt_full.shape[:2]
                if pred.shape[:2] != (h // 2, w // 2) and not resized:  # once per scene
                    warnings.warn(f"{name}: prediction {pred.shape[:2]} is not half the GT {(h, w)}; resizing to it")
                    resized = True
                gt = cv2.resize(gt_full, (pred.shape[1], pred.shape[0]))
                row = {"time": t, "pose": p, "psnr": psnr(gt, pred), "ssim": ssim(gt, pred),
                       "lpips": lpips_metric(gt, pred) if lpips_metric else None}
                mask = _read_mask(dirs[name], t, p, pred.shape[:2])
                row["dynamic"] = None if mask is None else {
                    "psnr": masked_psnr(gt, pred, mask), "ssim": masked_ssim(gt, pred, mask),
                    "lpips": lpips_metric.masked(gt, pred, mask) if lpips_metric else None}
                frames.append(row)
        mean = {k: _mean([f[k] for f in frames]) for k in METRICS}
        dyn_rows = [f["dynamic"] for f in frames if f["dynamic"] is not None]
        dyn = {k: _mean([d[k] for d in dyn_rows]) for k in METRICS} if dyn_rows else None
        scenes[name] = {"batch_index": b, "mean": mean, "dynamic_mean": dyn, "frames": frames}
    overall = {k: _mean([s["mean"][k] for s in scenes.values()]) for k in METRICS}
    dyn_scenes = [s["dynamic_mean"] for s in scenes.values() if s["dynamic_mean"]]
    overall_dyn = {k: _mean([d[k] for d in dyn_scenes]) for k in METRICS} if dyn_scenes else None
    return {"step_dir": str(step_dir), "grid": [n, n], "scenes": scenes, "mean": overall, "dynamic_mean": overall_dyn,
            "notes": [] if overall_dyn else ["no multi-view motion masks found: dynamic-region scores not computed"]}


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(result: dict) -> str:
    """``scene  PSNR  SSIM  LPIPS`` rows (%.2f / %.4f / %.3f) plus the mean over scenes."""
    lines = [f"{result['step_dir']}", f"{'scene':<20} {'PSNR':>8} {'SSIM':>8} {'LPIPS':>7}"]
    rows = [(name, s["mean"]) for name, s in result["scenes"].items()] + [("mean", result["mean"])]
    for name, m in rows:
        lines.append(f"{name:<20} {_fmt(m['psnr'], '.2f'):>8} {_fmt(m['ssim'], '.4f'):>8} {_fmt(m['lpips'], '.3f'):>7}")
    return "\n".join(lines)


def evaluate_run(step_dir: str | os.PathLike, data_root_or_scene_dirs="data", *, use_lpips: bool = True,
                 weights_dir: str | os.PathLike = "checkpoints", bgr_quirk: bool = True, evaldir: str = "multiview",
                 write: bool = True, verbose: bool = True) -> list[dict]:
    """Evaluate every step dir found at ``step_dir`` (a step dir, or a run dir holding ``evaldir/step*``).

    Args:
        step_dir: one step dir or a run dir.
        data_root_or_scene_dirs: data root (scene = root/name), a list of scene dirs (matched by folder name) or a
            mapping name → dir.
        use_lpips: compute LPIPS; a missing AlexNet file gives a warning and LPIPS None (never 0).
        weights_dir, bgr_quirk: see ``LPIPSMetric``.
        write: write ``{step}/results.json``. verbose: print the table.
    Returns:
        one dict per step dir: ``scenes[name] = {batch_index, mean, dynamic_mean, frames}``, ``mean`` over scenes.
    Raises:
        MonoNeRFError: no step dirs; SceneFormatError: a missing GT/prediction file or scene folder.
    """
    steps = find_step_dirs(step_dir, evaldir)
    metric = None
    if use_lpips:
        try:
            metric = LPIPSMetric(weights_dir=weights_dir, bgr_quirk=bgr_quirk)
        except MissingWeightsError as exc:
            warnings.warn(f"LPIPS not computed: {exc}")
    results = []
    for step in steps:
        result = evaluate_step(step, data_root_or_scene_dirs, metric)
        result["lpips_bgr_quirk"] = bgr_quirk if metric else None
        if write:
            (step / "results.json").write_text(json.dumps(result, indent=1))
        if verbose:
            print(format_table(result))
        results.append(result)
    return results
