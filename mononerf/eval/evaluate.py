"""The novel-view evaluation (docs/evaluation.md) over the multi-view dumps written by ``renders.testset_all``, under a named
protocol (:mod:`mononerf.eval.protocols`: ``mononerf``, the released one, or ``dynamicnerf``, the literature's).

For each step dir and each scene: every time t of the dump that holds the scene's renders (1..T) × every camera p
rendered at its first time (1..T for the original's full grid; fewer for a ``--grid K`` dump; camera 1 alone under
the ``dynamicnerf`` protocol), GT ``{scene}/multiview_GT/{t:08d}/cam{p:02d}.jpg``
(cv2, BGR) resized with ``cv2.resize`` (bilinear) to the prediction size (= the original's (w//2, h//2)), prediction
``{step_dir}/{t:08d}/imgs/{p-1:03d}_{b:02d}.png``. Scenes are matched to batch index b by ``scenes.json`` (fix of
method.md §8.23); without it the original's fixed order is used with a warning. Dynamic-region scores need
per-view masks ``{scene}/multiview_masks/{t:08d}/cam{p:02d}.png`` (or ``mv_masks/``; > 0 = dynamic); they are None when absent.

What each branch does (dumps of this project hold ``imgs_static/``, ``imgs_dynamic/`` and ``blend/`` beside
``imgs/``, see :mod:`mononerf.eval.renders`), scored over the moving region: ``dpsnr_s`` / ``dpsnr_d`` (PSNR of the
static-only / dynamic-only render) and ``blend_in`` / ``blend_out`` (mean blending weight inside / outside it).
Per scene (and averaged over scenes under ``scores``) the results file (``results.json``, or
``results_dynamicnerf.json`` under that protocol; with the protocol and the dump's render settings) holds
:data:`SCORE_KEYS`; a score that a dump or a scene cannot give (no masks, an original dump without the branch renders) is None.
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

from mononerf.errors import MonoNeRFError, SceneFormatError
from mononerf.eval.metrics import LPIPSMetric, lpips_or_none, masked_psnr, masked_ssim, psnr, ssim
from mononerf.eval.protocols import DYCHECK, Protocol, check_dump, get_protocol, read_dump_info

ORIGINAL_SCENE_ORDER = ("Balloon2", "Balloon1")  # the original's hard-coded `sequences` (method.md §6.1)
MASK_DIRS = ("multiview_masks", "mv_masks")
METRICS = ("psnr", "ssim", "lpips")
BRANCH_SUBDIRS = {"dpsnr_s": "imgs_static", "dpsnr_d": "imgs_dynamic"}
SCORE_KEYS = ("psnr", "ssim", "lpips", "dpsnr", "dssim", "dlpips", "dpsnr_s", "dpsnr_d", "blend_in", "blend_out")


def find_step_dirs(path: str | os.PathLike, evaldir: str = "multiview", marker: str = f"{1:08d}/imgs",
                   what: str = "multi-view step dirs", hint: str = "") -> list[Path]:
    """Step dirs under ``path``: the path itself if it holds ``marker`` (a multi-view dump's ``00000001/imgs``),
    else the ``step*`` dirs holding it in ``path/evaldir`` (a run dir) or in ``path``. Raises MonoNeRFError when
    none are found, naming ``what`` was looked for (``hint`` ends the message)."""
    path = Path(path)
    if (path / marker).exists():
        return [path]
    for root in (path / evaldir, path):
        steps = sorted(p for p in root.glob("step*") if (p / marker).exists()) if root.is_dir() else []
        if steps:
            return steps
    raise MonoNeRFError(f"no {what} (step*/{marker}) in {path} or {path / evaldir}{hint}")


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


def scene_folders(data: str | os.PathLike | Iterable | Mapping, names: Iterable[str]) -> dict[str, Path]:
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


def _branch_scores(step_dir: Path, t: int, p: int, b: int, gt: np.ndarray, mask: np.ndarray | None) -> dict:
    """dpsnr_s, dpsnr_d, blend_in, blend_out of one view (None where the dump has no such file or no mask)."""
    from mononerf.eval.renders import read_blend_png

    name = f"{p - 1:03d}_{b:02d}.png"
    row: dict = {k: None for k in ("dpsnr_s", "dpsnr_d", "blend_in", "blend_out")}
    if mask is None:
        return row
    for key, sub in BRANCH_SUBDIRS.items():
        path = step_dir / f"{t:08d}" / sub / name
        if path.is_file():
            row[key] = masked_psnr(gt, _read(path), mask)
    path = step_dir / f"{t:08d}" / "blend" / name
    if path.is_file():
        blend = read_blend_png(path)
        if blend.shape != mask.shape:
            raise SceneFormatError(f"{path}: blending map {blend.shape} does not match the render {mask.shape}")
        row["blend_in"] = float(blend[mask].mean()) if mask.any() else None
        row["blend_out"] = float(blend[~mask].mean()) if (~mask).any() else None
    return row


def _scores(frames: list[dict]) -> dict:
    """The :data:`SCORE_KEYS` of a list of per-view rows (means over the views that have each one)."""
    dyn = [f["dynamic"] for f in frames if f["dynamic"] is not None]
    out = {k: _mean([f[k] for f in frames]) for k in METRICS}
    out.update({f"d{k}": _mean([d[k] for d in dyn]) for k in METRICS})
    out.update({k: _mean([f["branches"][k] for f in frames]) for k in ("dpsnr_s", "dpsnr_d", "blend_in", "blend_out")})
    return out


def _renders_of(imgs_dir: Path, b: int):
    """The files ``{p-1:03d}_{b:02d}.png`` of scene ``b`` in one time's ``imgs/``."""
    return imgs_dir.glob(f"[0-9][0-9][0-9]_{b:02d}.png")


def _cameras(imgs_dir: Path, b: int) -> list[int]:
    """1-based cameras rendered for scene ``b`` in one time's ``imgs/`` (files ``{p-1:03d}_{b:02d}.png``): every
    camera for the original's full grid, the picked ones for a ``--grid K`` dump, camera 1 for a dynamicnerf dump."""
    cams = sorted(int(f.name[:3]) + 1 for f in _renders_of(imgs_dir, b))
    if not cams:
        raise SceneFormatError(f"no renders of scene {b:02d} ({{camera:03d}}_{b:02d}.png) in {imgs_dir}")
    return cams


def _scene_times(step_dir: Path, times: list[int], b: int) -> list[int]:
    """The times of the dump that hold renders of scene ``b`` (scenes of different lengths share one dump)."""
    held = [t for t in times if any(_renders_of(step_dir / f"{t:08d}" / "imgs", b))]
    if not held:
        raise SceneFormatError(f"no renders of scene {b:02d} ({{camera:03d}}_{b:02d}.png) in {step_dir}/*/imgs")
    return held


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def evaluate_step(step_dir: Path, data, lpips_metric: LPIPSMetric | None,
                  protocol: str | Protocol = "mononerf") -> dict:
    """Per-frame, per-scene and overall metrics of one step dir under ``protocol``; see ``evaluate_run``."""
    proto = get_protocol(protocol)
    info = read_dump_info(step_dir)
    check_dump(proto, step_dir, info)
    index = scene_batch_index(step_dir)
    dirs = scene_folders(data, list(index))
    times = sorted(int(p.name) for p in step_dir.iterdir() if p.name.isdigit() and (p / "imgs").is_dir())
    scenes = {}
    grid = [0, 0]  # the most times and cameras a scene has
    size = None  # (W, H) of the renders
    for name, b in index.items():
        frames = []
        resized = False
        scene_times = _scene_times(step_dir, times, b) if times else []
        first = step_dir / f"{scene_times[0]:08d}" / "imgs" if scene_times else step_dir
        poses = proto.cameras(_cameras(first, b), first) if scene_times else []
        grid[0], grid[1] = max(grid[0], len(scene_times)), max(grid[1], len(poses))
        for t in scene_times:
            for p in poses:
                pred = _read(step_dir / f"{t:08d}" / "imgs" / f"{p - 1:03d}_{b:02d}.png")
                gt_full = _read(dirs[name] / "multiview_GT" / f"{t:08d}" / f"cam{p:02d}.jpg")
                h, w = gt_full.shape[:2]
                # the mononerf protocol renders at half the GT; the dynamicnerf one at the render size, whatever it is
                if proto.every_camera and pred.shape[:2] != (h // 2, w // 2) and not resized:  # once per scene
                    warnings.warn(f"{name}: prediction {pred.shape[:2]} is not half the GT {(h, w)}; resizing to it")
                    resized = True
                gt = cv2.resize(gt_full, (pred.shape[1], pred.shape[0]))
                size = size or [int(pred.shape[1]), int(pred.shape[0])]
                row = {"time": t, "pose": p, "psnr": psnr(gt, pred), "ssim": ssim(gt, pred),
                       "lpips": lpips_metric(gt, pred) if lpips_metric else None}
                mask = _read_mask(dirs[name], t, p, pred.shape[:2])
                row["dynamic"] = None if mask is None else {
                    "psnr": masked_psnr(gt, pred, mask), "ssim": masked_ssim(gt, pred, mask),
                    "lpips": lpips_metric.masked(gt, pred, mask) if lpips_metric else None}
                row["branches"] = _branch_scores(step_dir, t, p, b, gt, mask)
                frames.append(row)
        mean = {k: _mean([f[k] for f in frames]) for k in METRICS}
        dyn_rows = [f["dynamic"] for f in frames if f["dynamic"] is not None]
        dyn = {k: _mean([d[k] for d in dyn_rows]) for k in METRICS} if dyn_rows else None
        scenes[name] = {"batch_index": b, **_scores(frames), "mean": mean, "dynamic_mean": dyn, "frames": frames}
    overall = {k: _mean([s["mean"][k] for s in scenes.values()]) for k in METRICS}
    scores = {k: _mean([s[k] for s in scenes.values()]) for k in SCORE_KEYS}
    dyn_scenes = [s["dynamic_mean"] for s in scenes.values() if s["dynamic_mean"]]
    overall_dyn = {k: _mean([d[k] for d in dyn_scenes]) for k in METRICS} if dyn_scenes else None
    return {"step_dir": str(step_dir), "protocol": proto.describe(), "render": info.get("render"),
            "grid": grid, "size": size, "scenes": scenes, "scores": scores, "mean": overall,
            "dynamic_mean": overall_dyn,
            "notes": [] if overall_dyn else ["no multi-view motion masks found: dynamic-region scores not computed"]}


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


# table columns: (header, key, format); d = over the moving region, _s / _d = static-only / dynamic-only render
_COLUMNS = (("PSNR", "psnr", ".2f"), ("SSIM", "ssim", ".4f"), ("LPIPS", "lpips", ".3f"), ("dPSNR", "dpsnr", ".2f"),
            ("dSSIM", "dssim", ".4f"), ("dPSNR_s", "dpsnr_s", ".2f"), ("dPSNR_d", "dpsnr_d", ".2f"),
            ("blend_in", "blend_in", ".3f"), ("blend_out", "blend_out", ".3f"))


def format_table(result: dict) -> str:
    """One row per scene plus the mean over scenes: full-image PSNR / SSIM / LPIPS (%.2f / %.4f / %.3f), then over the
    moving region the blended render's PSNR / SSIM, the static-only and dynamic-only renders' PSNR and the mean
    blending weight inside / outside it (n/a where the dump or the scene cannot give a score)."""
    grid = result.get("grid")
    size = result.get("size")
    name = (result.get("protocol") or {}).get("name")
    head = f"{result['step_dir']}" + (f" [protocol {name}]" if name else "") + (
        f" ({grid[0]} times x {grid[1]} cameras" if grid else "") + (
        f", {size[0]}x{size[1]} renders" if grid and size else "") + (
        f", {result['render']['n_samples']} samples per ray" if grid and (result.get("render") or {}).get("n_samples")
        else "") + (")" if grid else "")
    lines = [head, f"{'scene':<20} " + " ".join(f"{h:>9}" for h, _, _ in _COLUMNS)]
    scores = result.get("scores") or {k: result["mean"].get(k) for k in METRICS}
    rows = [(name, s) for name, s in result["scenes"].items()] + [("mean", scores)]
    for name, m in rows:
        lines.append(f"{name:<20} " + " ".join(f"{_fmt(m.get(k), f):>9}" for _, k, f in _COLUMNS))
    return "\n".join(lines)


def evaluate_run(step_dir: str | os.PathLike, data_root_or_scene_dirs="data", *, use_lpips: bool = True,
                 weights_dir: str | os.PathLike = "checkpoints", bgr_quirk: bool = True, evaldir: str = "multiview",
                 write: bool = True, verbose: bool = True, protocol: str | Protocol = "mononerf") -> list[dict]:
    """Evaluate every step dir found at ``step_dir`` (a step dir, or a run dir holding ``evaldir/step*``).

    Args:
        step_dir: one step dir or a run dir.
        data_root_or_scene_dirs: data root (scene = root/name), a list of scene dirs (matched by folder name) or a
            mapping name → dir.
        use_lpips: compute LPIPS; a missing AlexNet file gives a warning and LPIPS None (never 0).
        weights_dir, bgr_quirk: see ``LPIPSMetric``.
        write: write the protocol's results file in the step dir (``results.json`` for ``mononerf``,
            ``results_dynamicnerf.json``). verbose: print the table.
        protocol: ``mononerf`` (every camera at every time) or ``dynamicnerf`` (camera 0 at every time);
            :mod:`mononerf.eval.protocols`; ``dycheck``: the validation cameras' renders
            (:mod:`mononerf.eval.dycheck`, whose results these then are).
    Returns:
        one dict per step dir: ``scenes[name] = {batch_index, mean, dynamic_mean, frames}``, ``mean`` over scenes.
    Raises:
        MonoNeRFError: no step dirs; SceneFormatError: a missing GT/prediction file or scene folder.
    """
    if protocol == DYCHECK:  # its own renders, images and metrics (mononerf/eval/dycheck.py)
        from mononerf.eval import dycheck

        return dycheck.evaluate_run(step_dir, data_root_or_scene_dirs, use_lpips=use_lpips, weights_dir=weights_dir,
                                    evaldir=evaldir, write=write, verbose=verbose)
    proto = get_protocol(protocol)
    steps = find_step_dirs(step_dir, evaldir)
    metric = lpips_or_none(use_lpips, weights_dir, bgr_quirk)
    results = []
    for step in steps:
        result = evaluate_step(step, data_root_or_scene_dirs, metric, proto)
        result["lpips_bgr_quirk"] = bgr_quirk if metric else None
        if write:
            (step / proto.results_file).write_text(json.dumps(result, indent=1))
        if verbose:
            print(format_table(result))
        results.append(result)
    return results
