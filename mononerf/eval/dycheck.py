"""The ``dycheck`` protocol: DyCheck's validation cameras, scored over their co-visibility masks (docs/evaluation.md).

A scene read from the iPhone (or Nerfies) layout carries its validation split as ``eval_views``
(:class:`~mononerf.data.capture.EvalView`: another camera, with its own intrinsics, at a time of the training video).
:func:`render_views` renders each view through its own camera's rays (in the scene's NDC box when the run uses NDC)
at its time, into ``STEP_DIR/dycheck/<scene>/<id>.png`` (the blended colour) and ``<id>_blend.png`` (the blending
weight), with ``dycheck/dump.json`` naming the protocol and the render settings. :func:`evaluate_step` scores
those renders against the views' images with mPSNR / mSSIM / mLPIPS (:mod:`mononerf.eval.dycheck_metrics`) over
each view's co-visibility mask (``covisible/<s>x/val/``; a view without one is scored over every pixel, and the
result says so); a scene's score is the mean over its views, the run's the mean over its scenes. LPIPS is fed RGB
(DyCheck's convention), not the BGR arrays of the other protocols.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from mononerf.errors import MonoNeRFError, SceneFormatError
from mononerf.eval import dycheck_metrics as dm
from mononerf.eval.protocols import sample_space
from mononerf.utils.images import to_uint8

NAME = "dycheck"
FOLDER = "dycheck"  # in a step dir
RESULTS_FILE = "results_dycheck.json"
DUMP_INFO = "dump.json"


def scenes_with_views(pipeline) -> list[tuple[int, object]]:
    """(run scene index, Scene) of every scene of the run that has validation views."""
    return [(b, s) for b, s in enumerate(pipeline.data.scenes) if s.eval_views]


def render_views(pipeline, step: int, folder: Path, progress: bool = False) -> Path:
    """Render every validation view of every scene that has them (module docstring) into ``folder/dycheck``;
    returns ``folder``. Refuses a run none of whose scenes has validation views."""
    from mononerf.eval.scene_render import SceneRenderer

    todo = scenes_with_views(pipeline)
    if not todo:
        raise MonoNeRFError("no scene of this run has validation cameras (the dycheck protocol needs scenes read "
                            "from the iphone or nerfies layout with a val split; docs/datasets.md)")
    root = Path(folder) / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    s = pipeline.renderer.settings
    jobs = [(b, scene, v) for b, scene in todo for v in scene.eval_views]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc=f"dycheck {Path(folder).name}", unit="view")
    renderers = {}
    for b, scene, view in jobs:
        if b not in renderers:
            renderers = {b: SceneRenderer(pipeline, b, chunk=int(pipeline.cfg.info.chunk))}  # one scene's features
        maps = renderers[b].render_camera(view.camera, float(view.frame))
        out = root / scene.name
        out.mkdir(exist_ok=True)
        iio.imwrite(out / f"{view.name}.png", to_uint8(maps["rgb_map_full"].float().numpy()))
        iio.imwrite(out / f"{view.name}_blend.png", to_uint8(maps["dynamicness_map"].float().numpy()))
    info = {"protocol": NAME, "step": int(step), "factor": int(pipeline.cfg.train.factor),
            "render": {"n_samples": int(s.n_samples), "ndc": sample_space(pipeline)},
            "scenes": {scene.name: [v.name for v in scene.eval_views] for _, scene in todo}}
    (root / DUMP_INFO).write_text(json.dumps(info, indent=1))
    return Path(folder)


def find_dumps(path: str | os.PathLike, evaldir: str = "multiview") -> list[Path]:
    """Step dirs holding ``dycheck/dump.json``: ``path`` itself, or ``step*`` dirs in ``path/evaldir`` or ``path``
    (:func:`~mononerf.eval.evaluate.find_step_dirs`)."""
    from mononerf.eval.evaluate import find_step_dirs

    return find_step_dirs(path, evaldir, marker=f"{FOLDER}/{DUMP_INFO}", what="DyCheck renders",
                          hint="; render them with python -m mononerf.eval.video RUN_DIR --mode multiview --protocol "
                               "dycheck")


def evaluate_step(step_dir: Path, scene_dirs: dict[str, Path], metric=None) -> dict:
    """Scores of one step dir's DyCheck renders (module docstring); ``scene_dirs`` maps scene names to folders."""
    from mononerf.data.formats import read_scenes

    info = json.loads((step_dir / FOLDER / DUMP_INFO).read_text())
    scenes, notes = {}, []
    for name, ids in info["scenes"].items():
        if name not in scene_dirs:
            raise SceneFormatError(f"scene folder of {name!r} not given (the DyCheck renders of {step_dir} name it)")
        (scene,) = read_scenes([scene_dirs[name]], "auto", factor=int(info.get("factor", 2)))
        views = {v.name: v for v in scene.eval_views}
        rows = []
        for vid in ids:
            if vid not in views:
                raise SceneFormatError(f"{scene_dirs[name]}: no validation view {vid!r} (the renders of {step_dir} "
                                       "were made from another version of the scene)")
            v = views[vid]
            path = step_dir / FOLDER / name / f"{vid}.png"
            if not path.is_file():
                raise SceneFormatError(f"missing render {path}")
            pred = iio.imread(path)[..., :3]
            gt = to_uint8(v.image)
            if pred.shape != gt.shape:
                raise SceneFormatError(f"{path}: {pred.shape[1]}x{pred.shape[0]}, but the view is "
                                       f"{gt.shape[1]}x{gt.shape[0]}")
            mask = v.covisible
            rows.append({"view": vid, "frame": v.frame, "camera": v.camera_id,
                         "covisible": None if mask is None else float(np.mean(mask)),
                         "mpsnr": dm.mpsnr(gt, pred, mask), "mssim": dm.mssim(gt, pred, mask),
                         "mlpips": dm.mlpips(metric.spatial_map, gt, pred, mask) if metric is not None else None})
        if any(r["covisible"] is None for r in rows):
            notes.append(f"{name}: views without a co-visibility mask were scored over every pixel")
        scenes[name] = {"views": rows, "mean": _mean(rows)}
    mean = _mean([s["mean"] for s in scenes.values()])
    return {"step_dir": str(step_dir), "protocol": {"name": NAME, "views": "each scene's validation cameras",
                                                      "source": "DyCheck (Gao et al., NeurIPS 2022)",
                                                      "metrics": "mPSNR, mSSIM, mLPIPS (AlexNet, RGB) over the "
                                                                 "co-visibility masks"},
            "render": info.get("render"), "step": info.get("step"), "scenes": scenes, "mean": mean, "notes": notes}


