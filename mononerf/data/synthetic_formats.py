"""A synthetic scene in the Nerfies / HyperNeRF and DyCheck iPhone layouts (``python -m mononerf.data.synthetic
--format nerfies|iphone``; docs/datasets.md).

:func:`write_capture` turns an LLFF-layout synthetic scene (what :func:`mononerf.data.synthetic.generate_scene`
writes) into the other layout, with the same training frames and cameras, so that the loaders can be checked
against each other:

- training split: camera 0, ids ``0_00000``…, the LLFF frames (``rgb/2x/`` = ``images_2/``) and their cameras.
  Camera JSONs hold the full-resolution camera whose half is the ``images_2`` one: ``images_2`` takes every second
  pixel of a render through integer pixel coordinates, so with pixel centres at k + 0.5 its principal point is
  ``(W/2 + 1, H/2 + 1)`` at 1x (no ``rgb/1x/`` is written: a 1x image would need ``(W/2 + 0.5, H/2 + 0.5)``);
- validation split (``iphone``: ``splits/val.json``, ``nerfies``: ``dataset.json``'s ``val_ids``): two fixed
  cameras (ids ``1_…`` and ``2_…``) at the poses of the first and last training frames, with a focal 0.9x the
  training one, at every time, rendered afresh;
- ``scene.json``: center 0, scale 1, near = the 5th percentile of the frames' nearest depths (the value the LLFF
  loader scales by), far = the farthest depth; ``extra.json`` (iPhone);
- ``depth/2x/`` (iPhone): the true depth along the optical axis of each training frame, and no ``disp/`` (the
  loader derives it); ``disp/`` (Nerfies), ``motion_masks/``, ``flow/`` beside, as the preprocessing would write;
- ``covisible/2x/val/`` (iPhone): a validation pixel is co-visible when its surface point, moved with its object
  to each training time, lands inside that frame unoccluded in more than ``max(5, 0.1 x frames)`` training frames
  (DyCheck's rule, with exact geometry in place of RAFT's occlusion test);
- ``multiview_GT/``, ``multiview_masks/``, ``synthetic.json``, ``video.mp4`` as in the LLFF layout.

:func:`shift_principal_point` (``--principal-shift``) turns the training camera into one whose principal point is off
the image centre, as a real phone's is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from mononerf.data.synthetic_render import Scene, composite, moved, render_layer, seen_from, surface_points
from mononerf.errors import MonoNeRFError
from mononerf.utils.images import to_uint8, write_image

FORMATS = ("llff", "nerfies", "iphone")
VAL_FOCAL = 0.9  # the validation cameras' focal, relative to the training camera's
MIN_COVISIBLE = 5  # DyCheck's num_min_frames
MIN_COVISIBLE_RATIO = 0.1  # DyCheck's min_frame_ratio


def train_id(i: int) -> str:
    return f"0_{i:05d}"


def camera_json(c2w: np.ndarray, focal: float, width: int, height: int) -> dict:
    """The Nerfies camera of an OpenGL c2w (4, 4) whose half-resolution image is ``images_2``-style (module
    docstring)."""
    rot_cv = c2w[:3, :3] @ np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes: right, down, forward
    return {"orientation": rot_cv.T.tolist(), "position": c2w[:3, 3].tolist(), "focal_length": float(focal),
            "principal_point": [width / 2 + 1.0, height / 2 + 1.0], "skew": 0.0, "pixel_aspect_ratio": 1.0,
            "radial_distortion": [0.0, 0.0, 0.0], "tangential_distortion": [0.0, 0.0], "image_size": [width, height]}


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))


def covisible(scene: Scene, depth: np.ndarray, prim: np.ndarray, c2w: np.ndarray, focal: float, time: int,
              train_depths: list[np.ndarray]) -> np.ndarray:
    """(h, w) bool: pixels of a half-resolution view (``depth``, ``prim`` of camera ``c2w`` with full-res ``focal``
    at ``time``) seen unoccluded by more than max(5, 0.1 T) of the T half-resolution training frames."""
    pts, finite = surface_points(depth, c2w, focal / 2)
    seen = np.zeros(depth.shape, np.int64)
    for j, d_train in enumerate(train_depths):  # the visibility test of the training flows (synthetic.scene_flow)
        seen += seen_from(moved(scene, pts, prim, time, j), finite, scene.c2w[j], scene.focal / 2, d_train)[3]
    return seen > max(MIN_COVISIBLE, int(MIN_COVISIBLE_RATIO * len(train_depths)))


def write_capture(llff_dir: Path, out: Path, scene: Scene, kind: str, train_depths_full: list[np.ndarray]) -> None:
    """Write the capture layout ``kind`` of the LLFF synthetic scene in ``llff_dir`` (rendered from ``scene``, with
    the full-resolution depth of each training frame) into the empty folder ``out`` (module docstring)."""
    if kind not in ("nerfies", "iphone"):
        raise MonoNeRFError(f"unknown capture layout {kind!r}; expected nerfies or iphone")
    n, w, h = scene.frames, scene.width, scene.height
    train_depths = [d[::2, ::2] for d in train_depths_full]
    moving = [k for k, p in enumerate(scene.primitives) if p.moving]
    static = [k for k, p in enumerate(scene.primitives) if not p.moving]
    ids, meta = [], {}
    for i in range(n):
        ids.append(train_id(i))
        meta[train_id(i)] = {"warp_id": i, "appearance_id": i, "camera_id": 0}
        _dump(out / "camera" / f"{train_id(i)}.json", camera_json(scene.c2w[i], scene.focal, w, h))
        (out / "rgb" / "2x").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(llff_dir / "images_2" / f"{i:03d}.png", out / "rgb" / "2x" / f"{train_id(i)}.png")
        if kind == "iphone":
            (out / "depth" / "2x").mkdir(parents=True, exist_ok=True)
            np.save(out / "depth" / "2x" / f"{train_id(i)}.npy", train_depths[i][..., None].astype(np.float32))
    val = {"frame_names": [], "time_ids": [], "camera_ids": []}
    if kind == "iphone":
        (out / "covisible" / "2x" / "val").mkdir(parents=True)
    for cam_id, pose in ((1, scene.c2w[0]), (2, scene.c2w[n - 1])):
        focal = VAL_FOCAL * scene.focal
        back = render_layer(scene.primitives, 0, pose, w, h, focal, static)
        for t in range(n):
            layer = composite(back, render_layer(scene.primitives, t, pose, w, h, focal, moving))
            name = f"{cam_id}_{t:05d}"
            write_image(out / "rgb" / "2x" / f"{name}.png", to_uint8(layer.rgb)[::2, ::2])
            _dump(out / "camera" / f"{name}.json", camera_json(pose, focal, w, h))
            meta[name] = {"warp_id": t, "appearance_id": t, "camera_id": cam_id}
            for key, value in (("frame_names", name), ("time_ids", t), ("camera_ids", cam_id)):
                val[key].append(value)
            if kind == "iphone":
                cov = covisible(scene, layer.depth[::2, ::2], layer.prim[::2, ::2], pose, focal, t, train_depths)
                write_image(out / "covisible" / "2x" / "val" / f"{name}.png", np.where(cov, 255, 0).astype(np.uint8))
    all_ids = ids + val["frame_names"]
    _dump(out / "dataset.json", {"count": len(all_ids), "num_exemplars": n, "ids": all_ids, "train_ids": ids,
                                 "val_ids": val["frame_names"]})
    _dump(out / "metadata.json", meta)
    nearest = [float(d.min()) for d in train_depths_full]
    _dump(out / "scene.json", {"center": [0.0, 0.0, 0.0], "scale": 1.0, "near": float(np.percentile(nearest, 5)),
                               "far": float(max(d.max() for d in train_depths_full))})
    if kind == "iphone":
        _dump(out / "splits" / "train.json", {"frame_names": ids, "time_ids": list(range(n)), "camera_ids": [0] * n})
        _dump(out / "splits" / "val.json", val)
        _dump(out / "extra.json", {"factor": 2, "fps": 10.0, "lookat": [0.0, 0.0, -1.0], "up": [0.0, 1.0, 0.0],
                                   "bbox": [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]})
    derived = ("motion_masks", "flow") + (("disp",) if kind == "nerfies" else ())
    for name in derived + ("multiview_GT", "multiview_masks"):
        shutil.copytree(llff_dir / name, out / name)
    for name in ("video.mp4", "synthetic.json"):
        shutil.copyfile(llff_dir / name, out / name)


def shift_principal_point(folder: Path, dx: int) -> None:
    """Make a written capture's training camera one whose principal point is ``dx`` pixels (at 2x) right of the image
    centre: every training frame and the maps derived from it (disparity, LiDAR depth, motion mask, flow) move ``dx``
    pixels right, their first column repeated, and the training cameras' JSONs say so (+2·dx at 1x). The same scene
    seen by that camera, exactly but for the ``dx`` repeated columns. Validation views keep their cameras."""
    if dx < 1:
        raise MonoNeRFError(f"--principal-shift {dx}: give a positive number of pixels")

    def shifted(a: np.ndarray) -> np.ndarray:
        return np.concatenate([np.repeat(a[:, :1], dx, 1), a[:, :-dx]], 1)

    for path in sorted((folder / "camera").glob("0_*.json")):
        cam = json.loads(path.read_text())
        cam["principal_point"][0] += 2.0 * dx
        _dump(path, cam)
        png = folder / "rgb" / "2x" / f"{path.stem}.png"
        write_image(png, shifted(iio.imread(png)))
        depth = folder / "depth" / "2x" / f"{path.stem}.npy"
        if depth.is_file():
            np.save(depth, shifted(np.load(depth)))
    for f in sorted((folder / "disp").glob("*.npy")):
        np.save(f, shifted(np.load(f)))
    for f in sorted((folder / "motion_masks").glob("*.png")):
        write_image(f, shifted(iio.imread(f)))
    for f in sorted((folder / "flow").glob("*.npz")):
        with np.load(f) as data:
            arrays = {k: shifted(data[k]) for k in data.files}
        np.savez(f, **arrays)
