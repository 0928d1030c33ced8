"""Comparison pictures of a multi-view dump: for a few views of each scene, one row of
ground truth | blended render | static only | dynamic only | blending map | depth (disparity of the blended render,
where the dump has it) | motion mask (where the scene has one).

``python -m mononerf.eval STEP_DIR --data DATA --picture grid.png`` writes one (see :mod:`mononerf.eval.__main__`).
Every panel is at the render's size (the ground truth resized like the evaluation resizes it); the blending map is
grey (white = the dynamic branch), the disparity colour-mapped (turbo, near = red) between its 1st and 99th
percentile in that view, the mask white on the moving object.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mononerf.errors import SceneFormatError
from mononerf.eval.evaluate import _cameras, _read, _read_mask, _scene_times, scene_folders, scene_batch_index
from mononerf.eval.renders import DISPARITY_DIR, MULTIVIEW_MAPS, read_blend_png
from mononerf.eval.visuals import colorize

PANELS = ("ground truth", "blended", "static only", "dynamic only", "blending", "depth", "motion mask")
_SUBDIRS = {"blended": "imgs", "static only": "imgs_static", "dynamic only": "imgs_dynamic"}  # RGB panels


def pick_views(times: list[int], cameras: list[int], count: int) -> list[tuple[int, int]]:
    """``count`` (time, camera) pairs spread over a dump, novel views first: camera ≠ time where possible."""
    pairs = [(t, p) for t in times for p in cameras]
    novel = [tp for tp in pairs if tp[0] != tp[1]] or pairs
    idx = np.linspace(0, len(novel) - 1, min(count, len(novel))).round().astype(int)
    return [novel[i] for i in dict.fromkeys(idx.tolist())]


def _label(img: np.ndarray, text: str) -> np.ndarray:
    """A panel with a caption band above it (BGR uint8)."""
    band = np.full((14, img.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, img], 0)


def comparison_rows(step_dir: Path, data, views: int = 3, scale: int = 2) -> np.ndarray:
    """The picture (RGB uint8): ``views`` rows per scene of :data:`PANELS`, each panel enlarged ``scale``× (nearest).

    Raises SceneFormatError when the dump lacks the branch renders (an original-layout dump: ``imgs/`` only).
    """
    step_dir = Path(step_dir)
    index = scene_batch_index(step_dir)
    dirs = scene_folders(data, list(index))
    times = sorted(int(p.name) for p in step_dir.iterdir() if p.name.isdigit() and (p / "imgs").is_dir())
    if not times:
        raise SceneFormatError(f"{step_dir}: no time folders with imgs/")
    rows = []
    for name, b in index.items():
        own = _scene_times(step_dir, times, b)  # scenes of different lengths share the dump
        for t, p in pick_views(own, _cameras(step_dir / f"{own[0]:08d}" / "imgs", b), views):
            file = f"{p - 1:03d}_{b:02d}.png"
            for sub in MULTIVIEW_MAPS:  # imgs, imgs_static, imgs_dynamic, blend
                if not (step_dir / f"{t:08d}" / sub / file).is_file():
                    raise SceneFormatError(f"{step_dir / f'{t:08d}' / sub / file} missing: the picture needs a dump "
                                           "with the branch renders "
                                           "(python -m mononerf.eval.video RUN --mode multiview)")
            pred, static, dynamic = (_read(step_dir / f"{t:08d}" / _SUBDIRS[k] / file) for k in PANELS[1:4])
            h, w = pred.shape[:2]
            gt = cv2.resize(_read(dirs[name] / "multiview_GT" / f"{t:08d}" / f"cam{p:02d}.jpg"), (w, h))
            blend = (read_blend_png(step_dir / f"{t:08d}" / "blend" / file) * 255).round().astype(np.uint8)
            mask = _read_mask(dirs[name], t, p, (h, w))
            disp_file = step_dir / f"{t:08d}" / DISPARITY_DIR / file
            depth = np.zeros_like(gt)
            if disp_file.is_file():
                disp = read_blend_png(disp_file)
                lo, hi = np.percentile(disp, [1.0, 99.0])
                depth = colorize(disp, float(lo), float(max(hi, lo + 1e-3)))[..., ::-1].copy()  # RGB -> BGR
            panels = [gt, pred, static, dynamic, cv2.cvtColor(blend, cv2.COLOR_GRAY2BGR), depth,
                      np.zeros_like(gt) if mask is None else cv2.cvtColor(mask.astype(np.uint8) * 255,
                                                                          cv2.COLOR_GRAY2BGR)]
            panels = [cv2.resize(x, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST) for x in panels]
            labels = [f"{name} t{t - 1} cam{p - 1}"] + list(PANELS[1:])
            gap = np.full((h * scale + 14, 2, 3), 255, np.uint8)
            row = [x for panel, text in zip(panels, labels) for x in (_label(panel, text), gap)][:-1]
            rows.append(np.concatenate(row, 1))
    width = max(r.shape[1] for r in rows)  # scenes of different sizes: narrower rows padded white on the right
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sep = np.full((2, width, 3), 255, np.uint8)
    out = np.concatenate([x for r in rows for x in (r, sep)][:-1], 0)
    return out[..., ::-1].copy()


def write_picture(step_dir: Path, data, path: Path, views: int = 3, scale: int = 2) -> Path:
    """:func:`comparison_rows` written as a PNG at ``path``."""
    img = comparison_rows(step_dir, data, views, scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img[..., ::-1]):
        raise SceneFormatError(f"could not write {path}")
    return path