def write_picture(result: dict, data, path: Path, views: int = 3, scale: int = 2) -> Path:
    """Rows of ground truth | render | blending | co-visibility (the pixels left out dimmed) | the render's error
    where the mask keeps pixels (|difference| x 4), for ``views`` validation views per scene of an evaluated step
    (``result`` from :func:`evaluate_step`); each panel enlarged ``scale`` x. Returns ``path``."""
    import cv2

    from mononerf.data.formats import read_scenes
    from mononerf.eval.evaluate import scene_folders
    from mononerf.eval.pictures import _label

    step_dir = Path(result["step_dir"])
    info = json.loads((step_dir / FOLDER / DUMP_INFO).read_text())
    dirs = scene_folders(data, list(result["scenes"]))
    rows = []
    for name, sc in result["scenes"].items():
        (scene,) = read_scenes([dirs[name]], "auto", factor=int(info.get("factor", 2)))
        by_name = {v.name: v for v in scene.eval_views}
        picked = np.linspace(0, len(sc["views"]) - 1, min(views, len(sc["views"]))).round().astype(int)
        for i in dict.fromkeys(picked.tolist()):
            row = sc["views"][i]
            v = by_name[row["view"]]
            gt = to_uint8(v.image)
            pred = iio.imread(step_dir / FOLDER / name / f"{v.name}.png")[..., :3]
            blend = iio.imread(step_dir / FOLDER / name / f"{v.name}_blend.png")
            mask = np.ones(gt.shape[:2], bool) if v.covisible is None else v.covisible
            shown = np.where(mask[..., None], gt, gt // 4)
            err = np.abs(gt.astype(np.int32) - pred).mean(-1) * 4
            err = np.where(mask, np.clip(err, 0, 255), 0).astype(np.uint8)
            panels = [(gt, f"{name} {v.name} (frame {v.frame:g})"), (pred, f"mPSNR {row['mpsnr']:.2f}"),
                      (np.repeat(blend[..., None], 3, -1), "blending"), (shown, "co-visible"),
                      (np.repeat(err[..., None], 3, -1), "|error| x4 in mask")]
            big = [cv2.resize(np.ascontiguousarray(img), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
                   for img, _ in panels]
            rows.append(np.concatenate([_label(img[..., ::-1], text) for img, (_, text) in zip(big, panels)], 1))
    width = max(r.shape[1] for r in rows)
    pic = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows], 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), pic):
        raise MonoNeRFError(f"could not write the picture {path}")
    return path


def _mean(rows: list[dict]) -> dict:
    out = {}
    for k in ("mpsnr", "mssim", "mlpips"):
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def format_table(result: dict) -> str:
    """One row per scene (and the mean): mPSNR, mSSIM, mLPIPS and the number of views."""
    r = result.get("render") or {}
    lines = [f"{result['step_dir']} [protocol {NAME}]" + (f" ({r['n_samples']} samples per ray)" if r else ""),
             f"{'scene':<20} {'mPSNR':>9} {'mSSIM':>9} {'mLPIPS':>9} {'views':>6}"]

    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    for name, s in list(result["scenes"].items()) + [("mean", {"mean": result["mean"], "views": None})]:
        m = s["mean"]
        n = "" if s["views"] is None else str(len(s["views"]))
        lines.append(f"{name:<20} {fmt(m['mpsnr'], '.2f'):>9} {fmt(m['mssim'], '.4f'):>9} "
                     f"{fmt(m['mlpips'], '.3f'):>9} {n:>6}")
    return "\n".join(lines + [f"note: {n}" for n in result.get("notes", [])])


def evaluate_run(path, data="data", *, use_lpips: bool = True, weights_dir="checkpoints",
                 evaldir: str = "multiview", write: bool = True, verbose: bool = True) -> list[dict]:
    """Score every step dir with DyCheck renders at ``path`` (a step dir or a run dir); ``data``: the data root,
    scene folders or a mapping name → folder (as :func:`mononerf.eval.evaluate.evaluate_run`); writes
    :data:`RESULTS_FILE` in each."""
    from mononerf.eval.evaluate import scene_folders
    from mononerf.eval.metrics import lpips_or_none

    metric = lpips_or_none(use_lpips, weights_dir, bgr_quirk=False, label="mLPIPS")
    results = []
    for step in find_dumps(path, evaldir):
        names = list(json.loads((step / FOLDER / DUMP_INFO).read_text())["scenes"])
        result = evaluate_step(step, scene_folders(data, names), metric)
        if write:
            (step / RESULTS_FILE).write_text(json.dumps(result, indent=1))
        if verbose:
            print(format_table(result))
        results.append(result)
    return results
